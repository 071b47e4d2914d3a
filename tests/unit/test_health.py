"""The monitor's judgement: which observations are anomalies, and what is safe to repair."""

from typing import Any

import pytest

from wvo_mcp.health.judge import Action, baseline, decide, orient
from wvo_mcp.models import (
    Drift,
    HealthCounts,
    Observation,
    ProviderHealth,
    StaleTask,
    StuckApproval,
)

QUIET: dict[str, Any] = {
    "by_status": {"pending": 0, "in_progress": 0, "done": 10},
    "ready": 0,
    "waiting_on_dependencies": 0,
    "backing_off": 0,
    "wip_used": 0,
    "wip_limit": 3,
    "done_last_hour": 0,
    "done_last_5m": 0,
    "baseline_done_per_hour": None,
    "expired_leases": 0,
    "stale_tasks": 0,
    "agents_active": 0,
    "agents_idle": 0,
    "agents_silent": 0,
    "dead_letters": 0,
    "awaiting_approval": 0,
    "stuck_approvals": 0,
    "dependency_drift": 0,
    "blocked_by_abandoned": 0,
}


def observation(lists: dict[str, Any] | None = None, **counts: Any) -> Observation:
    return Observation(
        at="2026-01-01T00:00:00.000Z",
        counts=HealthCounts(**{**QUIET, **counts}),
        **{
            "stale": [],
            "drift": [],
            "dead_letters": [],
            "stuck_approvals": [],
            "blocked_by_abandoned": [],
            **(lists or {}),
        },
    )


STALE = StaleTask(
    id="T1",
    holder="agent-a",
    lease_epoch=3,
    lease_expires_at="2026-01-01T00:00:00.000Z",
    last_seen_at="2025-12-31T23:50:00.000Z",
)


def kinds(obs: Observation) -> list[tuple[str, str, str]]:
    return [(a.kind, a.severity, a.subject) for a in orient(obs)]


def test_a_quiet_queue_has_no_anomalies() -> None:
    assert orient(observation()) == []
    assert decide(observation(), remediate=True) == []


def test_each_finding_is_an_anomaly_about_its_task() -> None:
    obs = observation(
        {
            "stale": [STALE],
            "drift": [Drift(id="T2", stored=2, actual=0)],
            "dead_letters": ["T3"],
            "stuck_approvals": [StuckApproval(id="T4", since="2025-12-31T20:00:00.000Z")],
            "blocked_by_abandoned": ["T5"],
        },
        by_status={"pending": 1, "in_progress": 1},
        wip_used=1,
    )
    assert kinds(obs) == [
        ("stale_task", "warning", "T1"),
        ("dependency_desync", "warning", "T2"),
        ("dead_letter", "warning", "T3"),
        ("stuck_approval", "warning", "T4"),
        ("blocked_by_abandoned", "warning", "T5"),
    ]
    messages = [a.message for a in orient(obs)]
    assert "agent-a" in messages[0] and "2025-12-31T23:50:00.000Z" in messages[0]
    assert "2" in messages[1] and "0" in messages[1]
    assert "wvo-mcp requeue T3" in messages[2]
    assert "wvo-mcp approve T4" in messages[3]


def test_remediation_requeues_stale_grants_and_repairs_counts() -> None:
    obs = observation({"stale": [STALE], "drift": [Drift(id="T2", stored=1, actual=0)]})
    assert decide(obs, remediate=True) == [
        Action("requeue", "T1", lease_epoch=3),
        Action("repair_dependencies", "T2"),
    ]


def test_report_only_mode_decides_nothing_but_still_reports() -> None:
    obs = observation({"stale": [STALE], "drift": [Drift(id="T2", stored=1, actual=0)]})
    assert decide(obs, remediate=False) == []
    assert [a.kind for a in orient(obs)] == ["stale_task", "dependency_desync"]


@pytest.mark.parametrize(
    ("pending", "waiting", "ready", "wip_used", "starving"),
    [
        (5, 5, 0, 0, True),  # work waits on dependencies nobody works on
        (5, 4, 1, 0, False),  # something is ready: agents can take it
        (5, 5, 0, 1, False),  # someone is working: completing it may release the rest
        (5, 0, 0, 0, False),  # everything only backs off after failures: ready soon
        (0, 0, 0, 0, False),  # nothing to do is not starvation
    ],
)
def test_starvation(pending: int, waiting: int, ready: int, wip_used: int, starving: bool) -> None:
    obs = observation(
        by_status={"pending": pending, "in_progress": wip_used},
        ready=ready,
        wip_used=wip_used,
        waiting_on_dependencies=waiting,
        backing_off=pending - waiting - ready,
    )
    found = [a for a in orient(obs) if a.kind == "starvation"]
    assert bool(found) is starving
    if starving:
        assert found[0].severity == "critical"
        assert f"{pending} task(s) pending" in found[0].message


@pytest.mark.parametrize(
    ("done_last_hour", "expected", "ready", "low"),
    [
        (2, 10.0, 3, True),  # well under half the baseline with work waiting
        (5, 10.0, 3, False),  # exactly half is not low
        (2, 10.0, 0, False),  # nothing to do: a slow hour is not a problem
        (0, None, 3, False),  # no baseline yet
        (0, 1.0, 3, False),  # a baseline too small to judge
    ],
)
def test_throughput_below_baseline(
    done_last_hour: int, expected: float | None, ready: int, low: bool
) -> None:
    obs = observation(
        by_status={"pending": ready},
        ready=ready,
        done_last_hour=done_last_hour,
        baseline_done_per_hour=expected,
    )
    assert any(a.kind == "throughput_low" for a in orient(obs)) is low


def test_baseline_needs_enough_ticks_and_ignores_outliers() -> None:
    assert baseline([]) is None
    assert baseline([10] * 5) is None
    assert baseline([10, 10, 10, 10, 12, 500]) == 10.0
    assert baseline([0, 0, 0, 8, 8, 8, 8]) == 8.0


def test_providers_near_or_over_budget_and_open_breakers_are_reported() -> None:
    providers = [
        ProviderHealth(name="a", hour_share=0.79, day_share=0.1, breaker="closed", reopens_at=None),
        ProviderHealth(name="b", hour_share=0.2, day_share=0.8, breaker="closed", reopens_at=None),
        ProviderHealth(name="c", hour_share=1.0, day_share=0.5, breaker="closed", reopens_at=None),
        ProviderHealth(
            name="d", hour_share=None, day_share=None, breaker="open", reopens_at="2026-01-01"
        ),
    ]
    assert kinds(observation({"providers": providers})) == [
        ("provider_near_budget", "warning", "b"),
        ("provider_over_budget", "critical", "c"),
        ("provider_breaker_open", "warning", "d"),
    ]


def test_ready_work_no_provider_can_take_is_critical() -> None:
    obs = observation({"unroutable": ["T1", "T2"]}, by_status={"pending": 2}, ready=2)
    [exhausted] = orient(obs)
    assert (exhausted.kind, exhausted.severity) == ("providers_exhausted", "critical")
    assert "T1, T2" in exhausted.message
