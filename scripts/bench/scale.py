#!/usr/bin/env python
"""Scale-out benchmark: claim+done by many agents over HTTP on PostgreSQL, beside stdio on
SQLite, and plan_next at 1k vs 1M tasks on PostgreSQL.

    python -m scripts.bench.scale --quick          # smoke run, about a minute
    python -m scripts.bench.scale --json out.json  # full run
    python -m scripts.bench.scale --only http --servers 4 --agents 16

Sections (`--only`):
- `stdio`: 1 and 8 agents, each with its own `wvo-mcp serve` (stdio, one SQLite file),
  draining the same task set with lib.RawClient: core.py's concurrency run.
- `http`: 1, 4, 16 and 64 agents over streamable HTTP, spread round-robin over `--servers`
  `serve --http` processes (4 by default) sharing one PostgreSQL (a throwaway, durable
  cluster: fsync on), then 16 agents on 1 and 2 servers. Each agent has its own token and
  its own keep-alive connection, and posts raw JSON-RPC (no SDK client); agents are asyncio
  tasks in `--drivers` driver processes. Each configuration drains a fresh database of
  independent tasks (claim_task -> plan_update(done)) and records the throughput, the
  client-side claim latency, the CPU of the servers, of PostgreSQL and of the drivers per
  task, and how often PostgreSQL's one write lock was held or waited for (pg_locks sampled).
- `plan`: plan_next(limit=10) over HTTP at 1k and 1M tasks on PostgreSQL (tables filled
  with INSERT ... SELECT from generate_series, chains of 100 as bench_core builds them).

The table goes to stdout, progress to stderr; the exit code is 0 whether targets pass or
fail, non-zero only when a measurement could not be taken.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import re
import ssl
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import h11
import httpx2
import psycopg
from mcp.client.stdio import get_default_environment

from scripts.bench import core as bench_core
from scripts.bench import http_calls as bench_http
from scripts.bench import lib
from scripts.bench.lib import (
    CHAIN_LENGTH,
    ROOT,
    BenchError,
    Report,
    copy_state,
    free_port,
    independent_task,
    lease_update,
    log,
    machine_busy,
    proc_cpu_seconds,
    size_label,
    summary,
    wait_listening,
)
from tests.pgcluster import Cluster
from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status
from wvo_mcp.store.postgres import CLAIM_LOCK_KEY, WRITE_LOCK_KEY

PROTOCOL = "2025-11-25"
HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": PROTOCOL,
}
DRAIN_DEADLINE_S = 600.0
SAMPLE_EVERY_S = 0.02  # pg_locks sampling period while agents work
SERVER_ENV = {
    "WVO_WIP_LIMIT": "1000",  # never the reason a claim is refused
    "WVO_WIP_PER_AGENT": "1",
    "WVO_HTTP_RATE_PER_TOKEN": "0",  # the agents call flat out: measured, never refused
}
# wvo-mcp's advisory locks in one pg_locks sample (fleet.py samples them too): the world
# lock held exclusively (a WORLD write, or any write before issue 24), the claim lock held,
# and the requests waiting for either. Shared holds of the world lock (TASK and CLAIM writes)
# keep out WORLD writes only, so they are not counted as held.
LOCK_COUNTS = (
    f"count(*) FILTER (WHERE granted AND objid = {WRITE_LOCK_KEY} AND mode = 'ExclusiveLock'), "
    f"count(*) FILTER (WHERE granted AND objid = {CLAIM_LOCK_KEY}), "
    "count(*) FILTER (WHERE NOT granted) FROM pg_locks WHERE locktype = 'advisory'"
)


# --------------------------------------------------------------------------- HTTP agents


# How a tool refused at its wait bound says when to call again (errors.Overloaded).
RETRY_IN = re.compile(r"retry in ([0-9.]+) s")


class Refused(BenchError):
    """The server turned a request away (HTTP 503 or 429, or a tool's Overloaded: nothing
    was done) and said when to come back."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class HttpAgent:
    """JSON-RPC posted to a `serve --http` endpoint over one keep-alive connection, with the
    agent's own bearer token; answers are read as SSE (`data:` lines) or plain JSON.

    HTTP/1.1 by h11 over asyncio streams, not an httpx client: thousands of agents share the
    server's two cores, and httpx's CPU per call (some 2.5 ms) was a fifth of the machine at
    2,000 agents, measured as the server's latency."""

    def __init__(self, url: str, secret: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = parts.scheme == "https"
        self.headers = [
            ("Host", parts.netloc),
            *HEADERS.items(),
            ("Authorization", f"Bearer {secret}"),
        ]
        self.target = parts.path or "/"
        self.retry_after = 0.0  # the last answer's Retry-After, in seconds (0: none)
        self.stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.http = h11.Connection(h11.CLIENT)
        self.last_id = 0

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        await self.aclose()
        self.stream = await asyncio.open_connection(
            self.host, self.port, ssl=tls_context() if self.tls else None
        )
        self.http = h11.Connection(h11.CLIENT)
        return self.stream

    async def _exchange(self, body: bytes) -> tuple[int, str, str]:
        """(status, content type, text) of one POST, on the kept connection if the server
        has not closed it meanwhile (then once more on a new one: nothing was answered)."""
        fresh = self.stream is None or self.http.our_state is not h11.IDLE
        reader, writer = await self._connect() if fresh else self.stream  # type: ignore[misc]
        headers = [*self.headers, ("Content-Length", str(len(body)))]
        writer.write(
            self.http.send(h11.Request(method="POST", target=self.target, headers=headers))
            + self.http.send(h11.Data(data=body))
            + self.http.send(h11.EndOfMessage())
        )
        try:
            await writer.drain()
            return await self._answer(reader)
        except (ConnectionError, h11.RemoteProtocolError, EOFError):
            if fresh:
                raise
            return await self._exchange(body)  # the server closed the idle connection

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, str, str]:
        status, kind = 0, ""
        self.retry_after = 0.0
        chunks: list[bytes] = []
        while True:
            event = self.http.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                if not data and not chunks and not status:
                    raise EOFError
                self.http.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = dict(event.headers)
                kind = headers.get(b"content-type", b"").decode()
                self.retry_after = float(headers.get(b"retry-after", b"0") or 0)
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.ConnectionClosed):
                raise EOFError
            elif isinstance(event, h11.EndOfMessage):
                if self.http.our_state is h11.DONE and self.http.their_state is h11.DONE:
                    self.http.start_next_cycle()
                return status, kind, b"".join(chunks).decode()

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.last_id += 1
        body = {"jsonrpc": "2.0", "id": self.last_id, "method": method, "params": params}
        try:
            with anyio.fail_after(60):
                status, kind, text = await self._exchange(json.dumps(body).encode())
        except (OSError, TimeoutError, EOFError, h11.ProtocolError) as exc:
            await self.aclose()
            raise BenchError(f"{method}: {type(exc).__name__}: {exc}") from None
        if status in (429, 503) and self.retry_after:
            raise Refused(f"{method}: HTTP {status}: {text[:300]}", self.retry_after)
        if status != 200:
            raise BenchError(f"{method}: HTTP {status}: {text[:300]}")
        for message in parse_answer(kind, text):
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise BenchError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result
        raise BenchError(f"{method}: no answer in {text[:300]!r}")

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = await self.request("tools/call", {"name": tool, "arguments": arguments})
        if result.get("isError"):
            text = result["content"][0]["text"]
            said = RETRY_IN.search(text) if "Overloaded:" in text else None
            if said is not None:  # refused at the wait bound, nothing done: come back
                raise Refused(f"{tool}: {text[:300]}", float(said.group(1)))
            raise BenchError(f"{tool} failed: {text}")
        structured: dict[str, Any] = result.get("structuredContent") or {}
        return structured

    async def initialize(self) -> None:
        params = json.loads(lib.INITIALIZE)["params"]
        await self.request("initialize", params)

    async def aclose(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            stream[1].close()
            with contextlib.suppress(OSError):
                await stream[1].wait_closed()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every agent's client (never used on plain HTTP): httpx makes one
    per client otherwise, some 30 ms each, which thousands of agents cannot afford."""
    return ssl.create_default_context()


def parse_answer(content_type: str, text: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an answer: one JSON body, or the `data:` lines of SSE."""
    if content_type.startswith("application/json"):
        return [json.loads(text)]
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


async def drain(agent: HttpAgent) -> dict[str, Any]:
    """claim_task -> plan_update(done) until no task is pending (as core's workers)."""
    claims: list[float] = []
    refusals: Counter[str] = Counter()
    done = 0
    start = time.monotonic()
    while True:
        started = time.perf_counter()
        granted = await agent.call("claim_task", {})
        claims.append(time.perf_counter() - started)
        if granted["claimed"]:
            await agent.call("plan_update", lease_update(granted, "done"))
            done += 1
            continue
        refusals[granted["reason"]] += 1
        if granted["reason"] == "busy":  # past capacity: come back when told
            await anyio.sleep(granted["retry_after_s"])
            continue
        if granted["reason"] == "no_ready_task":
            counts = (await agent.call("plan_next", {"limit": 1}))["counts"]
            if counts["by_status"].get("pending", 0) == 0:
                break
        await anyio.sleep(0.002)
    return {
        "claims": claims,
        "done": done,
        "start": start,
        "end": time.monotonic(),
        "refusals": refusals,
    }


def take_slot(folder: Path) -> int:
    """This driver's index among those started with the same config (the first free slot)."""
    for index in range(1000):
        try:
            os.close(os.open(folder / f"slot-{index}", os.O_CREAT | os.O_EXCL))
            return index
        except FileExistsError:
            continue
    raise BenchError("no free driver slot")


async def driver_main(config: dict[str, Any]) -> None:
    """One driver process: its share of the agents as asyncio tasks. Protocol with the
    parent (lib.Bench.run_workers): `ready` once every agent has answered, `go`, drain,
    then wait for `stop` and print one JSON line."""
    index = take_slot(Path(config["slots"]))
    mine = config["agents"][index :: config["drivers"]]
    agents = [HttpAgent(url, secret) for url, secret in mine]
    try:
        for agent in agents:  # warm-up: the connection, the token, the first call
            await agent.initialize()
            for _ in range(3):
                await agent.call("plan_next", {"limit": 1})
        await lib.wait_for_go()
        cpu = time.process_time()
        runs: list[dict[str, Any]] = [{} for _ in agents]

        async def run(i: int) -> None:
            runs[i] = await drain(agents[i])

        async with anyio.create_task_group() as group:
            for i in range(len(agents)):
                group.start_soon(run, i)
        cpu = time.process_time() - cpu
    finally:
        for agent in agents:
            await agent.aclose()
    await anyio.to_thread.run_sync(sys.stdin.readline)  # `stop`
    print(json.dumps({"runs": runs, "driver_cpu": cpu}), flush=True)


# --------------------------------------------------------------------------- processes


def postgres_cpu(cluster: Cluster) -> dict[int, float]:
    """CPU seconds of the postmaster and each of its children, by pid."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    cpu = {postmaster: proc_cpu_seconds(postmaster)}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == postmaster:
                ticks = int(fields[11]) + int(fields[12])
                cpu[int(entry.name)] = ticks / os.sysconf("SC_CLK_TCK")
    return cpu


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two snapshots (a process gone by the second is not counted)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


class Window:
    """What a watch over a run sees: CPU snapshots of the servers (`pids`), PostgreSQL and the
    whole machine at the start and at `figures()`, and pg_locks sampled in between (is the
    world lock held, the claim lock; how many wait)."""

    def __init__(self, cluster: Cluster, pids: list[int]) -> None:
        self.cluster, self.pids = cluster, pids
        self.servers = sum(proc_cpu_seconds(pid) for pid in pids)
        self.postgres = postgres_cpu(cluster)
        self.mine = time.process_time()
        self.machine = machine_busy()
        self.started = time.monotonic()
        self.samples = self.held = self.claim_held = self.waiters = 0

    def sample(self, world: int, claiming: int, waiting: int) -> None:
        """One pg_locks sample (see LOCK_COUNTS)."""
        self.samples += 1
        self.held += world > 0
        self.claim_held += claiming > 0
        self.waiters += waiting

    def figures(self) -> dict[str, Any]:
        """The seconds since the start, the CPU each used (`monitor_cpu` is this process), and
        the lock figures as shares of the samples."""
        samples = max(1, self.samples)
        return {
            "seconds": time.monotonic() - self.started,
            "server_cpu": sum(proc_cpu_seconds(pid) for pid in self.pids) - self.servers,
            "postgres_cpu": cpu_delta(self.postgres, postgres_cpu(self.cluster)),
            "monitor_cpu": time.process_time() - self.mine,
            "machine_cpu": machine_busy() - self.machine,
            "lock_held": self.held / samples,
            "claim_lock_held": self.claim_held / samples,
            "lock_waiters_mean": self.waiters / samples,
            "samples": self.samples,
        }


@dataclass
class HttpServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"


@contextlib.contextmanager
def http_servers(
    count: int,
    url: str,
    work: Path,
    errlog: Any,
    extra_env: dict[str, str] | None = None,
    python: str = sys.executable,
) -> Iterator[list[HttpServer]]:
    """`count` `serve --http` processes on free ports, each with its own state folder (as on
    separate hosts), sharing the database at `url` (`extra_env` over SERVER_ENV), run by
    `python`; listening when this yields."""
    env = {
        **get_default_environment(),
        "WVO_DATABASE_URL": url,
        **SERVER_ENV,
        **(extra_env or {}),
    }
    servers: list[HttpServer] = []
    try:
        for i in range(count):
            port = free_port()
            root = work / f"host-{port}"
            root.mkdir(parents=True)
            command = [python, "-P", "-m", "wvo_mcp", "--state-root", str(root),
                       "serve", "--http", "--port", str(port)]  # fmt: skip
            process = lib.start_server(command, ROOT, env, errlog)
            servers.append(HttpServer(port, process))
            log(f"  server {i + 1}/{count}: pid {process.pid}, port {port}")
        for server in servers:
            wait_listening(server.process, server.port, f"server on {server.port}")
        yield servers
    finally:
        lib.stop_servers([server.process for server in servers])


# --------------------------------------------------------------------------- databases


async def prepare(url: str, work: Path, agents: int, tasks: int) -> list[str]:
    """Tokens for `agents` agents and `tasks` independent tasks in the database at `url`
    (created by wvo-mcp itself); the agents' secrets."""
    settings = Settings(state_root=work, database_url=url, otel_enabled=False)
    orchestrator = await Orchestrator.open(settings)
    try:
        secrets = [
            (await orchestrator.token_add("agent", f"agent-{i:02d}", by="person:bench")).secret
            for i in range(agents)
        ]
        rng = random.Random(tasks)
        for start in range(0, tasks, lib.BUILD_BATCH):
            count = min(lib.BUILD_BATCH, tasks - start)
            specs = [
                TaskSpec.model_validate(independent_task(i, rng))
                for i in range(start, start + count)
            ]
            await orchestrator.create_tasks(specs, actor="bench")
        return secrets
    finally:
        await orchestrator.close()


async def direct_cycles(url: str, work: Path, count: int, warmup: int) -> dict[str, Any]:
    """claim + update_status(done) by the Orchestrator itself on PostgreSQL, no MCP and no
    HTTP: the database work of a task, its wall time and this process's CPU per task."""
    settings = Settings(state_root=work, database_url=url, otel_enabled=False)
    orchestrator = await Orchestrator.open(settings)
    try:
        samples: list[float] = []
        cpu = 0.0
        for i in range(warmup + count):
            if i == warmup:
                cpu = time.process_time()
            started = time.perf_counter()
            granted = await orchestrator.claim("bench-direct")
            assert granted.task is not None and granted.lease_token is not None
            await orchestrator.update_status(
                granted.task.id, Status.DONE, "bench-direct", granted.lease_token
            )
            if i >= warmup:
                samples.append(time.perf_counter() - started)
        cpu = time.process_time() - cpu
    finally:
        await orchestrator.close()
    return {"cycle": summary(samples), "cpu_ms_per_task": 1000 * cpu / count}


# Chains of CHAIN_LENGTH tasks as core's chain_task builds them (chain heads ready, the
# rest waiting on their predecessor), straight into the tables. Every column as insert_task
# and set_score leave it: job_size 2 x complexity, enablement 1 for all but a chain's last
# task (its one open dependent), wsjf_score rounded to 4 places.
FILL_TASKS = """
INSERT INTO tasks (
    id, title, epic_id, status, complexity, business_value, time_criticality,
    risk_reduction, job_size, unmet_dependencies, dependents, effective_time_criticality,
    wsjf_score, created_at, updated_at)
SELECT id, title, epic_id, 'pending', complexity, bv, tc, rr, 2 * complexity,
    (pos > 0)::int, (pos < %(chain)s - 1)::int, tc::float8,
    round(((bv + tc + rr + (pos < %(chain)s - 1)::int)::numeric / (2 * complexity)), 4),
    %(now)s, %(now)s
FROM (
    SELECT format('c%%s.%%s', lpad((n / %(chain)s)::text, 6, '0'),
                  lpad((n %% %(chain)s)::text, 3, '0')) AS id,
        format('Chain %%s step %%s', n / %(chain)s, n %% %(chain)s) AS title,
        format('epic-%%s', lpad(((n / %(chain)s) %% 50)::text, 2, '0')) AS epic_id,
        n %% %(chain)s AS pos,
        1 + (hashint4(n) & 1023) %% 10 AS complexity,
        1 + (hashint4(n + 1000000007) & 1023) %% 20 AS bv,
        1 + (hashint4(n + 2000000011) & 1023) %% 20 AS tc,
        1 + (hashint4(n - 1000000007) & 1023) %% 20 AS rr
    FROM generate_series(0, %(total)s::int - 1) AS n
) AS generated
"""
FILL_DEPENDENCIES = """
INSERT INTO task_dependencies (task_id, depends_on_id)
SELECT format('c%%s.%%s', lpad((n / %(chain)s)::text, 6, '0'),
              lpad((n %% %(chain)s)::text, 3, '0')),
       format('c%%s.%%s', lpad((n / %(chain)s)::text, 6, '0'),
              lpad((n %% %(chain)s - 1)::text, 3, '0'))
FROM generate_series(0, %(total)s::int - 1) AS n
WHERE n %% %(chain)s > 0
"""
# The counts the per-row triggers would have left (they are off during the bulk insert).
RECOUNT = """
DELETE FROM queue_count_deltas;
UPDATE queue_count_base SET tasks = CASE
    WHEN bucket = 'ready' THEN (SELECT count(*) FROM tasks
                                WHERE status = 'pending' AND unmet_dependencies = 0)
    ELSE (SELECT count(*) FROM tasks WHERE status = queue_count_base.bucket) END
"""


def enable_statements(cluster: Cluster) -> None:
    """Load pg_stat_statements (a restart) so each run can count the statements per task and
    the time PostgreSQL spent executing them, the write lock's wait included."""
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    cluster.restart()
    with psycopg.connect(cluster.url("template1"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")  # in every database made next


STATEMENTS = """
SELECT query, calls, total_exec_time FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query NOT LIKE '%%pg_locks%%' AND query NOT LIKE '%%pg_stat%%'
ORDER BY total_exec_time DESC
"""


def statement_figures(rows: list[tuple[str, int, float]], done: int) -> dict[str, Any]:
    """Per task: statements, PostgreSQL's execution ms (the write lock's wait apart), and the
    statements that took the most time."""
    waits = [r for r in rows if "pg_advisory_xact_lock" in r[0]]
    rest = [r for r in rows if "pg_advisory_xact_lock" not in r[0]]
    return {
        "statements_per_task": sum(r[1] for r in rows) / done,
        "exec_ms_per_task": sum(r[2] for r in rest) / done,
        "lock_wait_ms_per_task": sum(r[2] for r in waits) / done,
        "lock_statements_per_task": sum(r[1] for r in waits) / done,
        "top": [
            {"query": " ".join(q.split())[:120], "per_task": c / done, "ms_per_task": t / done}
            for q, c, t in rest[:8]
        ],
    }


def fill_chains(url: str, total: int) -> None:
    """`total` chain tasks in a database wvo-mcp has migrated: one INSERT ... SELECT each for
    tasks and dependencies with triggers (the counts, the foreign keys) off, then the counts
    recomputed and the tables analyzed."""
    now = timeutil.to_text(timeutil.now())
    params = {"chain": CHAIN_LENGTH, "total": total, "now": now}
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute(FILL_TASKS, params)
            conn.execute(FILL_DEPENDENCIES, params)
            conn.execute(RECOUNT)
        conn.execute("VACUUM ANALYZE tasks")
        conn.execute("VACUUM ANALYZE task_dependencies")
        conn.execute("CHECKPOINT")


# --------------------------------------------------------------------------- the bench


@dataclass
class Config:
    quick: bool
    http_agents: list[int]
    servers: int
    server_counts_at_16: list[int]  # further runs of 16 agents on these server counts
    drivers: int
    http_tasks: int
    stdio_agents: int
    stdio_tasks: int
    plan_sizes: list[int]
    plan_calls: int
    warmup: int
    py_spy: Path | None = None  # profile one server in the run of 16 agents on `servers`


class Bench(lib.Bench):
    config: Config
    module = __spec__.name

    def __init__(self, config: Config, work: Path, cache: Path, report: Report) -> None:
        super().__init__(config, work, cache, report)
        self.cluster: Cluster | None = None
        self.stdio_runs: dict[int, dict[str, Any]] = {}
        self.http_runs: dict[str, dict[str, Any]] = {}
        self.databases = 0

    def database(self, name: str) -> str:
        assert self.cluster is not None
        self.databases += 1
        return self.cluster.create_database(f"{name}_{self.databases}")

    # ---- stdio on SQLite: core's concurrency run

    def stdio(self) -> None:
        cfg = self.config
        total, many = cfg.stdio_tasks, cfg.stdio_agents
        template = self.fresh("stdio-template")
        log(f"stdio: building {total:,} independent tasks (SQLite)")
        anyio.run(lib.build_db, template, total, independent_task)
        core_config = bench_core.make_config(
            argparse.Namespace(
                quick=cfg.quick, sizes=None, processes=many, clients=["raw"], rounds=1
            )
        )  # `many` is also its WIP limit
        core = bench_core.Bench(core_config, self.work, self.cache, Report())
        try:
            for n in (1, many):
                root = copy_state(template, self.fresh(f"stdio-{n}"))
                self.load(f"stdio_{n}")
                log(f"stdio: {n} agent(s), each with its own server, drain {total:,} tasks")
                self.stdio_runs[n] = core._run_workers(root, n, total, "raw")
        finally:
            core.errlog.close()
        self.report.details["stdio"] = {str(k): v for k, v in self.stdio_runs.items()}
        for n, run in self.stdio_runs.items():
            self.report.info(
                f"stdio on SQLite, {n} agent(s): claim+done",
                run["throughput"],
                "tasks/s",
                note=f"claim p50 {run['claim']['p50']:.2f} ms, p99 {run['claim']['p99']:.1f} "
                f"ms; CPU per task: server {run['server_cpu_ms_per_task']:.2f} ms, client "
                f"{run['client_cpu_ms_per_task']:.2f} ms; duplicates {run['duplicates']}",
            )

    # ---- HTTP on PostgreSQL

    def http(self) -> None:
        cfg = self.config
        plan = [(n, cfg.servers) for n in cfg.http_agents]
        plan += [(16, s) for s in cfg.server_counts_at_16 if (16, s) not in plan]
        for agents, servers in plan:
            key = f"{agents}x{servers}"
            self.load(f"http_{key}")
            self.http_runs[key] = self.http_run(agents, servers)
            run = self.http_runs[key]
            log(
                f"  {run['throughput']:.0f} tasks/s; claim p50 {run['claim']['p50']:.2f} ms, "
                f"p99 {run['claim']['p99']:.1f} ms; CPU ms/task server "
                f"{run['server_cpu_ms_per_task']:.2f}, postgres "
                f"{run['postgres_cpu_ms_per_task']:.2f}, drivers "
                f"{run['driver_cpu_ms_per_task']:.2f}; world lock held "
                f"{100 * run['lock_held']:.0f}%, claim lock {100 * run['claim_lock_held']:.0f}% "
                f"({run['lock_held_ms_per_task']:.2f} ms/task); {run['statements_per_task']:.1f} "
                f"statements/task, {run['exec_ms_per_task']:.2f} ms executing, lock wait "
                f"{run['lock_wait_ms_per_task']:.2f} ms/task"
            )
            if run["server_cpu_layers"]:
                shown = ", ".join(f"{k} {v:.2f}" for k, v in run["server_cpu_layers"].items())
                log(f"  servers' CPU ms/task by layer (py-spy, one server): {shown}")
        self.report.details["http"] = self.http_runs
        self.http_rows()
        self.direct()

    def direct(self) -> None:
        """The same cycle in-process on PostgreSQL, one at a time, with the CPU of this process
        and of PostgreSQL: what a task costs without HTTP and MCP."""
        assert self.cluster is not None
        count = self.config.http_tasks // 3
        url = self.database("direct")
        work = self.fresh("cli-direct")
        anyio.run(prepare, url, work, 0, count + self.config.warmup)
        log(f"direct: {count} in-process claim + done cycles on PostgreSQL")
        postgres = postgres_cpu(self.cluster)
        run = anyio.run(direct_cycles, url, work, count, self.config.warmup)
        run["postgres_cpu_ms_per_task"] = (
            1000 * cpu_delta(postgres, postgres_cpu(self.cluster)) / count
        )
        self.report.details["direct"] = run
        self.report.info(
            "in-process Orchestrator claim + done on PostgreSQL, p50",
            run["cycle"]["p50"],
            "ms",
            note=f"no HTTP, no MCP, one at a time; CPU per task: Python "
            f"{run['cpu_ms_per_task']:.2f} ms, PostgreSQL {run['postgres_cpu_ms_per_task']:.2f} "
            f"ms (its warm-up included); p99 {run['cycle']['p99']:.2f} ms",
        )

    def http_run(self, agents: int, servers: int) -> dict[str, Any]:
        cfg = self.config
        total = cfg.http_tasks
        assert self.cluster is not None
        url = self.database("claims")
        secrets = anyio.run(prepare, url, self.fresh(f"cli-{agents}x{servers}"), agents, total)
        drivers = min(cfg.drivers, agents)
        log(f"http: {agents} agent(s) on {servers} server(s), {drivers} driver(s), {total:,} tasks")
        with http_servers(servers, url, self.work, self.errlog) as fleet:
            config = {
                "agents": [(fleet[i % servers].url, s) for i, s in enumerate(secrets)],
                "drivers": drivers,
                "slots": str(self.fresh(f"slots-{agents}x{servers}")),
            }
            pids = [server.process.pid for server in fleet]
            window: dict[str, Any] = {}
            profiled = self.work / f"py-spy-{agents}x{servers}.txt"
            profiled_here = (agents, servers) == (16, cfg.servers)
            spy = cfg.py_spy if profiled_here else None
            with (
                bench_http.profiling(spy, pids[0], profiled, self.errlog),
                psycopg.connect(url, autocommit=True) as probe,
            ):

                def while_running() -> None:
                    window.update(self.watch(probe, pids, total))

                results = self.run_workers(config, drivers, DRAIN_DEADLINE_S, while_running)
            self.errlog.flush()
        runs = [run for result in results for run in result["runs"]]
        done = sum(run["done"] for run in runs)
        if done != total:
            raise BenchError(f"{agents} agents completed {done} of {total} tasks")
        with psycopg.connect(url) as conn:
            done_events: dict[str, int] = dict(
                conn.execute(
                    "SELECT task_id, count(*) FROM task_events WHERE to_status = 'done' "
                    "GROUP BY task_id"
                ).fetchall()
            )
        elapsed = max(r["end"] for r in runs) - min(r["start"] for r in runs)
        driver_cpu = sum(result["driver_cpu"] for result in results)
        claims = [s for run in runs for s in run["claims"]]
        ms = 1000 / done
        return {
            "agents": agents,
            "servers": servers,
            "drivers": drivers,
            "tasks": total,
            "seconds": elapsed,
            "throughput": done / elapsed,
            "claim": summary(claims),
            "claim_after_first": summary([s for run in runs for s in run["claims"][1:]]),
            "server_cpu_ms_per_task": window["server_cpu"] * ms,
            "postgres_cpu_ms_per_task": window["postgres_cpu"] * ms,
            "driver_cpu_ms_per_task": driver_cpu * ms,
            "monitor_cpu_ms_per_task": window["monitor_cpu"] * ms,
            # everything else the machine ran meanwhile (other users' work included)
            "other_cpu_ms_per_task": (
                window["machine_cpu"]
                - window["server_cpu"]
                - window["postgres_cpu"]
                - window["monitor_cpu"]
                - driver_cpu
            )
            * ms,
            "machine_busy": window["machine_cpu"] / window["seconds"] / (os.cpu_count() or 1),
            "cpu_busy": (window["server_cpu"] + window["postgres_cpu"] + driver_cpu)
            / window["seconds"]
            / (os.cpu_count() or 1),
            "lock_held": window["lock_held"],
            "claim_lock_held": window["claim_lock_held"],
            "lock_waiters_mean": window["lock_waiters_mean"],
            "lock_held_ms_per_task": window["lock_held"] * window["seconds"] * ms,
            "commits_per_task": window["commits"] / done,
            "lock_samples": window["samples"],
            **statement_figures(window["statements"], done),
            "per_agent_done": [run["done"] for run in runs],
            "refusals": dict(sum((Counter(run["refusals"]) for run in runs), Counter())),
            "duplicates": sum(1 for n in done_events.values() if n > 1),
            "done_events": sum(done_events.values()),
            # One server's samples, split by layer, scaled to all servers' CPU per task.
            "server_cpu_layers": (
                bench_http.charge(profiled, window["server_cpu"] * ms) if spy is not None else {}
            ),
        }

    def watch(self, probe: psycopg.Connection[Any], pids: list[int], total: int) -> dict[str, Any]:
        """While the drivers drain: CPU snapshots of the servers and PostgreSQL at the start and
        when the last task is done, and pg_locks sampled every SAMPLE_EVERY_S (is the advisory
        write lock held; how many wait for it). This probe's own queries are in the
        PostgreSQL figures (`monitor_cpu` is this process)."""
        assert self.cluster is not None
        stat = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        sample = "SELECT (SELECT tasks FROM queue_counts WHERE bucket = 'done'), " + LOCK_COUNTS
        probe.execute("SELECT pg_stat_statements_reset()")
        commits = probe.execute(stat).fetchone()[0]  # type: ignore[index]
        window = Window(self.cluster, pids)
        while True:
            done, world, claiming, waiting = probe.execute(sample).fetchone()  # type: ignore[misc]
            window.sample(world, claiming, waiting)
            if done >= total:
                break
            if time.monotonic() - window.started > DRAIN_DEADLINE_S:
                raise BenchError(f"only {done} of {total} tasks done in {DRAIN_DEADLINE_S} s")
            time.sleep(SAMPLE_EVERY_S)
        figures = window.figures()
        return {
            **figures,
            # this probe's own queries are transactions too: one per sample, plus one
            "commits": probe.execute(stat).fetchone()[0] - commits - figures["samples"] - 1,  # type: ignore[index]
            "statements": probe.execute(STATEMENTS).fetchall(),
        }

    def http_rows(self) -> None:
        cfg = self.config
        runs = self.http_runs
        for agents in cfg.http_agents:
            run = runs[f"{agents}x{cfg.servers}"]
            self.http_row(f"HTTP on PostgreSQL, {agents} agent(s), {cfg.servers} servers", run)
        for servers in cfg.server_counts_at_16:
            if servers != cfg.servers:
                self.http_row(
                    f"HTTP on PostgreSQL, 16 agents, {servers} server(s)", runs[f"16x{servers}"]
                )
        key = f"16x{cfg.servers}"
        if key not in runs or cfg.stdio_agents not in self.stdio_runs:
            return
        run, stdio = runs[key], self.stdio_runs[cfg.stdio_agents]
        self.report.at_least(
            f"16 HTTP agents on PostgreSQL vs {cfg.stdio_agents} stdio agents on SQLite",
            run["throughput"],
            "tasks/s",
            stdio["throughput"],
            1.0,
            ">= 1.0x",
            note=f"{stdio['throughput']:.0f} tasks/s over stdio",
        )
        self.report.absolute(
            "  claim p99, 16 HTTP agents",
            run["claim"]["p99"],
            "ms",
            run["claim"]["p99"] <= 50.0,
            "<= 50 ms",
            note=f"max {run['claim']['max']:.1f} ms over {run['claim']['n']} claims",
        )
        self.report.absolute(
            "duplicate completions, every HTTP run",
            sum(r["duplicates"] for r in runs.values()),
            "",
            all(r["duplicates"] == 0 and r["done_events"] == r["tasks"] for r in runs.values()),
            "0, all done once",
        )

    def http_row(self, label: str, run: dict[str, Any]) -> None:
        self.report.info(
            f"{label}: claim+done",
            run["throughput"],
            "tasks/s",
            note=f"claim p50 {run['claim']['p50']:.2f} ms, p99 {run['claim']['p99']:.1f} ms; "
            f"CPU ms/task: servers {run['server_cpu_ms_per_task']:.2f}, PostgreSQL "
            f"{run['postgres_cpu_ms_per_task']:.2f}, drivers {run['driver_cpu_ms_per_task']:.2f} "
            f"({100 * run['cpu_busy']:.0f}% of {os.cpu_count()} cores; the machine "
            f"{100 * run['machine_busy']:.0f}% busy); world lock held "
            f"{100 * run['lock_held']:.0f}% of the time ({run['lock_held_ms_per_task']:.2f} "
            f"ms/task), claim lock {100 * run['claim_lock_held']:.0f}%, "
            f"{run['lock_waiters_mean']:.1f} waiting on average",
        )
        self.report.info("  claim p99", run["claim"]["p99"], "ms", note="client side")
        self.report.info(
            "  world lock held per task",
            run["lock_held_ms_per_task"],
            "ms",
            note=f"{100 * run['lock_held']:.0f}% of the time; PostgreSQL executing "
            f"{run['statements_per_task']:.1f} statements/task: {run['exec_ms_per_task']:.2f} ms; "
            f"lock waits {run['lock_wait_ms_per_task']:.1f} ms/task (summed over waiters)",
        )

    # ---- plan_next at 1k and 1M tasks

    def plan(self) -> None:
        cfg = self.config
        measures: dict[str, lib.Measure] = {}
        firsts: dict[str, Any] = {}
        with contextlib.ExitStack() as stack:
            for total in cfg.plan_sizes:
                label = size_label(total)
                url = self.database(f"plan_{label.lower()}")
                secret = anyio.run(prepare, url, self.fresh(f"cli-plan-{label}"), 1, 0)[0]
                log(f"plan: filling {total:,} chain tasks into PostgreSQL")
                started = time.perf_counter()
                fill_chains(url, total)
                build = time.perf_counter() - started
                log(f"  filled in {build:.1f} s")
                self.report.details.setdefault("plan_build_seconds", {})[label] = build
                fleet = stack.enter_context(http_servers(1, url, self.work, self.errlog))
                client = stack.enter_context(
                    httpx2.Client(
                        headers={**HEADERS, "Authorization": f"Bearer {secret}"},
                        timeout=httpx2.Timeout(30, read=60),
                    )
                )
                if not measures:
                    measures["ping"] = plan_timer(client, fleet[0].url, ping=True)
                measures[label] = plan_timer(client, fleet[0].url)
                firsts[label] = plan_call(client, fleet[0].url)
                counts = firsts[label]["counts"]
                if counts["ready"] != total // CHAIN_LENGTH or len(firsts[label]["tasks"]) != 10:
                    raise BenchError(f"unexpected plan_next answer at {label}: {counts}")
            log(f"plan: {cfg.plan_calls} calls of plan_next(limit=10) at each size, in rotation")
            stats = anyio.run(self.alternate, "plan", measures, cfg.plan_calls)
        self.report.details["plan"] = stats
        ping = stats.pop("ping")
        self.report.info(
            "HTTP floor: `ping` p50 (token check + transport, no tool)",
            ping["p50"],
            "ms",
            note=f"p99 {ping['p99']:.2f} ms; in the same rotation as plan_next",
        )
        small, large = size_label(min(cfg.plan_sizes)), size_label(max(cfg.plan_sizes))
        for label, s in stats.items():
            self.report.info(
                f"plan_next(10) over HTTP on PostgreSQL p50 @ {label} tasks",
                s["p50"],
                "ms",
                note=f"p99 {s['p99']:.2f} ms over {s['n']} calls",
            )
        self.report.at_most(
            f"plan_next {large} vs {small}",
            stats[large]["p50"],
            "ms",
            stats[small]["p50"],
            1.2,
            "<= 1.2x",
        )


def post(client: httpx2.Client, url: str, method: str, params: dict[str, Any]) -> Any:
    """One blocking JSON-RPC request; its result."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = client.post(url, content=json.dumps(body))
    messages = parse_answer(response.headers.get("content-type", ""), response.text)
    if response.status_code != 200 or not messages or "result" not in messages[0]:
        raise BenchError(f"{method}: HTTP {response.status_code}: {response.text[:300]}")
    return messages[0]["result"]


def plan_call(client: httpx2.Client, url: str) -> dict[str, Any]:
    result = post(client, url, "tools/call", {"name": "plan_next", "arguments": {"limit": 10}})
    if result.get("isError"):
        raise BenchError(f"plan_next failed: {result['content'][0]['text']}")
    structured: dict[str, Any] = result["structuredContent"]
    return structured


def plan_timer(client: httpx2.Client, url: str, ping: bool = False) -> lib.Measure:
    """A measure: one blocking plan_next(10) over HTTP, or a `ping` (the token check and the
    transport, no tool), while nothing else runs."""

    async def measure() -> float:
        started = time.perf_counter()
        if ping:
            post(client, url, "ping", {})
        else:
            plan_call(client, url)
        return time.perf_counter() - started

    return measure


# --------------------------------------------------------------------------- main


def make_config(args: argparse.Namespace) -> Config:
    agents = args.agents or ([1, 4, 16] if args.quick else [1, 4, 16, 64])
    if args.quick:
        return Config(
            quick=True,
            http_agents=agents,
            servers=args.servers,
            server_counts_at_16=[],
            drivers=args.drivers,
            http_tasks=300,
            stdio_agents=8,
            stdio_tasks=300,
            plan_sizes=[1_000, 10_000],
            plan_calls=100,
            warmup=10,
            py_spy=args.py_spy,
        )
    return Config(
        quick=False,
        http_agents=agents,
        servers=args.servers,
        server_counts_at_16=[1, 2],
        drivers=args.drivers,
        http_tasks=3_000,
        stdio_agents=8,
        stdio_tasks=3_000,
        plan_sizes=[1_000, args.plan_size],
        plan_calls=500,
        warmup=30,
        py_spy=args.py_spy,
    )


SECTIONS = ("stdio", "http", "plan")


def main(argv: list[str] | None = None) -> int:
    parser = lib.arguments(__doc__)
    parser.add_argument("--servers", type=int, default=4, help="HTTP servers (default 4)")
    parser.add_argument(
        "--drivers", type=int, default=2, help="processes running the HTTP agents (default 2)"
    )
    parser.add_argument(
        "--agents",
        type=lib.comma_list(int),
        help="HTTP agent counts (default 1,4,16,64; quick 1,4,16)",
    )
    parser.add_argument(
        "--plan-size",
        type=bench_core.parse_size,
        default=1_000_000,
        help="the large plan_next database (default 1M)",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        help="py-spy's executable: profile one server while 16 agents drain on --servers, "
        "and split the servers' CPU per task by layer",
    )
    lib.only_option(parser, SECTIONS)
    lib.common_options(parser)
    args = parser.parse_args(argv)
    if args.worker:
        anyio.run(driver_main, json.loads(args.worker))
        return 0
    chosen = lib.chosen_sections(parser, args, SECTIONS)

    config = make_config(args)
    work, cache = lib.workspace(args, "wvo-bench-scale-")
    bench = Bench(config, work, cache, Report())

    def body() -> None:
        with contextlib.ExitStack() as stack:
            if "http" in chosen or "plan" in chosen:
                log("starting a throwaway PostgreSQL cluster (fsync on)")
                bench.cluster = stack.enter_context(Cluster.start(durable=True))
                enable_statements(bench.cluster)
            bench.run_sections(SECTIONS, chosen)

    return lib.run_bench(bench, "wvo-mcp scale-out benchmark", body, args, chosen)


if __name__ == "__main__":
    sys.exit(main())
