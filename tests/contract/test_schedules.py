"""Tasks that come back (services/schedules.py), on every backend, with a clock the test
moves: a weekly task is a new task each Monday once the last is done, never two open at
once, and one made however many hosts tick at the same moment."""

from datetime import datetime, timedelta

import anyio
import pytest

from tests.contract.conftest import World, monitor_tick
from wvo_mcp.errors import NotFound
from wvo_mcp.models import ScheduledSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status

pytestmark = pytest.mark.anyio
WEEKLY = {"id": "deps", "title": "Update the dependencies", "every": "0 6 * * 1",
          "description": "Bump what is outdated.", "complexity": 2}  # fmt: skip


async def finish(orch: Orchestrator, task_id: str) -> None:
    claim = await orch.claim("worker", task_id)
    assert claim.claimed, claim.message
    await orch.update_status(task_id, Status.DONE, "worker", token=claim.lease_token)


def monday_after(moment: datetime) -> datetime:
    days = (7 - moment.weekday()) % 7 or 7
    return (moment + timedelta(days=days)).replace(hour=6, minute=0, second=0, microsecond=0)


async def test_a_weekly_task_comes_back_as_a_new_task_once_the_last_is_done(
    world: World, orch: Orchestrator
) -> None:
    await orch.create_tasks([ScheduledSpec.model_validate(WEEKLY)], "person:lead")
    assert (await orch.get_task("deps")).status == Status.PENDING  # a task now
    [listed] = await orch.schedules()
    first = monday_after(world.clock.now())
    assert (listed.last_task, listed.next_at) == ("deps", f"{first:%Y-%m-%dT%H:%M}:00.000Z")
    # Its time comes while the last is still open: nothing, until it is done (then once).
    world.clock.current = first + timedelta(hours=2)
    assert await orch.schedules_due() == []
    await finish(orch, "deps")
    made = f"deps.{first:%Y%m%d-%H%M}"
    assert await orch.schedules_due() == [made]
    assert await orch.schedules_due() == []
    task = await orch.get_task(made)
    assert (task.title, task.description, task.complexity) == (
        "Update the dependencies", "Bump what is outdated.", 2)  # fmt: skip
    assert task.metadata["schedule"]["id"] == "deps"
    # Done the same day: it waits for next Monday.
    await finish(orch, made)
    world.clock.advance(3600)
    assert await orch.schedules_due() == []
    second = first + timedelta(weeks=1)
    world.clock.current = second
    assert await orch.schedules_due() == [f"deps.{second:%Y%m%d-%H%M}"]
    [listed] = await orch.schedules()
    assert listed.last_status == Status.PENDING and listed.next_at.startswith(
        f"{second + timedelta(weeks=1):%Y-%m-%d}")  # fmt: skip


async def test_many_hosts_ticking_at_once_make_one_task(world: World, orch: Orchestrator) -> None:
    await orch.create_tasks([ScheduledSpec.model_validate({**WEEKLY, "every": "1d"})], "p")
    await finish(orch, "deps")
    world.clock.advance(86_400)
    hosts = [orch, *[await world.open(threaded=True) for _ in range(3)]]
    made: list[list[str]] = []

    async def tick(host: Orchestrator) -> None:
        made.append(await host.schedules_due())

    async with anyio.create_task_group() as group:
        for host in hosts:
            group.start_soon(tick, host)
    assert sorted(t for found in made for t in found) == [
        f"deps.{world.clock.now():%Y%m%d-%H%M}"
    ], made


async def test_the_monitor_s_leader_makes_them_and_a_stopped_one_makes_none(
    world: World, orch: Orchestrator
) -> None:
    await orch.create_tasks([ScheduledSpec.model_validate({**WEEKLY, "every": "12h"})], "p")
    await finish(orch, "deps")
    world.clock.advance(12 * 3600)
    await monitor_tick(orch.db, world.settings(), "leader", world.clock)
    [listed] = await orch.schedules()
    assert listed.last_task == f"deps.{world.clock.now():%Y%m%d-%H%M}"
    assert "stopped" in await orch.unschedule("deps")
    await finish(orch, listed.last_task)
    world.clock.advance(24 * 3600)
    assert await orch.schedules_due() == []
    with pytest.raises(NotFound):
        await orch.unschedule("nothing")


def test_a_schedule_that_is_not_one_says_what_is_accepted() -> None:
    for every in ("* * * * *", "1m", "weekly", "0 6 * * 9"):
        with pytest.raises(ValueError, match="five fields in UTC"):
            ScheduledSpec.model_validate({**WEEKLY, "every": every})
    with pytest.raises(ValueError, match="needs an id"):
        ScheduledSpec.model_validate({"title": "t", "every": "1d"})


async def test_an_export_imported_again_keeps_its_schedules(
    world: World, orch: Orchestrator
) -> None:
    await orch.create_tasks([ScheduledSpec.model_validate(WEEKLY)], "p")
    exported = await orch.export_tasks()
    assert [e.get("every") for e in exported] == ["0 6 * * 1"]
