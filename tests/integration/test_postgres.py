"""The CLI and a stdio server on PostgreSQL (WVO_DATABASE_URL), and what happens when the
database goes away: a clean error that says nothing was kept, never a hang, and service
again once it is back."""

import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.abc
import h11
import pytest
import yaml

from tests.conftest import CLI_TIMEOUT_SECONDS, ROOT, connect, fresh_env
from tests.pgcluster import Cluster
from wvo_mcp.config import Settings
from wvo_mcp.errors import StoreUnavailable
from wvo_mcp.models import ClaimResult, TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import claims
from wvo_mcp.store import Lock, Tx, postgres

pytestmark = pytest.mark.anyio
ROADMAP = ROOT / "state" / "roadmap.yaml"


@pytest.fixture
def database_url(pg_migrated: Callable[[str], str]) -> str:
    return pg_migrated("cli")


def cli(state_root: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(state_root), *args],
        cwd=ROOT,
        env=fresh_env(
            {"PATH": "/usr/bin:/bin", "WVO_DATABASE_URL": url, "WVO_OTEL_ENABLED": "0"}, warm=True
        ),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )


def test_import_status_health_export_work_on_postgresql(
    database_url: str, state_root: Path, tmp_path: Path
) -> None:
    imported = cli(state_root, database_url, "import", str(ROADMAP))
    assert imported.returncode == 0, imported.stderr
    total = len(yaml.safe_load(ROADMAP.read_text())["tasks"])
    assert f"imported {total} tasks" in imported.stdout
    # People see where the store is, never its password.
    assert "postgresql://wvo@127.0.0.1" in imported.stdout

    status = cli(state_root, database_url, "status")
    assert status.returncode == 0, status.stderr
    assert f"pending {total}" in status.stdout

    health = cli(state_root, database_url, "health", "--json")
    assert health.returncode == 0, health.stderr

    out = tmp_path / "exported.yaml"
    exported = cli(state_root, database_url, "export", str(out))
    assert exported.returncode == 0, exported.stderr
    ids = {t["id"] for t in yaml.safe_load(out.read_text())["tasks"]}
    assert ids == {t["id"] for t in yaml.safe_load(ROADMAP.read_text())["tasks"]}
    assert not (state_root / "orchestrator.db").exists(), "SQLite was used instead"


def test_backup_and_restore_point_at_postgresqls_own_tools(
    database_url: str, state_root: Path
) -> None:
    for command in (["backup"], ["restore", "anything.db"]):
        refused = cli(state_root, database_url, *command)
        assert refused.returncode == 2, refused.stdout
        assert "pg_dump" in refused.stderr and "docs/postgres.md" in refused.stderr
    assert not (state_root / "backups").exists()


def test_a_bad_database_url_is_refused_at_start(state_root: Path) -> None:
    for url, says in [
        ("mysql://x@y/z", "must be a postgresql:// URL"),
        ("postgresql://x@y:notaport/z", "must be a postgresql:// URL"),
    ]:
        refused = cli(state_root, url, "status")
        assert refused.returncode == 2
        assert says in refused.stderr and "WVO_DATABASE_URL" in refused.stderr


@pytest.mark.process
async def test_a_stdio_server_runs_the_loop_on_postgresql(
    database_url: str, state_root: Path
) -> None:
    env = {"WVO_DATABASE_URL": database_url, "WVO_OTEL_ENABLED": "0", "WVO_AGENT_ID": "pg-1"}
    async with connect(state_root, process=True, **env) as agent:
        await agent.call("task_create", tasks=[{"id": "T1", "title": "one"}])
        claim = await agent.call("claim_task")
        assert claim["claimed"] and claim["task"]["id"] == "T1"
        done = await agent.call(
            "plan_update", task_id="T1", lease_token=claim["lease_token"], status="done"
        )
        assert done["status"] == "done"
    async with connect(state_root, process=True, **env) as agent:
        assert (await agent.call("task_get", task_id="T1"))["status"] == "done"


@pytest.mark.postgres
async def test_a_database_that_goes_away_is_a_clean_error_then_service_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "RECONNECT_DEADLINE_S", 1.0)
    with Cluster.start() as pg:  # its own cluster: this test stops it
        url = pg.create_database("gone")
        settings = Settings(state_root=tmp_path / "state", database_url=url, otel_enabled=False)
        orchestrator = await Orchestrator.open(settings)
        try:
            await orchestrator.create_tasks([TaskSpec(id="T1", title="one")], actor="planner")
            pg.stop("immediate")
            with pytest.raises(StoreUnavailable, match="nothing of this call was kept"):
                await orchestrator.claim("agent-1")
            pg.start_server()
            # While the pool connects again a claim may find no connection within its wait
            # bound: refused as busy, nothing done, it is made again when it says.
            claim = await orchestrator.claim("agent-1")
            for _ in range(40):
                if claim.claimed or claim.reason != "busy" or claim.retry_after_s is None:
                    break
                await anyio.sleep(claim.retry_after_s)  # as the refusal asks of a client
                claim = await orchestrator.claim("agent-1")
            assert claim.claimed and claim.task is not None and claim.task.id == "T1"
            # The refused claim kept nothing: this is the task's first grant.
            assert claim.attempt == 1
            detail = await orchestrator.get_task("T1")
            assert [e.kind for e in detail.recent_events].count("claimed") == 1
            assert detail.lease_epoch == 1
        finally:
            await orchestrator.close()


def away_soon(url: str) -> dict[str, str]:
    """A server on `url` that rides out a lost database for 1 s, not 15, before it answers
    503: these tests stop the database to be answered so, and wait for nothing else."""
    return {"WVO_DATABASE_URL": url, "WVO_DATABASE_RECONNECT_SECONDS": "1"}


def agents_headers(state_root: Path, url: str, *names: str) -> dict[str, dict[str, str]]:
    """Each named agent's request headers over HTTP, its token made by the CLI."""
    from tests.http.conftest import MCP_HEADERS

    headers = {}
    for name in names:
        made = cli(state_root, url, "tokens", "add", "--role", "agent", "--name", name)
        assert made.returncode == 0, made.stderr
        headers[name] = {**MCP_HEADERS, "Authorization": f"Bearer {made.stdout.strip()}"}
    return headers


@pytest.mark.process
@pytest.mark.postgres
async def test_an_http_server_answers_503_not_401_while_the_database_is_away(
    tmp_path: Path,
) -> None:
    """A token cannot be checked without the database: the client is told to retry (503,
    Retry-After), not that its token is bad; once the database is back, it is served."""
    import httpx2

    from tests.http.conftest import http_server, initialize_body

    with Cluster.start() as pg:  # its own cluster: this test stops it
        url = pg.create_database("away")
        state_root = tmp_path / "state"
        headers = agents_headers(state_root, url, "a1", "a2")
        with http_server(state_root, WVO_OTEL_ENABLED="0", **away_soon(url)) as served:
            async with httpx2.AsyncClient(timeout=60) as http:
                ok = await http.post(served.url, content=initialize_body(), headers=headers["a1"])
                assert ok.status_code == 200, ok.text
                pg.stop("immediate")
                # a2's token has not been checked yet, so no server has it cached.
                away = await http.post(served.url, content=initialize_body(), headers=headers["a2"])
                assert away.status_code == 503, (away.status_code, away.text)
                assert away.headers["Retry-After"] == "5"
                said = away.json()["error_description"]
                assert "cannot be reached" in said
                # Said to a caller not yet known: nothing of the database, its host or pool.
                assert said == (
                    "the database cannot be reached now, so this request's token could not be "
                    "checked; nothing was done. Retry after 5 s, or through another server of "
                    "the same deployment"
                ), said
                pg.start_server()
                back = await http.post(served.url, content=initialize_body(), headers=headers["a2"])
                assert back.status_code == 200, back.text


def _exchange(
    sock: socket.socket, http: h11.Connection, url: str, headers: dict[str, str], body: str
) -> tuple[int, dict[str, str], bytes]:
    """One POST on a kept connection, as a fleet agent sends it: (status, headers, body)."""
    parts = urlsplit(url)
    sent = [("Host", parts.netloc), *headers.items(), ("Content-Length", str(len(body)))]
    sock.sendall(
        http.send(h11.Request(method="POST", target=parts.path, headers=sent))
        + http.send(h11.Data(data=body.encode()))
        + http.send(h11.EndOfMessage())
    )
    status, got, chunks = 0, {}, []
    while True:
        event = http.next_event()
        if event is h11.NEED_DATA:
            http.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
            got = {k.decode().lower(): v.decode() for k, v in event.headers}
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            http.start_next_cycle()  # raises if the server said it closes the connection
            return status, got, b"".join(chunks)
        else:
            raise AssertionError(f"the server closed the connection: {event!r}")


@pytest.mark.process
@pytest.mark.postgres
async def test_a_503_for_a_token_the_database_cannot_check_keeps_the_connection_quietly(
    tmp_path: Path,
) -> None:
    """A token check the database cannot answer is a 503 on a connection that stays open,
    with no traceback logged: a fleet past capacity meets this refusal often, and a new
    connection and a formatted traceback each time cost the servers more than the calls
    they serve (issue 73)."""
    from tests.http.conftest import http_server, initialize_body

    with Cluster.start() as pg:  # its own cluster: this test stops it
        url = pg.create_database("away")
        state_root = tmp_path / "state"
        given = agents_headers(state_root, url, "a1", "a2")
        with http_server(state_root, WVO_OTEL_ENABLED="0", **away_soon(url)) as served:
            port = urlsplit(served.url).port
            assert port is not None
            with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
                http = h11.Connection(h11.CLIENT)
                status, _, body = await anyio.to_thread.run_sync(
                    _exchange, sock, http, served.url, given["a1"], initialize_body()
                )  # the server has its database open
                assert status == 200, (status, body)
                pg.stop("immediate")
                headers = given["a2"]  # never checked here: only the database can say
                status, said, body = await anyio.to_thread.run_sync(
                    _exchange, sock, http, served.url, headers, initialize_body()
                )
                assert status == 503, (status, body)
                assert said["retry-after"] == "5"
                assert "cannot be reached" in json.loads(body)["error_description"]
                pg.start_server()
                status, _, body = await anyio.to_thread.run_sync(
                    _exchange, sock, http, served.url, headers, initialize_body()
                )  # on the same connection
                assert status == 200, (status, body)
        logged = served.stderr.read_text()
        # (The health monitor's own tick may log its failure: not a request's.)
        assert "Exception in ASGI" not in logged and "verify_token" not in logged, logged


class Relay:
    """A TCP relay to PostgreSQL on 127.0.0.1 that sees every chunk each way."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def serve(self, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            task_status.started(listener.extra(anyio.abc.SocketAttribute.local_port))
            await listener.serve(self._relay)

    def sending(self, line: object, chunk: bytes) -> bool:
        """A chunk on its way to the server on connection `line`; False: hang up on the
        client once it is passed on."""
        return True

    def answering(self, line: object, chunk: bytes) -> None:
        """A chunk on its way back to the client."""

    async def _relay(self, client: anyio.abc.SocketStream) -> None:
        hung_up = False  # set before the chunk goes on, so no answer can slip back
        async with (
            client,
            await anyio.connect_tcp("127.0.0.1", self.port) as server,
            anyio.create_task_group() as pipes,
        ):

            async def up() -> None:
                nonlocal hung_up
                async for chunk in client:
                    if not self.sending(client, chunk):
                        hung_up = True
                        await server.send(chunk)
                        pipes.cancel_scope.cancel()
                        return
                    await server.send(chunk)

            async def down() -> None:
                async for chunk in server:
                    if hung_up:
                        return
                    self.answering(client, chunk)
                    await client.send(chunk)

            pipes.start_soon(up)
            pipes.start_soon(down)


class CutAtCommit(Relay):
    """Once armed, passes the next COMMIT on to the server and then hangs up on the client
    before the answer comes back: the one fault after which nobody can tell whether the
    change was kept."""

    # The COMMIT's text in psycopg's message: a simple query, or in a write's pipeline the
    # Parse of an unnamed statement (the store never prepares it).
    COMMIT = b"COMMIT\x00"

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.armed = False
        self.cut = anyio.Event()

    def sending(self, line: object, chunk: bytes) -> bool:
        if self.armed and self.COMMIT in chunk:
            self.armed = False
            self.cut.set()
            return False
        return True


class RoundTrips(Relay):
    """Counts round trips from what the client says (PostgreSQL's frontend protocol): each
    run of messages after which it waits for answers (a Sync, a Flush, a simple Query) is one,
    however many of them it sends back to back. Never from how the bytes or the answers are
    split into chunks, which a busy machine changes."""

    WAITS = frozenset(b"SHQ")

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.count = 0
        self._unread: dict[object, bytearray] = {}  # per connection: a message begun
        self._started: set[object] = set()  # connections past their startup message
        self._waiting: set[object] = set()  # connections whose last message asked for answers

    def sending(self, line: object, chunk: bytes) -> bool:
        buffer = self._unread.setdefault(line, bytearray())
        buffer += chunk
        while True:
            started = line in self._started
            head = 5 if started else 4  # a startup message has no type byte
            if len(buffer) < head:
                return True
            size = int.from_bytes(buffer[head - 4 : head], "big") + head - 4
            if len(buffer) < size:
                return True
            if not started:  # SSLRequest or GSSENCRequest, then StartupMessage (3.x)
                if int.from_bytes(buffer[4:8], "big") >> 16 == 3:
                    self._started.add(line)
            elif buffer[0] not in self.WAITS:
                self._waiting.discard(line)
            elif line not in self._waiting:
                self._waiting.add(line)
                self.count += 1
            del buffer[:size]


@contextlib.asynccontextmanager
async def relayed(
    relay: Relay, database_url: str, state_root: Path, **settings: Any
) -> AsyncIterator[Orchestrator]:
    """An Orchestrator whose connections to `database_url` go through `relay`."""
    parts = urlsplit(database_url)
    async with anyio.create_task_group() as group:
        port = await group.start(relay.serve)
        host = parts.netloc.rsplit(":", 1)[0]
        url = urlunsplit(parts._replace(netloc=f"{host}:{port}"))
        orchestrator = await Orchestrator.open(
            Settings(state_root=state_root, database_url=url, otel_enabled=False, **settings)
        )
        try:
            yield orchestrator
        finally:
            await orchestrator.close()
            group.cancel_scope.cancel()


async def test_a_connection_lost_during_commit_is_reported_as_unknown_and_not_retried(
    tmp_path: Path, database_url: str
) -> None:
    """Retrying a COMMIT whose answer was lost could apply a change twice; so the caller is
    told the outcome is unknown, and the store does not run the change again."""
    relay = CutAtCommit(urlsplit(database_url).port or 5432)
    async with relayed(relay, database_url, tmp_path / "state") as orchestrator:
        relay.armed = True
        with pytest.raises(StoreUnavailable, match="whether this change was kept is unknown"):
            await orchestrator.create_tasks([TaskSpec(id="T1", title="one")], actor="p")
        assert relay.cut.is_set()
    direct = Settings(state_root=tmp_path / "state", database_url=database_url, otel_enabled=False)
    orchestrator = await Orchestrator.open(direct)
    try:
        detail = await orchestrator.get_task("T1")  # the server had the COMMIT: it was kept
        assert [e.kind for e in detail.recent_events] == ["created"]  # once, not retried
    finally:
        await orchestrator.close()


async def test_the_loops_calls_each_cost_a_few_round_trips(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write's statements that wait on no answer go out together (a pipeline), and so do
    the reads a claim makes before it picks: a claim costs at most two round trips (its
    reads, then its grant with the COMMIT: three before; while no claims queue, it reads
    nothing before its turn),
    a heartbeat one (one statement, its own transaction: two before), a holder's done of a
    task with no verify_command three (its locked row, its dependents, the COMMIT; four
    before the check for a verify_command moved into the move), a done with claim_next five
    (one transaction: six as two), and a read's snapshot is pipelined too: plan_next is four
    (8 unpipelined)."""
    monkeypatch.setattr(postgres, "FOLD_EVERY", float("inf"))  # no fold after a write
    relay = RoundTrips(urlsplit(database_url).port or 5432)

    async def fewest(call: Callable[[], Awaitable[object]]) -> int:
        """The fewest round trips of five calls: the pool's own traffic (a connection it
        opens or checks meanwhile, more often on a busy machine) passes the relay too, and
        only ever adds."""
        counts = []
        for _ in range(5):
            relay.count = 0
            await call()
            counts.append(relay.count)
        return min(counts)

    async with relayed(relay, database_url, tmp_path / "state", wip_global=10) as orchestrator:
        specs = [TaskSpec(id=f"T{i}", title="work") for i in range(8)]
        await orchestrator.create_tasks(specs, actor="p")
        assert (await orchestrator.claim("a")).claimed  # re-ranks dated tasks first
        held: list[ClaimResult] = []

        async def claim() -> None:
            held.append(await orchestrator.claim(f"b{len(held)}"))

        assert await fewest(claim) <= 2
        assert all(h.claimed and h.task is not None and h.lease_token for h in held)
        first, token = held[0].task, held[0].lease_token
        assert first is not None and token is not None

        async def heartbeat() -> None:
            await orchestrator.heartbeat(first.id, token, "b0")

        assert await fewest(heartbeat) <= 1

        async def done() -> None:
            h = held.pop()
            assert h.task is not None
            await orchestrator.update_status(h.task.id, Status.DONE, f"b{len(held)}", h.lease_token)

        assert await fewest(done) <= 3
        assert await fewest(lambda: orchestrator.plan_next("c")) <= 4

        async def done_and_claim_next() -> None:
            h = held.pop()
            assert h.task is not None and h.lease_token is not None
            moved = await orchestrator.update_and_claim(
                h.task.id, Status.DONE, h.agent_id, h.lease_token, None
            )
            assert moved.next is not None and moved.next.claimed
            held.append(moved.next)

        await orchestrator.create_tasks([TaskSpec(id=f"U{i}", title="u") for i in range(5)], "p")
        held.append(await orchestrator.claim("d"))
        assert await fewest(done_and_claim_next) <= 5


async def test_a_turn_of_claims_costs_two_round_trips_however_many_it_serves(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claims queued in one process share a turn (services/claims.best_then_read): what
    they read before they pick goes out together, and their grants with the COMMIT, so four
    cost what one does (eight, one turn each)."""
    monkeypatch.setattr(postgres, "FOLD_EVERY", float("inf"))
    relay = RoundTrips(urlsplit(database_url).port or 5432)
    async with relayed(relay, database_url, tmp_path / "state", wip_global=40) as orchestrator:
        await orchestrator.create_tasks([TaskSpec(id=f"T{i}", title="t") for i in range(24)], "p")
        assert (await orchestrator.claim("first")).claimed  # re-ranks dated tasks first
        counts, granted = [], set()
        for n in range(5):
            asks = [claims.Ask(f"agent-{n}-{i}", 60) for i in range(4)]

            def four(tx: Tx, asks: list[claims.Ask] = asks) -> Callable[[], list[ClaimResult]]:
                readers = claims.best_then_read(
                    tx, orchestrator.settings, asks, orchestrator.clock(), orchestrator.providers
                )
                return lambda: [read() for read in readers]

            relay.count = 0
            answers = await orchestrator.db.write_then_read(four, Lock.CLAIM)
            counts.append(relay.count)
            granted |= {a.task.id for a in answers if a.claimed and a.task is not None}
        assert len(granted) == 20  # each claim its own task
        assert min(counts) <= 2  # the pool's own traffic only ever adds (as above)
