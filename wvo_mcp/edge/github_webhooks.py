"""GitHub's webhook: each delivery's signature checked, then acted on as its sender may.

GitHub's webhook on `serve --http` (POST /webhooks/github), off unless the person set
WVO_WEBHOOK_SECRET: a delivery is read only up to its size cap, acted on only once its
`X-Hub-Signature-256` matches the secret, and once per delivery id and per body (a replay,
under its id or a new one, is refused and writes nothing: services/webhooks.py); one for
a repository the server does not serve (rules/webhooks.py:served) is answered 202, recorded,
and does nothing.

Who sent it decides whether it acts (rules/trust.py, asked through forge/authority.py with
the server's WVO_FORGE_TOKEN): an `issues` event from someone who steers keeps its issue's
task in step, as `import github:` does, and a close cancels only once GitHub says the issue
is closed now; an `issue_comment` on a task's issue answers its question or tells its
holder when its author steers (issue_sync.heard); a `workflow_run` of the repository's own
code, pushed or scheduled on the landing branch, that fails makes one task to make it green
again, and one that passes cancels it only when its commit contains every red commit;
`ping` answers; anything else is recorded and left alone.

What a delivery says is data, signed by GitHub: an issue's body becomes a task's
description, and nothing in it is read as an instruction.

Carries out `rules/webhooks.py` through the pipeline both forges share (edge/deliveries.py):
here is what is GitHub's own: its signature, its delivery's headers, its events, its words."""

import logging
from typing import Any

from starlette.datastructures import Headers

from wvo_mcp.config import Settings
from wvo_mcp.edge import deliveries
from wvo_mcp.edge.deliveries import Commented, Delivery, Ended, Heard, IssueEvent, Told
from wvo_mcp.forge import Forge, select
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import pull_news, webhooks
from wvo_mcp.rules.issue_tasks import Issue, IssueComment

log = logging.getLogger(__name__)
NO_TOKEN = (
    "{what}: recorded, not acted on: the server has no GitHub token to read {why} (set "
    "WVO_FORGE_TOKEN; its log says what else it read); `wvo-mcp import github:OWNER/REPO "
    "--every 60` acts on it"
)


def _connect(settings: Settings, repository: str) -> Forge:
    """The API and its token by the rule `import` and the autopilot follow (forge/select.py,
    forge/credentials.py)."""
    # This route hears GitHub: its repositories are GitHub's, whatever the API.
    located = select.named(f"github:{repository}", settings.forge_api or None)
    return select.connect(located, settings.remote_timeout_seconds, f"the webhook ({repository})")


def _authentic(settings: Settings, headers: Headers, body: bytes) -> str:
    """Why the delivery is not GitHub's (rules/webhooks.py:signed judges the signature); ""
    when it is. A replay is refused later, by services/webhooks.py:record_once."""
    if webhooks.signed(settings.webhook_secret, body, headers.get("x-hub-signature-256")):
        return ""
    return "X-Hub-Signature-256 is missing or does not match the secret"


def _named(settings: Settings, headers: Headers) -> tuple[str, str]:
    return headers.get("x-github-delivery", ""), headers.get("x-github-event", "")


def _repository(payload: dict[str, Any]) -> str:
    return str((payload.get("repository") or {}).get("full_name") or "")


async def _outside(settings: Settings, orchestrator: Orchestrator, said: Delivery) -> str:
    """Why the delivery's repository is not one this server serves ('' when it is)."""
    repository = _repository(said.payload)
    if not repository or said.event == "ping":
        return ""
    synced = await orchestrator.synced_repositories()
    named = webhooks.named(settings.webhook_repos)
    if webhooks.served(repository, named, synced):
        return ""
    told = "the ones given with --repo" if named else (
        "those `import github:` synced here; name it with --repo")  # fmt: skip
    return f"{said.event}: {repository} is not a repository this server serves ({told})"


def _read(settings: Settings, said: Delivery) -> Heard:
    """An `issues` event from its payload (a close: a deletion, a transfer too), a new
    `issue_comment` on an issue, a `workflow_run` or `check_suite` on the landing branch."""
    event, payload = said.event, said.payload
    repository = _repository(payload)
    if event == "issues" and isinstance(payload.get("issue"), dict):
        if repository.count("/") != 1:
            return deliveries.refused(400, "an issues event names its repository (full_name)")
        issue = _issue(payload["issue"])
        action = str(payload.get("action") or "")
        added = str((payload.get("label") or {}).get("name") or "")
        sender = str((payload.get("sender") or {}).get("login") or "")
        closing = issue.state != "open" or action in ("deleted", "transferred")
        moved = (action, added)  # whether its task exists changes nothing on GitHub
        return IssueEvent(repository, issue, sender, issue.author, closing, lambda _: moved)
    if event == "issue_comment" and _on_an_issue(payload):
        return Commented(repository, _comment(payload))
    ended = webhooks.run_of(event, payload, settings.webhook_branch)
    if isinstance(ended, webhooks.Run):
        ident = int((payload.get(event) or {}).get("id") or 0)
        return Ended(ended, ident, suite=event == "check_suite")
    news = pull_news.read("github", event, payload)
    if news and repository.count("/") == 1:
        return Told(repository, news)
    if isinstance(ended, str):
        return ended
    return "pong" if event == "ping" else f"{event}: not acted on"


HOOK = deliveries.Hook(
    path="/webhooks/github", kind="github",  # its tasks' ids are gh/…
    name="GitHub", log=log, secret=lambda s: s.webhook_secret,
    off="the webhook is off: set WVO_WEBHOOK_SECRET to the secret GitHub's webhook settings hold",
    authentic=_authentic, named=_named, kept="",
    unnamed="a delivery needs X-GitHub-Delivery (at most 100 characters) and X-GitHub-Event",
    connect=_connect, outside=_outside, read=_read, no_forge=NO_TOKEN, comment="comment",
)  # fmt: skip


def _on_an_issue(payload: dict[str, Any]) -> bool:
    """A new comment on an issue (not on a pull request), in a named repository."""
    issue, comment = payload.get("issue"), payload.get("comment")
    full = str((payload.get("repository") or {}).get("full_name", ""))
    return (
        payload.get("action") == "created" and isinstance(issue, dict)
        and isinstance(comment, dict) and "pull_request" not in issue and full.count("/") == 1
    )  # fmt: skip


def _comment(payload: dict[str, Any]) -> IssueComment:
    comment, issue = payload["comment"], payload["issue"]
    return IssueComment(
        id=int(comment.get("id") or 0), number=int(issue.get("number") or 0),
        user=str((comment.get("user") or {}).get("login") or ""),
        body=str(comment.get("body") or ""), created_at=str(comment.get("created_at") or ""),
        url=str(comment.get("html_url") or ""),
    )  # fmt: skip


def _issue(found: dict[str, Any]) -> Issue:
    labels = tuple(
        str(label.get("name", "")) if isinstance(label, dict) else str(label)
        for label in found.get("labels") or []
    )
    return Issue(
        number=int(found.get("number") or 0), node_id=str(found.get("node_id") or ""),
        title=str(found.get("title") or ""), body=str(found.get("body") or ""), labels=labels,
        state="open" if found.get("state") == "open" else "closed",
        url=str(found.get("html_url") or ""),
        author=str((found.get("user") or {}).get("login") or ""),
    )  # fmt: skip
