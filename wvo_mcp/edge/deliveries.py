"""A forge's webhook delivery, refused or acted on by one pipeline whatever the forge that sent it.

GitHub's webhook (edge/github_webhooks.py) and GitLab's (edge/gitlab_webhooks.py) hold the same
refusals and act through the same Forge interface, so that a behaviour cannot exist for one
forge only: off without a secret (404); read only up to rules/webhooks.MAX_BYTES (413);
authentic (401) and named (400) as the forge's Hook says; JSON; once per delivery id and per
body (a replay writes nothing: services/webhooks.py, 409); from a repository the server
serves, else recorded and answered 202. Then the Hook reads the event into one of three
things the same rules decide: an issue's event (rules/issue_tasks.moves), a comment on an
issue (issue_sync.heard), a run that ended on the landing branch (services/webhooks.py);
anything else is recorded and left alone. What a forge's module keeps is its own: how a
delivery is authenticated and named, how its payload maps to those three, and its words.

The forge is asked with the server's own token, one client and Authority per repository,
built on first use; when it cannot be (no token) that is said once on the log and nothing
that needs the forge's word acts."""

import dataclasses
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wvo_mcp.config import Settings
from wvo_mcp.edge import issue_sync
from wvo_mcp.errors import Fault, ValidationFailed
from wvo_mcp.forge import Forge
from wvo_mcp.forge.authority import Authority
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import issue_tasks, pull_news, pulls, webhooks
from wvo_mcp.rules.issue_tasks import Issue, IssueComment
from wvo_mcp.rules.text import ForgeKind


@dataclasses.dataclass(frozen=True)
class Reach:
    """A repository on the forge, asked with the server's own token, and who steers there."""

    forge: Forge
    authority: Authority


@dataclasses.dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    digest: str  # of its body: the same body under a new id is a replay
    payload: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class IssueEvent:
    """An issue's event in GitHub's words (rules/issue_tasks.moves)."""

    repository: str
    issue: Issue
    sender: str
    author: str | None  # None: the payload names its author by id only, so the forge is asked
    closing: bool  # a close (a deletion, a transfer): acts once the forge says so now
    moved: Callable[[bool], tuple[str, str]]  # its action and the label it added, given made


@dataclasses.dataclass(frozen=True)
class Commented:
    """A new comment (a note) on an issue."""

    repository: str
    comment: IssueComment


@dataclasses.dataclass(frozen=True)
class Ended:
    """A run that ended on the landing branch."""

    run: webhooks.Run
    ident: int  # what its failing job is read by
    suite: bool  # a check suite: it names no head repository, so its commit is asked to be
    # on the branch, and its failure is read as a failed check


@dataclasses.dataclass(frozen=True)
class Told:
    """News of pull requests (rules/pull_news.py), for the merge queue that follows them."""

    repository: str
    news: list[pull_news.News]


# What a Hook reads a delivery as: one of the four it acts on, the words of one recorded and
# left alone, or a refusal (nothing recorded).
Heard = IssueEvent | Commented | Ended | Told | str | Response


@dataclasses.dataclass(frozen=True)
class Hook:
    """What one forge's webhook holds of its own: its route, its credentials and its words."""

    path: str
    kind: ForgeKind
    name: str  # the forge as a person reads it: GitHub, GitLab
    log: logging.Logger
    secret: Callable[[Settings], str]  # '': the webhook is off
    off: str  # the 404's words
    authentic: Callable[[Settings, Headers, bytes], str]  # why it is not ('' when it is)
    named: Callable[[Settings, Headers], tuple[str, str]]  # its delivery id and event
    unnamed: str  # the 400's words when either is missing
    kept: str  # before a delivery's id as it is kept: the table of deliveries is one
    connect: Callable[[Settings, str], Forge]  # raises ValidationFailed without a token
    outside: Callable[[Settings, Orchestrator, Delivery], Awaitable[str]]  # why not served
    read: Callable[[Settings, Delivery], Heard]
    no_forge: str  # a recorded delivery's words when the forge cannot be asked: {what} {why}
    comment: str  # what the forge calls a comment on an issue


def route(hook: Hook, settings: Settings, current: Callable[[], Orchestrator | None]) -> Route:
    reaches: dict[str, Reach | None] = {}

    def reach(repository: str) -> Reach | None:
        """None without a client (said once on the log, with why): nothing that needs the
        forge's word acts."""
        if repository not in reaches:
            try:
                forge = hook.connect(settings, repository)
            except ValidationFailed as exc:
                hook.log.warning("%s", exc)
                reaches[repository] = None
                return None
            reaches[repository] = Reach(forge, Authority(forge, settings.trust))
        return reaches[repository]

    async def deliver(request: Request) -> Response:
        return await _deliver(_Acts(hook, settings, reach), current, request)

    return Route(hook.path, deliver, methods=["POST"])


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
class _Acts:
    hook: Hook
    settings: Settings
    reach: Callable[[str], Reach | None]


async def _deliver(
    acts: _Acts, current: Callable[[], Orchestrator | None], request: Request
) -> Response:
    hook, settings = acts.hook, acts.settings
    if not hook.secret(settings):
        return refused(404, hook.off)
    body = await capped_body(request)
    if body is None:
        return refused(413, f"a delivery is at most {webhooks.MAX_BYTES} bytes")
    why = hook.authentic(settings, request.headers, body)
    if why:
        return refused(401, why)
    delivery, event = hook.named(settings, request.headers)
    if not delivery or len(delivery) > webhooks.MAX_ID or not event:
        return refused(400, hook.unnamed)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested past Python's stack
        return refused(400, "the body is not JSON (or nests deeper than a payload does)")
    orchestrator = current()
    if orchestrator is None:
        return refused(503, f"the server is still starting: {hook.name} delivers again")
    if not isinstance(payload, dict):
        return refused(400, "the body is not a JSON object")
    said = Delivery(hook.kept + delivery, event, hashlib.sha256(body).hexdigest(), payload)
    try:
        answer = await _act(acts, orchestrator, said)
    except ValidationFailed as exc:
        answer = refused(409, str(exc))
    except Fault as exc:  # nothing was recorded: the forge's redelivery acts
        answer = refused(503, f"{hook.name} could not be asked ({exc}): deliver again")
    # The forge shows each answer under the webhook's recent deliveries; -v shows it here too.
    hook.log.info("webhook %s %s: %s", event, delivery, bytes(answer.body).decode())
    return answer


async def _act(acts: _Acts, orchestrator: Orchestrator, said: Delivery) -> Response:
    outside = await acts.hook.outside(acts.settings, orchestrator, said)
    if outside:
        await _ignored(orchestrator, said)
        return JSONResponse({"done": f"{outside}: not acted on"}, status_code=202)
    heard = acts.hook.read(acts.settings, said)
    if isinstance(heard, IssueEvent):
        return await _issue(acts, orchestrator, said, heard, acts.reach(heard.repository))
    if isinstance(heard, Commented):
        return await _comment(acts, orchestrator, said, heard)
    if isinstance(heard, Ended):
        return await _ran(acts.hook, orchestrator, said, heard, acts.reach(heard.run.repository))
    if isinstance(heard, Told):
        await orchestrator.heard_pulls(said.id, said.digest, said.event, acts.hook.kind,
                                       heard.repository, heard.news)  # fmt: skip
        numbers = sorted({pulls.reference(n.number, acts.hook.kind) for n in heard.news
                          if n.number})  # fmt: skip
        return JSONResponse({"done": f"{said.event}: told the merge queue following "
                             f"{', '.join(numbers) or heard.news[0].sha[:12]}; it looks at "
                             f"{acts.hook.name} itself before it acts"})  # fmt: skip
    if isinstance(heard, Response):
        return heard
    await _ignored(orchestrator, said)
    return JSONResponse({"done": heard})


async def _ignored(orchestrator: Orchestrator, said: Delivery) -> None:
    await orchestrator.delivered(said.id, said.event, said.digest)


async def _issue(
    acts: _Acts, orchestrator: Orchestrator, said: Delivery, heard: IssueEvent,
    reach: Reach | None,
) -> Response:  # fmt: skip
    """An issue's event moves its task as rules/issue_tasks.moves says (its author's words,
    or a label or an edit by one who steers); a close acts whoever made it, once the forge
    says the issue is closed or gone now (a late or replayed close of a reopened issue
    cancels nothing), and never where the merge of the task's pull request closed it
    (issue_sync.closed_by_merge: the task lands, and the sync tells the issue) or something
    else that landed did (issue_sync.closed_elsewhere: a person is told and decides)."""
    hook, event, issue, repository = acts.hook, said.event, heard.issue, heard.repository
    if reach is None:
        await _ignored(orchestrator, said)
        return JSONResponse({"done": hook.no_forge.format(what=event, why="who sent it")})
    task = issue_tasks.task_id(repository, issue.number, hook.kind)
    if heard.closing:
        now = await anyio.to_thread.run_sync(reach.forge.issue, issue.number)
        if now is not None and now.state == "open":
            await _ignored(orchestrator, said)
            return JSONResponse({"done": f"{event}: #{issue.number} is open on {hook.name} "
                                 "now: its task is not cancelled"})  # fmt: skip
        issue = dataclasses.replace(issue, state="closed")
        status = await orchestrator.tasks_under(task)
        merged = await issue_sync.closed_by_merge(
            orchestrator, reach.forge, repository, [issue], status
        )
        if merged:  # the forge closed it at the merge: the task lands, and its issue is told
            pull = pulls.named(merged[0][1], hook.kind)
            await _ignored(orchestrator, said)
            return JSONResponse({"done": f"{event}: #{issue.number} was closed by the merge of "
                                 f"{pull}: its task lands once the autopilot sees the merge, "
                                 "so it is not cancelled"})  # fmt: skip
        kept: list[tuple[int, str]] = []
        if now is not None:  # a gone issue's close (deleted, transferred) is no landing's
            kept = await issue_sync.closed_elsewhere(
                orchestrator, reach.forge, repository, [issue], status
            )
        if kept:  # a commit's or another pull request's closing words: a person decides
            await _ignored(orchestrator, said)
            return JSONResponse({"done": f"{event}: #{issue.number} was closed by {kept[0][1]}, "
                                 "not by its task's landing: its task is kept, and a person "
                                 "is told"})  # fmt: skip
    else:
        author = heard.author
        if author is None:
            known = await anyio.to_thread.run_sync(reach.forge.issue, issue.number)
            author = known.author if known is not None else ""
        issue = dataclasses.replace(issue, author=author)
        made = task in await orchestrator.tasks_under(task)
        label = acts.settings.webhook_label
        action, added = heard.moved(made)
        by_author = await _steers(reach, author) if author else False
        steers = by_author or await _steers(reach, heard.sender)
        if not issue_tasks.moves(made, by_author, steers, action, added, label):
            await _ignored(orchestrator, said)
            whose = f"@{author}'s" if author else "someone else's"
            why = (f"@{heard.sender}, who does not steer" if not steers else
                   f"@{heard.sender}, on {whose} issue, who does not steer: only a label "
                   f"{label!r} or an edit by one who steers moves its task")  # fmt: skip
            return JSONResponse({"done": f"{event}: #{issue.number} {action or 'changed'} by "
                                 f"{why} (docs/forge.md): not acted on"})  # fmt: skip
    done = await orchestrator.delivered_issue(
        said.id, said.digest, repository, issue, acts.settings.webhook_label, hook.kind
    )
    return JSONResponse({"done": done})


async def _steers(reach: Reach, login: str) -> bool:
    return await anyio.to_thread.run_sync(reach.authority.steers, login)


async def _comment(
    acts: _Acts, orchestrator: Orchestrator, said: Delivery, heard: Commented
) -> Response:
    """Acted on first, then recorded: a comment is acted on once by its own id, and a
    delivery the forge could not be asked for can be delivered again."""
    found = acts.reach(heard.repository)
    if found is None:
        await _ignored(orchestrator, said)
        return JSONResponse({"done": acts.hook.no_forge.format(what=said.event,
                                                               why="who wrote it")})  # fmt: skip
    done = await issue_sync.heard(orchestrator, found.authority, heard.repository, heard.comment)
    await _ignored(orchestrator, said)
    return JSONResponse({"done": done or f"{said.event}: nothing to do (a {acts.hook.comment} "
                         "like any, or one acted on before)"})  # fmt: skip


async def _ran(
    hook: Hook, orchestrator: Orchestrator, said: Delivery, ended: Ended, reach: Reach | None
) -> Response:
    """A run that ended on the landing branch: a red one makes one task (with its failing
    job's name and log tail where the forge can be asked, else linking to the run); a green
    one cancels it only for the red commits the forge says its commit contains. A check suite
    counts once the forge says its commit is on the branch."""
    run = ended.run
    if reach is None and (run.passed or ended.suite):
        await _ignored(orchestrator, said)
        why = "whether its commit contains the red ones" if run.passed else (
            f"whether its commit is on {run.branch}")  # fmt: skip
        return JSONResponse({"done": hook.no_forge.format(what=said.event, why=why)})
    if reach is not None and ended.suite:
        on = await anyio.to_thread.run_sync(reach.forge.contains, run.sha, run.branch)
        if not on:
            await _ignored(orchestrator, said)
            return JSONResponse({"done": f"{said.event}: {run.sha[:12]} is not on "
                                 f"{run.branch}: not acted on"})  # fmt: skip
    contained: set[str] = set()
    if run.passed and reach is not None:
        for reds in (await orchestrator.red_tasks(run)).values():
            for red in reds:
                if red == run.sha or await anyio.to_thread.run_sync(
                        reach.forge.contains, red, run.sha):  # fmt: skip
                    contained.add(red)
    elif reach is not None:
        reads = reach.forge.failed_check if ended.suite else reach.forge.failed_job
        try:
            job = await anyio.to_thread.run_sync(reads, ended.ident)
        except Fault:  # its task links to the run
            job = None
        run = dataclasses.replace(run, job=job)
    done = await orchestrator.delivered_run(said.id, said.digest, run, frozenset(contained))
    return JSONResponse({"done": done})
