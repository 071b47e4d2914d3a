"""A stateful GitLab on 127.0.0.1 for the tests of landing through merge requests.

The test GitHub (tests/forge/server.py) with GitLab's REST API in front: the same git over
smart HTTP, the same pipelines running the project's check on exactly the pushed head, the
same person's hand (review, merge_by_hand, close, commit_on_branch, push_to_main, open_issue,
label_as, comment_as, edit_issue, wait_checks) and faults (`secondary`: 429s with their
Retry-After, `tokens` revoked, `failures`: 5xx), so a scenario drives either forge with the
same calls. What is GitLab's own:

- `/git/api/v4` (an instance under the relative URL root /git, where its git is served),
  the project by its URL-encoded full path (`group/sub/project`), the token in
  `PRIVATE-TOKEN` (or `Authorization: Bearer`), GitLab's error bodies;
- merge request iids and issue iids in separate number spaces;
- project settings: `merge_method` (merge, rebase_merge, ff), pipelines must succeed, all
  threads resolved, merge trains, approvals required; `detailed_merge_status`;
- approvals, discussions on a diff position that are resolvable and resolved, notes, issue
  links (blocks / is_blocked_by), resource label events, members with access levels;
- merge trains: a car joins at a sha, runs a pipeline on the merged result and merges, or is
  dropped when that pipeline fails;
- webhooks (`deliver_to`): Merge Request, Pipeline and Note Hooks as GitLab sends them, with
  its secret token, each held to go-gitlab's event types;
- GitLab's quick actions: whenever the token's user writes a merge request's description, an
  issue or a note, the commands GitLab would run are recorded in `acted` (never run); tests
  assert it stays empty.

Every request and answer goes through tests/forge/gitlab/description.py; what it finds is
recorded in `violations`, which every test asserts empty.
"""

import hashlib
import json
import re
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tests.forge import server as github
from tests.forge.gitlab.description import load
from tests.forge.server import CommentState, PullState, ReviewState, _route
from wvo_mcp import timeutil

PREFIX = "/api/v4"
# The instance's relative URL root, as a self-managed GitLab may have: its git (the test
# GitHub's SmartHttp) is served under /git, so a remote's URL names /git/group/sub/project
# and the API sits at /git/api/v4 (forge/select.py finds the project past that root).
ROOT = "/git"
TOKEN = "glpat-forge-test-token-0123456789"
HOOK = """#!/bin/sh
# The protected branch moves only through a merge request.
while read old new ref; do
    if [ "$ref" = "refs/heads/{branch}" ]; then
        echo "GitLab: You are not allowed to push code to protected branches on this project." >&2
        exit 1
    fi
done
exit 0
"""
SCOPE = {
    "error": "insufficient_scope",
    "error_description": "The request requires higher privileges than provided by the access "
    "token.",
    "scope": "api",
}
LEVELS = {"admin": 50, "maintain": 40, "write": 30, "triage": 20, "read": 10, "none": 0}
# GitLab's quick actions (docs: user/project/quick_actions), by name: more than a given
# instance knows is only stricter.
COMMANDS = frozenset(
    [
        "add_child",
        "add_contacts",
        "add_email",
        "approve",
        "assign",
        "assign_reviewer",
        "award",
        "blocked_by",
        "blocks",
        "board_move",
        "cc",
        "checkin_reviewer",
        "child_epic",
        "clear_health_status",
        "clear_weight",
        "clone",
        "close",
        "confidential",
        "convert_to_ticket",
        "copy_metadata",
        "create_merge_request",
        "done",
        "draft",
        "due",
        "duplicate",
        "epic",
        "estimate",
        "estimate_time",
        "health_status",
        "invite_email",
        "iteration",
        "label",
        "lock",
        "merge",
        "milestone",
        "move",
        "page",
        "parent_epic",
        "promote",
        "promote_to",
        "promote_to_incident",
        "publish",
        "q",
        "react",
        "ready",
        "rebase",
        "relabel",
        "relate",
        "remove_child",
        "remove_child_epic",
        "remove_contacts",
        "remove_due_date",
        "remove_email",
        "remove_epic",
        "remove_estimate",
        "remove_iteration",
        "remove_milestone",
        "remove_parent",
        "remove_parent_epic",
        "remove_reviewer",
        "remove_time_spent",
        "remove_zoom",
        "reopen",
        "reply",
        "request_review",
        "reviewer",
        "set_parent",
        "severity",
        "shrug",
        "spend",
        "spent",
        "squash",
        "status",
        "submit_review",
        "subscribe",
        "tableflip",
        "target_branch",
        "timeline",
        "title",
        "todo",
        "type",
        "unapprove",
        "unassign",
        "unassign_reviewer",
        "unlabel",
        "unlink",
        "unlock",
        "unrelate",
        "unsubscribe",
        "weight",
        "wip",
        "zoom",
    ]
)
# GitLab's extractor (lib/gitlab/quick_actions/extractor.rb, as documented): code zones are
# a line starting ``` to the first line that is exactly ```, an HTML block from a line that is
# one tag to a line that is its closing tag, a >>> quote to the next >>> line; outside them a
# line starting /name (then a space and its argument, or the line's end) is a command. An
# indented line never starts with "/", so an indented code block runs nothing.
_EXTRACT = re.compile(
    r"(?P<code>^```.+?\n```$)"
    r"|(?P<html>^<[^>]+?>\n.+?\n</[^>]+?>$)"
    r"|(?P<quote>^>>>.+?\n>>>$)"
    r"|(?:^/(?P<cmd>[a-z_]+)(?:[ ](?P<arg>[^\n]*))?(?:\n|$))",
    re.MULTILINE | re.DOTALL | re.IGNORECASE,
)


# GitLab's default closing pattern (gitlab.yml's issue_closing_pattern, read by
# lib/gitlab/closing_issue_extractor.rb), any case here: a keyword, then issue references
# (#N, project#N, group/project#N, an issue's URL) separated by commas or "and". The extractor
# reads the raw text, code blocks too; on merge it closes every issue those name.
_REFERENCE = (
    r"(?:(?:(?P<at>[\w.-]+(?:/[\w.-]+)*)#|#)(?P<n>\d+)"
    r"|https?://[^\s/]+/(?P<url>[\w.-]+(?:/[\w.-]+)*?)/(?:-/)?issues/(?P<u>\d+))"
)
_CLOSES = re.compile(
    r"\b(?:clos(?:e[sd]?|ing)|\bfix(?:e[sd]|ing)?|\bresolv(?:e[sd]?|ing)"
    r"|\bimplement(?:s|ed|ing)?):? +(?:(?:issues? +)?"
    + re.sub(r"\(\?P<\w+>", "(?:", _REFERENCE)
    + r"(?: *,? +and +| *,? *)?)+",
    re.IGNORECASE,
)


def acting(body: str, full: str) -> github.Acting:
    """GitLab's reading of a merge request's description on merge: its closing pattern acts
    anywhere in the raw text, code blocks too (`_CLOSES`); its mentions act outside code, as
    GitHub's do (tests/forge/server.py's `acting`), and an indented code block (four spaces
    in, after a blank line: how the queue quotes on GitLab) is code too."""
    closes = []
    for found in _CLOSES.finditer(body):
        for ref in re.finditer(_REFERENCE, found[0]):
            where = ref["at"] or ref["url"] or full
            if "/" not in where:  # project#N: a project of this one's group
                where = f"{full.rsplit('/', 1)[0]}/{where}"
            closes.append(f"{where}#{ref['n'] or ref['u']}")
    kept: list[str] = []
    code = False
    for line in body.splitlines():
        blank = not line.strip()
        if line.startswith(("    ", "\t")) and (code or not kept or not kept[-1].strip()):
            code = True
            kept.append("")
            continue
        code = code and blank
        kept.append(line)
    return github.Acting(tuple(closes), github.acting("\n".join(kept), full).mentions)


def quick_actions(text: str) -> list[str]:
    """The quick actions GitLab would run in `text` ("/name arg"), in order."""
    found = []
    for match in _EXTRACT.finditer(text.replace("\r\n", "\n").replace("\r", "\n")):
        name = (match["cmd"] or "").lower()
        if name in COMMANDS:
            found.append(f"/{name} {match['arg'] or ''}".rstrip())
    return found


@dataclass
class Car:
    """A merge request on the merge train."""

    id: int
    number: int
    sha: str  # the head it joined at
    status: str = "fresh"  # idle, stale, fresh, merging, merged, skip_merged
    pipeline: str = ""  # the merged result's commit, whose pipeline decides
    created_at: str = ""
    merged_at: str | None = None


@dataclass
class Link:
    id: int
    source: int  # issue iid
    target: int
    kind: str  # relates_to, blocks, is_blocked_by (from the source's side)


@dataclass
class Label:
    id: int
    number: int
    user: str
    label: str
    action: str  # add, remove
    created_at: str


@dataclass
class Thread:
    """A discussion on a merge request: its notes (author, body, path, line), resolvable
    or not."""

    id: str
    number: int
    head: str  # the head it was written on
    notes: list[tuple[int, str, str, str | None, int | None]] = field(default_factory=list)
    resolvable: bool = True
    resolved: bool = False
    resolved_by: str = ""
    created_at: str = ""


class Forge(github.Forge):
    """The test GitLab (see the module's docstring)."""

    shares_numbers = False  # merge request and issue iids apart

    def __init__(
        self,
        tmp: Path,
        seed: Path,
        owner: str = "group/sub",
        name: str = "project",
        branch: str = "main",
        check: str = "sh check.sh",
    ) -> None:
        super().__init__(tmp, seed, owner, name, branch, check)
        (self.bare / "hooks" / "pre-receive").write_text(HOOK.format(branch=branch))
        self.id = urllib.parse.quote(self.full, safe="")
        self.api = f"{self.web}{ROOT}{PREFIX}"
        self.login = "wvo-bot-person"
        self.roles = {self.login: "maintain"}
        self.tokens = {TOKEN}
        self.scopes = ["api"]  # the token's (read_api: reads only)
        # Project settings (tests change them).
        self.merge_method = "merge"  # merge, rebase_merge, ff
        self.squash_option = "default_off"
        self.pipelines_must_succeed = True
        self.threads_resolved = True
        self.merge_trains = False
        self.approvals = 1
        # Approval rules beyond the project's one (Premium): (approvals, branch names, or
        # None for every protected branch[, rule_type: regular when not named]).
        self.rules: list[tuple[int, list[str] | None] | tuple[int, list[str] | None, str]] = []
        # Those a regular approval rule names as its approvers ("segregation of duties":
        # a group of Reporters): GitLab counts their approvals from Reporter up.
        self.approvers: set[str] = set()
        self.merge_access = 30  # who may merge into the protected branch (Developers+)
        self.protected = {branch}  # protected branches, all with merge_access
        # State beyond the test GitHub's.
        self.levels: dict[str, int] = {}  # access levels that no role names (15, 5)
        self.bots: set[str] = set()
        self.awaiting: set[str] = set()  # members invited who have not accepted yet
        self.threads: list[Thread] = []
        self.notes: list[CommentState] = []  # notes on merge requests (issues': `said`)
        self.links: list[Link] = []
        self.labels: list[Label] = []
        self.cars: dict[int, Car] = {}  # by merge request iid
        # The window GitLab leaves: a car reads `merged` while a read of its merge request
        # just before said open.
        self.merge_late = False  # set: a passed car merges as it is next read
        self._late: dict[int, PullState] = {}
        self.dropped: list[int] = []  # merge requests the train dropped
        self.trains: dict[str, int] = {}  # a car's merged result -> its merge request's iid
        self.acted: list[str] = []  # quick actions the token's text would have run
        self.users: dict[str, int] = {}
        # Each merge request's diff versions (a head as first seen, and when), oldest first:
        # what a thread on no diff line was written on is the version of its time.
        self.versions: dict[int, list[tuple[int, str, str]]] = {}
        self._description = load()

    # -- settings ---------------------------------------------------------------------------

    @property
    def merge_method(self) -> str:
        return self._merge_method

    @merge_method.setter
    def merge_method(self, value: str) -> None:
        # rebase_merge and ff merge only a head that contains the branch's tip.
        self._merge_method = value
        self.strict = value != "merge"

    def user_id(self, username: str) -> int:
        return self.users.setdefault(username, 100 + len(self.users))

    def may_merge(self, pull: PullState) -> bool:
        """Whether the token's user may merge into `pull`'s branch by its protection."""
        return pull.base not in self.protected or self.level(self.login) >= self.merge_access

    def counts(self, username: str) -> bool:
        """Whether GitLab counts `username`'s approval: a Developer and up, or an approver a
        rule names who is at least a Reporter."""
        level = self.level(username)
        return level >= 30 or (username in self.approvers and level >= 20)

    def level(self, username: str) -> int:
        if username in self.levels:
            return self.levels[username]
        return LEVELS.get(self.roles.get(username, "none"), 0)

    # -- a person's hand (beyond the test GitHub's) -----------------------------------------

    def next_number(self) -> int:
        """The next issue's iid (merge requests count apart)."""
        return len(self.issues) + 1

    def review(
        self,
        number: int,
        state: str = "APPROVED",
        body: str = "",
        comments: list[tuple[str, int, str]] | None = None,
        user: str = "reviewer",
    ) -> None:
        """An approval, or changes asked in threads: one on the diff per comment (path,
        line, text), and one for `body`."""
        super().review(number, state, body, comments, user)
        if state != "CHANGES_REQUESTED":
            return
        with self.lock:
            head = self.pulls[number].head
            for path, line, text in comments or []:
                self.thread(number, user, text, path, line, head=head)
            if body:
                self.thread(number, user, body, head=head)

    def thread(
        self,
        number: int,
        user: str,
        body: str,
        path: str | None = None,
        line: int | None = None,
        head: str = "",
    ) -> str:
        """A resolvable discussion on a merge request, on a diff line when `path` is given."""
        with self.lock:
            pull = self.pulls[number]
            ident = hashlib.sha1(f"{number}-{len(self.threads)}".encode()).hexdigest()
            self.threads.append(
                Thread(
                    ident,
                    number,
                    head or pull.head,
                    [(next(self._ids), user, body, path, line)],
                    created_at=_now(),
                )
            )
            made = self.threads[-1]
            said = CommentState(made.notes[0][0], number, user, body, made.created_at)
            self._told_note(said, made)
            return ident

    def resolve(self, number: int, user: str = "reviewer") -> None:
        """Every thread on a merge request resolved."""
        with self.lock:
            for thread in self.threads:
                if thread.number == number and thread.resolvable:
                    thread.resolved, thread.resolved_by = True, user

    def link(self, source: int, target: int, kind: str = "is_blocked_by") -> None:
        """Two issues linked, as GitLab shows the link from both sides."""
        with self.lock:
            back = {"blocks": "is_blocked_by", "is_blocked_by": "blocks"}.get(kind, kind)
            ident = next(self._ids)
            self.links += [Link(ident, source, target, kind), Link(ident, target, source, back)]

    def label_as(self, user: str, number: int, *labels: str) -> None:
        with self.lock:
            issue = self.issues[number]
            for label in labels:
                if label not in issue.labels:
                    self.labels.append(Label(next(self._ids), number, user, label, "add", _now()))
        super().label_as(user, number, *labels)

    def comment_as(self, user: str, number: int, body: str) -> int:
        """A note by someone on an issue: GitLab touches the issue (Note's touch_noteable),
        so its `updated_at` moves, which is how the sync finds issues with new notes."""
        with self.lock:
            said = CommentState(next(self._ids), number, user, body, _now())  # to the ms
            self.said.append(said)
            self.issues[number].updated_at = said.created_at
            return said.id

    def comment_on_pull_as(self, user: str, number: int, body: str) -> int:
        with self.lock:
            said = CommentState(next(self._ids), number, user, body, _now())
            self.notes.append(said)
            self._told_note(said)
            return said.id

    def _sync(self, pull: PullState) -> None:
        super()._sync(pull)
        seen = self.versions.setdefault(pull.number, [])
        if pull.head and (not seen or seen[-1][1] != pull.head):
            seen.append((next(self._ids), pull.head, _now()))

    def acting(self, body: str) -> github.Acting:
        return acting(body, self.full)

    def _acts(self, where: str, text: str) -> None:
        self.acted += [f"{where}: {command}" for command in quick_actions(text)]

    # -- what GitLab does on its own ------------------------------------------------------

    def _unmet(self, pull: PullState) -> str:
        """The first thing that keeps it from merging, as GitLab's detailed_merge_status
        names it ('' when nothing does)."""
        if self.pipelines_must_succeed:
            run = self.runs.get(pull.head)
            if run is None or run.status != "completed":
                return "ci_still_running"
            if run.conclusion != "success":
                return "ci_must_pass"
        if self.threads_resolved and any(
            t.number == pull.number and t.resolvable and not t.resolved for t in self.threads
        ):
            return "discussions_not_resolved"
        latest: dict[str, str] = {}
        for r in self.reviews:
            if r.number == pull.number and self.counts(r.user):
                latest[r.user] = r.state
        if "CHANGES_REQUESTED" in latest.values():
            return "requested_changes"
        if sum(s == "APPROVED" for s in latest.values()) < self.approvals:
            return "not_approved"
        return ""

    def detailed(self, pull: PullState) -> str:
        if pull.state != "open":
            return "not_open"
        base = self.tip(pull.base)
        tree = subprocess.run(
            ["git", f"--git-dir={self.bare}", "merge-tree", "--write-tree", base, pull.head],
            capture_output=True,
        )
        if tree.returncode != 0:
            return "conflict"
        unmet = self._unmet(pull)
        if unmet:
            return unmet
        if self.strict and not self.contains(base, pull.head):
            return "need_rebase"
        return "mergeable"

    def _board(self, pull: PullState) -> None:
        """A car's ride: the merged result of its head onto the branch's tip gets a pipeline;
        once it passes the branch moves to it, else the car is dropped, unmerged."""
        with self.lock:
            car = self.cars[pull.number]
            head, base = car.sha, self.tip(pull.base)
            found = subprocess.run(
                ["git", f"--git-dir={self.bare}", "merge-tree", "--write-tree", base, head],
                capture_output=True,
                text=True,
            )
            if found.returncode == 0:
                said = f"Merge branch '{pull.branch}' into '{pull.base}' (!{pull.number})"
                tree = found.stdout.split()[0]
                car.pipeline = self.git("commit-tree", tree, "-p", base, "-p", head, "-m", said)
                self.trains[car.pipeline] = pull.number
                self.groups.append(car.pipeline)
                self._start_check(car.pipeline)
        run = self.runs.get(car.pipeline)
        if run is not None:
            run.done.wait(timeout=300)
        with self.lock:
            passed = run is not None and run.conclusion == "success"
            if passed and pull.head == head and self.tip(pull.base) == base:
                if self.merge_late:
                    self._late[pull.number] = pull
                else:
                    self._merged(pull, car)
            else:
                self.cars.pop(pull.number, None)
                self.dropped.append(pull.number)

    def _merged(self, pull: PullState, car: Car) -> None:
        old = self.tip(pull.base)
        self.git("update-ref", f"refs/heads/{pull.base}", car.pipeline, old)
        car.status, car.merged_at = "merged", _now()
        pull.state, pull.merged, pull.merge_commit = "closed", True, car.pipeline
        pull.merged_by, pull.closed_at = "merge-train", _now()
        self._closes(pull, old)
        self._told_pull(pull, "closed")

    # -- webhooks ---------------------------------------------------------------------------

    hook_path = "/webhooks/gitlab"
    # Who a delivery names for what the forge records as done by a name of its own.
    actors: ClassVar[dict[str, str]] = {"autopilot": "", "merge-train": ""}  # "": the token's
    webhook_uuid = "6f1e5a2c-8a7b-4f3e-9c1d-2b7e5f0a9c41"  # the project's one webhook

    def hook_headers(self, secret: str, event: str, body: bytes) -> dict[str, str]:
        return {"X-Gitlab-Event": event, "X-Gitlab-Token": secret,
                "X-Gitlab-Event-UUID": str(uuid.uuid4()), "Idempotency-Key": str(uuid.uuid4()),
                "X-Gitlab-Webhook-UUID": self.webhook_uuid, "X-Gitlab-Instance": self.web,
                "Content-Type": "application/json", "User-Agent": "GitLab/test"}  # fmt: skip

    def _send_checked(self, event: str, label: str, payload: dict[str, Any]) -> None:
        """A delivery held to go-gitlab's event types: one that departs from them is a
        violation, and is not sent."""
        problems = self._description.webhook(event, payload)
        if problems:
            self.violations += problems
        else:
            self._queue(event, label, payload)

    def _told_pull(self, pull: PullState, action: str, by: str = "", before: str = "",
                   was: dict[str, str] | None = None) -> None:  # fmt: skip
        if not self.hooks.on:
            return
        said = {"opened": "open", "synchronize": "update", "edited": "update",
                "reopened": "reopen",
                "closed": "merge" if pull.merged else "close"}[action]  # fmt: skip
        named = {"title": "title", "body": "description"}
        changes = {named[k]: {"previous": old, "current": getattr(pull, k)}
                   for k, old in (was or {}).items()}  # fmt: skip
        more = {"oldrev": before} if before else {}
        self._mr_hook(pull, said, by or pull.merged_by, changes, **more)

    def _told_review(self, pull: PullState, review: ReviewState, action: str) -> None:
        """GitLab (Premium's approval rules) sends `approval` for an approval the merge request
        still needs more after, `approved` for the one that satisfies its rules; `unapproved`
        once, as a push resets its approvals. Changes asked are threads: Note Hooks."""
        if not self.hooks.on:
            return
        if action == "dismissed":
            if not any(r.number == pull.number and r.state == "APPROVED" for r in self.reviews):
                self._mr_hook(pull, "unapproved", "")
        elif review.state == "APPROVED":
            latest = {r.user: r.state for r in self.reviews
                      if r.number == pull.number and self.counts(r.user)}  # fmt: skip
            enough = sum(s == "APPROVED" for s in latest.values()) >= self.approvals
            self._mr_hook(pull, "approved" if enough else "approval", review.user)

    def _told_check(self, run: github.RunState, action: str) -> None:
        """A pipeline running (as it starts) or ended. A head's pipeline is a branch
        pipeline here (pipeline_json: source push), whose hook names no merge request; a
        merge train's is a merge request pipeline, whose hook names its merge request."""
        if not self.hooks.on:
            return
        found = self.pipeline_json(run.sha)
        assert found is not None
        status, now = found["status"], _now()
        train = self.pulls.get(self.trains.get(run.sha, 0))
        request = train and {
            "id": 10000 + train.number, "iid": train.number, "title": train.title,
            "source_branch": train.branch, "source_project_id": 7, "target_branch": train.base,
            "target_project_id": 7, "state": "opened", "merge_status": "can_be_merged",
            "url": f"{self.web}/{self.full}/-/merge_requests/{train.number}"}  # fmt: skip
        ended = now if run.status == "completed" else None
        attributes = {"id": run.id, "ref": found["ref"], "tag": False, "sha": run.sha,
                      "before_sha": "0" * 40, "source": found["source"], "status": status,
                      "detailed_status": status, "stages": ["test"], "created_at": now,
                      "finished_at": ended, "duration": None}  # fmt: skip
        job = {"id": run.id, "stage": "test", "name": run.name, "status": status,
               "created_at": now, "started_at": now, "finished_at": ended, "when": "on_success",
               "manual": False, "allow_failure": False}  # fmt: skip
        made = {"object_kind": "pipeline", "object_attributes": attributes,
                "merge_request": request, "user": self._event_user(self.login),
                "project": self._project_hook(), "commit": self._last_commit(run.sha),
                "builds": [job]}  # fmt: skip
        self._send_checked("Pipeline Hook", status, made)

    def _told_note(self, said: CommentState, thread: Thread | None = None) -> None:
        """A note on a merge request: one of its own, or a thread's first."""
        if not self.hooks.on:
            return
        pull = self.pulls[said.number]
        url = f"{self.web}/{self.full}/-/merge_requests/{pull.number}"
        path, line = thread.notes[0][3:] if thread else (None, None)
        attributes = {"id": said.id, "note": said.body, "noteable_type": "MergeRequest",
                      "noteable_id": 10000 + pull.number, "author_id": self.user_id(said.user),
                      "project_id": 7, "created_at": said.created_at,
                      "updated_at": said.created_at, "system": False,
                      "type": thread and ("DiffNote" if path else "DiscussionNote"),
                      "discussion_id": thread.id if thread else "",
                      "url": f"{url}#note_{said.id}"}  # fmt: skip
        if thread and path:
            attributes["position"] = {"base_sha": pull.base_sha, "start_sha": pull.base_sha,
                                      "head_sha": thread.head, "position_type": "text",
                                      "old_path": path, "new_path": path,
                                      "new_line": line}  # fmt: skip
        request = {"id": 10000 + pull.number, "iid": pull.number, "title": pull.title,
                   "description": pull.body, "state": self._state(pull),
                   "source_branch": pull.branch, "target_branch": pull.base,
                   "source_project_id": 7, "target_project_id": 7,
                   "merge_status": "can_be_merged", "work_in_progress": False,
                   "last_commit": self._last_commit(pull.head)}  # fmt: skip
        made = {"object_kind": "note", "user": self._event_user(said.user), "project_id": 7,
                "project": self._project_hook(), "repository": self._repository_hook(),
                "object_attributes": attributes, "merge_request": request}  # fmt: skip
        self._send_checked("Note Hook", "MergeRequest", made)

    def _mr_hook(self, pull: PullState, action: str, by: str,
                 changes: dict[str, Any] | None = None, **more: Any) -> None:  # fmt: skip
        run, now = self.runs.get(pull.head), _now()
        url = f"{self.web}/{self.full}/-/merge_requests/{pull.number}"
        attributes = {
            "id": 10000 + pull.number, "iid": pull.number, "title": pull.title,
            "description": pull.body, "state": self._state(pull), "action": action,
            "source_branch": pull.branch, "target_branch": pull.base,
            "source_project_id": 7, "target_project_id": 7,
            "author_id": self.user_id(self.login), "created_at": now, "updated_at": now,
            "merge_status": "can_be_merged", "detailed_merge_status": self.detailed(pull),
            "blocking_discussions_resolved": not any(
                t.number == pull.number and t.resolvable and not t.resolved
                for t in self.threads),
            "work_in_progress": False, "merge_commit_sha": pull.merge_commit,
            "head_pipeline_id": run and run.id, "last_commit": self._last_commit(pull.head),
            "url": url, **more}  # fmt: skip
        who = self.actors.get(by, by) or self.login
        made = {"object_kind": "merge_request", "user": self._event_user(who),
                "project": self._project_hook(), "repository": self._repository_hook(),
                "object_attributes": attributes, "labels": [],
                "changes": changes or {}}  # fmt: skip
        self._send_checked("Merge Request Hook", action, made)

    def _state(self, pull: PullState) -> str:
        return "merged" if pull.merged else "opened" if pull.state == "open" else "closed"

    def _event_user(self, username: str) -> dict[str, Any]:
        return {"id": self.user_id(username), "name": username.title(), "username": username,
                "avatar_url": "", "email": "[REDACTED]"}  # fmt: skip

    def _last_commit(self, sha: str) -> dict[str, Any]:
        found = self._commit_hook(sha)
        return {"id": sha, "message": found["message"], "timestamp": found["timestamp"],
                "url": f"{self.web}/{self.full}/-/commit/{sha}",
                "author": found["author"]}  # fmt: skip

    def _project_hook(self) -> dict[str, Any]:
        web = f"{self.web}/{self.full}"
        return {"id": 7, "name": self.name, "description": "", "web_url": web,
                "avatar_url": None, "git_http_url": f"{web}.git", "namespace": self.owner,
                "visibility_level": 0, "path_with_namespace": self.full,
                "default_branch": self.branch, "homepage": web,
                "http_url": f"{web}.git"}  # fmt: skip

    def _repository_hook(self) -> dict[str, Any]:
        web = f"{self.web}/{self.full}"
        return {"name": self.name, "url": f"{web}.git", "description": "", "homepage": web}

    # -- the REST API ---------------------------------------------------------------------

    def answer(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        if not path.startswith(ROOT + PREFIX + "/"):
            return 404, {}, b""
        sent = path.removeprefix(ROOT)  # as sent: a placeholder is one segment, a/b as a%2Fb
        inner = sent.removeprefix(PREFIX)
        data: Any = None
        if body:
            try:
                data = json.loads(body)
            except ValueError:
                data = body.decode(errors="replace")
        problems = self._description.request(method, sent, query, data)
        if problems:
            with self.lock:
                self.violations += problems
            status, out, extra = 400, {"error": "; ".join(problems)[:900]}, {}
        else:
            status, out, extra = self._serve(method, inner, query, headers, data or {})
        if isinstance(out, str):
            raw = out.encode()
            extra.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            raw = b"" if out is None else json.dumps(out).encode()
        with self.lock:
            self.violations += self._description.answer(method, sent, status, out)
            self.requests.append((method, inner, status))
        return status, extra, raw

    def _serve(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        data: Any,
    ) -> tuple[int, Any, dict[str, str]]:
        token = headers.get("private-token") or headers.get("authorization", "").removeprefix(
            "Bearer "
        )
        if token not in self.tokens:
            return 401, {"message": "401 Unauthorized"}, {}
        with self.lock:
            if self.failures:
                status = self.failures.pop(0)
                return status, {"message": f"{status} Internal Server Error"}, {}
            now = time.time()
            if self.secondary or (self.remaining <= 0 and now < self.reset_at):
                wait = self.secondary.pop(0) if self.secondary else int(self.reset_at - now) + 1
                limits = {
                    "RateLimit-Limit": "2000",
                    "RateLimit-Remaining": "0",
                    "RateLimit-Observed": "2000",
                }
                if wait:
                    limits["Retry-After"] = str(wait)
                    limits["RateLimit-Reset"] = str(int(now + wait))
                return 429, "Retry later\n", limits
            if self.remaining <= 0:
                self.remaining = 2000
            self.remaining -= 1
            for pattern, verb, handler in ROUTES:
                match = pattern.match(path)
                if match and verb == method:
                    parts = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                    if parts.pop("project", self.full) != self.full:
                        return 404, {"message": "404 Project Not Found"}, {}
                    if method != "GET" and "api" not in self.scopes:
                        return 403, SCOPE, {}
                    try:
                        found: tuple[int, Any, dict[str, str]] = handler(self, query, data, **parts)
                    except _NotFound as missing:
                        return 404, {"message": str(missing)}, {}
                    return found
        return 404, {"message": "404 Not Found"}, {}

    # -- answers ---------------------------------------------------------------------------

    def user_json(self, username: str) -> dict[str, Any]:
        return {
            "id": self.user_id(username),
            "username": username,
            "name": username.title(),
            "state": "active",
            "avatar_url": None,
            "web_url": f"{self.web}/{username}",
        }

    def project_json(self) -> dict[str, Any]:
        return {
            "id": 7,
            "name": self.name,
            "path": self.name,
            "path_with_namespace": self.full,
            "name_with_namespace": self.full.replace("/", " / "),
            "default_branch": self.branch,
            "visibility": "private",
            "web_url": f"{self.web}/{self.full}",
            "http_url_to_repo": f"{self.web}/{self.full}.git",
            "merge_method": self.merge_method,
            "squash_option": self.squash_option,
            "only_allow_merge_if_pipeline_succeeds": self.pipelines_must_succeed,
            "allow_merge_on_skipped_pipeline": False,
            "only_allow_merge_if_all_discussions_are_resolved": self.threads_resolved,
            "merge_trains_enabled": self.merge_trains,
            "approvals_before_merge": self.approvals,
            "merge_requests_enabled": True,
            "issues_enabled": True,
            "autoclose_referenced_issues": True,
            "remove_source_branch_after_merge": False,
            "created_at": "2026-01-01T00:00:00.000Z",
            "last_activity_at": "2026-01-01T00:00:00.000Z",
            "namespace": {
                "id": 3,
                "name": self.owner.rsplit("/", 1)[-1],
                "path": self.owner.rsplit("/", 1)[-1],
                "kind": "group",
                "full_path": self.owner,
                "web_url": f"{self.web}/groups/{self.owner}",
            },
            "permissions": {
                "project_access": {"access_level": self.level(self.login), "notification_level": 3},
                "group_access": None,
            },
        }

    def pipeline_json(self, sha: str) -> dict[str, Any] | None:
        run = self.runs.get(sha)
        if run is None:
            return None
        status = {"queued": "pending", "in_progress": "running"}.get(run.status, "")
        status = status or ("success" if run.conclusion == "success" else "failed")
        branch = next((p.branch for p in self.pulls.values() if p.head == sha), self.branch)
        train = self.trains.get(sha)
        return {
            "id": run.id,
            "project_id": 7,
            "sha": sha,
            "ref": branch if train is None else f"refs/merge-requests/{train}/train",
            "status": status,
            "source": "push" if train is None else "merge_request_event",
            "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": _now(),
            "web_url": f"{self.web}/{self.full}/-/pipelines/{run.id}",
        }

    def mr_json(self, pull: PullState) -> dict[str, Any]:
        self._sync(pull)
        state = "merged" if pull.merged else "opened" if pull.state == "open" else "closed"
        pipeline = self.pipeline_json(pull.head)
        return {
            "id": 10000 + pull.number,
            "iid": pull.number,
            "project_id": 7,
            "title": pull.title,
            "description": pull.body,
            "state": state,
            "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": _now(),
            "merged_by": self.user_json(pull.merged_by) if pull.merged else None,
            "merge_user": self.user_json(pull.merged_by) if pull.merged else None,
            "merged_at": _time(pull.closed_at) if pull.merged else None,
            "closed_at": _time(pull.closed_at) if state == "closed" else None,
            "closed_by": None,
            "target_branch": pull.base,
            "source_branch": pull.branch,
            "user_notes_count": len([n for n in self.notes if n.number == pull.number]),
            "upvotes": 0,
            "downvotes": 0,
            "author": self.user_json(self.login),
            "assignees": [],
            "assignee": None,
            # Who reviewed it: GitLab makes one who approves or reviews it a reviewer.
            "reviewers": [
                self.user_json(u)
                for u in dict.fromkeys(r.user for r in self.reviews if r.number == pull.number)
            ],
            "source_project_id": 7,
            "target_project_id": 7,
            "labels": [],
            "draft": False,
            "work_in_progress": False,
            "milestone": None,
            "merge_when_pipeline_succeeds": False,
            "merge_status": "can_be_merged",
            "detailed_merge_status": self.detailed(pull),
            "sha": pull.head,
            "merge_commit_sha": pull.merge_commit,
            "squash_commit_sha": None,
            "discussion_locked": None,
            "should_remove_source_branch": None,
            "force_remove_source_branch": False,
            "reference": f"!{pull.number}",
            "references": {
                "short": f"!{pull.number}",
                "relative": f"!{pull.number}",
                "full": f"{self.full}!{pull.number}",
            },
            "web_url": f"{self.web}/{self.full}/-/merge_requests/{pull.number}",
            "squash": False,
            "has_conflicts": self.detailed(pull) == "conflict",
            # GitLab's mergeable_discussions_state?: only where the project requires them.
            "blocking_discussions_resolved": not (
                self.threads_resolved
                and any(
                    t.number == pull.number and t.resolvable and not t.resolved
                    for t in self.threads
                )
            ),
            "head_pipeline": pipeline,
            "pipeline": pipeline,
        }

    def note_json(self, said: CommentState, kind: str) -> dict[str, Any]:
        return {
            "id": said.id,
            "type": None,
            "body": said.body,
            "attachment": None,
            "author": self.user_json(said.user),
            "created_at": _time(said.created_at),
            "updated_at": _time(said.created_at),
            "system": False,
            "noteable_id": (10000 if kind == "MergeRequest" else 20000) + said.number,
            "noteable_type": kind,
            "noteable_iid": said.number,
            "resolvable": False,
        }

    def issue_json(self, issue: Any) -> dict[str, Any]:
        url = f"{self.web}/{self.full}/-/issues/{issue.number}"
        tasks = re.findall(r"^\s*[-*] \[( |x)\]", issue.body, re.MULTILINE)
        return {
            "id": 20000 + issue.number,
            "iid": issue.number,
            "project_id": 7,
            "title": issue.title,
            "description": issue.body,
            "state": "opened" if issue.state == "open" else "closed",
            "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": _time(issue.updated_at),
            "closed_at": None if issue.state == "open" else _time(issue.updated_at),
            "closed_by": None,
            "labels": list(issue.labels),
            "milestone": None,
            "assignees": [],
            "assignee": None,
            "author": self.user_json(issue.author),
            "issue_type": "issue",
            "user_notes_count": 0,
            "merge_requests_count": 0,
            "upvotes": 0,
            "downvotes": 0,
            "due_date": None,
            "confidential": issue.confidential,
            "discussion_locked": None,
            "web_url": url,
            "references": {
                "short": f"#{issue.number}",
                "relative": f"#{issue.number}",
                "full": f"{self.full}#{issue.number}",
            },
            "task_completion_status": {"count": len(tasks), "completed_count": tasks.count("x")},
        }

    def car_json(self, car: Car) -> dict[str, Any]:
        pull = self.pulls[car.number]
        pipeline = self.pipeline_json(car.pipeline) if car.pipeline else None
        return {
            "id": car.id,
            "merge_request": {
                "id": 10000 + pull.number,
                "iid": pull.number,
                "project_id": 7,
                "title": pull.title,
                "description": pull.body,
                "state": "merged" if pull.merged else "opened",
                "created_at": "2026-01-01T00:00:00.000Z",
                "updated_at": _now(),
                "web_url": f"{self.web}/{self.full}/-/merge_requests/{pull.number}",
            },
            "user": self.user_json(self.login),
            "pipeline": pipeline,
            "created_at": car.created_at,
            "updated_at": _now(),
            "target_branch": pull.base,
            "status": car.status,
            "merged_at": car.merged_at,
            "duration": None,
        }

    def thread_json(self, thread: Thread) -> dict[str, Any]:
        notes = []
        for ident, user, body, path, line in thread.notes:
            note = self.note_json(
                CommentState(ident, thread.number, user, body, thread.created_at), "MergeRequest"
            )
            note.update(
                type="DiffNote" if path else "DiscussionNote",
                resolvable=thread.resolvable,
                resolved=thread.resolved,
                resolved_by=self.user_json(thread.resolved_by) if thread.resolved else None,
                resolved_at=None,
            )
            if path:
                note["position"] = {
                    "base_sha": self.pulls[thread.number].base_sha,
                    "start_sha": self.pulls[thread.number].base_sha,
                    "head_sha": thread.head,
                    "old_path": path,
                    "new_path": path,
                    "position_type": "text",
                    "old_line": None,
                    "new_line": line,
                }
            notes.append(note)
        return {"id": thread.id, "individual_note": False, "notes": notes}


def _now() -> str:
    return timeutil.to_text(timeutil.now())


def _time(text: str | None) -> str | None:
    """A time as GitLab writes it (UTC, milliseconds): the test GitHub's own are to the
    second."""
    return timeutil.to_text(timeutil.from_text(text)) if text else text


# -- routes -------------------------------------------------------------------------------

Answer = tuple[int, Any, dict[str, str]]
_MISSING = {"message": "404 Not Found"}


class _NotFound(Exception):
    """A route's 404, its message GitLab's for what was not found."""


def _mr_of(forge: Forge, iid: str) -> PullState:
    pull = forge.pulls.get(int(iid))
    if pull is None:
        raise _NotFound("404 Merge Request Not Found")
    return pull


def _issue_of(forge: Forge, iid: str) -> Any:
    issue = forge.issues.get(int(iid))
    if issue is None:
        raise _NotFound("404 Issue Not Found")
    return issue


def _page(query: dict[str, list[str]], found: list[Any]) -> Answer:
    per_page = int(query.get("per_page", ["20"])[-1])
    page = int(query.get("page", ["1"])[-1])
    total = len(found)
    pages = max(1, -(-total // per_page))
    headers = {
        "X-Page": str(page),
        "X-Per-Page": str(per_page),
        "X-Total": str(total),
        "X-Total-Pages": str(pages),
    }
    if page < pages:
        headers["X-Next-Page"] = str(page + 1)
    return 200, found[(page - 1) * per_page : page * per_page], headers


def _project(forge: Forge, query: Any, data: Any) -> Answer:
    return 200, forge.project_json(), {}


def _protected(forge: Forge, query: Any, data: Any, name: str) -> Answer:
    if name not in forge.protected:
        return 404, {"message": "404 Not Found"}, {}
    levels = {50: "Owners", 40: "Maintainers", 30: "Developers + Maintainers", 0: "No one"}
    return (
        200,
        {
            "id": 1,
            "name": name,
            "allow_force_push": False,
            "code_owner_approval_required": False,
            "push_access_levels": [
                {
                    "access_level": 0,
                    "access_level_description": "No one",
                    "user_id": None,
                    "group_id": None,
                }
            ],
            "merge_access_levels": [
                {
                    "access_level": forge.merge_access,
                    "access_level_description": levels.get(forge.merge_access, ""),
                    "user_id": None,
                    "group_id": None,
                }
            ],
        },
        {},
    )


def _approval_rules(forge: Forge, query: Any, data: Any) -> Answer:
    rule = {
        "id": 1,
        "name": "All Members",
        "rule_type": "any_approver",
        "eligible_approvers": [],
        "approvals_required": forge.approvals,
        "users": [],
        "groups": [],
        "contains_hidden_groups": False,
        "protected_branches": [],
        "applies_to_all_protected_branches": False,
    }
    more = [
        rule
        | {"id": 2 + n, "name": f"rule {n}", "rule_type": (*kind, "regular")[0],
           "approvals_required": count,
           "protected_branches": [{"id": 100 + k, "name": b} for k, b in enumerate(names or [])],
           "applies_to_all_protected_branches": names is None}
        for n, (count, names, *kind) in enumerate(forge.rules)
    ]  # fmt: skip
    if forge.approvers:  # a rule naming its approvers, as a person sets one up
        named = [forge.user_json(u) for u in sorted(forge.approvers)]
        more.append(rule | {"id": 2 + len(more), "name": "segregation of duties",
                            "rule_type": "regular", "eligible_approvers": named,
                            "users": named, "approvals_required": forge.approvals})  # fmt: skip
    return 200, [rule, *more], {}


def _mrs(forge: Forge, query: dict[str, list[str]], data: Any) -> Answer:
    state = query.get("state", ["all"])[-1]
    source = query.get("source_branch", [""])[-1]
    target = query.get("target_branch", [""])[-1]
    found = []
    for pull in sorted(forge.pulls.values(), key=lambda p: -p.number):
        shown = forge.mr_json(pull)
        if state != "all" and shown["state"] != state:
            continue
        if (source and pull.branch != source) or (target and pull.base != target):
            continue
        found.append(shown)
    return _page(query, found)


def _create_mr(forge: Forge, query: Any, data: dict[str, Any]) -> Answer:
    branch = data.get("source_branch", "")
    head = forge.git("rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False)
    if not head:
        return 400, {"message": {"source_branch": ["does not exist"]}}, {}
    for pull in forge.pulls.values():
        if pull.branch == branch and pull.state == "open" and pull.base == data["target_branch"]:
            said = (
                f"Another open merge request already exists for this source branch: !{pull.number}"
            )
            return 409, {"message": [said]}, {}
    number = len(forge.pulls) + 1
    target, description = data["target_branch"], data.get("description")
    pull = forge.opened(number, branch, target, data.get("title", ""), description)
    forge._acts(f"!{number} description", pull.body)
    return 201, forge.mr_json(pull), {}


def _mr(forge: Forge, query: Any, data: Any, iid: str) -> Answer:
    pull = _mr_of(forge, iid)
    return 200, forge.mr_json(pull), {}


def _edit_mr(forge: Forge, query: Any, data: dict[str, Any], iid: str) -> Answer:
    pull = _mr_of(forge, iid)
    was = {k: getattr(pull, k) for k, sent in (("title", "title"), ("body", "description"))
           if data.get(sent, getattr(pull, k)) != getattr(pull, k)}  # fmt: skip
    pull.title = data.get("title", pull.title)
    if "description" in data:
        pull.body = data["description"]
        forge._acts(f"!{iid} description", pull.body)
    if was:
        forge._told_pull(pull, "edited", was=was)
    if data.get("state_event") == "close" and pull.state == "open":
        pull.state, pull.closed_at = "closed", _now()
        forge._told_pull(pull, "closed", forge.login)
    return 200, forge.mr_json(pull), {}


def _merge(forge: Forge, query: Any, data: dict[str, Any], iid: str) -> Answer:
    pull = _mr_of(forge, iid)
    forge._sync(pull)
    if pull.state != "open":
        return 405, {"message": "405 Method Not Allowed"}, {}
    if data.get("sha") and data["sha"] != pull.head:
        return 409, {"message": f"SHA does not match HEAD of source branch: {pull.head}"}, {}
    if not forge.may_merge(pull):  # GitLab's answer to a user who may not merge it
        return 401, {"message": "401 Unauthorized"}, {}
    status = forge.detailed(pull)
    if forge.merge_trains or status not in ("mergeable", "need_rebase", "conflict"):
        return 405, {"message": "405 Method Not Allowed"}, {}
    if status != "mergeable":
        return 422, {"message": "Branch cannot be merged"}, {}
    squash = bool(data.get("squash")) or forge.squash_option == "always"
    method = "squash" if squash else "rebase" if forge.merge_method == "ff" else "merge"
    title = data.get("squash_commit_message" if squash else "merge_commit_message") or (
        f"Merge branch '{pull.branch}' into '{pull.base}'"
    )
    found = forge._merge(pull, method, title, f"See merge request !{iid}", "autopilot")
    if isinstance(found, tuple):
        return 422, {"message": "Branch cannot be merged"}, {}
    return 200, forge.mr_json(pull), {}


def _approvals(forge: Forge, query: Any, data: Any, iid: str) -> Answer:
    pull = _mr_of(forge, iid)
    latest: dict[str, str] = {}
    for r in forge.reviews:
        if r.number == pull.number:
            latest[r.user] = r.state
    approved = [u for u, s in latest.items() if s == "APPROVED"]
    return (
        200,
        {
            "id": 10000 + pull.number,
            "iid": pull.number,
            "project_id": 7,
            "title": pull.title,
            "description": pull.body,
            "state": "merged" if pull.merged else "opened" if pull.state == "open" else "closed",
            "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": _now(),
            "merge_status": "can_be_merged",
            "approved": len(approved) >= forge.approvals,
            "approvals_required": forge.approvals,
            "approvals_left": max(0, forge.approvals - len(approved)),
            "approved_by": [{"user": forge.user_json(u)} for u in approved],
        },
        {},
    )


def _reviewers(forge: Forge, query: Any, data: Any, iid: str) -> Answer:
    _mr_of(forge, iid)  # or a 404
    latest: dict[str, ReviewState] = {}
    for r in forge.reviews:
        if r.number == int(iid):
            latest[r.user] = r
    states = {"APPROVED": "approved", "CHANGES_REQUESTED": "requested_changes"}
    return (
        200,
        [
            {
                "user": forge.user_json(u),
                "state": states.get(r.state, "reviewed"),
                "created_at": "2026-01-01T00:00:00.000Z",
            }
            for u, r in latest.items()
        ],
        {},
    )


def _versions(forge: Forge, query: dict[str, list[str]], data: Any, iid: str) -> Answer:
    pull = _mr_of(forge, iid)
    forge._sync(pull)
    found = [
        {
            "id": ident,
            "head_commit_sha": head,
            "base_commit_sha": pull.base_sha,
            "start_commit_sha": pull.base_sha,
            "created_at": at,
            "merge_request_id": 10000 + pull.number,
            "state": "collected",
            "real_size": "1",
        }
        for ident, head, at in reversed(forge.versions.get(pull.number, []))
    ]  # newest first, as GitLab lists them
    return _page(query, found)


def _discussions(forge: Forge, query: dict[str, list[str]], data: Any, iid: str) -> Answer:
    _mr_of(forge, iid)  # or a 404
    found = [forge.thread_json(t) for t in forge.threads if t.number == int(iid)]
    return _page(query, found)


def _mr_notes(forge: Forge, query: dict[str, list[str]], data: Any, iid: str) -> Answer:
    _mr_of(forge, iid)  # or a 404
    found = [forge.note_json(n, "MergeRequest") for n in forge.notes if n.number == int(iid)]
    return _page(query, found)


def _mr_note(forge: Forge, query: Any, data: dict[str, Any], iid: str) -> Answer:
    _mr_of(forge, iid)  # or a 404
    said = _noted(forge, f"!{iid}", data["body"], forge.notes)
    forge._told_note(said)
    return 201, forge.note_json(said, "MergeRequest"), {}


def _issue_notes(forge: Forge, query: dict[str, list[str]], data: Any, iid: str) -> Answer:
    _issue_of(forge, iid)  # or a 404
    found = [forge.note_json(n, "Issue") for n in forge.said if n.number == int(iid)]
    if query.get("sort", ["desc"])[-1] == "desc":
        found.reverse()
    return _page(query, found)


def _issue_note(forge: Forge, query: Any, data: dict[str, Any], iid: str) -> Answer:
    issue = _issue_of(forge, iid)
    said = _noted(forge, f"#{iid}", data["body"], forge.said)
    issue.updated_at = said.created_at  # GitLab touches the noteable
    return 201, forge.note_json(said, "Issue"), {}


def _noted(forge: Forge, where: str, body: str, kept: list[CommentState]) -> CommentState:
    """The token's note on `where` (!iid or #iid), kept in `kept` and in what the token
    wrote, its quick actions recorded."""
    said = CommentState(next(forge._ids), int(where[1:]), forge.login, body, _now())
    kept.append(said)
    forge.comments.append((said.number, body))
    forge._acts(f"{where} note", body)
    return said


def _pipelines(forge: Forge, query: dict[str, list[str]], data: Any) -> Answer:
    sha, ref = query.get("sha", [""])[-1], query.get("ref", [""])[-1]
    found = [forge.pipeline_json(s) for s in forge.runs if not sha or s == sha]
    listed = sorted((p for p in found if p and ref in ("", p["ref"])), key=lambda p: -int(p["id"]))
    return _page(query, listed)


def _job_of(forge: Forge, pipeline: int) -> list[tuple[int, str, str, str]]:
    """A pipeline's jobs: id, name, status, trace."""
    if pipeline in forge.jobs:
        return [
            (i, n, "failed" if end == "failure" else end, log)
            for i, n, end, log in forge.jobs[pipeline]
        ]
    for run in forge.runs.values():
        if run.id == pipeline:
            status = forge.pipeline_json(run.sha)
            assert status is not None
            return [(run.id, run.name, status["status"], run.text)]
    return []


def _jobs(forge: Forge, query: dict[str, list[str]], data: Any, pipeline_id: str) -> Answer:
    found = _job_of(forge, int(pipeline_id))
    if not found:
        return 404, {"message": "404 Not found"}, {}
    scopes = set(query.get("scope[]", []) + query.get("scope", []))
    jobs = [
        {
            "id": ident,
            "status": status,
            "stage": "test",
            "name": name,
            "ref": forge.branch,
            "tag": False,
            "coverage": None,
            "allow_failure": False,
            "created_at": "2026-01-01T00:00:00.000Z",
            "started_at": None,
            "finished_at": None,
            "duration": None,
            "queued_duration": None,
            "user": forge.user_json(forge.login),
            "pipeline": {
                "id": int(pipeline_id),
                "project_id": 7,
                "ref": forge.branch,
                "sha": "0" * 40,
                "status": status,
            },
            "web_url": f"{forge.web}/{forge.full}/-/jobs/{ident}",
            "failure_reason": "script_failure" if status == "failed" else None,
            "artifacts": [],
            "runner": None,
        }
        for ident, name, status, _ in found
        if not scopes or status in scopes
    ]
    return _page(query, jobs)


def _trace(forge: Forge, query: Any, data: Any, job_id: str) -> Answer:
    for jobs in [_job_of(forge, p) for p in {*forge.jobs, *(r.id for r in forge.runs.values())}]:
        for ident, _, _, log in jobs:
            if ident == int(job_id):
                return 200, log, {}
    return 404, {"message": "404 Not found"}, {}


def _train_add(forge: Forge, query: Any, data: dict[str, Any], iid: str) -> Answer:
    pull = _mr_of(forge, iid)
    if not forge.merge_trains:
        return 403, {"message": "403 Forbidden"}, {}
    forge._sync(pull)
    if data.get("sha") and data["sha"] != pull.head:
        return 409, {"message": f"SHA does not match HEAD of source branch: {pull.head}"}, {}
    if not forge.may_merge(pull):
        return 401, {"message": "401 Unauthorized"}, {}
    if pull.number in forge.cars or pull.state != "open":
        return 400, {"message": "400 Bad request - Failed to merge"}, {}
    unmet = forge._unmet(pull)
    if unmet:
        return 400, {"message": f"400 Bad request - Failed to merge: {unmet}"}, {}
    car = Car(next(forge._ids), pull.number, pull.head, created_at=_now())
    forge.cars[pull.number] = car
    thread = threading.Thread(target=forge._board, args=(pull,), daemon=True)
    forge._checkers.append(thread)
    thread.start()
    return 201, [forge.car_json(car)], {}


def _train_car(forge: Forge, query: Any, data: Any, iid: str) -> Answer:
    car = forge.cars.get(int(iid))
    if car is None:
        return 404, {"message": "404 Merge Train Merge Request Not Found"}, {}
    with forge.lock:
        late = forge._late.pop(car.number, None)
        if late is not None:
            forge._merged(late, car)
    return 200, forge.car_json(car), {}


def _issues(forge: Forge, query: dict[str, list[str]], data: Any) -> Answer:
    wanted = {label for label in query.get("labels", [""])[-1].split(",") if label}
    state = query.get("state", ["all"])[-1]
    after = query.get("updated_after", [""])[-1]
    found = [
        forge.issue_json(i)
        for i in sorted(forge.issues.values(), key=lambda i: -i.number)
        if (state == "all" or forge.issue_json(i)["state"] == state)
        and wanted <= set(i.labels)
        and (not after or timeutil.from_text(i.updated_at) >= timeutil.from_text(after))
    ]
    return _page(query, found)


def _issue(forge: Forge, query: Any, data: Any, iid: str) -> Answer:
    issue = _issue_of(forge, iid)
    return 200, forge.issue_json(issue), {}


def _edit_issue(forge: Forge, query: Any, data: dict[str, Any], iid: str) -> Answer:
    issue = _issue_of(forge, iid)
    if data.get("state_event") == "close":
        forge.close_issue(issue.number, forge.login)
    elif data.get("state_event") == "reopen":
        forge.reopen_issue(issue.number, forge.login)
    for label in str(data.get("add_labels") or "").split(","):
        if label:
            forge.label_as(forge.login, issue.number, label)
    if "description" in data:
        issue.body = data["description"]
        forge._acts(f"#{iid} description", issue.body)
    issue.updated_at = _now()
    return 200, forge.issue_json(issue), {}


def _closed_by(forge: Forge, query: Any, data: Any, iid: str) -> Answer:
    """The merge requests that close the issue when merged, as GitLab keeps them (its
    MergeRequestsClosingIssues): an open one by its description's closing pattern, a merged
    one by what its merge closed (its description's and its commits')."""
    issue = _issue_of(forge, iid)
    found = []
    for pull in sorted(forge.pulls.values(), key=lambda p: p.number):
        by_body = f"{forge.full}#{issue.number}" in forge.acting(pull.body).closes
        if (issue.number in pull.closes) if pull.merged else (by_body and pull.state == "open"):
            found.append(forge.mr_json(pull))
    return 200, found, {}


def _links(forge: Forge, query: Any, data: Any, iid: str) -> Answer:
    _issue_of(forge, iid)  # or a 404
    found = []
    for link in (k for k in forge.links if k.source == int(iid)):
        if link.target in forge.issues:
            found.append(
                forge.issue_json(forge.issues[link.target])
                | {
                    "issue_link_id": link.id,
                    "link_type": link.kind,
                    "link_created_at": "2026-01-01T00:00:00.000Z",
                    "link_updated_at": "2026-01-01T00:00:00.000Z",
                }
            )
    return 200, found, {}


def _label_events(forge: Forge, query: dict[str, list[str]], data: Any, iid: str) -> Answer:
    _issue_of(forge, iid)  # or a 404
    found = [
        {
            "id": e.id,
            "user": forge.user_json(e.user),
            "created_at": e.created_at,
            "resource_type": "Issue",
            "resource_id": 20000 + e.number,
            "label": {
                "id": abs(hash(e.label)) % 1000,
                "name": e.label,
                "color": "#ededed",
                "description": None,
            },
            "action": e.action,
        }
        for e in forge.labels
        if e.number == int(iid)
    ]
    return _page(query, found)


def _users(forge: Forge, query: dict[str, list[str]], data: Any) -> Answer:
    name = query.get("username", [""])[-1]
    if not name or name in forge.unknown:
        return 200, [], {}
    # UserBasic, as GitLab answers a token that is no admin's: no `bot` (GET /users/:id has).
    return 200, [forge.user_json(name)], {}


def _user(forge: Forge, query: Any, data: Any, user_id: str) -> Answer:
    name = next((u for u, i in forge.users.items() if i == int(user_id)), None)
    if name is None or name in forge.unknown:
        return 404, {"message": "404 User Not Found"}, {}
    return 200, forge.user_json(name) | {"bot": name in forge.bots}, {}


def _me(forge: Forge, query: Any, data: Any) -> Answer:
    return 200, forge.user_json(forge.login) | {"bot": forge.login in forge.bots}, {}


def _token(forge: Forge, query: Any, data: Any) -> Answer:
    return (
        200,
        {
            "id": 1,
            "name": "wvo-mcp",
            "revoked": False,
            "created_at": "2026-01-01T00:00:00.000Z",
            "description": "",
            "scopes": list(forge.scopes),
            "user_id": forge.user_id(forge.login),
            "last_used_at": _now(),
            "active": True,
            "expires_at": "2027-01-01",
        },
        {},
    )


def _member_json(forge: Forge, username: str, level: int) -> dict[str, Any]:
    awaiting = username in forge.awaiting
    return forge.user_json(username) | {
        "state": "awaiting" if awaiting else "active",
        "access_level": level,
        "expires_at": None,
        "created_at": "2026-01-01T00:00:00.000Z",
    }


def _member(forge: Forge, query: Any, data: Any, user_id: str) -> Answer:
    name = next((u for u, i in forge.users.items() if i == int(user_id)), None)
    if name is None or forge.level(name) <= 0:
        return 404, {"message": "404 Not found"}, {}
    return 200, _member_json(forge, name, forge.level(name)), {}


def _group_member(forge: Forge, query: Any, data: Any, group: str, user_id: str) -> Answer:
    name = next((u for u, i in forge.users.items() if i == int(user_id)), None)
    if group not in forge.teams:
        return 404, {"message": "404 Group Not Found"}, {}
    if name is None or name not in forge.teams[group]:
        return 404, {"message": "404 Not found"}, {}
    return 200, _member_json(forge, name, 30), {}


def _merge_base(forge: Forge, query: dict[str, list[str]], data: Any) -> Answer:
    refs = query.get("refs[]", [])
    shas = [forge.git("rev-parse", "--verify", "-q", f"{r}^{{commit}}", check=False) for r in refs]
    if len(refs) < 2 or not all(shas):
        return 400, {"message": "Could not find ref"}, {}
    base = forge.git("merge-base", *shas, check=False)
    if not base:
        return 404, {"message": "404 Not Found"}, {}
    return (
        200,
        {
            "id": base,
            "short_id": base[:8],
            "title": "",
            "message": "",
            "parent_ids": [],
            "created_at": "2026-01-01T00:00:00.000Z",
            "author_name": "A Person",
            "author_email": "person@example.invalid",
            "authored_date": "2026-01-01T00:00:00.000Z",
            "committer_name": "A Person",
            "committer_email": "person@example.invalid",
            "committed_date": "2026-01-01T00:00:00.000Z",
            "web_url": f"{forge.web}/{forge.full}/-/commit/{base}",
        },
        {},
    )


P = "/projects/{project}"
ROUTES: list[tuple["re.Pattern[str]", str, Callable[..., Answer]]] = [
    (_route(P), "GET", _project),
    (_route(P + "/protected_branches/{name}"), "GET", _protected),
    (_route(P + "/approval_rules"), "GET", _approval_rules),
    (_route(P + "/merge_requests"), "GET", _mrs),
    (_route(P + "/merge_requests"), "POST", _create_mr),
    (_route(P + "/merge_requests/{iid}"), "GET", _mr),
    (_route(P + "/merge_requests/{iid}"), "PUT", _edit_mr),
    (_route(P + "/merge_requests/{iid}/merge"), "PUT", _merge),
    (_route(P + "/merge_requests/{iid}/approvals"), "GET", _approvals),
    (_route(P + "/merge_requests/{iid}/reviewers"), "GET", _reviewers),
    (_route(P + "/merge_requests/{iid}/discussions"), "GET", _discussions),
    (_route(P + "/merge_requests/{iid}/versions"), "GET", _versions),
    (_route(P + "/merge_requests/{iid}/notes"), "GET", _mr_notes),
    (_route(P + "/merge_requests/{iid}/notes"), "POST", _mr_note),
    (_route(P + "/merge_trains/merge_requests/{iid}"), "POST", _train_add),
    (_route(P + "/merge_trains/merge_requests/{iid}"), "GET", _train_car),
    (_route(P + "/pipelines"), "GET", _pipelines),
    (_route(P + "/pipelines/{pipeline_id}/jobs"), "GET", _jobs),
    (_route(P + "/jobs/{job_id}/trace"), "GET", _trace),
    (_route(P + "/issues"), "GET", _issues),
    (_route(P + "/issues/{iid}"), "GET", _issue),
    (_route(P + "/issues/{iid}"), "PUT", _edit_issue),
    (_route(P + "/issues/{iid}/notes"), "GET", _issue_notes),
    (_route(P + "/issues/{iid}/notes"), "POST", _issue_note),
    (_route(P + "/issues/{iid}/links"), "GET", _links),
    (_route(P + "/issues/{iid}/closed_by"), "GET", _closed_by),
    (_route(P + "/issues/{iid}/resource_label_events"), "GET", _label_events),
    (_route(P + "/members/all/{user_id}"), "GET", _member),
    (_route(P + "/repository/merge_base"), "GET", _merge_base),
    (_route("/groups/{group}/members/all/{user_id}"), "GET", _group_member),
    (_route("/users"), "GET", _users),
    (_route("/users/{user_id}"), "GET", _user),
    (_route("/user"), "GET", _me),
    (_route("/personal_access_tokens/self"), "GET", _token),
]
