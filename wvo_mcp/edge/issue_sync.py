"""Keeps a forge's labelled issues in step with their tasks, and talks with people on them.

A tracker's issues kept in step with the task graph (`wvo-mcp import github:OWNER/REPO`):
each open issue with the label is a task (rules/issue_tasks.py), created, or updated as
`import --update` updates a roadmap's (claimed, submitted or done work is never touched);
a closed issue's task is cancelled. Its id comes from the repository and the issue's
number, so a sync run twice, or on two hosts at once, makes nothing twice.

Only those who steer (rules/trust.py, asked through forge/authority.py) move a task: a new
issue becomes one when its author steers or whoever labelled it does, and its edits reach its task
only when its author steers (the forge does not say who edited a body; anyone who can edit
someone else's issue steers anyway); closing and reopening follow the issue whoever did it,
but for a close by the merge of its task's own pull request, which lands it instead, and a
close the forge says something else that landed made (a commit's or another pull request's
closing words): that task is kept, and a person is told and decides.
An issue that cannot be applied (its dependencies make a cycle or name an issue with no
task, its body is over the cap, or the store refuses it) is skipped with why: said once on
the issue, kept for `wvo-mcp status`, and every other issue syncs.

Then the conversation: an issue whose task landed is told once, whoever closed it (the
merge of its pull request, which says `Closes`, or this sync): commented on (its commit or
pull request named), then closed or labelled; an agent's open question is posted on its
issue; and the comments since the last pass are read, where a reply to a posted question
from someone who steers answers it and their `/wvo tell …` tells the task's holder, and
anyone else's is shown (services/issue_conversation).
Each write on the forge is claimed by one host first, so two hosts never both make it.

A person runs it, with their token: it acts with their authority, as `import` does.

Carries out `rules/graph.py` and `rules/text.py`."""

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import anyio.to_thread
from pydantic import ValidationError

from wvo_mcp.errors import Fault, ValidationFailed
from wvo_mcp.forge import Forge, IssueComment
from wvo_mcp.forge.authority import Authority
from wvo_mcp.models import TaskSpec, Unsynced
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import issue_tasks
from wvo_mcp.rules.graph import find_cycle
from wvo_mcp.rules.issue_tasks import Issue, Table
from wvo_mcp.rules.text import ForgeKind, quoted
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import issue_conversation
from wvo_mcp.services.roadmap_update import RoadmapUpdate

FINAL = (Status.DONE, Status.CANCELLED)
CONFIDENTIAL = ("it is confidential: its words make no task, whose text a public merge request "
                "may carry; a task made of it before is cancelled")  # fmt: skip
LOOK_BACK = timedelta(minutes=10)  # a first pass reads comments from this long ago (clock skew)
STEER = "docs/forge.md"  # where a person reads who steers


@dataclass(frozen=True)
class Skipped:
    """An open issue this pass did not apply: no task made, or its task left as it was."""

    number: int
    task: str
    why: str
    made: bool  # its task exists (and stays as it was)
    fresh: bool = False  # said on the issue in this pass (news)


@dataclass(frozen=True)
class Held:
    """An issue changed since its task was made, by an author who does not steer."""

    number: int
    task: str
    author: str
    fields: tuple[str, ...]
    fresh: bool = False  # recorded in this pass (news)


@dataclass
class Synced:
    issues: int  # labelled issues read, open and closed
    update: RoadmapUpdate  # what the open ones did to their tasks
    cancelled: list[str] = field(default_factory=list)  # tasks of issues closed since
    calls: int = 0  # requests the forge answered
    revived: list[str] = field(default_factory=list)  # cancelled, then their issue reopened
    finished: list[str] = field(default_factory=list)  # open issues told they landed
    told: list[str] = field(default_factory=list)  # closed already (the merge, a person): told
    # Closed by the merge of their task's pull request, which the autopilot has not seen
    # yet: not cancelled (#issue, #pull request).
    merging: list[tuple[int, int]] = field(default_factory=list)
    # Closed by something else that landed (#issue, what): kept, for a person to decide.
    kept: list[tuple[int, str]] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)  # tasks whose question was posted
    said: list[str] = field(default_factory=list)  # what comments did, in words
    skipped: list[Skipped] = field(default_factory=list)  # open issues not applied
    held: list[Held] = field(default_factory=list)  # edits by authors who do not steer
    kind: ForgeKind = "github"  # whose words the sync's report uses


async def sync(
    orchestrator: Orchestrator,
    forge: Forge,
    repository: str,
    label: str,
    actor: str,
    table: Table = issue_tasks.LABELS,
    on_landed: str | None = None,
    authority: Authority | None = None,
) -> Synced:
    """One pass: the label's issues read, their tasks made to match (as far as who steers
    allows, and skipping any issue that cannot be applied), then the conversation (a landed
    task's issue closed, or labelled `on_landed`). `authority`: who steers, kept across
    passes by the caller (default: one for this pass, from the settings)."""
    before = forge.calls
    authority = authority or Authority(forge, orchestrator.settings.trust)
    issues = await anyio.to_thread.run_sync(forge.issues, label)
    # A confidential issue (GitLab's) is seen by members alone: its words make no task, whose
    # text a public merge request may carry, and a task made before it became one is stopped.
    secret = [i for i in issues if i.state == "open" and i.confidential]
    opened = sorted((i for i in issues if i.state == "open" and not i.confidential),
                    key=lambda i: i.number)  # fmt: skip
    numbers = {i.number for i in opened}
    labelled = {i.number for i in issues}  # a closed one's task is over: still a dependency
    # One read of every issue task's status serves the moves below: each move touches only
    # tasks whose status the others leave alone.
    kind = forge.kind  # whose ids the tasks get: gh/… or gl/…
    status = await orchestrator.tasks_under(issue_tasks.task_id(repository, 0, kind)[:-1])
    # Closed, then reopened: wanted again.
    revived = await _move(orchestrator, kind, repository, opened, status, actor,
                          lambda s: s == Status.CANCELLED, Status.PENDING, "reopened")  # fmt: skip
    wanted, held, skipped = await _sorted(authority, repository, label, opened, labelled,
                                          status, table)  # fmt: skip
    skipped.update({i.number: CONFIDENTIAL for i in secret})
    update = await _apply(orchestrator, kind, repository, wanted, set(status), skipped, actor)
    closed = [i for i in issues if i.state != "open"]
    merging = await closed_by_merge(orchestrator, forge, repository, closed, status)
    rest = [i for i in closed if i.number not in dict(merging)]
    kept = await closed_elsewhere(orchestrator, forge, repository, rest, status)
    cancelled = await _move(orchestrator, kind, repository,
                            [i for i in rest if i.number not in dict(kept)], status, actor,
                            lambda s: s not in FINAL, Status.CANCELLED, "closed")  # fmt: skip
    cancelled += await _move(orchestrator, kind, repository, secret, status, actor,
                             lambda s: s not in FINAL, Status.CANCELLED,
                             "made confidential")  # fmt: skip
    done = Synced(len(issues), update, cancelled, 0, revived, merging=merging, kept=kept,
                  kind=kind)  # fmt: skip
    done.held = await _held(orchestrator, kind, repository, held, labelled, table, actor)
    done.skipped = await _skipped(orchestrator, forge, repository, skipped, status)
    done.finished, done.told = await _finish(orchestrator, forge, repository, issues, on_landed)
    done.asked = await _ask(orchestrator, forge, repository, numbers)
    done.said = await _read(orchestrator, authority, repository, numbers)
    done.calls = forge.calls - before
    return done


async def _sorted(
    authority: Authority, repository: str, label: str, opened: Sequence[Issue],
    labelled: set[int], status: dict[str, str], table: Table,
) -> tuple[dict[int, TaskSpec], list[Issue], dict[int, str]]:  # fmt: skip
    """The open issues as this pass takes them: the definitions to apply, the issues whose
    author does not steer (their edits are not applied), and the skipped ones with why."""
    wanted: dict[int, TaskSpec] = {}
    held: list[Issue] = []
    skipped: dict[int, str] = {}

    async def steers(login: str) -> bool:
        return await anyio.to_thread.run_sync(authority.steers, login)

    kind = authority.forge.kind
    for issue in opened:
        made = issue_tasks.task_id(repository, issue.number, kind) in status
        # Who labelled it is read only for an issue its author does not steer: one request
        # an issue, where a first import of a backlog by its own writers costs none.
        if not made and not await steers(issue.author):
            who = await anyio.to_thread.run_sync(authority.forge.labelled_by, issue.number, label)
            if who is None:
                named = issue_tasks.FORGE_NAMES[kind]
                skipped[issue.number] = (f"labelled {label!r} by no account {named} names, so by "
                                         f"no one who steers ({STEER})")  # fmt: skip
                continue
            if not await steers(who):
                skipped[issue.number] = f"labelled by @{who}, who does not steer ({STEER})"
                continue
        elif made and not await steers(issue.author):
            held.append(issue)
            continue
        spec, why = _spec(kind, repository, issue, labelled, table)
        if spec is None:
            skipped[issue.number] = why
        else:
            wanted[issue.number] = spec
    return wanted, held, skipped


def _spec(
    kind: ForgeKind, repository: str, issue: Issue, labelled: set[int], table: Table
) -> tuple[TaskSpec | None, str]:
    """The task an issue defines, or why it defines none."""
    if issue_tasks.too_long(issue):
        return None, issue_tasks.too_long(issue)
    try:
        found = issue_tasks.definition(repository, issue, labelled, table, kind)
        return TaskSpec.model_validate(found), ""
    except ValidationError as exc:
        said = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'it'}: {e['msg']}"
                         for e in exc.errors()[:3])  # fmt: skip
        return None, f"it makes no valid task ({said})"


def _settle(
    kind: ForgeKind, repository: str, wanted: dict[int, TaskSpec], known: set[str],
    skipped: dict[int, str],
) -> None:  # fmt: skip
    """`wanted` cut to the definitions the store can take together, as far as this pass
    sees (pure): each depends only on tasks that exist or are made here, and none is on a
    cycle. Each one cut goes to `skipped` with why."""
    while True:
        made = known | {str(spec.id) for spec in wanted.values()}
        waiting = {n: [d for d in spec.depends_on if d not in made] for n, spec in wanted.items()}
        for number, missing in waiting.items():
            if missing:
                skipped[number] = _waits(kind, repository, missing[0], skipped)
                del wanted[number]
        if any(waiting.values()):
            continue  # those cut may leave others waiting on nothing: look again
        cycle = find_cycle({str(spec.id): spec.depends_on for spec in wanted.values()})
        if not cycle:
            return
        numbers = {str(spec.id): n for n, spec in wanted.items()}
        path = " -> ".join(f"#{numbers[t]}" for t in cycle)
        for task in cycle[:-1]:
            number = numbers[task]
            if number in wanted:
                linked = 'an "is blocked by" link' if kind == "gitlab" else "sub-issue"
                skipped[number] = (f"its dependencies make a cycle, {path}: take one of "
                                   "those references out (a \"blocked by\", \"depends on\", "
                                   f"task list item or {linked})")  # fmt: skip
                del wanted[number]


def _waits(kind: ForgeKind, repository: str, task: str, skipped: dict[int, str]) -> str:
    number = issue_tasks.number_of(repository, task, kind)
    if number in skipped:
        return f"it waits for #{number}, which is not synced either"
    return (f"it waits for #{number}, which was closed before any sync made it a task: take "
            f"the reference out, or reopen #{number}")  # fmt: skip


async def _apply(
    orchestrator: Orchestrator, kind: ForgeKind, repository: str, wanted: dict[int, TaskSpec],
    known: set[str], skipped: dict[int, str], actor: str,
) -> RoadmapUpdate:  # fmt: skip
    """The definitions applied in one update, less any issue the store refuses: what
    `_settle` cannot see (an edge of a task this pass does not change) is found by asking
    the store, without writing, which issue's definition makes it refuse."""
    while True:
        _settle(kind, repository, wanted, known, skipped)
        specs = _in_order(list(wanted.values()))
        try:
            return await orchestrator.update_roadmap(specs, actor)
        except ValidationFailed:
            found = await _refused(orchestrator, specs, actor)
            if found is None:  # the store changed meanwhile: the next pass sees it
                raise
            spec, why = found
            number = issue_tasks.number_of(repository, str(spec.id), kind)
            assert number is not None
            skipped[number] = f"the store refuses its definition: {why}"
            del wanted[number]


def _in_order(specs: list[TaskSpec]) -> list[TaskSpec]:
    """Dependencies first (each spec after those it depends on among `specs`), else as
    given: a prefix of the list then stands on its own."""
    by_id = {str(spec.id): spec for spec in specs}
    placed: dict[str, TaskSpec] = {}

    def place(spec: TaskSpec, seen: frozenset[str]) -> None:
        if str(spec.id) in placed or str(spec.id) in seen:
            return
        for dep in spec.depends_on:
            if dep in by_id:
                place(by_id[dep], seen | {str(spec.id)})
        placed[str(spec.id)] = spec

    for spec in specs:
        place(spec, frozenset())
    return list(placed.values())


async def _refused(
    orchestrator: Orchestrator, specs: list[TaskSpec], actor: str
) -> tuple[TaskSpec, str] | None:
    """The definition that makes the store refuse `specs` (a dry run of the shortest
    refused prefix, found by halving), with the refusal; None when it refuses nothing."""
    try:
        await orchestrator.update_roadmap(specs, actor, dry_run=True)
        return None
    except ValidationFailed as exc:
        why = str(exc)
    good, bad = 0, len(specs)  # the prefix of `good` is taken, that of `bad` refused
    while bad - good > 1:
        middle = (good + bad) // 2
        try:
            await orchestrator.update_roadmap(specs[:middle], actor, dry_run=True)
            good = middle
        except ValidationFailed as exc:
            bad, why = middle, str(exc)
    return specs[bad - 1], why


async def _held(
    orchestrator: Orchestrator, kind: ForgeKind, repository: str, held: Sequence[Issue],
    labelled: set[int], table: Table, actor: str,
) -> list[Held]:  # fmt: skip
    """The issues whose author does not steer and that differ from their task: each such
    change recorded once on its task and in the inbox, as an outsider's words."""
    differ: dict[int, tuple[str, ...]] = {}
    specs = []
    for issue in held:
        spec, _ = _spec(kind, repository, issue, labelled, table)
        if spec is None:  # its task was made from a valid definition: this one differs
            differ[issue.number] = ("description",)
        else:
            specs.append(spec)
    for entry in await _differences(orchestrator, specs, actor):
        number = issue_tasks.number_of(repository, entry[0], kind)
        if number is not None:
            differ[number] = entry[1]
    found = []
    for issue in held:
        if issue.number not in differ:
            continue
        task = issue_tasks.task_id(repository, issue.number, kind)
        fields = differ[issue.number]
        seen = f"{issue.title}\0{issue.body}\0{sorted(issue.labels)}".encode()
        key = f"unapplied:{task}:{hashlib.sha256(seen).hexdigest()[:16]}"
        fresh = await orchestrator.forge_claim(key)
        if fresh:
            what = (f"changed issue #{issue.number} ({', '.join(fields)}); not applied to "
                    f"its task: its author does not steer ({STEER})")  # fmt: skip
            await orchestrator.outsider_said(task, issue.author, what, issue.url)
            await orchestrator.forge_done(key, _iso(datetime.now(UTC)))
        found.append(Held(issue.number, task, issue.author, fields, fresh))
    return found


async def _differences(
    orchestrator: Orchestrator, specs: list[TaskSpec], actor: str
) -> list[tuple[str, tuple[str, ...]]]:
    """Each task whose definition differs from its spec's, and in which fields (a dry run:
    nothing written). A spec the store would refuse differs from its task, which it took."""
    if not specs:
        return []
    try:
        found = await orchestrator.update_roadmap(specs, actor, dry_run=True)
    except ValidationFailed:
        if len(specs) == 1:
            return [(str(specs[0].id), ("depends_on",))]
        return [d for spec in specs for d in await _differences(orchestrator, [spec], actor)]
    return [(e.id, e.fields) for e in [*found.changed, *found.skipped]]


async def _skipped(
    orchestrator: Orchestrator, forge: Forge, repository: str, skipped: dict[int, str],
    status: dict[str, str],
) -> list[Skipped]:  # fmt: skip
    """Each skipped issue said once on the issue (per reason), and the repository's list of
    them kept for `wvo-mcp status` (written only when it changes)."""
    # GitHub's rows under the repository's path as they always were; another forge's apart,
    # should a project there share its path.
    where = repository if forge.kind == "github" else f"{forge.kind}:{repository}"
    was = {u.issue: u for u in await orchestrator.unsynced(where)}
    now = _iso(datetime.now(UTC))
    found, kept = [], []
    for number, why in sorted(skipped.items()):
        task = issue_tasks.task_id(repository, number, forge.kind)
        made = task in status
        earlier = was.get(number)
        same = earlier is not None and (earlier.why, earlier.made) == (why, made)
        posted = None
        if not same:  # else said before, by this host or another
            digest = hashlib.sha256(f"{made}:{why}".encode()).hexdigest()[:16]
            note = f"skipped:{task}:{digest}"
            text = _skip_comment(task, why, made, note, forge.kind)
            posted = await _write(orchestrator, forge, note, number,
                                  partial(forge.comment, number, text))  # fmt: skip
        since = earlier.since if earlier is not None and same else now
        kept.append(Unsynced(repository=where, issue=number, task=task, why=why,
                             made=made, since=since))  # fmt: skip
        found.append(Skipped(number, task, why, made, posted is not None))
    if kept != list(was.values()):
        await orchestrator.keep_unsynced(where, kept)
    return found


def _skip_comment(task: str, why: str, made: bool, key: str, kind: ForgeKind) -> str:
    """What is said on a skipped issue: why, quoted for the forge (it names accounts and
    issues, which should neither mention nor link, and may quote an issue's words)."""
    what = (f"Its changes are not applied to its task `{task}`, which stays as it was"
            if made else "It is not made a task")  # fmt: skip
    return (
        f"**wvo-mcp did not sync this issue.** {what}:\n\n{quoted(why, kind)}\n\n"
        "Every other labelled issue syncs; this one is tried again on every pass, and syncs "
        f"once this is fixed.\n<!-- {issue_tasks.MARK}{key} -->"
    )


async def _move(
    orchestrator: Orchestrator, kind: ForgeKind, repository: str,
    issues: Sequence[issue_tasks.Issue], status: dict[str, str], actor: str,
    moves: Callable[[Status], bool], to: Status, why: str,
) -> list[str]:  # fmt: skip
    """Each issue's task that `moves` (by its status) moved `to`, as the person who closed or
    reopened the issue would (a holder, if any, is told its lease is lost)."""
    moved = []
    for issue in issues:
        task_id = issue_tasks.task_id(repository, issue.number, kind)
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


async def closed_elsewhere(
    orchestrator: Orchestrator, forge: Forge, repository: str, closed: Sequence[Issue],
    status: dict[str, str],
) -> list[tuple[int, str]]:  # fmt: skip
    """The closed issues whose task is not over and which the forge says something that
    landed closed (a commit's closing words, another pull request's: forge.closer), each
    with what: a worker's or anyone's words in a commit are not a person's decision, so the
    task is kept and a person told, once, on the task and in the inbox. A request for each
    such issue, and none in a pass where no closed issue's task is still open (the task's
    own merge is closed_by_merge's, asked first)."""
    kept = []
    for issue in closed:
        task_id = issue_tasks.task_id(repository, issue.number, forge.kind)
        if status.get(task_id) in (None, *FINAL):
            continue
        what = await anyio.to_thread.run_sync(forge.closer, issue.number)
        if what is None:
            continue
        kept.append((issue.number, what))
        said = (f"#{issue.number} was closed by {what}, not by its task's own landing: its "
                f"task is kept. Cancel it (`wvo-mcp cancel {task_id}`) or reopen the issue; "
                "otherwise it lands as usual")  # fmt: skip
        key = f"closed:{forge.kind}:{repository}#{issue.number}:{what}"
        await orchestrator.outsider_said(task_id, "forge", said, "", key=key)
    return kept


async def closed_by_merge(
    orchestrator: Orchestrator, forge: Forge, repository: str, closed: Sequence[Issue],
    status: dict[str, str],
) -> list[tuple[int, int]]:  # fmt: skip
    """The closed issues whose task is not over and whose pull request (merge request) here
    has merged, with its number: the forge closed each at the merge, and the autopilot has
    not seen the merge yet (it looks every --forge-poll, or it is not running). Their tasks
    land once it looks, so they are not cancelled. A request for each open pull request of
    such a task: none in a pass where no closed issue's task is still open."""
    waiting = {
        issue_tasks.task_id(repository, i.number, forge.kind): i.number
        for i in closed
        if status.get(issue_tasks.task_id(repository, i.number, forge.kind)) not in (None, *FINAL)
    }
    if not waiting:
        return []
    prefix = issue_tasks.task_id(repository, 0, forge.kind)[:-1]
    found = []
    for row in await orchestrator.db.read(partial(issue_conversation.open_pulls, prefix=prefix)):
        number = waiting.get(row["task_id"])
        if number is None or not issue_tasks.pull_here(str(row["url"]), repository, forge.kind):
            continue
        pull = await anyio.to_thread.run_sync(forge.pull, int(row["number"]))
        same = pull.url.rstrip("/").lower() == str(row["url"]).rstrip("/").lower()
        if pull.merged and same:  # this project's, not a deeper one's of the same number
            found.append((number, pull.number))
    return found


async def _finish(
    orchestrator: Orchestrator, forge: Forge, repository: str, issues: Sequence[Issue],
    label: str | None,
) -> tuple[list[str], list[str]]:  # fmt: skip
    """Each labelled issue whose task is done and that was not told yet: a comment naming
    what landed, then, still open, closed (or labelled `label`); closed already (by the merge
    of its task's pull request, or by a person), labelled `label` where asked. Told once
    across passes, processes and hosts: the `landed:` write is claimed first and marked
    done after (one query finds those not done). Answers the open ones and the closed."""
    prefix = issue_tasks.task_id(repository, 0, forge.kind)[:-1]
    untold = set(await orchestrator.db.read(partial(issue_conversation.untold, prefix=prefix)))
    finished: list[str] = []
    told: list[str] = []
    for issue in issues:
        task = issue_tasks.task_id(repository, issue.number, forge.kind)
        if task not in untold:
            continue
        row = await orchestrator.task_landed(task)
        if row is None:  # done without the landing queue
            text = issue_tasks.landed_comment(task, None, "", None)
        else:
            commit = row["new"] or row["commit_sha"]
            text = issue_tasks.landed_comment(task, commit, row["target"], row["url"])
        open_ = issue.state == "open"

        def tell(number: int = issue.number, text: str = text, open_: bool = open_) -> IssueComment:
            made = forge.comment(number, text)
            if label or open_:  # closed already, it is left so
                forge.finish_issue(number, label)
            return made

        if await _write(orchestrator, forge, f"landed:{task}", issue.number, tell):
            (finished if open_ else told).append(f"#{issue.number}")
    return finished, told


async def _ask(
    orchestrator: Orchestrator, forge: Forge, repository: str, open_issues: set[int]
) -> list[str]:
    """Each open question of an open issue's task, posted on the issue once."""
    prefix = issue_tasks.task_id(repository, 0, forge.kind)[:-1]
    asked = []
    for row in await orchestrator.questions_under(prefix):
        number = issue_tasks.number_of(repository, row["task_id"], forge.kind)
        if row["posted"] or number not in open_issues:
            continue
        text = issue_tasks.question_comment(row["task_id"], row["body"], row["id"], forge.kind)
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
    orchestrator: Orchestrator, authority: Authority, repository: str, open_issues: set[int]
) -> list[str]:
    """The comments since the last pass on the open issues' tasks, each acted on as
    rules/issue_tasks.reply says (whether its author steers asked of `authority`)."""
    kind = authority.forge.kind
    # GitHub's key as it always was; another forge's apart, should a project share its path.
    key = f"comments:{repository}" if kind == "github" else f"comments:{kind}:{repository}"
    cursor = await orchestrator.forge_post(key)
    since = cursor["at"] if cursor else _iso(datetime.now(UTC) - LOOK_BACK)
    found = await anyio.to_thread.run_sync(authority.forge.comments, since)
    prefix = issue_tasks.task_id(repository, 0, kind)[:-1]
    asked = {}  # task -> when its open question was posted
    for row in await orchestrator.questions_under(prefix):
        if row["posted"]:
            asked[row["task_id"]] = row["posted_at"]
    said = []
    for comment in found:
        if comment.number in open_issues:
            task = issue_tasks.task_id(repository, comment.number, kind)
            did = await _heard(orchestrator, authority, task, comment, asked.get(task))
            said += [did] if did else []
    if found:
        await orchestrator.forge_done(key, max(c.created_at for c in found))
    elif cursor is None:
        await orchestrator.forge_done(key, since)
    return said


async def heard(
    orchestrator: Orchestrator, authority: Authority, repository: str, comment: IssueComment
) -> str:
    """One comment delivered by the webhook, acted on as a sync pass would ('' when it
    does nothing: its issue is no task, its task is over, or it is a comment like any)."""
    task = issue_tasks.task_id(repository, comment.number, authority.forge.kind)
    status = (await orchestrator.tasks_under(task)).get(task)
    if status is None or status in FINAL:
        return ""
    posted = [r["posted_at"] for r in await orchestrator.questions_under(task)
              if r["task_id"] == task and r["posted"]]  # fmt: skip
    return await _heard(orchestrator, authority, task, comment, posted[-1] if posted else None)


async def _heard(
    orchestrator: Orchestrator, authority: Authority, task: str, comment: IssueComment,
    posted: str | None,
) -> str:  # fmt: skip
    """What one comment on a task's issue does (rules/issue_tasks.reply): whether its author
    steers asked only when it would matter (an account GitHub does not know is a reader)."""
    # The same second counts: GitHub times comments to the second, and the question
    # itself is told apart by its mark.
    asked = posted is not None and comment.created_at >= posted
    if issue_tasks.reply(comment.body, True, asked)[0] == "":
        return ""  # a comment like any other: nothing to decide
    steers = await anyio.to_thread.run_sync(authority.steers, comment.user)
    kind, text = issue_tasks.reply(comment.body, steers, asked)
    return await orchestrator.issue_comment(task, comment, kind, text)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
