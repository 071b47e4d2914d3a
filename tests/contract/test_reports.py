"""Read-only views: task_list (filters, pagination), task_get, the roadmap export, the status
report, and completions."""

from typing import Any

import pytest

from tests.contract.conftest import World, create
from wvo_mcp.errors import NotFound
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status

pytestmark = pytest.mark.anyio

BACKLOG: list[dict[str, Any]] = [
    {"id": "E1.T1", "title": "one", "epic_id": "E1", "milestone_id": "M1", "tags": ["api"]},
    {"id": "E1.T2", "title": "two", "epic_id": "E1", "milestone_id": "M2", "tags": ["api", "db"],
     "depends_on": ["E1.T1"]},
    {"id": "E2.T1", "title": "three", "epic_id": "E2", "milestone_id": "M1", "tags": ["db"]},
    {"id": "E2.T2", "title": "four", "epic_id": "E2", "business_value": 20,
     "description": "the valuable one", "max_attempts": 5, "requires_approval": True,
     "metadata": {"estimated_tokens": 1234}, "verify_command": ["pytest", "-q"]},
    {"id": "X.T1", "title": "five", "complexity": 2, "job_size": 7, "tags": ["apiary"]},
]  # fmt: skip


async def test_task_list_filters_and_pages(orch: Orchestrator) -> None:
    await create(orch, *BACKLOG)

    async def ids(**filters: object) -> list[str]:
        page = await orch.list_tasks(limit=100, **filters)  # type: ignore[arg-type]
        assert page.next_cursor is None
        return [t.id for t in page.tasks]

    assert await ids() == ["E1.T1", "E1.T2", "E2.T1", "E2.T2", "X.T1"]
    assert await ids(epic_id="E2") == ["E2.T1", "E2.T2"]
    assert await ids(milestone_id="M1") == ["E1.T1", "E2.T1"]
    assert await ids(tag="api") == ["E1.T1", "E1.T2"]  # whole tags only: not "apiary"
    assert await ids(tag="db", epic_id="E1") == ["E1.T2"]
    assert await ids(status="awaiting_approval") == ["E2.T2"]
    assert await ids(tag="nothing") == []

    seen, cursor = [], None
    while True:
        page = await orch.list_tasks(limit=2, cursor=cursor)
        assert len(page.tasks) <= 2
        seen += [t.id for t in page.tasks]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["E1.T1", "E1.T2", "E2.T1", "E2.T2", "X.T1"]

    claim = await orch.claim("a", task_id="E1.T1")
    assert claim.claimed
    [held] = (await orch.list_tasks(status="in_progress")).tasks
    assert (held.id, held.assigned_to, held.status, held.attempts) == (
        "E1.T1",
        "a",
        Status.IN_PROGRESS,
        0,
    )


async def test_task_get_shows_the_whole_task(world: World, orch: Orchestrator) -> None:
    await create(orch, *BACKLOG)
    detail = await orch.get_task("E2.T2")
    assert (detail.title, detail.description, detail.max_attempts) == (
        "four",
        "the valuable one",
        5,
    )
    assert detail.metadata == {"estimated_tokens": 1234}
    assert detail.verify_command == ["pytest", "-q"]
    assert (detail.breakdown.business_value, detail.breakdown.job_size, detail.score) == (
        20,
        10,
        3.0,
    )
    assert detail.created_at == world.clock.text() and detail.completed_at is None
    other = await orch.get_task("E1.T2")
    assert [(d.id, d.status) for d in other.dependencies] == [("E1.T1", Status.PENDING)]
    assert other.tags == ["api", "db"]
    with pytest.raises(NotFound, match="nope"):
        await orch.get_task("nope")


async def test_the_export_is_the_roadmap_that_was_loaded(orch: Orchestrator) -> None:
    await create(orch, *BACKLOG)
    exported = {e["id"]: e for e in await orch.export_tasks()}
    assert list(exported) == ["E1.T1", "E1.T2", "E2.T1", "E2.T2", "X.T1"]
    assert exported["E1.T2"]["depends_on"] == ["E1.T1"]
    assert exported["E2.T2"] == {
        "id": "E2.T2",
        "title": "four",
        "description": "the valuable one",
        "epic_id": "E2",
        "complexity": 5,
        "business_value": 20,
        "time_criticality": 5,
        "risk_reduction": 5,
        "job_size": 10,
        "requires_approval": True,
        "max_attempts": 5,
        "metadata": {"estimated_tokens": 1234},
        "verify_command": ["pytest", "-q"],
    }
    assert exported["X.T1"]["tags"] == ["apiary"] and exported["X.T1"]["job_size"] == 7
    # Every entry reads back as the task spec it came from.
    for spec in BACKLOG:
        again = TaskSpec.model_validate(exported[str(spec["id"])])
        assert again == TaskSpec.model_validate(
            {**spec, "job_size": spec.get("job_size", 2 * int(spec.get("complexity", 5)))}
        )


async def test_the_status_report(world: World) -> None:
    orch = await world.open(wip_global=5)
    await create(orch, *BACKLOG)
    claim = await orch.claim("a", task_id="E2.T1", lease_seconds=100)
    assert claim.lease_token is not None
    once = await orch.claim("b", task_id="X.T1")
    assert once.lease_token is not None
    world.clock.advance(30)
    await orch.update_status("X.T1", Status.CANCELLED, "b", token=once.lease_token)
    report = await orch.status_report("a", top=3)
    assert report.in_progress == [
        {
            "id": "E2.T1",
            "title": "three",
            "assigned_to": "a",
            "held_seconds": 30,
            "lease_left_seconds": 70,
            "attempt": 1,
        }
    ]
    assert [t.id for t in report.top_ready] == ["E1.T1"]
    assert report.top_ready[0].breakdown is not None
    assert report.top_ready[0].breakdown.enablement == 1
    route = report.top_ready[0].route  # the packaged providers file's route
    assert route is not None and route.startswith("codex/")
    assert "lowest tier covering complexity" in route
    assert report.awaiting_approval[0]["id"] == "E2.T2"
    assert report.dead_letters == []
    counts = report.counts
    assert counts.by_status == {
        "pending": 2,
        "in_progress": 1,
        "awaiting_approval": 1,
        "cancelled": 1,
    }
    assert (counts.ready, counts.waiting_on_dependencies, counts.wip_global_used) == (1, 1, 1)
    assert (counts.wip_agent_used, counts.wip_remaining) == (1, 0)


async def test_a_blocked_task_stays_in_the_report_until_a_person_moves_it(world: World) -> None:
    orch = await world.open(wip_global=5)
    await create(orch, *BACKLOG)
    claim = await orch.claim("a", task_id="E1.T1")
    world.clock.advance(40)
    await orch.update_status("E1.T1", Status.BLOCKED, "a", token=claim.lease_token, reason="key")
    world.clock.advance(20)
    stopped = (await orch.status_report("a")).stopped
    assert stopped == [
        {
            "id": "E1.T1",
            "title": "one",
            "status": "blocked",
            "waiting_seconds": 20,
            "reason": "key",
            "way_out": "`wvo-mcp requeue E1.T1` once it can go on, or `wvo-mcp cancel E1.T1`",
        }
    ]
    await orch.update_status("E1.T1", Status.PENDING, "ops", by_person=True)
    assert (await orch.status_report("a")).stopped == []


async def test_a_task_that_waits_on_its_question_names_answer_and_requeue_says_what_it_drops(
    world: World,
) -> None:
    orch = await world.open(wip_global=5)
    await create(orch, *BACKLOG)
    claim = await orch.claim("a", task_id="E1.T1")
    await orch.ask("E1.T1", claim.lease_token, "a", "MIT or Apache-2.0?")
    [stopped] = (await orch.status_report("a")).stopped
    assert stopped["way_out"].startswith('`wvo-mcp answer E1.T1 "…"` answers its question')
    moved = await orch.requeue("E1.T1", "person:ada")
    assert "its question 'MIT or Apache-2.0?' goes unanswered to the next holder" in moved.message
    assert (await orch.status_report("a")).stopped == []
