"""The product's GitHub client (wvo_mcp/forge/github.py) against the test forge: each call
as GitHub answers it, every request and answer validated against GitHub's own description,
conditional polls, the merge's compare-and-swap, and each fault as a Fault that says what
to do."""

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.forge.description import available, description
from tests.forge.server import TOKEN, Forge
from wvo_mcp.autopilot.landing.target import ForgeReach
from wvo_mcp.errors import Fault
from wvo_mcp.forge import Look, Merged, Requirements, credentials
from wvo_mcp.forge.github import GitHub

pytestmark = pytest.mark.skipif(not available(), reason="no @octokit/openapi (scripts/setup)")


def _git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args]
    return subprocess.run(
        command, cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_a_pull_request_is_opened_polled_and_merged_only_at_the_head_it_names(
    forge: Forge,
) -> None:
    client = GitHub(forge.api, forge.full, TOKEN)
    repo = client.repository()
    assert repo.name == forge.full and repo.methods == ("merge", "squash", "rebase")
    required = client.requirements("main")
    assert required.checks == ("check",) and required.approvals == 1 and required.strict
    head = forge.push_branch("wvo/t1", {"a.txt": "a\n"})
    assert client.find("wvo/t1", "main") is None
    opened = client.open("wvo/t1", "main", "t1: a", "the body")
    assert (opened.number, opened.head, opened.state, opened.merged) == (1, head, "open", False)
    found = client.find("wvo/t1", "main")
    assert found is not None and (found.number, found.head) == (1, head)
    forge.wait_checks()
    [check] = client.checks(head)
    assert (check.name, check.state, check.conclusion) == ("check", "success", "success")
    assert "checked" in check.text
    assert client.pull(1).mergeable_state == "blocked"  # no approval yet
    before = len(forge.requests)
    again = client.pull(1)
    assert forge.requests[before:] == [("GET", "/repos/team/project/pulls/1", 304)]
    assert again.mergeable_state == "blocked"
    forge.review(1, "APPROVED")
    [review] = client.reviews(1)
    assert (review.author, review.state, review.commit) == ("reviewer", "APPROVED", head)
    assert client.pull(1).mergeable_state == "clean"  # the answer changed: a 200, not a 304
    moved = client.merge(1, "0" * 40, "merge", "t1: a", "")
    assert not moved.merged and moved.moved
    merged = client.merge(1, head, "merge", "t1: a", "landed by the queue")
    assert merged.merged and forge.tip() == merged.commit
    assert forge.contains(head, forge.tip())
    after = client.pull(1)
    assert after.merged and after.merge_commit == merged.commit and after.state == "closed"


def test_every_request_goes_over_one_kept_connection(forge: Forge) -> None:
    """githubkit makes an httpx client for each request: the client's pool outlives them."""
    client = GitHub(forge.api, forge.full, TOKEN)
    for _ in range(5):
        client.repository()
        client.requirements("main")
    assert len(forge.requests) >= 10
    assert forge.connections == 1


def test_a_proxy_the_environment_names_carries_every_request(
    forge: Forge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY as an httpx client reads it, NO_PROXY too: the test forge, told every
    request in a proxy's absolute form, stands for the proxy of an API on a host that does
    not exist."""
    monkeypatch.setenv("HTTP_PROXY", forge.web)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    api = forge.api.replace("127.0.0.1", "github.invalid")
    before = len(forge.requests)
    assert GitHub(api, forge.full, TOKEN).repository().name == forge.full
    assert len(forge.requests) > before
    monkeypatch.setenv("NO_PROXY", "github.invalid")
    with pytest.raises(Fault, match="cannot be reached"):
        GitHub(api, forge.full, TOKEN).repository()


def test_changes_requested_come_with_their_comments(forge: Forge) -> None:
    client = GitHub(forge.api, forge.full, TOKEN)
    forge.push_branch("wvo/t2", {"b.txt": "b\n"})
    client.open("wvo/t2", "main", "t2", "")
    forge.review(1, "CHANGES_REQUESTED", "please rename", [("b.txt", 1, "call it c")])
    [review] = client.reviews(1)
    assert review.state == "CHANGES_REQUESTED" and review.body == "please rename"
    assert [(c.path, c.line, c.body) for c in review.comments] == [("b.txt", 1, "call it c")]
    refused = client.merge(1, client.pull(1).head, "merge", "t2", "")
    assert not refused.merged and not refused.moved and "requested" in refused.why


def test_a_failing_check_gives_its_log_tail(forge: Forge) -> None:
    client = GitHub(forge.api, forge.full, TOKEN)
    forge.failing = lambda sha: True
    head = forge.push_branch("wvo/t3", {"c.txt": "c\n"})
    client.open("wvo/t3", "main", "t3", "")
    forge.wait_checks()
    [check] = client.checks(head)
    assert check.state == "failure" and "FAILED: test_feature" in check.text
    assert check.url.startswith(forge.web)


def test_each_fault_is_a_fault_that_says_what_to_do(forge: Forge) -> None:
    client = GitHub(forge.api, forge.full, TOKEN)
    forge.secondary.append(7)
    with pytest.raises(Fault) as secondary:
        client.repository()
    assert secondary.value.kind == "limited" and secondary.value.retry_after == 7
    assert "secondary" in str(secondary.value)
    import time

    forge.remaining, forge.reset_at = 0, time.time() + 30
    with pytest.raises(Fault) as primary:
        client.repository()
    assert primary.value.kind == "limited" and primary.value.retry_after >= 20
    assert "primary" in str(primary.value)
    with pytest.raises(Fault) as graphql:  # GraphQL's own: a 200 whose error says RATE_LIMITED
        client.look(1, Requirements())
    assert graphql.value.kind == "limited" and graphql.value.retry_after >= 20
    forge.remaining, forge.reset_at = 100, 0.0
    forge.secondary.append(0)  # a secondary limit that names no time
    with pytest.raises(Fault) as timeless:
        client.repository()
    assert timeless.value.kind == "limited" and timeless.value.retry_after == 60
    assert "named no time" in str(timeless.value)
    forge.tokens.clear()
    with pytest.raises(Fault) as revoked:
        GitHub(forge.api, forge.full, TOKEN, source="WVO_FORGE_TOKEN").repository()
    # What is read for this host (not github.com's GH_TOKEN or GITHUB_TOKEN), and where the
    # refused token came from.
    said = str(revoked.value)
    assert revoked.value.kind == "auth" and "refused the token" in said
    assert "for 127.0.0.1 (read from WVO_FORGE_TOKEN)" in said, said
    assert "GH_ENTERPRISE_TOKEN" in said and "gh auth login --hostname 127.0.0.1" in said
    assert "GITHUB_TOKEN" not in said.replace("GITHUB_ENTERPRISE_TOKEN", "")
    forge.tokens.add(TOKEN)
    forge.failures.append(502)
    with pytest.raises(Fault) as failing:
        client.repository()
    assert failing.value.kind == "unreachable"
    assert client.repository().name == forge.full
    forge.http.shutdown()
    forge.http.server_close()
    with pytest.raises(Fault) as gone:
        GitHub(forge.api, forge.full, TOKEN, timeout=5).repository()
    assert gone.value.kind in ("unreachable", "timeout")


def test_doctor_probes_each_permission_and_writes_nothing(
    forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wvo_mcp.config import Settings
    from wvo_mcp.git import Git, locate
    from wvo_mcp.rules.trust import parse
    from wvo_mcp.wiring import doctor

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", forge.url, str(clone)], check=True, capture_output=True)
    repo = locate(clone)
    assert repo is not None
    git = Git(repo, repo.top)
    settings = Settings.from_env()
    monkeypatch.setenv("WVO_FORGE_TOKEN", TOKEN)
    found = {c.name: c for c in doctor._forge(settings, git, "origin/main", forge.api)}
    assert all(c.ok for c in found.values()), found
    assert "requires checks: check, approving reviews: 1" in found["forge"].detail
    assert "with a token for 127.0.0.1 (from WVO_FORGE_TOKEN)" in found["forge"].detail
    # WVO_FORGE_API does what --forge-api does (the remote's URL names no API here).
    told = dataclasses.replace(settings, forge_api=forge.api)
    assert all(c.ok for c in doctor._forge(told, git, "origin/main", None))
    assert not doctor._forge(settings, git, "origin/main", None)[0].ok
    assert set(found) >= {"forge token: pull requests: write", "forge token: checks: read"}
    assert found["who steers"].detail.startswith(
        "the repository's admin, maintain, write steer; everyone else's words are data"
    )
    narrowed = dataclasses.replace(settings, trust=parse("admin", "release-bot,acme/leads"))
    steer = {c.name: c for c in doctor._forge(narrowed, git, "origin/main", forge.api)}
    assert steer["who steers"].detail.startswith(
        "the repository's admin and @release-bot and members of acme/leads steer"
    )
    forge.permissions["pull_requests"] = "read"
    forge.permissions.pop("checks")
    found = {c.name: c for c in doctor._forge(settings, git, "origin/main", forge.api)}
    assert not found["forge token: pull requests: write"].ok
    assert "pull_requests=write" in found["forge token: pull requests: write"].detail
    assert not found["forge token: checks: read"].ok
    assert "checks=read" in found["forge token: checks: read"].detail
    assert found["forge token: metadata: read"].ok
    assert forge.pulls == {} and forge.comments == [], "doctor wrote nothing"
    monkeypatch.delenv("WVO_FORGE_TOKEN")
    only_git = tmp_path / "only-git"  # a PATH with git and no `gh` to ask for a token
    only_git.mkdir()
    (only_git / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    monkeypatch.setenv("PATH", str(only_git))
    [missing] = doctor._forge(settings, git, "origin/main", forge.api)
    assert not missing.ok and "WVO_FORGE_TOKEN" in missing.detail


def test_a_slow_check_is_pending_until_it_ends(forge: Forge) -> None:
    client = GitHub(forge.api, forge.full, TOKEN)
    forge.hold.clear()  # the forge's check runs wait
    head = forge.push_branch("wvo/t4", {"d.txt": "d\n"})
    client.open("wvo/t4", "main", "t4", "")
    [check] = client.checks(head, ["check"])
    assert (check.state, check.conclusion) == ("pending", "in_progress")
    forge.hold.set()
    forge.wait_checks()
    [check] = client.checks(head, ["check"])
    assert check.state == "success"


def test_the_merge_queue_takes_a_pull_request_at_the_head_given(forge: Forge) -> None:
    client = GitHub(forge.api, forge.full, TOKEN)
    forge.merge_queue = True
    assert client.requirements("main").merge_queue
    head = forge.push_branch("wvo/t5", {"e.txt": "e\n"})
    opened = client.open("wvo/t5", "main", "t5", "")
    forge.wait_checks()
    forge.review(opened.number, "APPROVED")
    refused = client.merge(opened.number, head, "merge", "t5", "")
    assert not refused.merged and "merge queue" in refused.why
    assert client.queued(opened) is None
    forge.hold.clear()  # the merge group's check waits: it stays queued
    moved = client.enqueue(opened, "0" * 40)
    assert moved.moved and not moved.merged
    assert client.enqueue(opened, head) == Merged(False)
    assert client.queued(opened) in ("QUEUED", "AWAITING_CHECKS")
    forge.hold.set()
    forge.wait_checks()
    assert client.queued(opened) is None
    merged = client.pull(opened.number)
    assert merged.merged and forge.pulls[opened.number].merged_by == "merge-queue"


def test_labelled_issues_are_listed_page_by_page_with_their_sub_issues(forge: Forge) -> None:
    client = GitHub(forge.api, forge.full, TOKEN)
    child = forge.open_issue("a part", "blocked by #1")
    parent = forge.open_issue("the whole", "- [ ] #1", sub_issues=(child,))
    forge.open_issue("not ours", labels=("bug",))
    for n in range(120):  # more than a page
        forge.open_issue(f"bulk {n}")
    forge.issues[parent].state = "closed"
    found = {i.number: i for i in client.issues("wvo")}
    assert len(found) == 122 and "not ours" not in {i.title for i in found.values()}
    assert found[parent].sub_issues == (child,) and found[parent].state == "closed"
    assert found[child].body == "blocked by #1" and found[child].labels == ("wvo",)
    assert found[child].node_id and found[child].url.endswith(f"/issues/{child}")


def test_a_landed_issue_is_labelled_with_the_body_the_description_asks(forge: Forge) -> None:
    client = GitHub(forge.api, forge.full, TOKEN)
    number = forge.open_issue("a task")
    client.finish_issue(number, "shipped")
    assert forge.issues[number].labels == ["wvo", "shipped"]
    assert forge.issues[number].state == "open"
    assert ("POST", f"/repos/team/project/issues/{number}/labels", 200) in forge.requests
    client.finish_issue(number, None)
    assert forge.issues[number].state == "closed"
    # The test forge holds the body to the description: a bare array is refused.
    assert any("labels" in p for p in description().request_problems(
        "POST", f"/repos/team/project/issues/{number}/labels", {}, b'["shipped"]',
        "application/json"))  # fmt: skip


@pytest.mark.anyio
async def test_the_queue_waits_as_long_as_github_asks_and_doubles_only_when_it_asks_nothing(
    forge: Forge,
) -> None:
    said: list[str] = []
    reach = ForgeReach(GitHub(forge.api, forge.full, TOKEN), said.append)
    forge.secondary += [8, 8, 8]  # one outage: GitHub asks for 8 s each time
    for _ in range(3):
        with pytest.raises(Fault):
            await reach.call(reach.forge.repository)
        assert reach.outage.delay == 8
    assert len(said) == 1 and "trying again in 8 s, as it asked" in said[0], said
    await reach.call(reach.forge.repository)
    assert "answers again" in said[-1]
    forge.failures += [502, 502, 502]  # a 5xx names no time: soon, then twice as long
    delays = []
    for _ in range(3):
        with pytest.raises(Fault):
            await reach.call(reach.forge.repository)
        delays.append(reach.outage.delay)
    assert delays == [2, 4, 8]
    forge.secondary.append(3)  # then a limit within the same outage: what it asks, no more
    with pytest.raises(Fault):
        await reach.call(reach.forge.repository)
    assert reach.outage.delay == 3


def test_the_token_is_read_by_its_api_s_host_and_a_refusal_says_what_is_read(
    forge: Forge,
) -> None:
    env = {"GH_TOKEN": "gho_for-github-com", "PATH": "/nonexistent"}
    assert credentials.token("127.0.0.1", env) is None  # a github.com token goes nowhere else
    said = credentials.missing("127.0.0.1", "import github:OWNER/REPO", env)
    assert "GH_TOKEN is set, but read for github.com only" in said, said
    assert "WVO_FORGE_TOKEN (or GH_ENTERPRISE_TOKEN or GITHUB_ENTERPRISE_TOKEN)" in said
    assert "gh auth login --hostname 127.0.0.1" in said
    found = credentials.token("github.com", env)
    assert found is not None and (found.value, found.source) == ("gho_for-github-com", "GH_TOKEN")
    enterprise = credentials.token("127.0.0.1", {**env, "GH_ENTERPRISE_TOKEN": TOKEN})
    assert enterprise is not None and enterprise.source == "GH_ENTERPRISE_TOKEN"
    assert credentials.api_of(None, forge.api + "/", credentials.PUBLIC_API) == forge.api
    assert credentials.api_of("https://ghe.example/api/v3", forge.api, "") == (
        "https://ghe.example/api/v3")  # fmt: skip
    assert credentials.host_of(credentials.PUBLIC_API) == "github.com"
    assert credentials.host_of(forge.api) == "127.0.0.1"


def test_one_look_reads_in_one_graphql_query_what_the_three_reads_do(forge: Forge) -> None:
    client = GitHub(forge.api, forge.full, TOKEN)
    required = client.requirements("main")
    forge.roles["outsider"] = "read"

    def same(number: int) -> Look:
        """A look, in one request, says what pull(), checks() and reviews() say."""
        before, calls = len(forge.requests), client.calls
        look = client.look(number, required)
        assert forge.requests[before:] == [("POST", "/api/graphql", 200)]
        assert client.calls == calls + 1
        pull = client.pull(number)
        assert look.pull == pull
        read = client.checks(pull.head, required.checks)
        assert {c.name: c for c in look.checks} == {c.name: c for c in read}
        assert list(look.reviews) == client.reviews(number)
        return look

    forge.hold.clear()  # its check runs
    head = forge.push_branch("wvo/t9", {"l.txt": "l\n"})
    client.open("wvo/t9", "main", "t9", "")
    assert [c.state for c in same(1).checks] == ["pending"]
    forge.hold.set()
    forge.wait_checks()
    look = same(1)  # passed, with its output
    assert [(c.state, c.text != "") for c in look.checks] == [("success", True)]
    assert look.pull.mergeable_state == "blocked" and look.writers == frozenset()
    forge.review(1, "APPROVED", user="outsider")  # who may not push
    look = same(1)
    assert look.writers == frozenset() and look.pull.mergeable_state == "blocked"
    forge.review(1, "CHANGES_REQUESTED", "rename it", [("l.txt", 1, "call it m")])
    look = same(1)
    assert look.writers == frozenset({"reviewer"})
    assert [(c.path, c.line, c.body) for c in look.reviews[-1].comments] == [
        ("l.txt", 1, "call it m")]  # fmt: skip
    forge.review(1, "APPROVED")  # by a writer
    assert same(1).pull.mergeable_state == "clean"
    forge.push_to_main({"other.txt": "o\n"})
    assert same(1).pull.mergeable_state == "behind"
    forge.merge_by_hand(1)
    look = same(1)
    assert look.pull.merged and look.pull.merge_commit == forge.tip()
    forge.failing = lambda sha: True
    forge.push_branch("wvo/t10", {"n.txt": "n\n"})
    client.open("wvo/t10", "main", "t10", "")
    forge.wait_checks()
    [failed] = same(2).checks
    assert failed.state == "failure" and "FAILED: test_feature" in failed.text
    forge.close(2)
    assert same(2).pull.state == "closed"
    with pytest.raises(Fault) as missing:
        client.look(7, required)
    with pytest.raises(Fault) as read:
        client.pull(7)
    assert missing.value.kind == read.value.kind == "auth"
    assert head != forge.tip()


def test_the_queue_closes_a_pull_request_unmerged(forge: Forge) -> None:
    client = GitHub(forge.api, forge.full, TOKEN)
    head = forge.push_branch("wvo/batch-1", {"b.txt": "b\n"})
    batch = client.open("wvo/batch-1", "main", "a batch", "split later")
    client.close(batch.number)  # a batch the queue splits
    closed = client.pull(batch.number)
    assert (closed.state, closed.merged, closed.head) == ("closed", False, head)
