"""Applies an edited roadmap (`import --update`): new definitions, never new progress.

Applying an edited roadmap (`wvo-mcp import --update FILE`): the tasks it names take its
definitions, its new tasks are created, and nothing else moves.

A roadmap carries definitions, not progress: no status is set from it, and work that is
held (claimed, waiting for a person's approval, waiting for its review or landing) or done
is never changed; such an entry is reported as skipped, with why. Tasks the file leaves
out are reported, never deleted or cancelled. `plan` only reads, so `--dry-run` shows
exactly what `apply` would do in the same state.

Carries out `rules/graph.py`.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wvo_mcp import timeutil
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.models import TaskSpec
from wvo_mcp.rules import wsjf
from wvo_mcp.rules.graph import check_dependencies
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services.moves import await_approval, gated
from wvo_mcp.services.tasks import create_tasks, score_params
from wvo_mcp.store import Row, Tx

# Why an entry for a task in each of these states is not applied.
LEFT_AS_IT_IS = {
    Status.IN_PROGRESS: "claimed: its holder works from the definition it was given; "
    "edit it once the task is back in pending",
    Status.AWAITING_APPROVAL: "waiting for a person's approval of what it says; approve or "
    "reject it first (`wvo-mcp approve ID` / `reject ID`)",
    Status.NEEDS_REVIEW: "its work is submitted for review or landing against this "
    "definition; edit it once that is decided",
    Status.DONE: "done is final; describe further work as a new task",
}

# The definition, field by field, as a roadmap entry writes it (everything but id).
FIELDS = (
    "title",
    "description",
    "epic_id",
    "milestone_id",
    "depends_on",
    "complexity",
    "business_value",
    "time_criticality",
    "risk_reduction",
    "job_size",
    "due_at",
    "tags",
    "requires_approval",
    "max_attempts",
    "metadata",
    "verify_command",
)


@dataclass(frozen=True)
class Entry:
    """One task the update changes, or skips: which fields of the file differ."""

    id: str
    title: str
    status: str
    fields: tuple[str, ...]
    why: str = ""  # set when skipped


@dataclass(frozen=True)
class Missing:
    id: str
    title: str
    status: str


@dataclass
class RoadmapUpdate:
    changed: list[Entry] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[Entry] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    # What `apply` writes (not for reporting): the definitions as stored, and each changed
    # task's new dependencies.
    stored: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    depends_on: dict[str, list[str]] = field(default_factory=dict, repr=False)
    new: list[TaskSpec] = field(default_factory=list, repr=False)
    old_edges: dict[str, list[str]] = field(default_factory=dict, repr=False)


def stored_definition(spec: TaskSpec) -> dict[str, Any]:
    """A spec's fields as their columns hold them (create_tasks writes the same)."""
    return {
        "title": spec.title,
        "description": spec.description,
        "epic_id": spec.epic_id,
        "milestone_id": spec.milestone_id,
        "complexity": spec.complexity,
        "business_value": spec.business_value,
        "time_criticality": spec.time_criticality,
        "risk_reduction": spec.risk_reduction,
        "job_size": spec.job_size or wsjf.default_job_size(spec.complexity),
        "due_at": None if spec.due_at is None else timeutil.to_text(spec.due_at),
        "tags": json.dumps(spec.tags) if spec.tags else "[]",
        "requires_approval": int(spec.requires_approval),
        "max_attempts": spec.max_attempts,
        "metadata": json.dumps(spec.metadata) if spec.metadata else "{}",
        "verify_command": None if spec.verify_command is None else json.dumps(spec.verify_command),
    }


def _differs(row: Row, stored: dict[str, Any], deps: list[str], old: list[str]) -> list[str]:
    changed = []
    for name in FIELDS:
        if name == "depends_on":
            if set(deps) != set(old):
                changed.append(name)
        elif name in ("tags", "metadata", "verify_command"):
            # As JSON values with sorted keys: key order does not count, but 1, 1.0 and true
            # (equal in Python) do.
            if _canonical(row[name]) != _canonical(stored[name]):
                changed.append(name)
        elif name == "requires_approval":
            if bool(row[name]) != bool(stored[name]):
                changed.append(name)
        elif row[name] != stored[name]:
            changed.append(name)
    return changed


def _canonical(text: str | None) -> str | None:
    return None if text is None else json.dumps(json.loads(text), sort_keys=True)


def plan(tx: Tx, specs: Sequence[TaskSpec]) -> RoadmapUpdate:
    """What applying `specs` would do, refusing (before anything is written) a file that
    could not be applied whole."""
    unnamed = [f"task #{n + 1} ({spec.title!r})" for n, spec in enumerate(specs) if spec.id is None]
    if unnamed:
        raise ValidationFailed(
            f"tasks without an id: {', '.join(unnamed[:10])}; with --update every task needs "
            "its `id` (a second run would otherwise add them again): give each one, as "
            "`wvo-mcp export` writes them"
        )
    ids = [str(spec.id) for spec in specs]
    seen: set[str] = set()
    for task_id in ids:
        if task_id in seen:
            raise ValidationFailed(f"task id {task_id!r} appears twice in this roadmap")
        seen.add(task_id)

    edges: dict[str, list[str]] = {}
    for row in tx.all("all_dependencies"):
        edges.setdefault(row["task_id"], []).append(row["depends_on_id"])
    existing = {row["id"]: row for row in tx.all("all_tasks")}
    result = RoadmapUpdate(old_edges=edges)
    graph = dict(edges)
    for task_id, spec in zip(ids, specs, strict=True):
        deps = list(dict.fromkeys(spec.depends_on))
        current = existing.get(task_id)
        if current is None:
            result.added.append(task_id)
            result.new.append(spec)
            graph[task_id] = deps
            continue
        stored = stored_definition(spec)
        changed = _differs(current, stored, deps, edges.get(task_id, []))
        if not changed:
            result.unchanged += 1
            continue
        status = Status(current["status"])
        if status in LEFT_AS_IT_IS:
            result.skipped.append(
                Entry(task_id, current["title"], status, tuple(changed), LEFT_AS_IT_IS[status])
            )
            continue
        result.changed.append(Entry(task_id, current["title"], status, tuple(changed)))
        result.stored[task_id] = stored
        result.depends_on[task_id] = deps
        graph[task_id] = deps
    result.missing = [
        Missing(task_id, row["title"], row["status"])
        for task_id, row in existing.items()
        if task_id not in seen
    ]

    check_dependencies(
        graph, [*result.depends_on, *result.added], {*existing, *result.added},
        "tasks that exist or that this roadmap adds",
        " (in the file, or from a task the file does not change)",
    )  # fmt: skip
    return result


def apply(tx: Tx, specs: Sequence[TaskSpec], actor: str, now: datetime) -> RoadmapUpdate:
    """Plan, then write it: all of it in this one transaction, or none of it."""
    result = plan(tx, specs)
    stamp = timeutil.to_text(now)
    if result.new:
        create_tasks(tx, result.new, actor, now)
    status_of = {r["id"]: r["status"] for r in tx.all("task_statuses", (_ids(result),))}
    more: dict[str, int] = {}  # dependents gained (or lost) by each task
    removed, added, definitions = [], [], []
    for entry in result.changed:
        old = set(result.old_edges.get(entry.id, []))
        new = result.depends_on[entry.id]
        for dep in old - set(new):
            removed.append((entry.id, dep))
            more[dep] = more.get(dep, 0) - 1
        for dep in new:
            if dep not in old:
                added.append((entry.id, dep))
                more[dep] = more.get(dep, 0) + 1
        unmet = sum(1 for dep in new if status_of.get(dep) != Status.DONE)
        definitions.append(
            {**result.stored[entry.id], "id": entry.id, "unmet": unmet, "now": stamp}
        )
    tx.many("delete_dependency", removed)
    tx.many("insert_dependency", added)
    tx.many("update_definition", definitions)
    tx.many(
        "insert_event",
        [
            (
                e.id,
                stamp,
                actor,
                "edited",
                None,
                None,
                f"import --update: {', '.join(e.fields)}",
                None,
            )
            for e in result.changed
        ],
    )
    tx.many(
        "raise_gate",
        [
            {"id": e.id, "gate": "review"}
            for e in result.changed
            if json.loads(result.stored[e.id]["metadata"]).get("review") is True
        ],
    )
    rescored = [e.id for e in result.changed] + [t for t, n in more.items() if n]
    fresh = tx.all("tasks_by_ids", (json.dumps(list(dict.fromkeys(rescored))),))
    tx.many("set_score", [score_params(row, now, more.get(row["id"], 0)) for row in fresh])
    for row in fresh:
        # A task that now needs approval waits for it, as a new one would: the one status
        # an update can move, and only to hold work back.
        if (
            row["id"] in result.stored
            and row["status"] == Status.PENDING
            and gated(row, Status.PENDING) is Status.AWAITING_APPROVAL
        ):
            await_approval(
                tx, row["id"], stamp, "its roadmap entry now requires approval before work starts"
            )
    return result


def _ids(result: RoadmapUpdate) -> str:
    """The dependencies of the changed tasks, as the JSON list `task_statuses` takes."""
    return json.dumps(sorted({dep for deps in result.depends_on.values() for dep in deps}))
