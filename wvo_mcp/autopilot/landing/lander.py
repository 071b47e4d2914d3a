"""The merge queue's landing step: take the head of a target's queue, stack it onto the
target (git's own merge or rebase, in our repository), verify the stacked tip on a clean
checkout in the sandbox, and move the target to it with a compare-and-swap. A failing batch
is bisected so the others land; a conflict or a failure goes back to a worker with what
went wrong, or to a person when it must.

Through pull requests (`--via pull-request`), what passes goes out as a pull request per
task and lands when the forge merges it (autopilot/landing/pull_requests.py's Proposer).

The queue is rows (services/landing.py): a lease with a fence says who lands a target, and
each landing is written as an intent before the ref moves, so an autopilot killed at any
moment loses nothing and the next one completes or abandons what it finds, never twice."""

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Literal, TypeVar

import anyio

from wvo_mcp.autopilot.landing.gate import Gate
from wvo_mcp.autopilot.landing.pull_requests import Proposer
from wvo_mcp.autopilot.landing.target import Target
from wvo_mcp.errors import Fault, LeaseLost, ValidationFailed, VerificationFailed, WvoError
from wvo_mcp.git import Blocked, Conflict, Git, branch_name, stacking, trees
from wvo_mcp.git.remote import task_ref
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import check_causes, merge_queue
from wvo_mcp.services import landing
from wvo_mcp.services.landing import Entry, Return
from wvo_mcp.telemetry import Telemetry

T = TypeVar("T")
Strategy = Literal["leave", "merge", "rebase"]
Was = Literal["testing", "landing"]
TARGET_SECONDS = 60  # a target's lease: renewed while its holder lives
OUTPUT_TAIL = 4000  # of a failing check, in the checkpoint the next worker starts from


@dataclass(frozen=True)
class Options:
    strategy: Strategy = "leave"
    check: str | None = None  # a project-wide check every landing tree must pass
    batch: int = 4  # entries tested as one
    slots: int = 2  # checks run at once
    max_returns: int = 3  # returns to a worker before a person is asked
    poll: float = 10.0  # --via pull-request: seconds between two looks at a pull request


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


class Lander:
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
        self._held = ""  # why the target's checked-out working tree holds its landing
        self._fetched_at = -float("inf")  # when a remote target's tip was last fetched
        # --via pull-request: what lands goes out as pull requests, followed until merged.
        self.gate = Gate(orchestrator, partial(self._git, trees.materialize, git), self.key,
                         self.onto, self.tip if target.branch else None, say)  # fmt: skip
        self.proposer = None if target.forge is None else Proposer(self, target.forge,
                                                                    options.poll)  # fmt: skip

    async def _git(self, fn: Callable[..., T], *args: object) -> T:
        return await self._in_repo(fn, *args)  # type: ignore[return-value]

    def _now(self) -> datetime:
        return self.orchestrator.clock()

    # -- one pass ----------------------------------------------------------------------

    async def pending(self) -> bool:
        """Whether the target has entries queued, being tested or landing."""
        return self.key in await self.db.read(landing.queued_targets)

    async def base(self, commit: str) -> Verdict:
        """The project's check alone on `commit` (a target's tip, a submission's base), run
        once per commit: what tells a red target from a change that broke it."""
        found = self._bases.get(commit)
        if found is None:
            found = self._bases[commit] = await self._verify(commit, [])
        return found

    async def tip(self) -> str:
        """The target's tip as last read (for a remote: as last fetched)."""
        found = await self._git(self.git.ref_tip, self.target.ref)
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

    async def _due(self) -> bool:
        """Through pull requests, a pass is worth its fetch only with a submission queued
        or a pull request due for another look (their polls are spaced)."""
        if self.proposer is None:
            return True
        if not self.proposer.reach.ready():
            return False  # the forge holds the queue: asked again after its back-off
        if await self.db.read(partial(landing.head, target=self.key, limit=1)):
            return True
        return self.proposer.due(await self.db.read(partial(landing.intents, target=self.key)))

    async def land(self) -> bool:
        """Land what heads the queue, one batch; True if there may be more to do now."""
        if not await self.pending() or not await self._due() or not await self.refresh():
            return False  # nothing to hold the target for now, or its remote is away
        if self.red is not None and self.target.branch:
            if await self.tip() == self.red.commit:
                return False  # still red: the queue holds until a person fixes the target
            self.red = None
            self.say(f"{self.onto} moved: landing again")
        now = self._now()
        until = now + timedelta(seconds=TARGET_SECONDS)
        fence = await self.db.write(
            partial(landing.hold_target, target=self.key, run=self.run_id, until=until, now=now)
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
                entries = await self.db.read(
                    partial(landing.head, target=self.key, limit=max(1, self.options.batch))
                )
                if not entries:
                    return moved
                ids = [e.id for e in entries]
                await self.db.write(partial(landing.start, target=self.key, run=self.run_id,
                                            fence=fence, ids=ids))  # fmt: skip
                try:
                    entries = await self._bring(fence, entries)
                    if not entries:
                        return True
                    if self.proposer is not None:
                        return await self.proposer.propose(fence, entries)
                    if self.target.branch:
                        return await self._batch(fence, entries)
                    return await self._each(fence, entries)
                except Fault:  # the remote or forge went away mid-batch (said once): it waits
                    await self.db.write(partial(landing.unstart_all, target=self.key,
                                                run=self.run_id, fence=fence))  # fmt: skip
                    return False
                except WvoError as exc:  # git or the sandbox failed us: the batch waits
                    self.say(f"landing onto {self.onto or 'their branches'} failed: {exc}")
                    await self.db.write(partial(landing.unstart_all, target=self.key,
                                                run=self.run_id, fence=fence))  # fmt: skip
                    return False
        except LeaseLost as exc:
            self.say(f"landing paused: {exc}")
            # A batch a person broke up (or one this lander no longer holds) queues again.
            with contextlib.suppress(LeaseLost):
                await self.db.write(partial(landing.unstart_all, target=self.key,
                                            run=self.run_id, fence=fence))  # fmt: skip
            return False

    async def _bring(self, fence: int, entries: Sequence[Entry]) -> list[Entry]:
        """The entries whose commits are here: another host's submissions fetched from the
        remote (raises Fault while it is away). One whose ref there no longer names its
        commit (a person moved it) goes to a person."""
        here = []
        reach = self.target.reach
        for item in entries:
            if reach is None or await self._git(self.git.has_commit, item.commit):
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
            await self._send_back(fence, item, back, [], hold="its ref on the remote moved")
        return here

    @contextlib.asynccontextmanager
    async def _holding(self, fence: int) -> AsyncIterator[None]:
        """The target's lease renewed while checks run for minutes."""

        async def renew() -> None:
            while True:
                await anyio.sleep(TARGET_SECONDS / 3)
                until = self._now() + timedelta(seconds=TARGET_SECONDS)
                await self.db.write(partial(landing.renew_target, target=self.key,
                                            run=self.run_id, fence=fence, until=until))  # fmt: skip

        async with anyio.create_task_group() as group:
            group.start_soon(renew)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    async def _recover(self, fence: int) -> bool | None:
        """Landings a killed autopilot intended (or one held by the target's working tree):
        completed if the target got there (or still can), else abandoned and their entries
        queued again. Never landed twice: the ref moves only from the intent's `old`. None
        while one is held. Through pull requests, each is followed instead (True: one moved)
        unless the target has it already (a person pushed it there)."""
        moved = False
        for found in await self.db.read(partial(landing.intents, target=self.key)):
            if self.proposer is not None:
                tip = await self.tip()
                if not (tip == found.new or await self._git(self.git.contains, found.new, tip)):
                    moved = await self.proposer.follow(fence, found) or moved
                    continue
                await self.proposer.reached(found)  # a person brought it onto the target
            elif found.old:
                tip = await self.tip()
                there = tip == found.new or await self._git(self.git.contains, found.new, tip)
                # Another host's stacked commit, never pushed, is not here: abandoned.
                known = await self._git(self.git.has_commit, found.new)
                if not there and tip == found.old and known:
                    went = await self._move(found.new, tip)
                    if went is None:
                        return None
                    there = went
                if not there:
                    await self.db.write(partial(landing.abandon, landing_id=found.id,
                                                now=self._now()))  # fmt: skip
                    continue
            await self._complete(found.id, found.new)
            moved = True
        return moved

    async def _move(self, new: str, old: str) -> bool | None:
        """The target moved from `old` to `new` (True), or found moved elsewhere (False);
        None: held, its checked-out working tree would lose something, or its remote is
        away (said once). The landing's intent stays, and a later pass completes it
        (_recover)."""
        reach = self.target.reach
        if reach is not None:
            try:  # a compare-and-swap on the remote: only from `old`, which `new` contains
                return await reach.call(reach.remote.land, self.target.branch, new, old)
            except Fault:
                return None
        try:
            moved = await self._git(self.git.move_branch, self.target.branch, new, old)
        except Blocked as exc:
            if str(exc) != self._held:
                self.say(f"landing onto {self.onto} waits: {exc}")
            self._held = str(exc)
            return None
        if moved and self._held:
            self.say(f"{self.onto}'s working tree is clean again: landing")
            self._held = ""
        return moved

    async def _complete(self, landing_id: int, new: str) -> None:
        done = await self.db.write(
            partial(landing.complete, settings=self.orchestrator.settings,
                    landing_id=landing_id, now=self._now())
        )  # fmt: skip
        if done:  # the first completion only: a recovered landing is counted once
            self.telemetry.landed(self.key, await self.orchestrator.landed(landing_id))
            where = f"{self.onto} at {new[:12]}" if self.onto else "their branches"
            if self.target.reach is not None and not self.onto:
                where += f" (pushed to {self.target.reach.remote.name})"
            self.say(f"landed {', '.join(done)} onto {where}")
            await self._landed(done)

    # -- --merge leave: each entry verified on its own commit ------------------------------

    async def _each(self, fence: int, entries: Sequence[Entry]) -> bool:
        async def one(item: Entry) -> None:
            known = self._bases.get(item.base)
            if known is not None and not known.passed:
                held.append(item.id)  # its base is red: nothing to learn from running it
                return
            verdict = await self._verify(item.commit, [item])
            if not verdict.passed and verdict.project_failed:
                base = await self.base(item.base)
                if not base.passed:
                    held.append(item.id)
                    self._turned_red(item.base, base)
                    return
            if not verdict.passed:
                await self._fail(fence, item, verdict, None)
                return
            pushed = await self._push_branch(fence, item)
            if not pushed:
                held.extend([item.id] if pushed is None else [])  # None: the remote is away
                return
            tree = await self._git(self.git.tree_of, item.commit)
            landing_id = await self._intend(fence, "", item.commit, tree, verdict, [item])
            await self._complete(landing_id, item.commit)

        held: list[int] = []
        async with anyio.create_task_group() as group:
            for item in entries:
                group.start_soon(one, item)
        if held:
            await self.db.write(partial(landing.unstart, target=self.key, run=self.run_id,
                                        fence=fence, ids=held))  # fmt: skip
        return len(held) < len(entries)

    async def _push_branch(self, fence: int, item: Entry) -> bool | None:
        """--push: the verified commit onto the remote's wvo/<task>, never over commits it
        does not have (False: it went to a person). None: the remote is away; it waits."""
        reach = self.target.reach
        if reach is None:
            return True
        branch = branch_name(item.task_id)
        try:
            pushed = await reach.call(reach.remote.push, [f"{item.commit}:refs/heads/{branch}"])
        except Fault:
            return None
        result = pushed.get(f"refs/heads/{branch}")
        if result is not None and not result.ok:
            back = Return(f"returned: {branch} on the remote has commits it does not have "
                          f"({result.summary})", "")  # fmt: skip
            await self._send_back(fence, item, back, [], hold="someone pushed to its branch")
            return False
        return True

    # -- a target branch: stack, verify, bisect, move -------------------------------------

    async def _batch(self, fence: int, entries: Sequence[Entry]) -> bool:
        old = await self.tip()
        stacked: list[tuple[Entry, str]] = []
        tip = old
        for item in entries:
            found = await self._git(self._stack, tip, item)
            if isinstance(found, Conflict):
                await self._conflict(fence, item, found, old)
            elif found == old or (found == tip and await self._git(self._stack, old, item) == old):
                await self._nothing(fence, item, old)
            else:
                if found == tip:  # no empty commit is made: the target moves not for it
                    self.say(
                        f"{item.task_id} has nothing to land: what it changes is in the batch "
                        f"ahead of it on {self.onto}; it is done when its batch lands"
                    )
                tip = found
                stacked.append((item, tip))
        if not stacked:
            return True
        verdicts: dict[int, Verdict] = {len(stacked): await self._prefix(stacked, len(stacked))}
        whole = verdicts[len(stacked)]
        if not whole.passed and whole.project_failed:
            base = await self.base(old)
            if not base.passed:  # red before any of it: it waits, no worker is charged
                self._turned_red(old, base)
                ids = [i.id for i, _ in stacked]
                await self.db.write(partial(landing.unstart, target=self.key, run=self.run_id,
                                            fence=fence, ids=ids))  # fmt: skip
                return False
        good, bad = (len(stacked), len(stacked) + 1) if verdicts[len(stacked)].passed else (
            0, len(stacked))  # fmt: skip
        while bad - good > 1:
            points = merge_queue.probes(good, bad, self.options.slots)
            async with anyio.create_task_group() as group:
                for n in points:
                    group.start_soon(self._probe, stacked, n, verdicts)
            good, bad = merge_queue.narrow(good, bad, {n: verdicts[n].passed for n in points})
        rest = [item for item, _ in stacked[bad:]]  # after the culprit: tested again later
        if good:
            items = [item for item, _ in stacked[:good]]
            new = stacked[good - 1][1]
            tree = await self._git(self.git.tree_of, new)
            landing_id = await self._intend(fence, old, new, tree, verdicts[good], items)
            moved = await self._move(new, old)
            if moved:
                await self._complete(landing_id, new)
            elif moved is False:  # a person moved the target: everything is stacked again
                await self.db.write(partial(landing.abandon, landing_id=landing_id,
                                            now=self._now()))  # fmt: skip
                self.say(f"{self.onto} moved while its batch was verified: stacking again")
                rest = [item for item, _ in stacked[good:]]
                bad = len(stacked) + 1
        if bad <= len(stacked):
            culprit, _ = stacked[bad - 1]
            await self._fail(fence, culprit, verdicts[bad], old)
        if rest:
            await self.db.write(partial(landing.unstart, target=self.key, run=self.run_id,
                                        fence=fence, ids=[i.id for i in rest]))  # fmt: skip
        return True

    def _turned_red(self, commit: str, verdict: Verdict) -> None:
        where = f"{self.onto} at {commit[:12]}" if self.onto else f"base {commit[:12]}"
        if self.red is None or self.red.commit != commit:
            found = check_causes.cause(verdict.output, "the project's toolchain")
            self.say(
                f"the target is red: {where} fails the project's check by itself "
                f"({found.what}), so no submission can land on it; the queue holds (no worker "
                f"is charged) until it is fixed. Fix: {found.fix}.\n{verdict.output[-OUTPUT_TAIL:]}"
            )
        self.red = Red(self.onto, commit, verdict.output[-OUTPUT_TAIL:])

    def _stack(self, onto: str, item: Entry) -> str | Conflict:
        message = (
            f"Land {item.task_id} ({item.author}) onto {self.onto}\n\n"
            f"wvo-mcp merge queue: {item.commit}"
        )
        if self.options.strategy == "rebase":
            state = self.orchestrator.settings.state_root  # its scratch worktree's owner
            return stacking.rebase_onto(self.git, onto, item.commit, message, state)
        return stacking.merge_onto(self.git, onto, item.commit, message)

    async def _probe(
        self, stacked: list[tuple[Entry, str]], n: int, into: dict[int, Verdict]
    ) -> None:
        into[n] = await self._prefix(stacked, n)

    async def _prefix(self, stacked: list[tuple[Entry, str]], n: int) -> Verdict:
        return await self._verify(stacked[n - 1][1], [item for item, _ in stacked[:n]])

    async def _verify(self, tip: str, entries: Sequence[Entry]) -> Verdict:
        """Every check `tip` must pass, each on a fresh checkout of exactly it, in the sandbox,
        as many at once as there are slots."""
        tasks = [await self.orchestrator.get_task(item.task_id) for item in entries]
        commands = merge_queue.checks(self.options.check, [t.verify_command for t in tasks])
        results: dict[int, str | VerificationFailed] = {}
        tree = await self._git(self.git.tree_of, tip)

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

    async def _intend(
        self, fence: int, old: str, new: str, tree: str, verdict: Verdict, items: Sequence[Entry]
    ) -> int:
        return await self.db.write(
            partial(
                landing.intend, target=self.key, run=self.run_id, fence=fence, old=old,
                new=new, tree=tree, checks=verdict.checks, ids=[i.id for i in items],
                now=self._now(),
            )
        )  # fmt: skip

    # -- what does not land ------------------------------------------------------------

    async def _conflict(
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
        await self._send_back(fence, item, back, persons, was=was)

    async def _persons(self, item: Entry, files: Sequence[str], old: str) -> list[str]:
        """Commits a person made on the target since `item` left it that touch `files`: any
        commit there that no landing of the queue brought."""
        fork = await self._git(self.git.merge_base, old, item.commit)
        if fork is None or not files:
            return []
        touching = await self._git(self.git.touching, fork, old, list(files))
        if not touching:
            return []
        ours: set[str] = set()
        for done in await self.db.read(partial(landing.landings_after, target=self.key)):
            if await self._git(self.git.contains, done.new, fork):
                break  # landed before this work began: older ones too
            ours.update(await self._git(self.git.commits, done.old, done.new))
        return [c for c in touching if c not in ours]

    async def _fail(
        self, fence: int, item: Entry, verdict: Verdict, old: str | None,
        was: Was = "testing", hold: str | None = None,
    ) -> None:  # fmt: skip
        """A check failed on `item` stacked onto `old` (None: on its own commit): back to a
        worker with its output; held for a person where the check could not run, which is
        no change's fault (the gate fails closed)."""
        back = _failed(verdict, old)
        if back.kind in check_causes.CANNOT_RUN:  # the words and the hold: one cause
            hold = hold or f"its check could not run, which no worker can fix ({back.cause})"
        await self._send_back(fence, item, back.back, [], hold=hold, was=was)

    async def _nothing(self, fence: int, item: Entry, old: str) -> None:
        """A submission that changes nothing on the target: done now, with no check, where
        its task says it needs no change (metadata.needs_change: false); else back to its
        worker once, then to a person."""
        task = await self.orchestrator.get_task(item.task_id)
        if task.metadata.get("needs_change") is not False:
            hold = "its submission changed nothing again" if item.returns else None
            await self._send_back(fence, item, _empty(self.onto or "its branch", old), [], hold)
            return
        self.say(f"{item.task_id} has nothing to land: its submission changes nothing "
                 f"on {self.onto}, as its task says it needs no change; it is done, with "
                 "no check to wait for")  # fmt: skip
        nothing = Verdict(True, f"nothing to land: the tree of {self.onto} as it is")
        tree = await self._git(self.git.tree_of, old)
        await self._complete(await self._intend(fence, old, old, tree, nothing, [item]), old)

    async def refuse(self, task_id: str, back: Return) -> None:
        """A submission refused before it was taken (its commits change the state folder):
        a failed attempt, the next one starting from `back`; it never joins the queue."""
        try:
            await self.db.write(
                partial(landing.refuse, settings=self.orchestrator.settings, task_id=task_id,
                        back=back, now=self._now())
            )  # fmt: skip
        except WvoError as exc:  # a person moved the task meanwhile
            self.say(f"{task_id}: {exc}")
            return
        self.say(f"{task_id} {back.summary}")

    async def _send_back(
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
                    landing.send_back, settings=self.orchestrator.settings, target=self.key,
                    run=self.run_id, fence=fence, entry_id=item.id, back=back, hold=hold,
                    now=self._now(), was=was,
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


@dataclass(frozen=True)
class Failed:
    back: Return  # what its worker starts from, if it goes back to one
    cause: str  # what went wrong, in a few words
    kind: str  # its kind (rules/check_causes.py)


def _failed(verdict: Verdict, old: str | None) -> Failed:
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


def _empty(target: str, old: str) -> Return:
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
