"""Claim admission's driver: carries out rules/claim_admission.py for the claims and held work.

The rule decides, given the time; this module reads the clock, times each claim's turn and each
held write for it, and runs a claim in the store's claim lock (Lock.CLAIM): one ClaimAdmission a
process (Facade.claims), so the claims and the leases areas share it (and the HTTP edge,
which refuses a claim before the SDK when it would: edge/http_claims.py). Each time a
claim is told to come back is kept for its agent.
"""

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from wvo_mcp.errors import Overloaded, WvoError
from wvo_mcp.models import Asked, ClaimResult, UpdateResult
from wvo_mcp.orchestrator import arrival
from wvo_mcp.orchestrator.turns import Turns
from wvo_mcp.rules.claim_admission import WAIT_BOUND_S, ClaimAdmission
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import claims, notes
from wvo_mcp.store import Database, Lock, Tx

T = TypeVar("T")
A = TypeVar("A", bound=Asked)
# A turn's claims of the best task (services/claims.best_then_read, its settings given).
BestClaims = Callable[[Tx, Sequence[claims.Ask]], list[Callable[[], ClaimResult]]]
NO_TURN = "no claims' turn came within the bound"  # a queued claim's refusal (Overloaded)


async def before_turn(
    db: Database,
    admission: ClaimAdmission,
    agent_id: str,
    arrived: float,
    read: Callable[[], Callable[[Tx], ClaimResult | None]],
) -> ClaimResult | None:
    """A claim's refusal before its turn, or None to take the turn. Back before the time
    its agent was told, or past capacity, refused at once (reason busy) before anything is
    read. While claims queue for their turn, one
    sure to be refused is refused from a read, without the turn (busy if no connection came
    within the bound from `arrived`). `read` makes that read's function: only when needed,
    since making it reads the clock (which a test's injected clock sees)."""
    now = time.monotonic()
    back = admission.early(agent_id, now)  # back before its time: answered at it (as at the edge)
    back = admission.refuse(now, agent_id) if back is None else back
    if back is not None:
        return claims.busy(agent_id, back)
    if admission.contended():
        try:
            refused = await db.read(read(), within=arrival.left(WAIT_BOUND_S, arrived))
        except Overloaded:  # no connection within the bound: the claim waits no longer
            return claims.busy(agent_id, admission.turn_refused(time.monotonic(), agent_id))
        if refused is not None:
            return refused
    return None


async def in_turn(
    db: Database, admission: ClaimAdmission, fn: Callable[[Tx], A], agent_id: str,
    arrived: float | None = None,
) -> A | float:  # fmt: skip
    """`fn` in the claims' turn (Lock.CLAIM), asking for `agent_id`'s notes, or past
    capacity the seconds after which to come back (`_gated`)."""

    def write(left: float) -> Awaitable[A]:
        return db.write_then_read(notes.asking(fn, agent_id), Lock.CLAIM, left)

    return await _admitted(admission, agent_id, arrived, write)


async def best_in_turn(
    db: Database, admission: ClaimAdmission, turns: "Turns[Queued, ClaimResult]", ask: claims.Ask,
    arrived: float, claim: BestClaims,
) -> ClaimResult | float:  # fmt: skip
    """`ask`'s claim of the best task in a turn of this process's claims queued with it
    (orchestrator/turns.py), or past capacity the seconds after which to come back
    (`_gated`). `claim` makes the turn's claims (services/claims.best_then_read)."""

    async def serve(queued: Sequence[Queued]) -> list[ClaimResult | Exception]:
        now = time.monotonic()
        late: Exception = Overloaded(NO_TURN)
        live = [q for q in queued if q.deadline > now]
        if not live:
            return [late] * len(queued)

        def write(tx: Tx) -> Callable[[], list[ClaimResult | Exception]]:
            asks = [q.ask for q in live]
            made = claim(tx, asks)
            readers = [notes.asking_due(tx, a.agent_id, r) for a, r in zip(asks, made, strict=True)]
            return lambda: [_outcome(read) for read in readers]

        # As long as its most patient claim may wait: the others arrived a turn before it
        # at most.
        within = max(q.deadline for q in live) - now
        try:
            outcomes = iter(await db.write_then_read(write, Lock.CLAIM, within))
        except WvoError as exc:
            return [exc] * len(queued)
        return [next(outcomes) if q.deadline > now else late for q in queued]

    async def queue(left: float) -> ClaimResult:
        try:
            return await turns.take(Queued(ask, time.monotonic() + left), serve, left)
        except TimeoutError:  # no turn took it in time: as a turn not found in time
            raise Overloaded(NO_TURN) from None

    return await _admitted(admission, ask.agent_id, arrived, queue)


@dataclass(frozen=True)
class Queued:
    """A claim in this process's queue for its turn, and when it stops waiting."""

    ask: claims.Ask
    deadline: float


def _outcome(read: Callable[[], ClaimResult]) -> ClaimResult | Exception:
    try:
        return read()
    except WvoError as exc:  # its own refusal: the other claims of its turn stand
        return exc


async def _admitted(
    admission: ClaimAdmission, agent_id: str, arrived: float | None,
    write: Callable[[float], Awaitable[A]],
) -> A | float:  # fmt: skip
    """`write` of a claim (given the seconds it may wait), or, past capacity, nothing done
    and the seconds after which to come back: refused at once when `agent_id` is back
    before the time it was told, when this process's claims would wait past the bound or
    its held work queues, or when no turn came within the bound from `arrived` (the call's
    arrival: its token's check and a read before the turn waited in it too)."""
    started = time.monotonic()
    back = admission.early(agent_id, started)
    back = admission.refuse(started, agent_id) if back is None else back
    if back is not None:
        return back
    left = WAIT_BOUND_S - (started - (started if arrived is None else arrived))
    if left <= 0:
        return admission.turn_refused(started, agent_id)
    ahead = admission.enter()
    took = None
    granted = False
    try:
        result = await write(left)
        took = time.monotonic() - started
        claimed = result.next if isinstance(result, UpdateResult) else result
        granted = isinstance(claimed, ClaimResult) and claimed.claimed
        return result
    except Overloaded:
        took = time.monotonic() - started  # the bound, waited: the turn is contended
        return admission.turn_refused(time.monotonic(), agent_id)
    finally:
        admission.leave(took, ahead)
        if not granted:  # no holder came of it (refused, failed): its place goes back
            admission.freed()


async def held(admission: ClaimAdmission, write: Awaitable[T], frees: bool = False) -> T:
    """A write of held work (a holder's heartbeat, checkpoint or move), timed for the
    claim admission: held work that queues holds claims back, and sets how fast new holders
    are let in. `frees`: it may end a hold, whose place a claim may then take."""
    started = time.monotonic()
    try:
        result = await write
    finally:
        now = time.monotonic()
        admission.held(now, now - started)
    if frees and getattr(result, "status", Status.IN_PROGRESS) != Status.IN_PROGRESS:
        admission.freed()
    return result
