"""What an agent pays per call: the hot answers, in bytes of compact JSON (what Claude Code
shows the model: its structured content), stay within their budgets. A budget that fails
means an answer grew: look at what it now carries, do not raise the number lightly."""

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import connect

pytestmark = pytest.mark.anyio
QUIET = {"WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0, "WVO_OTEL_ENABLED": 0}
# Bytes: four per token of the targets (chars/4), in brackets.
BUDGETS = {
    "plan_next(5)": 1_000,  # [250 tokens]
    "claim_task": 600,  # [150]
    "heartbeat": 160,  # [40]
    "checkpoint": 160,  # [40]
    "plan_update": 160,  # [40]
    "plan_update(claim_next)": 760,  # [190]: plan_update's and claim_task's
    "task_list(50)": 6_000,  # [1,500]
}
TITLE = "Implement the parser for the configuration file format"  # a realistic 55 chars


def size(answer: dict[str, Any]) -> int:
    return len(json.dumps(answer, separators=(",", ":"), ensure_ascii=False))


async def test_hot_answers_stay_within_their_budgets(state_root: Path) -> None:
    sizes: dict[str, int] = {}
    async with connect(state_root, WVO_AGENT_ID="claude-1", **QUIET) as agent:
        await agent.call(
            "task_create",
            tasks=[{"id": f"E1.M1.T{i}", "title": TITLE, "epic_id": "E1"} for i in range(60)],
        )
        sizes["plan_next(5)"] = size(await agent.call("plan_next", limit=5))
        claim = await agent.call("claim_task")
        sizes["claim_task"] = size(claim)
        held = {"task_id": claim["task"]["id"], "lease_token": claim["lease_token"]}
        sizes["heartbeat"] = size(await agent.call("heartbeat", **held))
        sizes["checkpoint"] = size(await agent.call("checkpoint", summary="half", **held))
        sizes["plan_update"] = size(await agent.call("plan_update", status="done", **held))
        claim = await agent.call("claim_task")
        held = {"task_id": claim["task"]["id"], "lease_token": claim["lease_token"]}
        moved = await agent.call("plan_update", status="done", claim_next=True, **held)
        assert moved["next"]["claimed"]
        sizes["plan_update(claim_next)"] = size(moved)
        sizes["task_list(50)"] = size(await agent.call("task_list", limit=50))
    over = {name: n for name, n in sizes.items() if n > BUDGETS[name]}
    assert not over, f"over budget: {over} (budgets {BUDGETS})"


async def test_answers_omit_empty_fields_and_the_text_copy_is_compact(state_root: Path) -> None:
    async with connect(state_root, WVO_AGENT_ID="claude-1", **QUIET) as agent:
        await agent.call("task_create", tasks=[{"id": "T", "title": "t"}])
        result = await agent.client.call_tool("claim_task", {})
        content = result.structured_content
        assert content is not None
        # Nothing null or empty is sent; what is required stays.
        assert "route" not in content and "last_checkpoint" not in content
        assert "epic_id" not in content["task"] and content["claimed"] is True
        text = result.content[0].text  # type: ignore[union-attr]
        assert json.loads(text) == content and ": " not in text and "\n" not in text


async def test_a_recovered_task_arrives_with_its_checkpoint_cut_short(state_root: Path) -> None:
    long_summary = "x" * 4_000
    async with (
        connect(state_root, WVO_AGENT_ID="first", **QUIET) as first,
        connect(state_root, WVO_AGENT_ID="second", **QUIET) as second,
    ):
        await first.call("task_create", tasks=[{"id": "T", "title": "t"}])
        claim = await first.call("claim_task")
        held = {"task_id": "T", "lease_token": claim["lease_token"]}
        files = [f"src/module_{i}.py" for i in range(150)]
        await first.call("checkpoint", summary=long_summary, files=files, **held)
        await first.call("plan_update", status="pending", **held)
        taken = await second.call("claim_task")
        handed = taken["last_checkpoint"]
        assert handed["summary"].startswith("x" * 600) and "task_get('T')" in handed["summary"]
        assert len(handed["files"]) == 21 and "130 more" in handed["files"][-1]
        assert size(taken) < 2_000
        whole = (await second.call("task_get", task_id="T"))["latest_checkpoint"]
        assert whole["summary"] == long_summary and whole["files"] == files
