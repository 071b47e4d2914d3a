"""Whose word moves budgets and breakers (docs/security.md, "Usage-trust rule"), on both
backends: one reported call is bounded for every reporter; an autopilot worker's run token
reports only about its own task, provider and tier, and its report is noted, never charged;
an agent token charges only the provider its agent registered; the autopilot's own record of
a run is what budgets and breakers follow, and what the learned route's statistics count."""

from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.contract.conftest import World, create, events_of
from tests.contract.test_routing import PROVIDERS
from wvo_mcp.errors import LeaseLost, ValidationFailed
from wvo_mcp.models import ProviderStatusReport
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import agents, route_outcomes, usage
from wvo_mcp.services.bearer_tokens import Scope

pytestmark = pytest.mark.anyio
SMALL = ("alpha", "alpha-s")


@pytest.fixture
async def routed(world: World, tmp_path: Path) -> Orchestrator:
    path = tmp_path / "providers.yaml"
    path.write_text(PROVIDERS)
    return await world.open(providers_file=path, wip_global=20, retry_base_seconds=0)


def budgets(status: ProviderStatusReport) -> list[Any]:
    """What routing decides on: each provider's usage, per tier, and its breaker."""
    return [
        (p.name, p.hour.used_tokens, p.day.used_tokens, p.spend_day, p.breaker,
         [(t.name, t.hour_tokens, t.day_tokens) for t in p.tiers])
        for p in status.providers
    ]  # fmt: skip


async def test_one_call_beyond_any_context_window_is_refused_for_everyone(
    routed: Orchestrator,
) -> None:
    before = budgets(await routed.provider_status())
    reporters = [usage.ANYONE, usage.Reporter(own_provider=True)]
    await routed.register_agent("a1", *SMALL)
    for reporter in reporters:
        for tokens in ((usage.MAX_CALL_TOKENS + 1, 0), (3_000_000, 3_000_000), (10**9, 10**9)):
            with pytest.raises(ValidationFailed, match="0 to 4,000,000 tokens") as refused:
                await routed.record_usage(*SMALL, *tokens, "failure", agent_id="a1",
                                          reporter=reporter)  # fmt: skip
            assert "Nothing was recorded" in str(refused.value)
    assert budgets(await routed.provider_status()) == before
    # The bound itself is a call some model could make.
    at_most = await routed.record_usage(*SMALL, usage.MAX_CALL_TOKENS - 1, 1, "success")
    assert at_most.day.used_tokens == usage.MAX_CALL_TOKENS


async def test_the_autopilots_record_of_a_whole_run_is_not_one_call(
    routed: Orchestrator,
) -> None:
    """A run is many calls (a CLI's report sums them): the autopilot records it whole."""
    run = await routed.record_run(*SMALL, 9_000_000, 200_000, "success", agent_id="alpha-1")
    assert run.day.used_tokens == 9_200_000


async def test_a_run_tokens_report_is_noted_on_its_own_task_and_charges_nothing(
    routed: Orchestrator,
) -> None:
    await create(routed, {"id": "MINE", "title": "mine", "complexity": 2},
                 {"id": "OTHER", "title": "another's", "complexity": 2})  # fmt: skip
    claim = await routed.claim("alpha-1", "MINE", provider="alpha", model="alpha-s")
    other = await routed.claim("alpha-2", "OTHER", provider="alpha", model="alpha-s")
    assert claim.lease_token is not None and other.lease_token is not None
    run = usage.Reporter(run=Scope("MINE", "worker", provider="alpha", model="alpha-s"))
    before = budgets(await routed.provider_status())
    trail = await events_of(routed, "MINE")

    def report(
        *call: Any,
        task: str | None = "MINE",
        token: str | None = claim.lease_token,
        outcome: str = "auth_failed",
        reporter: usage.Reporter = run,
    ) -> Any:
        return routed.record_usage(*call, 1000, 1000, outcome, task, token,  # type: ignore[arg-type]
                                   "alpha-1", reporter)  # fmt: skip

    refusals: list[tuple[dict[str, Any], str]] = [
        ({"call": ("beta", "beta-1")}, "reports usage for provider 'alpha' only, not 'beta'"),
        ({"call": ("alpha", "alpha-m")}, "for tier 'small' (model 'alpha-s') only, not 'mid'"),
        ({"call": SMALL, "task": None, "token": None}, "about that task only, not no task"),
        ({"call": SMALL, "task": "OTHER", "token": other.lease_token}, "not task 'OTHER'"),
        ({"call": SMALL, "token": None}, "needs task_id 'MINE' with its lease_token"),
        ({"call": SMALL, "reporter": usage.Reporter(run=Scope("MINE", "worker"))},
         "names no provider it was launched on"),
        ({"call": SMALL, "reporter": usage.Reporter(run=Scope("MINE", "reviewer", "c" * 40))},
         "names no provider"),
    ]  # fmt: skip
    for given, why in refusals:
        call = given.pop("call")
        with pytest.raises(ValidationFailed, match="Nothing was recorded") as refused:
            await report(*call, **given)
        assert why in str(refused.value), (given, refused.value)
    with pytest.raises(LeaseLost):
        await report(*SMALL, token="f" * 32)
    assert await events_of(routed, "MINE") == trail

    # Its own provider and tier, even a failure: noted, and no breaker or budget moves.
    for _ in range(3):
        noted = await report(*SMALL)
        assert noted.breaker.state == "closed" and "Not charged" in noted.message
    limited = await report(*SMALL, outcome="context_limit")  # escalates nothing either
    assert limited.tier == "small"
    assert budgets(await routed.provider_status()) == before
    assert (await routed.route_task("MINE")).tier == "small"
    events = [e for e in await events_of(routed, "MINE") if e.kind == "usage_reported"]
    assert [(e.actor, e.reason) for e in events] == [
        ("alpha-1", "1000 input and 1000 output tokens on alpha/small (auth_failed), as the "
         "worker reports them")
    ] * 3 + [("alpha-1", "1000 input and 1000 output tokens on alpha/small (context_limit), "
              "as the worker reports them")]  # fmt: skip

    # The autopilot's own record of the same run is what counts.
    charged = await routed.record_run(*SMALL, 1000, 1000, "auth_failed", "MINE",
                                      claim.lease_token, "alpha-1")  # fmt: skip
    assert charged.breaker.state == "open" and charged.day.used_tokens == 2000


async def test_a_workers_report_never_reaches_its_routes_statistics(
    routed: Orchestrator,
) -> None:
    """The learned route reads what the autopilot charged, never what a worker says: a
    worker that reports its run as nearly free would otherwise draw work to its route."""
    await create(routed, {"id": "MINE", "title": "mine", "complexity": 2})
    claim = await routed.claim("alpha-1", "MINE", provider="alpha", model="alpha-s")
    assert claim.lease_token is not None
    run = usage.Reporter(run=Scope("MINE", "worker", provider="alpha", model="alpha-s"))
    for tokens in (1, 3_000_000):
        await routed.record_usage(*SMALL, tokens, 0, "success", "MINE", claim.lease_token,
                                  "alpha-1", run)  # fmt: skip
    charged = await routed.record_run(*SMALL, 8000, 2000, "success", "MINE",
                                      claim.lease_token, "alpha-1")  # fmt: skip
    await routed.update_status("MINE", Status.DONE, "alpha-1", token=claim.lease_token)
    found = await routed.db.read(partial(route_outcomes.stats_of, provider="alpha"))
    assert [(r.tier, r.task_class, r.stats.tokens, r.stats.cost) for r in found] == [
        ("small", "c1-3", 10_000.0, pytest.approx(charged.cost))
    ]


async def test_an_agent_token_charges_only_the_provider_its_agent_registered(
    routed: Orchestrator,
) -> None:
    own = usage.Reporter(own_provider=True)
    before = budgets(await routed.provider_status())
    with pytest.raises(ValidationFailed) as unregistered:
        await routed.record_usage("beta", "beta-1", 10, 0, "rate_limited", agent_id="a1",
                                  reporter=own)  # fmt: skip
    assert "call agent_register(provider, model) first" in str(unregistered.value)
    await routed.register_agent("a1", *SMALL)
    for model in ("beta-1", "beta-2"):
        with pytest.raises(ValidationFailed) as refused:
            await routed.record_usage("beta", model, 10, 0, "rate_limited", agent_id="a1",
                                      reporter=own)  # fmt: skip
        assert "runs on alpha/small (alpha-s): its token reports usage for provider 'alpha' " \
            "only, not 'beta'" in str(refused.value)  # fmt: skip
    assert budgets(await routed.provider_status()) == before
    # Another tier of its own provider is its own: an agent may change models.
    mid = await routed.record_usage("alpha", "alpha-m", 10, 0, "success", agent_id="a1",
                                    reporter=own)  # fmt: skip
    assert (mid.provider, mid.tier, mid.day.used_tokens) == ("alpha", "mid", 10)
    # Anyone else (stdio's one agent, an operator token) may name any provider.
    other = await routed.record_usage("beta", "beta-1", 10, 0, "success", agent_id="a1")
    assert other.provider == "beta"


async def test_an_attempt_keeps_a_bounded_number_of_its_workers_reports(
    routed: Orchestrator,
) -> None:
    await create(routed, {"id": "MINE", "title": "mine", "complexity": 2})
    claim = await routed.claim("alpha-1", "MINE", provider="alpha", model="alpha-s")
    assert claim.lease_token is not None
    run = usage.Reporter(run=Scope("MINE", "worker", provider="alpha", model="alpha-s"))

    def report(token: str) -> Any:
        return routed.record_usage(*SMALL, 10, 10, "success", "MINE", token, "alpha-1", run)

    for _ in range(usage.NOTED_PER_ATTEMPT):
        await report(claim.lease_token)
    trail = await events_of(routed, "MINE")
    for _ in range(3):
        with pytest.raises(ValidationFailed, match="Nothing was recorded") as refused:
            await report(claim.lease_token)
        assert f"already has {usage.NOTED_PER_ATTEMPT} usage reports noted" in str(refused.value)
    assert await events_of(routed, "MINE") == trail
    # The next attempt has a cap of its own.
    await routed.update_status("MINE", Status.PENDING, "alpha-1", token=claim.lease_token)
    again = await routed.claim("alpha-1", "MINE", provider="alpha", model="alpha-s")
    assert again.lease_token is not None
    assert "Not charged" in (await report(again.lease_token)).message


async def test_a_bound_agent_never_moves_to_another_provider(routed: Orchestrator) -> None:
    """agents.Bound, an agent token's caller: its token's provider, else its first
    registration's; a refused registration or claim writes nothing, and a refused claim
    (nothing for it) registers nothing."""
    made_for, first = agents.Bound("alpha"), agents.Bound()
    idle = await routed.claim("a2", provider="beta", model="beta-1", bound=first)
    assert not idle.claimed and idle.reason == "no_ready_task"
    await create(routed, {"id": "T", "title": "t", "complexity": 2})
    # a2 registered nothing with that refused claim: beta may still be its first.
    await routed.register_agent("a2", "beta", "beta-1", first)
    for agent, bound, other in (("a1", made_for, ("beta", "beta-1")),
                                ("a2", first, SMALL)):  # fmt: skip
        for attempt in (
            partial(routed.register_agent, agent, *other, bound),
            partial(routed.claim, agent, "T", provider=other[0], model=other[1], bound=bound),
            partial(routed.claim, agent, provider=other[0], model=other[1], bound=bound),
        ):
            with pytest.raises(ValidationFailed, match="Nothing was changed"):
                await attempt()
    assert (await routed.get_task("T")).status == Status.PENDING
    claimed = await routed.claim("a1", "T", provider="alpha", model="alpha-s", bound=made_for)
    assert claimed.claimed
    assert (await routed.plan_next("a2", 5)).counts is not None
    # Unbound (stdio, an operator): an agent may move.
    moved = await routed.register_agent("a2", *SMALL)
    assert moved.provider == "alpha"
