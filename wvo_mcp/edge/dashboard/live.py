"""The dashboard's live view: one poller per process sends changes to every viewer.

The dashboard's live view: ONE change-cursor poller per process, whatever the number of
viewers. Started with the first subscriber and stopped with the last, it reads every
POLL_SECONDS, in one read transaction, the events past its cursor (and the held tasks'
renewals, which write no event, and a mark per view: usage reports, health ticks, autopilot
rounds); then the changed tasks' cards, once per distinct set of filters among the viewers
(so fifty viewers of the whole board cost one read, not fifty); and hands each subscriber's
bounded buffer its cards and the changed views. Any process on any host that writes the
database is seen, since the event log is in the database."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.services.board import Card, Filters

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
BATCH = 1000  # events read per transaction; more are read at once, without a pause
BUFFER = 1000  # task ids a subscriber may have waiting; past it, it is told to reload


@dataclass
class Change:
    """What a subscriber is told: these tasks changed, and the cards of those that pass its
    filters (the others leave its board), up to event `cursor`; or, `reset`, too many to
    say: reload the board. The counts as they are now; which of the other views changed."""

    cursor: int
    task_ids: list[str]
    cards: list[Card]
    counts: dict[str, int]
    reset: bool = False
    views: list[str] = field(default_factory=list)


@dataclass(eq=False)
class Subscriber:
    cursor: int
    filters: Filters
    cards: dict[str, Card | None] = field(default_factory=dict)  # by id; None: filtered out
    counts: dict[str, int] = field(default_factory=dict)
    reset: bool = False
    views: set[str] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(
        self,
        cursor: int,
        task_ids: list[str],
        cards: list[Card],
        counts: dict[str, int],
        views: Iterable[str] = (),
    ) -> None:
        self.cursor = max(self.cursor, cursor)
        self.counts = counts
        self.views.update(views)
        if not self.reset:
            found = {card.id: card for card in cards}
            for task_id in task_ids:
                self.cards.pop(task_id, None)  # keep the order of the latest change
                self.cards[task_id] = found.get(task_id)
            if len(self.cards) > BUFFER:
                self.reset, self.cards = True, {}
        self.ready.set()

    async def next(self, wait_seconds: float) -> Change | None:
        """The changes gathered since the last call; None after `wait_seconds` without any."""
        try:
            await asyncio.wait_for(self.ready.wait(), wait_seconds)
        except TimeoutError:
            return None
        self.ready.clear()
        cards = [card for card in self.cards.values() if card is not None]
        change = Change(
            self.cursor, list(self.cards), cards, self.counts, self.reset, sorted(self.views)
        )
        self.cards, self.reset, self.views = {}, False, set()
        return change


class Hub:
    """The process's one poller and its subscribers."""

    def __init__(self, orchestrator: Callable[[], Orchestrator | None]) -> None:
        self.orchestrator = orchestrator
        self.subscribers: set[Subscriber] = set()
        self.cursor = 0
        self.beats: dict[str, str | None] = {}
        self.marks: dict[str, str] = {}
        self.poller: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()

    def _open(self) -> Orchestrator:
        found = self.orchestrator()
        if found is None:
            raise RuntimeError("the server's database is not open")
        return found

    @asynccontextmanager
    async def subscribe(self, after: int | None, filters: Filters) -> AsyncIterator[Subscriber]:
        """Changes past event `after` (None: from now on), with the cards that pass
        `filters`, until the block ends."""
        async with self.lock:
            if self.poller is None:
                first = await self._open().board_changes(2**62, 1)
                self.cursor = await self._open().last_event_id()
                self.beats, self.marks = first.beats, first.marks
                self.poller = asyncio.create_task(self._poll(), name="wvo-dashboard-poller")
            subscriber = Subscriber(self.cursor, filters)
            self.subscribers.add(subscriber)
            cursor = self.cursor
        try:
            if after is not None and after < cursor:
                await self._catch_up(subscriber, after, cursor)
            yield subscriber
        finally:
            async with self.lock:
                self.subscribers.discard(subscriber)
                if not self.subscribers and self.poller is not None:
                    self.poller.cancel()
                    self.poller = None

    async def _catch_up(self, subscriber: Subscriber, after: int, upto: int) -> None:
        """A reconnecting viewer (Last-Event-ID) gets what it missed; too much: reload."""
        db = self._open()
        changes = await db.board_changes(after, BUFFER)
        if changes.full and changes.cursor < upto:
            subscriber.reset = True
        cards = await db.board_cards(changes.task_ids, subscriber.filters)
        subscriber.offer(changes.cursor, changes.task_ids, cards, changes.counts)

    async def _poll(self) -> None:
        while True:
            try:
                async with self.lock:  # no viewer joins or leaves halfway through a round
                    full = await self._round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a busy or lost database: try again next round
                log.warning("dashboard: reading changes failed (%s); retrying", exc)
                await asyncio.sleep(POLL_SECONDS * 4)
                continue
            if not full:
                await asyncio.sleep(POLL_SECONDS)

    async def _round(self) -> bool:
        """Read what changed past the cursor and tell every viewer; True when the batch was
        full (more follow at once). Nothing moves on when a read fails."""
        db = self._open()
        changes = await db.board_changes(self.cursor, BATCH)
        renewed = [
            task_id for task_id, beat in changes.beats.items() if self.beats.get(task_id) != beat
        ]
        ids = list(dict.fromkeys([*changes.task_ids, *renewed]))
        cards = {
            filters: await db.board_cards(ids, filters) if ids else []
            for filters in {s.filters for s in self.subscribers}
        }
        views = [view for view, mark in changes.marks.items() if self.marks.get(view) != mark]
        self.beats, self.marks, self.cursor = changes.beats, changes.marks, changes.cursor
        if ids or views:
            for subscriber in self.subscribers:
                found = cards[subscriber.filters]
                subscriber.offer(self.cursor, ids, found, changes.counts, views)
        return changes.full
