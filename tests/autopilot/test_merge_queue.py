"""The merge queue with a fleet of fake workers in their sandboxes: many tasks, a quarter of
them editing a file another edits too, some whose code fails the project's check only when
combined with another's; then the same with the autopilot killed again and again.

Everything is asserted from git and the database: each task's commits reach the target
exactly once, every state of the target passed its checks on exactly that tree, the target
only moved forward, what conflicted came back with its context and then landed, and no
commit a worker submitted is lost."""

import itertools
import os
import random
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.autopilot.conftest import FAKE, ROOT, backlog, env, git, make_project
from tests.conftest import open_db

CHECK = "sh check.sh"
# The project's check: no port claimed twice (each claim alone passes).
CHECK_SH = """#!/bin/sh
set -e
dups=$(cat claims/*.txt 2>/dev/null | sort | uniq -d)
if [ -n "$dups" ]; then echo "claimed twice: $dups"; exit 1; fi
echo "claims ok"
"""
FLEET_TIMEOUT_S = 900


def fleet(size: int) -> list[dict[str, Any]]:
    """`size` tasks: every eighth pair edits one file together (a quarter of the tasks),
    every tenth pair claims one port (each alone passes the check, together they fail);
    the rest write files of their own."""
    tasks: list[dict[str, Any]] = []
    for n in range(size):
        task: dict[str, Any] = {"id": f"F{n:02}", "title": f"fleet task {n}"}
        pair = n // 2
        if n % 8 in (0, 1):  # pairs 0, 4, 8, ...: one shared file per pair
            area = f"area{pair}.txt"
            task["metadata"] = {"fake_shared": area, "files": [area]}
        elif n % 20 in (2, 3):  # one pair in ten: a port both claim
            claim = f"claims/F{n:02}.txt"
            task["metadata"] = {
                "fake_files": {claim: f"port-{pair}\n"},
                "fake_fix": {claim: f"port-{pair}-F{n:02}\n"},
                "files": [claim],
            }
        tasks.append(task)
    return tasks


def with_check(project: dict[str, Path]) -> None:
    # A fleet's checks load the machine: a worker is silent for longer than the 15 s the
    # other autopilot tests allow, without hanging.
    providers = project["providers"]
    providers.write_text(providers.read_text().replace("hang_seconds: 15", "hang_seconds: 60"))
    repo = project["repo"]
    (repo / "check.sh").write_text(CHECK_SH)
    git(repo, "add", "check.sh")
    git(repo, "commit", "-qm", "the project's check")
    git(repo, "branch", "integration")


def run_args(*extra: str) -> list[str]:
    return [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--merge", "merge",
            "--onto", "integration", "--check", CHECK, *extra]  # fmt: skip


def rows(project: dict[str, Path], sql: str) -> list[tuple[Any, ...]]:
    with open_db(project["state"]) as db:
        return [tuple(r) for r in db.execute(sql).fetchall()]


def assert_landed_well(project: dict[str, Path], tasks: list[dict[str, Any]]) -> None:
    repo = project["repo"]
    status = dict(rows(project, "SELECT id, status FROM tasks"))
    assert status == {t["id"]: "done" for t in tasks}, status
    tip = git(repo, "rev-parse", "integration").strip()
    # Each task's landed commit is on the target, brought by exactly one landing merge.
    landed = rows(project, "SELECT task_id, commit_sha FROM landing_entries "
                           "WHERE state = 'landed'")  # fmt: skip
    assert sorted(t for t, _ in landed) == sorted(status), "a task landed twice, or never"
    # No person acted: no submission left the queue but by landing or coming back.
    assert rows(project, "SELECT task_id, reason FROM landing_entries WHERE state NOT IN "
                         "('landed', 'returned')") == []  # fmt: skip
    subjects = git(repo, "log", "--first-parent", "--format=%s", "integration").splitlines()
    for task_id, commit in landed:
        assert git(repo, "merge-base", "--is-ancestor", commit, tip) == ""
        assert sum(s.startswith(f"Land {task_id} ") for s in subjects) == 1, task_id
    # The target only moved forward, and each state it took passed the checks on its tree.
    states = git(repo, "reflog", "show", "--format=%H", "refs/heads/integration").split()
    for newer, older in itertools.pairwise(states):
        assert git(repo, "merge-base", "--is-ancestor", older, newer) == ""
    verified = dict(rows(project, "SELECT new, tree FROM landings WHERE state = 'landed'"))
    checks = {c for (c,) in rows(project, "SELECT checks FROM landings WHERE state = 'landed'")}
    assert all(CHECK in c for c in checks), checks
    for state in states[:-1]:  # the oldest is where the queue started
        assert state in verified, f"integration was at {state}, which no landing verified"
        assert git(repo, "rev-parse", f"{state}^{{tree}}").strip() == verified[state]
    # No commit a worker submitted is lost: each is on the target or its task's branch.
    for task_id, commit in rows(project, "SELECT task_id, commit_sha FROM landing_entries"):
        on = [ref for ref in ("integration", f"wvo/{task_id}")
              if subprocess.run(["git", "merge-base", "--is-ancestor", commit, ref],
                                cwd=repo, capture_output=True).returncode == 0]  # fmt: skip
        assert on, f"{task_id}'s submitted {commit} is on no branch"
    assert "claims ok" in subprocess.run(
        ["sh", "-c", f"git archive integration | tar -x -C {repo}/.. --one-top-level=final "
         f"&& cd {repo}/../final && {CHECK}"],
        cwd=repo, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


@pytest.mark.slow
def test_a_fleet_lands_thirty_two_tasks_on_one_branch(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    with_check(project)
    tasks = fleet(32)  # four pairs on one file, two pairs on one port
    anyio.run(backlog, project, tasks)
    ran = subprocess.run(
        [*run_args("--until-empty", "--no-conflict-avoidance")],
        cwd=ROOT, env=env(project), capture_output=True, text=True, timeout=FLEET_TIMEOUT_S,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert_landed_well(project, tasks)
    returned = rows(project, "SELECT task_id, reason FROM landing_entries "
                             "WHERE state = 'returned'")  # fmt: skip
    conflicts = {t for t, why in returned if "conflicts in area" in why}
    failures = {t for t, why in returned if "a check failed" in why}
    assert conflicts and failures, ran.stdout[-3000:]
    # Conflicting tasks came back with their hunks as the checkpoint the next worker read.
    mine = "SELECT task_id, next_steps FROM checkpoints WHERE agent_id = 'autopilot' AND "
    context = dict(rows(project, mine + "summary LIKE '%conflicts%'"))
    for task_id in conflicts:
        assert "<<<<<<<" in context[task_id] and "area" in context[task_id]
    output = dict(rows(project, mine + "summary LIKE '%check failed%'"))
    assert all("claimed twice" in text for text in output.values()), output


def _lines_then_kill(
    process: subprocess.Popen[str], lines: int, limit_s: float, after: str = ""
) -> str:
    """Read `lines` lines of its output, counted from the first that holds `after` (or
    until it ends, or `limit_s` pass without a line), then SIGKILL."""
    assert process.stdout is not None
    seen: list[str] = []
    counted = 0
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while counted < lines and selector.select(timeout=limit_s):
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            after = "" if after in line else after
            counted += not after
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    return "".join(seen)


def _strays(tmp_path: Path) -> list[str]:
    """Processes still running anything of this test's (its workers, sandboxes, checks): each
    names `tmp_path`, its workers through their script's link there (`_own_fake`)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(tmp_path) in cmdline:
            found.append(f"{pid}: {cmdline[:200]}")
    return found


def _own_fake(tmp_path: Path) -> None:
    """The project's workers run the fake through a link in `tmp_path`: a stray of this test
    is told by its command line from another test's fake worker running beside it."""
    link = tmp_path / "bin" / "fake.py"
    link.symlink_to(FAKE)
    wrapper = tmp_path / "bin" / "fake-claude"
    wrapper.write_text(wrapper.read_text().replace(f'"{FAKE}"', f'"{link}"'))
    assert str(link) in wrapper.read_text()


@pytest.mark.slow
def test_a_crash_storm_loses_nothing_and_lands_nothing_twice(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    _own_fake(tmp_path)
    with_check(project)
    tasks = fleet(24)
    anyio.run(backlog, project, tasks)
    chance = random.Random(22)  # the kills land at seeded moments: a failure replays
    kills, running = 0, []
    outputs = []
    try:
        while kills < 20:
            # One autopilot, or two on the same database, each killed after some lines.
            while len(running) < (2 if kills % 3 == 0 else 1):
                running.append(subprocess.Popen(
                    run_args(), cwd=ROOT, env=env(project),
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                ))  # fmt: skip
            victim = running.pop(chance.randrange(len(running)))
            if kills % 5 == 4 and not any("landed" in out for out in outputs):
                # Until one has, every fifth is killed just after a landing: each kill's
                # debris is cleaned up by the next run and takes its lines, and on a busy
                # machine the storm could otherwise be over before anything landed. (Once
                # all have landed, a run has none to print: it would wait out the limit.)
                out = _lines_then_kill(victim, chance.randint(1, 3), 120, after="landed")
            else:
                out = _lines_then_kill(victim, chance.randint(1, 12), 20)
            outputs.append(out)
            kills += 1
    finally:
        for process in running:
            process.kill()
            process.wait(timeout=30)
            if process.stdout is not None:
                process.stdout.close()
    ran = subprocess.run(
        run_args("--until-empty"), cwd=ROOT, env=env(project),
        capture_output=True, text=True, timeout=FLEET_TIMEOUT_S,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert kills == 20 and any("landed" in out for out in outputs), outputs
    assert_landed_well(project, tasks)
    assert not _strays(tmp_path)
    intents = rows(project, "SELECT count(*) FROM landings WHERE state = 'intent'")
    assert intents == [(0,)]


def test_a_persons_commit_on_the_target_is_never_overwritten(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    with_check(project)
    repo = project["repo"]
    anyio.run(
        backlog,
        project,
        [
            # Waits until the person committed; then edits the file the person edited.
            {"id": "P1", "title": "edits notes", "metadata": {
                "fake_wait": "go", "fake_shared": "notes.txt"}},
            {"id": "P2", "title": "its own file", "depends_on": ["P1"]},
            {"id": "P3", "title": "its own file too", "metadata": {"fake_wait": "go"}},
        ],
    )  # fmt: skip
    pilot = subprocess.Popen(
        run_args("--until-empty"), cwd=ROOT, env=env(project),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        # Each waits in its own repository (repo.wvo-worktrees/<task>/<run>), saying so.
        worktrees = repo.with_name("repo.wvo-worktrees")
        deadline = time.monotonic() + 120
        while len(waiting := list(worktrees.glob("*/*/go.waiting"))) < 2:  # no event: poll
            assert time.monotonic() < deadline, "the fakes never waited"
            time.sleep(0.05)
        # The person commits to the target (a commit of their own, on a clone of theirs).
        person = tmp_path / "person"
        git(tmp_path, "clone", "-q", "-b", "integration", str(repo), str(person))
        (person / "notes.txt").write_text("the person's notes\n")
        git(person, "add", "notes.txt")
        git(person, "commit", "-qm", "a person's commit")
        git(person, "push", "-q", "origin", "integration")
        mine = git(person, "rev-parse", "HEAD").strip()
        for said in waiting:
            said.with_name("go").write_text("")
        out, _ = pilot.communicate(timeout=FLEET_TIMEOUT_S)
    finally:
        if pilot.poll() is None:
            pilot.kill()
    assert pilot.returncode == 0, out[-3000:]
    tip = git(repo, "rev-parse", "integration").strip()
    assert (
        subprocess.run(["git", "merge-base", "--is-ancestor", mine, tip], cwd=repo).returncode == 0
    )
    status = dict(rows(project, "SELECT id, status FROM tasks"))
    assert status == {"P1": "needs_review", "P2": "pending", "P3": "done"}, out[-3000:]
    held = rows(project, "SELECT task_id, reason FROM landing_entries WHERE state = 'held'")
    assert held and held[0][0] == "P1" and "a person committed" in held[0][1], held
    assert mine[:12] in held[0][1]
