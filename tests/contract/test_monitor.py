"""The health monitor's database work (health/monitor.py), driven tick by tick with the
test's clock: the leader lease, re-queue of stale work with back-off, dead letters, repair of
drifted dependency counts, anomalies, the report, and pruning of old events."""

from datetime import timedelta
from functools import partial

import pytest

from tests.contract.conftest import World, create, events_of, monitor_tick
from wvo_mcp import timeutil
from wvo_mcp.errors import LeaseLost
from wvo_mcp.health import judge, leadership, monitor_loop
from wvo_mcp.health import monitor as checks
from wvo_mcp.health.monitor_loop import HealthMonitor
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status
from wvo_mcp.store import Tx
from wvo_mcp.telemetry import Telemetry

pytestmark = pytest.mark.anyio


async def test_one_leader_at_a_time_takeover_after_expiry_and_release(world: World) -> None:
    a, b = await world.monitor_db(), await world.monitor_db()
    clock = world.clock

    def take(me: str) -> partial[leadership.Leadership]:
        return partial(leadership.take_leadership, me=me, now=clock.now(), lease_seconds=10)

    first = await a.write(take("A"))
    assert (first.holder, first.term, first.expires_at) == (
        "A",
        1,
        clock.now() + timedelta(seconds=10),
    )
    assert (await b.write(take("B"))).holder == "A"
    clock.advance(5)
    renewed = await a.write(take("A"))
    assert (renewed.holder, renewed.term) == ("A", 1)
    assert renewed.expires_at == clock.now() + timedelta(seconds=10)

    clock.advance(10)  # exactly at the expiry: still A's
    assert (await b.write(take("B"))).holder == "A"
    clock.advance(0.001)
    taken = await b.write(take("B"))
    assert (taken.holder, taken.term) == ("B", 2)
    assert (await a.write(take("A"))).holder == "B"  # A cannot take it back

    report = await (await world.open()).health_report()
    assert report.leader == "B" and report.leader_expires_at == clock.text(10)

    # A's tick of its old term is refused and writes nothing.
    observation, _ = await a.read(
        partial(checks.observe, settings=world.settings(), now=clock.now())
    )
    with pytest.raises(leadership.NotLeader):
        await a.write(
            partial(
                checks.record_tick,
                settings=world.settings(),
                me="A",
                term=1,
                observation=observation,
                anomalies=[],
                actions=[],
                now=clock.now(),
            )
        )
    assert (await (await world.open()).health_report()).snapshot is None

    await a.write(partial(leadership.release_leadership, me="A", now=clock.now()))  # not A's
    assert (await a.write(take("A"))).holder == "B"
    await b.write(partial(leadership.release_leadership, me="B", now=clock.now()))
    clock.advance(0.001)
    assert (await (await world.open()).health_report()).leader is None
    back = await a.write(take("A"))
    assert (back.holder, back.term) == ("A", 3)


async def test_a_fresh_database_reports_no_snapshot_yet(orch: Orchestrator) -> None:
    report = await orch.health_report()
    assert (report.snapshot, report.leader, report.open_anomalies) == (None, None, 0)
    assert "WVO_AUTOPILOT_HEALTH_INTERVAL_MS" in report.message


async def test_stale_work_is_requeued_with_back_off_exactly_once(world: World) -> None:
    settings = world.settings()  # stale after 1 minute, retry base 10 s
    orch, mon = await world.open(), await world.monitor_db()
    clock = world.clock
    await create(orch, {"id": "job", "title": "survives its agent"})
    claim = await orch.claim("gone", lease_seconds=30)
    assert claim.lease_token is not None
    clock.advance(10)
    await orch.checkpoint("job", claim.lease_token, "gone", summary="parser half done")

    clock.advance(35)  # lease expired 15 s ago, last heard of 35 s ago: not stale yet
    tick = await monitor_tick(mon, settings, "mon", clock, orch.providers)
    assert tick.observation is not None and tick.outcome is not None
    counts = tick.observation.counts
    assert (counts.expired_leases, counts.stale_tasks) == (1, 0)
    assert tick.outcome.actions == []
    assert (await orch.get_task("job")).status is Status.IN_PROGRESS

    clock.advance(25.001)  # heard of 60.001 s ago
    tick = await monitor_tick(mon, settings, "mon", clock, orch.providers)
    assert tick.observation is not None and tick.outcome is not None
    [stale] = tick.observation.stale
    assert (stale.id, stale.holder, stale.lease_epoch) == ("job", "gone", 1)
    assert [(a.kind, a.task_id, s) for a, s in tick.outcome.actions] == [
        ("requeue", "job", "pending")
    ]
    assert [(a.kind, a.subject) for a in tick.outcome.opened] == [("stale_task", "job")]
    assert [p.name for p in tick.observation.providers] == ["codex", "claude"]
    assert tick.observation.unroutable == []
    detail = await orch.get_task("job")
    assert (detail.status, detail.attempts, detail.assigned_to) == (Status.PENDING, 1, None)
    assert detail.not_before == clock.text(10)  # the retry base
    last = (await events_of(orch, "job"))[-1]
    assert (last.kind, last.actor, last.from_status, last.to_status, last.lease_epoch) == (
        "requeued",
        "health-monitor",
        "in_progress",
        "pending",
        1,
    )
    assert f"claimable from {clock.text(10)}" in (last.reason or "")

    report = await orch.health_report()
    assert report.leader == "mon" and report.snapshot is not None
    assert report.snapshot.actions == 1 and report.snapshot.at == clock.text()
    assert [(a.task_id, a.kind, a.to_status) for a in report.actions] == [
        ("job", "requeued", "pending")
    ]
    assert "stale_task" not in {a.kind for a in report.anomalies}  # repaired: resolved at once

    with pytest.raises(LeaseLost):
        await orch.heartbeat("job", claim.lease_token, "gone")
    assert (await orch.claim("heir")).reason == "no_ready_task"  # backing off
    again = await monitor_tick(mon, settings, "mon", clock)
    assert again.outcome is not None and again.outcome.actions == []  # not again
    clock.advance(10)
    taken = await orch.claim("heir")
    assert taken.claimed and taken.attempt == 2
    assert taken.last_checkpoint is not None
    assert taken.last_checkpoint.summary == "parser half done"
    assert (await orch.get_task("job")).lease_epoch == 2


async def test_a_claim_between_observing_and_acting_wins(world: World) -> None:
    """The action is re-checked against the current row: a task taken over after the
    observation (a new grant) is left to its new holder."""
    settings = world.settings()
    orch, mon = await world.open(), await world.monitor_db()
    await create(orch, {"id": "job", "title": "j"})
    assert (await orch.claim("gone", lease_seconds=5)).claimed
    world.clock.advance(61)
    lead = await mon.write(
        partial(leadership.take_leadership, me="mon", now=world.clock.now(), lease_seconds=10)
    )
    observation, _ = await mon.read(
        partial(checks.observe, settings=settings, now=world.clock.now())
    )
    actions = judge.decide(observation, remediate=True)
    assert [(a.kind, a.task_id, a.lease_epoch) for a in actions] == [("requeue", "job", 1)]

    heir = await orch.claim("heir")
    assert heir.claimed and heir.attempt == 2
    outcome = await mon.write(
        partial(
            checks.record_tick,
            settings=settings,
            me="mon",
            term=lead.term,
            observation=observation,
            anomalies=judge.orient(observation),
            actions=actions,
            now=world.clock.now(),
        )
    )
    assert outcome.actions == []
    detail = await orch.get_task("job")
    assert (detail.status, detail.assigned_to, detail.lease_epoch) == (
        Status.IN_PROGRESS,
        "heir",
        2,
    )
    assert "requeued" not in [e.kind for e in await events_of(orch, "job")]


async def test_stale_work_out_of_attempts_is_dead_lettered(world: World) -> None:
    settings = world.settings()
    orch, mon = await world.open(), await world.monitor_db()
    await create(orch, {"id": "once", "title": "o", "max_attempts": 1})
    assert (await orch.claim("gone", lease_seconds=5)).claimed
    world.clock.advance(61)
    tick = await monitor_tick(mon, settings, "mon", world.clock)
    assert tick.outcome is not None
    assert [(a.task_id, s) for a, s in tick.outcome.actions] == [("once", "failed")]
    detail = await orch.get_task("once")
    assert (detail.status, detail.attempts, detail.assigned_to) == (Status.FAILED, 1, None)
    last = (await events_of(orch, "once"))[-1]
    assert (last.kind, last.actor, last.to_status) == ("dead_lettered", "health-monitor", "failed")

    world.clock.advance(1)
    tick = await monitor_tick(mon, settings, "mon", world.clock)
    assert tick.outcome is not None and tick.outcome.actions == []
    assert [(a.kind, a.subject) for a in tick.outcome.opened] == [("dead_letter", "once")]
    assert tick.observation is not None and tick.observation.counts.dead_letters == 1


async def test_drifted_dependency_counts_are_repaired(world: World) -> None:
    settings = world.settings()
    orch, mon = await world.open(), await world.monitor_db()
    await create(
        orch,
        {"id": "A", "title": "first"},
        {"id": "B", "title": "needs A", "depends_on": ["A"]},
        {"id": "C", "title": "needs nothing"},
    )
    stamp = world.clock.text()

    # What a bug (or a hand edit) could leave: B looks ready, C looks blocked.
    def corrupt(tx: Tx) -> None:
        tx.run("set_unmet_dependencies", (0, stamp, "B"))
        tx.run("set_unmet_dependencies", (2, stamp, "C"))

    await orch.db.write(corrupt)
    assert sorted(t.id for t in (await orch.plan_next("a")).tasks) == ["A", "B"]

    world.clock.advance(1)
    tick = await monitor_tick(mon, settings, "mon", world.clock)
    assert tick.observation is not None and tick.outcome is not None
    assert sorted((d.id, d.stored, d.actual) for d in tick.observation.drift) == [
        ("B", 0, 1),
        ("C", 2, 0),
    ]
    assert sorted((a.kind, a.task_id, s) for a, s in tick.outcome.actions) == [
        ("repair_dependencies", "B", "pending"),
        ("repair_dependencies", "C", "pending"),
    ]
    assert sorted(t.id for t in (await orch.plan_next("a")).tasks) == ["A", "C"]
    for task_id, stored, real in (("B", 0, 1), ("C", 2, 0)):
        last = (await events_of(orch, task_id))[-1]
        assert (last.kind, last.actor) == ("dependencies_repaired", "health-monitor")
        assert last.reason == f"stored unmet dependencies were {stored}, real {real}"
    plan = await orch.plan_next("a")
    assert (plan.counts.ready, plan.counts.waiting_on_dependencies) == (2, 1)
    assert "dependency_desync" not in {a.kind for a in (await orch.health_report()).anomalies}


async def test_report_only_mode_reports_and_changes_nothing(world: World) -> None:
    settings = world.settings(auto_remediate=False)
    orch, mon = await world.open(), await world.monitor_db()
    await create(
        orch,
        {"id": "A", "title": "first"},
        {"id": "B", "title": "b", "depends_on": ["A"]},
    )
    assert (await orch.claim("gone", lease_seconds=5)).claimed
    stamp = world.clock.text()
    await orch.db.write(lambda tx: tx.run("set_unmet_dependencies", (0, stamp, "B")))
    before = [await orch.get_task(t) for t in ("A", "B")]
    world.clock.advance(61)
    for _ in range(2):
        tick = await monitor_tick(mon, settings, "mon", world.clock)
        assert tick.outcome is not None and tick.outcome.actions == []
        world.clock.advance(1)
    report = await orch.health_report()
    assert report.snapshot is not None and report.snapshot.remediate is False
    assert {(a.kind, a.subject) for a in report.anomalies} >= {
        ("stale_task", "A"),
        ("dependency_desync", "B"),
    }
    assert report.actions == []
    assert [await orch.get_task(t) for t in ("A", "B")] == before


async def test_starvation_and_abandoned_dependencies_open_and_resolve(world: World) -> None:
    settings = world.settings()
    orch, mon = await world.open(), await world.monitor_db()
    await create(
        orch,
        {"id": "base", "title": "base"},
        {"id": "top", "title": "needs base", "depends_on": ["base"]},
    )
    await orch.update_status("base", Status.CANCELLED, "person:dana", by_person=True)
    tick = await monitor_tick(mon, settings, "mon", world.clock)
    assert tick.outcome is not None
    assert {(a.kind, a.subject) for a in tick.outcome.opened} == {
        ("blocked_by_abandoned", "top"),
        ("starvation", ""),
    }
    report = await orch.health_report()
    assert report.anomalies[0].kind == "starvation"  # most severe first
    assert report.anomalies[0].severity == "critical" and report.open_anomalies == 2

    await orch.requeue("base", "person:dana")
    world.clock.advance(1)
    tick = await monitor_tick(mon, settings, "mon", world.clock)
    assert tick.outcome is not None and tick.outcome.resolved == 2
    assert (await orch.health_report()).open_anomalies == 0


async def test_a_stuck_approval_is_reported(world: World) -> None:
    settings = world.settings(approval_stuck_minutes=60)
    orch, mon = await world.open(), await world.monitor_db()
    await create(orch, {"id": "gate", "title": "g", "requires_approval": True})
    world.clock.advance(3600)
    tick = await monitor_tick(mon, settings, "mon", world.clock)
    assert tick.observation is not None and tick.observation.stuck_approvals == []
    world.clock.advance(0.001)
    tick = await monitor_tick(mon, settings, "mon", world.clock)
    assert tick.observation is not None
    assert [s.id for s in tick.observation.stuck_approvals] == ["gate"]
    assert tick.outcome is not None
    assert [(a.kind, a.subject) for a in tick.outcome.opened] == [("stuck_approval", "gate")]


async def test_old_events_of_finished_tasks_are_pruned(world: World) -> None:
    orch, mon = await world.open(), await world.monitor_db()
    await create(orch, {"id": "shipped", "title": "s"}, {"id": "open", "title": "o"})
    claim = await orch.claim("a", task_id="shipped")
    assert claim.lease_token is not None
    await orch.update_status("shipped", Status.DONE, "a", token=claim.lease_token)
    world.clock.advance(31 * 24 * 3600)
    await create(orch, {"id": "recent", "title": "r"})
    claim = await orch.claim("a", task_id="recent")
    assert claim.lease_token is not None
    await orch.update_status("recent", Status.DONE, "a", token=claim.lease_token)

    cutoff = world.clock.now() - timedelta(days=30)
    ids, cursor = await mon.read(
        partial(checks.old_events, older_than=cutoff, after=("", 0), batch=100)
    )
    assert cursor is None and len(ids) == 3  # shipped: created, claimed, done
    assert await mon.write(partial(checks.delete_events, ids=ids)) == 3
    assert await events_of(orch, "shipped") == []
    assert [e.kind for e in await events_of(orch, "open")] == ["created"]
    assert len(await events_of(orch, "recent")) == 3


async def test_the_monitor_itself_ticks_on_the_wall_clock(world: World) -> None:
    """monitor_loop.HealthMonitor as a server runs it (its tick reads the wall clock, so the
    test's clock is set to it): one leader, the follower waits, a stale task re-queued."""
    world.clock.current = timeutil.now() - timedelta(minutes=10)
    settings = world.settings(health_interval_seconds=5)
    orch = await world.open(health_interval_seconds=5)
    await create(orch, {"id": "job", "title": "j"})
    assert (await orch.claim("gone", lease_seconds=5)).claimed
    one = HealthMonitor(settings, "mon-1", Telemetry(), orch.providers)
    two = HealthMonitor(settings, "mon-2", Telemetry(), orch.providers)
    db1, db2 = await world.monitor_db(), await world.monitor_db()

    assert (await one.tick(db1)).wait == 5
    waited = (await two.tick(db2)).wait
    assert 0 < waited <= 5 + monitor_loop.TAKEOVER_MARGIN_S
    world.clock.current = timeutil.now()
    report = await orch.health_report()
    assert report.leader == "mon-1" and report.snapshot is not None
    assert report.snapshot.leader == "mon-1" and report.snapshot.actions == 1
    assert [(a.task_id, a.kind, a.to_status) for a in report.actions] == [
        ("job", "requeued", "pending")
    ]
    detail = await orch.get_task("job")
    assert (detail.status, detail.attempts, detail.assigned_to) == (Status.PENDING, 1, None)
