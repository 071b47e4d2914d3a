"""Admission control on a real `serve --http`: a process at its in-flight cap answers 503 and
a token over its rate 429, each with Retry-After and a JSON-RPC error that says what was
wrong and what would be accepted, and nothing done; the health report says which limit is
near. Answers are JSON (one body, no event stream)."""

import itertools
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import HANG_SECONDS, wvo_process
from tests.http.conftest import (
    MCP_HEADERS,
    HttpServer,
    connect,
    http_server,
    spec,
    token,
)

pytestmark = [pytest.mark.anyio, pytest.mark.process]

RATE_LIMITED = -32051
OVERLOADED = -32050


def rpc(method: str, params: dict[str, Any] | None = None, id_: int = 1) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": id_, "method": method, "params": params or {}}
    ).encode()


def create(task_id: str) -> bytes:
    return rpc("tools/call", {"name": "task_create", "arguments": {"tasks": [spec(task_id)]}})


async def tasks_named(server: HttpServer, secret: str, *ids: str) -> set[str]:
    """Which of `ids` exist, asked through task_get (an unknown id is a tool error)."""
    found = set()
    async with server.http(secret) as http:
        for task_id in ids:
            body = rpc("tools/call", {"name": "task_get", "arguments": {"task_id": task_id}})
            answer = (await http.post(server.url, content=body, headers=MCP_HEADERS)).json()
            if not answer["result"].get("isError"):
                found.add(task_id)
    return found


def refusal(response: httpx2.Response, status: int, code: int) -> str:
    """The refusal's JSON-RPC error message, after checking its status, Retry-After and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None
    assert body["error"]["code"] == code
    assert body["error"]["data"]["retryAfterSeconds"] == int(response.headers["retry-after"])
    return str(body["error"]["message"])


async def test_a_process_at_its_in_flight_cap_refuses_with_503_and_does_nothing(state_root: Path):
    secret = token(state_root, "agent", "claude-1")
    env = {"WVO_HTTP_MAX_INFLIGHT": "1", "WVO_HTTP_RATE_PER_TOKEN": "0"}
    with http_server(state_root, **env) as server:
        async with server.http(secret) as held, server.http(secret) as other:
            # The token checked once before: the held request never waits on the store for
            # it, in the token checks' own places, where a ping would be refused as such.
            warm = await other.post(server.url, content=rpc("ping"), headers=MCP_HEADERS)
            assert warm.status_code == 200, warm.text
            deadline = time.monotonic() + HANG_SECONDS
            for attempt in itertools.count():
                # A request held in flight until released (its body comes in two parts),
                # then pings until one is refused: the held request is counted. A held
                # request that arrived while a ping was in flight was itself refused (or
                # served after it): then it is released and held again under a new name.
                name, started, release = f"HELD{attempt}", anyio.Event(), anyio.Event()
                held_answer: list[httpx2.Response] = []

                async def slow_body(
                    name: str, started: anyio.Event, release: anyio.Event
                ) -> AsyncIterator[bytes]:
                    body = create(name)
                    yield body[:10]
                    started.set()  # its headers and first part are sent
                    await release.wait()
                    yield body[10:]

                async def hold(
                    name: str,
                    started: anyio.Event,
                    release: anyio.Event,
                    held_answer: list[httpx2.Response],
                ) -> None:
                    body = slow_body(name, started, release)
                    held_answer.append(
                        await held.post(server.url, content=body, headers=MCP_HEADERS)
                    )

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(hold, name, started, release, held_answer)
                    await started.wait()
                    pinged = await other.post(server.url, content=rpc("ping"), headers=MCP_HEADERS)
                    refused = None
                    # A held request waiting on the store for the count of revoked tokens
                    # is in the token checks' own places, not held work's: then the ping's
                    # own check is refused as such, and the round is made again.
                    checked = pinged.status_code != 503 or "jsonrpc" in pinged.json()
                    if pinged.status_code != 200 and checked:
                        refusal(pinged, 503, OVERLOADED)
                        refused = await other.post(
                            server.url, content=create("REFUSED"), headers=MCP_HEADERS
                        )
                    release.set()
                if refused is not None:
                    break
                assert time.monotonic() < deadline, "the held request was never counted"
        said = refusal(refused, 503, OVERLOADED)
        # Said before the token's check: no figures of the load.
        assert "as many requests in flight as it takes (WVO_HTTP_MAX_INFLIGHT)" in said
        assert "1 request" not in said and "=1" not in said, said
        assert set(refused.json()["error"]["data"]) == {"limit", "retryAfterSeconds"}
        assert "nothing was done. Retry after 1 s" in said
        assert held_answer[0].status_code == 200, held_answer[0].text
        assert await tasks_named(server, secret, name, "REFUSED") == {name}


async def test_a_token_over_its_rate_gets_429_after_authentication(state_root: Path):
    first = token(state_root, "agent", "claude-1")
    second = token(state_root, "agent", "claude-2")
    # One request in a thousand seconds, after a burst of two: no refill during the test.
    flags = ("--rate-per-token", "0.001", "--burst-per-token", "2")
    with http_server(state_root, *flags) as server:
        async with server.http(first) as http:
            for _ in range(2):
                assert (
                    await http.post(server.url, content=rpc("ping"), headers=MCP_HEADERS)
                ).status_code == 200
            refused = await http.post(server.url, content=create("T1"), headers=MCP_HEADERS)
        said = refusal(refused, 429, RATE_LIMITED)
        assert int(refused.headers["retry-after"]) > 900
        assert said.startswith("token claude-1 is over its rate limit: 0.001 requests a second")
        assert "nothing was done" in said
        # Authentication first: a caller without a valid token is told so, not rate-limited.
        async with server.http("wvo_not-a-token") as http:
            unknown = await http.post(server.url, content=rpc("ping"), headers=MCP_HEADERS)
        assert unknown.status_code == 401
        # Per token: another agent still works, and its call shows claude-1's changed nothing.
        assert await tasks_named(server, second, "T1") == set()


async def test_an_sdk_client_sees_the_refusal_in_words(state_root: Path):
    secret = token(state_root, "agent", "claude-1")
    with http_server(
        state_root, WVO_HTTP_RATE_PER_TOKEN="0.001", WVO_HTTP_BURST_PER_TOKEN="8"
    ) as server:
        async with connect(server, secret) as agent:
            with pytest.raises(MCPError) as refused:
                for _ in range(8):
                    await agent.client.call_tool("plan_next", {})
    assert refused.value.error.code == RATE_LIMITED
    assert "token claude-1 is over its rate limit" in refused.value.error.message


async def test_the_health_report_says_which_limit_is_near(state_root: Path):
    agent = token(state_root, "agent", "claude-1")
    operator = token(state_root, "operator", "ops")
    health = rpc("tools/call", {"name": "health_report", "arguments": {}})

    async def line(secret: str) -> str:
        async with server.http(secret) as http:
            answer = (await http.post(server.url, content=health, headers=MCP_HEADERS)).json()
        return str(answer["result"]["structuredContent"]["admission"])

    async def pings(secret: str, count: int) -> None:
        async with server.http(secret) as http:
            for _ in range(count):
                assert (
                    await http.post(server.url, content=rpc("ping"), headers=MCP_HEADERS)
                ).status_code == 200

    env = {"WVO_HTTP_RATE_PER_TOKEN": "0.001", "WVO_HTTP_BURST_PER_TOKEN": "4"}
    with http_server(state_root, **env) as server:
        first = await line(operator)
        assert first.startswith("admission: 1 of 256 requests in flight (WVO_HTTP_MAX_INFLIGHT)")
        assert "nearest their rate limit: ops at 25 %" in first
        await pings(agent, 2)
        # An agent sees its own token's state, and only a count of the others.
        own = await line(agent)
        assert "claude-1 at 75 % (and 1 other token)" in own and "ops" not in own
        assert "near a limit: none" in own
        await pings(agent, 1)
        seen = await line(operator)
        assert "nearest their rate limit: claude-1 at 100 %, ops at 50 %" in seen
        assert "near a limit: token claude-1's rate" in seen
        assert "refused since start: 0 at the cap, 0 over a rate" in seen


async def test_answers_are_one_json_body(state_root: Path):
    secret = token(state_root, "agent", "claude-1")
    with http_server(state_root) as server:
        async with server.http(secret) as http:
            answer = await http.post(server.url, content=rpc("ping", id_=7), headers=MCP_HEADERS)
            called = await http.post(server.url, content=create("T1"), headers=MCP_HEADERS)
            note = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
            noted = await http.post(server.url, content=note, headers=MCP_HEADERS)
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"jsonrpc": "2.0", "id": 7, "result": {}}
    assert called.json()["result"]["structuredContent"]["created"] == ["T1"]
    assert noted.status_code == 202


def test_admission_flags_are_checked_at_start(state_root: Path):
    result = wvo_process(state_root, "serve", "--http", "--max-inflight", "-1")
    assert (
        result.returncode == 2
        and "--max-inflight -1 must be a number of at least 0" in result.stderr
    )
    result = wvo_process(state_root, "serve", "--rate-per-token", "5")
    assert result.returncode == 2
    assert "--rate-per-token: only for `wvo-mcp serve --http`" in result.stderr
