"""The egress proxy: the one way out of a sandbox that has no network of its own.

It listens on a Unix socket that is bind-mounted into the sandbox and opens a TCP tunnel
(`CONNECT host:port`) only to the endpoints it was given. The policy lives here, outside;
the relay inside the sandbox (relay.py) is untrusted plumbing that only carries bytes, so a
command that talks to the socket itself gains nothing. An endpoint matches by the exact
host string of the CONNECT, lower-cased: a name is never resolved to see whether it equals
an allowed address, so `localhost:8765` is refused when only `127.0.0.1:8765` is allowed.
"""

import errno
import ipaddress
import logging
import os
import re
import stat
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc

from wvo_mcp.errors import ValidationFailed

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 8192
HEAD_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 128
REPLY_TIMEOUT_S = 1.0  # to write a refusal, and then to read what the client still sends
LINGER_BYTES = 65_536  # read and dropped after a refusal, so closing does not lose the reply
ACCEPT_BACKOFF_S = 0.1  # out of file descriptors: wait before accepting again
MAX_SOCKET_PATH_BYTES = 107  # sun_path is 108 bytes with its NUL
MAX_SHOWN = 255  # characters of a client's target quoted back in a reply or a log line
DEFAULT_PORTS = {"http": 80, "https": 443}
ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"
ACCEPTED = "send `CONNECT host:port HTTP/1.1` (IPv6 in brackets) and a blank line"
REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}
# A DNS name: labels of letters, digits, '-' and '_' (no IDN: punycode it), not starting or
# ending with '-'.
LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
PORT = re.compile(r"[0-9]{1,5}")
VERSION = re.compile(r"HTTP/1\.[01]")
FD_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


@dataclass(frozen=True)
class Endpoint:
    """A host (a name, or an IP literal without brackets) and a TCP port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Refusal:
    """An HTTP error for the client: what was wrong and what is accepted."""

    status: int
    message: str

    def reply(self) -> bytes:
        body = (self.message + "\n").encode()
        extra = "Allow: CONNECT\r\n" if self.status == 405 else ""
        head = (
            f"HTTP/1.1 {self.status} {REASONS[self.status]}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
        )
        return head.encode() + body


def canonical_host(host: str) -> str | None:
    """The host as the allowlist compares it: an IP literal in its standard form, a name
    lower-cased; None when it is neither (pure)."""
    try:
        return str(ipaddress.ip_address(host))  # refuses zone ids, leading zeros, '127.1'
    except ValueError:
        pass
    name = host.lower()
    labels = name.split(".")
    if len(name) > 253 or not all(LABEL.fullmatch(label) for label in labels):
        return None
    if labels[-1].isdigit():
        return None  # '127.1' or '0x7f.1' would resolve to an address: only literals may
    return name


def parse_authority(text: str) -> Endpoint | None:
    """`host:port` or `[v6]:port` from a CONNECT line, canonical; None when malformed."""
    if text.startswith("["):
        inner, closing, port = text[1:].partition("]:")
        if not closing or ":" not in inner:
            return None
        host = canonical_host(inner)
    else:
        name, colon, port = text.rpartition(":")
        if not colon or ":" in name:
            return None  # an IPv6 literal must be in brackets
        host = canonical_host(name)
    if host is None or not PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        return None
    return Endpoint(host, int(port))


def canonical(endpoint: Endpoint) -> Endpoint:
    """The endpoint in the form CONNECT targets are compared in; ValidationFailed if bad."""
    host = canonical_host(endpoint.host.removeprefix("[").removesuffix("]"))
    port = endpoint.port
    if host is None or isinstance(port, bool) or not isinstance(port, int):
        raise ValidationFailed(
            f"endpoint {endpoint.host!r} is not a host; give a DNS name or an IP address"
        )
    if not 1 <= port <= 65535:
        raise ValidationFailed(f"endpoint port {port} is out of range; use 1 to 65535")
    return Endpoint(host, port)


def endpoint_of(url: str) -> Endpoint:
    """Where an http(s) URL connects to (the scheme's port when none is given)."""
    # The URL is not quoted back: it may carry credentials.
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationFailed(
            "the URL is malformed or its port is not 1 to 65535; give one like "
            "https://api.anthropic.com or http://127.0.0.1:8765/mcp"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValidationFailed(
            f"the URL's scheme is {scheme or 'missing'}; give an http:// or https:// URL"
        )
    if not parts.hostname:
        raise ValidationFailed("the URL has no host; give one like https://api.anthropic.com")
    if port == 0:
        raise ValidationFailed("the URL's port is 0; use 1 to 65535")
    return canonical(Endpoint(parts.hostname, port or DEFAULT_PORTS[scheme]))


def shown(text: str) -> str:
    """A client's text, quoted and cut short, fit for a reply or a log line."""
    return repr(text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "...")


def allowed_list(allowed: Iterable[Endpoint]) -> str:
    return ", ".join(sorted(str(e) for e in allowed)) or "none"


def decide(head: bytes, allowed: frozenset[Endpoint]) -> Endpoint | Refusal:
    """What to do with a complete request head (pure): tunnel to this endpoint, or refuse."""
    line = head.split(b"\r\n", 1)[0]
    if not all(0x20 <= byte < 0x7F for byte in line):
        return Refusal(400, f"the request line is not printable ASCII; {ACCEPTED}")
    parts = line.decode("ascii").split(" ")
    if len(parts) != 3:
        return Refusal(400, f"the request line is not `METHOD target HTTP/1.1`; {ACCEPTED}")
    method, target, version = parts
    if method != "CONNECT":
        # The target is not quoted: a URL may carry credentials.
        return Refusal(405, f"only CONNECT is accepted, not {shown(method)}; {ACCEPTED}")
    if not VERSION.fullmatch(version):
        status = 505 if version.startswith("HTTP/") else 400
        return Refusal(status, f"only HTTP/1.0 and HTTP/1.1 are accepted; {ACCEPTED}")
    endpoint = parse_authority(target)
    if endpoint is None:
        # Not quoted back: what is not host:port may be a URL carrying credentials.
        return Refusal(
            400,
            "the CONNECT target is not host:port (a DNS name or an IP address, IPv6 in "
            "brackets, and a port 1 to 65535)",
        )
    if endpoint not in allowed:
        return Refusal(
            403,
            f"{endpoint} is not an allowed destination; allowed: {allowed_list(allowed)}",
        )
    return endpoint


async def read_head(stream: anyio.abc.ByteStream) -> tuple[bytes, bytes] | Refusal | None:
    """The request head through its blank line and what arrived after it; a Refusal when
    it is too long or cut short; None when the client sent nothing at all."""
    buffer = b""
    while True:
        try:
            chunk = await stream.receive(MAX_HEAD_BYTES)
        except anyio.EndOfStream:
            if not buffer:
                return None
            return Refusal(400, f"the request head ended before its blank line; {ACCEPTED}")
        start = max(0, len(buffer) - 3)
        buffer += chunk
        end = buffer.find(b"\r\n\r\n", start)
        if end != -1 and end + 4 <= MAX_HEAD_BYTES:
            return buffer[: end + 4], buffer[end + 4 :]
        if end != -1 or len(buffer) >= MAX_HEAD_BYTES:
            return Refusal(431, f"the request head is longer than {MAX_HEAD_BYTES} bytes")


class EgressProxy:
    """Tunnels from a Unix socket to allowed TCP endpoints, and nowhere else."""

    def __init__(
        self,
        path: Path,
        allowed: Iterable[Endpoint],
        *,
        max_connections: int = MAX_CONNECTIONS,
        head_timeout_s: float = HEAD_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.path = Path(path)
        if len(os.fsencode(self.path)) > MAX_SOCKET_PATH_BYTES:
            raise ValidationFailed(
                f"the socket path {self.path} is longer than {MAX_SOCKET_PATH_BYTES} bytes, "
                "the most a Unix socket's address holds; choose a shorter one"
            )
        self.allowed = frozenset(canonical(e) for e in allowed)
        self.max_connections = max_connections
        self.head_timeout_s = head_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.active = 0
        self.tunnels = 0  # established
        self.refused = 0  # answered with an HTTP error
        self.bytes_up = 0  # from the sandbox to the endpoints
        self.bytes_down = 0

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen at `path` (mode 0600) until cancelled, then remove the socket file."""
        _clear(self.path)
        listener = await anyio.create_unix_listener(self.path)
        identity = None
        try:
            async with listener, anyio.create_task_group() as group:
                identity = _make_private(self.path)
                task_status.started()
                while True:
                    try:
                        stream = await listener.accept()
                    except OSError as exc:
                        if exc.errno not in FD_EXHAUSTED:
                            raise
                        log.warning("egress proxy cannot accept: %s; retrying", exc.strerror)
                        await anyio.sleep(ACCEPT_BACKOFF_S)
                        continue
                    # Counted here, not in the task, so the cap holds however tasks are run.
                    self.active += 1
                    group.start_soon(self._connection, stream)
        finally:
            _remove(self.path, identity)

    async def _connection(self, stream: anyio.abc.ByteStream) -> None:
        try:
            async with stream:
                if self.active > self.max_connections:
                    message = f"more than {self.max_connections} connections at once; retry"
                    await self._refuse(stream, Refusal(503, message))
                else:
                    await self._tunnel(stream)
        except Exception as exc:  # one connection's failure must never end the proxy
            log.debug("egress connection ended by %s", type(exc).__name__)
        finally:
            self.active -= 1

    async def _tunnel(self, client: anyio.abc.ByteStream) -> None:
        got: tuple[bytes, bytes] | Refusal | None = None
        with anyio.move_on_after(self.head_timeout_s) as waited:
            got = await read_head(client)
        if waited.cancelled_caught:
            message = f"the request head did not arrive within {self.head_timeout_s:g} s"
            await self._refuse(client, Refusal(408, f"{message}; {ACCEPTED}"))
            return
        if got is None:
            return
        if isinstance(got, Refusal):
            await self._refuse(client, got)
            return
        head, rest = got
        target = decide(head, self.allowed)
        if isinstance(target, Refusal):
            await self._refuse(client, target)
            return
        try:
            with anyio.fail_after(self.connect_timeout_s):
                upstream = await anyio.connect_tcp(target.host, target.port)
        except TimeoutError:
            why = f"did not answer within {self.connect_timeout_s:g} s"
            await self._refuse(client, Refusal(502, f"cannot connect to {target}: {why}"))
            return
        except OSError as exc:
            why = shown(exc.strerror or str(exc))
            await self._refuse(client, Refusal(502, f"cannot connect to {target}: {why}"))
            return
        async with upstream:
            await client.send(ESTABLISHED)
            self.tunnels += 1
            if rest:
                await upstream.send(rest)
                self.bytes_up += len(rest)
            async with anyio.create_task_group() as group:
                group.start_soon(self._pipe, client, upstream, True, group.cancel_scope)
                group.start_soon(self._pipe, upstream, client, False, group.cancel_scope)

    async def _pipe(
        self,
        source: anyio.abc.ByteStream,
        sink: anyio.abc.ByteStream,
        up: bool,
        scope: anyio.CancelScope,
    ) -> None:
        """One direction, to its end; then only that direction is closed (half-close), so
        an answer can still stream back after the request is complete."""
        try:
            async for chunk in source:
                await sink.send(chunk)
                if up:
                    self.bytes_up += len(chunk)
                else:
                    self.bytes_down += len(chunk)
            await sink.send_eof()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            scope.cancel()  # one side broke: the tunnel is over both ways

    async def _refuse(self, stream: anyio.abc.ByteStream, refusal: Refusal) -> None:
        self.refused += 1
        log.info("egress refused: %d %s", refusal.status, refusal.message)
        with anyio.move_on_after(REPLY_TIMEOUT_S):
            await stream.send(refusal.reply())
            await stream.send_eof()
            # Closing with unread input would reset the connection, and a reset can drop
            # the reply before the client reads it: read what is still coming first.
            dropped = 0
            while dropped < LINGER_BYTES:
                dropped += len(await stream.receive())


def _clear(path: Path) -> None:
    """Remove a stale socket or a link left at `path`; anything else there stays (the
    listener then fails, saying the address is in use)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISSOCK(mode) or stat.S_ISLNK(mode):
        path.unlink()


def _make_private(path: Path) -> tuple[int, int]:
    """chmod 0600 the socket just bound, without following a link a sandboxed command may
    have swapped in; its (device, inode), to remove only this file at the end."""
    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISSOCK(info.st_mode):
            raise ValidationFailed(f"{path} was replaced while the egress proxy started")
        # chmod through /proc acts on the opened file itself (fchmod refuses O_PATH).
        os.chmod(f"/proc/self/fd/{fd}", 0o600)
        return info.st_dev, info.st_ino
    finally:
        os.close(fd)


def _remove(path: Path, identity: tuple[int, int] | None) -> None:
    try:
        info = os.lstat(path)
    except OSError:
        return
    if (info.st_dev, info.st_ino) == identity:
        path.unlink(missing_ok=True)
