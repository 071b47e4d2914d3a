"""GitHub's webhook on `serve --http` (POST /webhooks/github), off unless the person set
WVO_WEBHOOK_SECRET: a delivery is read only up to its size cap, acted on only once its
`X-Hub-Signature-256` matches the secret, and once per delivery id (a replay is refused and
writes nothing: services/deliveries.py). An `issues` event keeps its issue's task in step,
as `import github:` does; an `issue_comment` on a task's issue answers its question or tells
its holder when a writer made it (tracker.heard: read with the server's WVO_FORGE_TOKEN,
whose role API says who may); a `workflow_run` that fails on the landing branch makes one
task to make it green again (and one that passes cancels it); `ping` answers; anything else
is recorded and left alone.

What a delivery says is data, signed by GitHub: an issue's body becomes a task's
description, and nothing in it is read as an instruction."""

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wvo_mcp import tracker
from wvo_mcp.config import Settings
from wvo_mcp.errors import Fault, ValidationFailed
from wvo_mcp.forge import Forge, credentials, github
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import webhooks
from wvo_mcp.rules.issue_tasks import Issue, IssueComment

PATH = "/webhooks/github"
NO_TOKEN = (
    "issue_comment: recorded, not acted on: the server has no GitHub token to read who wrote "
    "it (set WVO_FORGE_TOKEN); `wvo-mcp import github:OWNER/REPO --every 60` acts on it"
)


def _run(settings: Settings, event: str, payload: dict[str, Any]) -> webhooks.Run | None:
    """A workflow run or check suite that ended, red or green, on the branch work lands on
    (WVO_WEBHOOK_BRANCH, else the repository's default branch); None for anything else (one
    cancelled or skipped says nothing, and a check suite of GitHub Actions is its workflow
    runs', which say it already)."""
    found = payload.get(event)
    repository = payload.get("repository")
    if event not in ("workflow_run", "check_suite") or not isinstance(found, dict):
        return None
    if not isinstance(repository, dict) or str(repository.get("full_name")).count("/") != 1:
        return None
    wanted = settings.webhook_branch or str(repository.get("default_branch") or "main")
    conclusion = found.get("conclusion")
    if found.get("head_branch") != wanted or conclusion not in webhooks.RED | webhooks.GREEN:
        return None
    sha = str(found.get("head_sha") or "")
    if event == "workflow_run":
        name, key = str(found.get("name") or "workflow"), str(int(found.get("workflow_id") or 0))
        url = str(found.get("html_url") or "")
    else:
        app = found.get("app") or {}
        if not isinstance(app, dict) or app.get("slug") == "github-actions":
            return None
        name, key = str(app.get("name") or "checks"), f"app-{int(app.get('id') or 0)}"
        url = f"{repository.get('html_url') or ''}/commit/{sha}"
    return webhooks.Run(event, str(repository["full_name"]), name, key, wanted, sha, url,
                        conclusion in webhooks.GREEN)  # fmt: skip


async def _with_job(
    run: webhooks.Run, payload: dict[str, Any], forge: Callable[[str], Forge | None]
) -> webhooks.Run:
    """A red run with its failing job's name and log tail, where the server has a token to
    read them (without, or when GitHub cannot be asked, its task links to the run)."""
    found = forge(run.repository)
    if found is None:
        return run
    ident = int((payload.get(run.event) or {}).get("id") or 0)
    reads = found.failed_job if run.event == "workflow_run" else found.failed_check
    try:
        job = await anyio.to_thread.run_sync(reads, ident)
    except Fault:
        return run
    return dataclasses.replace(run, job=job)


def route(settings: Settings, current: Callable[[], Orchestrator | None]) -> Route:
    forges: dict[str, Forge | None] = {}

    def forge(repository: str) -> Forge | None:
        """The repository on GitHub, asked with the server's own token (None without one)."""
        if repository not in forges:
            api = (settings.forge_api or github.PUBLIC_API).rstrip("/")
            host = github.host_of(api)
            token = credentials.token(host)
            timeout = settings.remote_timeout_seconds
            forges[repository] = github.GitHub(api, repository, token, timeout) if token else None
        return forges[repository]

    async def deliver(request: Request) -> Response:
        return await _deliver(settings, current, request, forge)

    return Route(PATH, deliver, methods=["POST"])


def _refused(status: int, why: str) -> Response:
    return JSONResponse({"error": f"{why}; nothing was done"}, status_code=status)


async def _body(request: Request) -> bytes | None:
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


async def _deliver(
    settings: Settings, current: Callable[[], Orchestrator | None], request: Request,
    forge: Callable[[str], Forge | None],
) -> Response:  # fmt: skip
    if not settings.webhook_secret:
        return _refused(404, "the webhook is off: set WVO_WEBHOOK_SECRET to the secret "
                        "GitHub's webhook settings hold")  # fmt: skip
    body = await _body(request)
    if body is None:
        return _refused(413, f"a delivery is at most {webhooks.MAX_BYTES} bytes")
    if not webhooks.signed(settings.webhook_secret, body, request.headers.get(
            "x-hub-signature-256")):  # fmt: skip
        return _refused(401, "X-Hub-Signature-256 is missing or does not match the secret")
    delivery = request.headers.get("x-github-delivery", "")
    event = request.headers.get("x-github-event", "")
    if not delivery or len(delivery) > 100 or not event:
        return _refused(400, "a delivery needs X-GitHub-Delivery (at most 100 characters) "
                        "and X-GitHub-Event")  # fmt: skip
    try:
        payload = json.loads(body)
    except ValueError:
        return _refused(400, "the body is not JSON")
    orchestrator = current()
    if orchestrator is None:
        return _refused(503, "the server is still starting: GitHub delivers again")
    if not isinstance(payload, dict):
        return _refused(400, "the body is not a JSON object")
    try:
        if event == "issues" and isinstance(payload.get("issue"), dict):
            repository = str((payload.get("repository") or {}).get("full_name", ""))
            if repository.count("/") != 1:
                return _refused(400, "an issues event names its repository (full_name)")
            done = await orchestrator.delivered_issue(
                delivery, repository, _issue(payload["issue"]), settings.webhook_label
            )
            return JSONResponse({"done": done})
        if event == "issue_comment" and _on_an_issue(payload):
            return await _comment(orchestrator, delivery, payload, forge)
        ended = _run(settings, event, payload)
        if ended is not None:
            if not ended.passed:
                ended = await _with_job(ended, payload, forge)
            return JSONResponse({"done": await orchestrator.delivered_run(delivery, ended)})
        await orchestrator.delivered(delivery, event)
    except ValidationFailed as exc:
        return _refused(409, str(exc))
    return JSONResponse({"done": "pong" if event == "ping" else f"{event}: not acted on"})


def _on_an_issue(payload: dict[str, Any]) -> bool:
    """A new comment on an issue (not on a pull request), in a named repository."""
    issue, comment = payload.get("issue"), payload.get("comment")
    full = str((payload.get("repository") or {}).get("full_name", ""))
    return (
        payload.get("action") == "created" and isinstance(issue, dict)
        and isinstance(comment, dict) and "pull_request" not in issue and full.count("/") == 1
    )  # fmt: skip


async def _comment(
    orchestrator: Orchestrator, delivery: str, payload: dict[str, Any],
    forge: Callable[[str], Forge | None],
) -> Response:  # fmt: skip
    """Acted on first, then recorded: a comment is acted on once by its own id, and a
    delivery the forge could not be asked for can be delivered again."""
    repository = str(payload["repository"]["full_name"])
    found = forge(repository)
    if found is None:
        await orchestrator.delivered(delivery, "issue_comment")
        return JSONResponse({"done": NO_TOKEN})
    comment, issue = payload["comment"], payload["issue"]
    said = IssueComment(
        id=int(comment.get("id") or 0), number=int(issue.get("number") or 0),
        user=str((comment.get("user") or {}).get("login") or ""),
        body=str(comment.get("body") or ""), created_at=str(comment.get("created_at") or ""),
        url=str(comment.get("html_url") or ""),
    )  # fmt: skip
    try:
        done = await tracker.heard(orchestrator, found, repository, said)
    except Fault as exc:
        return _refused(503, f"GitHub could not be asked who wrote it ({exc}): deliver again")
    await orchestrator.delivered(delivery, "issue_comment")
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
    )  # fmt: skip
