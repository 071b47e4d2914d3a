"""Which runs count for the landing branch, and which repositories the webhook serves
(rules/webhooks.py, pure): a fork's run under its own branch named main, a pull request's
run, another branch's, and one neither red nor green each say why they do not count."""

from typing import Any

import pytest

from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules.webhooks import Run, run_of, served

REPOSITORY = {"full_name": "team/project", "default_branch": "main", "html_url": "u"}


def workflow(**changed: Any) -> dict[str, Any]:
    run = {"name": "CI", "workflow_id": 55, "head_branch": "main", "head_sha": "a" * 40,
           "conclusion": "failure", "event": "push", "html_url": "r",
           "head_repository": {"full_name": "team/project"}, **changed}  # fmt: skip
    return {"workflow_run": run, "repository": REPOSITORY}


def test_the_repository_s_own_push_or_schedule_on_its_branch_counts() -> None:
    found = run_of("workflow_run", workflow(), "")
    assert found == Run("workflow_run", "team/project", "CI", "55", "main", "a" * 40, "r", False)
    scheduled = run_of("workflow_run", workflow(event="schedule", conclusion="success"), "")
    assert isinstance(scheduled, Run) and scheduled.passed
    # GitHub's names ignore case.
    upper = workflow(head_repository={"full_name": "Team/Project"})
    assert isinstance(run_of("workflow_run", upper, ""), Run)


def test_a_fork_s_a_pull_request_s_and_another_branch_s_runs_say_why_they_do_not_count() -> None:
    fork = run_of("workflow_run", workflow(head_repository={"full_name": "mallory/project"}), "")
    assert fork == ("workflow_run: a run of mallory/project's code (a fork's pull request), "
                    "not of team/project's main: not acted on")  # fmt: skip
    gone = run_of("workflow_run", workflow(head_repository=None), "")
    assert isinstance(gone, str) and "another repository" in gone
    pulled = run_of("workflow_run", workflow(event="pull_request_target"), "")
    assert isinstance(pulled, str) and "'pull_request_target'" in pulled
    assert run_of("workflow_run", workflow(), "release") == (
        "workflow_run: not on release: not acted on")  # fmt: skip
    cancelled = run_of("workflow_run", workflow(conclusion="cancelled"), "")
    assert cancelled == "workflow_run: ended cancelled, neither red nor green: not acted on"
    assert run_of("push", workflow(), "") is None


def test_a_check_suite_of_github_actions_is_left_to_its_workflow_runs() -> None:
    suite = {"head_branch": "main", "head_sha": "b" * 40, "conclusion": "failure",
             "app": {"slug": "github-actions", "id": 15368, "name": "GitHub Actions"}}  # fmt: skip
    assert run_of("check_suite", {"check_suite": suite, "repository": REPOSITORY}, "") is None
    other = {**suite, "app": {"slug": "buildkite", "id": 3, "name": "Buildkite"}}
    found = run_of("check_suite", {"check_suite": other, "repository": REPOSITORY}, "")
    assert isinstance(found, Run) and (found.key, found.name) == ("app-3", "Buildkite")


def test_the_webhook_serves_the_named_repositories_else_the_synced_ones() -> None:
    assert served("Team/Project", ("team/project",), ())
    assert not served("team/other", ("team/project",), ("team/other",))  # named ones win
    assert served("team/other", (), ("team/other",))
    assert not served("team/project", (), ())


def test_the_served_repositories_are_read_as_a_person_writes_them() -> None:
    found = Settings.from_env(env={"WVO_WEBHOOK_REPOS": " Team/Project, ,team/docs,team/project"})
    assert found.webhook_repos == ("team/project", "team/docs")
    for wrong in ("project", "team/", "a/b/c", "team/my project"):
        with pytest.raises(ValidationFailed) as refused:
            Settings.from_env(env={"WVO_WEBHOOK_REPOS": wrong})
        assert f"{wrong.strip()!r} is not OWNER/REPO" in str(refused.value)
