"""The landing area: the autopilot's submissions and merge queue (services/landing_queue).

What the autopilot takes, reviews and lands, and the queue's figures
(services/landing_figures)."""

from datetime import timedelta
from functools import partial

from wvo_mcp import queue_figures
from wvo_mcp.models import LandingQueue
from wvo_mcp.orchestrator.base import Facade
from wvo_mcp.services import landing_figures, landing_queue


class LandingFacade(Facade):
    async def take_submission(
        self, task_id: str, commit: str, base: str, target: str
    ) -> landing_queue.Entry:
        """The autopilot took a holder's submitted commit: recorded, and in the merge queue
        for `target` ('' : verified and done on its own branch), behind its review if any."""
        return await self.db.write(
            partial(landing_queue.take, task_id=task_id, commit=commit, base=base, target=target,
                    now=self.clock())
        )  # fmt: skip

    async def reviews_waiting(self) -> list[landing_queue.Entry]:
        return await self.db.read(partial(landing_queue.reviews_waiting, now=self.clock()))

    async def claim_review(self, entry_id: int, run: str, seconds: float) -> bool:
        now = self.clock()
        until = now + timedelta(seconds=seconds)
        return await self.db.write(
            partial(landing_queue.claim_review, entry_id=entry_id, run=run, until=until, now=now)
        )

    async def reviewed(self, entry_id: int) -> str:
        """After a reviewer's run: 'queued' (approved), 'changes', 'review' (no verdict)."""
        return await self.db.write(
            partial(
                landing_queue.reviewed, settings=self.settings, entry_id=entry_id, now=self.clock()
            )
        )

    async def landing_claims(self, run: str, seconds: float | None) -> None:
        """Renew what an autopilot reviews and lands (None: it ended; drop them)."""
        if seconds is None:
            await self.db.write(partial(landing_queue.drop_claims, run=run))
        else:
            until = self.clock() + timedelta(seconds=seconds)
            await self.db.write(partial(landing_queue.renew_claims, run=run, until=until))

    async def untaken_submissions(self) -> list[tuple[str, str]]:
        """(task, author) of submissions to the autopilot that no autopilot took yet."""
        rows = await self.db.read(lambda tx: tx.all("untaken_submissions"))
        return [(row["id"], row["submitted_by"]) for row in rows]

    async def hand_back(self, task_id: str, why: str) -> bool:
        """A submission no autopilot can take (its host died before it reached the remote):
        its task back to pending with its checkpoints."""
        return await self.db.write(
            partial(landing_queue.hand_back, settings=self.settings, task_id=task_id, why=why,
                    now=self.clock())
        )  # fmt: skip

    async def adopt_target(self, old: str, new: str) -> int:
        """A target's open entries from before targets were named by repository, renamed."""
        return await self.db.write(partial(landing_queue.adopt, old=old, new=new))

    async def landing_queue(self) -> list[tuple[landing_queue.Entry, str]]:
        return await self.db.read(landing_queue.queue)

    async def landing_view(self, hours: float = landing_figures.WINDOW_HOURS) -> LandingQueue:
        """The merge queue's open entries with their place and wait, and the figures of the
        last `hours` (the landing_queue tool, `autopilot status`, the dashboard)."""
        return await self.db.read(partial(landing_figures.view, now=self.clock(), hours=hours))

    async def landed(self, landing_id: int) -> queue_figures.Landed:
        """What a completed landing brought: its entries' waits and its tasks' spend (for
        telemetry, once the landing completed)."""
        return await self.db.read(partial(landing_figures.of_landing, landing_id=landing_id))
