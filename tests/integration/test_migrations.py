"""The schema is exactly the numbered migrations, applied once, whoever opens the database
first (or at the same moment); a database from a newer wvo-mcp is refused."""

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import anyio
import pytest

from tests.conftest import ROOT, agents, connect, fresh_env, table_rows
from wvo_mcp.store.sql import migrations
from wvo_mcp.store.sqlite import split_statements

pytestmark = pytest.mark.anyio

MIGRATIONS = sorted((ROOT / "wvo_mcp" / "store" / "sql" / "sqlite" / "migrations").glob("*.sql"))
LATEST = len(MIGRATIONS)
TABLES = {"tasks", "task_dependencies", "task_events", "checkpoints", "agents"}
# Only a hang is failed: a command takes well under a second quiet, but a cold start at load 9
# took over 10 s to say anything.
CLI_TIMEOUT_S = 120.0


def db_file(state_root: Path) -> Path:
    return state_root / "orchestrator.db"


@contextmanager
def read_only(state_root: Path) -> Iterator[sqlite3.Connection]:
    uri = f"{db_file(state_root).as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        yield conn


def pragma(state_root: Path, name: str) -> object:
    with read_only(state_root) as db:
        return db.execute(f"PRAGMA {name}").fetchone()[0]


def schema(conn: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
    return sorted(
        conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL")
    )


def reference_schema() -> list[tuple[str, str, str, str]]:
    """What the migration files create, applied by the stdlib driver to an empty database."""
    with closing(sqlite3.connect(":memory:")) as conn:
        for migration in MIGRATIONS:
            conn.executescript(migration.read_text())
        return schema(conn)


def cli_env() -> dict[str, str]:
    return fresh_env({k: v for k, v in os.environ.items() if not k.startswith("WVO_")})


def start_cli(
    state_root: Path, *args: str, stdin: int = subprocess.DEVNULL
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(state_root), *args],
        cwd=ROOT,
        env=cli_env(),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = CLI_TIMEOUT_S) -> tuple[int, str, str]:
    """Exit code, stdout, stderr; fails the test (after killing it) if it does not exit.

    Waits before reading, so a stdin pipe stays open meanwhile (communicate closes it)."""
    try:
        process.wait(timeout=timeout)  # output here is small: no pipe fills up
        hung = False
    except subprocess.TimeoutExpired:
        process.kill()
        hung = True
    out, err = process.communicate()
    if hung:
        command = " ".join(str(a) for a in process.args[2:])
        pytest.fail(
            f"`{command}` did not exit within {timeout:.0f} s (killed); "
            f"stderr: {tail(err) or '(nothing)'}"
        )
    return process.returncode, out, err


def tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def run_cli(state_root: Path, *args: str) -> tuple[int, str, str]:
    return finish(start_cli(state_root, *args))


def assert_single_consistent_schema(state_root: Path) -> None:
    with read_only(state_root) as db:
        assert [r[0] for r in db.execute("PRAGMA integrity_check")] == ["ok"]
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST
        assert schema(db) == reference_schema()
        # The migration's seed rows went in once, not once per process.
        buckets = db.execute("SELECT bucket, tasks FROM queue_counts ORDER BY bucket").fetchall()
    assert len(buckets) == 9 and len({b for b, _ in buckets}) == 9, buckets


def test_migration_files_are_numbered_from_one() -> None:
    assert MIGRATIONS, "no migrations found"
    assert [int(m.name.split("_", 1)[0]) for m in MIGRATIONS] == list(range(1, LATEST + 1))


async def test_fresh_state_dir_gets_every_migration(state_root: Path) -> None:
    async with connect(state_root) as agent:
        plan = await agent.call("plan_next")
        assert plan.get("tasks", []) == []
        assert sum(plan["counts"]["by_status"].values()) == 0

    assert pragma(state_root, "user_version") == LATEST
    assert pragma(state_root, "journal_mode") == "wal"
    with read_only(state_root) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables >= TABLES
    assert_single_consistent_schema(state_root)


async def test_newer_schema_is_refused_by_status(state_root: Path) -> None:
    assert run_cli(state_root, "status")[0] == 0
    newer = LATEST + 1
    with closing(sqlite3.connect(db_file(state_root))) as conn:
        conn.execute(f"PRAGMA user_version = {newer}")

    code, out, err = run_cli(state_root, "status")
    assert code == 2, (code, err)
    assert f"schema version {newer}" in err
    assert f"knows up to {LATEST}" in err
    assert "upgrade" in err
    assert "Traceback" not in err
    assert out == ""
    assert pragma(state_root, "user_version") == newer  # refused, not downgraded


async def test_newer_schema_is_refused_by_serve(state_root: Path) -> None:
    """The server an agent's client starts says why it cannot run, and exits."""
    assert run_cli(state_root, "status")[0] == 0
    newer = LATEST + 3
    with closing(sqlite3.connect(db_file(state_root))) as conn:
        conn.execute(f"PRAGMA user_version = {newer}")

    # stdin stays open, as an agent's MCP client keeps it while it waits for `initialize`.
    server = start_cli(state_root, "serve", stdin=subprocess.PIPE)
    code, out, err = finish(server)
    assert code == 2, (code, tail(err))
    assert f"schema version {newer}" in err
    assert "upgrade" in err
    assert out == ""  # stdout is the JSON-RPC wire
    assert pragma(state_root, "user_version") == newer


async def test_two_servers_migrating_one_fresh_database_at_once(state_root: Path) -> None:
    answers: dict[str, dict[str, int]] = {}

    async def serve(name: str) -> None:
        async with connect(state_root, WVO_AGENT_ID=name) as agent:
            plan = await agent.call("plan_next")
            answers[name] = plan["counts"]["by_status"]
            created = await agent.call("task_create", tasks=[{"id": name, "title": name}])
            assert created["created"] == [name]

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for name in ("first", "second"):
                group.start_soon(serve, name)

    assert set(answers) == {"first", "second"}
    assert_single_consistent_schema(state_root)
    with read_only(state_root) as db:
        assert sorted(r[0] for r in db.execute("SELECT id FROM tasks")) == ["first", "second"]


def test_many_processes_opening_one_fresh_database_at_once(tmp_path: Path) -> None:
    """Six processes race to create, switch to WAL and migrate the same new file; every
    one of them must come up. Several rounds, since a lost race is a matter of timing."""
    for round_ in range(3):
        state_root = tmp_path / f"round-{round_}"
        racers = [start_cli(state_root, "status", "--json") for _ in range(6)]
        results = [finish(p) for p in racers]
        failed = [tail(err) for code, _, err in results if code != 0]
        assert not failed, f"round {round_}: {len(failed)} of 6 failed to open: {failed[0]}"
        assert_single_consistent_schema(state_root)


def _has_open(process: subprocess.Popen[str], path: Path) -> bool:
    fds = Path(f"/proc/{process.pid}/fd")
    try:
        return any(os.path.realpath(fd) == str(path.resolve()) for fd in fds.iterdir())
    except OSError:  # exited meanwhile
        return False


def _poll(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_opening_a_database_locked_by_another_connection_waits(state_root: Path) -> None:
    """What a racer meets on a brand-new file: another connection holds it exclusively
    (switching it to WAL, say). The store retries busy databases for seconds; opening
    one must wait for the lock like every other step, not crash the process."""
    state_root.mkdir(parents=True)
    with closing(sqlite3.connect(db_file(state_root), isolation_level=None)) as holder:
        holder.execute("BEGIN EXCLUSIVE")
        opener = start_cli(state_root, "status")
        try:
            assert _poll(
                lambda: opener.poll() is not None or _has_open(opener, db_file(state_root)), 20
            )
            # Correct: it keeps retrying while we hold the lock. The bug: it exits at once.
            gave_up = _poll(lambda: opener.poll() is not None, 2)
        finally:
            holder.execute("ROLLBACK")
        code, _, err = finish(opener)
    assert not gave_up and code == 0, (code, tail(err))
    assert_single_consistent_schema(state_root)


def test_a_fresh_database_migrates_quietly_unless_asked(tmp_path: Path) -> None:
    """A person's command answers on stdout and says nothing on stderr; -v (before or after
    the command) logs each migration; WVO_LOG_LEVEL, when set, wins over -v."""
    code, out, err = run_cli(tmp_path / "quiet", "status")
    assert (code, err) == (0, "") and out.startswith("state: ")
    for name, args in [("before", ("-v", "status")), ("after", ("status", "-v"))]:
        code, out, err = run_cli(tmp_path / name, *args)
        assert code == 0 and out.startswith("state: ") and "migrating" not in out
        assert f"INFO migrating {db_file(tmp_path / name)} to schema 1 " in err, err
    done = subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(tmp_path / "env"), "-v",
         "status"],
        cwd=ROOT, env=cli_env() | {"WVO_LOG_LEVEL": "warning"}, capture_output=True, text=True,
        timeout=CLI_TIMEOUT_S,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")


async def test_restart_keeps_data_and_does_not_migrate_again(state_root: Path) -> None:
    code, _, err = run_cli(state_root, "-v", "status")
    assert code == 0
    assert "migrating" in err  # the first open logs each migration it applies

    async with agents(state_root, "before", "helper") as team:
        agent = team["before"]
        await agent.call(
            "task_create",
            tasks=[
                {"id": "A", "title": "finished before the restart"},
                {"id": "B", "title": "held across the restart", "business_value": 20},
                {"id": "C", "title": "waits on A and B", "depends_on": ["A", "B"]},
            ],
        )
        claim = await agent.call("claim_task", task_id="B", lease_seconds=3600)
        assert claim["claimed"]
        await agent.call(
            "checkpoint", task_id="B", lease_token=claim["lease_token"], summary="half done"
        )
        other = await team["helper"].call("claim_task", task_id="A")
        await team["helper"].call(
            "plan_update", task_id="A", status="done", lease_token=other["lease_token"]
        )
    with closing(sqlite3.connect(db_file(state_root))) as conn, conn:
        conn.execute("INSERT INTO settings_meta (key, value) VALUES ('test-sentinel', 'kept')")

    code, out, err = run_cli(state_root, "-v", "status", "--json")
    assert code == 0, err
    assert "migrating" not in err
    by_status = json.loads(out)["counts"]["by_status"]
    assert (by_status["done"], by_status["in_progress"], by_status["pending"]) == (1, 1, 1)
    assert pragma(state_root, "user_version") == LATEST

    async with connect(state_root, WVO_AGENT_ID="after") as agent:
        page = await agent.call("task_list")
        assert {t["id"]: t["status"] for t in table_rows(page)} == {
            "A": "done",
            "B": "in_progress",
            "C": "pending",
        }
        b = await agent.call("task_get", task_id="B")
        assert b["assigned_to"] == "before"
        assert b["latest_checkpoint"]["summary"] == "half done"
        refused = await agent.call("claim_task", task_id="B")
        assert (refused["claimed"], refused["reason"]) == (False, "task_not_ready")
        c = await agent.call("task_get", task_id="C")
        assert {d["id"]: d["status"] for d in c["dependencies"]} == {
            "A": "done",
            "B": "in_progress",
        }

    with read_only(state_root) as db:
        sentinel = db.execute("SELECT value FROM settings_meta WHERE key = 'test-sentinel'")
        assert sentinel.fetchone() == ("kept",)
    assert_single_consistent_schema(state_root)


def _database_at_schema_1(state_root: Path) -> None:
    """What an older wvo-mcp left behind: only the first migration, and one task."""
    state_root.mkdir(parents=True)
    with closing(sqlite3.connect(db_file(state_root), isolation_level=None)) as old:
        version, _, script = migrations()[0]
        for statement in split_statements(script):
            old.execute(statement)
        old.execute(f"PRAGMA user_version = {version}")
        old.execute(
            "INSERT INTO tasks (id, title, complexity, business_value, time_criticality,"
            " risk_reduction, job_size, effective_time_criticality, wsjf_score, created_at,"
            " updated_at) VALUES ('kept', 'from schema 1', 3, 5, 5, 5, 6, 5, 2.5,"
            " '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')"
        )


async def test_an_older_database_is_upgraded_in_place(state_root: Path) -> None:
    """The newer server applies the remaining migrations and keeps the data."""
    _database_at_schema_1(state_root)
    async with connect(state_root) as agent:
        assert (await agent.call("task_get", task_id="kept"))["title"] == "from schema 1"
        await agent.call("context_write", section="notes", content="the upgrade worked")
    assert pragma(state_root, "user_version") == len(migrations())
    assert_single_consistent_schema(state_root)
