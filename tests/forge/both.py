"""Both test forges behind one `forge` fixture, so a scenario runs on GitHub and on GitLab.

A scenario written once drives either test forge (tests/forge/server.py, and its subclass
tests/forge/gitlab/server.py) with the same person's-hand calls (open_issue, label_as,
comment_as, edit_issue, review, roles); what differs between the forges (the token, the
`import` spec, the task ids, the words a forge uses and a person's hand there) it reads from
its `Side`. A scenario one forge cannot pass is marked with `cannot(...)`: a strict xfail
there, so the mark goes once the forge can, and docs/forge.md lists it with its reason. Every
test asserts that nothing broke the forge's description and, on GitLab, that nothing the
product wrote carries a quick action GitLab would run (`acted`).

A module uses it with `forge = both.forge` (issue scenarios, on tests.forge.conftest's
seeded repository) or `forge = both.landing` (landing scenarios, on a project with its own
check): either shadows tests/forge/conftest.py's GitHub-only fixture. A module that runs on
one forge alone says so with `pytest.mark.parametrize("forge", [kind], indirect=True)`."""

import dataclasses
import importlib
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.forge import deliveries
from tests.forge import server as github
from tests.forge.conftest import seeded
from tests.forge.description import available as github_available
from tests.forge.gitlab import server as gitlab
from tests.forge.gitlab.description import available as gitlab_available
from wvo_mcp.rules.text import unlinked
from wvo_mcp.rules.webhooks import signature

Forge = github.Forge  # the test GitLab is one too (a subclass)
KINDS = ("github", "gitlab")
# Every variable either forge's token (or where glab sends it) is read from.
TOKENS = ("WVO_FORGE_TOKEN", "GH_TOKEN", "GITHUB_TOKEN", "GH_ENTERPRISE_TOKEN",
          "GITHUB_ENTERPRISE_TOKEN", "GITLAB_TOKEN", "GITLAB_ACCESS_TOKEN", "OAUTH_TOKEN",
          "GITLAB_HOST", "GITLAB_URI", "GL_HOST")  # fmt: skip
# The modules whose scenarios run on both forges: their `cannot` calls fill CANNOT.
SCENARIOS = ("tests.forge.test_issue_sync", "tests.forge.test_issue_flow",
             "tests.autopilot.test_pull_requests", "tests.autopilot.test_pull_request_reviews",
             "tests.autopilot.test_pull_request_text",
             "tests.autopilot.test_pull_request_issues")  # fmt: skip


@dataclass(frozen=True)
class Side:
    """What a scenario says or does differently on one test forge, each named once."""

    kind: str  # github, gitlab
    name: str  # GitHub, GitLab
    path: str  # the project's: team/project, group/sub/project
    token: str  # the token the forge accepts
    noun: str  # pull request, merge request
    sign: str  # what precedes a pull request's number: # or !
    check: str  # the required check's name, as the forge names it
    queue: str  # the forge's own queue: merge queue, merge train
    queued_by: str  # who the test forge says merged what its queue merged
    enqueues: str  # the API path a POST to which joins the forge's queue
    refused: str  # what the client says of a revoked token
    primary: str  # of a rate limit whose end the forge names
    secondary: str  # of one it names a wait for
    failed: str  # of a 502

    @property
    def gitlab(self) -> bool:
        return self.kind == "gitlab"

    @property
    def spec(self) -> str:
        """`import`'s name of the project: github:team/project."""
        return f"{self.kind}:{self.path}"

    @property
    def prefix(self) -> str:
        """Each issue's task id but its number: gh/team/project/, gl/group/sub/project/."""
        return f"{'gl' if self.gitlab else 'gh'}/{self.path}/"

    def task(self, number: int) -> str:
        return f"{self.prefix}{number}"

    def pull(self, number: int) -> str:
        return f"{self.noun} {self.sign}{number}"

    @property
    def listed(self) -> str:
        """The repository as `wvo-mcp status` lists its issues not synced."""
        return f"{self.kind}:{self.path}" if self.gitlab else self.path

    @property
    def pulls(self) -> str:
        """A pull request's web page, before its number."""
        return f"/{self.path}/-/merge_requests/" if self.gitlab else f"/{self.path}/pull/"

    @property
    def runs(self) -> str:
        """A failed check's link, before its id."""
        return f"/{self.path}/-/pipelines/" if self.gitlab else f"/{self.path}/runs/"

    @property
    def reviews(self) -> str:
        """The API path a look reads the reviews on, before its number (GitHub: the look's
        one GraphQL query, which names no pull request in its path)."""
        if self.gitlab:
            project = urllib.parse.quote(self.path, safe="")
            return f"/projects/{project}/merge_requests/{{}}/approvals"
        return "/api/graphql"

    @property
    def review_anchor(self) -> str:
        """What a review's link adds to the pull request's page."""
        return "" if self.gitlab else "#review-"

    def comment_url(self, web: str, number: int, said: int) -> str:
        """A comment's (a note's) address on an issue, as the forge shows it."""
        if self.gitlab:
            return f"{web}/{self.path}/-/issues/{number}#note_{said}"
        return f"{web}/{self.path}/issues/{number}#issuecomment-{said}"

    def quoted(self, line: str) -> str:
        """A line of someone else's words as the sync quotes it on this forge (on GitLab
        indented, each reference and mention broken: rules/text.unlinked)."""
        return f"    {unlinked(line)}" if self.gitlab else line

    @property
    def fence(self) -> str:
        """What opens a quote of others' words (GitLab's are indented: no fence)."""
        return "" if self.gitlab else "```text\n"

    def hooked(self, secret: str, named: bool = False) -> dict[str, str]:
        """`serve --http`'s settings for this forge's webhook with `secret`: GitLab's own
        secret token, and its project named (its webhook serves only those named; GitHub's
        also those `import` synced, unless `named`)."""
        if self.gitlab:
            return {"WVO_GITLAB_WEBHOOK_SECRET": secret, "WVO_WEBHOOK_REPOS": self.spec}
        return {"WVO_WEBHOOK_SECRET": secret, **({"WVO_WEBHOOK_REPOS": self.path} if named else {})}

    def approve(self, forge: Forge, number: int) -> None:
        """A writer approves; on GitLab, resolving the threads they opened before (GitLab
        merges only once every thread is resolved)."""
        if isinstance(forge, gitlab.Forge):
            forge.resolve(number)
        forge.review(number, "APPROVED")

    def use_queue(self, forge: Forge) -> None:
        """The branch merges only through the forge's queue: GitHub's merge queue (a branch
        rule), GitLab's merge train (a project setting)."""
        setattr(forge, "merge_trains" if self.gitlab else "merge_queue", True)


GITHUB = Side("github", "GitHub", "team/project", github.TOKEN, "pull request", "#", "check",
              "merge queue", "merge-queue", github.GRAPHQL, "refused the token",
              "primary rate limit", "secondary rate limit", "GitHub failed (502)")  # fmt: skip
GITLAB = Side("gitlab", "GitLab", "group/sub/project", gitlab.TOKEN, "merge request", "!",
              "pipeline", "merge train", "merge-train", "/merge_trains/merge_requests/",
              "give a valid token", "rate limit is reached", "rate limit is reached",
              "GitLab failed (502)")  # fmt: skip


def side_of(forge: Forge) -> Side:
    """The side of `forge`, its project's path as the forge has it."""
    return dataclasses.replace(GITLAB if isinstance(forge, gitlab.Forge) else GITHUB,
                               path=forge.full)  # fmt: skip


CANNOT: dict[tuple[str, str], str] = {}  # (scenario, kind) -> why that forge cannot pass it


def cannot(scenario: str, kind: str, reason: str) -> None:
    """Mark `scenario` (a test's name, in a module of SCENARIOS) as one the `kind` forge
    cannot pass, and say why: it runs there as a strict xfail (the `forge` fixtures), so the
    mark goes once the forge can, and docs/forge.md lists it."""
    assert kind in KINDS and CANNOT.get((scenario, kind), reason) == reason, (scenario, kind)
    CANNOT[(scenario, kind)] = reason


def cannot_listed() -> str:
    """What docs/forge.md lists between its `cannot` markers: each scenario a forge cannot
    pass, with why (the scenario modules imported first, as their `cannot` calls fill it)."""
    modules = [importlib.import_module(name) for name in SCENARIOS]
    for scenario, _ in CANNOT:  # a name that is no scenario's would mark nothing
        assert any(hasattr(module, scenario) for module in modules), scenario
    names = {s.kind: s.name for s in (GITHUB, GITLAB)}
    lines = [f"- `{scenario}` on {names[kind]}: {why}"
             for (scenario, kind), why in sorted(CANNOT.items())]  # fmt: skip
    return "\n".join(lines) or "(none: every scenario passes on both forges)"


def _params() -> list[Any]:
    found = {"github": github_available(), "gitlab": gitlab_available()}
    return [pytest.param(kind, id=kind, marks=[] if found[kind] else
                         [pytest.mark.skip(reason=f"no {kind} API description")])
            for kind in KINDS]  # fmt: skip


def _served(request: pytest.FixtureRequest, tmp_path: Path, seed: Path) -> Iterator[Forge]:
    """The `request.param` test forge serving `seed`, every request and answer held to its
    forge's description; a scenario it `cannot` pass a strict xfail there."""
    kind = request.param
    why = CANNOT.get((request.node.originalname, kind))
    if why is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=why))
    with (gitlab.Forge if kind == "gitlab" else github.Forge)(tmp_path, seed) as found:
        yield found
        assert found.violations == [], found.violations[:5]
        if isinstance(found, gitlab.Forge):
            assert found.acted == [], found.acted


@pytest.fixture(params=_params())
def forge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Forge]:
    """Each test forge serving a one-commit repository (tests/forge/conftest.py's)."""
    yield from _served(request, tmp_path, seeded(tmp_path / "seed"))


@pytest.fixture(params=_params())
def landing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Forge]:
    """Each test forge serving a project with its own check, for the landing scenarios."""
    from tests.autopilot.test_remote_landing import project_with_check

    yield from _served(request, tmp_path, project_with_check(tmp_path / "seed")["repo"])


@pytest.fixture
def side(forge: Forge) -> Side:
    return side_of(forge)


class Hook:
    """Deliveries to `serve --http`'s webhook as each forge sends them: GitHub's signed
    (X-Hub-Signature-256) to /webhooks/github, GitLab's with its secret token
    (X-Gitlab-Token) to /webhooks/gitlab, each payload held to the forge's own types."""

    def __init__(self, forge: Forge, base: str, secret: str) -> None:
        self.forge, self.base, self.secret = forge, base, secret

    def comment(self, user: str, number: int, body: str) -> tuple[str, bytes]:
        """`user` comments on issue `number`: the forge's event and its delivery."""
        forge = self.forge
        said_id = forge.comment_as(user, number, body)
        [said] = [c for c in forge.said if c.id == said_id]
        if isinstance(forge, gitlab.Forge):
            project = _project(forge)
            author = {"id": forge.user_id(user), "name": user, "username": user,
                      "avatar_url": "", "email": ""}  # fmt: skip
            note = {"object_kind": "note", "user": author, "project_id": project["id"],
                    "project": project, "issue": {"id": 20000 + number, "iid": number,
                                                  "title": forge.issues[number].title,
                                                  "state": "opened", "labels": []},
                    "object_attributes": {
                        "id": said.id, "note": body, "noteable_type": "Issue",
                        "author_id": author["id"], "created_at": said.created_at,
                        "updated_at": said.created_at, "system": False,
                        "project_id": project["id"],
                        "url": side_of(forge).comment_url(forge.web, number, said.id)}}  # fmt: skip
            return "Note Hook", self._checked("Note Hook", note)
        login = {"login": user, "id": 9, "type": "User"}
        comment = {"id": said.id, "body": body, "created_at": said.created_at,
                   "updated_at": said.created_at, "user": login,
                   "html_url": side_of(forge).comment_url(forge.web, number, said.id)}  # fmt: skip
        issue = {"number": number, "state": "open", "labels": [], "locked": False,
                 "assignee": None}  # fmt: skip
        repository = {"full_name": forge.full, "name": forge.name}
        made = deliveries.payload("issue_comment", "created", issue=issue, comment=comment,
                                  repository=repository)  # fmt: skip
        return "issue_comment", json.dumps(made).encode()

    def pipeline(self, run_id: int, sha: str, failed: bool) -> tuple[str, bytes]:
        """GitLab's Pipeline Hook for pipeline `run_id` on the default branch at `sha`."""
        forge = self.forge
        assert isinstance(forge, gitlab.Forge)
        status = "failed" if failed else "success"
        pipeline = {"object_kind": "pipeline", "project": _project(forge), "builds": [],
                    "object_attributes": {"id": run_id, "ref": forge.branch, "tag": False,
                                          "sha": sha, "before_sha": "0" * 40,
                                          "source": "push", "status": status,
                                          "detailed_status": status, "stages": ["test"],
                                          "created_at": github._now(), "duration": 60,
                                          "finished_at": github._now()}}  # fmt: skip
        return "Pipeline Hook", self._checked("Pipeline Hook", pipeline)

    def _checked(self, event: str, payload: dict[str, Any]) -> bytes:
        assert isinstance(self.forge, gitlab.Forge)
        assert self.forge._description.webhook(event, payload) == [], event
        return json.dumps(payload).encode()

    def send(self, event: str, body: bytes, delivery: str) -> httpx.Response:
        if isinstance(self.forge, gitlab.Forge):
            headers = {"X-Gitlab-Event": event, "X-Gitlab-Token": self.secret,
                       "X-Gitlab-Event-UUID": delivery,
                       "Content-Type": "application/json"}  # fmt: skip
            return httpx.post(f"{self.base}/webhooks/gitlab", content=body, headers=headers,
                              timeout=30)  # fmt: skip
        headers = {"X-GitHub-Delivery": delivery, "X-GitHub-Event": event,
                   "X-Hub-Signature-256": signature(self.secret, body)}  # fmt: skip
        return httpx.post(f"{self.base}/webhooks/github", content=body, headers=headers,
                          timeout=30)  # fmt: skip


def _project(forge: "gitlab.Forge") -> dict[str, Any]:
    return {"id": 1, "name": forge.name, "path_with_namespace": forge.full,
            "web_url": f"{forge.web}/{forge.full}", "default_branch": forge.branch}  # fmt: skip
