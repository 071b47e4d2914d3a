#!/usr/bin/env python
"""What one HTTP request costs: `ping` and a tools/call over `serve --http`, beside a no-op
tool and the same calls over stdio, timed in one rotation on one machine (issue 24's target:
an HTTP `ping` at most 1.5x a no-op tool over stdio).

    python -m scripts.bench.http_calls --quick                         # smoke run, ~30 s
    python -m scripts.bench.http_calls --json out.json                 # full run, ~2 min
    python -m scripts.bench.http_calls --baseline-tree /tmp/base       # also an older checkout
    python -m scripts.bench.http_calls --py-spy $(command -v py-spy)   # where the time goes

Measures, each one blocking call at a time (nothing else in the client's event loop):
- `stdio no-op`: the floor server's no-op tool (lib.NOOP_SERVER) through a RawClient;
- `stdio ping`, `stdio task_get`: `wvo-mcp serve` on a SQLite state folder with one task;
- `HTTP ping`, `HTTP task_get`: `wvo-mcp serve --http` on the same folder, raw JSON-RPC POSTs
  with an agent token over one keep-alive httpx2 connection (the token is checked on every
  request and looked up at most once a second); the rate limit is off (one token calling
  as fast as it can is what it exists to stop);
- `HTTP heartbeat`: the token's agent renewing its lease on a task it claimed, the loop's
  commonest call (answered in the loop's lane, edge/hot_calls.py, since issue 85);
- with `--baseline-tree DIR` (a checkout, e.g. `git archive COMMIT | tar -x -C DIR`), the
  same two HTTP measures against that tree's `serve --http`, on the same folder.
They are taken in rotating blocks (lib.Bench.alternate). Then each server's CPU per call:
`--cpu-calls` calls of each measure, the server's /proc/<pid>/stat before and after. With
`--py-spy`, py-spy samples each HTTP server (1000 Hz, idle stacks dropped) during its CPU
pass, and each sample is charged to the layer of its innermost frame that belongs to one
(LAYERS), giving milliseconds per call by layer.

The table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2

from scripts.bench import lib
from scripts.bench.lib import ROOT, BenchError, Report, log, proc_cpu_seconds

HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-11-25",
}
TASK = "BENCH-1"
HELD = "BENCH-2"  # claimed by the token's agent: its heartbeats are the loop's commonest call
# Profile layers, tried from a sample's innermost frame outwards: the first frame whose file
# matches a pattern names the layer (pydantic, anyio and the like match none, so their time
# goes to whoever called them). py-spy names a frame `function (path:line)`, the path from
# site-packages or the checkout. Under uvloop a resumed coroutine's stack starts at the
# coroutine (the loop is C), and the loop's own work is `Runner.run`'s.
LAYERS = [
    ("socket writes (send syscalls)", r"_SelectorSocketTransport\.write|OneSendPerTurn\.flush"),
    ("socket reads, HTTP parsing (uvicorn, httptools, h11)",
     r"/h11/|uvicorn/protocols|httptools|_read_ready"),
    ("logging", r"[(/]logging/"),
    ("the store: SQL, transactions", r"wvo_mcp/store/"),
    ("the database driver: psycopg, its pool, greenlet",
     r"[(/](psycopg|greenlet)|aiosqlite|sqlite3"),
    ("the tool: orchestrator, services, rules",
     r"wvo_mcp/(orchestrator|services|rules|health)/"),
    ("tool call wrapper: telemetry, models",
     r"wvo_mcp/edge/(calls|tool_calls|tools)\.py|wvo_mcp/(telemetry|models)"),
    ("OpenTelemetry span (SDK)", r"opentelemetry|mcp/server/_otel|mcp/shared/_otel"),
    ("SDK per-request transport: session, streams, task group, SSE",
     r"mcp/server/streamable_http|jsonrpc_dispatcher|sse_starlette|_context_streams"
     r"|anyio/streams"),
    ("SDK dispatch: runner, handlers, validation",
     r"mcp/server/(runner|lowlevel|mcpserver|request_state|context)|mcp_types|mcp/shared"),
    ("wvo-mcp HTTP edge: host check, admission, body checks",
     r"wvo_mcp/edge/(http_server|http_limits|http_claims|held_back|access|protocol|host_guard)"),
    ("Starlette, auth middleware, routing", r"starlette/|mcp/server/auth|uvicorn/middleware"),
    ("event loop", r"asyncio/|anyio/|selectors\.py|uvloop"),
]  # fmt: skip
IDLE = re.compile(r"select \(selectors|wait \(threading|Condition\.wait|Event\.wait|Queue\.get")


@dataclass
class Config:
    quick: bool
    calls: int
    warmup: int
    cpu_calls: int


@dataclass
class Server:
    label: str
    process: subprocess.Popen[bytes]
    url: str


def http_server(
    label: str, state: Path, errlog: Any, tree: Path | None = None
) -> contextlib.AbstractContextManager[Server]:
    """`serve --http` on a free port over `state` (from `tree` when given), listening."""

    @contextlib.contextmanager
    def run() -> Iterator[Server]:
        port = lib.free_port()
        env = {
            **lib.server_env(state),
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/"),
            "WVO_HTTP_RATE_PER_TOKEN": "0",
        }
        if tree is not None:  # ahead of the editable install of this checkout
            env["PYTHONPATH"] = str(tree)
        command = [sys.executable, "-P", "-m", "wvo_mcp", "serve", "--http", "--port", str(port)]
        # Outside both trees: a server refuses to import code from its workspace (its cwd).
        with lib.http_server(command, port, label, state.parent, env, errlog) as process:
            yield Server(label, process, f"http://127.0.0.1:{port}/mcp")

    return run()


def post(client: httpx2.Client, url: str, method: str, params: dict[str, Any]) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = client.post(url, content=json.dumps(body))
    text = response.text
    if text.startswith("event:") or "\ndata:" in text:  # an SSE answer (older servers)
        text = next(line[5:] for line in text.splitlines() if line.startswith("data:"))
    answer = json.loads(text)
    if response.status_code != 200 or "result" not in answer:
        raise BenchError(f"{method}: HTTP {response.status_code}: {response.text[:300]}")
    if answer["result"].get("isError"):
        raise BenchError(f"{method} failed: {answer['result']['content'][0]['text']}")
    return answer["result"]


def http_measure(client: httpx2.Client, url: str, method: str, params: dict[str, Any]) -> Any:
    async def measure() -> float:
        started = time.perf_counter()
        post(client, url, method, params)
        return time.perf_counter() - started

    return measure


class Bench(lib.Bench):
    config: Config
    module = __spec__.name

    def __init__(self, config: Config, work: Path, cache: Path, report: Report, args: Any):
        super().__init__(config, work, cache, report)
        self.tree: Path | None = args.baseline_tree
        self.py_spy: Path | None = args.py_spy

    def run(self) -> None:
        state = self.fresh("state")
        secret = self.prepare(state)
        with contextlib.ExitStack() as stack:
            floor = stack.enter_context(lib.raw_client(self.noop_server(), {}, self.errlog))
            stdio = stack.enter_context(
                lib.raw_client(lib.SERVER_ARGS, lib.server_env(state), self.errlog)
            )
            servers = [stack.enter_context(http_server("HTTP", state, self.errlog))]
            if self.tree is not None:
                servers.append(
                    stack.enter_context(http_server("HTTP baseline", state, self.errlog, self.tree))
                )
            client = stack.enter_context(
                httpx2.Client(headers={**HEADERS, "Authorization": f"Bearer {secret}"})
            )
            get = {"name": "task_get", "arguments": {"task_id": TASK}}
            claimed = post(client, servers[0].url, "tools/call",
                           {"name": "claim_task", "arguments": {"task_id": HELD}})  # fmt: skip
            lease = {"task_id": HELD, "lease_token": claimed["structuredContent"]["lease_token"]}
            beat = {"name": "heartbeat", "arguments": lease}
            measures: dict[str, lib.Measure] = {
                "stdio no-op": lib.raw_timer(floor, "noop"),
                "stdio ping": raw_ping(stdio),
                "stdio task_get": lib.raw_timer(stdio, "task_get", {"task_id": TASK}),
            }
            for server in servers:
                measures[f"{server.label} ping"] = http_measure(client, server.url, "ping", {})
                measures[f"{server.label} task_get"] = http_measure(
                    client, server.url, "tools/call", get
                )
                measures[f"{server.label} heartbeat"] = http_measure(
                    client, server.url, "tools/call", beat
                )
            log(f"{self.config.calls} calls of each of {len(measures)} measures, in rotation")
            stats = anyio.run(self.alternate, "rotation", measures, self.config.calls)
            pids = {"stdio no-op": floor.process.pid, "stdio ping": stdio.process.pid,
                    "stdio task_get": stdio.process.pid}  # fmt: skip
            pids |= {
                f"{s.label} {what}": s.process.pid
                for s in servers
                for what in ("ping", "task_get", "heartbeat")
            }
            cpu, layers = self.cpu(measures, pids)
        self.report.details.update({"latency": stats, "cpu_ms": cpu, "layers_ms": layers})
        self.rows(stats, cpu, layers)

    def prepare(self, state: Path) -> str:
        """One task in a fresh state folder, and an agent token's secret."""
        made = subprocess.run(
            [sys.executable, "-m", "wvo_mcp", "--state-root", str(state), "tokens", "add",
             "--role", "agent", "--name", "bench-1"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        with lib.raw_client(lib.SERVER_ARGS, lib.server_env(state), self.errlog) as stdio:
            stdio.call(
                "task_create",
                {
                    "tasks": [
                        {"id": TASK, "title": "a task to read"},
                        {"id": HELD, "title": "a task to hold"},
                    ]
                },
            )
        return made.stdout.strip()

    def cpu(
        self, measures: dict[str, lib.Measure], pids: dict[str, int]
    ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        """Each measure's server CPU per call (ms), and for HTTP ones with --py-spy, by layer."""
        calls = self.config.cpu_calls
        cpu: dict[str, float] = {}
        layers: dict[str, dict[str, float]] = {}
        for name, measure in measures.items():
            before = proc_cpu_seconds(pids[name])
            anyio.run(repeat, measure, calls)
            cpu[name] = 1000 * (proc_cpu_seconds(pids[name]) - before) / calls
            log(f"  {name}: {cpu[name]:.3f} ms of server CPU per call")
        # A profiled pass of its own: sampling costs the server CPU, so only shares are used.
        for name, measure in measures.items():
            if self.py_spy is None or not name.startswith("HTTP"):
                continue
            out = self.work / f"{name}.txt"
            with profiling(self.py_spy, pids[name], out, self.errlog):
                anyio.run(repeat, measure, calls)
            layers[name] = charge(out, cpu[name])
        return cpu, layers

    def rows(
        self,
        stats: dict[str, dict[str, float]],
        cpu: dict[str, float],
        layers: dict[str, dict[str, float]],
    ) -> None:
        floor = stats["stdio no-op"]["p50"]
        for name, s in stats.items():
            self.report.info(
                f"{name} p50", s["p50"], "ms",
                note=f"p99 {s['p99']:.2f} ms; server CPU {cpu[name]:.3f} ms a call",
            )  # fmt: skip
        self.report.at_most(
            "HTTP ping vs stdio no-op (p50, same run)", stats["HTTP ping"]["p50"], "ms",
            floor, 1.5, "<= 1.5x",
        )  # fmt: skip
        if "HTTP baseline ping" in stats:
            for what in ("ping", "task_get", "heartbeat"):
                self.report.info(
                    f"server CPU per {what}: HTTP vs HTTP baseline", cpu[f"HTTP {what}"], "ms",
                    note=f"baseline {cpu[f'HTTP baseline {what}']:.3f} ms",
                    ratio=cpu[f"HTTP {what}"] / cpu[f"HTTP baseline {what}"],
                )  # fmt: skip
        for name, by_layer in layers.items():
            shown = ", ".join(f"{layer} {value:.3f}" for layer, value in by_layer.items())
            log(f"  {name}, ms a call by layer: {shown}")


async def repeat(measure: lib.Measure, count: int) -> None:
    for _ in range(count):
        await measure()


def raw_ping(client: lib.RawClient) -> lib.Measure:
    async def measure() -> float:
        started = time.perf_counter()
        client.request("ping", {})
        return time.perf_counter() - started

    return measure


@contextlib.contextmanager
def profiling(
    py_spy: Path | str | None,
    pid: int,
    out: Path,
    errlog: Any,
    rate: int = 1000,
    nonblocking: bool = False,
) -> Iterator[None]:
    """py-spy sampling `pid` into `out` (raw stacks, which `charge` reads) while the block
    runs; nothing when `py_spy` is None. `nonblocking`: the process is not paused for each
    sample (a fleet's server, whose latency is measured meanwhile)."""
    if py_spy is None:
        yield
        return
    command = [str(py_spy), "record", "--pid", str(pid), "--rate", str(rate),
               "--format", "raw", "--output", str(out)]  # fmt: skip
    # Not waited for: it attaches within a fraction of the block, and only shares are used.
    spy = subprocess.Popen(
        [*command, "--nonblocking"] if nonblocking else command,
        stdout=subprocess.DEVNULL,
        stderr=errlog,
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its samples and exits
        spy.wait(timeout=60)


def charge(stacks: Path, cpu_ms: float) -> dict[str, float]:
    """py-spy's raw stacks charged to LAYERS, as milliseconds of `cpu_ms` a call."""
    counts: Counter[str] = Counter()
    patterns = [(layer, re.compile(pattern)) for layer, pattern in LAYERS]
    for line in stacks.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        if not n.isdigit() or not frames or IDLE.search(frames[-1]):
            continue  # not a sample (a truncated last line), or an idle one
        layer = next(
            (name for frame in reversed(frames) for name, p in patterns if p.search(frame)),
            "other",
        )
        counts[layer] += int(n)
    total = sum(counts.values()) or 1
    return {layer: cpu_ms * n / total for layer, n in counts.most_common()}


def main(argv: list[str] | None = None) -> int:
    parser = lib.arguments(__doc__)
    parser.add_argument("--baseline-tree", type=Path, help="a checkout to measure beside this one")
    parser.add_argument("--py-spy", type=Path, help="py-spy's executable: profile the HTTP servers")
    parser.add_argument("--calls", type=int, help="timed calls per measure (default 2000)")
    lib.common_options(parser)
    args = parser.parse_args(argv)
    calls = args.calls or (200 if args.quick else 2000)
    config = Config(args.quick, calls, 20 if args.quick else 200, 500 if args.quick else 3000)
    work, cache = lib.workspace(args, "wvo-bench-http-")
    bench = Bench(config, work, cache, Report(), args)
    return lib.run_bench(
        bench, "wvo-mcp HTTP request benchmark", bench.run, args,
        extra=lambda: {"baseline": str(args.baseline_tree)},
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
