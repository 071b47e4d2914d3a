"""Claims: ranking the ready work (plan_next) and granting a task's lease (claim_task).

The scheduler: ranking ready work (plan_next) and granting leases (claim_task).

A claim is one write transaction (store.Lock.CLAIM): WIP limits are counted, the best
claimable task is picked and leased, and the event is recorded before another claim can
count. Other tasks' heartbeats and moves run beside it, so a candidate is taken only as the
claim read it: an expired lease is locked and re-checked first (one another write holds is
skipped), and the grant is conditional on the epoch read. On PostgreSQL a claim never waits
on a task's row: claims take turns, so one waiting would stall them all. A candidate whose
row another session holds is skipped for the next one (docs/postgres.md, "Row locks").

Carries out `rules/pauses.py` and `rules/wsjf.py`.
"""

import heapq
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import TypeGuard

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import NotFound, WvoError
from wvo_mcp.models import ClaimRefusal, ClaimResult, PlanNextResult, QueueCounts, RankedTask
from wvo_mcp.providers import Providers
from wvo_mcp.rules.claim_gate import WAIT_BOUND_S
from wvo_mcp.rules.pauses import Paused
from wvo_mcp.rules.routing import Decision
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import routing, rows
from wvo_mcp.services.leases import lose_lease, seen
from wvo_mcp.services.tasks import rescore
from wvo_mcp.store import Row, Tx

SCORE_REFRESH_SECONDS = 60.0


@dataclass(frozen=True)
class Wip:
    global_used: int
    agent_used: int
    by_epic: dict[str, int]


def _ask_wip(tx: Tx, agent_id: str, stamp: str, per_epic: bool) -> Callable[[], Wip]:
    """Asks for the WIP counts now, so they share a round trip with what is asked beside
    them; the function returned reads them."""
    live = tx.ask("live_lease_counts", {"now": stamp, "agent": agent_id})
    epics = tx.ask("live_leases_by_epic", (stamp,)) if per_epic else None

    def read() -> Wip:
        counts = live.one()
        assert counts is not None  # one row of counts, always
        return Wip(
            global_used=counts["global_used"],
            agent_used=counts["agent_used"],
            by_epic={} if epics is None else {r["epic_id"]: r["n"] for r in epics.all()},
        )

    return read


def queue_counts(tx: Tx, settings: Settings, agent_id: str, now: datetime) -> QueueCounts:
    stamp = timeutil.to_text(now)
    buckets = tx.ask("queue_counts")
    backing = tx.ask("backing_off_count", (stamp,))
    wip = _ask_wip(tx, agent_id, stamp, per_epic=False)()
    by_status = {r["bucket"]: r["tasks"] for r in buckets.all()}
    ready_bucket = by_status.pop("ready")
    backing_off = backing.value()
    expired = by_status[Status.IN_PROGRESS] - wip.global_used
    remaining = max(
        0,
        min(settings.wip_global - wip.global_used, settings.wip_per_agent - wip.agent_used),
    )
    return QueueCounts(
        ready=ready_bucket - backing_off + expired,
        lease_expired=expired,
        waiting_on_dependencies=by_status[Status.PENDING] - ready_bucket,
        backing_off=backing_off,
        by_status={status: n for status, n in by_status.items() if n},
        wip_global_used=wip.global_used,
        wip_global_limit=settings.wip_global,
        wip_agent_used=wip.agent_used,
        wip_agent_limit=settings.wip_per_agent,
        wip_remaining=remaining,
    )


def _rank(row: Row) -> tuple[float, str, str]:
    return (-row["wsjf_score"], row["created_at"], row["id"])


def _ranked_ready(tx: Tx, epic_id: str | None, stamp: str) -> Iterator[Row]:
    if epic_id is None:
        return _past_back_off(tx.iter("ready_ranked", ()), stamp)
    return _past_back_off(tx.iter("ready_ranked_in_epic", (epic_id,)), stamp)


def _past_back_off(found: Iterator[Row], stamp: str) -> Iterator[Row]:
    for row in found:
        if row["not_before"] is None or row["not_before"] <= stamp:
            yield row


def claimable(tx: Tx, stamp: str, epic_id: str | None = None, take: bool = False) -> Iterator[Row]:
    """Everything a claim may take, best first: ready tasks, and in-progress tasks whose
    holder let the lease expire (both streams are already in rank order). `take`: in a
    claim, which locks the expired leases it reads (PostgreSQL)."""
    expired = (
        row
        for row in tx.iter(_EXPIRED[take], (stamp,))
        if epic_id is None or row["epic_id"] == epic_id
    )
    return heapq.merge(expired, _ranked_ready(tx, epic_id, stamp), key=_rank)


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
        ident = routing.identity(
            tx, settings, providers, agent_id, provider, model, now, remember=False
        )
    router = None if providers is None else routing.Router(tx, providers, now)
    if ident is not None and router is not None:
        found = _routed_to(tx, router, ident, stamp)
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


# How many candidates a tier's claim looks at before it says nothing routes to it; and of
# those, how many of the complexities it gets only when an attempt explores: a tenth of
# their tasks may explore, and of those few go to any one tier, so reading all of them
# would cost a learning fleet's every claim a full scan.
ROUTE_SCAN = 1000
EXPLORE_SCAN = 100


_EXPIRED = {False: "expired_leases", True: "expired_leases_to_take"}


def _routed_to(
    tx: Tx, router: routing.Router, ident: routing.Identity, stamp: str, take: bool = False
) -> Iterator[Row]:
    """Claimable tasks routing sends to this tier, best first. Only the ready tasks of the
    complexities that route there are read (one index range each), the first of those an
    exploring attempt may bring it, its pinned epics' and tasks', those whose route is their
    own, and expired leases; each is then decided in full."""
    reach = router.reach(ident)

    def ready(query: str, *args: object) -> Iterator[Row]:
        return _past_back_off(tx.iter(query, args), stamp)

    streams = [ready("ready_ranked_with_complexity", c) for c in reach.routed]
    explored = [ready("ready_ranked_with_complexity", c) for c in reach.explored]
    streams.append(islice(heapq.merge(*explored, key=_rank), EXPLORE_SCAN))
    streams += [ready("ready_ranked_in_epic", epic) for epic in reach.epics]
    pinned = (tx.one("task_by_id", (task_id,)) for task_id in reach.tasks)
    streams.append(iter(sorted((r for r in pinned if _ready(r, stamp)), key=_rank)))
    streams.append(ready("ready_ranked_routed_alone"))
    streams.append(tx.iter(_EXPIRED[take], (stamp,)))
    seen: set[str] = set()
    for row in islice(heapq.merge(*streams, key=_rank), ROUTE_SCAN):
        if row["id"] not in seen and routing.fits(router.decide(row), ident):
            seen.add(row["id"])
            yield row


def _ready(row: Row | None, stamp: str) -> TypeGuard[Row]:
    """A task a claim may take now from the ready queue."""
    return (
        row is not None
        and row["status"] == Status.PENDING
        and not row["unmet_dependencies"]
        and (row["not_before"] is None or row["not_before"] <= stamp)
    )


def _refresh_due_scores(tx: Tx, now: datetime, last: str | None) -> bool:
    """time_criticality rises as due dates near; re-rank dated tasks at most once a minute
    (`last`: when they were last re-ranked). Whether it re-ranked them now."""
    if (
        last is not None
        and (now - timeutil.from_text(last)).total_seconds() < SCORE_REFRESH_SECONDS
    ):
        return False
    for row in tx.all("pending_with_due_date"):
        rescore(tx, row, now)
    tx.run("meta_set", ("scores_refreshed_at", timeutil.to_text(now)))
    return True


def _not_ready_reason(tx: Tx, row: Row, stamp: str) -> str | None:
    """Why a named task cannot be claimed now, or None when it can."""
    status = row["status"]
    if status == Status.IN_PROGRESS:
        if row["lease_expires_at"] < stamp:
            return None
        return (
            f"task {row['id']!r} is held by {row['assigned_to']!r} until {row['lease_expires_at']}"
        )
    if status != Status.PENDING:
        return f"task {row['id']!r} is {status!r}, not pending"
    if row["unmet_dependencies"]:
        waiting = [
            f"{r['id']} ({r['status']})"
            for r in tx.all("dependencies_of", (row["id"],))
            if r["status"] != Status.DONE
        ]
        return f"task {row['id']!r} waits on dependencies: {', '.join(waiting)}"
    if row["not_before"] and row["not_before"] > stamp:
        if not row["attempts"]:
            return f"task {row['id']!r} is not claimable before {row['not_before']} (not_before)"
        return f"task {row['id']!r} is backing off after a failure until {row['not_before']}"
    return None


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
    bound: routing.Bound | None = None,
) -> ClaimResult:
    """`provider` and `model`: who the agent says it is, remembered only with a grant (a
    refused claim changes no registration); `bound`: an agent token's, which may not move
    it to another provider."""
    picking = _Picking.start(
        tx, settings, agent_id, task_id, now, providers, provider, model, bound
    )
    return picking.over_wip_limit() or _take(picking, task_id, lease_seconds, provider, model)


def claim_then_read(
    tx: Tx,
    settings: Settings,
    agent_id: str,
    lease_seconds: int,
    now: datetime,
    providers: Providers | None = None,
    provider: str | None = None,
    model: str | None = None,
    bound: routing.Bound | None = None,
    lost: frozenset[str] = frozenset(),
) -> Callable[[], ClaimResult]:
    """`claim` of the best task, for Database.write_then_read: a plain grant (a ready task,
    with no route or identity to record beside it) is answered with the COMMIT, one round
    trip fewer in the claims' turn on PostgreSQL, so the turn is held that much less. A
    grant another write beat shows only then: the answer is refused and says which task
    (`_lost`), for its driver (ClaimsFacade.claim) to claim again without it (`lost`)."""
    picking = _Picking.start(tx, settings, agent_id, None, now, providers, provider, model, bound)
    picking.lost |= lost
    refused = picking.over_wip_limit()
    chosen = refused or picking.best()
    plain = (
        not isinstance(chosen, ClaimResult)
        and chosen["status"] == Status.PENDING
        and chosen["routed_provider"] is None
        and (picking.ident is None or picking.router is None)
        and (provider is None or model is None)
    )
    if isinstance(chosen, ClaimResult) or not plain:
        result = (
            chosen
            if isinstance(chosen, ClaimResult)
            else _take(picking, None, lease_seconds, provider, model, chosen)
        )
        return lambda: result
    granting = _grant(tx, chosen, agent_id, lease_seconds, now)

    def read() -> ClaimResult:
        granted = granting()
        if granted is not None:
            return granted
        beaten = picking.refused("no_ready_task", _beaten(1))
        beaten._lost = chosen["id"]
        return beaten

    return read


def _take(
    picking: "_Picking",
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
    bound: routing.Bound | None = None,
) -> ClaimResult | None:
    """What `claim` would refuse whatever the other claims do, read without the claim's
    turn (a read: it writes and locks nothing): the agent's or the fleet's WIP is full,
    the fleet is paused, no task is ready for it, the task named cannot be claimed. None:
    the claim may be granted. Its driver, Orchestrator.claim, asks before the turn, so a
    claim sure to be refused never waits in the queue of those that may not be."""
    picking = _Picking.start(
        tx, settings, agent_id, task_id, now, providers, provider, model, bound, dry=True
    )
    over_limit = picking.over_wip_limit()
    if over_limit is not None:
        return over_limit
    chosen = picking.named(task_id) if task_id is not None else picking.best()
    return chosen if isinstance(chosen, ClaimResult) else None


def busy(agent_id: str, retry_after: float) -> ClaimResult:
    """A claim refused past capacity, nothing done (rules/claim_gate.py says when)."""
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


@dataclass
class _Picking:
    """One claim choosing its task: what it read before it picks, and the candidates
    another write changed first, or whose row another session holds (`lost`: never tried
    twice in one claim)."""

    tx: Tx
    settings: Settings
    agent_id: str
    now: datetime
    stamp: str
    wip: Wip
    ident: routing.Identity | None
    router: routing.Router | None
    early: Iterator[Row] | None
    paused: Paused
    lost: set[str] = field(default_factory=set)
    scan: Iterator[Row] | None = None  # the candidates, read on past a lost one
    take: bool = True  # a claim's: locks the expired leases it reads (not a dry run's)

    @classmethod
    def start(
        cls,
        tx: Tx,
        settings: Settings,
        agent_id: str,
        task_id: str | None,
        now: datetime,
        providers: Providers | None,
        provider: str | None,
        model: str | None,
        bound: routing.Bound | None = None,
        dry: bool = False,
    ) -> "_Picking":
        """`dry`: read only (refusal_before_turn): no sighting, no re-ranking, no lock."""
        stamp = timeutil.to_text(now)
        if not dry:
            seen(tx, agent_id, now)
        # What a claim reads before it picks is asked for at once, one round trip on
        # PostgreSQL, with the first page of unrouted candidates, which an agent with no tier
        # takes from.
        registered = tx.ask("agent_identity", (agent_id,))
        refreshed = tx.ask("meta_get", ("scores_refreshed_at",))
        pauses = tx.ask("pauses")
        read_wip = _ask_wip(tx, agent_id, stamp, per_epic=settings.wip_per_epic is not None)
        early: Iterator[Row] | None = None
        if task_id is None and provider is None and settings.agent_provider is None:
            early = claimable(tx, stamp, take=not dry)
        ident = None
        if providers is not None:
            ident = routing.identity(
                tx, settings, providers, agent_id, provider, model, now, remember=False,
                registered=registered, bound=bound,
            )  # fmt: skip
        router = None if providers is None else routing.Router(tx, providers, now)
        if not dry and _refresh_due_scores(tx, now, refreshed.value()):
            early = None  # asked before the re-ranking
        wip = read_wip()
        paused = Paused.of(pauses.all())
        return cls(
            tx, settings, agent_id, now, stamp, wip, ident, router, early, paused, take=not dry
        )

    def refused(self, reason: ClaimRefusal, message: str) -> ClaimResult:
        return ClaimResult(claimed=False, reason=reason, message=message, agent_id=self.agent_id)

    def over_wip_limit(self) -> ClaimResult | None:
        settings, wip = self.settings, self.wip
        if wip.agent_used >= settings.wip_per_agent:
            return self.refused(
                "agent_wip_limit",
                f"agent {self.agent_id!r} already holds {wip.agent_used} task(s), the per-agent "
                f"limit (WVO_WIP_PER_AGENT={settings.wip_per_agent}); finish or release one first",
            )
        if wip.global_used >= settings.wip_global:
            return self.refused(
                "global_wip_limit",
                f"{wip.global_used} tasks are in progress, the global limit "
                f"(WVO_WIP_LIMIT={settings.wip_global}); try again later",
            )
        return None

    def epic_full(self, row: Row) -> bool:
        limit = self.settings.wip_per_epic
        return limit is not None and self.wip.by_epic.get(row["epic_id"], 0) >= limit

    def open_to_us(self, row: Row) -> bool:
        return (
            row["id"] not in self.lost
            and not self.epic_full(row)
            and (not self.paused or self.paused.why(row["id"], row["epic_id"]) is None)
        )

    def named(self, task_id: str) -> Row | ClaimResult:
        """The task asked for, or why it cannot be claimed now."""
        row = self.tx.one("task_by_id", (task_id,))
        if row is None:
            raise NotFound(f"no task with id {task_id!r}; plan_next lists claimable tasks")
        why = _not_ready_reason(self.tx, row, self.stamp)
        if why is not None:
            return self.refused("task_not_ready", why)
        held_back = self.paused.why(row["id"], row["epic_id"])
        if held_back is not None:
            return self.refused("paused", f"task {row['id']!r} waits: {held_back}")
        if self.epic_full(row):
            return self.refused(
                "epic_wip_limit",
                f"epic {row['epic_id']!r} is at its WIP limit "
                f"(WVO_WIP_PER_EPIC={self.settings.wip_per_epic})",
            )
        if self.ident is not None and self.router is not None:
            decision = self.router.decide(row)
            if not routing.fits(decision, self.ident):
                return self.refused(
                    "task_not_ready", _routed_elsewhere(row["id"], decision, self.ident)
                )
        return row

    def best(self) -> Row | ClaimResult:
        """The best claimable task open to this agent, or why there is none."""
        tx, stamp = self.tx, self.stamp
        if self.paused.fleet is not None:
            return self.refused("paused", f"nothing is claimable: {self.paused.summary()}")
        if self.ident is not None and self.router is not None:
            if self.scan is None:
                self.scan = _routed_to(tx, self.router, self.ident, stamp, take=self.take)
            best = next((r for r in self.scan if self.open_to_us(r)), None)
            if (
                best is None
                and not self.lost
                and (top := next(claimable(tx, stamp), None)) is not None
            ):
                return self.refused(
                    "no_task_for_tier",
                    f"no claimable task routes to {self.ident.label} now; the best one, "
                    + _routed_elsewhere(top["id"], self.router.decide(top), self.ident),
                )
        else:
            if self.scan is None:
                self.scan = (
                    claimable(tx, stamp, take=self.take) if self.early is None else self.early
                )
            best = next((r for r in self.scan if self.open_to_us(r)), None)
        if best is None:
            return self._none_open()
        return best

    def _none_open(self) -> ClaimResult:
        ready = list(islice(claimable(self.tx, self.stamp), ROUTE_SCAN))
        if self.paused and any(self.paused.why(r["id"], r["epic_id"]) for r in ready):
            return self.refused("paused", f"no task is claimable: {self.paused.summary()}")
        if any(self.epic_full(r) for r in ready):
            return self.refused(
                "epic_wip_limit",
                "every ready task belongs to an epic at its WIP limit "
                f"(WVO_WIP_PER_EPIC={self.settings.wip_per_epic})",
            )
        if self.lost:
            return self.refused("no_ready_task", _beaten(len(self.lost)))
        counts = queue_counts(self.tx, self.settings, self.agent_id, self.now)
        return self.refused("no_ready_task", "no task is ready: " + _idle_summary(counts))


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
            last_checkpoint=rows.brief(rows.checkpoint(latest.one()), row["id"]),
        )

    return read


def _beaten(lost: int) -> str:
    return (
        f"no task could be claimed now: {lost} claimable task(s) were changed by another "
        "write as you claimed, or their rows are locked by another database session (a long "
        "transaction); try again shortly"
    )


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


def _routed_elsewhere(task_id: str, decision: Decision, ident: routing.Identity) -> str:
    where = f"{decision.provider}/{decision.tier}" if decision.routed else "no provider"
    return f"task {task_id!r}, is routed to {where}, not to {ident.label}: {decision.reason}"


def _idle_summary(counts: QueueCounts) -> str:
    parts = [
        f"{counts.waiting_on_dependencies} pending task(s) wait on dependencies",
        f"{counts.backing_off} back off after failures or wait for their not_before time",
        f"{counts.by_status.get(Status.IN_PROGRESS, 0)} in progress",
        f"{counts.by_status.get(Status.AWAITING_APPROVAL, 0)} await approval",
    ]
    return "; ".join(parts)
