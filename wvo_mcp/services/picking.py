"""What a claim may take, and why not: WIP limits, readiness, pauses; and its pick (scheduler).

The candidates best first (ready tasks and expired leases, in WSJF order; a tier's routed
ones), the leases live now (WIP), the pauses, and a claim's choice among them
(`Picking`), and why a task is not claimable now (`not_ready_reason`): its driver,
services/claims.py, grants what it picks. What every claim of a turn reads alike is asked
once for all of them (`Common`), each claim's own beside it (`Member`).

Carries out `rules/pauses.py` and `rules/wsjf.py`.
"""

import heapq
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from itertools import islice
from typing import TypeGuard

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import NotFound
from wvo_mcp.models import ClaimRefusal, ClaimResult, QueueCounts
from wvo_mcp.providers import Providers
from wvo_mcp.rules.pauses import Paused
from wvo_mcp.rules.routing import Decision
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import agents, routing
from wvo_mcp.services.leases import seen
from wvo_mcp.services.tasks import rescore
from wvo_mcp.store import Answer, Row, Tx

SCORE_REFRESH_SECONDS = 60.0
REPLAYED = 256  # candidates a turn's claims share, read once (Replay)


@dataclass(frozen=True)
class Wip:
    global_used: int
    agent_used: int
    by_epic: dict[str, int]


def ask_wip(tx: Tx, agent_id: str, stamp: str) -> Callable[[], Wip]:
    """Asks for the leases live now, all and the agent's, so they share a round trip with
    what is asked beside them; the function returned reads them (no epic's: Common)."""
    live = tx.ask("live_lease_counts", {"now": stamp, "agent": agent_id})

    def read() -> Wip:
        counts = live.one()
        assert counts is not None  # one row of counts, always
        return Wip(global_used=counts["global_used"], agent_used=counts["agent_used"], by_epic={})

    return read


def queue_counts(tx: Tx, settings: Settings, agent_id: str, now: datetime) -> QueueCounts:
    stamp = timeutil.to_text(now)
    buckets = tx.ask("queue_counts")
    backing = tx.ask("backing_off_count", (stamp,))
    wip = ask_wip(tx, agent_id, stamp)()
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


# How many candidates a tier's claim looks at before it says nothing routes to it; and of
# those, how many of the complexities it gets only when an attempt explores: a tenth of
# their tasks may explore, and of those few go to any one tier, so reading all of them
# would cost a learning fleet's every claim a full scan.
ROUTE_SCAN = 1000
EXPLORE_SCAN = 100


_EXPIRED = {False: "expired_leases", True: "expired_leases_to_take"}


def routed_to(
    tx: Tx, router: routing.Router, ident: agents.Identity, stamp: str, take: bool = False
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


def refresh_due_scores(tx: Tx, now: datetime, last: str | None) -> bool:
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


def not_ready_reason(tx: Tx, row: Row, stamp: str) -> str | None:
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


class Replay:
    """A scan's rows, read once and walked again from the first by each claim of a turn,
    each skipping what the claims before it took (`fill`: as many as the turn has claims,
    read before the first grant). Past the rows read, a claim reads on in the scan, unless
    the turn has sent a grant since it began (`moved`: the scan's later pages are read by
    OFFSET, and a task granted leaves the ready queue, so they would skip as many rows), or
    a claim before it read past the rows kept (REPLAYED): then it begins a scan of its own
    (`again`), which sees the grants."""

    def __init__(
        self, rows: Iterator[Row], again: Callable[[], Iterator[Row]], moved: Collection[str]
    ) -> None:
        self._rows, self._again, self._moved = rows, again, moved
        self._read: list[Row] = []
        self._spilled = False

    def fill(self, rows: int) -> None:
        """Reads up to `rows` candidates now, before the turn grants any: as many as it has
        claims, so a turn whose claims each take the next one never scans again."""
        for _ in islice(self, rows):
            pass

    def __iter__(self) -> Iterator[Row]:
        at = 0
        while True:
            while at < len(self._read):
                yield self._read[at]
                at += 1
            if self._moved or self._spilled:
                yield from self._again()
                return
            row = next(self._rows, None)
            if row is None:
                return
            if len(self._read) == REPLAYED:  # this claim reads on alone, kept by none
                self._spilled = True
                yield row
                yield from self._rows
                return
            self._read.append(row)


@dataclass
class Common:
    """What every claim of a turn reads alike, asked once for all of them (with the first
    page of unrouted candidates, which an agent with no tier takes from)."""

    refreshed: Answer
    pauses: Answer
    epics: Answer | None
    early: Replay | None
    paused: Paused = field(default_factory=Paused)
    by_epic: dict[str, int] = field(default_factory=dict)

    @classmethod
    def ask(
        cls, tx: Tx, settings: Settings, stamp: str, early: bool, dry: bool,
        moved: Collection[str] = (),
    ) -> "Common":  # fmt: skip
        """`moved`: the tasks the turn granted so far (Replay)."""
        refreshed = tx.ask("meta_get", ("scores_refreshed_at",))
        pauses = tx.ask("pauses")
        per_epic = settings.wip_per_epic is not None
        epics = tx.ask("live_leases_by_epic", (stamp,)) if per_epic else None
        scan = None
        if early:
            again = partial(claimable, tx, stamp, take=not dry)
            scan = Replay(again(), again, moved)
        return cls(refreshed, pauses, epics, scan)

    def read(self, tx: Tx, now: datetime, dry: bool) -> None:
        """Reads it, once dated tasks are re-ranked if due (not in a dry run)."""
        if not dry and refresh_due_scores(tx, now, self.refreshed.value()):
            self.early = None  # asked before the re-ranking
        self.paused = Paused.of(self.pauses.all())
        if self.epics is not None:
            self.by_epic = {r["epic_id"]: r["n"] for r in self.epics.all()}


@dataclass
class Member:
    """One claim's own reads in a turn: its agent's registration and WIP."""

    agent_id: str
    registered: Answer
    wip: Callable[[], Wip]

    @classmethod
    def ask(cls, tx: Tx, agent_id: str, stamp: str) -> "Member":
        registered = tx.ask("agent_identity", (agent_id,))
        return cls(agent_id, registered, ask_wip(tx, agent_id, stamp))

    def picking(
        self,
        tx: Tx,
        settings: Settings,
        now: datetime,
        providers: Providers | None,
        common: Common,
        provider: str | None,
        model: str | None,
        bound: agents.Bound | None,
        early: bool,
        dry: bool = False,
    ) -> "Picking":
        """Its picking, once its identity is checked (refused: nothing of it sent)."""
        ident = None
        if providers is not None:
            ident = agents.identity(
                tx, settings, providers, self.agent_id, provider, model, now, remember=False,
                registered=self.registered, bound=bound,
            )  # fmt: skip
        if not dry:
            seen(tx, self.agent_id, now)
        # Its own router: a routed grant reserves usage the next claim's routes must see.
        router = None if providers is None else routing.Router(tx, providers, now)
        wip = replace(self.wip(), by_epic=common.by_epic)
        return Picking(
            tx, settings, self.agent_id, now, timeutil.to_text(now), wip, ident, router,
            common.early if early else None, common.paused, take=not dry,
        )  # fmt: skip


@dataclass
class Picking:
    """One claim choosing its task: what it read before it picks, and the candidates
    another write changed first, or whose row another session holds (`lost`: never tried
    twice in one claim)."""

    tx: Tx
    settings: Settings
    agent_id: str
    now: datetime
    stamp: str
    wip: Wip
    ident: agents.Identity | None
    router: routing.Router | None
    early: Replay | None
    paused: Paused
    lost: set[str] = field(default_factory=set)
    taken: set[str] = field(default_factory=set)  # granted by the claims before it in a turn
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
        bound: agents.Bound | None = None,
        dry: bool = False,
    ) -> "Picking":
        """`dry`: read only (refusal_before_turn): no sighting, no re-ranking, no lock."""
        stamp = timeutil.to_text(now)
        early = task_id is None and provider is None and settings.agent_provider is None
        common = Common.ask(tx, settings, stamp, early=early, dry=dry)
        member = Member.ask(tx, agent_id, stamp)
        common.read(tx, now, dry=dry)
        return member.picking(
            tx, settings, now, providers, common, provider, model, bound, early=early, dry=dry
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
            and row["id"] not in self.taken
            and not self.epic_full(row)
            and (not self.paused or self.paused.why(row["id"], row["epic_id"]) is None)
        )

    def named(self, task_id: str) -> Row | ClaimResult:
        """The task asked for, or why it cannot be claimed now."""
        row = self.tx.one("task_by_id", (task_id,))
        if row is None:
            raise NotFound(f"no task with id {task_id!r}; plan_next lists claimable tasks")
        why = not_ready_reason(self.tx, row, self.stamp)
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
                    "task_not_ready", routed_elsewhere(row["id"], decision, self.ident)
                )
        return row

    def best(self) -> Row | ClaimResult:
        """The best claimable task open to this agent, or why there is none."""
        tx, stamp = self.tx, self.stamp
        if self.paused.fleet is not None:
            return self.refused("paused", f"nothing is claimable: {self.paused.summary()}")
        if self.ident is not None and self.router is not None:
            if self.scan is None:
                self.scan = routed_to(tx, self.router, self.ident, stamp, take=self.take)
            best = next((r for r in self.scan if self.open_to_us(r)), None)
            if (
                best is None
                and not self.lost
                and (top := next(claimable(tx, stamp), None)) is not None
            ):
                return self.refused(
                    "no_task_for_tier",
                    f"no claimable task routes to {self.ident.label} now; the best one, "
                    + routed_elsewhere(top["id"], self.router.decide(top), self.ident),
                )
        else:
            if self.scan is None:
                early = self.early
                self.scan = claimable(tx, stamp, take=self.take) if early is None else iter(early)
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
            return self.refused("no_ready_task", beaten(len(self.lost)))
        counts = queue_counts(self.tx, self.settings, self.agent_id, self.now)
        return self.refused("no_ready_task", "no task is ready: " + _idle_summary(counts))


def beaten(lost: int) -> str:
    return (
        f"no task could be claimed now: {lost} claimable task(s) were changed by another "
        "write as you claimed, or their rows are locked by another database session (a long "
        "transaction); try again shortly"
    )


def routed_elsewhere(task_id: str, decision: Decision, ident: agents.Identity) -> str:
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
