"""A turn of several claims (services/claims.best_then_read): each claim counts the grants
before it, and the claims queued in one process are served together (orchestrator/turns.py)."""

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from tests.contract.conftest import World, create, events_of
from tests.contract.test_row_locks import row_locked
from wvo_mcp.errors import ValidationFailed, WvoError
from wvo_mcp.models import ClaimResult
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import claims
from wvo_mcp.services.claims import Ask
from wvo_mcp.store import Lock, Tx

pytestmark = pytest.mark.anyio


async def turn(orch: Orchestrator, *asks: Ask) -> list[ClaimResult | WvoError]:
    """One turn of the claims' lock making `asks`, each claim's answer or its refusal."""

    def write(tx: Tx) -> Callable[[], list[ClaimResult | WvoError]]:
        readers = claims.best_then_read(tx, orch.settings, asks, orch.clock(), orch.providers)

        def read() -> list[ClaimResult | WvoError]:
            found: list[ClaimResult | WvoError] = []
            for reader in readers:
                try:
                    found.append(reader())
                except WvoError as exc:
                    found.append(exc.with_traceback(None))  # no frame kept past the test
            return found

        return read

    return await orch.db.write_then_read(write, Lock.CLAIM)


def granted(answer: ClaimResult | WvoError) -> str:
    assert isinstance(answer, ClaimResult) and answer.claimed and answer.task is not None
    return answer.task.id


def refused(answer: ClaimResult | WvoError) -> str:
    assert isinstance(answer, ClaimResult) and not answer.claimed and answer.reason
    return answer.reason


async def test_a_turn_grants_the_best_tasks_in_order_each_once(world: World) -> None:
    orch = await world.open(wip_global=10)
    await create(orch, *({"id": f"t{v}", "title": "t", "business_value": v} for v in range(1, 6)))
    answers = await turn(orch, *(Ask(f"agent-{n}", 60) for n in range(4)))
    assert [granted(a) for a in answers] == ["t5", "t4", "t3", "t2"]
    tokens = {a.lease_token for a in answers if isinstance(a, ClaimResult)}
    assert len(tokens) == 4
    for n, answer in enumerate(answers):
        task = granted(answer)
        assert (await orch.get_task(task)).assigned_to == f"agent-{n}"
        assert [e.kind for e in await events_of(orch, task)] == ["created", "claimed"]
    assert (await orch.get_task("t1")).status is Status.PENDING


async def test_a_turn_counts_its_own_grants_against_the_wip_limits(world: World) -> None:
    orch = await world.open(wip_global=3, wip_per_agent=1)
    await create(orch, *({"id": f"t{n}", "title": "t"} for n in range(6)))
    a, a_again, b, c, d = await turn(orch, *(Ask(x, 60) for x in "aabcd"))
    assert [refused(a_again), refused(d)] == ["agent_wip_limit", "global_wip_limit"]
    assert len({granted(a), granted(b), granted(c)}) == 3
    counts = (await orch.plan_next("e")).counts
    assert (counts.wip_global_used, counts.ready) == (3, 3)


async def test_a_turn_counts_its_grants_against_an_epics_limit(world: World) -> None:
    orch = await world.open(wip_per_epic=1, wip_global=10)
    await create(
        orch,
        {"id": "e1-a", "title": "a", "epic_id": "E1", "business_value": 20},
        {"id": "e1-b", "title": "b", "epic_id": "E1", "business_value": 19},
        {"id": "e2-a", "title": "c", "epic_id": "E2", "business_value": 1},
    )
    x, y, z = await turn(orch, Ask("x", 60), Ask("y", 60), Ask("z", 60))
    assert (granted(x), granted(y), refused(z)) == ("e1-a", "e2-a", "epic_wip_limit")


async def test_a_claim_refused_in_a_turn_changes_nothing_and_the_others_stand(
    world: World,
) -> None:
    orch = await world.open(wip_global=10)
    await create(orch, {"id": "t0", "title": "t"}, {"id": "t1", "title": "t"})
    first, wrong, last = await turn(
        orch, Ask("a", 60), Ask("half", 60, provider="codex"), Ask("b", 60)
    )
    assert isinstance(wrong, ValidationFailed) and "pass both provider and model" in str(wrong)
    assert {granted(first), granted(last)} == {"t0", "t1"}
    assert "half" not in {agent.id for agent in await orch.agents_view()}  # not even seen
    assert "a" in {agent.id for agent in await orch.agents_view()}


@pytest.mark.usefixtures("patient_claims")
async def test_claims_arriving_together_in_one_process_share_turns(world: World) -> None:
    """Every claim is granted its own task; on PostgreSQL, whose turns wait on the network,
    the claims queued during one turn are served in the next, together."""
    orch = await world.open(wip_global=20)
    await create(orch, *({"id": f"t{n:02d}", "title": "t"} for n in range(12)))
    turns = 0
    write_then_read = orch.db.write_then_read

    async def counted(fn: Any, lock: Lock = Lock.WORLD, *args: Any, **kwargs: Any) -> Any:
        nonlocal turns
        turns += lock is Lock.CLAIM
        return await write_then_read(fn, lock, *args, **kwargs)

    orch.db.write_then_read = counted  # type: ignore[method-assign]
    answers: dict[str, ClaimResult] = {}

    async def claim(agent: str) -> None:
        answers[agent] = await orch.claim(agent)

    async with anyio.create_task_group() as tg:
        for n in range(10):
            tg.start_soon(claim, f"agent-{n}")
    tasks = [granted(a) for a in answers.values()]
    assert len(answers) == 10 and len(set(tasks)) == 10
    for agent, answer in answers.items():
        assert answer.task is not None
        assert (await orch.get_task(answer.task.id)).assigned_to == agent
    if world.backend.name == "postgres":
        assert turns < 10


async def test_a_turn_reads_past_its_first_page_without_skipping_a_task(world: World) -> None:
    """The ranked scan is read a page at a time (16 rows, then 64 ...). The first page holds
    8 tasks backing off and r00-r07; a claim that walks past them after the turn granted r00
    (it lost r01-r07 before) would find the next page begun a row too far on (r09). It gets
    r08, the next in rank order, and the claim after it r01."""
    orch = await world.open(wip_global=40)
    assert (await orch.claim("first")).reason == "no_ready_task"  # re-ranks: not in the turn
    later = world.clock.text(3600)
    await create(
        orch,
        *({"id": f"b{n:02d}", "title": "t", "business_value": 20, "not_before": later}
          for n in range(8)),
        *({"id": f"r{n:02d}", "title": "t", "business_value": 10} for n in range(30)),
    )  # fmt: skip
    lost = frozenset(f"r{n:02d}" for n in range(1, 8))
    answers = await turn(orch, Ask("a", 60), Ask("b", 60, lost=lost), Ask("c", 60))
    assert [granted(a) for a in answers] == ["r00", "r08", "r01"]
    many = await turn(orch, *(Ask(f"agent-{n}", 60) for n in range(14)))
    assert [granted(a) for a in many] == [f"r{n:02d}" for n in (*range(2, 8), *range(9, 17))]


async def test_a_grant_of_the_turn_another_session_beat_holds_no_later_claim_back(
    world: World,
) -> None:
    """At the WIP limit, a grant sent earlier in the turn is counted against the claims
    after it; when a claim would be refused for it, the turn reads whether those grants
    took, and counts no more the one whose row another session held (PostgreSQL only)."""
    if world.backend.name != "postgres":
        pytest.skip("SQLite has no row locks: one writer at a time")
    orch = await world.open(wip_global=1)
    await create(
        orch,
        {"id": "top", "title": "t", "business_value": 20},
        {"id": "next", "title": "t", "business_value": 10},
    )
    async with row_locked(world, "top"):
        beaten, second = await turn(orch, Ask("a", 60), Ask("b", 60))
    assert isinstance(beaten, ClaimResult) and beaten._lost == "top"
    assert granted(second) == "next"
    assert (await orch.get_task("top")).status is Status.PENDING
