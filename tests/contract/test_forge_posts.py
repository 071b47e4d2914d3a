"""What the issue sync asks of the store to tell each landed issue once (edge/issue_sync.py), on
every backend: the done tasks whose `landed:` write is not finished (a claim alone, its host
dead, still counts as untold), and the open pull requests of a repository's tasks."""

from functools import partial

import pytest

from tests.contract.conftest import World, create
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import issue_conversation
from wvo_mcp.store import Tx

pytestmark = pytest.mark.anyio
PREFIX = "gh/team/project/"


async def untold(orch: Orchestrator) -> list[str]:
    return await orch.db.read(partial(issue_conversation.untold, prefix=PREFIX))


async def test_a_done_task_is_untold_until_its_landed_write_is_done(
    world: World, orch: Orchestrator
) -> None:
    ids = [f"{PREFIX}{n}" for n in (1, 2, 3)]
    await create(orch, *({"id": i, "title": i} for i in [*ids, "gh/team/project_x/1"]))
    for task in [ids[0], ids[1], "gh/team/project_x/1"]:
        claim = await orch.claim("agent-a", task)
        await orch.update_status(task, Status.DONE, "agent-a", token=claim.lease_token)
    assert await untold(orch) == ids[:2]  # neither the pending one nor another repository's
    assert await orch.forge_claim(f"landed:{ids[0]}")
    assert await untold(orch) == ids[:2], "claimed, not written: a dead host's is told again"
    await orch.forge_done(f"landed:{ids[0]}", "2031-05-06T07:00:00Z")
    assert await untold(orch) == [ids[1]]
    other = await world.open()  # another server on the same database sees it told
    assert await other.db.read(partial(issue_conversation.untold, prefix=PREFIX)) == [ids[1]]


async def test_the_open_pull_requests_under_a_repository_s_tasks(orch: Orchestrator) -> None:
    ids = [f"{PREFIX}{n}" for n in (1, 2)]
    await create(orch, *({"id": i, "title": i} for i in ids))

    def opened(tx: Tx, task: str, number: int, state: str) -> None:
        tx.run("pull_opened", {"target": "origin#main", "task_id": task, "number": number,
                               "url": f"https://github.com/team/project/pull/{number}",
                               "branch": f"wvo/{task}", "head": "a" * 40, "landing_id": None,
                               "now": "2031-05-06T07:00:00Z"})  # fmt: skip
        if state != "open":
            tx.run("pull_ends", {"target": "origin#main", "task_id": task, "state": state,
                                 "waiting": "", "now": "2031-05-06T07:00:00Z"})  # fmt: skip

    await orch.db.write(partial(opened, task=ids[0], number=5, state="open"))
    await orch.db.write(partial(opened, task=ids[1], number=6, state="merged"))
    found = await orch.db.read(partial(issue_conversation.open_pulls, prefix=PREFIX))
    assert [(r["task_id"], r["number"], r["url"]) for r in found] == [
        (ids[0], 5, "https://github.com/team/project/pull/5")
    ]
