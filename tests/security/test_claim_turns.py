"""An agent's claim shares a turn with the other claims queued in its server process
(orchestrator/turns.py, services/claims.best_then_read): one its token forbids, or one that
declares half an identity, is refused alone in that turn. It changes nothing (no task, no
event, no registration, not even a sighting) and moves no other claim, on both backends."""

from pathlib import Path

import pytest

from tests.contract import conftest as contract
from tests.contract.conftest import World, create, events_of
from tests.contract.test_claim_turns import turn
from tests.contract.test_routing import PROVIDERS
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.models import ClaimResult
from wvo_mcp.services.agents import Bound
from wvo_mcp.services.claims import Ask

pytestmark = pytest.mark.anyio
# The contract suite's fixtures: one world a backend, SQLite and PostgreSQL.
backend, world = contract.backend, contract.world
TASKS = [f"T{n}" for n in range(4)]


async def test_a_forbidden_claim_in_a_shared_turn_changes_nothing(
    world: World, tmp_path: Path
) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text(PROVIDERS)
    orch = await world.open(providers_file=path, wip_global=20)
    await create(orch, *({"id": t, "title": "t", "complexity": 1} for t in TASKS))
    alpha = Bound("alpha")  # a token made for alpha
    answers = await turn(
        orch,
        Ask("honest-1", 60),
        Ask("hostile", 60, provider="beta", model="beta-1", bound=alpha),
        Ask("honest-2", 60, provider="alpha", model="alpha-s", bound=alpha),
        Ask("hostile", 60, provider="alpha"),
        Ask("honest-3", 60),
    )
    moved, half = answers[1], answers[3]
    assert isinstance(moved, ValidationFailed) and "its token was made for it" in str(moved)
    assert "Nothing was changed" in str(moved)
    assert isinstance(half, ValidationFailed) and "pass both provider and model" in str(half)
    granted = {}
    for agent, answer in zip(("honest-1", "honest-2", "honest-3"), answers[::2], strict=True):
        assert isinstance(answer, ClaimResult) and answer.claimed and answer.task is not None
        granted[answer.task.id] = agent
    assert len(granted) == 3  # each its own task
    # The host: only the honest claims left a trace.
    for task in TASKS:
        detail = await orch.get_task(task)
        assert detail.assigned_to == granted.get(task)
        actors = {e.actor for e in await events_of(orch, task)}
        assert "hostile" not in actors
    agents = {a.id: a for a in await orch.agents_view()}
    assert "hostile" not in agents and set(granted.values()) <= set(agents)
    assert (agents["honest-2"].provider, agents["honest-2"].model) == ("alpha", "alpha-s")
