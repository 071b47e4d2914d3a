"""Past capacity over HTTP (docs/http.md): a real `serve --http` on PostgreSQL, agents with
their own tokens through the SDK's client, and the claim lock held by another session, as
another server's claims hold it when the deployment is full. A claim that could be granted
is refused as busy with a time to come back, and nothing is done; claims now queueing, one
sure to be refused is refused from a read; a heartbeat is served; once the turn is free
the claim made again is granted."""

import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg
import pytest
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from tests.conftest import HANG_SECONDS
from tests.http.conftest import (
    MCP_HEADERS,
    connect,
    http_server,
    spec,
    task_row,
    token,
)
from wvo_mcp.config import Settings
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.claim_admission import RETRY_MAX_S, RETRY_MIN_S
from wvo_mcp.store import postgres

pytestmark = [pytest.mark.anyio, pytest.mark.process]

NOT_YET = "its time to come back is not yet"  # edge/held_back.py's refusal
BOUND_S = 10  # far beyond any call's wait bound: a call that waited for the lock misses it


async def prepare(url: str, work: Path) -> dict[str, str]:
    """Two ready tasks and two agents' tokens, made by the store's own code."""
    settings = Settings(state_root=work, database_url=url, otel_enabled=False)
    orchestrator = await Orchestrator.open(settings)
    try:
        specs = [
            TaskSpec(id=i, title=f"task {i}", business_value=v) for i, v in (("t1", 9), ("t2", 1))
        ]
        await orchestrator.create_tasks(specs, actor="test")
        made = {}
        for name in ("holder", "newcomer"):
            made[name] = (await orchestrator.token_add("agent", name, by="person:test")).secret
        return made
    finally:
        await orchestrator.close()


def status_of(url: str, task_id: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT status FROM tasks WHERE id = %s", (task_id,)).fetchone()
        assert row is not None
        return row[0]


async def test_past_capacity_sure_refusals_and_held_work_do_not_wait_and_busy_says_when(
    pg_migrated: Callable[[str], str], tmp_path: Path
) -> None:
    url = pg_migrated("capacity")
    secrets = await prepare(url, tmp_path / "cli")
    with http_server(tmp_path / "host", WVO_DATABASE_URL=url) as server:
        async with (
            connect(server, secrets["holder"]) as holder,
            connect(server, secrets["newcomer"]) as newcomer,
        ):
            held = await holder.call("claim_task")
            assert held["claimed"] and held["task"]["id"] == "t1"
            lease = {"task_id": "t1", "lease_token": held["lease_token"]}
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as other:
                await other.execute("SELECT pg_advisory_lock(%s)", (postgres.CLAIM_LOCK_KEY,))
                with anyio.fail_after(BOUND_S):
                    busy = await newcomer.call("claim_task")
                    full = await holder.call("claim_task")
                    named = await newcomer.call("claim_task", task_id="t1")
                    beat = await holder.call("heartbeat", **lease)
            assert full["reason"] == "agent_wip_limit", full
            assert named["reason"] == "task_not_ready" and "held by 'holder'" in named["message"]
            assert beat["task_id"] == "t1"
            assert (busy["claimed"], busy["reason"]) == (False, "busy"), busy
            assert RETRY_MIN_S <= busy["retry_after_s"] <= RETRY_MAX_S
            assert "nothing was done" in busy["message"]
            assert status_of(url, "t2") == "pending"
            # The lock let go (the other session closed), the claim made again is granted.
            again = await newcomer.call("claim_task")
            assert again["claimed"] and again["task"]["id"] == "t2", again


def rpc(method: str, params: dict[str, Any], id_: int = 1) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}).encode()


async def test_claims_refused_at_the_edge_are_the_tools_answer_and_held_work_is_served(
    state_root: Path,
) -> None:
    """Requests crowd into a process (a quarter of its in-flight cap, held open here by
    bodies that have not all arrived): an agent's claim is refused as busy at the edge,
    in the tool's own answer (the SDK client takes it, output schema and all), with
    nothing done; meanwhile a holder's heartbeat and a checkpoint whose summary is
    `claim_task` are served, and a claim without a token is refused for its token. Made
    again when told, once the crowd is gone, the claim is granted."""
    holder = token(state_root, "agent", "holder")
    newcomer = token(state_root, "agent", "newcomer")
    ops = token(state_root, "operator", "ops")
    env = {"WVO_HTTP_MAX_INFLIGHT": "32", "WVO_HTTP_RATE_PER_TOKEN": "0"}
    with http_server(state_root, **env) as server:
        async with server.http(ops) as http:
            tasks = [spec("t1", business_value=9), spec("t2", business_value=1)]
            made = await http.post(
                server.url, content=rpc("tools/call", {"name": "task_create",
                                                       "arguments": {"tasks": tasks}}),
                headers=MCP_HEADERS,
            )  # fmt: skip
            assert made.status_code == 200 and not made.json()["result"].get("isError"), made.text
        async with (
            connect(server, holder) as held_by,
            connect(server, newcomer) as new,
            server.http() as anonymous,
        ):
            held = await held_by.claim()
            assert held["claimed"] and held["task"]["id"] == "t1", held
            lease = {"task_id": "t1", "lease_token": held["lease_token"]}
            async with crowded(server, ops):  # a quarter of WVO_HTTP_MAX_INFLIGHT=32, and one
                with anyio.fail_after(BOUND_S):
                    busy = await new.call("claim_task")
                    beat = await held_by.call("heartbeat", **lease)
                    step = await held_by.call(
                        "checkpoint", **lease, summary="claim_task", progress=10
                    )
                    claim = rpc("tools/call", {"name": "claim_task", "arguments": {}})
                    unknown = await anonymous.post(server.url, content=claim, headers=MCP_HEADERS)
            assert (busy["claimed"], busy["reason"]) == (False, "busy"), busy
            assert busy["agent_id"] == "newcomer"
            assert RETRY_MIN_S <= busy["retry_after_s"] <= RETRY_MAX_S
            assert "nothing was done" in busy["message"] and "Claim again in" in busy["message"]
            assert beat["task_id"] == "t1" and step["task_id"] == "t1", (beat, step)
            assert unknown.status_code == 401, unknown.text
            assert task_row(state_root, "t2")["status"] == "pending"
            again = await new.claim()  # as told: granted once the crowd is gone
            assert again["claimed"] and again["task"]["id"] == "t2", again


async def test_held_work_back_before_its_time_is_refused_at_the_edge_then_served(
    pg_migrated: Callable[[str], str], tmp_path: Path
) -> None:
    """A heartbeat refused at its wait bound (the write locks held by another session, as a
    deployment past capacity holds them) is told to come back in 1 s; made again at once,
    as an impatient client does, it is refused by the edge from memory, with what is left
    of that time and nothing done (the task's row unmoved); the same agent's claim is not
    refused for it. At its time, the locks free, the heartbeat is served."""
    url = pg_migrated("held_back")
    secrets = await prepare(url, tmp_path / "cli")

    def lease_end() -> Any:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT * FROM tasks WHERE id = 't1'").fetchone()
            assert row is not None
            return row

    with http_server(
        tmp_path / "host", WVO_DATABASE_URL=url, WVO_HTTP_RATE_PER_TOKEN="0"
    ) as server:
        async with (
            connect(server, secrets["holder"]) as holder,
            server.http(secrets["holder"]) as raw,
        ):
            held = await holder.call("claim_task")
            assert held["claimed"] and held["task"]["id"] == "t1"
            lease = {"task_id": "t1", "lease_token": held["lease_token"]}

            def beat() -> bytes:
                return rpc("tools/call", {"name": "heartbeat", "arguments": lease})

            before = lease_end()
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as other:
                await other.execute("SELECT pg_advisory_lock(%s)", (postgres.WRITE_LOCK_KEY,))
                texts = []
                with anyio.fail_after(BOUND_S):  # each store refusal tells it again: tries
                    while len(texts) < 6 and not any(NOT_YET in t for t in texts):
                        answer = await raw.post(server.url, content=beat(), headers=MCP_HEADERS)
                        result = answer.json()["result"]
                        assert result["isError"], result
                        texts.append(result["content"][0]["text"])
            assert "Overloaded:" in texts[0] and "retry in 1 s" in texts[0], texts[0]
            assert NOT_YET not in texts[0]
            early = next(t for t in texts if NOT_YET in t)
            assert "Overloaded:" in early and "nothing of this call was done" in early
            told = re.search(r"retry in ([0-9.]+) s", early)
            assert told is not None and 0 < float(told[1]) <= 1, early
            claim = await holder.call("claim_task")  # a claim is claim admission's, never held back
            assert claim["reason"] == "agent_wip_limit", claim
            assert lease_end() == before  # nothing was done
            # The locks free: made again (polled, as a client at its time), it is served.
            with anyio.fail_after(BOUND_S):
                while True:
                    answer = await raw.post(server.url, content=beat(), headers=MCP_HEADERS)
                    result = answer.json()["result"]
                    if not result.get("isError"):
                        break
                    assert "Overloaded:" in result["content"][0]["text"], result
                    await anyio.sleep(0.1)
            assert result["structuredContent"]["task_id"] == "t1", result


async def agent_tokens(state_root: Path, names: list[str]) -> list[str]:
    """Agents' tokens, made by the store's own code (quicker than a CLI each)."""
    orchestrator = await Orchestrator.open(Settings(state_root=state_root, otel_enabled=False))
    try:
        return [(await orchestrator.token_add("agent", n, by="person:test")).secret for n in names]
    finally:
        await orchestrator.close()


@asynccontextmanager
async def crowded(server: Any, ops: str) -> AsyncIterator[None]:
    """Requests crowd the process (bodies held open) while in this context: claims are
    refused busy."""
    release = anyio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        body = rpc("ping", {})
        yield body[:10]
        await release.wait()
        yield body[10:]

    report = rpc("tools/call", {"name": "health_report", "arguments": {}})
    async with (
        server.http(ops) as slow,
        server.http(ops) as health,
        anyio.create_task_group() as group,
    ):
        for _ in range(9):
            group.start_soon(
                partial(slow.post, server.url, content=slow_body(), headers=MCP_HEADERS)
            )
        with anyio.fail_after(HANG_SECONDS):
            while True:  # polling until the open requests are counted
                answer = await health.post(server.url, content=report, headers=MCP_HEADERS)
                line = answer.json()["result"]["structuredContent"]["admission"]
                found = re.match(r"admission: (\d+) of", line)
                assert found is not None, line
                if int(found[1]) > 8:
                    break
        try:
            yield
        finally:
            release.set()


async def crowded_busy(
    server: Any, ops: str, others: list[str], claim: bytes, auth: dict[str, str]
) -> float:
    """While requests crowd the process, the claims of `others` (agents' tokens) are
    refused busy, each told a later slot, and then `claim`: the time it is told."""
    async with crowded(server, ops), server.http() as c:
        for secret in others:
            headers = {**MCP_HEADERS, "Authorization": f"Bearer {secret}"}
            answer = await c.post(server.url, content=claim, headers=headers)
            assert answer.json()["result"]["structuredContent"]["reason"] == "busy", answer
        said = (await c.post(server.url, content=claim, headers=auth)).json()
    said = said["result"]["structuredContent"]
    assert said["reason"] == "busy", said
    return float(said["retry_after_s"])


async def test_a_held_claim_whose_client_has_gone_is_not_granted(state_root: Path) -> None:
    """A claim back before its time is held at the edge; its client gives up meanwhile.
    The claim is dropped, not granted to no one: the agent's claim made again, live, is
    granted the task (a ghost's grant would leave it agent_wip_limit)."""
    newcomer = token(state_root, "agent", "newcomer")
    ops = token(state_root, "operator", "ops")
    others = await agent_tokens(state_root, [f"other{i}" for i in range(30)])
    env = {"WVO_HTTP_MAX_INFLIGHT": "32", "WVO_HTTP_RATE_PER_TOKEN": "0"}
    claim = rpc("tools/call", {"name": "claim_task", "arguments": {}})
    auth = {**MCP_HEADERS, "Authorization": f"Bearer {newcomer}"}
    with http_server(state_root, **env) as server:
        async with server.http(ops) as http:
            made = await http.post(
                server.url, content=rpc("tools/call", {"name": "task_create",
                                                       "arguments": {"tasks": [spec("t1")]}}),
                headers=MCP_HEADERS,
            )  # fmt: skip
            assert made.status_code == 200 and not made.json()["result"].get("isError"), made.text
        # Seconds away: time enough for the claim made again to be held, whatever the load.
        told = await crowded_busy(server, ops, others, claim, auth)
        assert told >= 1.0, told
        async with server.http() as ghost:
            with pytest.raises(httpx2.TimeoutException):  # held: it gives up and goes
                await ghost.post(server.url, content=claim, headers=auth, timeout=0.2)
        assert task_row(state_root, "t1")["status"] == "pending"
        async with server.http(newcomer) as live:
            with anyio.fail_after(RETRY_MAX_S + BOUND_S):
                while True:  # as told: busy while the ghost might still be held, then held
                    said = await live.post(server.url, content=claim, headers=MCP_HEADERS)
                    answer = said.json()["result"]["structuredContent"]
                    if answer.get("reason") != "busy":
                        break
                    await anyio.sleep(answer["retry_after_s"])
        assert answer["claimed"] and answer["task"]["id"] == "t1", answer


@pytest.mark.parametrize("version", [None, *HANDSHAKE_PROTOCOL_VERSIONS])
async def test_a_claim_refused_at_the_edge_is_the_sdks_answer_byte_for_byte(
    state_root: Path, version: str | None
) -> None:
    """Past capacity, an agent's claim refused busy at the edge and an operator's refused
    busy by the tool through the SDK are the same bytes, for the header's protocol version
    (but for the agent's name and the times told)."""
    agent = token(state_root, "agent", "ag")
    ops = token(state_root, "operator", "op")
    env = {"WVO_HTTP_MAX_INFLIGHT": "32", "WVO_HTTP_RATE_PER_TOKEN": "0"}
    claim = rpc("tools/call", {"name": "claim_task", "arguments": {}})
    headers = {**MCP_HEADERS}
    if version is not None:
        headers[MCP_PROTOCOL_VERSION_HEADER] = version
    answers = []
    with http_server(state_root, **env) as server:
        async with crowded(server, ops), server.http() as c:
            for secret in (agent, ops):
                said = await c.post(
                    server.url, content=claim,
                    headers={**headers, "Authorization": f"Bearer {secret}"},
                )  # fmt: skip
                assert said.status_code == 200, said.text
                answers.append(said.content)
    edge, sdk = (re.sub(rb"\d+(\.\d+)?", b"N", a.replace(b"op", b"ag")) for a in answers)
    assert b'"busy"' in edge and edge == sdk, (edge, sdk)


async def test_a_claim_the_sdk_would_refuse_is_not_told_to_come_back(state_root: Path) -> None:
    """Past capacity, an agent's claim with an unknown or ill-typed argument gets the SDK's
    own refusal, saying what is wrong, not busy: told to come back, a client would retry
    it for ever."""
    agent = token(state_root, "agent", "ag")
    ops = token(state_root, "operator", "op")
    env = {"WVO_HTTP_MAX_INFLIGHT": "32", "WVO_HTTP_RATE_PER_TOKEN": "0"}
    auth = {**MCP_HEADERS, "Authorization": f"Bearer {agent}"}
    wrong = [{"lease_second": 60}, {"lease_seconds": "a minute"}]
    with http_server(state_root, **env) as server:
        async with crowded(server, ops), server.http() as c:
            busy = await c.post(server.url, content=rpc("tools/call", {"name": "claim_task"}),
                                headers=auth)  # fmt: skip
            answers = [
                await c.post(
                    server.url,
                    content=rpc("tools/call", {"name": "claim_task", "arguments": a}),
                    headers=auth,
                )
                for a in wrong
            ]
    assert busy.json()["result"]["structuredContent"]["reason"] == "busy", busy.text
    for arguments, answer in zip(wrong, answers, strict=True):
        result = answer.json()["result"]
        assert result["isError"] and "structuredContent" not in result, (arguments, result)
        assert next(iter(arguments)) in result["content"][0]["text"], result
