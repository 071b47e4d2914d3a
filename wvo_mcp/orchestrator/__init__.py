"""The orchestrator: every behaviour the MCP tools and the CLI offer, one await each.

One object joined from one mixin per area, each in a module named after the service it
fronts (leases.py and services/leases.py), so a call site reads `orchestrator.claim(...)`
whatever the area, and a monkeypatch of a method, on the class or an instance, still takes.
A name defined in two mixins would be resolved silently by the MRO: tests/unit/test_facade.py
refuses it.
"""

from collections.abc import Callable
from datetime import datetime

from wvo_mcp import providers as provider_config
from wvo_mcp import store, timeutil
from wvo_mcp.config import Settings
from wvo_mcp.orchestrator.autopilots import AutopilotsFacade
from wvo_mcp.orchestrator.bearer_tokens import BearerTokensFacade
from wvo_mcp.orchestrator.board import BoardFacade
from wvo_mcp.orchestrator.claims import ClaimsFacade
from wvo_mcp.orchestrator.context import ContextFacade
from wvo_mcp.orchestrator.flakes import FlakesFacade
from wvo_mcp.orchestrator.health import HealthFacade
from wvo_mcp.orchestrator.issues import IssuesFacade
from wvo_mcp.orchestrator.landing import LandingFacade
from wvo_mcp.orchestrator.leases import LeasesFacade
from wvo_mcp.orchestrator.notes import NotesFacade
from wvo_mcp.orchestrator.reviews import ReviewsFacade
from wvo_mcp.orchestrator.routing import RoutingFacade
from wvo_mcp.orchestrator.tasks import TasksFacade


class Orchestrator(
    TasksFacade,
    ClaimsFacade,
    LeasesFacade,
    ReviewsFacade,
    NotesFacade,
    LandingFacade,
    FlakesFacade,
    IssuesFacade,
    RoutingFacade,
    BoardFacade,
    HealthFacade,
    AutopilotsFacade,
    ContextFacade,
    BearerTokensFacade,
):
    @classmethod
    async def open(
        cls, settings: Settings, clock: Callable[[], datetime] = timeutil.now
    ) -> "Orchestrator":
        # The providers file first: a bad one is refused before anything opens.
        found = provider_config.load(settings)
        return cls(await store.database(settings).open(), settings, found, clock)

    async def close(self) -> None:
        await self.db.close()
