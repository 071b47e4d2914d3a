"""A person's pause of a task, an epic or the whole fleet, and its end.

The rows are kept here; a pause ends a running worker in `autopilot/worker_process.py`
(`Executor._watch`, a CLI worker) or `autopilot/acp_driver.py` (`_watch`, an ACP worker), and
keeps a task from a claim in `services/picking.py` (`Picking.best`).

A person's pause of a task, an epic or the whole fleet: what is paused is not claimable,
and its holders are told to checkpoint and stop. A pause never counts against an attempt or
a provider: the task waits, with its checkpoint and branch, and takes no WIP slot once its
holder lets go.

Carries out `rules/pauses.py`; a paused worker is ended at its grace's end by
`autopilot/worker_process.py` (`Executor._watch`)."""

from datetime import datetime

from wvo_mcp import timeutil
from wvo_mcp.errors import NotFound, ValidationFailed
from wvo_mcp.models import PauseResult
from wvo_mcp.rules.pauses import Paused, Scope
from wvo_mcp.services import notes
from wvo_mcp.services.tasks import record_event
from wvo_mcp.store import Row, Tx

STOP = (
    "Call checkpoint now with your progress and next steps, and stop working on it: give it "
    "back with plan_update status=pending (an autopilot's worker: end your session instead). "
    "It waits, and the next attempt starts from your checkpoint once a person resumes it."
)


def in_force(tx: Tx) -> Paused:
    return Paused.of(tx.all("pauses"))


def _check(tx: Tx, scope: Scope, key: str) -> None:
    """Refuse a pause or resume of something that does not exist (or is over)."""
    if scope == "task":
        notes.open_task(tx, key, "there is nothing to pause")
    elif scope == "epic" and not tx.value("epic_task_count", (key,)):
        raise NotFound(f"no task belongs to epic {key!r}: check the epic's id")


def _in_scope(held: list[Row], scope: Scope, key: str) -> list[Row]:
    return [
        r
        for r in held
        if scope == "fleet"
        or (scope == "epic" and r["epic_id"] == key)
        or (scope == "task" and r["id"] == key)
    ]


def pause(
    tx: Tx, scope: Scope, key: str, reason: str | None, author: str, now: datetime
) -> PauseResult:
    _check(tx, scope, key)
    stamp = timeutil.to_text(now)
    added = tx.one(
        "add_pause", {"scope": scope, "key": key, "author": author, "reason": reason, "now": stamp}
    )
    what = _named(scope, key)
    if added is None:
        return PauseResult(
            scope=scope, key=key, paused=True, told=[], message=f"{what} was paused already"
        )
    why = f": {reason}" if reason else ""
    told = []
    for row in _in_scope(tx.all("held_tasks"), scope, key):
        text = f"A person ({author}) paused {_whose(scope, key)}{why}. {STOP}"
        notes.add(tx, row["id"], "pause", text, author, stamp, for_epoch=row["lease_epoch"])
        told.append(row["id"])
    if scope == "task":
        record_event(tx, key, at=stamp, actor=author, kind="paused", reason=reason)
    for task_id in told:
        if task_id != key:
            record_event(tx, task_id, at=stamp, actor=author, kind="paused", reason=what + why)
    said = f"; told {len(told)} holder(s) to checkpoint and stop" if told else ""
    return PauseResult(
        scope=scope,
        key=key,
        paused=True,
        told=told,
        message=f"{what} paused: not claimable until resumed{said}",
    )


def resume(tx: Tx, scope: Scope, key: str, author: str, now: datetime) -> PauseResult:
    removed = tx.one("remove_pause", (scope, key))
    what = _named(scope, key)
    if removed is None:
        paused = in_force(tx)
        now_paused = paused.summary() or "nothing is paused"
        raise ValidationFailed(f"{what} is not paused ({now_paused}). Nothing was changed")
    stamp = timeutil.to_text(now)
    still = in_force(tx)
    for row in _in_scope(tx.all("held_tasks"), scope, key):
        if still.why(row["id"], row["epic_id"]) is None:  # its holder need not stop now
            tx.run("withdraw_pause_notes", (row["id"],))
    if scope == "task":
        record_event(tx, key, at=stamp, actor=author, kind="resumed")
    return PauseResult(
        scope=scope,
        key=key,
        paused=False,
        told=[],
        message=f"{what} resumed (paused by {removed['author']} since {removed['created_at']})",
    )


def _named(scope: Scope, key: str) -> str:
    return {"task": f"task {key}", "epic": f"epic {key}", "fleet": "the fleet"}[scope]


def _whose(scope: Scope, key: str) -> str:
    return {
        "task": "this task",
        "epic": f"this task's epic {key}",
        "fleet": "the whole fleet",
    }[scope]
