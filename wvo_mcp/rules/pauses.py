"""Which tasks a person's pauses hold back (pure): a task, its epic, or the whole fleet.

Carried out by `wvo_mcp/services/pauses.py`, `wvo_mcp/services/picking.py` (a claim's),
`wvo_mcp/services/claims.py` (plan_next's) and `wvo_mcp/autopilot/worker_process.py`."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from wvo_mcp.errors import ValidationFailed

# What a person's pause, resume or message reaches: a task, an epic, or the whole fleet
# (key "").
Scope = Literal["task", "epic", "fleet"]


def scope_of(task_id: str | None, epic_id: str | None, everyone: bool) -> tuple[Scope, str]:
    """The one scope a person named: a task, an epic, or the whole fleet."""
    given: list[tuple[Scope, str]] = [("fleet", "")] if everyone else []
    given += [("task", task_id)] if task_id else []
    given += [("epic", epic_id)] if epic_id else []
    if len(given) != 1:
        raise ValidationFailed(
            "name exactly one of: a task (task_id / --task), an epic (epic_id / --epic), or "
            "the whole fleet (all / --all). Nothing was changed"
        )
    return given[0]


@dataclass(frozen=True)
class Paused:
    """The pauses in force, as a claim reads them (usually none)."""

    fleet: str | None = None  # who paused it, and when
    epics: Mapping[str, str] = field(default_factory=dict)
    tasks: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Iterable[Any]) -> "Paused":
        """From the `pauses` rows (scope, key, author, created_at)."""
        said = {(r["scope"], r["key"]): f"{r['author']} since {r['created_at']}" for r in rows}
        return cls(
            fleet=said.get(("fleet", "")),
            epics={k: v for (s, k), v in said.items() if s == "epic"},
            tasks={k: v for (s, k), v in said.items() if s == "task"},
        )

    def __bool__(self) -> bool:
        return bool(self.fleet or self.epics or self.tasks)

    def why(self, task_id: str, epic_id: str | None) -> str | None:
        """Why this task may not be claimed now, or None."""
        if self.fleet is not None:
            return f"the fleet is paused by {self.fleet}"
        if epic_id is not None and epic_id in self.epics:
            return f"its epic {epic_id!r} is paused by {self.epics[epic_id]}"
        if task_id in self.tasks:
            return f"task {task_id!r} is paused by {self.tasks[task_id]}"
        return None

    def summary(self) -> str | None:
        """What is paused, in a line (plan_next's `paused`)."""
        if not self:
            return None
        if self.fleet is not None:
            return f"the fleet is paused by {self.fleet}: nothing is claimable until it resumes"
        parts = [f"epic {e}" for e in self.epics] + [f"task {t}" for t in self.tasks]
        return "paused by a person, left out: " + ", ".join(parts)
