"""Leases through the MCP client: expiry and hand-over between servers, fencing of the
old holder, retries with back-off, dead letters, re-queue, release and illegal moves."""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from tests.conftest import HANG_SECONDS, claim_when_possible, connect, wvo

pytestmark = pytest.mark.anyio

DEADLINE_SECONDS = HANG_SECONDS  # a guard against a hang, never a time to beat


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_expired_lease_passes_to_another_agent(state_root: Path) -> None:
    async with (
        connect(state_root, WVO_AGENT_ID="agent-a") as a,
        connect(state_root, WVO_AGENT_ID="agent-b") as b,
    ):
        await a.call("task_create", tasks=[{"id": "job", "title": "the job"}])
        first = await a.call("claim_task", lease_seconds=1)
        assert first["claimed"] and first["attempt"] == 1
        token_a = first["lease_token"]
        await a.call(
            "checkpoint",
            task_id="job",
            lease_token=token_a,
            summary="schema done, API half written",
            next_steps="finish the API",
            progress=50,
            files=["api.py"],
        )

        second = await claim_when_possible(b)
        assert second["agent_id"] == "agent-b"
        assert second["task"]["id"] == "job"
        assert second["attempt"] == 2
        assert second["lease_token"] != token_a
        handed = second["last_checkpoint"]
        assert handed is not None
        assert handed["summary"] == "schema done, API half written"
        assert handed["next_steps"] == "finish the API"
        assert handed["progress"] == 50 and handed["files"] == ["api.py"]
        assert handed["agent_id"] == "agent-a" and handed["seq"] == 1
        task = await b.call("task_get", task_id="job")
        assert task["assigned_to"] == "agent-b"
        assert task["attempts"] == 1 and task["lease_epoch"] == 2
        assert "lease_expired" in [e["kind"] for e in task["recent_events"]]

        # The old holder is fenced off, and told who holds the task now.
        for tool, args in [
            ("checkpoint", {"summary": "still working"}),
            ("heartbeat", {}),
            ("heartbeat", {"lease_seconds": 600}),
            ("plan_update", {"status": "done"}),
            ("plan_update", {"status": "failed"}),
            ("plan_update", {"status": "pending"}),
        ]:
            text = await a.error(tool, task_id="job", lease_token=token_a, **args)
            assert "lease lost" in text, (tool, text)
            assert "agent-b" in text, (tool, text)

        task = await b.call("task_get", task_id="job")
        assert task["status"] == "in_progress" and task["assigned_to"] == "agent-b"
        assert task["latest_checkpoint"]["seq"] == 1  # A's refused checkpoint left no trace
        assert task["attempts"] == 1

        token_b = second["lease_token"]
        assert (await b.call("checkpoint", task_id="job", lease_token=token_b, summary="api"))[
            "seq"
        ] == 2
        done = await b.call("plan_update", task_id="job", status="done", lease_token=token_b)
        assert done["status"] == "done"
        # Done stays done: the old holder still cannot touch it.
        text = await a.error("plan_update", task_id="job", status="failed", lease_token=token_a)
        assert "'done'" in text
        assert (await b.call("task_get", task_id="job"))["status"] == "done"


async def test_stale_lease_token_is_refused_after_release(state_root: Path) -> None:
    """An old holder's token must not move the task once someone else has held it."""
    async with (
        connect(state_root, WVO_AGENT_ID="agent-a") as a,
        connect(state_root, WVO_AGENT_ID="agent-b") as b,
    ):
        await a.call("task_create", tasks=[{"id": "job", "title": "j"}])
        stale = (await a.call("claim_task", lease_seconds=1))["lease_token"]
        second = await claim_when_possible(b)
        await b.call(
            "plan_update", task_id="job", status="pending", lease_token=second["lease_token"]
        )
        text = await a.error(
            "plan_update", task_id="job", status="blocked", lease_token=stale, reason="zombie"
        )
        assert "lease lost" in text
        task = await b.call("task_get", task_id="job")
        assert task["status"] == "pending"


async def test_lost_leases_count_as_attempts_until_dead_letter(state_root: Path) -> None:
    async with (
        connect(state_root, WVO_AGENT_ID="agent-a") as a,
        connect(state_root, WVO_AGENT_ID="agent-b") as b,
    ):
        await a.call("task_create", tasks=[{"id": "flaky", "title": "f", "max_attempts": 2}])
        first = await a.call("claim_task", lease_seconds=1)
        second = await claim_when_possible(b, task_id="flaky", lease_seconds=1)
        assert second["attempt"] == 2
        assert second["lease_token"] != first["lease_token"]

        # B goes silent too: that is the last attempt, so the next claim dead-letters it.
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            result = await a.call("claim_task")
            assert not result["claimed"], "a task out of attempts was granted again"
            task = await a.call("task_get", task_id="flaky")
            if task["status"] == "failed":
                break
            assert time.monotonic() < deadline, f"still {task['status']} after the deadline"
            await anyio.sleep(0.05)
        assert task["attempts"] == 2 and task.get("assigned_to") is None
        assert task["recent_events"][-1]["kind"] == "dead_lettered"
        text = await b.error(
            "checkpoint", task_id="flaky", lease_token=second["lease_token"], summary="s"
        )
        assert "lease lost" in text and "failed" in text


async def test_failure_backs_off_then_dead_letters_and_requeue(state_root: Path) -> None:
    async with connect(state_root, WVO_AGENT_ID="worker", WVO_RETRY_BASE_SECONDS=0.2) as a:
        await a.call("task_create", tasks=[{"id": "job", "title": "j", "max_attempts": 2}])
        first = await a.call("claim_task")
        failed = await a.call(
            "plan_update",
            task_id="job",
            status="failed",
            lease_token=first["lease_token"],
            reason="tests red",
        )
        assert (failed["previous_status"], failed["status"]) == ("in_progress", "pending")
        assert failed["attempts"] == 1
        assert failed["not_before"] is not None
        assert "1 of 2" in failed["message"]
        task = await a.call("task_get", task_id="job")
        assert task["status"] == "pending" and task["attempts"] == 1
        assert task.get("assigned_to") is None and task.get("lease_expires_at") is None
        assert task["not_before"] == failed["not_before"]
        failure = task["recent_events"][-1]
        assert (failure["from_status"], failure["to_status"]) == ("in_progress", "pending")
        assert failure["reason"] == "tests red"
        # Back-off = WVO_RETRY_BASE_SECONDS after the first failure.
        assert at(failed["not_before"]) - at(failure["at"]) == timedelta(seconds=0.2)

        second = await claim_when_possible(a, task_id="job")
        assert second["attempt"] == 2
        task = await a.call("task_get", task_id="job")
        claimed = task["recent_events"][-1]
        assert claimed["kind"] == "claimed"
        assert at(claimed["at"]) >= at(failed["not_before"]), "granted during the back-off"
        assert task.get("not_before") is None

        dead = await a.call(
            "plan_update", task_id="job", status="failed", lease_token=second["lease_token"]
        )
        assert dead["status"] == "failed" and dead["attempts"] == 2
        assert dead.get("not_before") is None

        named = await a.call("claim_task", task_id="job")
        assert named["claimed"] is False and named["reason"] == "task_not_ready"
        assert (await a.call("claim_task"))["reason"] == "no_ready_task"
        plan = await a.call("plan_next")
        assert plan.get("tasks", []) == [] and plan["counts"]["by_status"]["failed"] == 1
        # Only a person re-queues a dead letter.
        text = await a.error("plan_update", task_id="job", status="pending")
        assert "requeue" in text

        cli = wvo(state_root, "requeue", "job", "--by", "carol", "--reason", "flake fixed")
        assert cli.returncode == 0, cli.stderr
        assert "job" in cli.stdout
        task = await a.call("task_get", task_id="job")
        assert task["status"] == "pending" and task["attempts"] == 0
        requeued = task["recent_events"][-1]
        assert (requeued["actor"], requeued["reason"]) == ("person:carol", "flake fixed")
        third = await a.call("claim_task")
        assert third["claimed"] and third["attempt"] == 1


async def test_dead_letter_message_says_so(state_root: Path) -> None:
    async with connect(state_root) as a:
        await a.call("task_create", tasks=[{"id": "once", "title": "o", "max_attempts": 1}])
        claim = await a.call("claim_task")
        dead = await a.call(
            "plan_update", task_id="once", status="failed", lease_token=claim["lease_token"]
        )
        assert dead["status"] == "failed" and dead["attempts"] == 1
        # The agent must learn the task will not be retried and who can re-queue it.
        assert "dead-letter" in dead["message"], dead["message"]
        assert "1 of 1" in dead["message"], dead["message"]


async def test_plan_next_lists_tasks_whose_lease_expired(state_root: Path) -> None:
    """claim_task grants an expired lease at once, so plan_next should offer it too."""
    async with (
        connect(state_root, WVO_AGENT_ID="agent-a") as a,
        connect(state_root, WVO_AGENT_ID="agent-b") as b,
    ):
        await a.call("task_create", tasks=[{"id": "job", "title": "j"}])
        claim = await a.call("claim_task", lease_seconds=1)
        deadline = at(claim["lease_expires_at"]) + timedelta(seconds=5)
        while True:
            plan = await b.call("plan_next")
            if [t["id"] for t in plan["tasks"]] == ["job"]:
                break
            assert datetime.now(UTC) < deadline, (
                f"plan_next still offers nothing after the lease expired: {plan['counts']}"
            )
            await anyio.sleep(0.05)
        assert plan["counts"]["ready"] >= 1
        assert (await b.call("claim_task"))["task"]["id"] == "job"


async def test_back_off_doubles_up_to_the_cap(state_root: Path) -> None:
    async with connect(
        state_root, WVO_RETRY_BASE_SECONDS=0.2, WVO_RETRY_CAP_SECONDS=0.3, WVO_AGENT_ID="w"
    ) as a:
        await a.call("task_create", tasks=[{"id": "job", "title": "j", "max_attempts": 5}])
        delays = []
        for _ in range(3):
            claim = await claim_when_possible(a, task_id="job")
            failed = await a.call(
                "plan_update", task_id="job", status="failed", lease_token=claim["lease_token"]
            )
            event = (await a.call("task_get", task_id="job"))["recent_events"][-1]
            delays.append((at(failed["not_before"]) - at(event["at"])).total_seconds())
        assert delays == [0.2, 0.3, 0.3]


async def test_plan_update_needs_the_lease_token(state_root: Path) -> None:
    async with connect(state_root, WVO_AGENT_ID="holder") as a:
        await a.call("task_create", tasks=[{"id": "job", "title": "j"}])
        claim = await a.call("claim_task")
        text = await a.error("plan_update", task_id="job", status="done")
        assert "lease_token" in text
        text = await a.error("plan_update", task_id="job", status="done", lease_token="f" * 32)
        assert "lease lost" in text and "holder" in text
        text = await a.error("heartbeat", task_id="job", lease_token="not-the-token")
        assert "lease lost" in text
        task = await a.call("task_get", task_id="job")
        assert task["status"] == "in_progress" and task["assigned_to"] == "holder"
        assert task["lease_expires_at"] == claim["lease_expires_at"]


async def test_illegal_transitions_name_the_legal_moves(state_root: Path) -> None:
    async with connect(state_root) as a:
        await a.call("task_create", tasks=[{"id": "job", "title": "j"}])
        text = await a.error("plan_update", task_id="job", status="done")
        assert "'pending'" in text and "'done'" in text
        assert "legal next statuses" in text
        assert "cancelled" in text and "may not move a task from 'pending'" in text
        text = await a.error("plan_update", task_id="job", status="in_progress")
        assert "claim_task" in text
        assert (await a.call("task_get", task_id="job"))["status"] == "pending"

        claim = await a.call("claim_task")
        await a.call("plan_update", task_id="job", status="done", lease_token=claim["lease_token"])
        text = await a.error("plan_update", task_id="job", status="pending")
        assert "'done'" in text and "final" in text
        task = await a.call("task_get", task_id="job")
        assert task["status"] == "done" and task["recent_events"][-1]["to_status"] == "done"


async def test_release_makes_the_task_claimable_by_another_agent(state_root: Path) -> None:
    async with (
        connect(state_root, WVO_AGENT_ID="agent-a") as a,
        connect(state_root, WVO_AGENT_ID="agent-b") as b,
    ):
        await a.call("task_create", tasks=[{"id": "job", "title": "j"}])
        first = await a.call("claim_task")
        assert (await b.call("claim_task"))["reason"] == "no_ready_task"
        await a.call("checkpoint", task_id="job", lease_token=first["lease_token"], summary="notes")
        released = await a.call(
            "plan_update",
            task_id="job",
            status="pending",
            lease_token=first["lease_token"],
            reason="switching to something urgent",
        )
        assert (released["previous_status"], released["status"]) == ("in_progress", "pending")
        assert released["attempts"] == 0 and released.get("not_before") is None

        second = await b.call("claim_task")
        assert second["claimed"] and second["task"]["id"] == "job"
        assert second["attempt"] == 1  # a release is not a failure
        assert second["last_checkpoint"]["summary"] == "notes"
        assert (await b.call("task_get", task_id="job"))["lease_epoch"] == 2
        text = await a.error("heartbeat", task_id="job", lease_token=first["lease_token"])
        assert "lease lost" in text and "agent-b" in text
        # A is free to take other work.
        assert (await a.call("plan_next"))["counts"]["wip_agent_used"] == 0


async def test_requeue_of_a_stuck_task_fences_its_holder(state_root: Path) -> None:
    async with connect(state_root, WVO_AGENT_ID="stuck") as a:
        await a.call("task_create", tasks=[{"id": "job", "title": "j"}])
        claim = await a.call("claim_task")
        cli = wvo(state_root, "requeue", "job", "--by", "ops")
        assert cli.returncode == 0, cli.stderr
        text = await a.error(
            "checkpoint", task_id="job", lease_token=claim["lease_token"], summary="s"
        )
        assert "lease lost" in text
        task = await a.call("task_get", task_id="job")
        assert task["status"] == "pending" and task.get("assigned_to") is None
        again = await a.call("claim_task")
        assert again["claimed"] and again["lease_token"] != claim["lease_token"]


async def test_approval_mid_work_returns_the_task_to_its_holder(state_root: Path) -> None:
    async with (
        connect(state_root, WVO_AGENT_ID="holder") as a,
        connect(state_root, WVO_AGENT_ID="other") as other,
    ):
        await a.call("task_create", tasks=[{"id": "job", "title": "j"}])
        claim = await a.call("claim_task", lease_seconds=600)
        token = claim["lease_token"]
        waiting = await a.call(
            "plan_update", task_id="job", status="awaiting_approval", lease_token=token
        )
        assert waiting["status"] == "awaiting_approval"
        assert (await other.call("claim_task"))["reason"] == "no_ready_task"
        cli = wvo(state_root, "approve", "job", "--by", "dana")
        assert cli.returncode == 0, cli.stderr
        task = await a.call("task_get", task_id="job")
        assert task["status"] == "in_progress" and task["assigned_to"] == "holder"
        assert task["lease_expires_at"] is not None
        beat = await a.call("heartbeat", task_id="job", lease_token=token)
        assert beat["task_id"] == "job"
        done = await a.call("plan_update", task_id="job", status="done", lease_token=token)
        assert done["status"] == "done"
