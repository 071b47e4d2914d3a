"""What a delivery says of a pull request, and when what was heard is worth a look
(rules/pull_news.py): GitHub's payloads as its published schemas have them
(tests/forge/deliveries.py), GitLab's as its docs do."""

from typing import Any

import pytest

from tests.forge import deliveries
from wvo_mcp.rules import pull_news
from wvo_mcp.rules.pull_news import Heard, News, hear, worth_a_look
from wvo_mcp.rules.pulls import Requirements

HEAD, OLD = "a" * 40, "b" * 40
REPO = {"full_name": "team/project", "name": "project"}
needs_schemas = pytest.mark.skipif(not deliveries.available(), reason="no webhooks-schemas")


def pull(number: int = 3, sha: str = HEAD, **more: Any) -> dict[str, Any]:
    return {"number": number, "head": {"sha": sha, "ref": "wvo/T1"}, **more}


def carried(number: int) -> dict[str, Any]:
    """A pull request as a check run lists it."""
    repo = {"id": 1, "url": "https://api.github.com/repos/team/project", "name": "project"}
    return {"id": number, "number": number, "url": f"https://api.github.com/pulls/{number}",
            "head": {"ref": "wvo/T1", "sha": HEAD, "repo": repo},
            "base": {"ref": "main", "sha": OLD, "repo": repo}}  # fmt: skip


@needs_schemas
def test_github_s_pull_request_review_and_check_deliveries_read_as_news() -> None:
    sender = {"login": "amy", "id": 1, "type": "User"}
    opened = deliveries.payload("pull_request", "opened", pull_request=pull(), repository=REPO,
                                sender=sender)  # fmt: skip
    assert pull_news.github("pull_request", opened) == [News(3, HEAD, "pull", "amy", "opened")]
    merged = deliveries.payload("pull_request", "closed", repository=REPO, sender=sender,
                                pull_request=pull(merged=True))  # fmt: skip
    assert pull_news.github("pull_request", merged)[0].state == "merged"
    edited = deliveries.payload("pull_request", "edited", pull_request=pull(), repository=REPO,
                                changes={}, sender=sender)  # fmt: skip
    assert pull_news.github("pull_request", edited) == []  # its text: no verdict changes
    review = deliveries.payload(
        "pull_request_review", "submitted", repository=REPO, pull_request=pull(),
        review={"state": "approved", "commit_id": HEAD, "user": sender},
    )  # fmt: skip
    assert pull_news.github("pull_request_review", review) == [
        News(3, HEAD, "review", "amy", "APPROVED")
    ]
    run = {"name": "check", "head_sha": HEAD, "status": "completed", "conclusion": "failure",
           "pull_requests": [carried(3), carried(5)]}  # fmt: skip
    completed = deliveries.payload("check_run", "completed", check_run=run, repository=REPO)
    assert pull_news.github("check_run", completed) == [
        News(3, HEAD, "check", "check", "failure"),
        News(5, HEAD, "check", "check", "failure"),
    ]
    commented = deliveries.payload(
        "pull_request_review", "submitted", repository=REPO, pull_request=pull(),
        review={"state": "commented", "commit_id": HEAD, "user": sender},
    )  # fmt: skip
    assert pull_news.github("pull_request_review", commented) == []  # neither approves nor asks
    queued = {**run, "status": "queued", "conclusion": None}
    created = deliveries.payload("check_run", "created", repository=REPO, check_run=queued)
    assert pull_news.github("check_run", created) == []  # a check that starts changes nothing


def test_a_status_names_its_commit_and_a_merge_group_its_pull_request() -> None:
    status = {"sha": HEAD, "state": "success", "context": "ci/build", "repository": REPO}
    assert pull_news.github("status", status) == [News(0, HEAD, "check", "ci/build", "success")]
    assert pull_news.github("status", {**status, "state": "pending"}) == []
    group = {
        "action": "destroyed",
        "reason": "invalidated",
        "merge_group": {"head_ref": f"refs/heads/gh-readonly-queue/main/pr-12-{HEAD}"},
    }
    assert pull_news.github("merge_group", group) == [News(12, "", "queue", "", "invalidated")]


def test_gitlab_s_merge_request_pipeline_and_note_hooks_read_as_news() -> None:
    user = {"username": "amy"}
    approved = {"user": user, "object_attributes": {"iid": 4, "action": "approved",
                                                    "last_commit": {"id": HEAD}}}  # fmt: skip
    assert pull_news.gitlab("Merge Request Hook", approved) == [
        News(4, HEAD, "review", "amy", "APPROVED")
    ]
    pushed = {"user": user, "object_attributes": {"iid": 4, "action": "update", "oldrev": OLD,
                                                  "last_commit": {"id": HEAD}}}  # fmt: skip
    assert pull_news.gitlab("Merge Request Hook", pushed)[0].state == "synchronize"
    retitled = {"user": user, "object_attributes": {"iid": 4, "action": "update"}}
    assert pull_news.gitlab("Merge Request Hook", retitled) == []
    ended = {"object_attributes": {"sha": HEAD, "status": "failed"}, "merge_request": {"iid": 4}}
    assert pull_news.gitlab("Pipeline Hook", ended) == [
        News(4, HEAD, "check", "pipeline", "failure")
    ]
    running = {"object_attributes": {"sha": HEAD, "status": "running"}, "merge_request": None}
    assert pull_news.gitlab("Pipeline Hook", running) == []
    note = {"user": user, "object_attributes": {"noteable_type": "MergeRequest",
                                                "type": "DiscussionNote"},
            "merge_request": {"iid": 4, "last_commit": {"id": HEAD}}}  # fmt: skip
    assert pull_news.gitlab("Note Hook", note) == [News(4, HEAD, "review", "amy", "COMMENTED")]
    # A comment outside a thread (GitLab's `type` null) cannot block a merge: no look.
    said = {**note, "object_attributes": {"noteable_type": "MergeRequest", "type": None}}
    assert pull_news.gitlab("Note Hook", said) == []


CHECKED = Requirements(checks=("check", "lint"), approvals=1)


def heard(*news: News) -> Heard:
    return hear(Heard(), news, HEAD, "github")


def test_a_look_is_worth_it_once_every_required_check_passed_and_approvals_reach_the_bound() -> (
    None
):
    passed = News(3, HEAD, "check", "check", "success")
    linted = News(3, HEAD, "check", "lint", "success")
    approved = News(3, HEAD, "review", "amy", "APPROVED")
    assert not worth_a_look(heard(passed, approved), CHECKED)  # lint still runs
    assert not worth_a_look(heard(passed, linted), CHECKED)  # nobody approved
    assert worth_a_look(heard(passed, linted, approved), CHECKED)
    dismissed = News(3, HEAD, "review", "amy", "DISMISSED")
    assert not worth_a_look(heard(passed, linted, approved, dismissed), CHECKED)
    suite = News(3, HEAD, "suite", "github-actions", "success")  # names unknown: look
    assert worth_a_look(heard(suite, approved), CHECKED)
    assert not worth_a_look(heard(News(3, OLD, "check", "check", "failure")), CHECKED)


def test_what_sends_it_back_or_moves_it_is_worth_a_look_at_once() -> None:
    assert worth_a_look(heard(News(3, HEAD, "check", "lint", "failure")), CHECKED)
    assert worth_a_look(heard(News(3, HEAD, "review", "eve", "CHANGES_REQUESTED")), CHECKED)
    assert worth_a_look(heard(News(3, HEAD, "pull", "bob", "closed")), CHECKED)
    assert worth_a_look(heard(News(3, OLD, "pull", "bob", "synchronize")), CHECKED)
    assert not worth_a_look(heard(News(3, HEAD, "pull", "wvo", "synchronize")), CHECKED)
    assert not worth_a_look(heard(News(3, HEAD, "pull", "wvo", "opened")), CHECKED)
    assert worth_a_look(heard(News(3, HEAD, "pull", "wvo", "opened")), Requirements())
    assert worth_a_look(heard(News(3, HEAD, "pull", "wvo", "opened")),
                        Requirements(checks=("check",), known=False))  # fmt: skip
    once = pull_news.looked(heard(News(3, HEAD, "pull", "bob", "closed")))
    assert not worth_a_look(once, CHECKED)


def test_a_note_keeps_an_approval_and_a_restack_carries_the_approvals_a_look_counted() -> None:
    passed, linted = (
        News(3, HEAD, "check", "check", "success"),
        News(3, HEAD, "check", "lint", "success"),
    )
    approved = News(3, HEAD, "review", "amy", "APPROVED")
    noted = News(3, HEAD, "review", "amy", "COMMENTED")  # a GitLab note of amy's thread
    kept = hear(Heard(), [approved, noted], HEAD, "gitlab")
    assert kept.approvers == {"amy"} and kept.asked
    # A look counted bob's approval (amy's was an outsider's): the heard ones give way.
    counted = pull_news.looked(kept, frozenset({"bob"}))
    assert counted.approvers == {"bob"} and not counted.new
    assert pull_news.looked(kept).approvers == {"amy"}  # its reviews not judged: kept
    # The queue pushed a restacked head: its checks heard, the approval carried, a look due.
    after = hear(pull_news.restacked(counted), [
        News(3, OLD, "check", "check", "success"), News(3, OLD, "check", "lint", "success"),
    ], OLD, "github")  # fmt: skip
    assert worth_a_look(after, CHECKED) and not after.passed - {"check", "lint"}
    assert not worth_a_look(hear(Heard(), [passed, linted], HEAD, "github"), CHECKED)
