"""The health monitor's view: one tick's observation, its anomalies, actions and report.

What health_report answers: the monitor judges each observation and acts on it over these
shapes, and the dashboard shows them.
"""

from typing import Literal

from pydantic import BaseModel, Field

from wvo_mcp.rules.breakers import BreakerState


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
