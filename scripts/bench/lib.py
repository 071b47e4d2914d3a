"""What the benchmarks of this package share.

- stdio clients: connect to a server process, call a tool, time a call, claim cycles;
- the floor: a tiny MCP server with one no-op tool, and the measures timed against it in
  alternating blocks;
- statistics and the report table;
- the generated task graphs, the database cache and private copies of cached databases;
- in-process timings of the Orchestrator (no MCP);
- worker processes (each benchmark re-runs its own module with `--worker CONFIG`);
- the command line, the temporary folder, the failure report and the JSON output.

Benchmarks run from the repository root as `python -m scripts.bench.NAME`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import inspect
import json
import math
import os
import platform
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TextIO, TypeVar

import anyio
import anyio.to_thread
from mcp import Client
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client

from wvo_mcp.config import Settings
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status
from wvo_mcp.store.sql import migrations

ROOT = Path(__file__).resolve().parents[2]  # the repository: workers run from here
GENERATOR_VERSION = 1  # bump when the generated task graphs change, to invalidate the cache
CHAIN_LENGTH = 100  # tasks per dependency chain: only chain heads are ready (1% of the total)
BUILD_BATCH = 10_000  # tasks per create_tasks call when building databases
BLOCK = 50  # calls per block when measures are taken in alternating blocks
SERVER_ARGS = ["-P", "-m", "wvo_mcp", "serve"]
CLIENT_NAME_IN_AGENT_ID = "mcp"  # the SDK's default clientInfo name

NOOP_SERVER = '''\
"""Floor for the benchmark: an MCP server whose only tool does nothing and answers one
field, through an output model and with no outputSchema, like every wvo-mcp tool."""
from mcp.server import MCPServer
from pydantic import BaseModel

server = MCPServer("noop")


class Done(BaseModel):
    ok: bool


@server.tool(structured_output=False)
async def noop() -> Done:
    return Done(ok=True)


if __name__ == "__main__":
    server.run()
'''

INITIALIZE = (
    json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"},
            },
        }
    )
    + "\n"
).encode()

T = TypeVar("T")
Measure = Callable[[], Awaitable[float]]  # one timed call (or cycle); returns seconds

_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """The benchmark could not take a measurement (as opposed to a target being missed)."""


# --------------------------------------------------------------------------- statistics


def summary(samples: Sequence[float]) -> dict[str, float]:
    """Milliseconds summary of samples given in seconds."""
    if not samples:
        raise BenchError("no samples")
    ms = sorted(s * 1000 for s in samples)

    def rank(q: float) -> float:
        return ms[min(len(ms) - 1, max(0, math.ceil(q * len(ms)) - 1))]

    return {
        "n": len(ms),
        "p50": statistics.median(ms),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "max": ms[-1],
        "mean": statistics.fmean(ms),
    }


@dataclass
class Row:
    metric: str
    value: float
    unit: str
    target: str = ""
    ratio: float | None = None
    passed: bool | None = None  # None: informational, no target
    note: str = ""

    @property
    def verdict(self) -> str:
        return "info" if self.passed is None else ("PASS" if self.passed else "FAIL")


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def info(
        self, metric: str, value: float, unit: str, note: str = "", ratio: float | None = None
    ) -> None:
        self.rows.append(Row(metric, value, unit, ratio=ratio, note=note))

    def relative(
        self,
        metric: str,
        value: float,
        unit: str,
        base: float,
        limit: float,
        target: str,
        note: str = "",
        *,
        most: bool = True,
    ) -> None:
        """A target of the form value <= limit x base, or >= when not `most` (ratio = value /
        base). Rows call it as at_most and at_least."""
        ratio = value / base
        passed = ratio <= limit if most else ratio >= limit
        self.rows.append(Row(metric, value, unit, target, ratio, passed, note))

    at_most = functools.partialmethod(relative)
    at_least = functools.partialmethod(relative, most=False)

    def absolute(
        self, metric: str, value: float, unit: str, passed: bool, target: str, note: str = ""
    ) -> None:
        self.rows.append(Row(metric, value, unit, target, None, passed, note))

    def table(self) -> str:
        header = ["metric", "value", "target", "ratio", "result"]
        cells = [header]
        for row in self.rows:
            cells.append(
                [
                    row.metric,
                    f"{_fmt(row.value)} {row.unit}".strip(),
                    row.target,
                    "" if row.ratio is None else f"{row.ratio:.2f}x",
                    row.verdict,
                ]
            )
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        lines = []
        for index, r in enumerate(cells):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
            if index == 0:
                lines.append("  ".join("-" * w for w in widths))
        notes = [f"  {row.metric}: {row.note}" for row in self.rows if row.note]
        if notes:
            lines += ["", "notes:", *notes]
        return "\n".join(lines)


def _fmt(value: float) -> str:
    if not math.isfinite(value):  # a p99 of no samples
        return str(value)
    if value == int(value) and abs(value) >= 100:
        return f"{int(value)}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"


# --------------------------------------------------------------------------- task graphs


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def chain_task(index: int, rng: random.Random) -> dict[str, Any]:
    """Task `index` of a graph made of chains of CHAIN_LENGTH: each waits on its predecessor."""
    chain, pos = divmod(index, CHAIN_LENGTH)
    task: dict[str, Any] = {
        "id": f"c{chain:06d}.{pos:03d}",
        "title": f"Chain {chain} step {pos}",
        "epic_id": f"epic-{chain % 50:02d}",
        "complexity": rng.randint(1, 10),
        "business_value": rng.randint(1, 20),
        "time_criticality": rng.randint(1, 20),
        "risk_reduction": rng.randint(1, 20),
    }
    if pos:
        task["depends_on"] = [f"c{chain:06d}.{pos - 1:03d}"]
    return task


def independent_task(index: int, rng: random.Random) -> dict[str, Any]:
    return {
        "id": f"t{index:07d}",
        "title": f"Independent task {index}",
        "epic_id": f"epic-{index % 20:02d}",
        "complexity": rng.randint(1, 10),
        "business_value": rng.randint(1, 20),
        "time_criticality": rng.randint(1, 20),
        "risk_reduction": rng.randint(1, 20),
    }


async def build_db(
    state_root: Path,
    total: int,
    make: Callable[[int, random.Random], dict[str, Any]],
    batch: int = BUILD_BATCH,
) -> None:
    """Create `total` tasks with wvo_mcp itself, in batches (chains never cross a batch)."""
    rng = random.Random(total)
    orchestrator = await Orchestrator.open(Settings(state_root=state_root))
    try:
        started = time.perf_counter()
        for start in range(0, total, batch):
            count = min(batch, total - start)
            specs = [TaskSpec.model_validate(make(i, rng)) for i in range(start, start + count)]
            await orchestrator.create_tasks(specs, actor="bench")
            done = start + count
            if total >= 100_000 and (done % (10 * batch) == 0 or done == total):
                rate = done / (time.perf_counter() - started)
                log(f"  built {done:,}/{total:,} tasks ({rate:,.0f} tasks/s)")
    finally:
        await orchestrator.close()


def wvo_import(state_root: Path, source: Path, expect: str, command: Sequence[str] = ()) -> float:
    """Seconds taken by `wvo-mcp import SOURCE` into `state_root` (a subprocess), which must
    succeed and print `expect`. `command` runs wvo-mcp (this tree's by default)."""
    started = time.perf_counter()
    done = subprocess.run(
        [
            *(command or [sys.executable, "-P", "-m", "wvo_mcp"]),
            "--state-root",
            str(state_root),
            "import",
            str(source),
        ],
        capture_output=True,
        text=True,
        env=get_default_environment(),
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0 or expect not in done.stdout:
        raise BenchError(f"wvo-mcp import failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


# --------------------------------------------------------------------------- database cache


def schema_fingerprint() -> str:
    digest = hashlib.sha256(f"generator {GENERATOR_VERSION}".encode())
    for version, name, script in migrations():
        digest.update(f"{version} {name}\n{script}".encode())
    return digest.hexdigest()[:10]


def cached(root: Path) -> bool:
    """Whether the cached state folder `root` holds a database."""
    return (root / "orchestrator.db").exists()


@contextlib.contextmanager
def building(root: Path) -> Iterator[Path]:
    """A fresh folder beside `root` to build a cached database in; it becomes `root` when the
    block ends without an error (so an interrupted build is never taken for a cached one)."""
    folder = root.with_name(f"{root.name}.building-{os.getpid()}")
    shutil.rmtree(folder, ignore_errors=True)
    yield folder
    folder.rename(root)


async def chain_db(cache: Path, total: int) -> Path:
    """State root of a cached chain-graph database of `total` tasks, built if missing."""
    root = cache / f"chains-{size_label(total)}-{schema_fingerprint()}"
    if cached(root):
        log(f"using cached {size_label(total)}-task database {root}")
        return root
    with building(root) as folder:
        log(f"building {size_label(total)}-task database ({CHAIN_LENGTH}-task chains) in {root}")
        started = time.perf_counter()
        await build_db(folder, total, chain_task)
        log(f"  built in {time.perf_counter() - started:.1f} s")
    return root


def copy_state(source: Path, target: Path) -> Path:
    """A private copy of a state folder (the database is closed, so one file)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / "orchestrator.db", target / "orchestrator.db")
    return target


# --------------------------------------------------------------------------- stdio clients


def cold(env: dict[str, str]) -> dict[str, str]:
    """`env` with warm start off unless it says otherwise: the benchmarks time servers on
    state folders of their own, and a warm process would outlive each (startup.py and
    peers.py measure warm start, the default, on purpose)."""
    return {"WVO_WARM_START": "0", **env}


@contextlib.asynccontextmanager
async def connect(
    args: list[str],
    env: dict[str, str],
    errlog: TextIO,
    command: str = sys.executable,
    cwd: Path | None = None,
) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=command, args=args, env=cold(env), cwd=cwd)
    transport = stdio_client(params, errlog=errlog)
    async with Client(transport, mode="legacy", read_timeout_seconds=60) as client:
        yield client


class RawClient:
    """Newline-delimited JSON-RPC over a server's stdio, with no result validation and no
    event loop: what is left of a call's time is the transport's and the server's."""

    def __init__(self, args: list[str], env: dict[str, str], errlog: TextIO) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errlog,
            env={**get_default_environment(), **cold(env)},
        )
        self.last_id = 0
        self.request("initialize", json.loads(INITIALIZE)["params"])
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdout is not None
        self.last_id += 1
        self._send({"jsonrpc": "2.0", "id": self.last_id, "method": method, "params": params})
        while True:  # notifications from the server are skipped
            line = self.process.stdout.readline()
            if not line:
                raise BenchError(f"server exited (code {self.process.wait()}) during {method}")
            message = json.loads(line)
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise BenchError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = self.request("tools/call", {"name": tool, "arguments": arguments})
        if result.get("isError"):
            raise BenchError(f"{tool} failed: {result['content'][0]['text']}")
        structured: dict[str, Any] = result.get("structuredContent") or {}
        return structured

    def timed(self, tool: str, arguments: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        result = self.call(tool, arguments)
        return time.perf_counter() - started, result

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def raw_client(args: list[str], env: dict[str, str], errlog: TextIO) -> Iterator[RawClient]:
    client = RawClient(args, env, errlog)
    try:
        yield client
    finally:
        client.close()


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        text = getattr(result.content[0], "text", "") if result.content else ""
        raise BenchError(f"{tool} failed: {text}")
    return result.structured_content or {}


async def timed(client: Client, tool: str, arguments: dict[str, Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await call(client, tool, arguments)
    return time.perf_counter() - started, result


def timer(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> Measure:
    """A measure: one timed call of `tool`."""
    arguments = arguments or {}

    async def measure() -> float:
        return (await timed(client, tool, arguments))[0]

    return measure


def raw_timer(client: RawClient, tool: str, arguments: dict[str, Any] | None = None) -> Measure:
    """A measure: one timed call of `tool` through a RawClient (blocking: nothing else runs
    in the event loop meanwhile, so nothing else is timed)."""
    arguments = arguments or {}

    async def measure() -> float:
        return client.timed(tool, arguments)[0]

    return measure


def raw_cycle(client: RawClient, status: str, timed: str) -> Measure:
    """claim_task then plan_update(status) with the lease token, through a RawClient; times
    the claim alone (`timed="claim"`) or both calls (`"both"`)."""

    async def cycle() -> float:
        took, granted = client.timed("claim_task", {})
        if not granted.get("claimed"):
            raise BenchError(f"claim_task refused: {granted.get('message')}")
        update, _ = client.timed("plan_update", lease_update(granted, status))
        return took + update if timed == "both" else took

    return cycle


def lease_update(granted: dict[str, Any], status: str) -> dict[str, Any]:
    """plan_update arguments moving the task of a granted claim to `status`, with its token."""
    return {
        "task_id": granted["task"]["id"],
        "status": status,
        "lease_token": granted["lease_token"],
    }


def claim_cycle(
    client: Client,
    arguments: dict[str, Any] | None = None,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> Measure:
    """claim_task (timed) then plan_update(pending) with the lease token. A refusal is an
    error; `check`, if given, sees every granted claim."""
    arguments = arguments or {}

    async def cycle() -> float:
        took, granted = await timed(client, "claim_task", arguments)
        if not granted.get("claimed"):
            raise BenchError(f"claim_task refused: {granted.get('message')}")
        if check is not None:
            check(granted)
        await call(client, "plan_update", lease_update(granted, "pending"))
        return took

    return cycle


def server_env(state_root: Path, **extra: str) -> dict[str, str]:
    return {"WVO_STATE_ROOT": str(state_root), **extra}


def server_pid(agent_id: str) -> int:
    """The server process id, from the default agent id `<client name>-<server pid>`."""
    prefix = f"{CLIENT_NAME_IN_AGENT_ID}-"
    if not agent_id.startswith(prefix) or not agent_id[len(prefix) :].isdigit():
        raise BenchError(f"cannot read a pid from agent id {agent_id!r} (is WVO_AGENT_ID set?)")
    return int(agent_id[len(prefix) :])


# --------------------------------------------------------------------------- in-process


async def in_process(
    root: Path, runs: int, warmup: int, step: Callable[[Orchestrator], Awaitable[float]]
) -> dict[str, float]:
    """Summary of `runs` timed steps (after `warmup` untimed ones) against an Orchestrator
    opened on `root` directly, with no MCP: the database work of a call."""
    orchestrator = await Orchestrator.open(Settings(state_root=root))
    try:
        samples = []
        for i in range(warmup + runs):
            took = await step(orchestrator)
            if i >= warmup:
                samples.append(took)
    finally:
        await orchestrator.close()
    return summary(samples)


def direct_claim(
    arguments: dict[str, Any] | None = None, must_claim: bool = False
) -> Callable[[Orchestrator], Awaitable[float]]:
    """A step for in_process: Orchestrator.claim (timed), then a release when granted."""
    arguments = arguments or {}

    async def step(orchestrator: Orchestrator) -> float:
        started = time.perf_counter()
        granted = await orchestrator.claim("bench-direct", **arguments)
        took = time.perf_counter() - started
        if granted.claimed or must_claim:
            assert granted.task is not None and granted.lease_token is not None
            await orchestrator.update_status(
                granted.task.id, Status.PENDING, "bench-direct", granted.lease_token
            )
        return took

    return step


def direct_plan(
    arguments: dict[str, Any] | None = None,
) -> Callable[[Orchestrator], Awaitable[float]]:
    """A step for in_process: Orchestrator.plan_next(limit=10), timed."""
    arguments = arguments or {}

    async def step(orchestrator: Orchestrator) -> float:
        started = time.perf_counter()
        await orchestrator.plan_next("bench-direct", 10, **arguments)
        return time.perf_counter() - started

    return step


# --------------------------------------------------------------------------- the bench


class Bench:
    """A run's configuration, work folder, database cache, report and server log, and what
    every section uses. Subclasses set `module` to their own name (for worker processes)."""

    module: ClassVar[str]

    def __init__(self, config: Any, work: Path, cache: Path, report: Report) -> None:
        self.config = config
        self.work = work
        self.cache = cache
        self.report = report
        self.errlog = (work / "servers.log").open("a")
        self.tables: list[str] = []  # Markdown tables printed above the report's

    def table(self, title: str, header: list[str], rows: list[list[str]], note: str) -> None:
        """A Markdown table for stdout (with `note` below it), and a copy in the log."""
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
                 "|" + "---|" * len(header)]  # fmt: skip
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        self.tables.append("\n".join([*lines, "", note]))
        log("\n".join(lines))

    def load(self, section: str) -> None:
        """Other work on the machine skews every figure: record the load with each section."""
        self.report.details.setdefault("loadavg", {})[section] = os.getloadavg()

    def fresh(self, name: str) -> Path:
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def noop_server(self) -> list[str]:
        """Arguments to run the floor server (written into the work folder)."""
        script = self.work / "noop_server.py"
        script.write_text(NOOP_SERVER)
        return [str(script)]

    def floor_server(self) -> contextlib.AbstractAsyncContextManager[Client]:
        return connect(self.noop_server(), {}, self.errlog)

    async def alternate(
        self, section: str, measures: dict[str, Measure], count: int
    ) -> dict[str, dict[str, float]]:
        """Samples of each measure, taken in rotating blocks of BLOCK calls.

        Other work on a shared machine comes and goes in bursts of seconds; rotating short
        blocks lets every measure see the same machine. The first call of each block (a
        process waking up) is dropped everywhere."""
        for _ in range(self.config.warmup):
            for measure in measures.values():
                await measure()
        samples: dict[str, list[float]] = {name: [] for name in measures}
        first = next(iter(measures))
        while len(samples[first]) < count:
            n = min(BLOCK, count - len(samples[first]))
            for name, measure in measures.items():
                for i in range(n + 1):
                    took = await measure()
                    if i:
                        samples[name].append(took)
        self.load(section)
        return {name: summary(values) for name, values in samples.items()}

    def run_workers(
        self,
        config: dict[str, Any],
        count: int,
        timeout: float,
        while_running: Callable[[], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Start `count` copies of this module with `--worker CONFIG`, wait until each prints
        `ready`, then send `go`. With `while_running`, run it and then send `stop`. Returns
        the JSON line each worker prints last."""
        workers = [
            subprocess.Popen(
                rerun(self.module, config),
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.errlog,
                text=True,
            )
            for _ in range(count)
        ]
        try:
            for worker in workers:
                assert worker.stdout is not None
                if worker.stdout.readline().strip() != "ready":
                    raise BenchError("a worker failed to start; see servers.log (--keep)")
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            if while_running is not None:
                while_running()
                for worker in workers:
                    assert worker.stdin is not None
                    worker.stdin.write("stop\n")
                    worker.stdin.flush()
            results = []
            for worker in workers:
                out, _ = worker.communicate(timeout=timeout)
                if worker.returncode != 0:
                    raise BenchError(f"a worker exited with {worker.returncode}; see servers.log")
                results.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
        return results

    def execute(self, body: Callable[[], None], keep: bool) -> bool:
        """Run `body`; on failure report it with the tail of the servers' log. Either way close
        the log and remove the work folder unless `keep`. Whether it succeeded."""
        try:
            body()
        except Exception as exc:
            log(f"benchmark failed: {exc!r}")
            traceback.print_exc(file=sys.stderr)
            self.errlog.flush()
            tail = (self.work / "servers.log").read_text()[-3000:]
            if tail:
                print(textwrap.indent(tail, "  server| "), file=sys.stderr)
            return False
        finally:
            self.errlog.close()
            if keep:
                log(f"kept {self.work}")
            else:
                shutil.rmtree(self.work, ignore_errors=True)
        return True

    def run_sections(self, order: Sequence[str], chosen: Sequence[str]) -> None:
        """The chosen sections (methods of this name), in `order`; async ones in an event loop
        of their own, the others outside any."""
        for section in order:
            if section not in chosen:
                continue
            method = getattr(self, section)
            if inspect.iscoroutinefunction(method):
                anyio.run(method)
            else:
                method()


def rerun(module: str, config: dict[str, Any]) -> list[str]:
    """The command that runs bench `module` again as a worker given `config` (from ROOT)."""
    return [sys.executable, "-m", module, "--worker", json.dumps(config)]


async def wait_for_go() -> None:
    """Worker side of Bench.run_workers: say `ready`, then wait for the parent's `go`."""
    print("ready", flush=True)
    if (await anyio.to_thread.run_sync(sys.stdin.readline)).strip() != "go":
        raise BenchError("worker expected `go`")


# --------------------------------------------------------------------------- command line


def arguments(doc: str) -> argparse.ArgumentParser:
    """The parser of a benchmark script, described by its docstring, with --quick; add the
    script's own options, then common_options."""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run (< 1 minute)")
    return parser


def comma_list(convert: Callable[[str], T]) -> Callable[[str], list[T]]:
    """An argparse type: comma-separated values, each through `convert`; blanks are skipped."""
    return lambda text: [convert(part.strip()) for part in text.split(",") if part.strip()]


def only_option(parser: argparse.ArgumentParser, sections: Sequence[str]) -> None:
    parser.add_argument(
        "--only",
        type=comma_list(str),
        help=f"run only these sections, comma-separated: {','.join(sections)}",
    )


def common_options(parser: argparse.ArgumentParser, cache_shared_with: str = "") -> None:
    """--json, --keep, --cache-dir, --no-cache and the hidden --worker."""
    shared = f", shared with {cache_shared_with}" if cache_shared_with else ""
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "wvo-bench-cache",
        help=f"where built databases are cached{shared} (default %(default)s)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="build databases in the temporary folder"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)


def chosen_sections(
    parser: argparse.ArgumentParser, args: argparse.Namespace, sections: Sequence[str]
) -> list[str]:
    """The sections --only names (all by default); unknown names end the run."""
    chosen = args.only or list(sections)
    unknown = set(chosen) - set(sections)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(sections)}")
    return chosen


def workspace(args: argparse.Namespace, prefix: str) -> tuple[Path, Path]:
    """A new temporary work folder, and the database cache (inside it with --no-cache)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    cache = work / "cache" if args.no_cache else args.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    return work, cache


SERVER_START_DEADLINE_S = 30.0


def wait_listening(process: subprocess.Popen[Any], port: int, label: str) -> None:
    """Poll until `process` accepts on 127.0.0.1:`port`; BenchError if it exits or never
    listens within SERVER_START_DEADLINE_S."""
    deadline = time.monotonic() + SERVER_START_DEADLINE_S
    while True:
        if process.poll() is not None:
            raise BenchError(f"{label} exited ({process.returncode}); see servers.log (--keep)")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError(f"{label} never listened") from None
            time.sleep(0.05)  # polling the port


def start_server(
    command: list[str], cwd: Path, env: dict[str, str], errlog: TextIO
) -> subprocess.Popen[bytes]:
    """A server process: no stdin, stdout dropped, stderr into `errlog`."""
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=errlog,
    )  # fmt: skip


def stop_servers(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to every server, then wait for each; one still running 15 s later is killed."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def http_server(
    command: list[str], port: int, label: str, cwd: Path, env: dict[str, str], errlog: TextIO
) -> Iterator[subprocess.Popen[bytes]]:
    """A server started from `command`, yielded once it accepts on `port` (see
    wait_listening), stopped when the block ends."""
    process = start_server(command, cwd, env, errlog)
    try:
        wait_listening(process, port, label)
        yield process
    finally:
        stop_servers([process])


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (every process, ours or not)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def proc_file(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_bytes().decode(errors="replace")


def children(pid: int) -> list[int]:
    """The processes `pid` started that are still running (from /proc, every thread)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += map(int, (task / "children").read_text().split())
    return found


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    fields = proc_file(pid, "stat").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    import mcp

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "mcp": getattr(mcp, "__version__", None),
        "sqlite": sqlite3.sqlite_version,
    }
    with contextlib.suppress(OSError, ValueError, IndexError):
        meminfo = Path("/proc/meminfo").read_text().split("\n")[0]
        info["memory_gib"] = round(int(meminfo.split()[1]) / 1024 / 1024, 1)
    with contextlib.suppress(ImportError):
        from importlib.metadata import version

        info["mcp"] = version("mcp")
        info["jsonschema"] = version("jsonschema")
        info["pyyaml"] = version("PyYAML")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "wvo_mcp"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        info["wvo_mcp_commit"] = head + (" (wvo_mcp modified)" if dirty else "")
    return info


def write_json(
    path: Path, config: Any, report: Report, fields: Callable[[], dict[str, Any]]
) -> None:
    """The results as JSON: machine, config, the script's own `fields` (read after the machine
    info), the rows and the details."""
    head = {"machine": machine(), "config": asdict(config)}
    payload = {
        **head,
        **fields(),
        "results": [{**asdict(row), "result": row.verdict} for row in report.rows],
        "details": report.details,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    log(f"wrote {path}")


def run_bench(
    bench: Bench,
    title: str,
    body: Callable[[], None],
    args: argparse.Namespace,
    chosen: Sequence[str] | None = None,
    extra: Callable[[], dict[str, Any]] = dict,
    heading: str | bool = False,
) -> int:
    """Run `body` on `bench` (see Bench.execute; `args` gives --keep and --json), then print
    the bench's tables under a heading (`## TITLE (quick)`, or the one given) when `heading`,
    and the report. `title` names the run in the log; the JSON holds the `chosen` sections,
    the run's seconds and the `extra` fields. The exit code."""
    mode = "quick" if bench.config.quick else "full"
    log(f"{title} ({mode}); work folder {bench.work}")
    started = time.monotonic()
    if not bench.execute(body, args.keep):
        return 1
    seconds = time.monotonic() - started
    log(f"done in {seconds:.0f} s")
    if heading:
        print(f"## {title} ({mode})\n" if heading is True else heading)
        print("\n\n".join(bench.tables))
        print()
    print(bench.report.table())
    if args.json:
        sections = {} if chosen is None else {"sections": list(chosen)}
        fields = {**sections, "seconds": seconds, **extra()}
        write_json(args.json, bench.config, bench.report, lambda: fields)
    return 0


def sections_main(
    argv: list[str] | None,
    doc: str,
    sections: Sequence[str],
    name: str,
    make_config: Callable[[bool], Any],
    make_bench: Callable[[Any, Path, Path, Report], Bench],
    worker_main: Callable[[dict[str, Any]], Awaitable[None]],
    json_fields: dict[str, Any] | None = None,
) -> int:
    """main() of a benchmark made of sections (--only picks them): parse the command line, run
    as a worker or run the sections, print the table, write the JSON. `name` names the run
    (`wvo-mcp NAME benchmark`) and its work folder; `json_fields` go into the JSON after the
    sections and the run's seconds."""
    parser = arguments(doc)
    only_option(parser, sections)
    common_options(parser, cache_shared_with="scripts.bench.core")
    args = parser.parse_args(argv)

    if args.worker:
        anyio.run(worker_main, json.loads(args.worker))
        return 0

    chosen = chosen_sections(parser, args, sections)
    config = make_config(args.quick)
    work, cache = workspace(args, f"wvo-bench-{name}-")
    bench = make_bench(config, work, cache, Report())
    return run_bench(
        bench,
        f"wvo-mcp {name} benchmark",
        lambda: bench.run_sections(sections, chosen),
        args,
        chosen,
        lambda: json_fields or {},
    )
