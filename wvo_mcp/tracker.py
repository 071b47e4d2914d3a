"""A tracker's issues kept in step with the task graph (`wvo-mcp import github:OWNER/REPO`):
each open issue with the label is a task (rules/issue_tasks.py), created, or updated as
`import --update` updates a roadmap's (claimed, submitted or done work is never touched);
a closed issue's task is cancelled. Its id comes from the repository and the issue's
number, so a sync run twice, or on two hosts at once, makes nothing twice.

A person runs it, with their token: it acts with their authority, as `import` does."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio.to_thread

from wvo_mcp.errors import NotFound
from wvo_mcp.forge import Forge
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import issue_tasks
from wvo_mcp.rules.issue_tasks import Table
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services.roadmap_update import RoadmapUpdate

FINAL = (Status.DONE, Status.CANCELLED)


@dataclass
class Synced:
    issues: int  # labelled issues read, open and closed
    update: RoadmapUpdate  # what the open ones did to their tasks
    cancelled: list[str] = field(default_factory=list)  # tasks of issues closed since
    calls: int = 0  # requests the forge answered
    revived: list[str] = field(default_factory=list)  # cancelled, then their issue reopened


async def sync(
    orchestrator: Orchestrator,
    forge: Forge,
    repository: str,
    label: str,
    actor: str,
    table: Table = issue_tasks.LABELS,
) -> Synced:
    """One pass: the label's issues read, their tasks made to match."""
    before = forge.calls
    issues = await anyio.to_thread.run_sync(forge.issues, label)
    opened = [i for i in issues if i.state == "open"]
    numbers = {i.number for i in opened}
    specs = [
        TaskSpec.model_validate(issue_tasks.definition(repository, i, numbers, table))
        for i in sorted(opened, key=lambda i: i.number)
    ]
    # Closed, then reopened: wanted again.
    revived = await _move(orchestrator, repository, opened, actor,
                          lambda s: s == Status.CANCELLED, Status.PENDING, "reopened")  # fmt: skip
    update = await orchestrator.update_roadmap(specs, actor)
    closed = [i for i in issues if i.state != "open"]
    cancelled = await _move(orchestrator, repository, closed, actor,
                            lambda s: s not in FINAL, Status.CANCELLED, "closed")  # fmt: skip
    return Synced(len(issues), update, cancelled, forge.calls - before, revived)


async def _move(
    orchestrator: Orchestrator, repository: str, issues: Sequence[issue_tasks.Issue],
    actor: str, moves: Callable[[Status], bool], to: Status, why: str,
) -> list[str]:  # fmt: skip
    """Each issue's task that `moves` (by its status) moved `to`, as the person who closed or
    reopened the issue would (a holder, if any, is told its lease is lost)."""
    moved = []
    for issue in issues:
        task_id = issue_tasks.task_id(repository, issue.number)
        try:
            task = await orchestrator.get_task(task_id)
        except NotFound:
            continue
        if moves(task.status):
            await orchestrator.update_status(
                task_id, to, actor, None, f"its issue #{issue.number} was {why}", by_person=True
            )
            moved.append(task_id)
    return moved
