"""What the health monitor does each tick: observes, acts on what judge.py decided, and reports.

Each function runs inside one transaction; which process leads is leadership.py's."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.health import judge
from wvo_mcp.health.judge import Action, Anomaly
from wvo_mcp.health.leadership import ROLE, NotLeader
from wvo_mcp.models import (
    AnomalyView,
    Drift,
    HealthCounts,
    HealthReport,
    HealthSnapshot,
    MonitorAction,
    Observation,
    ProviderHealth,
    StaleTask,
    StuckApproval,
)
from wvo_mcp.providers import Providers
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import routing, rows, usage
from wvo_mcp.services.leases import lose_lease, silent_before
from wvo_mcp.services.moves import gated
from wvo_mcp.services.picking import claimable, queue_counts
from wvo_mcp.services.tasks import record_event
from wvo_mcp.store import Lock, Tx

ACTOR = "health-monitor"
LIST_CAP = 50  # tasks named, and acted on, per kind of finding per tick; the rest next tick
# Unfinished tasks whose dependency counts one tick re-checks (~1 µs each): a large graph is
# covered over several ticks instead of in one long transaction.
DRIFT_SLICE = 50_000
FINISHED = (Status.DONE, Status.CANCELLED)
ROUTE_CHECKS = 10  # top claimable tasks checked for a provider that can take them


@dataclass(frozen=True, slots=True)
class TickOutcome:
    opened: list[Anomaly]
    resolved: int
    actions: list[tuple[Action, str]]  # what was done, and the resulting status


def observe(
    tx: Tx,
    settings: Settings,
    now: datetime,
    drift_after: str = "",
    providers: Providers | None = None,
) -> tuple[Observation, str]:
    """What the queue looks like now; also where the next tick's drift check starts."""
    stamp = timeutil.to_text(now)
    cutoff = timeutil.to_text(now - timedelta(minutes=settings.stale_task_minutes))
    queue = queue_counts(tx, settings, ACTOR, now)
    # Every status, zeros included: the queue-depth gauges must see a bucket drain to 0.
    by_status = {status.value: queue.by_status.get(status, 0) for status in Status}

    stale = [
        rows.model(StaleTask, r)
        for r in tx.all("stale_tasks", {"now": stamp, "cutoff": cutoff, "limit": LIST_CAP})
    ]
    drift, drift_next = _drift(tx, drift_after)
    approval_cutoff = now - timedelta(minutes=settings.approval_stuck_minutes)
    stuck = [
        rows.model(StuckApproval, r)
        for r in tx.all("stuck_approvals", (timeutil.to_text(approval_cutoff), LIST_CAP))
    ]
    dead = [r["id"] for r in tx.all("dead_letter_ids", (LIST_CAP,))]
    abandoned = [r["id"] for r in tx.all("blocked_by_abandoned", (LIST_CAP,))]
    seen_cutoff = timeutil.to_text(silent_before(now, settings.stale_task_minutes))
    agents = tx.all("agents_seen", {"now": stamp, "cutoff": seen_cutoff})
    history = [
        r["done"]
        for r in tx.all(
            "throughput_history",
            (timeutil.to_text(now - timedelta(days=1)), timeutil.to_text(now - timedelta(hours=1))),
        )
        if r["done"] is not None
    ]
    counts = HealthCounts(
        by_status=by_status,
        ready=queue.ready,
        waiting_on_dependencies=queue.waiting_on_dependencies,
        backing_off=queue.backing_off,
        wip_used=queue.wip_global_used,
        wip_limit=queue.wip_global_limit,
        done_last_hour=tx.value("done_since", (timeutil.to_text(now - timedelta(hours=1)),)),
        done_last_5m=tx.value("done_since", (timeutil.to_text(now - timedelta(minutes=5)),)),
        baseline_done_per_hour=judge.baseline(history),
        expired_leases=queue.lease_expired,
        stale_tasks=len(stale),
        agents_active=len(agents),
        agents_idle=sum(1 for a in agents if not a["busy"]),
        agents_silent=tx.value("silent_agent_count", (seen_cutoff,)),
        dead_letters=by_status.get(Status.FAILED, 0),
        awaiting_approval=by_status.get(Status.AWAITING_APPROVAL, 0),
        stuck_approvals=len(stuck),
        dependency_drift=len(drift),
        blocked_by_abandoned=len(abandoned),
    )
    watched, unroutable = ([], []) if providers is None else _providers_seen(tx, providers, now)
    counts.unroutable_ready = len(unroutable)
    observation = Observation(
        at=stamp,
        counts=counts,
        stale=stale,
        drift=drift,
        dead_letters=dead,
        stuck_approvals=stuck,
        blocked_by_abandoned=abandoned,
        providers=watched,
        unroutable=unroutable,
    )
    return observation, drift_next


def _providers_seen(
    tx: Tx, providers: Providers, now: datetime
) -> tuple[list[ProviderHealth], list[str]]:
    """Each provider's budget shares and breaker; and which of the top ready tasks no
    provider can take now."""
    status = usage.provider_status(tx, providers, now)
    watched = [
        ProviderHealth(
            name=p.name,
            hour_share=p.hour.share,
            day_share=p.day.share,
            breaker=p.breaker.state,
            reopens_at=p.breaker.reopens_at,
        )
        for p in status.providers
    ]
    router = routing.Router(tx, providers, now)
    top = islice(claimable(tx, timeutil.to_text(now)), ROUTE_CHECKS)
    unroutable = [row["id"] for row in top if not router.decide(row).routed]
    return watched, unroutable


def _drift(tx: Tx, after: str) -> tuple[list[Drift], str]:
    """Drift already reported (re-checked, so it stays open until repaired) plus one slice
    of the graph; and the cursor for the next slice ("" starts over)."""
    known = {}
    for row in tx.all("open_anomaly_subjects", ("dependency_desync",)):
        task = tx.one("task_by_id", (row["subject"],))
        if task is not None and task["status"] not in FINISHED:
            actual = tx.value("unmet_dependencies_of", (task["id"],))
            if actual != task["unmet_dependencies"]:
                known[task["id"]] = Drift(
                    id=task["id"], stored=task["unmet_dependencies"], actual=actual
                )
    window = {"after": after, "slice": DRIFT_SLICE}
    found = [rows.model(Drift, r) for r in tx.all("dependency_drift", {**window, "cap": LIST_CAP})]
    drift = list(known.values()) + [d for d in found if d.id not in known]
    end = tx.value("drift_slice_end", window)
    return drift[:LIST_CAP], end or ""


def tick_lock(actions: list[Action]) -> Lock:
    """Re-queues lock the rows they change, and leadership changes only under WORLD, so a
    tick of re-queues alone runs beside the fleet's writes; a dependency repair recounts
    what a holder's `done` changes, so it runs alone."""
    return Lock.TASK if all(a.kind == "requeue" for a in actions) else Lock.WORLD


def record_tick(
    tx: Tx,
    settings: Settings,
    me: str,
    term: int,
    observation: Observation,
    anomalies: list[Anomaly],
    actions: list[Action],
    now: datetime,
) -> TickOutcome:
    """Act (each action re-checked against the current rows) and record the tick, if `me`
    still leads in `term`; else NotLeader and nothing is written."""
    stamp = timeutil.to_text(now)
    lead = tx.one("leadership", (ROLE,))
    if lead is not None and lead["expires_at"] < timeutil.to_text(now):
        lead = None  # the last leader stopped or died; the next tick of any server takes over
    if lead is None or lead["holder"] != me or lead["term"] != term or lead["expires_at"] < stamp:
        raise NotLeader
    done = [(a, status) for a in actions if (status := _act(tx, settings, a, now)) is not None]

    seen = {(a.kind, a.subject) for a in anomalies}
    was_open = {(r["kind"], r["subject"]) for r in tx.all("open_anomaly_keys")}
    for a in anomalies:
        tx.run(
            "upsert_anomaly",
            {
                "kind": a.kind,
                "subject": a.subject,
                "severity": a.severity,
                "message": a.message,
                "now": stamp,
            },
        )
    # What an action repaired is resolved at once, not one tick later.
    repaired = {(judge.REMEDIES[a.kind], a.task_id) for a, _ in done}
    gone = (was_open - seen) | (seen & repaired)
    for kind, subject in gone:
        tx.run("resolve_anomaly", (stamp, kind, subject))
    tx.run(
        "insert_health_snapshot",
        (
            stamp,
            me,
            term,
            int(settings.auto_remediate),
            len(anomalies),
            len(done),
            observation.model_dump_json(),
        ),
    )
    kept_from = timeutil.to_text(now - timedelta(hours=settings.health_retention_hours))
    tx.run("prune_health_snapshots", (kept_from,))
    tx.run("prune_resolved_anomalies", (kept_from,))
    return TickOutcome(
        [a for a in anomalies if (a.kind, a.subject) not in was_open], len(gone), done
    )


def _act(tx: Tx, settings: Settings, action: Action, now: datetime) -> str | None:
    """Carry out one action if its reason still holds; the task's new status, or None."""
    stamp = timeutil.to_text(now)
    row = tx.one("task_for_update", (action.task_id,))
    if row is None:
        return None
    if action.kind == "requeue":
        cutoff = timeutil.to_text(now - timedelta(minutes=settings.stale_task_minutes))
        still_stale = (
            row["status"] == Status.IN_PROGRESS
            and row["lease_epoch"] == action.lease_epoch
            and row["lease_expires_at"] < stamp
            and row["last_heartbeat_at"] < cutoff
        )
        if not still_stale:
            return None
        requeued = lose_lease(tx, settings, row, now, actor=ACTOR, requeue=True)
        return Status.PENDING.value if requeued else Status.FAILED.value
    actual = tx.value("unmet_dependencies_of", (row["id"],))
    if actual == row["unmet_dependencies"]:
        return None
    tx.run("set_unmet_dependencies", (actual, stamp, row["id"]))
    status = Status(row["status"])
    if actual == 0 and gated(row, status) is Status.AWAITING_APPROVAL:
        status = Status.AWAITING_APPROVAL
        tx.run("set_status_plain", (status.value, stamp, row["id"]))
    record_event(
        tx,
        row["id"],
        at=stamp,
        actor=ACTOR,
        kind="dependencies_repaired",
        from_status=row["status"],
        to_status=status.value,
        reason=f"stored unmet dependencies were {row['unmet_dependencies']}, real {actual}",
    )
    return status.value


def old_events(
    tx: Tx, older_than: datetime, after: tuple[str, int], batch: int
) -> tuple[list[int], tuple[str, int] | None]:
    """One batch of events older than the cut-off, in time order after `after`: the ids of
    those whose task is finished, and the cursor for the next batch (None at the end)."""
    found = tx.all(
        "old_events",
        {
            "cutoff": timeutil.to_text(older_than),
            "after_at": after[0],
            "after_id": after[1],
            "batch": batch,
        },
    )
    ids = [r["id"] for r in found if r["status"] in FINISHED]
    cursor = (found[-1]["at"], found[-1]["id"]) if len(found) == batch else None
    return ids, cursor


def delete_events(tx: Tx, ids: list[int]) -> int:
    """Delete those events whose task is still finished (a person may have revived one)."""
    return tx.run("delete_finished_events", (json.dumps(ids),))


def report(tx: Tx, limit: int, full: bool, now: datetime) -> HealthReport:
    lead = tx.one("leadership", (ROLE,))
    if lead is not None and lead["expires_at"] < timeutil.to_text(now):
        lead = None  # the last leader stopped or died; the next tick of any server takes over
    latest = tx.one("latest_health_snapshot")
    observation = None if latest is None else Observation.model_validate_json(latest["observation"])
    snapshot = None
    if latest is not None and observation is not None:
        snapshot = HealthSnapshot(
            at=latest["at"],
            leader=latest["leader"],
            remediate=bool(latest["remediate"]),
            anomalies=latest["anomalies"],
            actions=latest["actions"],
            counts=observation.counts,
        )
    anomalies = [rows.model(AnomalyView, r) for r in tx.all("open_anomalies", (limit,))]
    actions = [rows.model(MonitorAction, r) for r in tx.all("recent_monitor_actions", (limit,))]
    open_count = tx.value("open_anomaly_count")
    if snapshot is None:
        message = (
            "no health snapshot yet: no server's monitor has completed a tick on this database "
            "(a server runs one every WVO_AUTOPILOT_HEALTH_INTERVAL_MS)"
        )
    else:
        age = (now - timeutil.from_text(snapshot.at)).total_seconds()
        message = (
            f"{open_count} open anomal{'y' if open_count == 1 else 'ies'}; latest tick "
            f"{age:.0f} s ago by {snapshot.leader}"
        )
    return HealthReport(
        leader=None if lead is None else lead["holder"],
        leader_expires_at=None if lead is None else lead["expires_at"],
        snapshot=snapshot,
        open_anomalies=open_count,
        anomalies=anomalies,
        actions=actions,
        observation=observation if full else None,
        message=message,
    )
