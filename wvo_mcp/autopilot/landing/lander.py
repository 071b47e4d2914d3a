"""The merge queue's landing pass: hold a target, finish what was left open, land the next batch.

A pass takes the head of a target's queue and hands it to the strategy the target calls
for: onto a branch (onto_branch.py: stacked, verified on a clean checkout in the sandbox,
bisected, and the target moved with a compare-and-swap), onto each task's own branch
(own_branches.py, `--merge leave`), or through pull requests (pull_requests.py, `--via
pull-request`: each lands when the forge merges it). A conflict or a failure goes back to
a worker with what went wrong, or to a person when it must (steps.py).

The queue is rows (services/landing_queue.py): a lease with a fence says who lands a target, and
each landing is written as an intent before the ref moves, so an autopilot killed at any
moment loses nothing and the next one completes or abandons what it finds, never twice."""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from functools import partial

import anyio

from wvo_mcp.autopilot.landing.batches import Batches
from wvo_mcp.autopilot.landing.onto_branch import OntoBranch
from wvo_mcp.autopilot.landing.own_branches import OwnBranches
from wvo_mcp.autopilot.landing.steps import LandingStrategy, Options, Red, Steps, Verdict
from wvo_mcp.autopilot.landing.target import Target
from wvo_mcp.errors import Fault, LeaseLost, WvoError
from wvo_mcp.git import Git, branch_name
from wvo_mcp.git.remote import task_ref
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import check_causes
from wvo_mcp.services import landing_queue
from wvo_mcp.services.landing_queue import Entry, Return
from wvo_mcp.telemetry import Telemetry

TARGET_SECONDS = 60  # a target's lease: renewed while its holder lives


class Lander:
    """One target's landing passes, through the strategy its target calls for."""

    def __init__(
        self,
        orchestrator: Orchestrator,
        telemetry: Telemetry,
        git: Git,
        in_repo: Callable[..., Awaitable[object]],
        target: Target,
        options: Options,
        run_id: str,
        say: Callable[[str], None],
        landed: Callable[[list[str]], Awaitable[None]],
    ) -> None:
        self.steps = Steps(orchestrator, telemetry, git, in_repo, target, options, run_id, say,
                           landed)  # fmt: skip
        # --via pull-request: what lands goes out as pull requests, followed until merged.
        self.strategy: LandingStrategy
        # (Batches, with --forge-batch 1 one task each, follows a batch a run left out.)
        if target.forge is not None:
            self.strategy = Batches(self.steps, target.forge, options.poll, options.safety)
        elif target.branch:
            self.strategy = OntoBranch(self.steps)
        else:
            self.strategy = OwnBranches(self.steps)

    @property
    def target(self) -> Target:
        return self.steps.target

    @property
    def key(self) -> str:
        """The queue's name for the target."""
        return self.steps.key

    @property
    def onto(self) -> str:
        """The target as messages name it ('' for --merge leave)."""
        return self.steps.onto

    @property
    def red(self) -> Red | None:
        """The latest base found failing the project's check."""
        return self.steps.red

    async def tip(self) -> str:
        """The target's tip as last read (for a remote: as last fetched)."""
        return await self.steps.tip()

    async def base(self, commit: str) -> Verdict:
        """The project's check alone on `commit`, run once per commit."""
        return await self.steps.base(commit)

    async def refresh(self, max_age: float = 0.0) -> bool:
        """A remote target's tip fetched afresh (Steps.refresh)."""
        return await self.steps.refresh(max_age)

    # -- one pass ----------------------------------------------------------------------

    async def pending(self) -> bool:
        """Whether the target has entries queued, being tested or landing."""
        return self.key in await self.steps.db.read(landing_queue.queued_targets)

    async def land(self) -> bool:
        """Land what heads the queue, one batch; True if there may be more to do now."""
        steps = self.steps
        if not await self.pending() or not await self.strategy.due() or not await self.refresh():
            return False  # nothing to hold the target for now, or its remote is away
        if steps.red is not None and steps.target.branch:
            if await self.tip() == steps.red.commit:
                return False  # still red: the queue holds until a person fixes the target
            steps.red = None
            steps.say(f"{self.onto} moved: landing again")
        now = steps.now()
        until = now + timedelta(seconds=TARGET_SECONDS)
        fence = await steps.db.write(
            partial(
                landing_queue.hold_target, target=self.key, run=steps.run_id, until=until, now=now
            )
        )
        if fence is None:
            return False  # another autopilot lands this target now
        try:
            async with self._holding(fence):
                try:
                    moved = await self._recover(fence)
                except Fault:  # the remote or forge went away (said once): it waits
                    return False
                if moved is None:
                    return False  # a landing waits for the target's working tree, or remote
                entries = await steps.db.read(
                    partial(landing_queue.head, target=self.key, limit=self._taken())
                )
                if not entries:
                    return moved
                ids = [e.id for e in entries]
                await steps.db.write(partial(landing_queue.start, target=self.key, run=steps.run_id,
                                             fence=fence, ids=ids))  # fmt: skip
                try:
                    entries = await self._bring(fence, entries)
                    if not entries:
                        return True
                    return await self.strategy.land(fence, entries)
                except Fault:  # the remote or forge went away mid-batch (said once): it waits
                    await steps.unstart_all(fence)
                    return False
                except WvoError as exc:  # git or the sandbox failed us: the batch waits
                    steps.say(f"landing onto {self.onto or 'their branches'} failed: {exc}")
                    await steps.unstart_all(fence)
                    return False
        except LeaseLost as exc:
            steps.say(f"landing paused: {exc}")
            # A batch a person broke up (or one this lander no longer holds) queues again.
            with contextlib.suppress(LeaseLost):
                await steps.unstart_all(fence)
            return False

    async def _bring(self, fence: int, entries: Sequence[Entry]) -> list[Entry]:
        """The entries whose commits are here: another host's submissions fetched from the
        remote (raises Fault while it is away). One whose ref there no longer names its
        commit (a person moved it) goes to a person."""
        steps = self.steps
        here = []
        reach = steps.target.reach
        for item in entries:
            if reach is None or await steps.in_repo(steps.git.has_commit, item.commit):
                here.append(item)
                continue
            found = await reach.call(reach.remote.bring, item.task_id, branch_name(item.task_id))
            if found == item.commit:
                here.append(item)
                continue
            back = Return(
                summary=f"its submission {item.commit[:12]} is gone from the remote "
                f"({task_ref(item.task_id)} names {found or 'nothing'})",
                details="The ref that carries a submission to the host that lands it was "
                "moved or deleted on the remote by someone else than the autopilot.",
            )
            await steps.send_back(fence, item, back, [], hold="its ref on the remote moved")
        return here

    @contextlib.asynccontextmanager
    async def _holding(self, fence: int) -> AsyncIterator[None]:
        """The target's lease renewed while checks run for minutes."""
        steps = self.steps

        async def renew() -> None:
            while True:
                await anyio.sleep(TARGET_SECONDS / 3)
                until = steps.now() + timedelta(seconds=TARGET_SECONDS)
                await steps.db.write(partial(landing_queue.renew_target, target=self.key,
                                             run=steps.run_id, fence=fence,
                                             until=until))  # fmt: skip

        async with anyio.create_task_group() as group:
            group.start_soon(renew)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    async def _recover(self, fence: int) -> bool | None:
        """Landings a killed autopilot intended (or one held by the target's working tree),
        each resumed by the strategy: completed, abandoned and queued again, or (through pull
        requests) followed. True: one moved; None while one is held."""
        moved = False
        for found in await self.steps.db.read(partial(landing_queue.intents, target=self.key)):
            went = await self.strategy.resume(fence, found)
            if went is None:
                return None
            moved = went or moved
        return moved

    def _taken(self) -> int:
        """Entries one pass takes: a batch tested as one, or, through pull requests in
        batches, as many as one pull request carries."""
        return max(1, self.steps.options.batch, self.steps.options.forge_batch)

    async def refuse(self, task_id: str, back: Return) -> None:
        """A submission refused before it was taken (its commits change the state folder):
        a failed attempt, the next one starting from `back`; it never joins the queue."""
        steps = self.steps
        try:
            await steps.db.write(
                partial(landing_queue.refuse, settings=steps.orchestrator.settings, task_id=task_id,
                        back=back, now=steps.now())
            )  # fmt: skip
        except WvoError as exc:  # a person moved the task meanwhile
            steps.say(f"{task_id}: {exc}")
            return
        steps.say(f"{task_id} {back.summary}")


def preflight_failure(command: str, where: str, output: str, toolchain: str) -> str:
    """Why the autopilot will not start on a red target, its cause, and what to do (pure)."""
    lines = output.strip().splitlines()
    shown = "\n".join(lines[:1] + ["  ..."] * (len(lines) > 21) + lines[max(1, len(lines) - 20) :])
    found = check_causes.cause(output, toolchain)
    said = "\n".join(check_causes.notes(output))
    why = (
        "a check that runs none would pass whatever a worker submits"
        if found.kind == "no_tests"
        else "so every worker's submission would fail it too"
    )
    return (
        f"the check `{command}` fails on {where} before any worker has changed anything "
        f"({found.what}), {why}; nothing was started.\n{shown}\n"
        f"{said + chr(10) if said else ''}"
        f"Fix: {found.fix}. It runs in the sandbox on a clean checkout, with the project's "
        f"toolchain read-only: {toolchain}; a folder the check needs that git ignores goes in "
        "the providers file's `toolchain: folders` (docs/autopilot.md, \"Your test "
        'environment"). --skip-preflight starts anyway.'
    )
