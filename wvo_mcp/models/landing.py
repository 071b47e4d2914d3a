"""The landing gate and queue as the tools show them: checks, flakes, quarantine, pull requests.

What landing_queue, `wvo-mcp quarantine` and the status report say of submitted work on its
way to a branch; the figures are worked out elsewhere, these are only their shapes.
"""

from typing import Literal

from pydantic import BaseModel, Field


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
