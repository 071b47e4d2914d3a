"""What a lease holder does with its task: heartbeat, checkpoint, and status updates."""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import IllegalTransition, LeaseLost, NotFound, ValidationFailed
from wvo_mcp.git import Snapshot, ref_name
from wvo_mcp.models import CheckpointResult, LeaseResult, UpdateResult, UsageResult
from wvo_mcp.rules import retry
from wvo_mcp.rules.pauses import Paused
from wvo_mcp.rules.text import plain
from wvo_mcp.rules.transitions import Actor, Gate, Status, check_transition, needs_approval
from wvo_mcp.services import route_outcomes, routing, rows
from wvo_mcp.services.tasks import record_event
from wvo_mcp.store import Row, Tx


@dataclass(frozen=True)
class Run:
    """A sandbox run as a task keeps it: the one-line summary agents read back, and the
    output tails (the last OUTPUT_KEPT characters of each stream) people read."""

    summary: str
    stdout: str
    stderr: str

    def record_output(self, tx: Tx, task_id: str) -> None:
        """The tails, beside the task's newest event (the one just recorded)."""
        tx.run(
            "insert_run_output",
            {"task_id": task_id, "stdout": _kept(self.stdout), "stderr": _kept(self.stderr)},
        )


OUTPUT_KEPT = 4000
# How stale an agent's last sighting may get before a call writes it again (a heartbeat every
# 30 s then writes the agent's row every other time). Whoever judges an agent silent allows
# for it (`silent_before`).
SEEN_RESOLUTION = timedelta(seconds=60)


def _kept(text: str) -> str:
    return text if len(text) <= OUTPUT_KEPT else "[...]\n" + text[-OUTPUT_KEPT:]


def task_row(tx: Tx, task_id: str, *, lock: bool = False) -> Row:
    """A task's row, or NotFound naming what to do. `lock`: held until the transaction
    ends, so a TASK write decides on the row as it stays (store.Lock)."""
    row = tx.one("task_for_update" if lock else "task_by_id", (task_id,))
    if row is None:
        raise NotFound(f"no task with id {task_id!r}; task_list shows existing ids")
    return row


def _held(tx: Tx, task_id: str, token: str, *, waiting_ok: bool = False, lock: bool = True) -> Row:
    """The task row (locked, in a write) if `token` is the current lease, else LeaseLost
    naming the holder. A holder waiting for approval keeps its token, but its lease is
    suspended."""
    row = task_row(tx, task_id, lock=lock)
    if row["lease_token"] == token:
        if row["status"] == Status.IN_PROGRESS:
            return row
        if row["status"] == Status.AWAITING_APPROVAL:
            if waiting_ok:
                return row
            raise ValidationFailed(
                f"task {task_id!r} awaits a person's approval: your lease is suspended and "
                "cannot expire meanwhile, so no heartbeat is needed. Poll task_get; approval "
                "returns the task to you in_progress"
            )
    raise lease_lost(row)


def silent_before(now: datetime, stale_minutes: float) -> datetime:
    """The sighting before which an agent is silent: the stale threshold, and the
    resolution its sightings are written at."""
    return now - timedelta(minutes=stale_minutes) - SEEN_RESOLUTION


def seen(tx: Tx, agent_id: str, now: datetime) -> None:
    """The agent was seen now; its row is written at most every SEEN_RESOLUTION."""
    stale = timeutil.to_text(now - SEEN_RESOLUTION)
    tx.send("touch_agent", (agent_id, timeutil.to_text(now), stale))


def lease_lost(row: Row) -> LeaseLost:
    if row["status"] == Status.IN_PROGRESS:
        now_held = (
            f"it is now held by {row['assigned_to']!r} (lease epoch {row['lease_epoch']}, "
            f"until {row['lease_expires_at']})"
        )
    else:
        now_held = f"it is now {row['status']!r}" + (
            f", assigned to {row['assigned_to']!r}" if row["assigned_to"] else ", held by nobody"
        )
    return LeaseLost(
        f"lease lost on task {row['id']!r}: your lease token is no longer valid; {now_held}. "
        "Stop work on it, keep nothing that depends on holding it, and call plan_next / "
        "claim_task for new work"
    )


def renew(
    tx: Tx, task_id: str, token: str, agent_id: str, lease_seconds: int | None, now: datetime
) -> Callable[[], LeaseResult | None]:
    """A heartbeat that waits on no answer (Database.write_then_read): the lease renewed if
    `token` holds the task in progress, the agent seen with it. What it returns reads the
    answer: None when the token did not hold it, and then nothing changed (`heartbeat`
    says why)."""
    stamp = timeutil.to_text(now)
    given = {"id": task_id, "token": token, "seconds": lease_seconds or None, "now": stamp}
    renewed = tx.ask("renew_held_lease", given)
    stale = timeutil.to_text(now - SEEN_RESOLUTION)
    tx.send("touch_agent_holding", {**given, "agent": agent_id, "stale": stale})
    notes_due = tx.ask("notes_due", (agent_id,))  # what every call asks, asked here for free

    def read() -> LeaseResult | None:
        row = renewed.one()
        if row is None:
            return None
        renewal = LeaseResult(task_id=task_id, lease_expires_at=row["lease_expires_at"])
        if notes_due.one() is None:
            renewal._no_notes_for = agent_id
        return renewal

    return read


def heartbeat(
    tx: Tx, task_id: str, token: str, agent_id: str, lease_seconds: int | None, now: datetime
) -> LeaseResult:
    row = _held(tx, task_id, token)
    expires = timeutil.after(now, lease_seconds or row["lease_seconds"])
    tx.send(
        "renew_lease",
        (expires, lease_seconds or row["lease_seconds"], timeutil.to_text(now), task_id),
    )
    seen(tx, agent_id, now)
    return LeaseResult(task_id=task_id, lease_expires_at=expires)


# Checkpoints kept per task: each new one deletes those older than the latest this many, in
# the same transaction. Seqs keep increasing; a pruned checkpoint's git ref is left alone.
CHECKPOINTS_KEPT = 100


def checkpoint(
    tx: Tx,
    task_id: str,
    token: str,
    agent_id: str,
    summary: str,
    next_steps: str | None,
    progress: int | None,
    files: Sequence[str],
    now: datetime,
    snapshot: Snapshot | None = None,
    attach_sandbox_run: bool = False,
) -> CheckpointResult:
    row = _held(tx, task_id, token, waiting_ok=True)
    stamp = timeutil.to_text(now)
    run = None
    if attach_sandbox_run:
        run = tx.value("last_sandbox_run", (task_id, row["lease_epoch"]))
        if run is None:
            raise ValidationFailed(
                f"no sandbox run is recorded on task {task_id!r} under your lease: call "
                "sandbox_run with task_id and lease_token first, or leave attach_sandbox_run off"
            )
    waiting = row["status"] == Status.AWAITING_APPROVAL
    expires = None if waiting else timeutil.after(now, row["lease_seconds"])
    seq = tx.value("next_checkpoint_seq", (task_id,))
    ref = None if snapshot is None else ref_name(task_id, seq)
    tx.send(
        "insert_checkpoint",
        (
            task_id,
            seq,
            agent_id,
            row["lease_epoch"],
            summary,
            next_steps,
            progress,
            json.dumps(list(files)),
            stamp,
            None if snapshot is None else snapshot.head,
            None if snapshot is None else snapshot.commit,
            ref,
            run,
        ),
    )
    tx.send("prune_checkpoints", (task_id, CHECKPOINTS_KEPT))
    if not waiting:
        tx.send("renew_lease", (expires, row["lease_seconds"], stamp, task_id))
    seen(tx, agent_id, now)
    return CheckpointResult(
        task_id=task_id,
        seq=seq,
        lease_expires_at=expires,
        git_head=None if snapshot is None else snapshot.head,
        git_ref=ref,
    )


def lose_lease(
    tx: Tx, settings: Settings, row: Row, now: datetime, *, actor: str, requeue: bool
) -> bool:
    """A holder went silent: the lost lease counts as a failed attempt, dead-lettered at
    max_attempts. A claim takes the task over at once (`requeue=False`: it stays in progress
    for the grant); the health monitor puts it back to pending with the retry back-off.
    True if the task may be granted again."""
    stamp = timeutil.to_text(now)
    reason = f"lease of {row['assigned_to']} expired at {row['lease_expires_at']}"
    held_back = Paused.of(tx.all("pauses")).why(row["id"], row["epic_id"])
    if requeue and held_back is not None:  # told to stop by a person: no failed attempt
        tx.run("requeue_lost", (row["attempts"], row["not_before"], stamp, row["id"]))
        record_event(
            tx, row["id"], at=stamp, actor=actor, kind="requeued",
            from_status=Status.IN_PROGRESS, to_status=Status.PENDING,
            reason=f"{reason} while paused ({held_back}): released, no attempt counted",
            lease_epoch=row["lease_epoch"],
        )  # fmt: skip
        return True
    decision = retry.after_failure(
        row["attempts"],
        row["max_attempts"],
        settings.retry_base_seconds,
        settings.retry_cap_seconds,
    )
    if decision.status is Status.FAILED or requeue:
        who = Actor.MONITOR if requeue else Actor.SCHEDULER
        check_transition(Status.IN_PROGRESS, decision.status, who)
    route_outcomes.record_attempt(tx, row, "failed", now)  # a silent holder failed its attempt
    if decision.status is Status.FAILED:
        tx.run("dead_letter", (decision.attempts, stamp, row["id"]))
        record_event(
            tx,
            row["id"],
            at=stamp,
            actor=actor,
            kind="dead_lettered",
            from_status=Status.IN_PROGRESS,
            to_status=Status.FAILED,
            reason=f"{reason}; {decision.attempts} of {row['max_attempts']} attempts used",
            lease_epoch=row["lease_epoch"],
        )
        return False
    if requeue:
        not_before = timeutil.after(now, decision.delay_seconds)
        tx.run("requeue_lost", (decision.attempts, not_before, stamp, row["id"]))
        reason = (
            f"{reason} and nothing was heard from it since {row['last_heartbeat_at']}; "
            f"re-queued, claimable from {not_before}"
        )
    else:
        tx.run("count_lost_attempt", (decision.attempts, row["id"]))
    record_event(
        tx,
        row["id"],
        at=stamp,
        actor=actor,
        kind="requeued" if requeue else "lease_expired",
        from_status=Status.IN_PROGRESS,
        to_status=Status.PENDING,
        reason=reason,
        lease_epoch=row["lease_epoch"],
    )
    return True


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


def record_task_usage(tx: Tx, token: str | None, **usage: Any) -> UsageResult:
    """routing.record_usage for a task: only its holder charges it (tokens against its
    route, and a context_limit that escalates its next attempt)."""
    task_id = usage["task_id"]
    if token is None:
        raise ValidationFailed(
            f"record_usage for task {task_id!r} needs that task's lease_token: usage is "
            "charged to a task (and escalates it) by its holder only; omit task_id to "
            "report usage outside a task"
        )
    _held(tx, task_id, token, waiting_ok=True)
    return routing.record_usage(tx, **usage)


def holding(tx: Tx, task_id: str, token: str) -> Row:
    """The task's row; refused (LeaseLost) unless `token` is its current lease (a read)."""
    return _held(tx, task_id, token, lock=False)


def record_run(tx: Tx, task_id: str, token: str, agent_id: str, run: Run, now: datetime) -> None:
    """A holder's sandbox run, as an event on its task (checkpoint can attach it)."""
    row = _held(tx, task_id, token)
    record_event(
        tx,
        task_id,
        at=timeutil.to_text(now),
        actor=agent_id,
        kind="sandbox_run",
        reason=run.summary,
        lease_epoch=row["lease_epoch"],
    )
    run.record_output(tx, task_id)


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
