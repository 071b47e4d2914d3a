"""Provider routing: tiers decide what an agent gets, usage charges budgets, failures open a
breaker that half-opens after its cool-down by the clock, failed work escalates a tier."""

from pathlib import Path
from typing import Any

import pytest

from tests.contract.conftest import World, create
from tests.integration.test_routing import PROVIDERS as STDIO_PROVIDERS
from wvo_mcp.errors import IllegalTransition, LeaseLost, ValidationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status

pytestmark = pytest.mark.anyio
assert "cooldown_seconds: 0.5" in STDIO_PROVIDERS

# The stdio routing tests' providers, with a breaker cool-down the clock steps through.
PROVIDERS = STDIO_PROVIDERS.replace("cooldown_seconds: 0.5", "cooldown_seconds: 30").replace(
    "cooldown_cap_seconds: 2", "cooldown_cap_seconds: 100"
)
SMALL: dict[str, Any] = {"provider": "alpha", "model": "alpha-s"}
MID: dict[str, Any] = {"provider": "alpha", "model": "alpha-m"}
BIG: dict[str, Any] = {"provider": "alpha", "model": "alpha-l"}
BETA: dict[str, Any] = {"provider": "beta", "model": "beta-1"}


@pytest.fixture
async def routed(world: World, tmp_path: Path) -> Orchestrator:
    path = tmp_path / "providers.yaml"
    path.write_text(PROVIDERS)
    return await world.open(providers_file=path, wip_global=20, retry_base_seconds=0)


def backlog(*complexities: int) -> list[dict[str, Any]]:
    return [
        {"id": f"C{c}-{i}", "title": f"complexity {c}", "complexity": c}
        for i, c in enumerate(complexities)
    ]


async def test_each_tier_gets_only_what_routing_sends_it(routed: Orchestrator) -> None:
    await create(routed, *backlog(*range(1, 11)))
    planned = await routed.plan_next("s", limit=100, **SMALL)
    assert planned.routed_for == "alpha/small (alpha-s)"
    assert sorted(t.id for t in planned.tasks) == ["C1-0", "C2-1", "C3-2"]

    taken = []
    while (claim := await routed.claim("s", **SMALL)).claimed:
        assert claim.task is not None and claim.lease_token is not None and claim.route
        assert (claim.route.provider, claim.route.tier, claim.route.model) == (
            "alpha",
            "small",
            "alpha-s",
        )
        assert claim.route.estimated_tokens == claim.task.complexity * 1000
        taken.append(claim.task.complexity)
        await routed.update_status(claim.task.id, Status.DONE, "s", token=claim.lease_token)
    assert sorted(taken) == [1, 2, 3]
    assert claim.reason == "no_task_for_tier" and "alpha/" in claim.message
    refused = await routed.claim("s", task_id="C5-4", **SMALL)
    assert refused.reason == "task_not_ready" and "alpha/mid" in refused.message

    # Registered once, an agent is routed without saying so again.
    me = await routed.register_agent("l", **BIG)
    assert (me.tier, me.complexity) == ("big", (8, 10))
    big = await routed.claim("l")  # 15 / 16 outranks 15 / 18 and 15 / 20
    assert big.task is not None and big.task.id == "C8-7" and big.route is not None
    assert big.route.tier == "big"
    with pytest.raises(ValidationFailed, match="known: alpha, beta"):
        await routed.register_agent("r", "gamma", "x")


async def test_usage_charges_budgets_and_a_full_provider_fails_over(
    routed: Orchestrator,
) -> None:
    await create(routed, *backlog(5))
    first = await routed.route_task("C5-0")
    assert (first.provider, first.tier, first.estimated_tokens) == ("alpha", "mid", 5000)

    used = await routed.record_usage("alpha", "alpha-m", 40_000, 6_000, "success")
    assert (used.hour.used_tokens, used.day.used_tokens) == (46_000, 46_000)
    assert used.hour.share == pytest.approx(0.92) and used.day.share == pytest.approx(0.46)
    assert used.cost == pytest.approx(40 * 0.002 + 6 * 0.004)

    routed_now = await routed.route_task("C5-0")
    assert (routed_now.provider, routed_now.tier) == ("beta", "any")
    passed = routed_now.alternatives[0]
    assert (passed.provider, passed.why) == ("alpha", "over_hourly_budget")
    assert "46000 tokens used" in passed.detail
    none_for_alpha = await routed.claim("a", **MID)
    assert none_for_alpha.reason == "no_task_for_tier" and "beta/any" in none_for_alpha.message

    taken = await routed.claim("b", **BETA)
    assert taken.claimed and taken.route is not None and taken.route.provider == "beta"
    status = await routed.provider_status()
    alpha, beta = status.providers
    assert (beta.in_flight, beta.hour.reserved_tokens) == (1, 5000)
    assert alpha.hour.used_tokens == 46_000 and alpha.spend_day == pytest.approx(used.cost)
    assert [t.hour_tokens for t in alpha.tiers] == [0, 46_000, 0]

    # Usage charged to a task goes through its holder's lease, and frees its reservation.
    assert taken.lease_token is not None
    with pytest.raises(ValidationFailed, match="needs that task's lease_token"):
        await routed.record_usage("beta", "beta-1", 1000, 0, "success", "C5-0")
    await routed.record_usage("beta", "beta-1", 3000, 0, "success", "C5-0", taken.lease_token)
    beta = (await routed.provider_status()).providers[1]
    assert (beta.hour.used_tokens, beta.hour.reserved_tokens) == (3000, 2000)


async def test_failures_open_a_breaker_until_its_cool_down(
    world: World, routed: Orchestrator
) -> None:
    await create(routed, *backlog(2, 2))
    once = await routed.record_usage("alpha", "alpha-s", 10, 0, "failure")
    assert (once.breaker.state, once.breaker.failures) == ("closed", 1)
    opened = await routed.record_usage("alpha", "alpha-s", 10, 0, "failure")
    assert (opened.breaker.state, opened.breaker.failures) == ("open", 2)
    assert opened.breaker.reopens_at == world.clock.text(30)
    routed_now = await routed.route_task("C2-0")
    assert routed_now.provider == "beta"
    assert routed_now.alternatives[0].why == "breaker_open"
    assert (await routed.claim("s1", **SMALL)).reason == "no_task_for_tier"

    world.clock.advance(29.999)
    assert (await routed.provider_status()).providers[0].breaker.state == "open"
    world.clock.advance(0.001)
    assert (await routed.provider_status()).providers[0].breaker.state == "half_open"

    # Half-open lets one task through: the first claim is the trial, the next fails over.
    trial = await routed.claim("s1", **SMALL)
    assert trial.claimed and trial.route is not None and trial.route.provider == "alpha"
    held_back = await routed.route_task("C2-1")
    assert held_back.provider == "beta"
    assert held_back.alternatives[0].why == "probe_in_flight"

    # The trial fails: open again, for twice the cool-down.
    assert trial.task is not None and trial.lease_token is not None
    again = await routed.record_usage(
        "alpha", "alpha-s", 10, 0, "failure", trial.task.id, trial.lease_token
    )
    assert again.breaker.state == "open" and again.breaker.reopens_at == world.clock.text(60)
    world.clock.advance(60)
    assert (await routed.route_task("C2-1")).provider == "alpha"  # half-open, no probe out
    closed = await routed.record_usage(
        "alpha", "alpha-s", 800, 200, "success", trial.task.id, trial.lease_token
    )
    assert (closed.breaker.state, closed.breaker.failures, closed.breaker.reopens_at) == (
        "closed",
        0,
        None,
    )
    assert (await routed.route_task("C2-1")).provider == "alpha"


async def test_a_rate_limit_opens_the_breaker_at_once(world: World, routed: Orchestrator) -> None:
    limited = await routed.record_usage("beta", "beta-1", 1, 0, "rate_limited")
    assert limited.breaker.state == "open" and limited.breaker.reopens_at == world.clock.text(30)
    assert "circuit breaker is open" in limited.message


async def test_a_failed_attempt_is_routed_one_tier_up(routed: Orchestrator) -> None:
    await create(routed, *backlog(2))
    claim = await routed.claim("s", **SMALL)
    assert claim.lease_token is not None
    await routed.update_status(
        "C2-0", Status.FAILED, "s", token=claim.lease_token, reason="could not do it"
    )
    escalated = await routed.route_task("C2-0")
    assert (escalated.provider, escalated.tier) == ("alpha", "mid")
    assert "escalated after a failure on alpha/small" in escalated.reason
    assert not (await routed.claim("s", **SMALL)).claimed
    again = await routed.claim("m", **MID)
    assert again.claimed and again.attempt == 2 and again.lease_token is not None
    # A context limit reported by the holder sends the next attempt up again; the first
    # attempt's token no longer counts.
    with pytest.raises(LeaseLost):
        await routed.record_usage(
            "alpha", "alpha-m", 100, 0, "context_limit", "C2-0", claim.lease_token
        )
    assert (await routed.route_task("C2-0")).tier == "mid"
    await routed.record_usage(
        "alpha", "alpha-m", 100, 0, "context_limit", "C2-0", again.lease_token
    )
    assert (await routed.route_task("C2-0")).tier == "big"


SOLO = """\
version: 1
providers:
  - name: solo
    preference: 1
    tiers:
      - {name: only, model: solo-1, complexity: [1, 10],
         input_cost_per_1k: 0.001, output_cost_per_1k: 0.002}
"""


async def test_a_task_failed_at_the_top_tier_is_no_dead_end(world: World, tmp_path: Path) -> None:
    """With one provider of one tier (what `init` writes), a failed attempt leaves nothing
    above it: the route says how out, and `requeue` routes it afresh."""
    path = tmp_path / "providers.yaml"
    path.write_text(SOLO)
    solo = await world.open(providers_file=path, retry_base_seconds=0)
    await create(solo, {"id": "T", "title": "t"}, {"id": "U", "title": "u"})
    claim = await solo.claim("s", provider="solo", model="solo-1", task_id="T")
    assert claim.lease_token is not None
    await solo.update_status("T", Status.FAILED, "s", token=claim.lease_token, reason="env")
    stuck = await solo.route_task("T")
    assert not stuck.routed
    assert "time will not change that: `wvo-mcp requeue TASK` routes it afresh" in stuck.reason
    shown = {t.id: t.route for t in (await solo.status_report("cli")).top_ready}
    assert (shown["T"] or "").startswith("unrouted: no provider can take it now"), shown
    assert "None" not in (shown["T"] or "")
    moved = await solo.requeue("T", "person:ann")
    assert moved.status is Status.PENDING
    assert "failed tier solo/only" in moved.message and "routed afresh" in moved.message
    assert (await solo.route_task("T")).tier == "only"
    again = await solo.claim("s", provider="solo", model="solo-1", task_id="T")
    assert again.claimed and again.attempt == 2
    # A pending task with nothing to clear: refused, saying so, and nothing changes.
    before = (await solo.get_task("U")).model_dump()
    with pytest.raises(IllegalTransition, match="already pending, with no failed tier"):
        await solo.requeue("U", "person:ann")
    assert (await solo.get_task("U")).model_dump() == before
