"""GitLab's webhook: each delivery's secret token checked, then acted on as its sender may.

GitLab's webhook on `serve --http` (POST /webhooks/gitlab), beside GitHub's
(edge/github_webhooks.py) and held to the same refusals: off unless the person set
WVO_GITLAB_WEBHOOK_SECRET; a delivery is read only up to the size cap, acted on only once
its `X-Gitlab-Token` is the secret (and, with WVO_GITLAB_WEBHOOK_SIGNING_TOKEN, its
`webhook-signature` matches), and once per delivery id and per body (a replay writes
nothing); one from a project the server does not serve (`--repo gitlab:GROUP/PROJECT`) is
answered 202, recorded, and does nothing.

Each event is read as GitHub's (rules/gitlab_webhooks.py) and decided by the same rules,
through the same Forge interface: who sent it decides whether it acts (rules/trust.py,
asked through forge/authority.py; a Developer or above is a writer). An `Issue Hook` keeps a
labelled issue's task in step; a note on an issue answers its question or tells its holder;
a pipeline pushed or scheduled on the landing branch that fails makes one task, and one
that passes cancels it only when its commit contains every red commit. A confidential
issue's or note's event is recorded and left alone: its words must not become a task whose
text a public merge request may carry. Anything else is recorded and left alone.

Carries out `rules/gitlab_webhooks.py` through the pipeline both forges share
(edge/deliveries.py): here is what is GitLab's own: its token and signature, its delivery's
headers, its events, its words."""

import logging
import time

from starlette.datastructures import Headers

from wvo_mcp.config import Settings
from wvo_mcp.edge import deliveries
from wvo_mcp.edge.deliveries import Commented, Delivery, Ended, Heard, IssueEvent, Told
from wvo_mcp.forge import Forge, select
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import gitlab_webhooks, pull_news, webhooks
from wvo_mcp.rules.gitlab_webhooks import ISSUE, NOTE, PIPELINE

log = logging.getLogger(__name__)
NO_FORGE = (
    "{what}: recorded, not acted on: the server cannot ask GitLab {why} (no GitLab token: set "
    "WVO_FORGE_TOKEN, with WVO_FORGE_API=https://HOST/api/v4 for a self-managed instance; its "
    "log says what else it read); `wvo-mcp import gitlab:GROUP/PROJECT --every 60` acts on it"
)


def forge_of(settings: Settings, project: str) -> Forge:
    """The GitLab client for `project`, asked with the server's own token: the one place
    this webhook builds it. Raises ValidationFailed (said once on the log) when it cannot."""
    # The API is WVO_FORGE_API where it is GitLab's (…/api/v4), else gitlab.com's.
    api = settings.forge_api if select.kind_of(settings.forge_api) == "gitlab" else None
    located = select.named(f"gitlab:{project}", api)
    return select.connect(
        located, settings.remote_timeout_seconds, f"the GitLab webhook ({project})"
    )


def _authentic(settings: Settings, headers: Headers, body: bytes) -> str:
    """Its X-Gitlab-Token, and its signature where the person gave the signing token."""
    if not gitlab_webhooks.token_matches(settings.gitlab_webhook_secret,
                                         headers.get("x-gitlab-token")):  # fmt: skip
        return "X-Gitlab-Token is missing or is not the webhook's secret token"
    if settings.gitlab_webhook_signing:
        why = gitlab_webhooks.signature_problem(
            settings.gitlab_webhook_signing, headers.get("webhook-id"),
            headers.get("webhook-timestamp"), headers.get("webhook-signature"), body,
            time.time(),
        )  # fmt: skip
        if why:
            return f"{why} (WVO_GITLAB_WEBHOOK_SIGNING_TOKEN is set)"
    return ""


def _named(settings: Settings, headers: Headers) -> tuple[str, str]:
    # A signed delivery's id is the one its signature covers (GitLab's Idempotency-Key).
    delivery = gitlab_webhooks.delivery_id(
        (headers.get("webhook-id") if settings.gitlab_webhook_signing else None)
        or headers.get("idempotency-key"),
        headers.get("x-gitlab-event-uuid"),
    )
    return delivery, headers.get("x-gitlab-event", "")


async def _outside(settings: Settings, orchestrator: Orchestrator, said: Delivery) -> str:
    """Why the delivery's project is not one this server serves ('' when it is)."""
    project = gitlab_webhooks.project_of(said.payload)
    if not project or gitlab_webhooks.served(project, settings.webhook_repos):
        return ""
    told = ("the ones given with --repo gitlab:GROUP/PROJECT"
            if gitlab_webhooks.named(settings.webhook_repos) else
            "none yet: name it with --repo gitlab:GROUP/PROJECT")  # fmt: skip
    return f"{said.event}: {project} is not a project this server serves ({told})"


def _read(settings: Settings, said: Delivery) -> Heard:
    """An `Issue Hook` as GitHub's `issues` (its author asked of GitLab unless the hook says
    the event is theirs), a `Note Hook` on an issue as an `issue_comment`, a `Pipeline Hook`
    on the landing branch as a workflow run; a confidential one is left alone, and so is
    any but the close of a closed issue (a person may have revived its task since)."""
    event, payload = said.event, said.payload
    project = gitlab_webhooks.project_of(payload)
    if gitlab_webhooks.confidential(event, payload):
        return f"{event}: confidential, so its words make and move no task: not acted on"
    if not project:
        return f"{event}: names no project: not acted on"
    if event == ISSUE and payload.get("object_kind") == "issue":
        issue = gitlab_webhooks.issue_of(payload)
        sender = gitlab_webhooks.sender(payload)
        closing = (payload.get("object_attributes") or {}).get("action") == "close"
        if issue.state != "open" and not closing:  # an edit of a closed issue: its close acted
            return (f"{event}: #{issue.number} is closed and this is no close: its task is "
                    "left as it is")  # fmt: skip
        return IssueEvent(
            project, issue, sender,
            author=sender if gitlab_webhooks.by_its_author(payload) else None,
            closing=closing,
            moved=lambda made: gitlab_webhooks.issue_action(payload, settings.webhook_label, made),
        )  # fmt: skip
    if event == NOTE and payload.get("object_kind") == "note":
        news = pull_news.read("gitlab", event, payload)  # on a merge request: a thread may block
        if news:
            return Told(project, news)
        heard = gitlab_webhooks.note_of(payload)
        return heard if isinstance(heard, str) else Commented(project, heard)
    ended = gitlab_webhooks.pipeline_of(payload, settings.webhook_branch) if (
        event == PIPELINE) else None  # fmt: skip
    if isinstance(ended, webhooks.Run):
        ident = int((payload.get("object_attributes") or {}).get("id") or 0)
        return Ended(ended, ident, suite=False)
    news = pull_news.read("gitlab", event, payload)
    if news:
        return Told(project, news)
    return ended if isinstance(ended, str) else f"{event}: not acted on"


HOOK = deliveries.Hook(
    path="/webhooks/gitlab", kind="gitlab",  # its tasks' ids are gl/…
    name="GitLab", log=log, secret=lambda s: s.gitlab_webhook_secret,
    off="the GitLab webhook is off: set WVO_GITLAB_WEBHOOK_SECRET to the secret token "
    "GitLab's webhook settings hold",
    authentic=_authentic, named=_named,
    unnamed="a delivery needs X-Gitlab-Event and Idempotency-Key (or, before GitLab 17.4, "
    "X-Gitlab-Event-UUID), at most 100 characters",
    kept="gitlab:",  # kept apart from GitHub's ids: the table of deliveries is one
    connect=forge_of, outside=_outside, read=_read, no_forge=NO_FORGE, comment="note",
)  # fmt: skip
