"""Smaller behaviours the tools and the autopilot rely on: notes on the audit trail, the
autopilot's run records, read-modify-write context appends from several servers, and a
write whose queued change fails."""

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from tests.contract.conftest import World, create, events_of
from wvo_mcp.errors import Conflict, NotFound
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.store import Lock, Tx

pytestmark = pytest.mark.anyio


async def test_a_note_is_recorded_and_moves_nothing(world: World, orch: Orchestrator) -> None:
    await create(orch, {"id": "job", "title": "j"})
    world.clock.advance(2)
    await orch.note("job", "autopilot", "commits", "3 commits on wvo/job")
    last = (await events_of(orch, "job"))[-1]
    assert (last.kind, last.actor, last.reason, last.at) == (
        "commits",
        "autopilot",
        "3 commits on wvo/job",
        world.clock.text(),
    )
    assert (last.from_status, last.to_status) == (None, None)
    assert (await orch.get_task("job")).status == "pending"
    with pytest.raises(NotFound):
        await orch.note("nope", "autopilot", "commits", "x")


async def test_autopilot_runs_hear_what_a_person_wants(world: World, orch: Orchestrator) -> None:
    since = world.clock.text()
    await orch.autopilot_start("run-1")
    world.clock.advance(1)
    await orch.autopilot_start("run-2")
    assert await orch.autopilot_beat("run-1", "running", {"slots": 2}) is None
    assert await orch.autopilot_want("pause", "person:ann") == 2  # every running autopilot
    assert await orch.autopilot_beat("run-1", "running", {"slots": 2}) == ("pause", "person:ann")
    assert await orch.autopilot_beat("run-1", "paused", {"slots": 0}) is None  # heard once
    assert await orch.autopilot_want("resume", "person:bo", "run-1") == 1
    assert await orch.autopilot_beat("run-1", "paused", {}) == ("resume", "person:bo")
    assert await orch.autopilot_beat("run-2", "running", {"n": [1, 2]}) == ("pause", "person:ann")
    world.clock.advance(5)
    assert await orch.autopilot_beat("run-2", "ended", {"done": True}) is None
    assert await orch.autopilot_want("stop", "person:ann") == 1  # an ended run hears nothing

    runs = await orch.autopilot_runs(since)
    assert [(r["id"], r["state"], r["report"]) for r in runs] == [
        ("run-1", "paused", {}),
        ("run-2", "ended", {"done": True}),
    ]
    assert runs[1]["seen_at"] == world.clock.text()
    later = await orch.autopilot_runs(world.clock.text(1))
    assert [r["id"] for r in later] == ["run-1"]  # ended runs are listed only when recent


async def test_concurrent_appends_lose_no_update(world: World) -> None:
    writers, lines = 4, 5
    servers = [await world.open(threaded=n % 2 == 1) for n in range(writers)]
    await servers[0].context_write("log", "start", "setup")
    conflicts = 0

    async def append(n: int, orch: Orchestrator) -> None:
        nonlocal conflicts
        for line in range(lines):
            while True:
                current = (await orch.context_read("log")).sections[0]
                await anyio.lowlevel.checkpoint()  # let another writer in between
                try:
                    await orch.context_write(
                        "log",
                        f"{current.content}\nw{n} line {line}",
                        f"w{n}",
                        expected_version=current.version,
                    )
                    break
                except Conflict:
                    conflicts += 1

    async with anyio.create_task_group() as group:
        for n, orch in enumerate(servers):
            group.start_soon(append, n, orch)

    final = (await servers[0].context_read("log")).sections[0]
    body = final.content.splitlines()
    assert body[0] == "start" and len(body) == 1 + writers * lines
    assert set(body[1:]) == {f"w{n} line {line}" for n in range(writers) for line in range(lines)}
    assert final.version == 1 + writers * lines
    assert conflicts > 0  # the writers did collide, and every collision was refused


async def test_a_sent_change_that_fails_fails_its_whole_write(orch: Orchestrator) -> None:
    """Tx.send does not wait for its answer (PostgreSQL pipelines it), but an error in it
    still fails the write, and nothing of the write is kept."""
    await create(orch, {"id": "T", "title": "t"})

    def write(tx: Tx) -> str:
        tx.send("touch_agent", ("sender", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"))
        tx.send("insert_event", ("no-such-task", "2026-01-01T00:00:00Z", "sender", "note",
                                 None, None, None, None))  # fmt: skip
        tx.send("touch_agent", ("after", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"))
        return "kept?"

    with pytest.raises(Exception, match=r"(?i)foreign key"):
        await orch.db.write(write, Lock.TASK)

    def agents(tx: Tx) -> list[Any]:
        return [tx.one("agent_identity", (name,)) for name in ("sender", "after")]

    assert await orch.db.read(agents) == [None, None]
    await orch.db.write(
        lambda tx: tx.send(
            "touch_agent", ("sender", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
        )
    )
    assert (await orch.db.read(agents))[0] is not None  # the same change, alone, is kept


async def test_cancelling_a_task_others_depend_on_says_they_wait_and_the_way_out(
    orch: Orchestrator,
) -> None:
    from wvo_mcp.rules.transitions import Status

    await create(
        orch, {"id": "A", "title": "a"}, {"id": "B", "title": "b", "depends_on": ["A"]},
        {"id": "C", "title": "c", "depends_on": ["A"]},
    )  # fmt: skip
    cancelled = await orch.update_status("A", Status.CANCELLED, "person:ann", by_person=True)
    assert "2 task(s) depend on it and wait until it is done: B, C" in cancelled.message
    assert "`wvo-mcp requeue A` brings it back" in cancelled.message
    back = await orch.requeue("A", "person:ann")
    assert back.status is Status.PENDING
    lone = await orch.update_status("B", Status.CANCELLED, "person:ann", by_person=True)
    assert "depend on it" not in lone.message
