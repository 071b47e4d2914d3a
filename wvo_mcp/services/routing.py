"""Which provider and tier a task goes to, decided inside a transaction from what the store holds.

Provider routing against the database: usage windows, breakers and the routes' outcome
statistics read once per transaction (`Router`), a grant's route recorded and its tokens
reserved, and `route_task`'s answer. Who an agent runs on: services/agents.py; usage
recorded and charged: services/usage.py.

Carries out `rules/learning.py`, `rules/routing.py` and `rules/breakers.py`."""

import json
import random
from dataclasses import dataclass
from datetime import datetime

from wvo_mcp import timeutil
from wvo_mcp.errors import NotFound
from wvo_mcp.models import ClaimRoute, RouteAlternative, RouteDecision
from wvo_mcp.providers import Providers
from wvo_mcp.rules import learning, routing
from wvo_mcp.rules.breakers import Breaker
from wvo_mcp.services import route_outcomes
from wvo_mcp.services.agents import Identity
from wvo_mcp.store import Row, Tx


def breaker_of(row: Row) -> Breaker:
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
            breaker=Breaker() if breaker is None else breaker_of(breaker),
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

    def reach(self, identity: Identity) -> "Reach":
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

    def _explorable(self, complexity: int, identity: Identity) -> bool:
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


def fits_pin(pin: learning.Pin, identity: Identity) -> bool:
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


def failed_on_tier(tx: Tx, row: Row) -> None:
    """A routed attempt failed: its next attempt goes one tier up."""
    if row["routed_provider"] is not None and row["routed_tier"] is not None:
        tx.run("set_failed_tier", (row["routed_provider"], row["routed_tier"], row["id"]))
