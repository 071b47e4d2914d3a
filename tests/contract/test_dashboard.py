"""The store's side of the dashboard: run output tails, usage by agent and day, completions
per hour, and the marks that tell the live view which views changed."""

import pytest

from tests.contract.conftest import World, create
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status

pytestmark = pytest.mark.anyio


async def test_run_outputs_are_kept_beside_their_events(world: World) -> None:
    orch = await world.open(sandbox_backend="none", sandbox_allow_unisolated=True)
    await create(orch, {"id": "T1", "title": "t", "verify_command": "echo gate-$((6*7))"})
    claim = await orch.claim("a1")
    assert claim.lease_token is not None
    script = "echo out-$((2*3)); echo err-$((3*3)) >&2"
    await orch.sandbox_run(script, "a1", task_id="T1", lease_token=claim.lease_token)
    await orch.update_status("T1", Status.DONE, "a1", token=claim.lease_token)
    runs = (await orch.task_view("T1")).runs
    assert [(r.event.kind, r.stdout, r.stderr) for r in runs] == [
        ("sandbox_run", "out-6\n", "err-9\n"),
        ("verified", "gate-42\n", ""),
    ]
    # What agents read back stays the summary alone.
    detail = (await orch.get_task("T1")).model_dump_json()
    assert "out-6" not in detail and "err-9" not in detail and "gate-42" not in detail


async def test_usage_is_counted_per_agent_and_day(world: World, orch: Orchestrator) -> None:
    await orch.register_agent("a1", provider="codex", model="gpt-5-codex")
    await create(orch, {"id": "T1", "title": "t"})
    claim = await orch.claim("a1")
    usage = ("codex", "gpt-5-codex", 1000, 200, "success")
    await orch.record_usage(*usage, "T1", claim.lease_token, agent_id="a1")
    await orch.record_usage(*usage, agent_id="a1")
    await orch.record_usage(*usage)  # named no agent: no agent's
    world.clock.advance(24 * 3600)
    await orch.record_usage(*usage, agent_id="a1")  # the next day
    world.clock.advance(-24 * 3600)
    [agent] = await orch.agents_view()
    assert (agent.id, agent.tier, agent.task_id, agent.tokens_today) == ("a1", "medium", "T1", 2400)
    assert agent.cost_today > 0 and agent.beat_at is not None


async def test_completions_are_counted_per_hour(world: World, orch: Orchestrator) -> None:
    await create(orch, *({"id": f"T{n}", "title": "t"} for n in range(3)))
    for n, hours in enumerate((0, 2, 0)):
        world.clock.advance(hours * 3600)
        claim = await orch.claim("a1", task_id=f"T{n}")
        await orch.update_status(f"T{n}", Status.DONE, "a1", token=claim.lease_token)
    hours = await orch.done_per_hour(4)
    assert [n for _, n in hours] == [0, 1, 0, 2]
    assert hours[-1][0] == world.clock.now().strftime("%Y-%m-%dT%H")


async def test_the_marks_name_the_views_whose_data_changed(
    world: World, orch: Orchestrator
) -> None:
    before = (await orch.board_changes(0)).marks
    await orch.record_usage("claude", "claude-sonnet-4-5", 10, 5, "success")
    after_usage = (await orch.board_changes(0)).marks
    assert {v for v in before if before[v] != after_usage[v]} == {"agents", "budgets"}
    await orch.autopilot_start("run-1")
    after_pilot = (await orch.board_changes(0)).marks
    assert {v for v in before if after_usage[v] != after_pilot[v]} == {"autopilot"}
