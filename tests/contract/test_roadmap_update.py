"""`import --update`: an edited roadmap changes the definitions of the tasks it names and
adds its new ones, in one transaction; held and done work is skipped, tasks it leaves out
are reported and kept, statuses do not move, and a refused file changes nothing. On every
backend."""

from collections import Counter
from typing import Any

import pytest

from tests.contract.conftest import World, create, events_of, specs
from tests.contract.test_races import Writes, servers, together
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services.roadmap_update import FIELDS, RoadmapUpdate

pytestmark = pytest.mark.anyio

BACKLOG: list[dict[str, Any]] = [
    {"id": "A", "title": "first"},
    {"id": "B", "title": "second"},
    {"id": "C", "title": "third", "depends_on": ["A"], "tags": ["api"]},
    {"id": "D", "title": "fourth", "description": "stays out of the file"},
]
RACE_ROUNDS = {"postgres": 200, "sqlite": 40}


async def update(orch: Orchestrator, *tasks: dict[str, Any], dry_run: bool = False) -> Any:
    return await orch.update_roadmap(specs(*tasks), "person:ann", dry_run)


def summary(found: RoadmapUpdate) -> dict[str, Any]:
    return {
        "changed": {e.id: e.fields for e in found.changed},
        "added": found.added,
        "unchanged": found.unchanged,
        "skipped": {e.id: (e.status, e.fields) for e in found.skipped},
        "missing": [(m.id, m.title, m.status) for m in found.missing],
    }


async def test_changed_fields_update_new_tasks_are_added_and_the_missing_are_kept(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, *BACKLOG)
    world.clock.advance(5)
    edited = {
        "id": "B",
        "title": "second, sharper",
        "description": "now with a description",
        "epic_id": "E9",
        "milestone_id": "M2",
        "complexity": 3,
        "business_value": 13,
        "time_criticality": 8,
        "risk_reduction": 2,
        "due_at": "2031-06-01T12:00:00+02:00",
        "tags": ["db", "ops"],
        "max_attempts": 5,
        "metadata": {"estimated_tokens": 900, "nested": {"k": [1, 2]}},
        "verify_command": ["pytest", "-q", "tests/b"],
    }
    found = await update(
        orch,
        {"id": "A", "title": "first"},  # as it is
        edited,
        {"id": "C", "title": "third", "depends_on": ["A"], "tags": ["api"]},
        {"id": "N", "title": "new one", "depends_on": ["B"]},
    )
    assert summary(found) == {
        "changed": {
            "B": tuple(f for f in FIELDS if f != "depends_on" and f != "requires_approval")
        },
        "added": ["N"],
        "unchanged": 2,
        "skipped": {},
        "missing": [("D", "fourth", "pending")],
    }
    b = await orch.get_task("B")
    assert (b.title, b.description, b.epic_id, b.milestone_id) == (
        "second, sharper",
        "now with a description",
        "E9",
        "M2",
    )
    assert (b.complexity, b.business_value, b.time_criticality, b.risk_reduction) == (3, 13, 8, 2)
    assert (b.job_size, b.max_attempts, b.tags) == (6, 5, ["db", "ops"])
    assert b.due_at == "2031-06-01T10:00:00.000Z"
    assert b.metadata == {"estimated_tokens": 900, "nested": {"k": [1, 2]}}
    assert b.verify_command == ["pytest", "-q", "tests/b"]
    assert b.updated_at == world.clock.text() and b.status == Status.PENDING
    # Its score is what the new inputs give, with N depending on it now.
    twin = {k: v for k, v in edited.items() if k != "id"}
    await create(
        orch, {"id": "twin", **twin}, {"id": "twin-user", "title": "u", "depends_on": ["twin"]}
    )
    assert (b.breakdown, b.score) == (
        (twin_task := await orch.get_task("twin")).breakdown,
        twin_task.score,
    )
    last = (await events_of(orch, "B"))[-1]
    assert (last.kind, last.actor, last.from_status, last.to_status) == (
        "edited",
        "person:ann",
        None,
        None,
    )
    assert last.reason is not None and last.reason.startswith("import --update: title, ")
    assert [e.kind for e in await events_of(orch, "A")] == ["created"]  # unchanged: untouched
    assert (await orch.get_task("N")).dependencies[0].id == "B"
    d = await orch.get_task("D")
    assert (d.status, d.description) == (Status.PENDING, "stays out of the file")

    again = await update(orch, *(await orch.export_tasks()))
    assert (again.changed, again.added, again.skipped, again.missing) == ([], [], [], [])


async def test_dependencies_are_rewired_and_counted(world: World, orch: Orchestrator) -> None:
    await create(orch, *BACKLOG)
    assert (await orch.get_task("A")).breakdown.enablement == 1  # C depends on A
    found = await update(
        orch,
        {"id": "C", "title": "third", "depends_on": ["B", "N"], "tags": ["api"]},
        {"id": "N", "title": "new"},
    )
    assert {e.id: e.fields for e in found.changed} == {"C": ("depends_on",)}
    c = await orch.get_task("C")
    assert [(d.id, d.status) for d in c.dependencies] == [("B", "pending"), ("N", "pending")]
    enablement = {t: (await orch.get_task(t)).breakdown.enablement for t in "ABN"}
    assert enablement == {"A": 0, "B": 1, "N": 1}
    refused = await orch.claim("w", task_id="C")
    assert not refused.claimed and "waits on dependencies" in refused.message

    # B done: C still waits on N; without N, C is ready (and pending all along).
    claim = await orch.claim("w", task_id="B")
    assert claim.lease_token is not None
    await orch.update_status("B", Status.DONE, "w", claim.lease_token)
    await update(orch, {"id": "C", "title": "third", "depends_on": ["B"], "tags": ["api"]})
    c = await orch.get_task("C")
    assert c.status == Status.PENDING and [d.id for d in c.dependencies] == ["B"]
    assert (await orch.get_task("N")).breakdown.enablement == 0
    granted = await orch.claim("w2", task_id="C")
    assert granted.claimed, granted.message


async def test_held_and_done_work_is_skipped_and_left_as_it_is(
    world: World, orch: Orchestrator
) -> None:
    await create(
        orch,
        {"id": "held", "title": "held"},
        {"id": "review", "title": "review"},
        {"id": "done", "title": "done"},
        {"id": "approval", "title": "approval", "requires_approval": True},
        {"id": "free", "title": "free"},
    )
    held = await orch.claim("w1", task_id="held")
    review = await orch.claim("w2", task_id="review")
    done = await orch.claim("w3", task_id="done")
    assert held.claimed and review.claimed and done.claimed
    assert review.lease_token is not None and done.lease_token is not None
    await orch.update_status("review", Status.NEEDS_REVIEW, "w2", review.lease_token)
    await orch.update_status("done", Status.DONE, "w3", done.lease_token)
    before = {t: await orch.get_task(t) for t in ("held", "review", "done", "approval")}

    found = await update(
        orch,
        *(
            {"id": t, "title": f"{t}, renamed", "depends_on": ["free"], "requires_approval": ask}
            for t, ask in (("held", 0), ("review", 0), ("done", 0), ("approval", 1))
        ),
        {"id": "free", "title": "free, renamed"},
    )
    assert {e.id: (e.status, e.fields) for e in found.skipped} == {
        "held": ("in_progress", ("title", "depends_on")),
        "review": ("needs_review", ("title", "depends_on")),
        "done": ("done", ("title", "depends_on")),
        "approval": ("awaiting_approval", ("title", "depends_on")),
    }
    assert "claimed" in next(e.why for e in found.skipped if e.id == "held")
    assert "approve" in next(e.why for e in found.skipped if e.id == "approval")
    assert {e.id: e.fields for e in found.changed} == {"free": ("title",)}
    for task_id, was in before.items():
        # Every field as it was: definition, status, lease, dependencies, events.
        assert await orch.get_task(task_id) == was, task_id


async def test_a_ready_task_that_now_needs_approval_waits_for_it(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "T", "title": "t"}, {"id": "W", "title": "w", "depends_on": ["T"]})
    await update(
        orch,
        {"id": "T", "title": "t", "requires_approval": True},
        {"id": "W", "title": "w", "depends_on": ["T"], "requires_approval": True},
    )
    assert (await orch.get_task("T")).status == Status.AWAITING_APPROVAL
    assert (await orch.get_task("W")).status == Status.PENDING  # not ready: waits on T
    refused = await orch.claim("w", task_id="T")
    assert not refused.claimed
    moves = [(e.actor, e.to_status) for e in await events_of(orch, "T") if e.kind == "status"]
    assert moves == [("scheduler", "awaiting_approval")]


@pytest.mark.parametrize(
    ("tasks", "named"),
    [
        ([{"title": "no id"}], ["without an id", "task #2", "'no id'"]),
        ([{"id": "A", "title": "a"}, {"id": "A", "title": "b"}], ["'A'", "twice"]),
        ([{"id": "A", "title": "first", "depends_on": ["A"]}], ["'A'", "itself"]),
        ([{"id": "N", "title": "n", "depends_on": ["nowhere"]}], ["'nowhere'", "unknown"]),
        # C depends on A in the database: A depending on C closes a cycle.
        ([{"id": "A", "title": "first", "depends_on": ["C"]}], ["cycle", "A", "C"]),
        # Through a new task and a task the file leaves out: A -> N -> C -> A.
        (
            [
                {"id": "A", "title": "first", "depends_on": ["N"]},
                {"id": "N", "title": "new", "depends_on": ["C"]},
            ],
            ["cycle", "N"],
        ),
    ],
)
async def test_a_refused_roadmap_changes_nothing(
    orch: Orchestrator, tasks: list[dict[str, Any]], named: list[str]
) -> None:
    await create(orch, *BACKLOG)
    exported = await orch.export_tasks()
    fine = {"id": "B", "title": "second, renamed"}  # would apply, alone
    with pytest.raises(ValidationFailed) as refused:
        await orch.update_roadmap(
            specs(fine, *(t for t in tasks if t.get("id") != "B")), "person:ann"
        )
    for word in named:
        assert word in str(refused.value), (word, str(refused.value))
    assert await orch.export_tasks() == exported
    assert [e.kind for e in await events_of(orch, "B")] == ["created"]


async def test_a_dry_run_says_what_would_change_and_changes_nothing(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, *BACKLOG)
    held = await orch.claim("w", task_id="D")
    assert held.claimed
    exported = await orch.export_tasks()
    tasks = (
        {"id": "A", "title": "first, renamed"},
        {"id": "D", "title": "fourth, renamed"},
        {"id": "N", "title": "new", "depends_on": ["A"]},
    )
    planned = await update(orch, *tasks, dry_run=True)
    assert await orch.export_tasks() == exported
    assert [e.kind for e in await events_of(orch, "A")] == ["created"]
    applied = await update(orch, *tasks)
    assert (
        summary(planned)
        == summary(applied)
        == {
            "changed": {"A": ("title",)},
            "added": ["N"],
            "unchanged": 0,
            "skipped": {"D": ("in_progress", ("title", "description"))},
            "missing": [("B", "second", "pending"), ("C", "third", "pending")],
        }
    )
    assert (await orch.get_task("A")).title == "first, renamed"


@pytest.mark.usefixtures("patient_claims")
async def test_an_update_racing_a_claim_never_changes_claimed_work(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await servers(world, wip_global=1000)
    writes = Writes(monkeypatch, a=a, b=b)
    outcomes: Counter[str] = Counter()
    for n in range(RACE_ROUNDS[world.backend.name]):
        task_id = f"t{n:04}"
        await create(a, {"id": task_id, "title": "as first written"})
        writes.next_round()

        async def claim(n: int = n, task_id: str = task_id) -> Any:
            await writes.turn("b")
            return await b.claim(f"w{n}", task_id)

        async def update(task_id: str = task_id) -> Any:
            await writes.turn("a")
            return await a.update_roadmap(specs({"id": task_id, "title": "rewritten"}), "ann")

        claim, found = await together(claim, update)
        assert not isinstance(found, Exception), found
        assert claim.claimed and claim.task is not None, claim
        task = await a.get_task(task_id)
        if found.changed:  # the update came first: the holder was given the new definition
            assert claim.task.title == task.title == "rewritten"
        else:  # the claim came first: the update skipped it
            assert [e.id for e in found.skipped] == [task_id]
            assert claim.task.title == task.title == "as first written"
        assert task.status == Status.IN_PROGRESS
        outcomes["update first" if found.changed else "claim first"] += 1
    assert set(outcomes) == {"update first", "claim first"}, outcomes  # they did race
