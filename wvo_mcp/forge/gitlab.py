"""GitLab's merge requests through python-gitlab: the forge interface over REST v4.

gitlab.com or a self-managed instance by its API base URL (`https://host/api/v4`), the
project by its full path (`group/sub/project`); every request goes through
forge/gitlab_http.py (counted, never slept on or retried, each failure a Fault).

GitLab sends no ETags for these reads, so every poll counts against the rate limit.
Merge requests and issues have numbers (iids) of their own: `comment` is on an issue,
`comment_pull` on a merge request. Threads left unresolved where the project requires
every thread resolved come back as changes requested, so the queue returns them to the
worker as it does a GitHub review."""

import hashlib
import re
import urllib.parse
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from wvo_mcp import timeutil
from wvo_mcp.errors import Fault
from wvo_mcp.forge import (
    Access,
    Check,
    Comment,
    Issue,
    IssueComment,
    Look,
    Merged,
    Method,
    Pull,
    Repository,
    Requirements,
    Review,
    faults,
    gitlab_access,
)
from wvo_mcp.forge.gitlab_access import role_fix, role_of
from wvo_mcp.forge.gitlab_http import Api
from wvo_mcp.rules.text import ForgeKind
from wvo_mcp.rules.webhooks import FailedJob

LEVELS = ((50, "admin"), (40, "maintain"), (30, "write"), (15, "triage"), (10, "read"))
# GitLab's detailed_merge_status in the words of rules/pulls (GitHub's mergeable_state).
STATES = {
    "mergeable": "clean",
    "need_rebase": "behind",
    "conflict": "dirty",
    "checking": "unknown",
    "unchecked": "unknown",
    "preparing": "unknown",
}
RUNNING = frozenset(
    {"created", "waiting_for_resource", "preparing", "pending", "running", "scheduled", "manual"}
)
PASSED = frozenset({"success", "skipped"})
# Approval rules that hold every merge request they cover (report_approver and code_owner
# rules hold some only).
ALWAYS = frozenset({"regular", "any_approver"})
# GitLab's roles by access level, for what `doctor` says.


class GitLab:
    """One project on GitLab, as the merge queue asks it (forge.Forge)."""

    kind: ForgeKind = "gitlab"

    def __init__(
        self, api: str, repository: str, token: str, timeout: float = 30.0, source: str = ""
    ) -> None:
        self._api = Api(api, token, timeout, repository.strip("/"), source)
        self.api = self._api.api
        self.path = self._api.path
        self.where = self._api.where
        self.host = self._api.host
        self.id = urllib.parse.quote(self.path, safe="")
        self._project: dict[str, Any] | None = None

    @property
    def calls(self) -> int:
        return self._api.calls

    def _p(self, rest: str = "") -> str:
        return f"/projects/{self.id}{rest}"

    # -- forge.Forge ------------------------------------------------------------------------

    def project(self, fresh: bool = False) -> dict[str, Any]:
        """The project's settings, read once (and again when `fresh`)."""
        if self._project is None or fresh:
            self._project = cast(dict[str, Any], self._api.get(self._p(), "reading the project"))
        return self._project

    def repository(self) -> Repository:
        found = self.project(fresh=True)
        squash = found.get("squash_option") or "default_off"
        if found.get("merge_method") == "ff":
            methods: tuple[Method, ...] = ("rebase",)
        elif squash == "always":
            methods = ("squash",)
        elif squash == "never":
            methods = ("merge",)
        else:
            methods = ("merge", "squash")
        return Repository(str(found["path_with_namespace"]), str(found["web_url"]), methods)

    def requirements(self, branch: str) -> Requirements:
        """The project's settings and its approval rules for `branch` (Premium; where the
        instance has none, approvals come from the project's approvals_before_merge)."""
        found = self.project(fresh=True)
        checks = ("pipeline",) if found.get("only_allow_merge_if_pipeline_succeeds") else ()
        try:
            rules = self._api.get(
                self._p("/approval_rules"), f"reading the approval rules of {branch}"
            )
            approvals = max(
                [int(r.get("approvals_required") or 0) for r in rules if _applies(r, branch)] or [0]
            )
        except Fault as exc:
            if exc.kind != "auth":
                raise
            approvals = int(found.get("approvals_before_merge") or 0)
        strict = found.get("merge_method") in ("rebase_merge", "ff")
        return Requirements(
            checks, approvals, strict, True, bool(found.get("merge_trains_enabled"))
        )

    def find(self, branch: str, base: str) -> Pull | None:
        found = self._api.get(
            self._p("/merge_requests"),
            f"looking for the merge request from {branch}",
            source_branch=branch,
            target_branch=base,
            state="all",
            order_by="created_at",
            sort="desc",
            per_page=1,
        )
        return _pull(found[0]) if found else None

    def open(self, branch: str, base: str, title: str, body: str) -> Pull:
        found = self._api.request(
            "post",
            self._p("/merge_requests"),
            f"opening a merge request from {branch}",
            body={
                "source_branch": branch,
                "target_branch": base,
                "title": title,
                "description": body,
                "remove_source_branch": False,
            },
        )
        return _pull(found)

    def edit(self, number: int, title: str, body: str) -> None:
        self._api.request(
            "put",
            self._p(f"/merge_requests/{number}"),
            f"editing merge request !{number}",
            body={"title": title, "description": body},
        )

    def close(self, number: int) -> None:
        where, what = self._p(f"/merge_requests/{number}"), f"closing merge request !{number}"
        self._api.request("put", where, what, body={"state_event": "close"})

    def pull(self, number: int) -> Pull:
        return _pull(
            self._api.get(self._p(f"/merge_requests/{number}"), f"reading merge request !{number}")
        )

    def checks(self, commit: str, wanted: Sequence[str] = ()) -> list[Check]:
        """The newest pipeline on `commit`, as one check named "pipeline"; a failed one with
        its failed job's log tail."""
        found = self._api.get(
            self._p("/pipelines"),
            f"reading the pipelines of {commit[:12]}",
            sha=commit,
            order_by="id",
            sort="desc",
            per_page=1,
        )
        if not found:
            return []
        return [self._pipeline(found[0])]

    def _pipeline(self, pipeline: dict[str, Any]) -> Check:
        """A pipeline as one check named "pipeline"; a failed one with its failed job's log
        tail."""
        status = str(pipeline.get("status") or "")
        state: Any = (
            "pending" if status in RUNNING else "success" if status in PASSED else "failure"
        )
        text = ""
        if state == "failure":
            job = self.failed_job(int(pipeline["id"]))
            text = "" if job is None else f"{job.name}: {job.url}\n{job.log}"
        return Check("pipeline", state, status, str(pipeline.get("web_url") or ""), text)

    def look(self, number: int, required: Requirements) -> Look:
        """What pull(), checks() and reviews() read, from the merge request (its head
        pipeline with it) and its approvals: two requests. Its pipelines are read only when
        its head pipeline is not of its head; its threads only when it says some block it;
        its reviewers only when it names one who has not approved (only a reviewer has a
        review state, and asking for changes takes a reviewer's approval back)."""
        found = self._api.get(
            self._p(f"/merge_requests/{number}"), f"reading merge request !{number}"
        )
        pull = _pull(found)
        pipeline = found.get("head_pipeline")
        if isinstance(pipeline, dict) and pipeline.get("sha") == pull.head:
            checks = [self._pipeline(pipeline)]
        else:  # none yet, or one of an older head (or unreadable): as checks() reads
            checks = self.checks(pull.head)
        threads = found.get("blocking_discussions_resolved") is False and bool(
            self.project().get("only_allow_merge_if_all_discussions_are_resolved"))  # fmt: skip
        named = found.get("reviewers")
        reviewers = None if not isinstance(named, list) else {
            str(r.get("username") or "") for r in named if isinstance(r, dict)}  # fmt: skip
        return Look(pull, tuple(checks), tuple(self._reviews(number, threads, reviewers)))

    def reviews(self, number: int) -> list[Review]:
        """Approvals, reviewers who asked for changes, and (where the project requires every
        thread resolved) each author's unresolved threads as changes requested on the head
        they were written on, with their file, line and text."""
        threads = bool(self.project().get("only_allow_merge_if_all_discussions_are_resolved"))
        return self._reviews(number, threads, None)

    def _reviews(self, number: int, threads_read: bool, reviewers: set[str] | None) -> list[Review]:
        """reviews(), its threads read only if `threads_read`, and its reviewers only if
        `reviewers` (those the merge request names; None: not known) has one who did not
        approve."""
        where = f"/merge_requests/{number}"
        url = f"{self.web_url()}/-{where}"
        found: list[Review] = []
        approvals = self._api.get(self._p(where + "/approvals"), f"reading !{number}'s approvals")
        for approver in approvals.get("approved_by") or []:
            user = approver.get("user") or {}
            who = str(user.get("username") or "")
            approval = _stable("approval", self.path, number, user.get("id") or who)
            found.append(Review(approval, who, "APPROVED", "", "", url))
        threads: dict[str, list[tuple[str, Comment]]] = {}
        # An author's changes asked, one review however many threads (and after they are
        # resolved, while GitLab still lists them as asking for changes): one id.
        ids: dict[str, int] = {}
        if threads_read:
            for thread in self._api.pages(
                self._p(where + "/discussions"), f"reading !{number}'s threads"
            ):
                notes = [n for n in thread.get("notes") or [] if not n.get("system")]
                if not notes or not notes[0].get("resolvable") or notes[0].get("resolved"):
                    continue
                first = notes[0]
                who = str((first.get("author") or {}).get("username") or "")
                author = (first.get("author") or {}).get("id") or who
                ids.setdefault(who, _stable("changes", self.path, number, author))
                position = first.get("position") or {}
                line = position.get("new_line")
                comment = Comment(
                    str(position.get("new_path") or ""),
                    int(line) if line is not None else None,
                    str(first.get("body") or ""),
                )
                head = str(position.get("head_sha") or "") or self._written_on(
                    number, str(first.get("created_at") or "")
                )
                threads.setdefault(who, []).append((head, comment))
        asked: list[dict[str, Any]] = []
        if reviewers is None or reviewers - {r.author for r in found}:
            asked = self._api.get(self._p(where + "/reviewers"), f"reading !{number}'s reviewers")
        for reviewer in asked:
            user = reviewer.get("user") or {}
            who = str(user.get("username") or "")
            if reviewer.get("state") == "requested_changes" and who not in threads:
                threads[who] = []  # on no head known: it waits for them to review again
                ids[who] = _stable("changes", self.path, number, user.get("id") or who)
        for who, said in threads.items():
            heads = [h for h, _ in said if h]
            positioned = tuple(c for _, c in said if c.path)
            body = "\n\n".join(c.body for _, c in said if not c.path)
            found.append(
                Review(
                    ids[who],
                    who,
                    "CHANGES_REQUESTED",
                    heads[-1] if heads else "",
                    body or "unresolved threads",
                    url,
                    positioned,
                )
            )
        return found

    def _written_on(self, number: int, at: str) -> str:
        """The head a thread on no diff line was written on: the merge request's newest diff
        version at that time (GitLab makes one per push); '' when none is known."""
        versions = self._api.pages(
            self._p(f"/merge_requests/{number}/versions"), f"reading !{number}'s versions"
        )
        when = _instant(at)
        if when is None:
            return ""
        earlier: list[tuple[datetime, int, str]] = []
        for n, version in enumerate(versions):  # newest first, as GitLab lists them
            made = _instant(version.get("created_at"))
            if made is not None and made <= when:  # a push in the note's second was before it
                earlier.append((made, -n, str(version.get("head_commit_sha") or "")))
        return max(earlier)[2] if earlier else ""

    def merge(self, number: int, head: str, method: Method, title: str, message: str) -> Merged:
        """PUT …/merge with `sha` in the body: GitLab merges only while the head is `head`
        (409 when it moved)."""
        squash = method == "squash"
        said = f"{title}\n\n{message}".strip()
        body: dict[str, Any] = {"sha": head, "squash": squash, "should_remove_source_branch": False}
        body["squash_commit_message" if squash else "merge_commit_message"] = said
        try:
            found = self._merging(
                "put", f"/merge_requests/{number}/merge", f"merging merge request !{number}", body
            )
        except Fault as exc:
            if exc.kind != "refused":
                raise
            return Merged(False, moved="(409)" in str(exc), why=str(exc))
        if found.get("state") != "merged":
            return Merged(False, why=f"GitLab left it {found.get('state')}")
        return Merged(
            True,
            str(
                found.get("merge_commit_sha")
                or found.get("squash_commit_sha")
                or found.get("sha")
                or ""
            ),
        )

    def enqueue(self, pull: Pull, head: str) -> Merged:
        """Onto the merge train at `head` (`moved` when it no longer is)."""
        try:
            self._merging(
                "post",
                f"/merge_trains/merge_requests/{pull.number}",
                f"adding merge request !{pull.number} to the merge train",
                {"sha": head},
            )
        except Fault as exc:
            if exc.kind != "refused":
                raise
            moved = "(409)" in str(exc) or "does not match head" in str(exc).lower()
            return Merged(False, moved=moved, why="" if moved else str(exc))
        return Merged(False)

    def _merging(self, verb: str, path: str, what: str, body: dict[str, Any]) -> Any:
        """A merge or a merge train's car. GitLab answers 401 also to a user who may not
        merge the merge request: when the token still reads its user, that is a refusal
        about the role, not a revoked token."""
        try:
            return self._api.request(verb, self._p(path), what, body=body)
        except faults.TokenRefused as exc:
            try:
                me = self._api.get("/user", "reading the token's user")
                member = self._api.request(
                    "get", self._p(f"/members/all/{me['id']}"), "reading its role", missing=True
                )
            except Fault:
                raise exc from None
            level = 0 if member is None else int(member.get("access_level") or 0)
            who = f"the token's user @{me.get('username') or me['id']} ({role_of(level)})"
            raise Fault(
                "refused",
                f"GitLab refused {what} (401) though the token works: {who} may not merge it, "
                "by the role the target branch's protection lets merge (Settings > Repository "
                "> Protected branches): give the token a role that may merge, "
                f"{role_fix('Maintainer')}, or allow its role there; `wvo-mcp doctor` says "
                "which",
            ) from None

    def queued(self, pull: Pull) -> str | None:
        found = self._api.request(
            "get",
            self._p(f"/merge_trains/merge_requests/{pull.number}"),
            f"reading !{pull.number}'s merge train car",
            missing=True,
        )
        status = None if found is None else str(found.get("status") or "")
        return None if status in (None, "merged", "skip_merged") else status

    def dropped(self, pull: Pull) -> Check | None:
        """The failed pipeline of its car's merged result: GitLab forgets a dropped car, but
        its pipelines ran on refs/merge-requests/IID/train; the newest, if it failed."""
        found = self._api.get(
            self._p("/pipelines"),
            f"reading !{pull.number}'s merge train pipelines",
            ref=f"refs/merge-requests/{pull.number}/train",
            order_by="id",
            sort="desc",
            per_page=1,
        )
        if not found:
            return None
        tested = str(found[0].get("sha") or "")
        return next((c for c in self.checks(tested) if c.state == "failure"), None)

    def comment(self, number: int, body: str) -> IssueComment:
        return self._post_note("issues", number, body, f"commenting on issue #{number}")

    def comment_pull(self, number: int, body: str) -> IssueComment:
        return self._post_note(
            "merge_requests", number, body, f"commenting on merge request !{number}"
        )

    def _post_note(self, kind: str, number: int, body: str, what: str) -> IssueComment:
        found = self._api.request(
            "post", self._p(f"/{kind}/{number}/notes"), what, body={"body": body}
        )
        return self._note(found, number, kind)

    def _note(self, found: dict[str, Any], number: int, kind: str) -> IssueComment:
        return IssueComment(
            id=int(found["id"]),
            number=number,
            user=str((found.get("author") or {}).get("username") or ""),
            body=str(found.get("body") or ""),
            created_at=_utc(found.get("created_at")),
            url=f"{self.web_url()}/-/{kind}/{number}#note_{found['id']}",
        )

    def web_url(self) -> str:
        return str(self.project().get("web_url") or "")

    def comments(self, since: str, number: int | None = None) -> list[IssueComment]:
        """Notes by people (not GitLab's own) on issue `number`, or on every issue updated
        since `since` (GitLab has no project-wide listing: one request per such issue)."""
        if number is None:
            updated = self._api.pages(
                self._p("/issues"),
                f"listing issues updated since {since}",
                updated_after=since,
                state="all",
                order_by="updated_at",
                sort="asc",
            )
            numbers = [int(i["iid"]) for i in updated]
        else:
            numbers = [number]
        start = timeutil.from_text(since)
        found: list[IssueComment] = []
        for n in numbers:
            notes = self._api.pages(
                self._p(f"/issues/{n}/notes"),
                f"listing issue #{n}'s notes",
                sort="asc",
                order_by="created_at",
            )
            found += [
                self._note(note, n, "issues")
                for note in notes
                if not note.get("system")
                and timeutil.from_text(_utc(note.get("updated_at") or note.get("created_at")))
                >= start
            ]
        return sorted(found, key=lambda c: (c.created_at, c.id))

    def _user(self, login: str) -> dict[str, Any] | None:
        found = self._api.get("/users", f"looking up {login}", username=login)
        return cast(dict[str, Any], found[0]) if found else None

    def permission(self, login: str) -> str:
        user = self._user(login)
        if user is None:
            return "none"
        member = self._api.request(
            "get", self._p(f"/members/all/{user['id']}"), f"reading {login}'s role", missing=True
        )
        # An invitation not yet accepted (or a blocked user) is no member yet.
        if member is None or member.get("state", "active") != "active":
            return "none"
        level = int(member.get("access_level") or 0)
        role = next((name for at, name in LEVELS if level >= at), "none")
        if role in ("none", "read"):
            return role
        # A bot (a project or group access token's user) steers nothing: at most a reader.
        # The list a username is found by (UserBasic, to a token that is no admin's) has no
        # `bot`; the user itself (Entities::User) has.
        found = self._api.get(f"/users/{user['id']}", f"reading whether {login} is a bot")
        return "read" if found.get("bot") else role

    def member(self, team: str, login: str) -> bool:
        """Whether `login` is an active member of the group `team` (any depth: a/b/c)."""
        user = self._user(login)
        if user is None:
            return False
        group = urllib.parse.quote(team.strip("/"), safe="")
        found = self._api.request(
            "get",
            f"/groups/{group}/members/all/{user['id']}",
            f"reading whether {login} is in {team}",
            missing=True,
        )
        return found is not None and found.get("state", "active") == "active"

    def contains(self, ancestor: str, descendant: str) -> bool:
        try:
            found = self._api.request(
                "get",
                self._p("/repository/merge_base"),
                f"comparing {ancestor[:12]} with {descendant[:12]}",
                query={"refs[]": [ancestor, descendant]},
                missing=True,
            )
        except Fault as exc:
            if exc.kind != "refused":  # 400: a commit GitLab does not know
                raise
            return False
        return found is not None and found.get("id") == ancestor

    def issue(self, number: int) -> Issue | None:
        found = self._api.request(
            "get", self._p(f"/issues/{number}"), f"reading issue #{number}", missing=True
        )
        return None if found is None else self._issue(found)

    def closer(self, number: int) -> str | None:
        """A merged merge request that closes it (`closed_by`: its description's or its
        commits' closing pattern). GitLab's API names no commit that closed an issue by
        itself (gitlab-org/gitlab#362430): such a close reads as a person's."""
        found = self._api.get(
            self._p(f"/issues/{number}/closed_by"), f"reading what closes issue #{number}"
        )
        merged = [int(m["iid"]) for m in found if m.get("state") == "merged"]
        return f"merge request !{max(merged)}" if merged else None

    def issues(self, label: str) -> list[Issue]:
        found = self._api.pages(
            self._p("/issues"), f"listing the issues labelled {label!r}", labels=label, state="all"
        )
        return [self._issue(i) for i in found]

    def _issue(self, found: dict[str, Any]) -> Issue:
        """An issue, with the issues it is blocked by as its parts (read for open issues
        only: a closed one's dependencies schedule nothing)."""
        number = int(found["iid"])
        subs: tuple[int, ...] = ()
        if found.get("state") == "opened":
            links = self._api.get(
                self._p(f"/issues/{number}/links"), f"listing issue #{number}'s links"
            )
            subs = tuple(
                int(k["iid"])
                for k in links
                if k.get("link_type") == "is_blocked_by"
                and int(k.get("project_id") or 0) == int(found.get("project_id") or 0)
            )
        return Issue(
            number=number,
            node_id=str(found.get("id") or ""),
            title=str(found.get("title") or ""),
            body=str(found.get("description") or ""),
            labels=tuple(str(label) for label in found.get("labels") or []),
            state="open" if found.get("state") == "opened" else "closed",
            url=str(found.get("web_url") or ""),
            sub_issues=subs,
            author=str((found.get("author") or {}).get("username") or ""),
            confidential=bool(found.get("confidential")),
        )

    def labelled_by(self, number: int, label: str) -> str | None:
        who = None
        for event in self._api.pages(
            self._p(f"/issues/{number}/resource_label_events"),
            f"reading who labelled issue #{number}",
        ):
            named = str((event.get("label") or {}).get("name") or "").strip().lower()
            if event.get("action") == "add" and named == label.strip().lower():
                who = str((event.get("user") or {}).get("username") or "") or None
        return who

    def finish_issue(self, number: int, label: str | None) -> None:
        if label:
            self._api.request(
                "put",
                self._p(f"/issues/{number}"),
                f"labelling issue #{number} {label!r}",
                body={"add_labels": label},
            )
            return
        self._api.request(
            "put",
            self._p(f"/issues/{number}"),
            f"closing issue #{number}",
            body={"state_event": "close"},
        )

    def failed_job(self, run_id: int) -> FailedJob | None:
        """Pipeline `run_id`'s first failed job, with its trace's tail."""
        jobs = self._api.get(
            self._p(f"/pipelines/{run_id}/jobs"),
            f"listing pipeline {run_id}'s failed jobs",
            **{"scope[]": "failed"},
        )
        failed = [j for j in jobs if j.get("status") == "failed"]
        if not failed:
            return None
        job = failed[0]

        def log() -> str:
            return str(self._api.get(self._p(f"/jobs/{job['id']}/trace"),
                                     f"reading job {job.get('name')!r}'s log"))  # fmt: skip

        return faults.failed_job(str(job.get("name") or ""), str(job.get("web_url") or ""), log)

    def failed_check(self, suite_id: int) -> FailedJob | None:
        """GitLab has no check suites: pipelines are read by failed_job."""
        return None

    def access(self, branch: str) -> list[Access]:
        """Each permission the queue needs, probed without writing (forge/gitlab_access.py)."""
        return gitlab_access.access(self._api, self._p, self.path, branch)


def _stable(*parts: object) -> int:
    """A review's id where GitLab gives none (an approval, a reviewer's state): the same
    for the same parts, and (62 bits) apart from any other's."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest) >> 2


def _instant(at: object) -> datetime | None:
    """GitLab's ISO 8601 time, as an aware datetime (None when it is not one)."""
    try:
        return timeutil.from_text(str(at))
    except ValueError:
        return None


def _utc(said: Any) -> str:
    """A GitLab time as this product writes times (timeutil): GitLab writes milliseconds, in
    UTC or in the instance's own zone (+01:00), so its text cannot be compared as it is."""
    found = _instant(said)
    return timeutil.to_text(found or datetime.fromtimestamp(0, UTC))


def _applies(rule: dict[str, Any], branch: str) -> bool:
    """Whether an approval rule covers `branch`: one GitLab always applies (not a report
    approver's or a code owner's, which hold only some merge requests) that names no branch,
    names it (a protected branch's name may be a wildcard, `release/*`, whose `*` matches
    any run of characters, `/` too), or applies to every protected branch."""
    if rule.get("rule_type", "regular") not in ALWAYS:
        return False
    named = [str(b.get("name") or "") for b in rule.get("protected_branches") or []]
    return (
        not named
        or any(re.fullmatch(".*".join(map(re.escape, name.split("*"))), branch) for name in named)
        or bool(rule.get("applies_to_all_protected_branches"))
    )


def _pull(found: dict[str, Any]) -> Pull:
    state = str(found.get("state") or "")
    merged = state == "merged"
    detailed = str(found.get("detailed_merge_status") or "")
    return Pull(
        number=int(found["iid"]),
        url=str(found.get("web_url") or ""),
        state="open" if state in ("opened", "locked") else "closed",
        merged=merged,
        head=str(found.get("sha") or ""),
        branch=str(found.get("source_branch") or ""),
        base=str(found.get("target_branch") or ""),
        merge_commit=(found.get("merge_commit_sha") or found.get("squash_commit_sha") or None)
        if merged
        else None,
        mergeable_state=STATES.get(detailed, "blocked" if detailed else "unknown"),
        node_id=str(found.get("id") or ""),
    )
