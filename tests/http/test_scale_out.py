"""Beyond one machine: four `serve --http` processes (each with its own state folder, as on
four hosts) share one PostgreSQL; sixteen agents with their own tokens drain 800 tasks
sending each call to any server, while servers are SIGKILLed and PostgreSQL crashes and
restarts. Checked from the database afterwards: every task done exactly once, every
acknowledged `done` kept, WIP limits never exceeded (event log replay), fencing epochs only
grow, and the monitor acted from one process at a time."""

import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from psycopg.rows import dict_row

from tests.conftest import CLI_TIMEOUT_SECONDS, PROTOCOL_MODES, ROOT
from tests.http.conftest import MCP_HEADERS, free_port, initialize_body, server_env
from tests.listening import until_listening
from tests.pgcluster import Cluster
from wvo_mcp.config import Settings
from wvo_mcp.orchestrator import Orchestrator

pytestmark = [pytest.mark.anyio, pytest.mark.process]

TASKS = 800  # each fault below meets agents mid-task on every server
AGENTS = 16
SERVERS = 4
WIP_GLOBAL = 12
TASKS_PER_CONNECTION = 4  # then the agent moves to another server, mid-task
LEASE_SECONDS = 4  # a claim whose answer was lost to a crash frees its task this soon
DRAIN_DEADLINE_S = 300.0
Answer = tuple[bool, dict[str, Any] | str]


@dataclass
class Server:
    port: int
    state_root: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> None:
        log = (self.state_root.parent / f"server-{self.port}.log").open("ab")
        command = [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(self.state_root),
                   "serve", "--http", "--port", str(self.port)]  # fmt: skip
        with log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=server_env(**self.env), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip

    def wait_ready(self) -> None:
        assert self.process is not None
        until_listening(self.process, self.port, lambda: f"server on {self.port}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=CLI_TIMEOUT_SECONDS)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=CLI_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def servers(tmp_path: Path, url: str) -> Iterator[list[Server]]:
    env = {
        "WVO_DATABASE_URL": url,
        "WVO_WIP_LIMIT": str(WIP_GLOBAL),
        "WVO_WIP_PER_AGENT": "1",
        "WVO_RETRY_BASE_SECONDS": "0",
        "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": "300",
        "WVO_OTEL_ENABLED": "0",
    }
    started = [Server(free_port(), tmp_path / f"host{i}", env) for i in range(SERVERS)]
    try:
        for server in started:
            server.state_root.mkdir(parents=True)
            server.start()
        for server in started:
            server.wait_ready()
        yield started
    finally:
        for server in started:
            server.stop()


@dataclass
class Ledger:
    """What the agents were told: only a successful answer counts as acknowledged."""

    acked_done: set[str] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)
    finished: anyio.Event = field(default_factory=anyio.Event)


class HttpAgent:
    """One agent with its own token, connected to one server at a time: every few tasks,
    and after any failure, it moves to another server picked at random, between a claim and
    its `done` (the transport is stateless)."""

    def __init__(self, name: str, secret: str, fleet: list[Server], seed: int) -> None:
        self.name = name
        self.secret = secret
        self.fleet = fleet
        self.rng = random.Random(seed)
        self.mode = PROTOCOL_MODES[seed % len(PROTOCOL_MODES)]

    @asynccontextmanager
    async def connected(self) -> AsyncIterator[Callable[..., Awaitable[Answer]]]:
        """`call(tool, **arguments)` on a server picked at random: (True, answer) or
        (False, error text). After a transport failure every call fails: reconnect."""
        url = self.rng.choice(self.fleet).url
        broken: list[str] = []

        async def call(tool: str, **arguments: Any) -> Answer:
            if broken:
                return False, broken[0]
            assert client is not None
            try:
                result = await client.call_tool(tool, arguments)
            except Exception as exc:  # a killed server, a reset connection
                broken.append(f"transport: {type(exc).__name__}")
                return False, broken[0]
            if result.is_error:
                return False, result.content[0].text if result.content else "error"
            assert result.structured_content is not None
            return True, result.structured_content

        client: Client | None = None
        async with AsyncExitStack() as stack:
            # Outermost: closing a dead connection fails too, and that is not news.
            stack.push_async_exit(_quietly)
            try:
                http = await stack.enter_async_context(
                    httpx2.AsyncClient(
                        headers={"Authorization": f"Bearer {self.secret}"},
                        timeout=httpx2.Timeout(10, read=60),
                    )
                )
                client = await stack.enter_async_context(
                    Client(
                        streamable_http_client(url, http_client=http),
                        mode=self.mode,
                        read_timeout_seconds=60,
                    )
                )
            except Exception as exc:  # the server is down: every call says so
                broken.append(f"transport: {type(exc).__name__}")
            yield call

    async def call(self, tool: str, **arguments: Any) -> Answer:
        answer: Answer = (False, "transport: could not connect")
        async with self.connected() as call:
            answer = await call(tool, **arguments)
        return answer


async def _quietly(*exc: object) -> bool:
    return exc[0] is not None and issubclass(exc[0], Exception)  # type: ignore[arg-type]


async def work(agent: HttpAgent, ledger: Ledger) -> None:
    pending: tuple[str, str] | None = None  # a claimed task whose `done` is not yet kept
    tries = 0
    while not ledger.finished.is_set():
        async with agent.connected() as call:
            for _ in range(TASKS_PER_CONNECTION):
                if pending is not None:
                    task_id, lease = pending
                    ok, answer = await call(
                        "plan_update", task_id=task_id, lease_token=lease, status="done"
                    )
                    tries += 1
                    if ok:
                        ledger.acked_done.add(task_id)
                    else:
                        ledger.errors["done failed"] += 1
                    # Refused (the lease expired meanwhile: the task goes round again), or
                    # asked five times: give it up. An unknown outcome (the server died), or
                    # one refused at its wait bound with nothing done (Overloaded: its lease
                    # still runs), is asked again, on another server.
                    said = str(answer)
                    again = said.startswith("transport") or "Overloaded:" in said
                    if ok or not again or tries >= 5:
                        pending, tries = None, 0
                    else:
                        break
                ok, claim = await call("claim_task", lease_seconds=LEASE_SECONDS)
                if not (ok and isinstance(claim, dict) and claim["claimed"]):
                    ledger.errors["claim refused" if ok else "claim failed"] += 1
                    break
                pending = claim["task"]["id"], claim["lease_token"]
            else:
                continue  # on to another server, `done` of the last claim first
        await anyio.sleep(0.02)  # back off before asking again (a poll, not a wait)


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def done_count(url: str) -> int:
    return int(query(url, "SELECT count(*) AS n FROM tasks WHERE status = 'done'")[0]["n"])


async def make_tokens(url: str, tmp_path: Path) -> tuple[dict[str, str], str, str]:
    settings = Settings(state_root=tmp_path / "cli", database_url=url, otel_enabled=False)
    orchestrator = await Orchestrator.open(settings)
    try:
        agents = {}
        for i in range(AGENTS):
            issued = await orchestrator.token_add("agent", f"agent-{i:02d}", by="person:test")
            agents[f"agent-{i:02d}"] = issued.secret
        planner = (await orchestrator.token_add("agent", "planner", by="person:test")).secret
        person = (await orchestrator.token_add("person", "alice", by="person:test")).secret
        return agents, planner, person
    finally:
        await orchestrator.close()


async def wait_until(predicate: Any, what: str, deadline_s: float = DRAIN_DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not await anyio.to_thread.run_sync(predicate):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await anyio.sleep(0.1)


@pytest.mark.slow
async def test_four_http_servers_on_one_postgresql_drain_800_tasks_through_crashes(
    pg_cluster: Cluster, pg_migrated: Callable[[str], str], tmp_path: Path
) -> None:
    url = pg_migrated("scale_out")
    secrets, planner_secret, person_secret = await make_tokens(url, tmp_path)
    ledger = Ledger()
    with servers(tmp_path, url) as fleet:
        # Every tenth task waits on the one before it: releases run across servers too.
        specs = [
            {"id": f"T{i:04d}", "title": f"task {i}", "epic_id": f"E{i % 4}"}
            | ({"depends_on": [f"T{i - 1:04d}"]} if i % 10 == 9 else {})
            for i in range(TASKS)
        ]
        ok, created = await HttpAgent("planner", planner_secret, fleet, 0).call(
            "task_create", tasks=specs
        )
        assert ok, created

        async with anyio.create_task_group() as tg:
            for i, (name, secret) in enumerate(secrets.items()):
                tg.start_soon(work, HttpAgent(name, secret, fleet, seed=i), ledger)

            # Faults while the agents work: two servers SIGKILLed (and brought back on
            # their ports, as a supervisor would), and PostgreSQL crashing.
            await wait_until(lambda: done_count(url) >= TASKS // 5, "a fifth done")
            fleet[1].kill()
            await anyio.to_thread.run_sync(fleet[1].start)
            await anyio.to_thread.run_sync(fleet[1].wait_ready)
            await wait_until(lambda: done_count(url) >= TASKS * 9 // 20, "nine twentieths done")
            await anyio.to_thread.run_sync(pg_cluster.restart, "immediate")
            await wait_until(lambda: done_count(url) >= TASKS * 7 // 10, "seven tenths done")
            fleet[2].kill()
            await anyio.to_thread.run_sync(fleet[2].start)
            await anyio.to_thread.run_sync(fleet[2].wait_ready)
            await wait_until(lambda: done_count(url) == TASKS, "every task done")
            ledger.finished.set()

        # Refused calls change nothing, here on PostgreSQL too.
        before = query(url, "SELECT count(*) AS n, max(id) AS last FROM task_events")
        async with httpx2.AsyncClient() as http:
            anonymous = await http.post(
                fleet[0].url, content=initialize_body(), headers=MCP_HEADERS
            )
        assert anonymous.status_code == 401
        rogue = HttpAgent("agent-00", secrets["agent-00"], fleet, seed=7)
        ok, said = await rogue.call("task_requeue", task_id="T0001")
        assert not ok and "person" in str(said), said
        ok, said = await HttpAgent("alice", person_secret, fleet, seed=8).call("claim_task")
        assert not ok, said
        assert query(url, "SELECT count(*) AS n, max(id) AS last FROM task_events") == before

    # ---- what the database says -------------------------------------------------------
    statuses = query(url, "SELECT status, count(*) AS n FROM tasks GROUP BY status")
    assert {r["status"]: r["n"] for r in statuses} == {"done": TASKS}
    done_events = query(
        url, "SELECT task_id, count(*) AS n FROM task_events WHERE to_status = 'done' GROUP BY 1"
    )
    assert len(done_events) == TASKS and all(r["n"] == 1 for r in done_events), "done twice"
    assert ledger.acked_done, "no done was acknowledged"
    # Every acknowledged done is kept (the whole table is done, and each once, above).
    events = query(
        url,
        "SELECT id, task_id, actor, kind, from_status, to_status, lease_epoch "
        "FROM task_events ORDER BY id",
    )
    in_progress: dict[str, str] = {}  # task -> holder
    epochs: dict[str, int] = defaultdict(int)
    most = 0
    for e in events:
        entering = e["to_status"] == "in_progress" and e["from_status"] != "in_progress"
        leaving = e["from_status"] == "in_progress" and e["to_status"] != "in_progress"
        if leaving:
            in_progress.pop(e["task_id"], None)
        if entering:
            held = [t for t, holder in in_progress.items() if holder == e["actor"]]
            assert not held, f"{e['actor']} held {held} when it claimed {e['task_id']}"
            in_progress[e["task_id"]] = e["actor"]
            most = max(most, len(in_progress))
            assert most <= WIP_GLOBAL, f"{most} tasks in progress at event {e['id']}"
        if e["kind"] == "claimed":
            assert e["lease_epoch"] > epochs[e["task_id"]], f"epoch went back: {e}"
            epochs[e["task_id"]] = e["lease_epoch"]
    assert most == WIP_GLOBAL, f"the WIP limit was never reached ({most}): no contention"
    # One monitor at a time: ticks in commit order never go back a term, and each term
    # has one leader.
    ticks = query(url, "SELECT leader, term FROM health_snapshots ORDER BY id")
    assert ticks, "the monitor never ticked"
    terms = [t["term"] for t in ticks]
    assert terms == sorted(terms), "an old leader ticked after a newer one"
    leaders: dict[int, set[str]] = defaultdict(set)
    for t in ticks:
        leaders[t["term"]].add(t["leader"])
    assert all(len(names) == 1 for names in leaders.values()), leaders
