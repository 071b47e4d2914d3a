"""Each route's figures per task class, as the dashboard shows them.

Each route's figures per task class, as the dashboard shows them (issue 37): the outcome
statistics of every route that has any, figured by rules/learning.figures_of, each with its
state, where a fresh task of the class goes now and why, and the policy in force."""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from wvo_mcp.providers import Providers
from wvo_mcp.rules import learning, routing
from wvo_mcp.services import route_outcomes
from wvo_mcp.services.routing import Router
from wvo_mcp.store import Tx

# chosen: where a fresh task of the class goes now; proven: enough evidence, not chosen;
# not configured: a tier the providers file no longer has (its figures stay recorded).
State = Literal["chosen", "proven", "unproven", "below floor", "not configured"]


@dataclass(frozen=True, slots=True)
class RouteRow:
    figures: learning.RouteFigures
    state: State


@dataclass(frozen=True, slots=True)
class ClassRoutes:
    """One task class: where a fresh task of its lowest complexity, with no estimate, pin or
    failure of its own, goes now (None: nowhere free), how and why, and its routes' rows."""

    task_class: str
    complexity: int
    chosen: str | None  # provider/tier
    basis: str  # routing.Decision.basis
    reason: str
    routes: tuple[RouteRow, ...]


@dataclass(frozen=True, slots=True)
class RouteBoard:
    policy: learning.Policy
    pins: int
    classes: tuple[ClassRoutes, ...]


def _state(figures: learning.RouteFigures, chosen: str | None, configured: bool) -> State:
    if not configured:
        return "not configured"
    if figures.name == chosen:
        return "chosen"
    if figures.below_floor:
        return "below floor"
    return "proven" if figures.proven else "unproven"


def _candidate(
    providers: Providers, route: route_outcomes.Route, needs: routing.Estimate
) -> tuple[learning.Candidate, bool]:
    """The route as the router would weigh it, and whether the providers file still has it
    (if not, its cost per attempt is what it reported, or nothing)."""
    provider = providers.get(route.provider)
    tier = None if provider is None else provider.tier(route.tier)
    if provider is None or tier is None:
        return learning.Candidate(route.provider, route.tier, "", 0.0), False
    return learning.candidate(provider, tier, needs), True


def _order(providers: Providers, route: route_outcomes.Route) -> tuple[int, int, str, str]:
    """Preference order, then the providers file's tier order; routes it lacks last."""
    names = [p.name for p in providers.providers]
    if route.provider not in names:
        return (len(names), 0, route.provider, route.tier)
    tiers = [t.name for t in providers.providers[names.index(route.provider)].tiers]
    place = tiers.index(route.tier) if route.tier in tiers else len(tiers)
    return (names.index(route.provider), place, route.provider, route.tier)


def view(tx: Tx, providers: Providers, now: datetime) -> RouteBoard:
    """Every task class with its routes' figures and where a fresh task goes, read in one
    transaction (the dashboard's budgets and routing view)."""
    router = Router(tx, providers, now)  # its statistics, read once, are what it routes on
    policy = providers.learning
    classes = []
    for low, _ in learning.BANDS:
        name = learning.task_class(low)
        decision = router.fresh(low)
        chosen = f"{decision.provider}/{decision.tier}" if decision.routed else None
        rows = []
        found = (
            route_outcomes.Route(provider, tier, name, stats)
            for (provider, tier), stats in router.recorded(name).items()
        )
        for route in sorted(found, key=lambda r: _order(providers, r)):
            candidate, configured = _candidate(providers, route, router.estimate(low))
            figures = learning.figures_of(candidate, route.stats, policy)
            rows.append(RouteRow(figures, _state(figures, chosen, configured)))
        classes.append(ClassRoutes(name, low, chosen, decision.basis, decision.reason, tuple(rows)))
    return RouteBoard(policy, len(providers.pins), tuple(classes))
