"""Tool profiles (WVO_TOOLS) and lean schemas, as a client lists them."""

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import connect, serve_once
from wvo_mcp.edge.toolset import LOOP, PROFILES

pytestmark = pytest.mark.anyio
QUIET = {"WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0, "WVO_OTEL_ENABLED": 0}


def _walk(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, list):
        return [d for item in schema for d in _walk(item)]
    if not isinstance(schema, dict):
        return []
    return [schema, *(d for v in schema.values() for d in _walk(v))]


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_each_profile_lists_exactly_its_tools(state_root: Path, profile: str) -> None:
    async with connect(state_root, WVO_TOOLS=profile, **QUIET) as agent:
        tools = (await agent.client.list_tools()).tools
    assert sorted(t.name for t in tools) == sorted(PROFILES[profile])
    for tool in tools:
        nodes = _walk(tool.input_schema)
        assert not [n for n in nodes if isinstance(n.get("title"), str)], tool.name
        assert not [n for n in nodes if {"type": "null"} in n.get("anyOf", [])], tool.name
        assert "\n    " not in (tool.description or "")
        assert bool((tool.meta or {}).get("anthropic/alwaysLoad")) == (
            tool.name in ("claim_task", "heartbeat", "checkpoint", "plan_update")
        )


async def test_a_worker_runs_the_whole_loop(state_root: Path) -> None:
    async with connect(state_root, WVO_TOOLS="planner", **QUIET) as planner:
        after_t = {"id": "U", "title": "u", "depends_on": ["T"]}
        await planner.call("task_create", tasks=[{"id": "T", "title": "t"}, after_t])
    async with connect(state_root, WVO_TOOLS="worker", WVO_AGENT_ID="w", **QUIET) as worker:
        assert sorted(t.name for t in (await worker.client.list_tools()).tools) == sorted(LOOP)
        assert [t["id"] for t in (await worker.call("plan_next"))["tasks"]] == ["T"]
        claim = await worker.call("claim_task")
        token = claim["lease_token"]
        await worker.call("heartbeat", task_id="T", lease_token=token)
        await worker.call("context_write", section="notes", content="found it")
        await worker.call("checkpoint", task_id="T", lease_token=token, summary="half")
        done = await worker.call(
            "plan_update", task_id="T", status="done", lease_token=token, claim_next=True
        )
        assert done["status"] == "done" and done["next"]["task"]["id"] == "U"
        assert (await worker.call("task_get", task_id="T"))["status"] == "done"
        # A tool outside the profile does not exist for this agent.
        missing = await worker.client.call_tool("task_create", {"tasks": [{"title": "x"}]})
        assert missing.is_error


async def test_profiles_and_tools_combine(state_root: Path) -> None:
    async with connect(state_root, WVO_TOOLS="worker, sandbox_run", **QUIET) as agent:
        names = {t.name for t in (await agent.client.list_tools()).tools}
    assert names == {*LOOP, "sandbox_run"}


def test_an_unknown_profile_is_refused_at_start(state_root: Path) -> None:
    started = serve_once({"WVO_STATE_ROOT": str(state_root), "WVO_TOOLS": "worker,wizard"})
    assert started.returncode == 2 and "'wizard'" in started.stderr
    assert all(profile in started.stderr for profile in PROFILES)


# What the model is sent per tool (name, title, description, input schema as compact JSON),
# in bytes: issue 11's budgets are 2,500 tokens for all tools and 1,200 for the worker loop,
# at about 4 bytes a token. Issue 22's landing_queue (about 350 bytes) took `all` past
# 10,000; a worker never sees it. Issue 23's titles (about 25 bytes a tool) are counted
# though Claude Code shows them only to people: another client may show them to its model.
DEFINITION_BUDGETS = {"all": 10_800, "worker": 4_800}
# Issue 36's: what Claude Code sends its model (no titles), 2,500 and 1,200 tokens.
SHOWN_BUDGETS = {"all": 10_000, "worker": 4_800}


@pytest.mark.parametrize("profile", sorted(DEFINITION_BUDGETS))
async def test_tool_definitions_stay_within_their_budget(state_root: Path, profile: str) -> None:
    async with connect(state_root, WVO_TOOLS=profile, **QUIET) as agent:
        tools = (await agent.client.list_tools()).tools

    def size(tool: Any, *fields: str) -> int:
        return len(json.dumps({f: getattr(tool, f) for f in fields}, separators=(",", ":")))

    sent = sum(size(t, "name", "title", "description", "input_schema") for t in tools)
    assert sent <= DEFINITION_BUDGETS[profile], f"{profile}: {sent} bytes"
    shown = sum(size(t, "name", "description", "input_schema") for t in tools)
    assert shown <= SHOWN_BUDGETS[profile], f"{profile}: {shown} bytes as Claude Code shows them"
