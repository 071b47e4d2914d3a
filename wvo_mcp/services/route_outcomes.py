"""Outcome statistics per route (issue 37): for each provider, tier and task class, what the
attempts routed there came to, by the rule in rules/learning.py: an outcome fades its
route's decayed sums by `keep` and adds its increments (learning.increments), and counts
once in `outcomes`, in one upsert inside the caller's transaction. So the statistics change
exactly when the outcome is recorded, and writers on one route never lose an update."""

import math
from dataclasses import dataclass
from datetime import datetime
from typing import get_args

from wvo_mcp import timeutil
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules import learning
from wvo_mcp.store import Row, Tx

Kind = learning.OutcomeKind
KINDS: tuple[Kind, ...] = get_args(Kind)
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
    _check(provider, tier, task_class, kind, tokens, cost, keep)
    added = learning.increments(kind, int(tokens), float(cost))
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


def _check(
    provider: str, tier: str, klass: str, kind: str, tokens: float, cost: float, keep: float
) -> None:
    for what, value in (("provider", provider), ("tier", tier), ("task class", klass)):
        if not isinstance(value, str) or not value.strip():
            raise ValidationFailed(f"{what} {value!r}: give a non-empty name")
    if kind not in KINDS:
        raise ValidationFailed(f"outcome {kind!r} is not one of {', '.join(KINDS)}")
    if not (_number(keep) and 0 < keep <= 1):
        raise ValidationFailed(f"keep {keep!r}: give a factor in (0, 1], 0.5 ** (1 / half-life)")
    for what, amount in (("tokens", tokens), ("cost", cost)):
        if not (_number(amount) and math.isfinite(amount) and amount >= 0):
            raise ValidationFailed(f"{what} {amount!r}: give a finite number >= 0")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
