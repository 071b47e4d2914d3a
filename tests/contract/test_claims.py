"""Claims: WSJF order, named claims, dependency gating, and the WIP limits."""

import pytest

from tests.contract.conftest import World, create, events_of
from wvo_mcp.errors import NotFound
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status

pytestmark = pytest.mark.anyio


async def test_claims_take_the_best_by_wsjf(orch: Orchestrator) -> None:
    await create(
        orch,
        # (business_value + time_criticality + risk_reduction + enablement) / job_size
        {"id": "low", "title": "l", "business_value": 1, "time_criticality": 1,
         "risk_reduction": 1, "job_size": 20},  # 0.15
        {"id": "mid2", "title": "m2", "business_value": 5, "job_size": 3},  # 5
        {"id": "high", "title": "h", "business_value": 20, "time_criticality": 1,
         "risk_reduction": 1, "job_size": 2},  # 11
        {"id": "mid", "title": "m", "business_value": 10, "job_size": 4},  # 5
        {"id": "size", "title": "s", "business_value": 12, "complexity": 2},  # 22/4 = 5.5
    )  # fmt: skip
    plan = await orch.plan_next("a", limit=10)
    # mid and mid2 tie at 5 and were created together: the id breaks the tie.
    assert [(t.id, t.score) for t in plan.tasks] == [
        ("high", 11.0),
        ("size", 5.5),
        ("mid", 5.0),
        ("mid2", 5.0),
        ("low", 0.15),
    ]
    assert plan.counts.ready == 5 and plan.counts.wip_remaining == 1

    order = []
    for n in range(5):
        claim = await orch.claim(f"agent-{n}")
        assert claim.claimed and claim.task is not None and claim.attempt == 1
        order.append(claim.task.id)
    assert order == ["high", "size", "mid", "mid2", "low"]
    assert (await orch.claim("agent-9")).reason == "no_ready_task"


async def test_older_task_wins_a_tie(world: World, orch: Orchestrator) -> None:
    await create(orch, {"id": "zz-old", "title": "older"})
    world.clock.advance(0.001)
    await create(orch, {"id": "aa-new", "title": "newer"})
    assert [t.id for t in (await orch.plan_next("a", limit=5)).tasks] == ["zz-old", "aa-new"]
    claim = await orch.claim("a")
    assert claim.task is not None and claim.task.id == "zz-old"


async def test_a_nearing_due_date_re_ranks_at_the_next_claim(
    world: World, orch: Orchestrator
) -> None:
    due = world.clock.text(14 * 24 * 3600)  # the horizon: no rise yet
    await create(
        orch,
        {"id": "dated", "title": "d", "time_criticality": 2, "due_at": due},  # 12/10
        {"id": "plain", "title": "p", "business_value": 9},  # 19/10
    )
    assert [t.id for t in (await orch.plan_next("a")).tasks] == ["dated", "plain"][::-1]
    world.clock.advance(7 * 24 * 3600)  # half way: 2 + (20 - 2) / 2 = 11, so 21/10
    claim = await orch.claim("a")
    assert claim.task is not None and claim.task.id == "dated"
    detail = await orch.get_task("dated")
    assert detail.breakdown.time_criticality == 11 and detail.score == 2.1
    assert detail.time_criticality == 2  # the planner's input is kept


async def test_a_named_claim(world: World, orch: Orchestrator) -> None:
    await create(
        orch,
        {"id": "best", "title": "b", "business_value": 20},
        {"id": "worst", "title": "w", "business_value": 1},
    )
    claim = await orch.claim("a", task_id="worst", lease_seconds=30)
    assert claim.claimed and claim.task is not None and claim.task.id == "worst"
    assert claim.lease_expires_at == world.clock.text(30) and claim.lease_seconds == 30
    detail = await orch.get_task("worst")
    assert (detail.status, detail.assigned_to, detail.lease_epoch) == (Status.IN_PROGRESS, "a", 1)
    assert detail.lease_expires_at == claim.lease_expires_at

    held = await orch.claim("b", task_id="worst")
    assert (held.claimed, held.reason) == (False, "task_not_ready")
    assert "held by 'a'" in held.message and claim.lease_expires_at in held.message
    assert held.lease_token is None and held.task is None

    with pytest.raises(NotFound, match=r"E9\.T9"):
        await orch.claim("b", task_id="E9.T9")
    plan = await orch.plan_next("b")
    assert plan.counts.wip_global_used == 1
    assert [t.id for t in plan.tasks] == ["best"]


async def test_dependencies_gate_claims_and_done_unblocks_dependents(orch: Orchestrator) -> None:
    created = await create(
        orch,
        {"id": "A", "title": "first"},
        {"id": "B", "title": "second"},
        {"id": "C", "title": "after both", "depends_on": ["A", "B"], "business_value": 20},
    )
    assert sorted(created.ready) == ["A", "B"]
    plan = await orch.plan_next("dev", limit=10)
    assert [t.id for t in plan.tasks] == ["A", "B"]  # equal scores (one dependent each): by id
    assert (plan.counts.ready, plan.counts.waiting_on_dependencies) == (2, 1)
    detail = await orch.get_task("A")
    assert detail.breakdown.enablement == 1 and [d.id for d in detail.dependents] == ["C"]

    refused = await orch.claim("dev", task_id="C")
    assert (refused.claimed, refused.reason) == (False, "task_not_ready")
    assert "waits on dependencies: A (pending), B (pending)" in refused.message

    a = await orch.claim("dev", task_id="A")
    assert a.lease_token is not None
    done = await orch.update_status("A", Status.DONE, "dev", token=a.lease_token)
    assert (done.previous_status, done.status, done.unblocked) == (
        Status.IN_PROGRESS,
        Status.DONE,
        [],
    )
    refused = await orch.claim("dev", task_id="C")
    assert refused.reason == "task_not_ready" and "B (pending)" in refused.message
    assert "A (" not in refused.message

    b = await orch.claim("dev", task_id="B")
    assert b.lease_token is not None
    done = await orch.update_status("B", Status.DONE, "dev", token=b.lease_token)
    assert done.unblocked == ["C"]
    assert [t.id for t in (await orch.plan_next("dev")).tasks] == ["C"]
    c = await orch.claim("dev")
    assert c.task is not None and c.task.id == "C"
    detail = await orch.get_task("C")
    assert [(d.id, d.status) for d in detail.dependencies] == [
        ("A", Status.DONE),
        ("B", Status.DONE),
    ]


async def test_a_new_task_on_a_done_dependency_is_ready(orch: Orchestrator) -> None:
    await create(orch, {"id": "base", "title": "b"})
    claim = await orch.claim("a")
    assert claim.lease_token is not None
    await orch.update_status("base", Status.DONE, "a", token=claim.lease_token)
    created = await create(orch, {"id": "later", "title": "l", "depends_on": ["base"]})
    assert created.ready == ["later"]
    assert (await orch.get_task("later")).status is Status.PENDING


async def test_done_records_completion_and_its_events(world: World, orch: Orchestrator) -> None:
    await create(orch, {"id": "job", "title": "j"})
    claim = await orch.claim("a")
    assert claim.lease_token is not None
    world.clock.advance(5)
    await orch.update_status("job", Status.DONE, "a", token=claim.lease_token, reason="shipped")
    detail = await orch.get_task("job")
    assert detail.completed_at == world.clock.text()
    assert detail.assigned_to is None and detail.lease_expires_at is None
    kinds = [(e.kind, e.actor, e.from_status, e.to_status, e.lease_epoch)
             for e in await events_of(orch, "job")]  # fmt: skip
    assert kinds == [
        ("created", "planner", None, "pending", None),
        ("claimed", "a", "pending", "in_progress", 1),
        ("status", "a", "in_progress", "done", 1),
    ]
    assert await orch.completions() == {"job": ["a"]}


# --- WIP limits -----------------------------------------------------------------------------


async def test_the_per_agent_wip_limit(world: World) -> None:
    orch = await world.open(wip_per_agent=2)
    await create(orch, *({"id": f"t{n}", "title": "t"} for n in range(4)))
    first, second = await orch.claim("solo"), await orch.claim("solo")
    assert first.claimed and second.claimed
    third = await orch.claim("solo")
    assert (third.claimed, third.reason) == (False, "agent_wip_limit")
    assert "WVO_WIP_PER_AGENT=2" in third.message and "'solo'" in third.message
    named = await orch.claim("solo", task_id="t3")
    assert named.reason == "agent_wip_limit"
    assert (await orch.get_task("t3")).status is Status.PENDING
    assert (await orch.plan_next("solo")).counts.wip_remaining == 0
    # Another agent is not limited by solo's claims.
    assert (await orch.claim("helper")).claimed
    assert first.task is not None and first.lease_token is not None
    await orch.update_status(first.task.id, Status.DONE, "solo", token=first.lease_token)
    assert (await orch.claim("solo")).claimed


async def test_the_global_wip_limit(world: World) -> None:
    orch = await world.open(wip_global=2)
    await create(orch, *({"id": f"t{n}", "title": "t"} for n in range(4)))
    one, two = await orch.claim("agent-1"), await orch.claim("agent-2")
    assert one.claimed and two.claimed
    three = await orch.claim("agent-3")
    assert (three.claimed, three.reason) == (False, "global_wip_limit")
    assert "WVO_WIP_LIMIT=2" in three.message
    assert (await orch.claim("agent-3", task_id="t3")).reason == "global_wip_limit"
    counts = (await orch.plan_next("agent-3")).counts
    assert (counts.wip_global_used, counts.wip_global_limit, counts.wip_remaining) == (2, 2, 0)
    assert one.task is not None and one.lease_token is not None
    released = await orch.update_status(
        one.task.id, Status.PENDING, "agent-1", token=one.lease_token
    )
    assert (released.status, released.attempts, released.not_before) == (Status.PENDING, 0, None)
    assert (await orch.claim("agent-3")).claimed


async def test_an_expired_lease_frees_its_wip_slot(world: World) -> None:
    orch = await world.open(wip_global=1)
    await create(orch, {"id": "t0", "title": "t"}, {"id": "t1", "title": "t"})
    assert (await orch.claim("a", lease_seconds=30)).claimed
    assert (await orch.claim("b")).reason == "global_wip_limit"
    world.clock.advance(30)
    assert (await orch.claim("b")).reason == "global_wip_limit"  # expiry is strictly after
    world.clock.advance(0.001)
    taken = await orch.claim("b")
    # The expired task ranks with the ready ones; t0 is older, so it is taken over.
    assert taken.claimed and taken.task is not None and taken.task.id == "t0"
    assert taken.attempt == 2


async def test_the_per_epic_wip_limit(world: World) -> None:
    orch = await world.open(wip_per_epic=1)
    await create(
        orch,
        {"id": "e1-a", "title": "a", "epic_id": "E1", "business_value": 20},
        {"id": "e1-b", "title": "b", "epic_id": "E1", "business_value": 19},
        {"id": "e2-a", "title": "c", "epic_id": "E2", "business_value": 1},
    )
    first = await orch.claim("agent-1")
    assert first.task is not None and first.task.id == "e1-a"
    # The next best task is in E1, which is full: the E2 task is granted instead.
    second = await orch.claim("agent-2")
    assert second.task is not None and second.task.id == "e2-a"
    third = await orch.claim("agent-3")
    assert (third.claimed, third.reason) == (False, "epic_wip_limit")
    assert "WVO_WIP_PER_EPIC=1" in third.message
    named = await orch.claim("agent-3", task_id="e1-b")
    assert named.reason == "epic_wip_limit" and "'E1'" in named.message
    assert (await orch.get_task("e1-b")).status is Status.PENDING
    plan = await orch.plan_next("agent-3", epic_id="E1")
    assert [t.id for t in plan.tasks] == ["e1-b"]  # plan_next does not apply the epic limit
    assert first.lease_token is not None
    await orch.update_status("e1-a", Status.DONE, "agent-1", token=first.lease_token)
    again = await orch.claim("agent-3")
    assert again.task is not None and again.task.id == "e1-b"
    assert again.lease_expires_at == world.clock.text(60)  # the default lease length


async def test_a_claim_finds_its_task_however_deep_it_ranks(world: World) -> None:
    """The ranked scan reads the queue in pages: a task ranked below 200 others that cannot
    be taken (their epic is at its limit) is still found, and the best of its epic."""
    orch = await world.open(wip_per_epic=1, wip_global=10)
    full = [
        {"id": f"e1-{i:03d}", "title": "t", "epic_id": "E1", "business_value": 20}
        for i in range(200)
    ]
    rest = [
        {"id": "e2-low", "title": "t", "epic_id": "E2", "business_value": 1},
        {"id": "e2-best", "title": "t", "epic_id": "E2", "business_value": 2},
    ]
    await create(orch, *full, *rest)
    first = await orch.claim("agent-1")
    assert first.task is not None and first.task.id == "e1-000"
    deep = await orch.claim("agent-2")
    assert deep.claimed and deep.task is not None and deep.task.id == "e2-best", deep.message
    plan = await orch.plan_next("agent-3", limit=300)
    assert len(plan.tasks) == 200  # e1-000 and e2-best are held: the other 200 are listed
