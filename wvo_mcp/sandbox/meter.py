"""The meter: a run's model API traffic, read where it passes the trusted side.

A sandboxed Claude Code worker's base URL (ANTHROPIC_BASE_URL) is this run's meter, a plain
HTTP/1.1 reverse proxy on the host's loopback that the sandbox reaches through its egress
proxy (the model API itself is not among its endpoints, so nothing goes around it). Each
request goes on to the real API (the person's base URL, else the public one; TLS for https)
as it came, the Host named anew; each response comes back unchanged, and its `usage` is
counted on the way: the Messages API's JSON body, or its stream's `message_start` and
`message_delta` events. What the run is charged is at least what this counted: a process the
worker starts can write to its CLI's output, never to this (docs/security.md, "What a run is
charged"). h11 frames both sides (httpx's own HTTP/1.1 engine), so a hostile or odd message
is refused as h11 refuses it, never half-parsed here."""

import json
import logging
import ssl
import urllib.parse
from dataclasses import dataclass, field

import anyio
import anyio.abc
import h11

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules import billing

log = logging.getLogger(__name__)

HEAD_BYTES = 64 * 1024  # of a request's or a response's head
JSON_BYTES = 8 * 1024 * 1024  # of a JSON body read for its usage (the rest passes unread)
LINE_BYTES = 1024 * 1024  # of one event-stream line read for its usage
CONNECT_TIMEOUT_S = 30.0
READ_BYTES = 65_536
# Hop by hop: never passed on (RFC 9110 7.6.1); h11 frames each side itself.
HOP = {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization", b"te",
       b"trailer", b"upgrade", b"host", b"accept-encoding"}  # fmt: skip


@dataclass
class Tally:
    """What the meter counted of one run: tokens in (cached or not) and out, per response."""

    input_tokens: int = 0
    output_tokens: int = 0
    responses: int = 0
    unread: int = 0  # responses whose usage could not be read (said once)


@dataclass
class _Message:
    """One response's usage as its events say it: the most each figure reached."""

    input_tokens: int = 0
    output_tokens: int = 0

    def saw(self, usage: object) -> None:
        if not isinstance(usage, dict):
            return
        self.input_tokens = max(self.input_tokens, billing.anthropic_input(usage))
        self.output_tokens = max(self.output_tokens, _count(usage.get("output_tokens")))


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass
class Reading:
    """Reads one response body for its usage, as it passes (pure: fed bytes)."""

    stream: bool  # text/event-stream, else a JSON body
    message: _Message = field(default_factory=_Message)
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
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        if event.get("type") == "message_start" and isinstance(event.get("message"), dict):
            self.message.saw(event["message"].get("usage"))
        elif event.get("type") == "message_delta":
            self.message.saw(event.get("usage"))

    def done(self) -> bool:
        """Counted into `message`; False when the usage could not be read."""
        if self._over:
            return False
        if not self.stream:
            try:
                body = json.loads(self._held)
            except ValueError:
                return False
            if isinstance(body, dict):
                self.message.saw(body.get("usage"))
        elif self._held.startswith(b"data:"):
            self._event(bytes(self._held[5:]).strip())
        return True


@dataclass(frozen=True)
class Upstream:
    """Where requests go on to: the real model API."""

    scheme: str
    host: str
    port: int

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
        return cls(parts.scheme, parts.hostname, port)

    @property
    def authority(self) -> bytes:
        default = 443 if self.scheme == "https" else 80
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return (shown if self.port == default else f"{shown}:{self.port}").encode()


class Meter:
    """One run's meter: serve() listens on the host's loopback until cancelled."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.tally = Tally()
        self.port = 0

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener:
            task_status.started()
            await listener.serve(self._connection)

    async def _connection(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            try:
                await self._relay(client)
            except (OSError, anyio.BrokenResourceError, anyio.EndOfStream, h11.ProtocolError,
                    ssl.SSLError, TimeoutError) as exc:  # fmt: skip
                log.info("meter: a connection ended: %s", exc)

    async def _relay(self, client: anyio.abc.SocketStream) -> None:
        inside = h11.Connection(h11.SERVER, max_incomplete_event_size=HEAD_BYTES)
        upstream: anyio.abc.ByteStream | None = None
        outside: h11.Connection | None = None
        try:
            while True:
                request = await _next(inside, client)
                if not isinstance(request, h11.Request):
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
                    outside = h11.Connection(h11.CLIENT)
                headers = [(k, v) for k, v in request.headers if k.lower() not in HOP]
                headers += [(b"host", self.upstream.authority), (b"accept-encoding", b"identity")]
                await _send(outside, upstream, h11.Request(
                    method=request.method, target=request.target, headers=headers))  # fmt: skip
                while True:  # the request's body
                    event = await _next(inside, client)
                    if isinstance(event, h11.Data):
                        await _send(outside, upstream, h11.Data(data=event.data))
                    elif isinstance(event, h11.EndOfMessage):
                        await _send(outside, upstream, h11.EndOfMessage())
                        break
                    else:
                        return
                await self._response(inside, client, outside, upstream, request.method)
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
        method: bytes,
    ) -> None:
        response = await _next(outside, upstream)
        while isinstance(response, h11.InformationalResponse):
            response = await _next(outside, upstream)
        if not isinstance(response, h11.Response):
            raise h11.RemoteProtocolError("the model API ended without a response")
        kind = dict(response.headers).get(b"content-type", b"").lower()
        reading = Reading(stream=kind.startswith(b"text/event-stream"))
        headers = [(k, v) for k, v in response.headers if k.lower() not in HOP]
        await _send(inside, client, h11.Response(
            status_code=response.status_code, headers=headers, reason=response.reason))  # fmt: skip
        while True:
            event = await _next(outside, upstream)
            if isinstance(event, h11.Data):
                reading.feed(event.data)
                await _send(inside, client, h11.Data(data=event.data))
            elif isinstance(event, h11.EndOfMessage):
                await _send(inside, client, h11.EndOfMessage())
                break
            else:
                raise h11.RemoteProtocolError("the model API ended its response early")
        if method != b"HEAD" and response.status_code < 300:
            self._count(reading)

    def _count(self, reading: Reading) -> None:
        tally = self.tally
        if not reading.done():
            tally.unread += 1
            if tally.unread == 1:
                log.warning("meter: a response's usage could not be read; it is not counted")
            return
        tally.responses += 1
        tally.input_tokens += reading.message.input_tokens
        tally.output_tokens += reading.message.output_tokens

    async def _open(self) -> anyio.abc.ByteStream:
        up = self.upstream
        with anyio.fail_after(CONNECT_TIMEOUT_S):
            if up.scheme == "https":
                context = ssl.create_default_context()
                return await anyio.connect_tcp(
                    up.host, up.port, tls=True, ssl_context=context, tls_hostname=up.host
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


async def _refuse(inside: h11.Connection, client: anyio.abc.ByteStream, why: str) -> None:
    """A 502 for the CLI, which then says why in its own words."""
    body = (why + "\n").encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"),
               (b"content-length", str(len(body)).encode()), (b"connection", b"close")]  # fmt: skip
    await _send(inside, client, h11.Response(status_code=502, headers=headers))
    await _send(inside, client, h11.Data(data=body))
    await _send(inside, client, h11.EndOfMessage())


Sent = h11.Request | h11.Response | h11.Data | h11.EndOfMessage


async def _send(connection: h11.Connection, stream: anyio.abc.ByteStream, event: Sent) -> None:
    data = connection.send(event)
    if data:
        await stream.send(data)
