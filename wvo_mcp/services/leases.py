"""A holder's lease: heartbeats, checkpoints, its sandbox runs and usage, and losing it.

A lease is what lets one agent work a task, so everything here checks the holder's token or
renews its lease, and nothing here moves a task's status (services/moves.py does). A lease
lost to silence counts as a failed attempt: `lose_lease` carries out `rules/retry.py` for it
(a holder's own failure is retried by services/moves.py).

Carries out `rules/transitions.py`."""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import LeaseLost, NotFound, ValidationFailed
from wvo_mcp.git import Snapshot, ref_name
from wvo_mcp.models import CheckpointResult, LeaseResult
from wvo_mcp.rules import retry
from wvo_mcp.rules.pauses import Paused
from wvo_mcp.rules.transitions import Actor, Status, check_transition
from wvo_mcp.services import route_outcomes
from wvo_mcp.services.tasks import record_event
from wvo_mcp.store import Alone, Row, Tx


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
    # The renewal also answers notes_due (what every call asks): one statement fewer.
    renewed = tx.ask("renew_held_lease", {**given, "agent": agent_id})
    stale = timeutil.to_text(now - SEEN_RESOLUTION)
    tx.send("touch_agent_holding", {**given, "agent": agent_id, "stale": stale})
    return lambda: _renewal(renewed.one(), task_id, agent_id)


def renew_alone(
    task_id: str, token: str, agent_id: str, lease_seconds: int | None, now: datetime
) -> Alone[LeaseResult | None]:
    """`renew` as one call of PostgreSQL's heartbeat_held (migration 0016), which runs its
    two statements with the locks before them. Idempotent: the same `now` renews to the
    same lease end, and a sighting already written is not written again."""
    stale = timeutil.to_text(now - SEEN_RESOLUTION)
    args = (task_id, token, lease_seconds or None, timeutil.to_text(now), agent_id, stale)
    return Alone("heartbeat_held", args, lambda row: _renewal(row, task_id, agent_id))


def _renewal(row: Row | None, task_id: str, agent_id: str) -> LeaseResult | None:
    if row is None:
        return None
    renewal = LeaseResult(task_id=task_id, lease_expires_at=row["lease_expires_at"])
    if row["notes_due"] is None:
        renewal._no_notes_for = agent_id
    return renewal


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
) -> Callable[[], CheckpointResult]:
    """A holder's checkpoint (Database.write_then_read): its seq is numbered by the insert
    itself and read once the transaction is answered, so nothing waits between the task's
    row and the COMMIT."""
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
    # The ref is the prefix the statement appends the seq to (ref_name's, seq left off).
    prefix = None if snapshot is None else ref_name(task_id, 0).removesuffix("0")
    added = tx.ask(
        "add_checkpoint",
        {
            "task_id": task_id,
            "agent_id": agent_id,
            "lease_epoch": row["lease_epoch"],
            "summary": summary,
            "next_steps": next_steps,
            "progress": progress,
            "files": json.dumps(list(files)),
            "created_at": stamp,
            "git_head": None if snapshot is None else snapshot.head,
            "git_commit": None if snapshot is None else snapshot.commit,
            "ref_prefix": prefix,
            "sandbox_run": run,
        },
    )
    tx.send("prune_checkpoints", (task_id, CHECKPOINTS_KEPT))
    if not waiting:
        tx.send("renew_lease", (expires, row["lease_seconds"], stamp, task_id))
    seen(tx, agent_id, now)

    def read() -> CheckpointResult:
        added_row = added.one()
        assert added_row is not None  # an INSERT ... SELECT of one row
        return CheckpointResult(
            task_id=task_id,
            seq=added_row["seq"],
            lease_expires_at=expires,
            git_head=None if snapshot is None else snapshot.head,
            git_ref=added_row["git_ref"],
        )

    return read


def checkpoint_alone(
    task_id: str,
    token: str,
    agent_id: str,
    summary: str,
    next_steps: str | None,
    progress: int | None,
    files: Sequence[str],
    now: datetime,
) -> Alone[CheckpointResult | None]:
    """A plain `checkpoint` (no snapshot, no sandbox run) as one call of PostgreSQL's
    checkpoint_held (migration 0018), which runs its statements with the locks before them.
    None when `token` did not hold the task, and then nothing changed (`checkpoint` says
    why). Idempotent: the same call again answers the checkpoint it added."""
    stale = timeutil.to_text(now - SEEN_RESOLUTION)
    stamp = timeutil.to_text(now)
    args = (task_id, token, agent_id, summary, next_steps, progress, json.dumps(list(files)),
            stamp, CHECKPOINTS_KEPT, stale)  # fmt: skip

    def read(row: Row | None) -> CheckpointResult | None:
        if row is None:
            return None
        added = CheckpointResult(
            task_id=task_id, seq=row["seq"], lease_expires_at=row["lease_expires_at"]
        )
        if row["notes_due"] is None:
            added._no_notes_for = agent_id
        return added

    return Alone("checkpoint_held", args, read)


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


def charging(tx: Tx, task_id: str, token: str) -> Row:
    """The task's row (locked) if `token` holds its lease, waiting for approval or not: only
    its holder charges it usage (services/usage.py:record_task_usage); else LeaseLost."""
    return _held(tx, task_id, token, waiting_ok=True)


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
