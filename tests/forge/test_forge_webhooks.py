"""The test forges send webhooks as GitHub and GitLab do: each event as the forge's state
changes, in order, to the receiver a test names (here a recorder on 127.0.0.1), signed or
carrying the secret token as each forge does, each payload held to the forge's own types;
`lose` keeps the deliveries it picks from being sent."""

import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.forge import deliveries
from tests.forge.conftest import seeded
from tests.forge.description import available as github_available
from tests.forge.gitlab import server as gitlab
from tests.forge.gitlab.description import available as gitlab_available
from tests.forge.server import GRAPHQL, TOKEN, Forge
from tests.listening import serve_in_thread
from wvo_mcp.rules.gitlab_webhooks import token_matches
from wvo_mcp.rules.webhooks import signed

SECRET = "the-webhook-secret"
github_only = pytest.mark.skipif(not (github_available() and deliveries.available()),
                                 reason="no @octokit/openapi or webhooks-schemas")  # fmt: skip
gitlab_only = pytest.mark.skipif(not gitlab_available(), reason="no go-gitlab (scripts/setup)")


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def event(self) -> str:
        return self.headers.get("x-github-event") or self.headers["x-gitlab-event"]

    @property
    def payload(self) -> Any:
        return json.loads(self.body)

    @property
    def action(self) -> str:
        attributes = self.payload.get("object_attributes") or {}
        return str(self.payload.get("action") or attributes.get("action")
                   or attributes.get("status") or attributes.get("noteable_type"))  # fmt: skip


class Receiver:
    """A webhook's receiver that records each delivery and answers 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        lock = threading.Lock()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with lock:
                    received.append(Received(self.path, headers, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def events(self) -> list[tuple[str, str]]:
        return [(r.event, r.action) for r in self.received]

    def of(self, event: str, action: str) -> list[Any]:
        return [r.payload for r in self.received if (r.event, r.action) == (event, action)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    serve_in_thread(found.http)
    yield found
    found.http.shutdown()
    found.http.server_close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[gitlab.Forge]:
    found = gitlab.Forge(tmp_path, seeded(tmp_path / "seed"))
    with found:
        yield found
        assert found.violations == [], found.violations[:5]


def _github(forge: Forge, method: str, path: str, **body: Any) -> Any:
    answer = httpx.request(method, f"{forge.api}/repos/{forge.full}{path}", json=body or None,
                           headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)  # fmt: skip
    assert answer.status_code < 300, answer.text
    return answer.json()


def _gitlab(forge: gitlab.Forge, method: str, path: str, **body: Any) -> Any:
    project = urllib.parse.quote(forge.full, safe="")
    answer = httpx.request(method, f"{forge.api}/projects/{project}{path}", json=body or None,
                           headers={"PRIVATE-TOKEN": gitlab.TOKEN}, timeout=30)  # fmt: skip
    assert answer.status_code < 300, answer.text
    return answer.json()


PULL = [("pull_request", "opened"), ("check_run", "created"), ("check_run", "completed"),
        ("check_suite", "completed")]  # fmt: skip


@github_only
def test_github_sends_a_pull_request_s_life_signed_and_in_order(
    forge: Forge, receiver: Receiver
) -> None:
    forge.deliver_to(receiver.url, SECRET)
    head = forge.push_branch("wvo/t1", {"a.txt": "a\n"})
    number = _github(forge, "POST", "/pulls", head="wvo/t1", base="main", title="t1")["number"]
    forge.wait_checks()
    forge.review(number, "APPROVED")
    _github(forge, "PUT", f"/pulls/{number}/merge", sha=head, merge_method="merge")
    forge.settled()
    done = [*PULL, ("pull_request_review", "submitted"), ("pull_request", "closed")]
    assert receiver.events() == done
    assert forge.sent == [(*said, 200) for said in done] and forge.lost == []
    for one in receiver.received:
        assert one.path == "/webhooks/github"
        assert signed(SECRET, one.body, one.headers["x-hub-signature-256"])
        assert one.headers["user-agent"] == "GitHub-Hookshot/test"
        assert one.payload["repository"]["full_name"] == forge.full
    assert len({r.headers["x-github-delivery"] for r in receiver.received}) == len(done)
    [opened] = receiver.of("pull_request", "opened")
    assert (opened["number"], opened["pull_request"]["head"]["sha"]) == (number, head)
    assert opened["pull_request"]["head"]["ref"] == "wvo/t1" and opened["sender"]["login"]
    [check] = receiver.of("check_run", "completed")
    assert (check["check_run"]["head_sha"], check["check_run"]["conclusion"]) == (head, "success")
    [pull] = check["check_run"]["pull_requests"]
    assert (pull["number"], pull["head"]["sha"], pull["base"]["ref"]) == (number, head, "main")
    [suite] = receiver.of("check_suite", "completed")
    assert suite["check_suite"]["head_sha"] == head
    assert [p["number"] for p in suite["check_suite"]["pull_requests"]] == [number]
    [review] = receiver.of("pull_request_review", "submitted")
    assert (review["review"]["state"], review["review"]["user"]["login"]) == ("approved",
                                                                            "reviewer")  # fmt: skip
    assert (review["review"]["commit_id"], review["pull_request"]["number"]) == (head, number)
    [closed] = receiver.of("pull_request", "closed")
    assert closed["pull_request"]["merged"] is True
    assert closed["pull_request"]["merge_commit_sha"] == forge.tip()


@github_only
def test_github_tells_a_push_a_dismissal_an_edit_and_a_close_and_loses_what_it_is_told(
    forge: Forge, receiver: Receiver
) -> None:
    forge.dismiss_stale = True
    forge.lose = lambda event, payload: event == "check_suite"
    forge.deliver_to(receiver.url, SECRET)
    first = forge.push_branch("wvo/t2", {"b.txt": "b\n"})
    number = _github(forge, "POST", "/pulls", head="wvo/t2", base="main", title="t2")["number"]
    forge.wait_checks()
    forge.review(number, "APPROVED")
    second = forge.commit_on_branch(number, {"b.txt": "b2\n"})
    forge.wait_checks()
    _github(forge, "PATCH", f"/pulls/{number}", title="t2, again")
    forge.close(number)
    forge.settled()
    assert receiver.events() == [
        ("pull_request", "opened"), ("check_run", "created"), ("check_run", "completed"),
        ("pull_request_review", "submitted"), ("pull_request", "synchronize"),
        ("pull_request_review", "dismissed"), ("check_run", "created"),
        ("check_run", "completed"), ("pull_request", "edited"), ("pull_request", "closed"),
    ]  # fmt: skip
    assert forge.lost == [("check_suite", "completed")] * 2
    [pushed] = receiver.of("pull_request", "synchronize")
    assert (pushed["before"], pushed["after"]) == (first, second)
    assert pushed["pull_request"]["head"]["sha"] == second
    [dismissed] = receiver.of("pull_request_review", "dismissed")
    assert (dismissed["review"]["state"], dismissed["review"]["commit_id"]) == ("dismissed",
                                                                              first)  # fmt: skip
    [edited] = receiver.of("pull_request", "edited")
    assert edited["changes"] == {"title": {"from": "t2"}}
    [closed] = receiver.of("pull_request", "closed")
    assert closed["pull_request"]["merged"] is False and closed["sender"]["login"] == "person"
    assert [c["check_run"]["head_sha"] for c in receiver.of("check_run", "completed")] == [
        first, second]  # fmt: skip


@github_only
def test_github_s_merge_queue_tells_its_group_from_request_to_end(
    forge: Forge, receiver: Receiver
) -> None:
    forge.merge_queue = True
    forge.deliver_to(receiver.url, SECRET)
    passing = _queued(forge, "wvo/t3")
    forge.failing = lambda sha: sha in forge.groups  # the next group's checks fail
    failing = _queued(forge, "wvo/t4")
    forge.settled()
    assert [e for e in receiver.events() if e[0] in ("merge_group", "pull_request")] == [
        ("pull_request", "opened"), ("merge_group", "checks_requested"),
        ("pull_request", "closed"), ("merge_group", "destroyed"),
        ("pull_request", "opened"), ("merge_group", "checks_requested"),
        ("merge_group", "destroyed"),
    ]  # fmt: skip
    merged, dropped = receiver.of("merge_group", "destroyed")
    assert (merged["reason"], dropped["reason"]) == ("merged", "dequeued")
    group = merged["merge_group"]
    assert group["head_sha"] == forge.groups[0] == forge.pulls[passing].merge_commit
    assert group["head_ref"].endswith(f"/pr-{passing}-{group['base_sha']}")
    assert dropped["merge_group"]["head_ref"].split("/")[-1].startswith(f"pr-{failing}-")
    group_checks = [c["check_run"] for c in receiver.of("check_run", "completed")
                    if c["check_run"]["head_sha"] in forge.groups]  # fmt: skip
    assert [(c["conclusion"], c["pull_requests"]) for c in group_checks] == [
        ("success", []), ("failure", [])]  # fmt: skip


def _queued(forge: Forge, branch: str) -> int:
    """A pull request of `branch`, checked, approved, and through the merge queue."""
    forge.push_branch(branch, {f"{branch}.txt": "q\n"})
    number: int = _github(forge, "POST", "/pulls", head=branch, base="main", title=branch)[
        "number"]  # fmt: skip
    forge.wait_checks()
    forge.review(number, "APPROVED")
    mutation = ("mutation($id: ID!) { enqueuePullRequest(input: {pullRequestId: $id}) "
                "{ mergeQueueEntry { state } } }")  # fmt: skip
    answer = httpx.post(f"{forge.web}{GRAPHQL}", json={"query": mutation,
                        "variables": {"id": f"PR_{number}"}},
                        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)  # fmt: skip
    assert answer.json()["data"]["enqueuePullRequest"]["mergeQueueEntry"]["state"] == "QUEUED"
    forge.wait_checks()
    return number


@github_only
def test_a_receiver_that_cannot_be_reached_is_recorded_and_nothing_is_retried(
    forge: Forge, receiver: Receiver
) -> None:
    gone = Receiver()  # bound, never served, then closed: its port refuses
    gone.http.server_close()
    forge.deliver_to(gone.url, SECRET)
    forge.push_branch("wvo/t5", {"c.txt": "c\n"})
    _github(forge, "POST", "/pulls", head="wvo/t5", base="main", title="t5")
    forge.wait_checks()
    forge.settled()
    assert forge.sent == [(*said, 0) for said in PULL]
    forge.deliver_to(receiver.url, SECRET)  # pointed elsewhere: only what happens next
    forge.settled()
    assert receiver.received == []


@gitlab_only
def test_gitlab_sends_a_merge_request_s_life_with_its_token_and_in_order(
    lab: gitlab.Forge, receiver: Receiver
) -> None:
    lab.approvals = 2
    lab.roles["amy"] = "write"
    lab.deliver_to(receiver.url, SECRET)
    head = lab.push_branch("wvo/t1", {"a.txt": "a\n"})
    made = _gitlab(lab, "POST", "/merge_requests", source_branch="wvo/t1", target_branch="main",
                   title="t1")  # fmt: skip
    number = made["iid"]
    lab.wait_checks()
    lab.review(number, "APPROVED")
    lab.review(number, "APPROVED", user="amy")
    _gitlab(lab, "PUT", f"/merge_requests/{number}/merge", sha=head)
    lab.settled()
    mr, pipeline = "Merge Request Hook", "Pipeline Hook"
    done = [(mr, "open"), (pipeline, "running"), (pipeline, "success"), (mr, "approval"),
            (mr, "approved"), (mr, "merge")]  # fmt: skip
    assert receiver.events() == done
    assert lab.sent == [(*said, 200) for said in done] and lab.lost == []
    for one in receiver.received:
        assert one.path == "/webhooks/gitlab"
        assert token_matches(SECRET, one.headers["x-gitlab-token"])
        assert one.headers["x-gitlab-event-uuid"] and one.headers["x-gitlab-webhook-uuid"]
        assert one.payload["project"]["path_with_namespace"] == lab.full
    for payload in receiver.of(mr, "open") + receiver.of(mr, "approved"):
        attributes = payload["object_attributes"]
        assert (attributes["iid"], attributes["last_commit"]["id"]) == (number, head)
        assert (attributes["source_branch"], attributes["target_branch"]) == ("wvo/t1", "main")
    [approval] = receiver.of(mr, "approval")
    [approved] = receiver.of(mr, "approved")
    assert (approval["user"]["username"], approved["user"]["username"]) == ("reviewer", "amy")
    assert approved["object_attributes"]["detailed_merge_status"] == "mergeable"
    [ended] = receiver.of(pipeline, "success")
    found = ended["object_attributes"]
    assert (found["sha"], found["ref"]) == (head, "wvo/t1")
    assert ended["merge_request"] is None  # a branch pipeline, as the test GitLab runs them
    [merged] = receiver.of(mr, "merge")
    assert merged["object_attributes"]["state"] == "merged"
    assert merged["object_attributes"]["merge_commit_sha"] == lab.tip()


@gitlab_only
def test_gitlab_tells_threads_notes_pushes_edits_and_a_close(
    lab: gitlab.Forge, receiver: Receiver
) -> None:
    lab.lose = lambda event, payload: event == "Pipeline Hook"
    lab.deliver_to(receiver.url, SECRET)
    first = lab.push_branch("wvo/t2", {"b.txt": "b\n"})
    number = _gitlab(lab, "POST", "/merge_requests", source_branch="wvo/t2",
                     target_branch="main", title="t2")["iid"]  # fmt: skip
    lab.wait_checks()
    lab.review(number, "CHANGES_REQUESTED", "fix it", [("b.txt", 1, "not b")])
    lab.comment_on_pull_as("amy", number, "me too")
    second = lab.commit_on_branch(number, {"b.txt": "b2\n"})
    lab.wait_checks()
    _gitlab(lab, "PUT", f"/merge_requests/{number}", title="t2, again")
    lab.close(number)
    lab.settled()
    mr, note = "Merge Request Hook", "Note Hook"
    assert receiver.events() == [(mr, "open"), (note, "MergeRequest"), (note, "MergeRequest"),
                                 (note, "MergeRequest"), (mr, "update"), (mr, "update"),
                                 (mr, "close")]  # fmt: skip
    assert lab.lost == [("Pipeline Hook", s) for s in ("running", "success") * 2]
    on_diff, said, other = receiver.of(note, "MergeRequest")
    assert on_diff["object_attributes"]["type"] == "DiffNote"
    assert on_diff["object_attributes"]["position"]["new_path"] == "b.txt"
    assert said["object_attributes"]["note"] == "fix it"
    assert other["user"]["username"] == "amy" and other["object_attributes"]["type"] is None
    assert {n["merge_request"]["iid"] for n in (on_diff, said, other)} == {number}
    assert {n["merge_request"]["last_commit"]["id"] for n in (on_diff, said, other)} == {first}
    pushed, edited = receiver.of(mr, "update")
    assert pushed["object_attributes"]["oldrev"] == first
    assert pushed["object_attributes"]["last_commit"]["id"] == second
    assert "oldrev" not in edited["object_attributes"]
    assert edited["changes"] == {"title": {"previous": "t2", "current": "t2, again"}}
    [closed] = receiver.of(mr, "close")
    assert closed["object_attributes"]["state"] == "closed"
