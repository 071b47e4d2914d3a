"""wvo-mcp side by side with its nearest peers: one client, one task graph, one run.

The peers, pinned in scripts/bench/peer_servers/ and installed by this script into its cache
folder (never into the repository):
- `@allpepper/task-orchestrator` (TypeScript on Bun and bun:sqlite), with Bun from npm too (the
  `bun` package, whose binary comes from its platform package): `npm ci`;
- `orc-hestrator-server` (Python on SQLite, FastMCP of the 1.x SDK), in a venv of its own,
  since its dependencies are not ours.
wvo-mcp is the `wvo-mcp` beside this Python (`<venv>/bin/wvo-mcp serve`) with its default
settings (on Linux warm start: the client starts a relay, the warm process forks the server);
--cold adds it with WVO_WARM_START=0, --wvo-command other builds (a second checkout's
`.venv/bin/wvo-mcp`) to the same run.

One client drives every server: this venv's `mcp` SDK, `Client` over stdio. Every system gets
the same generated graph (chains of 100 tasks, each waiting on the one before: 1% ready),
seeded before any clock: wvo-mcp with `wvo-mcp import`, the peers through their own MCP tools
into a state cached per version and size. Per system and size, in blocks that alternate
between the systems (one block each per round, the order rotating), p50 and p90 of:
- a cycle, an agent's loop without the work: find the next task, claim it, mark it done;
- each step of the cycle on its own (`claim` is the claim alone);
- a loop step, the calls per task of the loop each system prescribes: for wvo-mcp one
  `plan_update(done, claim_next=true)`, which finishes the task held and claims the next
  (README, "The loop"); for the peers, who have no shorter loop, their cycle;
- a ping, the protocol's no-op round trip, for reference;
and per system, a fresh process each sample, alternating: start to `tools/list` answered, and
the RSS of the process the client started (with warm start, the relay) a second later.
Ratios are the peer's figure ÷ wvo-mcp's: above 1 means wvo-mcp is faster (or smaller).
It is a benchmark: nothing here passes or fails.

    python -m scripts.bench.peers                                 # 1k and 10k tasks
    python -m scripts.bench.peers --quick                         # a smoke run
    python -m scripts.bench.peers --markdown peers.md --json peers.json
    python -m scripts.bench.peers --only wvo,task-orchestrator \\
        --wvo-command main=/path/to/main/.venv/bin/wvo-mcp        # two wvo-mcp builds
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from scripts.bench import lib, startup
from scripts.bench.core import parse_size, proc_status_kb
from scripts.bench.lib import BenchError, log, size_label, summary
from tests.integration import test_warm_start as warm_test
from wvo_mcp.config import WARM_BY_DEFAULT

PINS = Path(__file__).with_name("peer_servers")
SYSTEMS = ("wvo", "task-orchestrator", "orc-hestrator")
BASE = "wvo"  # every ratio is against this tree's wvo-mcp
STEPS = ("next", "claim", "done")
MEASURES = ("cycle", *STEPS, "loop", "ping")
WRAPPERS = {"sh", "bash", "dash", "env"}  # a launcher, not the server: its child is measured
SETTLE_S = 1.0  # idle RSS is read this long after tools/list is answered
SEED_CONCURRENCY = 8  # calls in flight while seeding a peer through its tools
CYCLES = {
    "wvo": "`plan_next` → `claim_task` (no task id: it claims the best ready task) → "
    "`plan_update(done)` with the lease token",
    "task-orchestrator": "`get_next_task` → `advance` (NEW → ACTIVE, with the version) → "
    "`advance` (ACTIVE → CLOSED, which unblocks the next task of the chain)",
    "orc-hestrator": "`get_next_item` → `advance_item(start)` (queue → work) → "
    "`advance_item(complete)` (work → done)",
}

LOOPS = {
    "wvo": "`plan_update(done, claim_next=true)`: the task held done, the next one claimed",
    "task-orchestrator": "its cycle (no call finishes one task and starts the next)",
    "orc-hestrator": "its cycle (no call finishes one task and starts the next)",
}

warnings.filterwarnings("ignore", message="ping is removed")  # legacy mode, as every client


@dataclass
class Config:
    sizes: list[int]
    rounds: int
    cycles: int
    starts: int
    warmup: int
    quick: bool
    systems: list[str]
    wvo_commands: dict[str, str]  # label -> the wvo-mcp executable
    cold: bool = False  # also this tree's wvo-mcp with WVO_WARM_START=0, as `wvo-cold`


# --------------------------------------------------------------------------- the graph


def graph(total: int) -> list[dict[str, Any]]:
    rng = random.Random(total)
    return [lib.chain_task(i, rng) for i in range(total)]


def level(task: dict[str, Any], levels: Sequence[str]) -> str:
    """A peer's priority for `task`, from the WSJF inputs wvo-mcp ranks it by (highest first)."""
    score = int(task["business_value"] + task["time_criticality"] + task["risk_reduction"])  # 3..60
    return levels[min(len(levels) - 1, (60 - score) * len(levels) // 58)]


# --------------------------------------------------------------------------- calls


class Stopwatch:
    """Seconds between successive laps, by name."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self.last
        self.last = now


async def text_call(client: Client, tool: str, arguments: dict[str, Any]) -> Any:
    """A peer's answer: JSON in the first text block (neither peer gives structured content)."""
    result = await client.call_tool(tool, arguments)
    text = getattr(result.content[0], "text", "") if result.content else ""
    if result.is_error:
        raise BenchError(f"{tool} failed: {text[:500]}")
    try:
        return json.loads(text)
    except ValueError:
        raise BenchError(f"{tool} answered no JSON: {text[:500]}") from None


async def concurrently(
    work: Callable[[dict[str, Any]], Awaitable[None]], items: Sequence[dict[str, Any]]
) -> None:
    limiter = anyio.CapacityLimiter(SEED_CONCURRENCY)

    async def one(item: dict[str, Any]) -> None:
        async with limiter:
            await work(item)

    async with anyio.create_task_group() as group:
        for item in items:
            group.start_soon(one, item)


def run(argv: Sequence[str | Path], errlog: Any, cwd: Path | None = None) -> str:
    """Run a command to its end (output into the log); its stdout. BenchError on failure."""
    try:
        done = subprocess.run(
            [str(a) for a in argv], cwd=cwd, stdout=subprocess.PIPE, stderr=errlog, text=True
        )
    except OSError as exc:
        raise BenchError(f"cannot run {argv[0]}: {exc}") from None
    if done.returncode != 0:
        raise BenchError(f"{' '.join(map(str, argv))} failed ({done.returncode}); see servers.log")
    return done.stdout.strip()


def installed(root: Path, install: Callable[[Path], None]) -> Path:
    """`root`, installed by `install(root)` unless a finished install is there already. Built
    in place (venvs and npm's bin links hold absolute paths); a marker says it finished."""
    marker = root / ".installed"
    if marker.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    install(root)
    marker.write_text("")
    return root


def digest(*paths: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()[:10]


# --------------------------------------------------------------------------- the systems


class System:
    """One server under test: how to install, seed, start it, and run its cycle."""

    kind: str

    def __init__(self, name: str) -> None:
        self.name = name

    def install(self, cache: Path, errlog: Any) -> None:
        """Make the server runnable (nothing to do by default)."""

    def versions(self) -> dict[str, str]:
        raise NotImplementedError

    def command(self, state: Path) -> tuple[str, list[str], dict[str, str]]:
        """The executable, its arguments and its environment, serving `state` over stdio."""
        raise NotImplementedError

    async def seed(self, client: Client, tasks: Sequence[dict[str, Any]]) -> None:
        """Create `tasks` and their dependencies through the server's own tools."""
        raise NotImplementedError

    async def cycle(self, client: Client) -> dict[str, float]:
        """One next → claim → done; the seconds of each step."""
        raise NotImplementedError

    async def loop(self, client: Client) -> float:
        """Seconds of one task's calls in the loop this system prescribes."""
        return sum((await self.cycle(client)).values())

    async def end_loop(self, client: Client) -> None:
        """Let go of what the loop holds (untimed), so a cycle starts from nothing held."""


class Wvo(System):
    kind = "wvo"

    def __init__(self, name: str, executable: str, warm: bool | None = None) -> None:
        super().__init__(name)
        self.executable = executable
        # None: the build's default (this tree's: warm start on Linux, where the client
        # starts a relay to a server the warm process forks); True or False: WVO_WARM_START.
        self.warm = warm
        self.held: dict[str, Any] | None = None  # the loop's claim
        if not os.access(executable, os.X_OK):
            raise BenchError(f"{name}: {executable} is not an executable wvo-mcp")

    def versions(self) -> dict[str, str]:
        version = run([self.executable, "--version"], subprocess.DEVNULL)
        found = {"wvo-mcp": version.removeprefix("wvo-mcp ")}
        checkout = Path(self.executable).resolve().parents[2]  # <checkout>/.venv/bin/wvo-mcp
        with contextlib.suppress(BenchError):
            commit = run(
                ["git", "-C", checkout, "rev-parse", "--short", "HEAD"], subprocess.DEVNULL
            )
            found["commit"] = commit
        return found

    def command(self, state: Path) -> tuple[str, list[str], dict[str, str]]:
        env = {"WVO_STATE_ROOT": str(state / "state"), "WVO_WORKSPACE_ROOT": str(state)}
        env["WVO_WARM_START"] = {None: "", True: "1", False: "0"}[self.warm]
        return self.executable, ["serve"], env

    @property
    def starts_warm(self) -> bool:
        """Whether a first start leaves a warm process for the next (this tree's default)."""
        return self.warm or (self.warm is None and self.name == BASE and WARM_BY_DEFAULT)

    def seed_import(self, state: Path, roadmap: Path, total: int) -> float:
        return lib.wvo_import(
            state / "state", roadmap, f"imported {total} tasks", command=[self.executable]
        )

    async def cycle(self, client: Client) -> dict[str, float]:
        watch = Stopwatch()
        await lib.call(client, "plan_next", {})
        watch.lap("next")
        granted = await lib.call(client, "claim_task", {})
        watch.lap("claim")
        if not granted.get("claimed"):
            raise BenchError(f"{self.name}: claim_task refused: {granted.get('message')}")
        await lib.call(client, "plan_update", lib.lease_update(granted, "done"))
        watch.lap("done")
        return watch.laps

    async def loop(self, client: Client) -> float:
        held = self.held or await lib.call(client, "claim_task", {})  # once, as an agent does
        if not held.get("claimed"):
            raise BenchError(f"{self.name}: claim_task refused: {held.get('message')}")
        started = time.perf_counter()
        answer = await lib.call(
            client, "plan_update", {**lib.lease_update(held, "done"), "claim_next": True}
        )
        took = time.perf_counter() - started
        self.held = answer.get("next")
        return took

    async def end_loop(self, client: Client) -> None:
        if self.held and self.held.get("claimed"):
            await lib.call(client, "plan_update", lib.lease_update(self.held, "done"))
        self.held = None


class TaskOrchestrator(System):
    kind = "task-orchestrator"
    PACKAGE = "@allpepper/task-orchestrator"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.root = Path()

    def install(self, cache: Path, errlog: Any) -> None:
        if shutil.which("npm") is None:
            raise BenchError(
                "no npm here: install Node.js, or leave task-orchestrator out (--only)"
            )
        files = [PINS / "package.json", PINS / "package-lock.json"]

        def npm_ci(root: Path) -> None:
            for file in files:
                shutil.copyfile(file, root / file.name)
            log(f"installing {self.PACKAGE} and Bun with npm ci into {root}")
            run(["npm", "ci", "--no-audit", "--no-fund"], errlog, cwd=root)

        self.root = installed(cache / f"npm-{digest(*files)}", npm_ci)

    def package(self, name: str) -> str:
        data = json.loads((self.root / "node_modules" / name / "package.json").read_text())
        return str(data["version"])

    def versions(self) -> dict[str, str]:
        return {
            self.PACKAGE: self.package(self.PACKAGE),
            "bun": self.package("bun"),
            "@modelcontextprotocol/sdk": self.package("@modelcontextprotocol/sdk"),
        }

    def command(self, state: Path) -> tuple[str, list[str], dict[str, str]]:
        modules = self.root / "node_modules"
        server = modules / self.PACKAGE / "src" / "server.ts"
        # --stdio: its default also serves HTTP on port 6100 and probes for another instance.
        env = {"TASK_ORCHESTRATOR_HOME": str(state), "HOME": str(state)}
        return str(modules / "bun" / "bin" / "bun.exe"), ["run", str(server), "--stdio"], env

    async def seed(self, client: Client, tasks: Sequence[dict[str, Any]]) -> None:
        ids: dict[str, str] = {}

        async def create(task: dict[str, Any]) -> None:
            answer = await checked(client, "manage_container", {
                "operation": "create", "containerType": "task", "title": task["title"],
                "summary": task["title"], "priority": level(task, ("HIGH", "MEDIUM", "LOW")),
                "complexity": task["complexity"],
            })  # fmt: skip
            ids[task["id"]] = answer["data"]["task"]["id"]

        async def depend(task: dict[str, Any]) -> None:
            for blocker in task.get("depends_on", []):
                await checked(client, "manage_dependency", {
                    "operation": "create", "fromId": ids[blocker], "toId": ids[task["id"]],
                    "type": "BLOCKS",
                })  # fmt: skip

        await concurrently(create, tasks)
        await concurrently(depend, tasks)

    async def cycle(self, client: Client) -> dict[str, float]:
        watch = Stopwatch()
        found = await checked(client, "get_next_task", {})
        watch.lap("next")
        task = found.get("data")
        if not task:
            raise BenchError(f"{self.name}: get_next_task found nothing: {found}")
        started = await checked(
            client,
            "advance",
            {"containerType": "task", "id": task["id"], "version": task["version"]},
        )
        watch.lap("claim")
        version = started["data"]["task"]["version"]
        await checked(
            client, "advance", {"containerType": "task", "id": task["id"], "version": version}
        )
        watch.lap("done")
        return watch.laps


async def checked(client: Client, tool: str, arguments: dict[str, Any]) -> Any:
    """A task-orchestrator answer, which says `success` (errors are answers too)."""
    answer = await text_call(client, tool, arguments)
    if not answer.get("success"):
        raise BenchError(f"{tool} refused: {json.dumps(answer)[:500]}")
    return answer


class OrcHestrator(System):
    kind = "orc-hestrator"
    PACKAGE = "orc-hestrator-server"
    BATCH = 500  # items per manage_items call while seeding

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.venv = Path()

    def install(self, cache: Path, errlog: Any) -> None:
        pins = PINS / "orc-hestrator.txt"

        def venv(root: Path) -> None:
            log(f"installing {self.PACKAGE} into a venv of its own in {root}")
            run([sys.executable, "-m", "venv", root], errlog)
            run([root / "bin" / "python", "-m", "pip", "install", "-q", "-r", pins], errlog)

        self.venv = installed(cache / f"orc-hestrator-{digest(pins)}", venv)

    def versions(self) -> dict[str, str]:
        probe = "import importlib.metadata as m; print(m.version('%s'), m.version('mcp'))"
        mine, sdk = run([self.venv / "bin" / "python", "-c", probe % self.PACKAGE], None).split()
        return {self.PACKAGE: mine, "mcp (Python SDK)": sdk}

    def command(self, state: Path) -> tuple[str, list[str], dict[str, str]]:
        env = {"ORC_DB": str(state / "tasks.db"), "HOME": str(state)}
        return str(self.venv / "bin" / "orc"), [], env

    async def seed(self, client: Client, tasks: Sequence[dict[str, Any]]) -> None:
        ids: dict[str, str] = {}
        levels = ("critical", "high", "medium", "low")
        for start in range(0, len(tasks), self.BATCH):
            batch = tasks[start : start + self.BATCH]
            items = [
                {"title": t["title"], "priority": level(t, levels), "complexity": t["complexity"]}
                for t in batch
            ]
            answer = await orc_call(
                client, "manage_items", {"operation": "create", "items_json": json.dumps(items)}
            )
            if answer.get("failed") or len(answer["items"]) != len(batch):
                raise BenchError(f"manage_items created {answer.get('created')} of {len(batch)}")
            ids.update(
                zip((t["id"] for t in batch), (i["id"] for i in answer["items"]), strict=True)
            )
        chains: dict[str, list[str]] = {}
        for task in tasks:
            chains.setdefault(task["id"].split(".")[0], []).append(ids[task["id"]])

        async def link(chain: dict[str, Any]) -> None:
            arguments = {"operation": "pattern", "item_ids": ",".join(chain["ids"])}
            await orc_call(client, "manage_dependencies", {**arguments, "pattern": "linear"})

        await concurrently(link, [{"ids": chain} for chain in chains.values()])

    async def cycle(self, client: Client) -> dict[str, float]:
        watch = Stopwatch()
        item = await orc_call(client, "get_next_item", {})
        watch.lap("next")
        if "id" not in item:
            raise BenchError(f"{self.name}: get_next_item found nothing: {item}")
        await orc_call(client, "advance_item", {"item_id": item["id"], "trigger": "start"})
        watch.lap("claim")
        await orc_call(client, "advance_item", {"item_id": item["id"], "trigger": "complete"})
        watch.lap("done")
        return watch.laps


async def orc_call(client: Client, tool: str, arguments: dict[str, Any]) -> Any:
    """An orc-hestrator answer, which has an `error` key when refused."""
    answer = await text_call(client, tool, arguments)
    if isinstance(answer, dict) and "error" in answer:
        raise BenchError(f"{tool} refused: {json.dumps(answer)[:500]}")
    return answer


def systems(config: Config) -> list[System]:
    found: list[System] = []
    for kind in config.systems:
        if kind == "wvo":
            found += [Wvo(label, path) for label, path in config.wvo_commands.items()]
            if config.cold:
                found.append(Wvo(f"{BASE}-cold", config.wvo_commands[BASE], warm=False))
        elif kind == "task-orchestrator":
            found.append(TaskOrchestrator(kind))
        else:
            found.append(OrcHestrator(kind))
    return found


# --------------------------------------------------------------------------- processes


def server_process(client_pid: int, before: set[int]) -> int:
    """The server a client just started: its new child, or through a launcher (a shell,
    `env`) the one process the launcher runs."""
    new = [pid for pid in lib.children(client_pid) if pid not in before]
    if len(new) != 1:
        raise BenchError(f"expected one new server process, found {new}")
    pid = new[0]
    while lib.proc_file(pid, "comm").strip() in WRAPPERS and len(lib.children(pid)) == 1:
        pid = lib.children(pid)[0]
    return pid


def rotated(items: Sequence[System], by: int) -> list[System]:
    by %= len(items)
    return [*items[by:], *items[:by]]


# --------------------------------------------------------------------------- the bench


class PeerBench(lib.Bench):
    module = "scripts.bench.peers"
    config: Config

    def __init__(self, config: Config, work: Path, cache: Path, report: lib.Report) -> None:
        super().__init__(config, work, cache, report)
        self.systems = systems(config)
        self.results: dict[str, dict[str, dict[str, dict[str, float]]]] = {}  # size/system/measure
        self.starts: dict[str, dict[str, dict[str, float]]] = {}  # system -> start_ms, rss_mb
        self.versions: dict[str, dict[str, str]] = {}
        # size -> system -> seconds to seed (untimed): wvo-mcp's import, a peer's tool calls
        # when its seeded state was built in this run, else the copy of the cached one
        self.seeding: dict[str, dict[str, float]] = {}

    @contextlib.asynccontextmanager
    async def serve(self, system: System, state: Path) -> AsyncIterator[Client]:
        executable, args, env = system.command(state)
        async with lib.connect(args, env, self.errlog, command=executable, cwd=state) as client:
            yield client

    async def seeded(self, system: System, size: int, tasks: list[dict[str, Any]]) -> Path:
        """A state folder of `system` holding `tasks`, private to this run."""
        state = self.fresh(f"{system.name}-{size_label(size)}")
        started = time.perf_counter()
        if isinstance(system, Wvo):
            roadmap = self.work / f"roadmap-{size_label(size)}.json"
            if not roadmap.exists():
                roadmap.write_text(json.dumps({"version": 1, "tasks": tasks}) + "\n")
            system.seed_import(state, roadmap, size)
        else:
            shutil.rmtree(state)
            shutil.copytree(await self.peer_seed(system, size, tasks), state)
        took = time.perf_counter() - started
        self.seeding.setdefault(size_label(size), {}).setdefault(system.name, took)
        return state

    async def peer_seed(self, system: System, size: int, tasks: list[dict[str, Any]]) -> Path:
        """The cached state of a peer seeded with `tasks` through its tools (built if missing)."""
        version = "-".join(system.versions().values())
        root = (
            self.cache
            / f"seeded-{system.kind}-{version}-{size_label(size)}-g{lib.GENERATOR_VERSION}"
        )
        if (root / ".seeded").exists():
            return root
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        log(f"seeding {system.name} with {size:,} tasks through its tools into {root}")
        started = time.perf_counter()
        async with self.serve(system, root) as client:
            await system.seed(client, tasks)
        took = time.perf_counter() - started
        log(f"  seeded in {took:.1f} s")
        self.seeding.setdefault(size_label(size), {})[system.name] = took
        (root / ".seeded").write_text("")
        return root

    async def run(self) -> None:
        try:
            await self.run_sizes()
        finally:
            for state in self.work.rglob("run/warm.sock"):
                for pid in warm_test.warm_pids(state.parent.parent):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)

    async def run_sizes(self) -> None:
        for system in self.systems:
            system.install(self.cache, self.errlog)
            self.versions[system.name] = system.versions()
            log(f"{system.name}: {self.versions[system.name]}")
        for index, size in enumerate(self.config.sizes):
            tasks = graph(size)
            states = {s.name: await self.seeded(s, size, tasks) for s in self.systems}
            if index == 0:
                await self.measure_starts(states)
            await self.measure_size(size, states)

    async def measure_starts(self, states: dict[str, Path]) -> None:
        """Start to tools/list and idle RSS, a fresh process each sample, systems alternating."""
        log(f"start-up: {self.config.starts} samples per system")
        seconds: dict[str, list[float]] = {s.name: [] for s in self.systems}
        rss: dict[str, list[float]] = {s.name: [] for s in self.systems}
        for system in self.systems:  # untimed: the first start reads its files from disk
            await self.start_once(system, states[system.name])
            if isinstance(system, Wvo) and system.starts_warm:  # and the warm process
                startup.warm_listening(states[system.name] / "state")
        for sample in range(self.config.starts):
            for system in rotated(self.systems, sample):
                took, kb = await self.start_once(system, states[system.name])
                seconds[system.name].append(took)
                rss[system.name].append(kb / 1024)
        self.load("start")
        for system in self.systems:
            self.starts[system.name] = {
                "start_ms": summary(seconds[system.name]),
                "rss_mb": summary([mb / 1000 for mb in rss[system.name]]),  # summary: s -> ms
            }

    async def start_once(self, system: System, state: Path) -> tuple[float, int]:
        before = set(lib.children(os.getpid()))
        started = time.perf_counter()
        async with self.serve(system, state) as client:
            await client.list_tools()
            took = time.perf_counter() - started
            pid = server_process(os.getpid(), before)
            await anyio.sleep(SETTLE_S)  # idle: what the process holds once it has settled
            return took, proc_status_kb(pid, "VmRSS")

    async def measure_size(self, size: int, states: dict[str, Path]) -> None:
        cfg = self.config
        label = size_label(size)
        log(f"{label} tasks: {cfg.rounds} rounds x {cfg.cycles} cycles and pings per system")
        samples: dict[str, dict[str, list[float]]] = {
            s.name: {m: [] for m in MEASURES} for s in self.systems
        }
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                s.name: await stack.enter_async_context(self.serve(s, states[s.name]))
                for s in self.systems
            }
            for system in self.systems:
                for _ in range(cfg.warmup):
                    await system.cycle(clients[system.name])
                    await clients[system.name].send_ping()
            for index in range(cfg.rounds):
                for system in rotated(self.systems, index):
                    await self.block(system, clients[system.name], samples[system.name])
            self.load(label)
        self.results[label] = {
            name: {measure: summary(values) for measure, values in by_measure.items()}
            for name, by_measure in samples.items()
        }

    async def block(self, system: System, client: Client, samples: dict[str, list[float]]) -> None:
        """One block: cycles, then pings; the first of each (a process waking up) dropped."""
        for i in range(self.config.cycles + 1):
            laps = await system.cycle(client)
            if i:
                samples["cycle"].append(sum(laps.values()))
                for step in STEPS:
                    samples[step].append(laps[step])
        for i in range(self.config.cycles + 1):
            took = await system.loop(client)
            if i:
                samples["loop"].append(took)
        await system.end_loop(client)
        for i in range(self.config.cycles + 1):
            started = time.perf_counter()
            await client.send_ping()
            if i:
                samples["ping"].append(time.perf_counter() - started)

    # ----------------------------------------------------------------------- the tables

    def figures(self) -> list[tuple[str, str, dict[str, dict[str, float]]]]:
        """(measure, size, system -> summary) rows, in table order."""
        rows = [
            (measure, size, {name: found[measure] for name, found in by_system.items()})
            for size, by_system in self.results.items()
            for measure in MEASURES
        ]
        first = size_label(self.config.sizes[0])
        for key, measure in (("start_ms", "start → tools/list"), ("rss_mb", "idle RSS (MB)")):
            rows.append((measure, first, {name: s[key] for name, s in self.starts.items()}))
        return rows

    def tabulate(self) -> None:
        names = [s.name for s in self.systems]
        peers = [name for name in names if name != BASE]
        figures, ratios = [], []
        for measure, size, by_system in self.figures():
            figures.append([measure, size, *(pair(by_system[n], "{:.2f}") for n in names)])
            base = by_system[BASE]
            ratios.append(
                [measure, size, *(pair(ratio(by_system[n], base), "{:.2f}x") for n in peers)]
            )
            unit = "MB" if "RSS" in measure else "ms"
            for name in names:
                self.report.info(
                    f"{measure} {size} {name} p50", by_system[name]["p50"], unit,
                    ratio=None if name == BASE else by_system[name]["p50"] / base["p50"],
                )  # fmt: skip
        note = "ms unless said; p50 / p90"
        self.table("Per system (p50 / p90)", ["measure", "tasks", *names], figures, note)
        if peers:
            note = f"each system's figure ÷ {BASE}'s: above 1 means {BASE} is faster (or smaller)"
            self.table(f"Ratios to {BASE} (p50 / p90)", ["measure", "tasks", *peers], ratios, note)

    def extra(self) -> dict[str, Any]:
        return {
            "versions": self.versions,
            "cycles": {s.name: CYCLES[s.kind] for s in self.systems},
            "loops": {s.name: LOOPS[s.kind] for s in self.systems},
            "seeding_seconds": self.seeding,
            "results": self.results,
            "starts": self.starts,
        }

    def markdown(self, argv: Sequence[str]) -> str:
        lines = [
            "## Against the peers",
            "",
            f"`python -m scripts.bench.peers {' '.join(argv)}`".replace(" `", "`"),
            "",
            f"Load average (1, 5, 15 min) at the end of each part: {loads(self.report.details)}.",
            "",
            "| system | versions | a cycle | a loop step |",
            "|---|---|---|---|",
        ]
        for system in self.systems:
            found = ", ".join(f"{k} {v}" for k, v in self.versions[system.name].items())
            lines.append(
                f"| {system.name} | {found} | {CYCLES[system.kind]} | {LOOPS[system.kind]} |"
            )
        return "\n".join([*lines, "", "\n\n".join(self.tables), ""])


def pair(values: dict[str, float], form: str) -> str:
    return f"{form.format(values['p50'])} / {form.format(values['p90'])}"


def ratio(values: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    return {q: values[q] / base[q] for q in ("p50", "p90")}


def loads(details: dict[str, Any]) -> str:
    return "; ".join(
        f"{part} {' '.join(f'{x:.2f}' for x in value)}"
        for part, value in details.get("loadavg", {}).items()
    )


# --------------------------------------------------------------------------- command line


def wvo_commands(values: Sequence[str]) -> dict[str, str]:
    """`[LABEL=]PATH` options as label -> path, after this tree's wvo-mcp as `wvo`."""
    found = {BASE: str(Path(sys.executable).parent / "wvo-mcp")}
    for index, value in enumerate(values, start=2):
        label, _, path = value.partition("=") if "=" in value else ("", "", value)
        label = label or f"{BASE}-{index}"
        if label in found or label in SYSTEMS:
            raise ValueError(f"--wvo-command: the label {label!r} is taken; name it LABEL=PATH")
        found[label] = path
    return found


def config_of(args: Any, parser: Any) -> Config:
    chosen = args.only or list(SYSTEMS)
    unknown = set(chosen) - set(SYSTEMS)
    if unknown or BASE not in chosen:
        parser.error(f"--only takes {', '.join(SYSTEMS)}, and {BASE} (the base of every ratio)")
    if args.quick:
        config = Config([200], 2, 5, 2, 1, True, [], {})
    else:
        config = Config(args.sizes, args.rounds, args.cycles, args.starts, 3, False, [], {})
    config.systems = [kind for kind in SYSTEMS if kind in chosen]
    config.cold = args.cold
    try:
        config.wvo_commands = wvo_commands(args.wvo_command)
    except ValueError as exc:
        parser.error(str(exc))
    for label, path in config.wvo_commands.items():
        if not os.access(path, os.X_OK):
            parser.error(f"{label}: {path} is not an executable wvo-mcp")
    needed = config.warmup + 2 * config.rounds * (config.cycles + 2)
    if any(size < needed for size in config.sizes):
        parser.error(f"each size must be at least {needed} tasks: every cycle completes one")
    return config


def main(argv: list[str] | None = None) -> int:
    parser = lib.arguments(__doc__ or "")
    parser.add_argument("--sizes", type=lib.comma_list(parse_size), default=[1_000, 10_000],
                        help="task counts, comma-separated (default 1k,10k)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5, help="blocks per system (default 5)")
    parser.add_argument("--cycles", type=int, default=50, help="cycles per block (default 50)")
    parser.add_argument("--starts", type=int, default=5, help="start-up samples (default 5)")
    parser.add_argument("--only", type=lib.comma_list(str),
                        help=f"systems, comma-separated: {','.join(SYSTEMS)}")  # fmt: skip
    parser.add_argument("--wvo-command", action="append", default=[], metavar="[LABEL=]PATH",
                        help="another wvo-mcp to run beside this tree's (repeatable)")  # fmt: skip
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "wvo-bench",
                        help="installed peers and seeded states (default %(default)s)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--markdown", type=Path, help="also write the tables as Markdown here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--cold", action="store_true",
                        help="also this tree's wvo-mcp with warm start off (wvo-cold)")  # fmt: skip
    args = parser.parse_args(argv)
    config = config_of(args, parser)
    args.cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="wvo-bench-peers-"))
    bench = PeerBench(config, work, args.cache, lib.Report())

    def body() -> None:
        anyio.run(bench.run)
        bench.tabulate()

    code = lib.run_bench(
        bench, "wvo-mcp against its peers", body, args, extra=bench.extra, heading=True
    )
    if code == 0 and args.markdown:
        args.markdown.write_text(bench.markdown(sys.argv[1:] if argv is None else argv))
        log(f"wrote {args.markdown}")
    return code


if __name__ == "__main__":
    sys.exit(main())
