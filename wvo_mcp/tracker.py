"""A tracker's issues kept in step with the task graph (`wvo-mcp import github:OWNER/REPO`):
each open issue with the label is a task (rules/issue_tasks.py), created, or updated as
`import --update` updates a roadmap's (claimed, submitted or done work is never touched);
a closed issue's task is cancelled. Its id comes from the repository and the issue's
number, so a sync run twice, or on two hosts at once, makes nothing twice.

Then the conversation: an issue whose task landed is commented on (its commit or pull
request named) and closed or labelled; an agent's open question is posted on its issue; and
the comments since the last pass are read, where a writer's reply to a posted question
answers it and a writer's `/wvo tell …` tells the task's holder (services/conversations).
Each write on the forge is claimed by one host first, so two hosts never both make it.

A person runs it, with their token: it acts with their authority, as `import` does."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import anyio.to_thread

from wvo_mcp.errors import Fault, ValidationFailed
from wvo_mcp.forge import Forge, IssueComment
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import issue_tasks
from wvo_mcp.rules.issue_tasks import Table
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services.roadmap_update import RoadmapUpdate

FINAL = (Status.DONE, Status.CANCELLED)
LOOK_BACK = timedelta(minutes=10)  # a first pass reads comments from this long ago (clock skew)


@dataclass
class Synced:
    issues: int  # labelled issues read, open and closed
    update: RoadmapUpdate  # what the open ones did to their tasks
    cancelled: list[str] = field(default_factory=list)  # tasks of issues closed since
    calls: int = 0  # requests the forge answered
    revived: list[str] = field(default_factory=list)  # cancelled, then their issue reopened
    finished: list[str] = field(default_factory=list)  # issues commented on as landed
    asked: list[str] = field(default_factory=list)  # tasks whose question was posted
    said: list[str] = field(default_factory=list)  # what comments did, in words


async def sync(
    orchestrator: Orchestrator,
    forge: Forge,
    repository: str,
    label: str,
    actor: str,
    table: Table = issue_tasks.LABELS,
    on_landed: str | None = None,
) -> Synced:
    """One pass: the label's issues read, their tasks made to match, then the conversation
    (a landed task's issue closed, or labelled `on_landed`)."""
    before = forge.calls
    issues = await anyio.to_thread.run_sync(forge.issues, label)
    opened = [i for i in issues if i.state == "open"]
    numbers = {i.number for i in opened}
    labelled = {i.number for i in issues}  # a closed one's task is over: still a dependency
    specs = [
        TaskSpec.model_validate(issue_tasks.definition(repository, i, labelled, table))
        for i in sorted(opened, key=lambda i: i.number)
    ]
    # One read of every issue task's status serves the moves below: each move touches only
    # tasks whose status the others leave alone.
    status = await orchestrator.tasks_under(issue_tasks.task_id(repository, 0)[:-1])
    # Closed, then reopened: wanted again.
    revived = await _move(orchestrator, repository, opened, status, actor,
                          lambda s: s == Status.CANCELLED, Status.PENDING, "reopened")  # fmt: skip
    update = await orchestrator.update_roadmap(specs, actor)
    closed = [i for i in issues if i.state != "open"]
    cancelled = await _move(orchestrator, repository, closed, status, actor,
                            lambda s: s not in FINAL, Status.CANCELLED, "closed")  # fmt: skip
    done = Synced(len(issues), update, cancelled, 0, revived)
    done.finished = await _finish(orchestrator, forge, repository, opened, status, on_landed)
    done.asked = await _ask(orchestrator, forge, repository, numbers)
    done.said = await _read(orchestrator, forge, repository, numbers)
    done.calls = forge.calls - before
    return done


async def _move(
    orchestrator: Orchestrator, repository: str, issues: Sequence[issue_tasks.Issue],
    status: dict[str, str], actor: str, moves: Callable[[Status], bool], to: Status, why: str,
) -> list[str]:  # fmt: skip
    """Each issue's task that `moves` (by its status) moved `to`, as the person who closed or
    reopened the issue would (a holder, if any, is told its lease is lost)."""
    moved = []
    for issue in issues:
        task_id = issue_tasks.task_id(repository, issue.number)
        if task_id not in status or not moves(Status(status[task_id])):
            continue
        try:
            await orchestrator.update_status(
                task_id, to, actor, None, f"its issue #{issue.number} was {why}", by_person=True
            )
        except ValidationFailed:  # it moved on since the pass read it (done, say): next pass
            continue
        moved.append(task_id)
    return moved


async def _write(
    orchestrator: Orchestrator, forge: Forge, key: str, number: int,
    write: Callable[[], IssueComment],
) -> IssueComment | None:  # fmt: skip
    """`write` once across every host: claimed first; a claim taken over from a host that
    died first looks on the issue for what that host may have written."""
    was = await orchestrator.forge_post(key)
    if not await orchestrator.forge_claim(key):
        return None
    try:
        if was is not None:
            found = await anyio.to_thread.run_sync(forge.comments, "1970-01-01T00:00:00Z", number)
            written = [c for c in found if issue_tasks.marked(c.body, key)]
            if written:
                await orchestrator.forge_done(key, written[0].created_at)
                return None
        made = await anyio.to_thread.run_sync(write)
    except Fault:
        await orchestrator.forge_release(key)
        raise
    await orchestrator.forge_done(key, made.created_at)
    return made


async def _finish(
    orchestrator: Orchestrator, forge: Forge, repository: str,
    opened: Sequence[issue_tasks.Issue], status: dict[str, str], label: str | None,
) -> list[str]:  # fmt: skip
    """Each open issue whose task is done: a comment naming what landed, then closed (or
    labelled `label`)."""
    finished = []
    for issue in opened:
        task = issue_tasks.task_id(repository, issue.number)
        if status.get(task) != Status.DONE:
            continue
        row = await orchestrator.task_landed(task)
        if row is None:  # done without the landing queue
            text = issue_tasks.landed_comment(task, None, "", None)
        else:
            commit = row["new"] or row["commit_sha"]
            text = issue_tasks.landed_comment(task, commit, row["target"], row["url"])

        def close(number: int = issue.number, text: str = text) -> IssueComment:
            made = forge.comment(number, text)
            forge.finish_issue(number, label)
            return made

        if await _write(orchestrator, forge, f"landed:{task}", issue.number, close):
            finished.append(f"#{issue.number}")
    return finished


async def _ask(
    orchestrator: Orchestrator, forge: Forge, repository: str, open_issues: set[int]
) -> list[str]:
    """Each open question of an open issue's task, posted on the issue once."""
    prefix = issue_tasks.task_id(repository, 0)[:-1]
    asked = []
    for row in await orchestrator.questions_under(prefix):
        number = issue_tasks.number_of(repository, row["task_id"])
        if row["posted"] or number not in open_issues:
            continue
        text = issue_tasks.question_comment(row["task_id"], row["body"], row["id"])
        made = await _write(
            orchestrator,
            forge,
            f"question:{row['id']}",
            number,
            partial(forge.comment, number, text),
        )
        if made:
            asked.append(row["task_id"])
    return asked


async def _read(
    orchestrator: Orchestrator, forge: Forge, repository: str, open_issues: set[int]
) -> list[str]:
    """The comments since the last pass on the open issues' tasks, each acted on as
    rules/issue_tasks.reply says (a writer's role read once a pass)."""
    key = f"comments:{repository}"
    cursor = await orchestrator.forge_post(key)
    since = cursor["at"] if cursor else _iso(datetime.now(UTC) - LOOK_BACK)
    found = await anyio.to_thread.run_sync(forge.comments, since)
    prefix = issue_tasks.task_id(repository, 0)[:-1]
    asked = {}  # task -> when its open question was posted
    for row in await orchestrator.questions_under(prefix):
        if row["posted"]:
            asked[row["task_id"]] = row["posted_at"]
    roles: dict[str, bool] = {}
    said = []
    for comment in found:
        if comment.number in open_issues:
            task = issue_tasks.task_id(repository, comment.number)
            did = await _heard(orchestrator, forge, task, comment, asked.get(task), roles)
            said += [did] if did else []
    if found:
        await orchestrator.forge_done(key, max(c.created_at for c in found))
    elif cursor is None:
        await orchestrator.forge_done(key, since)
    return said


async def heard(
    orchestrator: Orchestrator, forge: Forge, repository: str, comment: IssueComment
) -> str:
    """One comment delivered by the webhook, acted on as a sync pass would ('' when it
    does nothing: its issue is no task, its task is over, or it is a comment like any)."""
    task = issue_tasks.task_id(repository, comment.number)
    status = (await orchestrator.tasks_under(task)).get(task)
    if status is None or status in FINAL:
        return ""
    posted = [r["posted_at"] for r in await orchestrator.questions_under(task)
              if r["task_id"] == task and r["posted"]]  # fmt: skip
    return await _heard(orchestrator, forge, task, comment, posted[-1] if posted else None, {})


async def _heard(
    orchestrator: Orchestrator, forge: Forge, task: str, comment: IssueComment,
    posted: str | None, roles: dict[str, bool],
) -> str:  # fmt: skip
    """What one comment on a task's issue does (rules/issue_tasks.reply): its author's role
    read only when it would matter, and once a pass (`roles`)."""
    # The same second counts: GitHub times comments to the second, and the question
    # itself is told apart by its mark.
    asked = posted is not None and comment.created_at >= posted
    if issue_tasks.reply(comment.body, True, asked)[0] == "":
        return ""  # a comment like any other: nothing to decide
    if comment.user not in roles:
        bot = comment.user.endswith("[bot]") or not comment.user
        role = "none" if bot else await anyio.to_thread.run_sync(forge.permission, comment.user)
        roles[comment.user] = role in issue_tasks.WRITERS
    kind, text = issue_tasks.reply(comment.body, roles[comment.user], asked)
    return await orchestrator.issue_comment(task, comment, kind, text)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
