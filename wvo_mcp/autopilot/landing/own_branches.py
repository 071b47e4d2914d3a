"""Landing onto each task's own branch (`--merge leave`): each entry verified on its own commit.

Nothing is stacked and no shared target moves: an entry that passes its checks on its own
commit is done (with `--push`, that commit goes to the remote's wvo/<task> first), and one
that fails goes back to its worker; a red base holds its entries, charging no worker."""

from collections.abc import Sequence

import anyio

from wvo_mcp.autopilot.landing.steps import Steps
from wvo_mcp.errors import Fault
from wvo_mcp.git import branch_name
from wvo_mcp.services.landing_queue import Entry, Landing, Return


class OwnBranches:
    """The strategy where each task's branch is its own target."""

    def __init__(self, steps: Steps) -> None:
        self.steps = steps

    async def due(self) -> bool:
        return True

    async def land(self, fence: int, entries: Sequence[Entry]) -> bool:
        """Each entry verified on its own commit, all at once; True if any was not held."""
        steps = self.steps

        async def one(item: Entry) -> None:
            known = steps.base_known(item.base)
            if known is not None and not known.passed:
                held.append(item.id)  # its base is red: nothing to learn from running it
                return
            verdict = await steps.verify(item.commit, [item])
            if not verdict.passed and verdict.project_failed:
                base = await steps.base(item.base)
                if not base.passed:
                    held.append(item.id)
                    steps.turned_red(item.base, base)
                    return
            if not verdict.passed:
                await steps.fail(fence, item, verdict, None)
                return
            pushed = await self.push_branch(fence, item)
            if not pushed:
                held.extend([item.id] if pushed is None else [])  # None: the remote is away
                return
            tree = await steps.in_repo(steps.git.tree_of, item.commit)
            landing_id = await steps.intend(fence, "", item.commit, tree, verdict, [item])
            await steps.complete(landing_id, item.commit)

        held: list[int] = []
        async with anyio.create_task_group() as group:
            for item in entries:
                group.start_soon(one, item)
        if held:
            await steps.unstart(fence, held)
        return len(held) < len(entries)

    async def push_branch(self, fence: int, item: Entry) -> bool | None:
        """--push: the verified commit onto the remote's wvo/<task>, never over commits it
        does not have (False: it went to a person). None: the remote is away; it waits."""
        reach = self.steps.target.reach
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
            await self.steps.send_back(fence, item, back, [], hold="someone pushed to its branch")
            return False
        return True

    async def resume(self, fence: int, intent: Landing) -> bool | None:
        """A landing a killed autopilot intended: its commit passed and nothing moves for it
        (these intents have no `old`), so it completes."""
        await self.steps.complete(intent.id, intent.new)
        return True
