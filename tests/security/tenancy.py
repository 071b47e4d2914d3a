"""What the worker tenancy tests share (test_worker_tenancy.py, test_worker_submissions.py):
a real `wvo-mcp autopilot --until-empty` run in the background while a test acts, and the
host state a test compares before and after (files, the person's repository, database rows,
processes)."""

import contextlib
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.autopilot.conftest import RUN_TIMEOUT_S, env
from tests.conftest import ROOT, open_db

WAIT_S = 90.0  # for the autopilot to reach a point it reaches in a few seconds


@dataclass
class Pilot:
    """An autopilot started in the background, its output going to a file."""

    process: subprocess.Popen[str]
    out: Path

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def finish(self) -> str:
        try:
            self.process.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the autopilot did not finish: {self.output()[-3000:]}")
        assert self.process.returncode == 0, self.output()[-3000:]
        return self.output()


@contextlib.contextmanager
def started(project: dict[str, Path], *args: str, **extra_env: str) -> Iterator[Pilot]:
    """`wvo-mcp autopilot --until-empty` running while the test acts; killed if the test
    fails first (its workers' sandboxes die with it)."""
    out = project["state"].parent / "autopilot.out"
    with out.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty", *args],
            cwd=ROOT,
            env=env(project) | extra_env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            yield Pilot(process, out)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=60)


def until(pilot: Pilot, what: str, ready: Callable[[], bool]) -> None:
    """Poll `ready` until it holds; fail (with the autopilot's output) after WAIT_S or as
    soon as the autopilot has exited."""
    deadline = time.monotonic() + WAIT_S
    while not ready():
        if pilot.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"never saw {what}: {pilot.output()[-3000:]}")
        time.sleep(0.05)


def worktree(project: dict[str, Path], task_id: str, run: int = 1) -> Path:
    return project["repo"].parent / "repo.wvo-worktrees" / task_id / str(run)


def digests(*roots: Path, skip: Callable[[Path], bool] = lambda p: False) -> dict[str, str]:
    """Every file under `roots` (or the root itself, a file) with a digest of its bytes;
    links by their target, never followed."""
    found: dict[str, str] = {}
    for root in roots:
        for path in [root, *(sorted(root.rglob("*")) if root.is_dir() else [])]:
            if skip(path):
                continue
            if path.is_symlink():
                found[str(path)] = "link to " + os.readlink(path)
            elif path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def person_repo(project: dict[str, Path]) -> dict[str, str]:
    """The person's repository, but for what the autopilot itself adds when it lands work:
    objects, and the wvo/<task> branches."""
    repo = project["repo"]

    def added(path: Path) -> bool:
        inside = path.relative_to(repo).parts
        return inside[:2] == (".git", "objects") or "wvo" in inside

    return digests(repo, skip=added)


def task_rows(project: dict[str, Path], task_id: str) -> tuple[dict[str, Any], list[Any]]:
    """A task's row and its events, as they are."""
    with open_db(project["state"]) as db:
        row = dict(db.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone())
        trail = [tuple(r) for r in db.execute(
            "SELECT * FROM task_events WHERE task_id = ? ORDER BY id", (task_id,)
        )]  # fmt: skip
    return row, trail


def statuses(project: dict[str, Path]) -> dict[str, str]:
    with open_db(project["state"]) as db:
        return dict(db.execute("SELECT id, status FROM tasks").fetchall())


def trail(project: dict[str, Path], task_id: str) -> list[tuple[str, str, str, str]]:
    """(actor, kind, to status, reason) of every event of a task, in order."""
    with open_db(project["state"]) as db:
        rows = db.execute(
            "SELECT actor, kind, coalesce(to_status, ''), coalesce(reason, '') FROM task_events "
            "WHERE task_id = ? ORDER BY id",
            (task_id,),
        ).fetchall()
    return [tuple(r) for r in rows]


def ours(tmp_path: Path) -> list[str]:
    """Live processes of this test (their command line or working folder under tmp_path),
    but this one."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if str(tmp_path) in cmdline or cwd.startswith(str(tmp_path)):
            found.append(f"{entry.name}: {cmdline[:300]} (in {cwd})")
    return found
