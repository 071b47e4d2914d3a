"""Read-only views a person looks at: the status report and the roadmap export."""

from datetime import datetime
from typing import Any

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.models import StatusReport
from wvo_mcp.providers import Providers
from wvo_mcp.services import flakes, issue_conversation, rows, schedules
from wvo_mcp.services.claims import plan_next
from wvo_mcp.store import Tx

# What moves on a task that stays put until a person acts (docs/operations.md).
WAY_OUT = {
    "asked": '`wvo-mcp answer {id} "…"` answers its question and lets it go on (`wvo-mcp '
    "inbox` shows it), or `wvo-mcp cancel {id}`",
    "blocked": "`wvo-mcp requeue {id}` once it can go on, or `wvo-mcp cancel {id}`",
    "needs_review": "`wvo-mcp requeue {id}` gives it to a worker again, or `wvo-mcp done {id}` "
    "once you landed it yourself",
}


def status_report(
    tx: Tx, settings: Settings, agent_id: str, top: int, now: datetime, providers: Providers
) -> StatusReport:
    """What is ready (each with its score's breakdown and its route), held, waiting on a
    person (approval, or blocked or held with the way out), and dead-lettered."""
    plan = plan_next(tx, settings, agent_id, top, None, now, providers, explain=True)
    holding = []
    for row in tx.all("in_progress"):
        claimed = timeutil.from_text(row["claimed_at"])
        expires = timeutil.from_text(row["lease_expires_at"])
        holding.append(
            {
                "id": row["id"],
                "title": row["title"],
                "assigned_to": row["assigned_to"],
                "held_seconds": round((now - claimed).total_seconds()),
                "lease_left_seconds": round((expires - now).total_seconds()),
                "attempt": row["attempts"] + 1,
            }
        )
    waiting = [
        {
            "id": row["id"],
            "title": row["title"],
            "holder": row["assigned_to"],
            "waiting_seconds": round((now - timeutil.from_text(row["updated_at"])).total_seconds()),
            "reason": row["reason"],
        }
        for row in tx.all("awaiting_approval")
    ]
    stopped = [
        {
            "id": row["id"],
            "title": row["title"],
            "status": row["status"],
            "waiting_seconds": round((now - timeutil.from_text(row["updated_at"])).total_seconds()),
            "reason": row["reason"],
            "way_out": WAY_OUT["asked" if row["asked"] else row["status"]].format(id=row["id"]),
        }
        for row in tx.all("stopped_for_a_person", (20,))
    ]
    return StatusReport(
        counts=plan.counts,
        in_progress=holding,
        awaiting_approval=waiting,
        paused=plan.paused,
        stopped=stopped,
        top_ready=plan.tasks,
        dead_letters=[rows.summary(r) for r in tx.all("dead_letters", (20,))],
        scheduled=schedules.listed(tx, 20),
        checks=flakes.gate(tx, now).checks,
        unsynced=issue_conversation.all_unsynced(tx),
    )


def export_tasks(tx: Tx) -> list[dict[str, Any]]:
    """Every task as a roadmap entry (the shape `import` reads)."""
    deps: dict[str, list[str]] = {}
    for row in tx.all("all_dependencies"):
        deps.setdefault(row["task_id"], []).append(row["depends_on_id"])
    every = {s.id: s.every for s in schedules.listed(tx, 100_000) if not s.stopped}
    exported = []
    for row in tx.all("all_tasks"):
        entry = rows.roadmap_entry(row)
        if row["id"] in deps:
            entry["depends_on"] = deps[row["id"]]
        if row["id"] in every:  # a schedule's first task: imported again, the schedule too
            entry["every"] = every[row["id"]]
        exported.append(entry)
    return exported


def completions(tx: Tx) -> dict[str, list[str]]:
    """task id -> the actors who completed it, per the audit trail."""
    done: dict[str, list[str]] = {}
    for row in tx.all("completions"):
        done.setdefault(row["task_id"], []).append(row["actor"])
    return done
