"""The MCP endpoint takes POST only (docs/http.md): a GET, a DELETE or any other method gets
405 with `Allow: POST`, before authentication and admission control, so connections a client
leaves open after it (Claude Code opens a GET after `initialize`) never take a place from the
POSTs under the in-flight cap."""

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import h11
import pytest

from tests.http.conftest import MCP_HEADERS, HttpServer, connect, http_server, spec, token

pytestmark = [pytest.mark.anyio, pytest.mark.process]

IDLE_GETS = 300  # over the default cap, WVO_HTTP_MAX_INFLIGHT=256
SOCKET_TIMEOUT_S = 30  # a server holding a GET open fails the test instead of hanging it
SAID = "this server sends no server-initiated messages"


class Raw:
    """One HTTP/1.1 connection held by the test, as an idle client leaves it."""

    def __init__(self, server: HttpServer) -> None:
        parts = urlsplit(server.url)
        self.host = parts.netloc
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=SOCKET_TIMEOUT_S)
        self.h11 = h11.Connection(h11.CLIENT)

    def send(self, method: str, headers: dict[str, str]) -> None:
        request = h11.Request(
            method=method, target="/mcp", headers=[("Host", self.host), *headers.items()]
        )
        self.sock.sendall(self.h11.send(request) + self.h11.send(h11.EndOfMessage()))

    def answer(self) -> tuple[h11.Response, bytes]:
        """The response's head and its whole body."""
        head: h11.Response | None = None
        body = b""
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(self.sock.recv(65536))
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return head, body
            else:
                pytest.fail(f"unexpected {event!r}")

    def still_open(self) -> bool:
        """The server has not closed this connection (nothing to read, and no end of file)."""
        self.sock.setblocking(False)
        try:
            return self.sock.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            return True
        finally:
            self.sock.setblocking(True)


@contextmanager
def connections(server: HttpServer, count: int) -> Iterator[list[Raw]]:
    with ExitStack() as stack:
        opened = []
        for _ in range(count):
            raw = Raw(server)
            stack.callback(raw.sock.close)
            opened.append(raw)
        yield opened


def assert_405(head: h11.Response, body: bytes) -> None:
    headers = {name.decode().lower(): value.decode() for name, value in head.headers}
    assert head.status_code == 405, (head, body)
    assert headers["allow"] == "POST"
    error = json.loads(body)
    assert error["jsonrpc"] == "2.0" and error["id"] is None
    assert SAID in error["error"]["message"] and "POST to /mcp" in error["error"]["message"]


async def test_300_idle_gets_leave_every_post_served(state_root: Path) -> None:
    secret = token(state_root, "agent", "claude-1")
    with http_server(state_root) as server, connections(server, IDLE_GETS) as idle:
        # All sent before any is read: 300 GETs arrive together, as 300 CLIs' would.
        for raw in idle:
            raw.send("GET", {"Accept": "text/event-stream", "Authorization": f"Bearer {secret}"})
        for raw in idle:
            assert_405(*raw.answer())
        async with connect(server, secret) as agent:
            await agent.call("task_create", tasks=[spec(f"T{i}") for i in range(3)])
            claimed = []
            for _ in range(3):
                assert (await agent.call("plan_next"))["tasks"], "a task is ready"
                claim = await agent.call("claim_task")
                assert claim["claimed"], claim
                claimed.append(claim["task"]["id"])
                # The agent's own lease ends, so its next claim_task may take another task.
                await agent.call(
                    "plan_update", task_id=claim["task"]["id"], status="done",
                    lease_token=claim["lease_token"],
                )  # fmt: skip
        assert sorted(claimed) == ["T0", "T1", "T2"]
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "plan_next", "arguments": {}}}  # fmt: skip
        async with server.http(secret) as http:
            for _ in range(5):
                answer = await http.post(server.url, json=body, headers=MCP_HEADERS)
                assert answer.status_code == 200, answer.text
        # The POSTs were served while every idle connection was still open.
        assert all(raw.still_open() for raw in idle)


async def test_every_method_but_post_is_405_whatever_the_token(state_root: Path) -> None:
    """Without a token too: the answer is the same whoever asks, so it tells nothing."""
    secret = token(state_root, "agent", "claude-1")
    answers: dict[str | None, list[tuple[int, bytes]]] = {}
    with http_server(state_root) as server:
        for credentials in (None, "wvo_forged", secret):
            headers = {"Accept": "text/event-stream, application/json"}
            if credentials is not None:
                headers["Authorization"] = f"Bearer {credentials}"
            with connections(server, 1) as (raw,):
                for method in ("GET", "DELETE", "HEAD", "PUT", "OPTIONS"):
                    raw.send(method, headers)  # one after another on one kept connection
                    head, body = raw.answer()
                    raw.h11.start_next_cycle()
                    answers.setdefault(credentials, []).append((head.status_code, body))
                    if method == "HEAD":
                        assert head.status_code == 405 and body == b""
                        assert (b"allow", b"POST") in head.headers
                    else:
                        assert_405(head, body)
        assert answers[None] == answers["wvo_forged"] == answers[secret]
        # What a token may do, it still can.
        async with server.http(secret) as http:
            listed = await http.post(
                server.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers=MCP_HEADERS,
            )  # fmt: skip
        assert listed.status_code == 200 and "claim_task" in listed.text, listed.text


async def test_a_get_from_a_foreign_page_or_host_is_refused_as_a_post_is(
    state_root: Path,
) -> None:
    """DNS-rebinding protection comes first on every method (docs/http.md)."""
    refusals = [
        ({"Origin": "http://evil.example"}, 403, "Invalid Origin header"),
        ({"Host": "evil.example"}, 421, "Invalid Host header"),
    ]
    with http_server(state_root) as server:
        async with server.http() as http:
            for header, status, says in refusals:
                for method in ("GET", "POST"):
                    answer = await http.request(
                        method, server.url, headers={**MCP_HEADERS, **header}
                    )
                    assert answer.status_code == status, (method, header, answer.text)
                    assert says in answer.text, answer.text
