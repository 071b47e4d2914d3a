"""The autopilots area: each autopilot's run, its rounds and what a person wants of it.

Its reads and writes are the store's own queries (autopilot_*): no service stands between."""

import json
from typing import Any

from wvo_mcp import timeutil
from wvo_mcp.orchestrator.base import Facade
from wvo_mcp.store import Tx


class AutopilotsFacade(Facade):
    async def autopilot_start(self, run_id: str) -> None:
        stamp = timeutil.to_text(self.clock())
        await self.db.write(lambda tx: tx.run("autopilot_start", {"id": run_id, "now": stamp}))

    async def autopilot_beat(
        self, run_id: str, state: str, report: dict[str, Any]
    ) -> tuple[str, str] | None:
        """Record an autopilot's round; what a person wants of it, if anything, and who."""

        def beat(tx: Tx) -> tuple[str, str] | None:
            row = tx.one(
                "autopilot_beat",
                {"id": run_id, "now": timeutil.to_text(self.clock()), "state": state,
                 "report": json.dumps(report)},
            )  # fmt: skip
            if row is None or row["wanted"] is None:
                return None
            tx.run("autopilot_heard", {"id": run_id, "wanted": row["wanted"]})
            return row["wanted"], row["asked_by"] or "someone"

        return await self.db.write(beat)

    async def autopilot_want(self, wanted: str, by: str, run_id: str | None = None) -> int:
        """Ask running autopilots (all, or one) to pause, resume or stop: how many heard.
        `by`: who asks (a person's actor name), kept on the run."""
        return await self.db.write(
            lambda tx: tx.run("autopilot_want", {"wanted": wanted, "by": by, "id": run_id})
        )

    async def autopilot_runs(self, since: str) -> list[dict[str, Any]]:
        rows = await self.db.read(lambda tx: tx.all("autopilot_runs", {"since": since}))
        return [{**dict(row), "report": json.loads(row["report"])} for row in rows]
