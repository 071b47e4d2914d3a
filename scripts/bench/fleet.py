#!/usr/bin/env python
"""Fleet simulation: hundreds to thousands of agents over HTTP on PostgreSQL, each living the
real loop, and the largest fleet that keeps its latencies.

    python -m scripts.bench.fleet --quick                 # smoke run, under 2 minutes
    python -m scripts.bench.fleet --json out.json         # 500, 1000, 2000, 5000 agents
    python -m scripts.bench.fleet --sizes 500,1000 --servers 2
    python -m scripts.bench.fleet --baseline 1f0e781 --json out.json   # against issue 24's start

Each agent is an asyncio task with its own bearer token and one keep-alive HTTP/1.1
connection to each of `--servers` `serve --http` processes sharing one throwaway, durable
PostgreSQL, posting raw JSON-RPC (scale.py's HttpAgent: each a `tools/call`, stateless, with
`Accept: application/json, text/event-stream` and `MCP-Protocol-Version: 2025-11-25`), as
issue 73's client does. `--spread` says which server each call goes to: `alternate` (the
default: the agent's calls take its servers in turn, each agent starting at its own), `random`
(a server drawn per call) or `pinned` (every call of an agent to one server, agents
round-robin over the servers: this benchmark's client before issue 73).

Each agent's loop: claim_task; while it holds the task, heartbeat every H s and checkpoint
every C s; after T s, plan_update(done); claim again (each period varies by JITTER either
way). The fleet comes up together, as users start one: each agent says `initialize` on each
of its connections before the clock starts (not with `--no-initialize`: its first calls then
open them), then makes its first claim within the first START_SPREAD_S of it. A claim
refused as busy comes back when its `retry_after_s` says. A call refused with nothing done
(HTTP 503 or 429, or a tool's Overloaded) is made again after its Retry-After, doubled at
each refusal and jittered (exponential backoff): a claim three times at most, a done while
the task's lease runs. A heartbeat or checkpoint refused waits for its next period, as a
periodic call should (made again at once by every refused agent, they would keep the servers
past capacity on their own). A task whose lease would run out first is dropped (a lease
lost), and the agent claims again. Leases last 20 heartbeats (600 s at H = 30 s, wvo-mcp's
default). The measured window (`--duration` s) opens after a ramp of one task (T s, or
`--ramp` s), once the fleet is in its steady state. Agents run in `--drivers` processes.

`--clients ours,harness` runs each size with each client shape: `ours` as the options above
say, and `harness`, the client issue 85's outside measurement used: each agent pinned to one
server, no `initialize`, the fleet's first claims within HARNESS_START_S of the start, and
`lease_seconds` said on every heartbeat. `--py-spy PATH` samples the first server through
each window and splits the servers' CPU per write by layer (http_calls.LAYERS).
`--baseline-first` runs the baseline's sizes before this checkout's: on this machine the
first runs of an invocation cost every process more (the drivers' own CPU per write too),
so a same-run comparison is taken in both orders.

`--impatient`: clients written before `retry_after_s` existed, as a script or an agent whose
loop retries at once: every refused call (a claim refused as busy, HTTP 503 or 429, a tool's
Overloaded) is made again IMPATIENT_S (uniform) later, whatever it was told, for as long as
it takes (a held call to its lease's end, a claim to the window's end).

Per fleet size: the writes served a second against those the fleet intends (every granted
claim_task, heartbeat, checkpoint and plan_update answered), p50/p99/max of each call (client
side, calls started inside the window; a claim refused as busy apart), the refusals by kind,
the leases lost (lease_expired and requeued events, and calls told LeaseLost), the share of
the window wvo-mcp's world lock was held exclusively and its claim lock was held (advisory
locks; pg_locks sampled every 20 ms), and the CPU of the servers and of PostgreSQL per
write served. `--baseline REV` runs each size on a git revision's servers too, in the same
run, so the two are compared on the same machine at the same hour. The largest fleet keeping
claim p99 <= 100 ms and heartbeat p99 <= 50 ms is the headline; past it, the writes served
against the most any smaller fleet had served (the capacity) say how the fleet degrades.
With `--past-capacity` every size is run; without, sizes stop once one misses the targets,
or once the drivers cannot keep their own schedule (then the machine, not the server, is
measured: the table says so).

Tasks: a fresh database per size holds enough independent tasks that claims never run dry;
the WIP limits are set above the fleet so they are never what is measured. Tokens are minted
in one process, a batch per transaction (bearer_tokens.add, as `wvo-mcp tokens add` does one).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import math
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psycopg

from scripts.bench import http_calls as bench_http
from scripts.bench import lib
from scripts.bench import scale as bench_scale
from scripts.bench.lib import ROOT, BenchError, Report, log, summary
from scripts.bench.scale import (
    SAMPLE_EVERY_S,
    STATEMENTS,
    HttpAgent,
    Refused,
    Window,
    enable_statements,
    http_servers,
    take_slot,
)
from tests.pgcluster import Cluster
from wvo_mcp.config import Settings
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.services import bearer_tokens
from wvo_mcp.store import Tx

CLAIM_P99_MS = 100.0
REFUSED_TRIES = 3  # a claim the server turns away (503, 429, Overloaded) is made this often
BACKOFF_MAX_S = 30.0
SKIPPED: dict[str, Any] = {}  # a heartbeat or checkpoint refused: its next period comes
IMPATIENT_S = (0.2, 0.5)  # --impatient: a refused call comes back this long after, uniform
START_SPREAD_S = 5.0  # the fleet's first claims fall within this much of the start
# The harness client (issue 85): each agent pinned to one server, no `initialize`, the
# fleet's first claims within this much of the start, lease_seconds on every heartbeat.
HARNESS_START_S = 1.0
CLIENTS = ("ours", "harness")
# Each period (heartbeat, checkpoint, task) varies by this share either way: an agent's next
# call waits on its model's answer, so agents that claimed together do not beat in lockstep.
JITTER = 0.1
LEASE_HEARTBEATS = 20  # a lease lasts this many heartbeats (600 s at H = 30 s: the default)
HEARTBEAT_P99_MS = 50.0
INCIDENTS = (
    "SELECT (SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()), "
    "(SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter)"
)
AUTOVACUUMS = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
SETTLE_TIMEOUT_S = 60.0
SETTLE_POLL_S = 0.5
LOCK_HELD_LIMIT = 0.20  # issue 24: no global lock held more of the time at the largest fleet
WRITES = ("claim_task", "heartbeat", "checkpoint", "plan_update")
BUSY = "claim refused"  # claim_task answered claimed=false, reason busy: not a write
LOST_EVENTS = (
    "SELECT count(*) FROM task_events WHERE kind IN ('lease_expired', 'requeued') "
    "AND actor <> 'bench'"
)
MINT_BATCH = 500  # tokens per transaction
WARMUP_CONCURRENCY = 32  # agents saying `initialize` at once before the run
OVERRUN_S = 60.0  # how long a driver waits past the window for its agents' last calls
LATE_LIMIT_MS = 100.0  # a driver waking this late (p99) cannot keep its agents' schedule
DRIVER_BUSY_LIMIT = 0.9  # nor can one using this share of a core
MAX_CONNECTIONS = 1000  # PostgreSQL's: 1-4 servers x their pool, the probe, some margin
SPREADS = ("alternate", "random", "pinned")


def refusal_gist(said: str) -> str:
    """What a refusal was, in a few words: its status or Overloaded, and its message's start."""
    _, _, rest = said.partition(": ")
    found = re.search(r'"message":\s*"([^"]{0,48})', rest)
    head = rest.split(": ", 1)[0][:40]
    return f"{head}: {found.group(1)}" if found else rest[:64]


class FleetAgent:
    """One agent: its token, one keep-alive connection to each of its servers (scale.py's
    HttpAgent each), and which one its next call goes to: they take turns, or (`draw`) one
    is drawn per call. An agent pinned to one server has that one only."""

    def __init__(self, urls: list[str], secret: str, draw: random.Random | None) -> None:
        self.links = [HttpAgent(url, secret) for url in urls]
        self.draw = draw
        self.turn = 0

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        if self.draw is not None:
            link = self.draw.choice(self.links)
        else:
            link = self.links[self.turn % len(self.links)]
            self.turn += 1
        return await link.call(tool, arguments)

    async def initialize(self) -> None:
        """`initialize` on each connection; refused (a server busy with the fleet's first
        token checks), again when told."""
        for link in self.links:
            for attempt in range(REFUSED_TRIES * 3):
                try:
                    await link.initialize()
                    break
                except Refused as exc:
                    if attempt == REFUSED_TRIES * 3 - 1:
                        raise
                    await anyio.sleep(exc.retry_after * random.uniform(1, 2))

    async def aclose(self) -> None:
        for link in self.links:
            with contextlib.suppress(Exception):
                await link.aclose()


def agent_urls(urls: list[str], index: int, spread: str) -> list[str]:
    """The servers agent `index` calls, in the order its calls take them: all of them,
    starting at its own (so the fleet's first calls fall evenly), or its one when pinned."""
    start = index % len(urls)
    return [urls[start]] if spread == "pinned" else urls[start:] + urls[:start]


@dataclass
class Config:
    quick: bool
    sizes: list[int]
    servers: int
    drivers: int
    heartbeat: float
    checkpoint: float
    task: float
    ramp: float
    duration: float
    baseline: str | None  # a git revision run beside this checkout, size by size
    baseline_python: str | None  # ... on this Python (a venv with its dependencies)
    past_capacity: bool = False  # run every size, past the targets
    impatient: bool = False  # clients come back IMPATIENT_S after any refusal
    spread: str = "alternate"  # which server each call goes to (SPREADS)
    initialize: bool = True  # each connection says `initialize` before the clock starts
    clients: tuple[str, ...] = ("ours",)  # the client shapes run, size by size (CLIENTS)
    py_spy: str | None = None  # py-spy: profile the first server in each run's window
    baseline_first: bool = False  # the baseline's runs before this checkout's


def shaped(cfg: Config, client: str) -> Config:
    """`cfg` as `client` sends its calls: ours as the options say, or the harness's."""
    if client == "ours":
        return cfg
    return dataclasses.replace(cfg, spread="pinned", initialize=False)


# --------------------------------------------------------------------------- driver side


class Record:
    """One driver's samples: per tool, (start, seconds) of every answered call; the calls
    that failed, by tool and the start of their message; refusals by reason; how late the
    event loop woke for scheduled calls."""

    def __init__(self, impatient: bool = False) -> None:
        self.impatient = impatient
        self.samples: dict[str, list[tuple[float, float]]] = {t: [] for t in (*WRITES, BUSY)}
        self.errors: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()
        self.late: list[float] = []
        self.dropped = 0  # tasks given up after a held call was refused to its lease's end
        self.sent: list[float] = []  # when each request went out, refused ones too

    async def call(
        self,
        agent: FleetAgent,
        tool: str,
        arguments: dict[str, Any],
        until: float | None = None,
        periodic: bool = False,
    ) -> dict[str, Any] | None:
        """The call's answer; SKIPPED for a `periodic` call refused; None when it failed or
        stayed refused: REFUSED_TRIES times, or (`until`) to the moment its lease runs out."""
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            self.sent.append(started)
            try:
                result = await agent.call(tool, arguments)
            except Refused as exc:
                self.refusals[f"{tool}: {refusal_gist(str(exc))}"] += 1
                if self.impatient:  # again soon, whatever it was told, while it matters
                    wait = random.uniform(*IMPATIENT_S)
                    if until is not None and time.monotonic() + wait >= until:
                        return None
                    await anyio.sleep(wait)
                    continue
                if periodic:
                    return SKIPPED
                # Turned away with nothing done: as a client should, the same call again
                # no sooner than the server asked, backing off with jitter.
                wait = min(BACKOFF_MAX_S, exc.retry_after * 2 ** (attempt - 1))
                wait *= random.uniform(1, 2)
                if attempt >= REFUSED_TRIES if until is None else time.monotonic() + wait >= until:
                    return None
                await anyio.sleep(wait)
                continue
            except (BenchError, ValueError, KeyError) as exc:
                self.errors[f"{tool}: {str(exc)[:80] or type(exc).__name__}"] += 1
                return None
            refused = tool == "claim_task" and result.get("reason") == "busy"
            self.samples[BUSY if refused else tool].append((started, time.monotonic() - started))
            return result

    async def sleep_until(self, moment: float) -> None:
        delay = moment - time.monotonic()
        if delay > 0:
            await anyio.sleep(delay)
            self.late.append(time.monotonic() - moment)


Lease = dict[str, str]


async def live(
    agent: FleetAgent, record: Record, rng: random.Random, plan: dict[str, float], go: float
) -> None:
    """One agent's life from `go` to the end of the window: its first claim within
    START_SPREAD_S, then heartbeat every H, checkpoint every C, done after T; claim again.
    A claim refused as busy comes back after its `retry_after_s`, any other refusal after a
    pause; a held call refused until its lease runs out (Record.call) drops the task."""
    beat, step, hold = plan["heartbeat"], plan["checkpoint"], plan["task"]
    lease_s = LEASE_HEARTBEATS * beat
    end = go + plan["ramp"] + plan["duration"]
    pause = min(1.0, beat / 10)
    harness = bool(plan.get("harness"))
    await record.sleep_until(go + rng.uniform(0, HARNESS_START_S if harness else START_SPREAD_S))
    while time.monotonic() < end:
        granted = await record.call(agent, "claim_task", {}, end if record.impatient else None)
        if granted is None or not granted.get("claimed"):
            wait = pause
            if granted is not None:
                record.refusals[f"claim_task: {granted.get('reason', '?')}"] += 1
                wait = float(granted.get("retry_after_s") or pause)
                if record.impatient and granted.get("reason") == "busy":
                    wait = rng.uniform(*IMPATIENT_S)
            await record.sleep_until(min(end, time.monotonic() + wait))
            continue
        started = renewed = time.monotonic()
        lease: Lease = {"task_id": granted["task"]["id"], "lease_token": granted["lease_token"]}
        finish = started + hold * rng.uniform(1 - JITTER, 1 + JITTER)
        next_beat = started + beat * rng.uniform(1 - JITTER, 1 + JITTER)
        next_step = started + step * rng.uniform(1 - JITTER, 1 + JITTER)
        steps = 0
        while True:
            moment = min(finish, next_beat, next_step)
            if moment >= end:
                await record.sleep_until(end)
                return
            await record.sleep_until(moment)
            if moment == finish:
                done = {**lease, "status": "done"}
                if await record.call(agent, "plan_update", done, renewed + lease_s) is None:
                    record.dropped += 1
                break
            if moment == next_beat:
                # The harness says its lease's length on every heartbeat; ours once, in none.
                said = {**lease, "lease_seconds": round(lease_s)} if harness else lease
                answer = await record.call(agent, "heartbeat", said, periodic=True)
                later = beat * rng.uniform(1 - JITTER, 1 + JITTER)
                next_beat = max(next_beat + later, time.monotonic())  # missed beats are skipped
            else:
                steps += 1
                answer = await record.call(
                    agent,
                    "checkpoint",
                    {**lease, "summary": f"step {steps}", "progress": min(99, 10 * steps)},
                    periodic=True,
                )
                next_step = max(
                    next_step + step * rng.uniform(1 - JITTER, 1 + JITTER), time.monotonic()
                )
            if answer is None or (answer is SKIPPED and next_beat >= renewed + lease_s):
                record.dropped += 1
                break
            if answer is not SKIPPED:
                renewed = time.monotonic()


async def driver_main(config: dict[str, Any]) -> None:
    """One driver process: its share of the agents as asyncio tasks. Protocol with the
    parent (lib.Bench.run_workers): `ready` once every agent has said `initialize`,
    `go`, live until the window ends, then wait for `stop` and print one JSON line."""
    index = take_slot(Path(config["slots"]))
    mine = config["agents"][index :: config["drivers"]]
    plan: dict[str, float] = config["plan"]
    draw = config["spread"] == "random"
    agents = [
        FleetAgent(urls, secret, random.Random(index * 7_919 + i) if draw else None)
        for i, (urls, secret) in enumerate(mine)
    ]
    record = Record(bool(plan.get("impatient")))
    window: dict[str, float] = {}
    try:
        limit = anyio.Semaphore(WARMUP_CONCURRENCY)

        async def warm(i: int) -> None:  # the connections and the token's first use
            async with limit:
                await agents[i].initialize()  # made again while a busy host refuses it

        if config["initialize"]:
            async with anyio.create_task_group() as group:
                for i in range(len(agents)):
                    group.start_soon(warm, i)
        # The agents' objects (thousands of clients) will not be garbage: out of the
        # collector's sight, its full passes no longer stall this loop for 100-300 ms, which
        # the calls in flight would be measured as (the servers' latency).
        gc.collect()
        gc.freeze()
        await lib.wait_for_go()
        go = time.monotonic()

        async def meter() -> None:  # this driver's CPU inside the window
            await anyio.sleep(max(0.0, go + plan["ramp"] - time.monotonic()))
            window["cpu"] = -time.process_time()
            await anyio.sleep(max(0.0, go + plan["ramp"] + plan["duration"] - time.monotonic()))
            window["cpu"] += time.process_time()

        with anyio.move_on_after(plan["ramp"] + plan["duration"] + OVERRUN_S) as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(meter)
                for i, agent in enumerate(agents):
                    rng = random.Random(index * 1_000_003 + i)
                    group.start_soon(live, agent, record, rng, plan, go)
    finally:
        for agent in agents:
            await agent.aclose()
    await anyio.to_thread.run_sync(sys.stdin.readline)  # `stop`
    result = {
        "samples": record.samples,
        "errors": record.errors,
        "refusals": record.refusals,
        "dropped": record.dropped,
        "sent": record.sent,
        "late": summary(record.late) if record.late else None,
        "cpu": window.get("cpu"),
        "overrun": scope.cancelled_caught,
        "agents": len(agents),
    }
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------- setup


async def prepare(url: str, work: Path, agents: int, tasks: int) -> list[str]:
    """`tasks` independent tasks (bench_scale.prepare) and `agents` agent tokens, minted a
    batch per transaction; the secrets."""
    await bench_scale.prepare(url, work, 0, tasks)
    settings = Settings(state_root=work, database_url=url, otel_enabled=False)
    orchestrator = await Orchestrator.open(settings)
    try:
        secrets: list[str] = []
        for start in range(0, agents, MINT_BATCH):
            names = [f"fleet-{i:05d}" for i in range(start, min(agents, start + MINT_BATCH))]
            now = orchestrator.clock()

            def mint(tx: Tx, names: list[str] = names, now: Any = now) -> list[str]:
                return [
                    bearer_tokens.add(tx, "agent", n, "person:bench", now).secret for n in names
                ]

            secrets += await orchestrator.db.write(mint)
        return secrets
    finally:
        await orchestrator.close()


@dataclass(frozen=True)
class Code:
    """The wvo-mcp a run's servers (and its database's preparation) use."""

    label: str
    source: Path  # a tree with wvo_mcp/ and scripts/
    python: str = sys.executable  # ... and the Python, with that tree's dependencies


def code_at(revision: str, into: Path, python: str | None = None) -> Code:
    """A git revision's tree, unpacked from this repository (`git archive`)."""
    tree = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=tree, check=True)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", f"{revision}^{{commit}}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return Code(f"baseline {commit}", into, python or sys.executable)


# Prepares a database with the `prepare` of a code's own fleet benchmark, so its own wvo_mcp
# creates the schema it knows (argv: the code's tree, then the arguments as JSON). The tree
# goes first on sys.path, ahead of this checkout's installed wvo_mcp; trees from before the
# bench package hold the benchmark as scripts/bench_fleet.py.
PREPARE = """
import json, sys
from pathlib import Path
import anyio
tree = sys.argv[1]
if Path(tree, "scripts", "bench", "fleet.py").exists():
    sys.path[:0] = [tree]
    from scripts.bench import fleet
else:
    sys.path[:0] = [tree + "/scripts", tree]
    import bench_fleet as fleet
a = json.loads(sys.argv[2])
secrets = anyio.run(fleet.prepare, a["url"], Path(a["work"]), a["agents"], a["tasks"])
print(json.dumps(secrets))
"""


def prepare_with(code: Code, url: str, work: Path, agents: int, tasks: int) -> list[str]:
    arguments = json.dumps({"url": url, "work": str(work), "agents": agents, "tasks": tasks})
    done = subprocess.run(
        [code.python, "-P", "-c", PREPARE, str(code.source), arguments],
        cwd=code.source, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"preparing the database on {code.label} failed:\n{done.stderr[-2000:]}")
    secrets: list[str] = json.loads(done.stdout.splitlines()[-1])
    return secrets


def tasks_needed(agents: int, cfg: Config) -> int:
    """Enough tasks that no claim finds the queue empty: one each, and half as many again as
    the fleet can finish in the run."""
    finished = agents * (cfg.ramp + cfg.duration + OVERRUN_S) / cfg.task
    return agents + math.ceil(1.5 * finished) + 100


def scheduled_writes(agents: int, cfg: Config) -> float:
    """Writes per second the fleet's schedule asks for in the steady state: per task a claim,
    a done, and the heartbeats and checkpoints that fall before its end."""
    per_task = (
        2 + math.ceil(cfg.task / cfg.heartbeat) - 1 + math.ceil(cfg.task / cfg.checkpoint) - 1
    )
    return agents * per_task / cfg.task


# --------------------------------------------------------------------------- the bench


class Bench(lib.Bench):
    config: Config
    module = __spec__.name

    def __init__(self, config: Config, work: Path, cache: Path, report: Report) -> None:
        super().__init__(config, work, cache, report)
        self.cluster: Cluster | None = None
        self.codes = [Code("this checkout", ROOT)]
        if config.baseline is not None:
            baseline = code_at(config.baseline, self.fresh("baseline"), config.baseline_python)
            self.codes.append(baseline)
        # Each code with each client shape, their runs side by side, size by size.
        self.variants = [
            (code, client, code.label + ("" if client == "ours" else f", {client} client"))
            for code in self.codes
            for client in config.clients
        ]
        self.runs: dict[str, dict[int, dict[str, Any]]] = {v[2]: {} for v in self.variants}
        if config.baseline_first:  # the machine's first minutes can be its slowest
            self.variants.reverse()

    def fleet(self) -> None:
        """Each size on each code and client in turn (same run, minutes apart), until one
        misses the targets or its drivers cannot keep the schedule."""
        cfg = self.config
        going = list(self.variants)
        for agents in cfg.sizes:
            for variant in list(going):
                code, client, label = variant
                self.load(f"fleet_{agents}_{label}")
                run = self.fleet_run(agents, code, client)
                self.runs[label][agents] = run
                log(
                    f"  {label}, {agents} agents: claim p99 {run['claim_task']['p99']:.1f} "
                    f"ms, heartbeat p99 {run['heartbeat']['p99']:.1f} ms, "
                    f"{run['writes_per_s']:.0f} writes/s, world lock held "
                    f"{100 * run['lock_held']:.0f}%, claim lock "
                    f"{100 * run['claim_lock_held']:.0f}%, {run['server_cpu_ms_per_write']:.2f} "
                    f"ms CPU/write; driver busy {100 * run['driver_busy']:.0f}%, late p99 "
                    f"{run['driver_late_p99_ms']:.0f} ms"
                )
                if not run["passed"] and not cfg.past_capacity:
                    log(f"  {label}: {agents} agents miss the targets; no larger fleet")
                    going.remove(variant)
                elif run["driver_bound"]:
                    log(f"  {label}: the drivers could not keep {agents} agents' schedule")
                    going.remove(variant)
            if not going:
                break
        self.report.details["client"] = "impatient" if cfg.impatient else "documented"
        self.report.details["fleet"] = {
            label: {str(k): v for k, v in runs.items()} for label, runs in self.runs.items()
        }
        self.rows()

    def fleet_run(self, agents: int, code: Code, client: str) -> dict[str, Any]:
        cfg = shaped(self.config, client)
        assert self.cluster is not None
        name = f"fleet_{agents}_{self.codes.index(code)}_{CLIENTS.index(client)}"
        url = self.cluster.create_database(name)
        total = tasks_needed(agents, cfg)
        log(f"fleet {agents} on {code.label}, {client} client: {total:,} tasks, {agents} tokens")
        secrets = prepare_with(code, url, self.fresh(f"cli-{name}"), agents, total)
        drivers = min(cfg.drivers, agents)
        log(f"fleet {agents}: {cfg.servers} server(s), {drivers} driver(s)")
        lease = round(LEASE_HEARTBEATS * cfg.heartbeat)
        env = {
            "WVO_WIP_LIMIT": str(agents + 100),
            "WVO_WIP_PER_AGENT": "1",
            "WVO_LEASE_SECONDS": str(lease),
        }
        if code.source != ROOT:
            env["PYTHONPATH"] = str(code.source)  # the servers import that code's wvo_mcp
        with http_servers(cfg.servers, url, self.work, self.errlog, env, code.python) as servers:
            # A file, not the drivers' argv: 2,000 secrets pass the kernel's limit on one argument.
            agents_file = self.work / f"agents-{name}.json"
            urls = [server.url for server in servers]
            agents_file.write_text(
                json.dumps([(agent_urls(urls, i, cfg.spread), s) for i, s in enumerate(secrets)])
            )
            config = {
                "agents": str(agents_file),
                "drivers": drivers,
                "spread": cfg.spread,
                "initialize": cfg.initialize,
                "slots": str(self.fresh(f"slots-{agents}")),
                "plan": {
                    "heartbeat": cfg.heartbeat,
                    "checkpoint": cfg.checkpoint,
                    "task": cfg.task,
                    "ramp": cfg.ramp,
                    "duration": cfg.duration,
                    "impatient": cfg.impatient,
                    "harness": client == "harness",
                },
            }
            pids = [server.process.pid for server in servers]
            window: dict[str, Any] = {}
            profiled = self.work / f"py-spy-{name}.txt"
            with psycopg.connect(url, autocommit=True) as probe:

                def while_running() -> None:
                    window.update(self.watch(probe, pids, time.monotonic(), profiled))

                deadline = cfg.ramp + cfg.duration + 2 * OVERRUN_S
                results = self.run_workers(config, drivers, deadline, while_running)
                found = probe.execute(LOST_EVENTS).fetchone()
                window["lost_events"] = found[0] if found else 0
            alive = [s.process.poll() is None for s in servers]
            self.errlog.flush()
        if not all(alive):
            raise BenchError(f"a server exited during the {agents}-agent run; see servers.log")
        self.settle(name)
        run = self.figures(agents, drivers, window, results)
        if cfg.py_spy is not None:
            # Shares of the profiled server's samples, as the servers' CPU per write.
            per_write = run["server_cpu_ms_per_write"]
            run["layers_ms_per_write"] = bench_http.charge(profiled, per_write)
            log(f"  {name}: servers' CPU ms/write by layer (py-spy, one server):")
            for layer, ms in run["layers_ms_per_write"].items():
                log(f"    {ms:5.2f}  {layer}")
        return run

    def settle(self, name: str) -> None:
        """Drop a run's database and flush what it wrote, so that the next run's window does
        not pay for vacuuming and checkpointing this one's dead rows (runs alternate builds
        in one cluster, each after a heavier one)."""
        assert self.cluster is not None
        with psycopg.connect(self.cluster.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # our own run's name
            conn.execute("CHECKPOINT")
            deadline = time.monotonic() + SETTLE_TIMEOUT_S
            while time.monotonic() < deadline:
                found = conn.execute(AUTOVACUUMS).fetchone()
                if not found or not found[0]:
                    return
                time.sleep(SETTLE_POLL_S)
        log(f"  autovacuum still running {SETTLE_TIMEOUT_S:.0f} s after the run; going on")

    def watch(
        self, probe: psycopg.Connection[Any], pids: list[int], go: float, profiled: Path
    ) -> dict[str, Any]:
        """From the end of the ramp to the end of the window: CPU snapshots of the servers and
        PostgreSQL, and pg_locks sampled every SAMPLE_EVERY_S (is the write lock held; how
        many wait for it). This probe's own CPU is `monitor_cpu`. With --py-spy, the first
        server's stacks are sampled through the window into `profiled`."""
        assert self.cluster is not None
        start, end = go + self.config.ramp, go + self.config.ramp + self.config.duration
        time.sleep(max(0.0, start - time.monotonic()))  # the ramp: nothing is measured
        spy = self.config.py_spy
        with bench_http.profiling(spy, pids[0], profiled, self.errlog, 250, nonblocking=True):
            return self._watched(probe, pids, start, end)

    def _watched(
        self, probe: psycopg.Connection[Any], pids: list[int], start: float, end: float
    ) -> dict[str, Any]:
        assert self.cluster is not None
        probe.execute("SELECT pg_stat_statements_reset()")
        incidents = probe.execute(INCIDENTS).fetchone()
        window = Window(self.cluster, pids)
        while time.monotonic() < end:
            window.sample(*probe.execute(f"SELECT {bench_scale.LOCK_COUNTS}").fetchone())  # type: ignore[misc]
            time.sleep(SAMPLE_EVERY_S)
        return {
            "start": start,
            "end": end,
            **window.figures(),
            "statements": probe.execute(STATEMENTS).fetchall(),
            # deadlocks (each a 1 s wait, then a retry) and checkpoints inside the window
            "incidents": [
                b - a
                for a, b in zip(
                    incidents or (), probe.execute(INCIDENTS).fetchone() or (), strict=True
                )
            ],
        }

    def figures(
        self, agents: int, drivers: int, window: dict[str, Any], results: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The figures of one fleet size from the window and the drivers' records."""
        cfg = self.config
        start, end, seconds = window["start"], window["end"], window["seconds"]
        inside: dict[str, list[float]] = {tool: [] for tool in WRITES}
        for result in results:
            for tool in WRITES:
                pairs = result["samples"][tool]
                inside[tool] += [took for began, took in pairs if start <= began < end]
        if not inside["heartbeat"]:
            raise BenchError(f"no heartbeat answered inside the {agents}-agent window")
        busy = [took for r in results for began, took in r["samples"][BUSY] if start <= began < end]
        writes = sum(len(v) for v in inside.values())
        requests = sum(1 for r in results for began in r["sent"] if start <= began < end)
        server_cpu = window["server_cpu"] + window["postgres_cpu"]
        driver_cpu = sum(r["cpu"] or 0.0 for r in results)
        cores = os.cpu_count() or 1
        late = [r["late"]["p99"] for r in results if r["late"]]
        driver_busy = max((r["cpu"] or 0.0) / seconds for r in results)
        # No claim granted in the window is a figure too (its latencies: none, NaN).
        none = {"n": 0, **dict.fromkeys(("p50", "p90", "p99", "max", "mean"), math.nan)}
        stats = {tool: summary(v) if v else None for tool, v in inside.items()}
        stats["claim_task"] = stats["claim_task"] or none
        longest = {tool: 1000 * max(v, default=0.0) for tool, v in inside.items()}
        claim, beat = stats["claim_task"], stats["heartbeat"]
        assert claim is not None and beat is not None
        errors = sum((Counter(r["errors"]) for r in results), Counter())
        return {
            "agents": agents,
            "servers": cfg.servers,
            "drivers": drivers,
            "seconds": seconds,
            **stats,
            "longest_ms": longest,
            "claims_refused_busy": summary(busy) if busy else None,
            "claims_refused_busy_longest_ms": 1000 * max(busy, default=0.0),
            "lease_seconds": round(LEASE_HEARTBEATS * cfg.heartbeat),
            "leases_lost": window["lost_events"],
            "tasks_dropped": sum(r["dropped"] for r in results),
            # every request the servers answered, refusals included: what their CPU paid for
            "requests": requests,
            "server_cpu_ms_per_request": 1000 * window["server_cpu"] / max(1, requests),
            "writes": writes,
            "writes_per_s": writes / seconds,
            "scheduled_writes_per_s": scheduled_writes(agents, cfg),
            "lock_held": window["lock_held"],
            "claim_lock_held": window["claim_lock_held"],
            "lock_waiters_mean": window["lock_waiters_mean"],
            "lock_samples": window["samples"],
            "deadlocks": window["incidents"][0],
            "checkpoints": window["incidents"][1],
            "server_cpu_ms_per_write": 1000 * window["server_cpu"] / max(1, writes),
            "postgres_cpu_ms_per_write": 1000 * window["postgres_cpu"] / max(1, writes),
            "cpu_ms_per_write": 1000 * server_cpu / max(1, writes),
            "driver_cpu_ms_per_write": 1000 * driver_cpu / max(1, writes),
            "monitor_cpu_ms_per_write": 1000 * window["monitor_cpu"] / max(1, writes),
            "machine_busy": window["machine_cpu"] / seconds / cores,
            "driver_busy": driver_busy,
            "driver_late_p99_ms": max(late, default=0.0),
            "driver_bound": driver_busy > DRIVER_BUSY_LIMIT or max(late, default=0) > LATE_LIMIT_MS,
            "overrun": any(r["overrun"] for r in results),
            "errors": dict(errors),
            "refusals": dict(sum((Counter(r["refusals"]) for r in results), Counter())),
            # scale's figures per task, here per write (the statements of the window)
            "statements": bench_scale.statement_figures(window["statements"], max(1, writes)),
            "passed": claim["p99"] <= CLAIM_P99_MS and beat["p99"] <= HEARTBEAT_P99_MS,
        }

    def rows(self) -> None:
        largest = {label: self.code_rows(label, runs) for label, runs in self.runs.items()}
        self.report.details["largest_fleet"] = largest
        ours, *baseline = largest.values()
        if baseline and baseline[0]:
            self.report.info(
                "largest fleet, this checkout / baseline",
                ours / baseline[0],
                "x",
                note=f"{ours} vs {baseline[0]} agents, same run",
            )

    def code_rows(self, code: str, runs: dict[int, dict[str, Any]]) -> int:
        """The rows of one code's sizes; its largest fleet within the targets."""
        cfg = self.config
        shown = "" if len(self.runs) == 1 else f"{code}: "
        for agents, run in runs.items():
            claim, beat, step = run["claim_task"], run["heartbeat"], run["checkpoint"]
            label = f"{shown}{agents} agents, {cfg.servers} server(s)"
            self.report.absolute(
                f"{label}: claim p99",
                claim["p99"],
                "ms",
                claim["p99"] <= CLAIM_P99_MS,
                f"<= {CLAIM_P99_MS:.0f} ms",
                note=f"p50 {claim['p50']:.1f} ms over {claim['n']} claims",
            )
            self.report.absolute(
                "  heartbeat p99",
                beat["p99"],
                "ms",
                beat["p99"] <= HEARTBEAT_P99_MS,
                f"<= {HEARTBEAT_P99_MS:.0f} ms",
                note=f"p50 {beat['p50']:.1f} ms over {beat['n']} heartbeats",
            )
            if step is not None:
                self.report.info(
                    "  checkpoint p99",
                    step["p99"],
                    "ms",
                    note=f"p50 {step['p50']:.1f} ms over {step['n']} checkpoints",
                )
            capacity = max((r["writes_per_s"] for n, r in runs.items() if n < agents), default=None)
            busy = run.get("claims_refused_busy")
            longest = run.get("longest_ms", {})
            self.report.info(
                "  writes served",
                run["writes_per_s"],
                "/s",
                note=f"of {run['scheduled_writes_per_s']:.0f}/s intended "
                f"({100 * run['writes_per_s'] / run['scheduled_writes_per_s']:.0f} %)"
                + (
                    ""
                    if capacity is None
                    else f", {100 * run['writes_per_s'] / capacity:.0f} % of the most a "
                    f"smaller fleet was served ({capacity:.0f}/s)"
                )
                + f"; errors {sum(run['errors'].values())}, refusals "
                f"{sum(run['refusals'].values())} ({_top(run['refusals'])}); leases lost "
                f"{run.get('leases_lost', '?')}, tasks dropped {run.get('tasks_dropped', '?')}",
            )
            self.report.info(
                "  longest call",
                max(longest.values(), default=0.0),
                "ms",
                note=", ".join(f"{tool} {ms:.0f}" for tool, ms in longest.items())
                + (
                    ""
                    if busy is None
                    else f"; {busy['n']} claims refused as busy, p99 {busy['p99']:.1f} ms, "
                    f"longest {run['claims_refused_busy_longest_ms']:.0f} ms"
                ),
            )
            self.report.absolute(
                "  world lock held (exclusive)",
                100 * run["lock_held"],
                "% of time",
                run["lock_held"] <= LOCK_HELD_LIMIT,
                f"<= {100 * LOCK_HELD_LIMIT:.0f} %",
                note=f"claim lock held {100 * run['claim_lock_held']:.0f}% of the time; "
                f"{run['lock_waiters_mean']:.1f} waiting on average ({run['lock_samples']} "
                f"samples); {run['deadlocks']} deadlock(s), {run['checkpoints']} checkpoint(s)",
            )
            self.report.info(
                "  server CPU per write",
                run["cpu_ms_per_write"],
                "ms",
                note=f"servers {run['server_cpu_ms_per_write']:.2f} + PostgreSQL "
                f"{run['postgres_cpu_ms_per_write']:.2f} ms; servers "
                f"{run['server_cpu_ms_per_request']:.2f} ms per request ({run['requests']} "
                f"requests, refusals included); drivers "
                f"{run['driver_cpu_ms_per_write']:.2f} ms/write, busiest driver "
                f"{100 * run['driver_busy']:.0f}% of a core, woke late p99 "
                f"{run['driver_late_p99_ms']:.0f} ms; machine {100 * run['machine_busy']:.0f}% "
                f"busy" + ("; DRIVER-BOUND" if run["driver_bound"] else ""),
            )
        passing = [n for n, run in runs.items() if run["passed"]]
        largest = max(passing, default=0)
        last = max(runs)
        why = (
            "every size passed: larger fleets untried"
            if largest == last and last == max(cfg.sizes)
            else "the drivers could not drive more"
            if runs[last]["driver_bound"] and runs[last]["passed"]
            else f"{min(n for n in runs if n > largest)} agents missed"
            if largest < last
            else ""
        )
        self.report.info(
            f"{shown}largest fleet with claim p99 <= 100 ms and heartbeat p99 <= 50 ms",
            largest,
            "agents",
            note=f"sizes run: {', '.join(map(str, runs))}; {why}".rstrip("; "),
        )
        return largest


def _top(counts: dict[str, int], shown: int = 3) -> str:
    """The most frequent kinds of a count, as 'kind n, ...'."""
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:shown]
    return ", ".join(f"{kind} {n}" for kind, n in ranked) or "none"


# --------------------------------------------------------------------------- main


def make_config(args: argparse.Namespace) -> Config:
    if args.quick:
        beat, step, task = args.heartbeat or 4.0, args.checkpoint or 8.0, args.task or 12.0
        sizes, duration = args.sizes or [50, 100], args.duration or 12.0
    else:
        beat, step, task = args.heartbeat or 30.0, args.checkpoint or 60.0, args.task or 120.0
        sizes, duration = args.sizes or [500, 1000, 2000, 5000], args.duration or 60.0
    return Config(
        quick=args.quick,
        sizes=sorted(sizes),
        servers=args.servers,
        drivers=args.drivers,
        heartbeat=beat,
        checkpoint=step,
        task=task,
        ramp=task if args.ramp is None else args.ramp,  # one task: the steady state
        duration=duration,
        baseline=args.baseline,
        baseline_python=args.baseline_python,
        past_capacity=args.past_capacity,
        impatient=args.impatient,
        spread=args.spread,
        initialize=not args.no_initialize,
        clients=tuple(args.clients),
        py_spy=None if args.py_spy is None else str(args.py_spy),
        baseline_first=args.baseline_first,
    )


def main(argv: list[str] | None = None) -> int:
    parser = lib.arguments(__doc__)
    parser.add_argument(
        "--sizes",
        type=lib.comma_list(int),
        help="fleet sizes (default 500,1000,2000,5000; quick 50,100)",
    )
    parser.add_argument("--servers", type=int, default=2, help="HTTP servers, 1-4 (default 2)")
    parser.add_argument(
        "--drivers", type=int, default=2, help="processes running the agents (default 2)"
    )
    parser.add_argument("--heartbeat", type=float, help="H: seconds between heartbeats (30)")
    parser.add_argument("--checkpoint", type=float, help="C: seconds between checkpoints (60)")
    parser.add_argument("--task", type=float, help="T: seconds an agent works a task (120)")
    parser.add_argument("--duration", type=float, help="measured seconds per size (60)")
    parser.add_argument(
        "--ramp", type=float, help="seconds from the start to the window (default: T, a task)"
    )
    parser.add_argument(
        "--spread",
        choices=SPREADS,
        default="alternate",
        help="which server an agent's call goes to: its servers in turn (alternate, the "
        "default: issue 73's client), one drawn per call (random), or always its one "
        "(pinned: agents round-robin over the servers, this benchmark's client before)",
    )
    parser.add_argument(
        "--no-initialize",
        action="store_true",
        help="no `initialize` before the clock starts: the first calls open the connections",
    )
    parser.add_argument(
        "--clients",
        type=lib.comma_list(str),
        default=["ours"],
        help="client shapes, each run at every size: ours (as the options above say) and "
        f"harness (pinned, no initialize, the first claims within {HARNESS_START_S:.0f} s, "
        "lease_seconds on every heartbeat); default ours",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        help="py-spy's executable: sample the first server through each window, and split "
        "the servers' CPU per write by layer (http_calls.LAYERS)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run every size on the servers of git revision REV, in this run (e.g. "
        "1f0e781, before issue 24): a same-run comparison on a machine whose speed moves",
    )
    parser.add_argument(
        "--baseline-first",
        action="store_true",
        help="run the baseline's sizes before this checkout's (each order once: a machine "
        "whose first minutes run slower favours whichever goes second)",
    )
    parser.add_argument(
        "--baseline-python",
        metavar="PATH",
        help="the Python that runs REV's servers: a venv with REV's own dependencies (a "
        "revision before uvloop and httptools fails on this checkout's, say); default this one",
    )
    parser.add_argument(
        "--past-capacity",
        action="store_true",
        help="run every size, also past the first that misses the targets (how the fleet "
        "degrades past its capacity)",
    )
    parser.add_argument(
        "--impatient",
        action="store_true",
        help="clients that make every refused call again 0.2-0.5 s later, whatever they "
        "were told (busy claims, 503, 429, Overloaded)",
    )
    lib.common_options(parser)
    args = parser.parse_args(argv)
    if args.worker:
        config = json.loads(args.worker)
        config["agents"] = json.loads(Path(config["agents"]).read_text())
        anyio.run(driver_main, config)
        return 0
    if not 1 <= args.servers <= 4:
        parser.error("--servers must be 1-4")
    if not args.clients or set(args.clients) - set(CLIENTS):
        parser.error(f"--clients takes {', '.join(CLIENTS)}")
    config = make_config(args)
    if min(config.sizes) < 1 or min(config.heartbeat, config.checkpoint, config.task) <= 0:
        parser.error("sizes and periods must be positive")
    if config.ramp < 0:
        parser.error("--ramp must be 0 or more")

    work, cache = lib.workspace(args, "wvo-bench-fleet-")
    bench = Bench(config, work, cache, Report())

    def body() -> None:
        log("starting a throwaway PostgreSQL cluster (fsync on)")
        with Cluster.start(durable=True, max_connections=MAX_CONNECTIONS) as cluster:
            bench.cluster = cluster
            enable_statements(cluster)
            bench.fleet()

    return lib.run_bench(bench, "wvo-mcp fleet simulation", body, args)


if __name__ == "__main__":
    sys.exit(main())
