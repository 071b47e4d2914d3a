"""What a forge's delivery says of a pull request, and when what was heard is worth a look (pure).

A webhook delivery about a pull request (GitHub's `pull_request`, `pull_request_review`,
`check_run`, `check_suite`, `status`, `merge_group`; GitLab's Merge Request and Pipeline
Hooks and notes on a merge request) is read into News: which pull request (by number, or by
the commit it is about), what kind of thing ended or changed, and how. News acts on nothing:
it wakes the merge queue that follows the pull request, which then reads the forge itself
(one look) and judges by rules/pulls.judge as it always does, with the trust rule applied to
what it read. So a delivery can only make the queue look sooner, never make it merge.

What was heard of a verified head (Heard) says whether a look is worth its request: a
required check that failed, a review asking for changes, the pull request closed or moved
by someone, yes; a check that passed while another required one runs, or an approval short
of what the branch requires, no, as the look would only find the pull request waiting.

Carried out by `wvo_mcp/autopilot/landing/listening.py` (for PullRequests.due); the news
are written by edge/deliveries.py (services/pull_news.py)."""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from wvo_mcp.rules.pulls import Requirements
from wvo_mcp.rules.text import ForgeKind

What = Literal["pull", "check", "suite", "review", "queue"]
PASSED = frozenset({"success", "neutral", "skipped"})  # as required checks count them
FAILED = frozenset({"failure", "timed_out", "cancelled", "action_required", "startup_failure",
                    "stale", "error", "failed", "canceled"})  # fmt: skip
MOVES = frozenset({"closed", "reopened", "merged", "synchronize"})  # of a pull request
COUNTED = frozenset({"APPROVED", "CHANGES_REQUESTED", "DISMISSED"})  # GitHub's review states
THREADS = ("DiscussionNote", "DiffNote")  # GitLab's notes that open or answer a thread
MAX_NEWS = 20  # read of one delivery: a check suite names at most this many pull requests
# What a repository's webhook sends for the queue to land on events (docs/forge.md), and
# what that saves, as BENCHMARKS.md measured it.
EVENTS: dict[ForgeKind, str] = {
    "github": "pull requests, pull request reviews, check runs, check suites, statuses, "
    "merge groups",
    "gitlab": "merge request events, pipeline events, comments",
}
SAVED: dict[ForgeKind, str] = {
    "github": "about 3 counted API calls per landed change whatever the checks take, merged "
    "within seconds of the last check or approval",
    "gitlab": "about 4 counted API calls per landed change whatever the pipeline takes, "
    "merged within seconds of the last pipeline or approval",
}
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_QUEUE_REF = re.compile(r"/pr-(\d+)-[0-9a-f]+$")  # GitHub's merge group's head ref


@dataclass(frozen=True)
class News:
    number: int  # the pull request; 0 when the delivery names none (a status: by its commit)
    sha: str  # the commit it is about ('' when none)
    what: What
    name: str  # a check's name, a reviewer's login, who moved a pull request
    state: str  # a check's success/failure; a review's APPROVED…; a pull request's action


def github(event: str, payload: dict[str, Any]) -> list[News]:
    """The news in a GitHub delivery; none for what cannot change a look's verdict (a check
    that started, a pull request's edit, a comment)."""
    sender = _text(payload, "sender", "login")
    if event == "pull_request":
        pull, action = _dict(payload, "pull_request"), str(payload.get("action") or "")
        if action == "closed" and pull.get("merged"):
            action = "merged"
        if action not in MOVES | {"opened"}:
            return []
        sha = _text(pull, "head", "sha")
        return [News(_int(pull.get("number")), sha, "pull", sender, action)]
    if event == "pull_request_review":
        review, pull = _dict(payload, "review"), _dict(payload, "pull_request")
        action = str(payload.get("action") or "")
        state = "DISMISSED" if action == "dismissed" else str(review.get("state") or "").upper()
        if action not in ("submitted", "dismissed") or state not in COUNTED:
            return []  # a comment alone neither approves nor asks (rules/pulls.judge)
        login = _text(review, "user", "login")
        return [News(_int(pull.get("number")), str(review.get("commit_id") or ""), "review",
                     login, state)]  # fmt: skip
    if event in ("check_run", "check_suite"):
        found = _dict(payload, event)
        if payload.get("action") != "completed":
            return []
        state = _ended(str(found.get("conclusion") or ""))
        sha = str(found.get("head_sha") or "")
        name = str(found.get("name") or "") if event == "check_run" else (
            _text(found, "app", "slug"))  # fmt: skip
        what: What = "check" if event == "check_run" else "suite"
        # Only a run on a pull request's head: GitHub lists the repository's own pull
        # requests there (a fork's none, nor a push to the branch's).
        numbers = [_int(p.get("number")) for p in found.get("pull_requests") or []
                   if isinstance(p, dict)][:MAX_NEWS]  # fmt: skip
        return [News(n, sha, what, name, state) for n in numbers]
    if event == "status":
        state = str(payload.get("state") or "")
        if state == "pending":
            return []
        return [News(0, str(payload.get("sha") or ""), "check", str(payload.get("context") or ""),
                     _ended(state))]  # fmt: skip
    if event == "merge_group" and payload.get("action") == "destroyed":
        group = _dict(payload, "merge_group")
        ref = _QUEUE_REF.search(str(group.get("head_ref") or ""))
        if ref is None:
            return []
        return [News(int(ref.group(1)), "", "queue", sender, str(payload.get("reason") or ""))]
    return []


def gitlab(event: str, payload: dict[str, Any]) -> list[News]:
    """The news in a GitLab delivery: a merge request's Merge Request Hook (its approvals
    among them), a pipeline that ended, a note on a merge request (a thread may block it)."""
    attributes = _dict(payload, "object_attributes")
    user = _text(payload, "user", "username")
    if event == "Merge Request Hook":
        number = _int(attributes.get("iid"))
        sha = _text(attributes, "last_commit", "id")
        action = str(attributes.get("action") or "")
        if action in ("approval", "approved"):
            return [News(number, sha, "review", user, "APPROVED")]
        if action in ("unapproval", "unapproved"):
            return [News(number, sha, "review", user, "DISMISSED")]
        moved = {
            "open": "opened",
            "reopen": "reopened",
            "close": "closed",
            "merge": "merged",
            "update": "synchronize" if attributes.get("oldrev") else "",
        }.get(action, "")
        return [News(number, sha, "pull", user, moved)] if moved else []
    if event == "Pipeline Hook":
        status = str(attributes.get("status") or "")
        request = payload.get("merge_request")
        landing = attributes.get("ref") == _text(payload, "project", "default_branch")
        fork = isinstance(request, dict) and (
            request.get("source_project_id") != request.get("target_project_id"))  # fmt: skip
        if status not in PASSED | FAILED or attributes.get("tag") or landing or fork:
            return []  # the branch's own (a red one is a task: webhooks.py), a tag's, a fork's
        number = _int(request.get("iid")) if isinstance(request, dict) else 0
        return [News(number, str(attributes.get("sha") or ""), "check", "pipeline",
                     _ended(status))]  # fmt: skip
    thread = attributes.get("type") in THREADS  # a comment outside one never blocks a merge
    if event == "Note Hook" and attributes.get("noteable_type") == "MergeRequest" and thread:
        request = _dict(payload, "merge_request")
        sha = _text(request, "last_commit", "id")
        return [News(_int(request.get("iid")), sha, "review", user, "COMMENTED")]
    return []


def read(kind: ForgeKind, event: str, payload: dict[str, Any]) -> list[News]:
    """A delivery's news of pull requests it names (by number or by commit)."""
    found = github(event, payload) if kind == "github" else gitlab(event, payload)
    return [n for n in found if n.number or _SHA.fullmatch(n.sha)]


@dataclass(frozen=True)
class Heard:
    """What deliveries said of one pull request at the head the queue verified, since it
    was pushed; `new` since the queue last looked."""

    passed: frozenset[str] = frozenset()  # checks that passed on the head, by name
    suite: bool = False  # a check suite ended on it: its checks' names unknown
    failed: bool = False  # a check failed on it
    approvers: frozenset[str] = frozenset()
    asked: bool = False  # someone asked for changes (or, on GitLab, wrote a note)
    moved: bool = False  # closed, reopened, merged, or its head moved, by someone
    opened: bool = False
    new: bool = False


def hear(heard: Heard, found: Iterable[News], head: str, kind: ForgeKind) -> Heard:
    """`heard` with `found` (the news of this pull request, oldest first) added; news of
    another head counts only where it moved the pull request."""
    for news in found:
        if news.what == "pull":
            moved = news.state != "synchronize" or news.sha != head
            heard = replace(heard, new=True, opened=heard.opened or news.state == "opened",
                            moved=heard.moved or (moved and news.state != "opened"))  # fmt: skip
        elif news.what == "queue":
            heard = replace(heard, new=True, moved=True)
        elif news.sha and news.sha != head:
            continue  # about a head the queue no longer carries
        elif news.what == "review":
            approvers = heard.approvers  # a note (GitLab) takes no approval back
            if news.state in COUNTED:
                approvers = approvers - {news.name}
            if news.state == "APPROVED":
                approvers |= {news.name}
            asked = heard.asked or news.state == "CHANGES_REQUESTED" or (
                kind == "gitlab" and news.state == "COMMENTED")  # fmt: skip
            heard = replace(heard, new=True, approvers=approvers, asked=asked)
        elif news.state == "failure":
            heard = replace(heard, new=True, failed=True)
        elif news.state != "success":
            continue  # ended neither way (GitLab's skipped pipeline is success)
        elif news.what == "suite":
            heard = replace(heard, new=True, suite=True)
        else:
            heard = replace(heard, new=True, passed=heard.passed | {news.name})
    return heard


def worth_a_look(heard: Heard, required: Requirements) -> bool:
    """Whether what was heard since the last look could change its verdict: something
    ended badly or moved, or every required check passed (a suite ended, where names are
    unknown) and the approvals heard reach what the branch requires. Where the requirements
    could not be read, anything heard is."""
    if not heard.new:
        return False
    if heard.moved or heard.failed or heard.asked or not required.known:
        return True
    checks = all(name in heard.passed for name in required.checks) or heard.suite
    approved = len(heard.approvers) >= required.approvals
    waited = bool(required.checks) or required.approvals > 0
    return checks and approved and (waited or heard.opened or bool(heard.passed))


def looked(heard: Heard, approvers: frozenset[str] | None = None) -> Heard:
    """Heard once a look read the pull request: nothing new, what passed kept; the approvals
    it counted (of those who steer), where it judged its reviews, in place of those heard."""
    found = heard.approvers if approvers is None else approvers
    return replace(heard, new=False, moved=False, failed=False, asked=False, suite=False,
                   approvers=found)  # fmt: skip


def restacked(heard: Heard) -> Heard:
    """Heard of a new head the queue pushed: its approvals carried over (most branches keep
    them across a push; where a push dismisses them, one look finds so)."""
    return Heard(approvers=heard.approvers)


def matches(news: News, number: int, head: str) -> bool:
    """Whether `news` is about the pull request `number` carrying `head`."""
    return news.number == number or (news.number == 0 and bool(news.sha) and news.sha == head)


def ignoring(found: Sequence[News], outsiders: frozenset[str]) -> list[News]:
    """Reviews by those the queue found not to steer wake nothing: anyone may review, and a
    look each would spend the forge's budget on them."""
    return [n for n in found if not (n.what == "review" and n.name.lower() in outsiders)]


def _ended(conclusion: str) -> str:
    return "success" if conclusion in PASSED else "failure" if conclusion in FAILED else ""


def _dict(payload: dict[str, Any], key: str) -> dict[str, Any]:
    found = payload.get(key)
    return found if isinstance(found, dict) else {}


def _text(payload: dict[str, Any], key: str, inner: str) -> str:
    return str(_dict(payload, key).get(inner) or "")


def _int(value: object) -> int:
    return value if isinstance(value, int) and 0 < value < 2**31 else 0
