"""The PostgreSQL store, for many servers on many hosts.

PostgreSQL connector (psycopg 3's async connections and pool) for many servers on many
hosts.

A transaction is a synchronous function of a `Tx`, the same one SQLite runs; here it runs
on the event loop (store/bridge.py), and each statement whose answer it reads is awaited on
the pooled AsyncConnection: no worker thread. psycopg, not asyncpg: its pipeline mode sends
what a write queues with the next statement it waits on, and prepares statements itself.

Rules the SQLite store gets from its single writer hold here through three locks
(store.base.Lock). A WORLD write takes one transaction-scoped advisory lock exclusively and
runs alone, as on SQLite. A TASK write (heartbeat, checkpoint, a holder's move, the
monitor's re-queue) takes it shared, so TASK writes run side by side and only keep WORLD
writes out; each locks the rows it changes (`FOR UPDATE`) before deciding on them. A CLAIM
also takes the claim lock exclusively, because every claim reads the WIP counts; its
candidates held by a TASK write are skipped (`SKIP LOCKED`). Each statement (READ COMMITTED)
sees every commit before it. Reads take a REPEATABLE READ snapshot and never wait.
A write that must wait on a row (another session's long transaction holding it) waits a
short while only, then rolls back, freeing its advisory locks for the writes queued behind
it, and runs again until the lock deadline.
docs/postgres.md says more.

A lost connection (a restart, a network cut) before COMMIT is retried on a fresh
connection until a deadline; one lost during COMMIT cannot be retried safely, so it is
reported as unknown, never as done.
"""

import contextlib
import functools
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

import anyio
import psycopg
import psycopg.errors
import psycopg.sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from wvo_mcp.config import Settings
from wvo_mcp.errors import Busy, Overloaded, SchemaTooNew, StoreUnavailable, ValidationFailed
from wvo_mcp.store import bridge
from wvo_mcp.store.base import Alone, Lock, Params, Row, Tx
from wvo_mcp.store.sql import migrations, queries

log = logging.getLogger(__name__)

T = TypeVar("T")
Connection = psycopg.AsyncConnection[dict[str, Any]]
Cursor = psycopg.AsyncCursor[dict[str, Any]]

# wvo-mcp's advisory locks (per database): the world ("wvo" + "w") and the claims ("wvoc").
WRITE_LOCK_KEY = 0x77766F77
CLAIM_LOCK_KEY = 0x77766F63
# Once a write holds its advisory locks, how long it waits for a row (or a table) another
# transaction holds before it rolls back and runs again. wvo-mcp's own writes hold a row for
# milliseconds; a longer wait is mostly a session that is not ours (a person's psql, a
# migration), and every write queued behind the advisory lock this one holds waits with it.
# Below a claim's wait bound (rules/claim_admission.py), so a claim queued behind such a write
# still finds its turn within it.
ROW_WAIT_MS = 150
_ROW_WAIT = f"set_config('lock_timeout', '{ROW_WAIT_MS}', true)"
# A write's first statements: they go out with its first awaited statement (a pipeline).
# Its locks and the row wait are one statement: each statement costs the server a turn of
# psycopg's pipeline, and the target list is evaluated in order (locks, then the wait).
_BEGIN_MIGRATION = ("BEGIN", f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
_LOCKS = {
    Lock.WORLD: f"pg_advisory_xact_lock({WRITE_LOCK_KEY})",
    Lock.TASK: f"pg_advisory_xact_lock_shared({WRITE_LOCK_KEY})",
    # The claim lock first: claims queued for it then hold nothing a WORLD write waits for,
    # else one WORLD write would wait out the whole claim queue with every write behind it.
    Lock.CLAIM: (
        f"pg_advisory_xact_lock({CLAIM_LOCK_KEY}), pg_advisory_xact_lock_shared({WRITE_LOCK_KEY})"
    ),
}
_BEGIN = {lock: ("BEGIN", f"SELECT {locks}, {_ROW_WAIT}") for lock, locks in _LOCKS.items()}
# A write with a wait bound (`within`): its locks wait at most the time left, then a row at
# most the row wait or the time left (each set before what it bounds; parameters: one
# prepared statement).
_LOCKS_WITHIN = {
    lock: f"SELECT set_config('lock_timeout', %s, true), {locks}, "
    "set_config('lock_timeout', %s, true)"
    for lock, locks in _LOCKS.items()
}
_BEGIN_READ = ("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",)
POOL_SIZE = 8  # connections per server process; a write holds one only while it runs
LOCK_TIMEOUT_MS = 15_000  # waiting for the write lock, as long as SQLite's busy deadline
STATEMENT_TIMEOUT_MS = 60_000
RECONNECT_DEADLINE_S = 15.0  # how long a transaction retries through a lost connection (default)
CONNECT_TIMEOUT_S = 5
PREPARED_MAX = 512  # prepared statements kept per connection (queries.sql has some 220)
ITER_FIRST_PAGE = 16  # rows a ranked scan reads first (a claim usually takes the first)
ITER_LAST_PAGE = 1024
# One write in this many folds the queue counts' deltas (migration 0006), at random so that
# servers too short-lived to reach a count fold too: a fold costs about what one write does,
# and a read then sums a few hundred deltas.
FOLD_EVERY = 500
# Retried: the engine aborted the transaction before anything of it was committed.
_RETRY_STATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock


def _locked_too_long(held: str | None, reconnect_s: float) -> Busy:
    """`held`: the row another session holds (_held_row), None for the write lock."""
    return Busy(
        f"the database stayed locked by other writers for {LOCK_TIMEOUT_MS // 1000} s; retry"
        if held is None
        else f"{held} stayed locked by another database session for "
        f"{reconnect_s:.0f} s (a long transaction: pg_stat_activity "
        "shows it); nothing of this call was kept; retry when it ends"
    )


def _overloaded(held: str | None, waited: float, what: str = "the write locks") -> Overloaded:
    """A write refused at its wait bound; `held`: the row it waited for (_held_row)."""
    why = (
        f"{what} did not come within {waited:.2f} s: the deployment is at capacity"
        if held is None
        else f"{held} stayed locked by another database session for {waited:.2f} s (a long "
        "transaction: pg_stat_activity shows it)"
    )
    return Overloaded(why)


def _held_row(exc: psycopg.errors.LockNotAvailable) -> str | None:
    """The row a write waited for, as PostgreSQL's context names it ('a row of tasks'), or
    None for another lock (an advisory lock, a table)."""
    context = exc.diag.context or ""
    if " tuple " not in context:
        return None
    table = context.split(" in relation ", 1)[-1].split("\n", 1)[0].strip('"')
    return f"a row of {table}"


class _Pending:
    """A read sent and not yet read (store.base.Answer): its rows arrive with those of
    whatever was sent beside it, when the first of them is read."""

    def __init__(self, cursor: Cursor) -> None:
        self._cursor = cursor

    def one(self) -> Row | None:
        return bridge.wait(self._cursor.fetchone())

    def all(self) -> list[Row]:
        return list(bridge.wait(self._cursor.fetchall()))

    def value(self) -> Any:
        row = bridge.wait(self._cursor.fetchone())
        return None if row is None else next(iter(row.values()))


class PostgresTx:
    """One transaction, used synchronously (store.base.Tx) in a bridge.run greenlet.
    Statements are pipelined: each is sent at once, and the transaction waits only where
    an answer is read (rows, a row count, the COMMIT), so what `send` queues costs no round
    trip of its own."""

    def __init__(self, conn: Connection, pipeline: psycopg.AsyncPipeline | None = None) -> None:
        self.conn = conn
        self._pipeline = pipeline
        self._sql = queries("postgres")

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        """A statement of its own (a migration's): sent now, answered when read."""
        return bridge.wait(self.conn.execute(sql, params))

    def _named(self, sql: str, params: Params) -> Cursor:
        # Prepared on first use: psycopg otherwise counts a statement's uses and prepares it
        # on the fifth, and in a batch a failed statement aborts (a lock's wait bound), a
        # prepare it queued never happens but is remembered as done.
        return bridge.wait(self.conn.execute(sql, params, prepare=True))

    def _answered(self) -> None:
        if self._pipeline is not None:
            bridge.wait(self._pipeline.sync())

    def run(self, name: str, params: Params = ()) -> int:
        cur = self._named(self._sql[name], params)
        self._answered()
        return cur.rowcount

    def send(self, name: str, params: Params = ()) -> None:
        self._named(self._sql[name], params)

    def many(self, name: str, rows: Sequence[Params]) -> int:
        cur = self.conn.cursor()
        bridge.wait(cur.executemany(self._sql[name], rows))
        self._answered()
        return cur.rowcount

    def ask(self, name: str, params: Params = ()) -> _Pending:
        return _Pending(self._named(self._sql[name], params))

    def one(self, name: str, params: Params = ()) -> Row | None:
        return self.ask(name, params).one()

    def all(self, name: str, params: Params = ()) -> list[Row]:
        return self.ask(name, params).all()

    def iter(self, name: str, params: Params = ()) -> Iterator[Row]:
        """Rows a page at a time (LIMIT/OFFSET, pages growing fourfold): a ranked scan that
        stops at the first row that fits costs one round trip and reads one small page.
        The first page is asked for at once, so in a write's pipeline two scans begun
        together (a claim's expired leases and ready tasks) share one round trip.
        A read's pages agree with each other (one snapshot); in a write, another task's
        write between two pages can shift a row across their edge, which a claim, the one
        write that scans, only sees as a candidate skipped or offered twice. (A server-side
        cursor would cost three round trips.)"""
        sql = self._sql[name].rstrip().rstrip(";")
        named = isinstance(params, Mapping)
        paged = sql + (" LIMIT %(_limit)s OFFSET %(_offset)s" if named else " LIMIT %s OFFSET %s")

        def page(offset: int, size: int) -> Cursor:
            if isinstance(params, Mapping):
                return self._named(paged, {**params, "_limit": size, "_offset": offset})
            return self._named(paged, (*params, size, offset))

        def pages(first: Cursor) -> Iterator[Row]:
            offset, size, cursor = 0, ITER_FIRST_PAGE, first
            while True:
                rows = bridge.wait(cursor.fetchall())
                yield from rows
                if len(rows) < size:
                    return
                offset += size
                size = min(size * 4, ITER_LAST_PAGE)
                cursor = page(offset, size)

        return pages(page(0, ITER_FIRST_PAGE))

    def value(self, name: str, params: Params = ()) -> Any:
        return self.ask(name, params).value()


@functools.cache
def _call_sql(function: str, args: int) -> str:
    return f"SELECT * FROM {function}({', '.join(['%s'] * (3 + args))})"


async def _call(conn: Connection, alone: Alone[T], until: float | None) -> T:
    """A TASK write as one call of a function that takes its own locks (store.base.Alone),
    in autocommit: no BEGIN, lock statement or COMMIT, each of which costs this server a
    turn of psycopg. Its waits are bounded as a transaction's (_LOCKS_WITHIN): the world
    lock the time left, then a row at most the row wait."""
    left = LOCK_TIMEOUT_MS if until is None else max(1, int(1000 * (until - time.monotonic())))
    waits = (WRITE_LOCK_KEY, f"{left}ms", f"{min(left, ROW_WAIT_MS)}ms")
    sql = _call_sql(alone.function, len(alone.args))
    cursor = await conn.execute(sql, (*waits, *alone.args), prepare=True)
    return alone.read(await cursor.fetchone())


async def _configure(conn: Connection) -> None:
    # Room for every named query a server uses, prepared (PostgresTx._named): psycopg's 100
    # would deallocate and prepare again the ones a fleet's calls take turns with.
    conn.prepared_max = PREPARED_MAX


class PostgresDatabase:
    """A PostgreSQL database shared by every server (store.base.Database)."""

    engine = "postgresql"

    def __init__(
        self, url: str, pool_size: int | None = None, reconnect_seconds: float | None = None
    ) -> None:
        self.url = url
        self._label = Settings(database_url=url).database_label
        self.pool_size = pool_size or POOL_SIZE
        self._reconnect_s = reconnect_seconds  # None: RECONNECT_DEADLINE_S
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._closing = False  # close() began: a lost connection is not retried
        # When a connection was last seen lost, by a transaction or by the pool's counts.
        self._lost_at = -math.inf
        self._pool_errors = 0  # the pool's counts of failed and lost connections, last seen
        self._claim_turn = anyio.Lock()

    def describe(self) -> str:
        return self._label

    @property
    def reconnect_s(self) -> float:
        """How long a call rides out a lost database (WVO_DATABASE_RECONNECT_SECONDS)."""
        return RECONNECT_DEADLINE_S if self._reconnect_s is None else self._reconnect_s

    async def open(self) -> "PostgresDatabase":
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self.url,
            connection_class=psycopg.AsyncConnection[dict[str, Any]],
            min_size=1,
            max_size=self.pool_size,
            open=False,
            name="wvo",
            kwargs={
                "autocommit": True,  # transactions are begun explicitly, in one round trip
                "row_factory": dict_row,
                "connect_timeout": CONNECT_TIMEOUT_S,
                "application_name": "wvo-mcp",
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
                "options": (
                    f"-c lock_timeout={LOCK_TIMEOUT_MS} "
                    f"-c statement_timeout={STATEMENT_TIMEOUT_MS} "
                    "-c idle_in_transaction_session_timeout=60000"
                ),
            },
            reconnect_timeout=self.reconnect_s,
            configure=_configure,
        )
        self._pool = pool
        try:
            try:
                await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
            except PoolTimeout:
                raise StoreUnavailable(
                    f"cannot connect to {self.describe()}: is PostgreSQL running there, and "
                    "may this user connect? (WVO_DATABASE_URL names it)"
                ) from None
            # A migration may wait on readers' table locks as long as the lock timeout allows.
            await self._transaction(self._migrate, _BEGIN_MIGRATION, pipelined=False)
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        self._closing = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> "PostgresDatabase":
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def notified(self, channel: str) -> AsyncIterator[None]:
        """store.base.Database.notified, on a connection of its own (a pooled one would hold
        its LISTEN for whoever takes it next)."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                application_name="wvo-mcp listen", keepalives=1, keepalives_idle=10,
                keepalives_interval=5, keepalives_count=3,  # a server gone is found out
            )  # fmt: skip
        except psycopg.OperationalError:
            return
        async with conn:
            try:
                await conn.execute(psycopg.sql.SQL("LISTEN {}").format(
                    psycopg.sql.Identifier(channel)))  # fmt: skip
                yield
                async for _ in conn.notifies():
                    yield
            except psycopg.OperationalError:
                return

    async def read(
        self, fn: Callable[[Tx], T], snapshot: bool = True, within: float | None = None
    ) -> T:
        # A snapshot is pipelined like a write (its BEGIN goes out with its first read);
        # one statement in its own snapshot has nothing to send beside it.
        begin = _BEGIN_READ if snapshot else ()
        until = None if within is None else time.monotonic() + within
        return await self._transaction(fn, begin, snapshot, until=until)

    async def write(
        self, fn: Callable[[Tx], T], lock: Lock = Lock.WORLD, within: float | None = None
    ) -> T:
        result: T = await self._write(fn, lock, then_read=False, within=within)
        return result

    async def write_then_read(
        self,
        fn: Callable[[Tx], Callable[[], T]],
        lock: Lock = Lock.WORLD,
        within: float | None = None,
        alone: Alone[T] | None = None,
    ) -> T:
        read: T = await self._write(fn, lock, then_read=True, within=within, alone=alone)
        return read

    async def _write(
        self,
        fn: Callable[[Tx], Any],
        lock: Lock,
        then_read: bool,
        within: float | None,
        alone: Alone[Any] | None = None,
    ) -> Any:
        until = None if within is None else time.monotonic() + within
        if alone is not None and lock is Lock.TASK:
            result = await self._transaction(fn, (), False, then_read, until, lock, alone)
        elif lock is not Lock.CLAIM:
            result = await self._transaction(fn, _BEGIN[lock], True, then_read, until, lock)
        else:
            # Claims take turns across the deployment anyway: one at a time per process
            # waits for its turn here, holding no connection, so the other claims queued in
            # this process cannot take every pooled connection from heartbeats meanwhile.
            if within is None:
                await self._claim_turn.acquire()
            else:
                acquired = False
                with anyio.move_on_after(within):
                    await self._claim_turn.acquire()
                    acquired = True
                if not acquired:
                    raise _overloaded(None, within, "this server's turn to claim")
            try:
                result = await self._transaction(fn, _BEGIN[lock], True, then_read, until, lock)
            finally:
                self._claim_turn.release()
        # Never after a claim: a turn of claims waits for its writes (orchestrator/turns.py).
        if lock is not Lock.CLAIM and random.random() < 1 / FOLD_EVERY:
            await self._fold()
        return result

    async def _fold(self) -> None:
        """The queue counts' deltas into their base: one statement, its own transaction,
        invisible to every reader (each sees the same counts before and after)."""
        assert self._pool is not None
        try:
            async with self._pool.connection(timeout=LOCK_TIMEOUT_MS / 1000) as conn:
                await conn.execute("SELECT fold_queue_counts()")
        except (psycopg.Error, PoolTimeout) as exc:
            log.info("queue counts not folded this time (%s); the next fold takes them", exc)

    async def _transaction(
        self,
        fn: Callable[[PostgresTx], T],
        begin: tuple[str, ...],
        pipelined: bool,
        then_read: bool = False,
        until: float | None = None,
        lock: Lock | None = None,
        alone: Alone[Any] | None = None,
    ) -> T:
        """`fn` in one transaction, retried as the engine allows; `then_read`: what `fn`
        returns is called once the COMMIT (sent with its statements) is answered. `until`:
        no wait for a connection (or a write's `lock`) past it, else Overloaded, with
        nothing done. `alone`: sent instead of `fn`, its own transaction (_call)."""
        pool = self._pool
        if pool is None:
            raise RuntimeError("database is not open")
        started = time.monotonic()
        deadline = started + self.reconnect_s
        attempt = 0
        held: str | None = None  # the row the last try waited for
        # The database was lost or is away: past capacity is not the cause, so the write
        # rides it out to the reconnect deadline, as one without a bound does.
        away = False
        while True:
            committing = False
            try:
                wait = max(0.1, min(LOCK_TIMEOUT_MS / 1000, deadline - time.monotonic()))
                if until is not None and not away:
                    wait = until - time.monotonic()
                    if wait <= 0:
                        raise _overloaded(held, time.monotonic() - started)
                async with pool.connection(timeout=wait) as conn:
                    try:
                        if alone is not None:
                            return cast(T, await _call(conn, alone, until))
                        pipeline = conn.pipeline() if pipelined else contextlib.nullcontext()
                        async with pipeline as pipe:
                            if until is not None and lock is not None:
                                left = max(1, int(1000 * (until - time.monotonic())))
                                row = min(left, ROW_WAIT_MS)
                                await conn.execute("BEGIN")
                                await conn.execute(_LOCKS_WITHIN[lock], (f"{left}ms", f"{row}ms"))
                            else:
                                for statement in begin:
                                    await conn.execute(statement)
                            result = await bridge.run(fn, PostgresTx(conn, pipe))
                            if begin:
                                committing = True  # with what is still queued, in a pipeline
                                # As its text, never a prepared statement's name: a COMMIT
                                # stays recognisable on the wire (the cut-at-commit test).
                                await conn.execute("COMMIT", prepare=False)
                        if then_read:
                            return cast(T, await bridge.run(cast(Callable[[], T], result)))
                        return result
                    except BaseException:
                        # Also after a failed COMMIT: a pipelined statement failing there
                        # leaves the transaction open, aborted. Shielded: a cancelled call
                        # still gives its connection back clean.
                        with anyio.CancelScope(shield=True):
                            if not conn.broken and conn.info.transaction_status:
                                await conn.execute("ROLLBACK")
                        raise
            except PoolTimeout:
                bounded = until is not None and not away
                if bounded and not self._maybe_away():
                    raise _overloaded(None, wait, "a database connection") from None
                if bounded and time.monotonic() < deadline and not await self._reachable():
                    away = True
                    continue
                raise await self._no_connection(wait, bounded=bounded) from None
            except psycopg.errors.LockNotAvailable as exc:
                # An advisory lock's wait is the whole lock timeout, past the deadline; a
                # row's or a table's is ROW_WAIT_MS, then the write runs again.
                held = _held_row(exc)
                if until is not None and (held is None or time.monotonic() > until):
                    raise _overloaded(held, time.monotonic() - started) from None
                if time.monotonic() > deadline:
                    raise _locked_too_long(held, self.reconnect_s) from None
                # Rolled back whole: its advisory locks are free for the writes behind it.
                attempt += 1
                log.debug("%s is locked; retrying (attempt %d)", held or "a table", attempt)
                await anyio.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
            except psycopg.DataError as exc:
                # psycopg refuses to send it, before the statement runs. SQLite keeps a NUL.
                if "NUL" not in str(exc):
                    raise
                raise ValidationFailed(
                    "text with a NUL character (\\0) cannot be stored: PostgreSQL text holds "
                    "none; send the text without it (nothing of this call was kept)"
                ) from None
            except psycopg.errors.QueryCanceled:
                raise Busy(
                    f"a database statement ran past {STATEMENT_TIMEOUT_MS // 1000} s and was "
                    "cancelled; nothing of it was kept; retry"
                ) from None
            except psycopg.OperationalError as exc:
                if exc.sqlstate not in _RETRY_STATES:  # else aborted whole: safe to run again
                    self._lost_at = time.monotonic()
                    self._check_reconnect(exc, committing, deadline)
                    away = True
                attempt += 1
                log.info("database connection lost (%s); retrying (attempt %d)", exc, attempt)
                await anyio.sleep(random.uniform(0, min(1.0, 0.01 * 2**attempt)))

    async def _no_connection(self, waited: float, bounded: bool = False) -> StoreUnavailable | Busy:
        """Why no pooled connection came: the database is gone, or every one stayed busy
        (`bounded`: past a write's wait bound, Overloaded)."""
        if not await self._reachable():
            return StoreUnavailable(
                f"the database at {self.describe()} cannot be reached; nothing of this "
                "call was kept; retry when it is back"
            )
        if bounded:
            return _overloaded(None, waited, "a database connection")
        return Busy(
            f"all {self.pool_size} database connections of this server stayed busy "
            f"for {waited:.0f} s; retry"
        )

    def _check_reconnect(
        self, exc: psycopg.OperationalError, committing: bool, deadline: float
    ) -> None:
        """A lost connection is retried, unless it was lost while committing (whether the
        change was kept is unknown), the store is closing, or the deadline passed."""
        if committing:
            raise StoreUnavailable(
                "the connection to the database was lost while committing, so whether "
                "this change was kept is unknown: read the current state (task_get) "
                "before trying again"
            ) from exc
        if self._closing or time.monotonic() > deadline:
            raise StoreUnavailable(
                f"the database at {self.describe()} cannot be reached ({exc}); nothing "
                "of this call was kept; retry when it is back"
            ) from exc

    def _maybe_away(self) -> bool:
        """Whether a pool that gave no connection in time may have lost the database (a
        probe then says): a connection was lost or failed lately, or the pool is not full.
        Else every connection is live and in use: the deployment is at capacity, and a probe
        (a new connection each time one is refused) would only add to its load."""
        assert self._pool is not None
        stats = self._pool.get_stats()
        now = time.monotonic()
        errors = stats.get("connections_errors", 0) + stats.get("connections_lost", 0)
        if errors != self._pool_errors:
            self._pool_errors, self._lost_at = errors, now
        return now - self._lost_at < self.reconnect_s or stats["pool_size"] < self.pool_size

    async def _reachable(self) -> bool:
        """Whether a new connection can be made now (the pool waits, it does not say why)."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.url, connect_timeout=CONNECT_TIMEOUT_S
            )
        except psycopg.Error:
            return False
        await conn.close()
        return True

    def _migrate(self, tx: PostgresTx) -> None:
        tx.execute("CREATE TABLE IF NOT EXISTS wvo_schema_version (version integer NOT NULL)")
        asked = tx.execute("SELECT max(version) AS v FROM wvo_schema_version")
        found = bridge.wait(asked.fetchone())
        current = (found or {}).get("v") or 0
        steps = migrations("postgres")
        latest = steps[-1][0]
        if current > latest:
            raise SchemaTooNew(
                f"{self.describe()} has schema version {current}, but this wvo-mcp knows up to "
                f"{latest}; upgrade wvo-mcp (or point WVO_DATABASE_URL at another database)"
            )
        for version, name, script in steps:
            if version <= current:
                continue
            log.info("migrating %s to schema %d (%s)", self.describe(), version, name)
            tx.execute(script)
            tx.execute("INSERT INTO wvo_schema_version (version) VALUES (%s)", (version,))
