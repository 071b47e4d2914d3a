"""The autopilot's loop: fill free worker slots with tasks routing sends their way, run one
CLI per task in its own git worktree, read what it reports, and act on how it ended.

Claims decide who works on what, so several autopilots (or hand-started agents) on one
database never run a task twice. The worker itself heartbeats, checkpoints and finishes
through its own wvo-mcp server, under its own agent id, like any agent; `done` still passes
the verification gate there."""

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal, TextIO, TypeVar

import anyio
import anyio.to_thread
from anyio.abc import Process, TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream

from wvo_mcp import gitsnap, guidance, routing, timeutil
from wvo_mcp import providers as provider_config
from wvo_mcp.autopilot import commands, events, prompt, view
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed, WvoError
from wvo_mcp.models import ClaimResult, RouteDecision, TaskDetail
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.transitions import Status

T = TypeVar("T")

ACTOR = "autopilot"
PLAN_LOOKAHEAD = 50  # ready tasks looked at per round for a free slot
LINE_BYTES = 1024 * 1024  # a longer output line is dropped, not buffered
KILL_GRACE_S = 5.0
PERMANENT = ("tier_range", "not_above_failed_tier")
REVIEW_DIFF_CHARS = 40_000
LIVE_SECONDS = 30  # an autopilot seen this recently is running
RUN_LOG_BYTES = 8 * 1024 * 1024  # of a worker's output, per run
RUN_LOGS_KEPT = 20  # runs kept per task: older logs are removed
TAIL_LINES = 20  # of a running worker's output, in each round's report
DRAINED = "stopped: the autopilot drained"
ROUTING_OUTCOME: dict[events.Outcome, routing.Outcome] = {
    "success": "success",
    "failure": "failure",
    "rate_limited": "rate_limited",
    "context_limit": "context_limit",
    "auth": "auth_failed",
}


@dataclass(frozen=True)
class Options:
    workers: Mapping[str, int] | None = None  # provider -> slots; None: each kind's max_workers
    epic: str | None = None
    until_empty: bool = False
    max_cost: float | None = None
    worktrees: Path | None = None  # None: <workspace>.wvo-worktrees beside the workspace
    poll_seconds: float = 1.0
    drain_seconds: float = 30.0
    merge: Literal["leave", "ff", "rebase"] = "leave"  # what happens to a finished branch
    onto: str | None = None  # the integration branch ff and rebase move
    review_epics: frozenset[str] = frozenset()  # besides tasks whose metadata.review is true
    goal: str | None = None  # a planner worker turns it into tasks before the work starts


@dataclass
class Slot:
    provider: str
    index: int
    kind: commands.WorkerKind
    busy: bool = False
    task_id: str = ""  # while busy
    since: str = ""
    suffix: str = ""  # set when another autopilot runs on the database: ids stay apart
    # The running CLI's last output lines, shortened: the dashboard's live log of the task.
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))

    @property
    def agent_id(self) -> str:
        return f"{self.provider}-{self.index}{self.suffix}"


@dataclass
class Summary:
    launched: int = 0
    done: int = 0
    released: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    stopped_providers: dict[str, str] = field(default_factory=dict)


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
        self._tidying: list[str] = []  # finished tasks whose worktrees may go
        self._repo_lock = anyio.Lock()
        self._to_review: dict[str, Slot] = {}  # finished task -> the slot that did it
        self._changed = anyio.Event()
        self.slots = self._slots()
        workspace = settings.workspace_root.resolve()
        repo = gitsnap.locate(workspace)
        if repo is None:
            raise ValidationFailed(
                f"{workspace} is not in a git repository: the autopilot gives each worker a "
                "git worktree; run `git init` there (with a first commit) or point "
                "WVO_WORKSPACE_ROOT at a repository"
            )
        self.git = gitsnap.Git(repo, repo.top, exclude=[settings.state_root])
        self.worktrees = options.worktrees or repo.top.with_name(repo.top.name + ".wvo-worktrees")
        self.runs = settings.state_root / "runs"
        if options.merge != "leave":
            self._check_onto(options.onto)
        self._merging = anyio.Lock()  # one merge at a time moves the integration branch

    def _check_onto(self, onto: str | None) -> None:
        if not onto or not self.git.has_branch(onto):
            raise ValidationFailed(
                f"--merge {self.options.merge} needs --onto BRANCH, an existing branch of "
                f"{self.git.repo.top} to merge finished work onto (got {onto!r})"
            )
        holder = self.git.checked_out(onto)
        if holder is not None:
            raise ValidationFailed(
                f"{onto!r} is checked out in {holder}: moving it would leave those files "
                "behind; check out another branch there, or merge onto a branch nobody has "
                "checked out"
            )

    def _worktree(self, task_id: str) -> Path:
        return self.worktrees / gitsnap.branch_name(task_id).removeprefix("wvo/")

    def _run_dir(self, task_id: str) -> Path:
        """Where a task's runs keep their logs and MCP configs."""
        run_dir = self.runs / gitsnap.branch_name(task_id).removeprefix("wvo/")
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir

    def _free(self, slot: Slot) -> None:
        slot.busy, slot.task_id = False, ""
        self._changed.set()

    async def _in_repo(self, fn: Callable[..., T], *args: object) -> T:
        """A git call on the repository, off the event loop and one at a time: concurrent
        `git worktree add`s read each other's half-made administrative files."""
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
        directive = await anyio.to_thread.run_sync(
            guidance.text, self.settings.workspace_root, "work_loop"
        )
        await self.orchestrator.autopilot_start(self.run_id)
        await self._name_slots()
        try:
            if self.options.goal:
                await self._plan(self.options.goal, base)
            return await self._rounds(base, directive)
        finally:
            with anyio.CancelScope(shield=True):
                await self.orchestrator.autopilot_beat(self.run_id, "ended", self.report())

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
        """What `wvo-mcp autopilot status` shows of this run."""
        return {
            "workers": [
                {"agent": s.agent_id, "task": s.task_id, "since": s.since, "tail": list(s.tail)}
                for s in self.slots
                if s.busy
            ],
            "slots": len(self.slots),
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
        async with anyio.create_task_group() as workers:
            while True:
                await self._heed()
                if not self.draining and not self.paused:
                    await self._launch(workers, base, directive)
                busy = any(slot.busy for slot in self.slots)
                if not busy and (
                    self.draining
                    or (self.options.until_empty and not self.paused and await self._idle())
                ):
                    break
                with anyio.move_on_after(self.options.poll_seconds):
                    await self._changed.wait()
                self._changed = anyio.Event()
        return self.summary

    async def _idle(self) -> bool:
        """Nothing left that a worker here could take: no ready, backing-off or running
        work, or only ready work that can never start here (see _launch)."""
        counts = (await self.orchestrator.plan_next(ACTOR, 1, self.options.epic)).counts
        open_work = counts.by_status.get(Status.PENDING, 0) - counts.waiting_on_dependencies
        if counts.by_status.get(Status.IN_PROGRESS, 0) or counts.backing_off:
            return False
        if open_work > 0 and self._stuck:
            self.say(f"stopping with ready work that cannot start here: {self._waiting}")
        return open_work <= 0 or self._stuck

    async def _launch(self, workers: TaskGroup, base: str, directive: str) -> None:
        free = [s for s in self.slots if not s.busy and s.provider not in self._stopped]
        if not free or self._over_budget():
            return
        for task_id, author in list(self._to_review.items()):
            # Another provider's worker, else at least another agent.
            reviewer = next((s for s in free if s.provider != author.provider), None) or next(
                (s for s in free if s.agent_id != author.agent_id), None
            )
            if reviewer is not None:
                del self._to_review[task_id]
                free.remove(reviewer)
                reviewer.busy, reviewer.task_id = True, task_id
                reviewer.since = timeutil.to_text(timeutil.now())
                workers.start_soon(self._review, reviewer, task_id, author, base)
        plan = await self.orchestrator.plan_next(ACTOR, PLAN_LOOKAHEAD, self.options.epic)
        waiting = ""
        self._stuck = bool(plan.tasks)
        for task in plan.tasks:
            if not free:
                self._stuck = False
                return
            decision = await self.orchestrator.route_task(task.id)
            slot = next((s for s in free if s.provider == decision.provider), None)
            if not decision.routed or slot is None or decision.model is None:
                waiting = waiting or f"{task.id} waits: {decision.reason}"
                self._stuck = self._stuck and self._never(decision)
                continue
            claim = await self.orchestrator.claim(
                slot.agent_id, task.id, provider=decision.provider, model=decision.model
            )
            if not claim.claimed or claim.task is None or claim.lease_token is None:
                continue
            free.remove(slot)
            slot.busy, slot.task_id = True, task.id
            slot.since = timeutil.to_text(timeutil.now())
            self.summary.launched += 1
            waiting, self._stuck = "", False
            workers.start_soon(self._work, slot, claim, decision.model, base, directive)
        self._waiting = waiting
        if waiting != self._said and not any(s.busy for s in self.slots):
            if waiting:  # said once, while nothing runs: why ready work does not start
                self.say(waiting)
            self._said = waiting

    def _never(self, decision: RouteDecision) -> bool:
        """Routing will not send this task anywhere this autopilot runs, whatever time
        brings (breakers, budgets and caps recover; tier ranges and escalation do not)."""
        if decision.routed:
            return decision.provider in self._stopped or decision.provider not in {
                s.provider for s in self.slots
            }
        return all(a.why in PERMANENT for a in decision.alternatives)

    @property
    def _stopped(self) -> dict[str, str]:
        return self.summary.stopped_providers

    def _over_budget(self) -> bool:
        limit = self.options.max_cost
        if limit is not None and self.summary.cost_usd >= limit:
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
            finish = await self._attempt(slot, claim, model, base, directive)
            await self._settle(slot, task_id, token, model, base, finish)
        except WvoError as exc:
            self.say(f"{slot.agent_id} {task_id}: {exc}")
            await self._release(
                slot, task_id, token, f"autopilot could not run it: {exc}", Status.FAILED
            )
        finally:
            self._free(slot)
        # After the slot is free: the next launch does not wait for git.
        while self._tidying:
            await self._in_repo(self._tidy, self._tidying.pop())

    async def _attempt(
        self, slot: Slot, claim: ClaimResult, model: str, base: str, directive: str
    ) -> events.Finish:
        assert claim.task is not None and claim.lease_token is not None
        task_id, attempt = claim.task.id, claim.attempt or 1
        detail = await self.orchestrator.get_task(task_id)
        branch = gitsnap.branch_name(task_id)
        worktree = self._worktree(task_id)
        if not worktree.exists():
            # When merging, work starts from what has landed so far.
            if self.options.onto is not None and self.options.merge != "leave":
                base = await self._in_repo(self.git.tip, self.options.onto)
            await self._in_repo(self.git.add_worktree, worktree, branch, base)
        run_dir = self._run_dir(task_id)
        text = prompt.worker_prompt(
            directive=directive,
            task=detail,
            agent_id=slot.agent_id,
            lease_token=claim.lease_token,
            attempt=attempt,
            branch=branch,
            checkpoint=claim.last_checkpoint,
            finish="needs_review" if self._gated(detail) else "done",
            review_notes=_review_notes(detail),
        )
        self.say(f"{slot.agent_id} starts {task_id} (attempt {attempt}, {model}) in {worktree}")
        run = _next_run(run_dir)
        return await self._run_cli(slot, task_id, model, text, worktree, run_dir, run)

    async def _run_cli(
        self,
        slot: Slot,
        task_id: str,
        model: str,
        text: str,
        worktree: Path,
        run_dir: Path,
        name: str,
        tools: str = "worker",
    ) -> events.Finish:
        """One CLI run with its MCP config and log (`<run_dir>/<name>.*`), supervised."""
        here = gitsnap.locate(worktree)
        launch = commands.Launch(
            agent_id=slot.agent_id,
            task_id=task_id,
            model=model,
            prompt=text,
            workdir=worktree,
            mcp_config=run_dir / f"{name}.mcp.json",
            server=self._server(slot, model, worktree, tools),
            git_dirs=(self.git.repo.git_dir, *([here.git_dir] if here is not None else [])),
        )
        launch.mcp_config.write_text(commands.mcp_config_json(launch))
        launch.mcp_config.chmod(0o600)
        argv = commands.argv(slot.kind, launch)
        with (run_dir / f"{name}.log").open("a") as run_log:
            return await self._supervise(slot, task_id, argv, worktree, run_log)

    def _server(
        self, slot: Slot, model: str, worktree: Path, tools: str = "worker"
    ) -> commands.Server:
        """The worker's own wvo-mcp: this Python, the shared state, the worker's identity."""
        # The autopilot's own configuration carries over; identity and workspace do not.
        env = {k: v for k, v in os.environ.items() if k.startswith(("WVO_", "OTEL_"))}
        providers_file = provider_config.path_for(self.settings)
        if providers_file is not None:
            env["WVO_PROVIDERS_FILE"] = str(providers_file.resolve())
        env |= {
            "WVO_STATE_ROOT": str(self.settings.state_root.resolve()),
            "WVO_WORKSPACE_ROOT": str(worktree),
            "WVO_AGENT_ID": slot.agent_id,
            "WVO_AGENT_PROVIDER": slot.provider,
            "WVO_AGENT_MODEL": model,
            "WVO_TOOLS": tools,
        }
        return commands.Server(
            command=sys.executable, args=("-P", "-m", "wvo_mcp", "serve"), env=env
        )

    async def _supervise(
        self, slot: Slot, task_id: str, argv: list[str], worktree: Path, run_log: TextIO
    ) -> events.Finish:
        stream = events.stream_for(slot.kind.kind)
        slot.tail.clear()
        # The worker's CLI keeps the person's environment (its API keys), not ours.
        env = {k: v for k, v in os.environ.items() if not k.startswith("WVO_")}
        process = await anyio.open_process(
            argv,
            cwd=worktree,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=run_log,
            start_new_session=True,  # its own process group, killed as one
        )
        last_seen = time.monotonic()
        hung = False

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
            nonlocal last_seen, hung
            lease = None
            while True:
                await anyio.sleep(self.options.poll_seconds)
                if task_id:  # a planner holds no task: only its output counts
                    detail = await self.orchestrator.get_task(task_id)
                    if detail.lease_expires_at != lease:  # a heartbeat or checkpoint renewed it
                        lease = detail.lease_expires_at
                        last_seen = max(last_seen, time.monotonic())
                now = time.monotonic()
                if now - last_seen > slot.kind.hang_seconds or now > self._drain_deadline:
                    hung = True
                    why = "drained" if now > self._drain_deadline else "silent"
                    self.say(f"{slot.agent_id} {task_id}: {why}; stopped")
                    await _kill(process)
                    scope.cancel()
                    return

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(watch, group.cancel_scope)
                await read()
                code = await process.wait()
                group.cancel_scope.cancel()
        finally:
            # Whatever it started (its own MCP server, tools) goes with it.
            with anyio.CancelScope(shield=True):
                await _kill(process)
            ended = timeutil.to_text(timeutil.now())
            run_log.write(f"# wvo-mcp autopilot: exited with {process.returncode} at {ended}\n")
        if hung:
            why = (
                DRAINED
                if time.monotonic() > self._drain_deadline
                else f"hung: silent for {slot.kind.hang_seconds:.0f} s"
            )
            return events.Finish("failure", events.Usage(), why)
        return stream.finish(code)

    async def _settle(
        self, slot: Slot, task_id: str, token: str, model: str, base: str, finish: events.Finish
    ) -> None:
        usage = finish.usage
        self.summary.input_tokens += usage.input_tokens
        self.summary.output_tokens += usage.output_tokens
        self.summary.cost_usd += usage.cost_usd or 0.0
        detail = await self.orchestrator.get_task(task_id)
        holding = detail.status == Status.IN_PROGRESS and detail.assigned_to == slot.agent_id
        judged = finish.message != DRAINED
        if finish.denied and detail.status not in (Status.DONE, Status.NEEDS_REVIEW):
            # Its CLI refused a tool the work needed: the provider cannot work here as it
            # is set up, like a refused key (its breaker opens, routing fails over).
            finish = dataclasses.replace(finish, outcome="auth")
        await self._record(
            slot, model, finish, task_id if holding else None, token if holding else None
        )
        if detail.status == Status.DONE:
            self.summary.done += 1
            branch = gitsnap.branch_name(task_id)
            shas = await self._in_repo(self.git.commits, base, branch)
            span = f"{base[:12]}..{shas[-1][:12]}" if shas else "none"
            self.say(
                f"{slot.agent_id} finished {task_id}: {len(shas)} commit(s) on {branch} ({span})"
            )
            await self.orchestrator.note(
                task_id, ACTOR, "commits", f"{branch}: {len(shas)} commit(s) {base}..{branch}"
            )
            self._tidying.append(task_id)
            return
        if detail.status == Status.NEEDS_REVIEW and self._reviewed(detail):
            self._to_review[task_id] = slot
            self.say(f"{task_id} waits for review")
            return
        if detail.status == Status.NEEDS_REVIEW and self.options.merge != "leave":
            await self._merge(slot, task_id, base)
            return
        refused = bool(finish.denied)  # and the task is not done (returned above)
        if finish.outcome == "auth" and not refused and slot.provider not in self._stopped:
            self._stopped[slot.provider] = finish.message
            self.say(
                f"{slot.provider}: authentication failed ({finish.message}); no more "
                f"{slot.provider} workers this run: fix its login or key"
            )
        if refused and slot.provider not in self._stopped:
            # Asking again would be refused again: a person widens the worker's permissions.
            tools = ", ".join(finish.denied)
            self._stopped[slot.provider] = f"permission refused for {tools}"
            self.say(
                f"{slot.provider}: its CLI was refused {tools} and left {task_id} unfinished; "
                f"no more {slot.provider} workers this run: add them to allowed_tools in the "
                "providers file"
            )
        if holding:
            # The provider's fault (or ours) costs the task nothing; anything else is a failed
            # attempt: counted, retried after a back-off, a dead letter at max_attempts.
            blameless = finish.outcome in ("rate_limited", "auth") or not judged or refused
            await self._release(
                slot,
                task_id,
                token,
                f"worker ended ({finish.outcome}): {finish.message}",
                Status.PENDING if blameless else Status.FAILED,
            )
        else:
            self.say(f"{slot.agent_id} left {task_id} {detail.status.value}: {finish.outcome}")

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
        # A worker the autopilot stopped itself says nothing about the provider.
        judged = finish.message != DRAINED
        if usage.input_tokens or usage.output_tokens or (judged and finish.outcome != "success"):
            await self.orchestrator.record_usage(
                slot.provider,
                model,
                usage.input_tokens,
                usage.output_tokens,
                ROUTING_OUTCOME[finish.outcome],
                task_id,
                token,
                slot.agent_id,
            )

    async def _plan(self, goal: str, base: str) -> None:
        """A planner worker (the first slot, its provider's strongest model, the planner
        tool profile) turns the goal into tasks with task_create, in a worktree of its own."""
        slot = self.slots[0]
        provider = self.orchestrator.providers.get(slot.provider)
        model = provider.tiers[-1].model if provider is not None else ""
        directive = await anyio.to_thread.run_sync(
            guidance.text, self.settings.workspace_root, "planning"
        )
        # Names no task can have: task branches are wvo/<task>.
        worktree = self.worktrees / "wvo-planner"
        if not worktree.exists():
            await self._in_repo(self.git.add_worktree, worktree, "wvo-planner", base)
        run_dir = self.runs / "wvo-planner"
        run_dir.mkdir(parents=True, exist_ok=True)
        self.say(f"{slot.agent_id} plans: {goal}")
        text = f"{directive.strip()}\n\n# Goal\n\n{goal}\n"
        run = _next_run(run_dir)
        finish = await self._run_cli(slot, "", model, text, worktree, run_dir, run, "planner")
        await self._record(slot, model, finish, None, None)
        self.say(f"{slot.agent_id} planned ({finish.outcome}): {finish.message[:300]}")

    def _reviewed(self, task: TaskDetail) -> bool:
        return task.metadata.get("review") is True or task.epic_id in self.options.review_epics

    def _gated(self, task: TaskDetail) -> bool:
        """The worker finishes in needs_review: a review or a merge comes before done."""
        return self._reviewed(task) or self.options.merge != "leave"

    async def _review(self, slot: Slot, task_id: str, author: Slot, base: str) -> None:
        """Another worker reads the task and its diff and answers approve or request
        changes; approved work is merged (or marked done), the rest goes back to pending
        with the notes for the next attempt. Reviews are task events."""
        try:
            detail = await self.orchestrator.get_task(task_id)
            branch = gitsnap.branch_name(task_id)
            worktree = self._worktree(task_id)
            diff = await self._in_repo(self.git.diff, base, branch)
            if len(diff) > REVIEW_DIFF_CHARS:
                diff = diff[:REVIEW_DIFF_CHARS] + "\n[... cut: read the rest in the worktree]"
            provider = self.orchestrator.providers.get(slot.provider)
            model = provider.tiers[-1].model if provider is not None else ""
            text = prompt.review_prompt(
                task=detail, author=author.agent_id, branch=branch, diff=diff
            )
            self.say(f"{slot.agent_id} reviews {task_id} ({author.agent_id}'s work)")
            finish = await self._run_cli(
                slot, task_id, model, text, worktree, self._run_dir(task_id), "review"
            )
            await self._record(slot, model, finish, None, None)
            found, notes = prompt.verdict(finish.message)
            if finish.outcome != "success" or found is None:
                self._to_review[task_id] = author  # asked again, perhaps of another worker
                self.say(f"{slot.agent_id} gave no verdict on {task_id} ({finish.outcome})")
                return
            await self.orchestrator.note(
                task_id, slot.agent_id, "review", f"{found}: {notes}"[:2000]
            )
            if found == "changes":
                await self.orchestrator.update_status(
                    task_id,
                    Status.PENDING,
                    ACTOR,
                    reason=f"review by {slot.agent_id}: {notes}"[:500],
                )
                self.say(f"{slot.agent_id} asked for changes to {task_id}")
            elif self.options.merge != "leave":
                await self._merge(slot, task_id, base)
            else:
                await self._done_in(task_id, worktree, f"approved by {slot.agent_id}")
                self.summary.done += 1
                self.say(f"{slot.agent_id} approved {task_id}")
        except WvoError as exc:
            self.say(f"{slot.agent_id} could not review {task_id}: {exc}")
        finally:
            self._free(slot)

    async def _done_in(self, task_id: str, worktree: Path, reason: str) -> None:
        """Mark a reviewed or merged task done; its verification runs in its worktree."""
        view = Orchestrator(
            self.orchestrator.db,
            dataclasses.replace(self.settings, workspace_root=worktree),
            self.orchestrator.providers,
        )
        await view.update_status(task_id, Status.DONE, ACTOR, reason=reason)

    async def _merge(self, slot: Slot, task_id: str, base: str) -> None:
        """Bring a finished branch onto the integration branch (--merge ff or rebase) and
        mark the task done once its verification passes there, in its worktree. A conflict,
        a branch that cannot fast-forward or a failed verification leaves the task in
        needs_review, saying why, for a person."""
        assert self.options.onto is not None
        onto, branch = self.options.onto, gitsnap.branch_name(task_id)
        worktree = self._worktree(task_id)
        repo = gitsnap.locate(worktree)
        if repo is None:
            return await self._hold(task_id, f"its worktree {worktree} is gone")
        here = gitsnap.Git(repo, worktree)
        async with self._merging:
            old = await self._in_repo(self.git.tip, onto)
            if self.options.merge == "rebase":
                conflicts = await self._in_repo(here.rebase, old)
                if conflicts:
                    return await self._hold(
                        task_id, f"rebasing {branch} onto {onto} conflicts in: "
                        f"{', '.join(conflicts)}",
                    )  # fmt: skip
            elif not await self._in_repo(self.git.contains, old, branch):
                return await self._hold(
                    task_id, f"{branch} cannot fast-forward {onto}: {onto} moved on since"
                )
            new = await self._in_repo(self.git.tip, branch)
            # Done runs the task's verification there, on the branch as it will land.
            try:
                await self._done_in(task_id, worktree, f"merged onto {onto}")
            except WvoError as exc:
                return await self._hold(task_id, f"not merged: {exc}")
            if not await self._in_repo(self.git.move_branch, onto, new, old):
                self.say(f"{task_id}: {onto} moved during the merge; {branch} is left for a person")
                return
        self.summary.done += 1
        self.say(f"{slot.agent_id} merged {task_id} onto {onto} ({old[:12]}..{new[:12]})")
        await self.orchestrator.note(task_id, ACTOR, "merged", f"{onto}: {old}..{new}")
        self._tidying.append(task_id)

    async def _hold(self, task_id: str, why: str) -> None:
        self.say(f"{task_id} waits for a person in needs_review: {why}")
        await self.orchestrator.note(task_id, ACTOR, "merge_held", why[:1000])

    def _tidy(self, task_id: str) -> None:
        """Remove a finished task's worktree when nothing in it is uncommitted (its commits
        stay on the branch); otherwise leave it for a person and say so."""
        worktree = self._worktree(task_id)
        repo = gitsnap.locate(worktree)
        if repo is None or repo.top != worktree.resolve():
            return
        left = gitsnap.Git(repo, worktree).uncommitted()
        if left:
            self.say(f"{task_id}: worktree {worktree} kept, it has uncommitted changes")
            return
        self.git.remove_worktree(worktree)

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


def _runs(run_dir: Path) -> list[int]:
    return sorted(int(p.stem) for p in run_dir.glob("*.log") if p.stem.isdigit())


def _last_run(run_dir: Path) -> int:
    numbers = _runs(run_dir)
    return numbers[-1] if numbers else 0


def _next_run(run_dir: Path) -> str:
    """The next run's number (1, 2, ...; a review's "changes" is not an attempt), with room
    made for it."""
    _rotate(run_dir)
    return str(_last_run(run_dir) + 1)


def _rotate(run_dir: Path) -> None:
    """Keep the newest RUN_LOGS_KEPT numbered runs of a task (their logs and configs)."""
    for number in _runs(run_dir)[: -RUN_LOGS_KEPT + 1 or None]:
        for leftover in run_dir.glob(f"{number}.*"):
            leftover.unlink(missing_ok=True)
