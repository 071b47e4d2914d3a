"""A process's claims served together (orchestrator/turns.py): who leads a turn, what each
turn takes, and what a cancelled claim leaves behind."""

from collections.abc import Callable, Sequence

import anyio
import anyio.lowlevel
import pytest

from wvo_mcp.errors import Busy
from wvo_mcp.orchestrator.turns import Turns

pytestmark = pytest.mark.anyio


class Server:
    """A `serve` whose turns end when the test says: each turn's items are recorded."""

    def __init__(self) -> None:
        self.turns: list[list[int]] = []
        self.began = anyio.Event()
        self.end = anyio.Event()

    async def serve(self, items: Sequence[int]) -> list[int | Exception]:
        self.turns.append(list(items))
        self.began.set()
        await self.end.wait()
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    async def next_turn(self) -> None:
        """Ends the turn under way, and waits for the next to begin."""
        self.began = anyio.Event()
        self.end.set()
        self.end = anyio.Event()
        await self.began.wait()


async def until(done: Callable[[], bool]) -> None:
    """Lets the other tasks run until `done`: a bounded poll of the queue, which has no
    event to wait on."""
    with anyio.fail_after(5):
        while not done():
            await anyio.lowlevel.checkpoint()


async def wait_queued(turns: Turns[int, int], n: int) -> None:
    await until(lambda: len(turns) >= n)


async def test_claims_queued_during_a_turn_are_served_together_in_the_next() -> None:
    turns: Turns[int, int] = Turns(most=16)
    server = Server()
    got: dict[int, int | str] = {}

    async def take(i: int) -> None:
        try:
            got[i] = await turns.take(i, server.serve)
        except ValueError as exc:
            got[i] = str(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(take, 0)
        await server.began.wait()
        for i in (2, 3, 4):
            tg.start_soon(take, i)
        await wait_queued(turns, 3)
        await server.next_turn()
        server.end.set()
    assert server.turns == [[0], [2, 3, 4]]
    assert got == {0: 0, 2: 20, 3: "odd 3", 4: 40}  # an item's exception is its own
    assert len(turns) == 0


async def test_a_turn_takes_at_most_its_most_and_the_rest_wait_for_the_next() -> None:
    turns: Turns[int, int] = Turns(most=2)
    server = Server()
    async with anyio.create_task_group() as tg:
        tg.start_soon(turns.take, 0, server.serve)
        await server.began.wait()
        for i in (2, 4, 6):
            tg.start_soon(turns.take, i, server.serve)
        await wait_queued(turns, 3)
        await server.next_turn()
        await server.next_turn()
        server.end.set()
    assert server.turns == [[0], [2, 4], [6]]


async def test_a_failed_turn_fails_each_of_its_claims_and_the_next_turn_still_runs() -> None:
    turns: Turns[int, int] = Turns(most=16)
    calls: list[list[int]] = []
    release = anyio.Event()

    async def serve(items: Sequence[int]) -> list[int | Exception]:
        calls.append(list(items))
        await release.wait()
        if 0 in items:
            raise Busy("the database went away")
        return list(items)

    got: dict[int, object] = {}

    async def take(i: int) -> None:
        try:
            got[i] = await turns.take(i, serve)
        except Busy as exc:
            got[i] = exc

    async with anyio.create_task_group() as tg:
        tg.start_soon(take, 0)
        await wait_queued(turns, 0)
        await until(lambda: bool(calls))
        tg.start_soon(take, 2)
        await wait_queued(turns, 1)
        release.set()
    assert calls == [[0], [2]]
    assert isinstance(got[0], Busy) and got[2] == 2


async def test_a_claim_cancelled_while_queued_is_never_served() -> None:
    turns: Turns[int, int] = Turns(most=16)
    server = Server()
    gone = anyio.CancelScope()

    async def queued() -> None:
        with gone:
            await turns.take(2, server.serve)

    async with anyio.create_task_group() as tg:
        tg.start_soon(turns.take, 0, server.serve)
        await server.began.wait()
        tg.start_soon(queued)
        await wait_queued(turns, 1)
        tg.start_soon(turns.take, 4, server.serve)
        await wait_queued(turns, 2)
        gone.cancel()
        await until(lambda: len(turns) == 1)
        await server.next_turn()
        server.end.set()
    assert server.turns == [[0], [4]]


async def test_a_leader_cancelled_mid_turn_still_serves_the_others() -> None:
    turns: Turns[int, int] = Turns(most=16)
    server = Server()
    got: dict[int, int] = {}

    async def take(i: int) -> None:
        got[i] = await turns.take(i, server.serve)

    async with anyio.create_task_group() as tg:
        leader = anyio.CancelScope()

        async def lead() -> None:
            with leader:
                await take(0)

        tg.start_soon(lead)
        await server.began.wait()
        tg.start_soon(take, 2)
        await wait_queued(turns, 1)
        leader.cancel()  # its client went away: the turn under way ends as it would
        await server.next_turn()
        server.end.set()
    assert server.turns == [[0], [2]]
    assert got == {0: 0, 2: 20}  # the turn under way ended as it would have


async def test_a_claim_called_to_lead_but_cancelled_passes_the_lead_on() -> None:
    turns: Turns[int, int] = Turns(most=1)
    second = anyio.CancelScope()
    served: list[list[int]] = []
    queued = anyio.Event()

    async def serve(items: Sequence[int]) -> list[int | Exception]:
        served.append(list(items))
        if items == [0]:
            await queued.wait()
            second.cancel()  # as the turn ends and calls 2 to lead, 2's client goes
        return [i * 10 for i in items]

    got: dict[int, int] = {}

    async def take(i: int) -> None:
        got[i] = await turns.take(i, serve)

    async def cancelled() -> None:
        with second:
            await take(2)

    async with anyio.create_task_group() as tg:
        tg.start_soon(take, 0)
        await wait_queued(turns, 0)
        tg.start_soon(cancelled)
        await wait_queued(turns, 1)
        tg.start_soon(take, 4)
        await wait_queued(turns, 2)
        queued.set()
    assert served == [[0], [4]] and got == {0: 0, 4: 40}
    assert len(turns) == 0


async def test_a_claim_no_turn_took_in_time_leaves_the_queue_with_nothing_done() -> None:
    turns: Turns[int, int] = Turns(most=16)
    server = Server()
    got: dict[int, object] = {}

    async def take(i: int, within: float) -> None:
        try:
            got[i] = await turns.take(i, server.serve, within)
        except TimeoutError as exc:
            got[i] = exc

    async with anyio.create_task_group() as tg:
        tg.start_soon(take, 0, 0.01)  # leads at once: its bound is the turn's to keep
        await server.began.wait()
        tg.start_soon(take, 2, 0.01)
        tg.start_soon(take, 4, 60)
        await wait_queued(turns, 2)
        await until(lambda: 2 in got)  # the turn under way never ends while it waits
        await server.next_turn()
        server.end.set()
    assert isinstance(got[2], TimeoutError)
    assert server.turns == [[0], [4]] and got[0] == 0 and got[4] == 40
