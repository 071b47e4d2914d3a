"""The contract suite's fixtures: every test runs in-process against the services, once per
store backend (SQLite, and PostgreSQL on a throwaway cluster), with a clock the test moves.

    async def test_x(world: World) -> None:
        orch = await world.open(wip_global=2)      # one "server" on this test's database
        other = await world.open()                  # another one on the same database
        world.clock.advance(61)                     # leases, back-offs, breakers follow
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wvo_mcp import providers as provider_config
from wvo_mcp import store, timeutil
from wvo_mcp.config import Settings
from wvo_mcp.health.monitor_loop import HealthMonitor, Tick
from wvo_mcp.models import Event, TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.orchestrator import claim_admission as claim_driver
from wvo_mcp.orchestrator import leases as lease_driver
from wvo_mcp.providers import Providers
from wvo_mcp.rules.claim_admission import ClaimAdmission
from wvo_mcp.services import rows
from wvo_mcp.store import Database, Tx
from wvo_mcp.telemetry import Telemetry

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
START = datetime(2031, 5, 6, 7, 0, 0, tzinfo=UTC)
PATIENCE_S = 600.0  # a patient claim's wait for its turn (`patient_claims`)


class Clock:
    """The time every service sees; moves only when a test says so."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current

    def text(self, after_seconds: float = 0.0) -> str:
        """The stored form of now (+ seconds), as leases and back-offs are compared."""
        return timeutil.after(self.current, after_seconds)


@dataclass(frozen=True)
class Backend:
    name: str
    database_url: str | None  # None: the SQLite file in the state folder


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", None)
    return Backend("postgres", request.getfixturevalue("pg_migrated")("contract"))


@dataclass
class World:
    """One test's database on one backend, its clock, and the orchestrators opened on it."""

    backend: Backend
    tmp_path: Path
    clock: Clock = field(default_factory=Clock)
    opened: list[Orchestrator] = field(default_factory=list)
    databases: list[Database] = field(default_factory=list)

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "state_root": self.tmp_path / "state",
            "workspace_root": self.tmp_path,
            "health_interval_seconds": 0,
            "otel_enabled": False,
            "backup_interval_minutes": 0,
            "wip_global": 10,
            "wip_per_agent": 1,
            "default_lease_seconds": 60,
            "retry_base_seconds": 10.0,
            "retry_cap_seconds": 300.0,
            "stale_task_minutes": 1.0,
            "database_url": self.backend.database_url,
        }
        values.update(overrides)
        return Settings(**values)

    async def open(self, *, threaded: bool = False, **overrides: Any) -> Orchestrator:
        """A new orchestrator (its own connection or pool, like another server process).
        `threaded`: its store is opened as the health monitor's is, so on SQLite every
        transaction runs in a worker thread (real overlap, busy retries) rather than on
        the event loop."""
        settings = self.settings(**overrides)
        if threaded:
            db = await store.database(settings, monitor=True).open()
            orch = Orchestrator(db, settings, provider_config.load(settings), self.clock.now)
        else:
            orch = await Orchestrator.open(settings, clock=self.clock.now)
        self.opened.append(orch)
        return orch

    async def monitor_db(self, **overrides: Any) -> Database:
        """The store as a health monitor opens it (its own connection, off the loop)."""
        db = await store.database(self.settings(**overrides), monitor=True).open()
        self.databases.append(db)
        return db

    async def close(self) -> None:
        for orch in reversed(self.opened):
            await orch.close()
        for db in reversed(self.databases):
            await db.close()


@pytest.fixture
async def world(anyio_backend: str, backend: Backend, tmp_path: Path) -> AsyncIterator[World]:
    found = World(backend, tmp_path)
    try:
        yield found
    finally:
        await found.close()


@pytest.fixture
def patient_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every claim admitted, and every claim and held write waiting for its turn as long as
    it takes. For tests of what racing writes leave, not of overload (test_past_capacity.py):
    on a busy machine a contended turn can outlast the bound, and the claim would be refused
    busy; and thousands of claims as fast as they go would meet the rate new holders come in
    at (tests/unit/test_claim_admission.py)."""
    monkeypatch.setattr(ClaimAdmission, "refuse", lambda *_: None)
    monkeypatch.setattr(claim_driver, "WAIT_BOUND_S", PATIENCE_S)
    monkeypatch.setattr(lease_driver, "HELD_WAIT_S", PATIENCE_S)


@pytest.fixture
async def orch(world: World) -> Orchestrator:
    """One orchestrator with the default contract settings."""
    return await world.open()


# --- helpers --------------------------------------------------------------------------------


def specs(*tasks: dict[str, Any]) -> list[TaskSpec]:
    return [TaskSpec.model_validate(t) for t in tasks]


async def create(orch: Orchestrator, *tasks: dict[str, Any], actor: str = "planner") -> Any:
    return await orch.create_tasks(specs(*tasks), actor)


def at(text: str) -> datetime:
    return timeutil.from_text(text)


async def events_of(orch: Orchestrator, task_id: str) -> list[Event]:
    """Every event of one task, oldest first (task_get shows only the latest ten)."""
    return [e for _, _, e in await all_events(orch, [task_id])]


async def all_events(orch: Orchestrator, task_ids: list[str]) -> list[tuple[int, str, Event]]:
    """(event id, task id, event) for every event of these tasks, in the order they were
    written, read in one snapshot through the store's own named query."""

    def read(tx: Tx) -> list[tuple[int, str, Event]]:
        found = []
        for task_id in task_ids:
            for row in tx.all("recent_events", (task_id, 1_000_000)):
                found.append((row["id"], task_id, rows.event(row)))
        return sorted(found, key=lambda found: found[0])

    return await orch.db.read(read)


async def monitor_tick(
    db: Database, settings: Settings, me: str, clock: Clock, providers: Providers | None = None
) -> Tick:
    """One tick of a new monitor.HealthMonitor on the test's clock: take or renew the lead,
    observe (the dependency-count check from the first slice), orient, decide, act and record,
    then its housekeeping. `providers`: None watches none."""
    monitor = HealthMonitor(settings, me, Telemetry(), providers, clock=clock.now)
    # A lease that outlives the tick while the clock stands still (the contract settings
    # tick with interval 0, which would give a lease of 0 s).
    monitor.lease_seconds = 2 * max(settings.health_interval_seconds, 1.0)
    return await monitor.tick(db)
