"""Who is calling over HTTP and what they may do: bearer tokens become callers with roles.

Who is calling over HTTP, and what they may do: bearer tokens become callers (the SDK's
token-verifier hook), a caller's role decides which tools it sees and may call (the rule
itself is `toolset.role_allows`), and an agent's id comes from its token, not its arguments.

Over stdio none of this runs: a stdio server is started by its one agent (identity.OneAgent).

Carries out `rules/identity.py`.
"""

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, cast

import anyio
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult, TextContent
from pydantic import BaseModel

from wvo_mcp import timeutil
from wvo_mcp.edge import toolset
from wvo_mcp.edge.http_limits import CheckHeldBack
from wvo_mcp.edge.toolset import WORKER_MOVES
from wvo_mcp.errors import Overloaded, ValidationFailed, WvoError
from wvo_mcp.orchestrator import Orchestrator, arrival
from wvo_mcp.rules import identity
from wvo_mcp.rules.claim_admission import HELD_WAIT_S
from wvo_mcp.services import agents, bearer_tokens, usage

log = logging.getLogger(__name__)

ROLE_CLAIM = "wvo_role"  # an external issuer's JWT names the role here ...
NAME_CLAIM = "wvo_name"  # ... and the name here (else `sub`)
PROVIDER_CLAIM = "wvo_provider"  # ... and an agent's provider here, if it is bound to one


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its role and the name it acts under (`person:…` for people);
    a run token's caller (an autopilot worker or reviewer) also has its scope."""

    role: str
    name: str
    token_id: str | None = None
    scope: bearer_tokens.Scope | None = None
    provider: str | None = None  # an agent token's, when made for one (`tokens add --provider`)


@dataclass(frozen=True)
class Jwt:
    """An external OAuth issuer whose JWTs (signed, checked against its JWKS) are accepted."""

    issuer: str
    jwks_url: str
    audience: str


@dataclass(frozen=True)
class HttpAccess:
    """How an HTTP server authenticates: `auth` None is `--no-auth` (loopback only); with
    `jwt`, the external issuer's tokens instead of `wvo-mcp tokens`."""

    auth: AuthSettings | None
    jwt: Jwt | None = None


def _access_token(
    caller: Caller, secret: str, expires_at: int | None = None, **extra: Any
) -> AccessToken:
    scope = None if caller.scope is None else caller.scope.to_json()
    return AccessToken(
        token=secret,
        client_id=caller.name,
        subject=caller.name,
        scopes=[caller.role],
        expires_at=expires_at,
        claims={
            "wvo_role": caller.role,
            "wvo_token_id": caller.token_id,
            "wvo_scope": scope,
            "wvo_provider": caller.provider,
            **extra,
        },
    )


def current() -> Caller | None:
    """The caller of the request being served (None without authentication)."""
    token = get_access_token()
    if token is None:
        return None
    claims = token.claims or {}
    return Caller(role=str(claims.get("wvo_role", "")), name=token.subject or token.client_id,
                  token_id=claims.get("wvo_token_id"),
                  scope=bearer_tokens.Scope.from_json(claims.get("wvo_scope")),
                  provider=claims.get("wvo_provider"))  # fmt: skip


def own_agent(token: AccessToken | None) -> str | None:
    """The agent `token` acts as on its own behalf: an agent token's, not a run token's
    (its scope's), an operator's, a person's, nor --no-auth's (None). Held work is held
    back (held_back.py) and claims gated (http_claims.py) at the edge for this agent only."""
    if token is None:
        return None
    said = token.claims or {}
    if said.get("wvo_role") != "agent" or said.get("wvo_scope"):
        return None
    return token.subject or token.client_id


# A token found live is trusted without asking the database again until it expires, for at
# most TOKEN_RECHECK_SECONDS, and only while no token anywhere is revoked: each process asks
# how many tokens were ever revoked once a TOKEN_CACHE_SECONDS, in one read of its own beside
# the requests (StoreVerifier.watch), and forgets every token when the count moves. A request
# never reads the count: it uses the last answer, which is trusted for COUNT_TRUSTED_SECONDS
# from when its read began. Past that (the database starved, or the process idle until now)
# a request waits for the next read, within held work's bound, never making one of its own,
# and is answered 503 with Retry-After if it does not come: a count not read is never taken
# as unchanged, so a token revoked at t is served until t + COUNT_TRUSTED_SECONDS at most.
TOKEN_CACHE_SECONDS = 1.0
COUNT_TRUSTED_SECONDS = 2 * TOKEN_CACHE_SECONDS
RETRY_READ_SECONDS = 0.1  # a read that failed is made again this soon (if requests come)
# The reader's wait for a connection: the rest of the count's trust, not a request's bound.
# Past capacity requests queue for connections up to their own bound (HELD_WAIT_S), so the
# reader, bounded by theirs, found none and every request was refused 503 until it did
# (BENCHMARKS.md, "Impatient clients past capacity", issue 73).
COUNT_WAIT_S = COUNT_TRUSTED_SECONDS - TOKEN_CACHE_SECONDS
TOKEN_RECHECK_SECONDS = 300.0
TOKEN_CACHE_SIZE = 10_000
USED_SECONDS = bearer_tokens.USED_RESOLUTION.total_seconds()
# Token lookups (and their last-use writes) in the store at once, a process's: half a
# PostgreSQL server's pool (store/postgres.POOL_SIZE), so a burst of tokens not seen before
# (a fleet starting, tokens rotated) never takes every connection from held work.
LOOKUPS_AT_ONCE = 4
Waits = Callable[[], AbstractAsyncContextManager[None]]


@dataclass
class _Seen:
    access: AccessToken
    token_id: str | None
    found_at: float  # time.monotonic()
    used_at: float

    def fresh(self, now: float) -> bool:
        expires = self.access.expires_at
        return now - self.found_at < TOKEN_RECHECK_SECONDS and (
            expires is None or expires > time.time()
        )


class StoreVerifier(TokenVerifier):
    """Tokens made by `wvo-mcp tokens add`, looked up by digest, then kept while no token is
    revoked (TOKEN_CACHE_SECONDS), the count of revocations read by `watch`. A token's
    lookup (or its last use's write) is made inside `waits` (over HTTP, out of held work's
    places: http_limits.store_waits), LOOKUPS_AT_ONCE at a time."""

    def __init__(
        self, orchestrator: Callable[[], Orchestrator | None],
        waits: Waits = contextlib.nullcontext,
    ) -> None:  # fmt: skip
        self.orchestrator = orchestrator
        self.waits = waits
        self._turns = anyio.Semaphore(LOOKUPS_AT_ONCE)
        self._live: dict[str, _Seen] = {}
        self._revoked: int | None = None  # tokens ever revoked, when last read
        self._revoked_read = -math.inf  # when the read that answered it began
        self._wanted = anyio.Event()  # a request found the count due
        self._read = anyio.Event()  # the read under way came back (or failed)
        self._watched = False
        self._asked = -math.inf  # a verifier on its own: when it last read the count
        self.reads = 0  # the count's reads made (health and tests)

    async def watch(self, orchestrator: Orchestrator) -> None:
        """The process's one reader of the count: once a TOKEN_CACHE_SECONDS while requests
        come, never on a request's path; run beside the server (edge/server.py's lifespan)."""
        self._watched = True
        try:
            while True:
                await self._wanted.wait()
                self._wanted = anyio.Event()
                began, pause = time.monotonic(), TOKEN_CACHE_SECONDS
                try:
                    self._counted(await orchestrator.token_revocations(COUNT_WAIT_S), began)
                except Exception as exc:  # Busy, StoreUnavailable: the next read will tell
                    log.info("the count of revoked tokens was not read: %s", exc)
                    pause = RETRY_READ_SECONDS  # soon again: the cache's trust runs out
                finally:
                    self._read.set()
                    self._read = anyio.Event()
                await anyio.sleep(max(0.0, pause - (time.monotonic() - began)))
        finally:
            self._watched = False

    def _counted(self, revoked: int, began: float) -> None:
        self.reads += 1
        if revoked != self._revoked:
            self._live.clear()
            self._revoked = revoked
        self._revoked_read = max(self._revoked_read, began)

    async def _trusted(self, orchestrator: Orchestrator) -> None:
        """The count is recent enough to trust the cache, else Overloaded (answered 503)."""
        now = time.monotonic()
        if not self._watched:  # no reader beside the server (a verifier on its own): read here
            if now - self._asked >= TOKEN_CACHE_SECONDS:
                self._asked = now
                self._counted(await orchestrator.token_revocations(), now)
        elif now - self._revoked_read >= TOKEN_CACHE_SECONDS:
            self._wanted.set()
            if now - self._revoked_read >= COUNT_TRUSTED_SECONDS:  # wait for it, bounded,
                # as a lookup waits: out of held work's places.
                async with self.waits():
                    with anyio.move_on_after(arrival.left(HELD_WAIT_S)):
                        await self._read.wait()
        if time.monotonic() - self._revoked_read >= COUNT_TRUSTED_SECONDS:
            raise CheckHeldBack("the count of revoked tokens was not read lately")

    async def verify_token(self, token: str) -> AccessToken | None:
        orchestrator = self.orchestrator()
        if orchestrator is None:
            return None
        # A database that is busy or gone raises (Busy, StoreUnavailable): the request is
        # answered 503 (http_server.unavailable), never 401, so a client keeps its token.
        await self._trusted(orchestrator)
        now = time.monotonic()
        seen = self._live.get(token)
        if seen is not None and seen.fresh(now):
            if seen.token_id is not None and now - seen.used_at >= USED_SECONDS:
                seen.used_at = now
                # Bookkeeping never refuses, nor keeps waiting, the call it comes with.
                with contextlib.suppress(Overloaded):  # in no place: it waits for nothing
                    async with self._turn(wait=False):
                        await orchestrator.token_used(seen.token_id)
            return seen.access
        asked_with = self._revoked
        async with self._store():
            found = await self._look_up(orchestrator, token)
        if found is None:
            self._live.pop(token, None)
        elif self._revoked == asked_with:  # else a revocation came meanwhile: ask next time
            if len(self._live) >= TOKEN_CACHE_SIZE:
                self._live.clear()  # only live tokens get here: a full cache is rare
            token_id = (found.claims or {}).get("wvo_token_id")
            self._live[token] = _Seen(found, token_id, now, now)
        return found

    @contextlib.asynccontextmanager
    async def _store(self) -> AsyncIterator[None]:
        """In `waits` (out of held work's places), one of the LOOKUPS_AT_ONCE turns at the
        store, waited for within held work's bound, else Overloaded (answered 503)."""
        async with self.waits(), self._turn(wait=True):
            yield

    @contextlib.asynccontextmanager
    async def _turn(self, wait: bool) -> AsyncIterator[None]:
        """One of the LOOKUPS_AT_ONCE turns, waited for within held work's bound (or not at
        all), else Overloaded."""
        taken = False
        if not wait:
            with contextlib.suppress(anyio.WouldBlock):
                self._turns.acquire_nowait()
                taken = True
        else:
            with anyio.move_on_after(arrival.left(HELD_WAIT_S)):
                await self._turns.acquire()
                taken = True
        if not taken:
            raise CheckHeldBack("no turn for a token's lookup came within its bound")
        try:
            yield
        finally:
            self._turns.release()

    async def _look_up(self, orchestrator: Orchestrator, token: str) -> AccessToken | None:
        found = await orchestrator.token_find(token)
        if found is None:
            return None
        expires = (
            None
            if found.expires_at is None
            else int(timeutil.from_text(found.expires_at).timestamp())
        )
        caller = Caller(found.role, found.name, found.id, found.scope, found.provider)
        return _access_token(caller, token, expires)


class JwtVerifier(TokenVerifier):
    """JWTs of an external OAuth issuer: signature (keys from its JWKS URL), issuer,
    audience and expiry checked; the role from the `wvo_role` claim, the name from
    `wvo_name` (else `sub`), with the same rules as `wvo-mcp tokens add`."""

    def __init__(self, config: Jwt) -> None:
        import jwt

        self.config = config
        self.keys = jwt.PyJWKClient(config.jwks_url, cache_keys=True, lifespan=300)

    async def verify_token(self, token: str) -> AccessToken | None:
        return await anyio.to_thread.run_sync(self._verify, token)

    def _verify(self, token: str) -> AccessToken | None:
        import jwt

        try:
            key = self.keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"],
                audience=self.config.audience,
                issuer=self.config.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
            role = str(claims.get(ROLE_CLAIM, ""))
            name = bearer_tokens.actor_name(role, str(claims.get(NAME_CLAIM) or claims["sub"]))
        except (jwt.PyJWTError, WvoError, KeyError) as exc:
            log.info("refused a JWT: %s", exc)
            return None
        provider = claims.get(PROVIDER_CLAIM)
        caller = Caller(role, name, provider=provider if isinstance(provider, str) else None)
        return _access_token(caller, token, int(claims["exp"]), iss=claims["iss"])


def verifier(
    access: HttpAccess, orchestrator: Callable[[], Orchestrator | None],
    waits: Waits = contextlib.nullcontext,
) -> TokenVerifier:  # fmt: skip
    """The token check for `access`; `waits`: what a store token's check waiting on the
    store enters (StoreVerifier)."""
    if access.jwt is not None:
        return JwtVerifier(access.jwt)
    return StoreVerifier(orchestrator, waits)


def acting_agent(given: str | None, default: Callable[[], str]) -> str:
    """The agent id a call acts under over HTTP: the token's name. An agent_id argument
    naming another agent is refused. Without authentication (loopback `--no-auth`), the
    argument, else the default."""
    caller = current()
    if caller is None:
        return identity.check_agent_id(given) if given is not None else default()
    if caller.role == "person":
        raise ValidationFailed(
            f"{caller.name} is a person: a person token does not act as an agent"
        )
    if given is not None and given != caller.name:
        raise ValidationFailed(
            f"this token acts as agent {caller.name!r}; it cannot act as {given!r} (WIP "
            f"limits and the audit trail count per agent). Omit agent_id or pass "
            f"{caller.name!r}; another agent needs its own token"
        )
    return caller.name


def reporter() -> usage.Reporter:
    """What this caller's usage reports may charge (docs/security.md, usage-trust rule): a
    run token's are only noted on its own task; an agent token charges only its own
    provider; stdio's one agent, `--no-auth` and an operator token, any provider."""
    caller = current()
    if caller is None:
        return usage.ANYONE
    if caller.scope is not None:
        return usage.Reporter(run=caller.scope)
    return usage.Reporter(own_provider=caller.role == "agent", provider=caller.provider)


def bound() -> agents.Bound | None:
    """Whether this caller may move its agent to another provider (agent_register,
    claim_task): an agent token may not (docs/http.md); stdio's one agent, `--no-auth` and
    an operator token may."""
    caller = current()
    if caller is None or caller.role != "agent":
        return None
    if caller.scope is not None:  # an autopilot run's: the provider it was launched on
        return agents.Bound(caller.scope.provider)
    return agents.Bound(caller.provider)


def person() -> str:
    """The person a person-only tool acts for, as `person:<name>` (the CLI's form)."""
    caller = current()
    if caller is None or caller.role != "person":
        raise ValidationFailed("this needs a person token; nothing was changed")
    return identity.person(caller.name)


class RoleFilter:
    """Server middleware: tools/list shows a caller only the tools its role may call, and
    tools/call of any other tool is refused before its arguments are even read, as a tool
    error that says which token is needed. `anonymous` is the role of unauthenticated
    callers (loopback `--no-auth`); None refuses them."""

    def __init__(self, anonymous: str | None) -> None:
        self.anonymous = anonymous

    def role(self) -> str:
        caller = current()
        if caller is not None:
            return caller.role
        return self.anonymous or ""

    def refusal(self, name: str, arguments: object) -> str | None:
        """Why this caller may not make this call, or None: its role's tools (toolset), and
        for a run token its scope's tools, on its own task only."""
        caller = current()
        scope = None if caller is None else caller.scope
        if scope is None:
            role = self.role()
            return None if toolset.role_allows(role, name) else toolset.role_refusal(role, name)
        if not toolset.scope_allows(scope.purpose, name):
            return toolset.scope_refusal(scope.purpose, scope.task, name)
        given = arguments if isinstance(arguments, dict) else {}
        task = given.get("task_id")
        if scope.task and task is not None and task != scope.task:
            return (
                f"this token works on task {scope.task!r} only, not {task!r}; pass "
                f"task_id {scope.task!r}. Nothing was changed"
            )
        claims = name == "plan_update" and given.get("claim_next")
        if claims and not toolset.scope_allows(scope.purpose, "claim_task"):
            return (
                f"this token works on task {scope.task!r} only and claims nothing: call "
                "plan_update without claim_next. Nothing was changed"
            )
        status = given.get("status")
        if name == "plan_update" and scope.purpose == "worker" and status not in WORKER_MOVES:
            return (
                f"an autopilot worker moves its task to {', '.join(WORKER_MOVES)} only (submit "
                f"with needs_review), not {str(status)[:40]!r}. Nothing was changed"
            )
        return None

    def unreadable(self, uri: str) -> str | None:
        """Why a run token may not read this resource, or None: it reads its own task and
        the directives, not the queue, the context or other tasks."""
        caller = current()
        scope = None if caller is None else caller.scope
        if scope is None or uri.startswith("wvo://directives/"):
            return None
        if scope.task and uri == f"wvo://tasks/{scope.task}":
            return None
        return (
            f"this token is an autopilot {scope.purpose}'s, for task {scope.task!r}: it may "
            f"read wvo://tasks/{scope.task} and wvo://directives/NAME, not {uri[:200]!r}"
        )

    def shows(self, name: str) -> bool:
        caller = current()
        if caller is not None and caller.scope is not None:
            return toolset.scope_allows(caller.scope.purpose, name)
        return toolset.role_allows(self.role(), name)

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method == "tools/call":
            params = ctx.params or {}
            name = params.get("name")
            refused = self.refusal(name, params.get("arguments")) if isinstance(name, str) else None
            if refused is not None:
                text = f"Error executing tool {name}: {refused}"
                return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
            return await call_next(ctx)
        if ctx.method == "resources/read":
            refused = self.unreadable(str((ctx.params or {}).get("uri", "")))
            if refused is not None:
                raise MCPError(INVALID_PARAMS, refused)
            return await call_next(ctx)
        if ctx.method != "tools/list":
            return await call_next(ctx)
        result = await call_next(ctx)
        if isinstance(result, BaseModel) and isinstance(getattr(result, "tools", None), list):
            shown = [t for t in cast(Any, result).tools if self.shows(t.name)]
            return result.model_copy(update={"tools": shown})
        if isinstance(result, dict) and isinstance(result.get("tools"), list):
            shown = [t for t in result["tools"] if self.shows(str(t.get("name")))]
            return {**result, "tools": shown}
        return result
