"""Typed inputs and outputs of the public contract (MCP tools and CLI share them)."""

import functools
import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import to_jsonable_python

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules import schedules
from wvo_mcp.rules.bounds import check_command
from wvo_mcp.rules.routing import BreakerState, PassedOverReason
from wvo_mcp.rules.transitions import Status
from wvo_mcp.rules.wsjf import Breakdown

TaskId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"),
]


def _names_a_branch(task_id: str) -> str:
    """A new task's id: its autopilot branch (wvo/<id>) and refs must be git names."""
    if task_id.endswith("."):
        raise ValueError(
            f"task id {task_id!r} ends with '.', which git refuses at the end of a branch "
            "name (wvo/<id>): end a task id with a letter, a digit or one of _ - : /"
        )
    return task_id


# An id a new task may take (task_create, import): any TaskId that makes a branch name.
NewTaskId = Annotated[TaskId, AfterValidator(_names_a_branch)]
AgentId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Score = Annotated[int, Field(ge=1, le=20)]
StatusName = Literal[
    "pending",
    "in_progress",
    "awaiting_approval",
    "needs_review",
    "blocked",
    "done",
    "failed",
    "cancelled",
]

MAX_METADATA_BYTES = 16_384
# As deep as an MCP frame can nest at all (the SDK's JSON limit is 200); a roadmap file could
# nest deeper, and json.dumps would then fail with a RecursionError instead of refusing.
MAX_METADATA_DEPTH = 200
# One task_create call, its tasks as compact JSON (the fields given, UTF-8). A person's
# roadmap import (`wvo-mcp import`) is not capped this way.
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_BATCH_TASKS = 5000
VerifyCommand = (
    Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    | Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=4000)]],
        Field(min_length=1, max_length=200),
    ]
)


def _without_nul(value: str) -> str:
    if "\0" in value:
        raise ValueError(
            "contains a NUL character; a path is text without NUL (\\0): give a folder "
            "inside the workspace root (relative to it, or absolute), or omit it"
        )
    return value


# A folder a tool is asked to work in. Path functions raise on a NUL (ValueError: embedded
# null byte) instead of refusing, so it is refused here, where the input is typed.
FolderPath = Annotated[
    str, StringConstraints(min_length=1, max_length=1000), AfterValidator(_without_nul)
]


def _in_utc(moment: datetime) -> datetime:
    """The moment in UTC, as the store writes it. A far offset at either end of the calendar
    moves it out of the years Python's dates hold (1-9999): refused here, not an
    OverflowError when it is written."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{moment.isoformat()} is outside the dates that can be stored: once converted to "
            "UTC it must fall from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
        ) from None


# A point in time an agent or a roadmap gives: with a time zone, representable in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]


def _not_finite(number: float) -> str:
    return "NaN" if math.isnan(number) else "Infinity" if number > 0 else "-Infinity"


def json_problem(value: object, where: str) -> str | None:
    """Why `value` is not plain JSON, naming the place (`where.key.0`), or None (pure). An
    MCP frame may carry NaN and Infinity literals and a YAML roadmap dates, bytes, sets and
    non-string keys: none is JSON, so SQLite's json_valid and every reader would reject the
    stored text. Iterative, so depth cannot exhaust the stack."""
    pending: list[tuple[object, str, int]] = [(value, where, 0)]
    while pending:
        item, path, depth = pending.pop()
        if isinstance(item, dict | list) and depth >= MAX_METADATA_DEPTH:
            return (
                f"{where} is nested more than {MAX_METADATA_DEPTH} levels deep; flatten it to "
                f"at most {MAX_METADATA_DEPTH}"
            )
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    return (
                        f"{path} has the key {key!r} ({type(key).__name__}); the keys of JSON "
                        "objects are strings (quote it)"
                    )
                pending.append((inner, f"{path}.{key}", depth + 1))
        elif isinstance(item, list):
            pending.extend((inner, f"{path}.{n}", depth + 1) for n, inner in enumerate(item))
        elif isinstance(item, float) and not math.isfinite(item):
            text = _not_finite(item)
            return (
                f"{path} is {text}: JSON numbers must be finite (NaN, Infinity and -Infinity "
                f'are not JSON); give a finite number, or the string "{text}"'
            )
        elif item is not None and not isinstance(item, str | int | float):  # bool is an int
            return (
                f"{path} holds a {type(item).__name__} ({str(item)[:40]!r}), which JSON has "
                "no form for; give an object, array, string, finite number, true, false or "
                "null (quote a date: '2030-01-31')"
            )
    return None


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


class RankedTask(BaseModel):
    """A claimable task as plan_next shows it: enough to choose; task_get has the rest."""

    id: str
    title: str
    epic_id: str | None = None
    score: float
    breakdown: Breakdown | None = Field(None, description="Only in reports; task_get has it")
    route: str | None = Field(None, description="With explain: where routing sends it, and why")


class ClaimedTask(BaseModel):
    """What an agent needs to start on a task it claimed."""

    id: str
    title: str
    description: str = ""
    epic_id: str | None = None
    milestone_id: str | None = None
    complexity: int
    score: float
    tags: list[str] = Field(default_factory=list)
    due_at: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


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


class Note(BaseModel):
    """A person's message to a task's holder, an agent's question, a person's answer, or
    the autopilot's drain (to the worker it runs on the task)."""

    task_id: str
    kind: Literal["tell", "pause", "redirect", "question", "answer", "drain"]
    text: str
    author: str
    at: str

    @property
    def an_agents(self) -> bool:
        """An agent's words (its question): context, never a person's to follow. A person
        (or the autopilot, for a drain) writes every other kind."""
        return self.kind == "question"


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


class Told(BaseModel):
    tasks: list[str] = Field(description="The tasks whose holders (now or next) receive it")
    message: str


class PauseResult(BaseModel):
    scope: Literal["task", "epic", "fleet"]
    key: str
    paused: bool = Field(description="Whether it is paused now")
    told: list[str] = Field(description="Tasks whose holders were told to checkpoint and stop")
    message: str


class Question(BaseModel):
    task_id: str
    title: str
    question: str
    asked_by: str
    asked_at: str


class Outsider(BaseModel):
    """Words on the forge from someone who does not steer (rules/trust.py): shown, never
    acted on."""

    task_id: str
    title: str
    who: str
    said: str
    at: str


class Unsynced(BaseModel):
    """An open issue the sync could not apply (edge/issue_sync.py), and why."""

    repository: str
    issue: int
    task: str
    why: str
    made: bool = Field(description="Its task exists, and stays as it was")
    since: str


class Inbox(BaseModel):
    questions: list[Question]
    outsiders: list[Outsider] = Field(
        default_factory=list, description="Newest first: reviews and comments not acted on"
    )


class QuarantinedTest(BaseModel):
    """A flaky test whose failure alone does not block a landing, until it expires."""

    test: str = Field(description="As its JUnit report names it: classname::name")
    evidence: str
    added_by: str
    added_at: str
    expires_at: str
    live: bool = Field(description="Not expired yet")

    @property
    def by(self) -> str:
        """Who added it, as a person reads it: the autopilot's entries are suggestions."""
        return "autopilot (suggested)" if self.added_by == "autopilot" else self.added_by


class CheckFigures(BaseModel):
    """A landing check's record: its first runs on a tree, the failures among them, the
    flakes (failures that did not come back on a rerun) and what the reruns cost."""

    command: str
    runs: int
    failures: int
    flakes: int
    flake_rate: float = Field(description="flakes / runs")
    reruns: int
    rerun_seconds: float


class Flake(BaseModel):
    """A check's failure that did not come back on a rerun of the same tree."""

    target: str
    command: str
    tree: str
    tests: list[str] = Field(description="The tests that failed, from its JUnit report")
    reruns: int = Field(description="Runs after the failure, up to its pass")
    at: str


class GateFigures(BaseModel):
    """What the landing gate knows of its checks' flakes (`wvo-mcp quarantine`, status)."""

    checks: list[CheckFigures]
    quarantine: list[QuarantinedTest]
    flakes: list[Flake] = Field(default_factory=list, description="The latest, newest first")


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


class QueueCounts(BaseModel):
    ready: int = Field(description="Claimable now (including lease_expired)")
    lease_expired: int = Field(description="In progress, but the holder's lease expired")
    waiting_on_dependencies: int
    backing_off: int = Field(
        description="Pending, ready after a retry back-off or at their not_before time"
    )
    by_status: dict[str, int] = Field(description="Tasks per status; statuses with none left out")
    wip_global_used: int
    wip_global_limit: int
    wip_agent_used: int
    wip_agent_limit: int
    wip_remaining: int = Field(description="Claims this agent can still make now")


class PlanNextResult(BaseModel):
    agent_id: str
    tasks: list[RankedTask]
    counts: QueueCounts
    routed_for: str | None = Field(
        None, description="The agent's tier: only tasks routing sends to it are listed"
    )
    route_reason: str | None = Field(None, description="Why the first task routes to that tier")
    paused: str | None = Field(None, description="What a person paused, left out of the list")


ClaimRefusal = Literal[
    "no_ready_task",
    "paused",
    "agent_wip_limit",
    "global_wip_limit",
    "epic_wip_limit",
    "task_not_ready",
    "no_task_for_tier",
    "claim_failed",  # plan_update's claim_next only: the move stands, the claim raised
    "busy",  # past capacity: nothing was done; come back after retry_after_s
]


class ClaimRoute(BaseModel):
    """Where routing sent this grant: the provider budget it counts against."""

    provider: str
    tier: str
    model: str
    estimated_tokens: int
    estimated_cost: float
    reason: str


class Asked(BaseModel):
    """The answer of a holder's call, which may say its notes were asked for already."""

    # The agent found to have no person's notes due in the call's own transaction (its
    # answer then needs no lookup of its own: services/notes.py); None: not looked for.
    _no_notes_for: str | None = PrivateAttr(default=None)


class ClaimResult(Asked):
    claimed: bool
    reason: ClaimRefusal | None = None
    message: str = ""
    agent_id: str
    task: ClaimedTask | None = None
    lease_token: str | None = Field(None, description="Pass with heartbeat/checkpoint/plan_update")
    lease_expires_at: str | None = None
    lease_seconds: int | None = None
    attempt: int | None = Field(None, description="1 for the first try")
    last_checkpoint: Checkpoint | None = None
    route: ClaimRoute | None = Field(None, description="Only for agents that declared a model")
    retry_after_s: float | None = Field(
        None, description="With reason busy: claim again after this many seconds"
    )
    # Not part of the result: tells telemetry that this claim took over an expired lease.
    _took_over_expired: bool = PrivateAttr(default=False)


class LeaseResult(Asked):
    task_id: str
    lease_expires_at: str


class CheckpointResult(Asked):
    task_id: str
    seq: int
    lease_expires_at: str | None = Field(
        None, description="None while the task awaits approval (the lease is suspended)"
    )
    git_head: str | None = None
    git_ref: str | None = Field(None, description="The working-tree snapshot, if one was taken")
    git_note: str | None = None


class UpdateResult(Asked):
    task_id: str
    previous_status: Status
    status: Status
    attempts: int
    not_before: str | None = Field(None, description="Retry back-off: not claimable before")
    unblocked: list[str] = Field(
        default_factory=list, description="Dependents whose last dependency this completed"
    )
    message: str
    next: ClaimResult | None = Field(None, description="claim_next: your next claim")


class StatusReport(BaseModel):
    counts: QueueCounts
    in_progress: list[dict[str, Any]]
    awaiting_approval: list[dict[str, Any]]
    paused: str | None = Field(None, description="What a person paused, if anything")
    stopped: list[dict[str, Any]] = Field(
        description="Blocked tasks and held submissions: each stays until a person acts "
        "(way_out says how)"
    )
    top_ready: list[RankedTask]
    dead_letters: list[TaskSummary]
    scheduled: list[Scheduled] = Field(
        default_factory=list, description="Tasks that come back, each with its next time"
    )
    checks: list[CheckFigures] = Field(
        default_factory=list, description="The landing checks' runs, failures and flakes"
    )
    unsynced: list[Unsynced] = Field(
        default_factory=list,
        description="Open issues `import github:` could not apply; each is said once on its issue",
    )


SectionName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$"),
    Field(description="Section name: letters, digits, space, _ . - (e.g. decisions)"),
]


class ContextSection(BaseModel):
    name: str
    version: int
    content: str
    updated_by: str
    updated_at: str


class ContextReadResult(BaseModel):
    sections: list[ContextSection]
    total_bytes: int


class ContextWriteResult(BaseModel):
    section: str
    version: int
    size_bytes: int
    total_bytes: int = Field(description="All sections together, after this write")


class ContextVersion(BaseModel):
    version: int
    mode: Literal["replace", "append"]
    author: str
    at: str
    size_bytes: int


class StaleTask(BaseModel):
    id: str
    holder: str | None
    lease_epoch: int
    lease_expires_at: str
    last_seen_at: str = Field(description="Last claim, heartbeat or checkpoint")


class Drift(BaseModel):
    id: str
    stored: int
    actual: int


class StuckApproval(BaseModel):
    id: str
    since: str


class HealthCounts(BaseModel):
    """What one tick saw, as numbers."""

    by_status: dict[str, int]
    ready: int
    waiting_on_dependencies: int
    backing_off: int
    wip_used: int
    wip_limit: int
    done_last_hour: int
    done_last_5m: int
    baseline_done_per_hour: float | None = Field(
        description="Median completions per hour over the previous day's ticks"
    )
    expired_leases: int
    stale_tasks: int
    agents_active: int = Field(description="Seen within the stale threshold")
    agents_idle: int = Field(description="Active but holding no live lease")
    agents_silent: int = Field(description="Not seen within the stale threshold")
    dead_letters: int
    awaiting_approval: int
    stuck_approvals: int
    dependency_drift: int
    blocked_by_abandoned: int
    unroutable_ready: int = 0


class ProviderHealth(BaseModel):
    name: str
    hour_share: float | None = Field(description="(used + reserved) / hourly limit")
    day_share: float | None
    breaker: BreakerState
    reopens_at: str | None


class Observation(BaseModel):
    """One tick's observation; the lists name at most 50 tasks each."""

    at: str
    counts: HealthCounts
    stale: list[StaleTask]
    drift: list[Drift]
    dead_letters: list[str]
    stuck_approvals: list[StuckApproval]
    blocked_by_abandoned: list[str]
    providers: list[ProviderHealth] = Field(default_factory=list)
    unroutable: list[str] = Field(
        default_factory=list, description="Top ready tasks no provider can take now"
    )


class HealthSnapshot(BaseModel):
    at: str
    leader: str
    remediate: bool = Field(description="False when WVO_AUTOPILOT_HEALTH_AUTO_REMEDIATE=0")
    anomalies: int
    actions: int
    counts: HealthCounts


class AnomalyView(BaseModel):
    kind: str
    severity: Literal["info", "warning", "critical"]
    subject: str = Field(description="The task or provider concerned, or '' for the queue")
    message: str
    first_seen_at: str
    last_seen_at: str


class MonitorAction(BaseModel):
    at: str
    task_id: str
    kind: str
    to_status: str | None
    reason: str | None


class HealthReport(BaseModel):
    leader: str | None = Field(description="The server process whose monitor acts")
    leader_expires_at: str | None
    snapshot: HealthSnapshot | None = Field(description="The latest tick's observation")
    open_anomalies: int
    anomalies: list[AnomalyView] = Field(description="Open anomalies, most severe first")
    actions: list[MonitorAction] = Field(description="The monitor's latest actions, newest first")
    observation: Observation | None = Field(None, description="Only with full=true")
    message: str
    admission: str | None = Field(
        None,
        description="Over HTTP: this server process's requests in flight against its cap, "
        "and the tokens nearest their rate limit",
    )


class RouteAlternative(BaseModel):
    provider: str
    tier: str | None
    model: str | None
    why: PassedOverReason
    detail: str


class RouteDecision(BaseModel):
    task_id: str
    routed: bool = Field(description="False: no provider can take it now; it stays ready")
    provider: str | None
    tier: str | None
    model: str | None
    estimated_tokens: int
    estimated_cost: float | None
    reason: str
    basis: str = Field(
        "rule",
        description="rule (the static rule), learned, exploration, cold_start, floor, "
        "only_route or pinned: docs/routing.md",
    )
    alternatives: list[RouteAlternative] = Field(
        description="Providers and tiers considered first, and why each was passed over"
    )


class AgentIdentity(BaseModel):
    agent_id: str
    provider: str
    tier: str
    model: str
    complexity: tuple[int, int] = Field(description="The complexity range of the tier")
    message: str


class Budget(BaseModel):
    used_tokens: int
    reserved_tokens: int = Field(description="Estimates of in-flight tasks not yet reported")
    limit: int | None
    share: float | None = Field(description="(used + reserved) / limit")


class BreakerView(BaseModel):
    state: BreakerState
    failures: int = Field(description="Consecutive failures")
    reopens_at: str | None = Field(description="When an open breaker lets a trial task through")


class TierStatus(BaseModel):
    name: str
    model: str
    complexity: tuple[int, int]
    hour_tokens: int
    day_tokens: int
    spend_day: float


class ProviderStatus(BaseModel):
    name: str
    preference: int = Field(description="1 is tried first")
    in_flight: int
    max_concurrent: int | None
    hour: Budget
    day: Budget
    spend_hour: float
    spend_day: float
    breaker: BreakerView
    tiers: list[TierStatus]


class ProviderStatusReport(BaseModel):
    source: str = Field(description="The providers file in force")
    providers: list[ProviderStatus]


class UsageResult(BaseModel):
    provider: str
    tier: str
    cost: float
    hour: Budget
    day: Budget
    breaker: BreakerView
    message: str


OpenState = Literal["review", "queued", "testing", "landing", "held"]


class QueueEntry(BaseModel):
    target: str = Field(description="The branch it lands on ('': verified on its own branch)")
    position: int | None = Field(None, description="1 lands next; none in review or held")
    task_id: str
    title: str
    state: OpenState
    waiting_since: str = Field(description="In review since, in the queue since, held since")
    waited_s: float
    returns: int = Field(description="Times the queue returned the task's work to a worker")
    reason: str | None = Field(None, description="Why it is held for a person")


class LandedSpend(BaseModel):
    provider: str
    tier: str
    changes: int = Field(description="Landed changes that used this tier")
    tokens_per_change: float = Field(description="Its tokens over every landed change")
    cost_per_change: float


class LandingFigures(BaseModel):
    since: str
    hours: float
    landed: int
    landed_per_hour: float
    wait_p50_s: float | None = Field(description="Queue wait: queued to landed")
    wait_p95_s: float | None
    returned: int = Field(description="Submissions returned to a worker (conflict, check)")
    returns_per_landed: float | None
    spend: list[LandedSpend] = Field(
        default_factory=list, description="Per provider and tier, every attempt counted"
    )


class PullRequestShown(BaseModel):
    """A task's pull request on a forge (--via pull-request)."""

    target: str
    task_id: str
    title: str
    number: int
    url: str = Field(description="Its page on the forge")
    state: Literal["open", "merged", "closed"]
    waiting: str = Field(description="What it waits for: checks (which), a review, a worker")
    updated_at: str


class LandingQueue(BaseModel):
    entries: list[QueueEntry] = Field(description="Open entries, per target in landing order")
    figures: LandingFigures
    pulls: list[PullRequestShown] = Field(
        default_factory=list,
        description="Pull requests open now, or merged or closed in the window (--via "
        "pull-request)",
    )


class SandboxResult(BaseModel):
    """One command run in the sandbox; the same shape whatever the backend."""

    backend: Literal["docker", "bwrap", "none"] = Field(description="Where it ran")
    exit_code: int | None = Field(description="None when the sandbox killed it")
    timed_out: bool
    killed_reason: str | None = Field(
        description='Why the sandbox stopped it or refused it resources: "timeout", '
        '"memory limit (512 MB)", "pids limit (256)"'
    )
    stdout_tail: str
    stderr_tail: str
    truncated: bool = Field(description="Either stream was cut; the tail is kept")
    duration_s: float
    peak_memory_mb: float | None = Field(description="None when the backend cannot tell")


def lean(value: Any) -> Any:
    """An output as the agent receives it: JSON, with every field that is optional and left
    empty (None, [], {}) omitted. The model's schema stays true: such fields have defaults,
    so they are not required."""
    if type(value) in _PLAIN:  # most values: nothing to convert
        return value
    if isinstance(value, BaseModel):
        out = {}
        for name, key, optional in _fields(type(value)):
            item = getattr(value, name)
            if optional and (item is None or item == [] or item == {}):
                continue
            out[key] = lean(item)
        return out
    if isinstance(value, list | tuple):
        return [lean(item) for item in value]
    if isinstance(value, dict):
        return {key: lean(item) for key, item in value.items()}
    return to_jsonable_python(value)


_PLAIN = frozenset({str, int, float, bool, type(None)})


@functools.cache
def _fields(model: type[BaseModel]) -> tuple[tuple[str, str, bool], ...]:
    """A model's fields as lean() walks them (name, key, optional), worked out once."""
    return tuple(
        (name, field.alias or name, not field.is_required())
        for name, field in model.model_fields.items()
    )


class TokenInfo(BaseModel):
    # One bearer token as `token_list` and `wvo-mcp tokens list` show it: never its secret.
    id: str
    name: str
    role: Literal["agent", "person", "operator"]
    created_at: str
    created_by: str
    last_used_at: str | None = None
    revoked_at: str | None = None
    expires_at: str | None = None  # a run token's: the autopilot renews it while its run lives
    task: str | None = None  # a run token's one task


class TokenList(BaseModel):
    tokens: list[TokenInfo]
