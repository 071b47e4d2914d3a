"""The table-built tools/list and tools/call (edge/tool_calls.py) answer as MCPServer's own
path does: the same list, the same refusals, the same decoding of JSON sent as text."""

import json
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp.server.context import ServerRequestContext
from mcp.types import CallToolRequestParams
from mcp_types import methods

from wvo_mcp.config import Settings
from wvo_mcp.edge import tool_calls
from wvo_mcp.edge.calls import Server
from wvo_mcp.edge.server import build_server
from wvo_mcp.orchestrator import Orchestrator

pytestmark = pytest.mark.anyio

REVISIONS = ("2025-06-18", "2025-11-25", "2026-07-28")
SERVER = build_server(Settings(state_root=Path("/nonexistent"), agent_id="unit-agent"))
TABLE = tool_calls.entries(SERVER)

# Refused calls: MCPServer's path and the table's answer each alike.
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("no_such_tool", {}),
    ("claim_task", {"lease_second": 3}),
    ("claim_task", {"lease_seconds": "abc"}),
    ("task_get", {}),
    ("task_get", {"task_id": "ZZ-9"}),
    ("task_get", {"task_id": 7}),
    ("plan_next", {"limit": 0}),
    ("task_list", {"status": '["pending"]'}),
    ("task_create", {"tasks": '[{"id": "A-1"}]'}),
    ("plan_update", {"task_id": "A-1", "status": "done", "lease_token": "bad"}),
    ("heartbeat", {"task_id": "A-1", "lease_token": "x" * 10}),
    ("context_read", {"section": "nothing-here"}),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def orchestrator(tmp_path: Path) -> AsyncIterator[Orchestrator]:
    opened = await Orchestrator.open(Settings(state_root=tmp_path / "state"))
    try:
        yield opened
    finally:
        await opened.close()


async def called(
    orchestrator: Orchestrator, name: str, arguments: dict[str, Any], handler: Any
) -> Any:
    """What a tools/call handler answers this call."""
    ctx = ServerRequestContext(
        session=None,  # type: ignore[arg-type]  # no client: the agent id is set
        lifespan_context=orchestrator,
        protocol_version="2025-11-25",
        method="tools/call",
        params={"name": name, "arguments": arguments},
    )
    return await handler(ctx, CallToolRequestParams(name=name, arguments=arguments))


def wire(answer: Any, revision: str = "2025-11-25") -> Any:
    """An answer as the runner puts it on the wire (ServerRunner._serialize)."""
    if not isinstance(answer, dict):
        answer = answer.model_dump(by_alias=True, mode="json", exclude_none=True)
    return methods.serialize_server_result("tools/call", revision, answer)


@pytest.mark.parametrize(("name", "arguments"), CALLS, ids=[f"{n}{a}" for n, a in CALLS])
async def test_a_call_answers_as_the_sdks_path_does(
    orchestrator: Orchestrator, name: str, arguments: dict[str, Any]
) -> None:
    ours = await called(orchestrator, name, arguments, tool_calls.ToolCalls(SERVER).call_tool)
    sdks = await called(orchestrator, name, arguments, partial(Server._handle_call_tool, SERVER))
    for revision in REVISIONS:
        assert wire(ours, revision) == wire(sdks, revision)
    assert wire(ours)["isError"] is True


@pytest.mark.parametrize(
    ("name", "arguments"), [("plan_next", {"limit": "3"}), ("task_list", {"status": "pending"})]
)
async def test_an_answer_is_its_structured_content_and_a_compact_text_copy(
    orchestrator: Orchestrator, name: str, arguments: dict[str, Any]
) -> None:
    answer = await called(orchestrator, name, arguments, tool_calls.ToolCalls(SERVER).call_tool)
    assert wire(answer, "2026-07-28")["resultType"] == "complete"
    ours = wire(answer)
    assert ours["isError"] is False
    text = json.dumps(ours["structuredContent"], separators=(",", ":"), ensure_ascii=False)
    assert ours["content"] == [{"type": "text", "text": text}]


async def test_the_list_is_the_sdks_list() -> None:
    listed = await tool_calls.ToolCalls(SERVER).list_tools(None, None)  # type: ignore[arg-type]
    sdks = [
        t.model_dump(by_alias=True, mode="json", exclude_none=True)
        for t in await SERVER.list_tools()
    ]
    assert listed["tools"] == sdks
    assert {t["name"] for t in listed["tools"]} == set(TABLE)


ARGUMENT = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=12),
    st.sampled_from(['["pending"]', '{"a": 1}', '"quoted"', "5", "[1, 2", "null", "true"]),
    st.lists(st.integers(), max_size=3),
)


@given(
    name=st.sampled_from(sorted(TABLE)),
    arguments=st.dictionaries(
        st.sampled_from(
            ["task_id", "status", "limit", "tasks", "labels", "extra", "lease_seconds"]
        ),
        ARGUMENT,
        max_size=4,
    ),
)
def test_json_sent_as_text_is_decoded_as_the_sdk_decodes_it(
    name: str, arguments: dict[str, Any]
) -> None:
    tool = SERVER._tool_manager.get_tool(name)
    assert tool is not None
    expected = tool.fn_metadata.pre_parse_json(arguments)
    assert tool_calls._decoded(arguments, TABLE[name].json_text) == expected
