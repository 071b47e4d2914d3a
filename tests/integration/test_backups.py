"""Online backups under load, retention on disk, the servers lock, and restore (refusals
included), through the MCP client, with real server processes where they write under load or
hold the lock, and the `wvo-mcp` command as a subprocess."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from tests.conftest import POLL_DEADLINE_SECONDS, ROOT, Agent, connect, server_params, wvo
from wvo_mcp import backups
from wvo_mcp.store.sql import migrations

pytestmark = pytest.mark.anyio

NAME = re.compile(r"^orchestrator-\d{8}T\d{6}Z(-\d+)?\.db$")
WORKERS = 4
LOAD_TASKS = 3000  # far more than four agents finish while a backup runs


def db_file(state_root: Path) -> Path:
    return state_root / "orchestrator.db"


def backups_dir(state_root: Path) -> Path:
    return state_root / "backups" / "db"


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        yield conn


def task_ids(path: Path) -> set[str]:
    with read_only(path) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM tasks")}


def integrity(path: Path) -> list[str]:
    with read_only(path) as conn:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]


def journal_mode(path: Path) -> str:
    with read_only(path) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


def assert_standalone(backup: Path) -> None:
    """A sound SQLite file that needs nothing beside it."""
    assert integrity(backup) == ["ok"]
    assert journal_mode(backup) == "delete"
    assert not Path(f"{backup}-wal").exists()


def ok(state_root: Path, *args: str) -> str:
    result = wvo(state_root, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def import_tasks(state_root: Path, tmp_path: Path, prefix: str, count: int) -> set[str]:
    """Create `count` independent tasks with `wvo-mcp import`; return their ids."""
    ids = [f"{prefix}.{i}" for i in range(count)]
    roadmap = tmp_path / f"{prefix}.json"
    roadmap.write_text(json.dumps({"version": 1, "tasks": [{"id": i, "title": i} for i in ids]}))
    assert f"imported {count} tasks" in ok(state_root, "import", str(roadmap))
    return set(ids)


def backup_now(state_root: Path) -> Path:
    """`wvo-mcp backup`; the path it printed."""
    out = ok(state_root, "backup")
    match = re.search(r"^backed up \S+ to (\S+) \(", out, re.MULTILINE)
    assert match, out
    path = Path(match[1])
    assert path.parent == backups_dir(state_root)
    assert NAME.match(path.name), path.name
    return path


def safety_copies(state_root: Path) -> list[Path]:
    return sorted(backups_dir(state_root).glob("pre-restore-*.db"))


def poll(condition: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + POLL_DEADLINE_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"not within the deadline: {condition}"
        time.sleep(0.02)


# --------------------------------------------------------------------------- backups


@pytest.mark.process
async def test_backup_while_four_servers_write_is_consistent(
    state_root: Path, tmp_path: Path
) -> None:
    ids = import_tasks(state_root, tmp_path, "L", LOAD_TASKS)
    done = [0] * WORKERS  # completions each agent saw committed
    finishing = [0] * WORKERS  # completions each agent asked for (committed or in flight)
    connected = 0
    everyone_working = anyio.Event()
    stop = anyio.Event()

    async def work(i: int) -> None:
        nonlocal connected
        # The monitor's leader takes no backup of its own: one in the same second as the
        # command's would prune it (test_demo.py sees the leader's first backup).
        async with connect(
            state_root,
            process=True,
            WVO_AGENT_ID=f"agent-{i}",
            WVO_WIP_LIMIT=WORKERS,
            WVO_BACKUP_INTERVAL_MINUTES=0,
        ) as agent:
            connected += 1
            while not stop.is_set():
                claim = await agent.call("claim_task")
                if not claim["claimed"]:
                    await anyio.sleep(0.01)
                    continue
                tid, token = claim["task"]["id"], claim["lease_token"]
                await agent.call("checkpoint", task_id=tid, lease_token=token, summary="half")
                finishing[i] += 1
                await agent.call("plan_update", task_id=tid, status="done", lease_token=token)
                done[i] += 1
                if connected == WORKERS and all(done):
                    everyone_working.set()

    with anyio.fail_after(180):
        async with anyio.create_task_group() as group:
            for i in range(WORKERS):
                group.start_soon(work, i)
            await everyone_working.wait()
            done_before = sum(done)
            result = await anyio.to_thread.run_sync(wvo, state_root, "backup")
            finishing_after = sum(finishing)
            stop.set()

    assert result.returncode == 0, result.stderr
    [backup] = backups.listing(backups_dir(state_root))
    path = backup[0]
    assert NAME.match(path.name)
    assert str(path) in result.stdout
    assert_standalone(path)
    assert task_ids(path) == ids
    with read_only(path) as conn:
        done_in_backup = conn.execute("SELECT count(*) FROM tasks WHERE status = 'done'").fetchone()
        done_events = conn.execute(
            "SELECT count(*) FROM task_events WHERE to_status = 'done'"
        ).fetchone()
        counted = conn.execute("SELECT tasks FROM queue_counts WHERE bucket = 'done'").fetchone()
    # One snapshot: every completion acknowledged before the backup started is in it, none
    # asked for after it ended is, and rows, audit trail and trigger-maintained counts agree.
    assert done_before <= done_in_backup[0] <= finishing_after
    assert done_in_backup[0] == done_events[0] == counted[0]
    assert finishing_after < LOAD_TASKS, "the queue ran dry: the backup did not run under load"

    # And it restores: the live database becomes exactly that snapshot.
    ok(state_root, "restore", str(path))
    live = db_file(state_root)
    assert integrity(live) == ["ok"]
    assert task_ids(live) == ids
    with read_only(live) as conn:
        restored_done = conn.execute("SELECT count(*) FROM tasks WHERE status = 'done'").fetchone()
    assert restored_done[0] == done_in_backup[0]


def test_backup_refuses_without_a_database(state_root: Path) -> None:
    result = wvo(state_root, "backup")
    assert result.returncode == 2
    assert "no database" in result.stderr
    assert backups.listing(backups_dir(state_root)) == []


def test_backup_twice_prunes_per_retention(state_root: Path, tmp_path: Path) -> None:
    import_tasks(state_root, tmp_path, "A", 3)
    first = backup_now(state_root)
    [(_, first_stamp)] = backups.listing(backups_dir(state_root))
    out = ok(state_root, "backup")
    second = Path(re.findall(r" to (\S+) \(", out)[0])
    assert NAME.match(second.name) and second != first
    found = backups.listing(backups_dir(state_root))
    second_stamp = found[-1][1]
    assert found[-1][0] == second and second_stamp > first_stamp
    # Within one hour only the newer stays; an hour boundary between them keeps both.
    kept = backups.keep([first_stamp, second_stamp])
    assert {stamp for _, stamp in found} == kept
    assert first.exists() == (first_stamp in kept)
    pruned = re.findall(r"^pruned (\S+)$", out, re.MULTILINE)
    assert pruned == ([] if first_stamp in kept else [first.name])


def test_same_second_backups_never_clobber(state_root: Path, tmp_path: Path) -> None:
    import_tasks(state_root, tmp_path, "A", 2)
    now = datetime(2024, 6, 10, 9, 30, tzinfo=UTC)
    paths = [backups.take(db_file(state_root), backups_dir(state_root), now) for _ in range(3)]
    assert [p.name for p in paths] == [
        "orchestrator-20240610T093000Z.db",
        "orchestrator-20240610T093000Z-1.db",
        "orchestrator-20240610T093000Z-2.db",
    ]
    assert [p for p, _ in backups.listing(backups_dir(state_root))] == paths
    assert backups.latest(backups_dir(state_root)) == (paths[2], now + timedelta(microseconds=2))
    # Same hour: the last one taken is the one kept.
    assert backups.prune(backups_dir(state_root)) == paths[:2]
    assert [p for p, _ in backups.listing(backups_dir(state_root))] == [paths[2]]
    assert not list(backups_dir(state_root).glob("*.tmp"))


def test_prune_deletes_what_retention_drops_and_nothing_else(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    base = datetime(2024, 6, 10, 12, tzinfo=UTC)
    stamps = [base - timedelta(minutes=20 * i) for i in range(24 * 3 * 12)]  # 12 days
    for stamp in stamps:
        (folder / f"orchestrator-{stamp:%Y%m%dT%H%M%SZ}.db").write_bytes(b"")
    others = [
        ".orchestrator-abc.tmp",
        "pre-restore-20240101T000000Z.db",
        "orchestrator-latest.db",
        "orchestrator-20240101T000000Z.db-wal",
        "notes.txt",
    ]
    for name in others:
        (folder / name).write_bytes(b"x")

    deleted = backups.prune(folder)

    kept = backups.keep(stamps)
    assert len(kept) < len(stamps)
    assert {p.name for p in deleted} == {
        f"orchestrator-{s:%Y%m%dT%H%M%SZ}.db" for s in stamps if s not in kept
    }
    assert {stamp for _, stamp in backups.listing(folder)} == kept
    assert all((folder / name).exists() for name in others)
    assert backups.prune(folder) == []  # already settled


def test_latest_and_due(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    now = datetime(2024, 6, 10, 12, tzinfo=UTC)
    assert backups.latest(folder) is None
    assert backups.due(folder, now, 60)
    assert not backups.due(folder, now, 0)  # off
    folder.mkdir()
    (folder / "pre-restore-20240610T115900Z.db").write_bytes(b"")  # not a backup
    assert backups.due(folder, now, 60)
    for name in ("orchestrator-20240610T103000Z.db", "orchestrator-20240610T111500Z.db"):
        (folder / name).write_bytes(b"")
    newest = backups.latest(folder)
    assert newest == (folder / "orchestrator-20240610T111500Z.db", now - timedelta(minutes=45))
    assert not backups.due(folder, now, 60)
    assert backups.due(folder, now, 45)
    assert backups.due(folder, now, 30)
    assert not backups.due(folder, now, -1)


# --------------------------------------------------------------------------- servers lock


@pytest.mark.process
def test_a_serving_process_holds_the_lock_until_it_dies_even_by_sigkill(
    state_root: Path,
) -> None:
    db = db_file(state_root)
    params = server_params(state_root)
    server = subprocess.Popen(
        [params.command, *params.args],
        cwd=params.cwd,
        env={**os.environ, **(params.env or {})},
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        poll("the server takes the lock", lambda: backups.servers_running(db))
        # The database was opened (and created) under the lock.
        poll("the server opens the database", db.exists)
        assert backups.servers_running(db)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        poll("the lock dies with the process", lambda: not backups.servers_running(db))
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        assert server.stdin is not None
        server.stdin.close()


def test_servers_lock_is_shared(tmp_path: Path) -> None:
    """Many servers hold it at once; `servers_running` sees any of them."""
    db = tmp_path / "state" / "orchestrator.db"
    assert not backups.servers_running(db)
    with backups.servers_lock(db):
        with backups.servers_lock(db):
            assert backups.servers_running(db)
        assert backups.servers_running(db)
    assert not backups.servers_running(db)
    assert not db.exists()  # the lock is a side file


# --------------------------------------------------------------------------- restore


def test_restore_brings_back_exactly_the_backup(state_root: Path, tmp_path: Path) -> None:
    first = import_tasks(state_root, tmp_path, "A", 12)
    backup = backup_now(state_root)
    later = import_tasks(state_root, tmp_path, "B", 7)
    assert task_ids(db_file(state_root)) == first | later

    out = ok(state_root, "restore", str(backup))

    assert task_ids(db_file(state_root)) == first
    assert integrity(db_file(state_root)) == ["ok"]
    assert journal_mode(db_file(state_root)) == "wal"
    [safety] = safety_copies(state_root)
    assert task_ids(safety) == first | later  # the database as it was
    assert integrity(safety) == ["ok"]
    assert f"kept the database as it was in {safety}" in out
    assert "12 tasks" in out
    # A safety copy is not a backup: retention neither counts nor prunes it.
    assert [p for p, _ in backups.listing(backups_dir(state_root))] == [backup]
    backups.prune(backups_dir(state_root))
    assert safety.exists()
    # The restored database serves.
    assert "pending 12" in ok(state_root, "status")


def test_restore_into_a_missing_database(state_root: Path, tmp_path: Path) -> None:
    ids = import_tasks(state_root, tmp_path, "A", 4)
    backup = backup_now(state_root)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file(state_root)}{suffix}").unlink(missing_ok=True)

    out = ok(state_root, "restore", str(backup))

    assert task_ids(db_file(state_root)) == ids
    assert journal_mode(db_file(state_root)) == "wal"
    assert safety_copies(state_root) == []
    assert "kept" not in out


async def test_restore_is_refused_while_a_server_runs_unless_forced(
    state_root: Path, tmp_path: Path
) -> None:
    first = import_tasks(state_root, tmp_path, "A", 5)
    backup = backup_now(state_root)
    later = import_tasks(state_root, tmp_path, "B", 3)
    db = db_file(state_root)

    async with connect(state_root, WVO_AGENT_ID="survivor") as agent:
        assert await pending(agent) == len(first | later)
        refused = await anyio.to_thread.run_sync(wvo, state_root, "restore", str(backup))
        assert refused.returncode == 2
        assert "servers are running" in refused.stderr and "--force" in refused.stderr
        assert task_ids(db) == first | later
        assert safety_copies(state_root) == []

        forced = await anyio.to_thread.run_sync(wvo, state_root, "restore", str(backup), "--force")
        assert forced.returncode == 0, forced.stderr
        assert task_ids(db) == first
        # The running server switched to the restored contents and keeps working on them.
        assert await pending(agent) == len(first)
        claim = await agent.call("claim_task")
        assert claim["claimed"] and claim["task"]["id"] in first
        tid, token = claim["task"]["id"], claim["lease_token"]
        await agent.call("plan_update", task_id=tid, status="done", lease_token=token)

    assert integrity(db) == ["ok"]
    [safety] = safety_copies(state_root)
    assert task_ids(safety) == first | later
    with read_only(db) as conn:
        assert conn.execute("SELECT count(*) FROM tasks WHERE status = 'done'").fetchone()[0] == 1
    # Once the server has gone, restore needs no --force.
    poll("the server exits", lambda: not backups.servers_running(db))
    ok(state_root, "restore", str(backup))
    assert task_ids(db) == first


async def pending(agent: Agent) -> int:
    plan = await agent.call("plan_next", limit=1)
    return int(plan["counts"]["by_status"].get("pending", 0))


def _not_sqlite(path: Path, good: Path) -> None:
    path.write_text("these are not the pages you are looking for\n" * 200)


def _truncated(path: Path, good: Path) -> None:
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damaged_page(path: Path, good: Path) -> None:
    data = bytearray(good.read_bytes())
    page = 4096
    assert len(data) >= 4 * page
    data[2 * page : 4 * page] = b"\xa5" * (2 * page)  # pages 3 and 4: garbage b-trees
    path.write_bytes(bytes(data))


def _broken_constraint(path: Path, good: Path) -> None:
    """Readable, but integrity_check lists a row no wvo-mcp could have written."""
    path.write_bytes(good.read_bytes())
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute("UPDATE tasks SET complexity = 99 WHERE rowid = 1")
        conn.commit()


def _not_wvo(path: Path, good: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.commit()


def _newer_schema(path: Path, good: Path) -> None:
    path.write_bytes(good.read_bytes())
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {migrations()[-1][0] + 1}")


def _missing(path: Path, good: Path) -> None:
    return None


@pytest.mark.parametrize(
    ("make", "says"),
    [
        pytest.param(_not_sqlite, ["cannot be read as a SQLite database"], id="not-sqlite"),
        pytest.param(
            _truncated, ["integrity_check", "cannot be read as a SQLite database"], id="truncated"
        ),
        pytest.param(
            _damaged_page,
            ["integrity_check", "cannot be read as a SQLite database"],
            id="damaged-pages",
        ),
        pytest.param(
            _broken_constraint, ["failed integrity_check", "CHECK"], id="broken-constraint"
        ),
        pytest.param(_not_wvo, ["not a wvo-mcp database"], id="not-wvo-mcp"),
        pytest.param(_newer_schema, ["schema version", "upgrade wvo-mcp"], id="newer-schema"),
        pytest.param(_missing, ["is not a file"], id="missing"),
    ],
)
def test_restore_of_a_bad_file_is_refused_and_changes_nothing(
    state_root: Path, tmp_path: Path, make: Callable[[Path, Path], None], says: list[str]
) -> None:
    ids = import_tasks(state_root, tmp_path, "A", 300)  # a few pages of rows
    good = backup_now(state_root)
    bad = tmp_path / "bad.db"
    make(bad, good)
    before = db_file(state_root).read_bytes()

    result = wvo(state_root, "restore", str(bad))

    assert result.returncode == 2
    assert result.stderr.startswith("wvo-mcp: ")
    assert str(bad) in result.stderr
    assert any(fragment in result.stderr for fragment in says), result.stderr
    assert db_file(state_root).read_bytes() == before
    assert task_ids(db_file(state_root)) == ids
    assert safety_copies(state_root) == []
    assert sorted(p.name for p in backups_dir(state_root).iterdir()) == [good.name]


def test_restore_refuses_the_live_database_itself(state_root: Path, tmp_path: Path) -> None:
    ids = import_tasks(state_root, tmp_path, "A", 2)
    result = wvo(state_root, "restore", str(db_file(state_root)))
    assert result.returncode == 2
    assert "live database itself" in result.stderr
    assert task_ids(db_file(state_root)) == ids


def test_restore_script_wraps_the_cli(state_root: Path, tmp_path: Path) -> None:
    ids = import_tasks(state_root, tmp_path, "A", 3)
    backup = backup_now(state_root)
    import_tasks(state_root, tmp_path, "B", 2)
    result = subprocess.run(
        [str(ROOT / "scripts" / "restore"), str(backup.resolve())],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "WVO_STATE_ROOT": str(state_root.resolve())},
    )
    assert result.returncode == 0, result.stderr
    assert "restored" in result.stdout
    assert task_ids(db_file(state_root)) == ids
