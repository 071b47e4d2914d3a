"""A row lock held by a session that is not wvo-mcp's (a person's psql, a migration script)
stalls no claim: claims skip the locked task and take the next, checkpoints and plan_next go
on beside it, and a write that must wait on the row lets the claims behind it through.
PostgreSQL only: SQLite has no row locks.

Each call is bounded by a timeout that fails the test, never timed: a claim that waited on
the row would sit there until the lock is released (15 s, then `Busy`).
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import psycopg
import pytest

from tests.contract.conftest import World, create, events_of
from wvo_mcp.errors import Busy, NotFound, Overloaded
from wvo_mcp.models import ClaimResult
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status
from wvo_mcp.store import postgres

pytestmark = pytest.mark.anyio

BOUND_S = 10  # far beyond any claim here; below the lock timeout a waiting claim would hit
LEASE_S = 3600  # no lease expires while the test moves the clock for a second re-ranking


@asynccontextmanager
async def row_locked(world: World, task_id: str) -> AsyncIterator[None]:
    """`BEGIN; SELECT … FOR UPDATE` on one task's row in a session of its own, held open."""
    url = world.backend.database_url
    assert url is not None
    async with await psycopg.AsyncConnection.connect(url) as conn:
        found = await conn.execute("SELECT id FROM tasks WHERE id = %s FOR UPDATE", (task_id,))
        assert await found.fetchall() == [(task_id,)]  # held until the rollback below
        try:
            yield
        finally:
            await conn.rollback()


def taken(claim: ClaimResult) -> str:
    assert claim.claimed and claim.task is not None, claim.message
    return claim.task.id


async def claim_as_a_client(orch: Orchestrator, agent: str) -> str:
    """A claim made as a client makes it: refused as busy (its turn did not come within the
    claims' wait bound, as on a machine busy with other work), made again after the
    retry_after_s it was told; the test's own bound ends it."""
    while True:
        claim = await orch.claim(agent)
        if claim.reason != "busy":
            return taken(claim)
        await anyio.sleep(claim.retry_after_s or 0.25)


@pytest.fixture
async def pg_orch(world: World) -> Orchestrator:
    if world.backend.name != "postgres":
        pytest.skip("SQLite has no row locks: one writer at a time, and readers never wait")
    return await world.open(wip_per_agent=5, default_lease_seconds=LEASE_S)


async def test_a_locked_top_task_is_skipped_and_the_rest_of_the_loop_goes_on(
    world: World, pg_orch: Orchestrator
) -> None:
    other = await world.open(wip_per_agent=5, default_lease_seconds=LEASE_S)  # a 2nd server
    due = world.clock.text(3 * 24 * 3600)
    await create(
        pg_orch,
        # Dated: the first claim re-ranks it (and every minute after), so the score refresh
        # writes the locked row too.
        {"id": "top", "title": "t", "business_value": 20, "due_at": due},
        {"id": "second", "title": "s", "business_value": 15},
        {"id": "third", "title": "t", "business_value": 10},
        {"id": "fourth", "title": "f", "business_value": 5},
        {"id": "held", "title": "h", "business_value": 1},
    )
    held = await pg_orch.claim("holder", task_id="held")
    assert held.lease_token is not None

    async with row_locked(world, "top"):
        with anyio.fail_after(BOUND_S):
            assert await claim_as_a_client(pg_orch, "a") == "second"
            assert await claim_as_a_client(other, "b") == "third"

            # A named claim on the locked row is refused at once, and says why.
            named = await other.claim("c", task_id="top")
            assert (named.claimed, named.reason) == (False, "task_not_ready")
            assert "locked by another database session" in named.message

            # The holder of another task checkpoints; plan_next reads (the locked task is
            # still the best one: it is only skipped by a grant).
            saved = await other.checkpoint("held", held.lease_token, "holder", "half way")
            assert saved.seq == 1
            plan = await pg_orch.plan_next("d", limit=3)
            assert [t.id for t in plan.tasks] == ["top", "fourth"]

            # A minute on, the next claim re-ranks the dated tasks again.
            world.clock.advance(61)
            assert await claim_as_a_client(other, "d") == "fourth"
            idle = await pg_orch.claim("e")
            assert idle.reason == "no_ready_task"
            assert "locked by another database session" in idle.message

    # Released, the task was neither lost nor changed: the next claim takes it.
    with anyio.fail_after(BOUND_S):
        claim = await pg_orch.claim("e")
    assert taken(claim) == "top" and claim.attempt == 1
    # The grants the lock beat recorded nothing: one claim of it, the last.
    claimed = [e for e in await events_of(pg_orch, "top") if e.kind == "claimed"]
    assert [(e.actor, e.lease_epoch) for e in claimed] == [("e", 1)]


async def waiting(world: World, events: tuple[str, ...]) -> int:
    """How many of wvo-mcp's connections wait on a lock of these kinds now (pg_locks'
    names: 'transactionid' and 'tuple' for a row, 'advisory' for the world lock)."""
    url = world.backend.database_url
    assert url is not None
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        found = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'wvo-mcp' AND wait_event_type = 'Lock' "
            "AND wait_event = ANY(%s)",
            (list(events),),
        )
        row = await found.fetchone()
        assert row is not None
        return int(row[0])


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Polls until `check` holds (the caller bounds the wait)."""
    while not await check():  # noqa: ASYNC110 - polling the database's own view of its locks
        await anyio.sleep(0.01)


ROW = ("transactionid", "tuple")


@pytest.mark.parametrize("waiter", ["world", "task"])
async def test_a_write_waiting_on_a_locked_row_does_not_hold_claims_up(
    world: World, pg_orch: Orchestrator, waiter: str
) -> None:
    """A write that must change the locked row waits on it (it cannot skip it), but never
    with claims queued behind it: 'world', creating a task that depends on the locked one (it
    holds the world lock); 'task', a holder's done that releases the locked dependent, with
    a world write arriving behind it (which claims would then queue behind)."""
    other = await world.open(wip_per_agent=5, default_lease_seconds=LEASE_S)
    await create(
        pg_orch,
        {"id": "top", "title": "t", "business_value": 20},
        {"id": "second", "title": "s", "business_value": 15},
        {"id": "third", "title": "t", "business_value": 10},
        {"id": "held", "title": "h", "business_value": 1},
        {"id": "after", "title": "a", "depends_on": ["held"]},
    )
    held = await pg_orch.claim("holder", task_id="held")
    assert held.lease_token is not None
    token = held.lease_token
    done: dict[str, object] = {}

    async def create_dependent() -> None:
        await create(other, {"id": "later", "title": "l", "depends_on": ["top"]})
        done["later"] = True

    async def finish_held() -> None:
        try:
            done["held"] = await other.update_status("held", Status.DONE, "holder", token)
        except Overloaded as exc:  # a holder's move waits no longer than the bound
            done["refused"] = exc

    async def create_unrelated() -> None:
        await create(other, {"id": "unrelated", "title": "u"})
        done["unrelated"] = True

    async def row_waited() -> bool:
        return "refused" in done or await waiting(world, ROW) > 0

    async def world_queued_or_done() -> bool:
        return "unrelated" in done or await waiting(world, ("advisory",)) > 0

    locked = "top" if waiter == "world" else "after"
    # Leaving the block releases the row, then waits for the writes started in it: they go
    # through, as if the lock had never been.
    async with anyio.create_task_group() as group, row_locked(world, locked):
        with anyio.fail_after(BOUND_S):
            group.start_soon(create_dependent if waiter == "world" else finish_held)
            await until(row_waited)
            if waiter == "task":
                group.start_soon(create_unrelated)
                await until(world_queued_or_done)
            first = await claim_as_a_client(pg_orch, "a")
            assert await claim_as_a_client(pg_orch, "b") in {"second", "third"} - {first}
        assert not {"later", "held"} & done.keys()  # still waiting on the row, or refused
    if waiter == "world":
        assert done.keys() == {"later"}
    else:
        # The holder's done went through once the row was free, or was refused at its wait
        # bound (HELD_WAIT_S), saying which row and that nothing was done; made again, it
        # goes through.
        assert done.keys() in ({"held", "unrelated"}, {"refused", "unrelated"}), done
        if "refused" in done:
            said = str(done["refused"])
            assert "a row of tasks stayed locked by another database session" in said, said
            assert "nothing of this call was done; retry in 1 s" in said
            assert (await pg_orch.get_task("held")).status is Status.IN_PROGRESS
            await other.update_status("held", Status.DONE, "holder", token)
        claim = await pg_orch.claim("c", task_id="after")  # released by the done
        assert taken(claim) == "after"


async def test_a_write_the_lock_outlasts_fails_busy_naming_the_row_and_keeps_nothing(
    world: World, pg_orch: Orchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "RECONNECT_DEADLINE_S", 1.0)  # the deadline, shortened
    await create(pg_orch, {"id": "top", "title": "t"})
    async with row_locked(world, "top"):
        with anyio.fail_after(BOUND_S), pytest.raises(Busy) as refused:
            await create(pg_orch, {"id": "later", "title": "l", "depends_on": ["top"]})
    assert "a row of tasks stayed locked by another database session" in str(refused.value)
    assert "nothing of this call was kept" in str(refused.value)
    with pytest.raises(NotFound):
        await pg_orch.get_task("later")


async def test_a_holders_write_waits_no_longer_than_its_bound_and_keeps_nothing(
    world: World, pg_orch: Orchestrator
) -> None:
    """A heartbeat and a done on a row another session holds are refused once the held
    work's wait bound passes (HELD_WAIT_S, long before the store's own 15 s), saying which
    row, that nothing was done and when to retry; the task is as it was."""
    await create(pg_orch, {"id": "top", "title": "t"})
    held = await pg_orch.claim("holder", task_id="top")
    assert held.lease_token is not None
    before = await pg_orch.get_task("top")
    async with row_locked(world, "top"):
        with anyio.fail_after(BOUND_S):
            with pytest.raises(Overloaded) as beat:
                await pg_orch.heartbeat("top", held.lease_token, "holder")
            with pytest.raises(Overloaded) as done:
                await pg_orch.update_status("top", Status.DONE, "holder", held.lease_token)
    for refused in (beat.value, done.value):
        assert "a row of tasks stayed locked by another database session" in str(refused)
        assert "nothing of this call was done; retry in 1 s" in str(refused)
        assert refused.retry_after == 1.0
    assert await pg_orch.get_task("top") == before
