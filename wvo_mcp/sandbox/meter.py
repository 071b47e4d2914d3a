"""The meter: a run's model API traffic, read where it passes the trusted side.

A sandboxed Claude Code worker's base URL (ANTHROPIC_BASE_URL) is this run's meter, a plain
HTTP/1.1 reverse proxy on the host's loopback that the sandbox reaches through its egress
proxy (the model API itself is not among its endpoints, so nothing goes around it). It passes
on only the endpoints Claude Code calls (ENDPOINTS, in origin form under the base URL's path)
to the real API (the person's base URL, else the public one; TLS for https), the Host named
anew; every other request is refused and named in the run log. Each response comes back
unchanged, its `usage` charged before its bytes reach the CLI: a stream's `message_start` as
it passes, its output as it streams (the figure `message_delta` gives, once it does). A
response cut, cancelled or timed out is charged what had passed; one whose usage cannot be
read, at the ceiling of the request (rules/billing.py). A process the worker starts can
write to its CLI's output, never to this (docs/security.md, "What a run is charged"). h11
frames both sides (httpx's own HTTP/1.1 engine), so a hostile or odd message is refused as
h11 refuses it, never half-parsed here.

Carries out `rules/wire.py`."""

import json
import logging
import ssl
import urllib.parse
from dataclasses import dataclass, field

import anyio
import anyio.abc
import h11

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules import billing, wire

log = logging.getLogger(__name__)

HEAD_BYTES = 64 * 1024  # of a request's or a response's head, however it arrives
JSON_BYTES = 8 * 1024 * 1024  # of a JSON body read for its usage (the rest passes unread)
LINE_BYTES = 1024 * 1024  # of one event-stream line read for its usage
CONNECT_TIMEOUT_S = 30.0
# What an API sent before its CLI went may still be on its way: read (and charged) for this
# long once the run is over.
DRAIN_S = 0.5
READ_BYTES = 65_536
REFUSALS_KEPT = 20  # the first refusals' reasons, for the run log
# Hop by hop: never passed on (RFC 9110 7.6.1); h11 frames each side itself.
HOP = {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization", b"te",
       b"trailer", b"upgrade", b"host", b"accept-encoding"}  # fmt: skip


@dataclass
class Tally:
    """What the meter charged one run: tokens in (cached or not) and out. Each response is
    charged as it passes, so the figures hold whenever they are read."""

    input_tokens: int = 0
    output_tokens: int = 0
    responses: int = 0  # ended, read or not
    unread: int = 0  # responses whose usage could not be read: charged at their ceiling
    refused: int = 0  # requests the meter did not pass on
    reasons: list[str] = field(default_factory=list)  # the first REFUSALS_KEPT of them

    def refuse(self, why: str) -> None:
        self.refused += 1
        if len(self.reasons) < REFUSALS_KEPT:
            self.reasons.append(why)


@dataclass
class Reading:
    """Reads one response body for its usage, as it passes (pure: fed bytes), in its API's
    wire format (rules/wire.py)."""

    stream: bool  # text/event-stream, else a JSON body
    name: wire.Name = "anthropic"
    usage: wire.Usage = field(default_factory=wire.Usage)
    _held: bytearray = field(default_factory=bytearray)
    _over: bool = False  # a JSON body or a line too long to read: passed, not counted

    def feed(self, data: bytes) -> None:
        if self._over:
            return
        self._held += data
        if not self.stream:
            self._over = len(self._held) > JSON_BYTES
            return
        *lines, rest = bytes(self._held).split(b"\n")
        self._held = bytearray(rest)
        self._over = len(rest) > LINE_BYTES
        for line in lines:
            if line.startswith(b"data:"):
                self._event(line[5:].strip())

    def _event(self, data: bytes) -> None:
        try:
            event = json.loads(data)
        except ValueError:  # `[DONE]`, or not JSON
            return
        wire.read_event(self.name, event, self.usage)

    def figures(self) -> tuple[int, int]:
        """(input, output) tokens to charge so far: what the API said, and while a stream has
        not said its output, the most its deltas can have been."""
        used = self.usage
        out = used.output_tokens if used.said_output else max(used.output_tokens, used.streamed)
        return used.input_tokens, out

    def done(self) -> bool:
        """Read to its end into `usage`; False when the usage could not be read."""
        if self._over:
            return False
        if not self.stream:
            try:
                body = json.loads(self._held)
            except ValueError:
                return False
            wire.read_body(self.name, body, self.usage)
        elif self._held.startswith(b"data:"):
            self._event(bytes(self._held[5:]).strip())
        return True


def refusal(api: wire.Api, method: bytes, target: bytes, base: str) -> str | None:
    """Why a request of `method` for `target` is not passed on to a model API whose base URL
    has the path `base`, or None: only the API's endpoints, in origin form, under `base`."""
    if wire.endpoint(api, method, target, base)[0]:
        return None
    shown = target[:120].decode("ascii", "replace")
    return (f"{method.decode('ascii', 'replace')} {shown!r} is not passed on (only "
            f"{wire.known(api, base)})")  # fmt: skip


def _head_size(message: h11.Request | h11.Response) -> int:
    line = len(message.target) if isinstance(message, h11.Request) else len(message.reason)
    return line + sum(len(k) + len(v) + 4 for k, v in message.headers)


@dataclass(frozen=True)
class Upstream:
    """Where requests go on to: the real model API."""

    scheme: str
    host: str
    port: int
    path: str = ""  # the base URL's, which the CLI's requests are under

    @classmethod
    def of(cls, url: str) -> "Upstream":
        parts = urllib.parse.urlsplit(url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            port = 0
        if parts.scheme not in ("http", "https") or not parts.hostname or not port:
            raise ValidationFailed(
                f"model API {url!r} (ANTHROPIC_BASE_URL, or the provider's public API): give "
                "an http(s) URL such as https://api.anthropic.com"
            )
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def authority(self) -> bytes:
        default = 443 if self.scheme == "https" else 80
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return (shown if self.port == default else f"{shown}:{self.port}").encode()


class Meter:
    """One run's meter: serve() listens on the host's loopback until cancelled."""

    def __init__(self, upstream: Upstream, api: wire.Api = "anthropic") -> None:
        self.upstream = upstream
        self.api: wire.Api = api
        self.tally = Tally()
        self.port = 0
        self._live: set[anyio.CancelScope] = set()  # each connection's
        self._drained: anyio.Event | None = None
        self._tls: ssl.SSLContext | None = None  # made once: loading the CA store is 45 ms

    async def close(self) -> Tally:
        """Ends every exchange still open, once it has read what its API had sent (DRAIN_S),
        each response charged as cut, and gives the tally: what the run is charged once its
        CLI is gone. A response still streaming is not otherwise settled: nothing tells the
        meter its CLI went while the API is silent (autopilot/worker_process.py calls this)."""
        if self._live:
            self._drained = anyio.Event()
            until = anyio.current_time() + DRAIN_S
            for scope in list(self._live):
                scope.deadline = min(scope.deadline, until)
            await self._drained.wait()
        return self.tally

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener:
            task_status.started()
            await listener.serve(self._connection)

    async def _connection(self, client: anyio.abc.SocketStream) -> None:
        with anyio.CancelScope() as scope:
            self._live.add(scope)
            try:
                async with client:
                    await self._relay(client)
            except (OSError, anyio.BrokenResourceError, anyio.EndOfStream, h11.ProtocolError,
                    ssl.SSLError, TimeoutError) as exc:  # fmt: skip
                log.info("meter: a connection ended: %s", exc)
            finally:
                self._live.discard(scope)
                if not self._live and self._drained is not None:
                    self._drained.set()

    async def _relay(self, client: anyio.abc.SocketStream) -> None:
        inside = h11.Connection(h11.SERVER, max_incomplete_event_size=HEAD_BYTES)
        upstream: anyio.abc.ByteStream | None = None
        outside: h11.Connection | None = None
        try:
            while True:
                request = await _next(inside, client)
                if not isinstance(request, h11.Request):
                    return
                why = refusal(self.api, request.method, request.target, self.upstream.path)
                if why is None and _head_size(request) > HEAD_BYTES:
                    why = f"a request head over {HEAD_BYTES} bytes is not passed on"
                if why is not None:
                    self.tally.refuse(why)
                    log.warning("meter: %s", why)
                    await _refuse(inside, client, why, 403)
                    return
                if upstream is None or outside is None or outside.our_state is not h11.IDLE:
                    if upstream is not None:
                        await upstream.aclose()
                    try:
                        upstream = await self._open()
                    except (OSError, TimeoutError, ssl.SSLError) as exc:
                        upstream = None
                        await _refuse(inside, client, f"the model API cannot be reached: {exc}")
                        return
                    outside = h11.Connection(h11.CLIENT, max_incomplete_event_size=HEAD_BYTES)
                headers = [(k, v) for k, v in request.headers if k.lower() not in HOP]
                headers += [(b"host", self.upstream.authority), (b"accept-encoding", b"identity")]
                await _send(outside, upstream, h11.Request(
                    method=request.method, target=request.target, headers=headers))  # fmt: skip
                name = wire.endpoint(self.api, request.method, request.target,
                                     self.upstream.path)[1]  # fmt: skip
                asked = wire.Request(name, limit=JSON_BYTES)
                while True:  # the request's body
                    event = await _next(inside, client)
                    if isinstance(event, h11.Data):
                        asked.feed(event.data)
                        await _send(outside, upstream, h11.Data(data=event.data))
                    elif isinstance(event, h11.EndOfMessage):
                        await _send(outside, upstream, h11.EndOfMessage())
                        break
                    else:
                        return
                await self._response(inside, client, outside, upstream, name, asked)
                if inside.states != {h11.CLIENT: h11.DONE, h11.SERVER: h11.DONE}:
                    return  # the CLI's connection ends with this answer
                inside.start_next_cycle()
                if outside.states == {h11.CLIENT: h11.DONE, h11.SERVER: h11.DONE}:
                    outside.start_next_cycle()
                else:  # the API's ends with it (an answer read to its close): a new one next
                    await upstream.aclose()
                    upstream = outside = None
        finally:
            if upstream is not None:
                await upstream.aclose()

    async def _response(
        self,
        inside: h11.Connection,
        client: anyio.abc.SocketStream,
        outside: h11.Connection,
        upstream: anyio.abc.ByteStream,
        name: wire.Name | None,
        asked: wire.Request,
    ) -> None:
        """The answer passed back to the CLI, charged as its bytes pass (in wire format
        `name`; None: an endpoint nothing is billed for)."""
        response = await _next(outside, upstream)
        while isinstance(response, h11.InformationalResponse):
            response = await _next(outside, upstream)
        if not isinstance(response, h11.Response):
            raise h11.RemoteProtocolError("the model API ended without a response")
        if _head_size(response) > HEAD_BYTES:
            raise h11.RemoteProtocolError(f"the model API's head is over {HEAD_BYTES} bytes")
        kind = dict(response.headers).get(b"content-type", b"").lower()
        reading = Reading(stream=kind.startswith(b"text/event-stream"), name=name or "anthropic")
        billed = name is not None and response.status_code < 300
        charged = (0, 0)  # what the tally holds of this response so far
        ended = False
        headers = [(k, v) for k, v in response.headers if k.lower() not in HOP]
        try:
            head = h11.Response(
                status_code=response.status_code, headers=headers, reason=response.reason
            )
            await _send(inside, client, head)
            while True:
                event = await _next(outside, upstream)
                if isinstance(event, h11.Data):
                    reading.feed(event.data)
                    if billed:  # before the CLI has a byte of it
                        charged = self._charge(charged, reading.figures())
                    await _send(inside, client, h11.Data(data=event.data))
                elif isinstance(event, h11.EndOfMessage):
                    ended = True
                    await _send(inside, client, h11.EndOfMessage())
                    break
                else:
                    raise h11.RemoteProtocolError("the model API ended its response early")
        finally:  # ended, cut, cancelled or timed out alike
            if billed:
                self._settle(charged, reading, asked, ended)

    def _charge(self, charged: tuple[int, int], now: tuple[int, int]) -> tuple[int, int]:
        """The tally moved from what a response was charged to what it is charged `now`."""
        self.tally.input_tokens += now[0] - charged[0]
        self.tally.output_tokens += now[1] - charged[1]
        return now

    def _settle(
        self, charged: tuple[int, int], reading: Reading, asked: wire.Request, ended: bool
    ) -> None:
        """A response's last charge: as read to its end; a stream cut short, what passed,
        and for what it never said, its bound (its request's input bound, its deltas' of
        output); a body whose usage cannot be read, the ceiling of its request."""
        tally = self.tally
        tally.responses += 1
        if reading.done() and (ended or reading.stream):
            used = reading.usage
            found, out = reading.figures()
            # An answer's early word on its input (Anthropic's `message_start`, a Gemini
            # chunk's) is all of it only for a request of inline content: a server tool's
            # results, a fetched file, add to it as it answers, until its output is said.
            if not used.said_input or not (used.said_output or asked.inline()):
                found = max(found, asked.max_input())
            if not used.said_output and not reading.stream:
                out = max(out, asked.max_output())
            self._charge(charged, (found, out))
            return
        tally.unread += 1
        ceiling = (billing.CEILING_INPUT, asked.max_output())
        self._charge(charged, (max(charged[0], ceiling[0]), max(charged[1], ceiling[1])))
        if tally.unread == 1:
            log.warning("meter: a response's usage could not be read; charged at its ceiling")

    async def _open(self) -> anyio.abc.ByteStream:
        up = self.upstream
        with anyio.fail_after(CONNECT_TIMEOUT_S):
            if up.scheme == "https":
                if self._tls is None:
                    self._tls = ssl.create_default_context()
                return await anyio.connect_tcp(
                    up.host, up.port, tls=True, ssl_context=self._tls, tls_hostname=up.host
                )
            return await anyio.connect_tcp(up.host, up.port)


async def _next(connection: h11.Connection, stream: anyio.abc.ByteStream) -> object:
    """The next event of `connection`, reading `stream` as it needs."""
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive(READ_BYTES)
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                data = b""
            connection.receive_data(data)
            continue
        return event


async def _refuse(
    inside: h11.Connection, client: anyio.abc.ByteStream, why: str, status: int = 502
) -> None:
    """An answer of `status` for the CLI, which then says why in its own words."""
    body = (why + "\n").encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"),
               (b"content-length", str(len(body)).encode()), (b"connection", b"close")]  # fmt: skip
    await _send(inside, client, h11.Response(status_code=status, headers=headers))
    await _send(inside, client, h11.Data(data=body))
    await _send(inside, client, h11.EndOfMessage())


Sent = h11.Request | h11.Response | h11.Data | h11.EndOfMessage


async def _send(connection: h11.Connection, stream: anyio.abc.ByteStream, event: Sent) -> None:
    data = connection.send(event)
    if data:
        await stream.send(data)
