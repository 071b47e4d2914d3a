"""Routing that learns the cost per landed change, without I/O.

**Task class**: the complexity band, `c1-3`, `c4-7` or `c8-10`. The bands are the packaged
tiers' ranges (codex low/medium/high, claude sonnet 1-7 and opus 8-10), so within a class the
same tiers cover every task and their figures compare like with like; three classes keep the
evidence per route from thinning. Epics and labels are left out: an epic usually closes before
it gathers evidence, and labels are free text an agent writes, so they would split the figures
into rows without bound.

**Statistics** per (provider, tier, class), as `RouteStats`: `outcomes` is a plain count of
everything recorded; the other sums decay. Each outcome of a route multiplies that route's
decayed sums by `keep = 0.5 ** (1 / half_life_outcomes)`, then adds `increments()`:

- landed_first_try: attempts, landed and first_try_landed each + 1;
- landed (after returns): attempts and landed + 1;
- returned: attempts and returned + 1; failed: attempts and failed + 1;
- held: held + 1 only,

and always `tokens` and `cost` as reported. A hold is not an attempt: the returns before it
are already counted, and a conflict with a person's work says nothing of the tier; its
spending still counts.

**The choice** (`choose`) is among the routes the caller allows now: breakers, budgets,
capacity and exclusions are applied before (`route` offers every unblocked tier that covers the
complexity and the tiers above it on the same provider, `offered`, never one below); a
person's pin (`Pin`) leaves no choice. Per route, landing per attempt is the Beta(1, 1)
posterior mean p = (landed + 1) / (attempts + 2), and cost per attempt c is the observed cost /
attempts, or the tier's estimate before any is reported. A failed try is retried where routing
escalates it (one tier up, `_RetryCost`), so a first try's cost per landed change is c + (1 -
p) * that route's own, followed up to three retries deep (past that, and where a failure has
nowhere to go, c / p: as if retried in place). A route is proven from `min_evidence` decayed
attempts. The proven route with the lowest cost per landed change wins, unless its first-try
rate (first_try_landed / attempts) is under the floor.

**Exploration**, two ways. Doubt: each route is given the cost per landed change it would
have at a landing rate `optimism` standard deviations above its mean (`hoped`; the deviation
counts every outcome ever recorded, so it narrows as evidence grows, and an untried route
hopes most). When a less-known route could beat the best known that way, every attempt
tries it until its own outcomes rule it out: exploration shrinks as evidence grows, and grows
back when the best route's outcomes change and its figures rise above a rival's hope. Draws:
an attempt may also explore when its own draw (`exploring`: seeded by the task's id and grant
count, so every process and every call decides it alike) falls under `explore_share`, so that
share of attempts, and no more, may go elsewhere by chance. It goes to the least-tried
unproven route that could still win (its cost per try under the best's cost per landed
change); when there is none, a Thompson sample (a normal approximation of each posterior,
one uniform draw per route) picks, and if that is not the best known, it is an exploration.
Before any route of the class is proven, doubt alone may move an attempt off the static
rule's route: to the route with the lowest hoped cost per landed change, when that hopes
strictly lower than the static route (UCB from the class's first task, not after
`min_evidence` attempts on the static route: a class that lives for a few dozen tasks, or
whose static route is the dear one, would otherwise spend them there). With nothing recorded
every route hopes the same landing rate, so the tiers' prices decide. A failure's retries
count from the first task too: a cheap try whose failures climb to dear tiers is dear.
Nothing hoping lower, or no optimism, or learning off, or a retry after a failure: the
static rule's choice (rules/routing.py).

Carried out by `wvo_mcp/services/routing.py` and `wvo_mcp/services/route_outcomes.py`.
"""

import hashlib
import math
import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from statistics import NormalDist
from typing import Literal

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules import routing
from wvo_mcp.rules.routing import Decision, Escalation, Estimate, Provider, Tier, Usage

OutcomeKind = Literal["landed_first_try", "landed", "returned", "failed", "held"]
Basis = Literal[
    "learned", "exploration", "cold_start", "learning_off", "only_route", "floor", "pinned"
]
BANDS = ((1, 3), (4, 7), (8, 10))
DECAYED = ("attempts", "first_try_landed", "landed", "returned", "failed", "held", "tokens", "cost")
_BUMPS: dict[str, tuple[str, ...]] = {
    "landed_first_try": ("attempts", "landed", "first_try_landed"),
    "landed": ("attempts", "landed"),
    "returned": ("attempts", "returned"),
    "failed": ("attempts", "failed"),
    "held": ("held",),
}


def task_class(complexity: int) -> str:
    for low, high in BANDS:
        if low <= complexity <= high:
            return f"c{low}-{high}"
    raise ValidationFailed(f"complexity {complexity!r} has no task class: give 1 to 10")


@dataclass(frozen=True, slots=True)
class RouteStats:
    outcomes: int = 0
    attempts: float = 0.0
    first_try_landed: float = 0.0
    landed: float = 0.0
    returned: float = 0.0
    failed: float = 0.0
    held: float = 0.0
    tokens: float = 0.0
    cost: float = 0.0
    updated_at: datetime | None = None


def increments(kind: str, tokens: float, cost: float) -> dict[str, float]:
    """What one outcome adds to each decayed sum (for a store that updates in SQL:
    `x = x * keep + increment`), or why it cannot be counted."""
    if kind not in _BUMPS:
        raise ValidationFailed(f"outcome {kind!r} is not one of {', '.join(_BUMPS)}")
    for what, amount in (("tokens", tokens), ("cost", cost)):
        if not (_number(amount) and math.isfinite(amount) and amount >= 0):
            raise ValidationFailed(f"{what} {amount!r}: give a finite number >= 0")
    added = dict.fromkeys(DECAYED, 0.0)
    added.update(dict.fromkeys(_BUMPS[kind], 1.0))
    return added | {"tokens": float(tokens), "cost": float(cost)}


def check_keep(keep: float) -> None:
    """Refuse a fading factor outside (0, 1]."""
    if not (_number(keep) and 0 < keep <= 1):
        raise ValidationFailed(f"keep {keep!r}: give a factor in (0, 1], 0.5 ** (1 / half-life)")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def recorded(
    stats: RouteStats,
    kind: OutcomeKind,
    tokens: int,
    cost: float,
    keep: float,
    at: datetime | None = None,
) -> RouteStats:
    """`stats` after one more outcome of its route (the rule in the module docstring)."""
    check_keep(keep)
    add = increments(kind, tokens, cost)
    return RouteStats(
        outcomes=stats.outcomes + 1,
        **{name: float(getattr(stats, name)) * keep + add[name] for name in DECAYED},
        updated_at=at if at is not None else stats.updated_at,
    )


@dataclass(frozen=True, slots=True)
class Policy:
    enabled: bool = True
    floor: float = 0.0  # least first-try landing rate of a proven route; 0: none
    explore_share: float = 0.1  # most of the recent routed tasks sent exploring
    optimism: float = 1.0  # deviations of doubt a less-known route is given; 0: none
    min_evidence: float = 5.0  # decayed attempts from which a route is proven
    half_life_outcomes: float = 10.0  # outcomes of a route after which an old one weighs half

    def __post_init__(self) -> None:
        wrong = [
            f"{name} {value!r} must be from 0 to 1"
            for name, value in (("floor", self.floor), ("explore_share", self.explore_share))
            if not 0.0 <= value <= 1.0
        ]
        if not 0.0 <= self.optimism <= 3.0:
            wrong.append(f"optimism {self.optimism!r} must be from 0 to 3")
        if not 1.0 <= self.half_life_outcomes <= 1000.0:
            wrong.append(f"half_life_outcomes {self.half_life_outcomes!r} must be 1 to 1000")
        # Decayed attempts never reach 1 / (1 - keep): from there no route could be proven.
        elif not 0.0 < self.min_evidence < self.most_evidence:
            wrong.append(
                f"min_evidence {self.min_evidence!r} must be above 0 and below "
                f"{self.most_evidence:.1f}, "
                f"the most a route holds with a half-life of {self.half_life_outcomes:g}"
            )
        if wrong:
            raise ValidationFailed("routing learning: " + "; ".join(wrong))

    @property
    def keep(self) -> float:
        return float(0.5 ** (1 / self.half_life_outcomes))

    @property
    def most_evidence(self) -> float:
        return 1 / (1 - self.keep)


def observed_estimate(
    stats: Collection[RouteStats], policy: Policy, output_share: float
) -> Estimate | None:
    """What a task of the class is expected to use, once its routes together have
    `min_evidence` decayed attempts: their decayed tokens per outcome (attempts and holds),
    `output_share` of it output. None before: the complexity's static estimate stands."""
    attempts = sum(s.attempts for s in stats)
    outcomes = attempts + sum(s.held for s in stats)
    if attempts < policy.min_evidence or outcomes <= 0:
        return None
    total = round(sum(s.tokens for s in stats) / outcomes)
    if total <= 0:
        return None  # routes that never report usage say nothing of the size
    output = round(total * output_share)
    return Estimate(total - output, output)


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: str
    tier: str
    model: str
    cost_per_attempt: float  # the tier's estimate for this task, until the route reports cost
    # What a failed attempt costs from there on, per landed change: its retry goes where
    # routing escalates it (rules/routing.py). None: as if retried on the same route.
    after_failure: float | None = None


def candidate(provider: Provider, tier: Tier, needs: Estimate) -> Candidate:
    return Candidate(provider.name, tier.name, tier.model, needs.cost(tier))


def offered(provider: Provider, complexity: int) -> tuple[Tier, ...]:
    """The tiers of `provider` to offer for a fresh task: the first that covers the complexity
    and each above it that reaches it (a pricier tier may land more often)."""
    first = next((i for i, t in enumerate(provider.tiers) if t.covers(complexity)), None)
    if first is None:
        return ()
    return tuple(t for t in provider.tiers[first:] if t.max_complexity >= complexity)


@dataclass(frozen=True, slots=True)
class RouteFigures:
    provider: str
    tier: str
    outcomes: int
    evidence: float  # decayed attempts
    first_try_rate: float | None  # None before any attempt
    landing_rate: float  # per attempt, posterior mean
    cost_per_attempt: float
    cost_per_landed: float
    proven: bool
    below_floor: bool
    after_failure: float | None = None

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.tier}"

    def hoped(self, optimism: float) -> float:
        """Cost per landed change at a landing rate `optimism` standard deviations above the
        mean, the deviation of a Beta posterior over every outcome ever recorded: it keeps
        narrowing after the decayed sums stop growing, so a close rival is ruled out for good
        once tried enough, and never holds the choice by doubt alone."""
        m = self.landing_rate
        rate = min(1.0, m + optimism * math.sqrt(m * (1 - m) / (self.outcomes + 3)))
        return per_landed(self.cost_per_attempt, rate, self.after_failure)


@dataclass(frozen=True, slots=True)
class LearnedChoice:
    route: Candidate
    basis: Basis
    reason: str
    figures: tuple[RouteFigures, ...]  # one per candidate, in their order

    @property
    def explored(self) -> bool:
        return self.basis == "exploration"


def figures_of(candidate: Candidate, stats: RouteStats, policy: Policy) -> RouteFigures:
    n = stats.attempts
    landing = (stats.landed + 1) / (n + 2)
    per_attempt = stats.cost / n if n > 0 and stats.cost > 0 else candidate.cost_per_attempt
    first_try = stats.first_try_landed / n if n > 0 else None
    proven = n >= policy.min_evidence
    below = proven and first_try is not None and first_try < policy.floor
    return RouteFigures(
        candidate.provider, candidate.tier, stats.outcomes, n, first_try, landing,
        per_attempt, per_landed(per_attempt, landing, candidate.after_failure), proven, below,
        candidate.after_failure,
    )  # fmt: skip


def per_landed(per_attempt: float, landing: float, after_failure: float | None) -> float:
    """Expected cost per landed change of a first try: the try, and when it fails (1 -
    landing of the time) what its retries cost per landed change."""
    retried = per_attempt / landing if after_failure is None else after_failure
    return per_attempt + (1 - landing) * retried


def choose(
    candidates: Sequence[Candidate],
    stats: Mapping[tuple[str, str], RouteStats],
    policy: Policy,
    *,
    draw: Callable[[], float] | random.Random | None,
    static_choice: Candidate,
) -> LearnedChoice:
    """The route for a task among `candidates` (in preference order), given the stats of the
    task's class keyed by (provider, tier). `draw` gives uniform numbers in [0, 1) to an
    attempt that may explore (`exploring`), and is None for one that may not."""
    if not candidates:
        raise ValidationFailed("choose needs at least one candidate route; none was given")
    figs = tuple(
        figures_of(c, stats.get((c.provider, c.tier), RouteStats()), policy) for c in candidates
    )
    told = _all_told(figs, policy)
    if not policy.enabled:
        return LearnedChoice(static_choice, "learning_off", "learning off: the static rule", figs)
    if len(candidates) == 1:
        return LearnedChoice(candidates[0], "only_route", f"the only route allowed: {told}", figs)
    if not any(f.proven for f in figs):
        bold = _doubted(candidates, figs, policy.optimism, static_choice)
        if bold is not None:
            why = (
                f"trying {figs[bold].name} before any route is proven: as low as "
                f"{_money(figs[bold].hoped(policy.optimism))} per landed change, under what the "
                "static rule's route could plausibly cost"
            )
            return LearnedChoice(candidates[bold], "exploration", f"{why}; {told}", figs)
        cold = f"{_cold(policy)}; {told}" if any(f.outcomes for f in figs) else _cold(policy)
        return LearnedChoice(static_choice, "cold_start", cold, figs)
    allowed = [i for i, f in enumerate(figs) if f.proven and not f.below_floor]
    best = min(allowed, key=lambda i: figs[i].cost_per_landed) if allowed else None
    bold = _hopeful(figs, policy.optimism)
    if best is not None and bold is not None and bold != best:
        why = (
            f"trying {figs[bold].name}: too few outcomes to rule out that it beats "
            f"{figs[best].name} (as low as {_money(figs[bold].hoped(policy.optimism))} per "
            "landed change)"
        )
        return LearnedChoice(candidates[bold], "exploration", f"{why}; {told}", figs)
    if draw is not None:
        sampled = _unproven(figs, best)
        if sampled is None:
            sampled = _sampled(figs, draw.random if isinstance(draw, random.Random) else draw)
        if sampled is not None and sampled != best:
            why = (
                f"exploring {figs[sampled].name} (one of the {policy.explore_share:.0%} of "
                "attempts that may explore)"
            )
            return LearnedChoice(candidates[sampled], "exploration", f"{why}; {told}", figs)
    if best is None:
        why = f"every proven route is below the {policy.floor:.0%} first-try floor: the static rule"
        return LearnedChoice(static_choice, "floor", f"{why}; {told}", figs)
    rest = _all_told([f for i, f in enumerate(figs) if i != best], policy)
    why = f"lowest est. cost per landed change: {_told(figs[best], policy)}"
    return LearnedChoice(candidates[best], "learned", f"{why}; {rest}" if rest else why, figs)


def _hopeful(figs: Sequence[RouteFigures], optimism: float) -> int | None:
    """The route with the lowest cost per landed change it could plausibly have (`hoped`),
    among those not under the floor; None with no optimism."""
    allowed = [i for i, f in enumerate(figs) if not f.below_floor and optimism > 0]
    return min(allowed, key=lambda i: figs[i].hoped(optimism), default=None)


def _doubted(
    candidates: Sequence[Candidate],
    figs: Sequence[RouteFigures],
    optimism: float,
    static_choice: Candidate,
) -> int | None:
    """Before any route is proven: the route with the lowest hoped cost per landed change,
    when it is not the static rule's and hopes strictly lower than it (UCB from the first
    outcome, so a class does not spend its first `min_evidence` tasks on the static route
    alone); None when the static route stands."""
    bold = _hopeful(figs, optimism)
    static = next(
        (i for i, c in enumerate(candidates)
         if (c.provider, c.tier) == (static_choice.provider, static_choice.tier)),
        None,
    )  # fmt: skip
    if bold is None or static is None or bold == static:
        return None
    return bold if figs[bold].hoped(optimism) < figs[static].hoped(optimism) else None


def _unproven(figs: Sequence[RouteFigures], best: int | None) -> int | None:
    """The least-tried unproven route that could still beat the best known: one whose cost
    per landed change, were it to land every time, is below the best's. Costlier ones are
    never worth the try."""
    bar = math.inf if best is None else figs[best].cost_per_landed
    hopeful = [
        i
        for i, f in enumerate(figs)
        if not f.proven and per_landed(f.cost_per_attempt, 1.0, None) < bar
    ]
    return min(hopeful, key=lambda i: figs[i].evidence, default=None)


def _cold(policy: Policy) -> str:
    return f"cold start, no route has {policy.min_evidence:g} attempts yet: the static rule"


def _sampled(figs: Sequence[RouteFigures], uniform: Callable[[], float]) -> int | None:
    """Thompson sampling: each route not under the floor draws a landing rate from its
    posterior; the lowest cost per landed change at that rate wins."""
    winner, lowest = None, math.inf
    for i, f in enumerate(figs):
        if f.below_floor:
            continue
        # Beta(a, b) with a + b = attempts + 2: its variance is m (1 - m) / (a + b + 1).
        m = f.landing_rate
        spread = NormalDist(m, math.sqrt(m * (1 - m) / (f.evidence + 3)))
        rate = spread.inv_cdf(min(max(uniform(), 1e-9), 1 - 1e-9))
        cost = per_landed(f.cost_per_attempt, min(max(rate, 0.01), 1.0), f.after_failure)
        if cost < lowest:
            winner, lowest = i, cost
    return winner


def _all_told(figs: Sequence[RouteFigures], policy: Policy) -> str:
    """Each route's figures; the untried named together at the end."""
    told = [_told(f, policy) for f in figs if f.outcomes]
    untried = [f.name for f in figs if not f.outcomes]
    return "; ".join(told + ([f"untried: {', '.join(untried)}"] if untried else []))


def _told(f: RouteFigures, policy: Policy) -> str:
    first = f"{f.first_try_rate or 0.0:.0%}"  # proven: it has attempts, so a rate
    if not f.proven:
        return f"{f.name} unproven ({f.evidence:.1f} of {policy.min_evidence:g} attempts)"
    if f.below_floor:
        return f"{f.name} below the {policy.floor:.0%} first-try floor ({first} first try)"
    return (
        f"{f.name} est. {_money(f.cost_per_landed)} per landed change, {first} first try, "
        f"over {f.outcomes} outcomes"
    )


def _money(amount: float) -> str:
    return f"${amount:.2f}" if amount >= 0.1 else f"${amount:.2g}"


def exploring(policy: Policy, task_id: str, grants: int) -> random.Random | None:
    """This attempt's draws if it is one of the `explore_share` that may explore, else None.
    Decided by a hash of the task and its grant count (the same in every process), so
    plan_next, claim_task and route_task agree on an attempt; a claim asks it of every task it
    scans, so the hash is cheap and the draws are seeded only for those that explore."""
    if not policy.enabled or policy.explore_share <= 0.0:
        return None
    seed = f"{task_id}:{grants}".encode()
    gate = int.from_bytes(hashlib.blake2b(seed, digest_size=8).digest()) / 2**64
    return random.Random(seed) if gate < policy.explore_share else None


@dataclass(frozen=True, slots=True)
class Pin:
    """A person's route for a task or an epic (the providers file's `learning.pins`)."""

    provider: str
    tier: str
    task_id: str | None = None
    epic_id: str | None = None

    @property
    def what(self) -> str:
        return f"task {self.task_id}" if self.task_id is not None else f"epic {self.epic_id}"


def pin_for(pins: Sequence[Pin], task_id: str, epic_id: str | None) -> Pin | None:
    """The task's own pin, else its epic's."""
    own = next((p for p in pins if p.task_id == task_id), None)
    if own is not None or epic_id is None:
        return own
    return next((p for p in pins if p.epic_id == epic_id), None)


def route(
    complexity: int,
    needs: Estimate,
    providers: Sequence[Provider],
    usage: Mapping[str, Usage],
    now: datetime,
    failed_on: Escalation | None,
    *,
    stats: Mapping[tuple[str, str], RouteStats],
    policy: Policy,
    draw: random.Random | None = None,
) -> Decision:
    """The learned route (module docstring) of a task whose class has `stats`; the static
    rule's route on a retry after a failure, with learning off, or when nothing is free."""
    found = options(complexity, needs, providers, usage, now, failed_on, stats=stats, policy=policy)
    return decide(found, providers, usage, now, stats=stats, policy=policy, draw=draw)


@dataclass(frozen=True, slots=True)
class Options:
    """A task's routes before its own draw: the static rule's decision, and the candidates
    learning weighs (none: the static decision stands). Tasks alike share them."""

    static: Decision
    candidates: tuple[Candidate, ...] = ()


def options(
    complexity: int,
    needs: Estimate,
    providers: Sequence[Provider],
    usage: Mapping[str, Usage],
    now: datetime,
    failed_on: Escalation | None,
    *,
    stats: Mapping[tuple[str, str], RouteStats],
    policy: Policy,
) -> Options:
    static = routing.route(complexity, needs, providers, usage, now, failed_on)
    if failed_on is not None or not static.routed or not policy.enabled:
        return Options(static)
    if policy.optimism <= 0 and not any(s.outcomes for s in stats.values()):
        return Options(  # without doubt, the cold start is the static rule's: decided at once
            replace(static, reason=f"{static.reason}; {_cold(policy)}", basis="cold_start")
        )
    free = [
        p for p in providers if routing.blocked(p, usage.get(p.name, Usage()), needs, now) is None
    ]
    # A cheap try whose failures climb to dear tiers is dear: weighed from the first task.
    retry = _RetryCost(complexity, needs, providers, stats, policy)
    candidates = tuple(
        Candidate(p.name, t.name, t.model, needs.cost(t), retry.after(p.name, t.name))
        for p in free
        for t in offered(p, complexity)
    )  # dataclasses.replace would double what a cold class's decision costs
    return Options(static, candidates)


def decide(
    found: Options,
    providers: Sequence[Provider],
    usage: Mapping[str, Usage],
    now: datetime,
    *,
    stats: Mapping[tuple[str, str], RouteStats],
    policy: Policy,
    draw: random.Random | None = None,
) -> Decision:
    """The route among `found`, for an attempt with these draws (None: it does not explore)."""
    static = found.static
    if not found.candidates:
        return static
    assert static.provider and static.tier and static.model and static.estimated_cost is not None
    fallback = Candidate(static.provider, static.tier, static.model, static.estimated_cost)
    chosen = choose(found.candidates, stats, policy, draw=draw, static_choice=fallback)
    if chosen.basis in ("cold_start", "floor", "learning_off"):
        return replace(static, reason=f"{static.reason}; {chosen.reason}", basis=chosen.basis)
    picked = chosen.route
    provider = next(p for p in providers if p.name == picked.provider)
    tier = provider.tier(picked.tier)
    assert tier is not None
    return Decision(
        provider=picked.provider,
        tier=picked.tier,
        model=picked.model,
        estimate=static.estimate,
        estimated_cost=static.estimate.cost(tier),
        reason=chosen.reason,
        alternatives=static.alternatives,
        half_open_probe=usage.get(provider.name, Usage()).breaker.current(now) == "half_open",
        basis=chosen.basis,
    )


@dataclass
class _RetryCost:
    """What a failed try on a route costs from there on, per landed change: its retry goes
    where routing escalates it (as if every provider were free: blocks pass, the climb
    stays), whose own failure escalates again, up to `DEPTH` retries (past that, as if
    retried on the last route)."""

    complexity: int
    needs: Estimate
    providers: Sequence[Provider]
    stats: Mapping[tuple[str, str], RouteStats]
    policy: Policy
    known: dict[tuple[str, str, int], float | None] = field(default_factory=dict)
    DEPTH = 3

    def after(self, provider: str, tier: str, depth: int = DEPTH) -> float | None:
        key = (provider, tier, depth)
        if key not in self.known:  # the same climbs recur from every candidate
            self.known[key] = self._after(provider, tier, depth)
        return self.known[key]

    def _after(self, provider: str, tier: str, depth: int) -> float | None:
        up = routing.escalated(self.complexity, self.providers, Escalation(provider, tier))
        if up is None:
            return None  # nowhere to go: count it as tried again where it was
        nxt, nxt_tier = up
        further = self.after(nxt.name, nxt_tier.name, depth - 1) if depth > 1 else None
        retried = Candidate(
            nxt.name, nxt_tier.name, nxt_tier.model, self.needs.cost(nxt_tier), further
        )
        found = self.stats.get((nxt.name, nxt_tier.name), RouteStats())
        return figures_of(retried, found, self.policy).cost_per_landed


def pinned(
    pin: Pin,
    needs: Estimate,
    providers: Sequence[Provider],
    usage: Mapping[str, Usage],
    now: datetime,
) -> Decision:
    """A pinned task's route: the pinned tier, or none while that tier's provider is
    blocked (a person's pin is never overridden, not even by a failure's escalation)."""
    provider = next((p for p in providers if p.name == pin.provider), None)
    tier = None if provider is None else provider.tier(pin.tier)
    text = f"pinned to {pin.provider}/{pin.tier} for {pin.what} by the providers file"
    if provider is None or tier is None:  # parse() refuses such a pin; a config raced it
        return Decision(None, None, None, needs, None, f"{text}, which has no such tier", ())
    held_back = routing.blocked(provider, usage.get(provider.name, Usage()), needs, now)
    if held_back is not None:
        why, detail = held_back
        passed = routing.PassedOver(provider.name, tier.name, tier.model, why, detail)
        reason = f"{text}, which cannot take it now ({detail}); it stays ready until it can"
        return Decision(None, None, None, needs, None, reason, (passed,), basis="pinned")
    return Decision(
        provider=provider.name,
        tier=tier.name,
        model=tier.model,
        estimate=needs,
        estimated_cost=needs.cost(tier),
        reason=text,
        alternatives=(),
        half_open_probe=usage.get(provider.name, Usage()).breaker.current(now) == "half_open",
        basis="pinned",
    )
