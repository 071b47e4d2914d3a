"""The meter (sandbox/meter.py): its reading of the Messages API's usage, fed hostile and
split bodies, and the meter itself as a real server between a real HTTP client and a
scripted model API on 127.0.0.1 (JSON and event streams, sized and chunked, kept alive)."""

import contextlib
import json
import select
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import anyio.abc
import httpx2
import pytest

from tests.certs import self_signed
from tests.listening import serve_in_thread
from tests.unit.test_wire import PNG, REFERENCES, ask
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules import billing, wire
from wvo_mcp.sandbox import meter
from wvo_mcp.sandbox.meter import Meter, Reading, Upstream

USAGE = {"input_tokens": 1200, "cache_creation_input_tokens": 300,
         "cache_read_input_tokens": 4000, "output_tokens": 25}  # fmt: skip


def sse(events: list[dict[str, object]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


STREAM = sse([
    {"type": "message_start", "message": {"usage": {**USAGE, "output_tokens": 1}}},
    {"type": "content_block_delta", "delta": {"text": "data: {\"usage\": 99999}"}},
    {"type": "message_delta", "usage": {"output_tokens": 25}},
    {"type": "message_stop"},
])  # fmt: skip


@pytest.mark.parametrize("size", [1, 7, 64, len(STREAM)])
def test_a_stream_is_read_in_any_pieces(size: int) -> None:
    reading = Reading(stream=True)
    for at in range(0, len(STREAM), size):
        reading.feed(STREAM[at : at + size])
    assert reading.done()
    assert (reading.usage.input_tokens, reading.usage.output_tokens) == (1975, 25)


@pytest.mark.parametrize(
    ("body", "stream", "counted"),
    [
        (json.dumps({"usage": USAGE}).encode(), False, (1975, 25)),
        (b"not json", False, None),
        (json.dumps([1, 2]).encode(), False, (0, 0)),
        (json.dumps({"usage": {"input_tokens": -5, "output_tokens": True}}).encode(), False,
         (0, 0)),
        (b"data: {bad\n\ndata: " + json.dumps({"type": "message_delta", "usage":
                                                  {"output_tokens": 7}}).encode() + b"\n",
         True, (0, 7)),
        (b"data: " + b"x" * (meter.LINE_BYTES + 10), True, None),  # one endless line
        (b"\x00\xff\n" * 100, True, (0, 0)),
    ],
)  # fmt: skip
def test_hostile_bodies_are_counted_as_far_as_they_can_be(
    body: bytes, stream: bool, counted: tuple[int, int] | None
) -> None:
    reading = Reading(stream=stream)
    reading.feed(body)
    assert reading.done() is (counted is not None)
    if counted is not None:
        assert (reading.usage.input_tokens, reading.usage.output_tokens) == counted


class Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps connections alive; chunked replies below

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        asked = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.hosts.append(self.headers["Host"])  # type: ignore[attr-defined]
        if asked.startswith(b'{"stream"'):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (STREAM[:50], STREAM[50:]):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        body = json.dumps({"usage": USAGE}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def api() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    server.hosts = []  # type: ignore[attr-defined]
    serve_in_thread(server)
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.anyio
async def test_the_meter_passes_every_answer_unchanged_and_counts_each(
    api: ThreadingHTTPServer,
) -> None:
    port = api.server_address[1]
    measured = Meter(Upstream.of(f"http://127.0.0.1:{port}"))
    async with anyio.create_task_group() as group:
        await group.start(measured.serve)
        base = f"http://127.0.0.1:{measured.port}"
        async with httpx2.AsyncClient(base_url=base) as client:  # one kept-alive connection
            answers = [
                await client.post("/v1/messages", json={"n": 1}),
                await client.post("/v1/messages", json={"stream": True}),
                await client.post("/v1/messages", content=b"x" * 100_000),
            ]
        group.cancel_scope.cancel()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[1].content == STREAM
    assert answers[0].json() == {"usage": USAGE}
    tally = measured.tally
    assert (tally.responses, tally.input_tokens, tally.output_tokens) == (3, 3 * 1975, 75)
    assert api.hosts == [f"127.0.0.1:{port}"] * 3  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_a_model_api_over_tls_is_verified_with_one_context_for_every_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each connection of the CLI's opens one to the API: the CA store is loaded once a run
    (45 ms of CPU each time), and the API's certificate is still checked against it."""
    certfile, keyfile = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(certfile))  # the system's store, as OpenSSL reads it
    clients = [httpx2.AsyncClient() for _ in range(3)]  # a connection each; their own TLS
    made = []
    default_context = ssl.create_default_context

    def counted(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(1)
        return default_context()

    monkeypatch.setattr(meter.ssl, "create_default_context", counted)
    api = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    api.hosts = []  # type: ignore[attr-defined]
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certfile, keyfile)
    api.socket = tls.wrap_socket(api.socket, server_side=True)
    serve_in_thread(api)
    measured = Meter(Upstream.of(f"https://127.0.0.1:{api.server_address[1]}"))
    try:
        async with anyio.create_task_group() as group:
            await group.start(measured.serve)
            answers = []
            for client in clients:
                async with client:
                    url = f"http://127.0.0.1:{measured.port}/v1/messages"
                    answers.append(await client.post(url, json={"n": 1}))
            group.cancel_scope.cancel()
    finally:
        api.shutdown()
        api.server_close()
    assert [a.json() for a in answers] == [{"usage": USAGE}] * 3
    assert measured.tally.responses == 3
    assert made == [1]


@pytest.mark.anyio
async def test_an_unreachable_model_api_counts_nothing() -> None:
    measured = Meter(Upstream.of("http://127.0.0.1:9"))
    async with anyio.create_task_group() as group:
        await group.start(measured.serve)
        async with httpx2.AsyncClient() as client:
            answer = await client.post(f"http://127.0.0.1:{measured.port}/v1/messages", json={})
        group.cancel_scope.cancel()
    assert answer.status_code == 502 and "cannot be reached" in answer.text
    assert measured.tally.responses == 0


class OldApi(BaseHTTPRequestHandler):
    """HTTP/1.0: each answer read to its connection's close (as the scripted models in the
    CLI tests answer)."""

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(STREAM)


@pytest.mark.anyio
async def test_answers_read_to_their_close_keep_the_clis_connection() -> None:
    api = ThreadingHTTPServer(("127.0.0.1", 0), OldApi)
    serve_in_thread(api)
    measured = Meter(Upstream.of(f"http://127.0.0.1:{api.server_address[1]}"))
    try:
        async with anyio.create_task_group() as group:
            await group.start(measured.serve)
            base = f"http://127.0.0.1:{measured.port}"
            async with httpx2.AsyncClient(base_url=base) as client:
                answers = [await client.post("/v1/messages", json={}) for _ in range(3)]
            group.cancel_scope.cancel()
    finally:
        api.shutdown()
        api.server_close()
    assert [a.content for a in answers] == [STREAM] * 3
    assert [a.headers.get("transfer-encoding") for a in answers] == ["chunked"] * 3
    assert (measured.tally.responses, measured.tally.output_tokens) == (3, 75)


@pytest.mark.parametrize("url", ["api.anthropic.com", "ftp://x", "http://", "http://h:99999"])
def test_a_model_api_that_is_no_http_url_is_refused_with_what_would_do(url: str) -> None:
    with pytest.raises(ValidationFailed, match="give an http"):
        Upstream.of(url)


# -- what is passed on, and what is charged when a response does not end as it should ----


@pytest.mark.parametrize(
    ("method", "target", "base"),
    [
        (b"POST", b"/v1/messages", ""),
        (b"POST", b"/v1/messages?beta=true", ""),
        (b"POST", b"/v1/messages/count_tokens?beta=true", ""),
        (b"HEAD", b"/", ""),
        (b"HEAD", b"/gw", "/gw"),
        (b"POST", b"/gw/v1/messages?beta=true", "/gw"),
    ],
)
def test_the_endpoints_claude_code_calls_are_passed_on(
    method: bytes, target: bytes, base: str
) -> None:
    assert meter.refusal("anthropic", method, target, base) is None


@pytest.mark.parametrize(
    ("method", "target", "base"),
    [
        (b"POST", b"/v1/messages/batches", ""),  # results as JSONL, usage nowhere
        (b"GET", b"/v1/messages/batches/b1/results", ""),
        (b"POST", b"http://evil.example/v1/messages", ""),  # absolute form
        (b"CONNECT", b"evil.example:443", ""),
        (b"POST", b"/@evil.example/v1/messages", ""),
        (b"POST", b"//evil.example/v1/messages", ""),
        (b"POST", b"/v1/messages/../files", ""),
        (b"POST", b"/v1/messages?x=1#@evil", ""),
        (b"POST", b"/v1/messages", "/gw"),  # around the person's gateway path
        (b"GET", b"/v1/messages", ""),
        (b"POST", b"/v1/files", ""),
    ],
)
def test_anything_else_is_refused_saying_what_is_passed_on(
    method: bytes, target: bytes, base: str
) -> None:
    why = meter.refusal("anthropic", method, target, base)
    assert why is not None and "is not passed on" in why and "/v1/messages" in why


def test_a_cut_streams_output_is_charged_by_the_text_that_passed() -> None:
    reading = Reading(stream=True)
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 40_000}}}
    delta = {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "héllo"}}
    reading.feed(sse([start, delta, delta]))
    assert reading.figures() == (40_000, 12)  # 6 bytes of text each: one token a byte at most
    reading.feed(sse([{"type": "message_delta", "usage": {"output_tokens": 3}}]))
    assert reading.figures() == (40_000, 3)  # the API's own figure, once it gives it


class Streaming(BaseHTTPRequestHandler):
    """A model API's answer that starts with `start` and is read to its connection's close."""

    protocol_version = "HTTP/1.1"
    kind = "text/event-stream"

    def log_message(self, *args: object) -> None:
        pass

    def start(self, first: bytes) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", self.kind)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(first)
        self.wfile.flush()


class Held(Streaming):
    """A model API that streams a `message_start` and five deltas, then holds its answer
    until the test lets it go on (server.go_on), and then ends it."""

    protocol_version = "HTTP/1.1"
    first = sse([
        {"type": "message_start", "message": {"usage": {"input_tokens": 40_000}}},
        *[{"type": "content_block_delta", "delta": {"type": "text_delta", "text": "abcd"}}] * 5,
    ])  # fmt: skip
    last = sse([{"type": "message_delta", "usage": {"output_tokens": 900}}])

    def do_POST(self) -> None:
        self.start(self.first)
        self.server.go_on.wait(60)  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            self.wfile.write(self.last)


class HeldResponses(Held):
    """OpenAI's Responses API streaming two deltas, then holding its answer: its usage
    comes only with `response.completed`, which a cut stream never reaches."""

    first = sse([{"type": "response.created", "response": {}},
                 *[{"type": "response.output_text.delta", "delta": "abcd"}] * 2])  # fmt: skip
    last = b""  # it never ends: the run is cut before


@contextlib.contextmanager
def holding(handler: type[Held]) -> Iterator[ThreadingHTTPServer]:
    """`handler` served on 127.0.0.1 until the block ends, then let go and shut down."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.go_on = threading.Event()  # type: ignore[attr-defined]
    serve_in_thread(server)
    try:
        yield server
    finally:
        server.go_on.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()


@pytest.fixture
def held() -> Iterator[ThreadingHTTPServer]:
    with holding(Held) as server:
        yield server


async def _until(done: object) -> None:
    with anyio.fail_after(30):
        while not done():  # type: ignore[operator]  # noqa: ASYNC110 (the meter's own task)
            await anyio.sleep(0.01)


REQUEST = (b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: 32\r\n\r\n{\"max_tokens\": 2000, \"stream\":1}")  # fmt: skip


async def _mid_stream(measured: Meter) -> anyio.abc.SocketStream:
    """A client of `measured` that asked for a stream and has read five deltas of it."""
    client = await anyio.connect_tcp("127.0.0.1", measured.port)
    await client.send(REQUEST)
    seen = b""
    with anyio.fail_after(30):
        while seen.count(b"content_block_delta") < 5:
            seen += await client.receive()
    return client


@pytest.mark.anyio
async def test_a_stream_the_client_cuts_is_charged_what_passed_before_it_ends(
    held: ThreadingHTTPServer,
) -> None:
    measured = Meter(Upstream.of(f"http://127.0.0.1:{held.server_address[1]}"))
    async with anyio.create_task_group() as group:
        await group.start(measured.serve)
        client = await _mid_stream(measured)
        # Charged already, though the stream has not ended: its input and its text so far.
        assert (measured.tally.input_tokens, measured.tally.output_tokens) == (40_000, 20)
        await client.aclose()  # cut, as a hostile child resets it
        held.go_on.set()  # type: ignore[attr-defined]
        await _until(lambda: measured.tally.responses == 1)
        group.cancel_scope.cancel()
    # What the API said next was read (and charged) before the gone client was written to.
    assert (measured.tally.input_tokens, measured.tally.output_tokens) == (40_000, 900)
    assert measured.tally.unread == 0


@pytest.mark.anyio
async def test_a_run_that_ends_mid_stream_is_charged_what_passed(
    held: ThreadingHTTPServer,
) -> None:
    """The hang watch or a timeout ends the run: the meter is cancelled mid-answer."""
    measured = Meter(Upstream.of(f"http://127.0.0.1:{held.server_address[1]}"))
    async with anyio.create_task_group() as group:
        await group.start(measured.serve)
        client = await _mid_stream(measured)
        group.cancel_scope.cancel()
    await client.aclose()
    tally = measured.tally
    assert (tally.responses, tally.input_tokens, tally.output_tokens) == (1, 40_000, 20)


class Unreadable(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"id": "msg", "usage": {"input_tokens": 5'  # cut: no usage can be read
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.anyio
@pytest.mark.parametrize(("asked", "output"), [({"max_tokens": 2000}, 2000), ({}, None)])
async def test_a_response_whose_usage_cannot_be_read_is_charged_at_its_ceiling(
    asked: dict[str, int], output: int | None
) -> None:
    api = ThreadingHTTPServer(("127.0.0.1", 0), Unreadable)
    serve_in_thread(api)
    measured = Meter(Upstream.of(f"http://127.0.0.1:{api.server_address[1]}"))
    try:
        async with anyio.create_task_group() as group:
            await group.start(measured.serve)
            async with httpx2.AsyncClient() as client:
                url = f"http://127.0.0.1:{measured.port}/v1/messages"
                answer = await client.post(url, json=asked)
            group.cancel_scope.cancel()
    finally:
        api.shutdown()
        api.server_close()
    assert answer.status_code == 200
    tally = measured.tally
    assert (tally.unread, tally.input_tokens) == (1, billing.CEILING_INPUT)
    assert tally.output_tokens == (output or billing.CEILING_OUTPUT)


@pytest.mark.anyio
async def test_a_refused_request_reaches_no_api_and_is_named(api: ThreadingHTTPServer) -> None:
    measured = Meter(Upstream.of(f"http://127.0.0.1:{api.server_address[1]}"))
    async with anyio.create_task_group() as group:
        await group.start(measured.serve)
        async with httpx2.AsyncClient() as client:
            answer = await client.post(
                f"http://127.0.0.1:{measured.port}/v1/messages/batches", json={"requests": []}
            )
        group.cancel_scope.cancel()
    assert answer.status_code == 403 and "is not passed on" in answer.text
    assert api.hosts == []  # type: ignore[attr-defined]
    assert measured.tally.refused == 1 and "/v1/messages/batches" in measured.tally.reasons[0]


@pytest.mark.anyio
@pytest.mark.parametrize("pieces", [1, 2, 5])
async def test_a_head_over_the_cap_is_refused_however_it_arrives(
    api: ThreadingHTTPServer, pieces: int
) -> None:
    measured = Meter(Upstream.of(f"http://127.0.0.1:{api.server_address[1]}"))
    head = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
    filler = b"".join(b"X-Pad-%d: %s\r\n" % (n, b"p" * 1000) for n in range(80))  # ~80 KiB
    whole = head + filler + b"\r\n{}"
    async with anyio.create_task_group() as group:
        await group.start(measured.serve)
        client = await anyio.connect_tcp("127.0.0.1", measured.port)
        step = -(-len(whole) // pieces)
        answer = b""
        try:
            for at in range(0, len(whole), step):
                await client.send(whole[at : at + step])
            with anyio.fail_after(30):
                while chunk := await client.receive():
                    answer += chunk
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            pass
        await client.aclose()
        group.cancel_scope.cancel()
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert api.hosts == []  # type: ignore[attr-defined]


@pytest.mark.anyio
@pytest.mark.parametrize("ended", ["cancelled", "closed"])
async def test_a_responses_stream_cut_before_its_usage_is_charged_its_bounds(ended: str) -> None:
    """Input by its request's bytes (nothing it points at is stored upstream), output by
    the text that passed: Codex's traffic, killed mid-answer, is not charged nothing. The
    run ends with the meter cancelled, or (`closed`) with its CLI gone while the API holds,
    which nothing tells the meter: the autopilot closes it once the run is over."""
    body = json.dumps({"model": "m", "input": "x" * 3000, "stream": True}).encode()
    request = (b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
    with holding(HeldResponses) as server:
        measured = Meter(Upstream.of(f"http://127.0.0.1:{server.server_address[1]}/v1"), "openai")
        async with anyio.create_task_group() as group:
            await group.start(measured.serve)
            client = await anyio.connect_tcp("127.0.0.1", measured.port)
            await client.send(request)
            seen = b""
            with anyio.fail_after(30):
                while seen.count(b"output_text.delta") < 2:
                    seen += await client.receive()
            assert (measured.tally.input_tokens, measured.tally.output_tokens) == (0, 8)
            if ended == "closed":
                await client.aclose()  # the CLI is gone; the API says nothing more
                assert (await measured.close()).responses == 1  # settled, not cancelled
            group.cancel_scope.cancel()  # the run ends mid-answer
        await client.aclose()
    tally = measured.tally
    assert (tally.responses, tally.input_tokens, tally.output_tokens) == (1, len(body), 8)


# -- a cut answer to a request that points elsewhere (issue 69) ------------------------------

BILLED = 871_000  # input an API billed a request whose input it fetched, kept or made itself
# Where each format's requests go: the meter's base URL path and the request's target.
TARGETS: dict[wire.Name, tuple[wire.Api, str, bytes]] = {
    "anthropic": ("anthropic", "", b"/v1/messages?beta=true"),
    "responses": ("openai", "/v1", b"/v1/responses"),
    "chat": ("openai", "/v1", b"/v1/chat/completions"),
    "gemini": ("gemini", "", b"/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"),
}


def _starts(path: str, said: int) -> bytes:
    """An answer's start in the format of `path`: its early word on input where the format
    has one and `said` is given (Anthropic's `message_start`, a Gemini chunk's usage), and
    two deltas of text."""
    if path.endswith("/messages"):
        start = {"type": "message_start", "message": {"usage": {"input_tokens": said,
                                                                 "output_tokens": 1}}}  # fmt: skip
        delta = {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "abcd"}}
        return sse([start] if said else []) + sse([delta, delta])
    if path.endswith("/responses"):
        delta = {"type": "response.output_text.delta", "delta": "abcd"}
        return sse([{"type": "response.created", "response": {}}, delta, delta])
    if path.endswith("/completions"):
        chunk: dict[str, object] = {"choices": [{"index": 0, "delta": {"content": "abcd"}}]}
    else:
        chunk = {"candidates": [{"content": {"parts": [{"text": "abcd"}]}}]}
        chunk |= {"usageMetadata": {"promptTokenCount": said}} if said else {}
    return f"data: {json.dumps(chunk)}\n\n".encode() * 2


class Billing(Streaming):
    """A model API in each of the meter's formats: it starts its answer (`x-said`: its early
    word on input), then holds until its client goes, and bills then `x-bill` input."""

    def do_POST(self) -> None:
        self.start(self.first(self.path.split("?")[0], int(self.headers["x-said"])))
        gone = False
        while not gone and not self.server.stopping.is_set():  # type: ignore[attr-defined]
            readable, _, _ = select.select([self.connection], [], [], 0.01)
            try:
                gone = bool(readable) and not self.connection.recv(1)
            except OSError:  # reset
                gone = True
        self.server.billed.append(int(self.headers["x-bill"]))  # type: ignore[attr-defined]

    def first(self, path: str, said: int) -> bytes:
        return _starts(path, said)


async def _cut(
    name: wire.Name,
    body: object,
    said: int,
    bill: int,
    api_type: type[Billing] = Billing,
    at: bytes | None = None,
) -> tuple[meter.Tally, int]:
    """`body` asked in format `name` (at its target, else `at`) through a meter of a Billing
    API, the run ended once two deltas of its answer passed: what the meter charged, and what
    the API billed."""
    api = ThreadingHTTPServer(("127.0.0.1", 0), api_type)
    api.billed, api.stopping = [], threading.Event()  # type: ignore[attr-defined]
    serve_in_thread(api)
    kind, base, target = TARGETS[name]
    target = at or target
    measured = Meter(Upstream.of(f"http://127.0.0.1:{api.server_address[1]}{base}"), kind)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"x-said: %d\r\nx-bill: %d\r\nContent-Length: %d\r\n\r\n"
            % (target, said, bill, len(data)))  # fmt: skip
    try:
        async with anyio.create_task_group() as group:
            await group.start(measured.serve)
            client = await anyio.connect_tcp("127.0.0.1", measured.port)
            await client.send(head + data)
            seen = b""
            with anyio.fail_after(30):
                while seen.count(b"abcd") < 2:
                    seen += await client.receive()
            group.cancel_scope.cancel()  # the run ends mid-answer (its hang watch, a kill)
        await client.aclose()
        await _until(lambda: api.billed)  # type: ignore[attr-defined]
    finally:
        api.stopping.set()  # type: ignore[attr-defined]
        api.shutdown()
        api.server_close()
    [billed] = api.billed  # type: ignore[attr-defined]
    return measured.tally, billed


# The formats whose answers say their input as they start: that word is not all of it here.
SAID_EARLY = {"anthropic": 1_000, "gemini": 1_000}


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "body"), list(REFERENCES.values()), ids=list(REFERENCES))
async def test_a_cut_answer_to_a_request_that_points_elsewhere_is_charged_what_was_billed(
    name: wire.Name, body: dict[str, object]
) -> None:
    """Each kind of reference, and a part the meter does not know, per format: the API
    billed input its request's bytes do not bound, and its answer was cut before it said
    so (or having said only its early word): the run is charged at least that."""
    tally, billed = await _cut(name, body, SAID_EARLY.get(name, 0), BILLED)
    assert tally.responses == 1 and tally.input_tokens >= billed, (tally, billed)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "image"),
    [("anthropic", {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                "data": PNG}}),
     ("responses", {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}),
     ("chat", {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}),
     ("gemini", {"inlineData": {"mimeType": "image/png", "data": PNG}})],
)  # fmt: skip
async def test_a_cut_answer_to_inline_images_is_charged_what_they_billed(
    name: wire.Name, image: dict[str, object]
) -> None:
    """Two 1x1 PNGs of 95 bytes, billed as gpt-4o-mini bills an image at high detail (48,169
    tokens each), the answer cut before it said its input: not charged their bytes."""
    tally, billed = await _cut(name, ask(name, image, image), 0, 2 * 48_169)
    assert tally.responses == 1 and tally.input_tokens >= billed, (tally, billed)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "searching"),
    [("anthropic", {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
     ("gemini", {"tools": [{"googleSearch": {}}]})],
)  # fmt: skip
async def test_an_early_word_on_input_stands_only_for_a_request_of_inline_content(
    name: wire.Name, searching: dict[str, object]
) -> None:
    """The same cut answer, its early word 40,000 tokens: all of a plain request's input, but
    not of one whose server-side search adds to its input as it answers."""
    plain, _ = await _cut(name, ask(name), 40_000, 40_000)
    assert plain.input_tokens == 40_000
    search, billed = await _cut(name, ask(name, **searching), 40_000, BILLED)
    assert search.input_tokens >= billed, (search, billed)


@pytest.mark.anyio
async def test_a_request_nested_past_what_python_reads_is_charged_the_ceiling() -> None:
    """Its depth raises RecursionError, not ValueError, where the meter reads it for its
    bound: the charge is the ceiling, not nothing."""
    deep = b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    tally, billed = await _cut("anthropic", deep, 0, BILLED)
    assert tally.responses == 1 and tally.input_tokens >= billed, (tally, billed)


# -- a cut answer to a request for several answers (issue 83) ------------------------------


class Whole(Billing):
    """Billing's API answering whole, not in events: a chat completion's JSON, and Gemini's
    `streamGenerateContent` without `alt=sse`, a JSON array that grows as it answers. Cut,
    neither says its usage: the meter charges the request's bound (`x-bill`: its output)."""

    kind = "application/json"

    def first(self, path: str, said: int) -> bytes:
        if path.endswith("/completions"):
            choice = {"index": 0, "message": {"role": "assistant", "content": "abcd"}}
            return (
                b'{"object": "chat.completion", "choices": ['
                + (json.dumps(choice).encode() + b", ") * 2
            )
        chunk = {"candidates": [{"index": 0, "content": {"parts": [{"text": "abcd"}]}}]}
        return b"[" + (json.dumps(chunk).encode() + b",\r\n") * 2


class Overlong(Billing):
    """Billing's API streaming Chat Completions with a line longer than the meter reads:
    the stream's usage cannot be read, whatever it says later (`x-bill`: its output)."""

    def first(self, path: str, said: int) -> bytes:
        chunk = {"choices": [{"index": i, "delta": {"content": "abcd"}} for i in range(2)]}
        return b"data: " + b" " * meter.LINE_BYTES + json.dumps(chunk).encode()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("api_type", "name", "asked", "answers", "cap"),
    [(Whole, "chat", {"n": 128, "max_tokens": 16_000, "stream": False}, 128, 16_000),
     (Whole, "chat", {"n": 8, "max_completion_tokens": 4_000, "stream": False}, 8, 4_000),
     (Overlong, "chat", {"n": 8, "max_tokens": 4_000}, 8, 4_000),
     (Whole, "gemini", {"generationConfig": {"candidateCount": 8, "maxOutputTokens": 8_192}},
      8, 8_192)],
)  # fmt: skip
async def test_a_cut_answer_to_several_choices_is_charged_every_ones_bound(
    api_type: type[Billing], name: wire.Name, asked: dict[str, object], answers: int, cap: int
) -> None:
    """Each choice bills up to the cap: the API bills `n` times it (Gemini `candidateCount`
    times), and the run cut before the answer said its usage is charged at least that."""
    at = b"/v1beta/models/gemini-2.5-pro:streamGenerateContent" if name == "gemini" else None
    tally, billed = await _cut(name, ask(name, **asked), 0, answers * cap, api_type, at)
    assert tally.responses == tally.unread == 1, tally
    assert tally.output_tokens >= billed, (tally, billed)
