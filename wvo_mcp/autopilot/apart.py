"""What each task touches, so ready work touching nothing busy launches first (Apart.order).

Keeping work apart: what each task touches (what it declares, and what its branch
changed), so ready work that touches nothing running or queued launches first and fewer
submissions come back with a conflict. A preference, never a lock (dispatch.apart_first).

Carries out `rules/merge_queue.py`."""

from collections.abc import Callable, Sequence

from wvo_mcp.autopilot import dispatch
from wvo_mcp.autopilot.landing import lander
from wvo_mcp.autopilot.repos import Repos
from wvo_mcp.git import branch_name, stacking
from wvo_mcp.models import RankedTask
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import merge_queue


class Apart:
    def __init__(
        self, orchestrator: Orchestrator, repos: Repos, lander: lander.Lander, enabled: bool
    ) -> None:
        self.orchestrator = orchestrator
        self.repos = repos
        self.git = repos.git
        self.lander = lander
        self.enabled = enabled  # --no-conflict-avoidance turns it off
        self._declared: dict[str, list[str]] = {}  # task -> the files it declares
        self._answers: dict[tuple[str, ...], list[str]] = {}  # git's, about commits
        self._here: set[str] = set()  # queued commits found here: an object stays

    @property
    def avoiding(self) -> bool:
        return self.enabled and bool(self.lander.onto)

    async def order(self, ranked: list[RankedTask], busy_tasks: Sequence[str]) -> list[RankedTask]:
        """Ready work that touches nothing a running (`busy_tasks`) or queued task touches
        goes first. A task with a branch is also merged (git merge-tree) with each queued
        submission."""
        target = self.lander.target.ref
        if not self.avoiding:
            return ranked
        busy: list[str] = []
        for task_id in busy_tasks:
            busy += await self.touches(task_id)
        queued = [
            e.commit
            for e, _ in await self.orchestrator.landing_queue()
            if e.state != "held" and await self._is_here(e.commit)
        ]  # another host's submission, not fetched here, is left out
        for commit in queued:
            busy += await self._cached(("changed", commit), self.git.changed, commit, target)
        if not busy:
            return ranked
        clashes: list[bool] = []
        for task in ranked:
            mine = await self.touches(task.id)
            clash = merge_queue.overlaps(mine, busy)
            branch = branch_name(task.id)
            tip = None if clash else await self.repos.in_repo(self.git.branch_tip, branch)
            if tip is not None:
                for commit in queued:
                    if await self._cached(("conflicts", tip, commit), stacking.conflicts,
                                          self.git, tip, commit):  # fmt: skip
                        clash = True
                        break
            clashes.append(clash)
        return dispatch.apart_first(ranked, clashes)

    async def _is_here(self, commit: str) -> bool:
        if commit not in self._here and await self.repos.in_repo(self.git.has_commit, commit):
            self._here.add(commit)
        return commit in self._here

    async def touches(self, task_id: str) -> list[str]:
        """What a task declares it touches, and what its branch changed, if it has one."""
        found = self._declared.get(task_id)
        if found is None:
            detail = await self.orchestrator.get_task(task_id)
            found = self._declared[task_id] = merge_queue.declared(detail.metadata)
        branch = branch_name(task_id)
        tip = await self.repos.in_repo(self.git.branch_tip, branch)
        if tip is not None:
            found = found + await self._cached(
                ("changed", tip), self.git.changed, tip, self.lander.target.ref
            )
        return found

    async def _cached(
        self, key: tuple[str, ...], fn: Callable[..., list[str]], *args: object
    ) -> list[str]:
        """Git's answers about commits never change: asked once per run."""
        if key not in self._answers:
            self._answers[key] = await self.repos.in_repo(fn, *args)
        return self._answers[key]
