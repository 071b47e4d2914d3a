"""Routing and provider budgets as the tools show them: decisions, identities, usage.

Where a task is sent and why, the tier an agent declared, and each provider's budgets and
breaker, as agent_register, route_task, record_usage and provider_status answer.
"""

from pydantic import BaseModel, Field

from wvo_mcp.rules.breakers import BreakerState
from wvo_mcp.rules.routing import PassedOverReason


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
