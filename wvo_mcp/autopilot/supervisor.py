"""The autopilot's loop: fill free worker slots with tasks routing sends their way, run one
CLI per task in a sandbox of its own on a repository of its own, read what it reports, and
land what it submits.

A worker is a tenant (docs/security.md): it reaches wvo-mcp only over HTTP with a run token
scoped to its task, and finishes only as far as needs_review. The autopilot then takes its
commits as data, has them reviewed where the task asks for it, verifies exactly the commit
that lands on a clean checkout in the sandbox, and marks the task done as the lander. Claims
decide who works on what, so several autopilots (or hand-started agents) on one database
never run a task twice."""

import contextlib
import dataclasses
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TextIO, TypeVar

import anyio
import anyio.to_thread
from anyio.abc import Process, TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream

from wvo_mcp import gitsnap, guidance, removal, scratch_dirs, timeutil
from wvo_mcp.autopilot import (
    commands,
    events,
    isolation,
    lander,
    launch,
    orphans,
    prompt,
    settle,
    view,
)
from wvo_mcp.autopilot.gateway import Gateway
from wvo_mcp.autopilot.slots import (
    ACTOR,
    CLAIM_SECONDS,
    DRAINED,
    LIVE_SECONDS,
    Options,
    Slot,
    Summary,
)
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed, WvoError
from wvo_mcp.models import ClaimResult, RankedTask, TaskDetail
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import merge_queue, state_folder
from wvo_mcp.rules.transitions import Status
from wvo_mcp.sandbox import egress, workers
from wvo_mcp.services import landing
from wvo_mcp.services.tokens import Scope
from wvo_mcp.telemetry import Telemetry

T = TypeVar("T")

PLAN_LOOKAHEAD = 50  # ready tasks looked at per round for a free slot
LINE_BYTES = 1024 * 1024  # a longer output line is dropped, not buffered
KILL_GRACE_S = 5.0
REVIEW_DIFF_CHARS = 40_000
RECOVER_SECONDS = 5.0  # how often an autopilot looks for what a dead one left
RUN_LOG_BYTES = 8 * 1024 * 1024  # of a worker's output, per run
RUN_LOGS_KEPT = 20  # runs kept per task: older logs are removed
INSTRUCTIONS = re.compile(r"CLAUDE\.md|AGENTS\.md")  # the project's, from the base commit
INSTRUCTIONS_BYTES = 64 * 1024


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
        self._waiting = self._said = ""  # why ready work does not start; what was said
        self._stuck = False
        self._told: set[str] = set()  # providers whose failing login the person was told of
        self._repo_lock = anyio.Lock()
        self._landing = False  # a landing pass runs
        # The landing pass, cancelled when a drain's grace ends (made where it runs: a cancel
        # scope belongs to an event loop, and this object is made before one may run).
        self._landing_scope: anyio.CancelScope | None = None
        self._declared: dict[str, list[str]] = {}  # task -> the files it declares
        self._answers: dict[tuple[str, ...], list[str]] = {}  # git's, about commits
        self._process = orphans.me()
        self._recovered_at = 0.0
        self._changed = anyio.Event()
        self.slots = self._slots()
        self.sandboxed = not options.unsandboxed
        if self.sandboxed:
            why = workers.check()
            if why is not None:
                raise ValidationFailed(
                    f"the autopilot runs every worker in a sandbox, and none works here: {why}"
                )
        workspace = settings.workspace_root.resolve()
        repo = gitsnap.locate(workspace)
        if repo is None:
            raise ValidationFailed(
                f"{workspace} is not in a git repository: the autopilot gives each worker a "
                "repository of its own made from it; run `git init` there (with a first "
                "commit) or point WVO_WORKSPACE_ROOT at a repository"
            )
        self.git = gitsnap.Git(repo, repo.top, exclude=[settings.state_root])
        self.worktrees = options.worktrees or repo.top.with_name(repo.top.name + ".wvo-worktrees")
        self.runs = settings.state_root / "runs"
        self.gateway = Gateway(orchestrator, settings)
        # Found at start: a declared folder that is missing is refused now, not as exit 127.
        self.toolchain = orchestrator.toolchain()
        self._instructions = ""  # the project's CLAUDE.md / AGENTS.md at the base commit
        if options.merge != "leave":
            self._check_onto(options.onto)
        self.telemetry = Telemetry.start(settings, self.run_id)
        self.lander = lander.Lander(
            orchestrator,
            self.telemetry,
            self.git,
            self._in_repo,
            lander.Options(
                strategy=options.merge,
                onto=options.onto,
                check=options.check,
                batch=options.batch,
                slots=options.test_slots,
                max_returns=options.max_returns,
            ),
            self.run_id,
            say,
            self._tidy_landed,
        )

    async def describe(self) -> list[str]:
        """What `autopilot --dry-run` prints: each provider's workers, what they would see
        and reach (nothing is started)."""
        lines = []
        for provider in dict.fromkeys(s.provider for s in self.slots):
            slot = next(s for s in self.slots if s.provider == provider)
            kind = slot.kind
            program, install = workers.installation(kind.program, os.environ.get("PATH"))
            workdir = self.worktrees / "<task>" / "<run>"
            launch = commands.Launch(
                slot.agent_id, "<task>", "<model>", workdir, workers.HOME, "<wvo-mcp>"
            )
            env = commands.environment(kind, launch, "<run token>", os.environ)
            argv = commands.argv(kind, launch, str(program))
            count = sum(1 for s in self.slots if s.provider == provider)
            lines.append(f"{provider}: {count} {kind.kind} worker(s), {program}")
            if not self.sandboxed:
                lines.append(
                    "  UNSANDBOXED (--unsandboxed-workers): runs as you, sees your files and "
                    f"network, has no resource limits; env: {', '.join(sorted(env))}"
                )
                continue
            apis = [*commands.model_apis(kind, os.environ)]
            view_ = workers.View(
                workdir=workdir,
                home=Path("<private>"),
                read_only=(
                    install,
                    *workers.package_dirs(),
                    self._objects(),
                    *isolation.mounts(kind),
                ),
                socket=Path("<private>/egress.sock"),
                endpoints=tuple(
                    [*(egress.endpoint_of(u) for u in apis), egress.Endpoint("127.0.0.1", 0)]
                ),
                toolchain=self.toolchain,
                limits=kind.limits,
            )
            lines += [
                line.replace("127.0.0.1:0", "127.0.0.1:<this autopilot's wvo-mcp port>")
                for line in workers.describe(view_, argv, env)
            ]
        return lines

    def _check_onto(self, onto: str | None) -> None:
        if not onto or not self.git.has_branch(onto):
            raise ValidationFailed(
                f"--merge {self.options.merge} needs --onto BRANCH, an existing branch of "
                f"{self.git.repo.top} to merge finished work onto (got {onto!r})"
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

    def _task_dir(self, task_id: str) -> Path:
        """Where a task's repositories live: one per run, never reused."""
        return self.worktrees / gitsnap.branch_name(task_id).removeprefix("wvo/")

    def _run_dir(self, task_id: str) -> Path:
        """Where a task's runs keep their logs."""
        run_dir = self.runs / gitsnap.branch_name(task_id).removeprefix("wvo/")
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir

    def _free(self, slot: Slot) -> None:
        slot.busy, slot.task_id = False, ""
        self._changed.set()

    async def _in_repo(self, fn: Callable[..., T], *args: object) -> T:
        """A git call on the repository, off the event loop and one at a time."""
        async with self._repo_lock:
            return await anyio.to_thread.run_sync(fn, *args)

    def _slots(self) -> list[Slot]:
        kinds = self.orchestrator.providers.workers
        wanted = self.options.workers
        if wanted is not None:
            unknown = sorted(set(wanted) - set(kinds))
            if unknown:
                raise ValidationFailed(
                    f"no worker kind for provider(s) {', '.join(unknown)} in the providers file "
                    f"({self.orchestrator.providers.source}); providers with one: "
                    f"{', '.join(kinds) or 'none (add a worker: block to a provider)'}"
                )
        counts = wanted if wanted is not None else {p: k.max_workers for p, k in kinds.items()}
        slots = [
            Slot(provider, i, kinds[provider])
            for provider, n in counts.items()
            for i in range(1, n + 1)
        ]
        if not slots:
            raise ValidationFailed(
                "no workers to run: add a `worker:` block (kind claude, codex or command) to a "
                "provider in the providers file, or name some with --workers PROVIDER:N"
            )
        return slots

    def stop(self) -> None:
        """Drain: no new launches; running workers get drain_seconds to finish, then are
        stopped and their tasks released with their checkpoints."""
        if not self.draining:
            self._drain_deadline = time.monotonic() + self.options.drain_seconds
        self.draining = True
        self._changed.set()

    async def run(self) -> Summary:
        base = await self._in_repo(self.git.head)
        sources = guidance.Sources(self.settings.state_root, self.git, base)
        directive = await anyio.to_thread.run_sync(guidance.text, sources, "work_loop")
        self._instructions = await self._in_repo(self._project_instructions, base)
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
                    await self._plan(self.options.goal, base)
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
        onto = self.lander.target
        tip = await self._in_repo(self.git.tip, onto) if onto else base
        where = f"{onto or 'HEAD'} at {tip[:12]}"
        verdict = await self.lander.base(tip)
        if not verdict.passed:
            raise ValidationFailed(
                lander.preflight_failure(check, where, verdict.output, self.toolchain.describe())
            )
        self.say(f"pre-flight: `{check}` passes on {where}")

    def _project_instructions(self, base: str) -> str:
        """The project's CLAUDE.md and AGENTS.md as committed at the base commit: a worker's
        prompt carries them, and its CLI reads none from the repository it works in (where
        another worker may have written them)."""
        found = self.git.read_tree_files(base, "", INSTRUCTIONS, INSTRUCTIONS_BYTES)
        return "\n\n".join(
            f"## {name} (at {base[:12]})\n\n{text.decode('utf-8', 'replace').strip()}"
            for name, text in sorted(found.items())
            if text
        )

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

    async def _rounds(self, base: str, directive: str) -> Summary:
        async with anyio.create_task_group() as running:
            while True:
                await self._heed()
                if time.monotonic() - self._recovered_at > RECOVER_SECONDS:
                    self._recovered_at = time.monotonic()
                    await self._recover(base)
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
        if self.draining and await self.lander.pending():
            where = self.lander.target or "their branches"
            self.say(
                f"the grace ended with submissions queued onto {where}: they stay queued, and "
                "the next autopilot lands or returns them"
            )
        return self.summary

    async def _recover(self, base: str) -> None:
        """What autopilots that died on this database left: what they reviewed and landed
        freed at once, their workers' processes ended (on this host), the tasks those
        workers held handed back with their checkpoints (it was not the work's fault), and
        submissions nobody took taken here. Landings they intended are completed or
        abandoned by the lander, before it lands anything."""
        stale = timeutil.to_text(timeutil.now() - timedelta(seconds=2 * LIVE_SECONDS))
        live_agents: set[str] = {s.agent_id for s in self.slots if s.busy}
        for run in await self.orchestrator.autopilot_runs(stale):
            if run["id"] == self.run_id:
                continue
            if not orphans.gone(run, stale):
                if run["state"] != "ended":
                    live_agents.update(run["report"].get("agents", []))
                continue
            workers = run["report"].get("workers", [])
            ended = sum(orphans.end_group(w.get("pgid"), w.get("started")) for w in workers)
            await self.orchestrator.landing_claims(run["id"], None)
            released = await self.orchestrator.release_orphans(
                run["report"].get("agents", []),
                f"its autopilot ({run['id']}) died; handed back as it was",
            )
            await self.orchestrator.autopilot_beat(run["id"], "ended", run["report"])
            self.say(f"autopilot {run['id']} is gone: {ended} worker process group(s) ended, "
                     f"{len(released)} task(s) handed back")  # fmt: skip
        for task_id, author in await self.orchestrator.untaken_submissions():
            if author in live_agents:
                continue  # its own autopilot takes it
            repo = _newest_repo(self._task_dir(task_id))
            if repo is None:
                continue
            start = await self._start_commit(gitsnap.branch_name(task_id), base)
            self.say(f"{task_id}: taking {author}'s submission its autopilot left untaken")
            await self._take_submission(author, task_id, repo, start)

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
        """Nothing left that a worker here could take: no ready, backing-off or running
        work, or only ready work that can never start here (see _launch)."""
        counts = (await self.orchestrator.plan_next(ACTOR, 1, self.options.epic)).counts
        if launch.working(counts):
            return False
        states = [e.state for e, _ in await self.orchestrator.landing_queue()]
        idle = launch.idle(counts, states, self._stuck)
        if idle and launch.open_work(counts) > 0:
            self.say(f"stopping with ready work that cannot start here: {self._waiting}")
        return idle

    async def _launch(self, running: TaskGroup, base: str, directive: str) -> None:
        free = [s for s in self.slots if not s.busy]
        if not free or self._over_budget():
            return
        for item in await self.orchestrator.reviews_waiting():
            reviewer = launch.reviewer(item.author, self.slots, free)
            if reviewer is not None and await self.orchestrator.claim_review(
                item.id, self.run_id, CLAIM_SECONDS
            ):
                free.remove(reviewer)
                self._take(reviewer, item.task_id)
                running.start_soon(self._review, reviewer, item, base)
        plan = await self.orchestrator.plan_next(ACTOR, PLAN_LOOKAHEAD, self.options.epic)
        waiting = ""
        self._stuck = bool(plan.tasks)
        ready = deque(await self._prefer_apart(plan.tasks))
        launched: list[str] = []  # what the work launched in this pass touches
        deferred: set[str] = set()
        while ready:
            task = ready.popleft()
            if not free:
                self._stuck = False
                return
            near = launched and task.id not in deferred and self._avoiding
            if near and merge_queue.overlaps(await self._touches(task.id), launched):
                deferred.add(task.id)  # after the rest of this pass's ready work
                ready.append(task)
                continue
            decision = await self.orchestrator.route_task(task.id)
            placed = launch.placement(decision, free)
            if placed is None:
                waiting = waiting or f"{task.id} waits: {decision.reason}"
                here = {s.provider for s in self.slots}
                self._stuck = self._stuck and launch.never(decision, here)
                continue
            slot, model = placed
            # Its holder may finish it only as far as needs_review: the autopilot lands it.
            gate = launch.gate(task.epic_id, self.options.review_epics)
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
            if self._avoiding:
                launched += await self._touches(task.id)
        self._waiting = waiting
        if waiting != self._said and not any(s.busy for s in self.slots):
            if waiting:  # said once, while nothing runs: why ready work does not start
                self.say(waiting)
            self._said = waiting

    async def _prefer_apart(self, ranked: list[RankedTask]) -> list[RankedTask]:
        """Ready work that touches nothing a running or queued task touches goes first, so
        fewer submissions come back with a conflict: a preference, never a lock. A task's
        touch is what it declares (metadata.files), and what its branch already changed; a
        task with a branch is also merged (git merge-tree) with each queued submission."""
        target = self.lander.target
        if not self._avoiding:
            return ranked
        busy: list[str] = []
        for slot in self.slots:
            if slot.busy and slot.task_id:
                busy += await self._touches(slot.task_id)
        queued = [e.commit for e, _ in await self.orchestrator.landing_queue() if e.state != "held"]
        for commit in queued:
            busy += await self._cached(("changed", commit), self.git.changed, commit, target)
        if not busy:
            return ranked
        clashes: list[bool] = []
        for task in ranked:
            mine = await self._touches(task.id)
            clash = merge_queue.overlaps(mine, busy)
            branch = gitsnap.branch_name(task.id)
            if not clash and await self._in_repo(self.git.has_branch, branch):
                tip = await self._in_repo(self.git.tip, branch)
                for commit in queued:
                    if await self._cached(("conflicts", tip, commit), self.git.conflicts, tip,
                                          commit):  # fmt: skip
                        clash = True
                        break
            clashes.append(clash)
        return launch.apart_first(ranked, clashes)

    @property
    def _avoiding(self) -> bool:
        return self.options.avoid_conflicts and bool(self.lander.target)

    async def _touches(self, task_id: str) -> list[str]:
        """What a task declares it touches, and what its branch changed, if it has one."""
        found = self._declared.get(task_id)
        if found is None:
            detail = await self.orchestrator.get_task(task_id)
            found = self._declared[task_id] = merge_queue.declared(detail.metadata)
        branch = gitsnap.branch_name(task_id)
        if await self._in_repo(self.git.has_branch, branch):
            tip = await self._in_repo(self.git.tip, branch)
            found = found + await self._cached(
                ("changed", tip), self.git.changed, tip, self.lander.target
            )
        return found

    async def _cached(
        self, key: tuple[str, ...], fn: Callable[..., list[str]], *args: str
    ) -> list[str]:
        """Git's answers about commits never change: asked once per run."""
        if key not in self._answers:
            self._answers[key] = await self._in_repo(fn, *args)
        return self._answers[key]

    def _take(self, slot: Slot, task_id: str) -> None:
        slot.busy, slot.task_id = True, task_id
        slot.since = timeutil.to_text(timeutil.now())

    def _over_budget(self) -> bool:
        limit = self.options.max_cost
        if launch.over_budget(limit, self.summary.cost_usd):
            if not self.draining:
                self.say(f"spent ${self.summary.cost_usd:.2f} of --max-cost ${limit:.2f}: draining")
                self.draining = True
            return True
        return False

    async def _work(
        self, slot: Slot, claim: ClaimResult, model: str, base: str, directive: str
    ) -> None:
        assert claim.task is not None and claim.lease_token is not None
        task_id, token = claim.task.id, claim.lease_token
        try:
            finish, repo, start = await self._attempt(slot, claim, model, base, directive)
            await self._settle(slot, task_id, token, model, finish, repo, start)
        except WvoError as exc:
            self.say(f"{slot.agent_id} {task_id}: {exc}")
            await self._release(
                slot, task_id, token, f"autopilot could not run it: {exc}", Status.FAILED
            )
        finally:
            self._free(slot)

    async def _start_commit(self, branch: str, base: str) -> str:
        """Where an attempt starts: its branch's tip (the last attempt's submitted work),
        else the integration branch's tip when merging, else the run's base."""
        if await self._in_repo(self.git.has_branch, branch):
            return await self._in_repo(self.git.tip, branch)
        if self.options.onto is not None and self.options.merge != "leave":
            return await self._in_repo(self.git.tip, self.options.onto)
        return base

    async def _attempt(
        self, slot: Slot, claim: ClaimResult, model: str, base: str, directive: str
    ) -> tuple[events.Finish, Path, str]:
        """One worker run on a repository of its own: (how it ended, that repository, the
        commit it started from)."""
        assert claim.task is not None and claim.lease_token is not None
        task_id, attempt = claim.task.id, claim.attempt or 1
        detail = await self.orchestrator.get_task(task_id)
        branch = gitsnap.branch_name(task_id)
        start = await self._start_commit(branch, base)
        run_dir = self._run_dir(task_id)
        run = _next_run(run_dir)
        repo = self._task_dir(task_id) / run
        repo.parent.mkdir(parents=True, exist_ok=True)
        onto = self.lander.target
        also = {onto: await self._in_repo(self.git.tip, onto)} if onto else {}
        await self._in_repo(
            self.git.clone_for_worker, repo, start, branch, slot.agent_id,
            "wvo-mcp-worker@localhost", also,
        )  # fmt: skip
        text = prompt.worker_prompt(
            directive=directive,
            task=detail,
            agent_id=slot.agent_id,
            lease_token=claim.lease_token,
            attempt=attempt,
            branch=branch,
            # The merge queue's return says what to resolve: given whole, not cut for a claim.
            checkpoint=detail.latest_checkpoint
            if detail.latest_checkpoint and detail.latest_checkpoint.agent_id == ACTOR
            else claim.last_checkpoint,
            review_notes=_review_notes(detail),
            returned=_returned(detail),
            instructions=self._instructions,
        )
        self.say(f"{slot.agent_id} starts {task_id} (attempt {attempt}, {model}) in {repo}")
        finish = await self._run_cli(
            slot,
            task_id,
            model,
            text,
            repo,
            run_dir / f"{run}.log",
            Scope(task_id, "worker", provider=slot.provider, model=model),
            borrowed=(self._objects(),),
        )
        return finish, repo, start

    def _objects(self) -> Path:
        """The person's object store, which every worker's repository borrows read-only."""
        return (self.git.common_dir / "objects").resolve()

    async def _run_cli(
        self,
        slot: Slot,
        task_id: str,
        model: str,
        text: str,
        workdir: Path,
        log: Path,
        scope: Scope,
        *,
        writable: bool = True,
        borrowed: tuple[Path, ...] = (),
    ) -> events.Finish:
        """One CLI run, isolated (isolation.py), its output in `log`, supervised."""
        run = isolation.Run(
            kind=slot.kind,
            agent_id=slot.agent_id,
            task_id=task_id,
            model=model,
            prompt=text,
            workdir=workdir,
            scope=scope,
            writable=writable,
            borrowed=borrowed,
            hidden=(self.settings.state_root, self.git.repo.top),
            toolchain=self.toolchain,
        )
        with log.open("a") as run_log:
            async with isolation.prepared(run, self.gateway, sandboxed=self.sandboxed) as ready:
                return await self._supervise(slot, task_id, ready, run_log)

    async def _supervise(
        self, slot: Slot, task_id: str, ready: isolation.Ready, run_log: TextIO
    ) -> events.Finish:
        stream = events.stream_for(slot.kind.kind)
        slot.tail.clear()
        process = await anyio.open_process(
            ready.argv,
            cwd=ready.cwd,
            env=ready.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=run_log,
            start_new_session=True,  # its own process group, killed as one
            pass_fds=ready.pass_fds,
        )
        slot.pgid, slot.started = process.pid, orphans.start_ticks(process.pid)
        last_seen = time.monotonic()
        hung = False
        limit = ""  # the resource limit it reached while it ran (fence.py)

        async def feed() -> None:
            assert process.stdin is not None
            try:
                await process.stdin.send(ready.stdin)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # it exited before reading its prompt: its exit says why
            finally:
                await process.stdin.aclose()

        async def read() -> None:
            nonlocal last_seen
            assert process.stdout is not None
            lines = BufferedByteReceiveStream(process.stdout)
            logged = 0
            while True:
                try:
                    line = await lines.receive_until(b"\n", LINE_BYTES)
                except (anyio.EndOfStream, anyio.IncompleteRead):
                    return
                except anyio.DelimiterNotFound:
                    continue  # an oversized line: skipped
                last_seen = time.monotonic()
                text = line.decode("utf-8", errors="replace")
                if logged < RUN_LOG_BYTES:  # a chatty worker fills no disk
                    logged += len(line) + 1
                    run_log.write(text + "\n")
                    if logged >= RUN_LOG_BYTES:
                        run_log.write(f"# wvo-mcp autopilot: log cut at {RUN_LOG_BYTES} bytes\n")
                stream.feed(text)
                slot.tail.append(events.glimpse(text))

        async def watch(scope: anyio.CancelScope) -> None:
            nonlocal last_seen, hung, limit
            lease = None
            while True:
                await anyio.sleep(self.options.poll_seconds)
                if task_id:  # a planner holds no task: only its output counts
                    detail = await self.orchestrator.get_task(task_id)
                    if detail.lease_expires_at != lease:  # a heartbeat or checkpoint renewed it
                        lease = detail.lease_expires_at
                        last_seen = max(last_seen, time.monotonic())
                now = time.monotonic()
                limit = ready.fence.breached() if ready.fence is not None else ""
                if limit or now - last_seen > slot.kind.hang_seconds or now > self._drain_deadline:
                    hung = True
                    why = limit or ("drained" if now > self._drain_deadline else "silent")
                    self.say(f"{slot.agent_id} {task_id}: {why}; stopped")
                    await _kill(process)
                    scope.cancel()
                    return

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(watch, group.cancel_scope)
                group.start_soon(feed)
                await read()
                code = await process.wait()
                group.cancel_scope.cancel()
        finally:
            # Whatever it started (its tools, its shells) goes with it.
            with anyio.CancelScope(shield=True):
                await _kill(process)
            ended = timeutil.to_text(timeutil.now())
            run_log.write(f"# wvo-mcp autopilot: exited with {process.returncode} at {ended}\n")
        if hung and time.monotonic() > self._drain_deadline:
            return events.Finish("failure", events.Usage(), DRAINED)
        if hung:
            why = "stopped" if limit else f"hung: silent for {slot.kind.hang_seconds:.0f} s"
            return isolation.limited(ready, events.Finish("failure", events.Usage(), why))
        return isolation.limited(ready, stream.finish(code))

    async def _settle(
        self,
        slot: Slot,
        task_id: str,
        token: str,
        model: str,
        finish: events.Finish,
        repo: Path,
        start: str,
    ) -> None:
        """After a worker run: take what it submitted, or hand the task back."""
        usage = finish.usage
        self.summary.input_tokens += usage.input_tokens
        self.summary.output_tokens += usage.output_tokens
        self.summary.cost_usd += usage.cost_usd or 0.0
        detail = await self.orchestrator.get_task(task_id)
        settled = settle.settle(finish, settle.Standing.of(detail), slot.agent_id)
        finish, holding = settled.finish, settled.holding
        await self._record(
            slot, model, finish, task_id if holding else None, token if holding else None
        )
        if settled.charge:
            await self.orchestrator.charge_task(
                task_id, slot.provider, model, usage.input_tokens, usage.output_tokens
            )
        if settled.take:
            await self._take_submission(slot.agent_id, task_id, repo, start)
            return
        if settled.tell_auth:
            self._tell_auth(slot, finish)
        if settled.release is not None:
            await self._release(
                slot,
                task_id,
                token,
                f"worker ended ({finish.outcome}): {finish.message}",
                settled.release,
            )
        else:
            self.say(f"{slot.agent_id} left {task_id} {detail.status.value}: {finish.outcome}")

    def _tell_auth(self, slot: Slot, finish: events.Finish) -> None:
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

    async def _take_submission(self, author: str, task_id: str, repo: Path, start: str) -> None:
        """The worker submitted its task: take its commits from its own repository as data
        onto wvo/<task>, and into the merge queue (behind a review where the task has one).
        A repository that cannot be taken (no commit, a forged HEAD, objects it does not
        hold) is a failed attempt; so are commits that change the state folder (inside the
        repository), which never reach it: for `--merge leave` and the queue alike, the
        next attempt starts from a checkpoint naming the paths."""
        branch = gitsnap.branch_name(task_id)
        try:
            tip = gitsnap.read_head(repo / ".git")
            if tip is None:
                raise ValidationFailed("its repository's HEAD names no commit")
            old = await self._in_repo(self._branch_tip, branch)
            taken = []
            try:
                if old != tip:
                    taken = await self._in_repo(
                        self.git.take_commits, repo / ".git" / "objects", tip,
                        f"refs/heads/{branch}", old,
                    )  # fmt: skip
            except ValidationFailed:
                # Another autopilot took this very submission meanwhile (a dead one's, both
                # recovering it): the branch is at its tip, and the entry is one.
                if await self._in_repo(self._branch_tip, branch) != tip:
                    raise
            item = await self.orchestrator.take_submission(task_id, tip, start, self.lander.target)
        except gitsnap.Protected as exc:
            summary, details = state_folder.refusal(exc.paths, exc.folders, exc.tip)
            await self.lander.refuse(task_id, landing.Return(summary, details, exc.paths))
            return
        except WvoError as exc:
            why = f"its submission could not be taken: {exc}"
            self.say(f"{task_id} returned: {why[:300]}")
            await self.orchestrator.note(task_id, ACTOR, "returned", why[:4000])
            await self.orchestrator.update_status(
                task_id, Status.FAILED, ACTOR, reason=why[:500], landing=""
            )
            return
        span = f"{start[:12]}..{tip[:12]}"
        self.say(f"{author} submitted {task_id}: {len(taken)} new commit(s) on {branch} "
                 f"({span})")  # fmt: skip
        await self.orchestrator.note(
            task_id, ACTOR, "commits", f"{branch}: {len(taken)} commit(s) {start}..{tip}"
        )
        queue = f"the queue onto {self.lander.target}" if self.lander.target else "verification"
        self.say(f"{task_id} waits for {'review' if item.state == 'review' else queue}")
        self._changed.set()

    def _branch_tip(self, branch: str) -> str | None:
        return self.git.tip(branch) if self.git.has_branch(branch) else None

    async def _record(
        self,
        slot: Slot,
        model: str,
        finish: events.Finish,
        task_id: str | None,
        token: str | None,
    ) -> None:
        """The run's usage and outcome against its provider (and its task, while held)."""
        usage = finish.usage
        if settle.recorded(finish):
            await self.orchestrator.record_run(
                slot.provider,
                model,
                usage.input_tokens,
                usage.output_tokens,
                settle.ROUTING_OUTCOME[finish.outcome],
                task_id,
                token,
                slot.agent_id,
            )

    async def _plan(self, goal: str, base: str) -> None:
        """A planner worker (the first slot, its provider's strongest model, a planner's
        token) turns the goal into tasks with task_create, in a repository of its own."""
        slot = self.slots[0]
        provider = self.orchestrator.providers.get(slot.provider)
        model = provider.tiers[-1].model if provider is not None else ""
        sources = guidance.Sources(self.settings.state_root, self.git, base)
        directive = await anyio.to_thread.run_sync(guidance.text, sources, "planning")
        # Names no task can have: task branches are wvo/<task>.
        run_dir = self.runs / "wvo-planner"
        run_dir.mkdir(parents=True, exist_ok=True)
        run = _next_run(run_dir)
        repo = self.worktrees / "wvo-planner" / run
        repo.parent.mkdir(parents=True, exist_ok=True)
        await self._in_repo(self.git.clone_for_worker, repo, base, "wvo-planner", slot.agent_id)
        self.say(f"{slot.agent_id} plans: {goal}")
        text = f"{directive.strip()}\n\n{self._instructions}\n\n# Goal\n\n{goal}\n"
        finish = await self._run_cli(
            slot,
            "",
            model,
            text,
            repo,
            run_dir / f"{run}.log",
            Scope("", "planner"),
            borrowed=(self._objects(),),
        )
        await self._record(slot, model, finish, None, None)
        self.say(f"{slot.agent_id} planned ({finish.outcome}): {finish.message[:300]}")

    async def _review(self, slot: Slot, item: landing.Entry, base: str) -> None:
        """Another worker, in a sandbox of its own, reads exactly the submitted commit (a
        fresh read-only checkout, and its diff) and gives its verdict with review_submit
        under its own run token. Approved work joins the queue; requested changes send the
        task back with the notes for the next attempt."""
        task_id, commit = item.task_id, item.commit
        try:
            detail = await self.orchestrator.get_task(task_id)
            branch = gitsnap.branch_name(task_id)
            diff = await self._in_repo(self.git.diff, base, commit)
            if len(diff) > REVIEW_DIFF_CHARS:
                diff = diff[:REVIEW_DIFF_CHARS] + "\n[... cut: read the rest in the checkout]"
            provider = self.orchestrator.providers.get(slot.provider)
            model = provider.tiers[-1].model if provider is not None else ""
            text = prompt.review_prompt(
                task=detail, author=item.author, branch=branch, commit=commit, diff=diff
            )
            self.say(f"{slot.agent_id} reviews {task_id} ({item.author}'s work)")
            with scratch_dirs.temporary("review", self.settings.state_root) as scratch:
                checkout = Path(scratch) / "checkout"
                checkout.mkdir()
                await self._in_repo(self.git.materialize, commit, checkout)
                finish = await self._run_cli(
                    slot,
                    task_id,
                    model,
                    text,
                    checkout,
                    self._run_dir(task_id) / "review.log",
                    Scope(task_id, "reviewer", commit),
                    writable=False,
                )
            await self._record(slot, model, finish, None, None)
            usage = finish.usage
            await self.orchestrator.charge_task(
                task_id, slot.provider, model, usage.input_tokens, usage.output_tokens
            )
            verdict = await self.orchestrator.reviewed(item.id)
            self.say(
                {
                    "queued": f"{slot.agent_id} approved {task_id}: it joins the queue",
                    "changes": f"{slot.agent_id} asked for changes to {task_id}",
                    "review": f"{slot.agent_id} gave no verdict on {task_id} "
                    f"({finish.limit or finish.outcome})",
                }.get(verdict, f"{task_id} no longer waits for review")
            )
        except WvoError as exc:
            self.say(f"{slot.agent_id} could not review {task_id}: {exc}")
        finally:
            self._free(slot)

    async def _tidy_landed(self, task_ids: list[str]) -> None:
        # The target's tip too: a worker's copy of it may be newer than what it submitted
        # (the target moved between its start and its launch), and all of it has landed.
        onto = self.lander.target
        tips = [await self._in_repo(self.git.tip, onto)] if onto else []
        for task_id in task_ids:
            self.summary.done += 1
            detail = await self.orchestrator.get_task(task_id)
            if detail.submitted_commit:
                await self._tidy(task_id, [detail.submitted_commit, *tips])

    async def _tidy(self, task_id: str, landed: Sequence[str]) -> None:
        """A landed task's repositories go, each only once nothing in it would be lost: its
        HEAD is in the history of what landed, and its files are that HEAD's. Any other stays
        for a person, who is told why."""
        folder = self._task_dir(task_id)
        if not folder.is_dir():
            return
        for repo in sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
            try:
                kept = await self._in_repo(self._unlanded, repo, landed)
            except Exception as exc:  # whatever a worker left there, the autopilot goes on
                kept = f"its files could not be judged: {type(exc).__name__}: {exc}"
            if kept:
                self.say(f"{task_id}: {repo} kept, {kept}")
                continue
            try:
                await anyio.to_thread.run_sync(removal.remove, repo)
            except OSError as exc:  # left for autopilot gc
                self.say(f"{task_id}: {exc}")
        with contextlib.suppress(OSError):
            folder.rmdir()  # only once nothing is left in it

    def _unlanded(self, repo: Path, landed: Sequence[str]) -> str:
        """What in a worker's repository did not land (read as data), or "" if nothing."""
        refs = gitsnap.read_refs(repo / ".git")
        if refs is None:
            return "its refs could not be read as data"
        # Every ref (a side branch, a stash), not only HEAD: work anywhere in it keeps it.
        unlanded = [
            name
            for name, sha in refs.items()
            if not any(self.git.contains(sha, tip) for tip in landed)
        ]
        if unlanded:
            return f"its commits are not all in what landed ({', '.join(unlanded[:5])})"
        try:
            differs = self.git.differs(refs["HEAD"], repo)
        except gitsnap.Unjudged as exc:
            return f"its files could not be judged: {exc}"
        shown = ", ".join(differs[:5]) + (" …" if len(differs) > 5 else "")
        return f"it has files nobody committed: {shown}" if differs else ""

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


async def _kill(process: Process) -> None:
    """SIGTERM to the worker's whole process group, then SIGKILL to what is left of it."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        with anyio.move_on_after(KILL_GRACE_S):
            await process.wait()
            # No event tells when the rest of the group (grandchildren) is gone: poll.
            while _group_alive(process.pid):  # noqa: ASYNC110
                await anyio.sleep(0.05)
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _review_notes(task: TaskDetail) -> str | None:
    """What the latest review asked for, when it asked for changes."""
    reviews = [e for e in task.recent_events if e.kind == "review" and e.reason]
    latest = reviews[-1].reason if reviews else None
    return latest.removeprefix("changes: ") if latest and latest.startswith("changes: ") else None


def _returned(task: TaskDetail) -> str | None:
    """Why the last submission did not land (a failed verification, a submission that could
    not be taken), when that is the latest thing that happened to it."""
    kinds = [e for e in task.recent_events if e.kind in ("returned", "submitted")]
    return kinds[-1].reason if kinds and kinds[-1].kind == "returned" else None


def _newest_repo(folder: Path) -> Path | None:
    """The repository of a task's latest run (runs are numbered 1, 2, ...)."""
    if not folder.is_dir() or folder.is_symlink():
        return None
    runs = [p for p in folder.iterdir() if p.name.isdigit() and p.is_dir() and not p.is_symlink()]
    return max(runs, key=lambda p: int(p.name), default=None)


def _runs(run_dir: Path) -> list[int]:
    return sorted(int(p.stem) for p in run_dir.glob("*.log") if p.stem.isdigit())


def _last_run(run_dir: Path) -> int:
    numbers = _runs(run_dir)
    return numbers[-1] if numbers else 0


def _next_run(run_dir: Path) -> str:
    """The next run's number (1, 2, ...), with room made for it: its log is created now, so
    two runs never take one number."""
    _rotate(run_dir)
    number = str(_last_run(run_dir) + 1)
    (run_dir / f"{number}.log").touch()
    return number


def _rotate(run_dir: Path) -> None:
    """Keep the newest RUN_LOGS_KEPT numbered runs of a task (their logs)."""
    for number in _runs(run_dir)[: -RUN_LOGS_KEPT + 1 or None]:
        for leftover in run_dir.glob(f"{number}.*"):
            leftover.unlink(missing_ok=True)
