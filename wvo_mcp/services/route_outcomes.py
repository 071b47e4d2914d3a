"""Outcome statistics per route (issue 37): for each provider, tier and task class, decayed
sums of what the attempts routed there came to. An outcome fades every sum of its route by
`keep` and adds its increments (INCREMENTS), in one upsert inside the caller's transaction:
the statistics change exactly when the outcome is recorded, and concurrent writers on one
route never lose an update. The learned choice reads them (rules/learning.py)."""

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast, get_args

from wvo_mcp import timeutil
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules.task_class import task_class as class_of
from wvo_mcp.store import Row, Tx

Kind = Literal["landed_first_try", "landed", "returned", "failed", "held"]
KINDS: tuple[Kind, ...] = get_args(Kind)
# What one outcome adds to its route's sums (before tokens and cost). The pure choice must
# fade and add the same way: change the rule here, in one place.
INCREMENTS: dict[Kind, dict[str, float]] = {
    "landed_first_try": {"outcomes": 1, "attempts": 1, "first_try_landed": 1, "landed": 1},
    "landed": {"outcomes": 1, "attempts": 1, "landed": 1},  # after at least one return
    "returned": {"outcomes": 1, "attempts": 1, "returned": 1},
    "failed": {"outcomes": 1, "attempts": 1, "failed": 1},
    "held": {"outcomes": 1, "attempts": 1, "held": 1},
}
COUNTS = ("outcomes", "attempts", "first_try_landed", "landed", "returned", "failed", "held")
# Until the providers file sets it: an outcome weighs half as much 20 outcomes later.
HALF_LIFE_OUTCOMES = 20
KEEP = 0.5 ** (1 / HALF_LIFE_OUTCOMES)


@dataclass(frozen=True, slots=True)
class RouteStats:
    """One route's decayed sums (floats: older outcomes count for less)."""

    provider: str
    tier: str
    task_class: str
    outcomes: float
    attempts: float
    first_try_landed: float
    landed: float
    returned: float
    failed: float
    held: float
    tokens: float
    cost: float
    updated_at: str


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
    added = dict.fromkeys(COUNTS, 0.0) | INCREMENTS[cast(Kind, kind)]
    # Nobody reads its row count: on PostgreSQL it goes out with the next awaited statement.
    tx.send(
        "record_route_outcome",
        {
            "provider": provider,
            "tier": tier,
            "task_class": task_class,
            **{name: float(value) for name, value in added.items()},
            "tokens": float(tokens),
            "cost": float(cost),
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
        tx, provider, tier, class_of(row["complexity"]), kind,
        row["used_tokens"], row["used_cost"], keep, now,
    )  # fmt: skip
    return True


def _check(
    provider: str, tier: str, klass: str, kind: str, tokens: float, cost: float, keep: float
) -> None:
    for what, value in (("provider", provider), ("tier", tier), ("task class", klass)):
        if not isinstance(value, str) or not value.strip():
            raise ValidationFailed(f"{what} {value!r}: give a non-empty name")
    if kind not in INCREMENTS:
        raise ValidationFailed(f"outcome {kind!r} is not one of {', '.join(KINDS)}")
    if not (_number(keep) and 0 < keep <= 1):
        raise ValidationFailed(f"keep {keep!r}: give a factor in (0, 1], 0.5 ** (1 / half-life)")
    for what, amount in (("tokens", tokens), ("cost", cost)):
        if not (_number(amount) and math.isfinite(amount) and amount >= 0):
            raise ValidationFailed(f"{what} {amount!r}: give a finite number >= 0")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _stats(row: Row) -> RouteStats:
    return RouteStats(**{name: row[name] for name in RouteStats.__dataclass_fields__})


def all_stats(tx: Tx) -> list[RouteStats]:
    """Every route's sums, by provider, tier and task class."""
    return [_stats(r) for r in tx.all("route_outcomes_all")]


def stats_of(tx: Tx, provider: str) -> list[RouteStats]:
    """One provider's routes, by tier and task class."""
    return [_stats(r) for r in tx.all("route_outcomes_of_provider", {"provider": provider})]
