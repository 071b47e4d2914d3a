"""The learned route on every backend: the statistics every process records decide where a
task goes and say why; cold start keeps the static rule; the floor, learning off and a
person's pin hold; an exploring attempt is listed and granted to the tier it was sent to,
and to no other."""

from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.contract.conftest import World, create
from tests.contract.test_routing import BETA, MID, PROVIDERS, backlog
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.learning import OutcomeKind
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import route_outcomes
from wvo_mcp.services.route_outcomes import KEEP

pytestmark = pytest.mark.anyio

TOP: dict[str, Any] = {"provider": "beta", "model": "beta-2"}


async def opened(world: World, tmp_path: Path, learning: str = "") -> Orchestrator:
    path = tmp_path / "providers.yaml"
    path.write_text(PROVIDERS + (f"learning:\n{learning}" if learning else ""))
    return await world.open(providers_file=path, wip_global=50, wip_per_agent=5)


async def history(
    orch: Orchestrator,
    provider: str,
    tier: str,
    first_try: float,
    n: int,
    cost: float,
    tokens: int = 5000,
) -> None:
    """`n` outcomes of complexity 4-7 tasks on provider/tier, a share `first_try` landed
    first time, the rest returned; each cost `cost` and used `tokens` (by default a
    complexity 5 task's static estimate, so the learned estimate leaves it as it is)."""
    for i in range(n):
        landed = int((i + 1) * first_try) > int(i * first_try)
        kind: OutcomeKind = "landed_first_try" if landed else "returned"
        await orch.db.write(
            partial(route_outcomes.record, provider=provider, tier=tier, task_class="c4-7",
                    kind=kind, tokens=tokens, cost=cost, keep=KEEP, now=orch.clock())
        )  # fmt: skip


async def test_cold_start_routes_by_the_static_rule(world: World, tmp_path: Path) -> None:
    orch = await opened(world, tmp_path)
    await create(orch, *backlog(5))
    # Under min_evidence (5), and too dear per attempt to plausibly beat the static route.
    await history(orch, "beta", "any", 1.0, 4, 10.0)
    found = await orch.route_task("C5-0")
    assert (found.provider, found.tier, found.basis) == ("alpha", "mid", "cold_start")
    assert found.reason.startswith("lowest tier covering complexity 5 on alpha")
    assert "cold start, no route has 5 attempts yet" in found.reason
    assert (
        "beta/any unproven (3.6 of 5 attempts); untried: alpha/mid, alpha/big, beta/top"
        in found.reason
    )


async def test_before_any_route_is_proven_doubt_tries_one_that_could_win(
    world: World, tmp_path: Path
) -> None:
    orch = await opened(world, tmp_path)
    await create(orch, *backlog(5))
    await history(orch, "beta", "any", 1.0, 4, 0.001)  # unproven, but landed every time cheaply
    found = await orch.route_task("C5-0")
    assert (found.provider, found.tier, found.basis) == ("beta", "any", "exploration")
    assert found.reason.startswith("trying beta/any before any route is proven")
    assert "beta/any unproven (3.6 of 5 attempts)" in found.reason
    # Another process, its providers file giving no doubt (optimism 0): the cold start
    # keeps the static rule on the same statistics.
    quiet = await opened(world, tmp_path, "  optimism: 0\n")
    found = await quiet.route_task("C5-0")
    assert (found.provider, found.tier, found.basis) == ("alpha", "mid", "cold_start")


async def test_the_lowest_cost_per_landed_change_wins_and_says_why(
    world: World, tmp_path: Path
) -> None:
    orch = await opened(world, tmp_path, "  explore_share: 0\n")
    await create(orch, *backlog(5, 2))
    # alpha/mid is cheaper per attempt but lands one in ten; beta/any lands nine in ten.
    await history(orch, "alpha", "mid", 0.1, 20, 0.01)
    await history(orch, "beta", "any", 0.9, 20, 0.02)
    found = await orch.route_task("C5-0")
    assert (found.provider, found.tier, found.basis) == ("beta", "any", "learned")
    assert found.reason.startswith(
        "lowest est. cost per landed change: beta/any est. $0.029 per landed change, 93% "
        "first try, over 20 outcomes; alpha/mid est. $0.063 per landed change, 13% first try"
    )
    assert found.reason.endswith("untried: alpha/big, beta/top")  # offered above their ranges
    # A class learns only from its own: complexity 2 still goes the static way.
    assert (await orch.route_task("C2-1")).basis == "cold_start"

    # Every listing and grant follows the learned route.
    assert (await orch.plan_next("m", **MID)).tasks == []
    refused = await orch.claim("m", **MID)
    assert refused.reason == "no_task_for_tier"
    assert refused.message.endswith("cold start, no route has 5 attempts yet: the static rule")
    planned = await orch.plan_next("b", **BETA)
    assert [t.id for t in planned.tasks] == ["C5-0"]  # C2-1 goes to alpha/small
    assert planned.route_reason == found.reason
    granted = await orch.claim("b", task_id="C5-0", **BETA)
    assert granted.route is not None and granted.route.tier == "any"
    assert granted.route.reason == found.reason

    # The grant's own outcome counts where it was routed.
    assert granted.lease_token is not None
    await orch.update_status("C5-0", Status.DONE, "b", token=granted.lease_token)
    beta = await orch.db.read(partial(route_outcomes.stats_of, provider="beta"))
    assert {(r.tier, r.task_class): r.stats.outcomes for r in beta} == {("any", "c4-7"): 21}


async def test_a_task_estimate_learns_from_what_its_class_used(
    world: World, tmp_path: Path
) -> None:
    orch = await opened(world, tmp_path, "  explore_share: 0\n")
    own = {"id": "OWN", "title": "sized", "complexity": 6, "metadata": {"estimated_tokens": 7000}}
    await create(orch, *backlog(5, 5, 2), own)
    await history(orch, "alpha", "mid", 1.0, 4, 0.01, tokens=30_000)
    assert (await orch.route_task("C5-0")).estimated_tokens == 5000  # 4 of 5: still static
    await history(orch, "alpha", "mid", 1.0, 2, 0.01, tokens=30_000)
    assert (await orch.route_task("C5-0")).estimated_tokens == 30_000
    assert (await orch.route_task("C2-2")).estimated_tokens == 2000  # its class has no record
    assert (await orch.route_task("OWN")).estimated_tokens == 7000  # its own estimate stands

    # A grant reserves what was learned against the provider's budget (alpha: 50k an hour),
    # so the next such task no longer fits there.
    granted = await orch.claim("m", task_id="C5-0", **MID)
    assert granted.route is not None and granted.route.estimated_tokens == 30_000
    alpha = next(p for p in (await orch.provider_status()).providers if p.name == "alpha")
    assert alpha.hour.reserved_tokens == 30_000
    after = await orch.route_task("C5-1")
    assert (after.provider, after.tier) == ("beta", "any")
    assert "passed over alpha (over_hourly_budget)" in after.reason


@pytest.mark.parametrize(
    ("learning", "expected"),
    [
        # alpha/mid, its failures retried on alpha/big: half as dear per landed change as
        # beta/any, but one in two first time
        ("  explore_share: 0\n", ("alpha", "mid", "learned")),
        ("  explore_share: 0\n  floor: 0.6\n", ("beta", "any", "learned")),
        ("  explore_share: 0\n  floor: 0.95\n", ("alpha", "mid", "floor")),
        ("  enabled: false\n", ("alpha", "mid", "rule")),
    ],
)
async def test_the_floor_and_learning_off_hold(
    world: World, tmp_path: Path, learning: str, expected: tuple[str, str, str]
) -> None:
    orch = await opened(world, tmp_path, learning)
    await create(orch, *backlog(5))
    await history(orch, "alpha", "mid", 0.5, 20, 0.002)
    await history(orch, "alpha", "big", 0.9, 20, 0.024)  # where alpha/mid's failures go
    await history(orch, "beta", "any", 0.9, 20, 0.02)
    found = await orch.route_task("C5-0")
    assert (found.provider, found.tier, found.basis) == expected
    if found.basis == "floor":
        assert "every proven route is below the 95% first-try floor" in found.reason


async def test_a_pin_holds_whatever_was_learned_and_waits_while_blocked(
    world: World, tmp_path: Path
) -> None:
    pins = (
        "  pins:\n    - {epic: E-pay, provider: beta, tier: top}\n"
        "    - {task: C2-1, provider: beta, tier: top}\n"
    )
    orch = await opened(world, tmp_path, "  explore_share: 0\n" + pins)
    await create(orch, {"id": "P", "title": "pinned", "complexity": 5, "epic_id": "E-pay"})
    await create(orch, *backlog(5, 2))
    await history(orch, "alpha", "mid", 1.0, 20, 0.001)
    found = await orch.route_task("P")
    assert (found.provider, found.tier, found.basis) == ("beta", "top", "pinned")
    assert found.reason == "pinned to beta/top for epic E-pay by the providers file"
    assert (await orch.route_task("C5-0")).tier == "mid"  # the epic's only
    # The pinned tier's agent finds both, of complexities routing never sends it.
    assert sorted(t.id for t in (await orch.plan_next("t", **TOP)).tasks) == ["C2-1", "P"]
    assert (await orch.route_task("C2-1")).reason.endswith("for task C2-1 by the providers file")
    assert "P" not in [t.id for t in (await orch.plan_next("m", **MID)).tasks]
    refused = await orch.claim("m", task_id="P", **MID)
    assert refused.reason == "task_not_ready" and "beta/top" in refused.message

    await orch.record_usage("beta", "beta-2", 10, 0, "rate_limited")  # opens beta's breaker
    waiting = await orch.route_task("P")
    assert (waiting.routed, waiting.basis) == (False, "pinned")
    assert "which cannot take it now (circuit breaker open until" in waiting.reason
    assert [a.why for a in waiting.alternatives] == ["breaker_open"]


async def test_doubt_sends_every_task_of_the_class_to_a_hopeful_route_until_it_is_ruled_out(
    world: World, tmp_path: Path
) -> None:
    orch = await opened(world, tmp_path, "  explore_share: 0\n")
    await create(orch, *backlog(5, 5))
    await history(orch, "alpha", "mid", 0.6, 20, 0.03)  # $0.05 per landed change
    found = await orch.route_task("C5-0")
    assert (found.provider, found.tier, found.basis) == ("beta", "any", "exploration")
    assert found.reason.startswith(
        "trying beta/any: too few outcomes to rule out that it beats alpha/mid (as low as $"
    )
    planned = await orch.plan_next("b", limit=5, **BETA)
    assert [t.id for t in planned.tasks] == ["C5-0", "C5-1"]  # the whole class goes there
    assert (await orch.plan_next("m", **MID)).tasks == []
    granted = await orch.claim("b", task_id="C5-0", **BETA)
    assert granted.claimed and granted.route is not None
    assert granted.route.reason == found.reason
    # Its outcomes rule it out (it lands one in ten at a dearer try), and the next untried
    # route is given the doubt, until the outcomes of each rule it out too.
    await history(orch, "beta", "any", 0.1, 12, 0.04)
    after = await orch.route_task("C5-1")
    assert (after.provider, after.tier, after.basis) == ("alpha", "big", "exploration")
    await history(orch, "alpha", "big", 0.1, 12, 0.2)
    await history(orch, "beta", "top", 0.1, 12, 0.2)
    back = await orch.route_task("C5-1")
    assert (back.provider, back.tier, back.basis) == ("alpha", "mid", "learned")


async def test_an_exploring_attempt_is_listed_and_granted_only_where_it_was_sent(
    world: World, tmp_path: Path
) -> None:
    # Half the attempts may explore by their draws (and none by doubt): beta/any and
    # alpha/big are unproven beside alpha/mid.
    orch = await opened(world, tmp_path, "  explore_share: 0.5\n  optimism: 0\n")
    await create(orch, *backlog(*[5] * 12))
    await history(orch, "alpha", "mid", 0.6, 20, 0.03)  # $0.05 per landed change
    sent = {t: await orch.route_task(t) for t in (f"C5-{i}" for i in range(12))}
    bases = {d.basis for d in sent.values()}
    assert bases == {"learned", "exploration"}
    assert all(d.provider is not None for d in sent.values())
    agents = {("alpha", "mid"): MID, ("beta", "any"): BETA, ("alpha", "big"): {
        "provider": "alpha", "model": "alpha-l"}}  # fmt: skip
    listed = {
        route: {t.id for t in (await orch.plan_next(f"{route}", limit=20, **who)).tasks}
        for route, who in agents.items()
    }
    for task_id, decision in sent.items():
        route = (decision.provider, decision.tier)
        assert [task_id in ids for r, ids in listed.items() if r != route] == [False, False]
        assert task_id in listed[route], (task_id, decision.reason)
    explored = next(t for t, d in sent.items() if d.basis == "exploration")
    decision = sent[explored]
    assert decision.reason.startswith(f"exploring {decision.provider}/{decision.tier}")
    who = agents[decision.provider or "", decision.tier or ""]
    granted = await orch.claim("x", task_id=explored, **who)
    assert granted.claimed and granted.route is not None
    assert granted.route.reason == decision.reason
