"""WSJF arithmetic: job size, time criticality, enablement and the score breakdown."""

import itertools

import pytest

from wvo_mcp.rules import wsjf

HORIZON = wsjf.DUE_HORIZON_SECONDS
DAY = 24 * 3600


def test_constants_match_the_documented_scale() -> None:
    assert wsjf.MAX_INPUT == 20
    assert wsjf.ENABLEMENT_CAP == 10
    assert HORIZON == 14 * DAY


@pytest.mark.parametrize(
    ("complexity", "job_size"),
    [(1, 2), (2, 4), (3, 6), (5, 10), (7, 14), (9, 18), (10, 20)],
)
def test_default_job_size_is_twice_the_complexity(complexity: int, job_size: int) -> None:
    assert wsjf.default_job_size(complexity) == job_size


@pytest.mark.parametrize(("complexity", "job_size"), [(0, 1), (-3, 1), (11, 20), (50, 20)])
def test_default_job_size_is_clamped_to_1_through_20(complexity: int, job_size: int) -> None:
    assert wsjf.default_job_size(complexity) == job_size


@pytest.mark.parametrize("base", [1, 5, 13, 20])
def test_time_criticality_without_a_due_date_is_the_base(base: int) -> None:
    value = wsjf.time_criticality(base, None)
    assert value == base
    assert isinstance(value, float)


@pytest.mark.parametrize("seconds", [HORIZON, HORIZON + 1, 30 * DAY, 10 * 365 * DAY])
@pytest.mark.parametrize("base", [1, 7, 20])
def test_time_criticality_at_or_beyond_the_horizon_is_the_base(base: int, seconds: float) -> None:
    assert wsjf.time_criticality(base, seconds) == base


@pytest.mark.parametrize("seconds", [0, -0.001, -1, -DAY, -365 * DAY])
@pytest.mark.parametrize("base", [1, 7, 20])
def test_time_criticality_due_now_or_overdue_is_the_maximum(base: int, seconds: float) -> None:
    assert wsjf.time_criticality(base, seconds) == 20.0


@pytest.mark.parametrize(
    ("base", "seconds", "expected"),
    [
        (4, HORIZON / 2, 12.0),  # halfway: 4 + 16 * 0.5
        (4, HORIZON / 4, 16.0),  # three quarters of the way: 4 + 16 * 0.75
        (4, 3 * HORIZON / 4, 8.0),  # a quarter of the way: 4 + 16 * 0.25
        (10, HORIZON / 2, 15.0),
        (1, 7 * DAY, 10.5),  # 7 of 14 days left: 1 + 19 * 0.5
        (20, HORIZON / 3, 20.0),  # already at the maximum
    ],
)
def test_time_criticality_rises_linearly_within_the_horizon(
    base: int, seconds: float, expected: float
) -> None:
    assert wsjf.time_criticality(base, seconds) == pytest.approx(expected)


def test_time_criticality_is_rounded_to_two_decimals() -> None:
    value = wsjf.time_criticality(3, HORIZON / 3)  # 3 + 17 * 2/3 = 14.3333...
    assert value == 14.33


def test_time_criticality_is_continuous_at_both_ends_of_the_horizon() -> None:
    assert wsjf.time_criticality(5, HORIZON - 1) == pytest.approx(5.0, abs=0.01)
    assert wsjf.time_criticality(5, 1) == pytest.approx(20.0, abs=0.01)


@pytest.mark.parametrize("base", [1, 5, 12, 19, 20])
def test_time_criticality_never_falls_as_the_due_date_nears(base: int) -> None:
    # From three weeks out to a week overdue, an hour at a time.
    seconds = range(21 * DAY, -7 * DAY, -3600)
    values = [wsjf.time_criticality(base, s) for s in seconds]
    assert all(later >= earlier for earlier, later in itertools.pairwise(values))
    assert values[0] == base
    assert values[-1] == 20.0
    assert all(base <= v <= 20.0 for v in values)
    if base < 20:
        # It actually rises inside the horizon, not only at the due date.
        inside = [wsjf.time_criticality(base, s) for s in (13 * DAY, 7 * DAY, DAY)]
        assert inside[0] < inside[1] < inside[2] < 20.0


@pytest.mark.parametrize(("dependents", "expected"), [(0, 0), (1, 1), (9, 9), (10, 10)])
def test_enablement_counts_open_dependents(dependents: int, expected: int) -> None:
    assert wsjf.enablement(dependents) == expected


@pytest.mark.parametrize("dependents", [11, 25, 10_000])
def test_enablement_is_capped(dependents: int) -> None:
    assert wsjf.enablement(dependents) == wsjf.ENABLEMENT_CAP == 10


def test_breakdown_score_is_cost_of_delay_over_job_size() -> None:
    b = wsjf.breakdown(
        business_value=8, time_criticality=12.5, risk_reduction=6, open_dependents=3, job_size=4
    )
    assert b.business_value == 8
    assert b.time_criticality == 12.5
    assert b.risk_reduction == 6
    assert b.enablement == 3
    assert b.cost_of_delay == pytest.approx(29.5)
    assert b.job_size == 4
    assert b.score == pytest.approx(29.5 / 4)


def test_breakdown_caps_enablement_inside_the_cost_of_delay() -> None:
    b = wsjf.breakdown(
        business_value=5, time_criticality=5.0, risk_reduction=5, open_dependents=40, job_size=5
    )
    assert b.enablement == 10
    assert b.cost_of_delay == pytest.approx(25.0)
    assert b.score == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("bv", "tc", "rr", "deps", "size"),
    [
        (1, 1.0, 1, 0, 1),
        (1, 1.0, 1, 0, 7),
        (20, 20.0, 20, 10, 1),
        (13, 17.33, 2, 4, 6),
        (7, 9.87, 11, 12, 20),
    ],
)
def test_breakdown_score_matches_the_formula(
    bv: int, tc: float, rr: int, deps: int, size: int
) -> None:
    b = wsjf.breakdown(
        business_value=bv,
        time_criticality=tc,
        risk_reduction=rr,
        open_dependents=deps,
        job_size=size,
    )
    expected = (bv + tc + rr + min(deps, 10)) / size
    assert b.score == pytest.approx(expected, abs=5e-5)  # rounded to 4 places
    assert b.score == round(b.score, 4)
    assert b.cost_of_delay == pytest.approx(
        b.business_value + b.time_criticality + b.risk_reduction + b.enablement
    )


def test_smaller_jobs_and_higher_cost_of_delay_rank_higher() -> None:
    def score(size: int, bv: int = 5) -> float:
        return wsjf.breakdown(
            business_value=bv,
            time_criticality=5,
            risk_reduction=5,
            open_dependents=0,
            job_size=size,
        ).score

    assert score(2) > score(4) > score(20)
    assert score(4, bv=10) > score(4, bv=5)


def test_breakdown_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        wsjf.breakdown(5, 5.0, 5, 0, 5)  # type: ignore[misc]
