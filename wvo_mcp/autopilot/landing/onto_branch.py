"""Landing onto a branch (`--onto main`, `--onto origin/main`): a batch stacked, bisected, moved.

The queue's head is stacked onto the target's tip one entry after another and verified as
one tree; a failing batch is bisected so the entries before the culprit land, and the
target moves to what passed with a compare-and-swap from the tip it was stacked on (on a
remote: a push with a lease). A red target (its base failing the check alone) holds the
queue with no worker charged (`OntoBranch.land`, then `Steps.turned_red`).

Carries out `rules/merge_queue.py` (`probes` and `narrow`: which prefixes a bisection
verifies next)."""

from collections.abc import Sequence

import anyio

from wvo_mcp.autopilot.landing.steps import Steps, Verdict
from wvo_mcp.errors import Fault
from wvo_mcp.git import Blocked, Conflict
from wvo_mcp.rules import merge_queue
from wvo_mcp.services.landing_queue import Entry, Landing


class OntoBranch:
    """The strategy for a target branch, local or remote."""

    def __init__(self, steps: Steps) -> None:
        self.steps = steps
        self._held = ""  # why the target's checked-out working tree holds its landing

    async def due(self) -> bool:
        return True

    async def land(self, fence: int, entries: Sequence[Entry]) -> bool:
        """The entries stacked onto the target's tip and verified as one; the longest prefix
        that passes lands, the culprit after it goes back, the rest queue again."""
        steps = self.steps
        old = await steps.tip()
        stacked: list[tuple[Entry, str]] = []
        tip = old
        stack = steps.stack  # each run through in_repo, off the event loop
        for item in entries:
            found = await steps.in_repo(stack, tip, item)
            if isinstance(found, Conflict):
                await steps.conflict(fence, item, found, old)
            elif found == old or (found == tip and await steps.in_repo(stack, old, item) == old):
                await steps.land_empty(fence, item, old)
            else:
                if found == tip:  # no empty commit is made: the target moves not for it
                    steps.say(
                        f"{item.task_id} has nothing to land: what it changes is in the batch "
                        f"ahead of it on {steps.onto}; it is done when its batch lands"
                    )
                tip = found
                stacked.append((item, tip))
        if not stacked:
            return True
        verdicts: dict[int, Verdict] = {len(stacked): await self._prefix(stacked, len(stacked))}
        whole = verdicts[len(stacked)]
        if not whole.passed and whole.project_failed:
            base = await steps.base(old)
            if not base.passed:  # red before any of it: it waits, no worker is charged
                steps.turned_red(old, base)
                await steps.unstart(fence, [i.id for i, _ in stacked])
                return False
        good, bad = (len(stacked), len(stacked) + 1) if verdicts[len(stacked)].passed else (
            0, len(stacked))  # fmt: skip
        while bad - good > 1:
            points = merge_queue.probes(good, bad, steps.options.slots)
            async with anyio.create_task_group() as group:
                for n in points:
                    group.start_soon(self._probe, stacked, n, verdicts)
            good, bad = merge_queue.narrow(good, bad, {n: verdicts[n].passed for n in points})
        rest = [item for item, _ in stacked[bad:]]  # after the culprit: tested again later
        if good:
            items = [item for item, _ in stacked[:good]]
            new = stacked[good - 1][1]
            tree = await steps.in_repo(steps.git.tree_of, new)
            landing_id = await steps.intend(fence, old, new, tree, verdicts[good], items)
            moved = await self.move(new, old)
            if moved:
                await steps.complete(landing_id, new)
            elif moved is False:  # a person moved the target: everything is stacked again
                await steps.abandon(landing_id)
                steps.say(f"{steps.onto} moved while its batch was verified: stacking again")
                rest = [item for item, _ in stacked[good:]]
                bad = len(stacked) + 1
        if bad <= len(stacked):
            culprit, _ = stacked[bad - 1]
            await steps.fail(fence, culprit, verdicts[bad], old)
        if rest:
            await steps.unstart(fence, [i.id for i in rest])
        return True

    async def _probe(
        self, stacked: list[tuple[Entry, str]], n: int, into: dict[int, Verdict]
    ) -> None:
        into[n] = await self._prefix(stacked, n)

    async def _prefix(self, stacked: list[tuple[Entry, str]], n: int) -> Verdict:
        return await self.steps.verify(stacked[n - 1][1], [item for item, _ in stacked[:n]])

    async def move(self, new: str, old: str) -> bool | None:
        """The target moved from `old` to `new` (True), or found moved elsewhere (False);
        None: held, its checked-out working tree would lose something, or its remote is
        away (said once). The landing's intent stays, and a later pass completes it
        (resume)."""
        steps = self.steps
        reach = steps.target.reach
        if reach is not None:
            try:  # a compare-and-swap on the remote: only from `old`, which `new` contains
                return await reach.call(reach.remote.land, steps.target.branch, new, old)
            except Fault:
                return None
        try:
            moved = await steps.in_repo(steps.git.move_branch, steps.target.branch, new, old)
        except Blocked as exc:
            if str(exc) != self._held:
                steps.say(f"landing onto {steps.onto} waits: {exc}")
            self._held = str(exc)
            return None
        if moved and self._held:
            steps.say(f"{steps.onto}'s working tree is clean again: landing")
            self._held = ""
        return moved

    async def resume(self, fence: int, intent: Landing) -> bool | None:
        """A landing a killed autopilot intended (or one held by the target's working tree):
        completed if the target got there (or still can), else abandoned and its entries
        queued again. Never landed twice: the ref moves only from the intent's `old`."""
        steps = self.steps
        if intent.old:
            tip = await steps.tip()
            there = tip == intent.new or await steps.in_repo(steps.git.contains, intent.new, tip)
            # Another host's stacked commit, never pushed, is not here: abandoned.
            known = await steps.in_repo(steps.git.has_commit, intent.new)
            if not there and tip == intent.old and known:
                went = await self.move(intent.new, tip)
                if went is None:
                    return None
                there = went
            if not there:
                await steps.abandon(intent.id)
                return False
        await steps.complete(intent.id, intent.new)
        return True
