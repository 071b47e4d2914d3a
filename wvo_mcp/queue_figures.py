"""The merge queue's figures, no I/O: landings, waits, returns and cost over a window.

The merge queue's figures, free of I/O: over a window, how many changes landed and how
fast, how long they waited in their queue (p50, p95), how often work came back to a worker
per landed change, and what each landed change cost per provider and tier; and each open
entry's place in its queue."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from wvo_mcp.models import LandingFigures, LandingQueue
from wvo_mcp.rules import pulls
from wvo_mcp.rules.text import plain

# The states of an entry in its target's queue proper: review comes before it, held after.
IN_QUEUE = ("landing", "testing", "queued")


@dataclass(frozen=True)
class Spend:
    """What landed changes cost on one provider's tier, over every attempt of each."""

    provider: str
    tier: str
    changes: int  # landed changes that used this tier
    input_tokens: int
    output_tokens: int
    cost: float

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class PerChange:
    """A tier's spend divided by every change that landed: the rows of a window add up to
    what one landed change cost in all."""

    provider: str
    tier: str
    changes: int
    tokens: float
    cost: float


@dataclass(frozen=True)
class Figures:
    hours: float
    landed: int
    returned: int
    landed_per_hour: float
    wait_p50: float | None  # seconds; None: nothing landed
    wait_p95: float | None
    returns_per_landed: float | None  # None: nothing landed
    spend: tuple[PerChange, ...]


@dataclass(frozen=True)
class Landed:
    """What one landing brought onto its target, for telemetry: each entry's queue wait
    (seconds) and what its tasks cost."""

    waits: tuple[float, ...]
    spend: tuple[Spend, ...]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th quantile (0..1), interpolated linearly between the closest ranks (as numpy's
    default does); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    at = (len(ordered) - 1) * min(max(q, 0.0), 1.0)
    low, high = math.floor(at), math.ceil(at)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def wait(queued_at: datetime | None, finished_at: datetime | None) -> float | None:
    """Seconds from joining the queue to leaving it; None if either end is unknown. A clock
    that stepped back between the two gives 0, not a negative wait."""
    if queued_at is None or finished_at is None:
        return None
    return max(0.0, (finished_at - queued_at).total_seconds())


def figures(
    hours: float, waits: Sequence[float], landed: int, returned: int, spend: Sequence[Spend]
) -> Figures:
    """The window's figures from its landed entries' waits, its count of landed and returned
    entries, and its landed tasks' spend. An empty window gives zeros and None."""
    per_change = tuple(
        PerChange(s.provider, s.tier, s.changes, s.tokens / landed, s.cost / landed)
        for s in spend
        if landed
    )
    return Figures(
        hours=hours,
        landed=landed,
        returned=returned,
        landed_per_hour=landed / hours if hours > 0 else 0.0,
        wait_p50=percentile(waits, 0.50),
        wait_p95=percentile(waits, 0.95),
        returns_per_landed=returned / landed if landed else None,
        spend=per_change,
    )


def places(entries: Sequence[tuple[str, str, int]]) -> list[int | None]:
    """Each entry's place in its target's queue (1 lands next), for (target, state,
    position) in any order; None for one outside the queue proper (in review, or held for a
    person). Entries being landed or tested are ahead of those still queued."""
    order = sorted(
        (i for i, (_, state, _) in enumerate(entries) if state in IN_QUEUE),
        key=lambda i: (entries[i][0], IN_QUEUE.index(entries[i][1]), entries[i][2]),
    )
    found: list[int | None] = [None] * len(entries)
    seen: dict[str, int] = {}
    for i in order:
        target = entries[i][0]
        seen[target] = seen.get(target, 0) + 1
        found[i] = seen[target]
    return found


def waiting_since(
    state: str, entered_at: str, queued_at: str | None, finished_at: str | None
) -> str:
    """Since when an open entry waits where it is: for its review since it entered, in the
    queue since it was queued, for a person since it was held."""
    if state == "held" and finished_at:
        return finished_at
    if state in IN_QUEUE and queued_at:
        return queued_at
    return entered_at


def duration(seconds: float | None) -> str:
    """A wait as people read it: 42s, 7m05s, 3h02m, 2d04h; '-' for none."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _window(hours: float) -> str:
    return f"{hours:g} h" if hours >= 1 and hours == int(hours) else duration(hours * 3600)


def summary(found: LandingFigures) -> str:
    """The figures as one line (`autopilot status`, the autopilot's summary)."""
    per = "-" if found.returns_per_landed is None else f"{found.returns_per_landed:g}"
    spend = "; ".join(
        f"{s.provider}/{s.tier} {s.tokens_per_change:g} tokens ${s.cost_per_change:.4f}"
        for s in found.spend
    )
    return (
        f"last {_window(found.hours)}: {found.landed} landed ({found.landed_per_hour:.2f}/h), "
        f"queue wait p50 {duration(found.wait_p50_s)} p95 {duration(found.wait_p95_s)}, "
        f"{found.returned} returned ({per} per landed)"
        + (f"; per landed change: {spend}" if spend else "")
    )


def pull_lines(found: LandingQueue) -> list[str]:
    """One line per pull request: its number and task, its state or what it waits for,
    and its link."""
    lines = []
    for p in found.pulls:
        now = p.waiting if p.state == "open" and p.waiting else p.state
        named = pulls.named(p.number, pulls.kind_of_link(p.url))
        lines.append(f"{named} {plain(p.task_id, 40)} ({plain(now, 120)}): "
                     f"{plain(p.url, 200)}")  # fmt: skip
    return lines


def entry_lines(found: LandingQueue) -> list[str]:
    """One line per open entry: target, place, task, state, how long it waits, its
    returns, its title, and why it is held."""
    lines = []
    for e in found.entries:
        place = "-" if e.position is None else f"#{e.position}"
        returns = f", returned {e.returns}x" if e.returns else ""
        line = (
            f"{plain(e.target, 40) or '(own branch)'} {place} {plain(e.task_id, 40)} {e.state}"
            f" for {duration(e.waited_s)}{returns}: {plain(e.title, 60)}"
        )
        if e.reason:
            line += f" [{plain(e.reason, 120)}]"
        lines.append(line)
    return lines
