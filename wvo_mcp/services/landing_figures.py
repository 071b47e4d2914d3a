"""The merge queue as people read it: open entries with their waits, and its figures.

The merge queue as people and agents read it: its open entries, each with its place and
wait, and the figures of a window (queue_figures.py does the arithmetic). What each landed
change cost adds up the usage charged to its task (usage.record_usage, per provider and
tier over all its attempts)."""

from datetime import datetime, timedelta
from typing import Literal, cast

from wvo_mcp import queue_figures, timeutil
from wvo_mcp.models import (
    LandedSpend,
    LandingFigures,
    LandingQueue,
    OpenState,
    PullRequestShown,
    QueueEntry,
)
from wvo_mcp.queue_figures import Figures, Landed, Spend
from wvo_mcp.services import landing_queue
from wvo_mcp.services.pulls import pulls_shown
from wvo_mcp.store import Row, Tx

WINDOW_HOURS = 24  # the figures' window wherever none is asked for


def _time(text: str | None) -> datetime | None:
    return None if text is None else timeutil.from_text(text)


def _spend(rows: list[Row]) -> list[Spend]:
    return [
        Spend(r["provider"], r["tier"], int(r["changes"]), int(r["input_tokens"] or 0),
              int(r["output_tokens"] or 0), float(r["cost"] or 0.0))
        for r in rows
    ]  # fmt: skip


def figures(tx: Tx, now: datetime, hours: float = WINDOW_HOURS) -> Figures:
    """The figures of the `hours` before `now`."""
    since = {"since": timeutil.to_text(now - timedelta(hours=hours))}
    ended = tx.all("ended_since", since)
    landed = [r for r in ended if r["state"] == "landed"]
    waits = [
        w
        for r in landed
        if (w := queue_figures.wait(_time(r["queued_at"]), _time(r["finished_at"]))) is not None
    ]
    returned = len(ended) - len(landed)
    spend = _spend(tx.all("landed_spend_since", since))
    return queue_figures.figures(hours, waits, len(landed), returned, spend)


def of_landing(tx: Tx, landing_id: int) -> Landed:
    """What a completed landing brought: its entries' queue waits and its tasks' spend."""
    waits = (
        queue_figures.wait(_time(r["queued_at"]), _time(r["finished_at"]))
        for r in tx.all("landing_waits", {"id": landing_id})
    )
    spend = _spend(tx.all("landing_spend", {"id": landing_id}))
    return Landed(tuple(w for w in waits if w is not None), tuple(spend))


def view(tx: Tx, now: datetime, hours: float = WINDOW_HOURS) -> LandingQueue:
    """Every open entry in landing order per target, and the window's figures, as read in
    one transaction (the landing_queue tool, `autopilot status`, the dashboard)."""
    found = landing_queue.queue(tx)
    places = queue_figures.places([(e.target, e.state, e.position) for e, _ in found])
    entries = []
    for (item, title), place in zip(found, places, strict=True):
        since = queue_figures.waiting_since(
            item.state, item.entered_at, item.queued_at, item.finished_at
        )
        entries.append(
            QueueEntry(
                target=item.target,
                position=place,
                task_id=item.task_id,
                title=title,
                state=cast(OpenState, item.state),  # open, by the query
                waiting_since=since,
                waited_s=round(max(0.0, (now - timeutil.from_text(since)).total_seconds()), 1),
                returns=item.returns,
                reason=item.reason if item.state == "held" else None,
            )
        )
    # Landing order: by target, then place; entries outside the queue proper after them.
    entries.sort(key=lambda e: (e.target, e.position is None, e.position or 0))
    pulls = [
        PullRequestShown(
            target=p.target, task_id=p.task_id, title=title, number=p.number, url=p.url,
            state=cast(Literal["open", "merged", "closed"], p.state), waiting=p.waiting,
            updated_at=at,
        )
        for p, title, at in pulls_shown(tx, now - timedelta(hours=hours))
    ]  # fmt: skip
    return LandingQueue(entries=entries, figures=model(figures(tx, now, hours), now), pulls=pulls)


def model(found: Figures, now: datetime) -> LandingFigures:
    def rounded(value: float | None, digits: int = 1) -> float | None:
        return None if value is None else round(value, digits)

    return LandingFigures(
        since=timeutil.to_text(now - timedelta(hours=found.hours)),
        hours=found.hours,
        landed=found.landed,
        landed_per_hour=round(found.landed_per_hour, 3),
        wait_p50_s=rounded(found.wait_p50),
        wait_p95_s=rounded(found.wait_p95),
        returned=found.returned,
        returns_per_landed=rounded(found.returns_per_landed, 3),
        spend=[
            LandedSpend(
                provider=s.provider,
                tier=s.tier,
                changes=s.changes,
                tokens_per_change=round(s.tokens, 1),
                cost_per_change=round(s.cost, 6),
            )
            for s in found.spend
        ],
    )
