"""The merge queue's rough edges, end to end with fake workers: a target the person has
checked out (its working tree follows it while clean), what a landed worker's repository may
leave behind and still go, and a submission that changes nothing."""

import selectors
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import RUN_TIMEOUT_S, autopilot, backlog, env, git
from tests.conftest import ROOT, open_db


def statuses(project: dict[str, Path]) -> dict[str, str]:
    with open_db(project["state"]) as db:
        return dict(db.execute("SELECT id, status FROM tasks").fetchall())


# -- a target checked out in the person's own working tree --------------------------------


@pytest.mark.anyio
async def test_landing_onto_the_checked_out_branch_brings_its_clean_tree_along(
    project: dict[str, Path],
) -> None:
    repo = project["repo"]
    (repo / "scratch.txt").write_text("the person's untracked file\n")
    await backlog(project, [{"id": "C1", "title": "own file"}, {"id": "C2", "title": "own too"}])
    ran = autopilot(project, "--merge", "merge", "--onto", "main")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert f"main is checked out in {repo}: its files follow main as work lands" in ran.stdout
    assert statuses(project) == {"C1": "done", "C2": "done"}, ran.stdout
    # The person's checkout shows what landed, at main's tip, with nothing to commit.
    assert git(repo, "rev-parse", "HEAD") == git(repo, "rev-parse", "main")
    for task_id in ("C1", "C2"):
        assert (repo / f"{task_id}.txt").read_text().startswith(f"{task_id} by ")
    assert git(repo, "status", "--porcelain") == "?? scratch.txt\n"
    subjects = git(repo, "log", "--first-parent", "--format=%s", "main").splitlines()
    assert sum(s.startswith("Land C") for s in subjects) == 2, subjects


def test_a_branch_checked_out_in_a_dirty_tree_is_refused_at_start(
    project: dict[str, Path],
) -> None:
    repo = project["repo"]
    (repo / "README.md").write_text("a draft\n")
    ran = autopilot(project, "--merge", "merge", "--onto", "main")
    assert ran.returncode != 0
    said = ran.stderr + ran.stdout
    assert f"'main' is checked out in {repo}, which has changes nobody committed (README.md)" in (
        said
    )
    assert "commit or stash them" in said
    assert (repo / "README.md").read_text() == "a draft\n"


def _until(process: "subprocess.Popen[str]", text: str, seen: list[str]) -> None:
    """Read the autopilot's output into `seen` until a line holds `text`."""
    assert process.stdout is not None
    deadline = time.monotonic() + RUN_TIMEOUT_S
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=deadline - time.monotonic()):
                break
            line = process.stdout.readline()
            assert line, "".join(seen[-30:])
            seen.append(line)
            if text in line:
                return
    pytest.fail(f"never said {text!r}: {''.join(seen[-30:])}")


def test_a_tree_made_dirty_mid_run_holds_the_landing_until_it_is_clean(
    project: dict[str, Path],
) -> None:
    repo = project["repo"]
    anyio.run(backlog, project, [{"id": "H1", "title": "waits", "metadata": {"fake_wait": "go"}}])
    pilot = subprocess.Popen(
        [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty",
         "--merge", "merge", "--onto", "main"],
        cwd=ROOT, env=env(project), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    seen: list[str] = []
    try:
        waiting = repo.with_name("repo.wvo-worktrees") / "H1" / "1" / "go.waiting"
        _until(pilot, " starts H1", seen)
        deadline = time.monotonic() + 120
        while not waiting.exists():  # the fake says it waits with a file: poll for it
            assert time.monotonic() < deadline, "".join(seen)
            time.sleep(0.05)
        (repo / "README.md").write_text("a draft\n")  # the person starts editing
        waiting.with_name("go").write_text("")
        _until(pilot, "landing onto main waits: main is checked out in", seen)
        assert "changes nobody committed (README.md)" in seen[-1]
        assert statuses(project)["H1"] == "needs_review"
        assert not (repo / "H1.txt").exists() and git(repo, "log", "--format=%s") == "start\n"
        git(repo, "checkout", "README.md")  # the person is done: the tree is clean again
        _until(pilot, "main's working tree is clean again: landing", seen)
        out, _ = pilot.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if pilot.poll() is None:
            pilot.kill()
            pilot.communicate()
    assert pilot.returncode == 0, "".join(seen) + out
    assert statuses(project) == {"H1": "done"}
    assert (repo / "H1.txt").read_text().startswith("H1 by ")
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "README.md").read_text() == "a project\n"


# -- what a landed worker's repository may leave behind ----------------------------------


@pytest.mark.anyio
async def test_caches_the_project_ignores_do_not_keep_a_landed_repository(
    project: dict[str, Path],
) -> None:
    repo = project["repo"]
    (repo / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore caches")
    caches = {"__pycache__/x.cpython-311.pyc": "compiled", ".pytest_cache/v/cache/nodeids": "[]",
              ".pytest_cache/.gitignore": "*"}  # fmt: skip
    await backlog(project, [
        {"id": "L1", "title": "runs the tests", "metadata": {"fake_leave": caches}},
        {"id": "L2", "title": "leaves notes", "metadata": {"fake_leave": {"notes.txt": "n"}}},
    ])  # fmt: skip
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert statuses(project) == {"L1": "done", "L2": "done"}, ran.stdout
    worktrees = repo.with_name("repo.wvo-worktrees")
    assert not (worktrees / "L1").exists(), ran.stdout
    kept = worktrees / "L2" / "1"
    assert f"L2: {kept} kept, it has files nobody committed: notes.txt" in ran.stdout
    assert (kept / "notes.txt").read_text() == "n"


# -- a submission that changes nothing ----------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("strategy", ["merge", "rebase"])
async def test_a_task_with_no_change_lands_no_empty_commit(
    project: dict[str, Path], strategy: str
) -> None:
    """Done with no check where its task says it needs no change; else never landed
    silently: back to its worker once, then to a person."""
    repo = project["repo"]
    git(repo, "branch", "integration")
    none = {"needs_change": False}
    await backlog(project, [
        {"id": "E1", "title": "commits nothing", "metadata": {"fake": "nochange", **none}},
        {"id": "E2", "title": "undoes its change", "metadata": {"fake": "undo", **none}},
        {"id": "E3", "title": "own file"},
        {"id": "E4", "title": "should change", "metadata": {"fake": "nochange"}},
    ])  # fmt: skip
    ran = autopilot(project, "--merge", strategy, "--onto", "integration")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert statuses(project) == {"E1": "done", "E2": "done", "E3": "done", "E4": "needs_review"}
    for task_id in ("E1", "E2"):
        assert (
            f"{task_id} has nothing to land: its submission changes nothing on integration, as "
            "its task says it needs no change; it is done, with no check to wait for" in ran.stdout
        ), ran.stdout
    assert "E4 returned: its submission changes nothing on integration" in ran.stdout
    assert (
        "E4 waits for a person in needs_review: its submission changed nothing again" in ran.stdout
    ), ran.stdout
    with open_db(project["state"]) as db:
        checks = dict(db.execute(
            "SELECT e.task_id, l.checks FROM landing_entries e JOIN landings l "
            "ON l.id = e.landing_id WHERE e.state = 'landed'"
        ).fetchall())  # fmt: skip
    assert checks["E1"].startswith("nothing to land") and checks["E2"].startswith("nothing")
    assert not checks["E3"].startswith("nothing"), checks
    assert "E3 has nothing to land" not in ran.stdout
    # Every commit the queue put on the target changes its tree; only E3's work is there.
    listed = git(repo, "log", "--first-parent", "--format=%H %T %P", "main..integration")
    assert listed, ran.stdout
    for line in listed.splitlines():
        _, tree, first, *_ = line.split()
        assert tree != git(repo, "rev-parse", f"{first}^{{tree}}").strip(), line
    changed = git(repo, "diff", "--name-only", "main", "integration").split()
    assert changed == ["E3.txt"], changed
    subjects = git(repo, "log", "--format=%s", "main..integration").splitlines()
    assert not any(s.startswith(("Land E1 ", "Land E2 ")) for s in subjects), subjects
