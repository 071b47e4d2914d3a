"""Who an agent says it runs on: its provider and model, registered or passed with a call.

An agent's identity (`agent_register`, or provider and model on claim_task and plan_next,
remembered for its next calls), read before a claim is routed; an agent token's caller is
bound to one provider (`Bound`). Routing itself is services/routing.py's."""

from dataclasses import dataclass
from datetime import datetime

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.models import AgentIdentity
from wvo_mcp.providers import Providers
from wvo_mcp.rules import routing
from wvo_mcp.store import Answer, Row, Tx


@dataclass(frozen=True, slots=True)
class Identity:
    """The provider and tier an agent runs on."""

    provider: routing.Provider
    tier: routing.Tier

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.tier.name} ({self.tier.model})"


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
