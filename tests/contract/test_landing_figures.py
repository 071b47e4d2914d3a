"""The merge queue as people and agents read it (services/landing_figures.py): the open
entries with their place and wait, the figures of a window, what one landing brought, and
the usage each landed change carries per provider and tier. On every backend."""

from datetime import datetime, timedelta
from functools import partial

import pytest

from tests.contract.conftest import START, World, create
from tests.landing_state import CLAUDE, CODEX, HELD_WHY, RUN, TARGET, fill
from wvo_mcp.errors import NotFound, ValidationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import routing
from wvo_mcp.services import landing_queue

pytestmark = pytest.mark.anyio


def mover(world: World) -> "partial[datetime]":
    def move_to(seconds: float) -> datetime:
        world.clock.current = START + timedelta(seconds=seconds)
        return world.clock.current

    return partial(move_to)


def cost(orch: Orchestrator, provider: str, model: str, tokens_in: int, tokens_out: int) -> float:
    _, tier = orch.providers.resolve(provider, model)
    return routing.Estimate(tokens_in, tokens_out).cost(tier)


async def test_the_queue_and_the_figures_of_a_window(world: World, orch: Orchestrator) -> None:
    await fill(orch, mover(world))
    world.clock.current = START + timedelta(seconds=800)
    found = await orch.landing_view(hours=24)

    listed = [(e.target, e.position, e.task_id, e.state, e.returns) for e in found.entries]
    assert listed == [
        (TARGET, 1, "B", "queued", 1),
        (TARGET, 2, "Q", "queued", 0),
        (TARGET, None, "H", "held", 0),
        (TARGET, None, "R", "review", 0),
    ]
    since = {e.task_id: (e.waiting_since, e.waited_s) for e in found.entries}
    assert since["B"] == (world.clock.text(660 - 800), 140.0)
    assert since["Q"] == (world.clock.text(720 - 800), 80.0)
    assert since["H"] == (world.clock.text(700 - 800), 100.0)  # held since
    assert since["R"] == (world.clock.text(780 - 800), 20.0)  # in review since it entered
    held = next(e for e in found.entries if e.task_id == "H")
    assert held.reason is not None and held.reason.startswith(HELD_WHY)
    assert all(e.reason is None for e in found.entries if e.task_id != "H")
    assert [e.title for e in found.entries] == [
        "comes back once", "queued next", "held for a person", "waits for its review"
    ]  # fmt: skip

    f = found.figures
    assert (f.landed, f.returned, f.hours) == (1, 1, 24)
    assert f.since == world.clock.text(-24 * 3600)
    assert f.landed_per_hour == round(1 / 24, 3)
    assert (f.wait_p50_s, f.wait_p95_s) == (600.0, 600.0)
    assert f.returns_per_landed == 1.0
    # Only the landed change's usage, every attempt of it, per provider and tier; B's (not
    # landed) is in no figure.
    spend = [(s.provider, s.tier, s.changes, s.tokens_per_change) for s in f.spend]
    assert spend == [("claude", "sonnet", 1, 550.0), ("codex", "medium", 1, 1200.0)]
    assert [s.cost_per_change for s in f.spend] == [
        round(cost(orch, *CLAUDE, 500, 50), 6),
        round(cost(orch, *CODEX, 1000, 200), 6),
    ]
    assert all(s.cost_per_change > 0 for s in f.spend)


async def test_a_window_that_ends_before_anything_landed_gives_zeros(
    world: World, orch: Orchestrator
) -> None:
    empty = (await orch.landing_view(hours=1)).figures
    assert (empty.landed, empty.returned, empty.landed_per_hour) == (0, 0, 0.0)
    assert (empty.wait_p50_s, empty.wait_p95_s, empty.returns_per_landed) == (None, None, None)
    assert empty.spend == []
    assert (await orch.landing_view()).entries == []

    await fill(orch, mover(world))
    # Two hours later, the last hour saw nothing end: the queue is still there.
    world.clock.current = START + timedelta(hours=2)
    later = await orch.landing_view(hours=1)
    assert (later.figures.landed, later.figures.returned, later.figures.spend) == (0, 0, [])
    assert later.figures.returns_per_landed is None
    assert [e.task_id for e in later.entries] == ["B", "Q", "H", "R"]
    assert later.entries[0].waited_s == 2 * 3600 - 660


async def test_what_a_landing_brought_for_telemetry(world: World, orch: Orchestrator) -> None:
    filled = await fill(orch, mover(world))
    brought = await orch.landed(filled.landing_id)
    assert brought.waits == (600.0,)
    assert [(s.provider, s.tier, s.changes, s.tokens) for s in brought.spend] == [
        ("claude", "sonnet", 1, 550),
        ("codex", "medium", 1, 1200),
    ]
    # A landing that brought nothing (abandoned, or no such landing) brings no figure.
    assert (await orch.landed(filled.landing_id + 1000)).waits == ()


async def test_charging_a_task_refuses_what_does_not_exist(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "T", "title": "t"})
    with pytest.raises(NotFound, match="'nope'"):
        await orch.charge_task("nope", *CODEX, 1, 1)
    with pytest.raises(ValidationFailed, match="not a tier"):
        await orch.charge_task("T", "codex", "no-such-model", 1, 1)
    with pytest.raises(ValidationFailed, match="not in the providers file"):
        await orch.charge_task("T", "nobody", "gpt-5-codex", 1, 1)


async def test_the_autopilot_views_mark_moves_with_the_queue(
    world: World, orch: Orchestrator
) -> None:
    """Entries move (queued -> testing) without a task event: the dashboard's Autopilot
    view is told by its mark."""
    filled = await fill(orch, mover(world))
    before = (await orch.board_changes(2**62, 1)).marks["autopilot"]
    fence = await orch.db.write(
        partial(landing_queue.hold_target, target=TARGET, run=RUN, until=world.clock.now() +
                timedelta(hours=1), now=world.clock.now())
    )  # fmt: skip
    assert fence is not None
    assert (await orch.board_changes(2**62, 1)).marks["autopilot"] == before
    await orch.db.write(
        partial(landing_queue.start, target=TARGET, run=RUN, fence=fence, ids=[filled.entries["B"]])
    )
    after = (await orch.board_changes(2**62, 1)).marks["autopilot"]
    assert after != before
