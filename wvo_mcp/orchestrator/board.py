"""The board area: the dashboard's columns, cards, changes and agents (services/board).

Reads only: the dashboard polls them."""

from functools import partial

from wvo_mcp import timeutil
from wvo_mcp.orchestrator.base import Facade
from wvo_mcp.rules import routing
from wvo_mcp.services import board, leases
from wvo_mcp.store import Row


class BoardFacade(Facade):
    async def board_view(self, filters: board.Filters, limit: int = 50) -> board.Board:
        """The dashboard's columns (first pages), counts and change cursor."""
        return await self.db.read(partial(board.board, filters=filters, limit=limit))

    async def board_column(
        self, status: str, filters: board.Filters, after: str = "", limit: int = 50
    ) -> board.Column:
        return await self.db.read(
            partial(board.column, status=status, filters=filters, after=after, limit=limit)
        )

    async def board_cards(self, ids: list[str], filters: board.Filters) -> list[board.Card]:
        return await self.db.read(partial(board.cards, ids=ids, filters=filters))

    async def board_changes(self, after: int, limit: int = 1000) -> board.Changes:
        """What changed since event `after` (the dashboard's live view polls this)."""
        day = routing.windows(self.clock())[1]
        return await self.db.read(partial(board.changes, after=after, limit=limit, day=day))

    async def agents_view(self, limit: int = 500) -> list[board.AgentRow]:
        """The dashboard's agents: each one's held task, done count, today's usage and
        health reading."""
        now = self.clock()
        cutoff = leases.silent_before(now, self.settings.stale_task_minutes)

        def tier(row: Row) -> str | None:
            found = self.providers.get(row["provider"] or "")
            model = row["model"]
            named = None if found is None or model is None else found.tier_for_model(model)
            return None if named is None else named.name

        return await self.db.read(
            partial(
                board.agents,
                now=timeutil.to_text(now),
                cutoff=timeutil.to_text(cutoff),
                day=routing.windows(now)[1],
                limit=limit,
                tier=tier,
            )
        )

    async def done_per_hour(self, hours: int = 12) -> list[tuple[str, int]]:
        """Completions in each of the last `hours` hours, oldest first."""
        return await self.db.read(partial(board.done_per_hour, now=self.clock(), hours=hours))

    async def last_event_id(self) -> int:
        return await self.db.read(board.last_event_id)
