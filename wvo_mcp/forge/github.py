"""GitHub's pull requests through githubkit, its polls conditional to spare the rate limit.

GitHub's pull requests, through githubkit (a client generated from GitHub's own OpenAPI
description): github.com, or an Enterprise Server by its API base URL.

Polls are conditional requests: githubkit keeps each answer with its ETag (hishel's HTTP
cache) and asks GitHub to revalidate it on every read (its `Cache-Control: no-cache`), so a
read whose answer has not changed costs a 304, which GitHub does not count against the rate
limit. Rate limits are never slept through here: a primary or secondary limit is a Fault
carrying how long GitHub asked us to wait, and the queue holds that long (target.Reach).

Which merge method a pull request is merged by is chosen by the landing, not here:
`autopilot/landing/pull_requests.py:PullRequests._preferred`."""

import threading
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any, cast

import httpx
from githubkit import BaseAuthStrategy, Response, TokenAuthStrategy
from githubkit import GitHub as Client
from githubkit.exception import (
    GraphQLFailed,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
)

from wvo_mcp.errors import Fault
from wvo_mcp.forge import (
    Access,
    Check,
    Comment,
    ForgeKind,
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
    github_app,
)
from wvo_mcp.forge import github_reads as reads
from wvo_mcp.forge.credentials import host_of, refused
from wvo_mcp.rules.trust import RANKS
from wvo_mcp.rules.webhooks import RED, FailedJob, tail

PAGE = 100
METHODS: tuple[Method, ...] = ("merge", "squash", "rebase")
ENQUEUE = """mutation($id: ID!, $head: GitObjectID!) {
  enqueuePullRequest(input: {pullRequestId: $id, expectedHeadOid: $head}) {
    mergeQueueEntry { state }
  }
}"""
QUEUED = """query($id: ID!) {
  node(id: $id) { ... on PullRequest { mergeQueueEntry { state } } }
}"""


class Pool(httpx.BaseTransport):
    """One pool of connections, and one TLS context, for every request to `api`, through the
    proxy the environment names for it. githubkit makes an httpx client for each request and
    closes it after: a TLS context (the CA store loaded) and a connection each time, 54 ms of
    CPU a request against 3 ms here."""

    def __init__(self, api: str) -> None:
        self._kept = httpx.HTTPTransport(proxy=proxy_for(api), retries=0)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._kept.handle_request(request)

    def close(self) -> None:
        """Kept open: a request's client closes its transport as it ends."""

    def shutdown(self) -> None:
        """Its connections closed (GitHub's finalizer: the client ends with its owner)."""
        self._kept.close()


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, less
    NO_PROXY), as httpx's own clients read it."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


class GitHub:
    """One repository on GitHub, as the merge queue asks it (forge.Forge)."""

    kind: ForgeKind = "github"

    def __init__(
        self, api: str, repository: str, token: str, timeout: float = 30.0, source: str = "",
        app: github_app.App | None = None,
    ) -> None:  # fmt: skip
        self.api = api.rstrip("/")
        self.source = source  # where the token was read (credentials.Token), for a refusal
        self.owner, _, self.name = repository.partition("/")
        self.where = f"{repository} on {self.api}"
        self.app = app
        self.installation: int | None = None  # the App's, found on its first request
        self._lock = threading.Lock()
        self._installing = threading.Lock()
        self._calls = 0
        self._timeout = timeout
        self._pool = Pool(self.api)
        weakref.finalize(self, self._pool.shutdown)
        if app is not None:
            self.source = f"GitHub App {app.id} (its key from {app.source})"
        self._client = self._made(
            TokenAuthStrategy(token) if app is None else github_app.as_app(app)
        )

    def _install(self, app: github_app.App) -> None:
        """The App's installation on the repository, found as the App itself (its JWT);
        every request after it is the installation's (its token, minted and refreshed by
        githubkit)."""
        what = f"finding GitHub App {app.id}'s installation on {self.owner}/{self.name}"
        try:
            found = self._request(
                lambda: self._client.rest.apps.get_repo_installation(self.owner, self.name).json(),
                what,
            )
        except Fault as exc:
            if "answered 404" not in str(exc):
                raise
            raise Fault(
                "auth", f"GitHub App {app.id} is not installed on {self.owner}/{self.name} "
                f"({what}: 404): install it there from the App's settings (Install App), with "
                "the permissions docs/forge.md lists",
            ) from None  # fmt: skip
        installation = int(found["id"])
        # The client first: a request on another thread that sees the installation found
        # must not go out as the App (its JWT reads no repository).
        self._client = self._made(github_app.as_installation(app, installation, self.name))
        self.installation = installation

    def _made(self, auth: BaseAuthStrategy) -> Client[Any]:
        # The environment's proxy is the pool's (trust_env): a client of githubkit's own
        # would build its own transports for it, a request at a time.
        return Client(auth, base_url=self.api + "/", timeout=self._timeout, auto_retry=False,
                      http_cache=True, transport=self._pool, trust_env=False)  # fmt: skip

    @property
    def calls(self) -> int:
        return self._calls

    def _ask(self, fn: Callable[[], Response[Any, Any]], what: str) -> Any:
        """One REST request's JSON (see _call)."""
        return self._call(lambda: fn().json(), what)

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        """One request, REST or GraphQL; every way it can fail is a Fault that says what to
        do. As an App, its installation is found first, once."""
        if self.app is not None and self.installation is None:
            with self._installing:  # found once, however many threads ask at first
                if self.installation is None:
                    self._install(self.app)
        return self._request(fn, what)

    def _request(self, fn: Callable[[], Any], what: str) -> Any:
        with self._lock:
            self._calls += 1
        try:
            return fn()
        except GraphQLFailed as exc:  # (its spent limit, said in a 200, is RateLimitExceeded)
            said = "; ".join(e.message for e in exc.response.errors or [])[:300]
            raise Fault("refused", f"GitHub refused {what}: {said}") from None
        except RateLimitExceeded as exc:
            which = "secondary" if "Secondary" in type(exc).__name__ else "primary"
            raise faults.limited("GitHub", what, exc.retry_after.total_seconds(), which) from None
        except RequestFailed as exc:
            raise self._failed(
                exc.response.status_code, exc.response.headers, exc.response.text, what
            ) from None
        except RequestTimeout:
            raise faults.timed_out("GitHub", self.where, what) from None
        except (RequestError, httpx.HTTPError) as exc:
            raise faults.unreachable("GitHub", self.where, what, exc) from None

    def _failed(self, status: int, headers: httpx.Headers, text: str, what: str) -> Fault:
        said = _message(text)
        if status == 401 and self.app is not None:
            return faults.token_refused("GitHub", what, said, github_app.refused(self.app))
        if status == 401:
            return faults.token_refused("GitHub", what, said, refused(host_of(self.api),
                                                                      self.source))  # fmt: skip
        if status in (403, 429) and "rate limit" in said.lower():
            # A limit with neither Retry-After nor a spent X-RateLimit-Remaining (githubkit
            # raises those): GitHub's docs ask for a minute at least.
            return faults.limited("GitHub", what, None, "secondary")
        needs = headers.get("x-accepted-github-permissions", "")
        wanted = f"; the call needs {needs}" if needs else ""
        cannot = f"{self.owner}/{self.name}{wanted} (docs/forge.md lists what it needs)"
        return faults.answered("GitHub", status, what, said, cannot)

    # -- forge.Forge --------------------------------------------------------------------

    def repository(self) -> Repository:
        found = self._ask(
            lambda: self._client.rest.repos.get(self.owner, self.name), "reading the repository"
        )
        allowed = {
            "merge": found.get("allow_merge_commit") is not False,
            "squash": found.get("allow_squash_merge") is not False,
            "rebase": found.get("allow_rebase_merge") is not False,
        }
        methods = tuple(m for m in METHODS if allowed[m])
        return Repository(found["full_name"], found["html_url"], methods)

    def requirements(self, branch: str) -> Requirements:
        """Rulesets (readable with the repository's metadata) and classic protection's
        required checks (readable on the branch); a classic rule on reviews needs
        administration access to read, so it is left to the forge to enforce."""
        rules = self._ask(
            lambda: self._client.rest.repos.get_branch_rules(
                self.owner, self.name, branch, per_page=PAGE
            ),
            f"reading the rules of {branch}",
        )
        checks: list[str] = []
        approvals, strict, queue = 0, False, False
        for rule in rules:
            params = rule.get("parameters") or {}
            queue = queue or rule.get("type") == "merge_queue"
            if rule.get("type") == "pull_request":
                approvals = max(approvals, int(params.get("required_approving_review_count", 0)))
            elif rule.get("type") == "required_status_checks":
                strict = strict or bool(params.get("strict_required_status_checks_policy"))
                checks += [c["context"] for c in params.get("required_status_checks", [])]
        found = self._ask(
            lambda: self._client.rest.repos.get_branch(self.owner, self.name, branch),
            f"reading the branch {branch}",
        )
        protection = found.get("protection") or {}
        classic = protection.get("required_status_checks") or {}
        if protection.get("enabled") and classic.get("enforcement_level", "off") != "off":
            checks += list(classic.get("contexts") or [])
            checks += [c["context"] for c in classic.get("checks") or []]
            strict = strict or bool(classic.get("strict"))
        known = not protection.get("enabled") or "required_pull_request_reviews" in protection
        return Requirements(tuple(dict.fromkeys(checks)), approvals, strict,
                            known or approvals > 0, queue)  # fmt: skip

    def find(self, branch: str, base: str) -> Pull | None:
        found = self._ask(
            lambda: self._client.rest.pulls.list(
                self.owner,
                self.name,
                state="all",
                head=f"{self.owner}:{branch}",
                base=base,
                sort="created",
                direction="desc",
                per_page=1,
            ),
            f"looking for the pull request from {branch}",
        )
        return reads.pull(found[0]) if found else None

    def open(self, branch: str, base: str, title: str, body: str) -> Pull:
        found = self._ask(
            lambda: self._client.rest.pulls.create(
                self.owner,
                self.name,
                head=branch,
                base=base,
                title=title,
                body=body,
                maintainer_can_modify=True,
            ),
            f"opening a pull request from {branch}",
        )
        return reads.pull(found)

    def edit(self, number: int, title: str, body: str) -> None:
        self._ask(
            lambda: self._client.rest.pulls.update(
                self.owner, self.name, number, title=title, body=body
            ),
            f"editing pull request #{number}",
        )

    def close(self, number: int) -> None:
        self._ask(
            lambda: self._client.rest.pulls.update(self.owner, self.name, number, state="closed"),
            f"closing pull request #{number}",
        )

    def pull(self, number: int) -> Pull:
        found = self._ask(
            lambda: self._client.rest.pulls.get(self.owner, self.name, number),
            f"reading pull request #{number}",
        )
        return reads.pull(found)

    def checks(self, commit: str, wanted: Sequence[str] = ()) -> list[Check]:
        runs = self._ask(
            lambda: self._client.rest.checks.list_for_ref(
                self.owner, self.name, commit, filter_="latest", per_page=PAGE
            ),
            f"reading the check runs of {commit[:12]}",
        )
        found = {c.name: c for c in (reads.run(r) for r in runs.get("check_runs", []))}
        if wanted and all(name in found for name in wanted):
            return list(found.values())  # a call saved on every look
        statuses = self._ask(
            lambda: self._client.rest.repos.get_combined_status_for_ref(
                self.owner, self.name, commit, per_page=PAGE
            ),
            f"reading the statuses of {commit[:12]}",
        )
        for status in statuses.get("statuses", []):  # newest first: the first of a name
            found.setdefault(status["context"], reads.status(status))
        return list(found.values())

    def reviews(self, number: int) -> list[Review]:
        found = self._ask(
            lambda: self._client.rest.pulls.list_reviews(
                self.owner, self.name, number, per_page=PAGE
            ),
            f"reading the reviews of pull request #{number}",
        )
        reviews = []
        for review in found:
            comments: tuple[Comment, ...] = ()
            if review.get("state") == "CHANGES_REQUESTED":
                said = self._ask(
                    partial(
                        self._client.rest.pulls.list_comments_for_review,
                        self.owner,
                        self.name,
                        number,
                        int(review["id"]),
                        per_page=PAGE,
                    ),
                    f"reading review {review['id']}'s comments",
                )
                comments = tuple(
                    Comment(
                        c.get("path", ""),
                        c.get("line") or c.get("original_line"),
                        c.get("body", ""),
                    )
                    for c in said
                )
            reviews.append(
                Review(
                    id=review["id"],
                    author=(review.get("user") or {}).get("login", "?"),
                    state=review.get("state", ""),
                    commit=review.get("commit_id") or "",
                    body=review.get("body") or "",
                    url=review.get("html_url", ""),
                    comments=comments,
                )
            )
        return reviews

    def look(self, number: int, required: Requirements) -> Look:
        """One GraphQL query for what pull(), checks(head, required.checks) and reviews()
        read in three requests or more, mapped to the same values."""
        what = f"reading pull request #{number}"
        found = self._graphql(
            reads.LOOK, {"owner": self.owner, "name": self.name, "number": number}, what
        )
        node = (found.get("repository") or {}).get("pullRequest")
        if not isinstance(node, dict):  # as pull()'s 404
            raise self._failed(404, httpx.Headers(), "Not Found", what)
        pull = reads.pulled(node)
        commits = (node.get("commits") or {}).get("nodes") or [{}]
        commit = commits[-1].get("commit") or {}
        if commit.get("oid") == pull.head:
            checks = reads.rollup(commit.get("statusCheckRollup") or {}, required.checks)
        else:  # its commits are listed by date: the last may not be its head, read as ever
            checks = self.checks(pull.head, required.checks)
        reviews = (node.get("reviews") or {}).get("nodes") or []
        writers = frozenset(
            # A bot's login comes without its [bot]: only a person's push right is a writer's.
            reads.author(r)
            for r in reviews
            if r.get("authorCanPushToRepository") is True
            and (r.get("author") or {}).get("__typename") == "User"
        )
        return Look(pull, tuple(checks), tuple(reads.reviewed(r) for r in reviews), writers)

    def merge(self, number: int, head: str, method: Method, title: str, message: str) -> Merged:
        try:
            found = self._ask(
                lambda: self._client.rest.pulls.merge(
                    self.owner,
                    self.name,
                    number,
                    sha=head,
                    merge_method=method,
                    commit_title=title,
                    commit_message=message,
                ),
                f"merging pull request #{number}",
            )
        except Fault as exc:
            if exc.kind != "refused":
                raise
            moved = "(409)" in str(exc)  # the head is no longer the one verified
            return Merged(False, moved=moved, why=str(exc))
        return Merged(bool(found.get("merged")), found.get("sha") or "")

    def enqueue(self, pull: Pull, head: str) -> Merged:
        """GitHub's merge queue is GraphQL's alone (enqueuePullRequest); expectedHeadOid
        makes it a compare-and-swap on the head the queue verified."""
        try:
            self._graphql(ENQUEUE, {"id": pull.node_id, "head": head},
                          f"adding pull request #{pull.number} to the merge queue")  # fmt: skip
        except Fault as exc:
            if exc.kind != "refused":
                raise
            moved = "expected head" in str(exc).lower() or "head oid" in str(exc).lower()
            return Merged(False, moved=moved, why=str(exc))
        return Merged(False)

    def queued(self, pull: Pull) -> str | None:
        what = f"reading pull request #{pull.number}'s merge queue entry"
        found = self._graphql(QUEUED, {"id": pull.node_id}, what)
        entry = (found.get("node") or {}).get("mergeQueueEntry")
        return None if entry is None else str(entry.get("state"))

    def dropped(self, pull: Pull) -> Check | None:
        return None  # its merge group's checks: a person reads them at the pull request

    def _graphql(self, query: str, variables: dict[str, Any], what: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call(
            lambda: self._client.graphql.request(query, variables), what
        )
        return found

    def issues(self, label: str) -> list[Issue]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            batch = self._ask(
                partial(self._client.rest.issues.list_for_repo, self.owner, self.name,
                        labels=label, state="all", per_page=PAGE, page=page),
                f"listing the issues labelled {label!r} (page {page})",
            )  # fmt: skip
            found += [i for i in batch if "pull_request" not in i]
            if len(batch) < PAGE:
                break
            page += 1
        return [self._issue(i) for i in found]

    def _issue(self, found: dict[str, Any]) -> Issue:
        subs: tuple[int, ...] = ()
        if (found.get("sub_issues_summary") or {}).get("total"):  # a call only where any
            listed = self._ask(
                partial(self._client.rest.issues.list_sub_issues, self.owner, self.name,
                        found["number"], per_page=PAGE),
                f"listing issue #{found['number']}'s sub-issues",
            )  # fmt: skip
            subs = tuple(int(i["number"]) for i in listed)
        labels = tuple(
            (label if isinstance(label, str) else label.get("name") or "")
            for label in found.get("labels") or []
        )
        return Issue(
            number=int(found["number"]), node_id=found.get("node_id") or "",
            title=found.get("title") or "", body=found.get("body") or "", labels=labels,
            state="open" if found.get("state") == "open" else "closed",
            url=found.get("html_url") or "", sub_issues=subs,
            author=str((found.get("user") or {}).get("login") or ""),
        )  # fmt: skip

    def comment(self, number: int, body: str) -> IssueComment:
        found = self._ask(
            lambda: self._client.rest.issues.create_comment(
                self.owner, self.name, number, body=body
            ),
            f"commenting on #{number}",
        )
        return _comment(found, number)

    def comment_pull(self, number: int, body: str) -> IssueComment:
        """GitHub numbers pull requests and issues as one: the same issue comment."""
        return self.comment(number, body)

    def comments(self, since: str, number: int | None = None) -> list[IssueComment]:
        found: list[IssueComment] = []
        # githubkit types it a datetime, then sends str(datetime) ("2026-01-01 00:00:00+00:00"),
        # which is not the ISO 8601 the description asks for: the text is sent as it is.
        after = cast(datetime, since)
        page = 1
        while True:
            if number is None:
                call = partial(self._client.rest.issues.list_comments_for_repo, self.owner,
                               self.name, since=after, sort="created", direction="asc",
                               per_page=PAGE, page=page)  # fmt: skip
            else:
                call = partial(self._client.rest.issues.list_comments, self.owner, self.name,
                               number, since=after, per_page=PAGE, page=page)  # fmt: skip
            batch = self._ask(call, f"listing comments since {since} (page {page})")
            found += [_comment(c, number) for c in batch]
            if len(batch) < PAGE:
                return found
            page += 1

    def permission(self, login: str) -> str:
        found = self._known(
            lambda: self._client.rest.repos.get_collaborator_permission_level(
                self.owner, self.name, login
            ),
            f"reading {login}'s permission",
        )
        if found is None:  # no such account (deleted, renamed): a reader's words
            return "none"
        role = str(found.get("role_name") or "")
        # A custom role (an organisation's own) is read by the base permission it extends.
        return role if role in RANKS else str(found.get("permission") or "none")

    def member(self, team: str, login: str) -> bool:
        org, _, slug = team.partition("/")
        found = self._known(
            lambda: self._client.rest.teams.get_membership_for_user_in_org(org, slug, login),
            f"reading whether {login} is in {team}",
        )
        return found is not None and found.get("state") == "active"

    def contains(self, ancestor: str, descendant: str) -> bool:
        found = self._known(
            lambda: self._client.rest.repos.compare_commits(
                self.owner, self.name, f"{ancestor}...{descendant}", per_page=1
            ),
            f"comparing {ancestor[:12]} with {descendant[:12]}",
        )
        return found is not None and found.get("status") in ("ahead", "identical")

    def issue(self, number: int) -> Issue | None:
        found = self._known(
            lambda: self._client.rest.issues.get(self.owner, self.name, number),
            f"reading issue #{number}",
        )
        return None if found is None else self._issue(found)

    def labelled_by(self, number: int, label: str) -> str | None:
        who = None
        for event in self._events(number, "who labelled"):
            named = str((event.get("label") or {}).get("name") or "").strip().lower()
            if event.get("event") == "labeled" and named == label.strip().lower():
                who = str((event.get("actor") or {}).get("login") or "") or None
        return who

    def closer(self, number: int) -> str | None:
        """The commit its last close names (`commit_id`: closed by a commit's or a merged
        pull request's closing keyword), or None (closed by someone's hand)."""
        commit = None
        for event in self._events(number, "what closed"):
            if event.get("event") == "closed":
                commit = str(event.get("commit_id") or "") or None
            elif event.get("event") == "reopened":
                commit = None
        return None if commit is None else f"commit {commit}"

    def _events(self, number: int, what: str) -> list[dict[str, Any]]:
        """Issue `number`'s events, oldest first, every page."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            batch = self._ask(
                partial(self._client.rest.issues.list_events, self.owner, self.name, number,
                        per_page=PAGE, page=page),
                f"reading {what} issue #{number} (page {page})",
            )  # fmt: skip
            found += batch
            if len(batch) < PAGE:
                return found
            page += 1

    def _known(self, fn: Callable[[], Response[Any, Any]], what: str) -> Any:
        """One REST request's JSON, or None where GitHub answers 404 (not there)."""

        def asked() -> Any:
            try:
                return fn().json()
            except RequestFailed as exc:
                if exc.response.status_code == 404:
                    return None
                raise

        return self._call(asked, what)

    def finish_issue(self, number: int, label: str | None) -> None:
        if label:
            # The object form: the pinned description admits no bare array here.
            self._ask(
                lambda: self._client.rest.issues.add_labels(
                    self.owner, self.name, number, labels=[label]
                ),
                f"labelling issue #{number} {label!r}",
            )
            return
        self._ask(
            lambda: self._client.rest.issues.update(
                self.owner, self.name, number, state="closed", state_reason="completed"
            ),
            f"closing issue #{number}",
        )

    def failed_job(self, run_id: int) -> FailedJob | None:
        found = self._ask(
            partial(self._client.rest.actions.list_jobs_for_workflow_run, self.owner, self.name,
                    run_id, filter_="latest", per_page=PAGE),
            f"listing workflow run {run_id}'s jobs",
        )  # fmt: skip
        jobs = [j for j in found.get("jobs") or [] if j.get("conclusion") in RED]
        if not jobs:
            return None
        job = jobs[0]

        def log() -> str:  # a redirect to the log's download, which GitHub keeps for a while
            return str(self._call(
                lambda: self._client.rest.actions.download_job_logs_for_workflow_run(
                    self.owner, self.name, int(job["id"])).text,
                f"reading job {job.get('name')!r}'s log",
            ))  # fmt: skip

        return faults.failed_job(str(job.get("name") or ""), str(job.get("html_url") or ""), log)

    def failed_check(self, suite_id: int) -> FailedJob | None:
        found = self._ask(
            partial(self._client.rest.checks.list_for_suite, self.owner, self.name, suite_id,
                    filter_="latest", per_page=PAGE),
            f"listing check suite {suite_id}'s check runs",
        )  # fmt: skip
        runs = [r for r in found.get("check_runs") or [] if r.get("conclusion") in RED]
        if not runs:
            return None
        out = runs[0].get("output") or {}
        text = "\n".join(str(out.get(k) or "") for k in ("title", "summary", "text"))
        name, url = str(runs[0].get("name") or ""), str(runs[0].get("html_url") or "")
        return FailedJob(name, url, tail(text))

    def access(self, branch: str) -> list[Access]:
        """Reads where the queue reads, and for writes a request GitHub refuses as invalid
        (a pull request from a branch that does not exist: 422) once it has found the
        permission, and as forbidden (403) when the token lacks it. Nothing is written."""
        reads: list[tuple[str, Callable[[], Response[Any, Any]]]] = [
            ("metadata: read", lambda: self._client.rest.repos.get(self.owner, self.name)),
            ("pull requests: read", lambda: self._client.rest.pulls.list(
                self.owner, self.name, per_page=1)),
            ("checks: read", lambda: self._client.rest.checks.list_for_ref(
                self.owner, self.name, branch, per_page=1)),
            ("commit statuses: read", lambda: self._client.rest.repos.get_combined_status_for_ref(
                self.owner, self.name, branch, per_page=1)),
        ]  # fmt: skip
        found = []
        for permission, call in reads:
            try:
                self._ask(call, f"probing {permission}")
                found.append(Access(permission, True, "read"))
            except Fault as exc:
                if exc.kind not in ("auth", "refused"):
                    raise
                found.append(Access(permission, False, str(exc)))
        probe = f"wvo-doctor/no-such-branch-{threading.get_ident()}"
        try:
            self._ask(
                lambda: self._client.rest.pulls.create(
                    self.owner, self.name, head=probe, base=branch, title="wvo-mcp doctor probe"
                ),
                "probing pull requests: write",
            )
            found.append(Access("pull requests: write", False, "the probe opened a pull "
                                "request from a branch that does not exist: close it"))  # fmt: skip
        except Fault as exc:
            ok = exc.kind == "refused" and "(422)" in str(exc)
            found.append(Access("pull requests: write", ok, "may open pull requests" if ok
                                else str(exc)))  # fmt: skip
        return found


def _message(text: str) -> str:
    try:
        import json

        found = json.loads(text)
    except ValueError:
        return text[:200] or "no reason given"
    return str(found.get("message", text))[:200] if isinstance(found, dict) else text[:200]


def _comment(found: dict[str, Any], number: int | None) -> IssueComment:
    if number is None:  # a repository's listing: the issue is the end of its URL
        number = int(str(found.get("issue_url") or "0").rsplit("/", 1)[-1] or 0)
    return IssueComment(
        id=int(found["id"]), number=number, user=(found.get("user") or {}).get("login") or "",
        body=found.get("body") or "", created_at=found.get("created_at") or "",
        url=found.get("html_url") or "",
    )  # fmt: skip
