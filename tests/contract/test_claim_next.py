"""plan_update's claim_next (Orchestrator.update_and_claim): the move, then the agent's next
claim as claim_task would make it, in one call and one transaction (two when the task has a
verify_command); a refused move claims nothing, a failed claim leaves the move standing."""

import pytest

from tests.contract.conftest import World, create, events_of
from wvo_mcp.errors import LeaseLost, ValidationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status

pytestmark = pytest.mark.anyio


async def holding(orch: Orchestrator, agent: str, task_id: str) -> str:
    claim = await orch.claim(agent, task_id)
    assert claim.claimed and claim.lease_token is not None, claim
    return claim.lease_token


async def test_done_claims_the_task_it_unblocked_with_a_working_lease(
    world: World, orch: Orchestrator
) -> None:
    await create(
        orch,
        {"id": "A", "title": "a"},
        {"id": "B", "title": "b", "depends_on": ["A"], "business_value": 20},
        {"id": "C", "title": "c"},
    )
    token = await holding(orch, "w", "A")
    moved = await orch.update_and_claim("A", Status.DONE, "w", token, None)
    assert moved.status is Status.DONE and moved.unblocked == ["B"]
    # The claim ran after the move committed: it saw B ready, and B outranks C.
    claimed = moved.next
    assert claimed is not None and claimed.claimed and claimed.task is not None
    assert claimed.task.id == "B" and claimed.agent_id == "w" and claimed.attempt == 1
    assert claimed.lease_token is not None and claimed.lease_token != token
    assert claimed.lease_seconds == world.settings().default_lease_seconds
    await orch.heartbeat("B", claimed.lease_token, "w")
    assert [(e.actor, e.kind, e.to_status) for e in await events_of(orch, "B")][-1] == (
        "w", "claimed", "in_progress",
    )  # fmt: skip


@pytest.mark.parametrize(
    "status", [Status.NEEDS_REVIEW, Status.FAILED, Status.BLOCKED, Status.CANCELLED]
)
async def test_every_move_that_lets_go_claims_the_next(orch: Orchestrator, status: Status) -> None:
    await create(orch, {"id": "A", "title": "a"}, {"id": "B", "title": "b"})
    token = await holding(orch, "w", "A")
    moved = await orch.update_and_claim("A", status, "w", token, "why")
    assert moved.next is not None and moved.next.task is not None
    assert moved.next.task.id == "B"


async def test_a_refused_move_claims_nothing(orch: Orchestrator) -> None:
    await create(orch, {"id": "A", "title": "a"}, {"id": "B", "title": "b"})
    token = await holding(orch, "w", "A")
    with pytest.raises(LeaseLost):
        await orch.update_and_claim("A", Status.DONE, "w", "not-the-token", None)
    for status in (Status.PENDING, Status.AWAITING_APPROVAL, Status.IN_PROGRESS):
        with pytest.raises(ValidationFailed, match="claim_next goes with") as refused:
            await orch.update_and_claim("A", status, "w", token, None)
        assert "Nothing was changed" in str(refused.value)
    assert (await orch.get_task("A")).status is Status.IN_PROGRESS
    assert (await orch.get_task("B")).status is Status.PENDING
    assert [e.kind for e in await events_of(orch, "B")] == ["created"]
    await orch.heartbeat("A", token, "w")  # still the holder


async def test_nothing_left_to_claim_says_why_and_the_move_stands(orch: Orchestrator) -> None:
    await create(orch, {"id": "A", "title": "a"}, {"id": "B", "title": "b", "depends_on": ["X"]},
                 {"id": "X", "title": "x", "requires_approval": True})  # fmt: skip
    token = await holding(orch, "w", "A")
    moved = await orch.update_and_claim("A", Status.DONE, "w", token, None)
    assert moved.status is Status.DONE
    assert moved.next is not None and not moved.next.claimed
    assert moved.next.reason == "no_ready_task" and moved.next.lease_token is None
    assert (await orch.get_task("A")).status is Status.DONE


async def test_the_wip_limits_hold(world: World) -> None:
    """A reviewer at its per-agent limit finishes someone's submitted task: the move is made,
    the claim refused at the limit; the global limit holds the same way."""
    orch = await world.open(wip_per_agent=1, wip_global=2)
    await create(orch, *({"id": t, "title": t} for t in ("R", "S", "H", "N", "M")))
    for author, task_id in (("author", "R"), ("author-2", "S")):
        token = await holding(orch, author, task_id)
        await orch.update_status(task_id, Status.NEEDS_REVIEW, author, token)
    await holding(orch, "reviewer", "H")
    moved = await orch.update_and_claim("R", Status.DONE, "reviewer", None, None)
    assert moved.status is Status.DONE
    assert moved.next is not None and moved.next.reason == "agent_wip_limit"
    assert (await orch.get_task("N")).status is Status.PENDING

    await holding(orch, "other", "N")  # H and N: the global limit
    moved = await orch.update_and_claim("S", Status.DONE, "fourth", None, None)
    assert moved.status is Status.DONE
    assert moved.next is not None and moved.next.reason == "global_wip_limit"
    assert (await orch.get_task("M")).status is Status.PENDING


async def test_a_claim_that_fails_after_the_move_leaves_the_move_standing(
    world: World, orch: Orchestrator
) -> None:
    """The agent's declared model is unknown to this server's providers: the claim raises
    once the move is made; the answer still reports the move, with why nothing was claimed."""
    await create(orch, {"id": "A", "title": "a"}, {"id": "B", "title": "b"})
    token = await holding(orch, "w", "A")
    elsewhere = await world.open(agent_provider="nowhere", agent_model="none")
    moved = await elsewhere.update_and_claim("A", Status.DONE, "w", token, None)
    assert moved.status is Status.DONE
    assert moved.next is not None and not moved.next.claimed
    assert moved.next.reason == "claim_failed"
    assert "ValidationFailed" in moved.next.message and "call claim_task" in moved.next.message
    assert (await orch.get_task("A")).status is Status.DONE
    assert (await orch.get_task("B")).status is Status.PENDING
    assert [e.kind for e in await events_of(orch, "B")] == ["created"]
    assert [e.to_status for e in await events_of(orch, "A")][-1] == "done"
    again = await orch.claim("w")  # the failed claim held nothing back
    assert again.claimed and again.task is not None and again.task.id == "B"


async def test_a_task_with_a_verify_command_is_checked_then_the_next_claimed(
    world: World,
) -> None:
    """The check runs outside any transaction: the move after it, then the claim."""
    orch = await world.open(sandbox_backend="none", sandbox_allow_unisolated=True)
    await create(
        orch,
        {"id": "A", "title": "a", "verify_command": "echo checked-$((6*7))"},
        {"id": "B", "title": "b", "depends_on": ["A"]},
    )
    token = await holding(orch, "w", "A")
    moved = await orch.update_and_claim("A", Status.DONE, "w", token, None)
    assert moved.status is Status.DONE and moved.unblocked == ["B"]
    assert moved.next is not None and moved.next.task is not None
    assert moved.next.task.id == "B" and moved.next.lease_token is not None
    verified = [e for e in await events_of(orch, "A") if e.kind == "verified"]
    assert len(verified) == 1 and "exit 0" in (verified[0].reason or "")
    await orch.heartbeat("B", moved.next.lease_token, "w")
