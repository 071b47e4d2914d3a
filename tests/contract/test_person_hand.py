"""A person's hand on a running fleet, on every backend: a message reaches a task's holder
once and its next holder too; a pause holds work back and costs no attempt, whether the
holder lets go or goes silent; a question waits for a person and its answer reaches the next
attempt; a redirect is told or restarts the attempt; not_before holds a task back."""

import pytest

from tests.contract.conftest import World, create, events_of, monitor_tick
from wvo_mcp.errors import LeaseLost, NotFound, ValidationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status

pytestmark = pytest.mark.anyio
ADA = "person:ada"


async def claimed(orch: Orchestrator, agent: str, task_id: str | None = None) -> str:
    claim = await orch.claim(agent, task_id)
    assert claim.claimed and claim.lease_token is not None, claim.message
    return claim.lease_token


async def test_a_message_reaches_the_holder_once_and_its_next_holder(world: World) -> None:
    orch = await world.open()
    await create(orch, {"id": "T", "title": "t"}, {"id": "U", "title": "u"})
    token = await claimed(orch, "a", "T")
    assert await orch.notes_for("a") == []
    told = await orch.tell("task", "T", "use the v2 API, not v1", ADA)
    assert told.tasks == ["T"] and "its holder a" in told.message
    [note] = await orch.notes_for("a")
    assert (note.task_id, note.kind, note.text, note.author) == (
        "T",
        "tell",
        "use the v2 API, not v1",
        ADA,
    )
    assert await orch.notes_for("a") == []  # once per holder
    assert await orch.notes_for("b") == []  # never another agent's
    assert [e.kind for e in await events_of(orch, "T")][-1] == "told"

    await orch.update_status("T", Status.PENDING, "a", token)  # gives it back
    await claimed(orch, "b", "T")
    assert [n.text for n in await orch.notes_for("b")] == ["use the v2 API, not v1"]
    assert [n.kind for n in (await orch.get_task("T")).notes] == ["tell"]


async def test_an_epic_or_the_fleet_reaches_its_holders_and_nobody_is_refused(
    world: World,
) -> None:
    orch = await world.open(wip_per_agent=5)
    await create(
        orch,
        {"id": "A1", "title": "a", "epic_id": "A"},
        {"id": "A2", "title": "a", "epic_id": "A"},
        {"id": "B1", "title": "b", "epic_id": "B"},
    )
    with pytest.raises(ValidationFailed, match="nobody holds a task in epic 'A' now"):
        await orch.tell("epic", "A", "hello", ADA)
    assert (await orch.get_task("A1")).notes == []  # nothing changed
    await claimed(orch, "a", "A1")
    await claimed(orch, "b", "B1")
    assert (await orch.tell("epic", "A", "freeze the schema", ADA)).tasks == ["A1"]
    assert (await orch.tell("fleet", "", "lunch", ADA)).tasks == ["A1", "B1"]
    assert [n.text for n in await orch.notes_for("a")] == ["freeze the schema", "lunch"]
    assert [n.text for n in await orch.notes_for("b")] == ["lunch"]
    with pytest.raises(ValidationFailed, match="at most 4000"):
        await orch.tell("task", "A2", "x" * 4001, ADA)
    with pytest.raises(NotFound):
        await orch.tell("task", "nope", "hi", ADA)


async def test_a_paused_task_waits_and_its_pause_costs_nothing(world: World) -> None:
    orch = await world.open()
    await create(orch, {"id": "T", "title": "t"}, {"id": "U", "title": "u"})
    token = await claimed(orch, "a", "T")
    paused = await orch.pause("task", "T", ADA, "wrong approach")
    assert paused.told == ["T"] and paused.paused
    [note] = await orch.notes_for("a")
    assert note.kind == "pause" and "checkpoint now" in note.text and "wrong approach" in note.text
    await orch.checkpoint("T", token, "a", summary="parser half done")
    await orch.update_status("T", Status.PENDING, "a", token, "paused")

    # Not claimable, by name or otherwise; the rest of the queue goes on.
    refused = await orch.claim("b", "T")
    assert refused.reason == "paused" and "paused by person:ada" in refused.message
    plan = await orch.plan_next("b")
    assert [t.id for t in plan.tasks] == ["U"] and plan.paused is not None
    assert "task T" in plan.paused
    assert (await orch.get_task("T")).paused is not None
    assert (await orch.pause("task", "T", ADA)).message == "task T was paused already"

    resumed = await orch.resume("task", "T", ADA)
    assert not resumed.paused
    with pytest.raises(ValidationFailed, match="is not paused"):
        await orch.resume("task", "T", ADA)
    again = await orch.claim("b", "T")
    assert again.claimed and again.attempt == 1  # no attempt counted
    assert again.last_checkpoint is not None
    assert again.last_checkpoint.summary == "parser half done"
    assert await orch.notes_for("b") == []  # the pause was for the holder it stopped


async def test_a_silent_holder_of_a_paused_task_is_released_without_a_failed_attempt(
    world: World,
) -> None:
    settings = world.settings()
    orch, mon = await world.open(), await world.monitor_db()
    await create(orch, {"id": "job", "title": "t", "epic_id": "E"})
    await claimed(orch, "gone", "job")
    await orch.pause("epic", "E", ADA)
    world.clock.advance(3600)  # the holder never called again
    await monitor_tick(mon, settings, "mon", world.clock, orch.providers)
    detail = await orch.get_task("job")
    assert (detail.status, detail.attempts, detail.not_before) == (Status.PENDING, 0, None)
    assert "while paused" in ((await events_of(orch, "job"))[-1].reason or "")
    assert (await orch.claim("heir")).reason == "paused"
    await orch.resume("epic", "E", ADA)
    assert (await orch.claim("heir")).attempt == 1


async def test_a_paused_fleet_claims_nothing_until_it_resumes(world: World) -> None:
    orch = await world.open(wip_per_agent=5)
    await create(orch, {"id": "T", "title": "t"}, {"id": "U", "title": "u"})
    await claimed(orch, "a", "T")
    assert (await orch.pause("fleet", "", ADA)).told == ["T"]
    refused = await orch.claim("b")
    assert refused.reason == "paused" and "the fleet is paused" in refused.message
    assert (await orch.plan_next("b")).tasks == []
    assert [n.kind for n in await orch.notes_for("a")] == ["pause"]
    await orch.resume("fleet", "", ADA)
    assert (await orch.claim("b")).claimed


async def test_a_pause_lifted_before_the_holder_heard_of_it_is_never_said(
    world: World,
) -> None:
    orch = await world.open()
    await create(orch, {"id": "T", "title": "t"})
    await claimed(orch, "a", "T")
    await orch.pause("task", "T", ADA)
    await orch.resume("task", "T", ADA)
    assert await orch.notes_for("a") == []


async def test_a_question_waits_for_a_person_and_its_answer_reaches_the_next_attempt(
    world: World,
) -> None:
    orch = await world.open()
    await create(orch, {"id": "T", "title": "pick a licence"})
    token = await claimed(orch, "a", "T")
    await orch.checkpoint("T", token, "a", summary="MIT or Apache?")
    asked = await orch.ask("T", token, "a", "MIT or Apache-2.0?")
    assert asked.status is Status.BLOCKED and asked.attempts == 0
    with pytest.raises(LeaseLost):
        await orch.heartbeat("T", token, "a")
    [question] = (await orch.inbox()).questions
    assert (question.task_id, question.question, question.asked_by) == (
        "T",
        "MIT or Apache-2.0?",
        "a",
    )
    assert (await orch.claim("b")).reason == "no_ready_task"
    report = await orch.status_report("ops")
    assert [t["id"] for t in report.stopped] == ["T"]

    answered = await orch.answer("T", "Apache-2.0", ADA)
    assert answered.status is Status.PENDING
    assert (await orch.inbox()).questions == []
    with pytest.raises(ValidationFailed, match="no question waiting"):
        await orch.answer("T", "again", ADA)
    again = await orch.claim("b")
    assert again.claimed and again.attempt == 1
    assert again.last_checkpoint is not None and again.last_checkpoint.summary == "MIT or Apache?"
    said = [(n.kind, n.text, n.author) for n in await orch.notes_for("b")]
    assert said == [("question", "MIT or Apache-2.0?", "a"), ("answer", "Apache-2.0", ADA)]


async def test_only_the_holder_asks(world: World) -> None:
    orch = await world.open()
    await create(orch, {"id": "T", "title": "t"})
    await claimed(orch, "a", "T")
    with pytest.raises(LeaseLost):
        await orch.ask("T", "not-the-token", "b", "may I?")
    assert (await orch.get_task("T")).status is Status.IN_PROGRESS
    assert (await orch.inbox()).questions == []


async def test_a_redirect_is_told_or_restarts_the_attempt(world: World) -> None:
    orch = await world.open()
    await create(orch, {"id": "T", "title": "t", "description": "use SOAP"})
    token = await claimed(orch, "a", "T")
    told = await orch.redirect("T", ADA, description="use REST")
    assert told.status is Status.IN_PROGRESS and "told" in told.message
    [note] = await orch.notes_for("a")
    assert note.kind == "redirect" and "use REST" in note.text
    assert (await orch.get_task("T")).description == "use REST"

    restarted = await orch.redirect("T", ADA, verify_command="make test", restart=True)
    assert restarted.status is Status.PENDING and restarted.attempts == 0
    with pytest.raises(LeaseLost):
        await orch.heartbeat("T", token, "a")
    again = await orch.claim("b", "T")
    assert again.claimed and again.attempt == 1
    detail = await orch.get_task("T")
    assert (detail.description, detail.verify_command) == ("use REST", "make test")
    assert await orch.notes_for("b") == []  # the redirect note was for a's attempt
    with pytest.raises(ValidationFailed, match="give a new description"):
        await orch.redirect("T", ADA)


async def test_not_before_holds_a_task_back_until_its_time(world: World) -> None:
    orch = await world.open()
    later = world.clock.text(3600)
    created = await create(orch, {"id": "T", "title": "t", "not_before": later})
    assert created.ready == []
    refused = await orch.claim("a", "T")
    assert refused.reason == "task_not_ready"
    assert f"not claimable before {later} (not_before)" in refused.message
    idle = await orch.claim("a")
    assert idle.reason == "no_ready_task" and "not_before time" in idle.message
    assert (await orch.plan_next("a")).counts.backing_off == 1
    world.clock.advance(3600)
    assert (await orch.claim("a")).claimed
