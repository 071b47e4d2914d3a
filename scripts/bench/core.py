#!/usr/bin/env python
"""Performance benchmark of wvo-mcp's core loop, measured against a no-op MCP tool call.

    python -m scripts.bench.core                 # full run (builds a 1M-task database once)
    python -m scripts.bench.core --quick         # small smoke run, well under a minute
    python -m scripts.bench.core --sizes 1k,100k --json results.json --keep

Every figure is taken over the real stdio transport with real server processes
(`python -m wvo_mcp serve`), except the rows marked "in-process", which call the
Orchestrator directly to separate database work from transport cost. The floor is a
separate, tiny MCPServer with one `noop` tool, run over the same transport with the same
Python. Run it with the Python that has wvo-mcp installed (e.g. .venv/bin/python).

Built task databases are cached (default: <tmp>/wvo-bench-cache, keyed by schema and
generator version) because 1M tasks take a while; `--no-cache` builds them in the run's
temporary folder instead. Everything else lives in one temporary folder, removed at the end
unless --keep. The table goes to stdout, progress to stderr. The exit code is 0 whether
targets pass or fail (this is a measurement); it is non-zero only when the run itself fails.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import math
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import get_default_environment

from scripts.bench import lib
from scripts.bench.lib import (
    CHAIN_LENGTH,
    INITIALIZE,
    SERVER_ARGS,
    BenchError,
    Measure,
    Report,
    build_db,
    call,
    chain_db,
    chain_task,
    connect,
    copy_state,
    independent_task,
    lease_update,
    log,
    proc_cpu_seconds,
    proc_file,
    server_env,
    server_pid,
    size_label,
    summary,
    timed,
)
from wvo_mcp.config import Settings
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator

# --------------------------------------------------------------------------- task graphs


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if scale != 1 else text
    try:
        value = int(float(number) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1k, 100k, 1M)") from None
    if value < CHAIN_LENGTH or value % CHAIN_LENGTH:
        raise argparse.ArgumentTypeError(f"sizes must be multiples of {CHAIN_LENGTH}: {text!r}")
    return value


def roadmap_yaml(tasks: Sequence[dict[str, Any]]) -> str:
    """Roadmap YAML written by hand (yaml.safe_dump of 100k entries is itself slow)."""
    out = ["version: 1", "tasks:"]
    for task in tasks:
        out.append(f"  - id: {task['id']}")
        out.append(f"    title: {json.dumps(task['title'])}")
        for key in ("epic_id", "complexity", "business_value", "time_criticality"):
            out.append(f"    {key}: {task[key]}")
        out.append(f"    risk_reduction: {task['risk_reduction']}")
        if task.get("depends_on"):
            out.append(f"    depends_on: [{', '.join(task['depends_on'])}]")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- processes


def proc_status_kb(pid: int, key: str) -> int:
    for line in proc_file(pid, "status").splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {key}")


# --------------------------------------------------------------------------- measurements


@dataclass
class Config:
    quick: bool
    sizes: list[int]
    floor_calls: int
    claim_cycles: int
    plan_calls: int
    warmup: int
    import_tasks: int
    rss_tasks: int
    claim_ready_tasks: int
    concurrency_tasks: int
    concurrency_procs: int
    startup_runs: int
    clients: list[str]
    rounds: int


class Bench(lib.Bench):
    config: Config
    module = __spec__.name

    def __init__(self, config: Config, work: Path, cache: Path, report: Report) -> None:
        super().__init__(config, work, cache, report)
        self.floor_p50 = math.nan
        self.noop: Client | None = None  # the floor server, connected for the whole run
        self.roots: dict[int, Path] = {}  # state roots of the chain-graph databases by size

    # ---- floor

    async def floor(self) -> None:
        assert self.noop is not None
        cfg = self.config
        log(f"floor: {cfg.floor_calls} no-op tool calls over stdio")
        for _ in range(cfg.warmup):
            await call(self.noop, "noop", {})
        samples = [(await timed(self.noop, "noop", {}))[0] for _ in range(cfg.floor_calls)]
        stats = summary(samples)
        self.floor_p50 = stats["p50"]
        self.report.details.setdefault("floors", {})["floor"] = stats
        self.load("floor")
        self.report.info(
            "floor: no-op tool call p50 (stdio)",
            stats["p50"],
            "ms",
            note=f"p99 {stats['p99']:.3f} ms over {stats['n']} calls; each ratio below uses "
            "the floor measured in blocks alternating with its own calls (see its note)",
        )

    async def paired(
        self, section: str, measures: dict[str, Measure], count: int
    ) -> tuple[dict[str, dict[str, float]], float]:
        """Samples of each measure and the floor p50, taken in rotating blocks of BLOCK calls
        (floor, then each measure; see lib.Bench.alternate)."""
        assert self.noop is not None
        floor_call = lib.timer(self.noop, "noop")
        stats = await self.alternate(section, {"floor": floor_call, **measures}, count)
        self.report.details.setdefault("floors", {})[section] = stats["floor"]
        floor = stats.pop("floor")["p50"]
        return stats, floor

    # ---- claim

    async def claim(self) -> None:
        cfg = self.config
        root = copy_state(await self.claim_template(), self.fresh("claim"))
        log(f"claim: {cfg.claim_cycles} claim_task + plan_update(pending) cycles over stdio")
        releases: list[float] = []
        last: list[Any] = []
        async with connect(SERVER_ARGS, server_env(root), self.errlog) as client:

            async def claim() -> float:
                started = time.perf_counter()
                raw = await client.call_tool("claim_task", {})
                took = time.perf_counter() - started
                last[:] = [raw]
                return took

            async def cycle() -> float:
                """claim_task (timed) then plan_update(pending) with the lease token."""
                took = await claim()
                granted = last[0].structured_content or {}
                if last[0].is_error or not granted.get("claimed"):
                    raise BenchError(f"claim_task refused: {granted.get('message')}")
                release = lease_update(granted, "pending")
                releases.append((await timed(client, "plan_update", release))[0])
                return took

            measured, floor = await self.paired("claim", {"claim": cycle}, cfg.claim_cycles)
            stats = measured["claim"]
        self.report.details["claim"] = {
            "claim": stats,
            "release": summary(releases),
            "floor_p50": floor,
            "result_bytes": len(json.dumps(last[0].structured_content)),
        }
        self.report.at_most(
            f"claim_task p50 ({size_label(cfg.claim_ready_tasks)} ready)",
            stats["p50"],
            "ms",
            floor,
            1.5,
            "<= 1.5x floor",
            note=f"paired floor {floor:.3f} ms; p99 {stats['p99']:.3f} ms; release "
            f"(plan_update pending) p50 {summary(releases)['p50']:.3f} ms",
        )
        # The same cycle without the transport: what the database work costs.
        stats = await lib.in_process(
            root, cfg.claim_cycles, cfg.warmup, lib.direct_claim(must_claim=True)
        )
        self.report.details["claim_in_process"] = stats
        self.report.info("  in-process Orchestrator.claim p50 (no MCP)", stats["p50"], "ms")

    # ---- raw JSON-RPC: the server's own time per call

    async def raw(self) -> None:
        """claim_task, claim + done and plan_next(10) at 100k tasks, each with telemetry off
        (the default) and on, against the floor: all through RawClient (no SDK client, no
        result validation), one server per measure, measured in rotation."""
        cfg = self.config
        template = await self.claim_template()
        plan_size = 100_000 if 100_000 in self.roots else max(self.roots)
        plan_label = size_label(plan_size)
        log(
            f"raw: {cfg.claim_cycles} calls each of claim, claim + done and plan_next @ "
            f"{plan_label}"
        )
        measures: dict[str, Measure] = {}
        with contextlib.ExitStack() as servers:

            def server(name: str, root: Path, telemetry: str) -> lib.RawClient:
                env = server_env(root, WVO_OTEL_ENABLED="1" if telemetry == "on" else "0")
                return servers.enter_context(lib.raw_client(SERVER_ARGS, env, self.errlog))

            floor = servers.enter_context(lib.raw_client(self.noop_server(), {}, self.errlog))
            measures["floor"] = lib.raw_timer(floor, "noop")
            for telemetry in ("on", "off"):
                claims = server(
                    "claim", copy_state(template, self.fresh(f"raw-claim-{telemetry}")), telemetry
                )
                cycles = server(
                    "cycle", copy_state(template, self.fresh(f"raw-cycle-{telemetry}")), telemetry
                )
                plans = server("plan", self.roots[plan_size], telemetry)
                measures[f"claim {telemetry}"] = lib.raw_cycle(claims, "pending", timed="claim")
                measures[f"cycle {telemetry}"] = lib.raw_cycle(cycles, "done", timed="both")
                measures[f"plan {telemetry}"] = lib.raw_timer(plans, "plan_next", {"limit": 10})
            stats = await self.alternate("raw", measures, cfg.claim_cycles)
        floor_p50 = stats["floor"]["p50"]
        self.report.details["raw"] = stats
        self.report.info(
            "raw floor: no-op tool call p50",
            floor_p50,
            "ms",
            note="newline-delimited JSON-RPC written and read by the benchmark itself; the "
            "no-op tool answers a one-field output model",
        )
        for key, name, limit in (
            ("claim", "claim_task", 1.5),
            ("cycle", "claim_task + plan_update(done)", 2.5),
            ("plan", f"plan_next(limit=10) @ {plan_label} tasks", 1.5),
        ):
            on, off = stats[f"{key} on"], stats[f"{key} off"]
            self.report.at_most(
                f"raw {name} p50",
                off["p50"],
                "ms",
                floor_p50,
                limit,
                f"<= {limit}x floor",
                note=f"telemetry off (the default since issue 36); p99 {off['p99']:.3f} ms; on "
                f"p50 {on['p50']:.3f} ms ({on['p50'] / floor_p50:.2f}x)",
            )
            self.report.at_most(
                f"  telemetry on vs off ({key})", on["p50"], "ms", off["p50"], 1.1, "<= 1.1x"
            )

    async def claim_template(self) -> Path:
        """A closed database of claim_ready_tasks independent ready tasks, built once."""
        template = self.work / "claim-template"
        if not (template / "orchestrator.db").exists():
            log(f"building {self.config.claim_ready_tasks:,} ready tasks")
            await build_db(
                self.fresh("claim-template"), self.config.claim_ready_tasks, independent_task
            )
        return template

    # ---- plan_next at several sizes

    async def plan_next(self, roots: dict[int, Path]) -> None:
        """plan_next(limit=10) at every size, one server per size, measured in rotation."""
        cfg = self.config
        labels = [size_label(total) for total in cfg.sizes]
        log(f"plan_next: {cfg.plan_calls} calls of plan_next(limit=10) at {', '.join(labels)}")
        measures: dict[str, Measure] = {}
        firsts: dict[str, Any] = {}
        async with contextlib.AsyncExitStack() as servers:
            for total, label in zip(cfg.sizes, labels, strict=True):
                client = await servers.enter_async_context(
                    connect(SERVER_ARGS, server_env(roots[total]), self.errlog)
                )
                first = await client.call_tool("plan_next", {"limit": 10})
                counts = (first.structured_content or {}).get("counts", {})
                if first.is_error or counts.get("ready") != total // CHAIN_LENGTH:
                    raise BenchError(f"unexpected plan_next answer at {label}: {first}")
                plan = lib.timer(client, "plan_next", {"limit": 10})
                measures[label], firsts[label] = plan, first
            measured, floor = await self.paired("plan_next", measures, cfg.plan_calls)
        for total, label in zip(cfg.sizes, labels, strict=True):
            stats = measured[label]
            self.report.details[f"plan_next_{label}"] = {
                **stats,
                "floor_p50": floor,
                "result_bytes": len(json.dumps(firsts[label].structured_content)),
            }
            self.report.at_most(
                f"plan_next(limit=10) p50 @ {label} tasks",
                stats["p50"],
                "ms",
                floor,
                2.0,
                "<= 2x floor" + ("" if total == 100_000 else " (set at 100k)"),
                note=f"paired floor {floor:.3f} ms; p99 {stats['p99']:.3f} ms; "
                f"{total // CHAIN_LENGTH:,} ready",
            )
            direct = await lib.in_process(
                roots[total], cfg.plan_calls, cfg.warmup, lib.direct_plan()
            )
            self.report.details[f"plan_next_in_process_{label}"] = direct
            self.report.info("  in-process Orchestrator.plan_next p50", direct["p50"], "ms")
        small, large = min(cfg.sizes), max(cfg.sizes)
        if small != large:
            self.report.at_most(
                f"plan_next p50 {size_label(large)} vs {size_label(small)}",
                measured[size_label(large)]["p50"],
                "ms",
                measured[size_label(small)]["p50"],
                1.2,
                "<= 1.2x",
                note="" if (small, large) == (1_000, 1_000_000) else "target is set for 1M vs 1k",
            )

    # ---- import

    def import_cli(self) -> Path:
        """Time `wvo-mcp import` of a generated roadmap as YAML and as JSON; returns the YAML."""
        cfg = self.config
        total = cfg.import_tasks
        label = size_label(total)
        rng = random.Random(7)
        tasks = [chain_task(i, rng) for i in range(total)]
        path = self.work / f"roadmap-{label}.yaml"
        text = roadmap_yaml(tasks)
        path.write_text(text)
        # The same document as `wvo-mcp export FILE.json` would write it.
        as_json = json.dumps({"version": 1, "tasks": tasks}, indent=1) + "\n"
        path.with_suffix(".json").write_text(as_json)
        del tasks
        self.load("import")
        target_note = "" if total == 100_000 else "; the target is set for 100k tasks"
        seconds = {}
        for kind, source, size in (
            ("JSON", path.with_suffix(".json"), len(as_json)),
            ("YAML", path, len(text)),
        ):
            log(f"import: `wvo-mcp import` of {label} tasks as {kind} ({size / 1e6:.1f} MB)")
            root = self.fresh(f"import-cli-{kind.lower()}")
            seconds[kind] = lib.wvo_import(root, source, f"imported {total} tasks")
        self.report.absolute(
            f"import {label} tasks: `wvo-mcp import` of JSON (subprocess)",
            seconds["JSON"],
            "s",
            seconds["JSON"] <= 10.0,
            "<= 10 s",
            note=f"the target is evaluated on the JSON roadmap ({len(as_json) / 1e6:.1f} MB); "
            f"the same tasks as YAML are reported in the next row{target_note}",
        )
        self.report.info(
            f"import {label} tasks: `wvo-mcp import` of YAML (subprocess)",
            seconds["YAML"],
            "s",
            note=f"{len(text) / 1e6:.1f} MB; reported beside the JSON import, which the "
            "<= 10 s target is evaluated on",
        )
        self.report.details["import"] = {
            "tasks": total,
            "json_bytes": len(as_json),
            "yaml_bytes": len(text),
            "cli_json_seconds": seconds["JSON"],
            "cli_yaml_seconds": seconds["YAML"],
        }
        return path

    async def import_in_process(self, path: Path) -> None:
        """The parts of `wvo-mcp import`, in-process and with the cyclic GC paused as the CLI
        pauses it: the YAML and JSON parsers, TaskSpec validation, Orchestrator.create_tasks."""
        import yaml

        from wvo_mcp import roadmap

        label = size_label(self.config.import_tasks)
        yaml_text = await anyio.Path(path).read_text()
        json_text = await anyio.Path(path.with_suffix(".json")).read_text()
        log("import: in-process parts (parsers, validation, create_tasks)")
        parts: dict[str, float] = {}

        @contextlib.contextmanager
        def paused(part: str) -> Iterator[None]:
            gc.collect()
            gc.disable()
            try:
                started = time.perf_counter()
                yield
                parts[part] = time.perf_counter() - started
            finally:
                gc.enable()

        with paused("yaml_load"):
            document = yaml.load(yaml_text, Loader=roadmap._YamlLoader)
        with paused("json_load"):
            from_json = json.loads(json_text)
        if from_json != document:
            raise BenchError("the YAML and JSON roadmaps differ")
        del from_json, yaml_text, json_text
        with paused("validate"):
            specs = [TaskSpec.model_validate(entry) for entry in document["tasks"]]
        del document

        root = self.fresh("import-in-process")
        orchestrator = await Orchestrator.open(Settings(state_root=root))
        try:
            with paused("create_tasks"):
                created = await orchestrator.create_tasks(specs, actor="bench")
        finally:
            await orchestrator.close()
        if len(created.created) != self.config.import_tasks:
            raise BenchError("create_tasks lost tasks")
        loader = roadmap._YamlLoader.__name__
        self.report.info(f"  yaml.load({loader}) {label}", parts["yaml_load"], "s")
        self.report.info(f"  json.loads {label}", parts["json_load"], "s")
        self.report.info(f"  TaskSpec.model_validate x {label}", parts["validate"], "s")
        self.report.info(
            f"  Orchestrator.create_tasks {label} (in-process)",
            parts["create_tasks"],
            "s",
            note="one batch into a fresh database; like the parts above, timed with the "
            "cyclic GC paused as `wvo-mcp import` pauses it",
        )
        self.report.details["import"] |= {f"{k}_seconds": v for k, v in parts.items()}

    # ---- concurrent claim+complete

    def concurrency(self) -> None:
        """Claim+complete of the same tasks by 1 and by N agents, each with its own server,
        once with the SDK's client and once with RawClient (the SDK client's own CPU is a
        large share of two cores). With several rounds, 1 and N alternate and the rows show
        the round with the median ratio: other work on the machine moves single runs."""
        cfg = self.config
        total, procs = cfg.concurrency_tasks, cfg.concurrency_procs
        template = self.fresh("concurrency-template")
        log(f"concurrency: building {total:,} independent tasks")
        anyio.run(build_db, template, total, independent_task)
        for client in cfg.clients:
            rounds = []
            for r in range(cfg.rounds):
                runs = {}
                for n in (1, procs):
                    root = copy_state(template, self.fresh(f"concurrency-{client}-{n}"))
                    self.load(f"concurrency_{client}_{n}")
                    log(
                        f"concurrency: {n} server process(es) claim+complete {total:,} tasks "
                        f"({client}, round {r + 1} of {cfg.rounds})"
                    )
                    runs[n] = self._run_workers(root, n, total, client)
                ratio = runs[procs]["throughput"] / runs[1]["throughput"]
                log(f"concurrency: {procs} vs 1 process(es): {ratio:.2f}x")
                rounds.append(runs)
            rounds.sort(key=lambda runs: runs[procs]["throughput"] / runs[1]["throughput"])
            self.report.details[f"concurrency_{client}"] = [
                {str(k): v for k, v in runs.items()} for runs in rounds
            ]
            median = rounds[(len(rounds) - 1) // 2]
            self._concurrency_rows(f"{client} client", median[1], median[procs], rounds)

    def _concurrency_rows(
        self,
        label: str,
        one: dict[str, Any],
        many: dict[str, Any],
        rounds: Sequence[dict[int, dict[str, Any]]],
    ) -> None:
        procs = many["processes"]
        ratios = [runs[procs]["throughput"] / runs[1]["throughput"] for runs in rounds]
        over = (
            f"; the median of {len(rounds)} rounds (ratios {', '.join(f'{r:.2f}' for r in ratios)})"
            if len(rounds) > 1
            else ""
        )
        self.report.info(
            f"claim+complete throughput, 1 process ({label})",
            one["throughput"],
            "tasks/s",
            note=f"claim p50 {one['claim']['p50']:.3f} ms, max {one['claim']['max']:.1f} ms",
        )
        for run in (one, many):
            self.report.info(
                f"  CPU per task, {run['processes']} process(es): client + server",
                run["client_cpu_ms_per_task"] + run["server_cpu_ms_per_task"],
                "ms",
                note=f"client {run['client_cpu_ms_per_task']:.2f} ms + server "
                f"{run['server_cpu_ms_per_task']:.2f} ms; these processes kept "
                f"{100 * run['cpu_busy']:.0f}% of {os.cpu_count()} cores busy",
            )
        self.report.at_least(
            f"claim+complete throughput, {procs} processes ({label})",
            many["throughput"],
            "tasks/s",
            one["throughput"],
            1.5,
            ">= 1.5x 1 process",
            note=f"tasks done per process: {many['per_worker_done']}{over}",
        )
        claim = many["claim"]
        self.report.info(f"  claim wait p50, {procs} processes", claim["p50"], "ms")
        self.report.info(f"  claim wait p99, {procs} processes", claim["p99"], "ms")
        self.report.absolute(
            f"  claim wait max, {procs} processes, first claims included",
            claim["max"],
            "ms",
            claim["max"] <= 50.0,
            "<= 50 ms",
            note=f"over {claim['n']} claim_task calls; slowest: {many['slowest_claims']}; "
            f"first claims took {many['first_claims']['p50']:.1f} ms p50 with {procs} "
            f"processes, {one['first_claims']['p50']:.1f} ms with 1",
        )
        for run in (one, many):
            self.report.absolute(
                f"  duplicate completions, {run['processes']} process(es)",
                run["duplicates"],
                "",
                run["duplicates"] == 0 and run["not_done"] == 0,
                "0, all done once",
                note=f"{run['done_events']} done events for {run['tasks']} tasks; "
                f"{run['double_claims']} tasks claimed twice; {run['not_done']} not done",
            )

    def _run_workers(
        self, root: Path, count: int, total: int, client: str, server_args: list[str] = SERVER_ARGS
    ) -> dict[str, Any]:
        wip = self.config.concurrency_procs
        config = {"state_root": str(root), "wip": wip, "server": server_args, "client": client}
        results = self.run_workers(config, count, timeout=600)
        latencies = [s for r in results for s in r["claims"]]
        after_first = [s for r in results for s in r["claims"][1:]]
        slowest = sorted(
            ((s * 1000, w, i) for w, r in enumerate(results) for i, s in enumerate(r["claims"])),
            reverse=True,
        )[:3]
        done = sum(r["done"] for r in results)
        elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
        with contextlib.closing(sqlite3.connect(root / "orchestrator.db")) as db:
            tasks = db.execute("SELECT count(*) FROM tasks").fetchone()[0]
            done_per_task = Counter(
                dict(
                    db.execute(
                        "SELECT task_id, count(*) FROM task_events WHERE to_status = 'done' "
                        "GROUP BY task_id"
                    ).fetchall()
                )
            )
            claims_per_task = Counter(
                dict(
                    db.execute(
                        "SELECT task_id, count(*) FROM task_events WHERE kind = 'claimed' "
                        "GROUP BY task_id"
                    ).fetchall()
                )
            )
            not_done = db.execute("SELECT count(*) FROM tasks WHERE status != 'done'").fetchone()[0]
        if tasks != total or done != total:
            raise BenchError(f"{count} process(es) completed {done} of {tasks} tasks")
        client_cpu = sum(r["client_cpu"] for r in results)
        server_cpu = sum(r["server_cpu"] for r in results)
        return {
            "processes": count,
            "tasks": tasks,
            "seconds": elapsed,
            "throughput": done / elapsed,
            "client_cpu_ms_per_task": 1000 * client_cpu / done,
            "server_cpu_ms_per_task": 1000 * server_cpu / done,
            "cpu_busy": (client_cpu + server_cpu) / elapsed / (os.cpu_count() or 1),
            "claim": summary(latencies),
            "claim_after_first": summary(after_first),
            "first_claims": summary([r["claims"][0] for r in results]),
            "slowest_claims": [f"{ms:.1f} ms (worker {w}, claim #{i})" for ms, w, i in slowest],
            "per_worker_done": [r["done"] for r in results],
            "refusals": dict(sum((Counter(r["refusals"]) for r in results), Counter())),
            "done_events": sum(done_per_task.values()),
            "duplicates": sum(1 for n in done_per_task.values() if n > 1),
            "double_claims": sum(1 for n in claims_per_task.values() if n > 1),
            "not_done": not_done,
        }

    # ---- startup and memory

    def startup(self, root: Path) -> None:
        cfg = self.config
        self.load("startup")
        log(f"startup: {cfg.startup_runs} runs each of the server and `import mcp.server`")
        env = get_default_environment() | server_env(root)
        server_cmd = [sys.executable, *SERVER_ARGS]
        import_cmd = [sys.executable, "-c", "import mcp.server; print('ready', flush=True)"]
        server_times, import_times = [], []
        for run in range(cfg.startup_runs + 1):  # run 0 warms the page cache, not counted
            took_import = self._first_line(import_cmd, env, None, b"ready")
            took_server = self._first_line(server_cmd, env, INITIALIZE, b'"result"')
            if run:
                import_times.append(took_import)
                server_times.append(took_server)
        server, baseline = statistics.median(server_times), statistics.median(import_times)
        self.report.details["startup"] = {
            "server_s": server_times,
            "import_mcp_server_s": import_times,
        }
        self.report.info("python -c 'import mcp.server' median", baseline * 1000, "ms")
        self.report.at_most(
            "server start to initialize answered, median",
            server * 1000,
            "ms",
            baseline * 1000,
            1.1,
            "<= 1.1x import",
            note=f"{cfg.startup_runs} runs each, interleaved; existing 1k-task database",
        )

    def _first_line(
        self, cmd: list[str], env: dict[str, str], payload: bytes | None, expect: bytes
    ) -> float:
        started = time.perf_counter()
        process = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errlog, env=env
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            if payload is not None:
                process.stdin.write(payload)
                process.stdin.flush()
            line = process.stdout.readline()
            took = time.perf_counter() - started
        finally:
            process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()
        if expect not in line:
            raise BenchError(f"{cmd[1:]} answered {line[:200]!r}")
        return took

    async def memory(self, source: Path) -> tuple[int, int]:
        """VmRSS and VmHWM (kB) of a server process that has done some work."""
        cfg = self.config
        label = size_label(cfg.rss_tasks)
        root = copy_state(source, self.fresh("rss"))
        self.load("rss")
        log(f"rss: server on a {label}-task database after plan_next and claim calls")
        async with connect(SERVER_ARGS, server_env(root), self.errlog) as client:
            for _ in range(50):
                plan = await call(client, "plan_next", {"limit": 10})
            for _ in range(20):
                granted = await call(client, "claim_task", {})
                await call(client, "plan_update", lease_update(granted, "done"))
            pid = server_pid(plan["agent_id"])
            if "wvo_mcp" not in proc_file(pid, "cmdline"):
                raise BenchError(f"process {pid} is not the wvo-mcp server")
            server_rss = proc_status_kb(pid, "VmRSS")
            server_hwm = proc_status_kb(pid, "VmHWM")
        return server_rss, server_hwm

    def memory_baseline(self, server_rss: int, server_hwm: int) -> None:
        label = size_label(self.config.rss_tasks)
        baseline = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import mcp.server, sys, time; print('ready', flush=True); sys.stdin.readline()",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errlog,
            text=True,
        )
        assert baseline.stdin is not None and baseline.stdout is not None
        try:
            if baseline.stdout.readline().strip() != "ready":
                raise BenchError("the import baseline did not start")
            import_rss = proc_status_kb(baseline.pid, "VmRSS")
        finally:
            baseline.stdin.close()
            baseline.wait(timeout=30)
            baseline.stdout.close()
        self.report.details["rss_kb"] = {
            "server_vmrss": server_rss,
            "server_vmhwm": server_hwm,
            "import_mcp_server_vmrss": import_rss,
        }
        self.report.info("python 'import mcp.server' VmRSS", import_rss / 1024, "MiB")
        self.report.at_most(
            f"server VmRSS @ {label} tasks",
            server_rss / 1024,
            "MiB",
            import_rss / 1024,
            1.3,
            "<= 1.3x import",
            note=f"VmHWM {server_hwm / 1024:.1f} MiB; after 50 plan_next + 20 claim/done",
        )


# --------------------------------------------------------------------------- worker process


@contextlib.asynccontextmanager
async def worker_client(
    config: dict[str, Any], env: dict[str, str]
) -> AsyncIterator[tuple[int, Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]]]:
    """The server's pid and a call function, through the SDK's client or RawClient."""
    server = config.get("server", SERVER_ARGS)
    if config["client"] == "raw":
        with lib.raw_client(server, env, sys.stderr) as raw:

            async def raw_call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
                return raw.call(tool, arguments)

            yield raw.process.pid, raw_call
        return
    async with connect(server, env, sys.stderr) as client:
        pid = server_pid((await call(client, "plan_next", {"limit": 1}))["agent_id"])
        yield pid, functools.partial(call, client)


async def worker_main(config: dict[str, Any]) -> None:
    """One agent: its own server process, claim_task -> plan_update(done) until empty.

    Protocol with the parent: print `ready` once connected, wait for a `go` line on stdin,
    then print one JSON line of results. Times use the system-wide monotonic clock."""
    env = server_env(Path(config["state_root"]), WVO_WIP_LIMIT=str(config["wip"]))
    claims: list[float] = []
    refusals: Counter[str] = Counter()
    done = 0
    async with worker_client(config, env) as (pid, call_tool):
        await call_tool("plan_next", {"limit": 1})
        await lib.wait_for_go()
        start = time.monotonic()
        client_cpu, server_cpu = time.process_time(), proc_cpu_seconds(pid)
        while True:
            started = time.perf_counter()
            granted = await call_tool("claim_task", {})
            claims.append(time.perf_counter() - started)
            if granted["claimed"]:
                await call_tool("plan_update", lease_update(granted, "done"))
                done += 1
                continue
            refusals[granted["reason"]] += 1
            if granted["reason"] == "no_ready_task":
                counts = (await call_tool("plan_next", {"limit": 1}))["counts"]
                if counts["by_status"].get("pending", 0) == 0:
                    break
            await anyio.sleep(0.002)
        end = time.monotonic()
        client_cpu = time.process_time() - client_cpu
        server_cpu = proc_cpu_seconds(pid) - server_cpu
    result = {
        "claims": claims,
        "done": done,
        "start": start,
        "end": end,
        "refusals": refusals,
        "client_cpu": client_cpu,
        "server_cpu": server_cpu,
    }
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------- main


def make_config(args: argparse.Namespace) -> Config:
    if args.quick:
        return Config(
            quick=True,
            sizes=args.sizes or [1_000, 10_000],
            floor_calls=500,
            claim_cycles=200,
            plan_calls=200,
            warmup=20,
            import_tasks=2_000,
            rss_tasks=10_000,
            claim_ready_tasks=1_000,
            concurrency_tasks=200,
            concurrency_procs=args.processes or 4,
            startup_runs=3,
            clients=args.clients,
            rounds=args.rounds,
        )
    return Config(
        quick=False,
        sizes=args.sizes or [1_000, 100_000, 1_000_000],
        floor_calls=500,
        claim_cycles=1000,
        plan_calls=1000,
        warmup=50,
        import_tasks=100_000,
        rss_tasks=100_000,
        claim_ready_tasks=10_000,
        concurrency_tasks=2_000,
        concurrency_procs=args.processes or 8,
        startup_runs=10,
        clients=args.clients,
        rounds=args.rounds,
    )


SECTIONS = ("raw", "sdk", "startup", "memory", "import", "concurrency")


async def run(bench: Bench, chosen: Sequence[str]) -> None:
    cfg = bench.config
    sizes = sorted({*cfg.sizes, 1_000, cfg.rss_tasks})
    bench.roots = {n: await chain_db(bench.cache, n) for n in sizes}
    if "raw" in chosen:
        await bench.raw()
    if "sdk" in chosen:
        async with bench.floor_server() as noop:
            bench.noop = noop
            await bench.floor()
            await bench.claim()
            await bench.plan_next(bench.roots)
        bench.noop = None


def main(argv: list[str] | None = None) -> int:
    parser = lib.arguments(__doc__)
    parser.add_argument(
        "--sizes",
        type=lib.comma_list(parse_size),
        help="plan_next database sizes, e.g. 1k,100k,1M (default 1k,100k,1M; quick 1k,10k)",
    )
    parser.add_argument(
        "--clients",
        type=lib.comma_list(str),
        default=["sdk", "raw"],
        help="concurrency: the clients to run, sdk and/or raw (default both)",
    )
    parser.add_argument(
        "--processes", type=int, help="concurrency: agents at once (default 8; quick 4)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="concurrency: alternate 1 and N processes this many times (default 1)",
    )
    lib.only_option(parser, SECTIONS)
    lib.common_options(parser)
    args = parser.parse_args(argv)
    chosen = lib.chosen_sections(parser, args, SECTIONS)
    if set(args.clients) - {"sdk", "raw"} or args.rounds < 1:
        parser.error("--clients takes sdk and/or raw; --rounds at least 1")

    if args.worker:
        anyio.run(worker_main, json.loads(args.worker))
        return 0

    config = make_config(args)
    work, cache = lib.workspace(args, "wvo-bench-")
    bench = Bench(config, work, cache, Report())

    def body() -> None:
        anyio.run(run, bench, chosen)
        # Subprocess-driven sections run synchronously, outside any event loop.
        if "startup" in chosen:
            bench.startup(copy_state(bench.roots[1_000], bench.fresh("startup")))
        if "memory" in chosen:
            bench.memory_baseline(*anyio.run(bench.memory, bench.roots[config.rss_tasks]))
        if "import" in chosen:
            anyio.run(bench.import_in_process, bench.import_cli())
        if "concurrency" in chosen:
            bench.concurrency()

    return lib.run_bench(
        bench, "wvo-mcp benchmark", body, args, extra=lambda: {"floor_p50_ms": bench.floor_p50}
    )


if __name__ == "__main__":
    sys.exit(main())
