"""Held work back before its time is refused from memory (edge/held_back.py), per agent
token: no one can make another agent's calls refused that way. Attacked through a real
`serve --http` on PostgreSQL with real tokens, the write lock held by another session (as
a deployment past capacity holds it) so that held work is refused `Overloaded`: agent
alice acts as bob (her token naming him, with his task and lease), is herself held back,
and keeps calling early; tokens of other kinds under bob's name (an operator's, a run
token's) are refused by the store. Bob is never answered from memory for any of it, his
own time told is not moved by alice's calls, and at its time he is served."""

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg
import pytest

from tests.http.conftest import MCP_HEADERS, http_server
from wvo_mcp.config import Settings
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.services.bearer_tokens import Scope
from wvo_mcp.store import postgres

pytestmark = [pytest.mark.anyio, pytest.mark.process]

NOT_YET = "its time to come back is not yet"  # edge/held_back.py's refusal
BOUND_S = 30  # far beyond the waits of the calls made under it (half a second each)
TRIES = 6  # a call made again at once: refused from memory by then


async def prepare(url: str, work: Path) -> dict[str, str]:
    """Two tasks and the tokens, made by the store's own code: agents alice and bob, and
    under bob's name an operator's token and a run token for his task."""
    settings = Settings(state_root=work, database_url=url, otel_enabled=False)
    orchestrator = await Orchestrator.open(settings)
    try:
        specs = [TaskSpec(id=i, title=f"task {i}") for i in ("t1", "t2")]
        await orchestrator.create_tasks(specs, actor="test")
        add = orchestrator.token_add
        run = Scope(task="t2", purpose="worker")
        later = datetime.now(UTC) + timedelta(hours=1)
        return {
            "alice": (await add("agent", "alice", by="person:test")).secret,
            "bob": (await add("agent", "bob", by="person:test")).secret,
            "operator bob": (await add("operator", "bob", by="person:test")).secret,
            "run of bob": (
                await add("agent", "bob", by="person:test", expires_at=later, scope=run)
            ).secret,
        }
    finally:
        await orchestrator.close()


class Caller:
    """Tool calls over one client (one connection, whoever's token each call sends)."""

    def __init__(self, client: httpx2.AsyncClient, url: str, secrets: dict[str, str]) -> None:
        self.client, self.url, self.secrets = client, url, secrets
        self.ids = 0

    async def __call__(self, who: str, tool: str, **arguments: Any) -> dict[str, Any]:
        self.ids += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self.ids, "method": "tools/call",
                           "params": {"name": tool, "arguments": arguments}})  # fmt: skip
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {self.secrets[who]}"}
        answer = await self.client.post(self.url, content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["result"])

    async def refused(self, who: str, tool: str, **arguments: Any) -> str:
        result = await self(who, tool, **arguments)
        assert result.get("isError"), (who, tool, result)
        return str(result["content"][0]["text"])


def told(text: str) -> float:
    found = re.search(r"retry in ([0-9.]+) s", text)
    assert found is not None, text
    return float(found[1])


async def test_no_agent_can_make_another_agents_calls_refused_from_memory(
    pg_migrated: Callable[[str], str], tmp_path: Path
) -> None:
    url = pg_migrated("held_back_security")
    secrets = await prepare(url, tmp_path / "cli")
    env = {"WVO_DATABASE_URL": url, "WVO_HTTP_RATE_PER_TOKEN": "0"}
    with http_server(tmp_path / "host", **env) as server:
        async with server.http() as client:
            call = Caller(client, server.url, secrets)
            leases = {}
            for who, task in (("alice", "t1"), ("bob", "t2")):
                held = await call(who, "claim_task", task_id=task)
                assert held["structuredContent"]["claimed"], held
                leases[who] = {"task_id": task,
                               "lease_token": held["structuredContent"]["lease_token"]}  # fmt: skip
            bobs = leases["bob"]
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as other:
                await other.execute("SELECT pg_advisory_lock(%s)", (postgres.WRITE_LOCK_KEY,))
                with anyio.fail_after(BOUND_S):
                    # Alice's token acting as bob, with his own task and lease: refused for
                    # what it is, never held against him.
                    for tool, arguments in (
                        ("heartbeat", bobs),
                        ("checkpoint", {**bobs, "summary": "as bob", "progress": 50}),
                        ("claim_task", {}),
                    ):
                        said = await call.refused("alice", tool, agent_id="bob", **arguments)
                        assert "it cannot act as 'bob'" in said, said
                    # Alice herself past capacity: told to wait, then refused from memory.
                    texts = [await call.refused("alice", "heartbeat", **leases["alice"])]
                    while NOT_YET not in texts[-1] and len(texts) < TRIES:
                        texts.append(await call.refused("alice", "heartbeat", **leases["alice"]))
                    assert NOT_YET not in texts[0] and NOT_YET in texts[-1], texts
                    # Her early calls, as herself and naming bob: answered as hers.
                    for arguments in (leases["alice"], {"agent_id": "bob", **bobs}):
                        said = await call.refused("alice", "heartbeat", **arguments)
                        assert "Overloaded:" in said or "cannot act as 'bob'" in said, said
                    # Other tokens under bob's name: refused by the store each time, never
                    # from memory, so never told to wait for him (nor for themselves).
                    for who in ("operator bob", "run of bob"):
                        for _ in range(2):
                            said = await call.refused(who, "heartbeat", **bobs)
                            assert "Overloaded:" in said and NOT_YET not in said, (who, said)
                    # Bob's own call: refused by the store, not from anyone's memory.
                    first = await call.refused("bob", "heartbeat", **bobs)
                    assert "Overloaded:" in first and NOT_YET not in first, first
                    # Now bob is told: alice's calls naming him do not move his time.
                    early = await call.refused("bob", "heartbeat", **bobs)
                    for _ in range(TRIES):
                        said = await call.refused("alice", "heartbeat", agent_id="bob", **bobs)
                        assert NOT_YET in said or "cannot act as 'bob'" in said, said
                    again = await call.refused("bob", "heartbeat", **bobs)
                    if NOT_YET in early and NOT_YET in again:  # else his time ran out between
                        assert told(again) <= told(early), (early, again)
            # The lock let go: bob, made again as told, is served.
            with anyio.fail_after(BOUND_S):
                while True:
                    result = await call("bob", "heartbeat", **bobs)
                    if not result.get("isError"):
                        break
                    text = result["content"][0]["text"]
                    assert "Overloaded:" in text, text
                    await anyio.sleep(told(text))
            # Renewed with his lease: alice's calls as bob took nothing of his.
            assert result["structuredContent"]["task_id"] == "t2", result
