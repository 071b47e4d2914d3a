"""The facade's shared state: store, settings, providers, clock, git, sandbox, claim admission.

Each area's mixin subclasses Facade and only declares methods, so every one of them sees these
attributes (mypy too); Orchestrator (__init__.py) joins the mixins into one object.
"""

from collections.abc import Callable
from datetime import datetime

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.git import Git, locate
from wvo_mcp.models import ClaimResult
from wvo_mcp.orchestrator.claim_admission import Queued
from wvo_mcp.orchestrator.turns import Turns
from wvo_mcp.providers import Providers
from wvo_mcp.rules.claim_admission import TURN_MOST, ClaimAdmission
from wvo_mcp.store import Database
from wvo_mcp.verification import Verification


class Facade:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        providers: Providers,
        clock: Callable[[], datetime] = timeutil.now,
    ) -> None:
        self.db = db
        self.settings = settings
        self.providers = providers
        self.clock = clock  # injected by tests for exact lease and back-off times
        # Found once: a repository a sandboxed command plants later is never used.
        repo = locate(settings.workspace_root)
        self.git = (
            None
            if repo is None
            else Git(repo, settings.workspace_root.resolve(), [settings.state_root])
        )
        self.verification = Verification(db, settings, providers, self.git, clock)
        # The sandbox's runs, offered here under their own names (verification.py).
        self.sandbox_run = self.verification.sandbox_run
        self.check = self.verification.check
        self.toolchain = self.verification.toolchain
        # This process's claims past capacity: refused at once, told when to come back.
        self.claims = ClaimAdmission()
        # ... and its claims of the best task, served together in its turns.
        self.turns: Turns[Queued, ClaimResult] = Turns(TURN_MOST)
