"""The verification gate, run without isolation (a shell's `test -f`): cheap enough here, and
what is checked is the store's side of the gate, not the sandbox."""

from pathlib import Path

import pytest

from tests.contract.conftest import World, create, events_of
from wvo_mcp.errors import LeaseLost, VerificationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status

pytestmark = pytest.mark.anyio

GATE = "if test -f ok.txt; then echo green; else echo 'no ok.txt' >&2; exit 3; fi"


@pytest.fixture
async def gated(world: World) -> Orchestrator:
    orch = await world.open(sandbox_backend="none", sandbox_allow_unisolated=True)
    await create(orch, {"id": "T1", "title": "make it green", "verify_command": GATE})
    return orch


async def test_done_waits_for_the_verify_command(
    world: World, gated: Orchestrator, tmp_path: Path
) -> None:
    claim = await gated.claim("holder")
    assert claim.lease_token is not None
    with pytest.raises(VerificationFailed, match="exit 3") as refused:
        await gated.update_status("T1", Status.DONE, "holder", token=claim.lease_token)
    assert "no ok.txt" in str(refused.value)
    detail = await gated.get_task("T1")
    assert (detail.status, detail.assigned_to) == (Status.IN_PROGRESS, "holder")
    assert detail.verify_command == GATE
    assert "verified" not in [e.kind for e in await events_of(gated, "T1")]

    (tmp_path / "ok.txt").write_text("fixed\n")
    done = await gated.update_status("T1", Status.DONE, "holder", token=claim.lease_token)
    assert done.status is Status.DONE
    verified = [e for e in await events_of(gated, "T1") if e.kind == "verified"]
    assert len(verified) == 1 and "exit 0" in (verified[0].reason or "")
    assert verified[0].lease_epoch == 1


async def test_a_stale_holder_is_refused_before_the_gate_runs(
    world: World, gated: Orchestrator, tmp_path: Path
) -> None:
    (tmp_path / "ok.txt").write_text("fixed\n")
    first = await gated.claim("a", lease_seconds=10)
    assert first.lease_token is not None
    world.clock.advance(11)
    assert (await gated.claim("b")).claimed
    with pytest.raises(LeaseLost, match="'b'"):
        await gated.update_status("T1", Status.DONE, "a", token=first.lease_token)
    assert (await gated.get_task("T1")).status is Status.IN_PROGRESS


async def test_a_person_may_skip_the_gate_and_it_is_recorded(gated: Orchestrator) -> None:
    claim = await gated.claim("holder")
    assert claim.claimed
    with pytest.raises(VerificationFailed):
        await gated.update_status("T1", Status.DONE, "person:alice", by_person=True)
    done = await gated.update_status(
        "T1", Status.DONE, "person:alice", by_person=True, skip_verify=True
    )
    assert done.status is Status.DONE
    kinds = [(e.kind, e.actor) for e in await events_of(gated, "T1")][-2:]
    assert kinds == [("verification_skipped", "person:alice"), ("status", "person:alice")]
