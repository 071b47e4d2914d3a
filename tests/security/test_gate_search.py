"""No sequence of agent moves passes a person's gate.

Two proofs: an exhaustive search of the transition table for every actor but a person, and
a hypothesis state machine that drives the real service functions (claims, every
plan_update an agent can send with or without a token, stale-lease take-overs, the
monitor's re-queue) on a real SQLite database and checks after every step that no task has
left `awaiting_approval`, a dead letter, `blocked` or `cancelled`."""

import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import anyio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from wvo_mcp import providers as provider_config
from wvo_mcp.config import Settings
from wvo_mcp.errors import WvoError
from wvo_mcp.models import TaskSpec
from wvo_mcp.rules.transitions import MOVES, Actor, Status
from wvo_mcp.services import claims, leases, moves, tasks
from wvo_mcp.store import Tx
from wvo_mcp.store.sqlite import SqliteDatabase, SqliteTx

T = TypeVar("T")
GATES = (Status.AWAITING_APPROVAL, Status.FAILED, Status.BLOCKED, Status.CANCELLED)
AGENTS = ("agent-a", "agent-b", "agent-c")
REACHED: set[str] = set()  # the gates the search got tasks into: it must not be vacuous
# Each example starts with a task in every gate (so the search is never vacuous), among
# them one whose holder asked for approval mid-task and still has its token.
GATED_AT_START = {
    "gated": Status.AWAITING_APPROVAL,
    "mid": Status.AWAITING_APPROVAL,
    "dead": Status.FAILED,
    "blk": Status.BLOCKED,
    "cxl": Status.CANCELLED,
}
TASK_IDS = (*GATED_AT_START, "gated-later", "base", "once", "twice", "plain")
MOVE_ORDER = [
    Status.BLOCKED,
    Status.CANCELLED,
    Status.FAILED,
    Status.PENDING,
    Status.AWAITING_APPROVAL,
    Status.NEEDS_REVIEW,
    Status.DONE,
    Status.IN_PROGRESS,
]
CONFIG = Settings(retry_base_seconds=1, retry_cap_seconds=1, wip_global=3)


def test_the_table_lets_no_one_but_a_person_out_of_a_gate() -> None:
    agents_and_machines = [a for a in Actor if a is not Actor.PERSON]
    for gate in GATES:
        seen, frontier = {gate}, [gate]
        while frontier:
            here = frontier.pop()
            for target, who in MOVES[here].items():
                if target not in seen and who & set(agents_and_machines):
                    seen.add(target)
                    frontier.append(target)
        assert seen == {gate}, f"{gate} can be left without a person: {seen}"


def _template() -> Path:
    """A migrated, empty database, made once and copied for each example."""
    folder = Path(tempfile.mkdtemp(prefix="wvo-gates-"))

    async def make() -> None:
        db = await SqliteDatabase(folder / "orchestrator.db").open()
        await db.close()

    anyio.run(make)
    return folder / "orchestrator.db"


TEMPLATE = _template()


class AgentsAgainstGates(RuleBasedStateMachine):
    """Agents and the machine's own actors do whatever they can; persons never act."""

    @initialize()
    def start(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="wvo-gates-"))
        shutil.copy(TEMPLATE, self.folder / "orchestrator.db")
        self.conn = sqlite3.connect(self.folder / "orchestrator.db", isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.providers = provider_config.load(CONFIG)
        self.tokens: dict[str, set[str]] = {t: set() for t in TASK_IDS}
        specs = [
            TaskSpec(id="gated", title="g", requires_approval=True),
            TaskSpec(id="mid", title="m"),
            TaskSpec(id="dead", title="d", max_attempts=1),
            TaskSpec(id="blk", title="b"),
            TaskSpec(id="cxl", title="c"),
            TaskSpec(id="base", title="b"),
            TaskSpec(id="gated-later", title="gl", requires_approval=True, depends_on=["base"]),
            TaskSpec(id="once", title="o", max_attempts=1),
            TaskSpec(id="twice", title="t", max_attempts=2),
            TaskSpec(id="plain", title="p"),
        ]
        self.write(lambda tx: tasks.create_tasks(tx, specs, actor="planner", now=self.now))
        for task, gate in GATED_AT_START.items():
            if task == "gated":
                continue
            self.claim("agent-c", task, 600)
            self.update(task, gate, "current")
        self.before = self.statuses()
        assert {t: self.before[t] for t in GATED_AT_START} == GATED_AT_START

    def teardown(self) -> None:
        if hasattr(self, "conn"):
            self.conn.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    def write(self, fn: Callable[[Tx], T]) -> T | None:
        """One transaction, as the store runs it; a refusal rolls back and is fine here."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(SqliteTx(self.conn))
        except WvoError:
            self.conn.execute("ROLLBACK")
            return None
        self.conn.execute("COMMIT")
        return result

    def statuses(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT id, status FROM tasks").fetchall())

    @rule(
        agent=st.sampled_from(AGENTS),
        task=st.none() | st.sampled_from(TASK_IDS),
        lease=st.sampled_from([1, 600]),
    )
    def claim(self, agent: str, task: str | None, lease: int) -> None:
        granted = self.write(
            lambda tx: claims.claim(
                tx,
                CONFIG,
                agent_id=agent,
                task_id=task,
                lease_seconds=lease,
                now=self.now,
                providers=self.providers,
            )
        )
        if granted is not None and granted.claimed and granted.task is not None:
            assert granted.lease_token is not None
            self.tokens[granted.task.id].add(granted.lease_token)

    @rule(
        task=st.sampled_from(TASK_IDS),
        # The holder's moves first: hypothesis draws early entries more often, and the
        # search must get tasks into every gate before it can try to leave one.
        move=st.sampled_from(MOVE_ORDER),
        token=st.sampled_from(["current", "none", "stale", "forged"]),
    )
    def update(self, task: str, move: Status, token: str) -> None:
        current = self.conn.execute("SELECT lease_token FROM tasks WHERE id = ?", (task,))
        held = current.fetchone()["lease_token"]
        chosen = {
            "none": None,
            "current": held,
            "stale": next(iter(self.tokens[task] - {held}), None),
            "forged": "f" * 32,
        }[token]
        self.write(
            lambda tx: moves.update_status(
                tx, CONFIG, task, move, "agent-a", chosen, "because", self.now
            )
        )

    @rule(task=st.sampled_from(TASK_IDS))
    def monitor_requeues(self, task: str) -> None:
        """The monitor takes any in-progress task back (a superset of stale ones)."""

        def requeue(tx: Tx) -> None:
            row = tx.one("task_by_id", (task,))
            if row is not None and row["status"] == Status.IN_PROGRESS:
                leases.lose_lease(tx, CONFIG, row, self.now, actor="health-monitor", requeue=True)

        self.write(requeue)

    @rule(seconds=st.sampled_from([0.5, 2, 700]))
    def time_passes(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    @invariant()
    def no_gate_is_left_without_a_person(self) -> None:
        if not hasattr(self, "conn"):
            return
        after = self.statuses()
        REACHED.update(s for s in after.values() if s in GATES)
        for task, status in self.before.items():
            if status in GATES:
                assert after[task] == status, f"{task} left {status} for {after[task]}"
        self.before = after


def test_no_agent_sequence_passes_a_gate() -> None:
    REACHED.clear()
    run_state_machine_as_test(
        AgentsAgainstGates,
        settings=settings(
            max_examples=200,
            stateful_step_count=50,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    assert set(REACHED) == set(GATES), f"the search never reached {set(GATES) - REACHED}"
