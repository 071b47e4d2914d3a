"""MCP over streamable HTTP (`serve --http`): stateless, so any process answers any call.

MCP over streamable HTTP (`wvo-mcp serve --http`): many agents and people, one server
process or several (any request may land on any of them: the transport is stateless and
every piece of state is in the database).

Bearer tokens are required (access.py: the SDK's token-verifier hook, so a request without
a valid one gets 401 with `WWW-Authenticate: Bearer … resource_metadata=…`, and the OAuth
protected-resource metadata is served); `--no-auth` is for loopback only. DNS-rebinding
protection checks every request's Host (and Origin) header; a dashboard POST's Origin must be
exactly this server's own. Admission control (http_limits.py) caps the requests in flight and
each token's rate.

Answers are JSON, never a stream: no tool here sends anything before its result, and no
method but POST is taken on /mcp (PostOnly: 405, so no GET stream is ever held). A JSON-RPC
request of the handshake era is answered in the request's own task (Endpoint), without the
session, streams and task group the SDK builds per stateless request.
"""

import asyncio
import errno
import logging
import math
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import anyio
import mcp_types
import pydantic_core
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings
from mcp.server.connection import Connection
from mcp.server.lowlevel.server import Server
from mcp.server.runner import modern_error_data, serve_one
from mcp.server.streamable_http import check_accept_headers
from mcp.server.transport_security import (
    RequestBodyLimitMiddleware,
    TransportSecuritySettings,
)
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER, find_duplicated_routing_header
from mcp.shared.message import ServerMessageMetadata
from mcp.types import ErrorData, JSONRPCError, JSONRPCRequest, JSONRPCResponse
from mcp_types import DEFAULT_NEGOTIATED_VERSION
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import AnyHttpUrl, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wvo_mcp.config import Settings
from wvo_mcp.edge import access, held_back, http_limits, protocol
from wvo_mcp.edge.host_guard import HostGuard, is_loopback, netloc, origin, origin_of
from wvo_mcp.edge.hot_calls import ONE_ANSWER, Call, HotCalls, OneAnswer
from wvo_mcp.edge.http_limits import COUNTED, Admission, Limits, Refusal, store_waits
from wvo_mcp.edge.stdio import MAX_LINE_BYTES
from wvo_mcp.errors import Busy, Overloaded, StoreUnavailable, ValidationFailed
from wvo_mcp.orchestrator import arrival
from wvo_mcp.rules.claim_admission import ClaimAdmission

if TYPE_CHECKING:
    from wvo_mcp.edge.http_claims import EdgeClaims
    from wvo_mcp.orchestrator import Orchestrator

log = logging.getLogger(__name__)

PATH = "/mcp"
DEFAULT_PORT = 8765
WILDCARD = ("0.0.0.0", "::", "")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
GRACE_SECONDS = 5  # open response streams get this long on shutdown
STOPS = (signal.SIGINT, signal.SIGTERM)  # what uvicorn takes for a stop
SDK_TRANSPORT_LOGGERS = ("mcp.server.streamable_http", "mcp.server.streamable_http_manager")
# An agent's connection outlives the pause between its calls (heartbeats come every 30-60 s),
# so a call does not pay a new TCP (and TLS) handshake; an idle connection costs a file and a
# few kilobytes.
KEEP_ALIVE_S = 120


@dataclass(frozen=True)
class Options:
    """`serve --http` and its flags."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    certfile: Path | None = None
    keyfile: Path | None = None
    allowed_hosts: tuple[str, ...] = ()
    public_url: str | None = None
    no_auth: bool = False
    jwt: access.Jwt | None = None
    dashboard: bool = False

    @property
    def dashboard_url(self) -> str:
        """The dashboard's page as people reach it (docs/dashboard.md)."""
        return self.resource_url.removesuffix(PATH) + "/dashboard"

    @property
    def tls(self) -> bool:
        return self.certfile is not None

    @property
    def https(self) -> bool:
        """People reach this server over TLS: its own, or a proxy's named by --public-url
        (no X-Forwarded-Proto is trusted, so the flag is what says it)."""
        return self.tls or (self.public_url or "").lower().startswith("https://")

    @property
    def origins(self) -> tuple[str, ...]:
        """The exact origins of this server's own pages: the public URL's, and the bound
        address's (each loopback name, when bound to loopback)."""
        found = [origin_of(self.public_url)] if self.public_url is not None else []
        if self.host not in WILDCARD:
            names = (*LOOPBACK_NAMES, self.host) if is_loopback(self.host) else (self.host,)
            scheme = "https" if self.tls else "http"
            found += [origin(scheme, name, self.port) for name in names]
        return tuple(dict.fromkeys(o for o in found if o is not None))

    def check(self) -> None:
        """Refuse what cannot be served safely, saying what would be accepted."""
        if not 1 <= self.port <= 65535:
            raise ValidationFailed(f"--port {self.port} must be 1-65535 (default {DEFAULT_PORT})")
        if (self.certfile is None) != (self.keyfile is None):
            raise ValidationFailed(
                "TLS needs both --certfile and --keyfile (PEM files), or neither (then put a "
                "reverse proxy that terminates TLS in front, see docs/http.md)"
            )
        for flag, path in (("--certfile", self.certfile), ("--keyfile", self.keyfile)):
            if path is not None and not path.is_file():
                raise ValidationFailed(f"{flag} {path}: no such file (a PEM file is expected)")
        if self.no_auth and not is_loopback(self.host):
            raise ValidationFailed(
                f"--no-auth is refused on --host {self.host}: without authentication anyone who "
                "can reach the port could act as any agent. Bind to loopback (--host "
                "127.0.0.1) for --no-auth, or drop --no-auth and give each caller a token "
                "(`wvo-mcp tokens add`)"
            )
        if self.no_auth and self.jwt is not None:
            raise ValidationFailed("--no-auth and --jwt-issuer contradict each other; pick one")
        if self.host in WILDCARD and self.public_url is None:
            raise ValidationFailed(
                f"--host {self.host or '(any)'} listens on every address: also give --public-url "
                f"(the address clients use, e.g. https://mcp.example.com{PATH}); it names this "
                "server in its OAuth metadata, and its host name is what DNS-rebinding "
                "protection lets through"
            )
        if self.public_url is not None and origin_of(self.public_url) is None:
            raise ValidationFailed(
                f"--public-url {self.public_url!r} must be an http:// or https:// URL with a "
                f"host (and a port number, if any), e.g. https://mcp.example.com{PATH}"
            )
        if self.jwt is not None and not self.jwt.jwks_url.startswith(("https://", "http://")):
            raise ValidationFailed(
                f"--jwks-url {self.jwt.jwks_url!r} must be an https:// (or http://) URL"
            )

    @property
    def resource_url(self) -> str:
        """This MCP endpoint as clients reach it (the OAuth resource identifier)."""
        if self.public_url is not None:
            return self.public_url
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{netloc(self.host, self.port)}{PATH}"

    def transport_security(self) -> TransportSecuritySettings:
        """DNS-rebinding protection: only Host headers naming this server pass."""
        names: list[str] = []
        if is_loopback(self.host):
            names += ["127.0.0.1", "localhost", "[::1]"]
        if self.host not in WILDCARD:
            names.append(netloc(self.host, None))
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            names.append(parts.netloc.rsplit("@", 1)[-1])
        names += self.allowed_hosts
        hosts: list[str] = []
        for name in dict.fromkeys(names):
            # `name:*` is any port; a bare name is a Host header without one (ports 80/443).
            hosts += [name] if ":" in name.lstrip("[").split("]")[-1] else [name, f"{name}:*"]
        origins = [f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")]
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
        )

    def http_access(self) -> access.HttpAccess:
        if self.no_auth:
            return access.HttpAccess(auth=None)
        resource = AnyHttpUrl(self.resource_url)
        parts = urlsplit(self.resource_url)
        # Our own tokens have no OAuth issuer; the server names itself (clients get their
        # token from `wvo-mcp tokens add` and send it as a header).
        issuer = self.jwt.issuer if self.jwt is not None else f"{parts.scheme}://{parts.netloc}"
        return access.HttpAccess(
            auth=AuthSettings(
                issuer_url=AnyHttpUrl(issuer),
                resource_server_url=resource,
                # The verifier checks the audience itself (JWT) or the token is ours.
                validate_token_resource=False,
            ),
            jwt=self.jwt,
        )

    @property
    def metadata_url(self) -> str:
        return str(build_resource_metadata_url(AnyHttpUrl(self.resource_url)))


def quiet_sdk_transport(settings: Settings) -> None:
    """The SDK's transport logs at INFO its manager's start and stop and the end of every
    request it serves statelessly (`Terminating session: None`): noise in a person's terminal
    wherever the root logger is at INFO (the SDK's server sets it so where nothing was
    configured: the demo, the autopilot's gateway), shown only when WVO_LOG_LEVEL or -v asks."""
    level = logging.NOTSET if settings.log_level in ("debug", "info") else logging.WARNING
    for name in SDK_TRANSPORT_LOGGERS:
        logging.getLogger(name).setLevel(level)


def app(settings: Settings, options: Options) -> Starlette:
    """The ASGI app: the SDK's streamable HTTP transport, stateless, over build_server."""
    from wvo_mcp.edge import deliveries, github_webhooks, gitlab_webhooks
    from wvo_mcp.edge.http_claims import EdgeClaims, accepts_of
    from wvo_mcp.edge.server import build_server
    from wvo_mcp.orchestrator import Orchestrator

    options.check()
    quiet_sdk_transport(settings)
    http = options.http_access()
    opened: list[Orchestrator] = []
    admission = Admission(
        Limits(settings.http_max_inflight, settings.http_rate_per_token,
               settings.http_burst_per_token)
    )  # fmt: skip
    # One token check a process, the MCP endpoint's and the dashboard's: one reader of the
    # count of revocations (access.StoreVerifier.watch) and one cache.
    # A token's check waiting on the store leaves held work's places (Admission.lookup).
    waits = store_waits(admission)
    checks = None if http.auth is None else access.verifier(http, lambda: current(), waits)
    server = build_server(
        settings, http=http, opened=opened, admission=health_line(admission), verifier=checks
    )
    built = server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,  # no session lives in a process: any request, any process
        json_response=True,  # nothing streams (module docstring): one write, no SSE framing
        # HostGuard (host_guard.py) checks Host and Origin on every route first; the SDK's own
        # check would repeat it on /mcp. Its Content-Type check on POSTs stays.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        max_request_body_size=MAX_LINE_BYTES,
        host=options.host,
    )
    built.add_exception_handler(Exception, unavailable)
    # Inside the SDK's auth check (a caller without a token never gets its body read, and
    # its rate is counted against its token) and under the body size limit (the SDK's own,
    # which only returns the body it bounded).
    manager = server.session_manager
    claim_tool = server._tool_manager.get_tool("claim_task")
    validate = None if claim_tool is None else claim_tool.fn_metadata.validate_arguments
    endpoint = Endpoint(
        manager.asgi_app, manager.app, lambda: opened[-1] if opened else None, admission,
        EdgeClaims(admission, accepts_of(validate)),
        server.hot,
    )  # fmt: skip
    manager.asgi_app = RequestBodyLimitMiddleware(endpoint, MAX_LINE_BYTES)
    # Outside authentication, inside the cap: a token check the database cannot answer now.
    built.add_middleware(Unavailable)
    # Outside authentication: a flood is refused before any token is looked up.
    built.add_middleware(InFlightCap, admission=admission, crowd=lambda: crowd(opened))
    built.add_middleware(PostOnly)  # outside the cap: a GET never takes a place under it

    def current() -> Orchestrator | None:
        return opened[-1] if opened else None

    for hook in (github_webhooks.HOOK, gitlab_webhooks.HOOK):  # one pipeline: edge/deliveries.py
        built.router.routes.append(deliveries.route(hook, settings, current))
    if not options.dashboard:
        built.add_middleware(HostGuard, settings=options.transport_security())
        return built
    from wvo_mcp.edge.dashboard import routes

    dashboard = routes.Dashboard(current, checks, secure=options.https)
    built.router.routes.extend(dashboard.routes())
    built.add_middleware(
        HostGuard, settings=options.transport_security(), origins=options.origins,
        exact=(routes.PATH,),
    )  # fmt: skip
    built.add_middleware(routes.SecurityHeaders)  # outermost: on the guard's refusals too
    return built


def crowd(opened: "Sequence[Orchestrator]") -> None:
    """Requests crowd in: the process's claims wait, so held work never meets the cap."""
    if opened:
        opened[-1].claims.crowd(time.monotonic())


def health_line(admission: Admission) -> Callable[[], str]:
    """The health report's admission line for the caller: other tokens by name only for
    operators and people (who may list tokens or see who holds what), an agent its own."""

    def line() -> str:
        caller = access.current()
        if caller is None:  # --no-auth: loopback, as trusting as stdio
            return admission.line(time.monotonic())
        names = caller.role in ("operator", "person")
        return admission.line(time.monotonic(), own=caller.name, names=names)

    return line


def refusal_response(refused: Refusal) -> Response:
    """A refusal as a JSON-RPC error (id null: the body is never read), with Retry-After."""
    error = ErrorData(code=refused.code, message=refused.message, data=refused.data)
    body = JSONRPCError(jsonrpc="2.0", id=None, error=error)
    return Response(
        body.model_dump_json(by_alias=True),
        status_code=refused.status,
        media_type="application/json",
        headers={"Retry-After": str(refused.retry_after)},
    )


METHOD_NOT_ALLOWED = Response(
    JSONRPCError(
        jsonrpc="2.0",
        id=None,
        error=ErrorData(
            code=mcp_types.INVALID_REQUEST,
            message=(
                "Method Not Allowed: this server sends no server-initiated messages, so it "
                "opens no event stream (GET) and keeps no session to end (DELETE); send each "
                f"JSON-RPC message as a POST to {PATH}"
            ),
        ),
    ).model_dump_json(by_alias=True, exclude_unset=True),
    status_code=405,
    media_type="application/json",
    headers={"Allow": "POST"},
)


class PostOnly:
    """The MCP endpoint takes POST only. This server never sends a message the client did not
    ask for, so it opens no event stream for a GET, and a stateless transport has no session
    for a DELETE to end: any other method gets 405 with `Allow: POST`, as the spec has such a
    server answer, before admission control counts it or its token is looked up (the answer
    is the same for everyone and tells nothing). An idle GET held open (Claude Code opens one
    after `initialize`) would otherwise keep a place under the in-flight cap for good."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] != "POST":
            await METHOD_NOT_ALLOWED(scope, receive, send)
            return
        await self.app(scope, receive, send)


class InFlightCap:
    """Requests to the MCP endpoint count as in flight from their arrival until answered
    (when their waits' bounds start: orchestrator/arrival.py); one over the cap is refused
    (503) before anything is done with it, its token unchecked. The cap's places are held
    work's: a request leaves them while its token's check waits on the store (it may be a
    claim), and as a claim (http_limits.Admission).
    From a quarter of the cap, the process's claims are refused as busy (`crowd`): held
    work, which keeps leases alive and frees slots, goes first."""

    def __init__(self, app: ASGIApp, admission: Admission, crowd: Callable[[], None]) -> None:
        self.app = app
        self.admission = admission
        self.crowd = crowd

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        refused = self.admission.enter()
        if refused is not None:
            log.info("refused a request: %s", refused.message)
            await refusal_response(refused)(scope, receive, send)
            return
        if self.admission.crowded():
            self.crowd()
        # The call's waits share their bound from now on; it is in held work's places.
        marked, counted = arrival.mark(), COUNTED.set(True)
        try:
            await self.app(scope, receive, send)
        finally:
            arrival.unmark(marked)
            COUNTED.reset(counted)
            self.admission.leave()


class Endpoint:
    """The MCP endpoint behind authentication. A caller over its token's rate is refused
    (429) first. A POST then passes protocol.py's checks before the SDK reads it: a batch, a
    body without `jsonrpc` or `method`, or an `id` that is no string or integer is an Invalid
    Request (-32600, status 400 as the SDK answers a bad body); a request in a protocol
    version not spoken gets -32022 listing both revisions. A JSON-RPC request of the
    handshake era is answered here, in this task: the SDK's stateless path would build a
    transport, two stream pairs, a dispatcher and a task for it, to carry one message each
    way. Anything else (a notification, the 2026-07-28 revision, a body the SDK must refuse
    first: not JSON, a media type it does not take) goes to the SDK.

    An agent token's claim of the handshake era is first put to claim admission here
    (http_claims.py): refused as busy, or held until its time, before anything else is made
    of it, and otherwise served in one of the claims' own in-flight places."""

    def __init__(
        self,
        sdk: ASGIApp,
        server: Server[Any],
        state: Callable[[], object | None],
        admission: Admission,
        claims: "EdgeClaims | None" = None,
        hot: HotCalls | None = None,
    ) -> None:
        self.sdk = sdk
        self.server = server
        self.state = state
        self.admission = admission
        self.claims = claims
        self.hot = hot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.sdk(scope, receive, send)
            return
        user = scope.get("user")
        agent = None
        if isinstance(user, AuthenticatedUser):
            token = user.access_token
            name = token.subject or token.client_id
            said = token.claims or {}
            key = str(said.get("wvo_token_id") or name)
            refused = self.admission.take(key, name, time.monotonic())
            if refused is not None:
                log.info("refused a request: %s", refused.message)
                await refusal_response(refused)(scope, receive, send)
                return
            agent = access.own_agent(token)  # acting as the token's agent only
        if scope["method"] != "POST":
            await self.sdk(scope, receive, send)
            return
        received: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return received.pop(0) if received else await receive()

        request = Request(scope, replay)
        body = b"".join(chunks)
        if len(chunks) > 1:  # the body once, not twice, for as long as the request lives
            rest = [m for m in received if m["type"] != "http.request"]
            received[:] = [{"type": "http.request", "body": body, "more_body": False}, *rest]
        del chunks
        # What an agent's call back early, or its claim, is answered at the edge with.
        version = _handshake_era(request) if agent else None
        left = held_back.PROCESS.left(agent) if agent and version else None
        if left is not None and version:  # come back before its time
            early = held_back.PROCESS.refusal(body, left, version)
            if early is not None:
                await early(scope, replay, send)
                return
        state = self.state()
        admission, edge = getattr(state, "claims", None), self.claims
        if agent and edge and isinstance(admission, ClaimAdmission) and version:
            ident = edge.claim_id(body, agent)
            if ident is not None:  # an agent's claim: claim admission's, before the SDK's
                counted = False

                async def gone() -> None:
                    """Returns once the client has gone (the whole body is read)."""
                    if (await receive())["type"] != "http.disconnect":
                        await anyio.sleep_forever()  # no word of it leaving will come

                try:
                    try:
                        back = await edge.admit(agent, admission, gone, len(body))
                    except edge.Gone:  # no one to answer, and nothing done
                        return
                    counted = back is None
                    if back is not None:
                        await edge.busy(ident, agent, back, version)(scope, replay, send)
                        return
                    await self._serve(request, body, state, scope, replay, send)
                finally:
                    self.admission.claim_done(counted)
                return
        await self._serve(request, body, state, scope, replay, send)

    async def _serve(
        self, request: Request, body: bytes, state: object | None, scope: Scope,
        replay: Receive, send: Send,
    ) -> None:  # fmt: skip
        verdict = _verdict(request, body, self.hot)
        if isinstance(verdict, Call) and state is not None and self.hot is not None:
            version = request.headers.get(MCP_PROTOCOL_VERSION_HEADER) or DEFAULT_NEGOTIATED_VERSION
            connection = self.hot.connection(version)
            answer = await self.hot.answer(verdict, connection, state, request)
            await Response(answer, media_type="application/json")(scope, replay, send)
        elif isinstance(verdict, JSONRPCRequest) and state is not None:
            await (await self._answer(request, verdict, state))(scope, replay, send)
        elif isinstance(verdict, JSONRPCError):
            await Response(
                verdict.model_dump_json(by_alias=True, exclude_unset=True),
                status_code=400,
                media_type="application/json",
            )(scope, replay, send)
        else:
            await self.sdk(scope, replay, send)

    async def _answer(self, request: Request, message: JSONRPCRequest, state: object) -> Response:
        """The SDK's stateless answer to a handshake-era request, without its machinery: a
        born-ready connection at the header's version, one dispatch, one JSON body."""
        version = request.headers.get(MCP_PROTOCOL_VERSION_HEADER) or DEFAULT_NEGOTIATED_VERSION
        connection = Connection.from_envelope(version, None, None)
        metadata = ServerMessageMetadata(request_context=request, can_send_request=False)
        context = OneAnswer(ONE_ANSWER, message.id, metadata)
        reply: JSONRPCResponse | JSONRPCError
        try:
            result = await serve_one(
                self.server, context, message.method, message.params, connection=connection,
                lifespan_state=state,
            )  # fmt: skip
            reply = JSONRPCResponse(jsonrpc="2.0", id=message.id, result=result)
        except Exception as exc:  # the SDK's mapping; anything unmapped is logged, not shown
            reply = JSONRPCError(jsonrpc="2.0", id=message.id, error=modern_error_data(exc))
        return Response(
            reply.model_dump_json(by_alias=True, exclude_unset=True),
            media_type="application/json",
        )


def _handshake_era(request: Request) -> str | None:
    """The handshake-era version of a POST the SDK would take (media types), as `_verdict`
    answers its requests here (an agent's claim is then answered as this module answers it),
    or None."""
    version = request.headers.get(MCP_PROTOCOL_VERSION_HEADER) or DEFAULT_NEGOTIATED_VERSION
    if version not in HANDSHAKE_PROTOCOL_VERSIONS:
        return None
    has_json, _ = check_accept_headers(request)
    media = request.headers.get("content-type", "").split(";")[0].strip()
    return version if has_json and media == "application/json" else None


def _verdict(
    request: Request, body: bytes, hot: HotCalls | None = None
) -> JSONRPCError | JSONRPCRequest | Call | None:
    """The answer protocol.py gives a POST body in place of the SDK's, the request to answer
    without the SDK's transport (Endpoint), a loop call `hot` answers, or None for the SDK
    to handle."""
    has_json, _ = check_accept_headers(request)
    raw_media = request.headers.get("content-type", "").split(";")[0].strip()
    if not has_json or raw_media.lower() != "application/json":
        return None  # the SDK's 406 or 415 comes first
    try:
        found = pydantic_core.from_json(body)
    except ValueError:
        return None  # the SDK's Parse error
    reason = protocol.invalid_request(found)
    version = request.headers.get(MCP_PROTOCOL_VERSION_HEADER)
    handshake_era = version is None or version in HANDSHAKE_PROTOCOL_VERSIONS
    if reason is None and hot is not None and handshake_era and raw_media == "application/json":
        call = hot.take(found)
        if call is not None:
            return call
    message = None
    if reason is None:
        try:
            message = mcp_types.jsonrpc_message_adapter.validate_python(found, by_name=False)
        except ValidationError as exc:
            reason = protocol.validation_reason(exc, found)
    if reason is not None or not isinstance(found, dict):
        given = found.get("id") if isinstance(found, dict) else None
        return protocol.invalid(reason or "no object", protocol.reply_id(given))
    # The SDK serves a handshake version (or none) as the handshake era, any other per
    # request; those it then refuses, it names only the per-request revisions.
    if version is None or version in HANDSHAKE_PROTOCOL_VERSIONS:
        # The exact media type the SDK's transport takes (case and all): else its 415.
        if isinstance(message, JSONRPCRequest) and raw_media == "application/json":
            return message
        return None
    if "method" not in found:
        return None
    if "id" not in found:  # a notification: only the header says its version
        return (
            None
            if version in MODERN_PROTOCOL_VERSIONS
            else protocol.unsupported_version(version, None)
        )
    if find_duplicated_routing_header(request.headers.items()) is not None:
        return None
    return protocol.version_refusal(found, dict(request.headers))


async def unavailable(request: Request, exc: Exception) -> Response:
    """A request that fails outside a tool call (checking its token): 503 with Retry-After
    when the database is busy or cannot be reached, so a client retries and keeps its
    token; anything else is a plain 500 (the traceback goes to the log)."""
    if isinstance(exc, Busy | StoreUnavailable):
        wait = math.ceil(exc.retry_after) if isinstance(exc, Overloaded) else 5
        # Said to a caller not yet known: what the database is, and how it failed, go to
        # the log only (Unavailable logs them); this server's own limits are named.
        why = exc.why if isinstance(exc, http_limits.CheckHeldBack) else "the database is busy"
        if isinstance(exc, StoreUnavailable):
            why = "the database cannot be reached now"
        said = (
            f"{why}, so this request's token could not be checked; nothing was done. Retry "
            f"after {wait} s, or through another server of the same deployment"
        )
        return JSONResponse(
            {"error": "temporarily_unavailable", "error_description": said},
            status_code=503,
            headers={"Retry-After": str(wait)},
        )
    return PlainTextResponse("Internal Server Error", status_code=500)


class Unavailable:
    """A request whose token could not be checked (the database busy or away: Busy,
    StoreUnavailable) is answered 503 here (`unavailable`), on a connection that stays open.
    Starlette's error middleware would answer the same, then raise the error again, and
    uvicorn would log its traceback and close the connection: past capacity, those refusals
    and the client's new connections cost the servers more than the calls they served
    (BENCHMARKS.md, "The real client", issue 73)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answered = False

        async def sending(message: Message) -> None:
            nonlocal answered
            answered = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except (Busy, StoreUnavailable) as exc:
            if answered:  # too late for an answer of its own: the connection must go
                raise
            log.info("refused a request: %s", exc)
            await (await unavailable(Request(scope), exc))(scope, receive, send)


class OneSendPerTurn:
    """An asyncio transport whose writes in one turn of the event loop leave in one send.
    uvicorn writes a response's head and its body apart; on a busy host each send, with the
    wake-up it causes at the other end, cost more than anything else in a `ping`
    (BENCHMARKS.md). The rest is the transport's own."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self.pending.append(bytes(data))

    def flush(self) -> None:
        if self.pending and not self.transport.is_closing():
            self.transport.write(b"".join(self.pending))
        self.pending.clear()

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def one_send_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol (httptools) over a OneSendPerTurn transport, each header's
    value without the whitespace around it, which is no part of it (RFC 9110 5.5; h11 strips
    it, httptools keeps what follows the value)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class Protocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # uvloop's transports are transports without being asyncio.Transport's subclasses.
            wrapped = OneSendPerTurn(cast(asyncio.Transport, transport))
            super().connection_made(cast(asyncio.Transport, wrapped))

        def on_header(self, name: bytes, value: bytes) -> None:
            super().on_header(name, value.strip(b" \t"))

    return Protocol


def listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address `host` names, as uvicorn would bind them, so what
    the server prints is reachable when it is printed; a port another process holds is one
    line saying what to do (uvicorn's own bind logs it after the start-up lines, exit 3)."""
    bound: list[socket.socket] = []
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        for sock in bound:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ValidationFailed(
                f"port {port} on {host} is in use: pass --port N for a free one, or stop what "
                "listens there"
            ) from None
        why = exc.strerror or str(exc)
        raise ValidationFailed(f"cannot listen on {host} port {port}: {why}") from None
    return bound


def serve(settings: Settings, options: Options, ready: Callable[[], None] = lambda: None) -> None:
    """Serve until SIGINT or SIGTERM (uvicorn's own handling: open requests get
    GRACE_SECONDS, then the server's cleanup runs); `ready` runs once the port listens."""
    import uvicorn

    starlette_app = app(settings, options)
    host = options.host or "0.0.0.0"
    if not is_loopback(options.host) and not options.tls:
        log.warning(
            "serving plain HTTP on %s: bearer tokens cross the network readable unless a "
            "reverse proxy in front terminates TLS (or pass --certfile and --keyfile)",
            options.host,
        )
    level = settings.log_level or "warning"
    config = uvicorn.Config(
        starlette_app,
        host=host,
        port=options.port,
        ssl_certfile=str(options.certfile) if options.certfile else None,
        ssl_keyfile=str(options.keyfile) if options.keyfile else None,
        log_level=level,
        access_log=level in ("debug", "info"),
        timeout_graceful_shutdown=GRACE_SECONDS,
        timeout_keep_alive=KEEP_ALIVE_S,
        server_header=False,
        log_config=None,  # ours: stderr, as set up by the CLI
        http=one_send_protocol(),
        loop="auto",  # uvloop (a dependency), or asyncio's own where uvloop is not built
    )
    log.info(
        "wvo-mcp serving MCP at %s (auth: %s)",
        options.resource_url,
        "off (loopback)" if options.no_auth else "jwt" if options.jwt else "bearer tokens",
    )
    server = uvicorn.Server(config)
    # A stop that comes once the port listens but before uvicorn sets its own handlers (as it
    # starts serving) is uvicorn's all the same: a client may stop a server it has just reached.
    previous = {signum: signal.signal(signum, server.handle_exit) for signum in STOPS}
    try:
        sockets = listen(host, options.port)
        ready()
        server.run(sockets=sockets)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
