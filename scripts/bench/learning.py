#!/usr/bin/env python
"""Routing that learns (issue 37), in simulation: today's static rule against the learned route
on the same seeded task stream, with simulated workers whose landing odds drift.

    python -m scripts.bench.learning                  # 500 tasks per mode
    python -m scripts.bench.learning --quick          # 200 tasks
    python -m scripts.bench.learning --json out.json --seed 7 --explore-share 0.2 --floor 0.5
    python -m scripts.bench.learning --seeds 20 --sizes 80,500   # the sweep against the oracle

A real run on the real store: an in-process Orchestrator on SQLite in a temporary folder, on
a clock the run moves (an attempt takes simulated minutes), so it is deterministic and fast;
a server over stdio would add only transport to hundreds of tasks. Tasks arrive one at a time
(complexity 1-10, one in 25 in an epic the providers file pins to beta/any) and each is
worked until it lands or is dead-lettered (4 attempts): route_task says where it goes, that
route's agent (one per provider and tier, declaring its provider and model) claims it, draws
from the route's hidden landing odds and token use for the task's class (`TRUTH`; the draws
are seeded by task and attempt, so both modes see the same luck), reports its usage with
record_usage (charged to the task through its lease), then moves it to done or failed. A
failed try is `failed` (a review's return needs the merge queue): today's rule sends the
retry one tier up, in both modes.

The scenario: six routes. alpha is preferred, and the static rule's alpha/mid lands one c4-7
task in three, alpha/big costs 5x as much; beta lands well a little dearer; gamma/flash is
cheap and middling, its failures climbing to alpha's tiers. Two runs of it: half way
through, one provider degrades (landing x0.3, tokens +30 %): alpha, the static rule's, or
beta, the one the learned route comes to favour. alpha's token use creeps up 15 % over the
stream. At three quarters a rate limit opens beta's breaker for three hours, ten tasks before
a pinned task, which waits.

Figures per scenario: cost per landed change (every attempt's cost over tasks landed), also
against the hindsight oracle (`oracle`: per class and half of the stream, the one first route
cheapest per landed change on these same draws); the share of first tries that explore, by
stretch of 50 tasks;
landed count, simulated hours and real seconds, budget windows used past their limit after a
report, grants to a provider whose breaker was open or to a pinned task's other tiers; and
tasks until the learned route settles on the best routes, from the start and from the drift:
from there on, at most WINDOW_MOST of every WINDOW tasks have a first try that the learned
rule itself (pins, explorations and grants made while the static choice was blocked aside)
sent off its class's best, the routes within GOOD_ENOUGH of the lowest true cost per landed
change, retries escalated by routing's rule (`good_routes`, from the hidden odds). The table
goes to stdout, progress to stderr; the exit code is 0 whatever the figures.

The sweep (`--seeds N`): the learned route alone against the hindsight oracle on seeds 1 to N,
for each stream size of `--sizes` and each of three workloads: nothing degrades (stationary),
alpha degrades half way (the cheap provider: alpha/small is the best c1-3 route, alpha/mid
the cheapest c4-7 try), beta degrades half way. Per workload and size: the mean and the worst
ratio over the seeds, their spread, the same before and after the drift, and a route chosen
from the hidden odds themselves (`known`: per class and half, the lowest true cost per landed
change, no learning), so the part of the gap that no rule could close shows. Each seed's
ratios go to the JSON's details.
"""

from __future__ import annotations

import functools
import random
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from scripts.bench.lib import BenchError, Report, arguments, log, write_json
from tests.contract.conftest import START, Clock
from wvo_mcp import providers as provider_config
from wvo_mcp.config import Settings
from wvo_mcp.models import RouteDecision, TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import routing
from wvo_mcp.rules.learning import BANDS, offered, task_class
from wvo_mcp.rules.routing import Escalation
from wvo_mcp.rules.transitions import Status

TIERS = {  # (provider, tier): model, complexity range, cost per 1k tokens in and out
    ("alpha", "small"): ("alpha-s", (1, 3), 0.001, 0.002),
    ("alpha", "mid"): ("alpha-m", (4, 7), 0.003, 0.006),
    ("alpha", "big"): ("alpha-l", (8, 10), 0.015, 0.03),
    ("beta", "any"): ("beta-1", (1, 7), 0.004, 0.008),
    ("beta", "top"): ("beta-2", (8, 10), 0.012, 0.024),
    ("gamma", "flash"): ("gamma-f", (1, 7), 0.002, 0.004),
}
# Hidden per route and class: (landing odds per attempt, tokens used per estimated token).
TRUTH: dict[tuple[str, str], dict[str, tuple[float, float]]] = {
    ("alpha", "small"): {"c1-3": (0.85, 0.8), "c4-7": (0.3, 0.9), "c8-10": (0.1, 0.9)},
    ("alpha", "mid"): {"c1-3": (0.9, 0.8), "c4-7": (0.35, 0.9), "c8-10": (0.2, 1.0)},
    ("alpha", "big"): {"c1-3": (0.95, 0.7), "c4-7": (0.9, 0.8), "c8-10": (0.6, 0.9)},
    ("beta", "any"): {"c1-3": (0.9, 0.8), "c4-7": (0.85, 0.8), "c8-10": (0.3, 1.0)},
    ("beta", "top"): {"c1-3": (0.95, 0.7), "c4-7": (0.9, 0.8), "c8-10": (0.85, 0.8)},
    ("gamma", "flash"): {"c1-3": (0.8, 0.9), "c4-7": (0.55, 1.0), "c8-10": (0.0, 1.0)},
}
# Minutes per attempt, by tier.
MINUTES = {"small": 4.0, "mid": 8.0, "big": 12.0, "any": 9.0, "top": 12.0, "flash": 5.0}
LANDING_AFTER, TOKENS_AFTER, CREEP = 0.3, 1.3, 0.15
# Each scenario degrades one provider half way: alpha, the static rule's and the cheap one
# (its small tier is the best c1-3 route), or beta, the one the learned route comes to favour
# for c4-10. "none" degrades nothing: the stationary stream (alpha's creep aside).
SCENARIOS = ("alpha", "beta")
SWEPT = ("none", "alpha", "beta")
PIN_EVERY, PINNED, MAX_ATTEMPTS = 25, ("beta", "any"), 4
WINDOW, WINDOW_MOST = 50, 2  # settled: the learned rule's own first tries off the best, per window
GOOD_ENOUGH = 1.1  # a route within 10 % of the lowest true cost per landed change is as good
WAIT_SECONDS, MOST_WAITS = 60.0, 24 * 60  # a task no provider can take waits, a day at most
MOST_BUSY = 200  # claims refused as busy (the store past capacity) before the run gives up
BLOCKED = {"breaker_open", "probe_in_flight", "at_capacity", "over_hourly_budget"}
BLOCKED.add("over_daily_budget")  # passed over for a reason other than the tier
COOLDOWN = 3 * 3600  # a rate limit holds beta back three simulated hours
BUDGETS = {
    "alpha": (800_000, 14_000_000),
    "beta": (700_000, 12_000_000),
    "gamma": (500_000, 8_000_000),
}  # hourly, daily


@dataclass
class Config:
    quick: bool
    tasks: int
    seed: int
    explore_share: float = 0.1
    floor: float = 0.0
    degraded: str = "beta"


@dataclass
class Run:
    """What one mode's run came to."""

    mode: str
    cost: float = 0.0
    attempts: int = 0
    landed: int = 0
    dead: int = 0
    waits: int = 0
    overruns: dict[str, int] = field(default_factory=dict)  # provider and window: tokens over
    to_open_breaker: int = 0
    while_open: int = 0  # grants made while some breaker was open
    pin_broken: int = 0
    sim_hours: float = 0.0
    seconds: float = 0.0
    phase_cost: list[float] = field(default_factory=lambda: [0.0, 0.0])
    phase_landed: list[int] = field(default_factory=lambda: [0, 0])
    first_tries: list[tuple[int, str, str, str, str, bool]] = field(default_factory=list)
    bases: Counter[str] = field(default_factory=Counter)

    def per_landed(self, phase: int | None = None) -> float:
        cost = self.cost if phase is None else self.phase_cost[phase]
        landed = self.landed if phase is None else self.phase_landed[phase]
        return cost / landed if landed else float("inf")


def providers_yaml(learning: str) -> str:
    lines = [
        "version: 1",
        "estimate: {tokens_per_complexity: 20000, output_share: 0.2}",
        "providers:",
    ]
    for preference, name in enumerate(BUDGETS, start=1):
        hourly, daily = BUDGETS[name]
        lines += [
            f"  - name: {name}",
            f"    preference: {preference}",
            f"    hourly_tokens: {hourly}",
            f"    daily_tokens: {daily}",
            f"    breaker: {{cooldown_seconds: {COOLDOWN}, cooldown_cap_seconds: {COOLDOWN}}}",
            "    tiers:",
        ]
        for (provider, tier), (model, (low, high), cin, cout) in TIERS.items():
            if provider == name:
                lines.append(
                    f"      - {{name: {tier}, model: {model}, complexity: [{low}, "
                    f"{high}], input_cost_per_1k: {cin}, output_cost_per_1k: {cout}}}"
                )
    pin = f"{{epic: E-pinned, provider: {PINNED[0]}, tier: {PINNED[1]}}}"
    return "\n".join([*lines, "learning:", learning, f"  pins: [{pin}]", ""])


def stream(config: Config) -> list[TaskSpec]:
    rng = random.Random(config.seed)
    specs = []
    for i in range(config.tasks):
        pinned = i % PIN_EVERY == PIN_EVERY - 1
        complexity = rng.randint(1, 7 if pinned else 10)
        specs.append(
            TaskSpec(
                id=f"T{i:04d}",
                title=f"simulated task {i}",
                complexity=complexity,
                epic_id="E-pinned" if pinned else None,
                max_attempts=MAX_ATTEMPTS,
            )
        )
    return specs


def truth(
    route: tuple[str, str], klass: str, index: int, total: int, degraded: str
) -> tuple[float, float]:
    """The hidden landing odds and token share of `route` for task `index` of `total`."""
    landing, tokens = TRUTH[route][klass]
    if route[0] == degraded and index >= total // 2:
        landing, tokens = landing * LANDING_AFTER, tokens * TOKENS_AFTER
    if route[0] == "alpha":
        tokens *= 1 + CREEP * index / total
    return landing, tokens


def settings(root: Path, providers: Path) -> Settings:
    return Settings(
        state_root=root / "state",
        workspace_root=root,
        providers_file=providers,
        health_interval_seconds=0,
        otel_enabled=False,
        backup_interval_minutes=0,
        wip_global=50,
        wip_per_agent=1,
        default_lease_seconds=7200,
        retry_base_seconds=0.0,
    )


async def simulate(config: Config, mode: str, root: Path) -> Run:
    learning = (
        "  enabled: false"
        if mode == "static"
        else f"  explore_share: {config.explore_share}\n  floor: {config.floor}"
    )
    path = root / "providers.yaml"
    path.write_text(providers_yaml(learning))
    clock = Clock(START)
    orch = await Orchestrator.open(settings(root, path), clock=clock.now)
    run = Run(mode)
    started = time.monotonic()
    try:
        for provider, tier in TIERS:
            await orch.register_agent(f"w-{provider}-{tier}", provider, TIERS[provider, tier][0])
        specs = stream(config)
        # A rate limit opens beta's breaker at three quarters, ten tasks before a pinned one.
        limited = 3 * config.tasks // 4 // PIN_EVERY * PIN_EVERY + PIN_EVERY - 11
        for index, spec in enumerate(specs):
            if index == limited:
                await orch.record_usage("beta", "beta-1", 0, 0, "rate_limited")
            await orch.create_tasks([spec], "planner")
            await work(orch, clock, run, spec, index, config)
            if index % 50 == 49:
                log(f"{mode}: {index + 1} tasks, {run.landed} landed, ${run.cost:.2f}")
    finally:
        await orch.close()
    run.seconds = time.monotonic() - started
    run.sim_hours = (clock.now() - START).total_seconds() / 3600
    return run


async def routed(orch: Orchestrator, clock: Clock, run: Run, task_id: str) -> RouteDecision:
    """The task's route, once some provider can take it (the clock moves while none can)."""
    for _ in range(MOST_WAITS):
        decision = await orch.route_task(task_id)
        if decision.routed:
            return decision
        run.waits += 1
        clock.advance(WAIT_SECONDS)
    raise BenchError(f"{task_id}: no provider took it in a day: {decision.reason}")


async def work(
    orch: Orchestrator, clock: Clock, run: Run, spec: TaskSpec, index: int, config: Config
) -> None:
    """Attempts at one task until it lands or is dead-lettered."""
    assert spec.id is not None
    klass, phase = task_class(spec.complexity), int(index >= config.tasks // 2)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        decision = await routed(orch, clock, run, spec.id)
        route = (decision.provider or "", decision.tier or "")
        breakers = {p.name: p.breaker.state for p in (await orch.provider_status()).providers}
        run.to_open_breaker += breakers[route[0]] == "open"
        run.while_open += "open" in breakers.values()
        run.pin_broken += spec.epic_id is not None and route != PINNED
        run.bases[decision.basis] += 1
        if attempt == 1:
            blocked = any(a.why in BLOCKED for a in decision.alternatives)
            run.first_tries.append((index, klass, *route, decision.basis, blocked))
        luck = random.Random(f"{config.seed}:{spec.id}:{attempt}")
        odds = truth(route, klass, index, config.tasks, config.degraded)
        moved, cost = await worker(orch, clock, run, spec, route, odds, luck)
        run.phase_cost[phase] += cost
        if moved == Status.DONE:
            run.landed += 1
            run.phase_landed[phase] += 1
            return
        if moved != Status.PENDING:
            break
    run.dead += 1


async def worker(
    orch: Orchestrator,
    clock: Clock,
    run: Run,
    spec: TaskSpec,
    route: tuple[str, str],
    odds: tuple[float, float],
    luck: random.Random,
) -> tuple[Status, float]:
    """The route's agent works one attempt: claims, reports usage, lands or fails it. The
    task's status after, and the attempt's cost."""
    assert spec.id is not None
    model, agent = TIERS[route][0], f"w-{route[0]}-{route[1]}"
    for _ in range(MOST_BUSY):  # a loaded machine may find the store past capacity: come back
        claim = await orch.claim(agent, spec.id, provider=route[0], model=model)
        if claim.claimed or claim.reason != "busy":
            break
        await anyio.sleep(claim.retry_after_s or 0.25)
    if not claim.claimed or claim.route is None or claim.lease_token is None:
        raise BenchError(f"{spec.id} routed to {route} but not granted there: {claim.message}")
    if (claim.route.provider, claim.route.tier) != route:
        raise BenchError(f"{spec.id}: route_task said {route}, the grant {claim.route}")
    lands, tokens = drawn(spec.complexity, odds, luck)
    used = await orch.record_usage(
        route[0], model, tokens - tokens // 5, tokens // 5, "success", spec.id,
        claim.lease_token, claim.agent_id,
    )  # fmt: skip
    for window, budget in (("hour", used.hour), ("day", used.day)):
        if budget.limit is not None and budget.used_tokens > budget.limit:
            key = f"{route[0]} {window} {clock.now():%Y-%m-%dT%H}"
            run.overruns[key] = max(run.overruns.get(key, 0), budget.used_tokens - budget.limit)
    run.cost += used.cost
    run.attempts += 1
    clock.advance(MINUTES[route[1]] * 60 * luck.uniform(0.5, 1.5))
    status, why = (Status.DONE, None) if lands else (Status.FAILED, "simulated: checks fail")
    moved = await orch.update_status(spec.id, status, claim.agent_id, claim.lease_token, why)
    return moved.status, used.cost


def drawn(complexity: int, odds: tuple[float, float], luck: random.Random) -> tuple[bool, int]:
    """One attempt's luck: whether it lands, and the tokens it uses."""
    lands = luck.random() < odds[0]
    return lands, int(complexity * 20_000 * odds[1] * luck.uniform(0.8, 1.2))


def hindsight(config: Config, spec: TaskSpec, index: int, route: tuple[str, str]) -> Run:
    """Task `index` worked from a first try on `route` on the same draws as `work`, each
    failure retried where routing's rule escalates it (a pinned task stays on its pin)."""
    assert spec.id is not None
    found, run = static_providers(), Run("oracle")
    klass, phase = task_class(spec.complexity), int(index >= config.tasks // 2)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        luck = random.Random(f"{config.seed}:{spec.id}:{attempt}")
        odds = truth(route, klass, index, config.tasks, config.degraded)
        lands, tokens = drawn(spec.complexity, odds, luck)
        provider = found.get(route[0])
        tier = None if provider is None else provider.tier(route[1])
        assert tier is not None
        cost = routing.Estimate(tokens - tokens // 5, tokens // 5).cost(tier)
        run.cost += cost
        run.phase_cost[phase] += cost
        run.attempts += 1
        if lands:
            run.landed += 1
            run.phase_landed[phase] += 1
            return run
        if spec.epic_id is None:
            up = routing.escalated(spec.complexity, found.providers, Escalation(*route))
            route = route if up is None else (up[0].name, up[1].name)
    run.dead += 1
    return run


def oracle(config: Config) -> Run:
    """The best routes in hindsight: per class and half of the stream (before and after the
    drift), the one first route with the lowest cost per landed change on these same draws,
    knowing every outcome in advance; budgets, breakers and waits left aside, pins kept."""
    found, total = static_providers(), Run("oracle")
    groups: dict[tuple[str, int], list[tuple[int, TaskSpec]]] = {}
    for index, spec in enumerate(stream(config)):
        if spec.epic_id is not None:
            total = merged(total, hindsight(config, spec, index, PINNED))
            continue
        klass = task_class(spec.complexity)
        groups.setdefault((klass, int(index >= config.tasks // 2)), []).append((index, spec))
    for (klass, _), tasks in sorted(groups.items()):
        low = next(low for low, high in BANDS if task_class(low) == klass)
        firsts = [(p.name, t.name) for p in found.providers for t in offered(p, low)]
        runs = [
            functools.reduce(merged, (hindsight(config, s, i, r) for i, s in tasks)) for r in firsts
        ]
        total = merged(total, min(runs, key=Run.per_landed))
    return total


def merged(a: Run, b: Run) -> Run:
    """Two runs' spending and landings added up."""
    return Run(
        "oracle",
        cost=a.cost + b.cost,
        attempts=a.attempts + b.attempts,
        landed=a.landed + b.landed,
        dead=a.dead + b.dead,
        phase_cost=[x + y for x, y in zip(a.phase_cost, b.phase_cost, strict=True)],
        phase_landed=[x + y for x, y in zip(a.phase_landed, b.phase_landed, strict=True)],
    )


@functools.cache
def static_providers() -> provider_config.Providers:
    """The scenario's providers file, parsed once (the truth's routes and escalations)."""
    return provider_config.parse(providers_yaml("  enabled: false"), "bench")


def chain(
    config: Config, index: int, complexity: int, route: tuple[str, str], left: int
) -> tuple[float, float]:
    """Expected cost and landing odds of a task of `complexity` (task `index`) from a try on
    `route` with `left` tries left, each failure escalated by routing's rule."""
    found = static_providers()
    needs = found.estimate(complexity, {})
    landing, tokens = truth(route, task_class(complexity), index, config.tasks, config.degraded)
    _, _, cin, cout = TIERS[route]
    cost = needs.total * tokens * (0.8 * cin + 0.2 * cout) / 1000
    up = routing.route(complexity, needs, found.providers, {}, START, Escalation(*route))
    if left == 1 or up.provider is None or up.tier is None:
        return cost, landing
    more, lands = chain(config, index, complexity, (up.provider, up.tier), left - 1)
    return cost + (1 - landing) * more, landing + (1 - landing) * lands


def good_routes(config: Config, index: int) -> dict[str, set[tuple[str, str]]]:
    """Per class, the first routes whose true cost per landed change for task `index` (at
    its class's lowest complexity, as the hidden odds have it) is within GOOD_ENOUGH of the
    lowest: between those, a choice is a coin toss worth nothing."""
    found = static_providers()
    good = {}
    for low, _ in BANDS:
        firsts = [(p.name, t.name) for p in found.providers for t in offered(p, low)]
        costs = {}
        for route in firsts:
            cost, lands = chain(config, index, low, route, MAX_ATTEMPTS)
            costs[route] = cost / lands
        least = min(costs.values())
        good[task_class(low)] = {r for r, c in costs.items() if c <= least * GOOD_ENOUGH}
    return good


def off_best(run: Run, config: Config) -> list[int]:
    """The tasks whose first try the learned rule itself sent to a route that is not among
    its class's best (good_routes): not a pin, an exploration, or a grant made while the
    static rule's choice was blocked."""
    before, after = good_routes(config, 0), good_routes(config, config.tasks - 1)
    drift = config.tasks // 2
    return [
        i for i, klass, p, t, basis, blocked in run.first_tries
        if basis == "learned" and not blocked
        and (p, t) not in (before if i < drift else after)[klass]
    ]  # fmt: skip


def explored(run: Run, start: int, end: int) -> float:
    """The share of tasks `start` to `end` whose first try explored, in per cent."""
    tries = [basis for i, *_, basis, _ in run.first_tries if start <= i < end]
    return 100 * tries.count("exploration") / max(1, len(tries))


def tasks_to_settle(off: list[int], start: int, end: int) -> int:
    """Tasks from `start` to the first from which every WINDOW tasks before `end` hold at
    most WINDOW_MOST of the learned rule's own first tries off the best route."""
    return next(
        (i - start for i in range(start, end + 1)
         if all(sum(j <= k < min(j + WINDOW, end) for k in off) <= WINDOW_MOST
                for j in range(i, max(i, end - WINDOW) + 1))),
        end - start,
    )  # fmt: skip


def report(config: Config, static: Run, learned: Run, found: Report) -> None:
    drift, who = config.tasks // 2, f"{config.degraded} degrades"
    best = oracle(config)
    found.info(
        f"{who}, hindsight oracle: cost per landed change",
        best.per_landed(),
        "$",
        note=f"before the drift ${best.per_landed(0):.3f}, after ${best.per_landed(1):.3f}; "
        f"{best.landed} landed, {best.dead} dead-lettered",
    )
    for run in (static, learned):
        m = f"{who}, {run.mode}"
        found.info(
            f"{m}: cost per landed change",
            run.per_landed(),
            "$",
            note=f"before the drift ${run.per_landed(0):.3f}, after "
            f"${run.per_landed(1):.3f}; {run.attempts} attempts, ${run.cost:.2f} in all",
        )
        found.info(f"{m}: landed", run.landed, "tasks", note=f"{run.dead} dead-lettered")
        waited = f"{run.waits} waits of {WAIT_SECONDS:g} s for a free provider"
        found.info(f"{m}: simulated time", run.sim_hours, "h", note=waited)
        found.info(f"{m}: wall time", run.seconds, "s")
        over = ", ".join(f"{k} by {v} tokens" for k, v in sorted(run.overruns.items()))
        found.absolute(f"{m}: budget windows overrun", len(run.overruns), "", not over, "0", over)
        wrong = run.to_open_breaker + run.pin_broken
        seen = f"{run.while_open} grants while a breaker was open, {run.bases['pinned']} pinned"
        found.absolute(f"{m}: grants to an open breaker / pinned elsewhere", wrong, "",
                       wrong == 0, "0", seen)  # fmt: skip
    found.at_most(f"{who}: cost per landed change, learned / static", learned.per_landed(),
                  "$", static.per_landed(), 0.7, "<= 0.70x")  # fmt: skip
    found.at_most(f"{who}: cost per landed change, learned / hindsight oracle",
                  learned.per_landed(), "$", best.per_landed(), 1.1, "<= 1.10x",
                  note=f"before the drift {learned.per_landed(0) / best.per_landed(0):.2f}x, "
                  f"after {learned.per_landed(1) / best.per_landed(1):.2f}x")  # fmt: skip
    found.absolute(f"{who}: landed, learned - static", learned.landed - static.landed, "tasks",
                   learned.landed >= static.landed, ">= 0")  # fmt: skip
    found.info(
        f"{who}: first tries that explore, by stretch of {WINDOW} tasks",
        explored(learned, 0, WINDOW),
        "%",
        note="the first stretch, the last before the drift, the first after it, the last: "
        + ", ".join(f"{explored(learned, i, i + WINDOW):.0f} %"
                    for i in (0, drift - WINDOW, drift, config.tasks - WINDOW)),
    )  # fmt: skip
    off = off_best(learned, config)
    learns = tasks_to_settle(off, 0, drift)
    found.info(
        f"{who}: tasks until the learned route settles on the best",
        learns,
        "tasks",
        note="from the start; then at most "
        f"{WINDOW_MOST} of every {WINDOW} first tries off each class's best route",
    )
    adapt = tasks_to_settle(off, drift, config.tasks)
    late = [i - drift for i in off if i >= drift]
    found.absolute(
        f"{who}: tasks until the route adapts to the drift", adapt, "tasks", adapt <= 50,
        "<= 50", note=f"from the drift; the learned rule's own first tries off the new best "
        f"route: {len(late)} after the drift, the last at drift + {max(late, default=0)}",
    )  # fmt: skip
    after = "; ".join(
        f"{k} {', '.join(sorted(f'{p}/{t}' for p, t in routes))}"
        for k, routes in good_routes(config, config.tasks - 1).items()
    )
    found.details[config.degraded] = {
        "best after the drift": after,
        "bases": {r.mode: dict(r.bases) for r in (static, learned)},
        "first_tries": {r.mode: r.first_tries for r in (static, learned)},
        "runs": {
            r.mode: {k: v for k, v in asdict(r).items() if k not in ("first_tries", "bases")}
            for r in (static, learned)
        },
    }


async def both(config: Config) -> tuple[Run, Run]:
    runs = []
    with tempfile.TemporaryDirectory(prefix="wvo-bench-learning-") as scratch:
        for mode in ("static", "learned"):
            folder = Path(scratch) / mode
            folder.mkdir()
            log(f"{config.degraded} degrades, {mode}: {config.tasks} tasks")
            runs.append(await simulate(config, mode, folder))
    return runs[0], runs[1]


def known(config: Config) -> Run:
    """Every first try on the route the hidden odds make cheapest per landed change for its
    complexity and half of the stream, on the same draws: a router that needed no learning."""
    found, total = static_providers(), Run("known")
    for index, spec in enumerate(stream(config)):
        if spec.epic_id is not None:
            total = merged(total, hindsight(config, spec, index, PINNED))
            continue
        at = 0 if index < config.tasks // 2 else config.tasks - 1
        firsts = [(p.name, t.name) for p in found.providers for t in offered(p, spec.complexity)]
        chains = {r: chain(config, at, spec.complexity, r, MAX_ATTEMPTS) for r in firsts}
        best = min(firsts, key=lambda r: chains[r][0] / chains[r][1])
        total = merged(total, hindsight(config, spec, index, best))
    return total


async def learned_only(config: Config) -> Run:
    with tempfile.TemporaryDirectory(prefix="wvo-bench-learning-") as scratch:
        return await simulate(config, "learned", Path(scratch))


def sweep(seeds: range, sizes: list[int], config: Config, found: Report) -> dict[str, Any]:
    """The learned route against the hindsight oracle on every seed, per scenario and stream
    size: the ratio of costs per landed change per seed, and their mean and worst."""
    per_seed: dict[str, Any] = {}
    for degraded in SWEPT:
        for tasks in sizes:
            ratios, before, after, told = [], [], [], []
            for seed in seeds:
                run_config = replace(config, tasks=tasks, seed=seed, degraded=degraded)
                learned, best = anyio.run(learned_only, run_config), oracle(run_config)
                told.append(known(run_config).per_landed() / best.per_landed())
                ratios.append(learned.per_landed() / best.per_landed())
                before.append(learned.per_landed(0) / best.per_landed(0))
                after.append(learned.per_landed(1) / best.per_landed(1))
                log(f"{degraded} degrades, {tasks} tasks, seed {seed}: {ratios[-1]:.3f}x")
            who = "nothing degrades" if degraded == "none" else f"{degraded} degrades"
            found.at_most(
                f"{who}, {tasks} tasks: learned / hindsight oracle, mean of {len(seeds)} seeds",
                statistics.fmean(ratios), "x", 1.0, 1.1, "<= 1.10x",
                note=f"worst {max(ratios):.3f}x, best {min(ratios):.3f}x, sd "
                f"{statistics.stdev(ratios) if len(ratios) > 1 else 0.0:.3f}; before the drift "
                f"mean {statistics.fmean(before):.3f}x (worst {max(before):.3f}x), after "
                f"{statistics.fmean(after):.3f}x (worst {max(after):.3f}x)",
            )  # fmt: skip
            found.at_most(
                f"{who}, {tasks} tasks: learned / hindsight oracle, worst of {len(seeds)} seeds",
                max(ratios), "x", 1.0, 1.1, "<= 1.10x",
            )  # fmt: skip
            found.info(
                f"{who}, {tasks} tasks: routes from the hidden odds / hindsight oracle, mean",
                statistics.fmean(told), "x", note=f"worst {max(told):.3f}x: what no learning "
                "closes (the oracle picks on the draws themselves)",
            )  # fmt: skip
            per_seed[f"{degraded} {tasks}"] = {
                "seeds": list(seeds), "ratio": ratios, "before": before, "after": after,
                "known": told,
            }  # fmt: skip
    return per_seed


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--tasks", type=int, help="tasks in the stream (default 500, quick 200)")
    parser.add_argument("--seed", type=int, default=37)
    parser.add_argument("--explore-share", type=float, default=0.1)
    parser.add_argument("--floor", type=float, default=0.0, help="first-try floor, 0 to 1")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--seeds", type=int, help="sweep: the learned route against the oracle on seeds 1 to N"
    )
    parser.add_argument(
        "--sizes", default="80,500", help="sweep: stream sizes, comma-separated (default 80,500)"
    )
    args = parser.parse_args(argv)
    tasks = args.tasks or (200 if args.quick else 500)
    found, seconds = Report(), 0.0
    if args.seeds:
        sizes = [int(n) for n in args.sizes.split(",")]
        if min(sizes) < 20:
            parser.error("--sizes: give at least 20 tasks per stream")
        started = time.monotonic()
        config = Config(args.quick, tasks, args.seed, args.explore_share, args.floor)
        per_seed = sweep(range(1, args.seeds + 1), sizes, config, found)
        found.details["per_seed"] = per_seed
        print(found.table())
        if args.json:
            write_json(args.json, config, found, lambda: {"seconds": time.monotonic() - started})
        return 0
    if tasks < 100:
        parser.error("--tasks: give at least 100 (the adaptation window is 50 tasks)")
    for degraded in SCENARIOS:
        config = Config(args.quick, tasks, args.seed, args.explore_share, args.floor, degraded)
        static, learned = anyio.run(both, config)
        report(config, static, learned, found)
        seconds += static.seconds + learned.seconds
    print(found.table())
    if args.json:
        fields: dict[str, Any] = {"seconds": seconds}
        write_json(args.json, config, found, lambda: fields)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
