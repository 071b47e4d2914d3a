"""A hypothesis state machine that interleaves the writes PostgreSQL runs side by side (claims,
heartbeats, checkpoints, a holder's moves, the monitor's re-queues) with world-locked ones
(creating tasks, the monitor's leadership), two at a time from two servers' connections,
while the clock jumps past leases. After every step the rows must tell one story: each
holder the one its grant named, nothing done twice, the queue counts equal to the rows.
"""

import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.contract.conftest import Clock, monitor_tick
from tests.contract.test_races import together
from wvo_mcp import providers as provider_config
from wvo_mcp import store
from wvo_mcp.config import Settings
from wvo_mcp.errors import LeaseLost, WvoError
from wvo_mcp.models import ClaimResult, TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status
from wvo_mcp.store import Database, Tx, bridge

AGENTS = ("x", "y")
OPS = ("claim", "heartbeat", "checkpoint", "done", "failed", "pending", "monitor", "create")
ENDS = {"done": Status.DONE, "failed": Status.FAILED, "pending": Status.PENDING}


class World:
    """Two servers and a monitor on one fresh database, driven from the machine's thread."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, url: str, root: Path) -> None:
        self.portal = portal
        self.clock = Clock(datetime(2031, 5, 6, 7, 0, 0, tzinfo=UTC))
        self.settings = Settings(
            state_root=root, workspace_root=root, database_url=url, health_interval_seconds=0,
            otel_enabled=False, backup_interval_minutes=0, wip_global=3, wip_per_agent=1,
            default_lease_seconds=60, stale_task_minutes=1.0, retry_base_seconds=5.0,
        )  # fmt: skip
        self.servers: list[Orchestrator] = [portal.call(self._open) for _ in range(2)]
        self.monitor: Database = portal.call(store.database(self.settings, monitor=True).open)

    async def _open(self) -> Orchestrator:
        db = await store.database(self.settings, monitor=True).open()
        return Orchestrator(db, self.settings, provider_config.load(self.settings), self.clock.now)

    def close(self) -> None:
        for server in self.servers:
            self.portal.call(server.close)
        self.portal.call(self.monitor.close)


def rows(tx: Tx) -> dict[str, Any]:
    """What the invariants read, in one snapshot."""

    def fetched(sql: str) -> list[dict[str, Any]]:
        return bridge.wait(tx.execute(sql).fetchall())  # type: ignore[attr-defined]

    return {
        "tasks": fetched("SELECT * FROM tasks"),
        "counts": {r["bucket"]: r["tasks"] for r in fetched("SELECT * FROM queue_counts")},
        "done": fetched(
            "SELECT task_id, count(*) AS n, min(actor) AS actor, min(lease_epoch) AS epoch "
            "FROM task_events WHERE to_status = 'done' GROUP BY task_id"
        ),
        "grants": fetched(
            "SELECT DISTINCT ON (task_id) task_id, actor, lease_epoch FROM task_events "
            "WHERE kind = 'claimed' ORDER BY task_id, id DESC"
        ),
    }


class Interleavings(RuleBasedStateMachine):
    new_world: Callable[[], World]  # set by the test: a fresh database per run

    def __init__(self) -> None:
        super().__init__()
        self.world = self.new_world()
        self.held: dict[str, dict[str, str]] = {agent: {} for agent in AGENTS}  # task: token
        self.made = 0

    def call(self, agent: str, server: int, op: str) -> Callable[[], Awaitable[Any]]:
        orch = self.world.servers[server]
        mine = sorted(self.held[agent].items())
        task_id, token = mine[0] if mine else ("none", "none")
        match op:
            case "claim":
                return lambda: orch.claim(agent)
            case "heartbeat":
                return lambda: orch.heartbeat(task_id, token, agent)
            case "checkpoint":
                return lambda: orch.checkpoint(task_id, token, agent, "step")
            case "monitor":
                return lambda: monitor_tick(
                    self.world.monitor, self.world.settings, "m", self.world.clock
                )
            case "create":
                self.made += 1
                spec = TaskSpec(id=f"t{self.made:03}-{uuid.uuid4().hex[:4]}", title="work")
                return lambda: orch.create_tasks([spec], "planner")
        return lambda: orch.update_status(task_id, ENDS[op], agent, token)

    def settle(self, agent: str, op: str, result: Any) -> None:
        """The agent's belief after its call: a grant is held, a loss or a move is not."""
        mine = sorted(self.held[agent])
        if isinstance(result, ClaimResult) and result.claimed:
            assert result.task is not None and result.lease_token is not None
            self.held[agent][result.task.id] = result.lease_token
        elif (mine and op in (*ENDS, "heartbeat", "checkpoint")) and (
            isinstance(result, LeaseLost) or (op in ENDS and not isinstance(result, Exception))
        ):
            del self.held[agent][mine[0]]
        if isinstance(result, Exception) and not isinstance(result, WvoError):
            raise result

    @rule(
        first=st.tuples(st.sampled_from(AGENTS), st.sampled_from(OPS)),
        second=st.tuples(st.sampled_from(AGENTS), st.sampled_from(OPS)),
    )
    def race(self, first: tuple[str, str], second: tuple[str, str]) -> None:
        calls = [self.call(agent, server, op) for server, (agent, op) in enumerate((first, second))]
        results = self.world.portal.call(together, *calls)
        for (agent, op), result in zip((first, second), results, strict=True):
            self.settle(agent, op, result)

    @rule(seconds=st.sampled_from([30, 61, 61, 130]))
    def wait(self, seconds: int) -> None:
        self.world.clock.advance(seconds)

    def teardown(self) -> None:
        self.world.close()

    @invariant()
    def one_story(self) -> None:
        seen = self.world.portal.call(self.world.servers[0].db.read, rows)
        tasks = {r["id"]: r for r in seen["tasks"]}
        real = {status.value: 0 for status in Status}
        for row in tasks.values():
            real[row["status"]] += 1
        real["ready"] = sum(
            r["status"] == "pending" and r["unmet_dependencies"] == 0 for r in tasks.values()
        )
        assert seen["counts"] == real
        grants = {r["task_id"]: r for r in seen["grants"]}
        for done in seen["done"]:  # once, by the holder of the newest grant
            grant = grants[done["task_id"]]
            assert done["n"] == 1, done
            assert (done["actor"], done["epoch"]) == (grant["actor"], grant["lease_epoch"])
            assert tasks[done["task_id"]]["status"] == "done"
        for row in tasks.values():
            if row["status"] == "in_progress":
                grant = grants[row["id"]]
                assert (grant["actor"], grant["lease_epoch"]) == (
                    row["assigned_to"],
                    row["lease_epoch"],
                )
        for agent, mine in self.held.items():
            for task_id, token in mine.items():
                if tasks[task_id]["lease_token"] == token:
                    assert tasks[task_id]["assigned_to"] == agent


@pytest.fixture
def portal() -> Iterator[anyio.from_thread.BlockingPortal]:
    with anyio.from_thread.start_blocking_portal() as found:
        yield found


def test_interleaved_writes_tell_one_story(
    pg_migrated: Callable[[str], str], portal: anyio.from_thread.BlockingPortal, tmp_path: Path
) -> None:
    def new_world() -> World:
        root = tmp_path / uuid.uuid4().hex[:8]
        root.mkdir()
        url = pg_migrated("interleave")
        return World(portal, url, root)

    Interleavings.new_world = staticmethod(new_world)  # type: ignore[assignment]
    run_state_machine_as_test(
        Interleavings,
        settings=settings(
            max_examples=20,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
