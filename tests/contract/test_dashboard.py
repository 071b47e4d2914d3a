"""The store's side of the dashboard: run output tails, usage by agent and day, completions
per hour, the marks that tell the live view which views changed, and each route's figures
per task class."""

from functools import partial
from pathlib import Path

import pytest

from tests.contract.conftest import World, create
from tests.contract.test_learned_routing import history, opened
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import route_outcomes
from wvo_mcp.services.route_outcomes import KEEP

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


async def test_each_routes_figures_per_class_with_its_state(world: World, tmp_path: Path) -> None:
    """The budgets and routing view's Routes: per class, each route with outcomes, its
    figures and state, and where a fresh task goes now and why, under the policy in force."""
    pins = "  pins:\n    - {epic: E-pay, provider: beta, tier: top}\n"
    orch = await opened(world, tmp_path, "  explore_share: 0\n  floor: 0.6\n" + pins)
    await history(orch, "alpha", "mid", 0.5, 20, 0.005)  # the cheapest, under the floor
    await history(orch, "beta", "any", 0.9, 20, 0.02)
    await history(orch, "beta", "top", 1.0, 2, 0.05)  # too little evidence
    for provider, tier, task_class in (("gone", "old", "c4-7"), ("alpha", "big", "c8-10")):
        await orch.db.write(
            partial(route_outcomes.record, provider=provider, tier=tier, task_class=task_class,
                    kind="returned", tokens=10, cost=0.01, keep=KEEP, now=orch.clock())
        )  # fmt: skip
    found = await orch.route_view()
    assert (found.policy.enabled, found.policy.floor, found.policy.explore_share) == (
        True, 0.6, 0.0
    )  # fmt: skip
    assert found.pins == 1
    low, mid, high = found.classes
    assert (low.task_class, low.complexity, low.chosen, low.basis, low.routes) == (
        "c1-3", 1, "alpha/small", "cold_start", ()
    )  # fmt: skip
    assert (mid.task_class, mid.complexity, mid.chosen, mid.basis) == (
        "c4-7", 4, "beta/any", "learned"
    )  # fmt: skip
    assert mid.reason.startswith("lowest est. cost per landed change: beta/any")
    assert [(r.figures.name, r.figures.outcomes, r.state) for r in mid.routes] == [
        ("alpha/mid", 20, "below floor"),
        ("beta/any", 20, "chosen"),
        ("beta/top", 2, "unproven"),
        ("gone/old", 1, "not configured"),
    ]
    chosen = mid.routes[1].figures
    assert chosen.evidence == pytest.approx((1 - KEEP**20) / (1 - KEEP))
    assert chosen.cost_per_attempt == pytest.approx(0.02)
    assert 0.8 < chosen.landing_rate < 0.95 and chosen.first_try_rate is not None
    assert chosen.cost_per_landed == pytest.approx(0.02 / chosen.landing_rate)
    assert mid.routes[0].figures.first_try_rate == pytest.approx(0.5, abs=0.05)
    # A chosen route is chosen however little it has shown: here by the static rule.
    assert (high.chosen, high.basis) == ("alpha/big", "cold_start")
    assert [(r.figures.name, r.state) for r in high.routes] == [("alpha/big", "chosen")]

    # Learning off: the same figures, the static rule's choice.
    off = await opened(world, tmp_path, "  enabled: false\n")
    found = await off.route_view()
    mid = found.classes[1]
    assert (found.policy.enabled, found.pins, mid.chosen, mid.basis) == (
        False, 0, "alpha/mid", "rule"
    )  # fmt: skip
    assert [(r.figures.name, r.state) for r in mid.routes][:2] == [
        ("alpha/mid", "chosen"), ("beta/any", "proven")
    ]  # fmt: skip
