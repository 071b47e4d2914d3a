#!/usr/bin/env python
"""What provider routing costs, over real stdio servers.

    python -m scripts.bench.routing                  # full run, ~3 minutes
    python -m scripts.bench.routing --quick          # small smoke run, under a minute
    python -m scripts.bench.routing --only claim,usage --json out.json --keep

Sections (--only takes their names):

- claim: claim_task + plan_update(pending) cycles at 10k ready tasks of mixed complexity, for an
  agent that declares nothing and one that declares a tier (provider="codex",
  model="gpt-5-codex", codex/medium: complexity 4-7 in the packaged default providers file),
  each on its own server and database copy, in blocks alternating with a no-op tool call (the
  floor); the same claims in-process.
- plan: plan_next(limit=10) for the same two agents, in the same way.
- scan: the tier filter's worst cases, at 10k ready tasks: a codex/high agent whose tasks (1%,
  complexity 8-10) start at rank 991; the same agent when they rank last; a claude/opus agent
  that nothing routes to (no_task_for_tier); and a codex/medium agent on a queue whose job
  sizes default to 2 x complexity (lib.independent_task).
- tools: route_task, record_usage and provider_status against the floor.
- usage: record_usage from 1 and then 4 server processes at once on one database: calls/s,
  latency, and whether the totals in provider_status add up to what was reported.

The databases are generated roadmaps imported with `wvo-mcp import` (JSON) and cached beside
core's (keyed by schema and generator version). It uses lib.py, shared with
core.py (stdio client helpers, the floor server, the report table). Everything else lives
in one temporary folder, removed at the end unless --keep. The table goes to stdout, progress
to stderr. The exit code is 0 whatever the figures; it is non-zero only when the run fails.
"""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from mcp import Client

from scripts.bench import lib
from scripts.bench.lib import (
    SERVER_ARGS,
    BenchError,
    Measure,
    call,
    connect,
    log,
    server_env,
    summary,
    timed,
)
from wvo_mcp.services.picking import ROUTE_SCAN

ROUTING_GENERATOR_VERSION = 1  # bump when the generated roadmaps change, to invalidate the cache
TASKS = 10_000  # ready tasks in every database (all independent)
HIGH_SHARE = 0.01  # share of complexity 8-10 tasks in the scan databases
DEEP_RANK = 991  # where the scan database's first complexity 8-10 task ranks
# No monitor ticks (and no backup on a first tick) while servers are compared.
NO_MONITOR = {"WVO_AUTOPILOT_HEALTH_INTERVAL_MS": "0", "WVO_BACKUP_INTERVAL_MINUTES": "0"}
MEDIUM = {"provider": "codex", "model": "gpt-5-codex"}  # codex/medium, complexity 4-7
HIGH = {"provider": "codex", "model": "gpt-5-codex-high"}  # codex/high, complexity 8-10
# claude/opus: codex, preferred and healthy, takes every 8-10 task, so none routes here.
OPUS = {"provider": "claude", "model": "claude-opus-4-1"}
SECTIONS = ("claim", "plan", "scan", "tools", "usage")


@dataclass
class Config:
    quick: bool
    claim_cycles: int
    plan_calls: int
    scan_calls: int
    tool_calls: int
    usage_calls: int  # per process
    usage_procs: int
    warmup: int


def make_config(quick: bool) -> Config:
    if quick:
        return Config(
            quick=True,
            claim_cycles=150,
            plan_calls=150,
            scan_calls=100,
            tool_calls=150,
            usage_calls=150,
            usage_procs=4,
            warmup=10,
        )
    return Config(
        quick=False,
        claim_cycles=1000,
        plan_calls=1000,
        scan_calls=500,
        tool_calls=1000,
        usage_calls=1000,
        usage_procs=4,
        warmup=30,
    )


# --------------------------------------------------------------------------- roadmaps


def _task(
    index: int, complexity: int, bv: int, tc: int, rr: int, job: int | None
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "id": f"r{index:06d}",
        "title": f"Routing task {index}",
        "epic_id": f"epic-{index % 20:02d}",
        "complexity": complexity,
        "business_value": bv,
        "time_criticality": tc,
        "risk_reduction": rr,
    }
    if job is not None:
        task["job_size"] = job
    return task


def mixed_roadmap(rng: random.Random) -> list[dict[str, Any]]:
    """Complexity uniform in 1..10, job size given (1..20) and independent of it: every tier's
    work is spread through the ranked queue."""
    r = rng.randint
    return [_task(i, r(1, 10), r(1, 20), r(1, 20), r(1, 20), r(1, 20)) for i in range(TASKS)]


def scan_roadmap(rng: random.Random, deep: bool) -> list[dict[str, Any]]:
    """1% of tasks of complexity 8-10; the rest 1..7. Scores are set apart so that the 8-10
    tasks rank DEEP_RANK.. (deep) or last (tail), whatever the ties.

    - above them (deep): value inputs 10..20, job size 1: score 30..60
    - the 8-10 tasks, deep: 9 + 9 + 9 over 1 = 27; tail: 1 + 1 + 1 over 20 = 0.15
    - below them (deep) / all others (tail): inputs 2..20, job size 3..20 (deep) or 1..20
      (tail): score 0.3..20 (deep), 0.3..60 (tail)"""
    r = rng.randint
    high = round(TASKS * HIGH_SHARE)
    above = DEEP_RANK - 1 if deep else 0
    tasks = []
    for i in range(TASKS):
        if i < above:
            tasks.append(_task(i, r(1, 7), r(10, 20), r(10, 20), r(10, 20), 1))
        elif i < above + high:
            tasks.append(_task(i, r(8, 10), *((9, 9, 9, 1) if deep else (1, 1, 1, 20))))
        else:
            job = r(3, 20) if deep else r(1, 20)
            tasks.append(_task(i, r(1, 7), r(2, 20), r(2, 20), r(2, 20), job))
    rng.shuffle(tasks)  # ids say nothing about rank
    return tasks


def default_roadmap(rng: random.Random) -> list[dict[str, Any]]:
    """core's independent tasks: complexity 1..10, job size left to its default of
    2 x complexity, so simple tasks outrank complex ones."""
    return [lib.independent_task(i, rng) for i in range(TASKS)]


ROADMAPS: dict[str, Callable[[random.Random], list[dict[str, Any]]]] = {
    "mixed": mixed_roadmap,
    "deep": lambda rng: scan_roadmap(rng, deep=True),
    "tail": lambda rng: scan_roadmap(rng, deep=False),
    "default": default_roadmap,
}


def ranked_complexities(root: Path) -> list[int]:
    """Complexities of the ready queue in rank order (as the ready_ranked query orders it)."""
    with contextlib.closing(sqlite3.connect(root / "orchestrator.db")) as db:
        rows = db.execute(
            "SELECT complexity FROM tasks WHERE status = 'pending' AND unmet_dependencies = 0 "
            "ORDER BY wsjf_score DESC, created_at, id"
        ).fetchall()
    return [c for (c,) in rows]


def first_rank(ranked: list[int], low: int, high: int) -> int | None:
    return next((i + 1 for i, c in enumerate(ranked) if low <= c <= high), None)


# --------------------------------------------------------------------------- the bench


class Bench(lib.Bench):
    config: Config
    module = __spec__.name

    def database(self, name: str) -> Path:
        """State root of a cached database made by `wvo-mcp import` of a generated roadmap."""
        key = f"{lib.schema_fingerprint()}-g{ROUTING_GENERATOR_VERSION}"
        root = self.cache / f"routing-{name}-{lib.size_label(TASKS)}-{key}"
        if lib.cached(root):
            return root
        with lib.building(root) as folder:
            folder.mkdir(parents=True)
            roadmap = folder / "roadmap.json"
            tasks = ROADMAPS[name](random.Random(f"routing-{name}"))
            roadmap.write_text(json.dumps({"version": 1, "tasks": tasks}) + "\n")
            log(f"building the {name} database: `wvo-mcp import` of {len(tasks):,} tasks")
            lib.wvo_import(folder, roadmap, f"{TASKS} ready")
            roadmap.unlink()
        return root

    def copy(self, name: str, as_name: str) -> Path:
        return lib.copy_state(self.database(name), self.fresh(as_name))

    def server(self, root: Path) -> contextlib.AbstractAsyncContextManager[Client]:
        return connect(SERVER_ARGS, server_env(root, **NO_MONITOR), self.errlog)

    @staticmethod
    def claim_cycle(
        client: Client, arguments: dict[str, Any], seen: Counter[str] | None = None
    ) -> Measure:
        """lib.claim_cycle; `seen` counts what was claimed: complexity and the tier the
        route names."""

        def count(granted: dict[str, Any]) -> None:
            assert seen is not None
            route = granted.get("route")
            tier = "unrouted" if route is None else f"{route['provider']}/{route['tier']}"
            seen[f"{tier} c{granted['task']['complexity']}"] += 1

        return lib.claim_cycle(client, arguments, None if seen is None else count)

    @staticmethod
    def refused_claim(client: Client, arguments: dict[str, Any], reason: str) -> Measure:
        async def measure() -> float:
            took, answer = await timed(client, "claim_task", arguments)
            if answer.get("claimed") or answer.get("reason") != reason:
                raise BenchError(f"expected a {reason} refusal, got {answer}")
            return took

        return measure

    async def in_process_claims(
        self, root: Path, arguments: dict[str, Any], count: int
    ) -> dict[str, float]:
        """Orchestrator.claim (then a release when granted) with no MCP: the database work."""
        step = lib.direct_claim(arguments)
        return await lib.in_process(root, count, self.config.warmup, step)

    # ------------------------------------------------------------------ 1. claim

    async def claim(self) -> None:
        cfg = self.config
        ranked = ranked_complexities(self.database("mixed"))
        plain_root = self.copy("mixed", "claim-undeclared")
        tier_root = self.copy("mixed", "claim-declared")
        log(f"claim: {cfg.claim_cycles} cycles each: floor, undeclared, codex/medium")
        plain_seen: Counter[str] = Counter()
        tier_seen: Counter[str] = Counter()
        async with (
            self.floor_server() as noop,
            self.server(plain_root) as plain,
            self.server(tier_root) as tier,
        ):
            stats = await self.alternate(
                "claim",
                {
                    "floor": lib.timer(noop, "noop"),
                    "undeclared": self.claim_cycle(plain, {}, plain_seen),
                    "codex/medium": self.claim_cycle(tier, MEDIUM, tier_seen),
                },
                cfg.claim_cycles,
            )
        wrong = [k for k in tier_seen if not k.startswith("codex/medium c")]
        if wrong or any(not k.startswith("unrouted") for k in plain_seen):
            raise BenchError(f"unexpected claims: {dict(plain_seen)} / {dict(tier_seen)}")
        direct = {
            "undeclared": await self.in_process_claims(plain_root, {}, cfg.claim_cycles),
            "codex/medium": await self.in_process_claims(tier_root, MEDIUM, cfg.claim_cycles),
        }
        floor, plain_s, tier_s = stats["floor"], stats["undeclared"], stats["codex/medium"]
        medium_first = first_rank(ranked, 4, 7)
        self.report.details["claim"] = {
            **stats,
            "in_process": direct,
            "claimed_undeclared": dict(plain_seen),
            "claimed_declared": dict(tier_seen),
            "first_rank_complexity_4_7": medium_first,
        }
        self.report.info(
            "floor: no-op tool call p50 (claim rotation)",
            floor["p50"],
            "ms",
            note=f"p99 {floor['p99']:.2f} ms",
        )
        self.report.info(
            "claim_task p50 @ 10k ready, undeclared agent",
            plain_s["p50"],
            "ms",
            ratio=plain_s["p50"] / floor["p50"],
            note=f"ratio vs floor; p99 {plain_s['p99']:.2f} ms",
        )
        self.report.info(
            "claim_task p50 @ 10k ready, codex/medium agent",
            tier_s["p50"],
            "ms",
            ratio=tier_s["p50"] / floor["p50"],
            note=f"ratio vs floor; p99 {tier_s['p99']:.2f} ms; first complexity 4-7 task at "
            f"rank {medium_first}",
        )
        self.report.info(
            "  codex/medium vs undeclared, p50 / p99",
            tier_s["p50"] - plain_s["p50"],
            "ms",
            ratio=tier_s["p50"] / plain_s["p50"],
            note=f"value: p50 difference; ratio: p50; p99 ratio "
            f"{tier_s['p99'] / plain_s['p99']:.2f}x",
        )
        self.report.info(
            "  in-process Orchestrator.claim p50, undeclared / codex/medium",
            direct["codex/medium"]["p50"],
            "ms",
            ratio=direct["codex/medium"]["p50"] / direct["undeclared"]["p50"],
            note=f"undeclared {direct['undeclared']['p50']:.3f} ms; ratio declared vs undeclared",
        )

    # ------------------------------------------------------------------ 2. plan_next

    async def plan(self) -> None:
        cfg = self.config
        plain_root = self.copy("mixed", "plan-undeclared")
        tier_root = self.copy("mixed", "plan-declared")
        log(f"plan: {cfg.plan_calls} plan_next(limit=10) each: floor, undeclared, codex/medium")
        sizes: dict[str, int] = {}

        def plan(client: Client, name: str, arguments: dict[str, Any]) -> Measure:
            async def measure() -> float:
                took, answer = await timed(client, "plan_next", {"limit": 10, **arguments})
                if len(answer["tasks"]) != 10:
                    raise BenchError(f"plan_next listed {len(answer['tasks'])} tasks for {name}")
                sizes[name] = len(json.dumps(answer))
                return took

            return measure

        async with (
            self.floor_server() as noop,
            self.server(plain_root) as plain,
            self.server(tier_root) as tier,
        ):
            stats = await self.alternate(
                "plan",
                {
                    "floor": lib.timer(noop, "noop"),
                    "undeclared": plan(plain, "undeclared", {}),
                    "codex/medium": plan(tier, "codex/medium", MEDIUM),
                },
                cfg.plan_calls,
            )
        direct = {}
        for name, root, arguments in (
            ("undeclared", plain_root, {}),
            ("codex/medium", tier_root, MEDIUM),
        ):
            step = lib.direct_plan(arguments)
            direct[name] = await lib.in_process(root, cfg.plan_calls, cfg.warmup, step)
        floor, plain_s, tier_s = stats["floor"], stats["undeclared"], stats["codex/medium"]
        self.report.details["plan"] = {**stats, "in_process": direct, "result_bytes": sizes}
        self.report.info("floor: no-op tool call p50 (plan rotation)", floor["p50"], "ms")
        for name, s in (("undeclared", plain_s), ("codex/medium", tier_s)):
            self.report.info(
                f"plan_next(limit=10) p50 @ 10k ready, {name} agent",
                s["p50"],
                "ms",
                ratio=s["p50"] / floor["p50"],
                note=f"ratio vs floor; p99 {s['p99']:.2f} ms; result {sizes[name]} B; "
                f"in-process {direct[name]['p50']:.3f} ms",
            )
        self.report.info(
            "  codex/medium vs undeclared, p50",
            tier_s["p50"] - plain_s["p50"],
            "ms",
            ratio=tier_s["p50"] / plain_s["p50"],
            note="value: p50 difference",
        )

    # ------------------------------------------------------------------ 3. the scan's worst cases

    async def scan(self) -> None:
        cfg = self.config
        ranks: dict[str, dict[str, Any]] = {}  # first ranks are None when none match
        for name in ("deep", "tail", "default"):
            ranked = ranked_complexities(self.database(name))
            ranks[name] = {
                "high_first": first_rank(ranked, 8, 10),
                "medium_first": first_rank(ranked, 4, 7),
                "high": sum(1 for c in ranked if c >= 8),
                "medium": sum(1 for c in ranked if 4 <= c <= 7),
            }
        if ranks["deep"]["high_first"] != DEEP_RANK:
            raise BenchError(f"the deep database's 8-10 tasks start at {ranks['deep']}")
        if ranks["tail"]["high_first"] != TASKS - ranks["tail"]["high"] + 1:
            raise BenchError(f"the tail database's 8-10 tasks do not rank last: {ranks['tail']}")
        default_medium = ranks["default"]["medium_first"]
        default_refused = default_medium is None
        roots = {
            "plain": self.copy("deep", "scan-plain"),
            "deep": self.copy("deep", "scan-deep"),
            "tail": self.copy("tail", "scan-tail"),
            "default": self.copy("default", "scan-default"),
        }
        log(f"scan: {cfg.scan_calls} claims each: floor, undeclared, codex/high deep and tail")
        seen: Counter[str] = Counter()
        async with (
            self.floor_server() as noop,
            self.server(roots["plain"]) as plain,
            self.server(roots["deep"]) as deep,
            self.server(roots["tail"]) as tail,
            self.server(roots["default"]) as default,
        ):
            default_measure = (
                self.refused_claim(default, MEDIUM, "no_task_for_tier")
                if default_refused
                else self.claim_cycle(default, MEDIUM)
            )
            stats = await self.alternate(
                "scan",
                {
                    "floor": lib.timer(noop, "noop"),
                    "undeclared": self.claim_cycle(plain, {}),
                    "deep": self.claim_cycle(deep, HIGH, seen),
                    "tail": self.claim_cycle(tail, HIGH, seen),
                    "none": self.refused_claim(tail, OPUS, "no_task_for_tier"),
                    "default": default_measure,
                },
                cfg.scan_calls,
            )
        if set(seen) - {f"codex/high c{c}" for c in (8, 9, 10)}:
            raise BenchError(f"the codex/high agent claimed {dict(seen)}")
        direct = {
            name: await self.in_process_claims(
                roots["tail" if name == "none" else name], arguments, cfg.scan_calls
            )
            for name, arguments in (
                ("plain", {}),
                ("deep", HIGH),
                ("tail", HIGH),
                ("none", OPUS),
                ("default", MEDIUM),
            )
        }
        floor = stats["floor"]["p50"]
        undeclared = stats["undeclared"]
        self.report.details["scan"] = {**stats, "in_process": direct, "ranks": ranks}
        self.report.info(
            "floor: no-op tool call p50 (scan rotation)",
            floor,
            "ms",
            note="undeclared claim_task in the same rotation: "
            f"p50 {undeclared['p50']:.2f} ms ({undeclared['p50'] / floor:.2f}x floor)",
        )
        high = ranks["deep"]["high"]
        rows = (
            (
                "deep",
                f"claim_task p50, codex/high, its {high} tasks at ranks {DEEP_RANK}-"
                f"{DEEP_RANK + high - 1}",
                f"p99 {stats['deep']['p99']:.1f} ms",
            ),
            (
                "tail",
                f"claim_task p50, codex/high, its {high} tasks ranked last",
                "reads the ready tasks of complexities 8-10 only; "
                f"p99 {stats['tail']['p99']:.1f} ms",
            ),
            (
                "none",
                "claim_task p50, claude/opus, which nothing routes to: no_task_for_tier",
                f"no complexity routes there; p99 {stats['none']['p99']:.1f} ms",
            ),
            (
                "default",
                "claim_task p50, codex/medium, job size 2 x complexity: "
                + ("no_task_for_tier" if default_refused else "claimed"),
                f"{ranks['default']['medium']:,} of {TASKS:,} ready tasks have complexity 4-7; "
                f"the first ranks {default_medium}",
            ),
        )
        for key, metric, note in rows:
            s = stats[key]
            self.report.info(
                metric,
                s["p50"],
                "ms",
                ratio=s["p50"] / floor,
                note=f"ratio vs floor; {note}; in-process {direct[key]['p50']:.2f} ms "
                f"(undeclared {direct['plain']['p50']:.2f} ms)",
            )

    # ------------------------------------------------------------------ 4. the routing tools

    async def tools(self) -> None:
        cfg = self.config
        root = self.copy("mixed", "tools")
        ranked_ids = self._ranked_ids(root, 200)
        log(f"tools: {cfg.tool_calls} calls each: floor, route_task, record_usage, provider_status")
        picks = iter(range(10**9))
        reported = [0]
        answers: dict[str, Any] = {}

        async with self.floor_server() as noop, self.server(root) as client:

            async def route() -> float:
                task_id = ranked_ids[next(picks) % len(ranked_ids)]
                took, answer = await timed(client, "route_task", {"task_id": task_id})
                if not answer["routed"]:
                    raise BenchError(f"route_task did not route {task_id}: {answer['reason']}")
                answers["route_task"] = answer
                return took

            async def usage() -> float:
                took, answer = await timed(
                    client,
                    "record_usage",
                    {**MEDIUM, "input_tokens": 800, "output_tokens": 200, "outcome": "success"},
                )
                reported[0] += 1000
                answers["record_usage"] = answer
                return took

            async def status() -> float:
                took, answer = await timed(client, "provider_status", {})
                answers["provider_status"] = answer
                return took

            stats = await self.alternate(
                "tools",
                {
                    "floor": lib.timer(noop, "noop"),
                    "route_task": route,
                    "record_usage": usage,
                    "provider_status": status,
                },
                cfg.tool_calls,
            )
            final = await call(client, "provider_status", {})
        codex = next(p for p in final["providers"] if p["name"] == "codex")
        if codex["day"]["used_tokens"] != reported[0]:
            raise BenchError(f"codex day usage {codex['day']} after {reported[0]} tokens reported")
        floor = stats["floor"]["p50"]
        self.report.details["tools"] = {
            **stats,
            "source": final["source"],
            "result_bytes": {k: len(json.dumps(v)) for k, v in answers.items()},
        }
        self.report.info("floor: no-op tool call p50 (tools rotation)", floor, "ms")
        for name in ("route_task", "record_usage", "provider_status"):
            s = stats[name]
            self.report.info(
                f"{name} p50",
                s["p50"],
                "ms",
                ratio=s["p50"] / floor,
                note=f"ratio vs floor; p99 {s['p99']:.2f} ms; result "
                f"{len(json.dumps(answers[name]))} B",
            )

    @staticmethod
    def _ranked_ids(root: Path, count: int) -> list[str]:
        with contextlib.closing(sqlite3.connect(root / "orchestrator.db")) as db:
            rows = db.execute(
                "SELECT id FROM tasks WHERE status = 'pending' ORDER BY wsjf_score DESC, id "
                "LIMIT ?",
                (count,),
            ).fetchall()
        return [i for (i,) in rows]

    # ------------------------------------------------------------------ 5. concurrent usage

    def usage(self) -> None:
        cfg = self.config
        runs = {}
        for n in (1, cfg.usage_procs):
            root = self.copy("mixed", f"usage-{n}")
            self.load(f"usage_{n}")
            log(f"usage: {n} server process(es), {cfg.usage_calls} record_usage calls each")
            runs[n] = self._usage_run(root, n)
        one, many = runs[1], runs[cfg.usage_procs]
        self.report.details["usage"] = {str(k): v for k, v in runs.items()}
        self.report.info(
            "record_usage throughput, 1 process",
            one["throughput"],
            "calls/s",
            note=f"p50 {one['latency']['p50']:.2f} ms, p99 {one['latency']['p99']:.2f} ms",
        )
        self.report.info(
            f"record_usage throughput, {cfg.usage_procs} processes",
            many["throughput"],
            "calls/s",
            ratio=many["throughput"] / one["throughput"],
            note=f"ratio vs 1 process; calls per process {many['per_worker']}",
        )
        self.report.info(
            f"record_usage p50 / p99, {cfg.usage_procs} processes",
            many["latency"]["p99"],
            "ms",
            note=f"value: p99; p50 {many['latency']['p50']:.2f} ms, max "
            f"{many['latency']['max']:.1f} ms",
        )
        for n, run in runs.items():
            self.report.absolute(
                f"usage totals add up, {n} process(es)",
                run["status_day_tokens"] - run["reported_tokens"],
                "tokens",
                run["exact"],
                "0 difference",
                note=f"provider_status codex day used_tokens {run['status_day_tokens']:,} vs "
                f"{run['reported_tokens']:,} reported in {run['calls']} calls; calls counted "
                f"in provider_usage {run['db_calls']}",
            )

    def _usage_run(self, root: Path, count: int) -> dict[str, Any]:
        config = {"state_root": str(root), "calls": self.config.usage_calls}
        results = self.run_workers(config, count, timeout=300)
        latencies = [s for r in results for s in r["latencies"]]
        elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
        timed_calls = len(latencies)
        reported = sum(r["tokens"] for r in results)
        calls = sum(r["calls"] for r in results)
        days = {d for r in results for d in r["days"]}
        status = anyio.run(self._provider_status, root)
        codex = next(p for p in status["providers"] if p["name"] == "codex")
        with contextlib.closing(sqlite3.connect(root / "orchestrator.db")) as db:
            db_tokens, db_calls = db.execute(
                "SELECT sum(input_tokens + output_tokens), sum(calls) FROM provider_usage "
                "WHERE provider = 'codex' AND length(period) = 10"
            ).fetchone()
        status_tokens = codex["day"]["used_tokens"]
        if len(days) > 1:  # the run crossed midnight (UTC): compare every day's rows instead
            status_tokens = db_tokens
        return {
            "processes": count,
            "seconds": elapsed,
            "throughput": timed_calls / elapsed,
            "latency": summary(latencies),
            "per_worker": [len(r["latencies"]) for r in results],
            "reported_tokens": reported,
            "calls": calls,
            "status_day_tokens": status_tokens,
            "db_day_tokens": db_tokens,
            "db_calls": db_calls,
            "days": sorted(days),
            "exact": status_tokens == reported == db_tokens and db_calls == calls,
        }

    async def _provider_status(self, root: Path) -> dict[str, Any]:
        async with self.server(root) as client:
            return await call(client, "provider_status", {})


# --------------------------------------------------------------------------- worker process


async def worker_main(config: dict[str, Any]) -> None:
    """One agent with its own server: record_usage `calls` times with random token counts.

    Protocol with the parent: print `ready` once connected (after one untimed call, so the
    client's outputSchema validator is compiled), wait for `go`, then print one JSON line:
    latencies, the tokens and calls reported (the warm-up call included), the UTC days seen.
    Times use the system-wide monotonic clock."""
    env = server_env(Path(config["state_root"]), **NO_MONITOR)
    rng = random.Random()
    tokens = calls = 0
    days: set[str] = set()
    latencies: list[float] = []

    def arguments() -> dict[str, Any]:
        nonlocal tokens, calls
        used_in, used_out = rng.randint(100, 5000), rng.randint(10, 1000)
        tokens += used_in + used_out
        calls += 1
        days.add(time.strftime("%Y-%m-%d", time.gmtime()))
        return {**MEDIUM, "input_tokens": used_in, "output_tokens": used_out, "outcome": "success"}

    async with connect(SERVER_ARGS, env, sys.stderr) as client:
        await call(client, "record_usage", arguments())
        await lib.wait_for_go()
        start = time.monotonic()
        for _ in range(config["calls"]):
            latencies.append((await timed(client, "record_usage", arguments()))[0])
        end = time.monotonic()
    days.add(time.strftime("%Y-%m-%d", time.gmtime()))
    result = {
        "latencies": latencies,
        "tokens": tokens,
        "calls": calls,
        "days": sorted(days),
        "start": start,
        "end": end,
    }
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    return lib.sections_main(
        argv,
        __doc__,
        SECTIONS,
        "routing",
        make_config,
        Bench,
        worker_main,
        {"route_scan": ROUTE_SCAN},
    )


if __name__ == "__main__":
    sys.exit(main())
