"""The orchestrator: every behaviour the MCP tools and the CLI offer, one await each."""

import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio

from wvo_mcp import arrival, queue_figures, store, timeutil
from wvo_mcp import providers as provider_config
from wvo_mcp.config import Settings
from wvo_mcp.errors import NotFound, Overloaded, ValidationFailed
from wvo_mcp.git import Git, locate, snapshots
from wvo_mcp.models import (
    AgentIdentity,
    Asked,
    Checkpoint,
    CheckpointResult,
    ClaimResult,
    ContextReadResult,
    ContextVersion,
    ContextWriteResult,
    CreateResult,
    GateFigures,
    HealthReport,
    Inbox,
    LandingQueue,
    LeaseResult,
    Note,
    PauseResult,
    PlanNextResult,
    ProviderStatusReport,
    QuarantinedTest,
    RouteDecision,
    Scheduled,
    StatusReport,
    TaskDetail,
    TaskPage,
    TaskSpec,
    Told,
    Unsynced,
    UpdateResult,
    UsageResult,
)
from wvo_mcp.providers import Providers
from wvo_mcp.rules import issue_tasks, routing
from wvo_mcp.rules.claim_gate import HELD_WAIT_S, WAIT_BOUND_S, ClaimGate
from wvo_mcp.rules.issue_tasks import Issue, IssueComment
from wvo_mcp.rules.pauses import Scope
from wvo_mcp.rules.run_charges import RunCharge
from wvo_mcp.rules.transitions import Gate, Status, check_claim_next
from wvo_mcp.rules.webhooks import Run
from wvo_mcp.services import (
    board,
    context,
    conversations,
    deliveries,
    flakes,
    health,
    landing,
    landing_figures,
    leases,
    moves,
    notes,
    pauses,
    reports,
    reviews,
    roadmap_update,
    route_figures,
    routes,
    scheduler,
    schedules,
    tasks,
    tokens,
    usage,
)
from wvo_mcp.store import Database, Lock, Row, Tx
from wvo_mcp.verification import Verification

T = TypeVar("T")
A = TypeVar("A", bound=Asked)


class Orchestrator:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        providers: Providers,
        clock: Callable[[], datetime] = timeutil.now,
    ) -> None:
        self.db = db
        self.settings = settings
        self.providers = providers
        self.clock = clock  # injected by tests for exact lease and back-off times
        # Found once: a repository a sandboxed command plants later is never used.
        repo = locate(settings.workspace_root)
        self.git = (
            None
            if repo is None
            else Git(repo, settings.workspace_root.resolve(), [settings.state_root])
        )
        self.verification = Verification(db, settings, providers, self.git, clock)
        # The sandbox's runs, offered here under their own names (verification.py).
        self.sandbox_run = self.verification.sandbox_run
        self.check = self.verification.check
        self.toolchain = self.verification.toolchain
        # This process's claims past capacity: refused at once, told when to come back.
        self.claims = ClaimGate()

    @classmethod
    async def open(
        cls, settings: Settings, clock: Callable[[], datetime] = timeutil.now
    ) -> "Orchestrator":
        # The providers file first: a bad one is refused before anything opens.
        found = provider_config.load(settings)
        return cls(await store.database(settings).open(), settings, found, clock)

    async def close(self) -> None:
        await self.db.close()

    async def create_tasks(self, specs: Sequence[TaskSpec], actor: str) -> CreateResult:
        return await self.db.write(
            partial(schedules.create_tasks, specs=specs, actor=actor, now=self.clock())
        )

    async def update_roadmap(
        self, specs: Sequence[TaskSpec], actor: str, dry_run: bool = False
    ) -> roadmap_update.RoadmapUpdate:
        """An edited roadmap applied (`import --update`), or with `dry_run` what it would do."""
        if dry_run:
            return await self.db.read(partial(roadmap_update.plan, specs=specs))
        return await self.db.write(
            partial(schedules.apply_roadmap, specs=specs, actor=actor, now=self.clock())
        )

    async def schedules_due(self) -> list[str]:
        """The tasks made because their schedule's time came (the monitor's leader's tick)."""
        return await self.db.write(partial(schedules.due, now=self.clock()))

    async def schedules(self) -> list[Scheduled]:
        return await self.db.read(schedules.listed)

    async def unschedule(self, schedule: str) -> str:
        return await self.db.write(partial(schedules.stop, schedule=schedule, now=self.clock()))

    async def delivered_issue(
        self, delivery: str, digest: str, repository: str, issue: Issue, label: str
    ) -> str:
        """A GitHub `issues` delivery: its issue's task kept in step (services/deliveries)."""
        return await self.db.write(
            partial(deliveries.issue_event, settings=self.settings, delivery=delivery,
                    digest=digest, repository=repository, issue=issue, label=label,
                    table=issue_tasks.LABELS, now=self.clock())
        )  # fmt: skip

    async def delivered_run(
        self, delivery: str, digest: str, run: Run, contained: frozenset[str]
    ) -> str:
        """A GitHub `workflow_run` or `check_suite` delivery on the landing branch
        (services/deliveries)."""
        return await self.db.write(
            partial(deliveries.red_run, settings=self.settings, delivery=delivery,
                    digest=digest, run=run, contained=contained, now=self.clock())
        )  # fmt: skip

    async def delivered(self, delivery: str, event: str, digest: str) -> None:
        """A delivery nothing acts on, recorded so a replay of it is refused alike."""
        await self.db.write(
            partial(deliveries.ignored, delivery=delivery, event=event, digest=digest,
                    now=self.clock())
        )  # fmt: skip

    async def red_tasks(self, run: Run) -> dict[str, list[str]]:
        """The open red tasks of `run`'s workflow or app, with the commits each was red at."""
        return await self.db.read(partial(deliveries.red_tasks, run=run))

    async def synced_repositories(self) -> list[str]:
        """The repositories `import github:` synced here (the webhook serves them)."""
        return await self.db.read(conversations.synced)

    # An issue's conversation with its task (tracker.py; services/conversations).

    async def forge_claim(self, key: str) -> bool:
        return await self.db.write(partial(conversations.claim, key=key, now=self.clock()))

    async def forge_done(self, key: str, at: str) -> None:
        await self.db.write(partial(conversations.done, key=key, at=at, now=self.clock()))

    async def forge_release(self, key: str) -> None:
        await self.db.write(partial(conversations.release, key=key))

    async def unsynced(self, repository: str) -> list[Unsynced]:
        return await self.db.read(partial(conversations.unsynced, repository=repository))

    async def keep_unsynced(self, repository: str, found: list[Unsynced]) -> None:
        await self.db.write(
            partial(conversations.keep_unsynced, repository=repository, found=found)
        )

    async def forge_post(self, key: str) -> Row | None:
        return await self.db.read(partial(conversations.post_of, key=key))

    async def tasks_under(self, prefix: str) -> dict[str, str]:
        """Each task whose id starts with `prefix`, and its status."""
        return await self.db.read(partial(conversations.statuses, prefix=prefix))

    async def questions_under(self, prefix: str) -> list[Row]:
        return await self.db.read(partial(conversations.questions, prefix=prefix))

    async def task_landed(self, task_id: str) -> Row | None:
        return await self.db.read(partial(conversations.landed, task_id=task_id))

    async def issue_comment(self, task_id: str, said: IssueComment, kind: str, text: str) -> str:
        return await self.db.write(
            partial(conversations.comment, settings=self.settings, task_id=task_id, said=said,
                    kind=kind, text=text, now=self.clock()),
            Lock.TASK,
        )  # fmt: skip

    async def outsider_said(
        self, task_id: str, who: str, what: str, url: str, key: str = ""
    ) -> None:
        await self.db.write(
            partial(conversations.outsider, task_id=task_id, who=who, what=what, url=url,
                    key=key, now=self.clock()),
            Lock.TASK,
        )  # fmt: skip

    async def get_task(self, task_id: str) -> TaskDetail:
        return await self.db.read(partial(tasks.get_task, task_id=task_id))

    async def list_tasks(
        self,
        *,
        status: str | None = None,
        epic_id: str | None = None,
        milestone_id: str | None = None,
        tag: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> TaskPage:
        return await self.db.read(
            partial(
                tasks.list_tasks,
                status=status,
                epic_id=epic_id,
                milestone_id=milestone_id,
                tag=tag,
                limit=limit,
                cursor=cursor,
            )
        )

    async def plan_next(
        self,
        agent_id: str,
        limit: int = 5,
        epic_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> PlanNextResult:
        return await self.db.read(
            partial(
                scheduler.plan_next,
                settings=self.settings,
                agent_id=agent_id,
                limit=limit,
                epic_id=epic_id,
                now=self.clock(),
                providers=self.providers,
                provider=provider,
                model=model,
            )
        )

    async def claim(
        self,
        agent_id: str,
        task_id: str | None = None,
        lease_seconds: int | None = None,
        provider: str | None = None,
        model: str | None = None,
        gate: Gate = Gate.NONE,
        bound: routes.Bound | None = None,
    ) -> ClaimResult:
        """`gate`: raised on the task as it is granted (the autopilot's claims: its holder
        may then finish only as far as needs_review); `bound`: an agent token's caller.
        Past capacity, refused at once (reason busy) before anything is read. While claims
        queue for their turn, one sure to be refused is refused from a read, without the
        turn; while none queue, the turn costs what that read would."""
        arrived = arrival.arrived()
        back = self.claims.refuse(time.monotonic())
        if back is not None:
            return scheduler.busy(agent_id, back)
        if self.claims.contended():
            try:
                refused = await self.db.read(
                    partial(
                        scheduler.refusal_before_turn, settings=self.settings,
                        agent_id=agent_id, task_id=task_id, now=self.clock(),
                        providers=self.providers, provider=provider, model=model, bound=bound,
                    ),
                    within=arrival.left(WAIT_BOUND_S, arrived),
                )  # fmt: skip
            except Overloaded:  # no connection within the bound: the claim waits no longer
                return scheduler.busy(agent_id, self.claims.turn_refused(time.monotonic()))
            if refused is not None:
                return refused
        claim = partial(
            scheduler.claim,
            settings=self.settings,
            agent_id=agent_id,
            task_id=task_id,
            lease_seconds=lease_seconds or self.settings.default_lease_seconds,
            now=self.clock(),
            providers=self.providers,
            provider=provider,
            model=model,
            bound=bound,
        )

        def claim_gated(tx: Tx) -> ClaimResult:
            result = claim(tx)
            if gate is not Gate.NONE and result.claimed and result.task is not None:
                tx.run("raise_gate", {"id": result.task.id, "gate": gate.value})
            return result

        done = await self._in_turn(claim_gated, agent_id, arrived)
        return scheduler.busy(agent_id, done) if isinstance(done, float) else done

    async def _in_turn(
        self, fn: Callable[[Tx], A], agent_id: str, arrived: float | None = None
    ) -> A | float:
        """`fn` in the claims' turn (Lock.CLAIM), asking for `agent_id`'s notes, or, past
        capacity, nothing done and the seconds after which to come back: refused at once when
        this process's claims would wait past the bound or its held work queues, or when no
        turn came within the bound from `arrived` (the call's arrival: its token's check and
        a read before the turn waited in it too)."""
        gate = self.claims
        started = time.monotonic()
        back = gate.refuse(started)
        if back is not None:
            return back
        left = WAIT_BOUND_S - (started - (started if arrived is None else arrived))
        if left <= 0:
            return gate.turn_refused(started)
        ahead = gate.enter()
        took = None
        granted = False
        try:
            result = await self.db.write_then_read(
                notes.asking(fn, agent_id), Lock.CLAIM, within=left
            )
            took = time.monotonic() - started
            claimed = result.next if isinstance(result, UpdateResult) else result
            granted = isinstance(claimed, ClaimResult) and claimed.claimed
            return result
        except Overloaded:
            took = time.monotonic() - started  # the bound, waited: the turn is contended
            return gate.turn_refused(time.monotonic())
        finally:
            gate.leave(took, ahead)
            if not granted:  # no holder came of it (refused, failed): its place goes back
                gate.freed()

    async def _held(self, write: Awaitable[T], frees: bool = False) -> T:
        """A write of held work (a holder's heartbeat, checkpoint or move), timed for the
        claim gate: held work that queues holds claims back, and sets how fast new holders
        are let in. `frees`: it may end a hold, whose place a claim may then take."""
        started = time.monotonic()
        try:
            result = await write
        finally:
            now = time.monotonic()
            self.claims.held(now, now - started)
        if frees and getattr(result, "status", Status.IN_PROGRESS) != Status.IN_PROGRESS:
            self.claims.freed()
        return result

    def _next_claim(self, agent_id: str, after: Status) -> Callable[[Tx], ClaimResult]:
        """claim_next's claim, as claim_task's with no arguments, made now."""
        claim = partial(
            scheduler.claim, settings=self.settings, agent_id=agent_id, task_id=None,
            lease_seconds=self.settings.default_lease_seconds, now=self.clock(),
            providers=self.providers,
        )  # fmt: skip
        return partial(scheduler.claim_next, claim=claim, agent_id=agent_id, after=after)

    async def register_agent(
        self, agent_id: str, provider: str, model: str, bound: routes.Bound | None = None
    ) -> AgentIdentity:
        return await self.db.write(
            partial(
                routes.register,
                providers=self.providers,
                agent_id=agent_id,
                provider=provider,
                model=model,
                now=self.clock(),
                bound=bound,
            )
        )

    async def route_task(self, task_id: str) -> RouteDecision:
        return await self.db.read(
            partial(routes.route_task, providers=self.providers, task_id=task_id, now=self.clock())
        )

    async def record_usage(
        self,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        outcome: routing.Outcome,
        task_id: str | None = None,
        token: str | None = None,
        agent_id: str | None = None,
        reporter: usage.Reporter = usage.ANYONE,
    ) -> UsageResult:
        """One model call as an MCP caller reports it: bounded, and charged only where
        `reporter` may charge (services/usage.py)."""
        return await self.db.write(
            partial(
                usage.record,
                settings=self.settings,
                providers=self.providers,
                reporter=reporter,
                task_id=task_id,
                token=token,
                provider=provider,
                model=model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                outcome=outcome,
                now=self.clock(),
                agent_id=agent_id,
            )
        )

    async def record_run(
        self,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        outcome: routing.Outcome,
        task_id: str | None = None,
        token: str | None = None,
        agent_id: str | None = None,
    ) -> UsageResult:
        """What the autopilot saw a worker run use and how it ended (its CLI's own report,
        many calls): what budgets and breakers follow. Charged to its task while it holds it
        (through its lease)."""
        record = (
            routes.record_usage
            if task_id is None
            else partial(leases.record_task_usage, token=token)
        )
        return await self.db.write(
            partial(
                record,
                providers=self.providers,
                task_id=task_id,
                provider=provider,
                model=model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                outcome=outcome,
                now=self.clock(),
                agent_id=agent_id,
            )
        )

    async def note(self, task_id: str, actor: str, kind: str, reason: str) -> None:
        """An event on a task's audit trail that moves nothing (e.g. the autopilot's record
        of a worker's commits)."""

        def write(tx: Tx) -> None:
            if tx.one("task_by_id", (task_id,)) is None:
                raise NotFound(f"no task with id {task_id!r}")
            tasks.record_event(
                tx, task_id, at=timeutil.to_text(self.clock()), actor=actor, kind=kind,
                reason=reason,
            )  # fmt: skip

        await self.db.write(write)

    async def autopilot_start(self, run_id: str) -> None:
        stamp = timeutil.to_text(self.clock())
        await self.db.write(lambda tx: tx.run("autopilot_start", {"id": run_id, "now": stamp}))

    async def autopilot_beat(
        self, run_id: str, state: str, report: dict[str, Any]
    ) -> tuple[str, str] | None:
        """Record an autopilot's round; what a person wants of it, if anything, and who."""

        def beat(tx: Tx) -> tuple[str, str] | None:
            row = tx.one(
                "autopilot_beat",
                {"id": run_id, "now": timeutil.to_text(self.clock()), "state": state,
                 "report": json.dumps(report)},
            )  # fmt: skip
            if row is None or row["wanted"] is None:
                return None
            tx.run("autopilot_heard", {"id": run_id, "wanted": row["wanted"]})
            return row["wanted"], row["asked_by"] or "someone"

        return await self.db.write(beat)

    async def autopilot_want(self, wanted: str, by: str, run_id: str | None = None) -> int:
        """Ask running autopilots (all, or one) to pause, resume or stop: how many heard.
        `by`: who asks (a person's actor name), kept on the run."""
        return await self.db.write(
            lambda tx: tx.run("autopilot_want", {"wanted": wanted, "by": by, "id": run_id})
        )

    async def autopilot_runs(self, since: str) -> list[dict[str, Any]]:
        rows = await self.db.read(lambda tx: tx.all("autopilot_runs", {"since": since}))
        return [{**dict(row), "report": json.loads(row["report"])} for row in rows]

    async def provider_status(self) -> ProviderStatusReport:
        return await self.db.read(
            partial(routes.provider_status, providers=self.providers, now=self.clock())
        )

    async def route_view(self) -> route_figures.RouteBoard:
        """Each route's figures per task class, where a fresh task of each class goes now and
        why, and the learning policy in force (the dashboard's budgets and routing view)."""
        return await self.db.read(
            partial(route_figures.view, providers=self.providers, now=self.clock())
        )

    async def heartbeat(
        self, task_id: str, token: str, agent_id: str, lease_seconds: int | None = None
    ) -> LeaseResult:
        """A holder's renewal in statements that wait on nothing (one round trip on
        PostgreSQL); a token that did not hold the task is told why by `leases.heartbeat`."""
        given: dict[str, Any] = {
            "task_id": task_id, "token": token, "agent_id": agent_id,
            "lease_seconds": lease_seconds, "now": self.clock(),
        }  # fmt: skip
        renew = partial(leases.renew, **given)
        arrived = arrival.arrived()
        renewing = self.db.write_then_read(renew, Lock.TASK, arrival.left(HELD_WAIT_S, arrived))
        renewed = await self._held(renewing)
        if renewed is not None:
            return renewed
        # Not held: the heartbeat's own write says why, within what is left of the bound.
        left = arrival.left(HELD_WAIT_S, arrived)
        return await self.db.write(partial(leases.heartbeat, **given), Lock.TASK, left)

    async def checkpoint(
        self,
        task_id: str,
        token: str,
        agent_id: str,
        summary: str,
        next_steps: str | None = None,
        progress: int | None = None,
        files: Sequence[str] = (),
        git_snapshot: bool = False,
        attach_sandbox_run: bool = False,
    ) -> CheckpointResult:
        # The snapshot is taken before the transaction (git can take seconds; the write lock
        # must not wait on it); the ref is set after commit, once the sequence is known.
        snap = None
        since = None  # the bound counts from the call's arrival, or from the snapshot taken
        if git_snapshot and self.git is not None:
            snap = await anyio.to_thread.run_sync(
                snapshots.snapshot, self.git, f"wvo-mcp checkpoint of {task_id}: {summary[:200]}"
            )
            since = time.monotonic()
        write = self.db.write_then_read(
            notes.asking(
                partial(
                    leases.checkpoint,
                    task_id=task_id,
                    token=token,
                    agent_id=agent_id,
                    summary=summary,
                    next_steps=next_steps,
                    progress=progress,
                    files=files,
                    now=self.clock(),
                    snapshot=snap,
                    attach_sandbox_run=attach_sandbox_run,
                ),
                agent_id,
            ),
            Lock.TASK,
            arrival.left(HELD_WAIT_S, since),
        )
        result = await self._held(write)
        if self.git is not None and snap is not None and result.git_ref is not None:
            await anyio.to_thread.run_sync(self.git.set_ref, result.git_ref, snap.commit)
        elif git_snapshot:
            result.git_note = (
                f"{self.settings.workspace_root.resolve()} is not a git repository (as found "
                "when the server started): no snapshot taken"
            )
        return result

    async def update_status(
        self,
        task_id: str,
        status: Status,
        actor: str,
        token: str | None = None,
        reason: str | None = None,
        *,
        by_person: bool = False,
        skip_verify: bool = False,
        landing: str | None = None,
        verified: leases.Run | None = None,
    ) -> UpdateResult:
        """Move a task; `done` first runs the task's verify_command in the sandbox (outside
        any transaction: it can take minutes) unless a person skips it. `landing`: the
        autopilot lands this commit (it moves as the lander), `verified`: having run the
        verification on a clean checkout of exactly what lands (`verify`)."""
        # A holder's own move changes its task and what depends on it, rows it locks; a
        # person's or the lander's may read and move anything (approvals, reviews).
        holder = token is not None and not by_person and landing is None
        lock = Lock.TASK if holder else Lock.WORLD

        def move(
            verified: leases.Run | None, skipped_by: str | None, since: float | None = None
        ) -> Awaitable[UpdateResult]:
            write = partial(
                moves.update_status, settings=self.settings, task_id=task_id, target=status,
                actor=actor, token=token, reason=reason, now=self.clock(), by_person=by_person,
                landing=landing, verified=verified, skipped_by=skipped_by,
            )  # fmt: skip
            if not holder:
                return self.db.write(write, lock)
            asked = notes.asking(write, actor)
            within = arrival.left(HELD_WAIT_S, since)
            return self._held(self.db.write_then_read(asked, lock, within), frees=True)

        try:  # one transaction, unless the task has a verify_command to pass first
            return await move(verified, None)
        except moves.Unverified as needed:
            command = needed.command
        if skip_verify:
            return await move(None, actor)
        if token is not None:
            checked = await self.verification.verify_holding(task_id, token, actor, command)
        else:
            checked = await self.verification.verify(task_id, command)
        return await move(checked, None, time.monotonic())  # a new bound after the check

    async def update_and_claim(
        self, task_id: str, status: Status, agent_id: str, token: str | None, reason: str | None
    ) -> UpdateResult:
        """plan_update with claim_next: the move, then the agent's next claim (as claim_task
        with no arguments) in `next`, one transaction. Two decisions: a refused move claims
        nothing, and a claim that fails after the move is undone alone, the move standing.
        A task with a verify_command is checked first, outside any transaction, so it moves
        and claims in two."""
        check_claim_next(status)
        move = partial(
            moves.update_status, settings=self.settings, task_id=task_id, target=status,
            actor=agent_id, token=token, reason=reason, now=self.clock(),
        )  # fmt: skip
        claim = self._next_claim(agent_id, status)

        def both(tx: Tx) -> UpdateResult:
            moved = move(tx)
            moved.next = claim(tx)
            return moved

        # The move's own lock, with the claims' turn: a WORLD write keeps out claims too.
        back: float | None = None
        try:
            if token is None:
                return await self.db.write(both, Lock.WORLD)
            done = await self._in_turn(both, agent_id, arrival.arrived())
            if not isinstance(done, float):
                if done.status != Status.IN_PROGRESS:
                    self.claims.freed()  # ... and taken by its claim_next, if granted
                return done
            back = done  # past capacity: the move alone, held work's turn, and no claim
        except moves.Unverified:
            pass  # rolled back whole: the command runs outside any transaction
        moved = await self.update_status(task_id, status, agent_id, token, reason)
        if back is not None:
            moved.next = scheduler.busy(agent_id, back)
            return moved
        # As of now: the check may have taken minutes.
        next_claim = await self._in_turn(self._next_claim(agent_id, status), agent_id)
        if isinstance(next_claim, float):
            moved.next = scheduler.busy(agent_id, next_claim)
        else:  # asked after the move's: what the task now held has for the agent
            moved.next, moved._no_notes_for = next_claim, next_claim._no_notes_for
        return moved

    async def verify(self, task_id: str, workspace: Path) -> leases.Run | None:
        """The task's verify_command run in `workspace` (a clean checkout of what will land):
        the passing run, None when the task has none; VerificationFailed with the tails."""
        detail = await self.get_task(task_id)
        if detail.verify_command is None:
            return None
        return await self.verification.verify(
            task_id, detail.verify_command, workspace, landing=True
        )

    async def take_submission(
        self, task_id: str, commit: str, base: str, target: str
    ) -> landing.Entry:
        """The autopilot took a holder's submitted commit: recorded, and in the merge queue
        for `target` ('' : verified and done on its own branch), behind its review if any."""
        return await self.db.write(
            partial(landing.take, task_id=task_id, commit=commit, base=base, target=target,
                    now=self.clock())
        )  # fmt: skip

    async def reviews_waiting(self) -> list[landing.Entry]:
        return await self.db.read(partial(landing.reviews_waiting, now=self.clock()))

    async def claim_review(self, entry_id: int, run: str, seconds: float) -> bool:
        now = self.clock()
        until = now + timedelta(seconds=seconds)
        return await self.db.write(
            partial(landing.claim_review, entry_id=entry_id, run=run, until=until, now=now)
        )

    async def reviewed(self, entry_id: int) -> str:
        """After a reviewer's run: 'queued' (approved), 'changes', 'review' (no verdict)."""
        return await self.db.write(
            partial(landing.reviewed, settings=self.settings, entry_id=entry_id, now=self.clock())
        )

    async def landing_claims(self, run: str, seconds: float | None) -> None:
        """Renew what an autopilot reviews and lands (None: it ended; drop them)."""
        if seconds is None:
            await self.db.write(partial(landing.drop_claims, run=run))
        else:
            until = self.clock() + timedelta(seconds=seconds)
            await self.db.write(partial(landing.renew_claims, run=run, until=until))

    async def release_orphans(self, agents: Sequence[str], reason: str) -> list[str]:
        """Tasks held by the workers of an autopilot that died go back to pending with
        their checkpoints, no attempt counted (each holder's own move, made for it)."""
        return await self.db.write(
            partial(
                moves.release_orphans,
                settings=self.settings,
                agents=agents,
                reason=reason,
                now=self.clock(),
            )
        )

    async def untaken_submissions(self) -> list[tuple[str, str]]:
        """(task, author) of submissions to the autopilot that no autopilot took yet."""
        rows = await self.db.read(lambda tx: tx.all("untaken_submissions"))
        return [(row["id"], row["submitted_by"]) for row in rows]

    async def hand_back(self, task_id: str, why: str) -> bool:
        """A submission no autopilot can take (its host died before it reached the remote):
        its task back to pending with its checkpoints."""
        return await self.db.write(
            partial(landing.hand_back, settings=self.settings, task_id=task_id, why=why,
                    now=self.clock())
        )  # fmt: skip

    async def adopt_target(self, old: str, new: str) -> int:
        """A target's open entries from before targets were named by repository, renamed."""
        return await self.db.write(partial(landing.adopt, old=old, new=new))

    async def landing_queue(self) -> list[tuple[landing.Entry, str]]:
        return await self.db.read(landing.queue)

    async def landing_view(self, hours: float = landing_figures.WINDOW_HOURS) -> LandingQueue:
        """The merge queue's open entries with their place and wait, and the figures of the
        last `hours` (the landing_queue tool, `autopilot status`, the dashboard)."""
        return await self.db.read(partial(landing_figures.view, now=self.clock(), hours=hours))

    async def landed(self, landing_id: int) -> queue_figures.Landed:
        """What a completed landing brought: its entries' waits and its tasks' spend (for
        telemetry, once the landing completed)."""
        return await self.db.read(partial(landing_figures.of_landing, landing_id=landing_id))

    async def charge_task(
        self,
        task_id: str,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        worker: str | None = None,
        token: str | None = None,
    ) -> None:
        """A run the autopilot made for a task that the run no longer holds: its usage
        counts towards what the task cost (record_usage without the task charges the
        provider's budgets); `worker` and its lease `token`: the worker's run, also its
        attempt's cost (routes.charge_task)."""
        await self.db.write(
            partial(
                routes.charge_task, providers=self.providers, task_id=task_id,
                provider=provider, model=model, input_tokens=input_tokens,
                output_tokens=output_tokens, now=self.clock(), worker=worker, token=token,
            )
        )  # fmt: skip

    async def latest_review(self, task_id: str, commit: str) -> reviews.Review | None:
        """The newest review of exactly `commit` of the task."""
        return await self.db.read(partial(reviews.latest_review, task_id=task_id, commit=commit))

    async def submit_commit(self, task_id: str, commit: str, actor: str) -> None:
        """The autopilot took a holder's submitted commit from its own repository."""
        await self.db.write(
            partial(
                reviews.submit_commit, task_id=task_id, commit=commit, actor=actor, now=self.clock()
            )
        )

    async def review(
        self, task_id: str, commit: str, reviewer: str, verdict: str, notes: str
    ) -> UpdateResult:
        """A reviewer's verdict on exactly the submitted commit (review_submit)."""
        return await self.db.write(
            partial(
                reviews.review,
                task_id=task_id,
                commit=commit,
                reviewer=reviewer,
                verdict=verdict,
                notes=notes,
                now=self.clock(),
            )
        )

    async def requeue(self, task_id: str, actor: str, reason: str | None = None) -> UpdateResult:
        """A person's re-queue: a dead letter (or cancelled/blocked task) back to pending; a
        pending one stranded by its failed tier routed afresh."""
        return await self.db.write(
            partial(moves.requeue, settings=self.settings, task_id=task_id, actor=actor,
                    reason=reason, now=self.clock())
        )  # fmt: skip

    async def status_report(self, agent_id: str, top: int = 5) -> StatusReport:
        return await self.db.read(
            partial(
                reports.status_report,
                settings=self.settings,
                agent_id=agent_id,
                top=top,
                now=self.clock(),
                providers=self.providers,
            )
        )

    async def approve(self, task_id: str, by: str, note: str | None = None) -> UpdateResult:
        return await self.db.write(
            partial(reviews.approve, task_id=task_id, by=by, note=note, now=self.clock())
        )

    # A person's hand on a running fleet (issue 46): services/notes.py and pauses.py.

    async def tell(self, scope: Scope, key: str, text: str, by: str) -> Told:
        """A person's message to a task's holders, an epic's, or the fleet's."""
        return await self.db.write(
            partial(notes.tell, scope=scope, key=key, text=text, author=by, now=self.clock())
        )

    async def drain(self, held: list[tuple[str, str]], by: str) -> list[str]:
        """An autopilot's drain, told to each of its workers (task, agent) still holding."""
        return await self.db.write(partial(notes.drain, held=held, author=by, now=self.clock()))

    async def pause(
        self, scope: Scope, key: str, by: str, reason: str | None = None
    ) -> PauseResult:
        return await self.db.write(
            partial(pauses.pause, scope=scope, key=key, reason=reason, author=by, now=self.clock())
        )

    async def resume(self, scope: Scope, key: str, by: str) -> PauseResult:
        return await self.db.write(
            partial(pauses.resume, scope=scope, key=key, author=by, now=self.clock())
        )

    async def redirect(
        self,
        task_id: str,
        by: str,
        *,
        description: str | None = None,
        verify_command: str | list[str] | None = None,
        restart: bool = False,
    ) -> UpdateResult:
        return await self.db.write(
            partial(notes.redirect, settings=self.settings, task_id=task_id, author=by,
                    now=self.clock(), description=description, verify_command=verify_command,
                    restart=restart)
        )  # fmt: skip

    async def ask(self, task_id: str, token: str, agent_id: str, question: str) -> UpdateResult:
        """The holder's question to a person: its task waits in blocked for the answer."""
        return await self.db.write(
            partial(notes.ask, settings=self.settings, task_id=task_id, token=token,
                    agent_id=agent_id, question=question, now=self.clock()),
            Lock.TASK,
        )  # fmt: skip

    async def answer(self, task_id: str, text: str, by: str) -> UpdateResult:
        return await self.db.write(
            partial(notes.answer, settings=self.settings, task_id=task_id, text=text, author=by,
                    now=self.clock())
        )  # fmt: skip

    async def inbox(self) -> Inbox:
        return await self.db.read(notes.inbox)

    # -- the landing gate's flakes and quarantine (issue 57) -------------------------------

    async def gate(self) -> GateFigures:
        return await self.db.read(partial(flakes.gate, now=self.clock()))

    async def quarantined(self) -> frozenset[str]:
        return await self.db.read(partial(flakes.quarantined, now=self.clock()))

    async def quarantine(self, test: str, reason: str, by: str, days: float) -> QuarantinedTest:
        return await self.db.write(
            partial(flakes.put, test=test, evidence=reason, by=by, days=days, now=self.clock())
        )

    async def unquarantine(self, test: str) -> None:
        await self.db.write(partial(flakes.drop, test=test))

    async def check_counted(
        self, command: str, *, failed: bool, reruns: int = 0, seconds: float = 0.0
    ) -> None:
        await self.db.write(partial(flakes.counted, command=command, failed=failed,
                                    flaked=False, reruns=reruns, seconds=seconds))  # fmt: skip

    async def check_flaked(
        self, *, target: str, command: str, tree: str, tests: list[str], reruns: int,
        output: str, seconds: float,
    ) -> None:  # fmt: skip
        """A landing check's failure that did not come back on the same tree (services/
        flakes.py): recorded, and its tests quarantined."""
        await self.db.write(partial(flakes.flaked, target=target, command=command, tree=tree,
                                    tests=tests, reruns=reruns, output=output,
                                    seconds=seconds, now=self.clock()))  # fmt: skip

    async def notes_for(self, agent_id: str) -> list[Note]:
        """What a person left for this agent's held tasks since it was last told: read on
        every tool call, written only when there is something to give."""
        # One statement: on PostgreSQL one round trip a call, with no transaction around it.
        if not await self.db.read(partial(notes.due, agent_id=agent_id), snapshot=False):
            return []
        return await self.db.write(partial(notes.deliver, agent_id=agent_id), Lock.TASK)

    async def board_view(self, filters: board.Filters, limit: int = 50) -> board.Board:
        """The dashboard's columns (first pages), counts and change cursor."""
        return await self.db.read(partial(board.board, filters=filters, limit=limit))

    async def board_column(
        self, status: str, filters: board.Filters, after: str = "", limit: int = 50
    ) -> board.Column:
        return await self.db.read(
            partial(board.column, status=status, filters=filters, after=after, limit=limit)
        )

    async def board_cards(self, ids: list[str], filters: board.Filters) -> list[board.Card]:
        return await self.db.read(partial(board.cards, ids=ids, filters=filters))

    async def board_changes(self, after: int, limit: int = 1000) -> board.Changes:
        """What changed since event `after` (the dashboard's live view polls this)."""
        day = routing.windows(self.clock())[1]
        return await self.db.read(partial(board.changes, after=after, limit=limit, day=day))

    async def agents_view(self, limit: int = 500) -> list[board.AgentRow]:
        """The dashboard's agents: each one's held task, done count, today's usage and
        health reading."""
        now = self.clock()
        cutoff = leases.silent_before(now, self.settings.stale_task_minutes)

        def tier(row: Row) -> str | None:
            found = self.providers.get(row["provider"] or "")
            model = row["model"]
            named = None if found is None or model is None else found.tier_for_model(model)
            return None if named is None else named.name

        return await self.db.read(
            partial(
                board.agents,
                now=timeutil.to_text(now),
                cutoff=timeutil.to_text(cutoff),
                day=routing.windows(now)[1],
                limit=limit,
                tier=tier,
            )
        )

    async def done_per_hour(self, hours: int = 12) -> list[tuple[str, int]]:
        """Completions in each of the last `hours` hours, oldest first."""
        return await self.db.read(partial(board.done_per_hour, now=self.clock(), hours=hours))

    async def last_event_id(self) -> int:
        return await self.db.read(board.last_event_id)

    async def health_report(self, limit: int = 10, full: bool = False) -> HealthReport:
        return await self.db.read(partial(health.report, limit=limit, full=full, now=self.clock()))

    async def export_tasks(self) -> list[dict[str, Any]]:
        return await self.db.read(reports.export_tasks)

    async def completions(self) -> dict[str, list[str]]:
        return await self.db.read(reports.completions)

    async def context_write(
        self,
        section: str,
        content: str,
        author: str,
        mode: Literal["replace", "append"] = "replace",
        expected_version: int | None = None,
    ) -> ContextWriteResult:
        return await self.db.write(
            partial(
                context.write,
                settings=self.settings,
                name=section,
                content=content,
                mode=mode,
                expected_version=expected_version,
                author=author,
                now=self.clock(),
            )
        )

    async def context_read(
        self, section: str | None = None, version: int | None = None
    ) -> ContextReadResult:
        return await self.db.read(partial(context.read, name=section, version=version))

    async def context_history(self, section: str, limit: int = 20) -> list[ContextVersion]:
        return await self.db.read(partial(context.history, name=section, limit=limit))

    async def context_markdown(self) -> str:
        return await self.db.read(context.markdown)

    async def reject(
        self, task_id: str, by: str, note: str, to: Status = Status.CANCELLED
    ) -> UpdateResult:
        return await self.db.write(
            partial(reviews.reject, task_id=task_id, by=by, note=note, to=to, now=self.clock())
        )

    async def checkpoints(self, task_id: str) -> list[Checkpoint]:
        return await self.db.read(partial(tasks.checkpoints, task_id=task_id))

    async def task_view(
        self, task_id: str, events_limit: int = 200, runs_limit: int = 50
    ) -> tasks.TaskView:
        """A task's detail, its `events_limit` newest events, every checkpoint and its
        newest sandbox runs and verifications, in one read."""
        return await self.db.read(
            partial(tasks.view, task_id=task_id, events_limit=events_limit, runs_limit=runs_limit)
        )

    async def run_charges(self, task_id: str, limit: int = 50) -> list[RunCharge]:
        """What each of the task's `limit` newest autopilot runs was charged, in time order."""
        return await self.db.read(partial(tasks.charges, task_id=task_id, limit=limit))

    async def checkpoint_diff(
        self, task_id: str, seq: int, max_bytes: int = 256 * 1024
    ) -> tuple[str, bool]:
        """A checkpoint's git snapshot against the HEAD it was taken on: (the patch, cut at
        max_bytes?). Reads git objects only; nothing in the workspace changes."""
        head, commit = await self.db.read(partial(tasks.snapshot, task_id=task_id, seq=seq))
        git = self.git
        if git is None:
            raise ValidationFailed(
                f"{self.settings.workspace_root.resolve()} is not in a git repository"
            )
        return await anyio.to_thread.run_sync(snapshots.snapshot_diff, git, head, commit, max_bytes)

    async def rollback(self, task_id: str, seq: int, *, force: bool, apply: bool) -> str:
        """Restore the workspace's files from a checkpoint's snapshot; returns what changes."""
        commit = await self.db.read(partial(tasks.snapshot_commit, task_id=task_id, seq=seq))
        git = self.git
        if git is None:
            raise ValidationFailed(
                f"{self.settings.workspace_root.resolve()} is not in a git repository"
            )
        changes = await anyio.to_thread.run_sync(snapshots.diff_stat, git, commit)
        if apply:
            dirty = await anyio.to_thread.run_sync(snapshots.uncommitted, git)
            if dirty and not force:
                raise ValidationFailed(
                    "the workspace has uncommitted work that the rollback would overwrite:\n"
                    f"{dirty}\ncommit or stash it, or pass --force"
                )
            await anyio.to_thread.run_sync(snapshots.restore, git, commit)
        return changes

    async def token_add(
        self,
        role: str,
        name: str,
        by: str,
        expires_at: datetime | None = None,
        scope: tokens.Scope | None = None,
        provider: str | None = None,
    ) -> tokens.Issued:
        """A new bearer token for the HTTP transport; its secret is in the answer only.
        `expires_at` and `scope`: a run token (the autopilot's, for one worker run);
        `provider`: the provider an agent token is bound to."""
        known = tuple(p.name for p in self.providers.providers)
        return await self.db.write(
            partial(
                tokens.add,
                role=role,
                name=name,
                by=by,
                now=self.clock(),
                expires_at=expires_at,
                scope=scope,
                provider=provider,
                known=known,
            )
        )

    async def token_extend(self, token_id: str, expires_at: datetime) -> None:
        await self.db.write(partial(tokens.extend, token_id=token_id, expires_at=expires_at))

    async def token_find(self, secret: str) -> tokens.Token | None:
        """The live token a bearer secret belongs to (its last use recorded, once a
        minute at most), or None."""
        now = self.clock()
        found = await self.db.read(
            partial(tokens.find, secret=secret, now=now),
            snapshot=False,
            within=arrival.left(HELD_WAIT_S),
        )
        if found is not None and tokens.stale(found, now):
            await self.token_used(found.id)
        return found

    async def token_used(self, token_id: str) -> None:
        """Record a use of a token (once in USED_RESOLUTION): one conditional row update,
        however many agents present it at once. Past capacity it is left for a later use:
        bookkeeping never refuses the call it comes with."""
        write = partial(tokens.used, token_id=token_id, now=self.clock())
        with contextlib.suppress(Overloaded):
            await self.db.write(write, Lock.TASK, arrival.left(HELD_WAIT_S))

    async def token_revocations(self) -> int:
        """Tokens ever revoked; past capacity Overloaded (the call it came with is refused:
        a revocation is never missed)."""
        within = arrival.left(HELD_WAIT_S)
        return await self.db.read(tokens.revocations, snapshot=False, within=within)

    async def token_list(self) -> list[tokens.Token]:
        return await self.db.read(tokens.all_tokens)

    async def token_revoke(self, token_id: str) -> None:
        await self.db.write(partial(tokens.revoke, token_id=token_id, now=self.clock()))
