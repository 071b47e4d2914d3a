"""A worker's commits never change the state folder (docs/security.md, "Autopilot workers are
tenants", 2). With the state folder inside the person's repository (`wvo-mcp init` puts it at
`<repo>/.wvo/`, ignored by git), git would write a committed `.wvo/providers.yaml` over the
person's on their next checkout or merge of the work, and put a committed link named `.wvo` in
place of the whole folder, deleting the database. The fake worker
(wvo_mcp/autopilot/fake.py, mode `state`) commits there past .gitignore, under a real
`wvo-mcp autopilot --until-empty` in its real sandbox: its submission goes back to a worker
with a checkpoint naming the paths, and no ref of the person's repository, neither the merge
queue's target nor a `wvo/<task>` branch, ever holds those commits; ordinary work lands."""

import json
import subprocess
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import autopilot, backlog, git, make_project
from tests.conftest import open_db
from tests.security.tenancy import digests, statuses, trail, worktree
from wvo_mcp.sandbox import bwrap

pytestmark = pytest.mark.skipif(
    not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}"
)

PLANTED = "version: 1\nproviders: []  # planted by a worker\n"


def state_inside(tmp_path: Path) -> dict[str, Path]:
    """The autopilot test project with its state folder at <repo>/.wvo, ignored by git, and
    the providers file in it, as `wvo-mcp init` lays it out."""
    project = make_project(tmp_path)
    repo = project["repo"]
    (repo / ".gitignore").write_text("/.wvo/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore the state folder")
    state = repo / ".wvo"
    state.mkdir()
    (state / "providers.yaml").write_text(project["providers"].read_text())
    return {**project, "state": state, "providers": state / "providers.yaml"}


def checkpoints_by_autopilot(project: dict[str, Path], task_id: str) -> list[dict[str, str]]:
    with open_db(project["state"]) as db:
        rows = db.execute(
            "SELECT summary, next_steps, files, git_commit FROM checkpoints "
            "WHERE task_id = ? AND agent_id = 'autopilot' ORDER BY seq",
            (task_id,),
        ).fetchall()
    return [dict(row) for row in rows]


def untouched(repo: Path, before: dict[str, str]) -> None:
    """No ref of the person's repository reaches a commit that changes .wvo, and the state
    folder's providers file (and the folder itself, no link) is as it was."""
    assert git(repo, "log", "--all", "--format=%H", "--", ".wvo") == ""
    assert not (repo / ".wvo").is_symlink()
    assert digests(repo / ".wvo" / "providers.yaml") == before


def hostile_tip(project: dict[str, Path], task_id: str, path: str) -> str:
    """The commit the worker's first run submitted, from its repository (kept: it did not
    land), after checking it really changes `path`."""
    kept = worktree(project, task_id)
    assert path in git(kept, "show", "--name-only", "--format=", "HEAD").split()
    return git(kept, "rev-parse", "HEAD").strip()


def has_object(repo: Path, oid: str) -> bool:
    found = subprocess.run(["git", "cat-file", "-e", oid], cwd=repo, capture_output=True)
    return found.returncode == 0


def test_a_file_committed_into_the_state_folder_never_lands_nor_queues(tmp_path: Path) -> None:
    """Merge queue (--merge merge --onto integration): the first run commits its work and
    .wvo/providers.yaml. It is refused before it is taken: returned to a worker with a
    checkpoint naming the path; the retry (ordinary, as a model told why would do) lands,
    and so does an ordinary task beside it."""
    project = state_inside(tmp_path)
    repo = project["repo"]
    git(repo, "branch", "integration")
    before = digests(project["providers"])
    anyio.run(
        backlog,
        project,
        [
            {"id": "S1", "title": "writes the providers file",
             "metadata": {"fake": "state_once", "fake_state": {".wvo/providers.yaml": PLANTED}}},
            {"id": "O1", "title": "ordinary work"},
        ],
    )  # fmt: skip
    ran = autopilot(project, "--merge", "merge", "--onto", "integration", HOME=str(tmp_path))
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert statuses(project) == {"S1": "done", "O1": "done"}, ran.stdout
    tip = hostile_tip(project, "S1", ".wvo/providers.yaml")
    # Returned, naming the path and the state folder; the next attempt started from it.
    events = trail(project, "S1")
    returned = [reason for _, kind, _, reason in events if kind == "returned"]
    assert returned == [
        "returned: its commits change wvo-mcp's state folder .wvo/: .wvo/providers.yaml"
    ], events
    assert "S1 returned: its commits change wvo-mcp's state folder .wvo/" in ran.stdout
    (back,) = checkpoints_by_autopilot(project, "S1")
    assert back["summary"] == returned[0]
    assert json.loads(back["files"]) == [".wvo/providers.yaml"]
    assert tip in back["next_steps"] and "may not change anything in it" in back["next_steps"]
    assert back["git_commit"] is None  # nothing to restore: the commit is not in the repo
    # Only the retry was ever submitted to the queue.
    submitted = [reason.split()[0] for _, kind, _, reason in events if kind == "submitted"]
    assert len(submitted) == 1 and submitted[0] != tip, events
    assert "S1 (attempt 2" in ran.stdout, ran.stdout
    # Neither the target nor wvo/S1 carries the commit; it never entered the repository.
    untouched(repo, before)
    assert not has_object(repo, tip)
    landed = git(repo, "ls-tree", "-r", "--name-only", "integration").split()
    assert {"S1.txt", "O1.txt"} <= set(landed) and ".wvo/providers.yaml" not in landed
    assert "attempt 2" in git(repo, "show", "integration:S1.txt")
    assert git(repo, "rev-parse", "wvo/S1").strip() == submitted[0]


def test_a_link_in_place_of_the_state_folder_is_never_left_as_a_branch(tmp_path: Path) -> None:
    """--merge leave: the worker commits a link named .wvo (pointing elsewhere) with its
    work, on every attempt. No wvo/S2 branch is ever made for a person to check out (which
    would put the link in place of the state folder, its database with it); the one attempt
    fails saying why. An ordinary task's branch is left as usual."""
    project = state_inside(tmp_path)
    repo = project["repo"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "providers.yaml").write_text(PLANTED)
    before = digests(project["providers"])
    anyio.run(
        backlog,
        project,
        [
            {"id": "S2", "title": "replaces the state folder", "max_attempts": 1,
             "metadata": {"fake": "state", "fake_state_links": {".wvo": str(elsewhere)}}},
            {"id": "O2", "title": "ordinary work"},
        ],
    )  # fmt: skip
    ran = autopilot(project, HOME=str(tmp_path))
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert statuses(project) == {"S2": "failed", "O2": "done"}, ran.stdout
    tip = hostile_tip(project, "S2", ".wvo")
    returned = [reason for _, kind, _, reason in trail(project, "S2") if kind == "returned"]
    assert returned == ["returned: its commits change wvo-mcp's state folder .wvo/: .wvo"]
    (back,) = checkpoints_by_autopilot(project, "S2")
    assert json.loads(back["files"]) == [".wvo"]
    assert "a link or a file in its place" in back["next_steps"]
    untouched(repo, before)
    assert not has_object(repo, tip)
    assert git(repo, "branch", "--list", "wvo/S2") == ""
    assert (repo / ".wvo").is_dir() and (repo / ".wvo" / "orchestrator.db").is_file()
    assert "O2.txt" in git(repo, "ls-tree", "--name-only", "wvo/O2").split()
