"""Provider routing: which provider, tier and model a task goes to, and why (pure).

Provider routing without I/O: which provider, tier and model a task goes to and why the
others were passed over; usage windows. Each provider's circuit breaker: rules/breakers.py.

Carried out by `wvo_mcp/services/routing.py` and `wvo_mcp/autopilot/dispatch.py`."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from wvo_mcp import timeutil
from wvo_mcp.rules.breakers import Breaker, BreakerPolicy

PassedOverReason = Literal[
    "tier_range",
    "not_above_failed_tier",
    "breaker_open",
    "probe_in_flight",
    "at_capacity",
    "over_hourly_budget",
    "over_daily_budget",
    "larger_than_budget",
]
# Why a provider is passed over whatever time brings: only a person's edit moves it on.
PERMANENT: tuple[PassedOverReason, ...] = (
    "tier_range",
    "not_above_failed_tier",
    "larger_than_budget",
)


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    model: str
    min_complexity: int
    max_complexity: int
    input_cost_per_1k: float
    output_cost_per_1k: float

    def covers(self, complexity: int) -> bool:
        return self.min_complexity <= complexity <= self.max_complexity


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    tiers: tuple[Tier, ...]  # cheapest first
    hourly_tokens: int | None = None
    daily_tokens: int | None = None
    max_concurrent: int | None = None
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)

    def tier(self, name: str) -> Tier | None:
        return next((t for t in self.tiers if t.name == name), None)

    def tier_for_model(self, model: str) -> Tier | None:
        return next((t for t in self.tiers if t.model == model), None)


@dataclass(frozen=True, slots=True)
class Estimate:
    input_tokens: int
    output_tokens: int

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    def cost(self, tier: Tier) -> float:
        return round(
            self.input_tokens / 1000 * tier.input_cost_per_1k
            + self.output_tokens / 1000 * tier.output_cost_per_1k,
            6,
        )


def estimate(complexity: int, tokens_per_complexity: int, output_share: float) -> Estimate:
    """Tokens a task is expected to use, from its complexity (1..10)."""
    total = complexity * tokens_per_complexity
    output = round(total * output_share)
    return Estimate(total - output, output)


@dataclass(frozen=True, slots=True)
class Usage:
    """One provider's situation now, as the database sees it."""

    hour_tokens: int = 0
    day_tokens: int = 0
    reserved_tokens: int = 0  # estimates of in-flight tasks, less what they reported so far
    in_flight: int = 0
    breaker: Breaker = field(default_factory=Breaker)
    probe_in_flight: bool = False  # half-open: its one trial task is out


@dataclass(frozen=True, slots=True)
class PassedOver:
    provider: str
    tier: str | None
    model: str | None
    why: PassedOverReason
    detail: str


@dataclass(frozen=True, slots=True)
class Escalation:
    """The tier the task's last attempt failed on."""

    provider: str
    tier: str


@dataclass(frozen=True, slots=True)
class Decision:
    provider: str | None
    tier: str | None
    model: str | None
    estimate: Estimate
    estimated_cost: float | None
    reason: str
    alternatives: tuple[PassedOver, ...]
    half_open_probe: bool = False  # this task is the breaker's one trial
    basis: str = "rule"  # or how the learned route chose (rules/learning.Basis)

    @property
    def routed(self) -> bool:
        return self.provider is not None


def route(
    complexity: int,
    needs: Estimate,
    providers: Sequence[Provider],
    usage: Mapping[str, Usage],
    now: datetime,
    failed_on: Escalation | None = None,
) -> Decision:
    """The lowest tier that can take the task on the most preferred provider that is healthy,
    within budget and under its concurrency cap; after a failure, one tier up (and across
    providers at the top). `providers` is in preference order."""
    passed: list[PassedOver] = []
    wanted = _eligibility(complexity, providers, failed_on)
    for provider in providers:
        tiers = wanted(provider)
        skipped = [t for t in provider.tiers if t not in tiers]
        if not tiers:
            why: PassedOverReason = "tier_range" if failed_on is None else "not_above_failed_tier"
            passed.append(
                PassedOver(provider.name, None, None, why, _no_tier(complexity, failed_on))
            )
            continue
        tier = tiers[0]
        now_usage = usage.get(provider.name, Usage())
        held_back = blocked(provider, now_usage, needs, now)
        if held_back is not None:
            passed.append(PassedOver(provider.name, tier.name, tier.model, *held_back))
            continue
        passed += [
            PassedOver(provider.name, t.name, t.model, "tier_range", _out_of_range(t, complexity))
            for t in skipped
            if provider.tiers.index(t) < provider.tiers.index(tier) and failed_on is None
        ]
        return Decision(
            provider=provider.name,
            tier=tier.name,
            model=tier.model,
            estimate=needs,
            estimated_cost=needs.cost(tier),
            reason=_reason(provider, tier, complexity, failed_on, passed),
            alternatives=tuple(passed),
            half_open_probe=now_usage.breaker.current(now) == "half_open",
        )
    summary = "; ".join(f"{p.provider}: {p.detail}" for p in passed) or "no providers configured"
    return Decision(
        provider=None,
        tier=None,
        model=None,
        estimate=needs,
        estimated_cost=None,
        reason=f"no provider can take it now ({summary}); {_way_out(passed)}",
        alternatives=tuple(passed),
    )


def _way_out(passed: Sequence[PassedOver]) -> str:
    """What moves an unroutable task on: time, for what time mends; else a person's act."""
    if passed and all(p.why == "not_above_failed_tier" for p in passed):
        return (
            "time will not change that: `wvo-mcp requeue TASK` routes it afresh from its "
            "lowest tier, or a pin (`learning.pins` in the providers file) fixes its tier"
        )
    whys = {p.why for p in passed}
    if passed and whys <= {"tier_range", "not_above_failed_tier"}:
        failed = "not_above_failed_tier" in whys
        return (
            "time will not change that: widen a tier's complexity range in the providers "
            "file, pin the task to a tier (`learning.pins`), or change its complexity "
            "(`wvo-mcp import --update`)"
            + ("; `wvo-mcp requeue TASK` routes it afresh from its lowest tier" if failed else "")
        )
    if passed and whys <= set(PERMANENT):
        return (
            "time will not change that: raise the provider's hourly_tokens or daily_tokens in "
            "the providers file, or give the task a smaller metadata.estimated_tokens "
            "(`wvo-mcp import --update`)"
        )
    return "it stays ready until one can"


def escalated(
    complexity: int, providers: Sequence[Provider], failed_on: Escalation
) -> tuple[Provider, Tier] | None:
    """Where a retry after `failed_on` goes when every provider is free: one tier up, or at
    the top another provider's tier at least as capable (None: nowhere)."""
    wanted = _eligibility(complexity, providers, failed_on)
    return next(((p, tiers[0]) for p in providers if (tiers := wanted(p))), None)


Eligible = Callable[[Provider], list[Tier]]


def _eligibility(
    complexity: int, providers: Sequence[Provider], failed_on: Escalation | None
) -> Eligible:
    """Which tiers of a provider may take the task, cheapest first."""
    if failed_on is None:
        return lambda p: [t for t in p.tiers if t.covers(complexity)]
    failed = next((p for p in providers if p.name == failed_on.provider), None)
    failed_tier = failed.tier(failed_on.tier) if failed is not None else None
    if failed is None or failed_tier is None:  # the config changed since: route afresh
        return _eligibility(complexity, providers, None)
    above = failed.tiers[failed.tiers.index(failed_tier) + 1 :]
    # One tier up on the same provider; elsewhere, a tier at least as capable as that one.
    floor = (above[0] if above else failed_tier).max_complexity

    def eligible(p: Provider) -> list[Tier]:
        if p.name == failed.name:
            return list(above)
        return [t for t in p.tiers if t.max_complexity >= floor]

    return eligible


def blocked(
    provider: Provider, usage: Usage, needs: Estimate, now: datetime
) -> tuple[PassedOverReason, str] | None:
    """Why no tier of `provider` may take a task needing `needs` now, or None."""
    breaker = usage.breaker
    state = breaker.current(now)
    if state == "open":
        return "breaker_open", f"circuit breaker open until {_text(breaker.reopens_at)}"
    if state == "half_open" and usage.probe_in_flight:
        return "probe_in_flight", "circuit breaker half-open and its one trial task is out"
    if provider.max_concurrent is not None and usage.in_flight >= provider.max_concurrent:
        return "at_capacity", f"{usage.in_flight} of {provider.max_concurrent} tasks in flight"
    for window, used, limit in (
        ("hour", usage.hour_tokens, provider.hourly_tokens),
        ("day", usage.day_tokens, provider.daily_tokens),
    ):
        if limit is not None and needs.total > limit:
            return "larger_than_budget", (
                f"this task needs about {needs.total} tokens, more than the whole {window}'s "
                f"{limit}"
            )
        if limit is not None and used + usage.reserved_tokens + needs.total > limit:
            why: PassedOverReason = (
                "over_hourly_budget" if window == "hour" else "over_daily_budget"
            )
            return why, (
                f"{used} tokens used and {usage.reserved_tokens} reserved this {window} of "
                f"{limit}; this task needs about {needs.total}"
            )
    return None


def _no_tier(complexity: int, failed_on: Escalation | None) -> str:
    if failed_on is None:
        return f"no tier covers complexity {complexity}"
    return f"no tier above {failed_on.provider}/{failed_on.tier}, where the last attempt failed"


def _out_of_range(tier: Tier, complexity: int) -> str:
    return f"covers complexity {tier.min_complexity}-{tier.max_complexity}, not {complexity}"


def _reason(
    provider: Provider,
    tier: Tier,
    complexity: int,
    failed_on: Escalation | None,
    passed: list[PassedOver],
) -> str:
    if failed_on is None:
        text = f"lowest tier covering complexity {complexity} on {provider.name}"
    else:
        text = f"escalated after a failure on {failed_on.provider}/{failed_on.tier}"
    blocked = [p for p in passed if p.why != "tier_range"]
    if blocked:
        text += "; passed over " + ", ".join(f"{p.provider} ({p.why})" for p in blocked)
    return text


def _text(moment: datetime | None) -> str:
    return "unknown" if moment is None else timeutil.to_text(moment)


def windows(now: datetime) -> tuple[str, str]:
    """The hour and day (UTC) that usage at `now` counts towards."""
    return now.strftime("%Y-%m-%dT%H"), now.strftime("%Y-%m-%d")
