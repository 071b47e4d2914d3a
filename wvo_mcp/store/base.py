"""The store's interface: what services may use of a database, whatever engine holds it.

The store's interface: what services and the orchestrator may use of a database,
whichever engine holds it.

A transaction is a synchronous function of a `Tx`, which knows only named queries (the
same names in every dialect) and answers rows that read by column name. Each backend runs
the function whole: reads in one consistent snapshot, writes as their `Lock` says,
re-running the function when the engine asks for a retry.
"""

import enum
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
Params = Mapping[str, Any] | Sequence[Any]


class Lock(enum.Enum):
    """What a write keeps out while it runs. SQLite has one writer, so all three are the
    same there; PostgreSQL takes them as advisory locks (docs/postgres.md, "Locks")."""

    # Nothing else writes meanwhile: every rule holds as on SQLite's single writer.
    WORLD = "world"
    # Writes only rows it locks (or conditions on) first: one task, its dependents, its
    # agent. Runs beside every other TASK and CLAIM write; a WORLD write waits for it.
    TASK = "task"
    # A claim: a TASK write that also reads the WIP counts, so claims run one at a time.
    CLAIM = "claim"


class Row(Protocol):
    """A result row: columns by name (Row, or a dict on PostgreSQL)."""

    def __getitem__(self, key: str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...


class Answer(Protocol):
    """A read asked for before its rows are read (`Tx.ask`); read it once."""

    def one(self) -> Row | None: ...

    def all(self) -> list[Row]: ...

    def value(self) -> Any:
        """The first column of the first row, or None."""
        ...


class Tx(Protocol):
    """One transaction, used synchronously."""

    def run(self, name: str, params: Params = ()) -> int:
        """Execute; the number of rows changed."""
        ...

    def send(self, name: str, params: Params = ()) -> None:
        """Execute without waiting for it: PostgreSQL sends it with the next statement whose
        answer is awaited (or the COMMIT). For a change whose row count nobody reads; an
        error in it surfaces there, failing the whole transaction."""
        ...

    def many(self, name: str, rows: Sequence[Params]) -> int: ...

    def ask(self, name: str, params: Params = ()) -> Answer:
        """Send a read now and read its rows later: on PostgreSQL, reads asked together
        (and the first pages of scans begun with them) share one round trip. It answers as
        of when it was asked, whatever the transaction changes before it is read."""
        ...

    def one(self, name: str, params: Params = ()) -> Row | None: ...

    def all(self, name: str, params: Params = ()) -> list[Row]: ...

    def iter(self, name: str, params: Params = ()) -> Iterator[Row]:
        """Rows one at a time, so a ranked scan stops at the first row that fits."""
        ...

    def value(self, name: str, params: Params = ()) -> Any:
        """The first column of the first row, or None."""
        ...


@dataclass(frozen=True)
class Alone(Generic[T]):
    """A TASK write as one call of a database function that takes its own locks, which a
    store that has the function may send instead of the write's transaction (PostgreSQL:
    one statement in autocommit, rather than BEGIN, locks, statements and COMMIT; a
    migration defines it). `function` takes the world lock's key, the longest wait for it
    and then for a row (lock_timeout text), then `args` in order, and takes the world lock
    shared, as a TASK write does; `read` turns its first row (None: it has none) into the
    write's answer. It may run again after a lost connection, so it must be idempotent."""

    function: str
    args: Sequence[Any]
    read: Callable[[Row | None], T]


class Database(Protocol):
    """An open store. `describe` names it for people (never with a password)."""

    @property
    def engine(self) -> str: ...

    def describe(self) -> str: ...

    async def open(self) -> "Database": ...

    async def close(self) -> None: ...

    async def read(
        self, fn: Callable[[Tx], T], snapshot: bool = True, within: float | None = None
    ) -> T:
        """Run `fn` in one read-only transaction (a consistent snapshot). `snapshot=False`
        for a function of one statement, which needs none: it then costs one round trip.
        `within`: the seconds it may wait for a connection, else Overloaded (None: the
        store's own deadlines)."""
        ...

    async def write(
        self, fn: Callable[[Tx], T], lock: Lock = Lock.WORLD, within: float | None = None
    ) -> T:
        """Run `fn` in one write transaction, keeping out what `lock` says; `fn` may be
        re-run, so it must not act outside the transaction. `within`: the seconds it may
        wait for its turn, its locks and a connection, else Overloaded with nothing done
        (None: the store's own deadlines, many seconds)."""
        ...

    def notified(self, channel: str) -> AsyncIterator[None]:
        """Once listening begins (what came before is read then), and again each time a
        write anywhere notifies `channel`; it ends when the connection is lost. SQLite
        notifies no one: it ends at once, and its readers read every pass."""
        ...

    async def write_then_read(
        self,
        fn: Callable[[Tx], Callable[[], T]],
        lock: Lock = Lock.WORLD,
        within: float | None = None,
        alone: Alone[T] | None = None,
    ) -> T:
        """`write`, for a transaction that waits on no answer: `fn` sends and asks, and
        returns what reads its answers, called once the transaction is committed. On
        PostgreSQL the COMMIT then goes out with its statements: one round trip. `alone`:
        the same TASK write as one function call, sent instead where the store has it
        (PostgreSQL); SQLite runs `fn`."""
        ...
