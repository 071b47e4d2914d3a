"""A person's decisions on waiting tasks (approve, reject) and a submitted commit's reviews.

A review comes from the autopilot's reviewer (`review_submit`: kept here by `review`, acted
on in `services/landing_queue.py`, `reviewed`) or from the forge, judged in
`autopilot/landing/pull_requests.py` (`PullRequests._judge`).

Both are verdicts on a task that waits (in needs_review, or awaiting_approval), kept apart
from the moves themselves: a review is recorded here and acted on by the autopilot; an
approval or a refusal is a person's move out of awaiting_approval (`rules/transitions.py`),
made here because it hands a holder its lease back."""

from dataclasses import dataclass
from datetime import datetime

from wvo_mcp import timeutil
from wvo_mcp.errors import IllegalTransition, ValidationFailed
from wvo_mcp.models import UpdateResult
from wvo_mcp.rules.transitions import Actor, Status, check_transition
from wvo_mcp.services.leases import task_row
from wvo_mcp.services.moves import gated
from wvo_mcp.services.tasks import record_event
from wvo_mcp.store import Row, Tx


def submit_commit(tx: Tx, task_id: str, commit: str, actor: str, now: datetime) -> None:
    """The lander took the submitted work from its author's repository: this commit is what
    a review approves and what lands."""
    row = task_row(tx, task_id)
    if tx.run("set_submitted_commit", {"id": task_id, "commit": commit}) == 0:
        raise IllegalTransition(
            f"task {task_id!r} is {row['status']!r}, not a submission waiting in needs_review"
        )
    record_event(
        tx, task_id, at=timeutil.to_text(now), actor=actor, kind="submitted",
        reason=f"{commit} by {row['submitted_by']}",
    )  # fmt: skip


VERDICTS = ("approve", "changes")


@dataclass(frozen=True)
class Review:
    reviewer: str
    verdict: str
    notes: str
    at: str


def latest_review(tx: Tx, task_id: str, commit: str) -> Review | None:
    row = tx.one("latest_review", {"task_id": task_id, "commit": commit})
    return None if row is None else Review(row["reviewer"], row["verdict"], row["notes"], row["at"])


def review(
    tx: Tx, task_id: str, commit: str, reviewer: str, verdict: str, notes: str, now: datetime
) -> UpdateResult:
    """A reviewer's verdict on exactly the submitted commit; its author may give none."""
    row = task_row(tx, task_id)
    if verdict not in VERDICTS:
        raise ValidationFailed(f"verdict {verdict!r}: give one of {', '.join(VERDICTS)}")
    if row["status"] != Status.NEEDS_REVIEW or row["submitted_commit"] != commit:
        raise IllegalTransition(
            f"task {task_id!r} is {row['status']!r} with submitted commit "
            f"{(row['submitted_commit'] or 'none')[:12]}: the commit you were given to "
            f"review ({commit[:12]}) is no longer the one waiting for review; nothing recorded"
        )
    if reviewer == row["submitted_by"]:
        raise IllegalTransition(
            f"{reviewer} wrote this submission of task {task_id!r}: an author does not "
            "review its own work; nothing recorded"
        )
    stamp = timeutil.to_text(now)
    tx.run(
        "insert_review",
        {"task_id": task_id, "commit": commit, "reviewer": reviewer, "verdict": verdict,
         "notes": notes, "now": stamp},
    )  # fmt: skip
    record_event(
        tx, task_id, at=stamp, actor=reviewer, kind="review", reason=f"{verdict}: {notes}"[:2000]
    )
    return UpdateResult(
        task_id=task_id,
        previous_status=Status.NEEDS_REVIEW,
        status=Status.NEEDS_REVIEW,
        attempts=row["attempts"],
        message=f"review of {commit[:12]} recorded ({verdict}); the autopilot acts on it",
    )


def _awaiting(tx: Tx, task_id: str, verb: str) -> Row:
    row = task_row(tx, task_id)
    if row["status"] != Status.AWAITING_APPROVAL:
        raise IllegalTransition(
            f"task {task_id!r} is {row['status']!r}; only tasks in 'awaiting_approval' "
            f"can be {verb}"
        )
    return row


def _decided(
    tx: Tx, row: Row, by: str, kind: str, to: Status, note: str | None, now: datetime
) -> UpdateResult:
    """Record a person's decision on a waiting task; a holder gets a fresh lease back."""
    check_transition(Status.AWAITING_APPROVAL, to, Actor.PERSON)
    stamp = timeutil.to_text(now)
    if to is Status.IN_PROGRESS:
        expires = timeutil.after(now, row["lease_seconds"])
        tx.run("renew_lease", (expires, row["lease_seconds"], stamp, row["id"]))
        tx.run("set_status_plain", (to.value, stamp, row["id"]))
    else:
        tx.run(
            "set_status",
            {
                "id": row["id"],
                "status": to.value,
                "attempts": row["attempts"],
                "not_before": None,
                "keep_holder": 0,
                "completed": None,
                "now": stamp,
            },
        )
    record_event(
        tx,
        row["id"],
        at=stamp,
        actor=by,
        kind=kind,
        from_status=Status.AWAITING_APPROVAL,
        to_status=to.value,
        reason=note,
        lease_epoch=row["lease_epoch"],
    )
    return UpdateResult(
        task_id=row["id"],
        previous_status=Status.AWAITING_APPROVAL,
        status=to,
        attempts=row["attempts"],
        message=f"task {row['id']!r} {kind} by {by}; now {to.value!r}",
    )


def approve(tx: Tx, task_id: str, by: str, note: str | None, now: datetime) -> UpdateResult:
    """A person's approval: a waiting task becomes claimable, or returns to its holder."""
    row = _awaiting(tx, task_id, "approved")
    tx.run("set_approver", (by, row["id"]))
    to = Status.IN_PROGRESS if row["lease_token"] else Status.PENDING
    return _decided(tx, row, by, "approved", to, note, now)


REJECT_TO = (Status.CANCELLED, Status.BLOCKED, Status.PENDING, Status.IN_PROGRESS)


def reject(tx: Tx, task_id: str, by: str, note: str, to: Status, now: datetime) -> UpdateResult:
    """A person's refusal: the task is cancelled, blocked or re-queued, or (mid-task) goes
    back to its holder, who reads the note in task_get."""
    row = _awaiting(tx, task_id, "rejected")
    if to not in REJECT_TO:
        raise ValidationFailed(
            f"reject to one of {', '.join(s.value for s in REJECT_TO)}, not {to.value!r}"
        )
    if to is Status.IN_PROGRESS and row["lease_token"] is None:
        raise ValidationFailed(
            f"task {task_id!r} has no holder to hand it back to; reject to cancelled, "
            "blocked or pending"
        )
    if gated(row, to) is not to:
        raise ValidationFailed(
            f"task {task_id!r} requires approval before anyone works on it; re-queueing it "
            "would only ask again: reject to cancelled or blocked"
        )
    return _decided(tx, row, by, "rejected", to, note, now)
