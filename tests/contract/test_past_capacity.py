"""Past capacity (rules/claim_admission.py, docs/http.md): while the claims' turn is held by
another (PostgreSQL's claim lock, SQLite's writers' lock), a claim is refused as busy at
its wait bound, with a time to come back and nothing done; once claims are seen to queue,
one sure to be refused is refused from a read without waiting for the turn."""

import fcntl
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import psycopg
import pytest

from tests.contract.conftest import World, create, events_of
from wvo_mcp import providers as provider_config
from wvo_mcp.config import Settings
from wvo_mcp.errors import Overloaded
from wvo_mcp.orchestrator import Orchestrator, arrival
from wvo_mcp.rules.claim_admission import (
    HELD_WAIT_S,
    RETRY_MAX_S,
    RETRY_MIN_S,
    WAIT_BOUND_S,
    ClaimAdmission,
)
from wvo_mcp.rules.transitions import Status
from wvo_mcp.store import postgres, sqlite

pytestmark = pytest.mark.anyio

BOUND_S = 10  # far beyond a claim's wait bound: a call that waited for the turn misses it


@asynccontextmanager
async def turn_held(world: World, orch: Orchestrator) -> AsyncIterator[None]:
    """The claims' turn held by a session that is not a server's: on PostgreSQL the claim
    lock (as another server's claim holds it), on SQLite the writers' lock."""
    url = world.backend.database_url
    if url is not None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (postgres.CLAIM_LOCK_KEY,))
            yield
        return
    assert isinstance(orch.db, sqlite.SqliteDatabase)
    path = orch.db.path.with_name(orch.db.path.name + sqlite.WRITERS_LOCK_SUFFIX)
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


async def one_connection(
    world: World, settings: Settings | None = None
) -> tuple[postgres.PostgresDatabase, Orchestrator]:
    """An orchestrator on this world's PostgreSQL whose pool holds a single connection."""
    url = world.backend.database_url
    assert url is not None
    settings = settings or world.settings()
    db = await postgres.PostgresDatabase(url, pool_size=1).open()
    orch = Orchestrator(db, settings, provider_config.load(settings), world.clock.now)
    world.opened.append(orch)
    return db, orch


async def test_claims_sure_to_be_refused_do_not_wait_for_the_turn(
    world: World, orch: Orchestrator
) -> None:
    await create(
        orch,
        {"id": "held", "title": "h", "business_value": 10},
        {"id": "later", "title": "l", "depends_on": ["held"]},
    )
    held = await orch.claim("holder")
    assert held.claimed and held.task is not None and held.task.id == "held"
    async with turn_held(world, orch):
        with anyio.fail_after(BOUND_S):
            # The first claim to find the turn held waits its bound: claims queue now.
            first = await orch.claim("newcomer")
            assert first.reason == "busy" and orch.claims.contended()
            # The agent's WIP is full; no task is ready for another; a named task is held.
            # (Others than the newcomer, told to come back later: it would be answered so.)
            full = await orch.claim("holder")
            none = await orch.claim("another")
            named = await orch.claim("third", task_id="held")
    assert (full.reason, none.reason, named.reason) == (
        "agent_wip_limit",
        "no_ready_task",
        "task_not_ready",
    )
    assert "already holds 1 task(s)" in full.message
    assert "held by 'holder'" in named.message


async def test_a_claim_that_finds_no_turn_is_refused_as_busy_with_nothing_done(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "ready", "title": "r"})
    async with turn_held(world, orch):
        with anyio.fail_after(BOUND_S):
            busy = await orch.claim("newcomer")
    assert (busy.claimed, busy.reason) == (False, "busy")
    assert busy.retry_after_s is not None and RETRY_MIN_S <= busy.retry_after_s <= RETRY_MAX_S
    assert "nothing was done" in busy.message and "Claim again in" in busy.message
    assert (await orch.get_task("ready")).status is Status.PENDING
    assert [e.kind for e in await events_of(orch, "ready")] == ["created"]
    # The turn free again, the claim made as told is granted.
    await anyio.sleep(busy.retry_after_s)  # as told (sooner is answered busy)
    again = await orch.claim("newcomer")
    assert again.claimed and again.task is not None and again.task.id == "ready"


async def test_a_claim_back_before_its_time_is_answered_at_its_time(orch: Orchestrator) -> None:
    """Told to come back later (at the HTTP edge, or by this process's claim admission), an agent's
    claim made sooner through the tool is refused busy with what is left of its time, and
    nothing is done; the turn it would have taken is for the agents told earlier slots."""
    await create(orch, {"id": "ready", "title": "r"})
    orch.claims.told["newcomer"] = time.monotonic() + RETRY_MAX_S  # as a refusal tells it
    with anyio.fail_after(BOUND_S):
        early = await orch.claim("newcomer")
    assert (early.claimed, early.reason) == (False, "busy"), early
    assert early.retry_after_s is not None and 0 < early.retry_after_s <= RETRY_MAX_S
    assert (await orch.get_task("ready")).status is Status.PENDING
    assert [e.kind for e in await events_of(orch, "ready")] == ["created"]
    orch.claims.told["newcomer"] = time.monotonic()  # its time has come: granted
    granted = await orch.claim("newcomer")
    assert granted.claimed and granted.task is not None and granted.task.id == "ready"


async def test_a_done_with_claim_next_past_capacity_moves_and_refuses_only_the_claim(
    world: World, orch: Orchestrator
) -> None:
    if world.backend.name == "sqlite":
        pytest.skip("SQLite has one writer: with its lock held the move cannot be made either")
    await create(
        orch, {"id": "first", "title": "f", "business_value": 10}, {"id": "next", "title": "n"}
    )
    held = await orch.claim("agent")
    assert held.lease_token is not None
    async with turn_held(world, orch):
        with anyio.fail_after(BOUND_S):
            moved = await orch.update_and_claim(
                "first", Status.DONE, "agent", held.lease_token, None
            )
    assert moved.status is Status.DONE
    assert moved.next is not None and moved.next.reason == "busy"
    assert (await orch.get_task("next")).status is Status.PENDING


async def test_claims_refused_at_the_lock_leave_the_connection_sound(world: World) -> None:
    """A claim refused at its wait bound aborts its first batch of statements, with what it
    had queued behind its locks. On one pooled connection, such refusals, then claims and
    dones, all go through: no statement is left half-prepared (psycopg counts a statement's
    uses and prepares it on the fifth, and a prepare in an aborted batch never happened)."""
    if world.backend.name == "sqlite":
        pytest.skip("PostgreSQL's pipelines and prepared statements")
    _, orch = await one_connection(world, world.settings(wip_per_agent=1))
    await create(orch, *({"id": f"t{i}", "title": "t"} for i in range(4)))
    for _ in range(3):
        async with turn_held(world, orch):
            for _ in range(3):
                assert (await orch.claim("agent")).reason == "busy"
        orch.claims = ClaimAdmission()  # what it learnt would refuse the next claims at once
        held = await orch.claim("agent")
        assert held.claimed and held.task is not None and held.lease_token is not None
        await orch.update_status(held.task.id, Status.DONE, "agent", held.lease_token)


async def test_the_read_before_a_contended_claim_waits_no_longer_than_its_bound(
    world: World,
) -> None:
    """While claims queue, a claim first reads whether it is sure to be refused; with every
    pooled connection busy, that read is refused at the claim's bound, and the claim as
    busy, rather than waiting the store's 15 s for a connection."""
    if world.backend.name == "sqlite":
        pytest.skip("a SQLite reader waits for no connection")
    db, orch = await one_connection(world)
    await create(orch, {"id": "ready", "title": "r"})
    orch.claims = ClaimAdmission(turn_s=1.0)  # turns lately slow: claims read first
    assert db._pool is not None
    async with db._pool.connection():  # the pool's only connection, busy elsewhere
        with anyio.fail_after(BOUND_S):
            busy = await orch.claim("agent")
    assert (busy.claimed, busy.reason) == (False, "busy")
    assert busy.retry_after_s is not None and busy.retry_after_s >= RETRY_MIN_S
    assert (await orch.get_task("ready")).status is Status.PENDING


async def test_a_server_whose_connections_are_all_in_use_refuses_at_once_and_probes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every pooled connection live and in use is capacity, not a lost database: a holder's
    heartbeat, checkpoint and done and a claim are refused at their bounds with nothing
    done, and no new connection is opened to ask whether the database is there (one for
    each refusal would add to the load past capacity)."""
    if world.backend.name == "sqlite":
        pytest.skip("a SQLite writer waits for no connection")
    db, orch = await one_connection(world)
    await create(orch, {"id": "held", "title": "h"}, {"id": "ready", "title": "r"})
    held = await orch.claim("holder", task_id="held")
    assert held.lease_token is not None
    probes: list[object] = []
    reachable = postgres.PostgresDatabase._reachable

    async def probed(self: postgres.PostgresDatabase) -> bool:
        probes.append(self)
        return await reachable(self)

    monkeypatch.setattr(postgres.PostgresDatabase, "_reachable", probed)
    assert db._pool is not None
    async with db._pool.connection():  # the pool's only connection, busy elsewhere
        with anyio.fail_after(BOUND_S):
            with pytest.raises(Overloaded, match="nothing of this call was done"):
                await orch.heartbeat("held", held.lease_token, "holder")
            with pytest.raises(Overloaded, match="a database connection did not come"):
                await orch.checkpoint("held", held.lease_token, "holder", "half way")
            with pytest.raises(Overloaded):
                await orch.update_status("held", Status.DONE, "holder", held.lease_token)
            busy = await orch.claim("agent", task_id="ready")
    assert (busy.claimed, busy.reason) == (False, "busy")
    assert probes == []
    assert (await orch.get_task("held")).status is Status.IN_PROGRESS
    assert (await orch.get_task("ready")).status is Status.PENDING
    assert [c.summary for c in await orch.checkpoints("held")] == []


async def test_claims_refused_in_their_turn_add_no_holder_to_claim_admission(
    world: World, orch: Orchestrator
) -> None:
    """Only a claim granted adds a holder: an agent asking again and again while its WIP is
    full does not spend the new holders the process lets in a second, and a claim from
    another agent is granted after a hundred such refusals."""
    await create(orch, {"id": "one", "title": "1"}, {"id": "two", "title": "2"})
    first = await orch.claim("busy-agent")  # one task at a time (the worlds' WIP per agent)
    assert first.claimed and first.task is not None
    for _ in range(100):
        refused = await orch.claim("busy-agent")
        assert refused.reason == "agent_wip_limit", refused
    granted = await orch.claim("other")
    assert granted.claimed and granted.task is not None and granted.task.id != first.task.id


@contextmanager
def arrived_ago(seconds: float) -> Iterator[None]:
    """The call being served reached the server `seconds` ago (as the HTTP edge marks it)."""
    marked = arrival.mark(time.monotonic() - seconds)
    try:
        yield
    finally:
        arrival.unmark(marked)


async def test_a_claim_whose_call_spent_its_bound_before_the_turn_is_refused_as_busy(
    world: World, orch: Orchestrator
) -> None:
    """A claim's bound counts from its call's arrival (orchestrator/arrival.py): one that
    waited it out before reaching the orchestrator (its token's check, a busy loop) is refused
    with nothing done, though nothing else is claiming; made again, it is granted."""
    await create(orch, {"id": "ready", "title": "r"})
    with arrived_ago(WAIT_BOUND_S + 1):
        late = await orch.claim("agent")
    assert (late.claimed, late.reason) == (False, "busy")
    assert (await orch.get_task("ready")).status is Status.PENDING
    assert [e.kind for e in await events_of(orch, "ready")] == ["created"]
    assert late.retry_after_s is not None
    await anyio.sleep(late.retry_after_s)  # as told (sooner is answered busy)
    again = await orch.claim("agent")
    assert again.claimed and again.task is not None and again.task.id == "ready"


async def test_held_work_waits_only_what_is_left_of_its_bound_since_its_call_arrived(
    world: World, orch: Orchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A heartbeat, a checkpoint and a done whose call arrived SPENT seconds ago may wait at
    most what is left of held work's bound for the store (arrival.left), and a token's
    checks the same; a call past its bound still takes what is free (it is served here)."""
    spent = HELD_WAIT_S - 0.1
    await create(orch, {"id": "held", "title": "h"})
    held = await orch.claim("holder")
    assert held.lease_token is not None
    token = held.lease_token
    bounds: list[float | None] = []
    db = orch.db

    def spied(name: str) -> Any:
        real = getattr(db, name)

        async def spy(*args: Any, **kwargs: Any) -> Any:
            bounds.append(kwargs["within"] if "within" in kwargs else args[2])
            return await real(*args, **kwargs)

        return spy

    for name in ("write_then_read", "write", "read"):
        monkeypatch.setattr(db, name, spied(name))
    with arrived_ago(spent):
        await orch.heartbeat("held", token, "holder")
        await orch.checkpoint("held", token, "holder", "half way")
        await orch.token_revocations()
        moved = await orch.update_status("held", Status.DONE, "holder", token)
    assert moved.status is Status.DONE
    assert len(bounds) == 4
    assert all(b is not None and b <= HELD_WAIT_S - spent for b in bounds), bounds
    bounds.clear()
    with arrived_ago(HELD_WAIT_S + 1):
        await orch.token_revocations()
    assert bounds == [arrival.FLOOR_S]
