"""The reviews area: submitted commits, reviews, approvals and re-queues (services/reviews, moves).

A person's or a reviewer's verdict on a task's work, each one write."""

from functools import partial

from wvo_mcp.models import UpdateResult
from wvo_mcp.orchestrator.base import Facade
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import moves, reviews


class ReviewsFacade(Facade):
    async def submit_commit(self, task_id: str, commit: str, actor: str) -> None:
        """The autopilot took a holder's submitted commit from its own repository."""
        await self.db.write(
            partial(
                reviews.submit_commit, task_id=task_id, commit=commit, actor=actor, now=self.clock()
            )
        )

    async def latest_review(self, task_id: str, commit: str) -> reviews.Review | None:
        """The newest review of exactly `commit` of the task."""
        return await self.db.read(partial(reviews.latest_review, task_id=task_id, commit=commit))

    async def review(
        self, task_id: str, commit: str, reviewer: str, verdict: str, notes: str
    ) -> UpdateResult:
        """A reviewer's verdict on exactly the submitted commit (review_submit)."""
        return await self.db.write(
            partial(
                reviews.review,
                task_id=task_id,
                commit=commit,
                reviewer=reviewer,
                verdict=verdict,
                notes=notes,
                now=self.clock(),
            )
        )

    async def approve(self, task_id: str, by: str, note: str | None = None) -> UpdateResult:
        return await self.db.write(
            partial(reviews.approve, task_id=task_id, by=by, note=note, now=self.clock())
        )

    async def reject(
        self, task_id: str, by: str, note: str, to: Status = Status.CANCELLED
    ) -> UpdateResult:
        return await self.db.write(
            partial(reviews.reject, task_id=task_id, by=by, note=note, to=to, now=self.clock())
        )

    async def requeue(self, task_id: str, actor: str, reason: str | None = None) -> UpdateResult:
        """A person's re-queue: a dead letter (or cancelled/blocked task) back to pending; a
        pending one stranded by its failed tier routed afresh."""
        return await self.db.write(
            partial(moves.requeue, settings=self.settings, task_id=task_id, actor=actor,
                    reason=reason, now=self.clock())
        )  # fmt: skip
