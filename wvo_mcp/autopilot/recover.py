"""Crash recovery: a live autopilot takes over what dead ones left on this database.

Crash recovery: what autopilots that died on this database left behind, taken over by a
live one (orphans.py tells whether a run is gone and ends its workers' processes). A landing
left open by a crash is finished elsewhere: landing/lander.py:Lander._recover, which hands it
to its strategy's `resume` (OntoBranch.resume, OwnBranches.resume, PullRequests.resume)."""

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio.to_thread

from wvo_mcp import timeutil
from wvo_mcp.autopilot import leftovers, orphans
from wvo_mcp.autopilot.repos import Repos, newest_repo
from wvo_mcp.autopilot.slots import LIVE_SECONDS
from wvo_mcp.autopilot.submissions import Intake
from wvo_mcp.git import branch_name
from wvo_mcp.orchestrator import Orchestrator


class Recovery:
    def __init__(
        self,
        orchestrator: Orchestrator,
        run_id: str,
        repos: Repos,
        intake: Intake,
        say: Callable[[str], None],
        state_root: Path,
    ) -> None:
        self.orchestrator = orchestrator
        self.run_id = run_id
        self.repos = repos
        self.intake = intake
        self.say = say
        self.state_root = state_root
        self._swept = False

    async def recover(self, base: str, mine: set[str], busy_tasks: set[str]) -> None:
        """What autopilots that died on this database left: what they reviewed and landed
        freed at once, their workers' processes ended (on this machine), the tasks those
        workers held handed back with their checkpoints (it was not the work's fault), and
        submissions nobody took taken here (`mine`: this autopilot's agents; `busy_tasks`:
        what they run now, whose submissions their own runs take). A submission whose
        repository is not here and whose autopilot is gone is handed back too: it never
        reached the remote. Landings they intended are completed or abandoned by the
        lander, before it lands anything."""
        stale = timeutil.to_text(timeutil.now() - timedelta(seconds=2 * LIVE_SECONDS))
        runs = await self.orchestrator.autopilot_runs(stale)
        if not self._swept:  # at start: what gone autopilots left on this machine
            self._swept = True
            others = [r for r in runs if r["id"] != self.run_id]
            sweep = partial(leftovers.sweep, self.state_root, others, dry_run=False)
            for found in await anyio.to_thread.run_sync(sweep):
                self.say(f"left by a gone autopilot: {found.what}: {found.why}")
        live: list[dict[str, Any]] = []
        owner: dict[str, dict[str, Any]] = {}  # agent -> the latest run that had it
        for run in runs:
            for agent in run["report"].get("agents", []):
                owner[agent] = run
            if run["id"] == self.run_id:
                continue
            if not orphans.gone(run, stale):
                if run["state"] != "ended":
                    live.append(run)
                continue
            await self._end(run)
        live_agents = {a for run in live for a in run["report"].get("agents", [])}
        for task_id, author in await self.orchestrator.untaken_submissions():
            if task_id in busy_tasks or (author in live_agents and author not in mine):
                continue  # its own run, or its own live autopilot, takes it
            repo = newest_repo(self.repos.task_dir(task_id))
            if repo is None:  # on a host that died before it reached the remote
                await self._hand_back(task_id, author, owner.get(author))
                continue
            start = await self.repos.start_commit(branch_name(task_id), base)
            if author not in mine:
                self.say(f"{task_id}: taking {author}'s submission its autopilot left untaken")
            await self.intake.take(author, task_id, repo, start)

    async def _hand_back(self, task_id: str, author: str, run: dict[str, Any] | None) -> None:
        """A submission whose repository is not here, and whose autopilot is gone: it can
        never be taken, and its task goes back with its checkpoint."""
        where = f"its autopilot ({run['id']})" if run is not None else "its autopilot"
        why = (
            f"{where} is gone and {author}'s submission never reached the remote; "
            "handed back with its checkpoint"
        )
        if await self.orchestrator.hand_back(task_id, why):
            self.say(f"{task_id}: {why}")

    async def _end(self, run: dict[str, Any]) -> None:
        self.say(await end_gone(self.orchestrator, run))


async def end_gone(orchestrator: Orchestrator, run: dict[str, Any]) -> str:
    """A dead autopilot's run, ended and its row closed (so no later sweep takes it up
    again): what its workers left on this host (orphans.end_run), its claims, its agents'
    tasks. What was done, said. Recovery and `autopilot gc` both end runs this way."""
    ended = await anyio.to_thread.run_sync(orphans.end_run, run)
    await orchestrator.landing_claims(run["id"], None)
    released = await orchestrator.release_orphans(
        run["report"].get("agents", []),
        f"its autopilot ({run['id']}) died; handed back as it was",
    )
    await orchestrator.autopilot_beat(run["id"], "ended", run["report"])
    return (
        f"autopilot {run['id']} is gone: {ended} worker process(es) ended, "
        f"{len(released)} task(s) handed back"
    )
