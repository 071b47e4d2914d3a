#!/usr/bin/env python
"""Live dashboard benchmark: how fast a claim shows in a real browser while 16 agents work,
what each connected dashboard costs the server, and how the page loads at 1k vs 100k tasks.

    python -m scripts.bench.dashboard --quick           # smoke run, ~75 s
    python -m scripts.bench.dashboard --json out.json   # full run, ~4 minutes
    python -m scripts.bench.dashboard --only page

Sections (`--only`):
- `latency`: one `serve --http --dashboard` process on a fresh SQLite state root; `--agents`
  (16) agents, each a real MCP client (the SDK's) of its own stdio `wvo-mcp serve` process on
  the same state root (all in one driver process, a re-run of this script), loop
  plan_next -> claim_task -> hold 0.2-1.5 s with a checkpoint half way -> plan_update(done),
  recording time.time() when claim_task returned. Headless Chromium (Playwright) is signed in
  as a person; a MutationObserver records performance.timeOrigin + performance.now() the
  first time each card appears in the in_progress and done columns, and a wrapped
  EventSource the first time the stream names each task. Latency = browser time - the
  agent's time (one machine, one clock; checked). The page is signed in before the agents
  start (so its done column is not paged); after the window the agents pause, each
  finishing its task, and the page must show no card left in in_progress.
- `cpu`: with the same agents working, the dashboard process's CPU (/proc/<pid>/stat) over a
  fixed window with 0, 1, 10 and 50 dashboards connected: SSE clients (httpx2) reading the
  stream, which carries the changed cards as app.js places them.
- `page`: the cached chain-graph databases of core.py (1k and 100k tasks, chains of
  100) with 60 tasks done and 10 held; GET /dashboard, the next page of pending, cards by id,
  a task's detail and a search, timed with httpx2 in rotating blocks; then the browser's
  navigation timing of /dashboard, median of a few loads.

The tables go to stdout, progress to stderr; the exit code is 0 whether targets pass or
fail, non-zero only when a measurement could not be taken.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio
import anyio.to_thread
import httpx2
from mcp import Client
from mcp.client.stdio import get_default_environment

from scripts.bench import lib
from scripts.bench.lib import (
    ROOT,
    SERVER_ARGS,
    BenchError,
    Report,
    call,
    chain_db,
    copy_state,
    free_port,
    independent_task,
    lease_update,
    log,
    machine_busy,
    proc_cpu_seconds,
    size_label,
    summary,
)
from wvo_mcp.config import Settings
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
AGENTS_DEADLINE_S = 300.0  # agents to connect, or to finish their held tasks after `stop`
CPUS = os.cpu_count() or 1
VIEWERS_DEADLINE_S = 60.0  # every SSE viewer to get its `hello`
PAGE_DONE, PAGE_HELD = 60, 10  # tasks done and held in the page databases (done is paged)
CARD_IDS = 16  # ids per /dashboard/api/cards request in the page section

# Installed before the board's own script: stamps (ms since the epoch, this machine's clock)
# of the first time each card is inserted into a column, and of the first time the stream
# names each task (app.js's EventSource is wrapped to listen as well).
OBSERVER = """
(() => {
  const stamp = () => performance.timeOrigin + performance.now();
  const seen = { in_progress: {}, done: {}, moved: {}, streamed: {}, events: 0 };
  window.__wvoSeen = seen;
  const Original = window.EventSource;
  window.EventSource = class extends Original {
    constructor(...args) {
      super(...args);
      this.addEventListener("tasks", (event) => {
        const t = stamp();
        seen.events += 1;
        for (const id of JSON.parse(event.data).ids) {
          if (!(id in seen.streamed)) seen.streamed[id] = t;
        }
      });
    }
  };
  const check = (node, t) => {
    if (node.nodeType !== 1 || !node.id || !node.id.startsWith("card-")) return;
    const col = node.parentElement && node.parentElement.closest(".column");
    const bucket = col ? seen[col.dataset.status] : undefined;
    if (bucket && !(node.dataset.id in bucket)) bucket[node.dataset.id] = t;
    // Past pending: in progress, or (a task held shorter than a poll) straight to done.
    if (col && col.dataset.status !== "pending" && !(node.dataset.id in seen.moved)) {
      seen.moved[node.dataset.id] = t;
    }
  };
  new MutationObserver((records) => {
    const t = stamp();
    for (const r of records) for (const n of r.addedNodes) check(n, t);
  }).observe(document, { childList: true, subtree: true });
})();
"""


# Per column: the cards in the page and the count it shows.
COLUMNS_SHOWN = """() => Object.fromEntries(Array.from(document.querySelectorAll('.column'), (c) =>
  [c.dataset.status, { cards: c.querySelectorAll('.card').length,
                       count: Number(c.querySelector('.count').textContent),
                       paged: Boolean(c.dataset.next) }]))"""


# --------------------------------------------------------------------------- processes


def cli_token(state_root: Path, role: str, name: str) -> str:
    """A new token's secret from `wvo-mcp tokens add` (alone on its stdout)."""
    made = subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(state_root),
         "tokens", "add", "--role", role, "--name", name],
        cwd=ROOT, capture_output=True, text=True, env=get_default_environment(), timeout=60,
    )  # fmt: skip
    secret = made.stdout.strip()
    if made.returncode != 0 or not secret.startswith("wvo_"):
        raise BenchError(f"tokens add failed ({made.returncode}): {made.stderr[-1000:]}")
    return secret


@dataclass
class Dashboard:
    """A `serve --http --dashboard` process."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu(self) -> float:
        return proc_cpu_seconds(self.process.pid)


@contextlib.contextmanager
def dashboard_server(state_root: Path, errlog: TextIO) -> Iterator[Dashboard]:
    """The dashboard's server on a free loopback port, listening when this yields."""
    port = free_port()
    command = [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(state_root),
               "serve", "--http", "--dashboard", "--port", str(port)]  # fmt: skip
    env = get_default_environment()
    with lib.http_server(command, port, "the dashboard server", ROOT, env, errlog) as process:
        log(f"  dashboard server pid {process.pid} on port {port}")
        yield Dashboard(port, process)


class AgentDriver:
    """The agents' driver: this script re-run with `--worker CONFIG` (see agents_main).
    `ready` once every agent is connected and warm, then `go`; `pause` lets each agent finish
    the task it holds and answers `paused`, `resume` resumes; `stop` lets each agent finish
    the task it holds, after which the driver prints one JSON line."""

    def __init__(self, module: str, config: dict[str, Any], errlog: TextIO) -> None:
        self.process = subprocess.Popen(
            lib.rerun(module, config), cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog, text=True,
        )  # fmt: skip
        self.result: dict[str, Any] | None = None

    async def ready(self) -> None:
        assert self.process.stdout is not None
        with anyio.fail_after(AGENTS_DEADLINE_S):
            line = await anyio.to_thread.run_sync(
                self.process.stdout.readline, abandon_on_cancel=True
            )
        if line.strip() != "ready":
            raise BenchError("the agents' driver failed to start; see servers.log (--keep)")

    def go(self) -> None:
        self._send("go")

    async def pause(self) -> None:
        assert self.process.stdout is not None
        self._send("pause")
        with anyio.fail_after(AGENTS_DEADLINE_S):
            line = await anyio.to_thread.run_sync(
                self.process.stdout.readline, abandon_on_cancel=True
            )
        if line.strip() != "paused":
            raise BenchError(f"the agents' driver answered {line.strip()!r} to `pause`")

    def resume(self) -> None:
        self._send("resume")

    def _send(self, word: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()

    async def stop(self) -> dict[str, Any]:
        if self.result is None:
            self._send("stop")
            out, _ = await anyio.to_thread.run_sync(
                lambda: self.process.communicate(timeout=AGENTS_DEADLINE_S)
            )
            if self.process.returncode != 0 or not out.strip():
                raise BenchError(f"the agents' driver exited with {self.process.returncode}")
            self.result = json.loads(out.strip().splitlines()[-1])
        return self.result

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def done_count(state_root: Path) -> int:
    """Tasks done, from the counters the database keeps (a read-only connection)."""
    uri = f"file:{state_root / 'orchestrator.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
        row = db.execute("SELECT tasks FROM queue_counts WHERE bucket = 'done'").fetchone()
    return int(row[0]) if row else 0


# --------------------------------------------------------------------------- the agents


async def agents_main(config: dict[str, Any]) -> None:
    """The driver: one SDK client per agent, each with its own stdio `wvo-mcp serve` on the
    shared state root. Each agent does one untimed cycle first (the client compiles each
    tool's outputSchema check on its first result), then loops until `stop`."""
    env = {"WVO_STATE_ROOT": config["state_root"],
           "WVO_WIP_LIMIT": str(len(config["agents"]))}  # fmt: skip
    records: list[list[Any]] = []
    refusals: Counter[str] = Counter()
    async with contextlib.AsyncExitStack() as stack:
        clients: list[Client] = []
        for agent_id in config["agents"]:
            server = lib.connect(SERVER_ARGS, {**env, "WVO_AGENT_ID": agent_id}, sys.stderr)
            clients.append(await stack.enter_async_context(server))
        warm: list[list[Any]] = []
        for client in clients:
            await cycle(client, random.Random(0), 0.0, 0.0, warm, refusals)
        print("ready", flush=True)
        if (await anyio.to_thread.run_sync(sys.stdin.readline)).strip() != "go":
            raise BenchError("the driver expected `go`")

        low, high = config["hold"]
        running = [anyio.Event()]  # the current gate: set while the agents may claim
        running[0].set()
        idle = [0]
        stopped = [False]

        async def agent(index: int) -> None:
            rng = random.Random(index)
            while True:
                if not running[0].is_set():
                    idle[0] += 1
                    if idle[0] == len(clients):
                        print("paused", flush=True)
                    await running[0].wait()
                    idle[0] -= 1
                if stopped[0]:
                    return
                await cycle(clients[index], rng, low, high, records, refusals)

        async def control() -> None:
            while True:
                line = await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
                if line.strip() == "pause":
                    running[0] = anyio.Event()
                elif line.strip() == "resume":
                    running[0].set()
                else:  # `stop`, or the parent is gone
                    stopped[0] = True
                    running[0].set()
                    return

        cpu = time.process_time()
        async with anyio.create_task_group() as group:
            group.start_soon(control)
            for index in range(len(clients)):
                group.start_soon(agent, index)
        cpu = time.process_time() - cpu
    print(json.dumps({"claims": records, "refusals": refusals, "driver_cpu": cpu}), flush=True)


async def cycle(
    client: Client,
    rng: random.Random,
    low: float,
    high: float,
    records: list[list[Any]],
    refusals: Counter[str],
) -> None:
    """plan_next -> claim_task -> hold (a checkpoint half way) -> plan_update(done). Records
    [task, claim returned, done returned, claim seconds] in time.time() seconds."""
    await call(client, "plan_next", {"limit": 3})
    started = time.perf_counter()
    granted = await call(client, "claim_task", {})
    claimed_at = time.time()
    took = time.perf_counter() - started
    if not granted.get("claimed"):
        refusals[str(granted.get("reason"))] += 1
        await anyio.sleep(0.25)
        return
    task_id, lease = granted["task"]["id"], granted["lease_token"]
    hold = rng.uniform(low, high)
    await anyio.sleep(hold / 2)
    half_way = {"task_id": task_id, "lease_token": lease, "summary": "half way", "progress": 50}
    await call(client, "checkpoint", half_way)
    await anyio.sleep(hold / 2)
    await call(client, "plan_update", lease_update(granted, "done"))
    records.append([task_id, claimed_at, time.time(), took])


# --------------------------------------------------------------------------- viewers


@dataclass
class Viewers:
    """What the SSE viewers saw and did."""

    hello: int = 0
    events: int = 0
    cards: int = 0  # cards received in the stream
    errors: Counter[str] = field(default_factory=Counter)


async def viewer(base: str, secret: str, seen: Viewers) -> None:
    """One dashboard as app.js runs it: the event stream, which carries the changed cards."""
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http:
        stream = http.stream(
            "GET", f"{base}/dashboard/events", headers={"Accept": "text/event-stream"}
        )
        async with stream as answer:
            if answer.status_code != 200:
                seen.errors[f"events {answer.status_code}"] += 1
                return
            kind = ""
            async for line in answer.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "hello":
                    seen.hello += 1
                elif line.startswith("data: ") and kind == "tasks":
                    seen.events += 1
                    seen.cards += len(json.loads(line[6:])["cards"])
                elif not line:
                    kind = ""


# --------------------------------------------------------------------------- browser


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    if not await anyio.Path(CHROMIUM).exists():
        raise BenchError(f"{CHROMIUM} is missing: scripts/setup installs Debian's chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def signed_in(browser: Any, base: str, secret: str, observe: bool = False) -> Any:
    """A new page of its own context (its own cookie), signed in by pasting the token into
    the login form, the live stream open."""
    context = await browser.new_context(base_url=base, viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    if observe:
        await page.add_init_script(OBSERVER)
    answer = await page.goto("/dashboard")
    if answer is None or answer.status != 401:
        raise BenchError(f"expected the sign-in form, got {answer and answer.status}")
    await page.fill("input[name=token]", secret)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#live[data-state=open]", timeout=30_000)
    return page


async def clock_check(page: Any, rounds: int = 5) -> dict[str, float]:
    """The browser's clock against this process's: the browser's stamp minus the midpoint of
    time.time() around the call, and the round trip, best of `rounds`."""
    found = []
    for _ in range(rounds):
        before = time.time()
        stamp = await page.evaluate("performance.timeOrigin + performance.now()")
        after = time.time()
        found.append((after - before, stamp / 1000 - (before + after) / 2))
    rtt, offset = min(found)
    date_gap = await page.evaluate("Date.now() - (performance.timeOrigin + performance.now())")
    return {"offset_ms": 1000 * offset, "rtt_ms": 1000 * rtt, "date_now_gap_ms": date_gap}


# --------------------------------------------------------------------------- the bench


@dataclass
class Config:
    quick: bool
    agents: int
    live_tasks: int
    hold: list[float]  # seconds an agent holds a task: uniform between these
    latency_seconds: float
    grace_seconds: float  # after the agents stopped, for the browser to catch up
    cpu_seconds: float
    settle_seconds: float
    viewers: list[int]
    page_sizes: list[int]
    page_requests: int
    browser_loads: int
    warmup: int


def fmt_ms(values: dict[str, float]) -> str:
    return f"{values['p50']:.0f} / {values['p99']:.0f} / {values['max']:.0f} ms"


class Bench(lib.Bench):
    config: Config
    module = __spec__.name

    def __init__(self, config: Config, work: Path, cache: Path, report: Report) -> None:
        super().__init__(config, work, cache, report)

    # ---- latency and CPU: one agent run

    async def live(self, chosen: list[str]) -> None:
        cfg = self.config
        root = self.fresh("live")
        log(f"live: {cfg.live_tasks:,} independent tasks in a fresh SQLite state root")
        await lib.build_db(root, cfg.live_tasks, independent_task)
        person = cli_token(root, "person", "bench")
        agents = [f"agent-{i:02d}" for i in range(cfg.agents)]
        with dashboard_server(root, self.errlog) as server:
            log(f"live: starting {cfg.agents} agents (SDK client + stdio server each)")
            driver = AgentDriver(
                self.module, {"state_root": str(root), "agents": agents, "hold": cfg.hold},
                self.errlog,
            )  # fmt: skip
            try:
                await driver.ready()
                watched = None
                if "latency" in chosen:
                    watched = await self.latency(server, person, driver)
                else:
                    driver.go()
                if "cpu" in chosen:
                    await self.cpu(server, person, root)
                result = await driver.stop()
            finally:
                driver.kill()
        if watched is not None:
            self.latency_results(watched, result)
        self.report.details["agents"] = {
            "claims": len(result["claims"]),
            "refusals": result["refusals"],
            "driver_cpu_seconds": result["driver_cpu"],
            "claim_call": summary([r[3] for r in result["claims"]]) if result["claims"] else {},
        }

    async def cpu(self, server: Dashboard, secret: str, root: Path) -> None:
        cfg = self.config
        runs: list[dict[str, Any]] = []
        for n in cfg.viewers:
            label = f"{n} dashboard(s)"
            log(f"cpu: {label}, {cfg.cpu_seconds:.0f} s window")
            seen = Viewers()
            async with anyio.create_task_group() as group:
                for _ in range(n):
                    group.start_soon(viewer, server.base, secret, seen)
                with anyio.fail_after(VIEWERS_DEADLINE_S):
                    while seen.hello < n:  # noqa: ASYNC110 - polling a counter the viewers raise
                        await anyio.sleep(0.05)
                await anyio.sleep(cfg.settle_seconds)
                before = (server.cpu(), machine_busy(), time.process_time(), done_count(root))
                events, cards = seen.events, seen.cards
                started = time.monotonic()
                await anyio.sleep(cfg.cpu_seconds)
                seconds = time.monotonic() - started
                after = (server.cpu(), machine_busy(), time.process_time(), done_count(root))
                events, cards = seen.events - events, seen.cards - cards
                group.cancel_scope.cancel()
            if seen.errors:
                raise BenchError(f"dashboard viewers were refused: {dict(seen.errors)}")
            run = {
                "dashboards": n,
                "seconds": seconds,
                "server_cpu_percent": 100 * (after[0] - before[0]) / seconds,
                "machine_busy_percent": 100 * (after[1] - before[1]) / seconds / CPUS,
                "viewers_cpu_percent": 100 * (after[2] - before[2]) / seconds,
                "agents_tasks_per_s": (after[3] - before[3]) / seconds,
                "events_per_s_per_viewer": events / seconds / n if n else 0.0,
                "cards_per_s_per_viewer": cards / seconds / n if n else 0.0,
            }
            runs.append(run)
            self.load(f"cpu_{n}")
            log(f"  server {run['server_cpu_percent']:.1f}% of a core; agents "
                f"{run['agents_tasks_per_s']:.1f} tasks/s; "
                f"{run['cards_per_s_per_viewer']:.1f} cards/s per dashboard; "
                f"machine {run['machine_busy_percent']:.0f}% busy")  # fmt: skip
        self.report.details["cpu"] = runs
        self.cpu_rows(runs)

    def cpu_rows(self, runs: list[dict[str, Any]]) -> None:
        idle = [r for r in runs if r["dashboards"] == 0]
        base = idle[0]["server_cpu_percent"] if idle else 0.0
        lines = ["| dashboards | server CPU (% of a core) | events/s per dashboard "
                 "| cards/s per dashboard | agents tasks/s | machine busy |",
                 "|---|---|---|---|---|---|"]  # fmt: skip
        for r in runs:
            lines.append(
                f"| {r['dashboards']} | {r['server_cpu_percent']:.1f} | "
                f"{r['events_per_s_per_viewer']:.1f} | {r['cards_per_s_per_viewer']:.1f} | "
                f"{r['agents_tasks_per_s']:.1f} | {r['machine_busy_percent']:.0f} % |"
            )
            self.report.info(
                f"dashboard server CPU, {r['dashboards']} dashboard(s)",
                r["server_cpu_percent"],
                "% of a core",
                note=f"agents {r['agents_tasks_per_s']:.1f} tasks/s, machine "
                f"{r['machine_busy_percent']:.0f}% busy",
            )
        viewed = [r for r in runs if r["dashboards"] > 0]
        if len(viewed) >= 2:
            xs = [r["dashboards"] for r in viewed]
            ys = [r["server_cpu_percent"] for r in viewed]
            slope = statistics.linear_regression(xs, ys).slope
            first = viewed[0]["server_cpu_percent"] - base
            self.report.info("  the first dashboard (starts the poller)", first, "% of a core")
            self.report.info(
                "  marginal CPU per dashboard (slope over 1.. dashboards)", slope, "% of a core"
            )
            lines.append("")
            lines.append(f"first dashboard: +{first:.1f} % of a core (the poller); each further "
                         f"dashboard: +{slope:.2f} %")  # fmt: skip
        self.tables.append("### Server CPU per connected dashboard\n\n" + "\n".join(lines))

    async def latency(self, server: Dashboard, secret: str, driver: AgentDriver) -> dict[str, Any]:
        """The browser watches while the agents work, then while they finish their tasks
        (paused); what it saw, for latency_results once the agents' records are in."""
        cfg = self.config
        log(f"latency: browser signed in; {cfg.latency_seconds:.0f} s of claims")
        async with chromium() as browser:
            # Signed in before the agents start, the done column holds the warm-up's cards
            # only, so it is not paged and every done card gets placed.
            page = await signed_in(browser, server.base, secret, observe=True)
            start = time.time()
            driver.go()
            done_next = await page.evaluate("document.getElementById('col-done').dataset.next")
            clock = [await clock_check(page)]
            await anyio.sleep(cfg.latency_seconds)
            log("latency: pausing the agents (each finishes its task)")
            await driver.pause()
            end = time.time()
            await anyio.sleep(cfg.grace_seconds)
            clock.append(await clock_check(page))
            seen = await page.evaluate("window.__wvoSeen")
            left = await page.evaluate(
                "Array.from(document.querySelectorAll('#col-in_progress .card'), c => c.id)"
            )
            columns = await page.evaluate(COLUMNS_SHOWN)
        driver.resume()
        self.load("latency")
        return {"start": start, "end": end, "done_next": done_next, "clock": clock,
                "seen": seen, "left": left, "columns": columns}  # fmt: skip

    def latency_results(self, watched: dict[str, Any], result: dict[str, Any]) -> None:
        start, end, done_next, clock = (watched[k] for k in ("start", "end", "done_next", "clock"))
        seen, left, columns = watched["seen"], watched["left"], watched["columns"]
        claims = [r for r in result["claims"] if start <= r[1] <= end]
        if not claims:
            raise BenchError("no claim was made while the browser watched")
        held, done, streamed = seen["in_progress"], seen["done"], seen["streamed"]
        moved = seen["moved"]  # its card's first column past pending
        lag = [moved[t] / 1000 - c for t, c, _, _ in claims if t in moved]
        stream_lag = [streamed[t] / 1000 - c for t, c, _, _ in claims if t in streamed]
        fetch_lag = [(moved[t] - streamed[t]) / 1000 for t, _, _, _ in claims
                     if t in moved and t in streamed]  # fmt: skip
        missed = [r for r in claims if r[0] not in moved]
        skipped = [r for r in claims if r[0] in moved and r[0] not in held]
        # The done column was loaded with a page of done cards: a card past it is not placed.
        placed = [r for r in claims if not done_next or r[0] < done_next]
        done_lag = [done[t] / 1000 - d for t, _, d, _ in placed if t in done]
        done_missed = [r for r in placed if r[0] not in done]
        stats: dict[str, float] = (
            summary(lag) if lag else {"n": 0, "p50": 0, "p99": 0, "max": 0, "mean": 0}
        )
        details = {
            "claims": len(claims),
            "shown": len(lag),
            "claim_to_card": stats,
            "min_ms": 1000 * min(lag) if lag else None,
            "claim_to_stream": summary(stream_lag) if stream_lag else {},
            "stream_to_card": summary(fetch_lag) if fetch_lag else {},
            "missed": [
                {
                    "task": t,
                    "held_ms": 1000 * (d - c),
                    "seen_in_done": t in done,
                    "streamed_ms": streamed[t] - 1000 * c if t in streamed else None,
                }
                for t, c, d, _ in missed
            ],  # the stream's first naming of the task, after the claim returned
            "straight_to_done": [{"task": t, "held_ms": 1000 * (d - c)} for t, c, d, _ in skipped],
            "done_placeable": len(placed),
            "done_to_card": summary(done_lag) if done_lag else {},
            "done_missed": len(done_missed),
            "done_next": done_next,
            "stream_events": seen["events"],
            "left_in_progress": left,
            "in_progress_count_shown": columns["in_progress"]["count"],
            "columns_at_the_end": columns,
            "clock": clock,
        }
        self.report.details["latency"] = details
        clock_ok = all(abs(c["offset_ms"]) <= c["rtt_ms"] / 2 + 1 for c in clock)
        offsets = ", ".join(f"{c['offset_ms']:.2f}" for c in clock)
        log(f"  {len(claims)} claims; claim -> card {fmt_ms(stats)} (p50/p99/max); "
            f"{len(missed)} never shown; clock offset {offsets} ms")  # fmt: skip
        self.latency_rows(details, clock_ok)

    def latency_rows(self, d: dict[str, Any], clock_ok: bool) -> None:
        s, n = d["claim_to_card"], d["claims"]
        stream, fetch, done = d["claim_to_stream"], d["stream_to_card"], d["done_to_card"]
        agents = self.config.agents
        self.report.info(
            f"claim -> card past pending, p50 ({agents} agents)", s["p50"], "ms",
            note=f"p99 {s['p99']:.0f} ms, max {s['max']:.0f} ms, min {d['min_ms'] or 0:.0f} ms "
            f"over {d['shown']} of {n} claims",
        )  # fmt: skip
        self.report.info("  claim -> card, p99", s["p99"], "ms")
        self.report.info("  claim -> card, max", s["max"], "ms")
        if stream:
            self.report.info(
                "  claim -> the stream names the task, p50", stream["p50"], "ms",
                note=f"p99 {stream['p99']:.0f} ms; stream -> card p50 {fetch['p50']:.0f} ms, "
                f"p99 {fetch['p99']:.0f} ms (parsing and placing the cards)",
            )  # fmt: skip
        missed = len(d["missed"])
        skipped = d["straight_to_done"]
        held = ", ".join(f"{m['held_ms']:.0f}" for m in skipped[:10])
        self.report.absolute("claims never shown past pending", missed, "", missed == 0, "0")
        self.report.info(
            "  of those shown, straight to done (held shorter than a poll)", len(skipped), "",
            note=f"held {held} ms" if skipped else "",
        )  # fmt: skip
        if done:
            self.report.info(
                "done -> card in done, p50", done["p50"], "ms",
                note=f"p99 {done['p99']:.0f} ms over {done['n']} cards that land in the done "
                f"column's loaded part; {d['done_missed']} of {d['done_placeable']} never shown",
            )  # fmt: skip
        left = len(d["left_in_progress"])
        self.report.absolute(
            "cards left in in_progress after the agents stopped", left, "", left == 0, "0",
            note=f"count shown: {d['in_progress_count_shown']}" if left else "",
        )  # fmt: skip
        clock = d["clock"]
        self.report.absolute(
            "browser clock - time.time()", clock[-1]["offset_ms"], "ms", clock_ok,
            "within the round trip", note=f"round trip {clock[-1]['rtt_ms']:.2f} ms; at the "
            f"start {clock[0]['offset_ms']:.2f} ms",
        )  # fmt: skip
        rows = [
            ("claim → card past pending", s),
            ("claim → the stream names the task", stream),
            ("stream → card (placing)", fetch),
            ("done → card in done (loaded part only)", done),
        ]
        lines = ["| figure | n | p50 | p99 | max |", "|---|---|---|---|---|"]
        for label, v in rows:
            if v:
                lines.append(f"| {label} | {v['n']} | {v['p50']:.0f} ms | {v['p99']:.0f} ms | "
                             f"{v['max']:.0f} ms |")  # fmt: skip
        lines += [
            "",
            f"claims while the browser watched: {n}; never shown past pending: {missed}; "
            f"straight to done: {len(skipped)} (held {held or '-'} ms); done cards never shown: "
            f"{d['done_missed']} of {d['done_placeable']}; cards left in in_progress after the "
            f"agents stopped: {left}; clock offset {clock[-1]['offset_ms']:.2f} ms "
            f"(round trip {clock[-1]['rtt_ms']:.2f} ms)",
        ]
        shown = "; ".join(
            f"{status} {c['cards']} of {c['count']}{' (paged)' if c['paged'] else ''}"
            for status, c in d["columns_at_the_end"].items()
            if c["cards"] or c["count"]
        )
        lines.append(f"cards in the page / the column's count at the end: {shown}")
        self.tables.insert(
            0, f"### Claim → card in the browser ({agents} agents)\n\n" + "\n".join(lines)
        )

    # ---- page load at 1k and 100k tasks

    async def page(self) -> None:
        cfg = self.config
        measures: dict[str, lib.Measure] = {}
        sites: dict[str, tuple[Dashboard, str]] = {}
        with contextlib.ExitStack() as stack:
            for total in cfg.page_sizes:
                label = size_label(total)
                root = copy_state(await chain_db(self.cache, total), self.fresh(f"page-{label}"))
                detail = await populate(root)
                secret = cli_token(root, "person", "bench")
                server = stack.enter_context(dashboard_server(root, self.errlog))
                client = stack.enter_context(
                    httpx2.Client(headers={"Authorization": f"Bearer {secret}"}, timeout=60)
                )
                first = client.get(f"{server.base}/dashboard")
                after = re.search(r'id="col-pending" data-status="pending" data-next="([^"]+)"',
                                  first.text)  # fmt: skip
                if first.status_code != 200 or after is None:
                    raise BenchError(f"/dashboard at {label}: {first.status_code} without a next")
                chains = total // lib.CHAIN_LENGTH
                ids = [f"c{(i * chains) // CARD_IDS:06d}.{i % 10:03d}" for i in range(CARD_IDS)]
                routes = {
                    "GET /dashboard": "/dashboard",
                    "GET /dashboard/api/column (pending, next page)":
                        f"/dashboard/api/column?status=pending&after={after[1]}",
                    f"GET /dashboard/api/cards ({CARD_IDS} ids)":
                        f"/dashboard/api/cards?ids={','.join(ids)}",
                    "GET /dashboard/api/tasks/{id}": f"/dashboard/api/tasks/{detail}",
                    "GET /dashboard?q=… (search, ~11 matches)":
                        f"/dashboard?q=Chain+{chains - 1}+step+9",
                }  # fmt: skip
                for name, path in routes.items():
                    measures[f"{name} @ {label}"] = get_timer(client, server.base + path)
                sites[label] = (server, secret)
            log(f"page: {cfg.page_requests} requests of each route at each size, in rotation")
            stats = await self.alternate("page", measures, cfg.page_requests)
            log(f"page: browser navigation timing, {cfg.browser_loads} loads at each size")
            browser_stats = await self.browser_loads(sites)
        self.report.details["page"] = {"requests": stats, "browser": browser_stats}
        self.page_rows(stats, browser_stats)

    async def browser_loads(self, sites: dict[str, tuple[Dashboard, str]]) -> dict[str, Any]:
        found: dict[str, list[dict[str, float]]] = {label: [] for label in sites}
        async with chromium() as browser:
            pages = {label: await signed_in(browser, s.base, secret)
                     for label, (s, secret) in sites.items()}  # fmt: skip
            for _ in range(self.config.browser_loads):
                for label, page in pages.items():
                    await page.goto("/dashboard")
                    await page.wait_for_function(
                        "performance.getEntriesByType('navigation')[0].loadEventEnd > 0"
                    )
                    found[label].append(await page.evaluate(
                        """() => { const n = performance.getEntriesByType('navigation')[0];
                        return { responseStart: n.responseStart, responseEnd: n.responseEnd,
                                 domContentLoaded: n.domContentLoadedEventEnd,
                                 load: n.loadEventEnd, bytes: n.encodedBodySize,
                                 cards: document.querySelectorAll('.card').length }; }"""
                    ))  # fmt: skip
        return {
            label: {key: statistics.median(load[key] for load in loads) for key in loads[0]}
            for label, loads in found.items()
        }

    def page_rows(self, stats: dict[str, dict[str, float]], browser: dict[str, Any]) -> None:
        small, large = (size_label(n) for n in (min(self.config.page_sizes),
                                                max(self.config.page_sizes)))  # fmt: skip
        lines = [f"| request | p50 @ {small} | p50 @ {large} | {large} / {small} |",
                 "|---|---|---|---|"]  # fmt: skip
        names = [key.rsplit(" @ ", 1)[0] for key in stats if key.endswith(f" @ {small}")]
        for name in names:
            a, b = stats[f"{name} @ {small}"], stats[f"{name} @ {large}"]
            ratio = b["p50"] / a["p50"]
            lines.append(f"| {name} | {a['p50']:.2f} ms | {b['p50']:.2f} ms | {ratio:.2f}x |")
            note = f"{small}: {a['p50']:.2f} ms; p99 {b['p99']:.2f} ms over {b['n']}"
            if name == "GET /dashboard":
                self.report.at_most(f"{name} p50 @ {large} vs {small}", b["p50"], "ms",
                                    a["p50"], 1.2, "<= 1.2x", note=note)  # fmt: skip
            else:
                self.report.info(f"{name} p50 @ {large}", b["p50"], "ms", note=note, ratio=ratio)
        lines += ["", f"| browser, /dashboard (median) | @ {small} | @ {large} | "
                      f"{large} / {small} |", "|---|---|---|---|"]  # fmt: skip
        for key in ("responseStart", "responseEnd", "domContentLoaded", "load"):
            a, b = browser[small][key], browser[large][key]
            lines.append(f"| {key} | {a:.1f} ms | {b:.1f} ms | {b / a:.2f}x |")
        a, b = browser[small]["load"], browser[large]["load"]
        self.report.at_most(f"browser load event @ {large} vs {small}", b, "ms", a, 1.2,
                            "<= 1.2x", note=f"{small}: {a:.1f} ms; median of "
                            f"{self.config.browser_loads} loads")  # fmt: skip
        lines.append(f"| page size, cards | {browser[small]['bytes']:.0f} B, "
                     f"{browser[small]['cards']:.0f} | {browser[large]['bytes']:.0f} B, "
                     f"{browser[large]['cards']:.0f} | |")  # fmt: skip
        self.tables.append(f"### Page load, {small} vs {large} tasks\n\n" + "\n".join(lines))


def get_timer(client: httpx2.Client, url: str) -> lib.Measure:
    """A measure: one blocking GET that must answer 200."""

    async def measure() -> float:
        started = time.perf_counter()
        answer = client.get(url)
        took = time.perf_counter() - started
        if answer.status_code != 200:
            raise BenchError(f"GET {url}: {answer.status_code} {answer.text[:200]}")
        return took

    return measure


async def populate(root: Path) -> str:
    """PAGE_DONE tasks done and PAGE_HELD held (by as many agents), in-process, so the done
    column is paged and in_progress has cards; the id of a done task (for its detail)."""
    orchestrator = await Orchestrator.open(Settings(state_root=root, wip_global=100))
    try:
        first = ""
        for _ in range(PAGE_DONE):
            granted = await orchestrator.claim("bench-done")
            assert granted.task is not None and granted.lease_token is not None
            await orchestrator.update_status(
                granted.task.id, Status.DONE, "bench-done", granted.lease_token
            )
            first = first or granted.task.id
        for i in range(PAGE_HELD):
            await orchestrator.claim(f"bench-held-{i}")
        return first
    finally:
        await orchestrator.close()


# --------------------------------------------------------------------------- main


def make_config(args: argparse.Namespace) -> Config:
    if args.quick:
        return Config(
            quick=True,
            agents=args.agents or 8,
            live_tasks=1_000,
            hold=[0.2, 1.5],
            latency_seconds=10,
            grace_seconds=3,
            cpu_seconds=5,
            settle_seconds=1,
            viewers=[0, 1, 10],
            page_sizes=[1_000, 10_000],
            page_requests=10,
            browser_loads=2,
            warmup=2,
        )
    return Config(
        quick=False,
        agents=args.agents or 16,
        live_tasks=6_000,
        hold=[0.2, 1.5],
        latency_seconds=40,
        grace_seconds=5,
        cpu_seconds=20,
        settle_seconds=3,
        viewers=[0, 1, 10, 50],
        page_sizes=[1_000, 100_000],
        page_requests=100,
        browser_loads=5,
        warmup=5,
    )


SECTIONS = ("latency", "cpu", "page")


def main(argv: list[str] | None = None) -> int:
    parser = lib.arguments(__doc__ or "")
    parser.add_argument("--agents", type=int, help="agents working (default 16; quick 8)")
    lib.only_option(parser, SECTIONS)
    lib.common_options(parser, cache_shared_with="scripts.bench.core")
    args = parser.parse_args(argv)
    if args.worker:
        anyio.run(agents_main, json.loads(args.worker))
        return 0
    chosen = lib.chosen_sections(parser, args, SECTIONS)
    config = make_config(args)
    work, cache = lib.workspace(args, "wvo-bench-dashboard-")
    bench = Bench(config, work, cache, Report())

    def body() -> None:
        if "latency" in chosen or "cpu" in chosen:
            anyio.run(bench.live, chosen)
        if "page" in chosen:
            anyio.run(bench.page)

    agents = (f"{config.agents} agents: SDK clients in one driver process, each with its own "
              "stdio `wvo-mcp serve` on the dashboard's SQLite state root")  # fmt: skip
    return lib.run_bench(
        bench, "wvo-mcp dashboard benchmark", body, args,
        chosen, lambda: {"agents_setup": agents},
        heading=f"## wvo-mcp dashboard benchmark\n\n{agents}\n",
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
