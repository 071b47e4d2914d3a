"""What an agent's work loop gets back: plan_next, claims, leases, checkpoints, updates, status.

The answers of the hot tools, kept lean (task_get has the rest); Asked carries, unseen by the
agent, whether a call's own transaction already looked for the holder's notes.
"""

from typing import Any, Literal

from pydantic import BaseModel, Field

from wvo_mcp.models.landing import CheckFigures
from wvo_mcp.models.notes import Unsynced
from wvo_mcp.models.tasks import Checkpoint, Scheduled, TaskSummary
from wvo_mcp.rules.transitions import Status
from wvo_mcp.rules.wsjf import Breakdown


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


class _Unseen:
    """What an answer tells this server and not its agent. Plain class attributes, not
    pydantic's private ones, whose set-up per instance doubled the cost of making a model
    (BENCHMARKS.md, "The per-call floor, third round"); set on an instance, they go in its
    `__dict__`, which pydantic's dumps, schema and equality leave out
    (tests/unit/test_unseen_flags.py)."""

    # The agent found to have no person's notes due in the call's own transaction (its
    # answer then needs no lookup of its own: services/notes.py); None: not looked for.
    _no_notes_for: str | None = None
    # A claim's: tells telemetry that it took over an expired lease.
    _took_over_expired: bool = False
    # A claim's grant that another write beat, found once committed: the task to leave out
    # when it is made again (services/claims.best_then_read).
    _lost: str | None = None


class Asked(_Unseen, BaseModel):
    """The answer of a holder's call, which may say its notes were asked for already."""


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
