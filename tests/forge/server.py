"""A stateful GitHub on 127.0.0.1 for the tests of landing through pull requests.

- Its REST API answers the calls the product makes, and every request and every answer is
  checked against GitHub's own OpenAPI description (tests/forge/description.py); what does
  not conform is recorded in `violations`, which every test asserts empty.
- Real git behind it: the repository is served over smart HTTP (git http-backend behind
  lighttpd, tests/gitservers.py), with a pre-receive hook that refuses any push to the
  protected branch: it moves only through the merge endpoint (or a person, `push_to_main`).
- Hosted checks: each pull request's head gets a check run that runs the project's check on
  a checkout of exactly that commit; a test can make it fail (`failing`) or slow (`hold`).
- A person's hand: approve, request changes, merge by hand, close, commit on a branch.
- Faults: rate limits (primary, secondary), a revoked token, 5xx answers.
- Webhooks, once a test names the receiver (`deliver_to`): each event as it happens, in order,
  signed as GitHub signs them and held to its payload schemas; `lose` drops some on the way.

    with Forge(tmp_path, seed_repo) as forge:
        forge.url   # the git remote
        forge.api   # the REST API's base URL (as a GitHub Enterprise Server's)
"""

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from tests.forge import app as apps
from tests.forge import deliveries, graph, graph_pulls, sending
from tests.forge.description import description, minimal, schema_of
from tests.gitservers import SmartHttp
from tests.listening import serve_in_thread
from wvo_mcp.rules.webhooks import signature

PREFIX = "/api/v3"
GRAPHQL = "/api/graphql"  # where githubkit asks an Enterprise Server's GraphQL API
TOKEN = "ghp_forge-test-token-0123456789"
HOOK = """#!/bin/sh
# The protected branch moves only through the forge's merge endpoint.
while read old new ref; do
    if [ "$ref" = "refs/heads/{branch}" ]; then
        echo "error: GH006: Protected branch update failed for refs/heads/{branch}." >&2
        echo "error: Changes must be made through a pull request." >&2
        exit 1
    fi
done
exit 0
"""
DOCS = "https://docs.github.com/rest"
# GitHub's closing keywords (docs.github.com, "Linking a pull request to an issue"), any case,
# a colon allowed, before an issue: #N, OWNER/REPO#N, or its URL.
_KEYWORD = r"(?<![\w-])(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s*"
_CLOSING = re.compile(
    _KEYWORD + r"(?:(?P<repo>[\w.-]+/[\w.-]+)#(?P<n>\d+)|#(?P<here>\d+)"
    r"|https?://[^\s/]+/(?P<at>[\w.-]+/[\w.-]+)/(?:issues|pull)/(?P<u>\d+))",
    re.IGNORECASE,
)
_MENTION = re.compile(r"(?<![\w`@/.])@([A-Za-z0-9][A-Za-z0-9-]*(?:/[\w.-]+)?)")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")


@dataclass(frozen=True)
class Acting:
    """What a pull request's text does on GitHub: the issues it closes when it merges
    (OWNER/REPO#N, this repository's too) and the people and teams it mentions."""

    closes: tuple[str, ...]
    mentions: tuple[str, ...]


def acting(body: str, full: str) -> Acting:
    """GitHub's reading of a body: closing keywords and @mentions act only in its prose,
    never inside a fenced code block or an inline code span (its reference and mention
    filters skip text under `pre` and `code`)."""
    text = prose(body)
    closes = []
    for found in _CLOSING.finditer(text):
        if found["here"]:
            closes.append(f"{full}#{found['here']}")
        else:
            closes.append(f"{found['repo'] or found['at']}#{found['n'] or found['u']}")
    return Acting(tuple(closes), tuple(_MENTION.findall(text)))


def prose(body: str) -> str:
    """A body without its code, as CommonMark parses it: a fence (three or more backticks or
    tildes, indented at most three spaces; a backtick fence's info string has none) runs to a
    line of at least as many of its character and nothing else, or to the end; an inline
    code span from a run of backticks to the next run of exactly as many, within its
    paragraph. Where this reads prose that GitHub would not (a fence in a list or a quote,
    raw HTML), a test is only stricter."""
    kept: list[str] = []
    fence = ""
    for line in re.split(r"\r\n|\r|\n", body):
        if fence:
            end = re.fullmatch(r" {0,3}(`{3,}|~{3,})[ \t]*", line)
            if end and end[1][0] == fence[0] and len(end[1]) >= len(fence):
                fence = ""
            kept.append("")
            continue
        opened = _FENCE.fullmatch(line)
        if opened and not (opened[1][0] == "`" and "`" in opened[2]):
            fence = opened[1]
            kept.append("")
            continue
        kept.append(line)
    return "\n\n".join(_unspanned(p) for p in re.split(r"\n[ \t]*\n", "\n".join(kept)))


def _unspanned(paragraph: str) -> str:
    """A paragraph without its code spans (a backslash before a run: not one, so kept)."""
    runs = list(re.finditer(r"`+", paragraph))
    out, at, k = [], 0, 0
    while k < len(runs):
        run = runs[k]
        ends = [j for j in range(k + 1, len(runs)) if len(runs[j][0]) == len(run[0])]
        if not ends or paragraph[run.start() - 1 : run.start()] == "\\":
            k += 1
            continue
        out += [paragraph[at : run.start()], " "]
        at, k = runs[ends[0]].end(), ends[0] + 1
    return "".join([*out, paragraph[at:]])


@dataclass
class PullState:
    number: int
    branch: str
    base: str
    title: str
    body: str
    head: str
    base_sha: str
    state: str = "open"
    merged: bool = False
    merge_commit: str | None = None
    merged_by: str = ""
    closed_at: str | None = None
    closes: list[int] = field(default_factory=list)  # issues its merge closed


@dataclass
class IssueState:
    number: int
    title: str
    body: str
    labels: list[str]
    state: str = "open"
    sub_issues: list[int] = field(default_factory=list)
    updated_at: str = "2026-01-01T00:00:00Z"
    author: str = ""  # who opened it (its `user.login`)
    confidential: bool = False  # GitLab's only: seen by members alone


@dataclass
class IssueEventState:
    id: int
    number: int
    event: str  # labeled, closed, reopened
    label: str
    actor: str
    created_at: str
    commit: str | None = None  # closed: the commit whose closing words closed it


@dataclass
class CommentState:
    id: int
    number: int  # the issue's or pull request's
    user: str
    body: str
    created_at: str


@dataclass
class ReviewState:
    id: int
    number: int
    user: str
    state: str
    commit: str
    body: str
    comments: list[tuple[str, int, str]] = field(default_factory=list)


@dataclass
class RunState:
    id: int
    sha: str
    name: str
    status: str = "queued"
    conclusion: str | None = None
    text: str = ""
    done: threading.Event = field(default_factory=threading.Event)


class Forge:
    shares_numbers = True  # issues and pull requests are numbered as one (GitLab's apart)

    def __init__(
        self,
        tmp: Path,
        seed: Path,
        owner: str = "team",
        name: str = "project",
        branch: str = "main",
        check: str = "sh check.sh",
    ) -> None:
        self.owner, self.name, self.branch, self.check = owner, name, branch, check
        self.full = f"{owner}/{name}"
        self.root = tmp / "forge"
        served = self.root / "git"
        (served / owner).mkdir(parents=True)
        self.bare = served / owner / f"{name}.git"
        subprocess.run(
            ["git", "clone", "-q", "--bare", str(seed), str(self.bare)],
            check=True,
            capture_output=True,
        )
        hook = self.bare / "hooks" / "pre-receive"
        hook.write_text(HOOK.format(branch=branch))
        hook.chmod(0o755)
        self.git_server = SmartHttp(served)
        self.lock = threading.RLock()
        # What protection and the repository allow (tests change them).
        self.required = ["check"]
        self.approvals = 1
        self.strict = True
        self.methods = {"merge": True, "squash": True, "rebase": True}
        self.dismiss_stale = False
        self.merge_queue = False  # the branch merges only through the merge queue (GraphQL)
        self.queue: dict[int, str] = {}  # pull request number -> its queue entry's state
        self.groups: list[str] = []  # the merge queue's merge group commits, in order
        # What the token may do, as a fine-grained token's permissions (tests take some away).
        self.permissions = {
            "metadata": "read",
            "pull_requests": "write",
            "checks": "read",
            "statuses": "read",
            "contents": "write",
            "issues": "write",
            "actions": "read",
            "members": "read",  # an organisation's: its teams' memberships
        }
        # State.
        self.pulls: dict[int, PullState] = {}
        self.issues: dict[int, IssueState] = {}  # numbered with the pull requests, as GitHub
        self.reviews: list[ReviewState] = []
        self.runs: dict[str, RunState] = {}  # by head commit
        self.comments: list[tuple[int, str]] = []  # what the token wrote: number, body
        self.said: list[CommentState] = []  # every comment on an issue or pull request
        # What merged pull requests' text did besides closing this repository's issues: the
        # issues of other repositories it would have closed, and whom it mentioned.
        self.closed_elsewhere: list[str] = []
        self.mentioned: list[str] = []
        self.login = "sync-person"  # whose token the product holds
        self.jobs: dict[int, list[tuple[int, str, str, str]]] = {}  # run: id, name, end, log
        self.suites: dict[int, list[tuple[str, str, str]]] = {}  # suite: name, end, text
        self.roles: dict[str, str] = {self.login: "admin"}  # others: "none"
        self.unknown: set[str] = set()  # accounts GitHub does not know (deleted): 404s
        self.teams: dict[str, set[str]] = {}  # "org/team-slug": its active members
        self.events: list[IssueEventState] = []  # issues' timelines (who labelled them)
        self.violations: list[str] = []
        self.requests: list[tuple[str, str, int]] = []  # method, path, status
        self.connections = 0  # TCP connections the forge accepted
        self._ids = iter(range(1000, 10**9))
        # Faults.
        self.tokens = {TOKEN}
        self.app: apps.App | None = None  # a GitHub App installed on the repository
        self.remaining = 5000
        self.reset_at = 0.0
        self.secondary: list[int] = []  # Retry-After seconds of the next answers (0: none)
        self.failures: list[int] = []  # 5xx statuses of the next answers
        self.failing: Callable[[str], bool] = lambda sha: False  # a check run fails
        self.hold = threading.Event()  # cleared: check runs wait until it is set
        self.hold.set()
        self._checkers: list[threading.Thread] = []
        # Webhooks (off until `deliver_to`): what was sent and answered; what `lose`, given each
        # delivery's event and payload, kept from being sent.
        self.hooks = sending.Sender()
        self.sent = self.hooks.sent
        self.lose: Callable[[str, dict[str, Any]], bool] = lambda event, payload: False
        self.lost: list[tuple[str, str]] = []
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.http.daemon_threads = True
        port = self.http.server_address[1]
        self.web = f"http://127.0.0.1:{port}"
        self.api = f"{self.web}{PREFIX}"

    # -- lifetime ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The git remote, with the team's credentials."""
        plain = self.git_server.url(f"{self.owner}/{self.name}.git")
        auth = f"{self.git_server.user}:{self.git_server.password}@"
        return plain.replace("http://", f"http://{auth}")

    def __enter__(self) -> "Forge":
        self.git_server.start()
        serve_in_thread(self.http)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.hold.set()
        self.http.shutdown()
        self.http.server_close()
        self.git_server.stop()
        for thread in self._checkers:
            thread.join(timeout=60)
        self.hooks.stop()

    # -- git -------------------------------------------------------------------------------

    def git(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        done = subprocess.run(
            ["git", f"--git-dir={self.bare}", *args],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"git {args}: {done.stderr}")
        return done.stdout.strip()

    def tip(self, branch: str | None = None) -> str:
        return self.git("rev-parse", f"refs/heads/{branch or self.branch}")

    def contains(self, ancestor: str, descendant: str) -> bool:
        return (
            subprocess.run(
                [
                    "git",
                    f"--git-dir={self.bare}",
                    "merge-base",
                    "--is-ancestor",
                    ancestor,
                    descendant,
                ]
            ).returncode
            == 0
        )

    def commit(
        self, parent: str, files: dict[str, str], message: str, parents: tuple[str, ...] = ()
    ) -> str:
        """A commit of `parent`'s tree with `files` written, made without a worktree."""
        with tempfile.TemporaryDirectory() as scratch:
            env = {
                "GIT_INDEX_FILE": f"{scratch}/index",
                "GIT_AUTHOR_NAME": "A Person",
                "GIT_AUTHOR_EMAIL": "person@example.invalid",
                "GIT_COMMITTER_NAME": "A Person",
                "GIT_COMMITTER_EMAIL": "person@example.invalid",
            }
            self.git("read-tree", parent, env=env)
            for path, text in files.items():
                blob = subprocess.run(
                    ["git", f"--git-dir={self.bare}", "hash-object", "-w", "--stdin"],
                    input=text,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
                self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self.git("write-tree", env=env)
            args = [a for p in (parents or (parent,)) for a in ("-p", p)]
            return self.git("commit-tree", tree, *args, "-m", message, env=env)

    # -- a person's hand -----------------------------------------------------------------

    def push_branch(self, name: str, files: dict[str, str]) -> str:
        """A person pushes branch `name`: one commit on the tip writing `files`."""
        sha = self.commit(self.tip(), files, f"work on {name}")
        self.git("update-ref", f"refs/heads/{name}", sha)
        return sha

    def push_to_main(self, files: dict[str, str], message: str = "a person's commit") -> str:
        """A person with the right to bypass protection commits onto the branch."""
        with self.lock:
            old = self.tip()
            new = self.commit(old, files, message)
            self.git("update-ref", f"refs/heads/{self.branch}", new, old)
            return new

    def commit_on_branch(self, number: int, files: dict[str, str]) -> str:
        with self.lock:
            pull = self.pulls[number]
            old = self.tip(pull.branch)
            new = self.commit(old, files, "a person's fix on the branch")
            self.git("update-ref", f"refs/heads/{pull.branch}", new, old)
            self._sync(pull)
            return new

    def review(
        self,
        number: int,
        state: str = "APPROVED",
        body: str = "",
        comments: list[tuple[str, int, str]] | None = None,
        user: str = "reviewer",
    ) -> None:
        """A review by `user`, whose role is `roles`' (none unless set there); the default
        reviewer is the team's, with write access."""
        with self.lock:
            if user == "reviewer":
                self.roles.setdefault(user, "write")
            pull = self.pulls[number]
            self._sync(pull)
            self.reviews.append(
                ReviewState(next(self._ids), number, user, state, pull.head, body, comments or [])
            )
            self._told_review(pull, self.reviews[-1], "submitted")

    def merge_by_hand(self, number: int) -> str:
        with self.lock:
            pull = self.pulls[number]
            self._sync(pull)
            found = self._merge(pull, "merge", f"Merge pull request #{number}", "", "person")
            assert isinstance(found, str), found
            return found

    def next_number(self) -> int:
        return len(self.pulls) + len(self.issues) + 1

    def open_issue(self, title: str, body: str = "", labels: tuple[str, ...] = ("wvo",),
                   sub_issues: tuple[int, ...] = (), author: str = "",
                   labelled_by: str = "") -> int:  # fmt: skip
        """An issue opened by `author` (default: the token's person, an admin), its labels
        added by `labelled_by` (default: its author), as GitHub's timeline records them."""
        with self.lock:
            number = self.next_number()
            self.issues[number] = IssueState(number, title, body, [], "open",
                                             list(sub_issues), _now(),
                                             author or self.login)  # fmt: skip
            self.label_as(labelled_by or author or self.login, number, *labels)
            return number

    def label_as(self, user: str, number: int, *labels: str) -> None:
        """`user` adds labels to an issue: each a `labeled` event with them as its actor."""
        with self.lock:
            issue = self.issues[number]
            for label in labels:
                if label not in issue.labels:
                    issue.labels.append(label)
                    self.events.append(IssueEventState(next(self._ids), number, "labeled",
                                                       label, user, _now()))  # fmt: skip
            issue.updated_at = _now()

    def comment_as(self, user: str, number: int, body: str) -> int:
        """A comment by someone on an issue (their role on the repository is `roles`)."""
        with self.lock:
            said = CommentState(next(self._ids), number, user, body, _now())
            self.said.append(said)
            return said.id

    def comment_json(self, said: CommentState) -> dict[str, Any]:
        found = minimal(schema_of("issue-comment"))
        found.update(
            id=said.id, node_id=f"IC_{said.id}", body=said.body, created_at=said.created_at,
            updated_at=said.created_at,
            url=f"{self.api}/repos/{self.full}/issues/comments/{said.id}",
            html_url=f"{self.web}/{self.full}/issues/{said.number}#issuecomment-{said.id}",
            issue_url=f"{self.api}/repos/{self.full}/issues/{said.number}",
        )  # fmt: skip
        found["user"] = minimal(schema_of("simple-user")) | {"login": said.user}
        return found

    def workflow_run(self, run_id: int, jobs: list[tuple[str, str, str]]) -> None:
        """A workflow run's jobs as it ended: name, conclusion, log."""
        with self.lock:
            self.jobs[run_id] = [(next(self._ids), *job) for job in jobs]

    def edit_issue(self, number: int, **changed: Any) -> None:
        with self.lock:
            issue = self.issues[number]
            for key, value in changed.items():
                setattr(issue, key, value)
            issue.updated_at = _now()

    def close(self, number: int) -> None:
        with self.lock:
            pull = self.pulls[number]
            pull.state, pull.closed_at = "closed", _now()
            self._told_pull(pull, "closed", "person")

    def open_pulls(self) -> list[PullState]:
        with self.lock:
            for pull in self.pulls.values():
                self._sync(pull)
            return [p for p in self.pulls.values() if p.state == "open"]

    def pull_for(self, branch: str) -> PullState | None:
        with self.lock:
            found = [p for p in self.pulls.values() if p.branch == branch]
            for pull in found:
                self._sync(pull)
            return found[-1] if found else None

    def wait_checks(self, timeout: float = 120) -> None:
        for thread in list(self._checkers):
            thread.join(timeout)

    # -- what the forge does on its own ------------------------------------------------------

    def _sync(self, pull: PullState) -> None:
        """A pushed head is seen: its check run starts; stale approvals may be dismissed."""
        if pull.state != "open":
            return
        head = self.git("rev-parse", "--verify", "-q", f"refs/heads/{pull.branch}", check=False)
        if head and head != pull.head:
            before, pull.head = pull.head, head
            self._told_pull(pull, "synchronize", before=before)
            if self.dismiss_stale:
                for r in self.reviews:
                    if r.number == pull.number and r.state == "APPROVED":
                        r.state = "DISMISSED"
                        self._told_review(pull, r, "dismissed")
        if pull.head not in self.runs:
            self._start_check(pull.head)

    def opened(
        self, number: int, branch: str, base: str, title: str, body: str | None
    ) -> PullState:
        """Pull request `number` of `branch` into `base`, at their tips, kept; its head's
        check starts unless it has run."""
        head = self.tip(branch)
        pull = PullState(number, branch, base, title, body or "", head, self.tip(base))
        self.pulls[number] = pull
        self._told_pull(pull, "opened")
        if head not in self.runs:
            self._start_check(head)
        return pull

    def _start_check(self, sha: str) -> None:
        run = RunState(next(self._ids), sha, "check")
        self.runs[sha] = run
        thread = threading.Thread(target=self._run_check, args=(run,), daemon=True)
        self._checkers.append(thread)
        thread.start()

    def _run_check(self, run: RunState) -> None:
        run.status = "in_progress"
        with self.lock:  # told after what started it, whose caller holds the lock
            self._told_check(run, "created")
        self.hold.wait()
        with tempfile.TemporaryDirectory() as tree:
            archive = subprocess.run(
                ["git", f"--git-dir={self.bare}", "archive", run.sha],
                capture_output=True,
                check=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
            done = subprocess.run(
                ["sh", "-c", self.check], cwd=tree, capture_output=True, text=True, timeout=900
            )
        failed = done.returncode != 0 or self.failing(run.sha)
        said = (done.stdout + done.stderr)[-2000:]
        if self.failing(run.sha):
            said += "\nFAILED: test_feature (told to fail by the test)"
        with self.lock:
            run.status, run.conclusion = "completed", "failure" if failed else "success"
            run.text = said
            self._told_check(run, "completed")
        run.done.set()

    def mergeable_state(self, pull: PullState) -> str:
        base = self.tip(pull.base)
        if (
            subprocess.run(
                ["git", f"--git-dir={self.bare}", "merge-tree", "--write-tree", base, pull.head],
                capture_output=True,
            ).returncode
            != 0
        ):
            return "dirty"
        if self._unmet(pull):
            return "blocked"
        if self.strict and not self.contains(base, pull.head):
            return "behind"
        return "clean"

    def _unmet(self, pull: PullState) -> str:
        run = self.runs.get(pull.head)
        for name in self.required:
            if run is None or run.name != name or run.status != "completed":
                return f'Required status check "{name}" is expected.'
            if run.conclusion != "success":
                return f'Required status check "{name}" is failing.'
        # As GitHub: only the reviews of those with write access block or approve.
        latest: dict[str, str] = {}
        writers = ("write", "maintain", "admin")
        for r in self.reviews:
            writes = self.roles.get(r.user, "none") in writers
            if r.number == pull.number and r.state != "COMMENTED" and writes:
                latest[r.user] = r.state
        if "CHANGES_REQUESTED" in latest.values():
            return "Changes were requested by a reviewer with write access."
        if sum(s == "APPROVED" for s in latest.values()) < self.approvals:
            return (
                f"At least {self.approvals} approving review is required by reviewers "
                "with write access."
            )
        return ""

    def acting(self, body: str) -> Acting:
        """What a merged pull request's text closes and mentions, read as this forge does."""
        return acting(body, self.full)

    def _closes(self, pull: PullState, old: str) -> None:
        """On a merge onto `old` (the branch's tip before it): the body's closing keywords
        outside code (`acting`) close this repository's issues, and on GitHub its pull
        requests (GitLab numbers them apart); on the default branch, so does every commit
        message it brings, as GitHub and GitLab close what a commit names once it reaches the
        default branch, whoever wrote it. Another repository's are recorded in
        `closed_elsewhere`, its mentions in `mentioned`."""
        found = self.acting(pull.body)
        said = [(c, pull.merge_commit) for c in found.closes]
        if pull.base == self.branch and pull.merge_commit:
            for commit in self.git("rev-list", pull.merge_commit, "--not", old).split():
                message = self.git("log", "-1", "--format=%B", commit)
                said += [(c, commit) for c in self.acting(message).closes]
        for closed, commit in said:
            repository, number = closed.rsplit("#", 1)
            if repository.lower() != self.full.lower():
                self.closed_elsewhere.append(closed)
            elif int(number) in self.issues:
                self.close_issue(int(number), pull.merged_by, commit)
                pull.closes.append(int(number))
            elif self.shares_numbers and int(number) in self.pulls:
                other = self.pulls[int(number)]
                if other.state == "open":
                    other.state, other.closed_at = "closed", _now()
                    self._told_pull(other, "closed", pull.merged_by)
        self.mentioned += found.mentions

    def reopen_issue(self, number: int, actor: str) -> None:
        with self.lock:
            issue = self.issues[number]
            if issue.state == "open":
                return
            issue.state, issue.updated_at = "open", _now()
            self.events.append(IssueEventState(next(self._ids), number, "reopened", "", actor,
                                               _now()))  # fmt: skip

    def close_issue(self, number: int, actor: str, commit: str | None = None) -> None:
        """Issue `number` closed by `actor`'s hand, or by `commit`'s closing words (GitHub's
        close event names it)."""
        with self.lock:
            issue = self.issues[number]
            if issue.state == "closed":
                return
            issue.state, issue.updated_at = "closed", _now()
            self.events.append(
                IssueEventState(next(self._ids), number, "closed", "", actor, _now(), commit)
            )

    def _merge(
        self, pull: PullState, method: str, title: str, message: str, by: str
    ) -> str | tuple[int, str]:
        base = self.tip(pull.base)
        if self.strict and not self.contains(base, pull.head) and by == "autopilot":
            return 405, "Head branch is not up to date with the base branch"
        if self.contains(base, pull.head):
            tree = self.git("rev-parse", f"{pull.head}^{{tree}}")
        else:
            found = subprocess.run(
                ["git", f"--git-dir={self.bare}", "merge-tree", "--write-tree", base, pull.head],
                capture_output=True,
                text=True,
            )
            if found.returncode != 0:
                return 405, "Pull Request is not mergeable"
            tree = found.stdout.split()[0]
        env = {
            "GIT_AUTHOR_NAME": "GitHub",
            "GIT_AUTHOR_EMAIL": "noreply@github.invalid",
            "GIT_COMMITTER_NAME": "GitHub",
            "GIT_COMMITTER_EMAIL": "noreply@github.invalid",
        }
        text = f"{title}\n\n{message}".strip()
        if method == "merge":
            new = self.git("commit-tree", tree, "-p", base, "-p", pull.head, "-m", text, env=env)
        elif method == "squash":
            new = self.git("commit-tree", tree, "-p", base, "-m", text, env=env)
        else:
            if not self.contains(base, pull.head):
                return 405, "This branch can't be rebased"
            new = pull.head
        self.git("update-ref", f"refs/heads/{pull.base}", new, base)
        pull.state, pull.merged, pull.merge_commit = "closed", True, new
        pull.merged_by, pull.closed_at = by, _now()
        self._closes(pull, base)
        self._told_pull(pull, "closed")
        return new

    # -- the REST API --------------------------------------------------------------------

    def answer(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request, checked against the description both ways; its path decoded first, as
        GitHub's router does."""
        path = urllib.parse.unquote(path)
        if path == GRAPHQL and method == "POST":
            return self._graphql(headers, body)
        if path.startswith("/logs/") and method == "GET":  # where a job's log downloads
            logs = {job[0]: job[3] for jobs in self.jobs.values() for job in jobs}
            found = logs.get(int(path.removeprefix("/logs/") or 0))
            if found is None:
                return 404, {}, b""
            return 200, {"Content-Type": "text/plain; charset=utf-8"}, found.encode()
        if not path.startswith(PREFIX):
            return 404, {}, b""
        path = path.removeprefix(PREFIX) or "/"
        ctype = headers.get("content-type", "application/json").split(";")[0]
        problems = description().request_problems(method, path, query, body or None, ctype)
        if problems:
            with self.lock:
                self.violations += problems
            status, out, extra = 422, _error("; ".join(problems)[:900], "422"), {}
        else:
            status, out, extra = self._answer(method, path, query, headers, body)
        raw = b"" if out is None else json.dumps(out).encode()
        if status < 300 and method == "GET":
            etag = 'W/"' + hashlib.sha256(raw).hexdigest() + '"'
            extra["ETag"] = etag
            extra["Cache-Control"] = "private, max-age=60, s-maxage=60"
            extra["Vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
            if headers.get("if-none-match") == etag:
                status, raw = 304, b""
                with self.lock:
                    self.remaining += 1  # a 304 is not counted against the limit
        found = description().response_problems(
            method, path, query, status, raw, "application/json"
        )
        with self.lock:
            self.violations += found
            self.requests.append((method, path, status))
            extra.update(self._limits())
        return status, extra, raw

    def _graphql(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """GitHub's GraphQL endpoint, executed against GitHub's own schema: the merge queue."""
        if not self.authorized(headers.get("authorization", "")):
            return 401, {}, json.dumps(_error("Bad credentials", "401")).encode()
        asked = json.loads(body)
        with self.lock:
            fault = self._fault()
            if fault is not None:
                status, said, extra = fault
                if self.remaining <= 0:  # GraphQL's spent primary limit: a 200 that says so
                    status, said = 200, {"data": None, "errors": [{
                        "type": "RATE_LIMITED",
                        "message": "API rate limit already exceeded for user ID 1."}]}  # fmt: skip
                self.requests.append(("POST", GRAPHQL, status))
                return status, {**extra, **self._limits()}, json.dumps(said).encode()
            answer, problems = graph.execute(asked["query"], asked.get("variables"), {
                "node": self._node, "enqueuePullRequest": self._enqueue,
                "repository": graph_pulls.repository(self)})  # fmt: skip
            self.violations += problems
            self.requests.append(("POST", GRAPHQL, 200))
            extra = self._limits()
        return 200, extra, json.dumps(answer).encode()

    def _node(self, info: Any, id: str) -> dict[str, Any] | None:
        pull = self.pulls.get(int(id.removeprefix("PR_"))) if id.startswith("PR_") else None
        if pull is None:
            return None
        state = self.queue.get(pull.number)
        return {"__typename": "PullRequest", "id": id,
                "mergeQueueEntry": None if state is None else {"state": state}}  # fmt: skip

    def _enqueue(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        node = input["pullRequestId"]
        pull = self.pulls.get(int(node.removeprefix("PR_"))) if node.startswith("PR_") else None
        if pull is None:
            raise ValueError(f"Could not resolve to a node with the global id of '{node}'")
        self._sync(pull)
        if input.get("expectedHeadOid") and input["expectedHeadOid"] != pull.head:
            raise ValueError("Expected head OID does not match the pull request's head")
        unmet = self._unmet(pull)
        if unmet:
            raise ValueError(f"Pull request is not in a mergeable state: {unmet}")
        self.queue[pull.number] = "QUEUED"
        thread = threading.Thread(target=self._merge_group, args=(pull,), daemon=True)
        self._checkers.append(thread)
        thread.start()
        return {"mergeQueueEntry": {"state": "QUEUED"}, "clientMutationId": None}

    def _merge_group(self, pull: PullState) -> None:
        """The queue's merge group: a merge commit of the head onto the branch's tip, which
        gets a check run of its own; once it passes, the branch moves to it. A failing group
        (or a head or branch that moved meanwhile) leaves the queue, unmerged."""
        with self.lock:
            self.queue[pull.number] = "AWAITING_CHECKS"
            head, base = pull.head, self.tip(pull.base)
            found = subprocess.run(["git", f"--git-dir={self.bare}", "merge-tree",
                                    "--write-tree", base, head], capture_output=True,
                                   text=True)  # fmt: skip
            group = ""
            if found.returncode == 0:
                said = f"Merge pull request #{pull.number} (merge queue)"
                tree = found.stdout.split()[0]
                group = self.git("commit-tree", tree, "-p", base, "-p", head, "-m", said)
                self.groups.append(group)
                self._told_group(pull, group, base, "checks_requested")
                self._start_check(group)
        run = self.runs.get(group)
        if run is not None:
            run.done.wait(timeout=300)
        with self.lock:
            passed = run is not None and run.conclusion == "success"
            landed = passed and pull.head == head and self.tip(pull.base) == base
            if landed:
                self.git("update-ref", f"refs/heads/{pull.base}", group, base)
                pull.state, pull.merged, pull.merge_commit = "closed", True, group
                pull.merged_by, pull.closed_at = "merge-queue", _now()
                self._closes(pull, base)
                self._told_pull(pull, "closed")
            if group:  # GitHub's reasons: its checks failed or its head moved, or its base did
                gone = "dequeued" if not passed or pull.head != head else "invalidated"
                self._told_group(pull, group, base, "destroyed", "merged" if landed else gone)
            self.queue.pop(pull.number, None)

    def install_app(self, life: float = 3600.0) -> apps.App:
        """A GitHub App installed on the repository, with the forge's `permissions`; its
        installation tokens live `life` seconds."""
        self.app = apps.make()
        self.app.life = life
        return self.app

    def authorized(self, auth: str) -> bool:
        """A token the forge knows, or one of the App's installation tokens, still alive."""
        token = auth.split(" ")[-1]
        alive = apps.accepts(self.app, token)
        return alive if alive is not None else token in self.tokens

    def _limits(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": str(int(self.reset_at or time.time() + 3600)),
            "X-RateLimit-Used": str(5000 - max(0, self.remaining)),
            "X-RateLimit-Resource": "core",
        }

    def _fault(self) -> tuple[int, Any, dict[str, str]] | None:
        """The fault a test asked of the next answer (a 5xx, a secondary limit, a spent
        primary limit), REST's or GraphQL's alike; else the request is counted. Under the
        lock."""
        if self.failures:
            status = self.failures.pop(0)
            return status, _error("Server Error", str(status)), {}
        if self.secondary:
            wait = self.secondary.pop(0)
            said = ("You have exceeded a secondary rate limit. Please wait a few minutes "
                    "before you try again.")  # fmt: skip
            return 403, _error(said, "403"), {"Retry-After": str(wait)} if wait else {}
        if self.remaining <= 0 and time.time() < self.reset_at:
            return 403, _error("API rate limit exceeded for user ID 1.", "403"), {}
        if self.remaining <= 0:
            self.remaining = 5000
        self.remaining -= 1
        return None

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, Any, dict[str, str]]:
        auth = headers.get("authorization", "")
        with self.lock:
            by_app = apps.answer(self, method, path, auth, json.loads(body) if body else {})
        if by_app is not None:
            return by_app
        if not self.authorized(auth):
            return 401, _error("Bad credentials", "401"), {}
        with self.lock:
            fault = self._fault()
            if fault is not None:
                return fault
            data = json.loads(body) if body else {}
            for pattern, verb, needs, handler in ROUTES:
                match = pattern.match(path)
                if match and verb == method:
                    parts = match.groupdict()
                    repository = (parts.pop("owner", self.owner), parts.pop("repo", self.name))
                    if repository != (self.owner, self.name):  # an /orgs/ route names neither
                        return 404, _error("Not Found", "404"), {}
                    if not any(  # any one of the permission sets GitHub accepts
                        self.permissions.get(scope) in (level, "write")
                        for scope, _, level in (one.partition("=") for one in needs.split("|"))
                    ):
                        said = _error("Resource not accessible by personal access token", "403")
                        return (
                            403,
                            said,
                            {"X-Accepted-GitHub-Permissions": needs.replace("|", "; ")},
                        )
                    return handler(self, query, data, **parts)
        return 404, _error("Not Found", "404"), {}

    # -- answers ---------------------------------------------------------------------------

    def repo_json(self) -> dict[str, Any]:
        found = minimal(schema_of("full-repository"))
        found.update(
            name=self.name,
            full_name=self.full,
            html_url=f"{self.web}/{self.full}",
            url=f"{self.api}/repos/{self.full}",
            default_branch=self.branch,
            private=True,
            allow_merge_commit=self.methods["merge"],
            allow_squash_merge=self.methods["squash"],
            allow_rebase_merge=self.methods["rebase"],
        )
        found["owner"]["login"] = self.owner
        return found

    def pull_json(self, pull: PullState, simple: bool = False) -> dict[str, Any]:
        found = minimal(schema_of("pull-request-simple" if simple else "pull-request"))
        url = f"{self.web}/{self.full}/pull/{pull.number}"
        found.update(
            number=pull.number,
            html_url=url,
            url=f"{self.api}/repos/{self.full}/pulls/{pull.number}",
            state=pull.state,
            title=pull.title,
            body=pull.body,
            closed_at=pull.closed_at,
            merged_at=pull.closed_at if pull.merged else None,
            node_id=f"PR_{pull.number}",
            merge_commit_sha=pull.merge_commit,
        )
        for side, ref, sha in (
            ("head", pull.branch, pull.head),
            ("base", pull.base, self.tip(pull.base)),
        ):
            found[side].update(ref=ref, sha=sha, label=f"{self.owner}:{ref}")
        if not simple:
            found.update(
                merged=pull.merged,
                mergeable_state="unknown" if pull.state != "open" else self.mergeable_state(pull),
            )
        return found

    def issue_json(self, issue: IssueState) -> dict[str, Any]:
        found = minimal(schema_of("issue"))
        url = f"{self.api}/repos/{self.full}/issues/{issue.number}"
        found.update(
            number=issue.number, node_id=f"I_{issue.number}", title=issue.title,
            body=issue.body, state=issue.state, url=url,
            html_url=f"{self.web}/{self.full}/issues/{issue.number}",
            labels=[{**minimal(schema_of("label")), "name": name} for name in issue.labels],
            updated_at=issue.updated_at,
            sub_issues_summary={"total": len(issue.sub_issues), "completed": 0,
                                "percent_completed": 0},
        )  # fmt: skip
        found["user"] = minimal(schema_of("simple-user")) | {"login": issue.author or self.login}
        return found

    def review_json(self, review: ReviewState) -> dict[str, Any]:
        found = minimal(schema_of("pull-request-review"))
        found.update(
            id=review.id,
            state=review.state,
            commit_id=review.commit,
            body=review.body,
            html_url=f"{self.web}/{self.full}/pull/{review.number}#review-{review.id}",
        )
        found["user"] = minimal(schema_of("simple-user")) | {"login": review.user}
        return found

    def run_json(self, run: RunState) -> dict[str, Any]:
        found = minimal(schema_of("check-run"))
        found.update(
            id=run.id,
            head_sha=run.sha,
            name=run.name,
            status=run.status,
            conclusion=run.conclusion,
            details_url=f"{self.web}/{self.full}/runs/{run.id}",
            html_url=f"{self.web}/{self.full}/runs/{run.id}",
        )
        found["output"].update(
            title=f"{run.name}: {run.conclusion or run.status}",
            summary=f"ran `{self.check}`",
            text=run.text or None,
        )
        return found

    # -- webhooks ----------------------------------------------------------------------------

    hook_path = "/webhooks/github"
    # Who a delivery names for what the forge records as done by a name of its own.
    actors: ClassVar[dict[str, str]] = {"autopilot": "",  # "": the token's person
                                        "merge-queue": "github-merge-queue[bot]"}  # fmt: skip

    def deliver_to(self, base_url: str, secret: str) -> None:
        """From now on each event is POSTed to the product's webhook under `base_url`, as the
        forge's webhook with `secret` would send it."""
        headers = functools.partial(self.hook_headers, secret)
        self.hooks.point(base_url.rstrip("/") + self.hook_path, headers)

    def settled(self, timeout: float = 60) -> None:
        """Returns once every delivery so far was answered (or could not be)."""
        self.hooks.settled(timeout)

    def hook_headers(self, secret: str, event: str, body: bytes) -> dict[str, str]:
        return {"X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": signature(secret, body),
                "Content-Type": "application/json",
                "User-Agent": "GitHub-Hookshot/test"}  # fmt: skip

    def _queue(self, event: str, action: str, payload: dict[str, Any]) -> None:
        """Under the lock, so deliveries leave in the order their events happened."""
        if self.lose(event, payload):
            self.lost.append((event, action))
        else:
            self.hooks.queue(event, action, payload)

    def _deliver(self, event: str, action: str, by: str = "", **fields: Any) -> None:
        """`event`'s `action` by `by` (the token's person unless named), held to GitHub's
        payload schemas: one that departs from them is a violation, and is not sent."""
        by = self.actors.get(by, by) or self.login
        sender = {"login": by, "type": "Bot" if by.endswith("[bot]") else "User"}
        try:
            made = deliveries.payload(event, action, repository=self._repo_hook(),
                                      sender=sender, **fields)  # fmt: skip
        except AssertionError as wrong:
            self.violations.append(str(wrong))
            return
        self._queue(event, action, made)

    def _told_pull(self, pull: PullState, action: str, by: str = "", before: str = "",
                   was: dict[str, str] | None = None) -> None:  # fmt: skip
        """Pull request opened, edited (`was`: the old title, body), pushed to (synchronize,
        from `before`) or closed (merged or not), by `by`."""
        if not self.hooks.on:
            return
        made = {**self._pull_hook(pull), "merged": pull.merged}
        more: dict[str, Any] = {"before": before, "after": pull.head} if before else {}
        if was is not None:
            more["changes"] = {key: {"from": old} for key, old in was.items()}
        self._deliver("pull_request", action, by or pull.merged_by, number=pull.number,
                      pull_request=made, **more)  # fmt: skip

    def _told_review(self, pull: PullState, review: ReviewState, action: str) -> None:
        """A review submitted, or dismissed (a stale approval, as the head moved)."""
        if not self.hooks.on:
            return
        state = "dismissed" if action == "dismissed" else review.state.lower()
        page, url = (f"{self.web}/{self.full}/pull/{pull.number}",
                     f"{self.api}/repos/{self.full}/pulls/{pull.number}")  # fmt: skip
        made = {"id": review.id, "node_id": f"PRR_{review.id}", "body": review.body or None,
                "user": {"login": review.user}, "commit_id": review.commit, "state": state,
                "submitted_at": _now(), "html_url": f"{page}#review-{review.id}",
                "pull_request_url": url}  # fmt: skip
        by = review.user if action == "submitted" else ""
        self._deliver("pull_request_review", action, by, review=made,
                      pull_request=self._pull_hook(pull))  # fmt: skip

    def _told_check(self, run: RunState, action: str) -> None:
        """A check run created (as it starts) or completed; then its suite's completion (one
        run a suite here, under the run's id), each naming the open pull requests whose head
        is its commit, as GitHub does."""
        if not self.hooks.on:
            return
        repo = {"id": 1, "url": f"{self.api}/repos/{self.full}", "name": self.name}
        pulls = [{"url": f"{self.api}/repos/{self.full}/pulls/{p.number}", "id": p.number,
                  "number": p.number, "head": {"ref": p.branch, "sha": p.head, "repo": repo},
                  "base": {"ref": p.base, "sha": self.tip(p.base), "repo": repo}}
                 for p in self.pulls.values()
                 if p.state == "open" and p.head == run.sha]  # fmt: skip
        app = {"id": 7, "slug": "forge-checks", "name": "Forge checks",
               "owner": {"login": self.owner}}  # fmt: skip
        # A merge group's suite names no branch here (GitHub: its gh-readonly-queue/… one).
        branch = next((p.branch for p in self.pulls.values() if p.head == run.sha), None)
        now, done = _now(), run.status == "completed"
        suite = {"id": run.id, "head_sha": run.sha, "head_branch": branch, "status": run.status,
                 "conclusion": run.conclusion, "pull_requests": pulls, "app": app,
                 "url": f"{self.api}/repos/{self.full}/check-suites/{run.id}",
                 "created_at": now, "updated_at": now}  # fmt: skip
        made = {**self.run_json(run), "check_suite": suite, "app": app, "pull_requests": pulls,
                "started_at": now, "completed_at": now if done else None,
                "external_id": str(run.id)}  # fmt: skip
        made["output"] = {**made["output"], "annotations_count": 0}
        self._deliver("check_run", action, "forge-checks[bot]", check_run=made)
        if action == "completed":
            suite.update(node_id=f"CS_{run.id}", latest_check_runs_count=1,
                         check_runs_url=f"{suite['url']}/check-runs",
                         head_commit=self._commit_hook(run.sha))  # fmt: skip
            self._deliver("check_suite", "completed", "forge-checks[bot]", check_suite=suite)

    def _told_group(self, pull: PullState, group: str, base: str, action: str,
                    reason: str = "") -> None:  # fmt: skip
        """The merge queue's group for `pull` on `base`: its checks requested, or destroyed
        for `reason` (merged, invalidated, dequeued)."""
        if not self.hooks.on:
            return
        made = {"head_sha": group, "base_sha": base, "base_ref": f"refs/heads/{pull.base}",
                "head_ref": f"refs/heads/gh-readonly-queue/{pull.base}/pr-{pull.number}-{base}",
                "head_commit": self._commit_hook(group)}  # fmt: skip
        self._deliver("merge_group", action, "merge-queue", merge_group=made,
                      **({"reason": reason} if reason else {}))  # fmt: skip

    def _repo_hook(self) -> dict[str, Any]:
        return {"id": 1, "name": self.name, "full_name": self.full, "private": True,
                "html_url": f"{self.web}/{self.full}", "url": f"{self.api}/repos/{self.full}",
                "default_branch": self.branch, "owner": {"login": self.owner}}  # fmt: skip

    def _pull_hook(self, pull: PullState) -> dict[str, Any]:
        """A pull request as deliveries carry it (each field not named: the schema's
        simplest)."""
        sides = {side: {"ref": ref, "sha": sha, "label": f"{self.owner}:{ref}"}
                 for side, ref, sha in (("head", pull.branch, pull.head),
                                        ("base", pull.base, self.tip(pull.base)))}  # fmt: skip
        return {"number": pull.number, "id": pull.number, "node_id": f"PR_{pull.number}",
                "state": pull.state, "title": pull.title, "body": pull.body,
                "html_url": f"{self.web}/{self.full}/pull/{pull.number}",
                "url": f"{self.api}/repos/{self.full}/pulls/{pull.number}",
                "closed_at": pull.closed_at, "merged_at": pull.closed_at if pull.merged else None,
                "merge_commit_sha": pull.merge_commit, **sides}  # fmt: skip

    def _commit_hook(self, sha: str) -> dict[str, Any]:
        tree, name, email, when, message = self.git(
            "log", "-1", "--format=%T%x00%an%x00%ae%x00%cI%x00%B", sha).split("\x00")  # fmt: skip
        person = {"name": name, "email": email}
        return {"id": sha, "tree_id": tree, "message": message, "timestamp": when,
                "author": person, "committer": person}  # fmt: skip


# -- routes -------------------------------------------------------------------------------

Answer = tuple[int, Any, dict[str, str]]


def _repository(forge: Forge, query: Any, data: Any) -> Answer:
    return 200, forge.repo_json(), {}


def _rules(forge: Forge, query: Any, data: Any, branch: str) -> Answer:
    if branch != forge.branch:
        return 200, [], {}
    source = {"ruleset_source_type": "Repository", "ruleset_source": forge.full, "ruleset_id": 7}
    rules = [
        {
            "type": "pull_request",
            **source,
            "parameters": {
                "dismiss_stale_reviews_on_push": forge.dismiss_stale,
                "require_code_owner_review": False,
                "require_last_push_approval": False,
                "required_approving_review_count": forge.approvals,
                "required_review_thread_resolution": False,
            },
        },
        {"type": "non_fast_forward", **source},
    ]
    if forge.merge_queue:
        queue = minimal(schema_of("repository-rule-merge-queue"))
        rules.append({**queue, "type": "merge_queue", **source})
    if forge.required:
        rules.append(
            {
                "type": "required_status_checks",
                **source,
                "parameters": {
                    "required_status_checks": [{"context": c} for c in forge.required],
                    "strict_required_status_checks_policy": forge.strict,
                },
            }
        )
    return 200, rules, {}


def _branch(forge: Forge, query: Any, data: Any, branch: str) -> Answer:
    sha = forge.git("rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False)
    if not sha:
        return 404, _error("Branch not found", "404"), {}
    found = minimal(schema_of("branch-with-protection"))
    found.update(name=branch, protected=branch == forge.branch)
    found["commit"]["sha"] = sha
    found["protection"] = {
        "enabled": branch == forge.branch,
        "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []},
    }
    return 200, found, {}


def _pulls(forge: Forge, query: dict[str, list[str]], data: Any) -> Answer:
    state = query.get("state", ["open"])[-1]
    head = query.get("head", [""])[-1].partition(":")[2]
    base = query.get("base", [""])[-1]
    found = []
    for pull in sorted(forge.pulls.values(), key=lambda p: -p.number):
        forge._sync(pull)
        if state != "all" and pull.state != state:
            continue
        if (head and pull.branch != head) or (base and pull.base != base):
            continue
        found.append(forge.pull_json(pull, simple=True))
    per_page = int(query.get("per_page", ["30"])[-1])
    return 200, found[:per_page], {}


def _create(forge: Forge, query: Any, data: dict[str, Any]) -> Answer:
    branch = data["head"].partition(":")[2] or data["head"]
    head = forge.git("rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False)
    if not head:
        invalid = {"resource": "PullRequest", "field": "head", "code": "invalid"}
        return (
            422,
            {"message": "Validation Failed", "documentation_url": DOCS, "errors": [invalid]},
            {},
        )
    if any(p.branch == branch and p.state == "open" for p in forge.pulls.values()):
        exists = {
            "resource": "PullRequest",
            "code": "custom",
            "message": f"A pull request already exists for {forge.owner}:{branch}.",
        }
        return (
            422,
            {"message": "Validation Failed", "documentation_url": DOCS, "errors": [exists]},
            {},
        )
    number = forge.next_number()
    pull = forge.opened(number, branch, data["base"], data.get("title", ""), data.get("body"))
    return (
        201,
        forge.pull_json(pull),
        {"Location": f"{forge.api}/repos/{forge.full}/pulls/{number}"},
    )


def _pull(forge: Forge, query: Any, data: Any, number: str) -> Answer:
    pull = forge.pulls.get(int(number))
    if pull is None:
        return 404, _error("Not Found", "404"), {}
    forge._sync(pull)
    return 200, forge.pull_json(pull), {}


def _update(forge: Forge, query: Any, data: dict[str, Any], number: str) -> Answer:
    pull = forge.pulls.get(int(number))
    if pull is None:
        return 404, _error("Not Found", "404"), {}
    was = {k: getattr(pull, k) for k in ("title", "body") if data.get(k, getattr(pull, k)) !=
           getattr(pull, k)}  # fmt: skip
    pull.title = data.get("title", pull.title)
    pull.body = data.get("body", pull.body)
    if was:
        forge._told_pull(pull, "edited", was=was)
    if data.get("state") == "closed" and pull.state == "open":
        pull.state, pull.closed_at = "closed", _now()
        forge._told_pull(pull, "closed", forge.login)
    forge._sync(pull)
    return 200, forge.pull_json(pull), {}


def _merge(forge: Forge, query: Any, data: dict[str, Any], number: str) -> Answer:
    pull = forge.pulls.get(int(number))
    if pull is None:
        return 404, _error("Not Found", "404"), {}
    forge._sync(pull)
    if pull.state != "open":
        return 405, _error("Pull Request is not mergeable", ""), {}
    if data.get("sha") and data["sha"] != pull.head:
        return 409, _error("Head branch was modified. Review and try the merge again.", ""), {}
    if forge.merge_queue:
        said = "Repository rule violations found\n\nChanges must be made through the merge queue"
        return 405, _error(said, ""), {}
    method = data.get("merge_method", "merge")
    if not forge.methods[method]:
        return (
            405,
            _error(f"{method.title()} merges are not allowed on this repository.", "405"),
            {},
        )
    unmet = forge._unmet(pull)
    if unmet:
        return 405, _error(unmet, ""), {}
    found = forge._merge(
        pull,
        method,
        data.get("commit_title") or pull.title,
        data.get("commit_message") or "",
        "autopilot",
    )
    if isinstance(found, tuple):
        return found[0], _error(found[1], ""), {}
    return 200, {"sha": found, "merged": True, "message": "Pull Request successfully merged"}, {}


def _reviews(forge: Forge, query: Any, data: Any, number: str) -> Answer:
    return 200, [forge.review_json(r) for r in forge.reviews if r.number == int(number)], {}


def _review_comments(forge: Forge, query: Any, data: Any, number: str, review: str) -> Answer:
    found = [r for r in forge.reviews if r.id == int(review) and r.number == int(number)]
    if not found:
        return 404, _error("Not Found", "404"), {}
    out = []
    for n, (path, line, body) in enumerate(found[0].comments):
        item = minimal(schema_of("review-comment"))
        item.update(
            id=found[0].id * 100 + n,
            path=path,
            body=body,
            line=line,
            original_line=line,
            pull_request_review_id=found[0].id,
            commit_id=found[0].commit,
        )
        out.append(item)
    return 200, out, {}


def _check_runs(forge: Forge, query: Any, data: Any, ref: str) -> Answer:
    run = forge.runs.get(ref)
    runs = [forge.run_json(run)] if run is not None else []
    return 200, {"total_count": len(runs), "check_runs": runs}, {}


def _status(forge: Forge, query: Any, data: Any, ref: str) -> Answer:
    found = minimal(schema_of("combined-commit-status"))
    found.update(
        state="pending",
        sha=ref,
        statuses=[],
        total_count=0,
        commit_url=f"{forge.api}/repos/{forge.full}/commits/{ref}",
    )
    return 200, found, {}


def _comment(forge: Forge, query: Any, data: dict[str, Any], number: str) -> Answer:
    if int(number) not in forge.pulls and int(number) not in forge.issues:
        return 404, _error("Not Found", "404"), {}
    forge.comments.append((int(number), data["body"]))
    said = CommentState(next(forge._ids), int(number), forge.login, data["body"], _now())
    forge.said.append(said)
    return 201, forge.comment_json(said), {}


def _comments(forge: Forge, query: dict[str, list[str]], data: Any, number: str = "") -> Answer:
    since = query.get("since", [""])[-1]
    per_page = int(query.get("per_page", ["30"])[-1])
    page = int(query.get("page", ["1"])[-1])
    found = [
        forge.comment_json(c) for c in forge.said
        if (not number or c.number == int(number)) and c.created_at >= since
    ]  # fmt: skip
    if query.get("direction", ["asc"])[-1] == "desc":
        found.reverse()
    return 200, found[(page - 1) * per_page : page * per_page], {}


def _permission(forge: Forge, query: Any, data: Any, username: str) -> Answer:
    if username in forge.unknown:  # no such account (deleted, renamed): as GitHub answers
        return 404, _error("Not Found", "404"), {}
    role = forge.roles.get(username, "none")
    found = minimal(schema_of("repository-collaborator-permission"))
    permission = {"maintain": "write", "triage": "read"}.get(role, role)
    found.update(permission=permission, role_name=role)
    if found.get("user") is not None:
        found["user"] = minimal(schema_of("collaborator")) | {"login": username,
                                                              "role_name": role}  # fmt: skip
    return 200, found, {}


def _jobs(forge: Forge, query: Any, data: Any, run_id: str) -> Answer:
    jobs = forge.jobs.get(int(run_id))
    if jobs is None:
        return 404, _error("Not Found", "404"), {}
    found = []
    for ident, name, conclusion, _ in jobs:
        job = minimal(schema_of("job"))
        url = f"{forge.web}/{forge.full}/job/{ident}"
        job.update(id=ident, run_id=int(run_id), name=name, status="completed",
                   conclusion=conclusion, html_url=url)  # fmt: skip
        found.append(job)
    return 200, {"total_count": len(found), "jobs": found}, {}


def _job_log(forge: Forge, query: Any, data: Any, job_id: str) -> Answer:
    if not any(job[0] == int(job_id) for jobs in forge.jobs.values() for job in jobs):
        return 404, _error("Not Found", "404"), {}
    return 302, None, {"Location": f"{forge.web}/logs/{job_id}"}


def _suite_runs(forge: Forge, query: Any, data: Any, check_suite_id: str) -> Answer:
    runs = forge.suites.get(int(check_suite_id))
    if runs is None:
        return 404, _error("Not Found", "404"), {}
    found = []
    for n, (name, conclusion, text) in enumerate(runs):
        run = forge.run_json(RunState(n + 1, "0" * 40, name, "completed", conclusion, text))
        found.append(run)
    return 200, {"total_count": len(found), "check_runs": found}, {}


def _edit_issue(forge: Forge, query: Any, data: dict[str, Any], number: str) -> Answer:
    issue = forge.issues.get(int(number))
    if issue is None:
        return 404, _error("Not Found", "404"), {}
    if data.get("state") == "closed":
        forge.close_issue(issue.number, forge.login)
    elif data.get("state") == "open":
        forge.reopen_issue(issue.number, forge.login)
    return 200, forge.issue_json(issue), {}


def _add_labels(forge: Forge, query: Any, data: Any, number: str) -> Answer:
    issue = forge.issues.get(int(number))
    if issue is None:
        return 404, _error("Not Found", "404"), {}
    # `{"labels": [...]}` alone: anything else was refused against the description already.
    names = [n if isinstance(n, str) else n["name"] for n in data["labels"]]
    forge.label_as(forge.login, int(number), *names)
    return 200, [{**minimal(schema_of("label")), "name": n} for n in issue.labels], {}


def _issues(forge: Forge, query: dict[str, list[str]], data: Any) -> Answer:
    wanted = {label for label in query.get("labels", [""])[-1].split(",") if label}
    state = query.get("state", ["open"])[-1]
    per_page = int(query.get("per_page", ["30"])[-1])
    page = int(query.get("page", ["1"])[-1])
    found = [
        forge.issue_json(i) for i in sorted(forge.issues.values(), key=lambda i: -i.number)
        if (state == "all" or i.state == state) and wanted <= set(i.labels)
    ]  # fmt: skip
    return 200, found[(page - 1) * per_page : page * per_page], {}


def _sub_issues(forge: Forge, query: dict[str, list[str]], data: Any, number: str) -> Answer:
    issue = forge.issues.get(int(number))
    if issue is None:
        return 404, _error("Not Found", "404"), {}
    subs = [forge.issue_json(forge.issues[n]) for n in issue.sub_issues if n in forge.issues]
    return 200, subs, {}


def _issue(forge: Forge, query: Any, data: Any, number: str) -> Answer:
    issue = forge.issues.get(int(number))
    if issue is None:
        return 404, _error("Not Found", "404"), {}
    return 200, forge.issue_json(issue), {}


def _issue_events(forge: Forge, query: dict[str, list[str]], data: Any, number: str) -> Answer:
    """An issue's timeline events, oldest first, as GitHub pages them."""
    if int(number) not in forge.issues:
        return 404, _error("Not Found", "404"), {}
    per_page = int(query.get("per_page", ["30"])[-1])
    page = int(query.get("page", ["1"])[-1])
    found = []
    for said in (e for e in forge.events if e.number == int(number)):
        labelled = said.event == "labeled"
        shape = "labeled-issue-event" if labelled else "state-change-issue-event"
        event = minimal(schema_of(shape))
        event.update(id=said.id, node_id=f"LE_{said.id}", event=said.event,
                     created_at=said.created_at,
                     url=f"{forge.api}/repos/{forge.full}/issues/events/{said.id}")  # fmt: skip
        if labelled:
            event["label"] = {"name": said.label, "color": "ededed"}
        else:  # closed, reopened: the commit whose closing words did it, if any
            commits = f"{forge.api}/repos/{forge.full}/commits"
            event["commit_id"] = said.commit
            event["commit_url"] = said.commit and f"{commits}/{said.commit}"
        event["actor"] = minimal(schema_of("simple-user")) | {"login": said.actor}
        found.append(event)
    return 200, found[(page - 1) * per_page : page * per_page], {}


def _membership(forge: Forge, query: Any, data: Any, org: str, team_slug: str,
                username: str) -> Answer:  # fmt: skip
    """A team's membership: 404 for anyone not in it (or a team that is not there)."""
    if username not in forge.teams.get(f"{org}/{team_slug}", set()):
        return 404, _error("Not Found", "404"), {}
    found = minimal(schema_of("team-membership"))
    url = f"{forge.api}/orgs/{org}/teams/{team_slug}/memberships/{username}"
    found.update(role="member", state="active", url=url)
    return 200, found, {}


def _compare(forge: Forge, query: Any, data: Any, basehead: str) -> Answer:
    """BASE...HEAD as the git behind the forge relates them (only the fields read here are
    real; `files` and `commits` are left empty)."""
    base, _, head = basehead.partition("...")
    shas = [forge.git("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False)
            for ref in (base, head)]  # fmt: skip
    if not all(shas):
        return 404, _error("Not Found", "404"), {}
    ahead = int(forge.git("rev-list", "--count", f"{shas[0]}..{shas[1]}"))
    behind = int(forge.git("rev-list", "--count", f"{shas[1]}..{shas[0]}"))
    status = ("identical" if not ahead and not behind else "ahead" if not behind
              else "behind" if not ahead else "diverged")  # fmt: skip
    found = minimal(schema_of("commit-comparison"))
    found.update(status=status, ahead_by=ahead, behind_by=behind, total_commits=ahead,
                 commits=[], files=[],
                 url=f"{forge.api}/repos/{forge.full}/compare/{basehead}",
                 html_url=f"{forge.web}/{forge.full}/compare/{basehead}")  # fmt: skip
    return 200, found, {}


def _route(template: str) -> "re.Pattern[str]":
    """A placeholder matches one segment (on the test GitLab, one as sent: a namespaced path or
    a branch with a slash is URL-encoded into one segment, decoded when it is read)."""
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{pattern}$")


ROUTES: list[tuple["re.Pattern[str]", str, str, Callable[..., Answer]]] = [
    (_route("/repos/{owner}/{repo}"), "GET", "metadata=read", _repository),
    (_route("/repos/{owner}/{repo}/rules/branches/{branch}"), "GET", "metadata=read", _rules),
    (_route("/repos/{owner}/{repo}/branches/{branch}"), "GET", "contents=read", _branch),
    (_route("/repos/{owner}/{repo}/pulls"), "GET", "pull_requests=read", _pulls),
    (_route("/repos/{owner}/{repo}/pulls"), "POST", "pull_requests=write", _create),
    (_route("/repos/{owner}/{repo}/pulls/{number}"), "GET", "pull_requests=read", _pull),
    (_route("/repos/{owner}/{repo}/pulls/{number}"), "PATCH", "pull_requests=write", _update),
    (_route("/repos/{owner}/{repo}/pulls/{number}/merge"), "PUT", "contents=write", _merge),
    (_route("/repos/{owner}/{repo}/pulls/{number}/reviews"), "GET", "pull_requests=read",
     _reviews),
    (_route("/repos/{owner}/{repo}/pulls/{number}/reviews/{review}/comments"), "GET",
     "pull_requests=read", _review_comments),
    (_route("/repos/{owner}/{repo}/commits/{ref}/check-runs"), "GET", "checks=read",
     _check_runs),
    (_route("/repos/{owner}/{repo}/commits/{ref}/status"), "GET", "statuses=read", _status),
    (_route("/repos/{owner}/{repo}/issues/{number}/comments"), "POST",
     "issues=write|pull_requests=write", _comment),
    (_route("/repos/{owner}/{repo}/issues/comments"), "GET", "issues=read", _comments),
    (_route("/repos/{owner}/{repo}/issues/{number}/comments"), "GET", "issues=read",
     _comments),
    (_route("/repos/{owner}/{repo}/issues/{number}"), "PATCH", "issues=write", _edit_issue),
    (_route("/repos/{owner}/{repo}/issues/{number}"), "GET", "issues=read", _issue),
    (_route("/repos/{owner}/{repo}/issues/{number}/events"), "GET", "issues=read",
     _issue_events),
    (_route("/repos/{owner}/{repo}/compare/{basehead}"), "GET", "contents=read", _compare),
    (_route("/orgs/{org}/teams/{team_slug}/memberships/{username}"), "GET", "members=read",
     _membership),
    (_route("/repos/{owner}/{repo}/issues/{number}/labels"), "POST", "issues=write",
     _add_labels),
    (_route("/repos/{owner}/{repo}/collaborators/{username}/permission"), "GET",
     "metadata=read", _permission),
    (_route("/repos/{owner}/{repo}/actions/runs/{run_id}/jobs"), "GET", "actions=read", _jobs),
    (_route("/repos/{owner}/{repo}/actions/jobs/{job_id}/logs"), "GET", "actions=read",
     _job_log),
    (_route("/repos/{owner}/{repo}/check-suites/{check_suite_id}/check-runs"), "GET",
     "checks=read", _suite_runs),
    (_route("/repos/{owner}/{repo}/issues"), "GET", "issues=read", _issues),
    (_route("/repos/{owner}/{repo}/issues/{number}/sub_issues"), "GET", "issues=read",
     _sub_issues),
]  # fmt: skip


def _error(message: str, status: str) -> dict[str, str]:
    """GitHub's error body; a 405 or 409 of the merge endpoint has no status field."""
    return {"message": message, "documentation_url": DOCS} | ({"status": status} if status else {})


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _handler(forge: Forge) -> type[BaseHTTPRequestHandler]:
    """Each request to `forge.answer` with its path as sent (the test GitLab routes on it so)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            with forge.lock:
                forge.connections += 1

        def _serve(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
            status, extra, raw = forge.answer(self.command, parsed.path, query, headers, body)
            self.send_response(status, HTTPStatus(status).phrase)
            if raw and "Content-Type" not in extra:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    return Handler


@contextlib.contextmanager
def forge_for(tmp: Path, seed: Path, **options: Any) -> Iterator[Forge]:
    with Forge(tmp, seed, **options) as forge:
        yield forge
    shutil.rmtree(forge.root, ignore_errors=True)
