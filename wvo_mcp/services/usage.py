"""Model usage: who may report it, recorded per provider, tier and agent, charged to its task.

`record_usage` moves a provider's windows, its breaker and the task's tally; `charge_task`
a run's cost; `provider_status` shows the budgets.

Whose word moves budgets and breakers (docs/security.md, "Usage-trust rule"): one reported
model call is bounded for everyone; an autopilot worker's run token reports only about its
own task, provider and tier, and its report is noted, never charged (the autopilot charges
its run from its CLI's own usage report); an HTTP agent token charges only the provider its
agent runs on. A breaker's move itself is `rules/breakers.py:after_outcome`'s."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import NotFound, ValidationFailed
from wvo_mcp.models import (
    BreakerView,
    Budget,
    ProviderStatus,
    ProviderStatusReport,
    TierStatus,
    UsageResult,
)
from wvo_mcp.providers import Providers
from wvo_mcp.rules import breakers, learning
from wvo_mcp.rules import routing as routing_rules
from wvo_mcp.rules.breakers import Breaker, Outcome
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import agents, leases, route_outcomes, routing
from wvo_mcp.services.bearer_tokens import Scope
from wvo_mcp.services.tasks import record_event
from wvo_mcp.store import Row, Tx

# One model call reads and writes within its context window, and none is larger than 2M
# tokens today (Gemini 1.5 Pro's; Claude's and GPT's are at most 1M). Twice that refuses no
# real call, however its provider counts cached input, and keeps a forged one to a couple
# of real calls' worth.
MAX_CALL_TOKENS = 4_000_000


@dataclass(frozen=True)
class Reporter:
    """Who reports a model call, which decides what the report may move. The default is a
    reporter trusted with any provider: stdio's one agent, loopback `--no-auth`, an
    operator token."""

    run: Scope | None = None  # an autopilot run token: noted on its own task, charges nothing
    own_provider: bool = False  # an HTTP agent token: only its agent's provider
    provider: str | None = None  # ... and the one its token was made for, if any


ANYONE = Reporter()
# An autopilot worker's own reports, noted on its task's trail: at most this many an attempt
# (each about 240 bytes), so a flood costs bounded space (docs/security.md).
NOTED_PER_ATTEMPT = 100


def check_call(input_tokens: int, output_tokens: int) -> None:
    """Refuse a report no single model call could make."""
    total = input_tokens + output_tokens
    if input_tokens < 0 or output_tokens < 0 or total > MAX_CALL_TOKENS:
        raise ValidationFailed(
            f"one model call cannot use {input_tokens} input and {output_tokens} output "
            f"tokens: record_usage takes one call at a time, 0 to {MAX_CALL_TOKENS:,} tokens "
            "in and out together (no model's context window is larger). Nothing was recorded"
        )


def record(
    tx: Tx,
    settings: Settings,
    providers: Providers,
    reporter: Reporter,
    *,
    task_id: str | None,
    token: str | None,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    outcome: breakers.Outcome,
    now: datetime,
    agent_id: str | None,
) -> UsageResult:
    """One model call as `reporter` reports it: refused unless the rule lets it say so."""
    check_call(input_tokens, output_tokens)
    if reporter.run is not None:
        return _noted(
            tx, providers, reporter.run, task_id, token, agent_id, provider=provider,
            model=model, input_tokens=input_tokens, output_tokens=output_tokens,
            outcome=outcome, now=now,
        )  # fmt: skip
    if reporter.own_provider:
        if reporter.provider is not None and provider != reporter.provider:
            raise ValidationFailed(
                f"this agent token was made for provider {reporter.provider!r}: it reports "
                f"usage for it only, not {provider!r}. Nothing was recorded"
            )
        _check_own(tx, settings, providers, agent_id, provider, now)
    if task_id is None:
        return record_usage(
            tx, providers, None, provider, model, input_tokens, output_tokens, outcome, now,
            agent_id,
        )  # fmt: skip
    return record_task_usage(
        tx, token, providers=providers, task_id=task_id, provider=provider, model=model,
        input_tokens=input_tokens, output_tokens=output_tokens, outcome=outcome, now=now,
        agent_id=agent_id,
    )  # fmt: skip


def _check_own(
    tx: Tx,
    settings: Settings,
    providers: Providers,
    agent_id: str | None,
    provider: str,
    now: datetime,
) -> None:
    """An agent token names its own provider only: the one its agent registered."""
    found = (
        None
        if agent_id is None
        else agents.identity(tx, settings, providers, agent_id, None, None, now, remember=False)
    )
    if found is None:
        raise ValidationFailed(
            f"agent {agent_id!r} has not said which provider it runs on, and an agent token "
            "reports usage only for its own: call agent_register(provider, model) first (or "
            "claim_task with provider and model). Nothing was recorded"
        )
    if found.provider.name != provider:
        raise ValidationFailed(
            f"agent {agent_id!r} runs on {found.label}: its token reports usage for provider "
            f"{found.provider.name!r} only, not {provider!r} (another provider's usage is "
            "reported by an agent on it). Nothing was recorded"
        )


def _noted(
    tx: Tx,
    providers: Providers,
    scope: Scope,
    task_id: str | None,
    token: str | None,
    agent_id: str | None,
    *,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    outcome: breakers.Outcome,
    now: datetime,
) -> UsageResult:
    """A worker's own report: checked against its run token, then kept on its task's trail
    only. The autopilot charges the run from its CLI's report; this moves no budget,
    breaker, tally or escalation."""
    own = f"task_id {scope.task!r} with its lease_token"
    if scope.purpose != "worker" or scope.provider is None or scope.model is None:
        raise ValidationFailed(
            f"this run token is an autopilot {scope.purpose}'s and names no provider it was "
            "launched on: the autopilot records its usage. Nothing was recorded"
        )
    if task_id != scope.task:
        given = "no task" if task_id is None else f"task {task_id!r}"
        raise ValidationFailed(
            f"this token is an autopilot worker's for task {scope.task!r}: it reports usage "
            f"about that task only, not {given}; pass {own}. Nothing was recorded"
        )
    if token is None:
        raise ValidationFailed(
            f"record_usage from an autopilot worker needs {own}. Nothing was recorded"
        )
    row = leases.holding(tx, task_id, token)
    _, launched = providers.resolve(scope.provider, scope.model)
    at = f"{scope.provider}/{launched.name} ({scope.model})"
    if provider != scope.provider:
        raise ValidationFailed(
            f"this worker was launched on {at}: it reports usage for provider "
            f"{scope.provider!r} only, not {provider!r}. Nothing was recorded"
        )
    _, tier = providers.resolve(provider, model)
    if tier.name != launched.name:
        raise ValidationFailed(
            f"this worker was launched on {at}: it reports usage for tier {launched.name!r} "
            f"(model {scope.model!r}) only, not {tier.name!r} ({model!r}). Nothing was recorded"
        )
    said = (
        f"{input_tokens} input and {output_tokens} output tokens on {provider}/{tier.name} "
        f"({outcome}), as the worker reports them"
    )
    epoch = row["lease_epoch"]
    noted = tx.one("usage_reports_noted", (task_id, epoch, NOTED_PER_ATTEMPT))
    if noted is not None and noted["noted"] >= NOTED_PER_ATTEMPT:
        raise ValidationFailed(
            f"this attempt at {task_id!r} already has {NOTED_PER_ATTEMPT} usage reports noted, "
            "the most one attempt keeps: stop reporting usage (the autopilot charges this run "
            "from its CLI's own report). Nothing was recorded"
        )
    record_event(tx, task_id, at=timeutil.to_text(now), actor=agent_id or "?",
                 kind="usage_reported", reason=said, lease_epoch=epoch)  # fmt: skip
    status = provider_status(tx, providers, now, only=provider).providers[0]
    return UsageResult(
        provider=provider,
        tier=tier.name,
        cost=routing_rules.Estimate(input_tokens, output_tokens).cost(tier),
        hour=status.hour,
        day=status.day,
        breaker=status.breaker,
        message=f"noted on {task_id}: {said}. Not charged: the autopilot charges this run "
        "from its CLI's own usage report, so budgets and breakers follow that",
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
    cost = routing_rules.Estimate(input_tokens, output_tokens).cost(tier)
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
    cost = routing_rules.Estimate(input_tokens, output_tokens).cost(tier)
    for period in routing_rules.windows(now):
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
            {"agent_id": agent_id, "day": routing_rules.windows(now)[1], "input": input_tokens,
             "output": output_tokens, "cost": cost},
        )  # fmt: skip
    stored = next((r for r in tx.all("provider_breakers") if r["provider"] == provider), None)
    before = Breaker() if stored is None else routing.breaker_of(stored)
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


def provider_status(
    tx: Tx, providers: Providers, now: datetime, only: str | None = None
) -> ProviderStatusReport:
    hour, day = routing_rules.windows(now)
    usage = routing.usage_now(tx, providers, now)
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


def record_task_usage(tx: Tx, token: str | None, **usage: Any) -> UsageResult:
    """record_usage for a task: only its holder charges it (tokens against its
    route, and a context_limit that escalates its next attempt)."""
    task_id = usage["task_id"]
    if token is None:
        raise ValidationFailed(
            f"record_usage for task {task_id!r} needs that task's lease_token: usage is "
            "charged to a task (and escalates it) by its holder only; omit task_id to "
            "report usage outside a task"
        )
    leases.charging(tx, task_id, token)
    return record_usage(tx, **usage)
