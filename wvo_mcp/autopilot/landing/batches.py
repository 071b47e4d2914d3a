"""Landing through pull requests in batches (`--forge-batch N`): one pull request, many tasks.

When the forge's limits, not the fleet, bound what lands (GitHub allows 500 content-creating
requests an hour, and every pull request is several counted calls), up to N verified tasks
go out as one pull request: stacked onto the target one after another, each task its own
commit and each issue its own closing line, verified together by the queue, then followed,
reviewed and merged as one, exactly as pull_requests.py follows a pull request of one task.

A batch a required check fails on is halved, as a bisection: its first half stays in the
pull request (stacked again, verified, pushed), the rest queue again, not at fault, for the
next batch; a task the check fails alone goes back to a worker with the check's log, alone.
A review asking for changes closes the batch, and its tasks go out one pull request each,
where a reviewer's changes reach the one worker they are for; so does anything a batch
cannot carry (a person's commit on its branch, a restack that conflicts or fails).

Carries out `rules/pulls.py` (`batch_title`, `batch_body`: what a batch says) for
autopilot/landing/lander.py."""

import time
from collections.abc import Sequence
from dataclasses import replace
from functools import partial

from wvo_mcp.autopilot.landing.pull_requests import POLL_SECONDS, SAFETY_SECONDS, PullRequests
from wvo_mcp.autopilot.landing.steps import Steps
from wvo_mcp.autopilot.landing.target import ForgeReach
from wvo_mcp.errors import Fault, LeaseLost, WvoError
from wvo_mcp.forge import Method, Pull, Requirements
from wvo_mcp.git import Conflict
from wvo_mcp.rules import pulls
from wvo_mcp.rules.text import plain
from wvo_mcp.services import landing_queue
from wvo_mcp.services import pulls as pull_rows
from wvo_mcp.services.landing_queue import Entry, Landing, Return

BRANCH = "wvo-batch/"  # + the landing's id: never a task's branch (wvo/<task>)


class Batches(PullRequests):
    """Pull requests of up to `--forge-batch` tasks each."""

    def __init__(
        self, steps: Steps, reach: ForgeReach, poll: float = POLL_SECONDS,
        safety: float = SAFETY_SECONDS,
    ) -> None:  # fmt: skip
        super().__init__(steps, reach, poll, safety)
        self.size = steps.options.forge_batch
        self._alone: set[str] = set()  # tasks that go out one per pull request now
        self._cannot = ""  # why this branch takes no batch, as last said
        self._items: dict[int, tuple[str, ...]] = {}  # landing id -> the tasks it carries

    # -- going out -------------------------------------------------------------------------

    async def due(self) -> bool:
        """A batch goes out full, or when none is out: while one is, the next fills (the
        fleet outruns the forge), and the pass is worth a fetch only for a look."""
        if self.size <= 1 or not self._items or not self.reach.ready():
            return await super().due()
        queued = await self.steps.db.read(
            partial(landing_queue.head, target=self.steps.key, limit=self.size)
        )
        if len(queued) >= self.size:
            return True
        intents = await self.steps.db.read(partial(landing_queue.intents, target=self.steps.key))
        self._items = {i.id: self._items[i.id] for i in intents if i.id in self._items}
        if intents:
            await self._listen()
        return self._looks_due(intents)

    async def land(self, fence: int, entries: Sequence[Entry]) -> bool:
        if self.size <= 1:  # one task each (this class follows batches left out before)
            return await super().land(fence, entries)
        together: list[Entry] = []
        alone: list[Entry] = []
        for item in entries:
            (alone if await self._goes_alone(item) else together).append(item)
        why = await self._why_not()
        if why != self._cannot and why:
            self.steps.say(f"one task per {self._noun}: {why}")
        self._cannot = why
        if why:
            return await super().land(fence, [*alone, *together])
        intents = await self.steps.db.read(partial(landing_queue.intents, target=self.steps.key))
        self._items = {i.id: self._items[i.id] for i in intents if i.id in self._items}
        wait = bool(self._items) and len(together) < self.size  # one is out: this one fills
        if wait or len(together) > self.size:
            held = together if wait else together[self.size :]
            await self.steps.unstart(fence, [i.id for i in held])
            together = [] if wait else together[: self.size]
        if len(together) < 2:
            alone, together = [*alone, *together], []
        if alone:
            await super().land(fence, alone)
        if together:
            await self._batch(fence, together)
        return True

    async def _goes_alone(self, item: Entry) -> bool:
        """Split from a batch, or carried by a pull request of its own that is still open
        (its next submission updates it)."""
        if item.task_id in self._alone:
            return True
        row = await self.steps.db.read(
            partial(pull_rows.pull_of, target=self.steps.key, task_id=item.task_id)
        )
        return row is not None and row.state == "open" and not row.branch.startswith(BRANCH)

    async def _why_not(self) -> str:
        """Why the branch takes no batch now ('' : it does). A Fault (the forge away) holds
        the queue, as any of its calls does."""
        if self._repo is None:
            self._repo = await self.reach.call(self.forge.repository)
        required = await self._requirements()
        if required.merge_queue:
            return f"the branch merges through the forge's {pulls.queue_name(self.forge.kind)}"
        if not any(m in self._repo.methods for m in self._preferred()):
            return "the repository allows only squash merges, which would make one commit of many"
        return ""

    async def _batch(self, fence: int, items: Sequence[Entry]) -> None:
        """`items` stacked onto the target one after another and verified as one; out as one
        pull request. One that conflicts with those ahead of it, or adds nothing to them,
        goes alone; a batch that fails the queue's check goes out one by one, where the one
        at fault is found."""
        steps = self.steps
        old = await steps.tip()
        tip, stacked = old, []
        for item in items:
            found = await steps.in_repo(steps.stack, tip, item)
            if isinstance(found, Conflict) or found == tip:
                self._alone.add(item.task_id)
                await steps.unstart(fence, [item.id])  # next pass: by itself
                continue
            tip = found
            stacked.append(item)
        if len(stacked) < 2:
            await super().land(fence, stacked)
            return
        verdict = await steps.verify(tip, stacked)
        if not verdict.passed:  # each alone, this once: the one at fault is found
            await super().land(fence, stacked)
            return
        intended = False
        try:
            tree = await steps.in_repo(steps.git.tree_of, tip)
            landing_id = await steps.intend(fence, old, tip, tree, verdict, stacked)
            intended = True
            await self._out(fence, landing_id, stacked, tip, verdict.checks, tree)
        except LeaseLost:
            raise
        except WvoError as exc:
            if not isinstance(exc, Fault):
                steps.say(f"a batch of {len(stacked)} waits: {exc}")
            if not intended:  # else its intent is followed, and published, later
                await steps.unstart(fence, [i.id for i in stacked])

    async def _out(
        self, fence: int, landing_id: int, items: Sequence[Entry], head: str, checks: str,
        tree: str,
    ) -> None:  # fmt: skip
        """`head` onto the batch's own branch and its pull request opened (or, after a
        crash, found and updated)."""
        branch = f"{BRANCH}{landing_id}"
        there = await self._fetch(branch) or ""  # the queue's own: pushed before a crash
        if not await self._push(branch, head, there):
            raise Fault("refused", f"{branch} moved while it was pushed")
        title, body = await self._text(items, checks, tree)
        try:
            found = await self._open(branch, title, body)
        except Fault as exc:
            if exc.kind != "refused":
                raise
            await self._unbatched(fence, landing_id, items, f"the forge refused it ({exc})")
            return
        self._pulls[landing_id] = (found.number, head)
        self._items[landing_id] = tuple(i.task_id for i in items)
        self._next[landing_id] = time.monotonic() + self._spacing()
        await self.steps.db.write(
            partial(pull_rows.batch_opened, target=self.steps.key, run=self.steps.run_id,
                    fence=fence, tasks=[i.task_id for i in items], number=found.number,
                    url=found.url, branch=branch, head=head, landing_id=landing_id,
                    now=self.steps.now())
        )  # fmt: skip
        ids = ", ".join(i.task_id for i in items)
        self.steps.say(f"{ids}: {self._named(found.number)} carries them: {found.url}")

    async def _text(self, items: Sequence[Entry], checks: str, tree: str) -> tuple[str, str]:
        summaries = [await self._summary(i, checks, tree) for i in items]
        return pulls.batch_title(summaries), pulls.batch_body(summaries, self.forge.kind)

    async def _out_again(self, fence: int, intent: Landing, items: Sequence[Entry]) -> None:
        if len(items) == 1:
            await super()._out_again(fence, intent, items)
        else:
            await self._out(fence, intent.id, items, intent.new, intent.checks, intent.tree)

    # -- following -------------------------------------------------------------------------

    async def _act(
        self, fence: int, intent: Landing, items: Sequence[Entry], pull: Pull,
        next_: pulls.Next, required: Requirements,
    ) -> bool:  # fmt: skip
        batch = pull.branch.startswith(BRANCH)
        if batch:  # one is out (found again after a restart): the next fills meanwhile
            self._items[intent.id] = tuple(i.task_id for i in items)
        kind = next_.kind
        if batch and kind == "closed" and not pull.merged:  # by the queue, or by a person
            await self._unbatched(fence, intent.id, items, f"{self._named(pull.number)} was "
                                  "closed unmerged")  # fmt: skip
            return True
        if batch and kind == "ready" and required.merge_queue and len(items) > 1:
            queue = pulls.queue_name(self.forge.kind)
            why = f"the branch merges through the forge's {queue} now"
            return await self._split(fence, intent, items, pull, why)
        if not batch or (kind in ("waiting", "ready", "landed") and len(items) == 1):
            return await super()._act(fence, intent, items, pull, next_, required)
        if kind in ("failed", "changes") and len(items) == 1:
            return await self._back(fence, intent, items[0], pull, next_)
        if kind == "failed":
            return await self._halve(fence, intent, items, pull, next_)
        if kind == "changes":
            assert next_.review is not None
            return await self._split(fence, intent, items, pull,
                                     f"{next_.review.author} asked for changes")  # fmt: skip
        if kind == "moved":
            return await self._split(fence, intent, items, pull,
                                     "its branch has a commit the queue did not push (kept "
                                     "there)")  # fmt: skip
        if kind == "behind":
            return await self._restacked(fence, intent, items, pull)
        return await super()._act(fence, intent, items[:1], pull, next_, required)

    def _preferred(self, intent: Landing | None = None) -> tuple[Method, ...]:
        """A batch's (None: one's to come) never squash: each task lands as its own commit."""
        found = super()._preferred(intent)
        many = intent is None or len(self._items.get(intent.id, ())) > 1
        return tuple(m for m in found if m != "squash") if many else found

    def _merge_title(self, intent: Landing, item: Entry, pull: Pull) -> str:
        many = len(self._items.get(intent.id, ()))
        if many <= 1:
            return super()._merge_title(intent, item, pull)
        return (f"Land {many} tasks onto {self.steps.onto} "
                f"({pulls.reference(pull.number, self.forge.kind)})")  # fmt: skip

    async def _waits(
        self, intent: Landing, item: Entry, pull: Pull | pull_rows.PullRow, why: str
    ) -> None:
        """What the batch waits for, on each of its tasks' rows (the views show each)."""
        if self._said.get(intent.id) == why:
            return
        await super()._waits(intent, item, pull, why)
        for task_id in self._items.get(intent.id, ())[1:]:
            await self.steps.db.write(
                partial(pull_rows.pull_waits, target=self.steps.key, task_id=task_id,
                        waiting=why, now=self.steps.now())
            )  # fmt: skip

    async def _landed(self, intent: Landing, item: Entry, pull: Pull) -> bool:
        """Merged: every task it carries is, once."""
        carried = await self.steps.db.read(partial(landing_queue.entries_of, landing_id=intent.id))
        done = await super()._landed(intent, item, pull)
        for each in carried:
            await self.steps.db.write(
                partial(pull_rows.pull_ended, target=self.steps.key, task_id=each.task_id,
                        state="merged", now=self.steps.now())
            )  # fmt: skip
        self._items.pop(intent.id, None)
        return done

    async def _halve(
        self, fence: int, intent: Landing, items: Sequence[Entry], pull: Pull, next_: pulls.Next
    ) -> bool:
        """A required check failed on the batch: its first half stays (stacked on the tip,
        verified, pushed), the rest queue again for the next batch."""
        steps = self.steps
        keep, drop = items[: (len(items) + 1) // 2], items[(len(items) + 1) // 2 :]
        tip = await steps.tip()
        head = tip
        for item in keep:
            found = await steps.in_repo(steps.stack, head, item)
            if isinstance(found, Conflict) or found == head:
                return await self._split(fence, intent, items, pull, next_.why)
            head = found
        verdict = await steps.verify(head, keep)
        if not verdict.passed:
            return await self._split(fence, intent, items, pull, next_.why)
        if not await self._push(pull.branch, head, pull.head):
            self._at_once(intent.id)  # someone pushed meanwhile: looked at again
            return False
        tree = await steps.in_repo(steps.git.tree_of, head)
        # Its text first (the dropped tasks' closing lines gone): should the write below be
        # lost, the next look finds its head moved and splits it, never merging that text.
        title, body = await self._text(keep, verdict.checks, tree)
        await self.reach.call(self.forge.edit, pull.number, title, body)
        await steps.db.write(
            partial(pull_rows.batch_narrowed, target=steps.key, run=steps.run_id, fence=fence,
                    landing_id=intent.id, kept=[i.task_id for i in keep],
                    dropped=[(i.id, i.task_id) for i in drop], old=tip, new=head, tree=tree,
                    checks=verdict.checks, now=steps.now())
        )  # fmt: skip
        kept, dropped = ", ".join(i.task_id for i in keep), ", ".join(i.task_id for i in drop)
        said = (f"{plain(next_.why)} on this batch of {len(items)}: it carries its first "
                f"{len(keep)} now ({kept}), verified again; {dropped} queue again for the next "
                "batch.")  # fmt: skip
        await self.reach.call(self.forge.comment_pull, pull.number, f"The merge queue: {said}")
        steps.say(f"{self._named(pull.number)}: {said}")
        self._items[intent.id] = tuple(i.task_id for i in keep)
        self._pulls[intent.id] = (pull.number, head)
        self._soon(intent.id)
        return True

    async def _restacked(
        self, fence: int, intent: Landing, items: Sequence[Entry], pull: Pull
    ) -> bool:
        """The target moved past the batch: stacked onto its tip (each task's commit kept),
        verified and pushed; split where it conflicts or fails."""
        steps = self.steps
        tip = await steps.tip()
        found = await steps.in_repo(steps.stack, tip, _carrying(items[0], pull.head))
        why = f"restacked onto {steps.onto}, it"
        if isinstance(found, Conflict):
            return await self._split(fence, intent, items, pull, f"{why} conflicts")
        verdict = await steps.verify(found, items)
        if not verdict.passed:
            return await self._split(fence, intent, items, pull, f"{why} fails the checks")
        if not await self._push(pull.branch, found, pull.head):
            self._at_once(intent.id)
            return False
        tree = await steps.in_repo(steps.git.tree_of, found)
        await steps.db.write(  # at once: the head is the queue's, whatever the text
            partial(pull_rows.batch_narrowed, target=steps.key, run=steps.run_id, fence=fence,
                    landing_id=intent.id, kept=[i.task_id for i in items], dropped=[],
                    old=tip, new=found, tree=tree, checks=verdict.checks, now=steps.now())
        )  # fmt: skip
        title, body = await self._text(items, verdict.checks, tree)
        await self.reach.call(self.forge.edit, pull.number, title, body)
        self._pulls[intent.id] = (pull.number, found)
        self._soon(intent.id)
        self._lead = intent.id
        self._behind.discard(intent.id)
        steps.say(f"{self._named(pull.number)}: {steps.onto} moved; restacked onto {tip[:12]}")
        return True

    async def _split(
        self, fence: int, intent: Landing, items: Sequence[Entry], pull: Pull, why: str
    ) -> bool:
        """The batch closed unmerged: its tasks queue again, each to go out alone."""
        said = (f"{plain(why)}: this batch is closed, and each of its tasks goes out in a "
                f"{self._noun} of its own.")  # fmt: skip
        # Closed first: should the process die before the write, the next look finds it
        # closed and splits it then (never a batch left open with nobody following it).
        await self.reach.call(self.forge.comment_pull, pull.number, f"The merge queue: {said}")
        await self.reach.call(self.forge.close, pull.number)
        await self._unbatched(fence, intent.id, items, why)
        return True

    async def _unbatched(
        self, fence: int, landing_id: int, items: Sequence[Entry], why: str
    ) -> None:
        """The batch will not merge: its tasks queue again, each to go out alone."""
        steps = self.steps
        self._alone.update(i.task_id for i in items)
        await steps.db.write(
            partial(pull_rows.batch_split, target=steps.key, run=steps.run_id, fence=fence,
                    landing_id=landing_id, tasks=[i.task_id for i in items],
                    why=f"queued again, alone: {why}"[:500], now=steps.now())
        )  # fmt: skip
        steps.say(f"{', '.join(i.task_id for i in items)}: queued again, each alone: {why}")
        self._items.pop(landing_id, None)
        self._forget(landing_id)

    async def _back(
        self, fence: int, intent: Landing, item: Entry, pull: Pull, next_: pulls.Next
    ) -> bool:
        """The last task of a batch, failed or asked changes of alone: back to a worker, and
        the batch closed (its next submission goes out anew)."""
        steps = self.steps
        summary, details, files = pulls.returned(next_, pull, self.forge.kind)
        said = f"{plain(next_.why)}: {item.task_id} went back to a worker"
        told = f"The merge queue: {said}; its next submission goes out anew."
        await self.reach.call(self.forge.comment_pull, pull.number, told)
        await self.reach.call(self.forge.close, pull.number)  # first, as _split's
        await steps.send_back(fence, item, Return(summary, details, files, await steps.tip()),
                              [], was="landing")  # fmt: skip
        await steps.db.write(
            partial(pull_rows.pull_ended, target=steps.key, task_id=item.task_id,
                    state="closed", now=steps.now(), waiting=f"with a worker: {summary}")
        )  # fmt: skip
        self._items.pop(intent.id, None)
        self._forget(intent.id)
        return True


def _carrying(item: Entry, head: str) -> Entry:
    """`item` as the stack of everything its batch's `head` carries."""
    return replace(item, commit=head)
