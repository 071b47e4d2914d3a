"""Tasks that come back on a schedule: each due time makes a new task from its entry.

Tasks that come back (rules/schedules.py says when): a roadmap entry with `every:` is a
task now and a schedule. Each time its time comes after its last task is done or
cancelled, it makes a new task, `<id>.<YYYYMMDD-HHMM>`, from the entry's definition. A
new task, not a new attempt: done is final, and each time keeps its own history, landing
and pull request. A time that comes while the last is still open waits for it, once.

The leader's monitor makes them each tick (`due`); the write that makes one moves the
schedule's last task only from the one it read, so however many hosts tick, one is made."""

import json
from collections.abc import Sequence
from datetime import datetime

from wvo_mcp import timeutil
from wvo_mcp.errors import NotFound
from wvo_mcp.models import CreateResult, Scheduled, ScheduledSpec, TaskSpec
from wvo_mcp.rules import schedules
from wvo_mcp.services import roadmap_update, tasks
from wvo_mcp.store import Tx

ACTOR = "schedule"


def create_tasks(tx: Tx, specs: Sequence[TaskSpec], actor: str, now: datetime) -> CreateResult:
    """tasks.create_tasks, and the schedules of the entries with `every`."""
    made = tasks.create_tasks(tx, specs, actor, now)
    keep(tx, specs, now)
    return made


def apply_roadmap(
    tx: Tx, specs: Sequence[TaskSpec], actor: str, now: datetime
) -> roadmap_update.RoadmapUpdate:
    """roadmap_update.apply (`import --update`), and the schedules of the entries with
    `every` (an entry that lost it keeps its schedule: `wvo-mcp schedules --stop ID`)."""
    done = roadmap_update.apply(tx, specs, actor, now)
    keep(tx, specs, now)
    return done


def keep(tx: Tx, specs: Sequence[TaskSpec], now: datetime) -> None:
    """Each scheduled entry's schedule made, or its definition updated (its next time
    recomputed only when `every` changed; a stopped one starts again)."""
    for spec in specs:
        if not isinstance(spec, ScheduledSpec) or spec.every is None or spec.id is None:
            continue
        definition = spec.model_dump(mode="json", exclude={"id", "every"}, exclude_unset=True)
        row = tx.one("schedule_of", {"id": spec.id})
        params = {"id": spec.id, "every": spec.every, "spec": json.dumps(definition)}
        if row is None:
            next_at = timeutil.to_text(schedules.next_after(spec.every, now))
            tx.run("schedule_insert", {**params, "next_at": next_at})
        elif row["every"] != spec.every or row["spec"] != params["spec"] or row["stopped_at"]:
            next_at = row["next_at"]
            if row["every"] != spec.every:
                next_at = timeutil.to_text(schedules.next_after(spec.every, now))
            tx.run("schedule_update", {**params, "next_at": next_at})


def make_due_tasks(tx: Tx, now: datetime) -> list[str]:
    """The tasks made because their schedule's time came: at most one open per schedule."""
    made = []
    for row in tx.all("schedules_due", {"now": timeutil.to_text(now)}):
        at = timeutil.from_text(row["next_at"])
        task_id = schedules.instance_id(row["id"], at)
        next_at = schedules.next_after(row["every"], max(now, at))
        moved = tx.run("schedule_made", {"id": row["id"], "task": task_id, "was": row["last_task"],
                                         "next_at": timeutil.to_text(next_at)})  # fmt: skip
        if moved != 1 or tx.one("task_by_id", (task_id,)) is not None:
            continue
        definition = json.loads(row["spec"])
        definition["metadata"] = {**definition.get("metadata", {}),
                                  "schedule": {"id": row["id"], "every": row["every"],
                                               "at": row["next_at"]}}  # fmt: skip
        spec = TaskSpec.model_validate({**definition, "id": task_id})
        spec.depends_on = [d for d in spec.depends_on if tx.one("task_by_id", (d,))]
        tasks.create_tasks(tx, [spec], f"{ACTOR}:{row['id']}", now)
        made.append(task_id)
    return made


def listed(tx: Tx, limit: int = 200) -> list[Scheduled]:
    return [
        Scheduled(id=r["id"], every=r["every"], last_task=r["last_task"],
                  last_status=r["last_status"], next_at=r["next_at"],
                  stopped=r["stopped_at"] is not None)
        for r in tx.all("schedules_listed", {"limit": limit})
    ]  # fmt: skip


def stop(tx: Tx, schedule: str, now: datetime) -> str:
    if tx.run("schedule_stop", {"id": schedule, "now": timeutil.to_text(now)}) != 1:
        if tx.one("schedule_of", {"id": schedule}) is None:
            raise NotFound(f"no schedule {schedule!r}: `wvo-mcp schedules` lists them")
        return f"schedule {schedule} was stopped already"
    return f"schedule {schedule} stopped: it makes no more tasks (its open one stays)"
