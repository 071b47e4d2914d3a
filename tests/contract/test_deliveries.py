"""GitHub's webhook deliveries as the store keeps them (services/webhooks.py), on every
backend: each delivery id once and each body once, and an issue's event acting on its task
in the same transaction, so a replay is refused and changes nothing."""

import hashlib
from collections.abc import Awaitable

import pytest

from tests.contract.conftest import World
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.models import Unsynced
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.issue_tasks import Issue
from wvo_mcp.rules.transitions import Status
from wvo_mcp.rules.webhooks import Run

pytestmark = pytest.mark.anyio
TASK = "gh/team/project/3"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def issue(state: str = "open", title: str = "a task", body: str = "") -> Issue:
    return Issue(3, "I_3", title, body, ("wvo",), state, "https://github.com/team/project/3")


async def test_a_delivery_acts_once_and_its_replay_changes_nothing(
    world: World, orch: Orchestrator
) -> None:
    made = await orch.delivered_issue("d-1", digest("1"), "team/project", issue(), "wvo")
    assert made == f"{TASK}: created"
    with pytest.raises(ValidationFailed, match="received already"):
        await orch.delivered_issue("d-1", digest("2"), "team/project", issue(title="x"), "wvo")
    # The same body under a new id: a captured delivery sent again.
    with pytest.raises(ValidationFailed, match="under another id"):
        await orch.delivered_issue("d-9", digest("1"), "team/project", issue(title="x"), "wvo")
    assert (await orch.get_task(TASK)).title == "a task"
    changed = await orch.delivered_issue(
        "d-2", digest("2"), "team/project", issue(title="changed"), "wvo"
    )
    assert changed == f"{TASK}: updated"
    await orch.delivered("d-3", "push", digest("3"))
    with pytest.raises(ValidationFailed):
        await orch.delivered("d-3", "push", digest("3b"))
    with pytest.raises(ValidationFailed):
        await orch.delivered("d-3b", "push", digest("3"))
    closed = await orch.delivered_issue("d-4", digest("4"), "team/project", issue("closed"), "wvo")
    assert closed == f"{TASK}: cancelled (issue closed)"
    assert (await orch.get_task(TASK)).status == Status.CANCELLED
    reopened = await orch.delivered_issue("d-5", digest("5"), "team/project", issue(), "wvo")
    assert reopened == f"{TASK}: pending again (issue reopened)"
    assert (await orch.get_task(TASK)).status == Status.PENDING


async def test_an_issue_s_references_become_dependencies_on_tasks_there_already(
    world: World, orch: Orchestrator
) -> None:
    first = Issue(1, "I_1", "first", "", ("wvo",), "open", "u1")
    await orch.delivered_issue("d-1", digest("1"), "team/project", first, "wvo")
    blocked = issue(body="Blocked by #1 and #2.")
    await orch.delivered_issue("d-2", digest("2"), "team/project", blocked, "wvo")
    found = await orch.get_task(TASK)
    assert [d.id for d in found.dependencies] == ["gh/team/project/1"]
    assert found.metadata["forge_issue"]["references_not_synced"] == [2]


async def test_a_red_run_makes_one_task_per_workflow_until_a_green_contains_its_reds(
    world: World, orch: Orchestrator
) -> None:
    def run(delivery: str, sha: str, passed: bool, contained: frozenset[str] = frozenset()
            ) -> Awaitable[str]:  # fmt: skip
        ended = Run("workflow_run", "team/project", "CI", "9", "main", sha, "u", passed)
        return orch.delivered_run(delivery, digest(delivery), ended, contained)

    task = "gh/team/project/red/9/aaaaaaaaaaaa"
    assert await run("r-1", "a" * 40, False) == f"{task}: created"
    assert "red already" in await run("r-2", "b" * 40, False)
    assert await orch.red_tasks(Run("workflow_run", "team/project", "CI", "9", "main", "c",
                                    "u", True)) == {task: ["a" * 40, "b" * 40]}  # fmt: skip
    # A late green that contains the first red commit, not the second: the task stays.
    late = await run("r-3", "c" * 40, True, frozenset({"a" * 40}))
    assert "0 red task(s) cancelled; 1 left open" in late
    assert (await orch.get_task(task)).status == Status.PENDING
    assert "1 red task(s) cancelled" in await run("r-4", "d" * 40, True,
                                                  frozenset({"a" * 40, "b" * 40}))  # fmt: skip
    assert (await orch.get_task(task)).status == Status.CANCELLED


async def test_a_repository_s_name_is_no_pattern_for_another_s_tasks(
    world: World, orch: Orchestrator
) -> None:
    """`_` in a repository's name is a character, not LIKE's any-one: a green run of team/a_b
    leaves team/aXb's red task alone."""
    red = Run("workflow_run", "team/aXb", "CI", "9", "main", "a" * 40, "u", False)
    await orch.delivered_run("r-1", digest("1"), red, frozenset())
    green = Run("workflow_run", "team/a_b", "CI", "9", "main", "b" * 40, "u", True)
    assert "0 red task(s) cancelled" in await orch.delivered_run(
        "r-2", digest("2"), green, frozenset({"a" * 40})
    )
    assert (await orch.get_task("gh/team/aXb/red/9/aaaaaaaaaaaa")).status == Status.PENDING
    assert await orch.tasks_under("gh/team/a_b/") == {}


async def test_the_webhook_serves_the_repositories_the_sync_read_and_the_inbox_shows_outsiders(
    world: World, orch: Orchestrator
) -> None:
    assert await orch.synced_repositories() == []
    await orch.forge_done("comments:team/project", "2026-01-01T00:00:00Z")
    await orch.forge_done("landed:gh/team/project/1", "2026-01-01T00:00:00Z")
    assert await orch.synced_repositories() == ["team/project"]
    await orch.delivered_issue("d-1", digest("1"), "team/project", issue(), "wvo")
    for _ in range(2):  # shown once per key, however often it is read
        await orch.outsider_said(TASK, "github:mallory", "asked for changes, not counted", "u",
                                 key="review:9")  # fmt: skip
    [said] = (await orch.inbox()).outsiders
    assert (said.task_id, said.who) == (TASK, "github:mallory")
    assert said.said == "asked for changes, not counted (u)"


async def test_the_issues_a_sync_could_not_apply_are_kept_per_repository_for_status(
    world: World, orch: Orchestrator
) -> None:
    def one(repository: str, number: int, made: bool) -> Unsynced:
        task = f"gh/{repository}/{number}"
        why = "its dependencies make a cycle"
        return Unsynced(repository=repository, issue=number, task=task, why=why, made=made,
                        since="2026-01-01")  # fmt: skip

    await orch.keep_unsynced("team/project", [one("team/project", 8, True),
                                              one("team/project", 7, False)])  # fmt: skip
    await orch.keep_unsynced("team/docs", [one("team/docs", 3, False)])
    assert await orch.unsynced("team/project") == [one("team/project", 7, False),
                                                   one("team/project", 8, True)]  # fmt: skip
    await orch.keep_unsynced("team/project", [])  # the next pass applied them all
    assert await orch.unsynced("team/project") == []
    assert (await orch.status_report("a")).unsynced == [one("team/docs", 3, False)]
