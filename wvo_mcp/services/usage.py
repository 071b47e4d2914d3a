"""Whose reported usage may move budgets and breakers, and how far it counts.

Whose word moves budgets and breakers (docs/security.md, "Usage-trust rule"): one reported
model call is bounded for everyone; an autopilot worker's run token reports only about its
own task, provider and tier, and its report is noted, never charged (the autopilot charges
its run from its CLI's own usage report); an HTTP agent token charges only the provider its
agent runs on. A breaker's move itself is `rules/breakers.py:after_outcome`'s."""

from dataclasses import dataclass
from datetime import datetime

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.models import UsageResult
from wvo_mcp.providers import Providers
from wvo_mcp.rules import breakers
from wvo_mcp.rules import routing as routing_rules
from wvo_mcp.services import leases, routing
from wvo_mcp.services.bearer_tokens import Scope
from wvo_mcp.services.tasks import record_event
from wvo_mcp.store import Tx

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
        return routing.record_usage(
            tx, providers, None, provider, model, input_tokens, output_tokens, outcome, now,
            agent_id,
        )  # fmt: skip
    return leases.record_task_usage(
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
        else routing.identity(tx, settings, providers, agent_id, None, None, now, remember=False)
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
    status = routing.provider_status(tx, providers, now, only=provider).providers[0]
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
