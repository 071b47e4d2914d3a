"""The landing steps every strategy takes: verify, stack, intend, complete, send back, hold.

Each strategy (onto_branch.py, own_branches.py, pull_requests.py) lands its own way, and all
of them through these steps over one target's queue, so what a failure, a conflict or a
landing writes, and what it says, is the same whichever way work lands.

Carries out `rules/check_causes.py` (a failed check's cause, and the hold where it could not
run: `fail`, `failed`) and `rules/merge_queue.py` (the checks a tree must pass: `verify`;
when a person is asked instead of a worker: `send_back`)."""

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Literal, Protocol, TypeVar

import anyio

from wvo_mcp.autopilot.landing.gate import Gate
from wvo_mcp.autopilot.landing.target import Target
from wvo_mcp.errors import Fault, LeaseLost, ValidationFailed, VerificationFailed, WvoError
from wvo_mcp.git import Conflict, Git, stacking, trees
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import check_causes, merge_queue
from wvo_mcp.services import landing_queue
from wvo_mcp.services.landing_queue import Entry, Landing, Return
from wvo_mcp.telemetry import Telemetry

T = TypeVar("T")
Stacking = Literal["leave", "merge", "rebase"]
Was = Literal["testing", "landing"]
OUTPUT_TAIL = 4000  # of a failing check, in the checkpoint the next worker starts from


@dataclass(frozen=True)
class Options:
    strategy: Stacking = "leave"
    check: str | None = None  # a project-wide check every landing tree must pass
    batch: int = 4  # entries tested as one
    slots: int = 2  # checks run at once
    max_returns: int = 3  # returns to a worker before a person is asked
    poll: float = 10.0  # --via pull-request: seconds between two looks at a pull request
    safety: float = 600.0  # the same, where webhook deliveries say when to look
    forge_batch: int = 1  # tasks one pull request carries at most (batches.py)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    checks: str  # one line per check that ran
    output: str = ""  # the failing check's summary and output tail
    project_failed: bool = False  # the project-wide check was among the failures
    cause: str = ""  # the failure's kind (rules/check_causes.py)


@dataclass(frozen=True)
class Red:
    """The target fails the project's check by itself: the queue holds, no worker is charged."""

    target: str
    commit: str
    output: str


class LandingStrategy(Protocol):
    """One way work lands on a target; the lander's pass holds the target and calls it."""

    async def due(self) -> bool:
        """Whether a pass is worth holding the target for now."""
        ...

    async def land(self, fence: int, entries: Sequence[Entry]) -> bool:
        """The queue's head, started under `fence`: True if there may be more to do now."""
        ...

    async def resume(self, fence: int, intent: Landing) -> bool | None:
        """A landing intended and left open (by a killed autopilot, or held): True if it
        moved; None while it is held (the pass stops)."""
        ...


class Steps:
    """One target's landing steps, and what they share: its lease's run, the checks' slots,
    the project's check on each base once known, and whether the target is red."""

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
        self.orchestrator = orchestrator
        self.telemetry = telemetry
        self.db = orchestrator.db
        self.git = git
        self._in_repo = in_repo
        self.options = options
        self.run_id = run_id
        self.say = say
        self._landed = landed  # told the tasks each landing finished (their repos go)
        self._slots = anyio.CapacityLimiter(max(1, options.slots))
        self.target = target
        self.key = target.key  # the queue's name for it
        self.onto = target.name  # as messages name it ('' for --merge leave)
        self._bases: dict[str, Verdict] = {}  # the project's check on a commit, once known
        self.red: Red | None = None  # the latest base found failing the project's check
        self._fetched_at = -float("inf")  # when a remote target's tip was last fetched
        self.gate = Gate(orchestrator, partial(self.in_repo, trees.materialize, git), self.key,
                         self.onto, self.tip if target.branch else None, say)  # fmt: skip

    async def in_repo(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` on the autopilot's repository, off the event loop."""
        return await self._in_repo(fn, *args)  # type: ignore[return-value]

    def now(self) -> datetime:
        return self.orchestrator.clock()

    # -- the target ----------------------------------------------------------------------

    async def base(self, commit: str) -> Verdict:
        """The project's check alone on `commit` (a target's tip, a submission's base), run
        once per commit: what tells a red target from a change that broke it."""
        found = self._bases.get(commit)
        if found is None:
            found = self._bases[commit] = await self.verify(commit, [])
        return found

    def base_known(self, commit: str) -> Verdict | None:
        """The project's check alone on `commit`, if `base` has run it."""
        return self._bases.get(commit)

    async def tip(self) -> str:
        """The target's tip as last read (for a remote: as last fetched)."""
        found = await self.in_repo(self.git.ref_tip, self.target.ref)
        if found is None:
            raise ValidationFailed(f"{self.onto} is gone from {self.git.repo.top}")
        return found

    async def refresh(self, max_age: float = 0.0) -> bool:
        """A remote target's tip fetched afresh, unless fetched less than `max_age` seconds
        ago; False while the remote holds the queue (said once by Reach, asked again after
        a back-off)."""
        reach = self.target.reach
        if reach is None or not self.target.branch:
            return True
        if time.monotonic() - self._fetched_at < max_age:
            return True
        if not reach.ready():
            return False
        try:
            await reach.call(reach.remote.fetch_branch, self.target.branch)
        except Fault:
            return False
        self._fetched_at = time.monotonic()
        return True

    def turned_red(self, commit: str, verdict: Verdict) -> None:
        where = f"{self.onto} at {commit[:12]}" if self.onto else f"base {commit[:12]}"
        if self.red is None or self.red.commit != commit:
            found = check_causes.cause(verdict.output, "the project's toolchain")
            self.say(
                f"the target is red: {where} fails the project's check by itself "
                f"({found.what}), so no submission can land on it; the queue holds (no worker "
                f"is charged) until it is fixed. Fix: {found.fix}.\n{verdict.output[-OUTPUT_TAIL:]}"
            )
        self.red = Red(self.onto, commit, verdict.output[-OUTPUT_TAIL:])

    # -- stacking, checking, landing -----------------------------------------------------

    def stack(self, onto: str, item: Entry) -> str | Conflict:
        """`item` stacked onto `onto` as the options say (run it through `in_repo`)."""
        message = (
            f"Land {item.task_id} ({item.author}) onto {self.onto}\n\n"
            f"wvo-mcp merge queue: {item.commit}"
        )
        if self.options.strategy == "rebase":
            state = self.orchestrator.settings.state_root  # its scratch worktree's owner
            return stacking.rebase_onto(self.git, onto, item.commit, message, state)
        return stacking.merge_onto(self.git, onto, item.commit, message)

    async def verify(self, tip: str, entries: Sequence[Entry]) -> Verdict:
        """Every check `tip` must pass, each on a fresh checkout of exactly it, in the sandbox,
        as many at once as there are slots."""
        tasks = [await self.orchestrator.get_task(item.task_id) for item in entries]
        commands = merge_queue.checks(self.options.check, [t.verify_command for t in tasks])
        results: dict[int, str | VerificationFailed] = {}
        tree = await self.in_repo(self.git.tree_of, tip)

        async def run(index: int, command: str | list[str]) -> None:
            async with self._slots:
                results[index] = await self.gate.check(tip, tree, command, entries)

        async with anyio.create_task_group() as group:
            for index, command in enumerate(commands):
                group.start_soon(run, index, command)
        failed = [r for r in results.values() if isinstance(r, VerificationFailed)]
        lines = "; ".join(r for r in results.values() if isinstance(r, str)) or "no checks"
        if failed:
            project = self.options.check is not None and isinstance(results[0], VerificationFailed)
            kind = check_causes.cause(str(failed[0]), "").kind
            output = check_causes.tail(str(failed[0]), OUTPUT_TAIL)  # its summary line kept
            return Verdict(False, lines, output, project, kind)
        return Verdict(True, lines)

    async def intend(
        self, fence: int, old: str, new: str, tree: str, verdict: Verdict, items: Sequence[Entry]
    ) -> int:
        """The landing written before the target moves: what a killed autopilot left."""
        return await self.db.write(
            partial(
                landing_queue.intend, target=self.key, run=self.run_id, fence=fence, old=old,
                new=new, tree=tree, checks=verdict.checks, ids=[i.id for i in items],
                now=self.now(),
            )
        )  # fmt: skip

    async def complete(self, landing_id: int, new: str) -> None:
        done = await self.db.write(
            partial(landing_queue.complete, settings=self.orchestrator.settings,
                    landing_id=landing_id, now=self.now())
        )  # fmt: skip
        if done:  # the first completion only: a recovered landing is counted once
            self.telemetry.landed(self.key, await self.orchestrator.landed(landing_id))
            where = f"{self.onto} at {new[:12]}" if self.onto else "their branches"
            if self.target.reach is not None and not self.onto:
                where += f" (pushed to {self.target.reach.remote.name})"
            self.say(f"landed {', '.join(done)} onto {where}")
            await self._landed(done)

    async def abandon(self, landing_id: int) -> None:
        """A landing intended that will not land: its entries queue again."""
        await self.db.write(partial(landing_queue.abandon, landing_id=landing_id, now=self.now()))

    async def unstart(self, fence: int, ids: Sequence[int]) -> None:
        """These entries, started, queue again (tested again later)."""
        await self.db.write(partial(landing_queue.unstart, target=self.key, run=self.run_id,
                                    fence=fence, ids=list(ids)))  # fmt: skip

    async def unstart_all(self, fence: int) -> None:
        """Every entry this run started queues again."""
        await self.db.write(partial(landing_queue.unstart_all, target=self.key, run=self.run_id,
                                    fence=fence))  # fmt: skip

    # -- what does not land ------------------------------------------------------------

    async def conflict(
        self, fence: int, item: Entry, found: Conflict, old: str, was: Was = "testing"
    ) -> None:
        persons = await self._persons(item, found.files, old)
        files = ", ".join(found.files[:10]) + (" …" if len(found.files) > 10 else "")
        back = Return(
            summary=f"returned: {self.options.strategy} of {item.commit[:12]} onto "
            f"{self.onto} conflicts in {files}",
            details=(
                f"Your last submission ({item.commit}) conflicts with {self.onto} (at "
                f"{old}, in your repository as branch {self.onto!r}). Bring {self.onto} "
                f"into your work (git {self.options.strategy} {self.onto}), resolve these "
                f"conflicts, commit, run the checks, and submit again.\n\n{found.hunks}"
            ),
            files=found.files,
            target_tip=old,
        )
        await self.send_back(fence, item, back, persons, was=was)

    async def _persons(self, item: Entry, files: Sequence[str], old: str) -> list[str]:
        """Commits a person made on the target since `item` left it that touch `files`: any
        commit there that no landing of the queue brought."""
        fork = await self.in_repo(self.git.merge_base, old, item.commit)
        if fork is None or not files:
            return []
        touching = await self.in_repo(self.git.touching, fork, old, list(files))
        if not touching:
            return []
        ours: set[str] = set()
        for done in await self.db.read(partial(landing_queue.landings_after, target=self.key)):
            if await self.in_repo(self.git.contains, done.new, fork):
                break  # landed before this work began: older ones too
            ours.update(await self.in_repo(self.git.commits, done.old, done.new))
        return [c for c in touching if c not in ours]

    async def fail(
        self, fence: int, item: Entry, verdict: Verdict, old: str | None,
        was: Was = "testing", hold: str | None = None,
    ) -> None:  # fmt: skip
        """A check failed on `item` stacked onto `old` (None: on its own commit): back to a
        worker with its output; held for a person where the check could not run, which is
        no change's fault (the gate fails closed)."""
        back = failed(verdict, old)
        if back.kind in check_causes.CANNOT_RUN:  # the words and the hold: one cause
            hold = hold or f"its check could not run, which no worker can fix ({back.cause})"
        await self.send_back(fence, item, back.back, [], hold=hold, was=was)

    async def land_empty(self, fence: int, item: Entry, old: str) -> None:
        """A submission that changes nothing on the target: done now, with no check, where
        its task says it needs no change (metadata.needs_change: false); else back to its
        worker once, then to a person (merge_queue.empty_done, merge_queue.empty_hold)."""
        task = await self.orchestrator.get_task(item.task_id)
        if not merge_queue.empty_done(task.metadata):
            hold = merge_queue.empty_hold(item.returns)
            await self.send_back(fence, item, empty(self.onto or "its branch", old), [], hold)
            return
        self.say(f"{item.task_id} has nothing to land: its submission changes nothing "
                 f"on {self.onto}, as its task says it needs no change; it is done, with "
                 "no check to wait for")  # fmt: skip
        nothing = Verdict(True, f"nothing to land: the tree of {self.onto} as it is")
        tree = await self.in_repo(self.git.tree_of, old)
        await self.complete(await self.intend(fence, old, old, tree, nothing, [item]), old)

    async def send_back(
        self,
        fence: int,
        item: Entry,
        back: Return,
        persons: Sequence[str],
        hold: str | None = None,
        was: Was = "testing",
    ) -> None:
        """`item` back to a worker with `back`, or held for a person (`hold` says why, or
        merge_queue decides). `was` 'landing': its pull request sent it back."""
        hold = hold or merge_queue.hold_for_person(item.returns, self.options.max_returns, persons)
        try:
            outcome = await self.db.write(
                partial(
                    landing_queue.send_back, settings=self.orchestrator.settings, target=self.key,
                    run=self.run_id, fence=fence, entry_id=item.id, back=back, hold=hold,
                    now=self.now(), was=was,
                )
            )  # fmt: skip
        except LeaseLost:
            raise
        except WvoError as exc:  # a person moved the task meanwhile
            self.say(f"{item.task_id}: {exc}")
            return
        self.telemetry.sent_back(self.key, outcome)
        if outcome == "held":
            self.say(f"{item.task_id} waits for a person in needs_review: {hold}")
        else:
            self.say(f"{item.task_id} {back.summary}")


@dataclass(frozen=True)
class Failed:
    back: Return  # what its worker starts from, if it goes back to one
    cause: str  # what went wrong, in a few words
    kind: str  # its kind (rules/check_causes.py)


def failed(verdict: Verdict, old: str | None) -> Failed:
    """What a failed check on `old` (None: on its own commit) says to a worker, and why."""
    where = "on its own commit" if old is None else "stacked onto the target"
    first = verdict.output.strip().splitlines()[0] if verdict.output.strip() else ""
    found = check_causes.cause(verdict.output, "the project's toolchain")
    said = "".join(f"\n{note}" for note in check_causes.notes(verdict.output))
    fix = NO_TESTS_LEFT if found.kind == "no_tests" else found.fix
    # Said as the change's: "the check fails" alone reads as if the target were red.
    what = f"the change's own failure: {found.what}" if found.kind == "failing" else found.what
    back = Return(
        summary=f"returned: a check failed {where} ({what}): {first}"[:500],
        details=(
            "Your submission failed a check on a clean checkout of the tree that would land "
            f"(what it passed: {verdict.checks}): {what}. Fix: {fix}. Commit, "
            f"and submit again.{said}\n\n{verdict.output}"
        ),
        target_tip=old,
    )
    return Failed(back, f"{what}: {first}"[:500], found.kind)


# A worker's fix for a tree that runs no test (the person's is rules/check_causes').
NO_TESTS_LEFT = (
    "with your change the check finds no test to run, so nothing shows the work is right: "
    "keep the project's tests where its check finds them"
)


def empty(target: str, old: str) -> Return:
    """A submission whose commits change nothing: the work is not in them."""
    return Return(
        summary=f"returned: its submission changes nothing on {target}",
        details=(
            f"Your submission's commits change nothing on {target}: what the task asks for is "
            "not in them. Commit the change, and submit again. (A task that needs no change "
            "says so in its metadata: needs_change: false.)"
        ),
        target_tip=old,
    )
