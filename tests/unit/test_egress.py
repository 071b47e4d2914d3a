"""The egress proxy on a real Unix socket, tunnelling to real servers on 127.0.0.1: what it
lets through, what it refuses and how it says so, half-closed streams, its limits, and the
socket file it leaves behind (none)."""

import http.server
import logging
import os
import re
import socket
import stat
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.conftest import HANG_SECONDS
from tests.listening import serve_in_thread
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.sandbox.egress import (
    ESTABLISHED,
    EgressProxy,
    Endpoint,
    Refusal,
    decide,
    endpoint_of,
)

DEADLINE_S = HANG_SECONDS  # a guard against a hang, never a time to beat
Handler = Callable[[anyio.abc.SocketStream], Coroutine[Any, Any, None]]


class Site(http.server.ThreadingHTTPServer):
    """A real HTTP server on 127.0.0.1 that names itself and counts connections."""

    daemon_threads = True

    def __init__(self, name: str, host: str = "127.0.0.1") -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, 0), Page)
        self.name = name
        self.connections = 0

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def verify_request(self, request: object, client_address: object) -> bool:
        self.connections += 1
        return True


class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert isinstance(self.server, Site)
        body = f"{self.server.name} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test's output is not the place


@contextmanager
def site(name: str, host: str = "127.0.0.1") -> Iterator[Site]:
    server = Site(name, host)
    thread = serve_in_thread(server)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def site_a() -> Iterator[Site]:
    with site("site-a") as server:
        yield server


@pytest.fixture
def site_b() -> Iterator[Site]:
    with site("site-b") as server:
        yield server


@asynccontextmanager
async def running(proxy: EgressProxy) -> AsyncIterator[EgressProxy]:
    async with anyio.create_task_group() as group:
        await group.start(proxy.serve)
        yield proxy
        # Stopped once its connections have ended: anyio (4.16, asyncio) can report an
        # InvalidStateError when a Unix stream's pending read is cancelled just as data
        # arrives, which pytest would count as this test's failure.
        await wait_until_idle(proxy)
        group.cancel_scope.cancel()


async def read_all(stream: anyio.abc.ByteStream) -> bytes:
    got = b""
    with anyio.fail_after(DEADLINE_S):
        try:
            async for chunk in stream:
                got += chunk
        except anyio.BrokenResourceError:
            pass  # the proxy may close with our unread input; what came before counts
    return got


async def ask(path: Path, data: bytes) -> bytes:
    """Send `data` to the proxy and read until it closes."""
    async with await anyio.connect_unix(path) as stream:
        await stream.send(data)
        return await read_all(stream)


def connect(target: str) -> bytes:
    return f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()


def get(path: str = "/") -> bytes:
    return f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode()


async def wait_until_idle(proxy: EgressProxy) -> None:
    with anyio.fail_after(DEADLINE_S):
        while proxy.active:  # noqa: ASYNC110 - polling a counter the proxy lowers
            await anyio.sleep(0.01)


# --- endpoints and the decision (pure) ---


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.anthropic.com", Endpoint("api.anthropic.com", 443)),
        ("https://API.Anthropic.COM/v1/messages", Endpoint("api.anthropic.com", 443)),
        ("http://127.0.0.1:8765/mcp", Endpoint("127.0.0.1", 8765)),
        ("HTTP://example.org", Endpoint("example.org", 80)),
        ("http://[::1]:8765/mcp", Endpoint("::1", 8765)),
        ("https://[0:0::1]", Endpoint("::1", 443)),
        ("https://user:secret@host.example:444/x", Endpoint("host.example", 444)),
    ],
)
def test_endpoint_of_a_url(url: str, expected: Endpoint) -> None:
    assert endpoint_of(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.org", "scheme is ftp; give an http:// or https:// URL"),
        ("api.anthropic.com:443", "give an http:// or https:// URL"),
        ("https://", "the URL has no host"),
        ("https://example.org:0", "port is 0"),
        ("https://example.org:99999", "port is not 1 to 65535"),
        ("https://[::1", "malformed"),
        ("https://exa mple.org", "is not a host"),
        ("https://127.1", "is not a host"),
    ],
)
def test_endpoint_of_refuses_what_is_not_an_http_url_with_a_host(url: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message) as caught:
        endpoint_of(url)
    assert "secret" not in str(caught.value)


def test_str_of_an_endpoint_brackets_ipv6() -> None:
    assert str(Endpoint("::1", 8765)) == "[::1]:8765"
    assert str(Endpoint("api.anthropic.com", 443)) == "api.anthropic.com:443"


ALLOWED = frozenset({Endpoint("api.anthropic.com", 443), Endpoint("127.0.0.1", 8765)})


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (connect("api.anthropic.com:443"), Endpoint("api.anthropic.com", 443)),
        (connect("API.anthropic.com:443"), Endpoint("api.anthropic.com", 443)),
        (b"CONNECT 127.0.0.1:8765 HTTP/1.0\r\n\r\n", Endpoint("127.0.0.1", 8765)),
    ],
)
def test_decide_lets_an_allowed_connect_through(head: bytes, expected: Endpoint) -> None:
    assert decide(head, ALLOWED) == expected


@pytest.mark.parametrize(
    ("head", "status", "message"),
    [
        (get(), 405, "only CONNECT is accepted, not 'GET'"),
        (b"connect api.anthropic.com:443 HTTP/1.1\r\n\r\n", 405, "only CONNECT"),
        (connect("localhost:8765"), 403, "localhost:8765 is not an allowed destination"),
        (connect("evil.example:443"), 403, "allowed: 127.0.0.1:8765, api.anthropic.com:443"),
        (connect("api.anthropic.com:80"), 403, "not an allowed destination"),
        (connect("[::1]:8765"), 403, r"\[::1\]:8765 is not an allowed destination"),
        (connect("::1:8765"), 400, "is not host:port"),
        (connect("127.1:8765"), 400, "is not host:port"),
        (connect("0x7f.0.0.1:8765"), 400, "is not host:port"),
        (connect("127.0.0.1:0"), 400, "a port 1 to 65535"),
        (connect("127.0.0.1:65536"), 400, "a port 1 to 65535"),
        (connect("127.0.0.1:+80"), 400, "is not host:port"),
        (connect("127.0.0.1"), 400, "is not host:port"),
        (connect("-bad-.example:443"), 400, "is not host:port"),
        (connect("bücher.example:443"), 400, "not printable ASCII"),
        (b"CONNECT api.anthropic.com:443 HTTP/2.0\r\n\r\n", 505, "only HTTP/1.0 and HTTP/1.1"),
        (b"CONNECT api.anthropic.com:443 SPDY\r\n\r\n", 400, "only HTTP/1.0 and HTTP/1.1"),
        (b"CONNECT  api.anthropic.com:443 HTTP/1.1\r\n\r\n", 400, "not `METHOD target"),
        (b"\x16\x03\x01\x00\xa5\r\n\r\n", 400, "not printable ASCII"),
    ],
)
def test_decide_refuses_saying_what_was_wrong(head: bytes, status: int, message: str) -> None:
    refusal = decide(head, ALLOWED)
    assert isinstance(refusal, Refusal)
    assert refusal.status == status
    assert refusal.message == refusal.message.strip()
    assert re.search(message, refusal.message), refusal.message


def test_a_refusal_is_a_complete_http_response() -> None:
    reply = Refusal(405, "only CONNECT is accepted").reply()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    assert b"\r\nAllow: CONNECT" in head and b"\r\nConnection: close" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert body == b"only CONNECT is accepted\n"


def test_a_bad_allowlist_or_socket_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="is not a host"):
        EgressProxy(tmp_path / "s", [Endpoint("not a host", 443)])
    with pytest.raises(ValidationFailed, match="out of range"):
        EgressProxy(tmp_path / "s", [Endpoint("example.org", 0)])
    with pytest.raises(ValidationFailed, match="longer than 107 bytes"):
        EgressProxy(tmp_path / ("x" * 120), [])
    proxy = EgressProxy(tmp_path / "s", [Endpoint("[::1]", 80), Endpoint("Example.ORG", 443)])
    assert proxy.allowed == {Endpoint("::1", 80), Endpoint("example.org", 443)}


# --- the proxy, live ---


@pytest.mark.anyio
async def test_a_tunnel_reaches_an_allowed_server_with_what_came_with_the_head(
    tmp_path: Path, site_a: Site
) -> None:
    proxy = EgressProxy(tmp_path / "egress.sock", [Endpoint("127.0.0.1", site_a.port)])
    async with running(proxy):
        request = get("/hello")
        reply = await ask(proxy.path, connect(f"127.0.0.1:{site_a.port}") + request)
    assert reply.startswith(ESTABLISHED)
    response = reply[len(ESTABLISHED) :]
    assert response.startswith(b"HTTP/1.0 200 ") and response.endswith(b"site-a /hello")
    assert (proxy.tunnels, proxy.refused) == (1, 0)
    assert (proxy.bytes_up, proxy.bytes_down) == (len(request), len(response))


@pytest.mark.anyio
async def test_the_socket_is_private_and_removed_when_the_proxy_stops(tmp_path: Path) -> None:
    path = tmp_path / "egress.sock"
    victim = tmp_path / "victim"
    victim.write_text("keep")
    victim.chmod(0o644)
    path.symlink_to(victim)  # a sandboxed command may leave a link where the socket goes
    proxy = EgressProxy(path, [])
    async with running(proxy):
        info = os.lstat(path)
        assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
        assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert not path.exists() and not path.is_symlink()
    assert victim.read_text() == "keep"
    # A stale socket from an earlier run does not stop the next one.
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()
    async with running(EgressProxy(path, [])):
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert not path.exists()


@pytest.mark.anyio
async def test_both_directions_half_close_and_stream(tmp_path: Path) -> None:
    """Request then EOF, answer after it; an answer streamed chunk by chunk while the
    request side stays open; an answer side that ends first while the request goes on."""
    late: list[bytes] = []
    ended = anyio.Event()

    async def answer_after_eof(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.send(b"got:" + await read_all(stream))

    async def echo(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            async for chunk in stream:
                await stream.send(chunk)

    async def speak_first(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.send(b"hello")
            await stream.send_eof()
            late.append(await read_all(stream))
            ended.set()

    async def serve(listener: anyio.abc.Listener[anyio.abc.SocketStream], handler: Handler) -> None:
        async with listener:
            await listener.serve(handler)

    async with anyio.create_task_group() as servers:
        ports = []
        for handler in (answer_after_eof, echo, speak_first):
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
            ports.append(listener.extra(anyio.abc.SocketAttribute.local_port))
            servers.start_soon(serve, listener, handler)
        proxy = EgressProxy(tmp_path / "egress.sock", [Endpoint("127.0.0.1", p) for p in ports])
        async with running(proxy):
            async with await anyio.connect_unix(proxy.path) as client:
                await client.send(connect(f"127.0.0.1:{ports[0]}") + b"abc")
                await client.send(b"def")
                await client.send_eof()
                assert await read_all(client) == ESTABLISHED + b"got:abcdef"

            async with await anyio.connect_unix(proxy.path) as client:
                await client.send(connect(f"127.0.0.1:{ports[1]}"))
                with anyio.fail_after(DEADLINE_S):
                    got = b""
                    while len(got) < len(ESTABLISHED):
                        got += await client.receive()
                    assert got == ESTABLISHED
                    for event in (b"data: 1\n\n", b"data: 2\n\n"):
                        await client.send(event)
                        got = b""
                        while len(got) < len(event):
                            got += await client.receive()
                        assert got == event

            async with await anyio.connect_unix(proxy.path) as client:
                await client.send(connect(f"127.0.0.1:{ports[2]}"))
                assert await read_all(client) == ESTABLISHED + b"hello"
                await client.send(b"late")
                await client.send_eof()
                with anyio.fail_after(DEADLINE_S):
                    await ended.wait()
                assert late == [b"late"]
            assert proxy.tunnels == 3
        servers.cancel_scope.cancel()


@pytest.mark.anyio
async def test_what_is_not_allowed_is_refused_and_the_proxy_serves_on(
    tmp_path: Path, site_a: Site, site_b: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wvo_mcp.sandbox.egress")
    proxy = EgressProxy(tmp_path / "egress.sock", [Endpoint("127.0.0.1", site_a.port)])
    cases = [
        (connect(f"127.0.0.1:{site_b.port}"), b"403 Forbidden", b"is not an allowed destination"),
        (connect(f"localhost:{site_a.port}"), b"403 Forbidden", b"allowed: 127.0.0.1:"),
        (connect("evil.example:443"), b"403 Forbidden", b"evil.example:443 is not an allowed"),
        (
            f"GET http://127.0.0.1:{site_a.port}/?token=SECRET1 HTTP/1.1\r\n"
            "Proxy-Authorization: Basic SECRET2\r\n\r\n".encode(),
            b"405 Method Not Allowed",
            b"only CONNECT is accepted",
        ),
        (
            connect(f"127.0.0.1:{site_a.port}")[:-2] + b"X: " + b"a" * 9000 + b"\r\n\r\n",
            b"431 ",
            b"",
        ),
        (b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n" + b"X: " + b"a" * 9000, b"431 ", b"8192 bytes"),
        (b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n", b"400 Bad Request", b"ended before"),
        (b"CONNECT https://x/?token=SECRET3 HTTP/1.1\r\n\r\n", b"400 ", b"not host:port"),
        (b"\x00\xff" * 100 + b"\r\n\r\n", b"400 Bad Request", b"not printable"),
    ]
    async with running(proxy):
        for request, status, message in cases:
            if request.endswith(b"HTTP/1.1\r\n"):  # cut short: the client ends its side
                async with await anyio.connect_unix(proxy.path) as stream:
                    await stream.send(request)
                    await stream.send_eof()
                    reply = await read_all(stream)
            else:
                reply = await ask(proxy.path, request)
            assert reply.startswith(b"HTTP/1.1 " + status), (request[:60], reply)
            assert message in reply
        async with await anyio.connect_unix(proxy.path) as stream:
            await stream.send_eof()
            assert await read_all(stream) == b""  # nothing sent: closed without a word
        reply = await ask(proxy.path, connect(f"127.0.0.1:{site_a.port}") + get("/after"))
        assert reply.startswith(ESTABLISHED) and reply.endswith(b"site-a /after")
    assert site_b.connections == 0
    assert (proxy.tunnels, proxy.refused) == (1, len(cases))
    assert "egress refused: 403" in caplog.text and "egress refused: 405" in caplog.text
    assert "SECRET" not in caplog.text


@pytest.mark.anyio
async def test_a_slow_head_is_cut_off_however_it_trickles(tmp_path: Path) -> None:
    proxy = EgressProxy(tmp_path / "egress.sock", [], head_timeout_s=0.5)
    async with running(proxy), await anyio.connect_unix(proxy.path) as stream:
        reply = b""

        async def trickle() -> None:
            # One byte at a time, never the blank line: the deadline is for the whole head.
            for _ in range(400):
                try:
                    await stream.send(b"X")
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return
                await anyio.sleep(0.02)

        async with anyio.create_task_group() as group:
            group.start_soon(trickle)
            reply = await read_all(stream)
            group.cancel_scope.cancel()
    assert reply.startswith(b"HTTP/1.1 408 Request Timeout")
    assert b"did not arrive within 0.5 s" in reply
    assert proxy.refused == 1


@pytest.mark.anyio
async def test_an_endpoint_that_does_not_answer_is_a_502_saying_why(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = closed.getsockname()[1]
        proxy = EgressProxy(tmp_path / "egress.sock", [Endpoint("127.0.0.1", port)])
        async with running(proxy):
            reply = await ask(proxy.path, connect(f"127.0.0.1:{port}"))
    assert reply.startswith(b"HTTP/1.1 502 Bad Gateway")
    assert f"cannot connect to 127.0.0.1:{port}: ".encode() in reply
    assert (proxy.tunnels, proxy.refused) == (0, 1)


@pytest.mark.anyio
async def test_connections_beyond_the_cap_get_503(tmp_path: Path, site_a: Site) -> None:
    proxy = EgressProxy(
        tmp_path / "egress.sock", [Endpoint("127.0.0.1", site_a.port)], max_connections=2
    )
    async with running(proxy):
        first = await anyio.connect_unix(proxy.path)
        second = await anyio.connect_unix(proxy.path)
        async with first, second:
            reply = await ask(proxy.path, connect(f"127.0.0.1:{site_a.port}"))
            assert reply.startswith(b"HTTP/1.1 503 Service Unavailable")
            assert b"more than 2 connections at once" in reply
        await wait_until_idle(proxy)
        reply = await ask(proxy.path, connect(f"127.0.0.1:{site_a.port}") + get())
        assert reply.startswith(ESTABLISHED) and reply.endswith(b"site-a /")
    assert site_a.connections == 1
