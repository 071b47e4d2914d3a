"""The dashboard's board: columns and their counts, cards, and the live view's cursor.

The dashboard's board: columns by status with their counts (the maintained counters, never
a count of rows), a keyset-paged column, cards by id, and the change cursor the live view
follows (the event log, plus lease renewals, which write no event)."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services.rows import literal
from wvo_mcp.store import Row, Tx

# The board's columns, left to right.
COLUMNS: tuple[str, ...] = (
    Status.PENDING,
    Status.IN_PROGRESS,
    Status.AWAITING_APPROVAL,
    Status.NEEDS_REVIEW,
    Status.BLOCKED,
    Status.FAILED,
    Status.DONE,
    Status.CANCELLED,
)
MAX_PAGE = 200


@dataclass(frozen=True)
class Filters:
    """What a viewer narrows the board to; None is no filter."""

    epic_id: str | None = None
    tag: str | None = None
    agent: str | None = None
    search: str | None = None  # a substring of the id or title, matched case-insensitively

    def params(self) -> dict[str, Any]:
        pattern = None
        if self.search:
            pattern = f"%{literal(self.search)}%"
        return {"epic_id": self.epic_id, "tag": self.tag, "agent": self.agent, "search": pattern}


@dataclass(frozen=True)
class Card:
    id: str
    title: str
    status: str
    epic_id: str | None
    wsjf_score: float
    holder: str | None
    lease_expires_at: str | None
    attempt: int
    progress: int | None
    ready: bool

    @classmethod
    def of(cls, row: Row) -> "Card":
        held = row["status"] == Status.IN_PROGRESS
        return cls(
            id=row["id"],
            title=row["title"],
            status=row["status"],
            epic_id=row["epic_id"],
            wsjf_score=float(row["wsjf_score"]),
            holder=row["assigned_to"] if held else None,
            lease_expires_at=row["lease_expires_at"] if held else None,
            attempt=int(row["attempts"]) + 1,
            progress=row["progress"],
            ready=row["status"] == Status.PENDING and row["unmet_dependencies"] == 0,
        )


@dataclass(frozen=True)
class Column:
    status: str
    cards: list[Card]
    next_after: str | None  # pass back as `after` for the next page; None at the end


@dataclass(frozen=True)
class Board:
    counts: dict[str, int]
    cursor: int  # the last event seen: the live view continues from here
    columns: list[Column] = field(default_factory=list)


def counts(tx: Tx) -> dict[str, int]:
    """Tasks per status, and `ready`, from the counters the triggers keep."""
    return {row["bucket"]: int(row["tasks"]) for row in tx.all("queue_counts")}


def column(tx: Tx, status: str, filters: Filters, after: str, limit: int) -> Column:
    if status not in COLUMNS:
        raise ValidationFailed(f"no column {status!r}; one of {', '.join(COLUMNS)}")
    limit = max(1, min(limit, MAX_PAGE))
    found = tx.all(
        "board_page", {"status": status, "after": after, "limit": limit + 1, **filters.params()}
    )
    cards = [Card.of(row) for row in found[:limit]]
    return Column(status, cards, cards[-1].id if len(found) > limit else None)


def board(tx: Tx, filters: Filters, limit: int) -> Board:
    """Every column's first page, the counts and the cursor, in one snapshot."""
    return Board(
        counts=counts(tx),
        cursor=int(tx.value("last_event_id")),
        columns=[column(tx, status, filters, "", limit) for status in COLUMNS],
    )


def cards(tx: Tx, ids: list[str], filters: Filters) -> list[Card]:
    """Those of `ids` that exist and pass the filters."""
    found = tx.all("board_cards", {"ids": json.dumps(ids), **filters.params()})
    return [Card.of(row) for row in found]


@dataclass(frozen=True)
class Changes:
    """What changed past a cursor: the tasks of new events (up to a limit), the new cursor,
    the held tasks' last renewals, the counts afterwards, and a mark per view that changes
    when what it shows does."""

    task_ids: list[str]
    cursor: int
    full: bool  # the limit was reached: more follow at once
    beats: dict[str, str | None]
    counts: dict[str, int]
    marks: dict[str, str] = field(default_factory=dict)


def changes(tx: Tx, after: int, limit: int, day: str) -> Changes:
    """`day`: today as usage counts it (YYYY-MM-DD)."""
    rows = tx.all("events_after", (after, limit))
    mark = tx.one("dashboard_marks", {"day": day})
    assert mark is not None  # one row of aggregates
    return Changes(
        task_ids=list(dict.fromkeys(row["task_id"] for row in rows)),
        cursor=int(rows[-1]["id"]) if rows else after,
        full=len(rows) >= limit,
        beats={row["id"]: row["last_heartbeat_at"] for row in tx.all("lease_beats")},
        counts=counts(tx),
        marks={
            "agents": str(mark["usage"]),  # tokens and cost today
            "budgets": f"{mark['usage']} {mark['breakers']}",
            "health": str(mark["health"]),
            "autopilot": f"{mark['autopilot']} {mark['queue']}",  # rounds, the merge queue
        },
    )


def last_event_id(tx: Tx) -> int:
    return int(tx.value("last_event_id"))


def done_per_hour(tx: Tx, now: datetime, hours: int) -> list[tuple[str, int]]:
    """Completions in each of the last `hours` hours (UTC 'YYYY-MM-DDTHH', oldest first; the
    current hour so far last)."""
    keys = [(now - timedelta(hours=n)).strftime("%Y-%m-%dT%H") for n in range(hours - 1, -1, -1)]
    found = {row["hour"]: int(row["done"]) for row in tx.all("done_per_hour", {"since": keys[0]})}
    return [(key, found.get(key, 0)) for key in keys]


@dataclass(frozen=True)
class AgentRow:
    """An agent as the dashboard's agents view shows it. `state` is the health monitor's
    reading: silent (not seen within the stale threshold and SEEN_RESOLUTION), working
    (holding a live lease) or idle (seen, holding none)."""

    id: str
    provider: str | None
    model: str | None
    tier: str | None  # the providers file's tier for its model, when it names one
    last_seen_at: str
    task_id: str | None
    task_title: str | None
    beat_at: str | None  # the held task's last heartbeat or checkpoint
    done: int
    tokens_today: int
    cost_today: float
    state: str


def agents(
    tx: Tx, now: str, cutoff: str, day: str, limit: int, tier: Callable[[Row], str | None]
) -> list[AgentRow]:
    """The agents (by id, at most `limit`); `cutoff` is now less the stale threshold, `day`
    the usage day (YYYY-MM-DD) whose tokens and spend are shown."""
    found = []
    for row in tx.all("dashboard_agents", {"now": now, "day": day, "limit": limit}):
        state = (
            "silent" if row["last_seen_at"] < cutoff
            else "working" if row["busy"]
            else "idle"
        )  # fmt: skip
        found.append(
            AgentRow(
                id=row["id"],
                provider=row["provider"],
                model=row["model"],
                tier=tier(row),
                last_seen_at=row["last_seen_at"],
                task_id=row["task_id"],
                task_title=row["task_title"],
                beat_at=row["beat_at"],
                done=int(row["done"]),
                tokens_today=int(row["tokens_today"]),
                cost_today=float(row["cost_today"]),
                state=state,
            )
        )
    return found
