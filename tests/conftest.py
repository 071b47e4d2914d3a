import contextlib
import dataclasses
import functools
import gc
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import (
    AsyncExitStack,
    ExitStack,
    asynccontextmanager,
    closing,
    contextmanager,
    nullcontext,
)
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import hypothesis
import pytest
from mcp import Client
from mcp.client import stdio
from mcp.client.stdio import StdioServerParameters
from mcp.server import MCPServer

from tests.pgcluster import Cluster, ClusterUnavailable
from wvo_mcp import backups, telemetry
from wvo_mcp.cli import warm_relay
from wvo_mcp.config import Settings
from wvo_mcp.edge.server import build_server

ROOT = Path(__file__).resolve().parents[1]

# Warm start is on by default, and a first start on a state folder leaves a warm process
# behind for WVO_WARM_IDLE_SECONDS: one per test's folder would pile up. The servers tests
# start are cold unless a test is about warm start (tests/integration/test_warm_start.py);
# the SDK's stdio client passes only the variables it lists on to a server.
# Nor the user's shared warm process (one per build, for every state folder): it would
# serve the next tests' folders; tests/integration/test_warm_shared.py gives it its own.
os.environ.setdefault("WVO_WARM_START", "0")
os.environ.setdefault("WVO_WARM_SHARED", "0")
stdio.DEFAULT_INHERITED_ENV_VARS += ["WVO_WARM_START", "WVO_WARM_SHARED"]


def fresh_env(env: Mapping[str, str], *, warm: bool = False) -> dict[str, str]:
    """`env` for a process a test starts with an environment of its own, which this
    process's switches above do not reach: cold, and never the user's shared warm process,
    which would outlive the test in the real runtime folder; `warm`: a `serve` over stdio it
    starts is forked by this test process's own shared warm process (`shared_warm`), as a
    user's is on Linux. `env` has the last word."""
    switches = shared_warm() if warm else {"WVO_WARM_SHARED": "0", "WVO_WARM_START": "0"}
    return {**switches, **env}


# Hypothesis's deadline and its too-slow health check judge the machine's speed, not the
# code: a timing assertion in disguise, which fails on a busy machine. Off for every test.
hypothesis.settings.register_profile(
    "wvo", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile("wvo")

PROTOCOL_MODES = ["legacy", "2026-07-28"]


CLI_TIMEOUT_SECONDS = 60
# How long a wait for an event (a server listening, say) goes on before the test calls it a
# hang: no start takes this long on a busy machine, and a test waits for the event itself,
# never for a guess at how long it takes.
HANG_SECONDS = 600.0
POLL_DEADLINE_SECONDS = HANG_SECONDS  # polling for a state that comes: only a hang outlasts it


def wvo(state_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`wvo-mcp --state-root STATE ARGS...` run in this process, seen as its process would be
    (tests/cli_in_process.py); a hang fails the test. wvo_process runs the real process."""
    # Imported on first use: a session that never runs the CLI skips its imports.
    from tests import cli_in_process

    argv = ["--state-root", str(state_root), *args]
    try:
        return cli_in_process.run(argv, cwd=ROOT, timeout=CLI_TIMEOUT_SECONDS)
    except cli_in_process.Timeout as exc:
        pytest.fail(f"`wvo-mcp {' '.join(args)}` did not return; stderr: {exc.stderr!r}")


def wvo_process(state_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m wvo_mcp --state-root STATE ARGS...`, for tests where the process is
    the point (what `serve` leaves on stdout, exit codes of the real process); a hang fails
    the test."""
    command = [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(state_root), *args]
    try:
        return subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`wvo-mcp {' '.join(args)}` did not exit; stderr: {exc.stderr!r}")


def serve_once(
    env: dict[str, str], cwd: Path = ROOT, python_flags: tuple[str, ...] = ("-P",)
) -> subprocess.CompletedProcess[str]:
    """`wvo-mcp serve` with no client (stdin at EOF), for start-up refusals: nothing but
    `env` in its environment; a hang fails the test."""
    return subprocess.run(
        [sys.executable, *python_flags, "-m", "wvo_mcp", "serve"],
        cwd=cwd,
        env=fresh_env({"PATH": "/usr/bin:/bin", **env}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `postgres` every test that asks for the session's cluster by name. The store
    params that reach it through getfixturevalue carry the mark themselves."""
    for item in items:
        if "pg_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster for the session (tests/pgcluster.py). A cluster that
    cannot start fails every PostgreSQL test; only WVO_TEST_POSTGRES=skip, set on purpose,
    skips them instead."""
    if os.environ.get("WVO_TEST_POSTGRES") == "skip":
        pytest.skip("WVO_TEST_POSTGRES=skip: the PostgreSQL tests were asked to be skipped")
    try:
        with Cluster.start() as cluster:
            yield cluster
    except ClusterUnavailable as exc:
        pytest.fail(
            f"cannot start a throwaway PostgreSQL cluster: {exc} (scripts/setup installs it; "
            "WVO_TEST_POSTGRES=skip skips these tests on purpose)"
        )


PG_TEMPLATE = "wvo_migrated"


def migrate(url: str) -> None:
    """Bring a PostgreSQL database to the newest schema by the store's own path: opening it."""
    from wvo_mcp.store.postgres import PostgresDatabase

    async def main() -> None:
        await (await PostgresDatabase(url).open()).close()

    anyio.run(main)


@pytest.fixture(scope="session")
def pg_migrated(pg_cluster: Cluster) -> Callable[[str], str]:
    """Makes a new database the store has already migrated, named `<prefix>_<random>`; its
    URL. Each is a copy of one database migrated once per session, so no test runs the
    migrations again. Tests about migrating start from `create_database` instead."""
    pg_cluster.create_database(PG_TEMPLATE)
    migrate(pg_cluster.url(PG_TEMPLATE))

    def new(prefix: str) -> str:
        return pg_cluster.create_database(f"{prefix}_{uuid.uuid4().hex[:16]}", PG_TEMPLATE)

    return new


@dataclass
class Store:
    """Where a test's servers keep their state: the SQLite file in the state folder, or a
    fresh PostgreSQL database (`env` goes into every server's environment)."""

    name: str
    state_root: Path
    url: str | None = None

    @property
    def env(self) -> dict[str, str]:
        return {} if self.url is None else {"WVO_DATABASE_URL": self.url}

    def rows(self, sql: str) -> list[dict[str, Any]]:
        """A read-only query (plain SQL both engines speak), rows as dicts."""
        if self.url is None:
            with open_db(self.state_root) as db:
                return [dict(row) for row in db.execute(sql).fetchall()]
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self.url, row_factory=dict_row) as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, state_root: Path) -> Store:
    if request.param == "sqlite":
        return Store("sqlite", state_root)
    return Store("postgres", state_root, request.getfixturevalue("pg_migrated")("t"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def state_root(tmp_path: Path) -> Path:
    return tmp_path / "state"


OURS = "WVO_TEST_CLIENT"  # in a server's environment: the test process that started it


@functools.cache
def warm_runtime() -> Path:
    """This test process's own runtime folder (XDG_RUNTIME_DIR), where the shared warm
    process that forks its servers listens (ended with the session)."""
    # Short, as /run/user/UID is: a socket's path is at most 107 bytes.
    return Path(tempfile.mkdtemp(prefix="xdg-", dir="/tmp"))


def shared_warm() -> dict[str, str]:
    """The switches that have a `serve` over stdio forked by this test process's own shared
    warm process (`warm_runtime`, ended with the session), its first start cold. A cold start
    imports for a second of CPU, and the suite starts servers by the thousand."""
    return {"WVO_WARM_START": "1", "WVO_WARM_SHARED": "1", "XDG_RUNTIME_DIR": str(warm_runtime()),
            OURS: str(os.getpid())}  # fmt: skip


def server_params(state_root: Path, **env: object) -> StdioServerParameters:
    """A real `python -m wvo_mcp` server process on `state_root`, served as a user's is on
    Linux (`shared_warm`); `env` has the last word (WVO_WARM_START=0: cold)."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-P", "-m", "wvo_mcp", "serve"],
        cwd=str(ROOT),
        env={
            **shared_warm(),
            "WVO_STATE_ROOT": str(state_root),
            **{k: str(v) for k, v in env.items()},
        },
    )


BUSY_TRIES = 40  # claims refused as busy in a row before a test gives up


class Agent:
    """An MCP client with helpers that fail loudly."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, arguments)
        text = result.content[0].text if result.content else ""
        assert not result.is_error, f"{tool} failed: {text}"
        assert result.structured_content is not None
        return result.structured_content

    async def claim(self, **arguments: Any) -> dict[str, Any]:
        """claim_task, made again as a client should while it is refused as busy (past
        capacity, nothing done: a loaded test machine can get there), when it says."""
        for _ in range(BUSY_TRIES):
            claim = await self.call("claim_task", **arguments)
            if claim["claimed"] or claim["reason"] != "busy":
                return claim
            await anyio.sleep(claim["retry_after_s"])  # the server's word, not a guess
        raise AssertionError(f"claim_task still busy after {BUSY_TRIES} tries: {claim}")

    async def error(self, tool: str, **arguments: Any) -> str:
        """Call a tool that must be refused; return the error text."""
        result = await self.client.call_tool(tool, arguments)
        text = result.content[0].text if result.content else ""
        assert result.is_error, f"{tool} should have been refused, got {result.structured_content}"
        return text


def table_rows(page: dict[str, Any]) -> list[dict[str, Any]]:
    """task_list's table (columns and rows) as one dict per task."""
    return [dict(zip(page["columns"], row, strict=True)) for row in page["rows"]]


@contextmanager
def serving(state_root: Path, **env: object) -> Iterator[MCPServer[Any]]:
    """`build_server` as `serve` builds it in a process whose environment is `env`: the
    settings it would read, its workspace "." the child's cwd (ROOT), the SQLite servers
    lock held (restore waits for it). Not here: `serve`'s start-up refusals (serve_once
    tests them), stdout and stderr, signals, and the default agent name's pid."""
    read_elsewhere = [k for k in env if not k.startswith("WVO_")]
    # OTEL_* is read by the OpenTelemetry SDK from its process's own environment.
    assert not read_elsewhere, f"{read_elsewhere} would not reach a server here: process=True"
    settings = Settings.from_env(
        {"WVO_STATE_ROOT": str(state_root), **{k: str(v) for k, v in env.items()}}
    )
    settings = dataclasses.replace(
        settings,
        log_level=settings.log_level or "warning",
        workspace_root=ROOT / settings.workspace_root,
    )
    lock = nullcontext() if settings.database_url else backups.servers_lock(settings.db_path)
    # The global OpenTelemetry providers can be set once per process: a server in this
    # one must not take them for the whole session (tests of the SDK's spans use processes).
    installed, telemetry._installed = telemetry._installed, True
    try:
        with lock:
            yield build_server(settings)
    finally:
        telemetry._installed = installed
        # The lifespan freezes the heap it finds (a server process's own, at start); here
        # that is the session's, whose garbage would then never be collected.
        gc.unfreeze()


@asynccontextmanager
async def connect(
    state_root: Path, mode: str = "legacy", *, process: bool = False, **env: object
) -> AsyncIterator[Agent]:
    """A client of a server on `state_root` whose environment is `env`: built in this
    process, or with `process=True` a real `python -m wvo_mcp serve` over stdio, for the
    tests where the process is the point (they are marked `process`)."""
    with ExitStack() as stack:
        if process:
            assert _marked_process, "a test that starts server processes is marked `process`"
            server: MCPServer[Any] | StdioServerParameters = server_params(state_root, **env)
        else:
            server = stack.enter_context(serving(state_root, **env))
        async with Client(server, mode=mode, read_timeout_seconds=30) as client:
            yield Agent(client)


@pytest.fixture(scope="session", autouse=True)
def _no_warm_process_outlives_the_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A server a test starts with an environment of its own (not the SDK's, not this
    process's) starts warm by default: whatever warm process one left is stopped here."""
    yield
    if warm_runtime.cache_info().currsize:
        end_warm(warm_runtime())
    base = str(tmp_path_factory.getbasetemp()).encode()
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"from wvo_mcp.cli import warm" in w for w in argv) and any(base in w for w in argv):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGTERM)


def end_warm(runtime: Path) -> None:
    """Every warm process listening under `runtime` (a runtime folder of a test's own), and
    the servers it forked, killed and gone; the folder removed."""
    for sock in runtime.glob("wvo-mcp/*/warm.sock"):
        pid = warm_pid(sock)
        if pid is None:
            continue
        with contextlib.suppress(OSError):
            for child in children_of(pid):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda pid=pid: not alive(pid), "the shared warm process gone")
    shutil.rmtree(runtime, ignore_errors=True)


def warm_pid(sock: Path) -> int | None:
    """The pid of the process listening on `sock`, None when none does."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect(str(sock))
        except OSError:
            return None
        return warm_relay.peer_uid(conn)[0]


_marked_process = False


@pytest.fixture(autouse=True)
def _process_marker(request: pytest.FixtureRequest) -> None:
    global _marked_process
    _marked_process = request.node.get_closest_marker("process") is not None


@asynccontextmanager
async def agents(
    state_root: Path, *names: str, process: bool = False, **env: object
) -> AsyncIterator[dict[str, Agent]]:
    """One server per agent (a server acts as one agent), started together."""
    async with AsyncExitStack() as stack:
        found: dict[str, Agent] = {}
        for name in names:
            found[name] = await stack.enter_async_context(
                connect(state_root, process=process, WVO_AGENT_ID=name, **env)
            )
        yield found


async def claim_when_possible(agent: Agent, **args: Any) -> dict[str, Any]:
    """Poll claim_task until it grants a lease; fail after POLL_DEADLINE_SECONDS."""
    deadline = time.monotonic() + POLL_DEADLINE_SECONDS
    while True:
        result = await agent.call("claim_task", **args)
        if result["claimed"]:
            return result
        assert time.monotonic() < deadline, f"no claim within the deadline: {result['message']}"
        await anyio.sleep(0.05)


@contextmanager
def open_db(state_root: Path, *, writable: bool = False) -> Iterator[sqlite3.Connection]:
    """The database opened with the stdlib driver (read-only unless asked), rows by name.
    Tests write through it only to break things on purpose, as a bug or a person would."""
    uri = f"{(state_root / 'orchestrator.db').as_uri()}?mode={'rw' if writable else 'ro'}"
    with closing(sqlite3.connect(uri, uri=True, timeout=10, isolation_level=None)) as conn:
        conn.row_factory = sqlite3.Row
        yield conn


def server_pid(agent_id: str) -> int:
    """The pid of our own `python -m wvo_mcp serve` server, from the agent id a server gives a
    caller that has no WVO_AGENT_ID (`<client name>-<server pid>`)."""
    pid = int(agent_id.rsplit("-", 1)[1])
    # Only ever signal our own server: our child, or on Linux the child of ours that serves
    # it (cli/handle.py), or one a warm process forked for our client (its environment is
    # the client's, `server_params`'s mark of this process in it).
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert any(b"wvo_mcp" in word for word in cmdline), cmdline
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    lineage = [parent_of(pid), parent_of(parent_of(pid))]
    mark = f"{OURS}={os.getpid()}".encode()
    assert os.getpid() in lineage or mark in environ, (pid, lineage)
    return pid


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def children_of(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # gone, or going as it is read
        return False
    return state != "Z"


def wait_for(check: Any, what: str) -> Any:
    deadline = time.monotonic() + POLL_DEADLINE_SECONDS
    while not (found := check()):
        assert time.monotonic() < deadline, f"not within the deadline: {what}"
        time.sleep(0.02)
    return found
