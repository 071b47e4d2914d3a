"""A synchronous transaction function run on the event loop over an async connection.

Services write a transaction as one synchronous function of a `Tx` (store.base); SQLite
runs it as it is. PostgreSQL's connection is psycopg's AsyncConnection, and the function
runs in a greenlet of the event loop's own thread: where it needs an answer, `wait` hands
the connection's coroutine to the transaction's task, which awaits it and switches back
with the answer. No worker thread and no hop per transaction; the function stays the one
the contract suite runs on both engines (SQLAlchemy's asyncio support works the same way).
"""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import greenlet

T = TypeVar("T")


class _Transaction(greenlet.greenlet):
    """The greenlet a transaction function runs in: only its `wait`s reach the loop."""


async def run(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a greenlet, each coroutine it `wait`s for awaited here."""
    task = greenlet.getcurrent()
    child = _Transaction(fn, task)
    # The function sees this task's context variables (the request's span, say).
    child.gr_context = task.gr_context
    asked = child.switch(*args)
    while not child.dead:
        try:
            answer = await cast(Awaitable[Any], asked)
        except BaseException as exc:  # the function's to handle (a rollback, say)
            asked = child.throw(exc)
        else:
            asked = child.switch(answer)
    return cast(T, asked)


def wait(awaitable: Awaitable[T]) -> T:
    """In a transaction function run by `run`: the awaitable's result."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Transaction) or current.parent is None:
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()  # never awaited: no "coroutine was never awaited" warning
        raise RuntimeError("a PostgreSQL transaction function runs through store.bridge.run")
    return cast(T, current.parent.switch(awaitable))
