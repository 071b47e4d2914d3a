"""Provider routing against the database: usage, breakers, reservations, reports.

Provider routing against the database: usage windows, breakers, reservations, agents'
declared models, and the reports. Each function runs inside one transaction.

Carries out `rules/learning.py`, `rules/routing.py` and `rules/breakers.py`."""

import json
import random
from dataclasses import dataclass
from datetime import datetime

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import NotFound, ValidationFailed
from wvo_mcp.models import (
    AgentIdentity,
    BreakerView,
    Budget,
    ClaimRoute,
    ProviderStatus,
    ProviderStatusReport,
    RouteAlternative,
    RouteDecision,
    TierStatus,
    UsageResult,
)
from wvo_mcp.providers import Providers
from wvo_mcp.rules import breakers, learning, routing
from wvo_mcp.rules.breakers import Breaker, Outcome
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import route_outcomes
from wvo_mcp.store import Answer, Row, Tx


@dataclass(frozen=True, slots=True)
class Identity:
    """The provider and tier an agent runs on."""

    provider: routing.Provider
    tier: routing.Tier

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.tier.name} ({self.tier.model})"


def _breaker(row: Row) -> Breaker:
    reopens = row["reopens_at"]
    return Breaker(
        state=row["state"],
        failures=row["failures"],
        opens=row["opens"],
        reopens_at=None if reopens is None else timeutil.from_text(reopens),
    )


def usage_now(tx: Tx, providers: Providers, now: datetime) -> dict[str, routing.Usage]:
    """Every provider's usage this hour and day, reservations, in-flight work and breaker."""
    hour, day = routing.windows(now)
    tokens: dict[tuple[str, str], int] = {
        (r["provider"], r["period"]): r["tokens"]
        for r in tx.all("provider_window_usage", (hour, day))
    }
    load = {r["provider"]: r for r in tx.all("provider_load")}
    breakers = {r["provider"]: r for r in tx.all("provider_breakers")}
    usage = {}
    for provider in providers.providers:
        name = provider.name
        flight = load.get(name)
        breaker = breakers.get(name)
        usage[name] = routing.Usage(
            hour_tokens=tokens.get((name, hour), 0),
            day_tokens=tokens.get((name, day), 0),
            reserved_tokens=0 if flight is None else flight["reserved"],
            in_flight=0 if flight is None else flight["in_flight"],
            breaker=Breaker() if breaker is None else _breaker(breaker),
            probe_in_flight=bool(breaker is not None and breaker["probe_out"]),
        )
    return usage


_Key = tuple[int, routing.Estimate, routing.Escalation | None]


class Router:
    """Routing decisions within one transaction; usage and the routes' outcome statistics are
    read once, on first need."""

    def __init__(self, tx: Tx, providers: Providers, now: datetime) -> None:
        self.tx = tx
        self.providers = providers
        self.now = now
        self._usage: dict[str, routing.Usage] | None = None
        self._stats: dict[str, dict[tuple[str, str], learning.RouteStats]] | None = None
        self._decided: dict[_Key, routing.Decision] = {}
        self._options: dict[_Key, learning.Options] = {}
        self._observed: dict[str, routing.Estimate | None] = {}

    def decide(self, row: Row) -> routing.Decision:
        """Where the task `row` goes now; its token estimate is chosen by
        providers.py:Providers.estimate (its metadata's, observed, or static)."""
        metadata = row["metadata"]
        # Only a task that carries its own estimate needs its metadata parsed.
        given = json.loads(metadata) if "estimated_tokens" in metadata else {}
        needs = self.providers.estimate(row["complexity"], given, self.observed(row["complexity"]))
        pin = learning.pin_for(self.providers.pins, row["id"], row["epic_id"])
        if pin is not None:
            return learning.pinned(pin, needs, self.providers.providers, self.usage(), self.now)
        if row["failed_provider"] is not None and row["failed_tier"] is not None:
            failed_on = routing.Escalation(row["failed_provider"], row["failed_tier"])
            return self._decide(row["complexity"], needs, failed_on)
        draw = None
        if self._explorable_class(row["complexity"]):
            draw = learning.exploring(self.providers.learning, row["id"], row["lease_epoch"])
        if draw is None:
            return self._decide(row["complexity"], needs, None)
        return self._route(row["complexity"], needs, None, draw)  # this attempt's own draws

    def fresh(self, complexity: int) -> routing.Decision:
        """Where a fresh task of this complexity goes now: one with no estimate, failure or
        pin of its own, on an attempt that does not explore."""
        return self._decide(complexity, self.estimate(complexity), None)

    def estimate(self, complexity: int) -> routing.Estimate:
        """A fresh task's estimate: its class's observed usage, else the static one."""
        return self.providers.estimate(complexity, {}, self.observed(complexity))

    def observed(self, complexity: int) -> routing.Estimate | None:
        """What tasks of this complexity's class were observed to use (learning on)."""
        task_class = learning.task_class(complexity)
        if task_class not in self._observed:
            self._observed[task_class] = learning.observed_estimate(
                self.stats(task_class).values(),
                self.providers.learning,
                self.providers.output_share,
            )
        return self._observed[task_class]

    def _decide(
        self, complexity: int, needs: routing.Estimate, failed_on: routing.Escalation | None
    ) -> routing.Decision:
        # Within one transaction the same inputs route the same way: decide each once.
        key = (complexity, needs, failed_on)
        found = self._decided.get(key)
        if found is None:
            found = self._decided[key] = self._route(complexity, needs, failed_on, None)
        return found

    def _route(
        self,
        complexity: int,
        needs: routing.Estimate,
        failed_on: routing.Escalation | None,
        draw: random.Random | None,
    ) -> routing.Decision:
        key = (complexity, needs, failed_on)
        stats = self.stats(learning.task_class(complexity))
        policy, providers = self.providers.learning, self.providers.providers
        found = self._options.get(key)
        if found is None:  # an exploring attempt shares its candidates with its class
            found = self._options[key] = learning.options(
                complexity, needs, providers, self.usage(), self.now, failed_on,
                stats=stats, policy=policy,
            )  # fmt: skip
        return learning.decide(
            found, providers, self.usage(), self.now, stats=stats, policy=policy, draw=draw
        )

    def usage(self) -> dict[str, routing.Usage]:
        if self._usage is None:
            self._usage = usage_now(self.tx, self.providers, self.now)
        return self._usage

    def stats(self, task_class: str) -> dict[tuple[str, str], learning.RouteStats]:
        """The outcome statistics routing weighs for one task class's routes, by (provider,
        tier): none with learning off."""
        if not self.providers.learning.enabled:
            return {}
        return self.recorded(task_class)

    def recorded(self, task_class: str) -> dict[tuple[str, str], learning.RouteStats]:
        """One task class's routes' statistics as recorded, by (provider, tier)."""
        if self._stats is None:
            self._stats = {}
            for found in route_outcomes.all_stats(self.tx):
                by_route = self._stats.setdefault(found.task_class, {})
                by_route[found.provider, found.tier] = found.stats
        return self._stats.get(task_class, {})

    def reach(self, identity: "Identity") -> "Reach":
        """Where the tasks routing may send to this tier now are found (`Reach`)."""
        routed = [c for c in range(1, 11) if fits(self.fresh(c), identity)]
        explored = [c for c in range(1, 11) if c not in routed and self._explorable(c, identity)]
        pins = [p for p in self.providers.pins if fits_pin(p, identity)]
        return Reach(
            tuple(routed),
            tuple(explored),
            tuple(p.epic_id for p in pins if p.epic_id is not None),
            tuple(p.task_id for p in pins if p.task_id is not None),
        )

    def _explorable(self, complexity: int, identity: "Identity") -> bool:
        """Whether an exploring attempt of this complexity may be sent to this tier."""
        offered = learning.offered(identity.provider, complexity)
        return identity.tier in offered and self._explorable_class(complexity)

    def _explorable_class(self, complexity: int) -> bool:
        """Whether attempts of this complexity may explore: learning explores, and some
        route of the class is proven (before that, the static rule decides, or doubt alone,
        which needs no draw)."""
        policy = self.providers.learning
        if not policy.enabled or policy.explore_share <= 0.0:
            return False
        stats = self.stats(learning.task_class(complexity)).values()
        return any(s.attempts >= policy.min_evidence for s in stats)


@dataclass(frozen=True, slots=True)
class Reach:
    """Where a tier's tasks are found: the complexities whose fresh tasks routing sends it,
    those whose exploring attempts it may be sent (a few of their tasks), and the epics and
    tasks pinned to it. Each task found is then decided in full."""

    routed: tuple[int, ...]
    explored: tuple[int, ...]
    epics: tuple[str, ...]
    tasks: tuple[str, ...]


def fits_pin(pin: learning.Pin, identity: "Identity") -> bool:
    return pin.provider == identity.provider.name and pin.tier == identity.tier.name


def fits(decision: routing.Decision, identity: Identity) -> bool:
    return decision.provider == identity.provider.name and decision.tier == identity.tier.name


def reserve(tx: Tx, row: Row, decision: routing.Decision | None, now: datetime) -> None:
    """Record where a grant was routed and reserve its estimated tokens (None: unrouted)."""
    if decision is None or not decision.routed:
        if row["routed_provider"] is not None:  # an earlier grant's route no longer holds
            tx.send("set_route", (None, None, 0, row["id"]))
        return
    tx.send("set_route", (decision.provider, decision.tier, decision.estimate.total, row["id"]))
    if decision.half_open_probe:
        tx.send("set_probe", (row["id"], timeutil.to_text(now), decision.provider))


def claim_route(decision: routing.Decision) -> ClaimRoute:
    assert decision.provider and decision.tier and decision.model
    return ClaimRoute(
        provider=decision.provider,
        tier=decision.tier,
        model=decision.model,
        estimated_tokens=decision.estimate.total,
        estimated_cost=decision.estimated_cost or 0.0,
        reason=decision.reason,
    )


@dataclass(frozen=True, slots=True)
class Bound:
    """A caller that may not move its agent to another provider (an agent token's): the
    token's own provider (`tokens add --provider`), else the one its agent registered first
    (docs/http.md)."""

    provider: str | None = None


def check_bound(bound: Bound | None, row: Row | None, agent_id: str, provider: str) -> None:
    """Refuse a provider `bound` forbids (`row`: the agent's registration, if any)."""
    if bound is None:
        return
    fixed = bound.provider or (None if row is None else row["provider"])
    if fixed is None or fixed == provider:
        return
    how = "its token was made for it" if bound.provider else "it registered it first"
    raise ValidationFailed(
        f"agent {agent_id!r} runs on provider {fixed!r} ({how}): an agent token cannot move "
        f"to {provider!r}. Pass provider {fixed!r} (any of its models), or have a person make "
        f"a token for the other provider: `wvo-mcp tokens add --role agent --name NAME "
        f"--provider {provider}`. Nothing was changed"
    )


def identity(
    tx: Tx,
    settings: Settings,
    providers: Providers,
    agent_id: str,
    provider: str | None,
    model: str | None,
    now: datetime,
    *,
    remember: bool = True,
    registered: Answer | None = None,
    bound: Bound | None = None,
) -> Identity | None:
    """Who the agent says it is: this call's provider and model (remembered for its next
    calls unless `remember` is off; refused if `bound` forbids it), else what it registered
    (`registered`: its agent_identity row, if already asked for), else WVO_AGENT_PROVIDER /
    WVO_AGENT_MODEL."""
    if (provider is None) != (model is None):
        raise ValidationFailed(
            "pass both provider and model (e.g. provider='codex', model='gpt-5-codex'), or "
            "neither; `provider_status` lists them"
        )
    if registered is None:
        registered = tx.ask("agent_identity", (agent_id,))
    row = registered.one()
    if provider is not None and model is not None:
        found = Identity(*providers.resolve(provider, model))
        check_bound(bound, row, agent_id, provider)
        known = row is not None and (row["provider"], row["model"]) == (provider, model)
        if remember and not known:
            tx.run("set_agent_identity", (agent_id, provider, model, timeutil.to_text(now)))
        return found
    if row is not None and row["provider"] is not None and row["model"] is not None:
        return Identity(*providers.resolve(row["provider"], row["model"]))
    if settings.agent_provider is not None and settings.agent_model is not None:
        return Identity(*providers.resolve(settings.agent_provider, settings.agent_model))
    return None


def register(
    tx: Tx,
    providers: Providers,
    agent_id: str,
    provider: str,
    model: str,
    now: datetime,
    bound: Bound | None = None,
) -> AgentIdentity:
    found = Identity(*providers.resolve(provider, model))
    if bound is not None:
        check_bound(bound, tx.one("agent_identity", (agent_id,)), agent_id, provider)
    tx.run("set_agent_identity", (agent_id, provider, model, timeutil.to_text(now)))
    tier = found.tier
    return AgentIdentity(
        agent_id=agent_id,
        provider=provider,
        tier=tier.name,
        model=model,
        complexity=(tier.min_complexity, tier.max_complexity),
        message=f"{agent_id} runs on {found.label}: claim_task and plan_next now hand it "
        "only what routing sends to that tier",
    )


def route_task(tx: Tx, providers: Providers, task_id: str, now: datetime) -> RouteDecision:
    row = tx.one("task_by_id", (task_id,))
    if row is None:
        raise NotFound(f"no task with id {task_id!r}; task_list shows existing ids")
    decision = Router(tx, providers, now).decide(row)
    return RouteDecision(
        task_id=task_id,
        routed=decision.routed,
        provider=decision.provider,
        tier=decision.tier,
        model=decision.model,
        estimated_tokens=decision.estimate.total,
        estimated_cost=decision.estimated_cost,
        reason=decision.reason,
        basis=decision.basis,
        alternatives=[
            RouteAlternative(
                provider=a.provider, tier=a.tier, model=a.model, why=a.why, detail=a.detail
            )
            for a in decision.alternatives
        ],
    )


def _charge(
    tx: Tx,
    task_id: str,
    provider: str,
    tier: str,
    input_tokens: int,
    output_tokens: int,
    cost: float,
) -> None:
    """What the task costs, per provider and tier over all its attempts: the merge queue's
    cost per landed change adds it up (services/landing_figures.py)."""
    tx.run(
        "add_task_spend",
        {"task_id": task_id, "provider": provider, "tier": tier, "input": input_tokens,
         "output": output_tokens, "cost": cost},
    )  # fmt: skip


def charge_task(
    tx: Tx,
    providers: Providers,
    task_id: str,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    now: datetime,
    worker: str | None = None,
    token: str | None = None,
) -> None:
    """A run made for a task that its run no longer holds: its usage is the task's all the
    same. Only the task's tally: record_usage without a task charges the provider.
    `worker` (with the run's lease `token`): the worker's own run, whose cost is also its
    attempt's. While the attempt is open (submitted, or waiting for approval) it counts when
    the attempt lands or comes back; once its outcome was counted (it gave up, or lost its
    lease), it goes to that route's statistics at once (not a reviewer's run)."""
    _, tier = providers.resolve(provider, model)
    row = tx.one("task_by_id", (task_id,))
    if row is None:
        raise NotFound(f"no task with id {task_id!r}")
    cost = routing.Estimate(input_tokens, output_tokens).cost(tier)
    tokens = input_tokens + output_tokens
    if worker is not None:
        held = token is not None and row["lease_token"] == token
        submitted = row["status"] == Status.NEEDS_REVIEW.value and row["submitted_by"] == worker
        if held or submitted:
            tx.run("add_task_usage", (tokens, cost, task_id, provider))
        else:
            task_class = learning.task_class(row["complexity"])
            route_outcomes.add_cost(tx, provider, tier.name, task_class, tokens, cost, now)
    _charge(tx, task_id, provider, tier.name, input_tokens, output_tokens, cost)


def record_usage(
    tx: Tx,
    providers: Providers,
    task_id: str | None,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    outcome: Outcome,
    now: datetime,
    agent_id: str | None = None,
) -> UsageResult:
    """Charge a model call to its provider and tier (and, when named, its agent's day)."""
    found, tier = providers.resolve(provider, model)
    if task_id is not None and tx.one("task_by_id", (task_id,)) is None:
        raise NotFound(f"no task with id {task_id!r}; omit task_id for usage outside a task")
    stamp = timeutil.to_text(now)
    cost = routing.Estimate(input_tokens, output_tokens).cost(tier)
    for period in routing.windows(now):
        tx.run(
            "add_usage",
            {
                "provider": provider,
                "period": period,
                "tier": tier.name,
                "input": input_tokens,
                "output": output_tokens,
                "cost": cost,
                "failed": int(outcome != "success"),
            },
        )
    if agent_id is not None:
        tx.run(
            "add_agent_usage",
            {"agent_id": agent_id, "day": routing.windows(now)[1], "input": input_tokens,
             "output": output_tokens, "cost": cost},
        )  # fmt: skip
    stored = next((r for r in tx.all("provider_breakers") if r["provider"] == provider), None)
    before = Breaker() if stored is None else _breaker(stored)
    after = breakers.after_outcome(before, outcome, found.breaker, now)
    # A decided trial (the breaker closed, or opened again) frees the half-open slot.
    decided = after.state != before.state or after.opens != before.opens
    probe = None if decided or stored is None else stored["probe_task"]
    if after != before or stored is None:
        reopens = None if after.reopens_at is None else timeutil.to_text(after.reopens_at)
        tx.run(
            "save_breaker",
            {
                "provider": provider,
                "state": after.state,
                "failures": after.failures,
                "opens": after.opens,
                "reopens_at": reopens,
                "probe_task": probe,
                "now": stamp,
            },
        )
    if task_id is not None:
        tx.run("add_task_usage", (input_tokens + output_tokens, cost, task_id, provider))
        _charge(tx, task_id, provider, tier.name, input_tokens, output_tokens, cost)
        if outcome == "context_limit":
            tx.run("set_failed_tier", (provider, tier.name, task_id))
    status = provider_status(tx, providers, now, only=provider).providers[0]
    view = status.breaker
    message = f"recorded {input_tokens + output_tokens} tokens on {provider}/{tier.name}"
    if view.state != "closed":
        message += f"; its circuit breaker is {view.state}"
        if view.reopens_at:
            message += f" until {view.reopens_at}"
    return UsageResult(
        provider=provider,
        tier=tier.name,
        cost=cost,
        hour=status.hour,
        day=status.day,
        breaker=view,
        message=message,
    )


def failed_on_tier(tx: Tx, row: Row) -> None:
    """A routed attempt failed: its next attempt goes one tier up."""
    if row["routed_provider"] is not None and row["routed_tier"] is not None:
        tx.run("set_failed_tier", (row["routed_provider"], row["routed_tier"], row["id"]))


def provider_status(
    tx: Tx, providers: Providers, now: datetime, only: str | None = None
) -> ProviderStatusReport:
    hour, day = routing.windows(now)
    usage = usage_now(tx, providers, now)
    per_tier: dict[tuple[str, str, str], Row] = {
        (r["provider"], r["tier"], r["period"]): r
        for r in tx.all("provider_tier_usage", (hour, day))
    }

    def spent(name: str, tier: str, period: str) -> tuple[int, float]:
        row = per_tier.get((name, tier, period))
        return (0, 0.0) if row is None else (row["tokens"], row["cost"])

    report = []
    for position, provider in enumerate(providers.providers, start=1):
        if only is not None and provider.name != only:
            continue
        u = usage[provider.name]
        tiers = [
            TierStatus(
                name=t.name,
                model=t.model,
                complexity=(t.min_complexity, t.max_complexity),
                hour_tokens=spent(provider.name, t.name, hour)[0],
                day_tokens=spent(provider.name, t.name, day)[0],
                spend_day=round(spent(provider.name, t.name, day)[1], 6),
            )
            for t in provider.tiers
        ]
        report.append(
            ProviderStatus(
                name=provider.name,
                preference=position,
                in_flight=u.in_flight,
                max_concurrent=provider.max_concurrent,
                hour=_budget(u.hour_tokens, u.reserved_tokens, provider.hourly_tokens),
                day=_budget(u.day_tokens, u.reserved_tokens, provider.daily_tokens),
                spend_hour=round(
                    sum(spent(provider.name, t.name, hour)[1] for t in provider.tiers), 6
                ),
                spend_day=round(sum(t.spend_day for t in tiers), 6),
                breaker=BreakerView(
                    state=u.breaker.current(now),
                    failures=u.breaker.failures,
                    reopens_at=None
                    if u.breaker.reopens_at is None or u.breaker.state == "closed"
                    else timeutil.to_text(u.breaker.reopens_at),
                ),
                tiers=tiers,
            )
        )
    return ProviderStatusReport(source=providers.source, providers=report)


def _budget(used: int, reserved: int, limit: int | None) -> Budget:
    share = None if limit is None else round((used + reserved) / limit, 4)
    return Budget(used_tokens=used, reserved_tokens=reserved, limit=limit, share=share)
