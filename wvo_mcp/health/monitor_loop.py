"""The health monitor's loop in every server: the leader observes, acts and takes backups.

The OODA health monitor: a background task in every server process. The process holding
the leader lease observes, orients, decides, acts and reports each tick, and takes the
backups; the others wait to take over when that lease runs out
(`health/leadership.py:take_leadership`)."""

import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import anyio
from opentelemetry.trace import Span

from wvo_mcp import backups, store, timeutil
from wvo_mcp.config import Settings
from wvo_mcp.health import judge, leadership
from wvo_mcp.health import monitor as checks
from wvo_mcp.models import Observation
from wvo_mcp.providers import Providers
from wvo_mcp.services import schedules
from wvo_mcp.store import Database
from wvo_mcp.telemetry import Telemetry

log = logging.getLogger(__name__)

# The leader lease outlives one missed renewal; a follower wakes when it runs out.
LEASE_INTERVALS = 2.0
TAKEOVER_MARGIN_S = 0.01
PRUNE_EVERY = timedelta(hours=1)
PRUNE_BATCH = 2000
PRUNE_PAUSE_S = 0.005  # between batches, so claims never queue behind a long prune


@dataclass(frozen=True)
class Tick:
    """What one tick saw and did."""

    wait: float  # seconds before the next tick
    term: int  # the leader's term (another process's, when this one does not lead)
    observation: Observation | None = None  # None: another process leads
    outcome: checks.TickOutcome | None = None  # None: not the leader, or lost it mid-tick
    # Seconds the leader's parts took: lead, observe, orient (and decide), record.
    took: dict[str, float] = field(default_factory=dict)


class HealthMonitor:
    def __init__(
        self,
        settings: Settings,
        me: str,
        telemetry: Telemetry,
        providers: Providers | None,  # None: no provider is watched (tests)
        clock: Callable[[], datetime] = timeutil.now,
    ) -> None:
        self.settings = settings
        self.providers = providers
        self.me = me
        self.telemetry = telemetry
        self.clock = clock  # injected by tests and benchmarks; leases, backups, pruning follow
        self.interval = settings.health_interval_seconds
        self.lease_seconds = LEASE_INTERVALS * self.interval
        self._pruned_at: datetime | None = None
        self.drift_after = ""  # where this leader's next dependency-count check starts

    async def run(self) -> None:
        """Tick until cancelled. The monitor has its own connection, so a slow observation of
        a large queue never holds up this process's tool calls."""
        try:
            # Shielded: a shutdown during the open must not strand the connection's thread.
            with anyio.CancelScope(shield=True):
                db = await store.database(self.settings, monitor=True).open()
        except Exception:
            log.exception("health monitor: cannot open the database; none runs in this process")
            return
        try:
            while True:  # noqa: ASYNC110 - a schedule, not a wait for a condition
                await anyio.sleep(await self._tick_logged(db))
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await db.write(
                        partial(leadership.release_leadership, me=self.me, now=self.clock())
                    )
                except Exception:
                    log.exception("health monitor: could not hand over leadership")
                await db.close()

    async def _tick_logged(self, db: Database) -> float:
        try:
            return (await self.tick(db)).wait
        except Exception:
            # A bad tick (a locked database, a full disk) must not end the server.
            log.exception("health monitor tick failed; trying again in %.3g s", self.interval)
            return self.interval

    async def tick(self, db: Database) -> Tick:
        """One tick: take or renew the lead; if this process leads, observe, orient, decide,
        act and record, then the housekeeping. Tick.wait: the seconds before the next."""
        now = self.clock()
        started = time.perf_counter()
        lead = await db.write(
            partial(
                leadership.take_leadership, me=self.me, now=now, lease_seconds=self.lease_seconds
            )
        )
        if not lead.held_by(self.me):
            left = (lead.expires_at - now).total_seconds()
            wait = max(0.0, min(self.interval, left)) + random.uniform(0, TAKEOVER_MARGIN_S)
            return Tick(wait, lead.term)
        took = {"lead": time.perf_counter() - started}
        with self.telemetry.span("wvo.health.tick") as span:
            span.set_attributes({"wvo.leader": self.me, "wvo.term": lead.term})
            started = time.perf_counter()
            observation, self.drift_after = await db.read(
                partial(
                    checks.observe,
                    settings=self.settings,
                    now=now,
                    drift_after=self.drift_after,
                    providers=self.providers,
                )
            )
            took["observe"] = time.perf_counter() - started
            started = time.perf_counter()
            anomalies = judge.orient(observation)
            actions = judge.decide(observation, self.settings.auto_remediate)
            took["orient"] = time.perf_counter() - started
            started = time.perf_counter()
            try:
                outcome = await db.write(
                    partial(
                        checks.record_tick,
                        settings=self.settings,
                        me=self.me,
                        term=lead.term,
                        observation=observation,
                        anomalies=anomalies,
                        actions=actions,
                        now=self.clock(),
                    ),
                    checks.tick_lock(actions),
                )
            except leadership.NotLeader:
                log.info("health monitor: %s lost leadership during a tick", self.me)
                return Tick(self.interval, lead.term, observation)
            took["record"] = time.perf_counter() - started
            self._tell(span, observation, anomalies, outcome)
        await self._housekeeping(db, now)
        return Tick(self.interval, lead.term, observation, outcome, took)

    def _tell(
        self,
        span: Span,
        observation: Observation,
        anomalies: list[judge.Anomaly],
        outcome: checks.TickOutcome,
    ) -> None:
        """One tick's logs (stderr), span attributes and events, and metrics."""
        done = Counter(action.kind for action, _ in outcome.actions)
        span.set_attributes(
            {
                "wvo.anomalies": len(anomalies),
                "wvo.anomalies.opened": len(outcome.opened),
                "wvo.anomalies.resolved": outcome.resolved,
                "wvo.actions": len(outcome.actions),
                "wvo.remediate": self.settings.auto_remediate,
            }
        )
        for action, status in outcome.actions:
            log.info("health monitor: %s %s -> %s", action.kind, action.task_id, status)
            span.add_event(
                "wvo.action",
                {"wvo.action": action.kind, "wvo.task_id": action.task_id, "wvo.status": status},
            )
        for anomaly in outcome.opened:
            log.warning("health monitor: %s: %s", anomaly.severity, anomaly.message)
            span.add_event(
                "wvo.anomaly",
                {
                    "wvo.anomaly": anomaly.kind,
                    "wvo.severity": anomaly.severity,
                    "wvo.subject": anomaly.subject,
                },
            )
        counts = observation.counts
        self.telemetry.observed(
            {**counts.by_status, "ready": counts.ready}, counts.done_last_hour, counts.done_last_5m
        )
        for kind, n in done.items():
            self.telemetry.remediations(kind, n)
        self.telemetry.lease_expiries(done["requeue"])

    async def _housekeeping(self, db: Database, now: datetime) -> None:
        """The leader's chores: the tasks whose schedule's time came, a backup when one is
        due, and pruning old events hourly."""
        for task_id in await db.write(partial(schedules.make_due_tasks, now=now)):
            log.info("health monitor: scheduled task %s made", task_id)
        s = self.settings
        # PostgreSQL is backed up with its own tools (docs/postgres.md).
        if (
            s.backup_interval_minutes > 0
            and s.database_url is None
            and backups.due(s.backups_dir, now, s.backup_interval_minutes)
        ):
            with self.telemetry.span("wvo.backup") as span:
                path = await anyio.to_thread.run_sync(backups.take, s.db_path, s.backups_dir, now)
                pruned = await anyio.to_thread.run_sync(backups.prune, s.backups_dir)
                span.set_attributes(
                    {"wvo.backup.path": str(path), "wvo.backup.pruned": len(pruned)}
                )
            log.info("health monitor: backup %s (%d old ones pruned)", path, len(pruned))
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            await self._prune_finished_events(db, now - timedelta(days=s.retention_days))

    async def _prune_finished_events(self, db: Database, older_than: datetime) -> None:
        """Delete old events of finished tasks: ids are picked in read transactions and
        deleted in short write transactions, with a pause between batches."""
        cursor: tuple[str, int] | None = ("", 0)
        total = 0
        while cursor is not None:
            ids, cursor = await db.read(
                partial(checks.old_events, older_than=older_than, after=cursor, batch=PRUNE_BATCH)
            )
            if ids:
                total += await db.write(partial(checks.delete_events, ids=ids))
            await anyio.sleep(PRUNE_PAUSE_S)
        if total:
            log.info("health monitor: pruned %d events older than %s", total, older_than)
