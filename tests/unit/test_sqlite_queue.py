"""SQLite writers queue for their turn on a lock file beside the database; readers do not."""

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from wvo_mcp.errors import Busy
from wvo_mcp.store import sqlite as sqlite_store
from wvo_mcp.store.sqlite import WRITERS_LOCK_SUFFIX, SqliteDatabase

pytestmark = pytest.mark.anyio


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "orchestrator.db"


@pytest.fixture
def queue(db_path: Path) -> Iterator[int]:
    """Another writer's open file on the queue (flock locks belong to an open file)."""
    fd = os.open(db_path.with_name(db_path.name + WRITERS_LOCK_SUFFIX), os.O_RDWR | os.O_CREAT)
    try:
        yield fd
    finally:
        os.close(fd)


@pytest.mark.parametrize("inline", [True, False])
async def test_a_write_waits_for_its_turn_and_a_read_does_not(
    db_path: Path, queue: int, inline: bool
) -> None:
    async with SqliteDatabase(db_path, inline=inline) as db:
        fcntl.flock(queue, fcntl.LOCK_EX)
        written = anyio.Event()

        async def write() -> None:
            await db.write(lambda tx: tx.run("meta_set", ("k", "v")))
            written.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            await anyio.wait_all_tasks_blocked()
            assert not written.is_set()  # the queue is ours: its turn cannot have come
            fcntl.flock(queue, fcntl.LOCK_UN)
        assert written.is_set()

        fcntl.flock(queue, fcntl.LOCK_EX)
        assert await db.read(lambda tx: tx.value("meta_get", ("k",))) == "v"
        fcntl.flock(queue, fcntl.LOCK_UN)


async def test_a_write_ends_its_turn_even_when_it_fails(db_path: Path, queue: int) -> None:
    async with SqliteDatabase(db_path) as db:

        def broken(tx: object) -> None:
            raise ValueError("no")

        with pytest.raises(ValueError):
            await db.write(broken)
        fcntl.flock(queue, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the turn was kept
        fcntl.flock(queue, fcntl.LOCK_UN)


async def test_a_turn_that_never_comes_is_busy_not_a_hang(
    db_path: Path, queue: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whoever can read the state folder can flock the file (a sandboxed command sees it
    empty, but any process of the server's user can)."""
    monkeypatch.setattr(sqlite_store, "BUSY_DEADLINE_S", 0.2)
    async with SqliteDatabase(db_path, inline=False) as db:
        fcntl.flock(queue, fcntl.LOCK_EX)
        with pytest.raises(Busy, match="writers' lock"):
            await db.write(lambda tx: tx.run("meta_set", ("k", "v")))
        fcntl.flock(queue, fcntl.LOCK_UN)
        assert await db.read(lambda tx: tx.value("meta_get", ("k",))) is None  # nothing kept
        await db.write(lambda tx: tx.run("meta_set", ("k", "v")))
