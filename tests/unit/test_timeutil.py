"""Timestamps as fixed-width ISO-8601 UTC text that sorts like time."""

import itertools
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from wvo_mcp import timeutil

WIDTH = len("2025-01-02T03:04:05.678Z")


def ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def test_to_text_format() -> None:
    moment = datetime(2025, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)
    assert timeutil.to_text(moment) == "2025-01-02T03:04:05.678Z"


def test_to_text_converts_to_utc() -> None:
    moment = datetime(2025, 1, 2, 3, 4, 5, 6000, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert timeutil.to_text(moment) == "2025-01-01T21:34:05.006Z"


def test_to_text_truncates_to_milliseconds() -> None:
    moment = datetime(2025, 6, 1, 12, 0, 0, 999_999, tzinfo=UTC)
    assert timeutil.to_text(moment) == "2025-06-01T12:00:00.999Z"


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2000, 2, 29, 0, 0, 0, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2024, 3, 10, 1, 2, 3, tzinfo=timezone(timedelta(hours=-8))),
    ],
)
def test_to_text_is_fixed_width(moment: datetime) -> None:
    text = timeutil.to_text(moment)
    assert len(text) == WIDTH
    assert text.endswith("Z")


@pytest.mark.parametrize("year", [1, 99, 999])
def test_to_text_is_fixed_width_for_years_before_1000(year: int) -> None:
    # A planner may send any due date the API accepts (e.g. "0999-01-01T00:00:00Z").
    moment = datetime(year, 6, 1, tzinfo=UTC)
    text = timeutil.to_text(moment)
    assert len(text) == WIDTH, f"{text!r} is not fixed width"
    assert timeutil.from_text(text) == moment


def test_from_text_inverts_to_text() -> None:
    moment = datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    back = timeutil.from_text(timeutil.to_text(moment))
    assert back == moment
    assert back.tzinfo is not None
    assert back.utcoffset() == timedelta(0)


def random_moments(count: int, seed: int = 7) -> list[datetime]:
    rng = random.Random(seed)
    start = datetime(1990, 1, 1, tzinfo=UTC)
    span = 80 * 365 * 24 * 3600
    zones = [UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-3, minutes=-30))]
    moments = []
    for _ in range(count):
        moment = start + timedelta(seconds=rng.uniform(0, span))
        moments.append(moment.astimezone(rng.choice(zones)))
    # Close neighbours, a millisecond or less apart.
    base = datetime(2025, 5, 5, 5, 5, 5, 500, tzinfo=UTC)
    moments += [base + timedelta(microseconds=step) for step in (0, 1, 999, 1000, 1500, 2000)]
    return moments


def test_from_text_round_trips_at_millisecond_precision() -> None:
    for moment in random_moments(500):
        assert timeutil.from_text(timeutil.to_text(moment)) == ms(moment)


def test_text_sorts_like_time() -> None:
    moments = random_moments(1000)
    texts = [timeutil.to_text(m) for m in moments]
    assert len({len(t) for t in texts}) == 1
    by_time = [timeutil.to_text(m) for m in sorted(moments)]
    assert sorted(texts) == by_time


def test_text_order_is_strict_a_millisecond_apart() -> None:
    moments = random_moments(300, seed=11)
    for a, b in itertools.pairwise(moments):
        ta, tb = timeutil.to_text(a), timeutil.to_text(b)
        if ms(a) < ms(b):
            assert ta < tb
        elif ms(a) > ms(b):
            assert ta > tb
        else:
            assert ta == tb


def test_after_adds_seconds() -> None:
    moment = datetime(2025, 1, 31, 23, 59, 59, 500_000, tzinfo=UTC)
    assert timeutil.after(moment, 0.75) == "2025-02-01T00:00:00.250Z"
    assert timeutil.after(moment, 0) == timeutil.to_text(moment)
    assert timeutil.after(moment, -60) == "2025-01-31T23:58:59.500Z"


def test_now_is_aware_utc() -> None:
    before = datetime.now(UTC)
    current = timeutil.now()
    after = datetime.now(UTC)
    assert current.utcoffset() == timedelta(0)
    assert before <= current <= after
