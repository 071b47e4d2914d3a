"""The product's GitLab client (wvo_mcp/forge/gitlab.py) against the test GitLab: each call as
GitLab answers it, the merge's compare-and-swap, the merge train, threads and pipelines as
the queue reads them, each fault as a Fault that says what to do, and nothing the client
writes ever carrying a quick action GitLab would run."""

import http.server
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.forge import both
from tests.forge.gitlab.server import TOKEN, Forge, quick_actions
from tests.listening import serve_in_thread
from wvo_mcp.autopilot.landing.target import ForgeReach
from wvo_mcp.errors import Fault
from wvo_mcp.forge import Look, Merged
from wvo_mcp.forge.gitlab import GitLab
from wvo_mcp.forge.gitlab_http import Api

forge = both.forge  # the fixture, on the test GitLab alone
pytestmark = pytest.mark.parametrize("forge", ["gitlab"], indirect=True)


def _client(forge: Forge, **options: object) -> GitLab:
    return GitLab(forge.api, forge.full, TOKEN, **options)


def test_a_merge_request_is_opened_polled_and_merged_only_at_the_head_it_names(
    forge: Forge,
) -> None:
    client = _client(forge)
    assert client.kind == "gitlab" and forge.full == "group/sub/project"
    repo = client.repository()
    assert repo.name == forge.full and repo.methods == ("merge", "squash")
    assert repo.url == f"{forge.web}/group/sub/project"
    required = client.requirements("main")
    assert (required.checks, required.approvals, required.strict, required.merge_queue) == (
        ("pipeline",), 1, False, False)  # fmt: skip
    head = forge.push_branch("wvo/t1", {"a.txt": "a\n"})
    assert client.find("wvo/t1", "main") is None
    issue = forge.open_issue("an issue first")  # issues count apart from merge requests
    opened = client.open("wvo/t1", "main", "t1: a", "the body")
    assert (opened.number, opened.head, opened.state, opened.merged) == (1, head, "open", False)
    assert opened.url.endswith("/group/sub/project/-/merge_requests/1") and issue == 1
    found = client.find("wvo/t1", "main")
    assert found is not None and (found.number, found.head) == (1, head)
    forge.wait_checks()
    [check] = client.checks(head)
    assert (check.name, check.state, check.conclusion) == ("pipeline", "success", "success")
    assert check.url.startswith(f"{forge.web}/group/sub/project/-/pipelines/")
    assert client.pull(1).mergeable_state == "blocked"  # not approved yet
    forge.review(1, "APPROVED")
    [review] = client.reviews(1)
    assert (review.author, review.state) == ("reviewer", "APPROVED")
    assert client.pull(1).mergeable_state == "clean"
    before = len(forge.requests)
    moved = client.merge(1, "0" * 40, "merge", "t1: a", "")
    assert not moved.merged and moved.moved and forge.tip() != head
    assert forge.requests[before:] == [("PUT", f"/projects/{forge.id}/merge_requests/1/merge",
                                        409)]  # fmt: skip
    merged = client.merge(1, head, "merge", "t1: a", "landed by the queue")
    assert merged.merged and forge.tip() == merged.commit and forge.contains(head, forge.tip())
    assert "landed by the queue" in forge.git("log", "-1", "--format=%B", forge.tip())
    after = client.pull(1)
    assert after.merged and after.merge_commit == merged.commit and after.state == "closed"


def test_a_push_after_the_check_moves_the_head_and_nothing_merges(forge: Forge) -> None:
    client = _client(forge)
    forge.approvals = 0
    head = forge.push_branch("wvo/t2", {"b.txt": "b\n"})
    client.open("wvo/t2", "main", "t2", "")
    forge.wait_checks()
    tip = forge.tip()
    forge.commit_on_branch(1, {"b.txt": "a person's b\n"})
    moved = client.merge(1, head, "merge", "t2", "")
    assert (moved.merged, moved.moved) == (False, True) and forge.tip() == tip
    assert "SHA does not match HEAD" in moved.why


def test_an_unresolved_thread_comes_back_with_its_file_line_and_text(forge: Forge) -> None:
    client = _client(forge)
    head = forge.push_branch("wvo/t3", {"c.txt": "c\n"})
    client.open("wvo/t3", "main", "t3", "")
    forge.wait_checks()
    forge.review(1, "APPROVED", user="lead")
    forge.roles["lead"] = "maintain"
    forge.review(1, "CHANGES_REQUESTED", "please rename", [("c.txt", 1, "call it d")])
    [approved, asked] = client.reviews(1)
    assert (approved.author, approved.state) == ("lead", "APPROVED")
    assert (asked.author, asked.state, asked.commit) == ("reviewer", "CHANGES_REQUESTED", head)
    assert [(c.path, c.line, c.body) for c in asked.comments] == [("c.txt", 1, "call it d")]
    assert asked.body == "please rename" and asked.url.endswith("/-/merge_requests/1")
    assert client.pull(1).mergeable_state == "blocked"
    refused = client.merge(1, head, "merge", "t3", "")
    assert not refused.merged and not refused.moved and "405" in refused.why
    forge.resolve(1)
    forge.review(1, "APPROVED")
    assert [r.state for r in client.reviews(1)] == ["APPROVED", "APPROVED"]
    assert client.merge(1, head, "merge", "t3", "").merged


def test_a_thread_on_no_diff_line_is_on_the_head_it_was_written_on(forge: Forge) -> None:
    client = _client(forge)
    first = forge.push_branch("wvo/t5", {"e.txt": "e\n"})
    client.open("wvo/t5", "main", "t5", "")
    forge.wait_checks()
    forge.review(1, "CHANGES_REQUESTED", "not like this")  # a thread on the merge request
    [asked] = client.reviews(1)
    assert (asked.state, asked.commit, asked.body) == ("CHANGES_REQUESTED", first, "not like this")
    second = forge.commit(first, {"e.txt": "e2\n"}, "reworked")
    forge.git("update-ref", "refs/heads/wvo/t5", second)
    assert client.pull(1).head == second
    [still] = client.reviews(1)  # unresolved still, and on the head before: a stale request
    assert (still.state, still.commit) == ("CHANGES_REQUESTED", first)


def test_threads_are_not_changes_where_the_project_does_not_require_them_resolved(
    forge: Forge,
) -> None:
    client = _client(forge)
    forge.threads_resolved = False
    forge.push_branch("wvo/t4", {"d.txt": "d\n"})
    client.open("wvo/t4", "main", "t4", "")
    forge.thread(1, "passer-by", "a remark", "d.txt", 1)
    assert client.reviews(1) == []


def test_a_failed_pipeline_gives_its_job_and_trace_tail(forge: Forge) -> None:
    client = _client(forge)
    forge.failing = lambda sha: True
    head = forge.push_branch("wvo/t5", {"e.txt": "e\n"})
    client.open("wvo/t5", "main", "t5", "")
    forge.wait_checks()
    [check] = client.checks(head)
    assert (check.state, check.conclusion) == ("failure", "failed")
    assert "FAILED: test_feature" in check.text and "/-/jobs/" in check.text
    pipeline = forge.runs[head].id
    job = client.failed_job(pipeline)
    assert job is not None and job.name == "check" and "FAILED: test_feature" in job.log
    assert job.url == f"{forge.web}/group/sub/project/-/jobs/{pipeline}"
    assert client.failed_check(pipeline) is None
    forge.workflow_run(4242, [("lint", "success", "fine"), ("test", "failure", "boom\n")])
    found = client.failed_job(4242)
    assert found is not None and (found.name, found.log) == ("test", "boom")


def test_a_slow_pipeline_is_pending_until_it_ends(forge: Forge) -> None:
    client = _client(forge)
    forge.hold.clear()
    head = forge.push_branch("wvo/t6", {"f.txt": "f\n"})
    client.open("wvo/t6", "main", "t6", "")
    [check] = client.checks(head, ["pipeline"])
    assert (check.state, check.conclusion) == ("pending", "running")
    assert client.pull(1).mergeable_state == "blocked"
    forge.hold.set()
    forge.wait_checks()
    assert client.checks(head)[0].state == "success"


def test_each_fault_is_a_fault_that_says_what_to_do(forge: Forge) -> None:
    client = _client(forge)
    forge.secondary.append(7)
    with pytest.raises(Fault) as limited:
        client.repository()
    assert limited.value.kind == "limited" and limited.value.retry_after == 7
    assert "rate limit" in str(limited.value) and "7 s" in str(limited.value)
    forge.secondary.append(0)  # a 429 that names no time
    with pytest.raises(Fault) as timeless:
        client.repository()
    assert timeless.value.kind == "limited" and timeless.value.retry_after == 60
    assert "named no time" in str(timeless.value)
    forge.remaining, forge.reset_at = 0, time.time() + 30
    with pytest.raises(Fault) as reset:
        client.repository()
    assert reset.value.kind == "limited" and 20 <= reset.value.retry_after <= 32
    forge.remaining, forge.reset_at = 100, 0.0
    forge.tokens.clear()
    with pytest.raises(Fault) as revoked:
        GitLab(forge.api, forge.full, TOKEN, source="GITLAB_TOKEN").repository()
    said = str(revoked.value)
    assert revoked.value.kind == "auth" and "refused the token" in said, said
    assert "for 127.0.0.1 (read from GITLAB_TOKEN)" in said and "GITLAB_TOKEN" in said
    assert "glab auth login --hostname 127.0.0.1" in said and TOKEN not in said
    forge.tokens.add(TOKEN)
    forge.failures.append(502)
    with pytest.raises(Fault) as failing:
        client.repository()
    assert failing.value.kind == "unreachable" and "502" in str(failing.value)
    assert client.repository().name == forge.full
    forge.scopes = ["read_api"]
    forge.push_branch("wvo/t7", {"g.txt": "g\n"})
    with pytest.raises(Fault) as scoped:
        client.open("wvo/t7", "main", "t7", "")
    assert scoped.value.kind == "auth" and "api scope" in str(scoped.value)
    forge.http.shutdown()
    forge.http.server_close()
    with pytest.raises(Fault) as gone:
        _client(forge, timeout=5).repository()
    assert gone.value.kind in ("unreachable", "timeout")


@pytest.mark.anyio
async def test_the_queue_waits_as_long_as_gitlab_asks(forge: Forge) -> None:
    said: list[str] = []
    reach = ForgeReach(_client(forge), said.append)
    forge.secondary += [8, 8]
    for _ in range(2):
        with pytest.raises(Fault):
            await reach.call(reach.forge.repository)
        assert reach.outage.delay == 8
    assert len(said) == 1 and "trying again in 8 s, as it asked" in said[0], said
    await reach.call(reach.forge.repository)
    assert "answers again" in said[-1]


def test_access_probes_each_permission_and_writes_nothing(forge: Forge) -> None:
    client = _client(forge)
    found = {a.permission: a for a in client.access("main")}
    assert all(a.ok for a in found.values()), found
    assert set(found) == {"project: read", "merge requests: read", "pipelines: read",
                          "issues: read", "token scope: api", "role: may merge into main",
                          "merge requests: write"}  # fmt: skip
    assert "Maintainer (access level 40)" in found["role: may merge into main"].detail
    forge.scopes = ["read_api"]
    forge.merge_access = 50
    found = {a.permission: a for a in client.access("main")}
    assert not found["token scope: api"].ok and "read_api" in found["token scope: api"].detail
    assert not found["merge requests: write"].ok
    assert not found["role: may merge into main"].ok and found["project: read"].ok
    assert forge.pulls == {} and forge.comments == [] and forge.issues == {}, "wrote nothing"
    assert all(method == "GET" or status >= 400 for method, _, status in forge.requests)


def test_a_branch_with_a_slash_is_one_path_segment(forge: Forge) -> None:
    """GitLab takes a branch (like a namespaced project or group) URL-encoded into one segment:
    release/2.0 as release%2F2.0, else it reads another path."""
    client = _client(forge)
    forge.protected.add("release/2.0")
    forge.merge_access = 50
    [protected] = [a for a in client.access("release/2.0") if a.permission.startswith("role")]
    assert not protected.ok and "release/2.0's protection lets Owners merge" in protected.detail
    [unprotected] = [a for a in client.access("release/3.0") if a.permission.startswith("role")]
    assert unprotected.ok and "release/3.0 is not protected" in unprotected.detail
    asked = [path for _, path, _ in forge.requests if "/protected_branches/" in path]
    assert asked == [f"/projects/{forge.id}/protected_branches/release%2F2.0",
                     f"/projects/{forge.id}/protected_branches/release%2F3.0"]  # fmt: skip


def test_the_merge_train_takes_it_at_the_head_given_and_drops_a_failing_car(
    forge: Forge,
) -> None:
    client = _client(forge)
    forge.merge_trains = True
    assert client.requirements("main").merge_queue
    head = forge.push_branch("wvo/t8", {"h.txt": "h\n"})
    opened = client.open("wvo/t8", "main", "t8", "")
    forge.wait_checks()
    forge.review(opened.number, "APPROVED")
    refused = client.merge(opened.number, head, "merge", "t8", "")
    assert not refused.merged and "405" in refused.why
    assert client.queued(opened) is None
    forge.hold.clear()  # the train's pipeline waits: the car stays on
    moved = client.enqueue(opened, "0" * 40)
    assert moved.moved and not moved.merged and not forge.cars
    assert client.enqueue(opened, head) == Merged(False)
    assert forge.cars[opened.number].sha == head
    assert client.queued(opened) == "fresh"
    forge.hold.set()
    forge.wait_checks()
    assert client.queued(opened) is None
    merged = client.pull(opened.number)
    assert merged.merged and forge.pulls[opened.number].merged_by == "merge-train"
    assert merged.merge_commit == forge.tip() and forge.contains(head, forge.tip())
    # A second car whose merged result fails its pipeline is dropped, unmerged.
    forge.failing = lambda sha: sha in forge.groups
    second = forge.push_branch("wvo/t9", {"i.txt": "i\n"})
    other = client.open("wvo/t9", "main", "t9", "")
    forge.wait_checks()
    forge.review(other.number, "APPROVED")
    tip = forge.tip()
    assert client.enqueue(other, second) == Merged(False)
    forge.wait_checks()
    assert client.queued(other) is None and forge.dropped == [other.number]
    left = client.pull(other.number)
    assert not left.merged and left.state == "open" and forge.tip() == tip
    failed = client.dropped(other)
    assert failed is not None and failed.state == "failure" and "/-/pipelines/" in failed.url
    assert "FAILED" in failed.text and client.dropped(opened) is None  # its car merged


def test_labelled_issues_are_listed_page_by_page_with_their_links(forge: Forge) -> None:
    client = _client(forge)
    blocker = forge.open_issue("a part")
    blocked = forge.open_issue("the whole", "- [ ] #1")
    forge.link(blocked, blocker, "is_blocked_by")
    forge.open_issue("not ours", labels=("bug",))
    for n in range(120):  # more than a page
        forge.open_issue(f"bulk {n}")
    forge.issues[blocker].state = "closed"
    found = {i.number: i for i in client.issues("wvo")}
    assert len(found) == 122 and "not ours" not in {i.title for i in found.values()}
    assert found[blocked].sub_issues == (blocker,) and found[blocker].sub_issues == ()
    assert found[blocker].state == "closed" and found[blocked].body == "- [ ] #1"
    assert found[blocked].labels == ("wvo",) and found[blocked].author == forge.login
    assert found[blocked].url.endswith(f"/group/sub/project/-/issues/{blocked}")
    assert found[blocked].node_id
    one = client.issue(blocked)
    assert one is not None and one.sub_issues == (blocker,)
    assert client.issue(999) is None


def test_who_labelled_an_issue_and_its_notes(forge: Forge) -> None:
    client = _client(forge)
    number = forge.open_issue("a task", author="outsider", labelled_by="lead")
    forge.label_as("outsider", number, "bug")
    assert client.labelled_by(number, "wvo") == "lead"
    assert client.labelled_by(number, "WVO ") == "lead"
    assert client.labelled_by(number, "shipped") is None
    forge.comment_as("lead", number, "go ahead")
    made = client.comment(number, "a question, as data:\n\n    /close\n    quoted")
    assert made.number == number and made.user == forge.login
    assert made.url.endswith(f"/-/issues/{number}#note_{made.id}")
    said = client.comments("2000-01-01T00:00:00Z", number)
    assert [(c.user, c.body) for c in said] == [("lead", "go ahead"), (forge.login, made.body)]
    assert [c.id for c in client.comments("2000-01-01T00:00:00Z")] == [c.id for c in said]
    assert client.comments("2999-01-01T00:00:00Z") == []


def test_a_note_s_time_is_compared_as_a_time_not_as_text(forge: Forge) -> None:
    """GitLab writes milliseconds (05:06:07.500Z), the cursor may be to the second
    (05:06:07Z): as text the note would sort before it, though it was written after."""
    client = _client(forge)
    number = forge.open_issue("a task")
    forge.comment_as("lead", number, "go ahead")
    [note] = [c for c in forge.said if c.number == number]
    note.created_at = "2026-03-04T05:06:07.500Z"
    [found] = client.comments("2026-03-04T05:06:07Z", number)
    assert found.body == "go ahead" and found.created_at == "2026-03-04T05:06:07.500Z"
    assert client.comments("2026-03-04T05:06:08Z", number) == []


def test_a_landed_issue_is_labelled_or_closed(forge: Forge) -> None:
    client = _client(forge)
    number = forge.open_issue("a task")
    client.finish_issue(number, "shipped")
    assert forge.issues[number].labels == ["wvo", "shipped"]
    assert forge.issues[number].state == "open"
    assert client.labelled_by(number, "shipped") == forge.login
    client.finish_issue(number, None)
    assert forge.issues[number].state == "closed"


def test_a_comment_on_a_merge_request_is_on_the_merge_request_not_the_issue(
    forge: Forge,
) -> None:
    client = _client(forge)
    issue = forge.open_issue("one")
    forge.push_branch("wvo/t10", {"j.txt": "j\n"})
    pull = client.open("wvo/t10", "main", "t10", "")
    assert (issue, pull.number) == (1, 1)
    made = client.comment_pull(1, "returned to the worker")
    assert made.url.endswith(f"/-/merge_requests/1#note_{made.id}")
    assert [n.body for n in forge.notes] == ["returned to the worker"]
    assert forge.said == []


def test_permissions_read_from_access_levels(forge: Forge) -> None:
    client = _client(forge)
    forge.roles.update(owner="admin", keeper="maintain", dev="write", rep="triage",
                       guest="read", bot="maintain")  # fmt: skip
    forge.levels.update(planner=15, minimal=5)
    forge.roles.update(invited="maintain")
    forge.bots.add("bot")  # shown by GET /users/:id only, not by the list a username finds
    forge.awaiting.add("invited")
    forge.unknown.add("gone")
    found = {u: client.permission(u) for u in
             ("owner", "keeper", "dev", "rep", "planner", "guest", "minimal", "bot", "gone",
              "stranger", "invited")}  # fmt: skip
    assert found == {"owner": "admin", "keeper": "maintain", "dev": "write", "rep": "triage",
                     "planner": "triage", "guest": "read", "minimal": "none", "bot": "read",
                     "gone": "none", "stranger": "none", "invited": "none"}  # fmt: skip
    forge.teams["acme/platform/leads"] = {"dev"}
    assert client.member("acme/platform/leads", "dev")
    assert not client.member("acme/platform/leads", "guest")
    assert not client.member("acme/nobody", "dev") and not client.member("acme/platform/leads",
                                                                         "gone")  # fmt: skip


def test_contains_reads_the_merge_base(forge: Forge) -> None:
    client = _client(forge)
    start = forge.tip()
    later = forge.push_to_main({"k.txt": "k\n"})
    assert client.contains(start, later) and client.contains(later, later)
    assert not client.contains(later, start)
    assert not client.contains("f" * 40, later)


def test_every_request_is_counted(forge: Forge) -> None:
    client = _client(forge)
    assert client.calls == 0
    client.repository()
    client.requirements("main")
    assert client.calls == 3 == len(forge.requests)
    forge.secondary.append(5)
    with pytest.raises(Fault):
        client.repository()
    assert client.calls == 4, "a 429 is not retried behind the queue's back"
    forge.failures.append(503)
    with pytest.raises(Fault):
        client.repository()
    assert client.calls == 5, "nor is a 5xx"


def test_what_the_client_writes_runs_no_quick_action(forge: Forge) -> None:
    """The test GitLab records what GitLab would run; the client only carries text, so a
    body made safe by the caller (indented) stays inert, and the fixture asserts `acted`
    empty. The extractor itself is held to GitLab's documented zones here."""
    client = _client(forge)
    forge.push_branch("wvo/t11", {"l.txt": "l\n"})
    client.open("wvo/t11", "main", "t11", "quoted:\n\n    /merge\n    /approve\n")
    client.edit(1, "t11", "    /close\n")
    client.comment_pull(1, "```\n/merge\n```\n")
    assert quick_actions("/merge") == ["/merge"]
    assert quick_actions("text\n/label ~bug\nmore") == ["/label ~bug"]
    assert quick_actions("    /merge") == []
    assert quick_actions("```\n/merge\n```") == []
    assert quick_actions("````\n```\n/merge\n````") == ["/merge"]  # GitLab's zone ends early
    assert quick_actions("```python\nx\n```\n/close") == ["/close"]
    assert quick_actions(">>>\n/merge\n>>>") == []
    assert quick_actions("<details>\n/merge\n</details>") == []
    assert quick_actions("/tmp/file\n/merged") == []


def test_git_pushes_reach_the_project_but_never_its_protected_branch(
    forge: Forge, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", forge.url, str(clone)], check=True, capture_output=True)
    (clone / "m.txt").write_text("m\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "add", "m.txt"], cwd=clone, check=True)
    subprocess.run([*git, "commit", "-qm", "m"], cwd=clone, check=True)
    tip = forge.tip()
    refused = subprocess.run([*git, "push", "origin", "HEAD:main"], cwd=clone,
                             capture_output=True, text=True)  # fmt: skip
    assert refused.returncode != 0 and forge.tip() == tip
    assert "not allowed to push code to protected branches" in refused.stderr
    subprocess.run([*git, "push", "-q", "origin", "HEAD:wvo/t12"], cwd=clone, check=True,
                   capture_output=True)  # fmt: skip
    opened = _client(forge).open("wvo/t12", "main", "t12", "")
    assert opened.head == forge.tip("wvo/t12") != tip


def test_a_fast_forward_project_merges_only_a_head_on_the_tip_and_squash_is_per_call(
    forge: Forge,
) -> None:
    client = _client(forge)
    forge.merge_method, forge.approvals = "ff", 0
    assert client.repository().methods == ("rebase",) and client.requirements("main").strict
    head = forge.push_branch("wvo/t13", {"n.txt": "n\n"})
    client.open("wvo/t13", "main", "t13", "")
    forge.push_to_main({"o.txt": "o\n"})
    forge.wait_checks()
    assert client.pull(1).mergeable_state == "behind"
    refused = client.merge(1, head, "rebase", "t13", "")
    assert not refused.merged and not refused.moved and "422" in refused.why
    forge.merge_method = "merge"
    assert client.repository().methods == ("merge", "squash")
    tip = forge.tip()
    merged = client.merge(1, head, "squash", "t13: squashed", "")
    assert merged.merged and forge.git("log", "-1", "--format=%P", merged.commit) == tip
    assert forge.git("log", "-1", "--format=%s", merged.commit) == "t13: squashed"


def test_an_approval_rule_counts_for_the_branches_it_names_wildcards_too(forge: Forge) -> None:
    """GitLab's approval rules apply to the protected branches they name, a name being a
    wildcard (`release/*`) or not, or to every protected branch."""
    client = _client(forge)
    forge.approvals = 0
    forge.rules = [(2, ["release/*"]), (3, ["main-2"])]
    assert client.requirements("release/2.0").approvals == 2
    assert client.requirements("main").approvals == 0  # neither rule names it
    assert client.requirements("main-2").approvals == 3
    forge.rules.append((4, None))
    assert client.requirements("main").approvals == 4


def test_only_the_approval_rules_gitlab_always_applies_count(forge: Forge) -> None:
    """A report approver rule (a failed security scan's) or a code owner rule (a change to
    the files CODEOWNERS names) holds a merge request only sometimes: not counted."""
    client = _client(forge)
    forge.approvals = 1
    forge.rules = [(3, None, "report_approver"), (5, None, "code_owner")]
    assert client.requirements("main").approvals == 1
    forge.rules.append((2, None, "regular"))
    assert client.requirements("main").approvals == 2


@contextmanager
def _recording(host: str, answer: Callable[[str], tuple[int, dict[str, str]]]) -> Iterator[
    tuple[str, list[dict[str, str]]]
]:  # fmt: skip
    """An HTTP server on 127.0.0.1 that answers each GET by `answer(path)` and keeps the
    headers of each; its base URL, named by `host`."""
    got: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            got.append(dict(self.headers))
            status, headers = answer(self.path)
            body = json.dumps({"id": 1}).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serve_in_thread(server)
    try:
        yield f"http://{host}:{server.server_address[1]}", got
    finally:
        server.shutdown()
        server.server_close()


def test_the_token_does_not_follow_a_redirect_to_another_host(forge: Forge) -> None:
    # The API's server redirects to the other's URL: the second `with` needs the first's.
    with _recording("localhost", lambda path: (200, {})) as (elsewhere, taken):  # noqa: SIM117
        with _recording("127.0.0.1", lambda path: (302, {"Location": elsewhere + path})) as (
            api, sent,
        ):  # fmt: skip
            found = Api(f"{api}/api/v4", TOKEN, 10.0, "group/project", "").get("/user", "x")
    assert found == {"id": 1}
    assert sent[0].get("PRIVATE-TOKEN") == TOKEN  # to the API's own host it goes
    assert len(taken) == 1 and "PRIVATE-TOKEN" not in taken[0], taken
    assert TOKEN not in json.dumps(taken)


def test_a_401_to_a_merge_by_a_working_token_says_the_role_not_the_token(forge: Forge) -> None:
    """GitLab answers 401 to a merge the token's user may not make (a role under what the
    branch's protection allows): the token works, so it says so, and what would merge."""
    client = _client(forge)
    head = forge.push_branch("wvo/r1", {"r.txt": "r\n"})
    opened = client.open("wvo/r1", "main", "r1", "")
    forge.wait_checks()
    forge.review(opened.number, "APPROVED")
    forge.merge_access = 50  # Maintainers may not merge into main: only Owners
    refused = client.merge(opened.number, head, "merge", "r1", "")
    assert not refused.merged and not refused.moved
    assert "valid token" not in refused.why and "protect" in refused.why, refused
    assert "Maintainer" in refused.why, refused  # the role the token's user has
    forge.merge_trains = True
    queued = client.enqueue(opened, head)
    assert not queued.merged and "protect" in queued.why, queued
    forge.merge_trains, forge.merge_access = False, 30
    assert client.merge(opened.number, head, "merge", "r1", "").merged
    forge.tokens.clear()  # a token GitLab no longer knows: that is still said as it is
    with pytest.raises(Fault, match="valid token"):
        client.merge(opened.number, head, "merge", "r1", "")


def test_a_look_reads_the_merge_request_and_its_approvals_and_more_only_when_they_hold_it(
    forge: Forge,
) -> None:
    client = _client(forge)
    forge.merge_method = "rebase_merge"  # a head behind the branch needs a rebase
    required = client.requirements("main")
    forge.roles["outsider"] = "read"  # whose approval GitLab does not count

    def looked(number: int) -> tuple[Look, list[str]]:
        """A look, and what it asked (past the merge request's own path), saying what
        pull(), checks() and reviews() say."""
        before = len(forge.requests)
        found = client.look(number, required)
        mr = f"/projects/{client.id}/merge_requests/{number}"
        paths = [p.split(mr, 1)[-1] or "MR" for _, p, _ in forge.requests[before:]]
        pull = client.pull(number)
        assert found.pull == pull
        assert {c.name: c for c in found.checks} == {c.name: c for c in client.checks(pull.head)}
        assert list(found.reviews) == client.reviews(number)
        assert found.writers is None  # GitLab does not say: each is asked
        return found, paths

    forge.hold.clear()  # its pipeline runs
    head = forge.push_branch("wvo/t9", {"l.txt": "l\n"})
    client.open("wvo/t9", "main", "t9", "")
    found, paths = looked(1)  # nobody reviews it yet: nothing more to read
    assert [c.state for c in found.checks] == ["pending"] and paths == ["MR", "/approvals"]
    forge.hold.set()
    forge.wait_checks()
    found, paths = looked(1)
    assert [c.state for c in found.checks] == ["success"] and paths == ["MR", "/approvals"]
    forge.review(1, "CHANGES_REQUESTED", "please rename", [("l.txt", 1, "call it m")])
    found, paths = looked(1)  # its threads block it: read, as its reviewers (one asked)
    # (its summary is a thread on no line: the head it was written on is read, /versions)
    assert paths == ["MR", "/approvals", "/discussions", "/versions", "/reviewers"], paths
    [asked] = found.reviews
    assert (asked.author, asked.state, asked.commit) == ("reviewer", "CHANGES_REQUESTED", head)
    assert [(c.path, c.line, c.body) for c in asked.comments] == [("l.txt", 1, "call it m")]
    forge.review(1, "APPROVED", user="outsider")
    found, paths = looked(1)
    assert [(r.author, r.state) for r in found.reviews] == [
        ("outsider", "APPROVED"), ("reviewer", "CHANGES_REQUESTED")]  # fmt: skip
    forge.resolve(1)  # its threads resolved, its reviewer still asks for changes
    found, paths = looked(1)
    assert paths == ["MR", "/approvals", "/reviewers"], paths
    assert [(r.author, r.state, r.commit) for r in found.reviews][-1] == (
        "reviewer", "CHANGES_REQUESTED", "")  # fmt: skip
    forge.review(1, "APPROVED")  # by a Developer: approved, its pipeline passed
    found, paths = looked(1)
    assert paths == ["MR", "/approvals"], paths
    assert found.pull.mergeable_state == "clean"
    forge.push_to_main({"other.txt": "o\n"})
    found, paths = looked(1)
    assert found.pull.mergeable_state == "behind" and paths == ["MR", "/approvals"]
    forge.merge_by_hand(1)
    found, _ = looked(1)
    assert found.pull.merged and found.pull.merge_commit == forge.tip()
    forge.failing = lambda sha: True
    forge.push_branch("wvo/t10", {"n.txt": "n\n"})
    client.open("wvo/t10", "main", "t10", "")
    forge.wait_checks()
    found, paths = looked(2)  # a failed pipeline: its failed job's log read, as checks() reads
    [failed] = found.checks
    assert failed.state == "failure" and "FAILED: test_feature" in failed.text
    # Its head pipeline came with it: only its failed job and that job's log are read.
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["MR", "jobs", "trace", "approvals"], paths
    forge.close(2)
    found, _ = looked(2)
    assert found.pull.state == "closed"


def test_the_queue_closes_a_merge_request_unmerged(forge: Forge) -> None:
    client = _client(forge)
    head = forge.push_branch("wvo/batch-1", {"b.txt": "b\n"})
    batch = client.open("wvo/batch-1", "main", "a batch", "split later")
    client.close(batch.number)  # a batch the queue splits
    closed = client.pull(batch.number)
    assert (closed.state, closed.merged, closed.head) == ("closed", False, head)
