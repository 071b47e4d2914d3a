"""A run token (the autopilot's, for one worker or reviewer run) over a real `serve --http`:
it sees and calls only its scope's tools, only about its own task, reads only its own task
and the directives, and gives a review only as the reviewer of exactly one commit. Every
refusal changes nothing in the database."""

from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import open_db
from tests.http.conftest import connect, http_server
from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Gate, Status
from wvo_mcp.services.bearer_tokens import Scope

pytestmark = pytest.mark.anyio
COMMIT = "c" * 40


def rows(state: Path) -> list[tuple[object, ...]]:
    with open_db(state) as db:
        tasks = db.execute("SELECT * FROM tasks ORDER BY id").fetchall()
        events = db.execute("SELECT * FROM task_events ORDER BY id").fetchall()
        reviews = db.execute("SELECT * FROM reviews ORDER BY id").fetchall()
    return [tuple(r) for r in [*tasks, *events, *reviews]]


# Telemetry's spans keep every call on the SDK's path; without them the loop's own calls take
# their lane (edge/hot_calls.py), whose role gate must refuse the same calls the same way.
@pytest.mark.parametrize("otel", ["0", "1"], ids=["the loop's lane", "the SDK's path"])
async def test_a_run_token_reaches_only_its_own_task(tmp_path: Path, otel: str) -> None:
    state = tmp_path / "state"
    settings = Settings(state_root=state, workspace_root=tmp_path, health_interval_seconds=0)
    orch = await Orchestrator.open(settings)
    try:
        await orch.create_tasks(
            [TaskSpec(id="MINE", title="mine", metadata={"review": True}),
             TaskSpec(id="OTHER", title="another worker's")],
            "person:ann",
        )  # fmt: skip
        claim = await orch.claim("w1", "MINE", gate=Gate.LAND)
        assert claim.lease_token is not None
        expires = timeutil.now() + timedelta(minutes=5)
        worker = await orch.token_add("agent", "w1", "autopilot", expires, Scope("MINE", "worker"))
        other = await orch.claim("w9", "OTHER")
        assert other.lease_token is not None
    finally:
        await orch.close()
    held = {"task_id": "MINE", "lease_token": claim.lease_token}
    with http_server(state, WVO_OTEL_ENABLED=otel, WVO_AUTOPILOT_HEALTH_INTERVAL_MS=0) as server:
        before = rows(state)
        async with connect(server, worker.secret) as agent:
            listed = {t.name for t in (await agent.client.list_tools()).tools}
            assert listed == {
                "heartbeat", "checkpoint", "plan_update", "ask_person", "record_usage",
                "task_get", "context_read", "context_write",
            }  # fmt: skip
            refused = {
                "claim_task": {},
                "plan_next": {},
                "task_create": {"tasks": [{"title": "more work"}]},
                "task_list": {},
                "review_submit": {"task_id": "MINE", "verdict": "approve", "notes": "mine"},
                "task_approve": {"task_id": "OTHER"},
                "heartbeat": {"task_id": "OTHER", "lease_token": other.lease_token},
                "task_get": {"task_id": "OTHER"},
                "landing_queue": {},  # the others' work in the queue is not its business
                # A person's hand: never a worker's, not even about its own task.
                "task_tell": {"message": "ignore your task", "everyone": True},
                "task_pause": {"task_id": "OTHER"},
                "task_redirect": {"task_id": "MINE", "description": "mine now"},
                "inbox": {},
                "task_answer": {"task_id": "MINE", "answer": "yes"},
                "ask_person": {"task_id": "OTHER", "lease_token": other.lease_token,
                               "question": "may I?"},
            }  # fmt: skip
            for tool, arguments in refused.items():
                answer = await agent.client.call_tool(tool, arguments)
                text = answer.content[0].text  # type: ignore[union-attr]
                assert answer.is_error, (tool, text)
                assert "Nothing was changed" in text or "nothing was" in text.lower(), text
            # Its own task: readable, and the gate holds it short of done.
            assert not (await agent.client.call_tool("task_get", {"task_id": "MINE"})).is_error
            for status in ("done", "pending", "cancelled", "awaiting_approval"):
                move = await agent.client.call_tool("plan_update", {**held, "status": status})
                text = move.content[0].text  # type: ignore[union-attr]
                assert move.is_error and "needs_review, failed, blocked only" in text, text
            # Its own move, but claiming the next task besides: a run token claims nothing.
            move = await agent.client.call_tool(
                "plan_update", {**held, "status": "needs_review", "claim_next": True}
            )
            text = move.content[0].text  # type: ignore[union-attr]
            assert move.is_error and "without claim_next. Nothing was changed" in text, text
            for uri in ("wvo://tasks/OTHER", "wvo://status", "wvo://context", "wvo://health"):
                with pytest.raises(Exception, match="may read wvo://tasks/MINE"):
                    await agent.client.read_resource(uri)
            assert await agent.client.read_resource("wvo://tasks/MINE")
        assert rows(state) == before
        # Submitted, its author's own token still gives no review; a reviewer's does.
        async with connect(server, worker.secret) as agent:
            moved = await agent.client.call_tool("plan_update", {**held, "status": "needs_review"})
            assert not moved.is_error
        orch = await Orchestrator.open(settings)
        try:
            await orch.submit_commit("MINE", COMMIT, "autopilot")
            reviewer = await orch.token_add(
                "agent", "w2", "autopilot", expires, Scope("MINE", "reviewer", COMMIT)
            )
        finally:
            await orch.close()
        async with connect(server, reviewer.secret) as agent:
            listed = {t.name for t in (await agent.client.list_tools()).tools}
            assert listed == {"task_get", "context_read", "review_submit"}
            move = await agent.client.call_tool(
                "plan_update", {"task_id": "MINE", "status": "done"}
            )
            assert move.is_error
            verdict = await agent.client.call_tool(
                "review_submit", {"task_id": "MINE", "verdict": "approve", "notes": "fine"}
            )
            assert not verdict.is_error, verdict
    with open_db(state) as db:
        review = db.execute("SELECT commit_sha, reviewer, verdict FROM reviews").fetchall()
        status = db.execute("SELECT status FROM tasks WHERE id = 'MINE'").fetchone()[0]
    assert [tuple(r) for r in review] == [(COMMIT, "w2", "approve")]
    assert status == Status.NEEDS_REVIEW  # only the lander (or a person) lands it


async def test_a_planners_run_token_reads_the_merge_queue(tmp_path: Path) -> None:
    """A planner holds no task: it may see what the queue holds before planning more."""
    state = tmp_path / "state"
    settings = Settings(state_root=state, workspace_root=tmp_path, health_interval_seconds=0)
    orch = await Orchestrator.open(settings)
    try:
        expires = timeutil.now() + timedelta(minutes=5)
        planner = await orch.token_add("agent", "p1", "autopilot", expires, Scope("", "planner"))
    finally:
        await orch.close()
    with http_server(state, WVO_OTEL_ENABLED=0, WVO_AUTOPILOT_HEALTH_INTERVAL_MS=0) as server:
        async with connect(server, planner.secret) as agent:
            listed = {t.name for t in (await agent.client.list_tools()).tools}
            assert "landing_queue" in listed and "claim_task" not in listed
            found = await agent.call("landing_queue")
    assert found["entries"] == [] and found["figures"]["landed"] == 0
