"""From labelled issues to landed, closed issues, end to end: the test forge keeps the
issues, `import github:` (or `gitlab:`) keeps them in step with tasks, and the autopilot's
fake workers (in their sandboxes) do them and land them. An issue is edited and another
closed while the autopilot runs; a worker's question is asked on its issue and answered
there by a writer; every issue whose task landed is closed with the commit named, once.
Each on both test forges."""

import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.autopilot.conftest import autopilot, git, make_project
from tests.conftest import open_db, wvo
from tests.forge import both, deliveries
from tests.forge.both import Forge, side_of
from tests.http.conftest import http_server
from tests.security.tenancy import started, until, worktree

pytestmark = [pytest.mark.process, pytest.mark.slow]
forge = both.forge  # the fixture: each scenario on the test GitHub and the test GitLab
LANDS = ("--merge", "merge", "--onto", "integration", "--check", "true")
PLAIN = 9  # issues that only ask for a change: two chains of four, and one alone


def asks(**fake: Any) -> str:
    """An issue body that tells the fake worker what to do, as its words tell a model."""
    return f"```wvo-fake\n{json.dumps(fake)}\n```"


def test_labelled_issues_land_and_close_with_their_commits_named(
    forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path)
    repo = project["repo"]
    git(repo, "branch", "integration")
    monkeypatch.setenv("WVO_FORGE_TOKEN", side_of(forge).token)
    task = side_of(forge).task

    def sync() -> str:
        done = wvo(project["state"], "import", side_of(forge).spec, "--forge-api", forge.api)
        assert done.returncode == 0, done.stderr
        return done.stdout

    plain: list[int] = []
    for n in range(PLAIN):  # in chains of four: each blocked by the one before
        blocked = f" Blocked by #{plain[-1]}." if n % 4 and plain else ""
        plain.append(forge.open_issue(f"change {n}", f"Write its file.{blocked}"))
    asker = forge.open_issue("Pick a licence", asks(fake="ask", fake_question="MIT or Apache?"))
    edited = forge.open_issue("Use the licence", f"Blocked by #{asker}.")
    closed = forge.open_issue("Maybe later", asks(fake_wait="go"))
    assert f"{PLAIN + 3} task(s) created" in sync()

    with started(project, *LANDS) as pilot:
        waits = worktree(project, quote(task(closed), safe="")) / "go.waiting"
        until(pilot, "the worker that waits", waits.exists)
        forge.edit_issue(edited, title="Use the chosen licence")
        forge.edit_issue(closed, state="closed")
        said = sync()
        assert "1 updated" in said and "1 cancelled (issue closed)" in said, said
        pilot.finish()  # nothing claimable is left: the asker waits for a person

    sync()  # each pass asks and closes what is there to: this one, or the one mid-run
    [question] = [c for c in forge.said if c.number == asker]
    assert "MIT or Apache?" in question.body
    assert sum("Landed" in c.body for c in forge.said) == PLAIN
    forge.roles["lead"] = "write"
    forge.comment_as("lead", asker, "MIT.")
    assert f"{task(asker)}: answered by @lead" in sync()
    ran = autopilot(project, *LANDS)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert sync().count("its task landed: commented on and closed") == 2

    landed = [c for c in forge.said if "Landed" in c.body]
    assert sorted(c.number for c in landed) == sorted([*plain, asker, edited])
    for comment in landed:
        commit = comment.body.split("Landed as ", 1)[1].split(" ", 1)[0]
        on = subprocess.run(["git", "merge-base", "--is-ancestor", commit, "integration"],
                            cwd=repo, capture_output=True)  # fmt: skip
        assert on.returncode == 0, f"#{comment.number} names {commit}, not on integration"
    assert all(forge.issues[n].state == "closed" for n in [*plain, asker, edited])
    assert git(repo, "show", "integration:answer.txt").strip() == "MIT."
    tree = git(repo, "ls-tree", "-r", "--name-only", "integration")
    assert task(closed) not in tree and task(edited) in tree
    assert (
        sync().count("Landed") == 0
        and len([c for c in forge.said if "Landed" in c.body]) == PLAIN + 2
    )


def test_a_red_run_makes_one_task_whose_fix_lands(forge: Forge, tmp_path: Path) -> None:
    project = make_project(tmp_path)
    repo = project["repo"]
    git(repo, "branch", "integration")
    forge.workflow_run(7001, [("test", "failure", "FAILED test_login - assert 401 == 200\n")])
    repository = {"full_name": "team/project", "name": "project", "default_branch": "main",
                  "html_url": f"{forge.web}/team/project"}  # fmt: skip
    run = {"id": 7001, "name": "CI", "workflow_id": 31, "head_branch": "main",
           "head_sha": "c" * 40, "conclusion": "failure", "status": "completed",
           "event": "push", "head_repository": {"full_name": "team/project", "name": "project"},
           "html_url": f"{forge.web}/team/project/actions/runs/7001"}  # fmt: skip
    secret = "the-webhook-secret"
    env = {
        "WVO_FORGE_TOKEN": side_of(forge).token,
        "WVO_FORGE_API": forge.api,
        **side_of(forge).hooked(secret, named=True),
    }
    with http_server(project["state"], **env) as server:
        hook = both.Hook(forge, server.base, secret)
        if side_of(forge).kind == "gitlab":  # its pipeline 7001's hook
            red = hook.pipeline(7001, "c" * 40, failed=True)
        else:
            made_run = deliveries.payload("workflow_run", "completed", workflow_run=run,
                                          repository=repository)  # fmt: skip
            red = ("workflow_run", json.dumps(made_run).encode())
        answer = hook.send(*red, "r-1")
        assert answer.status_code == 200, answer.text
        made = str(answer.json()["done"]).removesuffix(": created")
        made_in = f"{side_of(forge).prefix}red/"
        assert made.startswith(made_in) and made.endswith("/cccccccccccc")
        if side_of(forge).kind == "github":
            assert made == "gh/team/project/red/31/cccccccccccc"
    ran = autopilot(project, *LANDS)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert f"landed {made} onto integration" in ran.stdout
    with open_db(project["state"]) as db:
        rows = db.execute("SELECT id, status FROM tasks").fetchall()
    assert [tuple(r) for r in rows] == [(made, "done")]
    assert made in git(repo, "ls-tree", "-r", "--name-only", "integration")
