"""A task as it is created (TaskSpec, a batch, a schedule) and as the tools show it.

The inputs and the views of one task live together: their validators hold a task to the
rules it is stored by (its id a branch name, its metadata plain JSON, its verify_command one
the sandbox runs), and task_list's table takes its columns from the summary.
"""

import json
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.models.fields import (
    MAX_BATCH_BYTES,
    MAX_BATCH_TASKS,
    MAX_METADATA_BYTES,
    Name,
    NewTaskId,
    Score,
    TaskId,
    UtcDatetime,
    VerifyCommand,
    json_problem,
)
from wvo_mcp.models.notes import Note
from wvo_mcp.rules import schedules
from wvo_mcp.rules.bounds import check_command
from wvo_mcp.rules.transitions import Status
from wvo_mcp.rules.wsjf import Breakdown


class TaskSpec(BaseModel):
    # One task to create (a comment, not a docstring: a docstring would be sent to the
    # model in task_create's schema with every request).
    model_config = ConfigDict(extra="forbid")

    id: NewTaskId | None = Field(None, description="Omit to get a generated id")
    title: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    description: Annotated[str, StringConstraints(max_length=8000)] = ""
    epic_id: Name | None = None
    milestone_id: Name | None = None
    depends_on: Annotated[list[TaskId], Field(max_length=200)] = Field(
        default_factory=list, description="Ids that must be done first"
    )
    complexity: Annotated[int, Field(ge=1, le=10)] = 5
    business_value: Score = 5
    time_criticality: Score = 5
    risk_reduction: Score = 5
    job_size: Score | None = Field(None, description="Defaults to 2 x complexity")
    due_at: UtcDatetime | None = Field(None, description="With a time zone")
    tags: Annotated[list[Name], Field(max_length=20)] = Field(default_factory=list)
    requires_approval: bool = False
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    metadata: dict[str, Any] = Field(default_factory=dict)
    verify_command: VerifyCommand | None = Field(
        None, description="Must exit 0 in the sandbox for `done` (argv, or a sh -c string)"
    )
    not_before: UtcDatetime | None = None  # not claimable before; like due_at, with a zone

    @field_validator("metadata")
    @classmethod
    def _metadata_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        problem = json_problem(value, "metadata")
        if problem is not None:
            raise ValueError(problem)
        size = len(json.dumps(value, allow_nan=False))
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES}")
        return value

    @field_validator("verify_command")
    @classmethod
    def _verify_command_runs(cls, value: str | list[str] | None) -> str | list[str] | None:
        """The sandbox's own rule, so a command it would refuse is refused here, not at the
        first `done`."""
        if value is None:
            return value
        try:
            check_command(value, "verify_command")
        except ValidationFailed as exc:
            raise ValueError(str(exc)) from None
        return value


def _every(value: str) -> str:
    return schedules.check(value)


class ScheduledSpec(TaskSpec):
    # A roadmap's task that comes back (`every:`, a person's to set: the tools take
    # TaskSpec, which has no schedule). services/schedules.py keeps it.
    every: Annotated[str, StringConstraints(max_length=100), AfterValidator(_every)] | None = None

    @model_validator(mode="after")
    def _named(self) -> "ScheduledSpec":
        if self.every is not None and (self.id is None or len(self.id) > schedules.LONGEST_ID):
            raise ValueError(
                f"a task with `every` needs an id of at most {schedules.LONGEST_ID} characters "
                "(each time it comes back is a task named after it: <id>.<YYYYMMDD-HHMM>)"
            )
        return self


def _batch_small(tasks: list[TaskSpec]) -> list[TaskSpec]:
    # The fields as given (defaults left out), so the size is close to what was sent:
    # each task's JSON, plus the brackets and the commas between them.
    size = sum(len(t.model_dump_json(exclude_unset=True).encode()) for t in tasks) + len(tasks) + 1
    if size > MAX_BATCH_BYTES:
        raise ValueError(
            f"these {len(tasks)} tasks are {size} bytes as JSON; one task_create call takes at "
            f"most {MAX_BATCH_BYTES} bytes ({MAX_BATCH_BYTES // (1024 * 1024)} MiB): split the "
            "batch into several calls (tasks may depend on tasks an earlier call created), or "
            "have a person import it as a roadmap (`wvo-mcp import FILE`)"
        )
    return tasks


TaskBatch = Annotated[
    list[TaskSpec],
    Field(min_length=1, max_length=MAX_BATCH_TASKS),
    AfterValidator(_batch_small),
]


class TaskSummary(BaseModel):
    id: str
    title: str
    status: Status
    epic_id: str | None = None
    milestone_id: str | None = None
    complexity: int
    score: float
    attempts: int
    assigned_to: str | None = None


class Checkpoint(BaseModel):
    seq: int
    agent_id: str
    summary: str
    next_steps: str | None = None
    progress: int | None = None
    files: list[str] = Field(default_factory=list)
    created_at: str
    git_head: str | None = None
    git_ref: str | None = Field(None, description="Snapshot of the working tree at the time")
    sandbox_run: str | None = Field(None, description="The sandbox run attached to it")


class Event(BaseModel):
    at: str
    actor: str
    kind: str
    from_status: str | None = None
    to_status: str | None = None
    reason: str | None = None
    lease_epoch: int | None = None


class DependencyRef(BaseModel):
    id: str
    status: Status


class TaskDetail(TaskSummary):
    description: str
    business_value: int
    time_criticality: int
    risk_reduction: int
    job_size: int
    breakdown: Breakdown
    due_at: str | None = None
    tags: list[str]
    requires_approval: bool
    max_attempts: int
    not_before: str | None = None
    lease_expires_at: str | None = None
    lease_epoch: int
    metadata: dict[str, Any]
    verify_command: str | list[str] | None = None
    # "land": the autopilot lands it (its holder finishes with needs_review); "review": so,
    # once an agent other than its author approved the submitted commit.
    gate: Literal["land", "review"] | None = None
    submitted_commit: str | None = None
    submitted_by: str | None = None
    created_at: str
    updated_at: str
    completed_at: str | None = None
    dependencies: list[DependencyRef] = Field(default_factory=list)
    dependents: list[DependencyRef] = Field(default_factory=list)
    recent_events: list[Event] = Field(default_factory=list)
    latest_checkpoint: Checkpoint | None = None
    paused: str | None = Field(None, description="Who paused it (or its epic, or the fleet)")
    notes: list[Note] = Field(
        default_factory=list, description="A person's messages, questions and answers"
    )


class Scheduled(BaseModel):
    """A schedule (services/schedules.py): its newest task, and when the next comes."""

    id: str
    every: str
    last_task: str
    last_status: str | None  # None: that task is gone
    next_at: str  # once last_task is done or cancelled
    stopped: bool = False


class CreateResult(BaseModel):
    created: list[str]
    ready: list[str] = Field(description="Created tasks that can be claimed now")


class TaskPage(BaseModel):
    tasks: list[TaskSummary]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page")


TABLE_COLUMNS = [
    "id",
    "title",
    "status",
    "epic_id",
    "complexity",
    "score",
    "attempts",
    "assigned_to",
]


class TaskTable(BaseModel):
    """task_list's answer: a table, so each row does not repeat its field names."""

    columns: list[str] = Field(description=f"Each row's values in this order: {TABLE_COLUMNS}")
    rows: list[list[str | int | float | None]]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page")

    @classmethod
    def of(cls, page: TaskPage) -> "TaskTable":
        return cls(
            columns=TABLE_COLUMNS,
            rows=[[getattr(task, name) for name in TABLE_COLUMNS] for task in page.tasks],
            next_cursor=page.next_cursor,
        )
