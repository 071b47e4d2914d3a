"""GitHub's webhook: each delivery's signature checked, then acted on as its sender may.

GitHub's webhook on `serve --http` (POST /webhooks/github), off unless the person set
WVO_WEBHOOK_SECRET: a delivery is read only up to its size cap, acted on only once its
`X-Hub-Signature-256` matches the secret, and once per delivery id and per body (a replay,
under its id or a new one, is refused and writes nothing: services/webhooks.py); one for
a repository the server does not serve is answered 202, recorded, and does nothing.

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

Carries out `rules/webhooks.py`."""

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wvo_mcp.config import Settings
from wvo_mcp.edge import issue_sync
from wvo_mcp.errors import Fault, ValidationFailed
from wvo_mcp.forge import Forge, select
from wvo_mcp.forge.authority import Authority
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import issue_tasks, webhooks
from wvo_mcp.rules.issue_tasks import Issue, IssueComment
from wvo_mcp.rules.text import ForgeKind

PATH = "/webhooks/github"
KIND: ForgeKind = "github"  # the forge this route hears: its tasks' ids are gh/…
log = logging.getLogger(__name__)
NO_TOKEN = (
    "{what}: recorded, not acted on: the server has no GitHub token to read {why} (set "
    "WVO_FORGE_TOKEN; its log says what else it read); `wvo-mcp import github:OWNER/REPO "
    "--every 60` acts on it"
)


@dataclasses.dataclass(frozen=True)
class Reach:
    """A repository on GitHub, asked with the server's own token, and who steers there."""

    forge: Forge
    authority: Authority


async def _with_job(run: webhooks.Run, payload: dict[str, Any], reach: Reach) -> webhooks.Run:
    """A red run with its failing job's name and log tail (when GitHub cannot be asked, its
    task links to the run)."""
    ident = int((payload.get(run.event) or {}).get("id") or 0)
    reads = reach.forge.failed_job if run.event == "workflow_run" else reach.forge.failed_check
    try:
        job = await anyio.to_thread.run_sync(reads, ident)
    except Fault:
        return run
    return dataclasses.replace(run, job=job)


def route(settings: Settings, current: Callable[[], Orchestrator | None]) -> Route:
    reaches: dict[str, Reach | None] = {}

    def reach(repository: str) -> Reach | None:
        """None without a token (said once on the log, with what was read): nothing that
        needs GitHub's word acts. The API and its token by the rule `import` and the
        autopilot follow (forge/select.py, forge/credentials.py)."""
        if repository not in reaches:
            try:
                # This route hears GitHub: its repositories are GitHub's, whatever the API.
                located = select.named(f"{KIND}:{repository}", settings.forge_api or None)
                forge = select.connect(located, settings.remote_timeout_seconds,
                                       f"the webhook ({repository})")  # fmt: skip
            except ValidationFailed as exc:
                log.warning("%s", exc)
                reaches[repository] = None
                return None
            reaches[repository] = Reach(forge, Authority(forge, settings.trust))
        return reaches[repository]

    async def deliver(request: Request) -> Response:
        return await _deliver(settings, current, request, reach)

    return Route(PATH, deliver, methods=["POST"])


def refused(status: int, why: str) -> Response:
    return JSONResponse({"error": f"{why}; nothing was done"}, status_code=status)


async def capped_body(request: Request) -> bytes | None:
    """The raw body, or None past the cap (however it is sent)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > webhooks.MAX_BYTES):
        return None
    found = bytearray()
    async for chunk in request.stream():
        found += chunk
        if len(found) > webhooks.MAX_BYTES:
            return None
    return bytes(found)


@dataclasses.dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    digest: str  # of its body: the same body under a new id is a replay
    payload: dict[str, Any]


async def _deliver(
    settings: Settings, current: Callable[[], Orchestrator | None], request: Request,
    reach: Callable[[str], Reach | None],
) -> Response:  # fmt: skip
    if not settings.webhook_secret:
        return refused(404, "the webhook is off: set WVO_WEBHOOK_SECRET to the secret "
                        "GitHub's webhook settings hold")  # fmt: skip
    body = await capped_body(request)
    if body is None:
        return refused(413, f"a delivery is at most {webhooks.MAX_BYTES} bytes")
    if not webhooks.signed(settings.webhook_secret, body, request.headers.get(
            "x-hub-signature-256")):  # fmt: skip
        return refused(401, "X-Hub-Signature-256 is missing or does not match the secret")
    delivery = request.headers.get("x-github-delivery", "")
    event = request.headers.get("x-github-event", "")
    if not delivery or len(delivery) > 100 or not event:
        return refused(400, "a delivery needs X-GitHub-Delivery (at most 100 characters) "
                        "and X-GitHub-Event")  # fmt: skip
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested past Python's stack
        return refused(400, "the body is not JSON (or nests deeper than a payload does)")
    orchestrator = current()
    if orchestrator is None:
        return refused(503, "the server is still starting: GitHub delivers again")
    if not isinstance(payload, dict):
        return refused(400, "the body is not a JSON object")
    said = Delivery(delivery, event, hashlib.sha256(body).hexdigest(), payload)
    try:
        answer = await _act(settings, orchestrator, said, reach)
    except ValidationFailed as exc:
        answer = refused(409, str(exc))
    except Fault as exc:  # nothing was recorded: GitHub's redelivery acts
        answer = refused(503, f"GitHub could not be asked ({exc}): deliver again")
    # GitHub shows each answer under the webhook's Recent Deliveries; -v shows it here too.
    log.info("webhook %s %s: %s", event, delivery, bytes(answer.body).decode())
    return answer


async def _act(
    settings: Settings, orchestrator: Orchestrator, said: Delivery,
    reach: Callable[[str], Reach | None],
) -> Response:  # fmt: skip
    event, payload = said.event, said.payload
    repository = str((payload.get("repository") or {}).get("full_name") or "")
    if repository and event != "ping":
        synced = await orchestrator.synced_repositories()
        named = webhooks.named(settings.webhook_repos)
        if not webhooks.served(repository, named, synced):
            await _ignored(orchestrator, said)
            told = "the ones given with --repo" if named else (
                "those `import github:` synced here; name it with --repo")  # fmt: skip
            why = f"{event}: {repository} is not a repository this server serves ({told})"
            return JSONResponse({"done": f"{why}: not acted on"}, status_code=202)
    if event == "issues" and isinstance(payload.get("issue"), dict):
        if repository.count("/") != 1:
            return refused(400, "an issues event names its repository (full_name)")
        return await _issues(settings, orchestrator, said, repository, reach(repository))
    if event == "issue_comment" and _on_an_issue(payload):
        return await _comment(orchestrator, said, reach)
    ended = webhooks.run_of(event, payload, settings.webhook_branch)
    if isinstance(ended, webhooks.Run):
        return await _ran(orchestrator, said, ended, reach(ended.repository))
    await _ignored(orchestrator, said)
    if isinstance(ended, str):
        return JSONResponse({"done": ended})
    return JSONResponse({"done": "pong" if event == "ping" else f"{event}: not acted on"})


async def _ignored(orchestrator: Orchestrator, said: Delivery) -> None:
    await orchestrator.delivered(said.id, said.event, said.digest)


async def _issues(
    settings: Settings, orchestrator: Orchestrator, said: Delivery, repository: str,
    reach: Reach | None,
) -> Response:  # fmt: skip
    """An issue's event moves its task as rules/issue_tasks.moves says (its author's words,
    or a label or an edit by one who steers); a close (a deletion, a transfer) acts whoever
    made it, once GitHub says the issue is closed or gone now (a late or replayed close of
    a reopened issue cancels nothing), and never where the merge of the task's pull request
    closed it (issue_sync.closed_by_merge: the task lands, and the sync tells the issue)."""
    issue = _issue(said.payload["issue"])
    action = str(said.payload.get("action") or "")
    if reach is None:
        await _ignored(orchestrator, said)
        return JSONResponse({"done": NO_TOKEN.format(what="issues", why="who sent it")})
    if issue.state != "open" or action in ("deleted", "transferred"):
        now = await anyio.to_thread.run_sync(reach.forge.issue, issue.number)
        if now is not None and now.state == "open":
            await _ignored(orchestrator, said)
            return JSONResponse({"done": f"issues: #{issue.number} is open on GitHub now: "
                                 "its task is not cancelled"})  # fmt: skip
        issue = dataclasses.replace(issue, state="closed")
        task = issue_tasks.task_id(repository, issue.number, KIND)
        status = await orchestrator.tasks_under(task)
        merged = await issue_sync.closed_by_merge(
            orchestrator, reach.forge, repository, [issue], status
        )
        if merged:  # GitHub closed it at the merge: the task lands, and its issue is told
            await _ignored(orchestrator, said)
            return JSONResponse({"done": f"issues: #{issue.number} was closed by the merge of "
                                 f"pull request #{merged[0][1]}: its task lands once the "
                                 "autopilot sees the merge, so it is not cancelled"})  # fmt: skip
    else:
        sender = str((said.payload.get("sender") or {}).get("login") or "")
        task = issue_tasks.task_id(repository, issue.number, KIND)
        made = task in await orchestrator.tasks_under(task)
        added = str((said.payload.get("label") or {}).get("name") or "")
        author = await _steers(reach, issue.author)
        steers = author or await _steers(reach, sender)
        label = settings.webhook_label
        if not issue_tasks.moves(made, author, steers, action, added, label):
            await _ignored(orchestrator, said)
            why = (f"@{sender}, who does not steer" if not steers else
                   f"@{sender}, on @{issue.author}'s issue, who does not steer: only a label "
                   f"{label!r} or an edit by one who steers moves its task")  # fmt: skip
            return JSONResponse({"done": f"issues: #{issue.number} {action or 'changed'} by "
                                 f"{why} (docs/forge.md): not acted on"})  # fmt: skip
    done = await orchestrator.delivered_issue(
        said.id, said.digest, repository, issue, settings.webhook_label, KIND
    )
    return JSONResponse({"done": done})


async def _steers(reach: Reach, login: str) -> bool:
    return await anyio.to_thread.run_sync(reach.authority.steers, login)


async def _ran(
    orchestrator: Orchestrator, said: Delivery, run: webhooks.Run, reach: Reach | None
) -> Response:
    """A run that ended on the landing branch. A check suite counts once GitHub says its
    commit is on the branch (it names no head repository); a green cancels a red task only
    for the red commits GitHub says its commit contains."""
    if reach is None and (run.passed or run.event == "check_suite"):
        await _ignored(orchestrator, said)
        why = "whether its commit contains the red ones" if run.passed else (
            f"whether its commit is on {run.branch}")  # fmt: skip
        return JSONResponse({"done": NO_TOKEN.format(what=run.event, why=why)})
    if reach is not None and run.event == "check_suite":
        on = await anyio.to_thread.run_sync(reach.forge.contains, run.sha, run.branch)
        if not on:
            await _ignored(orchestrator, said)
            return JSONResponse({"done": f"check_suite: {run.sha[:12]} is not on "
                                 f"{run.branch}: not acted on"})  # fmt: skip
    contained: set[str] = set()
    if run.passed and reach is not None:
        for reds in (await orchestrator.red_tasks(run)).values():
            for red in reds:
                if red == run.sha or await anyio.to_thread.run_sync(
                        reach.forge.contains, red, run.sha):  # fmt: skip
                    contained.add(red)
    elif reach is not None:
        run = await _with_job(run, said.payload, reach)
    done = await orchestrator.delivered_run(said.id, said.digest, run, frozenset(contained))
    return JSONResponse({"done": done})


def _on_an_issue(payload: dict[str, Any]) -> bool:
    """A new comment on an issue (not on a pull request), in a named repository."""
    issue, comment = payload.get("issue"), payload.get("comment")
    full = str((payload.get("repository") or {}).get("full_name", ""))
    return (
        payload.get("action") == "created" and isinstance(issue, dict)
        and isinstance(comment, dict) and "pull_request" not in issue and full.count("/") == 1
    )  # fmt: skip


async def _comment(
    orchestrator: Orchestrator, said: Delivery, reach: Callable[[str], Reach | None]
) -> Response:
    """Acted on first, then recorded: a comment is acted on once by its own id, and a
    delivery the forge could not be asked for can be delivered again."""
    payload = said.payload
    repository = str(payload["repository"]["full_name"])
    found = reach(repository)
    if found is None:
        await _ignored(orchestrator, said)
        return JSONResponse({"done": NO_TOKEN.format(what="issue_comment", why="who wrote it")})
    comment, issue = payload["comment"], payload["issue"]
    heard = IssueComment(
        id=int(comment.get("id") or 0), number=int(issue.get("number") or 0),
        user=str((comment.get("user") or {}).get("login") or ""),
        body=str(comment.get("body") or ""), created_at=str(comment.get("created_at") or ""),
        url=str(comment.get("html_url") or ""),
    )  # fmt: skip
    done = await issue_sync.heard(orchestrator, found.authority, repository, heard)
    await _ignored(orchestrator, said)
    return JSONResponse({"done": done or "issue_comment: nothing to do (a comment like any, or "
                         "one acted on before)"})  # fmt: skip


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
