"""Takes a worker's commits as data into the merge queue, behind a review where asked.

Taking a worker's submission: its commits, read from its own repository as data, onto
wvo/<task> and into the merge queue (behind a review where the task has one).

Carries out `rules/protected_paths.py` and `rules/closing.py`."""

from collections.abc import Callable
from pathlib import Path

from wvo_mcp.autopilot.landing import lander
from wvo_mcp.autopilot.repos import Repos
from wvo_mcp.autopilot.slots import ACTOR
from wvo_mcp.errors import Fault, ValidationFailed, WvoError
from wvo_mcp.git import Closing, Protected, branch_name, intake, read_head
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import closing, protected_paths
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import landing_queue


class Intake:
    def __init__(
        self,
        orchestrator: Orchestrator,
        repos: Repos,
        lander: lander.Lander,
        say: Callable[[str], None],
        changed: Callable[[], None],
    ) -> None:
        self.orchestrator = orchestrator
        self.repos = repos
        self.git = repos.git
        self.lander = lander
        self.say = say
        self._changed = changed  # wakes the loop: there is a submission to land

    async def take(self, author: str, task_id: str, repo: Path, start: str) -> None:
        """The worker submitted its task: take its commits from its own repository as data
        onto wvo/<task>, and into the merge queue (behind a review where the task has one).
        A repository that cannot be taken (no commit, a forged HEAD, objects it does not
        hold) is a failed attempt; so are commits that change the state folder (inside the
        repository), or whose messages would close issues, which never reach it: for
        `--merge leave` and the queue alike, the next attempt starts from a checkpoint
        saying why."""
        branch = branch_name(task_id)
        in_repo = self.repos.in_repo
        try:
            tip = read_head(repo / ".git")
            if tip is None:
                raise ValidationFailed("its repository's HEAD names no commit")
            old = await in_repo(self.repos.branch_tip, branch)
            taken = []
            try:
                if old != tip:
                    taken = await in_repo(
                        intake.take_commits, self.git, repo / ".git" / "objects", tip,
                        f"refs/heads/{branch}", old,
                    )  # fmt: skip
            except ValidationFailed:
                # Another autopilot took this very submission meanwhile (a dead one's, both
                # recovering it): the branch is at its tip, and the entry is one.
                if await in_repo(self.repos.branch_tip, branch) != tip:
                    raise
            if not await self._publish(task_id, tip):
                return  # it waits for the remote, untaken: the next round tries again
            item = await self.orchestrator.take_submission(task_id, tip, start, self.lander.key)
        except Protected as exc:
            summary, details = protected_paths.refusal(exc.paths, exc.folders, exc.tip)
            await self.lander.refuse(task_id, landing_queue.Return(summary, details, exc.paths))
            return
        except Closing as exc:
            summary, details = closing.refusal(exc.found, exc.tip)
            await self.lander.refuse(task_id, landing_queue.Return(summary, details, []))
            return
        except WvoError as exc:
            await self._fail(task_id, f"its submission could not be taken: {exc}")
            return
        self.say(submitted(author, task_id, len(taken), branch, start, tip))
        await self.orchestrator.note(
            task_id, ACTOR, "commits", f"{branch}: {len(taken)} commit(s) {start}..{tip}"
        )
        queue = f"the queue onto {self.lander.onto}" if self.lander.onto else "verification"
        self.say(f"{task_id} waits for {'review' if item.state == 'review' else queue}")
        self._changed()

    async def _publish(self, task_id: str, tip: str) -> bool:
        """With a remote: the submission pushed to its task's ref there first, so that
        whichever host lands it can fetch it. False while the remote is away."""
        reach = self.lander.target.reach
        if reach is None:
            return True
        if not reach.ready():
            return False
        try:
            await reach.call(reach.remote.publish, task_id, tip)
        except Fault:
            return False
        return True

    async def _fail(self, task_id: str, why: str) -> None:
        self.say(f"{task_id} returned: {why[:300]}")
        try:
            await self.orchestrator.note(task_id, ACTOR, "returned", why[:4000])
            await self.orchestrator.update_status(
                task_id, Status.FAILED, ACTOR, reason=why[:500], landing=""
            )
        except WvoError as exc:  # handed back or moved meanwhile: not this submission's now
            self.say(f"{task_id}: {exc}")


def submitted(author: str, task_id: str, new: int, branch: str, start: str, tip: str) -> str:
    """The line a taken submission gets: its new commits, or, taken again (a dead
    autopilot's held submission, its branch there already), that it was (pure)."""
    span = f"{start[:12]}..{tip[:12]}"
    if new == 0:
        return f"{author} submitted {task_id} again: {branch} is at it already ({span})"
    return f"{author} submitted {task_id}: {new} new commit(s) on {branch} ({span})"
