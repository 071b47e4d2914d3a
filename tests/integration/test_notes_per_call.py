"""A person's notes come with the answer to a holder's next call of any tool; the calls of
its loop (claim, heartbeat, checkpoint, its moves) ask whether any are due in their own
transaction, so their answer costs no lookup of its own when none are (services/
leases.renew, services/notes.asking): past capacity a lookup is a second wait."""

from pathlib import Path

import pytest

from tests.conftest import connect
from wvo_mcp.config import Settings
from wvo_mcp.models import Note
from wvo_mcp.orchestrator import Orchestrator

pytestmark = pytest.mark.anyio


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The agents whose notes were looked up in a read of their own (Orchestrator.notes_for)."""
    looked: list[str] = []
    notes_for = Orchestrator.notes_for

    async def counted(self: Orchestrator, agent_id: str) -> list[Note]:
        looked.append(agent_id)
        return await notes_for(self, agent_id)

    monkeypatch.setattr(Orchestrator, "notes_for", counted)
    return looked


async def tell(state_root: Path, task_id: str, text: str) -> None:
    person = await Orchestrator.open(Settings(state_root=state_root))
    try:
        await person.tell("task", task_id, text, "person:ada")
    finally:
        await person.close()


async def test_a_heartbeat_needs_no_lookup_of_its_own_unless_a_note_is_due(
    state_root: Path, lookups: list[str]
) -> None:
    async with connect(state_root, WVO_AGENT_ID="holder") as agent:
        await agent.call("task_create", tasks=[{"id": "T", "title": "t"}])
        claim = await agent.call("claim_task")
        held = {"task_id": "T", "lease_token": claim["lease_token"]}
        lookups.clear()
        beat = await agent.call("heartbeat", **held)
        assert "from_a_person" not in beat and lookups == []

        await tell(state_root, "T", "use the v2 API")
        told = await agent.call("heartbeat", **held)
        assert [n["text"] for n in told["from_a_person"]] == ["use the v2 API"]
        assert lookups == ["holder"]  # due: looked up, given, marked given

        again = await agent.call("heartbeat", **held)
        assert "from_a_person" not in again and lookups == ["holder"]  # once per holder
        checkpoint = await agent.call("checkpoint", summary="half way", **held)
        assert "from_a_person" not in checkpoint and lookups == ["holder"]


async def test_the_loops_calls_ask_in_their_own_transaction_and_still_give_what_is_due(
    state_root: Path, lookups: list[str]
) -> None:
    async with connect(state_root, WVO_AGENT_ID="holder") as agent:
        tasks = [{"id": t, "title": t} for t in ("A", "B", "C")]
        await agent.call("task_create", tasks=tasks)
        await tell(state_root, "A", "left before anyone held it")
        lookups.clear()
        claim = await agent.call("claim_task", task_id="A")  # asked once the task is held
        assert [n["text"] for n in claim["from_a_person"]] == ["left before anyone held it"]
        assert lookups == ["holder"]
        held = {"task_id": "A", "lease_token": claim["lease_token"]}

        lookups.clear()
        quiet = await agent.call("checkpoint", summary="half way", **held)
        assert "from_a_person" not in quiet and lookups == []
        await tell(state_root, "A", "mind the migration")
        told = await agent.call("checkpoint", summary="three quarters", **held)
        assert [n["text"] for n in told["from_a_person"]] == ["mind the migration"]
        assert lookups == ["holder"]

        lookups.clear()
        await tell(state_root, "B", "B is urgent")
        moved = await agent.call("plan_update", status="done", claim_next=True, **held)
        assert moved["next"]["task"]["id"] == "B"  # asked after the claim it made
        assert [n["text"] for n in moved["from_a_person"]] == ["B is urgent"]
        assert lookups == ["holder"]

        lookups.clear()
        nxt = {"task_id": "B", "lease_token": moved["next"]["lease_token"]}
        done = await agent.call("plan_update", status="done", **nxt)
        claimed = await agent.call("claim_task")
        assert "from_a_person" not in done and "from_a_person" not in claimed
        assert claimed["task"]["id"] == "C" and lookups == []
