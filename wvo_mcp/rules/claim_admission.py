"""When a claim is refused before it waits, and when to tell it to come back (pure).

The clock is an argument; one ClaimAdmission per server process. Carried out by
`wvo_mcp/orchestrator/claim_admission.py`.

Claims take turns across the deployment (the claim lock), so past capacity they are what
queues. A claim is refused at once, with nothing done, when
- the claims admitted here already would keep it waiting past WAIT_BOUND_S for its turn, or
- held work (heartbeats, checkpoints, a holder's moves) stands in a queue in this process:
  the quickest of at least QUEUE_SAMPLES of it over a window of QUEUE_WINDOW_S took longer
  than QUEUE_TARGET_S (CoDel's test for a standing queue, which a burst does not pass), or
  requests crowd in before they reach it (over HTTP: a quarter of the in-flight cap, said
  by `crowd`). Held work keeps leases alive and frees slots, so it goes first; a claim
  granted now would add a holder this process cannot serve, or
- claims come faster than this process lets holders in: one for each holder that finished
  here, and new ones at most CLAIM_SHARE of the held writes it serves a second, or the slow
  start's rate if that is more, in bursts of CLAIM_BURST. A new holder's first heartbeat
  comes a heartbeat's period after its claim, so a queue of held work shows too late to stop
  claims let in as fast as turns go (a fleet starting together would hold twice what the
  process serves, for a task's length). Let in in proportion to what it already serves, the
  holders grow by a bounded share before their work shows; an agent finishing and claiming
  again adds none, however fast.
- Slow start: while held work has stood in no queue (and requests have not crowded in) here,
  new holders come in at CLAIM_FLOOR a second, doubling every RAMP_DOUBLING_S up to RAMP_MAX
  a second, so a fleet under capacity starting together is in within seconds. Once held
  work queues, the rate falls back to the floor and starts again from it when the queue is
  gone. What is let in before its work shows is bounded by the rate, not by how fast turns
  go: at RAMP_MAX a second, about RAMP_MAX x 1.35 held writes a second (a heartbeat and a
  share of a checkpoint a period per holder) come unseen, at any heartbeat period.

While claims queue for their turn (another of this process's is in it, or its turns lately
took over CONTENDED_TURN_S), a claim first reads whether it is sure to be refused (its WIP
full, the fleet paused, nothing ready for it), and such a claim is refused from that read
without queueing; while none queue, the turn itself costs what the read would.

Each refused claim is told its own time to come back: the next free slot, the slots spaced
as this process gets claims through its turn or lets new holders in, so the claims told to
come back return at the rate they can be served, not all at once. The time told to each
agent is kept (at most MAX_TOLD agents, the oldest forgotten first), so one that comes back
sooner is answered at its time, not before (`early`: the HTTP edge holds its claim until
then, edge/http_claims.py).
Docs: docs/http.md, "Past capacity".
"""

import math
from collections import OrderedDict
from dataclasses import dataclass, field

WAIT_BOUND_S = 0.25  # the longest a claim waits for its turn, a lock or a connection
# ... and held work, which is never queued behind claims: a longer bound, so a hiccup of a
# busy host (a descheduled lock holder, a slow fsync) seldom refuses a heartbeat. Each of
# these calls waits once (services/notes.asking): its bound is all it waits.
HELD_WAIT_S = 0.5
# The claims one turn serves at most (orchestrator/turns.py): a turn holds the claim lock
# for each one's pick, a millisecond or two.
TURN_MOST = 16
QUEUE_TARGET_S = 0.02
QUEUE_WINDOW_S = 0.5
QUEUE_SAMPLES = 8
CONTENDED_TURN_S = 0.02  # an uncontended claim's turn is a few milliseconds
# New holders a second: a tenth of the held writes served. A holder writes once a heartbeat
# or so, so the holders let in before their work shows are about a tenth more than served.
CLAIM_SHARE = 0.1
CLAIM_FLOOR = 16.0  # ... at least, and where the slow start begins
RAMP_DOUBLING_S = 1.0  # the slow start doubles its rate this often while held work is calm
RAMP_MAX = 64.0  # ... up to this many new holders a second
MAX_TOLD = 10_000  # agents whose time to come back is kept
# ... after a first burst, so a few agents starting together are not held back (one that
# finishes and claims again never is: its claim takes its finished hold's place).
CLAIM_BURST = 32.0
RETRY_MIN_S = 0.25
RETRY_MAX_S = 30.0
SMOOTHING = 0.2  # weight of the newest sample in the moving averages
GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass
class ClaimAdmission:
    """One process's claims: how many wait for (or hold) the turn, what a turn takes, how
    held work is served, the new holders it may still let in, and the last time handed to a
    refused claim."""

    waiting: int = 0
    turn_s: float = 0.005  # seconds a claim holds this process's turn, smoothed
    held_per_s: float = 0.0  # held writes served a second, smoothed over windows
    allowance: float = CLAIM_BURST  # claims that may be let in now
    allowed_at: float = 0.0  # when `allowance` was last brought up to date
    booked: float = 0.0  # the latest slot handed out
    spread: float = 0.0  # where in the farthest times the last one past them was told
    window_end: float = 0.0
    quickest: float = math.inf
    samples: int = 0
    full_until: float = 0.0  # held work stood in a queue, or requests crowded, lately
    calm_since: float | None = None  # the slow start's origin: no queue here since
    # agent: when it may come back, the oldest told first
    told: OrderedDict[str, float] = field(default_factory=OrderedDict)

    def full(self, now: float) -> bool:
        return now < self.full_until

    def admit_per_s(self, now: float) -> float:
        """New holders this process lets in a second, besides those replacing a finished one."""
        calm = max(0.0, now - (now if self.calm_since is None else self.calm_since))
        ramp = min(RAMP_MAX, CLAIM_FLOOR * 2 ** min(calm / RAMP_DOUBLING_S, 16.0))
        return max(ramp, CLAIM_SHARE * self.held_per_s)

    def early(self, agent: str, now: float) -> float | None:
        """Seconds until `agent` may come back as it was told, or None: it was told no time,
        or its time has come."""
        at = self.told.get(agent)
        if at is not None and at <= now:
            del self.told[agent]
            return None
        return None if at is None else at - now

    def refuse(self, now: float, agent: str | None = None) -> float | None:
        """Seconds after which a claim (of `agent`) arriving now should come back, or None to
        admit it (then `enter` before its turn, and `leave` after)."""
        if self.calm_since is None:
            self.calm_since = now
        rate = self.admit_per_s(now)
        self.allowance = min(CLAIM_BURST, self.allowance + (now - self.allowed_at) * rate)
        self.allowed_at = max(self.allowed_at, now)
        if self.full(now) or self.allowance < 1:
            # Never a time at which it is sure to be refused again: not while full, nor
            # before the allowance has come back.
            opens = max(self.full_until, now + (1 - self.allowance) / rate)
            return self._tell(agent, now, self._book(now, 1 / rate, opens))
        # With none ahead a claim always goes for its turn (the store bounds its wait), so
        # what a turn takes is learnt again after an outage made it look endless.
        if self.waiting and (self.waiting + 1) * self.turn_s > WAIT_BOUND_S:
            return self._tell(agent, now, self._book(now, self.turn_s))
        return None

    def contended(self) -> bool:
        """Whether claims queue for their turn here: a claim sure to be refused is then
        refused from a read, without queueing (the driver: orchestrator/claim_admission.py)."""
        return self.waiting > 0 or self.turn_s > CONTENDED_TURN_S

    def turn_refused(self, now: float, agent: str | None = None) -> float:
        """A claim admitted that still found no turn within the bound: when to come back."""
        return self._tell(agent, now, self._book(now, self.turn_s))

    def enter(self) -> int:
        """A claim goes for its turn; the claims ahead of it."""
        self.allowance -= 1
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
                self.full_until = self.calm_since = now + QUEUE_WINDOW_S
            # An idle gap is a window with nothing served in it.
            seconds = max(QUEUE_WINDOW_S, now - (self.window_end - QUEUE_WINDOW_S))
            self.held_per_s += SMOOTHING * (self.samples / seconds - self.held_per_s)
            self.window_end, self.quickest, self.samples = now + QUEUE_WINDOW_S, math.inf, 0
        self.quickest = min(self.quickest, took)
        self.samples += 1

    def freed(self) -> None:
        """A holder finished here, or a claim let in was refused (its WIP full, nothing
        ready): a claim may take its place."""
        self.allowance = min(CLAIM_BURST, self.allowance + 1)

    def crowd(self, now: float) -> None:
        """Requests crowd into this process (its driver: http_server.InFlightCap): full for
        a window, as when held work queues."""
        self.full_until = self.calm_since = max(self.full_until, now + QUEUE_WINDOW_S)

    def _tell(self, agent: str | None, now: float, back: float) -> float:
        """`agent` was told to come back `back` seconds after `now`: kept, in bounded memory."""
        if agent is not None:
            self.told.pop(agent, None)
            if len(self.told) >= MAX_TOLD:  # the oldest told goes, in O(1): never a scan
                self.told.popitem(last=False)
            self.told[agent] = now + back
        return back

    def _book(self, now: float, spacing: float, opens: float = 0.0) -> float:
        slot = max(max(self.booked, now) + spacing, opens)
        if slot - now <= RETRY_MAX_S:
            self.booked = slot
            return max(RETRY_MIN_S, math.ceil(100 * (slot - now)) / 100)  # never early
        # Past the farthest time told: spread over its second half (a low-discrepancy
        # sequence), so the claims told it do not come back together.
        self.spread = (self.spread + GOLDEN) % 1.0
        return round(RETRY_MAX_S * (1 + self.spread) / 2, 2)
