"""When a claim is refused before it waits, and when to tell it to come back. Pure (the clock
is an argument); its driver is Orchestrator.claim, one gate per server process.

Claims take turns across the deployment (the claim lock), so past capacity they are what
queues. A claim is refused at once, with nothing done, when
- the claims admitted here already would keep it waiting past WAIT_BOUND_S for its turn, or
- held work (heartbeats, checkpoints, a holder's moves) stands in a queue in this process:
  the quickest of at least QUEUE_SAMPLES of it over a window of QUEUE_WINDOW_S took longer
  than QUEUE_TARGET_S (CoDel's test for a standing queue, which a burst does not pass), or
  requests crowd in before they reach it (over HTTP: a quarter of the in-flight cap, said
  by `crowd`). Held work keeps leases alive and frees slots, so it goes first; a claim
  granted now would add a holder this process cannot serve, or
- held work queued here within the last PACED_S, and a claim was admitted less than a
  holder's finishing ago: claims then come in only as holders go out, so the holders stay
  as many as this process serves. A task holds for minutes, so holders admitted past that
  would overload held work long after the claims that made them.

While claims queue for their turn (another of this process's is in it, or its turns lately
took over CONTENDED_TURN_S), a claim first reads whether it is sure to be refused (its WIP
full, the fleet paused, nothing ready for it), and such a claim is refused from that read
without queueing; while none queue, the turn itself costs what the read would.

Each refused claim is told its own time to come back: the next free slot, the slots spaced
as this process gets claims through its turn (or, while it is full, as its holders finish),
so the claims told to come back return at the rate they can be served, not all at once.
Docs: docs/http.md, "Past capacity".
"""

import math
from dataclasses import dataclass

WAIT_BOUND_S = 0.25  # the longest a claim waits for its turn, a lock or a connection
# ... and held work, which is never queued behind claims: a longer bound, so a hiccup of a
# busy host (a descheduled lock holder, a slow fsync) does not refuse a heartbeat.
HELD_WAIT_S = 1.0
QUEUE_TARGET_S = 0.02
QUEUE_WINDOW_S = 0.5
QUEUE_SAMPLES = 8
CONTENDED_TURN_S = 0.02  # an uncontended claim's turn is a few milliseconds
RETRY_MIN_S = 0.25
RETRY_MAX_S = 30.0
PACED_S = 30.0
SMOOTHING = 0.2  # weight of the newest sample in the moving averages
GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass
class ClaimGate:
    """One process's claims: how many wait for (or hold) the turn, what a turn takes, how
    held work is served, and the last time handed to a refused claim."""

    waiting: int = 0
    turn_s: float = 0.005  # seconds a claim holds this process's turn, smoothed
    free_every_s: float = 1.0  # seconds between two holders finishing here, smoothed
    last_free: float | None = None
    booked: float = 0.0  # the latest slot handed out
    spread: float = 0.0  # where in the farthest times the last one past them was told
    window_end: float = 0.0
    quickest: float = math.inf
    samples: int = 0
    full_until: float = 0.0  # held work stood in a queue, or requests crowded, lately
    paced_until: float = 0.0  # ... within PACED_S: claims come in as holders go out
    next_admit: float = 0.0  # while paced, no claim is admitted before this

    def full(self, now: float) -> bool:
        return now < self.full_until

    def refuse(self, now: float) -> float | None:
        """Seconds after which a claim arriving now should come back, or None to admit it
        (then `enter` before its turn, and `leave` after)."""
        if self.full(now) or (now < self.paced_until and now < self.next_admit):
            return self._book(now, self.free_every_s)
        # With none ahead a claim always goes for its turn (the store bounds its wait), so
        # what a turn takes is learnt again after an outage made it look endless.
        if self.waiting and (self.waiting + 1) * self.turn_s > WAIT_BOUND_S:
            return self._book(now, self.turn_s)
        return None

    def contended(self) -> bool:
        """Whether claims queue for their turn here: a claim sure to be refused is then
        refused from a read, without queueing (the driver: Orchestrator.claim)."""
        return self.waiting > 0 or self.turn_s > CONTENDED_TURN_S

    def turn_refused(self, now: float) -> float:
        """A claim admitted that still found no turn within the bound: when to come back."""
        return self._book(now, self.turn_s)

    def enter(self, now: float) -> int:
        """A claim goes for its turn; the claims ahead of it."""
        if now < self.paced_until:
            self.next_admit = now + self.free_every_s
        self.waiting += 1
        return self.waiting - 1

    def leave(self, took: float | None, ahead: int) -> None:
        """A claim is through: `took` seconds from `enter` to its commit, or to its refusal
        at the bound (None: it failed otherwise), behind `ahead` others, each of which held
        the turn before it."""
        self.waiting -= 1
        if took is not None:
            # A turn waited out through a lost database is no measure of turns: at most the
            # bound is learnt from it.
            turn = min(took / (ahead + 1), WAIT_BOUND_S)
            self.turn_s += SMOOTHING * (turn - self.turn_s)

    def held(self, now: float, took: float) -> None:
        """A write of held work took `took` seconds in this process."""
        if now >= self.window_end:
            if self.samples >= QUEUE_SAMPLES and self.quickest > QUEUE_TARGET_S:
                self._fill(now)
            self.window_end, self.quickest, self.samples = now + QUEUE_WINDOW_S, math.inf, 0
        self.quickest = min(self.quickest, took)
        self.samples += 1

    def crowd(self, now: float) -> None:
        """Requests crowd into this process (its driver: http_server.InFlightCap): full for
        a window, as when held work queues."""
        self._fill(now)

    def _fill(self, now: float) -> None:
        self.full_until = max(self.full_until, now + QUEUE_WINDOW_S)
        self.paced_until = now + PACED_S

    def freed(self, now: float) -> None:
        """A holder finished a task here (its slot is free)."""
        if self.last_free is not None:
            gap = min(now - self.last_free, RETRY_MAX_S)  # an idle hour is no rate
            self.free_every_s += SMOOTHING * (gap - self.free_every_s)
        self.last_free = now

    def _book(self, now: float, spacing: float) -> float:
        slot = max(self.booked, now) + spacing
        if now < self.paced_until:
            slot = max(slot, self.next_admit)
        if slot - now <= RETRY_MAX_S:
            self.booked = slot
            return max(RETRY_MIN_S, math.ceil(100 * (slot - now)) / 100)  # never early
        # Past the farthest time told: spread over its second half (a low-discrepancy
        # sequence), so the claims told it do not come back together.
        self.spread = (self.spread + GOLDEN) % 1.0
        return round(RETRY_MAX_S * (1 + self.spread) / 2, 2)
