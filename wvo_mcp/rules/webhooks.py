"""A GitHub webhook delivery checked before anything reads it: size, signature, repository (pure).

A GitHub webhook delivery checked before anything reads it (pure): its size, and its
signature (`X-Hub-Signature-256`: HMAC-SHA256 of the raw body under the person's secret,
compared in constant time); whether its repository is served; which runs count for the
landing branch; and a red run's failing job as its task shows it. Carried out by
`wvo_mcp/edge/github_webhooks.py`."""

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wvo_mcp.rules.text import ForgeKind, shown

MAX_BYTES = 1024 * 1024  # GitHub caps a payload at 25 MB; an issue's event is a few KB
MAX_ID = 100  # characters of a delivery id kept (either forge's)
PREFIX = "sha256="


def signature(secret: str, body: bytes) -> str:
    """The header GitHub sends with `body` under `secret`."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is `body`'s signature under `secret` (a missing or malformed one is
    not; an empty secret signs nothing)."""
    if not secret or not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(signature(secret, body), header.strip())


RED = frozenset({"failure", "timed_out", "startup_failure"})  # a run's or job's conclusion
GREEN = frozenset({"success"})
LOG_LINES = 60  # of a failing job's log, in its red task's description
LOG_CHARS = 6000
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # a terminal's colour or cursor move


@dataclass(frozen=True)
class FailedJob:
    """A red workflow run's first failing job: its name, link and log's tail."""

    name: str
    url: str
    log: str


def tail(log: str) -> str:
    """A log's last lines as plain text: terminal escapes and control characters dropped
    (it is shown to agents and people as data), at most LOG_LINES lines and LOG_CHARS."""
    lines = shown(_ESCAPE.sub("", log.replace("\r\n", "\n"))).rstrip("\n").split("\n")
    return "\n".join(lines[-LOG_LINES:])[-LOG_CHARS:]


TRIGGERS = frozenset({"push", "schedule"})  # a run that says how the landing branch is


def run_of(event: str, payload: dict[str, Any], branch: str) -> "Run | str | None":
    """The workflow run or check suite a delivery says ended on the landing branch (`branch`,
    '' for the repository's default); a reason when it is one that must not count (a fork's,
    a pull request's, another branch's, one neither red nor green); None when it is no run.
    A fork's pull request runs the fork's workflow with the fork's branch name, so a run
    counts only when it is the repository's own (`head_repository`), for a push or a
    schedule. A check suite names no head repository: the driver asks the forge whether its
    commit is on the branch (edge/github_webhooks.py)."""
    found = payload.get(event)
    repository = payload.get("repository")
    if event not in ("workflow_run", "check_suite") or not isinstance(found, dict):
        return None
    if not isinstance(repository, dict) or str(repository.get("full_name")).count("/") != 1:
        return None
    full = str(repository["full_name"])
    wanted = branch or str(repository.get("default_branch") or "main")
    conclusion = found.get("conclusion")
    if conclusion not in RED | GREEN:
        return f"{event}: ended {conclusion}, neither red nor green: not acted on"
    if found.get("head_branch") != wanted:
        return f"{event}: not on {wanted}: not acted on"
    sha = str(found.get("head_sha") or "")
    if event == "workflow_run":
        head = found.get("head_repository")
        named = str(head.get("full_name") or "") if isinstance(head, dict) else ""
        if named.lower() != full.lower():
            return (f"workflow_run: a run of {named or 'another repository'}'s code (a fork's "
                    f"pull request), not of {full}'s {wanted}: not acted on")  # fmt: skip
        if found.get("event") not in TRIGGERS:
            return (f"workflow_run: triggered by {found.get('event')!r}, not a push or a "
                    f"schedule on {wanted}: not acted on")  # fmt: skip
        name, key = str(found.get("name") or "workflow"), str(int(found.get("workflow_id") or 0))
        url = str(found.get("html_url") or "")
    else:
        app = found.get("app") or {}
        if not isinstance(app, dict) or app.get("slug") == "github-actions":
            return None  # its workflow runs say it already
        name, key = str(app.get("name") or "checks"), f"app-{int(app.get('id') or 0)}"
        url = f"{repository.get('html_url') or ''}/commit/{sha}"
    return Run(event, full, name, key, wanted, sha, url, conclusion in GREEN)


def named(repositories: Sequence[str]) -> list[str]:
    """The repositories GitHub's webhook serves among `--repo`'s (OWNER/REPO, or as `import`
    names it, github:OWNER/REPO; not GitLab's gitlab:PATH)."""
    return [r.removeprefix("github:") for r in repositories if not r.startswith("gitlab:")]


def served(repository: str, named: Sequence[str], synced: Sequence[str]) -> bool:
    """Whether the webhook serves `repository`: one it was told (`serve --repo`), else, when
    it was told none, one `import github:` synced here. GitHub's names ignore case."""
    wanted = {n.lower() for n in (named or synced)}
    return repository.lower() in wanted


@dataclass(frozen=True)
class Run:
    """A workflow run or a check suite that ended on the landing branch (services/webhooks.py
    makes or ends its red task): `key` names the workflow (its id) or the app (`app-<id>`)."""

    event: str  # workflow_run | check_suite
    repository: str
    name: str
    key: str
    branch: str
    sha: str
    url: str
    passed: bool
    job: FailedJob | None = None
    forge: ForgeKind = "github"  # whose run: its red task's id says (rules/issue_tasks.red_prefix)
