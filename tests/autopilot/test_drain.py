"""A drain lands or hands back everything submitted before it ends: the lander runs during
the grace, and what is still queued when the grace ends waits, whole, for the next start."""

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import ROOT, backlog, env, git, make_project
from tests.conftest import open_db

RUN_TIMEOUT_S = 240


def start(project: dict[str, Path], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty", "--merge",
         "merge", "--onto", "integration", *args],
        cwd=ROOT, env=env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def until(lines: Iterator[str], seen: list[str], wanted: str) -> str:
    """Read the autopilot's output up to the line holding `wanted` (bounded by its end)."""
    for line in lines:
        seen.append(line)
        if wanted in line:
            return line
    raise AssertionError(f"never said {wanted!r}: {''.join(seen)}")


def state(project: dict[str, Path]) -> tuple[str, list[str]]:
    with open_db(project["state"]) as db:
        (status,) = db.execute("SELECT status FROM tasks WHERE id = 'T1'").fetchone()
        entries = [s for (s,) in db.execute("SELECT state FROM landing_entries")]
    return status, entries


def drained(project: dict[str, Path], run: subprocess.Popen[str], seen: list[str]) -> str:
    try:
        out, err = run.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, "".join(seen) + out + err
    return "".join(seen) + out


@pytest.mark.slow
def test_a_submission_made_during_the_grace_lands_before_the_drain_ends(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    git(project["repo"], "branch", "integration")
    # The worker commits and submits only once it finds .go in its repository: after the
    # SIGINT, during the grace.
    anyio.run(backlog, project, [{"id": "T1", "title": "one", "metadata": {
        "fake_wait_file": ".go"}}])  # fmt: skip
    run = start(project, "--check", "true", "--grace", "120")
    assert run.stdout is not None
    seen: list[str] = []
    started = until(run.stdout, seen, "starts T1")
    found = re.search(r" in (\S+)$", started.strip())
    assert found is not None, started
    run.send_signal(signal.SIGINT)
    until(run.stdout, seen, "draining: no new workers")
    (Path(found.group(1)) / ".go").write_text("")
    out = drained(project, run, seen)
    assert "landed T1 onto integration" in out, out
    assert state(project) == ("done", ["landed"])
    landed = git(project["repo"], "log", "--format=%s", "integration")
    assert "Land T1 " in landed


@pytest.mark.slow
def test_what_the_grace_leaves_queued_the_next_start_lands(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    git(project["repo"], "branch", "integration")
    anyio.run(backlog, project, [{"id": "T1", "title": "one"}])
    # A check that outlasts the grace: the landing is stopped, its check killed.
    run = start(project, "--check", "sleep 600", "--grace", "2", "--skip-preflight")
    assert run.stdout is not None
    seen: list[str] = []
    until(run.stdout, seen, "T1 waits for the queue onto integration")
    run.send_signal(signal.SIGINT)
    out = drained(project, run, seen)
    assert "the grace ended with submissions queued onto integration" in out, out
    status, entries = state(project)
    assert status == "needs_review" and entries in (["queued"], ["testing"]), (status, entries)
    # The next start takes the queue up where it was, and lands it.
    again = start(project, "--check", "true")
    out = drained(project, again, [])
    assert "landed T1 onto integration" in out, out
    assert state(project) == ("done", ["landed"])
