"""The SQLite store: one WAL connection, each transaction one synchronous function.

SQLite connector: one connection per Database, WAL, and whole transactions run as one
synchronous function (services write them against `Tx`, which only knows named queries).

A transaction first runs right on the event loop: a claim takes a fraction of a
millisecond, less than handing it to a thread and back. Only when another process holds
the write lock does it move to a worker thread, which waits there while the loop serves
on. A Database whose transactions may be long (the health monitor's) runs them all in
the thread (`inline=False`).

Writers of every process take turns on a lock file beside the database (`<db>.writers.lock`,
flock) before BEGIN IMMEDIATE, instead of re-running BEGIN against SQLite's lock: a waiting
writer polls the file with short sleeps, up to the busy deadline (a holder that never lets
go makes writes Busy, never stuck). SQLite's lock still decides: the turn only orders who
asks, and a writer outside it (a restore, another tool) is waited for with back-off as
before.
"""

import fcntl
import logging
import os
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from wvo_mcp.errors import Busy, Overloaded, SchemaTooNew, ValidationFailed
from wvo_mcp.store.base import Alone, Lock, Params, Row, Tx
from wvo_mcp.store.sql import migrations, queries

log = logging.getLogger(__name__)

T = TypeVar("T")

# No busy handler: a locked database is retried here with jittered back-off, because
# SQLite's own handler lets an unlucky writer starve for seconds under contention.
BUSY_TIMEOUT_MS = 0
# Opening is rare and may meet another process creating the file: plain waiting is fine there.
OPEN_BUSY_TIMEOUT_MS = 15_000
RETRY_SLEEP_CAP_S = 0.004
BUSY_DEADLINE_S = 15.0
WAL_AUTOCHECKPOINT_PAGES = 10_000  # 40 MiB of 4 KiB pages (SQLite's default is 1,000)
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024  # what a checkpointed WAL is truncated back to
WRITERS_LOCK_SUFFIX = ".writers.lock"


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc)


def _turn(queue: int, operation: int) -> bool:
    """Take the writers' lock; False when LOCK_NB finds another writer's turn."""
    try:
        fcntl.flock(queue, operation)
    except BlockingIOError:
        return False
    return True


def _wait_turn(queue: int, until: float | None = None) -> None:
    """The writers' lock within BUSY_DEADLINE_S, else Busy (by `until`, else Overloaded).
    Never a blocking flock: whoever can read the state folder can flock this file (any
    process of the server's user; a sandboxed command sees the folder empty), and a holder
    that never lets go must make writes fail, not hang for ever."""
    started = time.monotonic()
    deadline = started + BUSY_DEADLINE_S
    pause = 0.0002
    while not _turn(queue, fcntl.LOCK_EX | fcntl.LOCK_NB):
        now = time.monotonic()
        if until is not None and now > until:
            raise _no_turn(now - started)
        if now > deadline:
            raise Busy(
                f"no turn to write came in {BUSY_DEADLINE_S:.0f} s (another process holds the "
                "writers' lock beside the database); nothing of this call was kept; retry"
            )
        time.sleep(pause)
        pause = min(2 * pause, RETRY_SLEEP_CAP_S / 2)


def _no_turn(waited: float) -> Overloaded:
    return Overloaded(
        f"no turn to write came within {waited:.2f} s: other writes hold the database"
    )


class _Answered:
    """A read's rows, read when it was asked (store.base.Answer): in process, a round trip
    costs nothing, and later changes in the transaction stay out of them."""

    def __init__(self, rows: list[sqlite3.Row]) -> None:
        self._rows = rows

    def one(self) -> Row | None:
        return self._rows[0] if self._rows else None

    def all(self) -> list[Row]:
        return list(self._rows)

    def value(self) -> Any:
        return self._rows[0][0] if self._rows else None


class SqliteTx:
    """One transaction, used synchronously (store.base.Tx)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._sql = queries()

    def run(self, name: str, params: Params = ()) -> int:
        return self._conn.execute(self._sql[name], params).rowcount

    def send(self, name: str, params: Params = ()) -> None:
        self._conn.execute(self._sql[name], params)

    def many(self, name: str, rows: Sequence[Params]) -> int:
        return self._conn.executemany(self._sql[name], rows).rowcount

    def ask(self, name: str, params: Params = ()) -> _Answered:
        return _Answered(self._conn.execute(self._sql[name], params).fetchall())

    def one(self, name: str, params: Params = ()) -> Row | None:
        row: Row | None = self._conn.execute(self._sql[name], params).fetchone()
        return row

    def all(self, name: str, params: Params = ()) -> list[Row]:
        return self._conn.execute(self._sql[name], params).fetchall()

    def iter(self, name: str, params: Params = ()) -> Iterator[Row]:
        """Rows one at a time, so a ranked scan stops at the first row that fits."""
        yield from self._conn.execute(self._sql[name], params)

    def value(self, name: str, params: Params = ()) -> Any:
        row = self._conn.execute(self._sql[name], params).fetchone()
        return None if row is None else row[0]


class SqliteDatabase:
    """The SQLite file (store.base.Database)."""

    engine = "sqlite"

    def __init__(
        self, path: Path | str, cache_kib: int | None = None, *, inline: bool = True
    ) -> None:
        self.path = Path(path)
        self.cache_kib = cache_kib  # None: SQLite's default page cache (2 MiB)
        self.inline = inline
        self._conn: sqlite3.Connection | None = None
        self._writers: int | None = None  # the writers' lock file, None if it cannot be made
        # One transaction at a time on the connection, wherever it runs.
        self._lock = anyio.Lock(fast_acquire=True)

    def describe(self) -> str:
        return str(self.path)

    async def open(self) -> "SqliteDatabase":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValidationFailed(
                f"cannot use {self.path.parent} as the state folder: {exc.strerror}; "
                "point WVO_STATE_ROOT (or --state-root) at a folder"
            ) from None
        # Used by one thread at a time (the lock), so any thread may use it.
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        try:
            # Its own open file, so this Database queues even against another in this process.
            self._writers = os.open(
                self.path.with_name(self.path.name + WRITERS_LOCK_SUFFIX),
                os.O_RDWR | os.O_CREAT,
                0o644,
            )
        except OSError as exc:
            log.warning("%s: no writers' queue (%s); writers poll the lock", self.path, exc)
        try:
            await anyio.to_thread.run_sync(self._prepare)
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        if self._conn is not None:
            async with self._lock:
                self._conn.close()
                self._conn = None
                if self._writers is not None:
                    os.close(self._writers)
                    self._writers = None

    async def __aenter__(self) -> "SqliteDatabase":
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def read(
        self, fn: Callable[[Tx], T], snapshot: bool = True, within: float | None = None
    ) -> T:
        """Run `fn` in one read transaction (a consistent snapshot, whatever `snapshot`
        says: a local one costs no round trip). `within` bounds nothing: a reader here
        waits for no lock and no connection."""
        return await self._run(fn, "DEFERRED")

    async def write(
        self, fn: Callable[[Tx], T], lock: Lock = Lock.WORLD, within: float | None = None
    ) -> T:
        """Run `fn` in one write transaction; `fn` may be re-run if the database is busy.
        Every `lock` is the same here: SQLite has one writer."""
        return await self._run(fn, "IMMEDIATE", within)

    async def notified(self, channel: str) -> AsyncIterator[None]:
        return  # store.base.Database.notified: no one is told here
        yield

    async def write_then_read(
        self,
        fn: Callable[[Tx], Callable[[], T]],
        lock: Lock = Lock.WORLD,
        within: float | None = None,
        alone: Alone[T] | None = None,
    ) -> T:
        """As `write`: a read here is answered when asked, so nothing is saved. `alone`
        is left aside: the transaction is one local call already."""
        return (await self._run(fn, "IMMEDIATE", within))()

    async def _run(self, fn: Callable[[Tx], T], mode: str, within: float | None = None) -> T:
        until = None if within is None else time.monotonic() + within
        if within is None or not self._lock.locked():
            # A free lock is taken at once (fast_acquire; a lock let go passes straight to
            # the next waiter, so a free one has none): no deadline's timer and cancel scope
            # for a claim's turn, which every claim paid.
            await self._lock.acquire()
        else:
            acquired = False
            with anyio.move_on_after(within):
                await self._lock.acquire()
                acquired = True
            if not acquired:
                raise _no_turn(within)
        try:
            if self.inline:
                queue = self._queue(mode)
                if queue is None or _turn(queue, fcntl.LOCK_EX | fcntl.LOCK_NB):
                    try:
                        return self._once(fn, mode)
                    except sqlite3.OperationalError as exc:
                        if not _is_busy(exc):
                            raise
                    finally:
                        if queue is not None:
                            fcntl.flock(queue, fcntl.LOCK_UN)
            return await anyio.to_thread.run_sync(self._transaction, fn, mode, until)
        finally:
            self._lock.release()

    def _queue(self, mode: str) -> int | None:
        """The writers' lock file, when this transaction writes."""
        return self._writers if mode == "IMMEDIATE" else None

    @property
    def _raw(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    def _once(self, fn: Callable[[Tx], T], mode: str) -> T:
        conn = self._raw
        conn.execute(f"BEGIN {mode}")
        try:
            result = fn(SqliteTx(conn))
            conn.execute("COMMIT")
            return result
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _transaction(self, fn: Callable[[Tx], T], mode: str, until: float | None = None) -> T:
        queue = self._queue(mode)
        if queue is not None:
            _wait_turn(queue, until)
        try:
            return self._retried(fn, mode)
        finally:
            if queue is not None:
                fcntl.flock(queue, fcntl.LOCK_UN)

    def _retried(self, fn: Callable[[Tx], T], mode: str) -> T:
        deadline = time.monotonic() + BUSY_DEADLINE_S
        attempt = 0
        while True:
            try:
                return self._once(fn, mode)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    if _is_busy(exc):
                        raise Busy(
                            f"the database stayed locked for {BUSY_DEADLINE_S:.0f} s; retry"
                        ) from exc
                    raise
                attempt += 1
                time.sleep(random.uniform(0, min(RETRY_SLEEP_CAP_S, 0.0005 * 2**attempt)))

    def _prepare(self) -> None:
        conn = self._raw
        conn.execute(f"PRAGMA busy_timeout = {OPEN_BUSY_TIMEOUT_MS}")
        deadline = time.monotonic() + OPEN_BUSY_TIMEOUT_MS / 1000
        while True:
            # Every step is idempotent; a racer creating the same file can make any of them
            # busy, and some (the switch to WAL) do not wait on the busy handler.
            try:
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA synchronous = NORMAL")
                # Each commit past the threshold tries a checkpoint, which several processes
                # reading at once keep from finishing: a larger WAL retries (and syncs) less.
                conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
                conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
                if self.cache_kib is not None:
                    conn.execute(f"PRAGMA cache_size = -{int(self.cache_kib)}")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode != "wal":
                    raise sqlite3.OperationalError(f"database is locked (journal mode {mode})")
                self._transaction(self._migrate, "IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0.001, 0.02))
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def _migrate(self, tx: Tx) -> None:
        conn = self._raw
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        steps = migrations()
        latest = steps[-1][0]
        if current > latest:
            raise SchemaTooNew(
                f"{self.path} has schema version {current}, but this wvo-mcp knows up to "
                f"{latest}; upgrade wvo-mcp (or point WVO_STATE_ROOT at another state folder)"
            )
        for version, name, script in steps:
            if version <= current:
                continue
            log.info("migrating %s to schema %d (%s)", self.path, version, name)
            for statement in split_statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")


def split_statements(script: str) -> Iterator[str]:
    """Statements of a script, trigger bodies kept whole (executescript would COMMIT)."""
    buffer: list[str] = []
    for line in script.splitlines():
        buffer.append(line)
        candidate = "\n".join(buffer).strip()
        if candidate and sqlite3.complete_statement(candidate):
            if any(not ln.strip().startswith("--") and ln.strip() for ln in buffer):
                yield candidate
            buffer = []
    rest = "\n".join(buffer).strip()
    if any(ln.strip() and not ln.strip().startswith("--") for ln in buffer):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {rest[:80]!r}")
