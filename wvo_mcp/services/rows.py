"""Turning task rows into the public models, and scoring a row.

Carries out `rules/wsjf.py`."""

import json
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel

from wvo_mcp import timeutil
from wvo_mcp.models import Checkpoint, ClaimedTask, Event, Note, RankedTask, TaskSummary
from wvo_mcp.rules import wsjf
from wvo_mcp.rules.transitions import Status
from wvo_mcp.store import Row

M = TypeVar("M", bound=BaseModel)


def model(cls: type[M], row: Row) -> M:
    """A model whose fields are all columns of the row, by name."""
    return cls.model_validate({name: row[name] for name in cls.model_fields})


def score(
    *,
    business_value: int,
    time_criticality: int,
    risk_reduction: int,
    dependents: int,
    job_size: int,
    due_at: str | None,
    now: datetime,
) -> wsjf.Breakdown:
    to_due = None if due_at is None else (timeutil.from_text(due_at) - now).total_seconds()
    return wsjf.breakdown(
        business_value=business_value,
        time_criticality=wsjf.time_criticality(time_criticality, to_due),
        risk_reduction=risk_reduction,
        open_dependents=dependents,
        job_size=job_size,
    )


def breakdown(row: Row) -> wsjf.Breakdown:
    return wsjf.breakdown(
        business_value=row["business_value"],
        time_criticality=row["effective_time_criticality"],
        risk_reduction=row["risk_reduction"],
        open_dependents=row["dependents"],
        job_size=row["job_size"],
    )


def summary(row: Row) -> TaskSummary:
    return TaskSummary(
        id=row["id"],
        title=row["title"],
        status=Status(row["status"]),
        epic_id=row["epic_id"],
        milestone_id=row["milestone_id"],
        complexity=row["complexity"],
        score=row["wsjf_score"],
        attempts=row["attempts"],
        assigned_to=row["assigned_to"],
    )


def ranked(row: Row, explain: bool = False) -> RankedTask:
    return RankedTask(
        id=row["id"],
        title=row["title"],
        epic_id=row["epic_id"],
        score=row["wsjf_score"],
        breakdown=breakdown(row) if explain else None,
    )


def claimed(row: Row) -> ClaimedTask:
    return ClaimedTask(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        epic_id=row["epic_id"],
        milestone_id=row["milestone_id"],
        complexity=row["complexity"],
        score=row["wsjf_score"],
        tags=json.loads(row["tags"]),
        due_at=row["due_at"],
        metadata=json.loads(row["metadata"]),
    )


def checkpoint(row: Row | None) -> Checkpoint | None:
    if row is None:
        return None
    return Checkpoint(
        seq=row["seq"],
        agent_id=row["agent_id"],
        summary=row["summary"],
        next_steps=row["next_steps"],
        progress=row["progress"],
        files=json.loads(row["files"]),
        created_at=row["created_at"],
        git_head=row["git_head"],
        git_ref=row["git_ref"],
        sandbox_run=row["sandbox_run"],
    )


def event(row: Row) -> Event:
    return Event(
        at=row["at"],
        actor=row["actor"],
        kind=row["kind"],
        from_status=row["from_status"],
        to_status=row["to_status"],
        reason=row["reason"],
        lease_epoch=row["lease_epoch"],
    )


def roadmap_entry(row: Row) -> dict[str, object]:
    """A task as roadmap YAML: only what a planner writes, defaults left out."""
    entry: dict[str, object] = {"id": row["id"], "title": row["title"]}
    for key in ("description", "epic_id", "milestone_id"):
        if row[key]:
            entry[key] = row[key]
    for key in ("complexity", "business_value", "time_criticality", "risk_reduction", "job_size"):
        entry[key] = row[key]
    if row["due_at"]:
        entry["due_at"] = row["due_at"]
    if row["not_before"] and not row["attempts"]:  # the plan's own, not a retry's back-off
        entry["not_before"] = row["not_before"]
    tags = json.loads(row["tags"])
    if tags:
        entry["tags"] = tags
    if row["requires_approval"]:
        entry["requires_approval"] = True
    if row["max_attempts"] != 3:
        entry["max_attempts"] = row["max_attempts"]
    metadata = json.loads(row["metadata"])
    if metadata:
        entry["metadata"] = metadata
    if row["verify_command"] is not None:
        entry["verify_command"] = verify_command(row)
    return entry


def verify_command(row: Row) -> str | list[str] | None:
    raw = row["verify_command"]
    command: str | list[str] | None = None if raw is None else json.loads(raw)
    return command


def note(row: Row) -> Note:
    return Note(
        task_id=row["task_id"],
        kind=row["kind"],
        text=row["body"],
        author=row["author"],
        at=row["created_at"],
    )


def literal(text: str) -> str:
    """`text` for a LIKE pattern written `ESCAPE '\\'`: its `%` and `_` mean themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
