"""A worker commits in a repository of its own; the person's git directory is not even
visible to it. Whatever it leaves in its own (hooks, filter, diff and fsmonitor commands,
attributes selecting them), the autopilot takes its commits as data and its own git calls
run none of it: not when it takes, rebases, verifies and merges the work, tidies up, or
makes the next task's repository from the branch that now carries those attributes."""

from pathlib import Path

import pytest

from tests.autopilot.conftest import autopilot, backlog, git, make_project
from tests.conftest import open_db

pytestmark = pytest.mark.anyio


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    return make_project(tmp_path)


async def test_what_a_worker_plants_in_git_never_runs_in_the_autopilot(
    project: dict[str, Path],
) -> None:
    marker = project["state"].parent / "PLANTED-RAN"
    repo = project["repo"]
    git(repo, "branch", "integration")
    await backlog(
        project,
        [
            {"id": "P1", "title": "plants", "metadata": {"fake": "plant",
                                                         "fake_marker": str(marker)}},
            # Started after P1 lands: its worktree is checked out from the planted branch.
            # It crashes before touching git, so no git of a worker's runs after the plant.
            {"id": "P2", "title": "after", "depends_on": ["P1"], "max_attempts": 1,
             "metadata": {"fake": "crash"}},
        ],
    )  # fmt: skip
    ran = autopilot(project, "--merge", "rebase", "--onto", "integration")
    assert ran.returncode == 0, ran.stderr[-3000:]
    # The plant never reached the person's git directory; the attributes that would arm
    # it landed as data: .gitattributes routes every file through the planted filter.
    common = repo / ".git"
    assert not (common / "hooks" / "post-checkout").exists()
    assert "evil" not in git(repo, "config", "-f", str(common / "config"), "--list")
    assert git(repo, "show", "integration:.gitattributes").startswith("* filter=evil")
    with open_db(project["state"]) as db:
        status = dict(db.execute("SELECT id, status FROM tasks").fetchall())
    # P1 was rebased, verified and merged; P2's repository was made; nothing planted ran.
    assert status == {"P1": "done", "P2": "failed"}, ran.stdout
    assert "P2 (attempt 1" in ran.stdout
    assert not marker.exists(), "the autopilot's git ran something a worker planted"
