"""Routing decisions over tables of situations: tiers, budgets, capacity, breakers, escalation."""

from datetime import UTC, datetime, timedelta

import pytest

from wvo_mcp.rules.breakers import Breaker, BreakerPolicy, after_outcome
from wvo_mcp.rules.routing import (
    Escalation,
    Estimate,
    Provider,
    Tier,
    Usage,
    estimate,
    route,
    windows,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NEEDS = Estimate(8_000, 2_000)  # 10k tokens


def tier(name: str, low: int, high: int, cost: float = 0.001) -> Tier:
    return Tier(name, f"{name}-model", low, high, cost, cost * 4)


CODEX = Provider(
    "codex",
    (tier("low", 1, 3, 0.0002), tier("medium", 4, 7, 0.001), tier("high", 8, 10, 0.002)),
    hourly_tokens=100_000,
    daily_tokens=500_000,
    max_concurrent=2,
)
CLAUDE = Provider(
    "claude",
    (tier("sonnet", 1, 7, 0.003), tier("opus", 8, 10, 0.015)),
    hourly_tokens=50_000,
    daily_tokens=200_000,
    max_concurrent=1,
)
PROVIDERS = (CODEX, CLAUDE)
OPEN = Breaker("open", 3, 1, NOW + timedelta(seconds=30))
HALF_OPEN = Breaker("open", 3, 1, NOW - timedelta(seconds=1))


def where(complexity: int, **usage: Usage) -> tuple[str | None, str | None]:
    decision = route(complexity, NEEDS, PROVIDERS, usage, NOW)
    return decision.provider, decision.tier


@pytest.mark.parametrize(
    ("complexity", "expected"),
    [
        (1, ("codex", "low")),
        (3, ("codex", "low")),
        (4, ("codex", "medium")),
        (7, ("codex", "medium")),
        (8, ("codex", "high")),
        (10, ("codex", "high")),
    ],
)
def test_lowest_tier_covering_the_complexity_on_the_preferred_provider(
    complexity: int, expected: tuple[str, str]
) -> None:
    assert where(complexity) == expected


@pytest.mark.parametrize(
    ("complexity", "codex", "expected", "why"),
    [
        (3, Usage(hour_tokens=95_000), ("claude", "sonnet"), "over_hourly_budget"),
        (
            4,
            Usage(hour_tokens=85_000, reserved_tokens=10_000),
            ("claude", "sonnet"),
            "over_hourly_budget",
        ),
        (7, Usage(day_tokens=495_000), ("claude", "sonnet"), "over_daily_budget"),
        (8, Usage(in_flight=2), ("claude", "opus"), "at_capacity"),
        (8, Usage(breaker=OPEN), ("claude", "opus"), "breaker_open"),
        (
            2,
            Usage(breaker=HALF_OPEN, probe_in_flight=True),
            ("claude", "sonnet"),
            "probe_in_flight",
        ),
    ],
)
def test_fails_over_to_the_next_provider_saying_why(
    complexity: int, codex: Usage, expected: tuple[str, str], why: str
) -> None:
    decision = route(complexity, NEEDS, PROVIDERS, {"codex": codex}, NOW)
    assert (decision.provider, decision.tier) == expected
    passed = [a for a in decision.alternatives if a.provider == "codex"]
    assert [a.why for a in passed] == [why]
    assert f"codex ({why})" in decision.reason


def test_exactly_at_the_budget_still_fits() -> None:
    assert where(5, codex=Usage(hour_tokens=90_000)) == ("codex", "medium")
    assert where(5, codex=Usage(hour_tokens=90_001)) == ("claude", "sonnet")


def test_a_half_open_breaker_lets_one_trial_task_through() -> None:
    decision = route(5, NEEDS, PROVIDERS, {"codex": Usage(breaker=HALF_OPEN)}, NOW)
    assert (decision.provider, decision.tier) == ("codex", "medium")
    assert decision.half_open_probe


def test_cheaper_tiers_out_of_range_are_listed_as_passed_over() -> None:
    decision = route(8, NEEDS, PROVIDERS, {}, NOW)
    assert [(a.tier, a.why) for a in decision.alternatives] == [
        ("low", "tier_range"),
        ("medium", "tier_range"),
    ]
    assert decision.estimated_cost == pytest.approx(8 * 0.002 + 2 * 0.008)
    assert decision.model == "high-model"


def test_nothing_fits_says_so_for_every_provider() -> None:
    usage = {"codex": Usage(breaker=OPEN), "claude": Usage(hour_tokens=45_000)}
    decision = route(5, NEEDS, PROVIDERS, usage, NOW)
    assert not decision.routed
    assert decision.provider is None and decision.estimated_cost is None
    assert [(a.provider, a.why) for a in decision.alternatives] == [
        ("codex", "breaker_open"),
        ("claude", "over_hourly_budget"),
    ]
    assert "stays ready" in decision.reason


def test_a_complexity_no_tier_covers() -> None:
    narrow = Provider("narrow", (tier("only", 1, 3),))
    decision = route(5, NEEDS, (narrow,), {}, NOW)
    assert not decision.routed
    assert decision.alternatives[0].why == "tier_range"
    # Every way a person moves it on, and no re-queue that would change nothing.
    assert decision.reason.endswith(
        "time will not change that: widen a tier's complexity range in the providers file, "
        "pin the task to a tier (`learning.pins`), or change its complexity "
        "(`wvo-mcp import --update`)"
    )


def test_a_task_larger_than_a_whole_budget_says_time_will_not_help() -> None:
    decision = route(5, Estimate(50_000, 10_000), PROVIDERS, {}, NOW)  # claude: 50k an hour
    assert (decision.provider, decision.tier) == ("codex", "medium")
    only = route(5, Estimate(50_000, 10_000), (CLAUDE,), {}, NOW)
    assert not only.routed
    assert [(a.why, a.detail) for a in only.alternatives] == [
        (
            "larger_than_budget",
            "this task needs about 60000 tokens, more than the whole hour's 50000",
        )
    ]
    assert only.reason.endswith(
        "time will not change that: raise the provider's hourly_tokens or daily_tokens in the "
        "providers file, or give the task a smaller metadata.estimated_tokens "
        "(`wvo-mcp import --update`)"
    )


@pytest.mark.parametrize(
    ("complexity", "failed_on", "expected"),
    [
        (2, Escalation("codex", "low"), ("codex", "medium")),  # one tier up, out of range
        (5, Escalation("codex", "medium"), ("codex", "high")),
        (9, Escalation("codex", "high"), ("claude", "opus")),  # at the top: across providers
        (9, Escalation("claude", "opus"), ("codex", "high")),
        (2, Escalation("claude", "sonnet"), ("codex", "high")),  # as capable as opus at least
        (2, Escalation("gone", "tier"), ("codex", "low")),  # the config changed: afresh
    ],
)
def test_escalation_after_a_failure(
    complexity: int, failed_on: Escalation, expected: tuple[str, str]
) -> None:
    decision = route(complexity, NEEDS, PROVIDERS, {}, NOW, failed_on)
    assert (decision.provider, decision.tier) == expected
    if failed_on.provider != "gone":
        assert f"escalated after a failure on {failed_on.provider}/{failed_on.tier}" in (
            decision.reason
        )


def test_escalation_from_the_top_with_the_other_provider_blocked() -> None:
    decision = route(
        9, NEEDS, PROVIDERS, {"claude": Usage(in_flight=1)}, NOW, Escalation("codex", "high")
    )
    assert not decision.routed
    assert [(a.provider, a.why) for a in decision.alternatives] == [
        ("codex", "not_above_failed_tier"),
        ("claude", "at_capacity"),
    ]


POLICY = BreakerPolicy(failure_threshold=3, cooldown_seconds=10, cooldown_cap_seconds=35)


def test_breaker_opens_after_consecutive_failures_and_a_success_resets_the_count() -> None:
    b = Breaker()
    b = after_outcome(b, "failure", POLICY, NOW)
    b = after_outcome(b, "failure", POLICY, NOW)
    assert (b.current(NOW), b.failures) == ("closed", 2)
    assert after_outcome(b, "success", POLICY, NOW) == Breaker()
    b = after_outcome(b, "failure", POLICY, NOW)
    assert b.current(NOW) == "open"
    assert b.reopens_at == NOW + timedelta(seconds=10)


def test_a_rate_limit_opens_at_once_and_context_limits_do_not_count() -> None:
    assert after_outcome(Breaker(), "rate_limited", POLICY, NOW).current(NOW) == "open"
    assert after_outcome(Breaker(failures=2), "context_limit", POLICY, NOW) == Breaker(failures=2)


def test_cool_down_grows_on_each_reopening_up_to_the_cap() -> None:
    opened_at = NOW
    b = after_outcome(Breaker(), "rate_limited", POLICY, opened_at)
    cooldowns = []
    for _ in range(4):
        assert b.reopens_at is not None
        cooldowns.append((b.reopens_at - opened_at).total_seconds())
        assert b.current(b.reopens_at - timedelta(milliseconds=1)) == "open"
        assert b.current(b.reopens_at) == "half_open"
        opened_at = b.reopens_at
        b = after_outcome(b, "failure", POLICY, opened_at)  # the trial failed: open again
    assert cooldowns == [10, 20, 35, 35]
    assert after_outcome(b, "success", POLICY, opened_at).current(opened_at) == "closed"


def test_failures_while_open_do_not_extend_the_cool_down() -> None:
    b = after_outcome(Breaker(), "rate_limited", POLICY, NOW)
    late = after_outcome(b, "failure", POLICY, NOW + timedelta(seconds=1))
    assert late.reopens_at == b.reopens_at
    assert late.opens == b.opens


@pytest.mark.parametrize(
    ("moment", "hour", "day"),
    [
        (datetime(2026, 3, 1, 9, 59, 59, 999_000, UTC), "2026-03-01T09", "2026-03-01"),
        (datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC), "2026-03-01T10", "2026-03-01"),
        (datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC), "2026-03-01T23", "2026-03-01"),
        (datetime(2026, 3, 2, 0, 0, 0, tzinfo=UTC), "2026-03-02T00", "2026-03-02"),
        (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "2026-12-31T23", "2026-12-31"),
    ],
)
def test_usage_windows_roll_over_at_hour_and_day_boundaries(
    moment: datetime, hour: str, day: str
) -> None:
    assert windows(moment) == (hour, day)


def test_estimate_splits_input_and_output() -> None:
    assert estimate(5, 20_000, 0.2) == Estimate(80_000, 20_000)
    assert estimate(1, 1_000, 0.0).total == 1_000
