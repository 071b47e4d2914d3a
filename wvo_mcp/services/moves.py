"""A task's status moves: who may make each, where it ends, and what follows from it.

Every status a task takes after its claim goes through here, so the one table of legal moves is
checked in one place: `update_status` carries out `rules/transitions.py` (who may move a task
where, and which moves need an approving review; which may go with claim_next is
`rules/transitions.py:check_claim_next`), and `rules/retry.py` for a failed attempt. A move
reads the holder's lease (services/leases.py) but never renews it."""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import IllegalTransition, ValidationFailed
from wvo_mcp.models import UpdateResult
from wvo_mcp.rules import retry
from wvo_mcp.rules.text import plain
from wvo_mcp.rules.transitions import Actor, Gate, Status, check_transition, needs_approval
from wvo_mcp.services import route_outcomes, routing, rows
from wvo_mcp.services.leases import Run, lease_lost, task_row
from wvo_mcp.services.tasks import record_event
from wvo_mcp.store import Row, Tx


def _actor(row: Row, token: str | None, *, by_person: bool, landing: str | None = None) -> Actor:
    """Who is asking, for the transition table: a person, the autopilot landing a commit,
    the holder (its token was checked against the row), or an agent holding nothing."""
    if by_person:
        return Actor.PERSON
    if landing is not None:
        return Actor.LANDER
    return Actor.HOLDER if token is not None and token == row["lease_token"] else Actor.AGENT


def gate_of(row: Row) -> Gate:
    return Gate(row["gate"] or "")


def _check_approval(tx: Tx, row: Row, landing: str) -> None:
    """A reviewed task lands only as the commit its author submitted, approved (as its newest
    review) by an agent other than that author."""
    submitted, author = row["submitted_commit"], row["submitted_by"]
    if landing != submitted:
        raise IllegalTransition(
            f"task {row['id']!r}: the commit to land ({landing[:12]}) is not the one submitted "
            f"for review ({(submitted or 'none yet')[:12]}); review the submitted commit"
        )
    review = tx.one("latest_review", {"task_id": row["id"], "commit": landing})
    if review is None or review["verdict"] != "approve" or review["reviewer"] == author:
        said = (
            "no review of it yet"
            if review is None
            else f"its newest review, by {review['reviewer']}, "
            + ("is its author's own" if review["reviewer"] == author else "asks for changes")
        )
        raise IllegalTransition(
            f"task {row['id']!r} needs an approving review of commit {landing[:12]} by an "
            f"agent other than its author ({author}) before it is done: {said}"
        )


def update_status(
    tx: Tx,
    settings: Settings,
    task_id: str,
    target: Status,
    actor: str,
    token: str | None,
    reason: str | None,
    now: datetime,
    *,
    by_person: bool = False,
    landing: str | None = None,
    verified: Run | None = None,
    skipped_by: str | None = None,
) -> UpdateResult:
    """`verified`: the passing verify_command run; `skipped_by`: the person who bypassed
    the gate. Either is recorded as an event with the move. `landing`: the commit the
    autopilot lands (it moves as the lander; the autopilot alone passes it, in-process)."""
    row = task_row(tx, task_id, lock=True)
    current = _allowed_move(tx, row, task_id, target, token, by_person=by_person, landing=landing)
    if target is Status.DONE and verified is None and skipped_by is None:
        command = rows.verify_command(row)
        if command is not None:  # checked outside any transaction, then moved again
            raise Unverified(command)

    stamp = timeutil.to_text(now)
    epoch = row["lease_epoch"]
    final, attempts, not_before = _final_status(tx, settings, row, current, target, now)
    ended = _attempt_end(row, current, target, final, landing)
    # Read with the dependents' answer below: no round trip of its own.
    sent_back = tx.ask("task_sent_back", {"task_id": task_id}) if ended == "done" else None

    keep_holder = final is Status.AWAITING_APPROVAL and current is Status.IN_PROGRESS
    tx.send(
        "set_status",
        {
            "id": task_id,
            "status": final.value,
            "attempts": attempts,
            "not_before": not_before,
            "keep_holder": int(keep_holder),
            "completed": stamp if final is Status.DONE else None,
            "now": stamp,
        },
    )
    if current is Status.IN_PROGRESS and final is Status.NEEDS_REVIEW:
        tx.send("mark_submitted", {"id": task_id, "author": row["assigned_to"]})
    if current is Status.NEEDS_REVIEW and final is not Status.NEEDS_REVIEW:
        # Its submission leaves the merge queue (the lander ended its own entry already).
        why = f"{actor} moved the task to {final.value}" + (f": {reason}" if reason else "")
        tx.send("close_open_entries", {"task_id": task_id, "reason": why[:2000], "now": stamp})
    if verified is not None or skipped_by is not None:
        _record_verification(tx, task_id, actor, verified, skipped_by, stamp, epoch)
    record_event(
        tx,
        task_id,
        at=stamp,
        actor=actor,
        kind="status",
        from_status=current.value,
        to_status=final.value,
        reason=reason,
        lease_epoch=epoch,
    )
    unblocked = _release_dependents(tx, task_id, stamp) if final is Status.DONE else []
    if ended is not None:  # last: the route's row is the last one this transaction locks
        kind: route_outcomes.Kind = "failed"
        if sent_back is not None:  # done: on the first try unless a submission came back
            kind = "landed" if sent_back.value() else "landed_first_try"
        route_outcomes.record_attempt(tx, row, kind, now)
    return UpdateResult(
        task_id=task_id,
        previous_status=current,
        status=final,
        attempts=attempts,
        not_before=not_before,
        unblocked=unblocked,
        message=_moved(task_id, row, current, target, final, attempts, not_before)
        + _stranded(tx, task_id, final),
    )


def _attempt_end(
    row: Row, current: Status, target: Status, final: Status, landing: str | None
) -> Literal["done", "failed"] | None:
    """How a routed attempt ends with this move, if it does; its route counts it
    (services/route_outcomes.py). Done from in progress (its holder finished it) or by the
    lander; failed from in progress or by the lander (a refused submission). A person's
    move of a submission is not the attempt's end: the queue counted that (held)."""
    if row["routed_provider"] is None or row["routed_tier"] is None:
        return None
    if not (
        current is Status.IN_PROGRESS or (current is Status.NEEDS_REVIEW and landing is not None)
    ):
        return None
    if final is Status.DONE:
        return "done"
    return "failed" if target is Status.FAILED else None


def _allowed_move(
    tx: Tx,
    row: Row,
    task_id: str,
    target: Status,
    token: str | None,
    *,
    by_person: bool,
    landing: str | None,
) -> Status:
    """The task's status now, once the caller may move it to `target`; else the refusal."""
    current = Status(row["status"])
    if token is not None and token != row["lease_token"]:
        raise lease_lost(row)  # whatever the status: the caller believes it holds the task
    if current is Status.IN_PROGRESS and token is None and not by_person:
        raise ValidationFailed(
            f"task {task_id!r} is in progress (held by {row['assigned_to']!r}); "
            "pass the lease_token that claim_task returned"
        )
    gate, who = gate_of(row), _actor(row, token, by_person=by_person, landing=landing)
    check_transition(current, target, who, gate)
    if landing is not None and needs_approval(current, target, who, gate):
        _check_approval(tx, row, landing)
    return current


def _final_status(
    tx: Tx, settings: Settings, row: Row, current: Status, target: Status, now: datetime
) -> tuple[Status, int, str | None]:
    """Where a move to `target` ends (a failure is retried later or dead-lettered, a gate
    holds a finish), with the attempts counted and when it may be claimed again."""
    attempts = row["attempts"]
    not_before = None
    final: Status = target
    if target is Status.FAILED and current in (Status.IN_PROGRESS, Status.NEEDS_REVIEW):
        if current is Status.IN_PROGRESS:
            routing.failed_on_tier(tx, row)
        decision = retry.after_failure(
            attempts, row["max_attempts"], settings.retry_base_seconds, settings.retry_cap_seconds
        )
        final, attempts = decision.status, decision.attempts
        if final is Status.PENDING:
            not_before = timeutil.after(now, decision.delay_seconds)
    if final is Status.PENDING and current is Status.FAILED:
        attempts = 0  # a person's re-queue starts the attempt budget afresh
    return gated(row, final), attempts, not_before


def _record_verification(
    tx: Tx,
    task_id: str,
    actor: str,
    verified: Run | None,
    skipped_by: str | None,
    stamp: str,
    epoch: int | None,
) -> None:
    """The gate's passing run (with its output tails), or the person who bypassed it."""
    record_event(
        tx,
        task_id,
        at=stamp,
        actor=actor if verified is not None else str(skipped_by),
        kind="verified" if verified is not None else "verification_skipped",
        reason=verified.summary if verified else "verify_command bypassed by a person",
        lease_epoch=epoch,
    )
    if verified is not None:
        verified.record_output(tx, task_id)


def _stranded(tx: Tx, task_id: str, final: Status) -> str:
    """A cancelled or dead-lettered task's open dependents wait on it for good: said, with
    the ways out."""
    if final not in (Status.CANCELLED, Status.FAILED):
        return ""
    waiting = [
        r["id"] for r in tx.all("dependents_of", (task_id,))
        if r["status"] not in (Status.DONE, Status.CANCELLED)
    ]  # fmt: skip
    if not waiting:
        return ""
    shown = ", ".join(waiting[:10]) + (" …" if len(waiting) > 10 else "")
    return (
        f"; {len(waiting)} task(s) depend on it and wait until it is done: {shown} "
        f"(`wvo-mcp requeue {task_id}` brings it back, `wvo-mcp done {task_id}` if its work is "
        "not needed, or drop the dependency with `wvo-mcp import --update`)"
    )


def _moved(
    task_id: str,
    row: Row,
    current: Status,
    target: Status,
    final: Status,
    attempts: int,
    not_before: str | None,
) -> str:
    """What the mover is told."""
    if target is Status.FAILED and final is Status.PENDING:
        return (
            f"failure {attempts} of {row['max_attempts']} recorded; task {task_id!r} is pending "
            f"again and can be claimed after {not_before}"
        )
    if target is Status.FAILED and current in (Status.IN_PROGRESS, Status.NEEDS_REVIEW):
        return (
            f"failure {attempts} of {row['max_attempts']}: no attempts left, task {task_id!r} "
            "is dead-lettered ('failed') until a person re-queues it"
        )
    return f"task {task_id!r} is now {final.value!r}"


def requeue(
    tx: Tx, settings: Settings, task_id: str, actor: str, reason: str | None, now: datetime
) -> UpdateResult:
    """A person's re-queue: a dead letter, cancelled or blocked task back to pending; a
    pending one that failed attempts left unroutable (no tier above the one that failed)
    or backing off routed afresh from its lowest tier, now."""
    row = task_row(tx, task_id, lock=True)
    if row["status"] != Status.PENDING:
        asked = tx.one("open_question", (task_id,)) if row["status"] == Status.BLOCKED else None
        moved = update_status(tx, settings, task_id, Status.PENDING, actor, None,
                              reason or "re-queued by a person", now, by_person=True)  # fmt: skip
        if asked is None:
            return moved
        dropped = (
            f"; its question {plain(asked['body'], 200)!r} goes unanswered to the next holder "
            "(`wvo-mcp answer` reaches a question only while its task waits on it)"
        )
        return moved.model_copy(update={"message": moved.message + dropped})
    failed = row["failed_provider"], row["failed_tier"]
    if failed == (None, None) and row["not_before"] is None:
        raise IllegalTransition(
            f"task {task_id!r} is already pending, with no failed tier or retry back-off to "
            f"clear: nothing to re-queue (`wvo-mcp show {task_id}` says where it would go and "
            "why, and what it waits on)"
        )
    stamp = timeutil.to_text(now)
    tx.run("requeue_pending", {"id": task_id, "now": stamp})
    cleared = [f"its failed tier {failed[0]}/{failed[1]}"] if failed != (None, None) else []
    cleared += ["its retry back-off"] if row["not_before"] is not None else []
    message = (
        f"task {task_id} stays pending with {' and '.join(cleared)} cleared: it is routed "
        "afresh from its lowest tier"
    )
    record_event(tx, task_id, at=stamp, actor=actor, kind="requeued",
                 reason=(reason or message)[:4000], lease_epoch=row["lease_epoch"])  # fmt: skip
    return UpdateResult(
        task_id=task_id, previous_status=Status.PENDING, status=Status.PENDING,
        attempts=row["attempts"], message=message,
    )  # fmt: skip


def release_orphans(
    tx: Tx, settings: Settings, agents: Sequence[str], reason: str, now: datetime
) -> list[str]:
    """Tasks held by the workers of an autopilot that died go back to pending with their
    checkpoints, no attempt counted (each holder's own move, made for it)."""
    held = tx.all("held_by_agents", {"agents": json.dumps([a for a in agents if a])})
    for row in held:
        update_status(
            tx, settings, row["id"], Status.PENDING, row["assigned_to"], row["lease_token"],
            reason, now,
        )  # fmt: skip
    return [row["id"] for row in held]


class Unverified(Exception):
    """A `done` that must first pass the task's verify_command (its transaction rolls
    back; the orchestrator runs the command in the sandbox and moves the task again)."""

    def __init__(self, command: str | list[str]) -> None:
        super().__init__("verify_command first")
        self.command = command


def gated(row: Row, status: Status) -> Status:
    """A task that needs approval waits for it whenever it would become ready."""
    needs_approval = row["requires_approval"] and row["approved_by"] is None
    if status is Status.PENDING and needs_approval and row["unmet_dependencies"] == 0:
        return Status.AWAITING_APPROVAL
    return status


def await_approval(tx: Tx, task_id: str, stamp: str, why: str) -> None:
    """A ready task that needs a person's approval waits for it, said by the scheduler."""
    tx.run("set_status_plain", (Status.AWAITING_APPROVAL.value, stamp, task_id))
    record_event(
        tx,
        task_id,
        at=stamp,
        actor="scheduler",
        kind="status",
        from_status=Status.PENDING,
        to_status=Status.AWAITING_APPROVAL,
        reason=why,
    )


def _release_dependents(tx: Tx, task_id: str, stamp: str) -> list[str]:
    """A finished task lowers its dependents' unmet count; returns those now ready."""
    ready = []
    for row in tx.all("release_dependents", (stamp, task_id)):
        if row["unmet_dependencies"] != 0 or row["status"] != Status.PENDING:
            continue
        if gated(row, Status.PENDING) is Status.AWAITING_APPROVAL:
            await_approval(
                tx, row["id"], stamp, "dependencies done; approval required before work starts"
            )
        else:
            ready.append(row["id"])
    return ready
