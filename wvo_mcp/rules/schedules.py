"""When a scheduled task comes back: after a cron expression's time or an interval (pure).

When a scheduled task comes back (pure): `every` is a cron expression (five fields, UTC,
read by cronsim) or an interval (`30m`, `12h`, `1d`, `2w`); each time it comes is a new
task, named after the schedule and the time. Carried out by `wvo_mcp/services/schedules.py`."""

import re
from datetime import datetime, timedelta

from cronsim import CronSim, CronSimError

_INTERVAL = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNIT = {"m": 60, "h": 3600, "d": 86_400, "w": 604_800}
LONGEST_ID = 86  # a schedule's; its tasks' add 14 characters, and a task id is at most 100
SHORTEST = timedelta(minutes=5)  # more often is a loop, not a schedule
ACCEPTED = (
    "give a cron expression of five fields in UTC (`0 6 * * 1`: Mondays at 06:00) or an "
    "interval of at least 5 minutes (`30m`, `12h`, `1d`, `2w`)"
)


def check(every: str) -> str:
    """`every` as stored, or ValueError saying what is accepted."""
    every = " ".join(every.split())
    interval = _interval(every)
    if interval is not None:
        if interval < SHORTEST:
            raise ValueError(f"{every!r} is too often: {ACCEPTED}")
        return every
    try:
        times = CronSim(every, datetime(2026, 1, 1))
        first, second = next(times), next(times)
    except (CronSimError, StopIteration, ValueError) as exc:
        raise ValueError(f"{every!r} is not a schedule ({exc}): {ACCEPTED}") from None
    if second - first < SHORTEST:
        raise ValueError(f"{every!r} is too often: {ACCEPTED}")
    return every


def next_after(every: str, moment: datetime) -> datetime:
    """The first time `every` comes after `moment` (an aware UTC datetime)."""
    interval = _interval(every)
    if interval is not None:
        return moment + interval
    return next(CronSim(every, moment.replace(second=0, microsecond=0)))


def instance_id(schedule: str, at: datetime) -> str:
    """The task made when `schedule` comes at `at`: `<schedule>.<YYYYMMDD-HHMM>` (a git
    branch name, and one per time, so two hosts making it make one)."""
    return f"{schedule}.{at:%Y%m%d-%H%M}"


def _interval(every: str) -> timedelta | None:
    found = _INTERVAL.match(every)
    if found is None:
        return None
    return timedelta(seconds=int(found.group(1)) * _UNIT[found.group(2)])
