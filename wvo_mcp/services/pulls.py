"""The pull requests the merge queue opened, as rows: each one's branch, head, state and wait.

`rules/pulls.py` judges what a pull request asks next, and
autopilot/landing/pull_requests.py carries that out against the forge; this module only
stores what it found (the head it pushed, what the pull request waits for, how it ended),
each write under the fence of the landing it carries (services/landing_queue.py), and what a
person's closing of one does to its task."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import leases, moves, notes, route_outcomes
from wvo_mcp.services.landing_queue import LANDER, abandon, end, entry, fenced, still_submitted
from wvo_mcp.store import Row, Tx


@dataclass(frozen=True)
class PullRow:
    target: str
    task_id: str
    number: int
    url: str
    branch: str
    head: str  # what the autopilot last pushed to its branch, or adopted from a person
    state: str  # open, merged, closed
    landing_id: int | None
    waiting: str


def _pull(row: Row) -> PullRow:
    return PullRow(
        row["target"], row["task_id"], int(row["number"]), row["url"], row["branch"],
        row["head"], row["state"], row["landing_id"], row["waiting"],
    )  # fmt: skip


def pull_of(tx: Tx, target: str, task_id: str) -> PullRow | None:
    row = tx.one("pull_of", {"target": target, "task_id": task_id})
    return None if row is None else _pull(row)


def pull_opened(
    tx: Tx, *, target: str, run: str, fence: int, task_id: str, number: int, url: str,
    branch: str, head: str, landing_id: int, now: datetime,
) -> None:  # fmt: skip
    """The task's pull request carries `landing_id` now, its branch at `head`."""
    fenced(tx, target, run, fence)
    tx.run(
        "pull_opened",
        {"target": target, "task_id": task_id, "number": number, "url": url, "branch": branch,
         "head": head, "landing_id": landing_id, "now": timeutil.to_text(now)},
    )  # fmt: skip


def pull_waits(tx: Tx, target: str, task_id: str, waiting: str, now: datetime) -> None:
    params = {"target": target, "task_id": task_id, "waiting": waiting[:500]}
    tx.run("pull_waits", {**params, "now": timeutil.to_text(now)})


def pull_moved(
    tx: Tx, *, target: str, run: str, fence: int, task_id: str, landing_id: int, old: str,
    new: str, tree: str, checks: str, now: datetime,
) -> None:  # fmt: skip
    """The pull request's head moved, restacked by the queue or pushed by a person and
    verified: its landing's intent names the new head, and the next push is leased on it."""
    fenced(tx, target, run, fence)
    tx.run("landing_moves", {"id": landing_id, "old": old, "new": new, "tree": tree,
                             "checks": checks})  # fmt: skip
    tx.run("pull_head", {"target": target, "task_id": task_id, "head": new,
                         "now": timeutil.to_text(now)})  # fmt: skip


def pull_ended(
    tx: Tx, target: str, task_id: str, state: str, now: datetime, waiting: str = ""
) -> None:
    """Merged or closed; or (state 'open') its task went back to a worker."""
    params = {"target": target, "task_id": task_id, "state": state, "waiting": waiting[:500]}
    tx.run("pull_ends", {**params, "now": timeutil.to_text(now)})


def batch_narrowed(
    tx: Tx, *, target: str, run: str, fence: int, landing_id: int, kept: Sequence[str],
    dropped: Sequence[tuple[int, str]], old: str, new: str, tree: str, checks: str,
    now: datetime,
) -> None:  # fmt: skip
    """A batch whose forge check failed, narrowed to its first tasks (`kept`, now at `new`):
    the `dropped` entries (id, task) queue again where they were, not at fault, and leave
    its pull request."""
    fenced(tx, target, run, fence)
    stamp, ids = timeutil.to_text(now), {i for i, _ in dropped}
    for item in (entry(r) for r in tx.all("entries_of_landing", {"id": landing_id})):
        if item.id in ids and not still_submitted(tx, item):  # a person moved its task
            end(tx, item.id, "landing", "closed", "not landed: a person moved its task", stamp)
    tx.run("entries_unland_some", {"id": landing_id, "ids": json.dumps(sorted(ids))})
    tx.run("landing_moves", {"id": landing_id, "old": old, "new": new, "tree": tree,
                             "checks": checks})  # fmt: skip
    for task_id in kept:
        tx.run("pull_head", {"target": target, "task_id": task_id, "head": new,
                             "now": timeutil.to_text(now)})  # fmt: skip
    for _, task_id in dropped:
        pull_ended(tx, target, task_id, "closed", now, "queued again: its batch was narrowed")


def batch_opened(
    tx: Tx, *, target: str, run: str, fence: int, tasks: Sequence[str], number: int, url: str,
    branch: str, head: str, landing_id: int, now: datetime,
) -> None:  # fmt: skip
    """A batch's pull request carries each of `tasks` (one transaction: all or none)."""
    for task_id in tasks:
        pull_opened(tx, target=target, run=run, fence=fence, task_id=task_id, number=number,
                    url=url, branch=branch, head=head, landing_id=landing_id, now=now)  # fmt: skip


def batch_split(
    tx: Tx, *, target: str, run: str, fence: int, landing_id: int, tasks: Sequence[str],
    why: str, now: datetime,
) -> None:  # fmt: skip
    """A batch the queue closed unmerged: each of its tasks queues again, to go out alone."""
    fenced(tx, target, run, fence)
    abandon(tx, landing_id, now)
    for task_id in tasks:
        pull_ended(tx, target, task_id, "closed", now, why)


def pulls_shown(tx: Tx, since: datetime) -> list[tuple[PullRow, str, str]]:
    """Pull requests open now, or ended since `since`: each with its task's title and when
    it last changed."""
    rows = tx.all("pulls_shown", {"since": timeutil.to_text(since)})
    return [(_pull(r), r["title"], r["updated_at"]) for r in rows]


def closed_by_person(
    tx: Tx, settings: Settings, *, target: str, run: str, fence: int, entry_id: int,
    question: str, now: datetime,
) -> bool:  # fmt: skip
    """A person closed the task's pull request without merging it: nothing lands, the task
    is blocked and the person is asked (the inbox), never silently redone. False when a
    person moved the task meanwhile."""
    fenced(tx, target, run, fence)
    row = tx.one("entry_by_id", {"id": entry_id})
    assert row is not None
    stamp = timeutil.to_text(now)
    tx.run("landing_ends", {"id": row["landing_id"], "state": "abandoned", "now": stamp})
    pull_ended(tx, target, row["task_id"], "closed", now)
    if row["state"] != "landing":
        return False
    item = entry(row)
    end(tx, entry_id, "landing", "closed", question[:2000], stamp)
    if not still_submitted(tx, item):
        return False
    task = leases.task_row(tx, item.task_id)
    route_outcomes.record_attempt(tx, task, "held", now)
    moves.update_status(
        tx, settings, item.task_id, Status.BLOCKED, LANDER, None, question[:500], now,
        landing=item.commit,
    )  # fmt: skip
    notes.add(tx, item.task_id, "question", question, LANDER, stamp)
    return True
