"""Each routed attempt's outcome, added to its route's fading statistics.

Outcome statistics per route (issue 37): for each provider, tier and task class, what the
attempts routed there came to, by the rule in rules/learning.py: an outcome fades its
route's decayed sums by `keep` and adds its increments (learning.increments), and counts
once in `outcomes`, in one upsert inside the caller's transaction. So the statistics change
exactly when the outcome is recorded, and writers on one route never lose an update."""

from dataclasses import dataclass
from datetime import datetime

from wvo_mcp import timeutil
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules import learning
from wvo_mcp.store import Row, Tx

Kind = learning.OutcomeKind
# An outcome weighs half as much 10 outcomes of its route later (learning.Policy).
KEEP = learning.Policy().keep


@dataclass(frozen=True, slots=True)
class Route:
    """One route's statistics, by provider, tier and task class."""

    provider: str
    tier: str
    task_class: str
    stats: learning.RouteStats


def record(
    tx: Tx,
    provider: str,
    tier: str,
    task_class: str,
    kind: str,
    tokens: float,
    cost: float,
    keep: float,
    now: datetime,
) -> None:
    """One outcome of an attempt routed to provider/tier, for a task of `task_class`."""
    for what, name in (("provider", provider), ("tier", tier), ("task class", task_class)):
        if not isinstance(name, str) or not name.strip():
            raise ValidationFailed(f"{what} {name!r}: give a non-empty name")
    learning.check_keep(keep)
    added = learning.increments(kind, tokens, cost)
    added["tokens"] = float(int(tokens))  # counted in whole tokens
    # Nobody reads its row count: on PostgreSQL it goes out with the next awaited statement.
    tx.send(
        "record_route_outcome",
        {
            "provider": provider,
            "tier": tier,
            "task_class": task_class,
            **added,
            "keep": float(keep),
            "now": timeutil.to_text(now),
        },
    )


def record_attempt(tx: Tx, row: Row, kind: Kind, now: datetime, keep: float = KEEP) -> bool:
    """The outcome of a task's current attempt, on the route its grant was given (`row`: the
    task's row, its routing columns as the attempt left them). False if it was not routed."""
    provider, tier = row["routed_provider"], row["routed_tier"]
    if provider is None or tier is None:
        return False
    record(
        tx, provider, tier, learning.task_class(row["complexity"]), kind,
        row["used_tokens"], row["used_cost"], keep, now,
    )  # fmt: skip
    return True


def add_cost(
    tx: Tx, provider: str, tier: str, task_class: str, tokens: int, cost: float, now: datetime
) -> None:
    """What an attempt cost after its outcome was counted (its worker's run went on after
    it gave up, or after its lease was lost): its route's tokens and cost, as part of that
    outcome, so every attempt's spend reaches its route's cost per landed change."""
    learning.increments("failed", tokens, cost)  # refuses what it cannot count
    tx.send(
        "add_route_cost",
        {"provider": provider, "tier": tier, "task_class": task_class,
         "tokens": float(int(tokens)), "cost": float(cost), "now": timeutil.to_text(now)},
    )  # fmt: skip


def _route(row: Row) -> Route:
    stats = learning.RouteStats(
        outcomes=int(row["outcomes"]),
        **{name: float(row[name]) for name in learning.DECAYED},
        updated_at=timeutil.from_text(row["updated_at"]),
    )
    return Route(row["provider"], row["tier"], row["task_class"], stats)


def all_stats(tx: Tx) -> list[Route]:
    """Every route's statistics, by provider, tier and task class."""
    return [_route(r) for r in tx.all("route_outcomes_all")]


def stats_of(tx: Tx, provider: str) -> list[Route]:
    """One provider's routes, by tier and task class."""
    return [_route(r) for r in tx.all("route_outcomes_of_provider", {"provider": provider})]
