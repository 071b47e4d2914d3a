"""A process's claims, served together: each turn of the claim lock takes every claim queued.

Claims take turns across the deployment (store.Lock.CLAIM), and a turn's cost is mostly its
waits: for the lock, and between its round trips for the event loop. One turn for the claims
queued in this process pays those once (services/claims.best_then_read asks their reads
together), so a burst of claims is served in a few turns, not one a claim. The claim that
finds no turn under way leads one; claims arriving meanwhile wait, and when it ends the
first of them leads the next, with all queued by then (at most `most`).

A turn is shielded from its leader's cancellation (a client gone): the other claims ride
on it, and its waits are bounded (the claims' wait bound, the store's reconnect deadline).
A claim cancelled while queued is dropped, nothing of it done; one cancelled in a turn
under way may be granted, as a claim cancelled while its COMMIT is answered may be, and its
lease runs out unused.
"""

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio

from wvo_mcp.errors import Busy

I = TypeVar("I")  # noqa: E741 (an item queued)
R = TypeVar("R")

Serve = Callable[[Sequence[I]], Awaitable[Sequence[R | Exception]]]


@dataclass(eq=False)
class _Place(Generic[I, R]):
    item: I
    called: anyio.Event = field(default_factory=anyio.Event)
    leads: bool = False  # called to lead the next turn
    served: bool = False
    outcome: R | Exception | None = None

    def result(self) -> R:
        if isinstance(self.outcome, Exception):
            # One exception may be each claim's of a failed turn: raised afresh in each.
            raise self.outcome.with_traceback(None)
        assert self.served
        return self.outcome  # type: ignore[return-value]


class Turns(Generic[I, R]):
    """One process's claims waiting for their turn (orchestrator/claim_admission.best_in_turn)."""

    def __init__(self, most: int) -> None:
        self._queue: list[_Place[I, R]] = []
        self._leading = False
        self._most = most

    def __len__(self) -> int:
        return len(self._queue)

    async def take(self, item: I, serve: Serve[I, R], within: float = math.inf) -> R:
        """`item`'s outcome from `serve`, called with it and the items queued beside it,
        in arrival order; raised if it is an exception. TimeoutError, nothing of it done,
        when no turn took it within `within` seconds."""
        place: _Place[I, R] = _Place(item)
        self._queue.append(place)
        if self._leading:
            try:
                with anyio.move_on_after(within):
                    await place.called.wait()
                if not place.called.is_set():
                    if place in self._queue:
                        self._queue.remove(place)  # still queued: it waits no longer
                        raise TimeoutError
                    await place.called.wait()  # in a turn under way: answered with it
            except BaseException:
                if place in self._queue:
                    self._queue.remove(place)  # never served: nothing of it was done
                if place.leads:
                    self._call_next()
                raise
            if not place.leads:
                return place.result()
        self._leading = True
        turn, self._queue = self._queue[: self._most], self._queue[self._most :]
        outcomes: Sequence[R | Exception]
        try:
            with anyio.CancelScope(shield=True):
                outcomes = await serve([p.item for p in turn])
        except Exception as exc:
            outcomes = [exc] * len(turn)
        except BaseException:  # the process stops: the claims of the turn are told so
            self._settle(turn, [Busy("this server is stopping; claim again")] * len(turn))
            raise
        self._settle(turn, outcomes)
        return place.result()

    def _settle(self, turn: list[_Place[I, R]], outcomes: Sequence[R | Exception]) -> None:
        self._call_next()
        if len(outcomes) != len(turn):  # never left waiting, whatever `serve` answered
            outcomes = [RuntimeError(f"a turn of {len(turn)} answered {len(outcomes)}")] * len(turn)
        for served, outcome in zip(turn, outcomes, strict=True):
            served.outcome, served.served = outcome, True
            served.called.set()

    def _call_next(self) -> None:
        """The first claim queued leads the next turn, or none is under way."""
        if not self._queue:
            self._leading = False
            return
        first = self._queue[0]
        first.leads = True
        first.called.set()
