"""Runs commands in the sandbox: a task's verify_command, a landing check, sandbox_run.

Commands in the sandbox: a task's verify_command (with its holder's lease kept alive while
it runs), a landing check, and an agent's sandbox_run. Nothing here runs in a transaction:
a run can take minutes, and the write lock must not wait on it. Whether a command may run at
all (blank, NUL, too long) is rules/bounds.py:check_command's, asked at task_create too. A
landing check's committed JUnit reports are removed before it runs here (`clear_reports`).

Carries out `rules/check_causes.py` and `rules/junit.py`."""

import dataclasses
import fnmatch
import os
import shlex
import stat
import threading
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path, PurePosixPath

import anyio

from wvo_mcp import sandbox, timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed, VerificationFailed, WvoError
from wvo_mcp.git import Git
from wvo_mcp.models import SandboxResult
from wvo_mcp.providers import Providers
from wvo_mcp.rules import check_causes, junit
from wvo_mcp.sandbox import toolchain
from wvo_mcp.services import leases
from wvo_mcp.store import Database, Lock

# A check's run on one tree, in its environment: 1, then its reruns' (autopilot/landing/gate.py).
CHECK_RUN = "WVO_CHECK_RUN"
REPORTS_READ = 50  # of one check's run, the first in sorted order
REPORT_DEPTH = 64  # folders deep a report is looked for (one open folder each on the way)
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def read_junit(workspace: Path, pattern: str) -> junit.Report | None:
    """The JUnit reports a check wrote under `workspace` (its processes are gone), as one;
    None where there is none to read. Only regular files inside it, reached through no link
    (the same walk as clear_reports': what it would have removed is all this can read)."""
    try:
        root = os.open(workspace, _FOLDER)
    except OSError:
        return None
    found = []
    try:
        for path in _matching(root, pattern)[0][:REPORTS_READ]:
            report = _report(root, path)
            if report is not None:
                found.append(report)
    finally:
        os.close(root)
    return junit.merged(found) if found else None


def clear_reports(checkout: Path, pattern: str) -> list[str]:
    """Before a check runs on `checkout` (fresh, nothing running in it): every file `pattern`
    matches removed, and every link the glob would pass through on the way to one, so that
    a report read after the run is one the run wrote; a report a worker committed would
    otherwise speak for the check. What it removed, as paths in the checkout. A link is
    removed itself, never followed: a committed link deletes nothing outside."""
    try:
        root = os.open(checkout, _FOLDER)
    except OSError:
        return []
    removed = []
    try:
        found, links = _matching(root, pattern)
        for path in found + links:
            parent = _parent(root, path)
            if parent is None:
                continue
            folder, name = parent
            try:
                os.unlink(name, dir_fd=folder)
            finally:
                os.close(folder)
            removed.append(path)
    finally:
        os.close(root)
    return removed


def _matching(root: int, pattern: str) -> tuple[list[str], list[str]]:
    """Under the folder `root`, what `pattern` (a glob as pathlib's: `**` is any number of
    folders) matches other than folders, and the links it would go through to reach more;
    both sorted. Only real folders are entered, never a link, at most REPORT_DEPTH deep."""
    parts = PurePosixPath(pattern).parts
    last = len(parts) - 1
    found: set[str] = set()
    links: set[str] = set()

    def closed(states: set[int]) -> set[int]:
        out = set(states)
        for at in states:
            while parts[at] == "**" and at < last:  # `**` is also no folder at all
                at += 1
                out.add(at)
        return out

    def visit(fd: int, prefix: str, states: set[int], depth: int) -> None:
        try:
            with os.scandir(fd) as listing:
                entries = [(e.name, e.is_symlink(), e.is_dir(follow_symlinks=False))
                           for e in listing]  # fmt: skip
        except OSError:  # a folder the run made unreadable holds nothing to read
            return
        for name, link, folder in entries:
            path, deeper, through = prefix + name, set[int](), False
            for at in states:
                if parts[at] == "**":
                    if folder and at < last:
                        deeper.add(at)
                elif fnmatch.fnmatchcase(name, parts[at]):
                    if at < last:
                        deeper.add(at + 1)
                        through = True
                    elif not folder:
                        found.add(path)
            if link and through:
                links.add(path)
            elif folder and deeper and depth < REPORT_DEPTH:
                try:
                    inner = os.open(name, _FOLDER, dir_fd=fd)
                except OSError:
                    continue
                try:
                    visit(inner, f"{path}/", closed(deeper), depth + 1)
                finally:
                    os.close(inner)

    if parts:
        visit(root, "", closed({0}), 1)
    return sorted(found), sorted(links - found)


def _parent(root: int, path: str) -> tuple[int, str] | None:
    """The folder holding `path` under `root`, opened through no link, and its name there;
    None where there is no such folder now."""
    *folders, name = path.split("/")
    fd = os.dup(root)
    try:
        for folder in folders:
            inner = os.open(folder, _FOLDER, dir_fd=fd)
            os.close(fd)
            fd = inner
    except OSError:
        os.close(fd)
        return None
    return fd, name


def _report(root: int, path: str) -> junit.Report | None:
    """The report at `path` under `root`, if it is a regular file reached through no link."""
    parent = _parent(root, path)
    if parent is None:
        return None
    folder, name = parent
    try:
        # A FIFO would block an open for reading until a writer came: never waited on.
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=folder)  # fmt: skip
    except OSError:
        return None
    finally:
        os.close(folder)
    with os.fdopen(fd, "rb") as given:
        if not stat.S_ISREG(os.fstat(given.fileno()).st_mode):
            return None
        return junit.parse(given.read(junit.MAX_BYTES + 1))


def sandbox_summary(command: str | list[str], result: SandboxResult) -> str:
    """One line about a sandbox run, for events and checkpoints."""
    shown = command if isinstance(command, str) else shlex.join(command)
    if len(shown) > 200:
        shown = shown[:197] + "..."
    outcome = (
        f"exit {result.exit_code}"
        if result.exit_code is not None
        else f"killed: {result.killed_reason or 'unknown'}"
    )
    return f"`{shown}`: {outcome} in {result.duration_s:.1f} s ({result.backend} sandbox)"


def sandbox_record(command: str | list[str], result: SandboxResult) -> leases.Run:
    """A sandbox run as its task keeps it: the summary and the output tails."""
    return leases.Run(sandbox_summary(command, result), result.stdout_tail, result.stderr_tail)


class Verification:
    """The sandbox runs of one orchestrator, over its database, settings and clock."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        providers: Providers,
        git: Git | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.settings = settings
        self.providers = providers
        self.git = git
        self.clock = clock

    async def verify_holding(
        self, task_id: str, token: str, agent_id: str, command: str | list[str]
    ) -> leases.Run:
        """The gate, with the holder's lease renewed while it runs: a verification longer
        than the lease must not hand the task to another agent meanwhile."""
        refused: WvoError | None = None
        async with anyio.create_task_group() as renewing:
            renewing.start_soon(self._keep_lease, task_id, token, agent_id)
            try:
                run = await self.verify(task_id, command)
            except WvoError as exc:  # raised here it would leave wrapped in a group
                refused = exc
            finally:
                renewing.cancel_scope.cancel()
        if refused is not None:
            raise refused
        return run

    async def _keep_lease(self, task_id: str, token: str, agent_id: str) -> None:
        while True:
            try:
                renewed = await self.db.write(
                    partial(
                        leases.heartbeat,
                        task_id=task_id,
                        token=token,
                        agent_id=agent_id,
                        lease_seconds=None,
                        now=self.clock(),
                    ),
                    Lock.TASK,
                )
            except WvoError:
                return  # lost or gone: the move after the run says so
            left = (timeutil.from_text(renewed.lease_expires_at) - self.clock()).total_seconds()
            await anyio.sleep(max(0.2, left / 3))

    async def verify(
        self,
        task_id: str,
        command: str | list[str],
        workspace: Path | None = None,
        landing: bool = False,
    ) -> leases.Run:
        """Run the gate (in `workspace`, else the workspace root); the passing run, else
        VerificationFailed with the tails (`landing`: said of a submission, not to a holder)."""
        result = await self._sandbox(
            sandbox.Request(
                command=command,
                workspace=workspace or self.settings.workspace_root,
                timeout_s=self.settings.verify_timeout_seconds,
                memory_mb=self.settings.verify_memory_mb,
            )
        )
        summary = sandbox_summary(command, result)
        ran_none = self._ran_none(result, None)
        summary += check_causes.said_no_test(ran_none) if ran_none else ""
        if result.exit_code != 0 or ran_none:
            advice = (
                "on a clean checkout of the submitted commit: it does not land"
                if landing
                else "It stays in_progress with you: fix the work, then call "
                "plan_update(status='done') again."
            )
            raise VerificationFailed(
                f"task {task_id!r} is not done: its verify_command failed ({summary}) "
                f"{advice}\n--- stdout (tail) ---\n{result.stdout_tail}"
                f"\n--- stderr (tail) ---\n{result.stderr_tail}"
            )
        return sandbox_record(command, result)

    async def check(self, command: str | list[str], workspace: Path, run: int = 1) -> SandboxResult:
        """A landing check (a task's verify_command, or the project's) in the sandbox on
        `workspace`, a clean checkout of the tree that would land; VerificationFailed with
        the output tails unless it passes. `run`: its run on this tree, 1 and then each
        rerun's (CHECK_RUN in its environment). Cancelled, it is ended at once (a drain's
        grace is over: its landing waits for the next start)."""
        request = sandbox.Request(
            command=command,
            workspace=workspace,
            timeout_s=self.settings.verify_timeout_seconds,
            memory_mb=self.settings.verify_memory_mb,
            env={CHECK_RUN: str(run)},
        )
        stop = threading.Event()
        try:
            result = await anyio.to_thread.run_sync(
                self._sandboxed, request, stop, abandon_on_cancel=True
            )
        finally:
            stop.set()  # a no-op once it ended; else it ends now, its tree killed
        summary = sandbox_summary(command, result)
        ran_none = self._ran_none(result, workspace)
        summary += check_causes.said_no_test(ran_none) if ran_none else ""
        if result.exit_code != 0 or ran_none:
            raise VerificationFailed(
                f"{summary}\n--- stdout (tail) ---\n"
                f"{result.stdout_tail}\n--- stderr (tail) ---\n{result.stderr_tail}"
            )
        return result

    def _ran_none(self, result: SandboxResult, checkout: Path | None) -> str:
        """Why a run that exited 0 ran no test: its test runner says so, or (on a fresh
        `checkout`, cleared of reports before the run: clear_reports) its JUnit report,
        where the providers file names one, holds none; "" where it ran tests, or where the
        providers file allows a check that runs none. A missing report says nothing: a
        task's own verify_command need not write one."""
        gate = self.providers.gate
        if result.exit_code != 0 or gate.allow_no_tests:
            return ""
        said = check_causes.ran_no_test(f"{result.stdout_tail}\n{result.stderr_tail}")
        if said is not None:
            return said  # who says so, and how: "pytest found none"
        if gate.junit is None or checkout is None:
            return ""
        report = read_junit(checkout, gate.junit)
        return "its JUnit report holds no test" if report and report.tests == 0 else ""

    async def _sandbox(self, request: "sandbox.Request") -> SandboxResult:
        return await anyio.to_thread.run_sync(self._sandboxed, request)

    def _sandboxed(
        self, request: "sandbox.Request", stop: threading.Event | None = None
    ) -> SandboxResult:
        """`request` run with the project's toolchain (found afresh: a person may have made
        the .venv since)."""
        with_tools = dataclasses.replace(request, toolchain=self.toolchain())
        return sandbox.run(with_tools, self.settings, stop)

    def toolchain(self) -> toolchain.Toolchain:
        """The project's toolchain folders (sandbox/toolchain.py) in the person's checkout."""
        if self.git is None:
            return toolchain.Toolchain()
        found = self.git.ignored(toolchain.FOUND)
        keep_out = [self.settings.state_root]
        return toolchain.find(self.git.repo.top, self.providers.toolchain, found, keep_out)

    async def sandbox_run(
        self,
        command: str | list[str],
        agent_id: str,
        *,
        workspace: str | None = None,
        timeout_s: float = 30.0,
        memory_mb: int = 512,
        cpus: float = 1.0,
        network: bool = False,
        env: dict[str, str] | None = None,
        task_id: str | None = None,
        lease_token: str | None = None,
    ) -> SandboxResult:
        """Run a command isolated; with a task and its lease, the run is recorded on it."""
        if (task_id is None) != (lease_token is None):
            raise ValidationFailed(
                "pass task_id and lease_token together (to record the run on your task), or neither"
            )
        if task_id is not None and lease_token is not None:
            await self.db.read(partial(leases.holding, task_id=task_id, token=lease_token))
        request = sandbox.Request(
            command=command,
            workspace=self.settings.workspace_root,
            cwd=self._workspace(workspace),
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            cpus=cpus,
            network=network,
            env=env or {},
        )
        result = await self._sandbox(request)
        if task_id is not None and lease_token is not None:
            await self.db.write(
                partial(
                    leases.record_run,
                    task_id=task_id,
                    token=lease_token,
                    agent_id=agent_id,
                    run=sandbox_record(command, result),
                    now=self.clock(),
                ),
                Lock.TASK,
            )
        return result

    def _workspace(self, given: str | None) -> str:
        """A folder inside the workspace root, as a path relative to it. The run mounts only
        the root and enters this folder inside the sandbox, so a link swapped in after this
        check still cannot lead outside; the check here only makes the refusal early."""
        root = self.settings.workspace_root.resolve()
        if given is None:
            return "."
        path = Path(given)
        try:
            chosen = (path if path.is_absolute() else root / path).resolve()
        except (ValueError, RuntimeError, OSError) as exc:
            # A NUL (ValueError), a link loop that a sandboxed command left in the workspace
            # (RuntimeError), an unreadable folder: refused, not an unexpected tool error.
            raise ValidationFailed(
                f"workspace {given!r} cannot be resolved ({exc}); pass an existing folder "
                "inside the workspace root, or omit workspace"
            ) from None
        if chosen != root and root not in chosen.parents:
            raise ValidationFailed(
                f"workspace {given!r} is outside the workspace root {root} "
                "(WVO_WORKSPACE_ROOT); pass a folder inside it, or omit workspace"
            )
        return str(chosen.relative_to(root))
