"""What the SDK's client sees in each protocol revision, over real stdio: the tools with
their schemas and annotations, the prompts and the resources, listed and read alike; and
over `serve --http`, the work loop as the agent the bearer token names."""

import json
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import PROTOCOL_MODES, ROOT, connect
from tests.http import conftest as http
from tests.http.test_http import PERSON_TOOLS
from tests.integration.test_guidance import DIRECTIVES, _text
from tests.integration.test_tools import READ_ONLY_TOOLS, TOOLS

pytestmark = [pytest.mark.anyio, pytest.mark.process]


@pytest.mark.parametrize("mode", PROTOCOL_MODES)
async def test_list_tools_names_schemas_and_annotations(state_root: Path, mode: str) -> None:
    async with connect(state_root, mode, process=True) as a:
        tools = (await a.client.list_tools()).tools
        assert sorted(t.name for t in tools) == sorted(TOOLS)
        for tool in tools:
            # No outputSchema for clients to check every answer against (edge/calls.Server);
            # the answers still come structured.
            assert tool.output_schema is None, tool.name
            assert tool.input_schema.get("type") == "object", tool.name
            assert tool.annotations is not None, tool.name
            expected = tool.name in READ_ONLY_TOOLS
            assert tool.annotations.read_only_hint is expected, tool.name
        answer = await a.client.call_tool("plan_next", {})
        assert answer.structured_content is not None and "counts" in answer.structured_content
        assert answer.content[0].text == json.dumps(  # type: ignore[union-attr]
            answer.structured_content, separators=(",", ":"), ensure_ascii=False
        )


@pytest.mark.parametrize("mode", PROTOCOL_MODES)
async def test_prompts_and_resources_are_listed_and_read(state_root: Path, mode: str) -> None:
    async with connect(state_root, mode, process=True) as a:
        prompts = {p.name: p for p in (await a.client.list_prompts()).prompts}
        assert set(prompts) == DIRECTIVES
        assert prompts["work_loop"].title == "The work loop"
        assert [arg.name for arg in prompts["work_loop"].arguments or []] == ["task_id"]

        plain = await a.client.get_prompt("work_loop", {})
        loop_text = plain.messages[0].content.text  # type: ignore[union-attr]
        assert loop_text == (ROOT / "directives" / "work-loop.md").read_text()
        focused = await a.client.get_prompt("error_recovery", {"task_id": "E1.M1.T1"})
        assert "task E1.M1.T1" in focused.messages[0].content.text  # type: ignore[union-attr]

        templates = {
            t.uri_template for t in (await a.client.list_resource_templates()).resource_templates
        }
        assert templates == {"wvo://tasks/{task_id}", "wvo://directives/{name}"}
        static = {str(r.uri) for r in (await a.client.list_resources()).resources}
        assert static == {"wvo://status", "wvo://context", "wvo://health"}

        await a.call("task_create", tasks=[{"id": "T1", "title": "first"}])
        await a.call("context_write", section="decisions", content="Use SQLite.")
        status = json.loads(_text(await a.client.read_resource("wvo://status")))
        assert status["counts"]["ready"] == 1 and status["top_ready"][0]["id"] == "T1"
        assert "Use SQLite." in _text(await a.client.read_resource("wvo://context"))
        task = json.loads(_text(await a.client.read_resource("wvo://tasks/T1")))
        assert (task["id"], task["title"]) == ("T1", "first")
        approvals = _text(await a.client.read_resource("wvo://directives/approvals"))
        assert approvals.startswith("# When to ask for approval")

        with pytest.raises(MCPError, match="no task with id 'nope'"):
            await a.client.read_resource("wvo://tasks/nope")
        with pytest.raises(MCPError, match="no directive 'nope'"):
            await a.client.read_resource("wvo://directives/nope")


@pytest.mark.parametrize("mode", PROTOCOL_MODES)
async def test_the_work_loop_runs_as_the_agent_the_token_names(state_root: Path, mode: str) -> None:
    secret = http.token(state_root, "agent", "claude-7")
    with http.http_server(state_root) as server:
        async with http.connect(server, secret, mode) as agent:
            tools = {t.name for t in (await agent.client.list_tools()).tools}
            assert {"plan_next", "claim_task", "checkpoint", "plan_update"} <= tools
            assert not tools & PERSON_TOOLS, "an agent token must not see person tools"
            await agent.call("task_create", tasks=[http.spec("T1")])
            plan = await agent.call("plan_next")
            assert plan["agent_id"] == "claude-7"
            assert [t["id"] for t in plan["tasks"]] == ["T1"]
            claim = await agent.call("claim_task")
            assert claim["claimed"] and claim["task"]["id"] == "T1"
            lease = claim["lease_token"]
            await agent.call("checkpoint", task_id="T1", lease_token=lease, summary="half way")
            done = await agent.call("plan_update", task_id="T1", status="done", lease_token=lease)
            assert done["status"] == "done"
    row = http.task_row(state_root, "T1")
    assert row["status"] == "done"
    actors = {e["actor"] for e in http.events(state_root, "T1") if e["kind"] != "created"}
    assert actors == {"claude-7"}, actors
