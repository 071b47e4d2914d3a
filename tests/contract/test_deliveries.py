"""GitHub's webhook deliveries as the store keeps them (services/deliveries.py), on every
backend: each delivery id once, and an issue's event acting on its task in the same
transaction, so a replay is refused and changes nothing."""

import pytest

from tests.contract.conftest import World
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.issue_tasks import Issue
from wvo_mcp.rules.transitions import Status
from wvo_mcp.rules.webhooks import Run

pytestmark = pytest.mark.anyio
TASK = "gh/team/project/3"


def issue(state: str = "open", title: str = "a task", body: str = "") -> Issue:
    return Issue(3, "I_3", title, body, ("wvo",), state, "https://github.com/team/project/3")


async def test_a_delivery_acts_once_and_its_replay_changes_nothing(
    world: World, orch: Orchestrator
) -> None:
    assert await orch.delivered_issue("d-1", "team/project", issue(), "wvo") == f"{TASK}: created"
    with pytest.raises(ValidationFailed, match="received already"):
        await orch.delivered_issue("d-1", "team/project", issue(title="changed"), "wvo")
    assert (await orch.get_task(TASK)).title == "a task"
    assert await orch.delivered_issue("d-2", "team/project", issue(title="changed"), "wvo") == (
        f"{TASK}: updated")  # fmt: skip
    await orch.delivered("d-3", "push")
    with pytest.raises(ValidationFailed):
        await orch.delivered("d-3", "push")
    closed = await orch.delivered_issue("d-4", "team/project", issue("closed"), "wvo")
    assert closed == f"{TASK}: cancelled (issue closed)"
    assert (await orch.get_task(TASK)).status == Status.CANCELLED
    reopened = await orch.delivered_issue("d-5", "team/project", issue(), "wvo")
    assert reopened == f"{TASK}: pending again (issue reopened)"
    assert (await orch.get_task(TASK)).status == Status.PENDING


async def test_an_issue_s_references_become_dependencies_on_tasks_there_already(
    world: World, orch: Orchestrator
) -> None:
    first = Issue(1, "I_1", "first", "", ("wvo",), "open", "u1")
    await orch.delivered_issue("d-1", "team/project", first, "wvo")
    await orch.delivered_issue("d-2", "team/project", issue(body="Blocked by #1 and #2."), "wvo")
    found = await orch.get_task(TASK)
    assert [d.id for d in found.dependencies] == ["gh/team/project/1"]
    assert found.metadata["forge_issue"]["references_not_synced"] == [2]


async def test_a_red_run_makes_one_task_per_workflow_until_green(
    world: World, orch: Orchestrator
) -> None:
    def run(delivery: str, sha: str, passed: bool) -> object:
        ended = Run("workflow_run", "team/project", "CI", "9", "main", sha, "u", passed)
        return orch.delivered_run(delivery, ended)

    assert await run("r-1", "a" * 40, False) == "gh/team/project/red/9/aaaaaaaaaaaa: created"
    assert "red already" in str(await run("r-2", "b" * 40, False))
    assert "1 red task(s) cancelled" in str(await run("r-3", "c" * 40, True))
    task = await orch.get_task("gh/team/project/red/9/aaaaaaaaaaaa")
    assert task.status == Status.CANCELLED


async def test_a_repository_s_name_is_no_pattern_for_another_s_tasks(
    world: World, orch: Orchestrator
) -> None:
    """`_` in a repository's name is a character, not LIKE's any-one: a green run of team/a_b
    leaves team/aXb's red task alone."""
    await orch.delivered_run("r-1", Run("workflow_run", "team/aXb", "CI", "9", "main",
                                        "a" * 40, "u", False))  # fmt: skip
    green = Run("workflow_run", "team/a_b", "CI", "9", "main", "b" * 40, "u", True)
    assert "0 red task(s) cancelled" in await orch.delivered_run("r-2", green)
    assert (await orch.get_task("gh/team/aXb/red/9/aaaaaaaaaaaa")).status == Status.PENDING
    assert await orch.tasks_under("gh/team/a_b/") == {}
