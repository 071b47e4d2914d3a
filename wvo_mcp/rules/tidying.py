"""What `autopilot gc` may remove, judged from facts alone, each verdict with its reason (pure).

What `wvo-mcp autopilot gc` may remove, judged from facts alone (no I/O): a worker's
repository, a task's branch, a task's run logs, or a run's leftover scratch folder. A landed
task's repositories are tidied as it lands, by autopilot/repos.py:Repos.tidy.

Nothing is lost (issue 22): work goes only once its commits are reachable from the target,
or from what a landed queue entry brought in, or once a person cancelled its task. A live
lease or an open queue entry protects everything of its task; files nobody committed keep a
repository (but for those its HEAD's committed .gitignore ignores: git.judging.differs leaves them
out of `stray`), and so do files that cannot be judged (unreadable, or more than a judgement
may read: git.judging.Unjudged, said in `unreadable`); a live process keeps what it uses. Every
verdict carries a reason a person can check.

Carried out by `wvo_mcp/autopilot/gc.py`."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["repository", "branch", "logs", "scratch"]
SCRATCH_GRACE_S = 300.0  # a younger scratch folder (or planner repository) may be starting


@dataclass(frozen=True)
class Task:
    """What the database says of the task a candidate belongs to."""

    id: str
    status: str
    holder: str | None = None  # who holds its lease, while the lease lives
    queued: str | None = None  # its open queue entry's state (review, queued, testing, ...)
    cancelled_by: str | None = None  # the person who cancelled it (an agent's cancel: None)


@dataclass(frozen=True)
class Candidate:
    """One thing gc found, and the facts about it."""

    kind: Kind
    what: str  # the path, or the branch name
    name: str = ""  # the task its folder or branch names ('' : none)
    task: Task | None = None  # None: no task of that name in the database
    planner: bool = False  # a planner's repository (it belongs to no task)
    # Each ref (HEAD, a branch tip) -> where all its commits are reachable from, as a person
    # would check it; None: from nowhere gc knows.
    tips: Mapping[str, str | None] = field(default_factory=dict)
    looked_in: str = "a landed submission"  # where tips were looked for, said when not found
    note: str | None = None  # why it matters when its commits are nowhere else
    unreadable: str | None = None  # why its refs or files could not be read as data
    stray: tuple[str, ...] = ()  # files that are not its HEAD's (changed, added, removed)
    odd: str | None = None  # not what wvo-mcp makes there (a link, a file, a foreign name)
    users: tuple[str, ...] = ()  # live processes using it, e.g. "1234 (bwrap)"
    age_s: float | None = None  # since it last changed (scratch folders, planner repositories)
    checked_out: str | None = None  # a branch: the worktree that has it checked out
    kept_repositories: int = 0  # run logs: the task's repositories this clean-up keeps


@dataclass(frozen=True)
class Verdict:
    remove: bool
    reason: str


def keep(reason: str) -> Verdict:
    return Verdict(False, reason)


def remove(reason: str) -> Verdict:
    return Verdict(True, reason)


def judge(c: Candidate) -> Verdict:
    """Remove or keep `c`, and why."""
    if c.odd is not None:
        return keep(c.odd)
    if c.users:
        return keep(f"in use by a live process: {', '.join(c.users[:3])}")
    if c.kind == "scratch":
        return _scratch(c)
    if c.planner:
        return _planner(c)
    task = c.task
    if task is None:
        return keep(f"no task {c.name!r} in the database: nothing says its work landed")
    if task.holder is not None:
        return keep(f"task {task.id} is held by {task.holder} (a live lease)")
    if task.queued is not None:
        return keep(f"task {task.id}'s submission is in the merge queue ({task.queued})")
    if c.kind == "logs":
        return _logs(c, task)
    if c.kind == "branch" and c.checked_out is not None:
        return keep(f"checked out in {c.checked_out}")
    if c.unreadable is not None:
        return keep(c.unreadable)
    if c.stray:
        return keep(f"it has files nobody committed: {_few(c.stray)}")
    if task.cancelled_by is not None:
        return remove(f"task {task.id} was cancelled by {task.cancelled_by}")
    return _reached(c, c.note or f"task {task.id} is {task.status}")


def _reached(c: Candidate, otherwise: str) -> Verdict:
    """Removed when every tip's commits are reachable from somewhere that keeps them."""
    if not c.tips:
        return keep("it names no commit")
    missing = [ref for ref, where in c.tips.items() if where is None]
    if missing:
        return keep(f"{_few(missing)}: its commits are not all in {c.looked_in}; {otherwise}")
    places = "; ".join(sorted({where for where in c.tips.values() if where is not None}))
    return remove(f"{_few(list(c.tips))}: all its commits are in {places}")


def _logs(c: Candidate, task: Task) -> Verdict:
    if c.kept_repositories:
        return keep(f"{c.kept_repositories} of task {task.id}'s repositories stay: its logs "
                    "say what happened in them")  # fmt: skip
    if task.cancelled_by is not None:
        return remove(f"task {task.id} was cancelled by {task.cancelled_by}")
    if task.status == "done":
        return remove(f"task {task.id} is done and none of its repositories is left")
    return keep(f"task {task.id} is {task.status}: its logs say what its runs did")


def _scratch(c: Candidate) -> Verdict:
    if c.age_s is None or c.age_s < SCRATCH_GRACE_S:
        return keep(f"changed {c.age_s or 0:.0f} s ago: a run may be setting it up")
    return remove(f"no live process uses it and it has not changed for {c.age_s / 60:.0f} "
                  "min: left behind by a run that ended")  # fmt: skip


def _planner(c: Candidate) -> Verdict:
    """A planner run holds no lease: only the process scan and its age say it ended."""
    if c.kind == "logs" and c.kept_repositories:
        return keep(f"{c.kept_repositories} planner repositories stay: its logs say what "
                    "happened in them")  # fmt: skip
    if c.age_s is None or c.age_s < SCRATCH_GRACE_S:
        return keep(f"the planner's, changed {c.age_s or 0:.0f} s ago: a planner may run")
    if c.kind == "logs":
        return remove("the planner's logs, and none of its repositories is left")
    if c.unreadable is not None:
        return keep(c.unreadable)
    if c.stray:
        return keep(f"it has files nobody committed: {_few(c.stray)}")
    return _reached(c, "a planner's repository")


def _few(items: "list[str] | tuple[str, ...]", most: int = 5) -> str:
    return ", ".join(items[:most]) + (f" and {len(items) - most} more" if len(items) > most else "")
