#!/usr/bin/env python
"""What the worker sandbox costs: a worker's launch, its MCP tool calls, its model requests,
and the CPU of a real autopilot's fake workers, sandboxed against `--unsandboxed-workers`.

    python -m scripts.bench.tenancy --quick            # smoke run, under 2 minutes
    python -m scripts.bench.tenancy --json out.json    # full run, ~8 minutes on a quiet machine
    python -m scripts.bench.tenancy --only launch,calls

Sections 1-3 run the autopilot's own machinery in this process: wvo_mcp.autopilot.gateway's
Gateway (wvo-mcp over HTTP on 127.0.0.1, its own thread) and isolation.prepared(run, gateway,
sandboxed=...), whose Ready is started as attempt.Executor._supervise starts it (its argv, env and
cwd, the prompt on stdin, a new session), sandboxed and direct in alternation:

- `launch`: prepared() entered -> the worker's first stdout line, for a `command`-kind
  worker that prints one JSON line and exits (a shell script), split into preparing (home
  files, token, egress proxy), spawn -> first line, exit, and leaving prepared() (proxy
  stopped, token revoked, home removed), and the CPU of the processes started. Spawn ->
  first line is taken four ways: the program alone (direct), bwrap without the relay (the
  sandboxed command line with the relay cut out), the whole sandboxed line (bwrap, relay,
  program), and that line with the relay's Python given -S; the differences are bwrap's,
  the relay's and its `site`'s. Then the fake Claude Code worker (Python and its imports)
  to its first line, both ways. The token, the egress proxy and the relay's Python outside
  any sandbox are also timed alone.
- `calls`: tenancy_client.py as a worker, one process sandboxed and one
  direct, each holding one MCP session: task_get and heartbeat on its own task (a run token
  scoped to it; the task claimed for it), through the relay and the egress proxy against
  straight to the gateway's URL, in rotating blocks. CPU: the egress proxy's (this
  process's main thread, where it runs as in the autopilot), the relay's (/proc), the
  gateway's (its thread) and the client's own.
- `model`: the same two clients post a model-API-sized request (~4.3 KB) to a stub HTTP
  server on 127.0.0.1 (a process of its own) and read its SSE answer (12 chunks, ~5 KB),
  on one keep-alive connection and on a new connection each; the sandboxed one through the
  relay's forward and the egress proxy. CPU as for calls.
- `autopilot`: a real `wvo-mcp autopilot --until-empty --workers alpha:N` with the fake
  Claude Code worker (tests/autopilot/conftest.py's setup) on a fresh repository, sandboxed
  and with `--unsandboxed-workers`, in ABBA order: wall time, the autopilot's own CPU
  (/proc, sampled) and its and its children's (getrusage RUSAGE_CHILDREN), per task. This
  script is a child subreaper, so the sandboxes' inits (which bwrap leaves unwaited) are
  adopted and their CPU counted.

Other work on the machine skews all of it: before each section the script waits (up to
--wait-quiet seconds) for a 3 s window in which the machine is under 10 % busy, and each
table says how busy the machine was with other work while it was taken.
The tables go to stdout, progress to stderr; the exit code is non-zero only when a
measurement could not be taken.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
from anyio.streams.buffered import BufferedByteReceiveStream

from scripts.bench import lib, project
from scripts.bench.lib import ROOT, BenchError, Report, log, machine_busy, proc_cpu_seconds, summary
from scripts.bench.subreaper import SPAWNED, become_subreaper, reap_adopted
from wvo_mcp import providers
from wvo_mcp.autopilot import isolation
from wvo_mcp.autopilot.gateway import Gateway
from wvo_mcp.config import Settings
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.sandbox import bwrap, egress, relay
from wvo_mcp.sandbox.environment import DEFAULT_PATH
from wvo_mcp.services.bearer_tokens import Scope

RELAY_PARTS = (  # the relay's Python, outside any sandbox: see Bench.prepare_parts
    ("python", "outside: `python -I -S -c pass` (the interpreter alone)"),
    ("site", "outside: `python -I -c pass` (+ `site`)"),
    ("relay_source", "outside: `python -I -S -c RELAY` (+ compiling it, its imports; exits)"),
)
CLIENT = Path(__file__).resolve().parent / "tenancy_client.py"
CPUS = os.cpu_count() or 1
QUIET_SHARE = 0.10  # the machine is quiet below this share of all its cores busy
QUIET_WINDOW_S = 3.0
LINE_BYTES = 1 << 20
START_DEADLINE_S = 60.0
AUTOPILOT_DEADLINE_S = 900.0
BLOCK = 50  # calls or requests per block; blocks rotate between sandboxed and direct


@dataclass
class Config:
    quick: bool
    launches: int  # samples of each launch variant
    fake_launches: int  # samples of the fake worker's launch, each way
    calls: int  # MCP calls of each tool, each way
    requests: int  # model requests of each kind, each way
    warmup: int  # untimed calls and requests first, each way
    tasks: int  # the autopilot's tasks per run
    workers: int  # its fake workers
    runs: int  # autopilot runs each way (ABBA order when 2)
    wait_quiet: float  # seconds to wait for a quiet machine before each section


def make_config(args: argparse.Namespace) -> Config:
    wait = args.wait_quiet
    if args.quick:
        return Config(True, 12, 3, 100, 100, 10, 16, 4, 1, wait or 0.0)
    return Config(False, 200, 30, 400, 400, 30, 64, 8, 2, 600.0 if wait is None else wait)


# --------------------------------------------------------------------------- the machine


def wait_quiet(limit: float) -> float:
    """Wait up to `limit` seconds for a window in which the machine is under QUIET_SHARE
    busy; the share of the last window."""
    started = time.monotonic()
    said = -60.0
    while True:
        before = machine_busy()
        time.sleep(QUIET_WINDOW_S)
        share = (machine_busy() - before) / QUIET_WINDOW_S / CPUS
        waited = time.monotonic() - started
        if share < QUIET_SHARE or waited >= limit:
            if share >= QUIET_SHARE:
                log(f"the machine is still {100 * share:.0f}% busy; measuring anyway")
            return share
        if waited - said >= 60:  # a line a minute while waiting
            log(f"the machine is {100 * share:.0f}% busy; waiting up to {limit:.0f} s")
            said = waited


def own_cpu() -> float:
    """CPU seconds of this process and of its children that have ended and been waited
    for (their own children included, when they waited for them)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@contextlib.contextmanager
def watched(section: str, report: Report, limit: float) -> Iterator[dict[str, float]]:
    """Wait for a quiet machine, then measure how busy other work kept it during the block:
    the machine's busy CPU less this process's and its (ended) children's."""
    quiet = wait_quiet(limit)
    machine, mine, started = machine_busy(), own_cpu(), time.monotonic()
    seen: dict[str, float] = {"before": quiet}
    yield seen
    reap_adopted(settle=5.0, name="bwrap")
    seconds = time.monotonic() - started
    others = (machine_busy() - machine) - (own_cpu() - mine)
    seen.update(seconds=seconds, others=max(0.0, others) / seconds / CPUS)
    report.details.setdefault("machine", {})[section] = seen


def machine_note(seen: dict[str, float]) -> str:
    busy = " (a busy machine: read with care)" if seen["others"] >= QUIET_SHARE else ""
    return (
        f"Other work kept the machine {100 * seen['others']:.0f} % busy while these were "
        f"taken ({100 * seen['before']:.0f} % just before){busy}."
    )


# --------------------------------------------------------------------------- processes


def thread_cpu(native_id: int) -> float:
    """CPU seconds of one thread of this process (ns resolution)."""
    fields = Path(f"/proc/self/task/{native_id}/schedstat").read_text().split()
    return int(fields[0]) / 1e9


def descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                for child in (task / "children").read_text().split():
                    found.append(int(child))
                    queue.append(int(child))
    return found


def relay_pid(pid: int) -> int:
    """The relay inside a sandboxed worker (bwrap, bwrap, relay, the program)."""
    for child in descendants(pid):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if argv[1:3] == [b"-I", b"-c"] and b"--socket" in argv:
                return child
    raise BenchError(f"no relay found under {pid}")


def as_is(argv: list[str]) -> list[str]:
    return argv


def relay_at(argv: list[str]) -> int:
    """Where the relay starts in a sandboxed command line (`python -I -c SOURCE ...`)."""
    for index in range(len(argv) - 2):
        if argv[index] == sys.executable and argv[index + 1 : index + 3] == ["-I", "-c"]:
            return index
    raise BenchError("the sandboxed command line has no relay")


def without_relay(argv: list[str]) -> list[str]:
    """A sandboxed command line with the relay cut out: bwrap runs the program itself."""
    index = relay_at(argv)
    return argv[:index] + argv[argv.index("--", index + 4) + 1 :]


def relay_without_site(argv: list[str]) -> list[str]:
    """The relay started with `-S` too: no `site`, so none of the venv's .pth files (an
    editable install's finder imports pathlib and importlib.util) run before it starts."""
    index = relay_at(argv)
    return [*argv[: index + 2], "-S", *argv[index + 2 :]]


async def kill(process: anyio.abc.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()


class Worker:
    """A started Ready: stdin kept open, stdout read a line at a time."""

    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        assert process.stdout is not None and process.stdin is not None
        self.stdin = process.stdin
        self.lines = BufferedByteReceiveStream(process.stdout)

    @classmethod
    @contextlib.asynccontextmanager
    async def started(cls, ready: isolation.Ready, argv: list[str] | None = None,
                      stderr: Any = subprocess.DEVNULL) -> AsyncIterator[Worker]:  # fmt: skip
        process = await anyio.open_process(
            argv or ready.argv,
            cwd=ready.cwd,
            env=ready.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,  # as the autopilot does: a group of its own
            pass_fds=ready.pass_fds,  # the files bwrap copies into the sandbox's home
        )
        SPAWNED.add(process.pid)
        try:
            yield cls(process)
        finally:
            with anyio.CancelScope(shield=True):
                await kill(process)
            SPAWNED.discard(process.pid)

    async def line(self) -> str:
        with anyio.fail_after(START_DEADLINE_S):
            try:
                raw = await self.lines.receive_until(b"\n", LINE_BYTES)
            except (anyio.EndOfStream, anyio.IncompleteRead):
                raise BenchError(f"the worker ended ({await self.process.wait()})") from None
        return raw.decode()

    async def end(self, sandboxed: bool) -> None:
        """Stop the program so that every process it ran is waited for (its CPU counted):
        SIGTERM to the relay, which passes it on and exits, so the sandbox's init ends by
        itself; killing bwrap instead would take the init down unwaited."""
        if sandboxed:
            os.kill(relay_pid(self.process.pid), signal.SIGTERM)
        else:
            os.killpg(self.process.pid, signal.SIGTERM)
        with anyio.fail_after(START_DEADLINE_S):
            await self.process.wait()

    async def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        await self.stdin.send((json.dumps(request) + "\n").encode())
        answer: dict[str, Any] = json.loads(await self.line())
        return answer


# --------------------------------------------------------------------------- the bench


class Bench(lib.Bench):
    module = __spec__.name

    def __init__(self, config: Config, work: Path, cache: Path, report: Report) -> None:
        super().__init__(config, work, cache, report)
        self.config: Config = config
        self.bin = self.fresh("bin")
        hello = self.bin / "hello"
        hello.write_text('#!/bin/sh\necho \'{"type": "hello"}\'\n')
        shutil.copy(CLIENT, self.bin / CLIENT.name)
        client = self.bin / "tenant"
        client.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" -P "{self.bin / CLIENT.name}" "$@"\n'
        )
        for program in (hello, client):
            program.chmod(0o755)
        self.hello, self.client = hello, client
        self.fake = project.fake_worker(self.bin / "fake-claude")

    # ----------------------------------------------------------------------- shared

    @contextlib.asynccontextmanager
    async def gateway(self, tasks: list[str]) -> AsyncIterator[tuple[Orchestrator, Gateway]]:
        state = self.fresh("state")
        settings = Settings(state_root=state, workspace_root=self.fresh("workspace"))
        orchestrator = await Orchestrator.open(settings)
        try:
            specs = [TaskSpec(id=task, title=f"bench {task}") for task in tasks]
            await orchestrator.create_tasks(specs, actor="bench")
            gateway = Gateway(orchestrator, settings)
            async with gateway.serving():
                yield orchestrator, gateway
        finally:
            await orchestrator.close()

    def run(self, kind: providers.WorkerKind, task: str, agent: str, prompt: str) -> isolation.Run:
        workdir = self.work / "repos" / agent
        workdir.mkdir(parents=True, exist_ok=True)
        return isolation.Run(
            kind=kind,
            agent_id=agent,
            task_id=task,
            model="bench-model",
            prompt=prompt,
            workdir=workdir,
            scope=Scope(task, "worker"),
        )

    # ----------------------------------------------------------------------- launch

    async def launch(self) -> None:
        cfg = self.config
        with watched("launch", self.report, cfg.wait_quiet) as seen:
            async with self.gateway(["L1"]) as (_, gateway):
                hello = providers.WorkerKind(kind="command", template=(str(self.hello),))
                fake = providers.WorkerKind(kind="claude", executable=str(self.fake))
                trivial = self.run(hello, "L1", "alpha-1", "the prompt\n")
                prompt = "You are alpha-1. Task: task_id 'L1', lease_token 'none'.\n"
                python = self.run(fake, "L1", "alpha-1", prompt)
                variants = {
                    "direct": (trivial, False, as_is),
                    "bwrap": (trivial, True, without_relay),
                    "sandboxed": (trivial, True, as_is),
                    "relay -S": (trivial, True, relay_without_site),
                }
                samples: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
                log(f"launch: {cfg.launches} runs of each of {', '.join(variants)}")
                for index in range(cfg.warmup // 3 + cfg.launches):
                    names = list(variants)
                    shift = index % len(names)  # each variant goes first in turn
                    for name in names[shift:] + names[:shift]:
                        run, sandboxed, line = variants[name]
                        took = await self.launch_once(gateway, run, sandboxed, line)
                        if index >= cfg.warmup // 3:
                            samples[name].append(took)
                    reap_adopted(name="bwrap")
                fakes: dict[str, list[dict[str, float]]] = {"direct": [], "sandboxed": []}
                log(f"launch: {cfg.fake_launches} runs of the fake worker each way")
                for index in range(1 + cfg.fake_launches):
                    for name in ("direct", "sandboxed") if index % 2 else ("sandboxed", "direct"):
                        took = await self.launch_once(gateway, python, name == "sandboxed",
                                                      as_is, wait=False)  # fmt: skip
                        if index:
                            fakes[name].append(took)
                parts = await self.prepare_parts(gateway, cfg.launches)
        self.launch_tables(samples, fakes, parts, seen)

    async def launch_once(
        self,
        gateway: Gateway,
        run: isolation.Run,
        sandboxed: bool,
        line: Callable[[list[str]], list[str]],
        wait: bool = True,
    ) -> dict[str, float]:
        """One launch, timed as the supervisor would see it (seconds): `prepare` (entering
        prepared()), `first` (spawn -> first line), `exit` (-> the process ended), `leave`
        (leaving prepared()); and `cpu`, the CPU of every process it started. Without `wait`
        the process is killed after its first line."""
        cpu = own_cpu() - time.process_time()
        started = time.perf_counter()
        async with isolation.prepared(run, gateway, sandboxed=sandboxed) as ready:
            prepared = time.perf_counter()
            async with Worker.started(ready, line(ready.argv)) as worker:
                with contextlib.suppress(anyio.BrokenResourceError):
                    await worker.stdin.send(ready.stdin)  # a program may not read it
                await worker.stdin.aclose()
                text = await worker.line()
                first = time.perf_counter()
                if not text.startswith("{"):
                    raise BenchError(f"unexpected first line {text[:200]!r}")
                if not wait:
                    await worker.end(sandboxed)
                code = await worker.process.wait()
                if wait and code != 0:
                    raise BenchError(f"the worker exited with {code}")
            ended = time.perf_counter()
        left = time.perf_counter()
        reap_adopted(settle=2.0, name="bwrap")  # the sandbox's init, counted once it ended
        return {
            "cpu": own_cpu() - time.process_time() - cpu,
            "prepare": prepared - started,
            "first": first - prepared,
            "total": first - started,
            "exit": ended - first,
            "leave": left - ended,
        }

    async def prepare_parts(self, gateway: Gateway, count: int) -> dict[str, list[float]]:
        """What preparing a sandboxed run holds, each timed alone: a run token issued and
        revoked (one database write each), an egress proxy started and stopped, the relay's
        command line (its source read); and the relay's Python outside any sandbox."""
        parts: dict[str, list[float]] = {k: [] for k in ("token", "revoke", "proxy", "stop",
                                                         "relay_line")}  # fmt: skip
        source = relay.command(sys.executable, "/nonexistent", ["x"])[3]
        pythons = {
            "python": [sys.executable, "-I", "-S", "-c", "pass"],
            "site": [sys.executable, "-I", "-c", "pass"],
            "relay_source": [sys.executable, "-I", "-S", "-c", source],  # exits: no --socket
        }
        for key in pythons:
            parts[key] = []
        for _ in range(max(10, count // 4)):
            for key, argv in pythons.items():
                started = time.perf_counter()
                await anyio.run_process(argv, check=False)
                parts[key].append(time.perf_counter() - started)
        socket_path = Path(tempfile.mkdtemp(prefix="wvo-bench-")) / "egress.sock"
        endpoints = [egress.endpoint_of(gateway.url)]
        for _ in range(count):
            started = time.perf_counter()
            secret = await gateway.token("alpha-1", Scope("L1", "worker"))
            issued = time.perf_counter()
            await gateway.revoke(secret)
            parts["token"].append(issued - started)
            parts["revoke"].append(time.perf_counter() - issued)
            proxy = egress.EgressProxy(socket_path, endpoints)
            async with anyio.create_task_group() as group:
                started = time.perf_counter()
                await group.start(proxy.serve)
                up = time.perf_counter()
                group.cancel_scope.cancel()
            parts["proxy"].append(up - started)
            parts["stop"].append(time.perf_counter() - up)
            started = time.perf_counter()
            relay.command(sys.executable, str(socket_path), ["x"], forwards=["127.0.0.1:1"])
            parts["relay_line"].append(time.perf_counter() - started)
        shutil.rmtree(socket_path.parent, ignore_errors=True)
        return parts

    def launch_tables(
        self,
        samples: dict[str, list[dict[str, float]]],
        fakes: dict[str, list[dict[str, float]]],
        parts: dict[str, list[float]],
        seen: dict[str, float],
    ) -> None:
        def stat(values: list[dict[str, float]], key: str) -> dict[str, float]:
            return summary([v[key] for v in values])

        def pair(values: list[dict[str, float]], key: str) -> str:
            s = stat(values, key)
            return f"{s['p50']:.1f} / {s['p99']:.1f}"

        direct, sandboxed, bare = samples["direct"], samples["sandboxed"], samples["bwrap"]
        rows = []
        for key, what in (
            ("total", "**prepared() entered → first line**"),
            ("prepare", "preparing (home files, token; sandboxed: + egress proxy, command line)"),
            ("first", "spawn → first line"),
            ("exit", "first line → exited"),
            ("leave", "leaving prepared() (token revoked, home removed; + proxy stopped)"),
            ("cpu", "CPU of the processes it started (+ bwrap, the relay)"),
        ):
            d, s = stat(direct, key), stat(sandboxed, key)
            rows.append([what, pair(direct, key), pair(sandboxed, key),
                         f"{s['p50'] - d['p50']:+.1f} / {s['p99'] - d['p99']:+.1f}"])  # fmt: skip
        self.table(
            "A trivial worker's launch, direct vs sandboxed (ms, p50 / p99)",
            ["phase", "direct", "sandboxed", "the sandbox adds"],
            rows,
            f"{len(direct)} launches each way, in rotation with the bwrap-only runs below. "
            + machine_note(seen),
        )
        spawn = {name: stat(values, "first") for name, values in samples.items()}
        token = summary(parts["token"])
        revoke = summary(parts["revoke"])
        proxy, stop = summary(parts["proxy"]), summary(parts["stop"])
        line = summary(parts["relay_line"])
        rows = [
            ["the program alone (`/bin/sh` echoing a line), direct",
             f"{spawn['direct']['p50']:.1f}", f"{spawn['direct']['p99']:.1f}"],
            ["bwrap + the program (the relay cut out of the sandboxed line)",
             f"{spawn['bwrap']['p50']:.1f}", f"{spawn['bwrap']['p99']:.1f}"],
            ["bwrap + relay + the program (the sandboxed line)",
             f"{spawn['sandboxed']['p50']:.1f}", f"{spawn['sandboxed']['p99']:.1f}"],
            ["↳ bwrap's part (namespaces, mounts)",
             f"{spawn['bwrap']['p50'] - spawn['direct']['p50']:.1f}", ""],
            ["↳ the relay's part (`python -I -c`, listeners)",
             f"{spawn['sandboxed']['p50'] - spawn['bwrap']['p50']:.1f}", ""],
            ["bwrap + relay started with `-S` + the program (no `site`)",
             f"{spawn['relay -S']['p50']:.1f}", f"{spawn['relay -S']['p99']:.1f}"],
            ["↳ `site` in the relay (the venv's .pth files)",
             f"{spawn['sandboxed']['p50'] - spawn['relay -S']['p50']:.1f}", ""],
            *[[what, f"{summary(parts[key])['p50']:.1f}", f"{summary(parts[key])['p99']:.1f}"]
              for key, what in RELAY_PARTS],
            ["a run token issued / revoked (a database write each, in-process)",
             f"{token['p50']:.2f} / {revoke['p50']:.2f}", f"{token['p99']:.2f} / "
             f"{revoke['p99']:.2f}"],
            ["an egress proxy started / stopped (in-process)",
             f"{proxy['p50']:.2f} / {stop['p50']:.2f}", f"{proxy['p99']:.2f} / {stop['p99']:.2f}"],
            ["the relay's command line (its source read)", f"{line['p50']:.2f}",
             f"{line['p99']:.2f}"],
        ]  # fmt: skip
        for mode in ("direct", "sandboxed"):
            s = stat(fakes[mode], "total")
            what = f"the fake Claude Code worker (Python, its imports), {mode}: → first line"
            rows.append([what, f"{s['p50']:.0f}", f"{s['p99']:.0f}"])
        self.table(
            "Where a launch's milliseconds go (ms)",
            ["part", "p50", "p99"],
            rows,
            "CPU of the processes started, p50: "
            + ", ".join(f"{k} {stat(v, 'cpu')['p50']:.1f} ms" for k, v in samples.items())
            + f". bwrap-only: {len(bare)} launches; the parts timed alone: {len(parts['token'])} "
            f"each; the fake worker: {len(fakes['direct'])} launches each way, killed after "
            "its first line (prepared() entered → first line).",
        )
        added = stat(sandboxed, "total")["p50"] - stat(direct, "total")["p50"]
        self.report.info("launch: the sandbox adds, p50 (prepared() → first line)", added, "ms")
        self.report.details["launch"] = {
            "samples": samples, "fake": fakes, "parts": parts,
        }  # fmt: skip

    # ----------------------------------------------------------------------- calls, model

    async def traffic(self, chosen: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """The calls and model sections: one sandboxed and one direct client, both alive,
        asked in rotating blocks."""
        cfg = self.config
        stub, api = await anyio.to_thread.run_sync(start_stub, self.errlog)
        try:
            async with self.gateway(["C-sandboxed", "C-direct"]) as (orchestrator, gateway):
                gateway_thread = next(t for t in threading.enumerate() if t.name == "gateway")
                assert gateway_thread.native_id is not None
                kind = providers.WorkerKind(
                    kind="command", template=(str(self.client), "{mcp_url}"), egress=(api,)
                )
                async with contextlib.AsyncExitStack() as stack:
                    workers: dict[str, Worker] = {}
                    relay_of = 0
                    for mode in ("sandboxed", "direct"):
                        task, agent = f"C-{mode}", f"alpha-{mode}"
                        claim = await orchestrator.claim(agent, task_id=task)
                        if not claim.claimed or claim.lease_token is None:
                            raise BenchError(f"could not claim {task}: {claim}")
                        first = {"task_id": task, "lease_token": claim.lease_token, "api": api}
                        run = self.run(kind, task, agent, json.dumps(first) + "\n")
                        ready = await stack.enter_async_context(
                            isolation.prepared(run, gateway, sandboxed=mode == "sandboxed")
                        )
                        worker = await stack.enter_async_context(
                            Worker.started(ready, stderr=self.errlog)
                        )
                        await worker.stdin.send(ready.stdin)
                        if json.loads(await worker.line()) != {"type": "ready"}:
                            raise BenchError(f"the {mode} client did not start")
                        workers[mode] = worker
                        if mode == "sandboxed":
                            relay_of = relay_pid(worker.process.pid)
                    asks: dict[str, dict[str, Any]] = {}
                    if "calls" in chosen:
                        for tool in ("task_get", "heartbeat"):
                            asks[tool] = {"op": "mcp", "tool": tool, "count": cfg.calls}
                    if "model" in chosen:
                        for fresh in (False, True):
                            name = "new connection" if fresh else "keep-alive"
                            asks[name] = {"op": "model", "fresh": fresh, "count": cfg.requests}
                    found = await self.rotate(workers, asks, relay_of, gateway_thread.native_id)
                    for worker in workers.values():  # stdin closed: each client ends itself
                        await worker.stdin.aclose()
                        with anyio.fail_after(START_DEADLINE_S):
                            await worker.process.wait()
        finally:
            await anyio.to_thread.run_sync(stop_stub, stub)
        return found

    async def rotate(
        self,
        workers: dict[str, Worker],
        asks: dict[str, dict[str, Any]],
        relay_of: int,
        gateway_tid: int,
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """Each request in blocks of BLOCK, sandboxed and direct in turn (which goes first
        alternates); per request and mode, the times and the CPU of each part."""
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for name, ask in asks.items():
            request = {k: v for k, v in ask.items() if k != "count"}
            for worker in workers.values():  # warm up: connections, first-call compiles
                await worker.ask({**request, "n": self.config.warmup})
            got: dict[str, dict[str, Any]] = {
                mode: {"ms": [], "proxy_s": 0.0, "relay_s": 0.0, "gateway_s": 0.0,
                       "client_s": 0.0, "bytes": 0, "sent": 0}
                for mode in workers
            }  # fmt: skip
            log(f"{name}: {ask['count']} each way, in blocks of {BLOCK}")
            done, turn = 0, 0
            while done < ask["count"]:
                n = min(BLOCK, ask["count"] - done)
                order = list(workers) if turn % 2 == 0 else list(reversed(workers))
                for mode in order:
                    proxy, gw = time.thread_time(), thread_cpu(gateway_tid)
                    relayed = proc_cpu_seconds(relay_of) if mode == "sandboxed" else 0.0
                    answer = await workers[mode].ask({**request, "n": n})
                    into = got[mode]
                    into["proxy_s"] += time.thread_time() - proxy
                    into["gateway_s"] += thread_cpu(gateway_tid) - gw
                    if mode == "sandboxed":
                        into["relay_s"] += proc_cpu_seconds(relay_of) - relayed
                    into["client_s"] += answer["cpu_s"]
                    into["bytes"] += answer["bytes"]
                    into["sent"] += answer["sent"]
                    into["ms"].extend(answer["ms"])
                done += n
                turn += 1
            found[name] = got
        return found

    async def traffic_sections(self, chosen: list[str]) -> None:
        with watched("traffic", self.report, self.config.wait_quiet) as seen:
            found = await self.traffic(chosen)
        self.report.details["traffic"] = found
        calls = {k: v for k, v in found.items() if k in ("task_get", "heartbeat")}
        model = {k: v for k, v in found.items() if k not in calls}
        if calls:
            self.traffic_table(
                "An MCP tool call from the worker: through relay + egress proxy vs direct",
                calls,
                "The SDK's streamable HTTP client in the worker, one session, the gateway's "
                "stateless HTTP transport; per call (ms, p50 / p99). CPU per call: the egress "
                "proxy's is this process's main thread (direct: the same loop, idle), "
                f"{self.config.calls} calls of each tool each way. " + machine_note(seen),
            )
        if model:
            size = next(iter(model.values()))["sandboxed"]
            up, down = (size[k] / len(size["ms"]) / 1024 for k in ("sent", "bytes"))
            self.traffic_table(
                "A model request from the worker: through relay + egress proxy vs direct",
                model,
                f"POST of {up:.1f} KB to a stub on 127.0.0.1 (its own process), its SSE "
                f"answer read to the end ({down:.1f} KB on the wire, 12 chunks); "
                f"{self.config.requests} requests of each kind each way. " + machine_note(seen),
            )

    def traffic_table(
        self, title: str, found: dict[str, dict[str, dict[str, Any]]], note: str
    ) -> None:
        rows = []
        for name, got in found.items():
            direct, sandboxed = got["direct"], got["sandboxed"]
            d, s = (
                summary([m / 1000 for m in direct["ms"]]),
                summary([m / 1000 for m in sandboxed["ms"]]),
            )
            n = len(sandboxed["ms"])

            def per(key: str, mode: dict[str, Any], n: int = n) -> str:
                return f"{1000 * mode[key] / n:.3f}"

            rows.append([
                f"`{name}`" if "_" in name or name == "heartbeat" else name,
                f"{d['p50']:.2f} / {d['p99']:.2f}",
                f"{s['p50']:.2f} / {s['p99']:.2f}",
                f"{s['p50'] - d['p50']:+.2f} / {s['p99'] - d['p99']:+.2f}",
                f"{1000 * (sandboxed['proxy_s'] - direct['proxy_s']) / n:.3f}",
                per("relay_s", sandboxed),
                f"{per('client_s', direct)} / {per('client_s', sandboxed)}",
                f"{per('gateway_s', direct)} / {per('gateway_s', sandboxed)}",
            ])  # fmt: skip
            self.report.info(
                f"{name}: the sandbox adds, p50", s["p50"] - d["p50"], "ms",
                note=f"p99 {s['p99'] - d['p99']:+.2f} ms",
            )  # fmt: skip
        self.table(
            title,
            ["request", "direct", "sandboxed", "added", "proxy CPU", "relay CPU",
             "client CPU (d / s)", "gateway CPU (d / s)"],
            rows,
            note + " CPU columns: ms per request.",
        )  # fmt: skip

    # ----------------------------------------------------------------------- autopilot

    def autopilot(self) -> None:
        cfg = self.config
        modes = ["direct", "sandboxed"] * cfg.runs
        if cfg.runs == 2:
            modes = ["direct", "sandboxed", "sandboxed", "direct"]
        results: dict[str, list[dict[str, Any]]] = {"direct": [], "sandboxed": []}
        with watched("autopilot", self.report, cfg.wait_quiet) as seen:
            for index, mode in enumerate(modes):
                log(f"autopilot run {index + 1}/{len(modes)} ({mode}): {cfg.tasks} tasks, "
                    f"{cfg.workers} fake workers")  # fmt: skip
                results[mode].append(self.autopilot_run(mode, index))
            client = client_cpu(5 if cfg.quick else 15)
        self.report.details["autopilot"] = {**results, "client_cpu": client}
        t = cfg.tasks
        rows = []
        for mode in ("direct", "sandboxed"):
            for r in results[mode]:
                rows.append([
                    "`--unsandboxed-workers`" if mode == "direct" else "sandboxed",
                    f"{r['wall_s']:.1f} s ({t / r['wall_s']:.2f} tasks/s)",
                    f"{1000 * r['total_cpu_s'] / t:.0f}",
                    f"{1000 * r['autopilot_cpu_s'] / t:.1f}",
                    f"{1000 * (r['total_cpu_s'] - r['autopilot_cpu_s']) / t:.0f}",
                    f"{100 * r['total_cpu_s'] / r['wall_s'] / CPUS:.0f} %",
                    f"{r['to_checkpoint_p50_s']:.2f} s",
                    f"{100 * r['others']:.0f} %",
                ])  # fmt: skip
        mean = {m: {k: statistics.fmean(r[k] for r in results[m]) for k in results[m][0]}
                for m in results}  # fmt: skip
        d, s = mean["direct"], mean["sandboxed"]
        workers = {m: mean[m]["total_cpu_s"] - mean[m]["autopilot_cpu_s"] for m in mean}
        rows.append([
            "sandboxed minus unsandboxed (means)",
            f"{s['wall_s'] - d['wall_s']:+.1f} s ({100 * (s['wall_s'] / d['wall_s'] - 1):+.0f} %)",
            f"{1000 * (s['total_cpu_s'] - d['total_cpu_s']) / t:+.0f}",
            f"{1000 * (s['autopilot_cpu_s'] - d['autopilot_cpu_s']) / t:+.1f}",
            f"{1000 * (workers['sandboxed'] - workers['direct']) / t:+.0f}",
            "", f"{s['to_checkpoint_p50_s'] - d['to_checkpoint_p50_s']:+.2f} s", "",
        ])  # fmt: skip
        self.table(
            f"A real autopilot: {t} tasks, {cfg.workers} fake workers, 2 cores",
            ["workers", "wall (throughput)", "CPU ms / task, all", "autopilot's own",
             "workers' (and their children)", "of the machine", "claim → first checkpoint p50",
             "others busy"],
            rows,
            "`wvo-mcp autopilot --until-empty --workers alpha:N`; runs in the order "
            f"{', '.join(modes)}. CPU: getrusage(RUSAGE_CHILDREN) of this script around each "
            "run (the autopilot and everything it waited for; the sandboxes' inits adopted, "
            "see become_subreaper); the autopilot's own from /proc/<pid>/stat, its last "
            "reading (it serves the gateway and the egress proxies). The fake worker's HTTP "
            f"client (httpx2.AsyncClient()) costs {client['direct']:.0f} ms of CPU to build, "
            f"{client['sandboxed']:.0f} ms with the proxy variables the sandbox sets "
            "(HTTP(S)_PROXY: a transport and an SSL context more for each; median, outside "
            "any sandbox). " + machine_note(seen),
        )  # fmt: skip
        self.report.info(
            "autopilot: CPU per task, sandboxed - direct",
            1000 * (s["total_cpu_s"] - d["total_cpu_s"]) / t,
            "ms",
            note=f"direct {1000 * d['total_cpu_s'] / t:.0f} ms, sandboxed "
            f"{1000 * s['total_cpu_s'] / t:.0f} ms a task (all processes)",
        )

    def autopilot_run(self, mode: str, index: int) -> dict[str, Any]:
        cfg = self.config
        work = self.fresh(f"autopilot-{index}")
        env = autopilot_setup(work, cfg.tasks, cfg.workers, self.fake)
        args = [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty",
                "--workers", f"alpha:{cfg.workers}"]  # fmt: skip
        if mode == "direct":
            args.append("--unsandboxed-workers")
        machine, children = machine_busy(), resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        with (work / "autopilot.out").open("w") as out:
            pilot = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            SPAWNED.add(pilot.pid)
            own = 0.0
            while pilot.poll() is None:  # the last reading before it ends, every 50 ms
                reap_adopted(name="bwrap")
                with contextlib.suppress(OSError, IndexError):
                    own = proc_cpu_seconds(pilot.pid)
                if time.monotonic() - started > AUTOPILOT_DEADLINE_S:
                    pilot.kill()
                    raise BenchError(f"the autopilot did not finish in {AUTOPILOT_DEADLINE_S} s")
                time.sleep(0.05)
        wall = time.monotonic() - started
        SPAWNED.discard(pilot.pid)
        # The last sandboxes' inits end just after the autopilot.
        reap_adopted(settle=5.0, name="bwrap")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        busy = machine_busy() - machine
        if pilot.returncode != 0:
            raise BenchError(
                "the autopilot failed:\n" + (work / "autopilot.out").read_text()[-3000:]
            )
        done, checkpoints = autopilot_outcome(work / "state")
        if done != cfg.tasks:
            raise BenchError(f"{done} of {cfg.tasks} tasks done; see {work}/autopilot.out")
        ms = sorted(checkpoints)
        return {
            "wall_s": wall,
            "total_cpu_s": total,
            "autopilot_cpu_s": own,
            "others": max(0.0, busy - total) / wall / CPUS,
            "to_checkpoint_p50_s": ms[len(ms) // 2] if ms else float("nan"),
        }


def client_cpu(runs: int) -> dict[str, float]:
    """CPU milliseconds (median) a fake worker spends building its HTTP client, without and
    with the proxy variables its sandbox sets (workers.environment)."""
    code = (
        "import time, httpx2\nstarted = time.process_time()\nhttpx2.AsyncClient()\n"
        "print(time.process_time() - started)"
    )
    proxy = "http://127.0.0.1:3128"
    envs = {
        "direct": {"PATH": DEFAULT_PATH},
        "sandboxed": {"PATH": DEFAULT_PATH, "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy,
                      "NO_PROXY": "127.0.0.1,localhost,::1"},
    }  # fmt: skip
    found: dict[str, list[float]] = {mode: [] for mode in envs}
    for _ in range(runs):
        for mode, env in envs.items():
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                 text=True, check=True).stdout  # fmt: skip
            found[mode].append(1000 * float(out))
    return {mode: statistics.median(values) for mode, values in found.items()}


def start_stub(errlog: Any) -> tuple[subprocess.Popen[str], str]:
    """The stub model API (tenancy_client.py --stub) and its URL."""
    stub = subprocess.Popen(
        [sys.executable, "-P", str(CLIENT), "--stub"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errlog,
        text=True,
    )
    SPAWNED.add(stub.pid)
    assert stub.stdout is not None
    return stub, f"http://127.0.0.1:{int(stub.stdout.readline())}"


def stop_stub(stub: subprocess.Popen[str]) -> None:
    if stub.stdin is not None:
        stub.stdin.close()
    stub.wait(timeout=10)


def autopilot_setup(work: Path, tasks: int, workers: int, fake: Path) -> dict[str, str]:
    """tests/autopilot/conftest.py's project: a repository, a providers file whose provider
    alpha runs the fake Claude Code worker, and `tasks` plain tasks."""
    repo = project.repository(work / "repo", {"README.md": "bench\n"}, "start")
    providers = project.providers_file(work / "providers.yaml", "alpha", workers, fake)
    state = work / "state"
    project.create_tasks(state, [TaskSpec(id=f"T{i:03d}", title=f"task {i}") for i in range(tasks)])
    return project.autopilot_env(work, state, repo, providers, 4 * workers)


def autopilot_outcome(state: Path) -> tuple[int, list[float]]:
    """(tasks done, claim -> first checkpoint in seconds per task) from the database."""

    def at(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    with contextlib.closing(sqlite3.connect(state / "orchestrator.db")) as db:
        done = db.execute("SELECT count(*) FROM tasks WHERE status = 'done'").fetchone()[0]
        claims = dict(db.execute(
            "SELECT task_id, min(at) FROM task_events WHERE kind = 'claimed' GROUP BY task_id"
        ).fetchall())  # fmt: skip
        firsts = db.execute("SELECT task_id, min(created_at) FROM checkpoints GROUP BY task_id")
        waits = [at(first) - at(claims[task]) for task, first in firsts if task in claims]
    return int(done), waits


# --------------------------------------------------------------------------- main


SECTIONS = ("launch", "calls", "model", "autopilot")


def main(argv: list[str] | None = None) -> int:
    parser = lib.arguments(__doc__ or "")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        help="seconds to wait for a quiet machine before each section (default 600; quick 0)",
    )
    lib.only_option(parser, SECTIONS)
    lib.common_options(parser)
    args = parser.parse_args(argv)
    chosen = lib.chosen_sections(parser, args, SECTIONS)
    config = make_config(args)
    probe = bwrap.probe()
    if not probe.usable:
        parser.error(f"bwrap does not work here: {probe.detail}")
    become_subreaper()
    work, cache = lib.workspace(args, "wvo-bench-tenancy-")
    bench = Bench(config, work, cache, Report())

    def body() -> None:
        if "launch" in chosen:
            anyio.run(bench.launch)
        if "calls" in chosen or "model" in chosen:
            anyio.run(bench.traffic_sections, chosen)
        if "autopilot" in chosen:
            bench.autopilot()

    return lib.run_bench(bench, "wvo-mcp tenancy benchmark", body, args, chosen, heading=True)


if __name__ == "__main__":
    sys.exit(main())
