"""A person's notes come with the answer to a holder's next call of any tool; a heartbeat,
the call an agent makes most, asks whether any are due in its own transaction, so its
answer costs no lookup of its own when none are (services/leases.renew)."""

from pathlib import Path

import pytest

from tests.conftest import connect
from wvo_mcp.config import Settings
from wvo_mcp.models import Note
from wvo_mcp.orchestrator import Orchestrator

pytestmark = pytest.mark.anyio


async def test_a_heartbeat_needs_no_lookup_of_its_own_unless_a_note_is_due(
    state_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    notes_for = Orchestrator.notes_for

    async def counted(self: Orchestrator, agent_id: str) -> list[Note]:
        lookups.append(agent_id)
        return await notes_for(self, agent_id)

    monkeypatch.setattr(Orchestrator, "notes_for", counted)
    async with connect(state_root, WVO_AGENT_ID="holder") as agent:
        await agent.call("task_create", tasks=[{"id": "T", "title": "t"}])
        claim = await agent.call("claim_task")
        held = {"task_id": "T", "lease_token": claim["lease_token"]}
        lookups.clear()
        beat = await agent.call("heartbeat", **held)
        assert "from_a_person" not in beat and lookups == []

        person = await Orchestrator.open(Settings(state_root=state_root))
        try:
            await person.tell("task", "T", "use the v2 API", "person:ada")
        finally:
            await person.close()
        told = await agent.call("heartbeat", **held)
        assert [n["text"] for n in told["from_a_person"]] == ["use the v2 API"]
        assert lookups == ["holder"]  # due: looked up, given, marked given

        again = await agent.call("heartbeat", **held)
        assert "from_a_person" not in again and lookups == ["holder"]  # once per holder
        checkpoint = await agent.call("checkpoint", summary="half way", **held)
        assert "from_a_person" not in checkpoint and lookups == ["holder", "holder"]
