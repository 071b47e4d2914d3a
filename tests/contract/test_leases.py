"""Leases and fencing: heartbeats extend, an expired lease passes to another agent with the
last checkpoint, the old holder's token is refused everywhere, epochs count grants."""

from datetime import UTC, datetime

import anyio
import psycopg
import pytest

from tests.contract.conftest import World, create, events_of
from wvo_mcp.errors import LeaseLost, ValidationFailed
from wvo_mcp.models import LeaseResult
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.orchestrator import leases as lease_calls
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import leases
from wvo_mcp.store import Lock, postgres
from wvo_mcp.store.sql import queries

pytestmark = pytest.mark.anyio


async def test_heartbeat_and_checkpoint_extend_the_lease(world: World, orch: Orchestrator) -> None:
    await create(orch, {"id": "job", "title": "j"})
    claim = await orch.claim("a", lease_seconds=60)
    assert claim.lease_token is not None
    assert claim.lease_expires_at == world.clock.text(60)

    world.clock.advance(45)
    beat = await orch.heartbeat("job", claim.lease_token, "a")
    assert beat.lease_expires_at == world.clock.text(60)
    world.clock.advance(45)  # past the first expiry, within the renewed one
    assert (await orch.claim("b")).reason == "no_ready_task"
    longer = await orch.heartbeat("job", claim.lease_token, "a", lease_seconds=300)
    assert longer.lease_expires_at == world.clock.text(300)
    world.clock.advance(250)
    noted = await orch.checkpoint("job", claim.lease_token, "a", summary="half", progress=50)
    # A checkpoint renews by the lease's current length (300 s now).
    assert (noted.seq, noted.lease_expires_at) == (1, world.clock.text(300))
    detail = await orch.get_task("job")
    assert detail.lease_expires_at == world.clock.text(300) and detail.lease_epoch == 1


async def test_an_expired_lease_passes_on_and_the_old_holder_is_fenced(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "job", "title": "the job"})
    first = await orch.claim("agent-a", lease_seconds=30)
    token_a = first.lease_token
    assert token_a is not None and first.attempt == 1
    await orch.checkpoint(
        "job",
        token_a,
        "agent-a",
        summary="schema done, API half written",
        next_steps="finish the API",
        progress=50,
        files=["api.py"],
    )
    # Not before the lease has run out.
    world.clock.advance(30)
    refused = await orch.claim("agent-b", task_id="job")
    assert refused.reason == "task_not_ready" and "held by 'agent-a'" in refused.message
    world.clock.advance(0.001)
    plan = await orch.plan_next("agent-b")
    assert [t.id for t in plan.tasks] == ["job"] and plan.counts.lease_expired == 1

    second = await orch.claim("agent-b")
    assert second.claimed and second.task is not None and second.task.id == "job"
    assert second.attempt == 2 and second.lease_token not in (None, token_a)
    handed = second.last_checkpoint
    assert handed is not None
    assert (handed.seq, handed.agent_id, handed.summary, handed.next_steps) == (
        1,
        "agent-a",
        "schema done, API half written",
        "finish the API",
    )
    assert (handed.progress, handed.files) == (50, ["api.py"])
    detail = await orch.get_task("job")
    assert (detail.assigned_to, detail.attempts, detail.lease_epoch) == ("agent-b", 1, 2)
    assert [e.kind for e in await events_of(orch, "job")] == [
        "created",
        "claimed",
        "lease_expired",
        "claimed",
    ]

    # The old holder is fenced off everywhere, and told who holds the task now.
    moves = [
        orch.checkpoint("job", token_a, "agent-a", summary="still working"),
        orch.heartbeat("job", token_a, "agent-a"),
        orch.heartbeat("job", token_a, "agent-a", lease_seconds=600),
        orch.update_status("job", Status.DONE, "agent-a", token=token_a),
        orch.update_status("job", Status.FAILED, "agent-a", token=token_a),
        orch.update_status("job", Status.PENDING, "agent-a", token=token_a),
        orch.record_usage("codex", "gpt-5-codex", 10, 1, "success", "job", token_a),
    ]
    for move in moves:
        with pytest.raises(LeaseLost, match=r"lease lost.*agent-b"):
            await move
    detail = await orch.get_task("job")
    assert (detail.status, detail.assigned_to, detail.attempts) == (
        Status.IN_PROGRESS,
        "agent-b",
        1,
    )
    assert detail.latest_checkpoint is not None and detail.latest_checkpoint.seq == 1

    assert second.lease_token is not None
    assert (await orch.checkpoint("job", second.lease_token, "agent-b", summary="api")).seq == 2
    done = await orch.update_status("job", Status.DONE, "agent-b", token=second.lease_token)
    assert done.status is Status.DONE
    with pytest.raises(LeaseLost):
        await orch.update_status("job", Status.FAILED, "agent-a", token=token_a)
    assert (await orch.get_task("job")).status is Status.DONE


async def test_lease_epochs_increase_with_every_grant(world: World, orch: Orchestrator) -> None:
    await create(orch, {"id": "job", "title": "j", "max_attempts": 10})
    tokens = []
    for n in range(4):
        claim = await orch.claim(f"agent-{n}", lease_seconds=10)
        assert claim.claimed and claim.lease_token is not None
        tokens.append(claim.lease_token)
        assert (await orch.get_task("job")).lease_epoch == n + 1
        world.clock.advance(11)
    claimed = [e for e in await events_of(orch, "job") if e.kind == "claimed"]
    assert [e.lease_epoch for e in claimed] == [1, 2, 3, 4]
    assert len(set(tokens)) == 4
    # Every holder but the last one is fenced; the last one's lease has expired but nobody
    # took it over yet, so it still holds the task.
    for n, token in enumerate(tokens[:-1]):
        with pytest.raises(LeaseLost):
            await orch.heartbeat("job", token, f"agent-{n}")
    assert (await orch.heartbeat("job", tokens[-1], "agent-3")).lease_expires_at == (
        world.clock.text(10)
    )


async def test_lost_leases_count_as_attempts_until_the_dead_letter(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "flaky", "title": "f", "max_attempts": 2})
    first = await orch.claim("agent-a", lease_seconds=10)
    world.clock.advance(11)
    second = await orch.claim("agent-b", task_id="flaky", lease_seconds=10)
    assert second.claimed and second.attempt == 2
    assert second.lease_token is not None and second.lease_token != first.lease_token
    world.clock.advance(11)
    # That was the last attempt: the next claim dead-letters it instead of granting it.
    named = await orch.claim("agent-a", task_id="flaky")
    assert (named.claimed, named.reason) == (False, "task_not_ready")
    assert "dead-lettered" in named.message
    detail = await orch.get_task("flaky")
    assert (detail.status, detail.attempts, detail.assigned_to) == (Status.FAILED, 2, None)
    last = (await events_of(orch, "flaky"))[-1]
    assert (last.kind, last.actor, last.to_status, last.lease_epoch) == (
        "dead_lettered",
        "scheduler",
        "failed",
        2,
    )
    with pytest.raises(LeaseLost, match="failed"):
        await orch.checkpoint("flaky", second.lease_token, "agent-b", summary="s")
    assert (await orch.claim("agent-a")).reason == "no_ready_task"


async def test_an_unnamed_claim_skips_a_dead_lettered_task(
    world: World, orch: Orchestrator
) -> None:
    await create(
        orch,
        {"id": "once", "title": "o", "max_attempts": 1, "business_value": 20},
        {"id": "next", "title": "n"},
    )
    assert (await orch.claim("a", lease_seconds=10)).claimed
    world.clock.advance(11)
    taken = await orch.claim("b")
    assert taken.task is not None and taken.task.id == "next"
    assert (await orch.get_task("once")).status is Status.FAILED


async def test_a_token_is_needed_and_a_wrong_one_is_refused(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "job", "title": "j"})
    claim = await orch.claim("holder")
    with pytest.raises(ValidationFailed, match="lease_token"):
        await orch.update_status("job", Status.DONE, "holder")
    with pytest.raises(LeaseLost, match="holder"):
        await orch.update_status("job", Status.DONE, "holder", token="f" * 32)
    with pytest.raises(LeaseLost):
        await orch.heartbeat("job", "not-the-token", "holder")
    detail = await orch.get_task("job")
    assert (detail.status, detail.assigned_to) == (Status.IN_PROGRESS, "holder")
    assert detail.lease_expires_at == claim.lease_expires_at


async def test_release_hands_the_task_on_without_counting_a_failure(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "job", "title": "j"})
    first = await orch.claim("agent-a")
    assert first.lease_token is not None
    assert (await orch.claim("agent-b")).reason == "no_ready_task"
    await orch.checkpoint("job", first.lease_token, "agent-a", summary="notes")
    released = await orch.update_status(
        "job", Status.PENDING, "agent-a", token=first.lease_token, reason="urgent elsewhere"
    )
    assert (released.previous_status, released.status) == (Status.IN_PROGRESS, Status.PENDING)
    assert (released.attempts, released.not_before) == (0, None)
    second = await orch.claim("agent-b")
    assert second.claimed and second.attempt == 1
    assert second.last_checkpoint is not None and second.last_checkpoint.summary == "notes"
    assert (await orch.get_task("job")).lease_epoch == 2
    with pytest.raises(LeaseLost, match="agent-b"):
        await orch.heartbeat("job", first.lease_token, "agent-a")
    assert (await orch.plan_next("agent-a")).counts.wip_agent_used == 0


async def test_a_person_requeues_a_stuck_task_and_fences_its_holder(orch: Orchestrator) -> None:
    await create(orch, {"id": "job", "title": "j"})
    claim = await orch.claim("stuck")
    assert claim.lease_token is not None
    moved = await orch.requeue("job", "person:ops")
    assert (moved.previous_status, moved.status) == (Status.IN_PROGRESS, Status.PENDING)
    with pytest.raises(LeaseLost):
        await orch.checkpoint("job", claim.lease_token, "stuck", summary="s")
    detail = await orch.get_task("job")
    assert (detail.status, detail.assigned_to) == (Status.PENDING, None)
    last = (await events_of(orch, "job"))[-1]
    assert (last.actor, last.reason) == ("person:ops", "re-queued by a person")
    again = await orch.claim("stuck")
    assert again.claimed and again.lease_token != claim.lease_token


async def test_a_dead_autopilots_tasks_go_back_to_pending_with_their_checkpoints(
    world: World, orch: Orchestrator
) -> None:
    await create(
        orch, {"id": "a", "title": "a"}, {"id": "b", "title": "b"}, {"id": "c", "title": "c"}
    )
    held = {agent: await orch.claim(agent) for agent in ("w1", "w2", "other")}
    token = held["w1"].lease_token
    assert token is not None and held["w1"].task is not None
    mine = held["w1"].task.id
    await orch.checkpoint(mine, token, "w1", summary="half way", progress=50)

    released = await orch.release_orphans(["w1", "w2", ""], "its autopilot died")

    ids = {t.task.id for a, t in held.items() if a != "other" and t.task is not None}
    assert sorted(released) == sorted(ids)
    for task_id in released:
        detail = await orch.get_task(task_id)
        assert detail.status == Status.PENDING and detail.attempts == 0  # none counted
        last = (await events_of(orch, task_id))[-1]
        assert (last.kind, last.to_status, last.reason) == (
            "status",
            Status.PENDING,
            "its autopilot died",
        )
    assert held["other"].task is not None
    assert (await orch.get_task(held["other"].task.id)).status == Status.IN_PROGRESS
    again = await orch.claim("w3", task_id=mine)
    assert again.last_checkpoint is not None and again.last_checkpoint.summary == "half way"


async def test_an_agents_sighting_is_written_at_most_every_minute(world: World) -> None:
    orch = await world.open(stale_task_minutes=2.0)
    await create(orch, {"id": "T", "title": "t"})
    claim = await orch.claim("a", "T")
    assert claim.lease_token is not None

    async def seen() -> tuple[str, str]:
        [agent] = [a for a in await orch.agents_view() if a.id == "a"]
        return agent.last_seen_at, agent.state

    claimed_at = world.clock.text()
    assert await seen() == (claimed_at, "working")
    world.clock.advance(59)
    await orch.heartbeat("T", claim.lease_token, "a", lease_seconds=600)
    assert (await seen())[0] == claimed_at  # seen 59 s ago: not written again
    world.clock.advance(2)
    await orch.checkpoint("T", claim.lease_token, "a", summary="half")
    assert (await seen())[0] == world.clock.text()
    # Silent only past the stale threshold and the resolution together.
    world.clock.advance(120 + 59)
    assert (await seen())[1] != "silent"
    world.clock.advance(2)
    assert (await seen())[1] == "silent"


async def test_a_heartbeat_renews_to_the_millisecond_across_a_year_and_refuses_a_stale_token(
    world: World, orch: Orchestrator
) -> None:
    """The renewal's expiry is worked out by the database (the heartbeat waits on no read
    first): the same text as the clock's, milliseconds and a new year included; a token
    that no longer holds the task is told so and changes nothing."""
    await create(orch, {"id": "job", "title": "j"})
    claim = await orch.claim("a", lease_seconds=90)
    assert claim.lease_token is not None
    new_year = datetime(2032, 1, 1, tzinfo=UTC)
    world.clock.advance((new_year - world.clock.now()).total_seconds() - 30.2345)
    assert world.clock.text(0).endswith("23:59:29.765Z")
    stale = await orch.claim("b", task_id="job", lease_seconds=90)  # a's lease ran out
    assert stale.claimed and stale.lease_token is not None
    beat = await orch.heartbeat("job", stale.lease_token, "b")  # the task's own 90 s
    assert beat.lease_expires_at == world.clock.text(90) == "2032-01-01T00:00:59.765Z"
    with pytest.raises(LeaseLost, match="held by 'b'"):
        await orch.heartbeat("job", claim.lease_token, "a", lease_seconds=5)
    detail = await orch.get_task("job")
    assert (detail.assigned_to, detail.lease_expires_at) == ("b", world.clock.text(90))
    longer = await orch.heartbeat("job", stale.lease_token, "b", lease_seconds=7)
    assert longer.lease_expires_at == world.clock.text(7)
    world.clock.advance(1)
    assert (await orch.heartbeat("job", stale.lease_token, "b")).lease_expires_at == (
        world.clock.text(7)  # the length asked last is the task's now
    )


async def test_a_heartbeat_queued_behind_a_world_write_reads_what_it_committed(
    world: World, orch: Orchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A heartbeat waits out a WORLD write holding the world lock (it takes it shared), then
    reads as of after that write's commit: a note the write left for the holder is due with
    this very answer (notes_due), as it was when the lock was a statement of its own."""
    if world.backend.name == "sqlite":
        pytest.skip("one writer: nothing else writes while a write holds SQLite's lock")
    monkeypatch.setattr(lease_calls, "HELD_WAIT_S", 30.0)  # a loaded machine: never refused
    await create(orch, {"id": "held", "title": "h"})
    held = await orch.claim("holder", task_id="held")
    assert held.lease_token is not None
    token = held.lease_token
    url = world.backend.database_url
    assert url is not None
    beats: list[LeaseResult] = []

    async def beat() -> None:
        beats.append(await orch.heartbeat("held", token, "holder"))

    async with await psycopg.AsyncConnection.connect(url) as world_write:
        await world_write.execute("SELECT pg_advisory_xact_lock(%s)", (postgres.WRITE_LOCK_KEY,))
        note = {"task_id": "held", "kind": "tell", "body": "stop", "author": "person:p",
                "now": world.clock.text(), "for_epoch": None, "reply_to": None}  # fmt: skip
        await world_write.execute(queries("postgres")["add_note"], note)
        async with anyio.create_task_group() as group:
            group.start_soon(beat)
            with anyio.fail_after(10):  # until the heartbeat waits for the lock
                while True:
                    waiting = await world_write.execute(
                        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    )
                    if await waiting.fetchone():
                        break
                    await anyio.sleep(0.01)
            await world_write.commit()
    assert beats[0].lease_expires_at == world.clock.text(60)
    assert beats[0]._no_notes_for is None  # the note is due: this answer looks it up
    assert [n.text for n in await orch.notes_for("holder")] == ["stop"]


async def test_checkpoints_past_the_kept_are_pruned_and_one_sent_again_adds_none(
    world: World, orch: Orchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holder's checkpoints past CHECKPOINTS_KEPT are pruned, oldest first, each renewing
    the lease; a stale token's changes nothing. A plain one is one statement on PostgreSQL
    (checkpoint_held), which the store sends again after a lost connection: sent again,
    it answers the checkpoint it added and adds none."""
    monkeypatch.setattr(leases, "CHECKPOINTS_KEPT", 2)
    await create(orch, {"id": "job", "title": "j"})
    claim = await orch.claim("a", lease_seconds=90)
    assert claim.lease_token is not None
    for step in range(1, 5):
        world.clock.advance(1)
        noted = await orch.checkpoint("job", claim.lease_token, "a", summary=f"s{step}")
        assert (noted.seq, noted.lease_expires_at) == (step, world.clock.text(90))

    async def kept() -> list[int]:
        rows = await orch.db.read(lambda tx: tx.all("checkpoints_of", ("job",)))
        return sorted(row["seq"] for row in rows)

    assert await kept() == [3, 4]
    with pytest.raises(LeaseLost):
        await orch.checkpoint("job", "0" * 32, "a", summary="not mine")
    assert await kept() == [3, 4]
    if world.backend.name == "sqlite":
        return  # one local transaction: nothing is sent again
    again = leases.checkpoint_alone(
        "job", claim.lease_token, "a", "s5", None, None, [], world.clock.now()
    )
    never = leases.checkpoint  # the alone is sent instead
    twice = [await orch.db.write_then_read(never, Lock.TASK, None, again) for _ in range(2)]
    assert [(r.seq, r.lease_expires_at) for r in twice if r] == [(5, world.clock.text(90))] * 2
    assert await kept() == [4, 5]
