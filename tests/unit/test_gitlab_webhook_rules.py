"""GitLab's deliveries read as GitHub's (rules/gitlab_webhooks.py, pure): the secret token and
the signature, which projects are served, an Issue Hook's action in GitHub's words, a note
on an issue and on anything else, and which pipelines count for the landing branch."""

import base64
from typing import Any

import pytest

from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules import gitlab_webhooks as gl
from wvo_mcp.rules.issue_tasks import IssueComment, task_id
from wvo_mcp.rules.webhooks import Run, named

KEY = "whsec_" + base64.b64encode(b"k" * 32).decode()
PROJECT = {"id": 7, "path_with_namespace": "group/sub/project", "default_branch": "main",
           "web_url": "https://gitlab.example.com/group/sub/project"}  # fmt: skip


def test_the_secret_token_must_be_the_whole_secret() -> None:
    assert gl.token_matches("s3cret", "s3cret")
    for wrong in ("s3cre", "s3cret ", "S3CRET", "", None):
        assert not gl.token_matches("s3cret", wrong)
    assert not gl.token_matches("", "")  # no secret admits nothing


def test_a_signature_covers_the_id_the_time_and_the_body() -> None:
    good = gl.signature(KEY, "id-1", "1000", b"{}")
    assert good.startswith("v1,")
    assert gl.signature_problem(KEY, "id-1", "1000", good, b"{}", 1000.0) == ""
    assert (
        gl.signature_problem(KEY, "id-1", "1000", f"v1,bogus {good}", b"{}", 1200.0) == ""
    )  # rotated
    assert "does not match" in gl.signature_problem(KEY, "id-2", "1000", good, b"{}", 1000.0)
    assert "does not match" in gl.signature_problem(KEY, "id-1", "1000", good, b"{ }", 1000.0)
    assert "webhook-timestamp" in gl.signature_problem(KEY, "id-1", "1000", good, b"{}", 1301.0)
    assert "missing" in gl.signature_problem(KEY, "id-1", None, good, b"{}", 1000.0)
    assert gl.signing_key("whsec_!!") is None and gl.signing_key("s3cret") is None
    assert gl.signing_key(KEY) == b"k" * 32


def test_the_gitlab_webhook_serves_only_the_projects_named_gitlab_path() -> None:
    found = Settings.from_env(env={"WVO_WEBHOOK_REPOS": "team/project, gitlab:Group/Sub/Project"})
    assert found.webhook_repos == ("team/project", "gitlab:group/sub/project")
    assert gl.served("group/SUB/project", found.webhook_repos)
    assert not gl.served("team/project", found.webhook_repos)  # GitHub's name is not GitLab's
    assert named(found.webhook_repos) == ["team/project"]  # nor the other way round
    for wrong in ("gitlab:project", "gitlab:group/", "gitlab:a/my project"):
        with pytest.raises(ValidationFailed, match="gitlab:GROUP/PROJECT"):
            Settings.from_env(env={"WVO_WEBHOOK_REPOS": wrong})
    with pytest.raises(ValidationFailed, match="WVO_GITLAB_WEBHOOK_SIGNING_TOKEN") as refused:
        Settings.from_env(env={"WVO_GITLAB_WEBHOOK_SIGNING_TOKEN": "whsec_not a key"})
    assert "not a key" not in str(refused.value)  # a secret is never said


def test_a_delivery_is_kept_by_its_idempotency_key_else_its_event_uuid() -> None:
    assert gl.delivery_id("key", "event") == "key"
    assert gl.delivery_id(None, "event") == "event"
    assert gl.delivery_id(None, None) == ""


def hook(action: str, changes: dict[str, Any]) -> dict[str, Any]:
    return {"object_attributes": {"action": action}, "changes": changes}


def labels(*titles: str) -> list[dict[str, str]]:
    return [{"title": t} for t in titles]


def test_an_issue_hook_s_action_in_github_s_words() -> None:
    assert gl.issue_action(hook("open", {}), "wvo", False) == ("opened", "")
    assert gl.issue_action(hook("close", {}), "wvo", True) == ("closed", "")
    added = {"labels": {"previous": labels("bug"), "current": labels("bug", "WVO")}}
    assert gl.issue_action(hook("update", added), "wvo", False) == ("labeled", "wvo")
    both = {**added, "description": {"previous": "a", "current": "b"}}
    assert gl.issue_action(hook("update", both), "wvo", False) == ("labeled", "wvo")
    assert gl.issue_action(hook("update", both), "wvo", True) == ("edited", "")
    removed = {"labels": {"previous": labels("wvo"), "current": []}}
    assert gl.issue_action(hook("update", removed), "wvo", True) == ("unlabeled", "")
    assert gl.issue_action(hook("update", {"assignees": {}}), "wvo", True) == ("changed", "")


def test_an_issue_hook_s_issue_and_whether_its_author_made_it() -> None:
    payload = {"object_attributes": {"iid": 4, "id": 20004, "title": "T", "description": "B",
                                     "state": "opened", "url": "u", "author_id": 5},
               "labels": labels("wvo"), "user": {"id": 5, "username": "lead"}}  # fmt: skip
    issue = gl.issue_of(payload)
    assert (issue.number, issue.state, issue.labels, issue.author) == (4, "open", ("wvo",), "")
    assert gl.by_its_author(payload) and gl.sender(payload) == "lead"
    assert not gl.by_its_author({**payload, "user": {"id": 6, "username": "dev"}})
    assert task_id("group/sub/project", 4, "gitlab") == "gl/group/sub/project/4"


def test_a_note_counts_only_as_a_new_note_on_an_issue() -> None:
    attributes = {"id": 9, "note": "/wvo tell x", "noteable_type": "Issue",
                  "created_at": "2026-01-02 10:00:00 UTC", "url": "u"}  # fmt: skip
    note = {"object_attributes": attributes, "issue": {"iid": 4}, "user": {"username": "lead"}}
    assert gl.note_of(note) == IssueComment(9, 4, "lead", "/wvo tell x", "2026-01-02T10:00:00Z",
                                            "u")  # fmt: skip
    for changed, why in (({"noteable_type": "MergeRequest"}, "no issue"),
                         ({"system": True}, "system note"),
                         ({"action": "update"}, "not a new note")):  # fmt: skip
        found = gl.note_of({**note, "object_attributes": {**attributes, **changed}})
        assert isinstance(found, str) and why in found


def pipeline(**changed: Any) -> dict[str, Any]:
    attributes = {"id": 31, "ref": "main", "tag": False, "sha": "a" * 40, "source": "push",
                  "status": "failed", **changed}  # fmt: skip
    return {"object_attributes": attributes, "project": PROJECT}


def test_a_pipeline_counts_when_pushed_or_scheduled_on_the_branch_by_the_project_itself() -> None:
    found = gl.pipeline_of(pipeline(), "")
    assert found == Run("pipeline", "group/sub/project", "pipeline", "pipeline", "main", "a" * 40,
                        f"{PROJECT['web_url']}/-/pipelines/31", False, forge="gitlab")  # fmt: skip
    green = gl.pipeline_of(pipeline(status="success", source="schedule"), "")
    assert isinstance(green, Run) and green.passed
    for changed, why in (({"status": "canceled"}, "neither failed nor passed"),
                         ({"ref": "feature"}, "not on main"),
                         ({"tag": True}, "not on main"),
                         ({"source": "merge_request_event"}, "'merge_request_event'"),
                         ({"source": "web"}, "'web'")):  # fmt: skip
        said = gl.pipeline_of(pipeline(**changed), "")
        assert isinstance(said, str) and why in said, (changed, said)
    fork = {**pipeline(), "merge_request": {"source_project_id": 99}}
    assert "a fork's merge request" in str(gl.pipeline_of(fork, ""))
    own = {**pipeline(), "merge_request": {"source_project_id": 7}}
    assert isinstance(gl.pipeline_of(own, ""), Run)
    assert gl.pipeline_of(pipeline(), "release") == "Pipeline Hook: not on release: not acted on"
    assert gl.pipeline_of({"object_attributes": {}}, "") is None


def test_a_confidential_issue_is_known_by_its_event_or_its_own_word() -> None:
    assert gl.confidential("Confidential Issue Hook", {})
    assert gl.confidential("Confidential Note Hook", {})
    assert gl.confidential("Issue Hook", {"object_attributes": {"confidential": True}})
    assert gl.confidential("Note Hook", {"issue": {"confidential": True}})
    assert not gl.confidential("Issue Hook", {"object_attributes": {"confidential": False}})
    # A note's own attributes say nothing of the issue's.
    assert not gl.confidential("Note Hook", {"object_attributes": {"confidential": True}})
