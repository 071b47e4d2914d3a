"""Creating, reading and listing tasks (transaction functions run by the store).

Carries out `rules/graph.py`, and `rules/wsjf.py` for a task's stored score."""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wvo_mcp import timeutil
from wvo_mcp.errors import NotFound, ValidationFailed
from wvo_mcp.models import (
    Checkpoint,
    CreateResult,
    DependencyRef,
    Event,
    TaskDetail,
    TaskPage,
    TaskSpec,
)
from wvo_mcp.rules import graph, run_charges, wsjf
from wvo_mcp.rules.pauses import Paused
from wvo_mcp.rules.run_charges import RunCharge
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import rows
from wvo_mcp.store import Row, Tx

RECENT_EVENTS = 10
NOTES_SHOWN = 20  # a task's newest notes, in task_get and in a delivery


def record_event(
    tx: Tx,
    task_id: str,
    *,
    at: str,
    actor: str,
    kind: str,
    from_status: str | None = None,
    to_status: str | None = None,
    reason: str | None = None,
    lease_epoch: int | None = None,
) -> None:
    tx.send(
        "insert_event",
        (task_id, at, actor, kind, from_status, to_status, reason, lease_epoch),
    )


def _existing(tx: Tx, ids: Sequence[str]) -> dict[str, str]:
    """id -> status for those of `ids` that exist."""
    if not ids:
        return {}
    found = tx.all("task_statuses", (json.dumps(list(ids)),))
    return {row["id"]: row["status"] for row in found}


class IdsTaken(ValidationFailed):
    """A batch names ids that tasks already have."""


def create_tasks(tx: Tx, specs: Sequence[TaskSpec], actor: str, now: datetime) -> CreateResult:
    """All or nothing: any refusal raises before a row is written."""
    if not specs:
        raise ValidationFailed("tasks is empty; pass at least one task")
    ids = _batch_ids(specs)
    seen = set(ids)
    clash = _existing(tx, ids)
    if clash:
        raise IdsTaken(
            f"task ids already exist: {', '.join(sorted(clash)[:10])}; "
            "choose new ids or omit `id` to have one generated"
        )
    edges = {
        task_id: list(dict.fromkeys(spec.depends_on))
        for task_id, spec in zip(ids, specs, strict=True)
    }
    outside = sorted({dep for deps in edges.values() for dep in deps} - seen)
    known = _existing(tx, outside)  # id -> status
    graph.check_dependencies(
        edges, edges, {*seen, *known}, "existing task ids or on ids created in the same batch"
    )

    dependents: dict[str, int] = {}
    for deps in edges.values():
        for dep in deps:
            dependents[dep] = dependents.get(dep, 0) + 1
    stamp = timeutil.to_text(now)
    task_rows, ready, events = [], [], []
    for task_id, spec in zip(ids, specs, strict=True):
        unmet = sum(1 for dep in edges[task_id] if known.get(dep) != Status.DONE)
        status = Status.PENDING
        if unmet == 0:
            status = Status.AWAITING_APPROVAL if spec.requires_approval else Status.PENDING
            if status is Status.PENDING and (spec.not_before is None or spec.not_before <= now):
                ready.append(task_id)
        task_rows.append(_task_row(task_id, spec, status, unmet, dependents.get(task_id, 0), now))
        events.append((task_id, stamp, actor, "created", None, status.value, None, None))
    tx.many("insert_task", task_rows)
    tx.many(
        "insert_dependency",
        [(task_id, dep) for task_id, deps in edges.items() for dep in deps],
    )
    tx.many("insert_event", events)
    # metadata.review: its holder finishes it only as far as needs_review (transitions.Gate).
    tx.many(
        "raise_gate",
        [
            {"id": task_id, "gate": "review"}
            for task_id, spec in zip(ids, specs, strict=True)
            if spec.metadata.get("review") is True
        ],
    )
    # Existing tasks that gained dependents now enable more work: re-rank them.
    for dep in outside:
        row = tx.one("task_by_id", (dep,))
        assert row is not None
        rescore(tx, row, now, extra_dependents=dependents[dep])
    return CreateResult(created=ids, ready=ready)


def _batch_ids(specs: Sequence[TaskSpec]) -> list[str]:
    """Each spec's id (generated when omitted); one given twice is refused."""
    ids = [spec.id or f"t-{uuid.uuid4().hex[:12]}" for spec in specs]
    seen: set[str] = set()
    for task_id in ids:
        if task_id in seen:
            raise ValidationFailed(f"task id {task_id!r} appears twice in this batch")
        seen.add(task_id)
    return ids


def _task_row(
    task_id: str, spec: TaskSpec, status: Status, unmet: int, dependents: int, now: datetime
) -> dict[str, Any]:
    """A new task's row, with its WSJF score."""
    stamp = timeutil.to_text(now)
    job_size = spec.job_size or wsjf.default_job_size(spec.complexity)
    due = None if spec.due_at is None else timeutil.to_text(spec.due_at)
    parts = rows.score(
        business_value=spec.business_value,
        time_criticality=spec.time_criticality,
        risk_reduction=spec.risk_reduction,
        dependents=dependents,
        job_size=job_size,
        due_at=due,
        now=now,
    )
    return {
        "id": task_id,
        "title": spec.title,
        "description": spec.description,
        "epic_id": spec.epic_id,
        "milestone_id": spec.milestone_id,
        "status": status.value,
        "complexity": spec.complexity,
        "business_value": spec.business_value,
        "time_criticality": spec.time_criticality,
        "risk_reduction": spec.risk_reduction,
        "job_size": job_size,
        "due_at": due,
        "tags": json.dumps(spec.tags) if spec.tags else "[]",
        "requires_approval": int(spec.requires_approval),
        "max_attempts": spec.max_attempts,
        "unmet_dependencies": unmet,
        "dependents": dependents,
        "effective_time_criticality": parts.time_criticality,
        "wsjf_score": parts.score,
        "metadata": json.dumps(spec.metadata) if spec.metadata else "{}",
        "verify_command": None if spec.verify_command is None else json.dumps(spec.verify_command),
        "not_before": None if spec.not_before is None else timeutil.to_text(spec.not_before),
        "now": stamp,
    }


def rescore(tx: Tx, row: Row, now: datetime, extra_dependents: int = 0) -> None:
    tx.run("set_score", score_params(row, now, extra_dependents))


def score_params(row: Row, now: datetime, extra_dependents: int = 0) -> tuple[Any, ...]:
    """`set_score`'s parameters for a task row that gains `extra_dependents`."""
    count = row["dependents"] + extra_dependents
    parts = rows.score(
        business_value=row["business_value"],
        time_criticality=row["time_criticality"],
        risk_reduction=row["risk_reduction"],
        dependents=count,
        job_size=row["job_size"],
        due_at=row["due_at"],
        now=now,
    )
    return (count, parts.time_criticality, parts.score, row["id"])


def get_task(tx: Tx, task_id: str) -> TaskDetail:
    row = tx.one("task_by_id", (task_id,))
    if row is None:
        raise NotFound(f"no task with id {task_id!r}; task_list shows existing ids")
    return detail(tx, row)


def detail(tx: Tx, row: Row) -> TaskDetail:
    task_id = row["id"]
    # Asked at once: on PostgreSQL they go out with the first read below.
    pauses = tx.ask("pauses")
    notes = tx.ask("notes_of", (task_id, NOTES_SHOWN))
    events = tx.all("recent_events", (task_id, RECENT_EVENTS))
    return TaskDetail(
        **rows.summary(row).model_dump(),
        description=row["description"],
        business_value=row["business_value"],
        time_criticality=row["time_criticality"],
        risk_reduction=row["risk_reduction"],
        job_size=row["job_size"],
        breakdown=rows.breakdown(row),
        due_at=row["due_at"],
        tags=json.loads(row["tags"]),
        requires_approval=bool(row["requires_approval"]),
        max_attempts=row["max_attempts"],
        not_before=row["not_before"],
        lease_expires_at=row["lease_expires_at"],
        lease_epoch=row["lease_epoch"],
        metadata=json.loads(row["metadata"]),
        verify_command=rows.verify_command(row),
        gate=row["gate"],
        submitted_commit=row["submitted_commit"],
        submitted_by=row["submitted_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        completed_at=row["completed_at"],
        dependencies=[
            DependencyRef(id=r["id"], status=r["status"])
            for r in tx.all("dependencies_of", (task_id,))
        ],
        dependents=[
            DependencyRef(id=r["id"], status=r["status"])
            for r in tx.all("dependents_of", (task_id,))
        ],
        recent_events=[rows.event(r) for r in reversed(events)],
        latest_checkpoint=rows.checkpoint(tx.one("latest_checkpoint", (task_id,))),
        paused=Paused.of(pauses.all()).why(task_id, row["epic_id"]),
        notes=[rows.note(r) for r in reversed(notes.all())],
    )


def list_tasks(
    tx: Tx,
    *,
    status: str | None = None,
    epic_id: str | None = None,
    milestone_id: str | None = None,
    tag: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> TaskPage:
    found = tx.all(
        "list_tasks",
        {
            "status": status,
            "epic_id": epic_id,
            "milestone_id": milestone_id,
            "tag": tag,
            "after": cursor or "",
            "limit": limit + 1,
        },
    )
    page = [rows.summary(row) for row in found[:limit]]
    next_cursor = page[-1].id if len(found) > limit else None
    return TaskPage(tasks=page, next_cursor=next_cursor)


def checkpoints(tx: Tx, task_id: str) -> list[Checkpoint]:
    if tx.one("task_by_id", (task_id,)) is None:
        raise NotFound(f"no task with id {task_id!r}; task_list shows existing ids")
    return [c for c in map(rows.checkpoint, tx.all("checkpoints_of", (task_id,))) if c]


def snapshot_commit(tx: Tx, task_id: str, seq: int) -> str:
    row = tx.one("checkpoint_by_seq", (task_id, seq))
    if row is None:
        raise NotFound(f"task {task_id!r} has no checkpoint {seq}; `wvo-mcp checkpoints ID`")
    if row["git_commit"] is None:
        raise ValidationFailed(
            f"checkpoint {seq} of {task_id!r} was taken without a git snapshot; nothing to restore"
        )
    commit: str = row["git_commit"]
    return commit


def events(tx: Tx, task_id: str, limit: int) -> list[Event]:
    """A task's `limit` newest events, in time order."""
    if tx.one("task_by_id", (task_id,)) is None:
        raise NotFound(f"no task with id {task_id!r}; task_list shows existing ids")
    return [rows.event(r) for r in reversed(tx.all("recent_events", (task_id, limit)))]


@dataclass(frozen=True)
class RunView:
    """A sandbox run or verification: its event, and its output tails when they were kept
    (runs recorded before the dashboard kept them, and skipped gates, have none)."""

    event: Event
    stdout: str | None
    stderr: str | None


@dataclass(frozen=True)
class TaskView:
    """All the dashboard shows of one task, read in one snapshot."""

    task: TaskDetail
    events: list[Event]  # the newest, in time order
    checkpoints: list[Checkpoint]
    runs: list[RunView]
    charges: list[RunCharge]  # the newest autopilot runs' charges, in time order


def view(tx: Tx, task_id: str, events_limit: int, runs_limit: int) -> TaskView:
    return TaskView(
        task=get_task(tx, task_id),
        events=events(tx, task_id, events_limit),
        checkpoints=checkpoints(tx, task_id),
        runs=runs(tx, task_id, runs_limit),
        charges=charges(tx, task_id, runs_limit),
    )


def charges(tx: Tx, task_id: str, limit: int) -> list[RunCharge]:
    """What each of a task's `limit` newest autopilot runs was charged, in time order."""
    found = (
        run_charges.read(r["at"], r["reason"])
        for r in reversed(tx.all("task_charges", (task_id, limit)))
    )
    return [c for c in found if c is not None]


def runs(tx: Tx, task_id: str, limit: int) -> list[RunView]:
    """A task's `limit` newest sandbox runs and verifications, in time order."""
    return [
        RunView(rows.event(r), r["stdout"], r["stderr"])
        for r in reversed(tx.all("task_runs", (task_id, limit)))
    ]


def snapshot(tx: Tx, task_id: str, seq: int) -> tuple[str | None, str]:
    """(the HEAD it was taken on, the snapshot commit) of a checkpoint's git snapshot."""
    row = tx.one("checkpoint_by_seq", (task_id, seq))
    if row is None:
        raise NotFound(f"task {task_id!r} has no checkpoint {seq}")
    if row["git_commit"] is None:
        raise ValidationFailed(f"checkpoint {seq} of {task_id!r} has no git snapshot")
    return row["git_head"], row["git_commit"]
