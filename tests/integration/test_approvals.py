"""Human approval from both sides: agents through the MCP client, the person through the CLI."""

import json
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from tests.conftest import connect, wvo

pytestmark = pytest.mark.anyio


def _ok(state_root: Path, *args: str) -> str:
    result = wvo(state_root, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def _until_past(stamp: str) -> None:
    """Let the clock pass `stamp` (an ISO time): what is waited for here is time itself,
    the old lease's expiry, not another process."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    await anyio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 0.05)
    assert datetime.now(UTC) > moment


async def test_mid_task_approval_suspends_the_lease_and_hands_the_task_back(
    state_root: Path,
) -> None:
    async with (
        connect(state_root, WVO_AGENT_ID="agent-a") as a,
        connect(state_root, WVO_AGENT_ID="agent-b") as b,
    ):
        await a.call("task_create", tasks=[{"id": "migrate", "title": "Migrate orders"}])
        claim = await a.call("claim_task", lease_seconds=1)
        token = claim["lease_token"]
        await a.call("checkpoint", task_id="migrate", lease_token=token, summary="script ready")
        asked = await a.call(
            "plan_update",
            task_id="migrate",
            lease_token=token,
            status="awaiting_approval",
            reason="about to drop the legacy orders table",
        )
        assert asked["status"] == "awaiting_approval"

        # The suspended lease does not run out: past the old expiry nobody can take the task.
        await _until_past(claim["lease_expires_at"])
        refused = await b.call("claim_task")
        assert not refused["claimed"] and refused["reason"] == "no_ready_task"
        waiting = await a.error("heartbeat", task_id="migrate", lease_token=token)
        assert "awaits a person's approval" in waiting and "suspended" in waiting
        noted = await a.call(
            "checkpoint", task_id="migrate", lease_token=token, summary="waiting for sign-off"
        )
        assert noted["seq"] == 2 and noted.get("lease_expires_at") is None

        status = json.loads(_ok(state_root, "status", "--json"))
        [entry] = status["awaiting_approval"]
        assert entry["id"] == "migrate" and entry["holder"] == "agent-a"
        assert entry["reason"] == "about to drop the legacy orders table"
        assert "about to drop the legacy orders table" in _ok(state_root, "status")

        assert "approved by person:alice" in _ok(
            state_root, "approve", "migrate", "--by", "alice", "--note", "backup verified"
        )
        task = await a.call("task_get", task_id="migrate")
        assert (task["status"], task["assigned_to"]) == ("in_progress", "agent-a")
        event = task["recent_events"][-1]
        assert (event["kind"], event["actor"], event["reason"]) == (
            "approved",
            "person:alice",
            "backup verified",
        )
        renewed = await a.call("heartbeat", task_id="migrate", lease_token=token)
        assert renewed["lease_expires_at"] > claim["lease_expires_at"]
        done = await a.call("plan_update", task_id="migrate", lease_token=token, status="done")
        assert done["status"] == "done"


async def test_rejections_cancel_or_hand_back_with_the_note(state_root: Path) -> None:
    async with connect(state_root, WVO_AGENT_ID="agent-a") as a:
        await a.call(
            "task_create", tasks=[{"id": "risky", "title": "r"}, {"id": "other", "title": "o"}]
        )
        first = await a.call("claim_task", task_id="risky")
        await a.call(
            "plan_update",
            task_id="risky",
            lease_token=first["lease_token"],
            status="awaiting_approval",
            reason="force-push main",
        )
        _ok(
            state_root,
            "reject",
            "risky",
            "--by",
            "bob",
            "--note",
            "rebase instead",
            "--to",
            "in_progress",
        )
        task = await a.call("task_get", task_id="risky")
        assert (task["status"], task["assigned_to"]) == ("in_progress", "agent-a")
        event = task["recent_events"][-1]
        assert (event["kind"], event["actor"], event["reason"]) == (
            "rejected",
            "person:bob",
            "rebase instead",
        )
        await a.call(
            "plan_update", task_id="risky", lease_token=first["lease_token"], status="done"
        )

        second = await a.call("claim_task", task_id="other")
        await a.call(
            "plan_update",
            task_id="other",
            lease_token=second["lease_token"],
            status="awaiting_approval",
            reason="delete the bucket",
        )
        _ok(state_root, "reject", "other", "--by", "bob", "--note", "never")
        assert (await a.call("task_get", task_id="other"))["status"] == "cancelled"
        lost = await a.error(
            "checkpoint", task_id="other", lease_token=second["lease_token"], summary="x"
        )
        assert "lease lost" in lost


async def test_a_gated_task_waits_for_approval_whenever_it_becomes_ready(
    state_root: Path,
) -> None:
    async with connect(state_root, WVO_AGENT_ID="agent-a") as a:
        await a.call("task_create", tasks=[{"id": "prod", "title": "p", "requires_approval": True}])
        assert (await a.call("task_get", task_id="prod"))["status"] == "awaiting_approval"
        refused = wvo(state_root, "reject", "prod", "--note", "not now", "--to", "pending")
        assert refused.returncode == 2 and "cancelled or blocked" in refused.stderr
        _ok(state_root, "reject", "prod", "--by", "carol", "--note", "not now", "--to", "blocked")
        assert (await a.call("task_get", task_id="prod"))["status"] == "blocked"
        # Re-queued, it asks again instead of becoming claimable unapproved.
        _ok(state_root, "requeue", "prod", "--by", "carol")
        assert (await a.call("task_get", task_id="prod"))["status"] == "awaiting_approval"
        assert not (await a.call("claim_task"))["claimed"]
        _ok(state_root, "approve", "prod", "--by", "carol")
        claim = await a.call("claim_task")
        assert claim["claimed"] and claim["task"]["id"] == "prod"
