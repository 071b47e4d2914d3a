#!/usr/bin/env python
"""A call's server work counted, not timed: instructions (callgrind) and Python calls (cProfile).

On a shared machine a call's time moves with everyone else's load, and the differences one
change makes (a few microseconds of a call's 0.5-1 ms) drown in it. What the server executes
for a call does not: this script serves a chain graph over raw JSON-RPC on stdio, and counts
per step of a kind, after a warm-up, the instructions the server process runs (valgrind's
callgrind, instrumentation on only around the counted steps: user-space work, SQLite's
included, the kernel's not) and the Python function calls it makes (cProfile, enabled by a
signal around the same steps). Each build given runs the same steps on its own copy of the
graph, one after the other; the counts do not depend on the order or the load.

    python -m scripts.bench.call_work                         # this tree: ping, claim, loop
    python -m scripts.bench.call_work --build f0fddf9=../base/.venv --build now=.venv
    python -m scripts.bench.call_work --kinds loop --steps 200 --no-instructions

A step is `ping` (the protocol's), `claim` (`claim_task` then `plan_update(pending)` with its
lease: two tool calls), or `loop` (`plan_update(done, claim_next=true)`: one call a task).
Instructions need valgrind (`apt-get install valgrind`); the server runs under it about
fifty times slower, so keep --steps small (100 takes a minute or two a kind).
"""

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from scripts.bench import lib
from scripts.bench.lib import INITIALIZE, BenchError, chain_task, lease_update, log

KINDS = ("ping", "claim", "loop")
WARMUP = 40
# The server, started as `wvo-mcp serve` is by a program (argv given: no warm start, no
# forked child), with cProfile switched by SIGUSR1 (on) and SIGUSR2 (off, and written).
SERVE = """
import cProfile, signal, sys
from wvo_mcp.cli import main
profile = cProfile.Profile()
def on(*_): profile.enable()
def off(*_): profile.disable(); profile.dump_stats(sys.argv[1])
signal.signal(signal.SIGUSR1, on)
signal.signal(signal.SIGUSR2, off)
main(["serve"])
"""


@dataclass
class Build:
    label: str
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


class Server(lib.RawClient):
    """One server over raw newline-delimited JSON-RPC, driven one request at a time, from
    its own argv and environment (another build's venv)."""

    def __init__(self, argv: list[str], env: dict[str, str], errlog: IO[str]) -> None:
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog, env=env
        )
        self.last_id = 0
        self.held: dict[str, Any] | None = None
        self.refused = 0  # claims refused as busy, made again
        self.request("initialize", json.loads(INITIALIZE)["params"])
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def step(self, kind: str) -> None:
        if kind == "ping":
            self.request("ping", {})
        elif kind == "claim":
            self.call("plan_update", lease_update(self.claim(), "pending"))
        else:
            held = self.held or self.claim()
            answer = self.call("plan_update", {**lease_update(held, "done"), "claim_next": True})
            following = answer.get("next") or {}
            self.held = following if following.get("claimed") else None

    def claim(self) -> dict[str, Any]:
        """A granted claim. Under valgrind a call takes fifty times as long, and the claim
        gate may find the server at capacity: a claim refused as busy is made again when
        told (its refusals are counted with the step)."""
        for _ in range(50):
            granted = self.call("claim_task", {})
            if granted.get("claimed"):
                return granted
            if granted.get("reason") != "busy":
                break
            self.refused += 1
            time.sleep(float(granted.get("retry_after_s") or 0.1))
        raise BenchError(f"claim_task refused: {granted.get('message')}")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=300)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def state(build: Build, graph: Path, work: Path) -> Iterator[dict[str, str]]:
    """A fresh state folder holding `graph`, imported by the build's own wvo-mcp; the
    server's environment for it."""
    folder = Path(tempfile.mkdtemp(prefix=f"{build.label}-", dir=work))
    done = subprocess.run(
        [str(build.venv / "bin" / "wvo-mcp"), "--state-root", str(folder / "state"), "import",
         str(graph)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"{build.label}: import failed: {done.stderr[-2000:]}")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        WVO_STATE_ROOT=str(folder / "state"), WVO_WORKSPACE_ROOT=str(folder), WVO_WARM_START="0"
    )
    try:
        yield env
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def python_calls(build: Build, kind: str, steps: int, graph: Path, work: Path) -> float:
    """Python function calls the server makes per step."""
    import pstats

    out = work / f"{build.label}-{kind}.prof"
    with state(build, graph, work) as env, open(work / "server.log", "a") as errlog:
        server = Server([str(build.python), "-P", "-c", SERVE, str(out)], env, errlog)
        try:
            for _ in range(WARMUP):
                server.step(kind)
            server.process.send_signal(signal.SIGUSR1)
            server.request("ping", {})  # the signal is handled before this is answered
            for _ in range(steps):
                server.step(kind)
            server.process.send_signal(signal.SIGUSR2)
            server.request("ping", {})
        finally:
            server.close()
    # The ping after the switch on is counted too: about 5 calls a step at 100 steps.
    counted: int = pstats.Stats(str(out)).total_calls  # type: ignore[attr-defined]
    return counted / steps


def instructions(build: Build, kind: str, steps: int, graph: Path, work: Path) -> float:
    """Instructions the server's main thread executes per step (callgrind): its other
    threads (the health monitor's ticks, the handle's watch) work by the clock, and the
    clock runs fifty times slower under valgrind."""
    out = work / f"{build.label}-{kind}.callgrind"
    code = 'from wvo_mcp.cli import main; main(["serve"])'
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
            f"--callgrind-out-file={out}", str(build.python), "-P", "-c", code]  # fmt: skip
    with state(build, graph, work) as env, open(work / "server.log", "a") as errlog:
        server = Server(argv, env, errlog)
        try:
            for _ in range(WARMUP):
                server.step(kind)
            switch = ["callgrind_control", "--instr=on", str(server.process.pid)]
            subprocess.run(switch, check=True, capture_output=True)
            for _ in range(steps):
                server.step(kind)
            switch[1] = "--instr=off"
            subprocess.run(switch, check=True, capture_output=True)
            if server.refused:
                log(f"{build.label} {kind}: {server.refused} claims refused as busy (counted)")
        finally:
            server.close()
    main_thread = Path(f"{out}-01")  # callgrind numbers the threads from 1, the main one
    total = 0
    for line in main_thread.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            total = max(total, int(line.split()[1]))
    if not total:
        raise BenchError(f"{build.label}: callgrind counted nothing for {kind}")
    return total / steps


def parse_build(text: str) -> Build:
    label, _, path = text.rpartition("=")
    venv = Path(path).resolve()
    if not (venv / "bin" / "wvo-mcp").exists():
        raise argparse.ArgumentTypeError(f"{path}: no bin/wvo-mcp in this venv")
    return Build(label or venv.parent.name, venv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--build",
        action="append",
        type=parse_build,
        default=[],
        metavar="[LABEL=]VENV",
        help="a build's venv (default: this one's)",
    )
    parser.add_argument("--kinds", default=",".join(KINDS), help="ping,claim,loop")
    parser.add_argument("--steps", type=int, default=100, help="steps counted (default 100)")
    parser.add_argument("--tasks", type=int, default=10_000, help="chain graph size")
    parser.add_argument("--no-instructions", action="store_true", help="cProfile only")
    parser.add_argument("--json", type=Path, help="also write the counts as JSON here")
    args = parser.parse_args(argv)
    builds = args.build or [Build("this", Path(sys.prefix))]
    kinds = [k for k in args.kinds.split(",") if k]
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    if not args.no_instructions and shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (or pass --no-instructions)")
    rng = random.Random(args.tasks)
    found: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="wvo-call-work-") as folder:
        work = Path(folder)
        graph = work / "graph.json"
        tasks = [chain_task(i, rng) for i in range(args.tasks)]
        graph.write_text(json.dumps({"version": 1, "tasks": tasks}))
        for kind in kinds:
            for build in builds:
                figures = found.setdefault(kind, {}).setdefault(build.label, {})
                figures["python_calls"] = python_calls(build, kind, args.steps, graph, work)
                if not args.no_instructions:
                    figures["instructions"] = instructions(build, kind, args.steps, graph, work)
                log(f"{kind} {build.label}: {figures}")
    print("| step | build | Python calls | instructions (k) |")
    print("|---|---|---|---|")
    for kind, per_build in found.items():
        for label, figures in per_build.items():
            counted = figures.get("instructions")
            shown = f"{counted / 1e3:,.0f}" if counted is not None else "-"
            print(f"| {kind} | {label} | {figures['python_calls']:,.0f} | {shown} |")
    if args.json:
        args.json.write_text(json.dumps(found, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
