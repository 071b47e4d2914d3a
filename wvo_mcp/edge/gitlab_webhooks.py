"""GitLab's webhook: each delivery's secret token checked, then acted on as its sender may.

GitLab's webhook on `serve --http` (POST /webhooks/gitlab), beside GitHub's
(edge/webhooks.py) and held to the same refusals: off unless the person set
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

Carries out `rules/gitlab_webhooks.py`."""

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wvo_mcp.config import Settings
from wvo_mcp.edge import issue_sync
from wvo_mcp.edge.webhooks import Delivery, Reach, capped_body, refused
from wvo_mcp.errors import Fault, ValidationFailed
from wvo_mcp.forge import Forge, select
from wvo_mcp.forge.authority import Authority
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import gitlab_webhooks, issue_tasks, webhooks
from wvo_mcp.rules.gitlab_webhooks import ISSUE, NOTE, PIPELINE
from wvo_mcp.rules.text import ForgeKind

PATH = "/webhooks/gitlab"
KIND: ForgeKind = "gitlab"  # the forge this route hears: its tasks' ids are gl/…
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


def route(settings: Settings, current: Callable[[], Orchestrator | None]) -> Route:
    reaches: dict[str, Reach | None] = {}

    def reach(project: str) -> Reach | None:
        """None without a client (said once on the log, with why): nothing that needs
        GitLab's word acts."""
        if project not in reaches:
            try:
                forge = forge_of(settings, project)
            except ValidationFailed as exc:
                log.warning("%s", exc)
                reaches[project] = None
                return None
            reaches[project] = Reach(forge, Authority(forge, settings.trust))
        return reaches[project]

    async def deliver(request: Request) -> Response:
        return await _deliver(settings, current, request, reach)

    return Route(PATH, deliver, methods=["POST"])


async def _deliver(
    settings: Settings, current: Callable[[], Orchestrator | None], request: Request,
    reach: Callable[[str], Reach | None],
) -> Response:  # fmt: skip
    if not settings.gitlab_webhook_secret:
        return refused(404, "the GitLab webhook is off: set WVO_GITLAB_WEBHOOK_SECRET to the "
                       "secret token GitLab's webhook settings hold")  # fmt: skip
    body = await capped_body(request)
    if body is None:
        return refused(413, f"a delivery is at most {webhooks.MAX_BYTES} bytes")
    headers = request.headers
    if not gitlab_webhooks.token_matches(settings.gitlab_webhook_secret,
                                         headers.get("x-gitlab-token")):  # fmt: skip
        return refused(401, "X-Gitlab-Token is missing or is not the webhook's secret token")
    if settings.gitlab_webhook_signing:
        why = gitlab_webhooks.unsigned(
            settings.gitlab_webhook_signing, headers.get("webhook-id"),
            headers.get("webhook-timestamp"), headers.get("webhook-signature"), body,
            time.time(),
        )  # fmt: skip
        if why:
            return refused(401, f"{why} (WVO_GITLAB_WEBHOOK_SIGNING_TOKEN is set)")
    # A signed delivery's id is the one its signature covers (GitLab's Idempotency-Key).
    delivery = gitlab_webhooks.delivery_id(
        (headers.get("webhook-id") if settings.gitlab_webhook_signing else None)
        or headers.get("idempotency-key"),
        headers.get("x-gitlab-event-uuid"),
    )
    event = headers.get("x-gitlab-event", "")
    if not delivery or len(delivery) > gitlab_webhooks.MAX_ID or not event:
        return refused(400, "a delivery needs X-Gitlab-Event and Idempotency-Key (or, before "
                       "GitLab 17.4, X-Gitlab-Event-UUID), at most 100 characters")  # fmt: skip
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested past Python's stack
        return refused(400, "the body is not JSON (or nests deeper than a payload does)")
    orchestrator = current()
    if orchestrator is None:
        return refused(503, "the server is still starting: GitLab delivers again")
    if not isinstance(payload, dict):
        return refused(400, "the body is not a JSON object")
    # Kept apart from GitHub's ids: the table of deliveries is one.
    said = Delivery(f"gitlab:{delivery}", event, hashlib.sha256(body).hexdigest(), payload)
    try:
        answer = await _act(settings, orchestrator, said, reach)
    except ValidationFailed as exc:
        answer = refused(409, str(exc))
    except Fault as exc:  # nothing was recorded: a redelivery acts
        answer = refused(503, f"GitLab could not be asked ({exc}): deliver again")
    # GitLab shows each answer under the webhook's Recent events; -v shows it here too.
    log.info("webhook %s %s: %s", event, delivery, bytes(answer.body).decode())
    return answer


async def _act(
    settings: Settings, orchestrator: Orchestrator, said: Delivery,
    reach: Callable[[str], Reach | None],
) -> Response:  # fmt: skip
    event, payload = said.event, said.payload
    project = gitlab_webhooks.project_of(payload)
    if project and not gitlab_webhooks.served(project, settings.webhook_repos):
        await _ignored(orchestrator, said)
        told = ("the ones given with --repo gitlab:GROUP/PROJECT"
                if gitlab_webhooks.named(settings.webhook_repos) else
                "none yet: name it with --repo gitlab:GROUP/PROJECT")  # fmt: skip
        why = f"{event}: {project} is not a project this server serves ({told})"
        return JSONResponse({"done": f"{why}: not acted on"}, status_code=202)
    if gitlab_webhooks.confidential(event, payload):
        await _ignored(orchestrator, said)
        return JSONResponse({"done": f"{event}: confidential, so its words make and move no "
                             "task: not acted on"})  # fmt: skip
    if not project:
        await _ignored(orchestrator, said)
        return JSONResponse({"done": f"{event}: names no project: not acted on"})
    if event == ISSUE and payload.get("object_kind") == "issue":
        return await _issues(settings, orchestrator, said, project, reach(project))
    if event == NOTE and payload.get("object_kind") == "note":
        return await _note(orchestrator, said, project, reach)
    ended = gitlab_webhooks.pipeline_of(payload, settings.webhook_branch) if (
        event == PIPELINE) else None  # fmt: skip
    if isinstance(ended, webhooks.Run):
        return await _ran(orchestrator, said, ended, reach(project))
    await _ignored(orchestrator, said)
    return JSONResponse({"done": ended if isinstance(ended, str) else f"{event}: not acted on"})


async def _ignored(orchestrator: Orchestrator, said: Delivery) -> None:
    await orchestrator.delivered(said.id, said.event, said.digest)


async def _issues(
    settings: Settings, orchestrator: Orchestrator, said: Delivery, project: str,
    reach: Reach | None,
) -> Response:  # fmt: skip
    """As GitHub's `issues` (edge/webhooks.py): its author's words, or a label or an edit by
    one who steers, move its task; a close acts once GitLab says the issue is closed now,
    and never where the merge of the task's merge request closed it."""
    payload = said.payload
    issue = gitlab_webhooks.issue_of(payload)
    task = issue_tasks.task_id(project, issue.number, KIND)
    if reach is None:
        await _ignored(orchestrator, said)
        return JSONResponse({"done": NO_FORGE.format(what=ISSUE, why="who sent it")})
    if issue.state != "open":
        now = await anyio.to_thread.run_sync(reach.forge.issue, issue.number)
        if now is not None and now.state == "open":
            await _ignored(orchestrator, said)
            return JSONResponse({"done": f"{ISSUE}: #{issue.number} is open on GitLab now: "
                                 "its task is not cancelled"})  # fmt: skip
        status = await orchestrator.tasks_under(task)
        merged = await issue_sync.closed_by_merge(orchestrator, reach.forge, project, [issue],
                                                  status)  # fmt: skip
        if merged:  # GitLab closed it at the merge: the task lands, and its issue is told
            await _ignored(orchestrator, said)
            return JSONResponse({"done": f"{ISSUE}: #{issue.number} was closed by the merge of "
                                 f"merge request !{merged[0][1]}: its task lands once the "
                                 "autopilot sees the merge, so it is not cancelled"})  # fmt: skip
    else:
        sender = gitlab_webhooks.sender(payload)
        if gitlab_webhooks.by_its_author(payload):
            author = sender
        else:  # the hook names its author by id only
            now = await anyio.to_thread.run_sync(reach.forge.issue, issue.number)
            author = now.author if now is not None else ""
        issue = dataclasses.replace(issue, author=author)
        made = task in await orchestrator.tasks_under(task)
        label = settings.webhook_label
        action, added = gitlab_webhooks.issue_action(payload, label, made)
        by_author = await _steers(reach, author) if author else False
        steers = by_author or await _steers(reach, sender)
        if not issue_tasks.moves(made, by_author, steers, action, added, label):
            await _ignored(orchestrator, said)
            whose = f"@{author}'s" if author else "someone else's"
            why = (f"@{sender}, who does not steer" if not steers else
                   f"@{sender}, on {whose} issue, who does not steer: only a label "
                   f"{label!r} or an edit by one who steers moves its task")  # fmt: skip
            return JSONResponse({"done": f"{ISSUE}: #{issue.number} {action} by {why} "
                                 "(docs/forge.md): not acted on"})  # fmt: skip
    done = await orchestrator.delivered_issue(
        said.id, said.digest, project, issue, settings.webhook_label, KIND
    )
    return JSONResponse({"done": done})


async def _steers(reach: Reach, login: str) -> bool:
    return await anyio.to_thread.run_sync(reach.authority.steers, login)


async def _note(
    orchestrator: Orchestrator, said: Delivery, project: str,
    reach: Callable[[str], Reach | None],
) -> Response:  # fmt: skip
    """A new note on an issue, as GitHub's `issue_comment`: acted on first, then recorded
    (a note is acted on once by its own id; one GitLab could not be asked for can be
    delivered again)."""
    heard = gitlab_webhooks.note_of(said.payload)
    if isinstance(heard, str):
        await _ignored(orchestrator, said)
        return JSONResponse({"done": heard})
    found = reach(project)
    if found is None:
        await _ignored(orchestrator, said)
        return JSONResponse({"done": NO_FORGE.format(what=NOTE, why="who wrote it")})
    done = await issue_sync.heard(orchestrator, found.authority, project, heard)
    await _ignored(orchestrator, said)
    return JSONResponse({"done": done or f"{NOTE}: nothing to do (a note like any, or one "
                         "acted on before)"})  # fmt: skip


async def _ran(
    orchestrator: Orchestrator, said: Delivery, run: webhooks.Run, reach: Reach | None
) -> Response:
    """A pipeline that ended on the landing branch: a failed one makes one task (with its
    failing job and log tail where GitLab can be asked); a green one cancels it only for
    the red commits GitLab says its commit contains."""
    if reach is None and run.passed:
        await _ignored(orchestrator, said)
        why = "whether its commit contains the red ones"
        return JSONResponse({"done": NO_FORGE.format(what=PIPELINE, why=why)})
    contained: set[str] = set()
    if run.passed and reach is not None:
        for reds in (await orchestrator.red_tasks(run)).values():
            for red in reds:
                if red == run.sha or await anyio.to_thread.run_sync(
                        reach.forge.contains, red, run.sha):  # fmt: skip
                    contained.add(red)
    elif reach is not None:
        ident = int((said.payload.get("object_attributes") or {}).get("id") or 0)
        try:
            job = await anyio.to_thread.run_sync(reach.forge.failed_job, ident)
        except Fault:  # its task links to the pipeline
            job = None
        run = dataclasses.replace(run, job=job)
    done = await orchestrator.delivered_run(said.id, said.digest, run, frozenset(contained))
    return JSONResponse({"done": done})
