"""From labelled issues to landed, closed issues, end to end: the test forge keeps the
issues, `import github:` keeps them in step with tasks, and the autopilot's fake workers
(in their sandboxes) do them and land them. An issue is edited and another closed while the
autopilot runs; a worker's question is asked on its issue and answered there by a writer;
every issue whose task landed is closed with the commit named, once."""

import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.autopilot.conftest import autopilot, git, make_project
from tests.conftest import open_db, wvo
from tests.forge import deliveries
from tests.forge.description import available
from tests.forge.server import TOKEN, Forge
from tests.http.conftest import http_server
from tests.security.tenancy import started, until, worktree
from wvo_mcp.rules.webhooks import signature

pytestmark = [
    pytest.mark.process,
    pytest.mark.slow,
    pytest.mark.skipif(not available(), reason="no @octokit/openapi (scripts/setup)"),
]
LANDS = ("--merge", "merge", "--onto", "integration", "--check", "true")


def asks(**fake: Any) -> str:
    """An issue body that tells the fake worker what to do, as its words tell a model."""
    return f"```wvo-fake\n{json.dumps(fake)}\n```"


def task(number: int) -> str:
    return f"gh/team/project/{number}"


def test_labelled_issues_land_and_close_with_their_commits_named(
    forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path)
    repo = project["repo"]
    git(repo, "branch", "integration")
    monkeypatch.setenv("WVO_FORGE_TOKEN", TOKEN)

    def sync() -> str:
        done = wvo(project["state"], "import", "github:team/project", "--forge-api", forge.api)
        assert done.returncode == 0, done.stderr
        return done.stdout

    plain: list[int] = []
    for n in range(17):  # in chains of four: each blocked by the one before
        blocked = f" Blocked by #{plain[-1]}." if n % 4 and plain else ""
        plain.append(forge.open_issue(f"change {n}", f"Write its file.{blocked}"))
    asker = forge.open_issue("Pick a licence", asks(fake="ask", fake_question="MIT or Apache?"))
    edited = forge.open_issue("Use the licence", f"Blocked by #{asker}.")
    closed = forge.open_issue("Maybe later", asks(fake_wait="go"))
    assert "20 task(s) created" in sync()

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
    assert sum("Landed" in c.body for c in forge.said) == 17
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
    assert sync().count("Landed") == 0 and len([c for c in forge.said if "Landed" in c.body]) == 19


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
    red = json.dumps(deliveries.payload("workflow_run", "completed", workflow_run=run,
                                        repository=repository)).encode()  # fmt: skip
    secret = "the-webhook-secret"
    env = {"WVO_WEBHOOK_SECRET": secret, "WVO_FORGE_TOKEN": TOKEN, "WVO_FORGE_API": forge.api,
           "WVO_WEBHOOK_REPOS": "team/project"}  # fmt: skip
    with http_server(project["state"], **env) as server:

        def deliver(delivery: str) -> str:
            headers = {"X-GitHub-Delivery": delivery, "X-GitHub-Event": "workflow_run",
                       "X-Hub-Signature-256": signature(secret, red)}  # fmt: skip
            answer = httpx.post(f"{server.base}/webhooks/github", content=red,
                                headers=headers, timeout=30)  # fmt: skip
            assert answer.status_code == 200, answer.text
            return str(answer.json()["done"])

        made = "gh/team/project/red/31/cccccccccccc"
        assert deliver("r-1") == f"{made}: created"
    ran = autopilot(project, *LANDS)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert f"landed {made} onto integration" in ran.stdout
    with open_db(project["state"]) as db:
        rows = db.execute("SELECT id, status FROM tasks").fetchall()
    assert [tuple(r) for r in rows] == [(made, "done")]
    assert made in git(repo, "ls-tree", "-r", "--name-only", "integration")
