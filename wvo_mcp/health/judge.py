"""The health monitor's judgement, no I/O: what an observation means and what to do.

The OODA monitor's judgement, without I/O: what an observation means (orient) and what
to do about it (decide)."""

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from wvo_mcp.models import HealthCounts, Observation

Severity = Literal["info", "warning", "critical"]

# Throughput is "low" below this share of its baseline, judged only once enough earlier
# ticks exist and only while there is work to do.
LOW_THROUGHPUT_RATIO = 0.5
MIN_BASELINE_SAMPLES = 6
MIN_BASELINE_PER_HOUR = 2.0
NEAR_BUDGET = 0.8  # share of a provider's token budget that is reported


@dataclass(frozen=True, slots=True)
class Anomaly:
    kind: str
    severity: Severity
    subject: str  # a task id, or "" for the whole queue
    message: str


@dataclass(frozen=True, slots=True)
class Action:
    kind: Literal["requeue", "repair_dependencies"]
    task_id: str
    lease_epoch: int | None = None  # requeue only the grant that was seen stale


# The anomaly each kind of action repairs.
REMEDIES = {"requeue": "stale_task", "repair_dependencies": "dependency_desync"}


def baseline(done_per_hour: Sequence[int]) -> float | None:
    """Typical completions per hour from earlier ticks; None until there are enough."""
    if len(done_per_hour) < MIN_BASELINE_SAMPLES:
        return None
    return float(statistics.median(done_per_hour))


def orient(obs: Observation) -> list[Anomaly]:
    """What is wrong now, in a fixed order: tasks, the queue, providers, throughput."""
    return [
        *_task_anomalies(obs),
        *_starvation(obs.counts),
        *_provider_anomalies(obs),
        *_throughput_low(obs.counts),
    ]


def _task_anomalies(obs: Observation) -> list[Anomaly]:
    found = [
        Anomaly(
            "stale_task",
            "warning",
            s.id,
            f"task {s.id!r}: no heartbeat or checkpoint from {s.holder!r} since "
            f"{s.last_seen_at} and its lease expired at {s.lease_expires_at}",
        )
        for s in obs.stale
    ]
    found += [
        Anomaly(
            "dependency_desync",
            "warning",
            d.id,
            f"task {d.id!r} records {d.stored} unmet dependencies but has {d.actual}",
        )
        for d in obs.drift
    ]
    found += [
        Anomaly(
            "dead_letter",
            "warning",
            task_id,
            f"task {task_id!r} used all its attempts and is dead-lettered; fix the cause, then "
            f"`wvo-mcp requeue {task_id}`",
        )
        for task_id in obs.dead_letters
    ]
    found += [
        Anomaly(
            "stuck_approval",
            "warning",
            a.id,
            f"task {a.id!r} has waited for approval since {a.since}: "
            f"`wvo-mcp approve {a.id}` or `wvo-mcp reject {a.id} --note ...`",
        )
        for a in obs.stuck_approvals
    ]
    found += [
        Anomaly(
            "blocked_by_abandoned",
            "warning",
            task_id,
            f"task {task_id!r} waits on a cancelled or dead-lettered dependency and will not "
            "become ready until a person re-queues that dependency or changes the plan",
        )
        for task_id in obs.blocked_by_abandoned
    ]
    return found


def _starvation(counts: HealthCounts) -> list[Anomaly]:
    found: list[Anomaly] = []
    # Tasks that only back off after failures will be ready soon; waiting on dependencies
    # that nobody works on will not.
    pending = counts.by_status.get("pending", 0)
    if counts.waiting_on_dependencies and counts.ready == 0 and counts.wip_used == 0:
        found.append(
            Anomaly(
                "starvation",
                "critical",
                "",
                f"{pending} task(s) pending but none ready and nothing in progress: "
                f"{counts.waiting_on_dependencies} wait on dependencies "
                f"({counts.blocked_by_abandoned} on cancelled or dead-lettered ones), "
                f"{counts.backing_off} back off after failures",
            )
        )
    return found


def _provider_anomalies(obs: Observation) -> list[Anomaly]:
    found: list[Anomaly] = []
    for p in obs.providers:
        share = max(p.hour_share or 0.0, p.day_share or 0.0)
        if share >= 1.0:
            found.append(
                Anomaly(
                    "provider_over_budget",
                    "critical",
                    p.name,
                    f"provider {p.name!r} has used or reserved {share:.0%} of its token budget "
                    "(hourly or daily): work fails over to the next provider",
                )
            )
        elif share >= NEAR_BUDGET:
            found.append(
                Anomaly(
                    "provider_near_budget",
                    "warning",
                    p.name,
                    f"provider {p.name!r} has used or reserved {share:.0%} of its token budget",
                )
            )
        if p.breaker != "closed":
            found.append(
                Anomaly(
                    "provider_breaker_open",
                    "warning",
                    p.name,
                    f"provider {p.name!r}'s circuit breaker is {p.breaker}"
                    + (f" (a trial task from {p.reopens_at})" if p.reopens_at else ""),
                )
            )
    if obs.unroutable:
        found.append(
            Anomaly(
                "providers_exhausted",
                "critical",
                "",
                f"{len(obs.unroutable)} of the top ready tasks ({', '.join(obs.unroutable[:5])}) "
                "have no provider that can take them now (over budget, at capacity or breaker "
                "open); they stay ready: `wvo-mcp providers` shows why",
            )
        )
    return found


def _throughput_low(counts: HealthCounts) -> list[Anomaly]:
    found: list[Anomaly] = []
    expected = counts.baseline_done_per_hour
    has_work = counts.ready > 0 or counts.wip_used > 0
    if (
        expected is not None
        and expected >= MIN_BASELINE_PER_HOUR
        and has_work
        and counts.done_last_hour < LOW_THROUGHPUT_RATIO * expected
    ):
        found.append(
            Anomaly(
                "throughput_low",
                "warning",
                "",
                f"{counts.done_last_hour} task(s) done in the last hour against a baseline of "
                f"{expected:g} per hour, with {counts.ready} ready and {counts.wip_used} in "
                "progress",
            )
        )
    return found


def decide(obs: Observation, remediate: bool) -> list[Action]:
    """What is safe to repair without a person: stale leases and drifted counts."""
    if not remediate:
        return []
    actions = [Action("requeue", s.id, s.lease_epoch) for s in obs.stale]
    actions += [Action("repair_dependencies", d.id) for d in obs.drift]
    return actions
