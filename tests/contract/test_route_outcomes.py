"""Outcome statistics per route (services/route_outcomes.py): the decayed sums per provider,
tier and task class, faded and added in one upsert; concurrent writers lose nothing; a refused
record changes nothing; and the attempt's end (done, failed, a lost lease, returned or held by
the merge queue, sent back by a review) counts on its route in the transaction that records
it. On every backend."""

from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.contract.conftest import START, World, create
from tests.contract.test_routing import MID, PROVIDERS
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.learning import RouteStats, task_class
from wvo_mcp.rules.transitions import Gate, Status
from wvo_mcp.services import landing_queue, route_outcomes
from wvo_mcp.services.landing_queue import Return
from wvo_mcp.services.route_outcomes import KEEP
from wvo_mcp.store import Tx

pytestmark = pytest.mark.anyio

SUMS = ("outcomes", "attempts", "first_try_landed", "landed", "returned", "failed", "held")
TARGET, RUN, BASE = "main", "autopilot-test", "0" * 40


async def record(
    orch: Orchestrator,
    kind: str,
    *,
    keep: float = 1.0,
    tokens: float = 0,
    cost: float = 0,
    route: tuple[str, str, str] = ("alpha", "mid", "c4-6"),
) -> None:
    await orch.db.write(
        partial(route_outcomes.record, provider=route[0], tier=route[1], task_class=route[2],
                kind=kind, tokens=tokens, cost=cost, keep=keep, now=orch.clock())
    )  # fmt: skip


async def stats(orch: Orchestrator) -> dict[tuple[str, str, str], RouteStats]:
    found = await orch.db.read(route_outcomes.all_stats)
    return {(r.provider, r.tier, r.task_class): r.stats for r in found}


def sums(found: RouteStats) -> dict[str, float]:
    return {name: getattr(found, name) for name in (*SUMS, "tokens", "cost")}


def counts(**given: float) -> dict[str, float]:
    return {**dict.fromkeys((*SUMS, "tokens", "cost"), 0.0), **given}


def test_task_classes_are_bands_of_complexity() -> None:
    assert [task_class(c) for c in range(1, 11)] == ["c1-3"] * 3 + ["c4-7"] * 4 + ["c8-10"] * 3


async def test_keep_one_gives_plain_counts(world: World, orch: Orchestrator) -> None:
    for kind in ("landed_first_try", "landed", "returned", "returned", "failed", "held"):
        await record(orch, kind, tokens=100, cost=0.25)
    await record(orch, "failed", route=("alpha", "mid", "c7-10"), tokens=7)
    await record(orch, "held", route=("beta", "any", "c4-6"))
    found = await stats(orch)
    assert list(found) == [
        ("alpha", "mid", "c4-6"), ("alpha", "mid", "c7-10"), ("beta", "any", "c4-6")
    ]  # fmt: skip
    assert sums(found["alpha", "mid", "c4-6"]) == counts(
        outcomes=6, attempts=5, first_try_landed=1, landed=2, returned=2, failed=1, held=1,
        tokens=600, cost=1.5,
    )  # fmt: skip
    assert sums(found["alpha", "mid", "c7-10"]) == counts(
        outcomes=1, attempts=1, failed=1, tokens=7
    )
    assert found["alpha", "mid", "c4-6"].updated_at == world.clock.now()
    beta = await orch.db.read(partial(route_outcomes.stats_of, provider="beta"))
    assert [(r.tier, r.task_class, r.stats.held) for r in beta] == [("any", "c4-6", 1.0)]


async def test_each_outcome_fades_the_older_sums_by_keep(world: World, orch: Orchestrator) -> None:
    await record(orch, "landed_first_try", keep=0.5, tokens=100, cost=1.0)
    world.clock.advance(5)
    await record(orch, "returned", keep=0.5, tokens=50, cost=0.5)
    found = (await stats(orch))["alpha", "mid", "c4-6"]
    assert sums(found) == counts(
        outcomes=2, attempts=1.5, first_try_landed=0.5, landed=0.5, returned=1, tokens=100,
        cost=1.0,
    )  # fmt: skip
    assert found.updated_at == world.clock.now()
    await record(orch, "failed", keep=0.5, tokens=0, cost=0)
    found = (await stats(orch))["alpha", "mid", "c4-6"]
    assert sums(found) == counts(
        outcomes=3, attempts=1.75, first_try_landed=0.25, landed=0.25, returned=0.5,
        failed=1, tokens=50, cost=0.5,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("given", "refusal"),
    [
        ({"kind": "won"}, "outcome 'won' is not one of landed_first_try, landed, returned"),
        ({"keep": 0.0}, r"keep 0.0: give a factor in \(0, 1\]"),
        ({"keep": 1.5}, r"keep 1.5: give a factor in \(0, 1\]"),
        ({"keep": float("nan")}, "keep nan"),
        ({"keep": True}, "keep True"),
        ({"tokens": -1}, "tokens -1: give a finite number >= 0"),
        ({"cost": float("inf")}, "cost inf: give a finite number >= 0"),
        ({"provider": " "}, "provider ' ': give a non-empty name"),
        ({"task_class": ""}, "task class '': give a non-empty name"),
    ],
)
async def test_a_refused_record_says_what_is_accepted_and_changes_nothing(
    orch: Orchestrator, given: dict[str, Any], refusal: str
) -> None:
    await record(orch, "landed_first_try", tokens=10, cost=0.5)
    before = await stats(orch)
    args: dict[str, Any] = {
        "provider": "alpha", "tier": "mid", "task_class": "c4-6", "kind": "returned",
        "tokens": 1, "cost": 1.0, "keep": 0.5, "now": orch.clock(),
    }  # fmt: skip
    with pytest.raises(ValidationFailed, match=refusal):
        await orch.db.write(partial(route_outcomes.record, **{**args, **given}))
    assert await stats(orch) == before


async def test_writers_on_two_servers_lose_no_outcome(world: World) -> None:
    """Identical outcomes on one route from two servers at once, each its own transaction:
    whatever the order, the sums are those of every outcome, faded one after the other."""
    servers = [await world.open(threaded=True), await world.open(threaded=True)]
    each, keep = 40, 0.9

    async def writer(orch: Orchestrator) -> None:
        for _ in range(each):
            await record(orch, "returned", keep=keep, tokens=10, cost=0.5)

    async with anyio.create_task_group() as group:
        for orch in servers:
            group.start_soon(writer, orch)
    expected = 0.0
    for _ in range(2 * each):
        expected = expected * keep + 1
    found = (await stats(servers[0]))["alpha", "mid", "c4-6"]
    assert found.returned == pytest.approx(expected, rel=1e-12)
    assert found.outcomes == 2 * each  # counted once each, never faded
    assert found.tokens == pytest.approx(10 * expected, rel=1e-12)
    assert found.landed == 0


async def test_a_rolled_back_transaction_leaves_no_outcome(orch: Orchestrator) -> None:
    def recorded_then_refused(tx: Tx) -> None:
        route_outcomes.record(tx, "alpha", "mid", "c4-6", "failed", 5, 0.1, KEEP, START)
        raise ValidationFailed("refused after the outcome was written")

    with pytest.raises(ValidationFailed, match="refused after"):
        await orch.db.write(recorded_then_refused)
    assert await stats(orch) == {}


# --- the attempt's end counts on its route ----------------------------------------------------


@pytest.fixture
async def routed(world: World, tmp_path: Path) -> Orchestrator:
    path = tmp_path / "providers.yaml"
    path.write_text(PROVIDERS)
    return await world.open(providers_file=path, wip_global=20, retry_base_seconds=0)


def mid_cost(tokens_in: int, tokens_out: int) -> float:
    """What alpha/mid charges (input 0.002, output 0.004 per 1k)."""
    return tokens_in / 1000 * 0.002 + tokens_out / 1000 * 0.004


async def claimed(
    orch: Orchestrator, task_id: str, agent: str, used: tuple[int, int], gate: Gate = Gate.NONE
) -> str:
    """Claimed by an alpha/mid agent, which reports `used` tokens (in, out) on it."""
    claim = await orch.claim(agent, task_id, gate=gate, **MID)
    assert claim.claimed and claim.lease_token and claim.route, claim
    assert (claim.route.provider, claim.route.tier) == ("alpha", "mid")
    await orch.record_usage(
        "alpha", "alpha-m", *used, "success", task_id, claim.lease_token, agent
    )  # fmt: skip
    return claim.lease_token


async def test_a_holders_done_and_failure_count_on_the_attempts_route(
    routed: Orchestrator,
) -> None:
    await create(
        routed,
        {"id": "F", "title": "fails", "complexity": 5},
        {"id": "D", "title": "done", "complexity": 4},
        {"id": "S", "title": "small", "complexity": 2},
    )
    token = await claimed(routed, "F", "w1", (1000, 200))
    moved = await routed.update_status("F", Status.FAILED, "w1", token, "tests fail")
    assert moved.status == Status.PENDING  # retried later: still a failed attempt
    found = await stats(routed)
    assert sums(found["alpha", "mid", "c4-7"]) == pytest.approx(
        counts(outcomes=1, attempts=1, failed=1, tokens=1200, cost=mid_cost(1000, 200))
    )
    token = await claimed(routed, "D", "w2", (3000, 1000))
    await routed.update_status("D", Status.DONE, "w2", token)
    found = await stats(routed)
    assert sums(found["alpha", "mid", "c4-7"]) == pytest.approx(
        counts(
            outcomes=2, attempts=1 + KEEP, first_try_landed=1, landed=1, failed=KEEP,
            tokens=4000 + 1200 * KEEP, cost=mid_cost(3000, 1000) + mid_cost(1000, 200) * KEEP,
        )
    )  # fmt: skip
    # A move that is not an attempt's end counts nothing: a release, a submission.
    claim = await routed.claim("w3", "S", provider="alpha", model="alpha-s")
    assert claim.lease_token is not None
    await routed.update_status("S", Status.PENDING, "w3", claim.lease_token)
    assert set(await stats(routed)) == {("alpha", "mid", "c4-7")}


async def test_a_lost_lease_is_a_failed_attempt(world: World, routed: Orchestrator) -> None:
    await create(routed, {"id": "T", "title": "silent", "complexity": 6})
    await claimed(routed, "T", "w1", (500, 100))
    world.clock.advance(61)  # past the 60 s lease
    taken = await routed.claim("w2", "T", **MID)
    assert taken.claimed, taken
    found = (await stats(routed))["alpha", "mid", "c4-7"]
    assert sums(found) == pytest.approx(
        counts(outcomes=1, attempts=1, failed=1, tokens=600, cost=mid_cost(500, 100))
    )


async def hold_target(orch: Orchestrator) -> int:
    now = orch.clock()
    fence = await orch.db.write(
        partial(
            landing_queue.hold_target, target=TARGET, run=RUN, until=now.replace(year=2040), now=now
        )
    )
    assert fence is not None
    return fence


async def submitted(orch: Orchestrator, task_id: str, agent: str, commit: str, gate: Gate) -> int:
    token = await claimed(orch, task_id, agent, (2000, 500), gate)
    await orch.update_status(task_id, Status.NEEDS_REVIEW, agent, token)
    item = await orch.take_submission(task_id, commit, BASE, TARGET)
    return item.id


async def sent_back(orch: Orchestrator, fence: int, entry_id: int, hold: str | None) -> str:
    """The entry taken into a batch, then sent back (`hold`: held for a person)."""
    await orch.db.write(
        partial(landing_queue.start, target=TARGET, run=RUN, fence=fence, ids=[entry_id])
    )
    back = Return("the check failed stacked onto the target", "the tail")
    outcome: str = await orch.db.write(
        partial(
            landing_queue.send_back, settings=orch.settings, target=TARGET, run=RUN, fence=fence,
            entry_id=entry_id, back=back, hold=hold, now=orch.clock(),
        )
    )  # fmt: skip
    return outcome


async def landed(orch: Orchestrator, fence: int, entry_id: int, n: int) -> None:
    await orch.db.write(
        partial(landing_queue.start, target=TARGET, run=RUN, fence=fence, ids=[entry_id])
    )
    landing_id = await orch.db.write(
        partial(
            landing_queue.intend, target=TARGET, run=RUN, fence=fence, old=f"{n:040x}",
            new=f"{n + 1:040x}", tree=f"{n + 2:040x}", checks="make test: exit 0",
            ids=[entry_id], now=orch.clock(),
        )
    )  # fmt: skip
    await orch.db.write(
        partial(
            landing_queue.complete, settings=orch.settings, landing_id=landing_id, now=orch.clock()
        )
    )


async def test_the_merge_queue_counts_each_submissions_end(routed: Orchestrator) -> None:
    await create(
        routed,
        {"id": "L", "title": "lands at once", "complexity": 5},
        {"id": "B", "title": "comes back, then lands", "complexity": 5},
        {"id": "H", "title": "held", "complexity": 6},
        {"id": "R", "title": "reviewed", "complexity": 7, "metadata": {"review": True}},
    )
    fence = await hold_target(routed)
    await landed(routed, fence, await submitted(routed, "L", "w1", "a" * 40, Gate.LAND), 100)
    assert await sent_back(
        routed, fence, await submitted(routed, "B", "w2", "b" * 40, Gate.LAND), None
    ) == "returned"  # fmt: skip
    await landed(routed, fence, await submitted(routed, "B", "w3", "c" * 40, Gate.LAND), 200)
    attempt = (2500, mid_cost(2000, 500))
    # L landed first try; B came back (a return), then landed (not first try). In that order.
    assert sums((await stats(routed))["alpha", "mid", "c4-7"]) == pytest.approx(
        counts(
            outcomes=3, attempts=1 + KEEP * (1 + KEEP),
            first_try_landed=KEEP**2, landed=1 + KEEP**2, returned=KEEP,
            tokens=attempt[0] * (1 + KEEP + KEEP**2), cost=attempt[1] * (1 + KEEP + KEEP**2),
        )
    )  # fmt: skip
    assert await sent_back(
        routed, fence, await submitted(routed, "H", "w4", "d" * 40, Gate.LAND), "a person's commit"
    ) == "held"  # fmt: skip
    entry_id = await submitted(routed, "R", "w5", "e" * 40, Gate.REVIEW)
    await routed.review("R", "e" * 40, "w6", "changes", "name it better")
    assert await routed.reviewed(entry_id) == "changes"

    statuses = [(await routed.get_task(task)).status for task in ("L", "B", "H", "R")]
    assert statuses == [Status.DONE, Status.DONE, Status.NEEDS_REVIEW, Status.PENDING]
    # Then H held (spending, no attempt), then R sent back by its review: five outcomes.
    k = KEEP
    assert sums((await stats(routed))["alpha", "mid", "c4-7"]) == pytest.approx(
        counts(
            outcomes=5, attempts=k**4 + k**3 + k**2 + 1, first_try_landed=k**4,
            landed=k**4 + k**2, returned=k**3 + 1, held=k,
            tokens=attempt[0] * (k**4 + k**3 + k**2 + k + 1),
            cost=attempt[1] * (k**4 + k**3 + k**2 + k + 1),
        )
    )  # fmt: skip


async def test_a_refused_submission_is_a_failed_attempt_and_rolls_back_whole(
    routed: Orchestrator,
) -> None:
    await create(routed, {"id": "X", "title": "refused", "complexity": 5})
    token = await claimed(routed, "X", "w1", (1000, 0), Gate.LAND)
    await routed.update_status("X", Status.NEEDS_REVIEW, "w1", token)
    back = Return("its commits could not be taken", "no such ref")

    def refused_then_failed(tx: Tx, now: datetime) -> None:
        landing_queue.refuse(tx, routed.settings, task_id="X", back=back, now=now)
        raise ValidationFailed("the transaction fails after the refusal")

    with pytest.raises(ValidationFailed, match="fails after"):
        await routed.db.write(partial(refused_then_failed, now=routed.clock()))
    assert await stats(routed) == {}
    assert (await routed.get_task("X")).status == Status.NEEDS_REVIEW

    await routed.db.write(
        partial(landing_queue.refuse, settings=routed.settings, task_id="X", back=back,
                now=routed.clock())
    )  # fmt: skip
    found = await stats(routed)
    assert sums(found["alpha", "mid", "c4-7"]) == pytest.approx(
        counts(outcomes=1, attempts=1, failed=1, tokens=1000, cost=mid_cost(1000, 0))
    )
