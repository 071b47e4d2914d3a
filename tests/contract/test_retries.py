"""Failures: back-off exactly per the retry base and cap, the dead letter at max_attempts, and
a person's re-queue."""

import pytest

from tests.contract.conftest import World, at, create, events_of
from wvo_mcp.errors import IllegalTransition
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status

pytestmark = pytest.mark.anyio


async def test_a_failure_backs_off_for_the_retry_base(world: World) -> None:
    orch = await world.open(retry_base_seconds=20, retry_cap_seconds=300)
    await create(orch, {"id": "job", "title": "j", "max_attempts": 3})
    claim = await orch.claim("w")
    assert claim.lease_token is not None
    world.clock.advance(3)
    failed = await orch.update_status(
        "job", Status.FAILED, "w", token=claim.lease_token, reason="tests red"
    )
    assert (failed.previous_status, failed.status, failed.attempts) == (
        Status.IN_PROGRESS,
        Status.PENDING,
        1,
    )
    assert failed.not_before == world.clock.text(20)
    assert "failure 1 of 3" in failed.message
    detail = await orch.get_task("job")
    assert (detail.status, detail.attempts, detail.not_before) == (
        Status.PENDING,
        1,
        failed.not_before,
    )
    assert detail.assigned_to is None and detail.lease_expires_at is None
    last = (await events_of(orch, "job"))[-1]
    assert (last.from_status, last.to_status, last.reason) == (
        "in_progress",
        "pending",
        "tests red",
    )

    plan = await orch.plan_next("w")
    assert plan.tasks == [] and plan.counts.backing_off == 1 and plan.counts.ready == 0
    world.clock.advance(19.999)
    refused = await orch.claim("w", task_id="job")
    assert refused.reason == "task_not_ready"
    assert f"backing off after a failure until {failed.not_before}" in refused.message
    assert (await orch.claim("w")).reason == "no_ready_task"
    world.clock.advance(0.001)  # claimable from not_before itself
    again = await orch.claim("w")
    assert again.claimed and again.attempt == 2
    assert (await orch.get_task("job")).not_before is None


async def test_the_back_off_doubles_up_to_the_cap(world: World) -> None:
    orch = await world.open(retry_base_seconds=10, retry_cap_seconds=25)
    await create(orch, {"id": "job", "title": "j", "max_attempts": 5})
    delays = []
    for _ in range(4):
        claim = await orch.claim("w", task_id="job")
        assert claim.claimed and claim.lease_token is not None, claim.message
        failed = await orch.update_status("job", Status.FAILED, "w", token=claim.lease_token)
        assert failed.not_before is not None
        delays.append((at(failed.not_before) - world.clock.now()).total_seconds())
        world.clock.advance(delays[-1])
    assert delays == [10, 20, 25, 25]
    claim = await orch.claim("w", task_id="job")
    assert claim.attempt == 5 and claim.lease_token is not None
    dead = await orch.update_status("job", Status.FAILED, "w", token=claim.lease_token)
    assert (dead.status, dead.attempts, dead.not_before) == (Status.FAILED, 5, None)


async def test_max_attempts_dead_letters_and_a_person_requeues(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "job", "title": "j", "max_attempts": 2})
    first = await orch.claim("w")
    assert first.lease_token is not None
    await orch.update_status("job", Status.FAILED, "w", token=first.lease_token)
    world.clock.advance(10)  # the retry base
    second = await orch.claim("w", task_id="job")
    assert second.attempt == 2 and second.lease_token is not None
    dead = await orch.update_status("job", Status.FAILED, "w", token=second.lease_token)
    assert (dead.status, dead.attempts, dead.not_before) == (Status.FAILED, 2, None)
    assert "dead-letter" in dead.message and "2 of 2" in dead.message

    named = await orch.claim("w", task_id="job")
    assert (named.claimed, named.reason) == (False, "task_not_ready")
    assert "'failed', not pending" in named.message
    assert (await orch.claim("w")).reason == "no_ready_task"
    plan = await orch.plan_next("w")
    assert plan.tasks == [] and plan.counts.by_status == {"failed": 1}
    report = await orch.status_report("w")
    assert [t.id for t in report.dead_letters] == ["job"]

    # Only a person re-queues a dead letter.
    with pytest.raises(IllegalTransition, match="requeue"):
        await orch.update_status("job", Status.PENDING, "w")
    assert (await orch.get_task("job")).status is Status.FAILED

    moved = await orch.requeue("job", "person:carol", "flake fixed")
    assert (moved.previous_status, moved.status, moved.attempts) == (
        Status.FAILED,
        Status.PENDING,
        0,
    )
    last = (await events_of(orch, "job"))[-1]
    assert (last.actor, last.reason, last.to_status) == ("person:carol", "flake fixed", "pending")
    third = await orch.claim("w")
    assert third.claimed and third.attempt == 1


async def test_illegal_moves_name_the_legal_ones(orch: Orchestrator) -> None:
    await create(orch, {"id": "job", "title": "j"})
    with pytest.raises(IllegalTransition, match="legal next statuses") as refused:
        await orch.update_status("job", Status.DONE, "w")
    assert "may not move a task from 'pending'" in str(refused.value)
    with pytest.raises(IllegalTransition, match="claim_task"):
        await orch.update_status("job", Status.IN_PROGRESS, "w")
    with pytest.raises(IllegalTransition, match="only a person"):
        await orch.update_status("job", Status.CANCELLED, "w")
    assert (await orch.get_task("job")).status is Status.PENDING

    claim = await orch.claim("w")
    assert claim.lease_token is not None
    await orch.update_status("job", Status.DONE, "w", token=claim.lease_token)
    with pytest.raises(IllegalTransition, match="final"):
        await orch.update_status("job", Status.PENDING, "w")
    with pytest.raises(IllegalTransition):
        await orch.requeue("job", "person:carol")
    assert (await orch.get_task("job")).status is Status.DONE
