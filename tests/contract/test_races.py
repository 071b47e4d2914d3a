"""Races between writes that PostgreSQL runs side by side (store.Lock): each is run hundreds
of times on real connections, two servers' pools, the two calls started together in a random
order. Whoever wins, the outcome is one a serial order gives: a WIP slot granted once, a
lease either renewed or re-queued, a task either done by its holder or taken over.

SQLite has one writer, so there the same rounds only check that nothing differs; fewer run.
"""

import random
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import pytest

from tests.contract.conftest import World, create, events_of
from wvo_mcp.errors import LeaseLost
from wvo_mcp.health import leadership
from wvo_mcp.health import monitor as checks
from wvo_mcp.health.judge import Action
from wvo_mcp.models import ClaimResult
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import claims

pytestmark = pytest.mark.usefixtures("patient_claims")

# Each round's outcome is checked, and both outcomes must be seen: at 500 a round, each
# already comes hundreds of times (2,000 rounds cost the suite two minutes of its 20).
ROUNDS = {"postgres": 500, "sqlite": 100}
LEASE_S = 60


async def together(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Start the calls at once, in a random order; each one's result or exception."""
    results: list[Any] = [None] * len(calls)

    async def one(i: int) -> None:
        try:
            results[i] = await calls[i]()
        except Exception as exc:  # the loser's refusal is an outcome, checked by the caller
            results[i] = exc

    order = list(range(len(calls)))
    random.shuffle(order)
    async with anyio.create_task_group() as group:
        for i in order:
            group.start_soon(one, i)
    return results


class Writes:
    """Two servers' writes made to race in both orders: each round one server, picked at
    random, goes first, and the other starts its call once the first's write has begun
    (without it, whichever call starts its write first nearly always wins)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, **servers: Orchestrator) -> None:
        self.started = {name: anyio.Event() for name in servers}
        self.first = ""
        # A claim first reads whether it is sure to be refused (before its turn); here it
        # never is, and the read would only hold the claim's write back: the race is the
        # writes' (refusal_before_turn has tests of its own).
        monkeypatch.setattr(claims, "refusal_before_turn", lambda *args, **kwargs: None)
        for name, server in servers.items():
            for method in ("write", "write_then_read"):
                said = self._saying(name, getattr(server.db, method))
                monkeypatch.setattr(server.db, method, said)

    def _saying(self, name: str, write: Callable[..., Awaitable[Any]]) -> Any:
        async def write_then_say(*args: Any, **kwargs: Any) -> Any:
            self.started[name].set()
            return await write(*args, **kwargs)

        return write_then_say

    def next_round(self) -> None:
        self.started = {name: anyio.Event() for name in self.started}
        self.first = random.choice(list(self.started))

    async def turn(self, name: str) -> None:
        """Returns when `name` may start its call: at once if it goes first this round."""
        if self.first != name:
            await self.started[self.first].wait()


async def servers(world: World, **settings: Any) -> tuple[Orchestrator, Orchestrator]:
    """Two servers on the test's database, each with its own connections, off the loop."""
    a = await world.open(threaded=True, **settings)
    b = await world.open(threaded=True, **settings)
    return a, b


def granted(result: Any) -> bool:
    return isinstance(result, ClaimResult) and result.claimed


@pytest.mark.parametrize(
    ("scope", "settings", "reason"),
    [
        ("global", {"wip_global": 2, "wip_per_agent": 5}, "global_wip_limit"),
        ("agent", {"wip_global": 10, "wip_per_agent": 1}, "agent_wip_limit"),
        ("epic", {"wip_global": 10, "wip_per_agent": 5, "wip_per_epic": 2}, "epic_wip_limit"),
    ],
)
async def test_two_claimers_on_the_last_slot_of_a_wip_scope(
    world: World, scope: str, settings: dict[str, Any], reason: str
) -> None:
    rounds = ROUNDS[world.backend.name]
    a, b = await servers(world, **settings)
    # A short queue (a task more is added each round): a refused claim in a full epic reads
    # every ready task before it says so.
    await create(a, *({"id": f"t{i:05}", "title": "work", "epic_id": "e"} for i in range(3)))
    # One slot of the scope is taken for the whole test (for 'agent', the scope is empty and
    # the two claimers are one agent, so its one slot is the last).
    if scope != "agent":
        assert (await a.claim("holder")).claimed
    claimers = ("x", "x") if scope == "agent" else ("x", "y")
    outcomes: Counter[str] = Counter()
    for i in range(rounds):
        await create(a, {"id": f"u{i:05}", "title": "work", "epic_id": "e"})
        first, second = await together(partial(a.claim, claimers[0]), partial(b.claim, claimers[1]))
        assert granted(first) != granted(second), (first, second)
        winner, loser = (first, second) if granted(first) else (second, first)
        assert isinstance(loser, ClaimResult) and loser.reason == reason, loser
        outcomes["a" if winner is first else "b"] += 1
        assert winner.task is not None and winner.lease_token is not None
        done = await a.update_status(
            winner.task.id, Status.DONE, winner.agent_id, winner.lease_token
        )
        assert done.status is Status.DONE
    board = await a.plan_next("observer")
    assert board.counts.by_status.get(Status.DONE) == rounds
    assert board.counts.by_status.get(Status.IN_PROGRESS, 0) == (0 if scope == "agent" else 1)
    assert set(outcomes) == {"a", "b"}, outcomes  # both servers won some: they did race


async def test_a_heartbeat_racing_the_monitors_requeue(world: World) -> None:
    rounds = ROUNDS[world.backend.name]
    a, _ = await servers(world, wip_per_agent=1)
    monitor = await world.monitor_db()
    settings = a.settings
    await create(a, *({"id": f"t{i:05}", "title": "work"} for i in range(rounds)))
    lead = await monitor.write(
        partial(leadership.take_leadership, me="m", now=world.clock.now(), lease_seconds=10**9)
    )
    observation, _ = await monitor.read(
        partial(checks.observe, settings=settings, now=world.clock.now())
    )
    outcomes: Counter[str] = Counter()
    for _ in range(rounds):
        held = await a.claim("x", lease_seconds=LEASE_S)
        assert held.task is not None and held.lease_token is not None
        task_id, token = held.task.id, held.lease_token
        epoch = (await a.get_task(task_id)).lease_epoch
        world.clock.advance(LEASE_S * 2)  # expired, and silent past stale_task_minutes
        action = Action(kind="requeue", task_id=task_id, lease_epoch=epoch)
        requeue = partial(
            checks.record_tick, settings=settings, me="m", term=lead.term,
            observation=observation, anomalies=[], actions=[action], now=world.clock.now(),
        )  # fmt: skip
        beat, tick = await together(
            partial(a.heartbeat, task_id, token, "x"),
            partial(monitor.write, requeue, checks.tick_lock([action])),
        )
        after = await a.get_task(task_id)
        trail = [e.kind for e in await events_of(a, task_id) if e.lease_epoch == epoch]
        if isinstance(beat, LeaseLost):
            # Back to pending, or dead-lettered once the lost leases used its attempts up.
            assert [status for _, status in tick.actions] == [after.status.value], tick
            assert after.status in (Status.PENDING, Status.FAILED) and after.assigned_to is None
            assert trail.count("requeued") + trail.count("dead_lettered") == 1
            outcomes["requeued"] += 1
        else:
            assert not isinstance(beat, BaseException), beat
            assert tick.actions == [], tick  # the lease it saw stale was renewed first
            assert after.status is Status.IN_PROGRESS and after.lease_epoch == epoch
            assert after.lease_expires_at == beat.lease_expires_at
            assert "requeued" not in trail and "dead_lettered" not in trail
            outcomes["renewed"] += 1
            await a.update_status(task_id, Status.DONE, "x", token)
    assert set(outcomes) == {"requeued", "renewed"}, outcomes


async def test_a_done_racing_a_take_over(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    rounds = ROUNDS[world.backend.name]
    a, b = await servers(world, wip_per_agent=1)
    # A done is one write (a task with no verify_command), and so is a claim: whichever
    # starts its write first nearly always wins, so each round picks which one does.
    writes = Writes(monkeypatch, a=a, b=b)
    outcomes: Counter[str] = Counter()
    for i in range(rounds):
        # One task at a time: the expired lease is the only work a claim can take.
        await create(a, {"id": f"t{i:05}", "title": "work"})
        held = await a.claim("x", lease_seconds=LEASE_S)
        assert held.task is not None and held.lease_token is not None
        task_id, token = held.task.id, held.lease_token
        world.clock.advance(LEASE_S + 1)
        writes.next_round()

        async def finish(task_id: str = task_id, token: str = token) -> Any:
            await writes.turn("a")
            return await a.update_status(task_id, Status.DONE, "x", token)

        async def take() -> ClaimResult:
            await writes.turn("b")
            return await b.claim("y")

        done, taken = await together(finish, take)
        after = await a.get_task(task_id)
        trail = [e.kind for e in await events_of(a, task_id)]
        if isinstance(done, LeaseLost):
            assert granted(taken) and taken.task.id == task_id, taken
            assert after.status is Status.IN_PROGRESS and after.assigned_to == "y"
            assert "lease_expired" in trail and trail.count("claimed") == 2
            assert "status" not in trail  # the old holder's done left no trace
            outcomes["taken over"] += 1
            finished = await b.update_status(task_id, Status.DONE, "y", taken.lease_token)
            assert finished.status is Status.DONE
        else:
            assert not isinstance(done, BaseException), done
            assert done.status is Status.DONE
            assert isinstance(taken, ClaimResult) and taken.reason == "no_ready_task", taken
            assert after.status is Status.DONE and trail.count("claimed") == 1
            assert trail.count("status") == 1
            outcomes["done"] += 1
    assert set(outcomes) == {"taken over", "done"}, outcomes
