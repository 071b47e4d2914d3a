"""Past capacity over HTTP (docs/http.md): a real `serve --http` on PostgreSQL, agents with
their own tokens through the SDK's client, and the claim lock held by another session, as
another server's claims hold it when the deployment is full. A claim that could be granted
is refused as busy with a time to come back, and nothing is done; claims now queueing, one
sure to be refused is refused from a read; a heartbeat is served; once the turn is free
the claim made again is granted."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest

from tests.http.conftest import connect, http_server
from wvo_mcp.config import Settings
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.claim_gate import RETRY_MAX_S, RETRY_MIN_S
from wvo_mcp.store import postgres

pytestmark = [pytest.mark.anyio, pytest.mark.process]

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
