"""Both test forges behind one `forge` fixture, so an issue scenario runs on GitHub and GitLab.

A scenario written once drives either test forge with the same person's-hand calls
(open_issue, label_as, comment_as, edit_issue, roles); what differs between the forges (the
`import` spec, the token, the task ids, how the sync quotes others' words) it reads from
`side(forge)`. A scenario one forge cannot pass says so with `on(gitlab=reason)`: a strict
xfail, so the mark goes once the forge can. On GitLab every test also asserts that nothing
the sync wrote carries a quick action GitLab would run (`acted`).

A module uses it with `from tests.forge.both import forge` (the fixture), which shadows
tests/forge/conftest.py's GitHub-only one."""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.forge import deliveries
from tests.forge import server as github
from tests.forge.conftest import seeded
from tests.forge.description import available as github_available
from tests.forge.gitlab import server as gitlab
from tests.forge.gitlab.description import available as gitlab_available
from wvo_mcp.rules.webhooks import signature

Forge = github.Forge  # the test GitLab is one too (a subclass)
KINDS = ("github", "gitlab")
# Every variable either forge's token (or where glab sends it) is read from.
TOKENS = ("WVO_FORGE_TOKEN", "GH_TOKEN", "GITHUB_TOKEN", "GH_ENTERPRISE_TOKEN",
          "GITHUB_ENTERPRISE_TOKEN", "GITLAB_TOKEN", "GITLAB_ACCESS_TOKEN", "OAUTH_TOKEN",
          "GITLAB_HOST", "GITLAB_URI", "GL_HOST")  # fmt: skip
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Side:
    """What a scenario says differently on each forge."""

    kind: str  # github, gitlab
    name: str  # GitHub, GitLab
    path: str  # the repository's: team/project, group/sub/project
    spec: str  # `import`'s: github:team/project
    token: str
    prefix: str  # each issue's task id but its number: gh/team/project/

    def task(self, number: int) -> str:
        return f"{self.prefix}{number}"

    def quoted(self, line: str) -> str:
        """A line of someone else's words as the sync quotes it on this forge."""
        return f"    {line}" if self.kind == "gitlab" else line

    def hooked(self, secret: str, named: bool = False) -> dict[str, str]:
        """`serve --http`'s settings for this forge's webhook with `secret`: GitLab's own
        secret token, and its project named (its webhook serves only those named; GitHub's
        also those `import` synced, unless `named`)."""
        if self.kind == "gitlab":
            return {"WVO_GITLAB_WEBHOOK_SECRET": secret, "WVO_WEBHOOK_REPOS": self.spec}
        return {"WVO_WEBHOOK_SECRET": secret, **({"WVO_WEBHOOK_REPOS": self.path} if named else {})}

    @property
    def listed(self) -> str:
        """The repository as `wvo-mcp status` lists its issues not synced."""
        return self.path if self.kind == "github" else f"{self.kind}:{self.path}"

    @property
    def fence(self) -> str:
        """What opens a quote of others' words (GitLab's are indented: no fence)."""
        return "" if self.kind == "gitlab" else "```text\n"

    def comment_url(self, web: str, number: int, said: int) -> str:
        """A comment's (a note's) address on an issue, as the forge shows it."""
        if self.kind == "gitlab":
            return f"{web}/{self.path}/-/issues/{number}#note_{said}"
        return f"{web}/{self.path}/issues/{number}#issuecomment-{said}"


def side(forge: Forge) -> Side:
    if isinstance(forge, gitlab.Forge):
        return Side("gitlab", "GitLab", forge.full, f"gitlab:{forge.full}", gitlab.TOKEN,
                    f"gl/{forge.full}/")  # fmt: skip
    return Side("github", "GitHub", forge.full, f"github:{forge.full}", github.TOKEN,
                f"gh/{forge.full}/")  # fmt: skip


def _param(kind: str, reason: str | None) -> Any:
    found = {"github": github_available, "gitlab": gitlab_available}[kind]()
    marks = [] if found else [pytest.mark.skip(reason=f"no {kind} API description")]
    if reason:
        marks.append(pytest.mark.xfail(strict=True, reason=reason))
    return pytest.param(kind, marks=marks, id=kind)


def on(github: str | None = None, gitlab: str | None = None) -> Callable[[F], F]:
    """The scenario on both forges, a strict xfail on the one named with its reason."""
    reasons = {"github": github, "gitlab": gitlab}
    return pytest.mark.parametrize(
        "forge", [_param(kind, reasons[kind]) for kind in KINDS], indirect=True
    )


@pytest.fixture(params=[_param(kind, None) for kind in KINDS])
def forge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Forge]:
    made = gitlab.Forge if request.param == "gitlab" else github.Forge
    with made(tmp_path, seeded(tmp_path / "seed")) as found:
        yield found
        assert found.violations == [], found.violations[:5]
        if isinstance(found, gitlab.Forge):
            assert found.acted == [], found.acted


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
                        "url": side(forge).comment_url(forge.web, number, said.id)}}  # fmt: skip
            return "Note Hook", self._checked("Note Hook", note)
        login = {"login": user, "id": 9, "type": "User"}
        comment = {"id": said.id, "body": body, "created_at": said.created_at,
                   "updated_at": said.created_at, "user": login,
                   "html_url": side(forge).comment_url(forge.web, number, said.id)}  # fmt: skip
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
        if side(self.forge).kind == "gitlab":
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
