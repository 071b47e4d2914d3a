"""plan_update(claim_next=true) through the MCP client: one call finishes a task and claims
the next, with a lease that works; a refused call changes nothing; nothing left and the WIP
limits answer as claim_task does."""

from pathlib import Path

import pytest

from tests.conftest import connect, open_db

pytestmark = pytest.mark.anyio
QUIET = {"WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0, "WVO_OTEL_ENABLED": 0}


def rows(state_root: Path) -> list[tuple[object, ...]]:
    with open_db(state_root) as db:
        tasks = db.execute("SELECT * FROM tasks ORDER BY id").fetchall()
        events = db.execute("SELECT * FROM task_events ORDER BY id").fetchall()
    return [tuple(r) for r in [*tasks, *events]]


async def test_done_returns_the_next_task_with_a_working_lease(state_root: Path) -> None:
    async with connect(state_root, WVO_AGENT_ID="w", **QUIET) as agent:
        await agent.call("task_create", tasks=[{"id": t, "title": t} for t in ("A", "B")])
        claim = await agent.call("claim_task")
        moved = await agent.call("plan_update", task_id=claim["task"]["id"], status="done",
                                 lease_token=claim["lease_token"], claim_next=True)  # fmt: skip
        assert moved["status"] == "done"
        following = moved["next"]
        # The same answer claim_task gives: the same fields, a new task and lease.
        assert sorted(following) == sorted(claim)
        assert following["claimed"] is True and following["agent_id"] == "w"
        assert following["task"]["id"] == "B" and following["lease_token"] != claim["lease_token"]
        held = {"task_id": "B", "lease_token": following["lease_token"]}
        assert (await agent.call("heartbeat", **held))["task_id"] == "B"
        last = await agent.call("plan_update", status="done", claim_next=True, **held)
        # Nothing left: the move stands, and `next` says why as claim_task would.
        assert last["status"] == "done"
        assert last["next"] == {
            "claimed": False,
            "reason": "no_ready_task",
            "message": last["next"]["message"],
            "agent_id": "w",
        }
        assert "lease_token" not in last["next"]
        # Without claim_next the answer is as before: no `next`.
        await agent.call("task_create", tasks=[{"id": "C", "title": "c"}])
        c = await agent.call("claim_task")
        plain = await agent.call("plan_update", task_id="C", status="done",
                                 lease_token=c["lease_token"])  # fmt: skip
        assert "next" not in plain
    with open_db(state_root) as db:
        statuses = dict(db.execute("SELECT id, status FROM tasks").fetchall())
    assert statuses == {"A": "done", "B": "done", "C": "done"}


async def test_a_refused_update_claims_nothing(state_root: Path) -> None:
    async with connect(state_root, WVO_AGENT_ID="w", **QUIET) as agent:
        await agent.call("task_create", tasks=[{"id": t, "title": t} for t in ("A", "B")])
        claim = await agent.call("claim_task")
        before = rows(state_root)
        held = {"task_id": "A", "lease_token": claim["lease_token"]}
        lost = await agent.error("plan_update", task_id="A", lease_token="forged",
                                 status="done", claim_next=True)  # fmt: skip
        assert "LeaseLost" in lost
        for status in ("pending", "awaiting_approval"):
            refused = await agent.error("plan_update", status=status, claim_next=True, **held)
            assert "claim_next goes with" in refused and "Nothing was changed" in refused
        assert rows(state_root) == before
        # The refusal left the lease as it was: the holder finishes without claim_next.
        await agent.call("plan_update", status="pending", **held)


async def test_the_agents_wip_limit_holds(state_root: Path) -> None:
    """A reviewer holding its one task (WVO_WIP_PER_AGENT=1) finishes another agent's
    submitted task: the move is made, the claim refused at the limit."""
    async with connect(state_root, WVO_AGENT_ID="author", **QUIET) as author:
        await author.call("task_create", tasks=[{"id": t, "title": t} for t in ("R", "H", "N")])
        claim = await author.call("claim_task", task_id="R")
        await author.call("plan_update", task_id="R", status="needs_review",
                          lease_token=claim["lease_token"])  # fmt: skip
    async with connect(state_root, WVO_AGENT_ID="reviewer", WVO_WIP_PER_AGENT=1, **QUIET) as rev:
        assert (await rev.call("claim_task", task_id="H"))["claimed"]
        moved = await rev.call("plan_update", task_id="R", status="done", claim_next=True)
        assert moved["status"] == "done"
        assert moved["next"]["claimed"] is False
        assert moved["next"]["reason"] == "agent_wip_limit"
        assert "WVO_WIP_PER_AGENT=1" in moved["next"]["message"]
        assert (await rev.call("task_get", task_id="N"))["status"] == "pending"
