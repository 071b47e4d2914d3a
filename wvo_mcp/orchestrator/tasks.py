"""The tasks area: creation, the roadmap, schedules, reads, reports and snapshots (services/tasks).

Fronts services/tasks, schedules, roadmap_update and reports, and git's snapshots of a
checkpoint (a diff, a rollback), which run outside any transaction."""

from collections.abc import Sequence
from functools import partial
from typing import Any

import anyio

from wvo_mcp import timeutil
from wvo_mcp.errors import NotFound, ValidationFailed
from wvo_mcp.git import snapshots
from wvo_mcp.models import (
    Checkpoint,
    CreateResult,
    Scheduled,
    StatusReport,
    TaskDetail,
    TaskPage,
    TaskSpec,
)
from wvo_mcp.orchestrator.base import Facade
from wvo_mcp.rules.run_charges import RunCharge
from wvo_mcp.services import reports, roadmap_update, schedules, tasks
from wvo_mcp.store import Tx


class TasksFacade(Facade):
    async def create_tasks(self, specs: Sequence[TaskSpec], actor: str) -> CreateResult:
        return await self.db.write(
            partial(schedules.create_tasks, specs=specs, actor=actor, now=self.clock())
        )

    async def update_roadmap(
        self, specs: Sequence[TaskSpec], actor: str, dry_run: bool = False
    ) -> roadmap_update.RoadmapUpdate:
        """An edited roadmap applied (`import --update`), or with `dry_run` what it would do."""
        if dry_run:
            return await self.db.read(partial(roadmap_update.plan, specs=specs))
        return await self.db.write(
            partial(schedules.apply_roadmap, specs=specs, actor=actor, now=self.clock())
        )

    async def schedules_due(self) -> list[str]:
        """The tasks made because their schedule's time came (the monitor's leader's tick)."""
        return await self.db.write(partial(schedules.make_due_tasks, now=self.clock()))

    async def schedules(self) -> list[Scheduled]:
        return await self.db.read(schedules.listed)

    async def unschedule(self, schedule: str) -> str:
        return await self.db.write(partial(schedules.stop, schedule=schedule, now=self.clock()))

    async def get_task(self, task_id: str) -> TaskDetail:
        return await self.db.read(partial(tasks.get_task, task_id=task_id))

    async def list_tasks(
        self,
        *,
        status: str | None = None,
        epic_id: str | None = None,
        milestone_id: str | None = None,
        tag: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> TaskPage:
        return await self.db.read(
            partial(
                tasks.list_tasks,
                status=status,
                epic_id=epic_id,
                milestone_id=milestone_id,
                tag=tag,
                limit=limit,
                cursor=cursor,
            )
        )

    async def note(self, task_id: str, actor: str, kind: str, reason: str) -> None:
        """An event on a task's audit trail that moves nothing (e.g. the autopilot's record
        of a worker's commits)."""

        def write(tx: Tx) -> None:
            if tx.one("task_by_id", (task_id,)) is None:
                raise NotFound(f"no task with id {task_id!r}")
            tasks.record_event(
                tx, task_id, at=timeutil.to_text(self.clock()), actor=actor, kind=kind,
                reason=reason,
            )  # fmt: skip

        await self.db.write(write)

    async def status_report(self, agent_id: str, top: int = 5) -> StatusReport:
        return await self.db.read(
            partial(
                reports.status_report,
                settings=self.settings,
                agent_id=agent_id,
                top=top,
                now=self.clock(),
                providers=self.providers,
            )
        )

    async def export_tasks(self) -> list[dict[str, Any]]:
        return await self.db.read(reports.export_tasks)

    async def completions(self) -> dict[str, list[str]]:
        return await self.db.read(reports.completions)

    async def checkpoints(self, task_id: str) -> list[Checkpoint]:
        return await self.db.read(partial(tasks.checkpoints, task_id=task_id))

    async def task_view(
        self, task_id: str, events_limit: int = 200, runs_limit: int = 50
    ) -> tasks.TaskView:
        """A task's detail, its `events_limit` newest events, every checkpoint and its
        newest sandbox runs and verifications, in one read."""
        return await self.db.read(
            partial(tasks.view, task_id=task_id, events_limit=events_limit, runs_limit=runs_limit)
        )

    async def run_charges(self, task_id: str, limit: int = 50) -> list[RunCharge]:
        """What each of the task's `limit` newest autopilot runs was charged, in time order."""
        return await self.db.read(partial(tasks.charges, task_id=task_id, limit=limit))

    async def checkpoint_diff(
        self, task_id: str, seq: int, max_bytes: int = 256 * 1024
    ) -> tuple[str, bool]:
        """A checkpoint's git snapshot against the HEAD it was taken on: (the patch, cut at
        max_bytes?). Reads git objects only; nothing in the workspace changes."""
        head, commit = await self.db.read(partial(tasks.snapshot, task_id=task_id, seq=seq))
        git = self.git
        if git is None:
            raise ValidationFailed(
                f"{self.settings.workspace_root.resolve()} is not in a git repository"
            )
        return await anyio.to_thread.run_sync(snapshots.snapshot_diff, git, head, commit, max_bytes)

    async def rollback(self, task_id: str, seq: int, *, force: bool, apply: bool) -> str:
        """Restore the workspace's files from a checkpoint's snapshot; returns what changes."""
        commit = await self.db.read(partial(tasks.snapshot_commit, task_id=task_id, seq=seq))
        git = self.git
        if git is None:
            raise ValidationFailed(
                f"{self.settings.workspace_root.resolve()} is not in a git repository"
            )
        changes = await anyio.to_thread.run_sync(snapshots.diff_stat, git, commit)
        if apply:
            await anyio.to_thread.run_sync(partial(snapshots.restore, git, commit, force=force))
        return changes
