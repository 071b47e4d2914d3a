"""Claims: ranking ready work (plan_next), granting a lease (claim_task, plan_update claim_next).

A claim is one write transaction (store.Lock.CLAIM): WIP limits are counted, the best
claimable task is picked and leased, and the event is recorded before another claim can
count. Other tasks' heartbeats and moves run beside it, so a candidate is taken only as the
claim read it: an expired lease is locked and re-checked first (one another write holds is
skipped), and the grant is conditional on the epoch read. On PostgreSQL a claim never waits
on a task's row: claims take turns, so one waiting would stall them all. A candidate whose
row another session holds is skipped for the next one (docs/postgres.md, "Row locks").

What a claim reads and how it picks: services/picking.py.

Carries out `rules/pauses.py`.
"""

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from itertools import islice

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import WvoError
from wvo_mcp.models import ClaimResult, PlanNextResult, RankedTask, lean_output
from wvo_mcp.providers import Providers
from wvo_mcp.rules.claim_admission import WAIT_BOUND_S
from wvo_mcp.rules.pauses import Paused
from wvo_mcp.rules.routing import Decision
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import agents, routing, rows
from wvo_mcp.services.leases import lose_lease
from wvo_mcp.services.picking import (
    Common,
    Member,
    Picking,
    Wip,
    beaten,
    claimable,
    queue_counts,
    routed_to,
)
from wvo_mcp.store import Row, Tx


def plan_next(
    tx: Tx,
    settings: Settings,
    agent_id: str,
    limit: int,
    epic_id: str | None,
    now: datetime,
    providers: Providers | None = None,
    provider: str | None = None,
    model: str | None = None,
    explain: bool = False,
) -> PlanNextResult:
    """The top claimable tasks for this agent; `explain` adds each score's breakdown."""
    stamp = timeutil.to_text(now)
    ident = None
    if providers is not None:
        ident = agents.identity(
            tx, settings, providers, agent_id, provider, model, now, remember=False
        )
    router = None if providers is None else routing.Router(tx, providers, now)
    if ident is not None and router is not None:
        found = routed_to(tx, router, ident, stamp)
        if epic_id is not None:
            found = (row for row in found if row["epic_id"] == epic_id)
    else:
        found = claimable(tx, stamp, epic_id)
    paused = Paused.of(tx.all("pauses"))
    if paused:
        found = (row for row in found if paused.why(row["id"], row["epic_id"]) is None)
    ranked: list[RankedTask] = []
    reasons: list[str] = []
    for row in islice(found, limit):
        task = rows.ranked(row, explain)
        if router is not None and (explain or (ident is not None and not reasons)):
            decision = router.decide(row)
            reasons.append(decision.reason)
            if explain:
                where = f"{decision.provider}/{decision.tier}" if decision.routed else "unrouted"
                task.route = f"{where}: {decision.reason}"
        ranked.append(task)
    return PlanNextResult(
        agent_id=agent_id,
        tasks=ranked,
        counts=queue_counts(tx, settings, agent_id, now),
        routed_for=None if ident is None else ident.label,
        route_reason=reasons[0] if ident is not None and reasons else None,
        paused=paused.summary(),
    )


def claim(
    tx: Tx,
    settings: Settings,
    agent_id: str,
    task_id: str | None,
    lease_seconds: int,
    now: datetime,
    providers: Providers | None = None,
    provider: str | None = None,
    model: str | None = None,
    bound: agents.Bound | None = None,
) -> ClaimResult:
    """`provider` and `model`: who the agent says it is, remembered only with a grant (a
    refused claim changes no registration); `bound`: an agent token's, which may not move
    it to another provider."""
    picking = Picking.start(tx, settings, agent_id, task_id, now, providers, provider, model, bound)
    return picking.over_wip_limit() or _take(picking, task_id, lease_seconds, provider, model)


@dataclass(frozen=True)
class Ask:
    """One claim of the best task, among the claims of a turn (best_then_read)."""

    agent_id: str
    lease_seconds: int
    provider: str | None = None
    model: str | None = None
    bound: agents.Bound | None = None
    lost: frozenset[str] = frozenset()  # tasks it lost in an earlier turn: not tried again


def best_then_read(
    tx: Tx,
    settings: Settings,
    asks: Sequence[Ask],
    now: datetime,
    providers: Providers | None = None,
) -> list[Callable[[], ClaimResult]]:
    """`claim` of the best task for each of `asks`, in order, in one transaction (one turn
    of the claims), for Database.write_then_read: what they read before they pick is asked
    once for all of them, and a plain grant (a ready task, with no route or identity to
    record beside it) is answered with the COMMIT. On PostgreSQL a turn of any number of
    plain claims is then two round trips, so a burst of claims holds the claim lock once,
    not once a claim. Each claim counts the grants sent before it in the turn (its WIP) and
    never picks their tasks. A grant another write beat shows only once committed: its
    answer is refused and says which task (`_lost`), for its driver
    (ClaimsFacade.claim) to claim again without it. One whose identity is refused fails
    alone (its reader raises), and the others go on."""
    stamp = timeutil.to_text(now)
    early = settings.agent_provider is None and any(ask.provider is None for ask in asks)
    turn = _Turn()
    common = Common.ask(tx, settings, stamp, early=early, dry=False, moved=turn.taken)
    members = [Member.ask(tx, ask.agent_id, stamp) for ask in asks]
    common.read(tx, now, dry=False)
    if common.early is not None:
        common.early.fill(len(asks))
    readers: list[Callable[[], ClaimResult]] = []
    for ask, member in zip(asks, members, strict=True):
        try:
            picking = member.picking(
                tx, settings, now, providers, common, ask.provider, ask.model, ask.bound,
                early=ask.provider is None,
            )  # fmt: skip
        except WvoError as exc:  # nothing of it was sent: the other claims go on
            # Without its traceback, which would keep this turn's transaction alive.
            readers.append(_raising(exc.with_traceback(None)))
            continue
        picking.lost |= ask.lost
        picking.taken = turn.taken
        readers.append(_best_then_read(picking, ask, turn))
    return readers


HELD_BACK = ("agent_wip_limit", "global_wip_limit", "epic_wip_limit")


def _best_then_read(picking: Picking, ask: Ask, turn: "_Turn") -> Callable[[], ClaimResult]:
    """One claim of a turn, its grant counted by the turn; its reader."""
    own = picking.wip
    picking.wip = turn.counted(own, ask.agent_id)
    chosen = picking.over_wip_limit() or picking.best()
    if isinstance(chosen, ClaimResult) and chosen.reason in HELD_BACK and turn.confirm():
        # Held back by a grant of the turn that another write beat: counted without it.
        picking.wip, picking.scan = turn.counted(own, ask.agent_id), None
        chosen = picking.over_wip_limit() or picking.best()
    if isinstance(chosen, ClaimResult):
        return _answered(chosen)
    plain = (
        chosen["status"] == Status.PENDING
        and chosen["routed_provider"] is None
        and (picking.ident is None or picking.router is None)
        and (ask.provider is None or ask.model is None)
    )
    if not plain:  # its grant's answer is read now: a route, an identity, a take-over
        result = _take(picking, None, ask.lease_seconds, ask.provider, ask.model, chosen)
        if result.claimed and result.task is not None:
            turn.grant({"id": result.task.id, "epic_id": result.task.epic_id}, ask.agent_id)
        return _answered(result)
    granting = cache(_grant(picking.tx, chosen, picking.agent_id, ask.lease_seconds, picking.now))
    turn.grant(chosen, ask.agent_id, granting)

    def read() -> ClaimResult:
        granted = granting()
        if granted is not None:
            return granted
        lost = picking.refused("no_ready_task", beaten(1))
        lost._lost = chosen["id"]
        return lost

    return read


def _answered(result: ClaimResult) -> Callable[[], ClaimResult]:
    return lambda: result


def _raising(exc: WvoError) -> Callable[[], ClaimResult]:
    def read() -> ClaimResult:
        raise exc

    return read


# A grant a turn sent: the task, its holder, and the grant's answer while it is unread.
_Sent = tuple[Row, str, Callable[[], ClaimResult | None] | None]


@dataclass
class _Turn:
    """The grants sent so far in one turn of claims: the claims after them count them
    against their WIP, and never pick their tasks (`taken`)."""

    taken: set[str] = field(default_factory=set)
    sent: list[_Sent] = field(default_factory=list)

    def grant(
        self, row: Row, agent_id: str, answer: Callable[[], ClaimResult | None] | None = None
    ) -> None:
        self.taken.add(row["id"])
        self.sent.append((row, agent_id, answer))

    def counted(self, wip: Wip, agent_id: str) -> Wip:
        by_epic = Counter(wip.by_epic)
        by_epic.update(row["epic_id"] for row, _, _ in self.sent)
        return Wip(
            global_used=wip.global_used + len(self.sent),
            agent_used=wip.agent_used + sum(agent == agent_id for _, agent, _ in self.sent),
            by_epic=dict(by_epic),
        )

    def confirm(self) -> bool:
        """Reads the answers of the grants sent (one round trip on PostgreSQL) and counts no
        more the ones another write beat: whether there were any."""
        kept: list[_Sent] = [
            (row, agent, None)
            for row, agent, answer in self.sent
            if answer is None or answer() is not None
        ]
        beaten = len(kept) < len(self.sent)
        self.sent = kept
        return beaten


def _take(
    picking: Picking,
    task_id: str | None,
    lease_seconds: int,
    provider: str | None,
    model: str | None,
    chosen: "Row | ClaimResult | None" = None,
) -> ClaimResult:
    """The grant of `chosen` (else the task named, else the best), or of the next candidate
    each time another write beat it."""
    tx, agent_id, now = picking.tx, picking.agent_id, picking.now
    while True:
        if chosen is None:
            chosen = picking.named(task_id) if task_id is not None else picking.best()
        if isinstance(chosen, ClaimResult):
            return chosen
        taking_over = chosen["status"] == Status.IN_PROGRESS
        candidate: Row | None = chosen
        if taking_over:
            candidate = tx.one(
                "lock_expired_lease",
                {"id": chosen["id"], "epoch": chosen["lease_epoch"], "now": picking.stamp},
            )
            if candidate is not None and not lose_lease(
                tx, picking.settings, candidate, now, actor="scheduler", requeue=False
            ):
                if task_id is not None:
                    return picking.refused(
                        "task_not_ready",
                        f"task {task_id!r} lost its lease too often and was dead-lettered",
                    )
                chosen = None
                continue  # dead-lettered; look again
        granted = (
            None if candidate is None else _grant(tx, candidate, agent_id, lease_seconds, now)()
        )
        if granted is None:
            if task_id is not None:
                return picking.refused("task_not_ready", _not_granted(tx, chosen))
            picking.lost.add(chosen["id"])
            chosen = None
            continue  # changed meanwhile: look again
        granted._took_over_expired = taking_over
        routed: Decision | None = None
        if picking.ident is not None and picking.router is not None:
            routed = picking.router.decide(chosen)
            granted.route = routing.claim_route(routed)
        routing.reserve(tx, chosen, routed, now)
        if provider is not None and model is not None:
            tx.send("set_agent_identity", (agent_id, provider, model, picking.stamp))
        return granted


def refusal_before_turn(
    tx: Tx,
    settings: Settings,
    agent_id: str,
    task_id: str | None,
    now: datetime,
    providers: Providers | None = None,
    provider: str | None = None,
    model: str | None = None,
    bound: agents.Bound | None = None,
) -> ClaimResult | None:
    """What `claim` would refuse whatever the other claims do, read without the claim's
    turn (a read: it writes and locks nothing): the agent's or the fleet's WIP is full,
    the fleet is paused, no task is ready for it, the task named cannot be claimed. None:
    the claim may be granted. Its driver, Orchestrator.claim, asks before the turn, so a
    claim sure to be refused never waits in the queue of those that may not be."""
    picking = Picking.start(
        tx, settings, agent_id, task_id, now, providers, provider, model, bound, dry=True
    )
    over_limit = picking.over_wip_limit()
    if over_limit is not None:
        return over_limit
    chosen = picking.named(task_id) if task_id is not None else picking.best()
    return chosen if isinstance(chosen, ClaimResult) else None


def busy(agent_id: str, retry_after: float) -> ClaimResult:
    """A claim refused past capacity, nothing done (rules/claim_admission.py says when)."""
    return ClaimResult(
        claimed=False,
        reason="busy",
        message=(
            "the servers are at capacity: held work (heartbeats, checkpoints, moves) goes "
            f"first, and a claim that would wait past {WAIT_BOUND_S:g} s for its turn is "
            f"refused; nothing was done. Claim again in {retry_after:g} s (retry_after_s): "
            "the claims told to come back are spaced to return as fast as they can be served"
        ),
        agent_id=agent_id,
        retry_after_s=retry_after,
    )


def claim_next(
    tx: Tx, claim: Callable[[Tx], ClaimResult], agent_id: str, after: Status
) -> ClaimResult:
    """plan_update's claim_next, after its move (`after`) in the same transaction: a claim
    that fails is rolled back alone and says so, and the move stands."""
    tx.send("savepoint_next_claim")
    try:
        return claim(tx)
    except WvoError as exc:
        tx.run("rollback_to_next_claim")
        return ClaimResult(
            claimed=False,
            reason="claim_failed",
            message=f"{type(exc).__name__}: {exc}; the move to {after.value} stands, "
            "call claim_task to try again",
            agent_id=agent_id,
        )


def _grant(
    tx: Tx, row: Row, agent_id: str, lease_seconds: int, now: datetime
) -> Callable[[], ClaimResult | None]:
    """Sends the lease's grant, and the claimed event, kept only if the grant took (its
    token); what reads the lease, or None when another write changed the task since `row`
    was read."""
    stamp = timeutil.to_text(now)
    token = uuid.uuid4().hex
    expires = timeutil.after(now, lease_seconds)
    grant = tx.ask(
        "grant_lease",
        {
            "id": row["id"],
            "agent": agent_id,
            "token": token,
            "lease_seconds": lease_seconds,
            "expires": expires,
            "now": stamp,
            "epoch": row["lease_epoch"],
        },
    )
    latest = tx.ask("latest_checkpoint", (row["id"],))  # with the grant: one round trip
    # The grant takes only on the epoch read, which it moves on by one.
    claimed = (row["id"], stamp, agent_id, "claimed", Status.PENDING, Status.IN_PROGRESS)
    tx.send("insert_event_if_granted", (*claimed, None, row["lease_epoch"] + 1, row["id"], token))

    def read() -> ClaimResult | None:
        granted = grant.one()
        if granted is None:
            return None
        return ClaimResult(
            claimed=True,
            message=f"claimed {row['id']!r}; lease until {expires}",
            agent_id=agent_id,
            task=rows.claimed(granted),
            lease_token=token,
            lease_expires_at=expires,
            lease_seconds=lease_seconds,
            attempt=granted["attempts"] + 1,
            last_checkpoint=lean_output.brief(rows.checkpoint(latest.one()), row["id"]),
        )

    return read


def _not_granted(tx: Tx, row: Row) -> str:
    """Why a named claim's grant found no row: another write changed the task, or (when it
    is still as the claim read it) another database session holds its row. Refused at once
    rather than waited for: the session may hold it for hours, and claims take turns."""
    if tx.one("task_by_id", (row["id"],)) == row:  # no write changed it: its row is held
        return (
            f"task {row['id']!r} is locked by another database session (a transaction holding "
            "its row: one in flight, or a long one such as a psql session or a migration); "
            "the task is unchanged: claim it again when that transaction ends, or claim without "
            "task_id for the next task"
        )
    return (
        f"task {row['id']!r} was renewed, claimed or moved by another write while you claimed "
        "it; call plan_next for claimable work"
    )
