"""Gated tasks (the autopilot's, and reviewed ones): the holder finishes only as far as
needs_review; the lander lands the submitted commit, under a review gate only once an agent
other than its author approved exactly that commit; a failed landing is a failed attempt.
Run tokens expire and are scoped. On every backend."""

from datetime import timedelta

import pytest

from tests.contract.conftest import World, create, events_of
from wvo_mcp import timeutil
from wvo_mcp.errors import IllegalTransition, ValidationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Gate, Status
from wvo_mcp.services.bearer_tokens import Scope

pytestmark = pytest.mark.anyio
COMMIT = "a" * 40
OTHER = "b" * 40


async def submitted(orch: Orchestrator, task_id: str, gate: Gate, author: str = "w1") -> str:
    """Claim the task for `author` under `gate`, submit it, and record COMMIT as submitted."""
    claim = await orch.claim(author, task_id, gate=gate)
    assert claim.claimed and claim.lease_token is not None, claim
    with pytest.raises(IllegalTransition, match="submit it with needs_review"):
        await orch.update_status(task_id, Status.DONE, author, claim.lease_token)
    moved = await orch.update_status(task_id, Status.NEEDS_REVIEW, author, claim.lease_token)
    assert moved.status == Status.NEEDS_REVIEW
    await orch.submit_commit(task_id, COMMIT, "autopilot")
    return claim.lease_token


async def test_a_landed_task_is_done_only_by_the_lander(world: World, orch: Orchestrator) -> None:
    await create(orch, {"id": "L", "title": "lands"})
    await submitted(orch, "L", Gate.LAND)
    detail = await orch.get_task("L")
    assert (detail.gate, detail.submitted_by, detail.submitted_commit) == ("land", "w1", COMMIT)
    # Nobody but the lander or a person moves it on; the author least of all.
    for target in (Status.DONE, Status.PENDING, Status.FAILED, Status.CANCELLED):
        with pytest.raises(IllegalTransition):
            await orch.update_status("L", target, "w1")
        with pytest.raises(IllegalTransition):
            await orch.update_status("L", target, "w2")
    before = await events_of(orch, "L")
    done = await orch.update_status("L", Status.DONE, "autopilot", landing=COMMIT)
    assert done.status == Status.DONE
    moves = [(e.actor, e.to_status) for e in await events_of(orch, "L") if e.kind == "status"]
    assert moves[-2:] == [("w1", "needs_review"), ("autopilot", "done")]
    assert len(await events_of(orch, "L")) == len(before) + 1


async def test_a_claim_only_raises_a_gate(world: World, orch: Orchestrator) -> None:
    await create(orch, {"id": "R", "title": "reviewed", "metadata": {"review": True}})
    assert (await orch.get_task("R")).gate == "review"
    claim = await orch.claim("w1", "R", gate=Gate.LAND)  # lower: the review gate stays
    assert claim.claimed
    assert (await orch.get_task("R")).gate == "review"
    with pytest.raises(IllegalTransition, match="reviewed"):
        await orch.update_status("R", Status.DONE, "w1", claim.lease_token)


async def test_a_review_gate_needs_an_approval_of_the_commit_by_another_agent(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "R", "title": "reviewed", "metadata": {"review": True}})
    await submitted(orch, "R", Gate.REVIEW, author="w1")
    with pytest.raises(IllegalTransition, match="no review of it yet"):
        await orch.update_status("R", Status.DONE, "autopilot", landing=COMMIT)
    # Its author may not review it; a review of another commit is refused.
    with pytest.raises(IllegalTransition, match="does not review its own work"):
        await orch.review("R", COMMIT, "w1", "approve", "mine, and fine")
    with pytest.raises(IllegalTransition, match="no longer the one"):
        await orch.review("R", OTHER, "w2", "approve", "another commit")
    await orch.review("R", COMMIT, "w2", "changes", "add a test")
    with pytest.raises(IllegalTransition, match="asks for changes"):
        await orch.update_status("R", Status.DONE, "autopilot", landing=COMMIT)
    world.clock.advance(1)
    await orch.review("R", COMMIT, "w3", "approve", "good now")
    with pytest.raises(IllegalTransition, match="not the one submitted"):
        await orch.update_status("R", Status.DONE, "autopilot", landing=OTHER)
    done = await orch.update_status("R", Status.DONE, "autopilot", landing=COMMIT)
    assert done.status == Status.DONE
    reviews = [(e.actor, e.reason) for e in await events_of(orch, "R") if e.kind == "review"]
    assert reviews == [("w2", "changes: add a test"), ("w3", "approve: good now")]
    # A person may always finish a reviewed task.
    await create(orch, {"id": "P", "title": "by hand", "metadata": {"review": True}})
    await submitted(orch, "P", Gate.REVIEW)
    moved = await orch.update_status("P", Status.DONE, "person:ann", by_person=True)
    assert moved.status == Status.DONE


async def test_a_failed_landing_is_a_failed_attempt(world: World) -> None:
    orch = await world.open(retry_base_seconds=10)
    await create(orch, {"id": "F", "title": "fails", "max_attempts": 2})
    await submitted(orch, "F", Gate.LAND)
    back = await orch.update_status("F", Status.FAILED, "autopilot", landing=COMMIT)
    assert (back.status, back.attempts) == (Status.PENDING, 1)
    assert back.not_before == world.clock.text(10)
    world.clock.advance(11)
    await submitted(orch, "F", Gate.LAND)
    dead = await orch.update_status("F", Status.FAILED, "autopilot", landing=COMMIT)
    assert (dead.status, dead.attempts) == (Status.FAILED, 2)


async def test_a_submission_is_recorded_only_while_it_waits(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "S", "title": "s"})
    with pytest.raises(IllegalTransition, match="not a submission"):
        await orch.submit_commit("S", COMMIT, "autopilot")
    assert (await orch.get_task("S")).submitted_commit is None


async def test_run_tokens_expire_and_carry_their_scope(world: World, orch: Orchestrator) -> None:
    scope = Scope("T", "reviewer", COMMIT)
    issued = await orch.token_add(
        "agent",
        "w2",
        "autopilot",
        expires_at=world.clock.now() + timedelta(seconds=60),
        scope=scope,
    )
    found = await orch.token_find(issued.secret)
    assert found is not None and found.scope == scope and found.name == "w2"
    world.clock.advance(30)
    renewed = world.clock.now() + timedelta(seconds=60)
    await orch.token_extend(found.id, renewed)
    world.clock.advance(59)
    assert await orch.token_find(issued.secret) is not None  # renewed
    world.clock.advance(2)
    assert await orch.token_find(issued.secret) is None  # expired
    await orch.token_revoke(found.id)
    await orch.token_extend(found.id, world.clock.now() + timedelta(hours=1))
    assert await orch.token_find(issued.secret) is None  # revoked stays revoked
    listed = {t.id: t.shown() for t in await orch.token_list()}
    assert listed[found.id]["task"] == "T"
    assert listed[found.id]["expires_at"] == timeutil.to_text(renewed)  # not moved once revoked


async def test_a_review_verdict_must_be_known(world: World, orch: Orchestrator) -> None:
    await create(orch, {"id": "V", "title": "v", "metadata": {"review": True}})
    await submitted(orch, "V", Gate.REVIEW)
    with pytest.raises(ValidationFailed, match="approve, changes"):
        await orch.review("V", COMMIT, "w2", "maybe", "hmm")
    assert await orch.latest_review("V", COMMIT) is None


async def test_the_revocation_count_moves_exactly_when_a_token_is_revoked(
    world: World, orch: Orchestrator
) -> None:
    """Servers keep verified tokens while this count stays put (edge/access.StoreVerifier)."""
    before = await orch.token_revocations()
    first = await orch.token_add("agent", "r1", "person:p")
    second = await orch.token_add("agent", "r2", "person:p")
    found = await orch.token_find(first.secret)
    assert found is not None
    world.clock.advance(11 * 60)
    await orch.token_used(found.id)  # a use recorded from a cache moves nothing
    assert await orch.token_revocations() == before
    listed = {t.id: t for t in await orch.token_list()}
    assert listed[found.id].last_used_at == timeutil.to_text(world.clock.now())
    await orch.token_revoke(found.id)
    assert await orch.token_revocations() == before + 1
    with pytest.raises(ValidationFailed):
        await orch.token_revoke(found.id)  # refused: the count stays
    assert await orch.token_revocations() == before + 1
    second_found = await orch.token_find(second.secret)
    assert second_found is not None
    await orch.token_revoke(second_found.id)
    assert await orch.token_revocations() == before + 2
