#!/usr/bin/env python
"""Cost of the health monitor, backups and telemetry, over real stdio servers.

    python -m scripts.bench.health                  # full run, ~3 minutes
    python -m scripts.bench.health --quick          # small smoke run, under a minute
    python -m scripts.bench.health --only tick,backup --json out.json --keep

Sections (--only takes their names):

- tick: one wvo_mcp/health/monitor_loop.py HealthMonitor tick in-process at 1k, 100k and 1M
  tasks, timed in its parts (take_leadership, observe in a read transaction, orient and decide,
  record_tick in a write transaction), on a healthy queue and with 50 stale leases and
  50 drifted dependency counts injected before every tick, so the act path runs.
- leader: claim_task over stdio in a server whose monitor ticks every second (it leads) vs a
  server with no monitor, in alternating blocks, at 100k tasks.
- telemetry: claim_task and plan_next(10) over stdio with WVO_OTEL_ENABLED=1 vs 0, in
  alternating blocks, at 10k tasks; the size of spans.jsonl per 1000 tool calls.
- backup: backups.take at 100k and 1M tasks, idle and (100k) while 4 server processes claim and
  complete tasks; their claim latency during vs between backups; backups.restore at 100k.
- takeover: 3 servers ticking every 500 ms; SIGKILL the leader (read from health_report's
  `leader`) and time until another server's snapshot is written; several rounds.
- prune: health.monitor.old_events/delete_events in the monitor's batches on ~1M events of
  done tasks, while one server process claims and completes tasks; then again with 100k old
  events of unfinished tasks (which pruning keeps) in the way.

It uses lib.py, shared with core.py (the cached chain-graph databases, the
stdio client helpers, the report table). Built databases are cached like core's;
everything else lives in one temporary folder, removed at the end unless --keep. The table
goes to stdout, progress to stderr. The exit code is 0 whatever the figures; it is non-zero
only when the run fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from mcp.client.stdio import get_default_environment

from scripts.bench import lib
from scripts.bench.lib import (
    CHAIN_LENGTH,
    INITIALIZE,
    SERVER_ARGS,
    BenchError,
    Measure,
    Report,
    call,
    chain_db,
    claim_cycle,
    connect,
    copy_state,
    lease_update,
    log,
    server_env,
    server_pid,
    size_label,
    summary,
    timed,
)
from wvo_mcp import backups, timeutil
from wvo_mcp import providers as provider_config
from wvo_mcp.config import Settings
from wvo_mcp.health import judge, monitor_loop
from wvo_mcp.health import monitor as checks
from wvo_mcp.store import Database
from wvo_mcp.store.sqlite import SqliteDatabase
from wvo_mcp.telemetry import Telemetry

EVENTS_GENERATOR_VERSION = 1  # bump when the pruning database changes, to invalidate the cache
INJECTED = 50  # stale leases and drifted counts injected before each act-path tick
OLD = "2020-01-01T00:00:00.000Z"  # long before any cut-off
QUIET = {"WVO_BACKUP_INTERVAL_MINUTES": "0"}  # no backup on a leader's first tick
NO_MONITOR = {"WVO_AUTOPILOT_HEALTH_INTERVAL_MS": "0", **QUIET}
SECTIONS = ("tick", "leader", "telemetry", "backup", "takeover", "prune")


@dataclass
class Config:
    quick: bool
    tick_sizes: list[int]
    ticks: int
    leader_tasks: int
    leader_cycles: int
    telemetry_tasks: int
    telemetry_calls: int
    backup_sizes: list[int]
    backup_workers: int
    backup_rounds: int
    backup_gap_s: float
    restore_runs: int
    takeover_rounds: int
    takeover_interval_ms: int
    prune_tasks: int
    prune_events_per_task: int
    warmup: int


def make_config(quick: bool) -> Config:
    if quick:
        return Config(
            quick=True,
            tick_sizes=[1_000, 10_000],
            ticks=5,
            leader_tasks=10_000,
            leader_cycles=150,
            telemetry_tasks=10_000,
            telemetry_calls=150,
            backup_sizes=[10_000],
            backup_workers=2,
            backup_rounds=2,
            backup_gap_s=0.8,
            restore_runs=1,
            takeover_rounds=2,
            takeover_interval_ms=500,
            prune_tasks=10_000,
            prune_events_per_task=6,
            warmup=10,
        )
    return Config(
        quick=False,
        tick_sizes=[1_000, 100_000, 1_000_000],
        ticks=20,
        leader_tasks=100_000,
        leader_cycles=1000,
        telemetry_tasks=10_000,
        telemetry_calls=1000,
        backup_sizes=[100_000, 1_000_000],
        backup_workers=4,
        backup_rounds=5,
        backup_gap_s=2.0,
        restore_runs=3,
        takeover_rounds=5,
        takeover_interval_ms=500,
        prune_tasks=100_000,
        prune_events_per_task=11,
        warmup=30,
    )


def spread(values: list[float]) -> str:
    return f"{min(values):.3g}-{max(values):.3g}" if len(values) > 1 else f"{values[0]:.3g}"


def pid_of_instance(instance: str) -> int:
    """The pid in a monitor instance id `host:pid:tag` (health_report's `leader`)."""
    try:
        return int(instance.rsplit(":", 2)[1])
    except (IndexError, ValueError):
        raise BenchError(f"cannot read a pid from leader {instance!r}") from None


def parent_of(pid: int) -> int:
    """The parent of a live process (0 when it is gone), from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def raw_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


class Bench(lib.Bench):
    config: Config
    module = __spec__.name

    def __init__(self, config: Config, work: Path, cache: Path, report: Report) -> None:
        super().__init__(config, work, cache, report)
        self.copies: dict[int, Path] = {}  # working copies of the chain databases, by size

    async def chain_copy(self, total: int, name: str) -> Path:
        """A private state folder holding a copy of the cached `total`-task chain database."""
        source = await chain_db(self.cache, total)
        return copy_state(source, self.fresh(name))

    # ------------------------------------------------------------------ 1. tick cost

    async def tick(self) -> None:
        cfg = self.config
        for total in cfg.tick_sizes:
            label = size_label(total)
            root = await self.chain_copy(total, f"tick-{label}")
            self.copies[total] = root
            self.load(f"tick_{label}")
            log(f"tick: {cfg.ticks} healthy + {cfg.ticks} act-path ticks at {label} tasks")
            settings = Settings(state_root=root, backup_interval_minutes=0)
            ticker = monitor_loop.HealthMonitor(
                settings, "bench:0:tick", Telemetry(), provider_config.load(settings)
            )
            db = await SqliteDatabase(settings.db_path).open()
            try:
                healthy = [await self._one_tick(db, ticker) for _ in range(cfg.ticks + 1)][1:]
                acting = []
                cursors = {"stale": "", "drift": ""}
                for _ in range(cfg.ticks + 1):
                    await anyio.to_thread.run_sync(self._inject, settings.db_path, cursors)
                    acting.append(await self._one_tick(db, ticker))
                acting = acting[1:]
                drift = []
                for _ in range(max(3, cfg.ticks // 4)):
                    started = time.perf_counter()
                    await db.read(
                        lambda tx: tx.all(
                            "dependency_drift",
                            {"after": "", "slice": checks.DRIFT_SLICE, "cap": checks.LIST_CAP},
                        )
                    )
                    drift.append(time.perf_counter() - started)
            finally:
                await db.close()
            self._tick_rows(label, healthy, acting)
            stats = summary(drift)
            self.report.details[f"tick_{label}"]["dependency_drift_query"] = stats
            self.report.info(
                f"  observe's dependency_drift query alone @ {label}",
                stats["p50"],
                "ms",
                note=f"{stats['n']} runs, max {stats['max']:.1f} ms; a correlated count of "
                f"unmet dependencies for a slice of {checks.DRIFT_SLICE:,} unfinished tasks",
            )

    @staticmethod
    async def _one_tick(db: Database, ticker: monitor_loop.HealthMonitor) -> dict[str, float]:
        """One leader tick of HealthMonitor, with the times of its parts (its housekeeping,
        an event prune on the first tick, is not among them; backups are off)."""
        # Every tick checks the first slice of the dependency graph, as a new leader's first
        # tick does: the monitor's cursor would alternate a full and an empty slice here.
        ticker.drift_after = ""
        tick = await ticker.tick(db)
        if tick.observation is None or tick.outcome is None:
            raise BenchError(f"the tick lost the leadership (term {tick.term})")
        return {
            **tick.took,
            "total": sum(tick.took.values()),
            "anomalies": len(judge.orient(tick.observation)),
            "actions": len(tick.outcome.actions),
        }

    @staticmethod
    def _inject(db_path: Path, cursors: dict[str, str]) -> None:
        """Make INJECTED silent holders with expired leases (tasks in the first half of their
        chain) and INJECTED drifted dependency counts (second half), as raw rows."""
        conn = raw_db(db_path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            picked = {}
            for kind, half in (("stale", "< '050'"), ("drift", ">= '050'")):
                query = (
                    "SELECT id FROM tasks INDEXED BY tasks_status WHERE status = 'pending' "
                    f"AND id > ? AND substr(id, 9) {half} AND substr(id, 9) != '000' "
                    "ORDER BY id LIMIT ?"
                )
                ids = [r[0] for r in conn.execute(query, (cursors[kind], INJECTED))]
                if len(ids) < INJECTED:  # wrap around (small databases)
                    ids = [r[0] for r in conn.execute(query, ("", INJECTED))]
                cursors[kind] = ids[-1]
                picked[kind] = ids
            conn.executemany(
                "UPDATE tasks SET status = 'in_progress', assigned_to = 'bench-ghost', "
                "lease_token = hex(randomblob(8)), lease_epoch = lease_epoch + 1, "
                "lease_seconds = 600, claimed_at = ?1, lease_expires_at = ?1, "
                "last_heartbeat_at = ?1, updated_at = ?1 WHERE id = ?2",
                [(OLD, i) for i in picked["stale"]],
            )
            conn.executemany(
                "UPDATE tasks SET unmet_dependencies = unmet_dependencies + 1 WHERE id = ?",
                [(i,) for i in picked["drift"]],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _tick_rows(
        self, label: str, healthy: list[dict[str, float]], acting: list[dict[str, float]]
    ) -> None:
        details: dict[str, Any] = {}
        for name, ticks in (("healthy", healthy), ("act", acting)):
            details[name] = {
                part: summary([t[part] for t in ticks])
                for part in ("lead", "observe", "orient", "record", "total")
            }
            details[name]["actions"] = [t["actions"] for t in ticks]
            details[name]["anomalies"] = [t["anomalies"] for t in ticks]
        self.report.details[f"tick_{label}"] = details
        h, a = details["healthy"], details["act"]
        self.report.info(
            f"tick @ {label}: observe (read tx) p50",
            h["observe"]["p50"],
            "ms",
            note=f"max {h['observe']['max']:.1f} ms over {len(healthy)} healthy ticks; whole "
            f"tick p50 {h['total']['p50']:.1f} ms",
        )
        self.report.info(
            f"tick @ {label}: record_tick (write tx) p50",
            h["record"]["p50"],
            "ms",
            note=f"max {h['record']['max']:.2f} ms; take_leadership p50 "
            f"{h['lead']['p50']:.2f} ms; orient+decide p50 {h['orient']['p50']:.3f} ms",
        )
        actions = statistics.median(details["act"]["actions"])
        self.report.info(
            f"tick @ {label}, {INJECTED} stale + {INJECTED} drifted: observe p50",
            a["observe"]["p50"],
            "ms",
            note=f"max {a['observe']['max']:.1f} ms",
        )
        self.report.info(
            f"tick @ {label}, {INJECTED} stale + {INJECTED} drifted: record_tick p50",
            a["record"]["p50"],
            "ms",
            note=f"max {a['record']['max']:.1f} ms; {actions:.0f} actions per tick (re-queues "
            "and repairs, each re-checked), anomalies opened and resolved",
        )

    # ------------------------------------------------------------------ 2. leader vs no monitor

    async def leader(self) -> None:
        cfg = self.config
        label = size_label(cfg.leader_tasks)
        on_root = await self.chain_copy(cfg.leader_tasks, "leader-on")
        off_root = await self.chain_copy(cfg.leader_tasks, "leader-off")
        log(
            f"leader: {cfg.leader_cycles} claim cycles each, monitor every 1 s vs none, "
            f"at {label} tasks"
        )
        on_env = server_env(on_root, WVO_AUTOPILOT_HEALTH_INTERVAL_MS="1000", **QUIET)
        off_env = server_env(off_root, **NO_MONITOR)
        async with (
            connect(SERVER_ARGS, on_env, self.errlog) as on,
            connect(SERVER_ARGS, off_env, self.errlog) as off,
        ):
            pid = server_pid((await call(on, "plan_next", {"limit": 1}))["agent_id"])
            deadline = time.monotonic() + 30
            while True:
                report = await call(on, "health_report", {})
                if report.get("snapshot") and report.get("leader"):
                    break
                if time.monotonic() > deadline:
                    raise BenchError("the monitor-on server never wrote a health snapshot")
                await anyio.sleep(0.2)
            if pid_of_instance(report["leader"]) != pid:
                raise BenchError(f"leader {report['leader']} is not the server {pid}")
            ticks_before = self._count(on_root, "health_snapshots")
            started = time.monotonic()
            stats = await self.alternate(
                "leader",
                {"monitor every 1 s": claim_cycle(on), "no monitor": claim_cycle(off)},
                cfg.leader_cycles,
            )
            elapsed = time.monotonic() - started
        ticks = self._count(on_root, "health_snapshots") - ticks_before
        tick_spans = self._span_durations(on_root, "wvo.health.tick")
        on_stats, off_stats = stats["monitor every 1 s"], stats["no monitor"]
        self.report.details["leader"] = {
            "monitor_on": on_stats,
            "monitor_off": off_stats,
            "ticks_during": ticks,
            "seconds": elapsed,
            "tick_span_ms": summary([t / 1000 for t in tick_spans]) if tick_spans else None,
        }
        tick_note = (
            f"; the leader's tick spans: p50 {statistics.median(tick_spans):.0f} ms, "
            f"max {max(tick_spans):.0f} ms"
            if tick_spans
            else ""
        )
        self.report.info(
            f"claim_task p50 @ {label}, no monitor",
            off_stats["p50"],
            "ms",
            note=f"p99 {off_stats['p99']:.2f} ms, max {off_stats['max']:.1f} ms",
        )
        self.report.info(
            f"claim_task p50 @ {label}, leader ticking every 1 s",
            on_stats["p50"],
            "ms",
            ratio=on_stats["p50"] / off_stats["p50"],
            note=f"p99 {on_stats['p99']:.2f} ms, max {on_stats['max']:.1f} ms; {ticks} ticks "
            f"in {elapsed:.0f} s of alternating blocks{tick_note}; ratio vs no monitor",
        )
        self.report.info(
            f"claim_task p99 @ {label}, leader every 1 s vs no monitor",
            on_stats["p99"],
            "ms",
            ratio=on_stats["p99"] / off_stats["p99"],
            note=f"no monitor: {off_stats['p99']:.2f} ms",
        )

    @staticmethod
    def _count(root: Path, table: str) -> int:
        with contextlib.closing(raw_db(root / "orchestrator.db")) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    @staticmethod
    def _span_durations(root: Path, name: str) -> list[float]:
        path = root / "telemetry" / "spans.jsonl"
        if not path.exists():
            return []
        found = []
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("name") == name and record.get("duration_ms") is not None:
                found.append(float(record["duration_ms"]))
        return found

    # ------------------------------------------------------------------ 3. telemetry

    async def telemetry(self) -> None:
        cfg = self.config
        label = size_label(cfg.telemetry_tasks)
        on_root = await self.chain_copy(cfg.telemetry_tasks, "otel-on")
        off_root = await self.chain_copy(cfg.telemetry_tasks, "otel-off")
        log(f"telemetry: claim_task and plan_next(10), OTel on vs off, at {label} tasks")
        calls: Counter[str] = Counter()

        def counted(name: str, fn: Measure) -> Measure:
            async def measure() -> float:
                took = await fn()
                calls[name] += 1
                return took

            return measure

        async with (
            connect(
                SERVER_ARGS, server_env(on_root, WVO_OTEL_ENABLED="1", **NO_MONITOR), self.errlog
            ) as on,
            connect(
                SERVER_ARGS, server_env(off_root, WVO_OTEL_ENABLED="0", **NO_MONITOR), self.errlog
            ) as off,
        ):
            limit = {"limit": 10}
            stats = await self.alternate(
                "telemetry",
                {
                    "claim on": counted("claim on", claim_cycle(on)),
                    "claim off": claim_cycle(off),
                    "plan on": counted("plan on", lib.timer(on, "plan_next", limit)),
                    "plan off": lib.timer(off, "plan_next", limit),
                },
                cfg.telemetry_calls,
            )
        # The server flushes its spans when it stops (the client closed its stdin).
        spans_file = on_root / "telemetry" / "spans.jsonl"
        metrics_file = on_root / "telemetry" / "metrics.jsonl"
        if not spans_file.exists():
            raise BenchError("the OTel-on server wrote no spans.jsonl")
        lines = spans_file.read_text().splitlines()
        names = Counter(json.loads(line)["name"] for line in lines)
        tool_spans = sum(n for name, n in names.items() if name.startswith("tools/call"))
        size = spans_file.stat().st_size
        per_1000 = size / tool_spans * 1000 if tool_spans else float("nan")
        if any((off_root / "telemetry").glob("*.jsonl")):
            raise BenchError("the OTel-off server wrote telemetry files")
        self.report.details["telemetry"] = {
            **{k.replace(" ", "_"): v for k, v in stats.items()},
            "spans_bytes": size,
            "span_names": dict(names),
            "metrics_bytes": metrics_file.stat().st_size if metrics_file.exists() else 0,
            "calls_on": dict(calls),
        }
        for what, key in (("claim_task", "claim"), (f"plan_next(10) @ {label}", "plan")):
            on_s, off_s = stats[f"{key} on"], stats[f"{key} off"]
            self.report.info(
                f"{what} p50, OTel on" + (f" @ {label}" if key == "claim" else ""),
                on_s["p50"],
                "ms",
                ratio=on_s["p50"] / off_s["p50"],
                note=f"OTel off: p50 {off_s['p50']:.3f} ms, p99 {off_s['p99']:.2f} ms; on: p99 "
                f"{on_s['p99']:.2f} ms; ratio on vs off",
            )
        self.report.info(
            "spans.jsonl per 1000 tool calls",
            per_1000 / 1024,
            "KiB",
            note=f"{size / 1024:.0f} KiB for {tool_spans} tools/call spans "
            f"({size / max(1, len(lines)):.0f} B a line; {len(lines)} lines in all); "
            f"metrics.jsonl {self.report.details['telemetry']['metrics_bytes'] / 1024:.1f} KiB",
        )

    # ------------------------------------------------------------------ 4. backups

    def backup(self) -> None:
        cfg = self.config
        sizes = sorted(cfg.backup_sizes)
        loaded = sizes[0]
        label = size_label(loaded)
        root = anyio.run(self.chain_copy, loaded, "backup")
        db_path = root / "orchestrator.db"
        out = self.work / "backups-out"
        idle = self._takes(db_path, out, 3 if not cfg.quick else 1)
        self.load("backup_idle")
        log(
            f"backup: {cfg.backup_workers} servers claim+complete at {label} tasks; "
            f"{cfg.backup_rounds} backups {cfg.backup_gap_s:g} s apart"
        )
        env = {"WVO_WIP_LIMIT": str(2 * cfg.backup_workers), **NO_MONITOR}
        windows: list[tuple[float, float]] = []
        loaded_takes: list[float] = []
        loaded_cpu: list[float] = []

        def schedule() -> None:
            time.sleep(cfg.backup_gap_s * 1.5)
            for _ in range(cfg.backup_rounds):
                start, cpu = time.monotonic(), time.thread_time()
                backups.take(db_path, out, timeutil.now())
                end = time.monotonic()
                windows.append((start, end))
                loaded_takes.append(end - start)
                loaded_cpu.append(time.thread_time() - cpu)
                time.sleep(cfg.backup_gap_s)

        results = self._with_workers(root, cfg.backup_workers, env, schedule)
        self.load("backup_loaded")
        during, between = self._split(results, windows)
        size = latest_size(out)
        source = db_path.stat().st_size
        self.report.details["backup"] = {
            f"take_idle_s_{label}": idle,
            f"take_loaded_s_{label}": loaded_takes,
            f"take_loaded_cpu_s_{label}": loaded_cpu,
            "claims_during": summary(during) if during else None,
            "claims_between": summary(between),
            "backup_bytes": size,
            "db_bytes": source,
            "claims_total": len(during) + len(between),
        }
        self.report.info(
            f"backups.take @ {label}, idle",
            statistics.median(idle),
            "s",
            note=f"{len(idle)} runs: {spread(idle)} s; backup {size / 1e6:.1f} MB "
            f"(database {source / 1e6:.1f} MB)",
        )
        self._take_parts(db_path, label)
        self.report.info(
            f"backups.take @ {label}, {cfg.backup_workers} servers claiming",
            statistics.median(loaded_takes),
            "s",
            note=f"{len(loaded_takes)} runs: {spread(loaded_takes)} s; CPU time of the backup "
            f"itself {spread(loaded_cpu)} s, the rest off the CPU ({cfg.backup_workers} clients "
            f"and {cfg.backup_workers} servers busy on {os.cpu_count()} cores)",
        )
        if during:
            d, b = summary(during), summary(between)
            self.report.info(
                f"claim p99, {cfg.backup_workers} servers, during a backup",
                d["p99"],
                "ms",
                ratio=d["p99"] / b["p99"],
                note=f"{d['n']} claims overlapping a backup: p50 {d['p50']:.1f} ms, max "
                f"{d['max']:.1f} ms; ratio vs the claims between backups",
            )
            self.report.info(
                f"claim p99, {cfg.backup_workers} servers, no backup running",
                b["p99"],
                "ms",
                note=f"{b['n']} claims: p50 {b['p50']:.1f} ms, max {b['max']:.1f} ms",
            )
        restores = []
        latest = backups.latest(out)
        assert latest is not None
        for _ in range(cfg.restore_runs):
            started = time.perf_counter()
            result = backups.restore(
                latest[0], db_path, backups_dir=out, force=False, now=timeutil.now()
            )
            restores.append(time.perf_counter() - started)
            if result.tasks != loaded:
                raise BenchError(f"the restore holds {result.tasks} tasks, not {loaded}")
        self.report.details["backup"]["restore_s"] = restores
        self.report.info(
            f"backups.restore @ {label}",
            statistics.median(restores),
            "s",
            note=f"{len(restores)} runs: {spread(restores)} s; checks the backup, copies the "
            "live database aside (pre-restore), copies in, checks again",
        )
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        for total in sizes[1:]:
            label = size_label(total)
            big = self.copies.get(total) or anyio.run(self.chain_copy, total, f"backup-{label}")
            log(f"backup: backups.take at {label} tasks, idle")
            out = self.work / f"backups-{label}"
            takes = self._takes(big / "orchestrator.db", out, 2 if total >= 1_000_000 else 3)
            self.load(f"backup_{label}")
            size = latest_size(out)
            source = (big / "orchestrator.db").stat().st_size
            self.report.details["backup"][f"take_idle_s_{label}"] = takes
            self.report.details["backup"][f"backup_bytes_{label}"] = size
            self.report.info(
                f"backups.take @ {label}, idle",
                statistics.median(takes),
                "s",
                note=f"{len(takes)} runs: {spread(takes)} s; backup {size / 1e6:.0f} MB "
                f"(database {source / 1e6:.0f} MB)",
            )
            shutil.rmtree(out, ignore_errors=True)
            self._take_parts(big / "orchestrator.db", label)

    @staticmethod
    def _takes(db_path: Path, out: Path, runs: int) -> list[float]:
        took = []
        for _ in range(runs):
            os.sync()  # no dirty pages of earlier files left to slow this one down
            started = time.perf_counter()
            backups.take(db_path, out, timeutil.now())
            took.append(time.perf_counter() - started)
        return took

    def _take_parts(self, db_path: Path, label: str) -> None:
        """The parts of backups.take, timed one by one on an idle database: the backup API
        copy, PRAGMA quick_check of the copy, fsync."""
        parts: dict[str, float] = {}
        scratch = self.work / f"take-parts-{label}.db"
        scratch.unlink(missing_ok=True)
        os.sync()
        try:
            started = time.perf_counter()
            backups._copy(db_path, scratch)
            parts["copy"] = time.perf_counter() - started
            started = time.perf_counter()
            with contextlib.closing(sqlite3.connect(scratch)) as copy:
                problems = backups._check(copy, "quick_check")
            parts["quick_check"] = time.perf_counter() - started
            if problems:
                raise BenchError(f"quick_check of the copy failed: {problems}")
            started = time.perf_counter()
            backups._fsync(scratch)
            parts["fsync"] = time.perf_counter() - started
        finally:
            scratch.unlink(missing_ok=True)
        self.report.details.setdefault("backup_parts", {})[label] = parts
        self.report.info(
            f"  parts @ {label}: backup API copy / quick_check / fsync",
            parts["copy"],
            "s",
            note=f"{parts['copy']:.3f} / {parts['quick_check']:.3f} / {parts['fsync']:.3f} s, "
            "timed one by one on an idle database",
        )

    @staticmethod
    def _split(
        results: list[dict[str, Any]], windows: list[tuple[float, float]]
    ) -> tuple[list[float], list[float]]:
        """Claim durations overlapping any window, and the others."""
        during: list[float] = []
        between: list[float] = []
        for r in results:
            for start, took in r["claims"]:
                end = start + took
                hit = any(start < w_end and end > w_start for w_start, w_end in windows)
                (during if hit else between).append(took)
        return during, between

    def _with_workers(
        self, root: Path, count: int, env: dict[str, str], work: Callable[[], None]
    ) -> list[dict[str, Any]]:
        """Start `count` worker processes (each with its own server on `root`) claiming and
        completing tasks, run `work` while they do, stop them and return their results."""
        config = {"state_root": str(root), "env": env}
        return self.run_workers(config, count, timeout=120, while_running=work)

    # ------------------------------------------------------------------ 5. leader takeover

    def takeover(self) -> None:
        cfg = self.config
        interval = cfg.takeover_interval_ms / 1000
        lease = monitor_loop.LEASE_INTERVALS * interval
        root = anyio.run(self.chain_copy, 1_000, "takeover")
        env = get_default_environment() | server_env(
            root, WVO_AUTOPILOT_HEALTH_INTERVAL_MS=str(cfg.takeover_interval_ms), **QUIET
        )
        log(
            f"takeover: 3 servers ticking every {cfg.takeover_interval_ms} ms; "
            f"{cfg.takeover_rounds} leader kills"
        )
        servers: dict[int, subprocess.Popen[bytes]] = {}

        def start() -> None:
            process = subprocess.Popen(
                [sys.executable, *SERVER_ARGS],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.errlog,
                env=env,
            )
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(INITIALIZE)
            process.stdin.flush()
            line = process.stdout.readline()
            if b'"result"' not in line:
                process.kill()
                process.wait()
                raise BenchError(f"a server did not answer initialize: {line[:200]!r}")
            process.stdin.write(
                b'{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}\n'
            )
            process.stdin.flush()
            servers[process.pid] = process

        rounds: list[dict[str, Any]] = []

        async def observe_rounds() -> None:
            settings = Settings(state_root=root)
            db = await SqliteDatabase(settings.db_path).open()

            async def current() -> Any:
                return await db.read(
                    partial(checks.report, limit=1, full=False, now=timeutil.now())
                )

            try:
                deadline = time.monotonic() + 30
                while (r := await current()).snapshot is None or r.leader is None:
                    if time.monotonic() > deadline:
                        raise BenchError("no server became leader")
                    await anyio.sleep(0.05)
                for _ in range(cfg.takeover_rounds):
                    # A random moment in the leader's renewal cycle.
                    await anyio.sleep(random.uniform(2 * interval, 4 * interval))
                    r = await current()
                    leader = r.leader
                    if leader is None:
                        raise BenchError("no leader to kill")
                    pid = pid_of_instance(leader)
                    # A client's process is a handle serving in its child (cli/handle.py):
                    # the leader is that child, killed itself, then its handle.
                    owner = pid if pid in servers else parent_of(pid)
                    if owner not in servers:
                        raise BenchError(f"the leader {leader} is not one of this run's servers")
                    expires = timeutil.from_text(r.leader_expires_at)
                    process = servers.pop(owner)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    process.send_signal(signal.SIGKILL)
                    killed_at = datetime.now(UTC)
                    await anyio.to_thread.run_sync(process.wait)
                    deadline = time.monotonic() + 10 * lease + 10
                    while True:
                        r = await current()
                        s = r.snapshot
                        stamp = timeutil.to_text(killed_at)
                        if s is not None and s.leader != leader and s.at > stamp:
                            break
                        if time.monotonic() > deadline:
                            raise BenchError("no new leader's snapshot after the kill")
                        await anyio.sleep(0.01)
                    new_at = timeutil.from_text(s.at)
                    rounds.append(
                        {
                            "takeover_s": (new_at - killed_at).total_seconds(),
                            "lease_left_s": (expires - killed_at).total_seconds(),
                            "after_expiry_s": (new_at - expires).total_seconds(),
                            "old": leader,
                            "new": s.leader,
                        }
                    )
                    await anyio.to_thread.run_sync(start)  # back to three servers
            finally:
                await db.close()

        try:
            for _ in range(3):
                start()
            anyio.run(observe_rounds)
        finally:
            for process in servers.values():
                assert process.stdin is not None
                with contextlib.suppress(OSError):
                    process.stdin.close()
            for process in servers.values():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                if process.stdout is not None:
                    process.stdout.close()
        self.load("takeover")
        takeovers = [r["takeover_s"] for r in rounds]
        after = [r["after_expiry_s"] for r in rounds]
        left = [r["lease_left_s"] for r in rounds]
        self.report.details["takeover"] = {
            "interval_s": interval,
            "lease_s": lease,
            "rounds": rounds,
        }
        self.report.info(
            f"leader takeover after SIGKILL, interval {cfg.takeover_interval_ms} ms, median",
            statistics.median(takeovers) * 1000,
            "ms",
            ratio=max(takeovers) / lease,
            note=f"{len(rounds)} kills: {spread([t * 1000 for t in takeovers])} ms from the kill "
            f"to a new leader's snapshot; ratio: the slowest vs the lease ({lease * 1000:.0f} ms)",
        )
        self.report.info(
            "  of which after the old lease ran out, max",
            max(after) * 1000,
            "ms",
            note=f"the old lease had {spread([x * 1000 for x in left])} ms left at the kill; "
            f"after it ran out: {spread([x * 1000 for x in after])} ms",
        )

    # ------------------------------------------------------------------ 6. event pruning

    async def events_db(self) -> Path:
        """A cached database of prune_tasks chain tasks where 90% of the chains are done, with
        prune_events_per_task old events per done task (the last one a `done`)."""
        cfg = self.config
        per = cfg.prune_events_per_task
        name = (
            f"events-{size_label(cfg.prune_tasks)}x{per}-v{EVENTS_GENERATOR_VERSION}-"
            f"{lib.schema_fingerprint()}"
        )
        root = self.cache / name
        if lib.cached(root):
            log(f"using cached pruning database {root}")
            return root
        with lib.building(root) as folder:
            copy_state(await chain_db(self.cache, cfg.prune_tasks), folder)
            self._add_done_events(folder / "orchestrator.db", per)
        return root

    def _add_done_events(self, db_path: Path, per: int) -> None:
        """Finish 90% of the chains, long ago, each done task with `per` old events."""
        cfg = self.config
        chains = cfg.prune_tasks // CHAIN_LENGTH
        done_chains = chains * 9 // 10
        log(f"building the pruning database: {done_chains} of {chains} chains done, {per} events")
        started = time.perf_counter()
        conn = raw_db(db_path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE tasks SET status = 'done', unmet_dependencies = 0, completed_at = ?1, "
                "updated_at = ?1 WHERE id < ?2",
                (OLD, f"c{done_chains:06d}"),
            )
            conn.execute(
                "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?1) "
                "INSERT INTO task_events "
                "(task_id, at, actor, kind, from_status, to_status, reason) "
                "SELECT t.id, printf('2020-01-01T00:%02d:00.000Z', k.n), 'bench', "
                "CASE WHEN k.n = ?1 THEN 'status' ELSE 'heartbeat' END, 'in_progress', "
                "CASE WHEN k.n = ?1 THEN 'done' ELSE 'in_progress' END, 'generated for pruning' "
                "FROM tasks t INDEXED BY tasks_status CROSS JOIN k WHERE t.status = 'done' "
                "ORDER BY k.n, t.id",
                (per,),
            )
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        log(f"  built in {time.perf_counter() - started:.1f} s")

    def prune(self) -> None:
        cfg = self.config
        source = anyio.run(self.events_db)
        self._prune_pass(source, kept=0)
        # Old events of unfinished tasks (say a backlog imported long ago, or heartbeats of a
        # long task) are kept; each batch walks past them again, as they come first by time.
        self._prune_pass(source, kept=cfg.prune_tasks)

    def _prune_pass(self, source: Path, kept: int) -> None:
        cfg = self.config
        root = copy_state(source, self.fresh("prune"))
        db_path = root / "orchestrator.db"
        with contextlib.closing(raw_db(db_path)) as conn:
            if kept:
                unfinished = conn.execute(
                    "SELECT count(*) FROM tasks WHERE status != 'done'"
                ).fetchone()[0]
                per = -(-kept // unfinished)
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?) "
                    "INSERT INTO task_events "
                    "(task_id, at, actor, kind, from_status, to_status, reason) "
                    "SELECT t.id, '2019-06-01T00:00:00.000Z', 'bench', 'heartbeat', "
                    "t.status, t.status, 'old event of an unfinished task' "
                    "FROM tasks t CROSS JOIN k WHERE t.status != 'done'",
                    (per,),
                )
                conn.execute("COMMIT")
            total_events = conn.execute("SELECT count(*) FROM task_events").fetchone()[0]
            old_kept = conn.execute(
                "SELECT count(*) FROM task_events WHERE at < '2021' AND task_id IN "
                "(SELECT id FROM tasks WHERE status != 'done')"
            ).fetchone()[0]
        old_events = total_events - old_kept - cfg.prune_tasks  # one `created` event per task
        log(
            f"prune: {old_events:,} old events of done tasks, {old_kept:,} old events of "
            f"unfinished tasks kept, batches of {monitor_loop.PRUNE_BATCH}, one server claiming"
        )
        batches: list[float] = []
        deleted: list[int] = []
        window: dict[str, float] = {}

        async def prune_all() -> None:
            db = await SqliteDatabase(db_path).open()
            try:
                older_than = timeutil.now() - timedelta(days=Settings().retention_days)
                window["start"] = time.monotonic()
                cursor: tuple[str, int] | None = ("", 0)
                while cursor is not None:  # as HealthMonitor._prune: pick, delete, pause
                    started = time.perf_counter()
                    ids, cursor = await db.read(
                        partial(
                            checks.old_events,
                            older_than=older_than,
                            after=cursor,
                            batch=monitor_loop.PRUNE_BATCH,
                        )
                    )
                    n = await db.write(partial(checks.delete_events, ids=ids)) if ids else 0
                    batches.append(time.perf_counter() - started)
                    deleted.append(n)
                    await anyio.sleep(monitor_loop.PRUNE_PAUSE_S)
                window["end"] = time.monotonic()
            finally:
                await db.close()

        def work() -> None:
            time.sleep(3.0 if not cfg.quick else 1.0)
            anyio.run(prune_all)
            time.sleep(1.0)

        env = {"WVO_WIP_LIMIT": "4", **NO_MONITOR}
        results = self._with_workers(root, 1, env, work)
        key = "prune" if not kept else "prune_kept"
        self.load(key)
        start, end = window["start"], window["end"]
        during, between = self._split(results, [(start, end)])
        with contextlib.closing(raw_db(db_path)) as conn:
            left = conn.execute(
                "SELECT count(*) FROM task_events WHERE at >= '2020' AND at < '2021'"
            ).fetchone()[0]
        if left:  # (kept events of tasks the claimer completed meanwhile may remain)
            raise BenchError(f"{left} old events of done tasks were left after pruning")
        shutil.rmtree(root, ignore_errors=True)
        rate = sum(deleted) / (end - start)
        b = summary(batches)
        d, q = summary(during), summary(between)
        self.report.details[key] = {
            "deleted": sum(deleted),
            "old_events_kept": old_kept,
            "seconds": end - start,
            "batches": b,
            "claims_during": d,
            "claims_outside": q,
            "events_before": total_events,
        }
        where = "" if not kept else f", {old_kept // 1000}k old events kept"
        self.report.info(
            f"event pruning: delete rate{where}",
            rate,
            "events/s",
            note=f"{sum(deleted):,} events in {end - start:.1f} s, batches of "
            f"{monitor_loop.PRUNE_BATCH}: p50 {b['p50']:.1f} ms, max {b['max']:.1f} ms (a read "
            "transaction picks, a write transaction deletes)",
        )
        self.report.info(
            f"  claim p50 of a concurrent claimer while pruning{where}",
            d["p50"],
            "ms",
            ratio=d["p50"] / q["p50"],
            note=f"{d['n']} claims: p99 {d['p99']:.1f} ms; outside pruning ({q['n']} claims): "
            f"p50 {q['p50']:.1f} ms, p99 {q['p99']:.1f} ms; ratio vs outside",
        )
        self.report.info(
            f"  claim max of a concurrent claimer while pruning{where}",
            d["max"],
            "ms",
            note=f"outside pruning: max {q['max']:.1f} ms",
        )


def latest_size(folder: Path) -> int:
    found = backups.latest(folder)
    if found is None:
        raise BenchError(f"no backup in {folder}")
    return found[0].stat().st_size


# --------------------------------------------------------------------------- worker process


async def worker_main(config: dict[str, Any]) -> None:
    """One agent with its own server: claim_task -> plan_update(done) until told to stop.

    Protocol with the parent: print `ready` once connected (after one warm-up claim, so the
    client's outputSchema validator is compiled), wait for `go` on stdin, loop until `stop`,
    then print one JSON line. Claim start times use the system-wide monotonic clock."""
    env = server_env(Path(config["state_root"]), **config["env"])
    claims: list[tuple[float, float]] = []
    refusals: Counter[str] = Counter()
    done = 0
    stopped = anyio.Event()

    async def wait_stop() -> None:
        while (await anyio.to_thread.run_sync(sys.stdin.readline)).strip() not in ("stop", ""):
            pass
        stopped.set()

    async with connect(SERVER_ARGS, env, sys.stderr) as client:
        granted = await call(client, "claim_task", {})
        if granted["claimed"]:
            await call(client, "plan_update", lease_update(granted, "pending"))
        await lib.wait_for_go()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait_stop)
            while not stopped.is_set():
                start = time.monotonic()
                took, granted = await timed(client, "claim_task", {})
                claims.append((start, took))
                if granted["claimed"]:
                    await call(client, "plan_update", lease_update(granted, "done"))
                    done += 1
                else:
                    refusals[granted["reason"]] += 1
                    await anyio.sleep(0.002)
    print(json.dumps({"claims": claims, "done": done, "refusals": refusals}), flush=True)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    return lib.sections_main(argv, __doc__, SECTIONS, "health", make_config, Bench, worker_main)


if __name__ == "__main__":
    sys.exit(main())
