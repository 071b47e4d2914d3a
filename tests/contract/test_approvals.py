"""Human approval: gated tasks wait for a person; a holder's request for approval suspends its
lease; approval hands the task back; rejection cancels, blocks or hands back with the note."""

import pytest

from tests.contract.conftest import World, create, events_of
from wvo_mcp.errors import IllegalTransition, LeaseLost, ValidationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status

pytestmark = pytest.mark.anyio


async def test_requires_approval_waits_for_a_person(world: World, orch: Orchestrator) -> None:
    created = await create(orch, {"id": "risky", "title": "drop table", "requires_approval": True})
    assert created.ready == []
    detail = await orch.get_task("risky")
    assert (detail.status, detail.requires_approval) == (Status.AWAITING_APPROVAL, True)
    assert (await orch.plan_next("bot")).tasks == []
    named = await orch.claim("bot", task_id="risky")
    assert (named.claimed, named.reason) == (False, "task_not_ready")
    assert (await orch.claim("bot")).reason == "no_ready_task"
    # An agent cannot approve it itself.
    with pytest.raises(IllegalTransition, match="approve"):
        await orch.update_status("risky", Status.PENDING, "bot")

    world.clock.advance(90)
    approved = await orch.approve("risky", "person:alice", "looks fine")
    assert (approved.previous_status, approved.status) == (
        Status.AWAITING_APPROVAL,
        Status.PENDING,
    )
    last = (await events_of(orch, "risky"))[-1]
    assert (last.kind, last.actor, last.reason, last.at) == (
        "approved",
        "person:alice",
        "looks fine",
        world.clock.text(),
    )
    claim = await orch.claim("bot")
    assert claim.task is not None and claim.task.id == "risky"
    with pytest.raises(IllegalTransition, match="awaiting_approval"):
        await orch.approve("risky", "person:alice")


async def test_the_gate_applies_once_dependencies_are_done(orch: Orchestrator) -> None:
    await create(
        orch,
        {"id": "prep", "title": "p"},
        {"id": "deploy", "title": "d", "depends_on": ["prep"], "requires_approval": True},
    )
    assert (await orch.get_task("deploy")).status is Status.PENDING
    claim = await orch.claim("a")
    assert claim.lease_token is not None
    done = await orch.update_status("prep", Status.DONE, "a", token=claim.lease_token)
    assert done.unblocked == []  # it needs approval first
    assert (await orch.get_task("deploy")).status is Status.AWAITING_APPROVAL
    last = (await events_of(orch, "deploy"))[-1]
    assert (last.actor, last.to_status) == ("scheduler", "awaiting_approval")
    assert (await orch.plan_next("a")).tasks == []
    await orch.approve("deploy", "person:bob")
    assert [t.id for t in (await orch.plan_next("a")).tasks] == ["deploy"]


async def test_mid_task_approval_suspends_the_lease_and_returns_the_task(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "migrate", "title": "Migrate orders"})
    claim = await orch.claim("agent-a", lease_seconds=30)
    token = claim.lease_token
    assert token is not None
    await orch.checkpoint("migrate", token, "agent-a", summary="script ready")
    asked = await orch.update_status(
        "migrate",
        Status.AWAITING_APPROVAL,
        "agent-a",
        token=token,
        reason="about to drop the legacy orders table",
    )
    assert asked.status is Status.AWAITING_APPROVAL

    # The suspended lease does not run out: long past the old expiry nobody can take it.
    world.clock.advance(3600)
    assert (await orch.claim("agent-b")).reason == "no_ready_task"
    refused = await orch.claim("agent-b", task_id="migrate")
    assert refused.reason == "task_not_ready"
    with pytest.raises(ValidationFailed, match="suspended"):
        await orch.heartbeat("migrate", token, "agent-a")
    noted = await orch.checkpoint("migrate", token, "agent-a", summary="waiting for sign-off")
    assert (noted.seq, noted.lease_expires_at) == (2, None)
    report = await orch.status_report("ops")
    assert report.awaiting_approval == [
        {
            "id": "migrate",
            "title": "Migrate orders",
            "holder": "agent-a",
            "waiting_seconds": 3600,
            "reason": "about to drop the legacy orders table",
        }
    ]

    approved = await orch.approve("migrate", "person:alice", "backup verified")
    assert approved.status is Status.IN_PROGRESS
    detail = await orch.get_task("migrate")
    assert (detail.status, detail.assigned_to) == (Status.IN_PROGRESS, "agent-a")
    assert detail.lease_expires_at == world.clock.text(30)  # a fresh lease of the same length
    assert detail.lease_epoch == 1  # the same grant, not a new one
    world.clock.advance(20)
    renewed = await orch.heartbeat("migrate", token, "agent-a")
    assert renewed.lease_expires_at == world.clock.text(30)
    done = await orch.update_status("migrate", Status.DONE, "agent-a", token=token)
    assert done.status is Status.DONE


async def test_rejections_hand_back_or_cancel(orch: Orchestrator) -> None:
    await create(orch, {"id": "risky", "title": "r"}, {"id": "other", "title": "o"})
    first = await orch.claim("agent-a", task_id="risky")
    assert first.lease_token is not None
    await orch.update_status(
        "risky", Status.AWAITING_APPROVAL, "agent-a", token=first.lease_token, reason="force-push"
    )
    back = await orch.reject("risky", "person:bob", "rebase instead", to=Status.IN_PROGRESS)
    assert back.status is Status.IN_PROGRESS
    detail = await orch.get_task("risky")
    assert (detail.status, detail.assigned_to) == (Status.IN_PROGRESS, "agent-a")
    last = (await events_of(orch, "risky"))[-1]
    assert (last.kind, last.actor, last.reason) == ("rejected", "person:bob", "rebase instead")
    await orch.update_status("risky", Status.DONE, "agent-a", token=first.lease_token)

    second = await orch.claim("agent-a", task_id="other")
    assert second.lease_token is not None
    await orch.update_status("other", Status.AWAITING_APPROVAL, "agent-a", token=second.lease_token)
    cancelled = await orch.reject("other", "person:bob", "never")
    assert cancelled.status is Status.CANCELLED
    assert (await orch.get_task("other")).status is Status.CANCELLED
    with pytest.raises(LeaseLost):
        await orch.checkpoint("other", second.lease_token, "agent-a", summary="x")


async def test_a_gated_task_asks_again_whenever_it_becomes_ready(orch: Orchestrator) -> None:
    await create(orch, {"id": "prod", "title": "p", "requires_approval": True})
    with pytest.raises(ValidationFailed, match="cancelled or blocked"):
        await orch.reject("prod", "person:carol", "not now", to=Status.PENDING)
    with pytest.raises(ValidationFailed, match="no holder"):
        await orch.reject("prod", "person:carol", "not now", to=Status.IN_PROGRESS)
    assert (await orch.get_task("prod")).status is Status.AWAITING_APPROVAL
    blocked = await orch.reject("prod", "person:carol", "not now", to=Status.BLOCKED)
    assert blocked.status is Status.BLOCKED
    # Re-queued, it asks again instead of becoming claimable unapproved.
    requeued = await orch.requeue("prod", "person:carol")
    assert requeued.status is Status.AWAITING_APPROVAL
    assert not (await orch.claim("a")).claimed
    await orch.approve("prod", "person:carol")
    claim = await orch.claim("a")
    assert claim.task is not None and claim.task.id == "prod"
