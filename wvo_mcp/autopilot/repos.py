"""The person's repository as the autopilot uses it: git calls, task folders, instructions.

The person's repository as the autopilot uses it: git calls one at a time off the event
loop, each task's folders (its repositories, one per run; its run logs: run_logs.py), the
project's instructions, and a landed task's repositories tidied away."""

import contextlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from wvo_mcp import removal
from wvo_mcp.autopilot.landing.target import Target
from wvo_mcp.errors import Fault
from wvo_mcp.git import Git, Unjudged, branch_name, judging, read_refs, trees

T = TypeVar("T")

INSTRUCTIONS = re.compile(r"CLAUDE\.md|AGENTS\.md")  # the project's, from the base commit
INSTRUCTIONS_BYTES = 64 * 1024


class Repos:
    def __init__(
        self,
        git: Git,
        worktrees: Path,
        runs: Path,
        target: Target,
        say: Callable[[str], None],
    ) -> None:
        self.git = git
        self.worktrees = worktrees
        self.runs = runs
        self.target = target  # where work lands: its tip is where new work starts
        self.say = say
        self._lock = anyio.Lock()

    async def in_repo(self, fn: Callable[..., T], *args: object) -> T:
        """A git call on the repository, off the event loop and one at a time."""
        async with self._lock:
            return await anyio.to_thread.run_sync(fn, *args)

    def task_dir(self, task_id: str) -> Path:
        """Where a task's repositories live: one per run, never reused."""
        return self.worktrees / branch_name(task_id).removeprefix("wvo/")

    def run_dir(self, task_id: str) -> Path:
        """Where a task's runs keep their logs."""
        run_dir = self.runs / branch_name(task_id).removeprefix("wvo/")
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir

    def objects(self) -> Path:
        """The person's object store, which every worker's repository borrows read-only."""
        return (self.git.common_dir / "objects").resolve()

    def branch_tip(self, branch: str) -> str | None:
        return self.git.branch_tip(branch)

    async def start_commit(self, branch: str, base: str) -> str:
        """Where an attempt starts: its branch's tip (the last attempt's submitted work),
        else the target's tip when merging (a remote's as last fetched), else the run's
        base."""
        tip = await self.in_repo(self.git.branch_tip, branch)
        if tip is not None:
            return tip
        if self.target.ref:
            tip = await self.in_repo(self.git.ref_tip, self.target.ref)
            if tip is not None:
                return tip
        return base

    async def bring(self, task_id: str) -> None:
        """With a remote: the task's latest submission, made on whichever host, onto its
        branch here, so its next attempt starts from it. While the remote is away, the
        attempt starts from what this host has."""
        reach = self.target.reach
        if reach is not None and reach.ready():
            with contextlib.suppress(Fault):
                await reach.call(reach.remote.bring, task_id, branch_name(task_id))

    def project_instructions(self, base: str) -> str:
        """The project's CLAUDE.md and AGENTS.md as committed at the base commit: a worker's
        prompt carries them, and its CLI reads none from the repository it works in (where
        another worker may have written them)."""
        found = trees.read_tree_files(self.git, base, "", INSTRUCTIONS, INSTRUCTIONS_BYTES)
        return "\n\n".join(
            f"## {name} (at {base[:12]})\n\n{text.decode('utf-8', 'replace').strip()}"
            for name, text in sorted(found.items())
            if text
        )

    async def tidy(self, task_id: str, landed: Sequence[str]) -> None:
        """A landed task's repositories go, each only once nothing in it would be lost: its
        HEAD is in the history of what landed, and its files are that HEAD's. Any other stays
        for a person, who is told why."""
        folder = self.task_dir(task_id)
        if not folder.is_dir():
            return
        for repo in sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
            try:
                kept = await self.in_repo(self._unlanded, repo, landed)
            except Exception as exc:  # whatever a worker left there, the autopilot goes on
                kept = f"its files could not be judged: {type(exc).__name__}: {exc}"
            if kept:
                self.say(f"{task_id}: {repo} kept, {kept}")
                continue
            try:
                await anyio.to_thread.run_sync(removal.remove, repo)
            except OSError as exc:  # left for autopilot gc
                self.say(f"{task_id}: {exc}")
        with contextlib.suppress(OSError):
            folder.rmdir()  # only once nothing is left in it

    def _unlanded(self, repo: Path, landed: Sequence[str]) -> str:
        """What in a worker's repository did not land (read as data), or "" if nothing."""
        refs = read_refs(repo / ".git")
        if refs is None:
            return "its refs could not be read as data"
        # Every ref (a side branch, a stash), not only HEAD: work anywhere in it keeps it.
        unlanded = [
            name
            for name, sha in refs.items()
            if not any(self.git.contains(sha, tip) for tip in landed)
        ]
        if unlanded:
            return f"its commits are not all in what landed ({', '.join(unlanded[:5])})"
        try:
            differs = judging.differs(self.git, refs["HEAD"], repo)
        except Unjudged as exc:
            return f"its files could not be judged: {exc}"
        shown = ", ".join(differs[:5]) + (" …" if len(differs) > 5 else "")
        return f"it has files nobody committed: {shown}" if differs else ""


def newest_repo(folder: Path) -> Path | None:
    """The repository of a task's latest run (runs are numbered 1, 2, ...)."""
    if not folder.is_dir() or folder.is_symlink():
        return None
    runs = [p for p in folder.iterdir() if p.name.isdigit() and p.is_dir() and not p.is_symlink()]
    return max(runs, key=lambda p: int(p.name), default=None)
