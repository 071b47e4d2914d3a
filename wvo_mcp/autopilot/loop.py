"""The autopilot's loop: fills worker slots with tasks, runs them, lands what they submit.

The autopilot's loop: fill free worker slots with tasks routing sends their way, run one
CLI per task in a sandbox of its own on a repository of its own, read what it reports, and
land what it submits.

A worker is a tenant (docs/security.md): it reaches wvo-mcp only over HTTP with a run token
scoped to its task, and finishes only as far as needs_review. The autopilot then takes its
commits as data, has them reviewed where the task asks for it, verifies exactly the commit
that lands on a clean checkout in the sandbox, and marks the task done as the lander. Claims
decide who works on what, so several autopilots (or hand-started agents) on one database
never run a task twice. What to launch, when --until-empty ends and when --max-cost drains
are decided by the pure functions of autopilot/dispatch.py (`never`, `idle`, `resets`,
`over_budget`).

The loop reads and applies; what to launch and how a run settles are decided by dispatch.py
and settle.py (pure), and each job is a component of its own: worker_process.py runs a CLI,
roles.py gives each kind of run its repository and prompt, submissions.py takes what a
worker submitted, recover.py takes over what a dead autopilot left, repos.py holds the
repository and the task folders, apart.py keeps work apart."""

import contextlib
import dataclasses
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup

from wvo_mcp import guidance, processes, timeutil
from wvo_mcp.autopilot import (
    dispatch,
    dry_run,
    settle,
    slots,
    view,
    worker_output,
)
from wvo_mcp.autopilot.apart import Apart
from wvo_mcp.autopilot.gateway import Gateway
from wvo_mcp.autopilot.landing import lander, steps, target
from wvo_mcp.autopilot.recover import Recovery
from wvo_mcp.autopilot.repos import Repos
from wvo_mcp.autopilot.roles import Roles, charged, record
from wvo_mcp.autopilot.slots import ACTOR, CLAIM_SECONDS, LIVE_SECONDS, Options, Slot, Summary
from wvo_mcp.autopilot.submissions import Intake
from wvo_mcp.autopilot.worker_process import Executor
from wvo_mcp.config import Settings
from wvo_mcp.errors import Fault, LeaseLost, ValidationFailed, WvoError
from wvo_mcp.git import Git, locate
from wvo_mcp.git.remote import task_ref
from wvo_mcp.models import ClaimResult
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import merge_queue, pulls
from wvo_mcp.rules.transitions import Status
from wvo_mcp.sandbox import workers
from wvo_mcp.services import landing_queue, pull_news
from wvo_mcp.telemetry import Telemetry

PLAN_LOOKAHEAD = 50  # ready tasks looked at per round for a free slot
RECOVER_SECONDS = 5.0  # how often an autopilot looks for what a dead one left
RELISTEN_SECONDS = 5.0  # after a lost listening connection (PostgreSQL)
FRESH_SECONDS = 15.0  # a remote target's tip is fetched again before launching, if older


class Autopilot:
    def __init__(
        self,
        orchestrator: Orchestrator,
        settings: Settings,
        options: Options,
        say: Callable[[str], None],
    ) -> None:
        self.orchestrator = orchestrator
        self.settings = settings
        self.options = options
        self.say = say
        self.summary = Summary()
        self.run_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.paused = False
        self.draining = False
        self._drain_deadline = float("inf")
        self._drain_told: set[str] | None = None  # the tasks whose workers it told, once told
        self._waiting = self._said = ""  # why ready work does not start; what was said
        self._stuck = False
        self._told: set[str] = set()  # providers whose failing login the person was told of
        self._landing = False  # a landing pass runs
        # The landing pass, cancelled when a drain's grace ends (made where it runs: a cancel
        # scope belongs to an event loop, and this object is made before one may run).
        self._landing_scope: anyio.CancelScope | None = None
        self._process = processes.me()
        self._recovered_at = 0.0
        self._changed = anyio.Event()
        self.slots = slots.make(orchestrator.providers, options.workers)
        self.sandboxed = not options.unsandboxed
        if self.sandboxed:
            why = workers.check()
            if why is not None:
                raise ValidationFailed(
                    f"the autopilot runs every worker in a sandbox, and none works here: {why}"
                )
        self.git = _repository(settings)
        top = self.git.repo.top
        worktrees = options.worktrees or top.with_name(top.name + ".wvo-worktrees")
        self.target = target.resolve(
            self.git, options.merge, options.onto, options.push,
            settings.remote_timeout_seconds, say, options.via,
            options.forge_api or settings.forge_api or None,  # --forge-api, or WVO_FORGE_API
        )  # fmt: skip
        self.repos = Repos(self.git, worktrees, settings.state_root / "runs", self.target, say)
        self.gateway = Gateway(orchestrator, settings)
        # Found at start: a declared folder that is missing is refused now, not as exit 127.
        self.toolchain = orchestrator.toolchain()
        if self.target.branch and self.target.reach is None:
            self._check_onto(self.target.branch)
        self.telemetry = Telemetry.start(settings, self.run_id)
        self.lander = lander.Lander(
            orchestrator,
            self.telemetry,
            self.git,
            self.repos.in_repo,
            self.target,
            steps.Options(
                strategy=options.merge,
                check=options.check,
                batch=options.batch,
                slots=options.test_slots,
                max_returns=options.max_returns,
                poll=options.forge_poll,
                safety=options.forge_safety_poll,
                forge_batch=options.forge_batch,
            ),
            self.run_id,
            say,
            self._tidy_landed,
        )
        self._parts(orchestrator, settings, options, say)

    def _parts(
        self,
        orchestrator: Orchestrator,
        settings: Settings,
        options: Options,
        say: Callable[[str], None],
    ) -> None:
        """The jobs the loop hands out, each given `say` and callbacks, as the lander is."""
        executor = Executor(
            orchestrator,
            settings,
            self.git,
            self.gateway,
            self.toolchain,
            sandboxed=self.sandboxed,
            poll_seconds=options.poll_seconds,
            deadline=lambda: self._drain_deadline,
            say=say,
            run_id=self.run_id,
            pause_grace=options.drain_seconds,
        )
        self.roles = Roles(orchestrator, settings, self.repos, executor, self.lander, say)
        self.intake = Intake(orchestrator, self.repos, self.lander, say, self._wake)
        self.recovery = Recovery(
            orchestrator, self.run_id, self.repos, self.intake, say, settings.state_root
        )
        self.apart = Apart(orchestrator, self.repos, self.lander, options.avoid_conflicts)

    async def describe(self) -> list[str]:
        """What `autopilot --dry-run` prints (dry_run.py): nothing is started."""
        found = self.target
        remote = found.remote
        where = found.name or "each task's own branch wvo/<task>"
        if remote is not None:
            where += (f" ({found.key}), pushed by the autopilot's own git with your credentials"
                      "; workers never reach it")  # fmt: skip
        lines = [f"finished work lands on {where}"]
        return lines + dry_run.describe(
            self.slots, self.repos, self.toolchain, sandboxed=self.sandboxed
        )

    def _check_onto(self, onto: str) -> None:
        if not self.git.has_branch(onto):
            raise ValidationFailed(
                f"--merge {self.options.merge} needs --onto BRANCH, an existing branch of "
                f"{self.git.repo.top} to merge finished work onto (main), or of a remote, as "
                f"git names it (origin/main); got {onto!r}"
            )
        holder = self.git.checked_out(onto)
        if holder is None:
            return
        dirty = self.git.dirty(repr(onto), holder)
        if dirty:
            raise ValidationFailed(
                f"{dirty}: its files follow {onto} as work lands (as `git push` into it does "
                "with updateInstead) only while it is clean; commit or stash them, or merge "
                "onto a branch nobody has checked out"
            )
        self.say(f"{onto} is checked out in {holder}: its files follow {onto} as work lands")

    def _wake(self) -> None:
        self._changed.set()

    def _free(self, slot: Slot) -> None:
        slot.busy, slot.task_id = False, ""
        self._changed.set()

    def _take(self, slot: Slot, task_id: str) -> None:
        slot.busy, slot.task_id = True, task_id
        slot.since = timeutil.to_text(timeutil.now())

    def stop(self) -> None:
        """Drain: no new launches; running workers get drain_seconds to finish, then are
        stopped and their tasks released with their checkpoints."""
        if not self.draining:
            self._drain_deadline = time.monotonic() + self.options.drain_seconds
        self.draining = True
        self._changed.set()

    async def _reach_target(self) -> None:
        """A remote target fetched before anything starts (workers start from its tip); a
        local one takes over what was queued for it before targets were named by
        repository."""
        found = self.target
        if found.legacy is not None:
            adopted = await self.orchestrator.adopt_target(found.legacy, found.key)
            if adopted:
                was = found.legacy or "their own branches"
                self.say(f"{adopted} queued submission(s) onto {was} are queued as {found.key}")
        reach, branch = found.reach, found.branch
        if reach is None:
            return
        try:
            tip = await reach.call(reach.remote.fetch_branch, branch) if branch else ""
        except Fault as exc:
            if await self.repos.in_repo(self.git.ref_tip, found.ref) is None:
                raise ValidationFailed(f"{exc}; nothing was started") from None
            self.say(f"workers start from {found.name} as last fetched, until it answers")
            return
        if branch and found.forge is None:
            self.say(f"landing onto {found.name} ({found.key}) at {tip[:12]}, "
                     "by compare-and-swap pushes")  # fmt: skip
        elif branch and found.forge is not None:
            await self._through(found.forge, found.name, tip)
        # Refs an autopilot killed between a landing and their deletion left there.
        with contextlib.suppress(Fault):
            left = await target.task_refs(self.orchestrator, reach.remote)
            ended = {ref: commit for ref, commit, status in left if status in target.ENDED}
            await reach.call(reach.remote.forget, ended)

    async def run(self) -> Summary:
        await self._reach_target()
        base = await self.repos.in_repo(self.git.head)
        sources = guidance.Sources(self.settings.state_root, self.git, base)
        directive = await anyio.to_thread.run_sync(guidance.text, sources, "work_loop")
        instructions = self.repos.project_instructions
        self.roles.instructions = await self.repos.in_repo(instructions, base)
        if not self.sandboxed:
            self.say(
                "workers run UNSANDBOXED (--unsandboxed-workers): each CLI runs as you, with "
                "your files and network; use this only where you trust every worker"
            )
        if self.options.check and self.options.preflight:
            await self._preflight(self.options.check, base)
        async with self.gateway.serving():
            await self.orchestrator.autopilot_start(self.run_id)
            await self._name_slots()
            # At once: who this process is and its agents, should it die before its round.
            await self.orchestrator.autopilot_beat(self.run_id, self.state, self.report())
            try:
                if self.options.goal:
                    await self.roles.plan(self.slots[0], self.options.goal, base)
                if self.options.plan_only:
                    return self.summary
                return await self._rounds(base, directive)
            finally:
                with anyio.CancelScope(shield=True):
                    await self.orchestrator.landing_claims(self.run_id, None)
                    await self.orchestrator.autopilot_beat(self.run_id, "ended", self.report())
                self.telemetry.shutdown()

    async def _preflight(self, check: str, base: str) -> None:
        """The check once on what workers start from, before any of them: a red target is
        refused here, not blamed on every worker's submission."""
        onto = self.lander.onto
        tip = await self.lander.tip() if onto else base
        where = f"{onto or 'HEAD'} at {tip[:12]}"
        verdict = await self.lander.base(tip)
        if not verdict.passed:
            raise ValidationFailed(
                lander.preflight_failure(check, where, verdict.output, self.toolchain.describe())
            )
        self.say(f"pre-flight: `{check}` passes on {where}")

    async def _name_slots(self) -> None:
        """Slots are claude-1, claude-2, ...; with another autopilot live on the database,
        claude-1-<this run's tag>, so two runs never act under one agent's name."""
        seen = timeutil.to_text(timeutil.now() - timedelta(seconds=LIVE_SECONDS))
        others = [
            run
            for run in await self.orchestrator.autopilot_runs(seen)
            if run["id"] != self.run_id and run["state"] != "ended" and run["seen_at"] >= seen
        ]
        if others:
            tag = self.run_id.rsplit(":", 1)[1]
            for slot in self.slots:
                slot.suffix = f"-{tag}"
            self.say(f"{len(others)} other autopilot(s) run on this database; workers here "
                     f"are named with -{tag}")  # fmt: skip

    def report(self) -> dict[str, object]:
        """What `wvo-mcp autopilot status` and the dashboard show of this run."""
        return {
            "workers": [
                {
                    "agent": s.agent_id,
                    "task": s.task_id,
                    "since": s.since,
                    "tail": list(s.tail),
                    "pgid": s.pgid,
                    "started": s.started,
                }
                for s in self.slots
                if s.busy
            ],
            "agents": [s.agent_id for s in self.slots],
            "process": self._process,
            "target": self.target.key,
            "held": self.target.reach.held if self.target.reach is not None else "",
            "slots": len(self.slots),
            "unsandboxed": not self.sandboxed,
            "red": dataclasses.asdict(self.lander.red) if self.lander.red else None,
            **dataclasses.asdict(self.summary),
        }

    async def view(self) -> list[str]:
        """The live view's block: what runs now, the queue, the totals."""
        now = timeutil.now()
        running = []
        for slot in self.slots:
            if slot.busy and slot.task_id:
                detail = await self.orchestrator.get_task(slot.task_id)
                since = timeutil.from_text(slot.since) if slot.since else now
                running.append(
                    view.Running(
                        slot.agent_id,
                        slot.task_id,
                        (now - since).total_seconds(),
                        detail.latest_checkpoint,
                    )
                )
        counts = (await self.orchestrator.plan_next(ACTOR, 1, self.options.epic)).counts
        totals = {
            k: float(v)
            for k, v in dataclasses.asdict(self.summary).items()
            if k != "stopped_providers"
        }
        return view.block(self.state, running, counts, totals)

    @property
    def state(self) -> str:
        return "draining" if self.draining else "paused" if self.paused else "running"

    async def _heed(self) -> None:
        """Tell the database what this run is doing; do what a person asked of it (and say
        so at once, for whoever asks for the status next)."""
        before = self.state
        asked = await self.orchestrator.autopilot_beat(self.run_id, before, self.report())
        await self.gateway.renew()
        await self.orchestrator.landing_claims(self.run_id, CLAIM_SECONDS)
        wanted, by = asked or (None, "")
        if wanted == "stop":
            self.stop()
        elif wanted in ("pause", "resume"):
            self.paused = wanted == "pause"
        if self.state != before:
            await self.orchestrator.autopilot_beat(self.run_id, self.state, self.report())
            self.say(
                {
                    "draining": f"stop asked by {by}: draining",
                    "paused": f"paused by {by}: no new workers until resume",
                    "running": f"resumed by {by}",
                }[self.state]
            )

    async def _through(self, forge: target.ForgeReach, name: str, tip: str) -> None:
        """Through pull requests: what the branch's protection requires, said once; a token
        the forge refuses stops the start, before any worker runs."""
        try:
            repo = await forge.call(forge.forge.repository)
            rules = await forge.call(forge.forge.requirements, self.target.branch)
        except Fault as exc:
            if exc.kind == "auth":
                raise ValidationFailed(f"{exc}; nothing was started") from None
            self.say(f"the forge does not answer yet ({exc}); workers start, and "
                     f"{pulls.noun(forge.forge.kind)}s open once it does")  # fmt: skip
            return
        checks = ", ".join(rules.checks) or "none"
        self.say(
            f"landing onto {name} at {tip[:12]} through {pulls.noun(forge.forge.kind)}s on "
            f"{repo.url} "
            f"(required checks: {checks}; approving reviews: {rules.approvals}; merge "
            f"methods allowed: {', '.join(repo.methods) or 'none'})"
        )

    async def _rounds(self, base: str, directive: str) -> Summary:
        async with anyio.create_task_group() as running:
            if self.target.forge is not None:
                running.start_soon(self._told_of_pulls)
            while True:
                await self._heed()
                if self.draining and self._drain_told is None:
                    await self._tell_drain()
                if time.monotonic() - self._recovered_at > RECOVER_SECONDS:
                    self._recovered_at = time.monotonic()
                    mine = {s.agent_id for s in self.slots}
                    tasks = {s.task_id for s in self.slots if s.busy and s.task_id}
                    await self.recovery.recover(base, mine, tasks)
                if not self.draining and not self.paused:
                    await self._launch(running, base, directive)
                # A drain lands what was submitted before its grace ends, then stops landing.
                graced = time.monotonic() < self._drain_deadline
                if self.draining and not graced and self._landing_scope is not None:
                    self._landing_scope.cancel()  # its intent and batch wait for the next start
                queued = graced and await self.lander.pending()
                if not self._landing and queued:
                    self._landing = True
                    running.start_soon(self._land)
                busy = self._landing or any(slot.busy for slot in self.slots)
                busy = busy or (self.draining and queued)
                if not busy and (
                    self.draining
                    or (self.options.until_empty and not self.paused and await self._idle())
                ):
                    break
                with anyio.move_on_after(self.options.poll_seconds):
                    await self._changed.wait()
                self._changed = anyio.Event()
            running.cancel_scope.cancel()  # the listener; nothing else runs by now
        if self.draining and await self.lander.pending():
            where = self.lander.onto or "their branches"
            self.say(
                f"the grace ended with submissions queued onto {where}: they stay queued, and "
                "the next autopilot lands or returns them"
            )
        return self.summary

    async def _told_of_pulls(self) -> None:
        """On PostgreSQL, a webhook's news of a pull request (another process, maybe another
        host, received it) wakes the round at once rather than a poll later; listened to
        again after a lost connection, the rounds' own reads going on meanwhile."""
        while True:
            async for _ in self.orchestrator.db.notified(pull_news.CHANNEL):
                self._changed.set()
            if self.orchestrator.db.engine != "postgresql":
                return
            await anyio.sleep(RELISTEN_SECONDS)

    async def _tell_drain(self) -> None:
        """Each running worker told to checkpoint and stop, as a person's words reach it
        (an ACP worker's turn is cancelled for them): the grace's kill is the last resort."""
        held = [(s.task_id, s.agent_id) for s in self.slots if s.busy and s.task_id]
        self._drain_told = set(await self.orchestrator.drain(held, by="autopilot"))
        if self._drain_told:
            self.say(f"told {len(self._drain_told)} worker(s) to checkpoint and stop")

    async def _land(self) -> None:
        """Landing passes until the queue has nothing this autopilot can land now (or a
        drain's grace ends: a landing is written as an intent before the target moves, and
        the next start completes or abandons it, and queues its batch again)."""
        landed = False
        try:
            with anyio.CancelScope() as self._landing_scope:
                while await self.lander.land():
                    landed = True
                    self._changed.set()
        finally:
            self._landing, self._landing_scope = False, None
            if landed:
                self._changed.set()

    async def _idle(self) -> bool:
        """Nothing left that a worker here could take (dispatch.idle)."""
        counts = (await self.orchestrator.plan_next(ACTOR, 1, self.options.epic)).counts
        if dispatch.working(counts):
            return False
        states = [e.state for e, _ in await self.orchestrator.landing_queue()]
        if await self.orchestrator.untaken_submissions():
            states.append("untaken")  # a submission waits to be taken (for the remote)
        idle = dispatch.idle(counts, states, self._stuck)
        if idle and dispatch.open_work(counts) > 0:
            self.say(f"stopping with ready work that cannot start here: {self._waiting}")
        asked = (await self.orchestrator.inbox()).questions if idle else []
        if asked:  # --until-empty does not wait for a person
            ids = ", ".join(q.task_id for q in asked)
            self.say(f"{ids} wait(s) for a person's answer: `wvo-mcp inbox`, then `wvo-mcp answer`")
        return idle

    async def _launch(self, running: TaskGroup, base: str, directive: str) -> None:
        free = [s for s in self.slots if not s.busy]
        if not free or self._over_budget():
            return
        for item in await self.orchestrator.reviews_waiting():
            reviewer = dispatch.reviewer(item.author, self.slots, free)
            if reviewer is not None and await self.orchestrator.claim_review(
                item.id, self.run_id, CLAIM_SECONDS
            ):
                free.remove(reviewer)
                self._take(reviewer, item.task_id)
                running.start_soon(self._review, reviewer, item, base)
        plan = await self.orchestrator.plan_next(ACTOR, PLAN_LOOKAHEAD, self.options.epic)
        if plan.tasks:  # new work starts from a remote target's tip as fetched lately
            await self.lander.refresh(max_age=FRESH_SECONDS)
        waiting = ""
        self._stuck = bool(plan.tasks)
        busy_tasks = [s.task_id for s in self.slots if s.busy and s.task_id]
        ready = deque(await self.apart.order(plan.tasks, busy_tasks))
        launched: list[str] = []  # what the work launched in this pass touches
        deferred: set[str] = set()
        while ready:
            task = ready.popleft()
            if not free:
                self._stuck = False
                return
            near = launched and task.id not in deferred and self.apart.avoiding
            if near and merge_queue.overlaps(await self.apart.touches(task.id), launched):
                deferred.add(task.id)  # after the rest of this pass's ready work
                ready.append(task)
                continue
            decision = await self.orchestrator.route_task(task.id)
            placed = dispatch.placement(decision, free)
            if placed is None:
                when = dispatch.resets(decision, timeutil.now())
                said = f"{task.id} waits: {decision.reason}" + (f"; {when}" if when else "")
                waiting = waiting or said
                here = {s.provider for s in self.slots}
                until_empty = self.options.until_empty
                self._stuck = self._stuck and dispatch.never(decision, here, until_empty)
                continue
            slot, model = placed
            # Its holder may finish it only as far as needs_review: the autopilot lands it.
            gate = dispatch.gate(task.epic_id, self.options.review_epics)
            claim = await self.orchestrator.claim(
                slot.agent_id, task.id, provider=decision.provider, model=model, gate=gate
            )
            if not claim.claimed or claim.task is None or claim.lease_token is None:
                continue
            free.remove(slot)
            self._take(slot, task.id)
            self.summary.launched += 1
            waiting, self._stuck = "", False
            running.start_soon(self._work, slot, claim, model, base, directive)
            if self.apart.avoiding:
                launched += await self.apart.touches(task.id)
        self._waiting = waiting
        if waiting != self._said and not any(s.busy for s in self.slots):
            if waiting:  # said once, while nothing runs: why ready work does not start
                self.say(waiting)
            self._said = waiting

    def _over_budget(self) -> bool:
        limit = self.options.max_cost
        if dispatch.over_budget(limit, self.summary.cost_usd):
            if not self.draining:
                self.say(f"spent ${self.summary.cost_usd:.2f} of --max-cost ${limit:.2f}: draining")
                self.draining = True
            return True
        return False

    async def _review(self, slot: Slot, item: landing_queue.Entry, base: str) -> None:
        try:
            await self.roles.review(slot, item, base)
        finally:
            self._free(slot)

    async def _work(
        self, slot: Slot, claim: ClaimResult, model: str, base: str, directive: str
    ) -> None:
        assert claim.task is not None and claim.lease_token is not None
        task_id, token = claim.task.id, claim.lease_token
        try:
            try:
                finish, repo, start = await self.roles.work(slot, claim, model, base, directive)
            except (WvoError, OSError) as exc:
                # The autopilot's own failure (its worker's folder, repository or sandbox),
                # never the worker's: no attempt counted, no tier failed (which could leave
                # no tier to escalate to). It waits for a person, who knows what to mend.
                why = (
                    f"the autopilot could not start a worker for it: {exc}; `wvo-mcp requeue "
                    f"{task_id}` once that is mended"
                )
                await self._release(slot, task_id, token, why, Status.BLOCKED)
                return
            await self._settle(slot, task_id, token, model, finish, repo, start)
        except WvoError as exc:
            self.say(f"{slot.agent_id} {task_id}: {exc}")
            await self._release(
                slot, task_id, token, f"autopilot could not run it: {exc}", Status.FAILED
            )
        finally:
            self._free(slot)

    async def _settle(
        self,
        slot: Slot,
        task_id: str,
        token: str,
        model: str,
        finish: worker_output.Finish,
        repo: Path,
        start: str,
    ) -> None:
        """After a worker run: take what it submitted, or hand the task back (settle.py
        decides which)."""
        usage = finish.usage
        self.summary.input_tokens += usage.input_tokens
        self.summary.output_tokens += usage.output_tokens
        _, tier = self.orchestrator.providers.resolve(slot.provider, model)
        self.summary.cost_usd += settle.cost(usage, tier)
        detail = await self.orchestrator.get_task(task_id)
        told = task_id in (self._drain_told or ())
        settled = settle.settle(finish, settle.Standing.of(detail), slot.agent_id, told)
        finish, holding = settled.finish, settled.holding
        try:
            await record(
                self.orchestrator,
                slot,
                model,
                finish,
                task_id if holding else None,
                token if holding else None,
            )
        except LeaseLost:  # lost since it was read: charged as a run that no longer holds it
            await record(self.orchestrator, slot, model, finish, None, None)
            settled = dataclasses.replace(settled, holding=False, charge=True, release=None)
        if settled.charge:  # whichever way its attempt ended, what it cost is the attempt's
            await self.orchestrator.charge_task(
                task_id, slot.provider, model, usage.input_tokens, usage.output_tokens,
                worker=slot.agent_id, token=token,
            )  # fmt: skip
        await charged(self.orchestrator, slot, model, finish, task_id, "worker")
        if settled.take:
            await self.intake.take(slot.agent_id, task_id, repo, start)
            return
        if settled.tell_auth:
            self._tell_auth(slot, finish)
        if settled.release is not None:
            reason = settle.release_reason(finish)
            await self._release(slot, task_id, token, reason, settled.release)
        else:
            self.say(f"{slot.agent_id} left {task_id} {detail.status.value}: {finish.outcome}")

    def _tell_auth(self, slot: Slot, finish: worker_output.Finish) -> None:
        """A refused login or key (or a CLI refused the tools it needs) opened the
        provider's breaker: its tasks fail over to other providers meanwhile, and the person
        is told once what to fix."""
        if slot.provider in self._told:
            return
        self._told.add(slot.provider)
        if finish.denied:
            tools = ", ".join(finish.denied)
            why = f"its CLI was refused {tools}: add them to allowed_tools in the providers file"
        else:
            why = f"authentication failed ({finish.message}): fix its login or key"
        self.summary.stopped_providers[slot.provider] = why
        self.say(
            f"{slot.provider}: {why}; its tasks fail over to other providers while its "
            "breaker is open"
        )

    async def _release(
        self, slot: Slot, task_id: str, token: str, reason: str, to: Status = Status.PENDING
    ) -> None:
        """Hand the task back with its checkpoints, so the next attempt resumes."""
        try:
            await self.orchestrator.update_status(task_id, to, slot.agent_id, token, reason[:500])
            self.summary.released += 1
            self.say(f"{slot.agent_id} released {task_id}: {reason[:200]}")
        except WvoError as exc:  # the lease was lost meanwhile: someone else has it
            self.say(f"{slot.agent_id} could not release {task_id}: {exc}")

    async def _tidy_landed(self, task_ids: list[str]) -> None:
        # The target's tip too: a worker's copy of it may be newer than what it submitted
        # (the target moved between its start and its launch), and all of it has landed.
        tips = [await self.lander.tip()] if self.lander.onto else []
        published: dict[str, str] = {}
        for task_id in task_ids:
            self.summary.done += 1
            detail = await self.orchestrator.get_task(task_id)
            if detail.submitted_commit:
                await self.repos.tidy(task_id, [detail.submitted_commit, *tips])
                published[task_ref(task_id)] = detail.submitted_commit
        reach = self.target.reach
        if reach is not None and published:
            with contextlib.suppress(Fault):  # left for `autopilot gc` while it is away
                await reach.call(reach.remote.forget, published)


def _repository(settings: Settings) -> Git:
    """The person's repository, which every worker's is made from."""
    workspace = settings.workspace_root.resolve()
    repo = locate(workspace)
    if repo is None:
        raise ValidationFailed(
            f"{workspace} is not in a git repository: the autopilot gives each worker a "
            "repository of its own made from it; run `git init` there (with a first "
            "commit) or point WVO_WORKSPACE_ROOT at a repository"
        )
    return Git(repo, repo.top, exclude=[settings.state_root])
