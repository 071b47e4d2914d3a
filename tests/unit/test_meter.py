"""The meter (sandbox/meter.py): its reading of the Messages API's usage, fed hostile and
split bodies, and the meter itself as a real server between a real HTTP client and a
scripted model API on 127.0.0.1 (JSON and event streams, sized and chunked, kept alive)."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import httpx2
import pytest

from wvo_mcp.errors import ValidationFailed
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
    assert (reading.message.input_tokens, reading.message.output_tokens) == (1975, 25)


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
        assert (reading.message.input_tokens, reading.message.output_tokens) == counted


class Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps connections alive; chunked replies below

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.hosts.append(self.headers["Host"])  # type: ignore[attr-defined]
        if self.path.startswith("/v1/messages/stream"):
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
    threading.Thread(target=server.serve_forever, daemon=True).start()
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
                await client.post("/v1/messages/stream", json={"n": 2}),
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
    threading.Thread(target=api.serve_forever, daemon=True).start()
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
