"""Backup retention: the newest backup per hour, day and ISO week, for the most recent
buckets that hold one (restic's keep-hourly/-daily/-weekly), and the newest always."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from wvo_mcp.backups import keep

# Monday 2024-06-10 is the first day of ISO week 24.
MONDAY = datetime(2024, 6, 10, tzinfo=UTC)


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A moment `day` days after MONDAY (negative: before)."""
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute, seconds=second)


def hourly_for(days: int) -> list[datetime]:
    return [at(0, h) + timedelta(days=d) for d in range(days) for h in range(24)]


@pytest.mark.parametrize(
    ("stamps", "slots", "expected"),
    [
        pytest.param([], (24, 7, 4), set(), id="empty"),
        pytest.param([at(0, 5)], (24, 7, 4), {at(0, 5)}, id="one"),
        pytest.param([at(0, 5)], (0, 0, 0), {at(0, 5)}, id="newest-kept-with-no-slots"),
        pytest.param(
            [at(0, 9, m) for m in range(0, 60, 5)],
            (24, 7, 4),
            {at(0, 9, 55)},
            id="many-in-one-hour-keep-the-newest",
        ),
        pytest.param(
            [at(0, 9, 10), at(0, 9, 50), at(0, 10, 5), at(0, 10, 40), at(0, 11, 0)],
            (24, 7, 4),
            {at(0, 9, 50), at(0, 10, 40), at(0, 11, 0)},
            id="newest-of-each-hour",
        ),
        pytest.param(
            [at(0, h) for h in range(5)],
            (2, 0, 0),
            {at(0, 3), at(0, 4)},
            id="only-the-most-recent-hours",
        ),
        pytest.param(
            # The two most recent hours *that hold a backup*, however far apart.
            [at(-3, 7), at(-2, 8), at(0, 9)],
            (2, 0, 0),
            {at(-2, 8), at(0, 9)},
            id="hours-with-gaps-of-days",
        ),
        pytest.param(
            # A day keeps its newest backup; the days fill up before the hours run out.
            [at(d, h) for d in range(-4, 1) for h in (6, 18)],
            (1, 3, 0),
            {at(0, 18), at(-1, 18), at(-2, 18)},
            id="newest-of-each-day",
        ),
        pytest.param(
            # Gaps of days: the 3 most recent days that hold a backup.
            [at(-30, 1), at(-20, 2), at(-10, 3), at(-5, 4), at(0, 5)],
            (0, 3, 0),
            {at(-10, 3), at(-5, 4), at(0, 5)},
            id="days-with-gaps",
        ),
        pytest.param(
            # Sunday 23:59 and Monday 00:00 are in different ISO weeks.
            [at(-1, 23, 59, 59), at(0, 0, 0, 0)],
            (0, 0, 2),
            {at(-1, 23, 59, 59), at(0)},
            id="week-boundary-sunday-monday",
        ),
        pytest.param(
            # Monday and Sunday of one ISO week: only Sunday's stays.
            [at(0, 0), at(3, 12), at(6, 23)],
            (0, 0, 4),
            {at(6, 23)},
            id="one-iso-week-keeps-its-newest",
        ),
        pytest.param(
            # Year boundary: 2024-12-30 (Mon) and 2025-01-05 (Sun) are both ISO 2025-W01,
            # 2024-12-29 (Sun) is 2024-W52.
            [
                datetime(2024, 12, 29, 12, tzinfo=UTC),
                datetime(2024, 12, 30, 12, tzinfo=UTC),
                datetime(2025, 1, 5, 12, tzinfo=UTC),
            ],
            (0, 0, 4),
            {datetime(2024, 12, 29, 12, tzinfo=UTC), datetime(2025, 1, 5, 12, tzinfo=UTC)},
            id="iso-week-across-new-year",
        ),
        pytest.param(
            # One backup a week for ten weeks: four weekly slots keep four of them.
            [at(-7 * w, 12) for w in range(10)],
            (0, 0, 4),
            {at(-7 * w, 12) for w in range(4)},
            id="weekly-slots-run-out",
        ),
        pytest.param(
            # Fewer backups than slots: all of them stay.
            [at(-20, 1), at(-6, 2), at(-1, 3), at(0, 4)],
            (24, 7, 4),
            {at(-20, 1), at(-6, 2), at(-1, 3), at(0, 4)},
            id="fewer-backups-than-slots",
        ),
        pytest.param(
            # The union: hours keep the last two, days reach back to Friday's newest, weeks
            # to the newest of the week before (Sunday 2 June).
            [at(-9, 10), at(-8, 22), at(-3, 8), at(-3, 20), at(0, 1), at(0, 2), at(0, 3)],
            (2, 2, 3),
            {at(0, 3), at(0, 2), at(-3, 20), at(-8, 22)},
            id="union-of-the-tiers",
        ),
        pytest.param(
            [at(0, 5), at(0, 5), at(0, 4)],
            (1, 0, 0),
            {at(0, 5)},
            id="duplicates-count-once",
        ),
        pytest.param(
            # Buckets are UTC: 23:30 and 00:30 UTC are different days even when they fall on
            # one local day at UTC+2.
            [
                datetime(2024, 6, 10, 1, 30, tzinfo=timezone(timedelta(hours=2))),
                datetime(2024, 6, 10, 2, 30, tzinfo=timezone(timedelta(hours=2))),
            ],
            (0, 2, 0),
            {
                datetime(2024, 6, 10, 1, 30, tzinfo=timezone(timedelta(hours=2))),
                datetime(2024, 6, 10, 2, 30, tzinfo=timezone(timedelta(hours=2))),
            },
            id="buckets-are-utc",
        ),
    ],
)
def test_keep(stamps: list[datetime], slots: tuple[int, int, int], expected: set[datetime]) -> None:
    hourly, daily, weekly = slots
    assert keep(stamps, hourly=hourly, daily=daily, weekly=weekly) == expected


def test_order_of_input_does_not_matter() -> None:
    stamps = [at(d, h) for d in range(-15, 1) for h in (3, 9, 15, 21)]
    assert keep(stamps) == keep(list(reversed(stamps))) == keep(sorted(stamps, key=str))


def test_hourly_backups_for_five_weeks_settle_at_the_default_counts() -> None:
    stamps = hourly_for(35)
    newest = stamps[-1]
    kept = keep(stamps)
    # 24 hours: the last 24 backups. 7 days: the newest of each of the last 7 days (today's
    # is the newest overall, yesterday's 23:00 is among the 24 hours). 4 weeks: each week's
    # Sunday 23:00.
    last_24 = set(stamps[-24:])
    daily = {at(d, 23) for d in range(28, 35)}
    weekly = {at(d, 23) for d in (13, 20, 27, 34)}
    assert newest == at(34, 23)
    assert kept == last_24 | daily | weekly
    assert len(kept) == 24 + 6 + 3  # days and weeks overlap the hours on the newest


def test_defaults_are_24_hourly_7_daily_4_weekly() -> None:
    stamps = hourly_for(35)
    assert keep(stamps) == keep(stamps, hourly=24, daily=7, weekly=4)
    assert keep(stamps) != keep(stamps, hourly=23, daily=7, weekly=4)
    # (an 8th day would be a Sunday the weeks keep anyway)
    assert keep(stamps) != keep(stamps, hourly=24, daily=9, weekly=4)
    assert keep(stamps) != keep(stamps, hourly=24, daily=7, weekly=5)


def test_keeping_is_stable_as_backups_age() -> None:
    """Pruning, then adding a newer backup and pruning again, never resurrects anything and
    keeps what the policy on the full history keeps for the weeks and days."""
    kept: set[datetime] = set()
    for stamp in hourly_for(21):
        kept = keep([*kept, stamp])
    full = keep(hourly_for(21))
    assert kept == full
