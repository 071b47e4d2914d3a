"""The health area: the health report (health/monitor.py).

The monitor's loop (health/monitor_loop.py) reads health/monitor.py over its own connection; this
is the report a tool or the CLI asks for."""

from functools import partial

from wvo_mcp.health import monitor as checks
from wvo_mcp.models import HealthReport
from wvo_mcp.orchestrator.base import Facade


class HealthFacade(Facade):
    async def health_report(self, limit: int = 10, full: bool = False) -> HealthReport:
        return await self.db.read(partial(checks.report, limit=limit, full=full, now=self.clock()))
