"""The fake worker's own MCP client (autopilot/mcp_client.py): it imports no `mcp`, and it
reads a real `serve --http`'s answers as the SDK's client did."""

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests.conftest import ROOT
from tests.http.conftest import http_server, token
from wvo_mcp.autopilot import mcp_client
from wvo_mcp.autopilot.mcp_client import HTTPRefused, MCPError


def test_the_fake_worker_imports_no_mcp() -> None:
    """Several hundred fake workers start per test suite; the SDK's import was most of each
    one's CPU. The fake starts as it is run (`python -P fake.py`), so its own imports count."""
    shown = (
        "import json, sys; import wvo_mcp.autopilot.fake; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('mcp', 'mcp_types', 'pydantic', 'pydantic_core'))))"
    )
    ran = subprocess.run(
        [sys.executable, "-P", "-c", shown], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(ran.stdout) == [], ran.stdout


def test_it_reads_a_real_servers_answers_and_refusals(tmp_path: Path) -> None:
    state = tmp_path / "state"
    secret = token(state, "operator", "op")
    with http_server(state) as server:

        async def calls() -> None:
            async with mcp_client.connect(server.url, secret) as client:
                made = await client.call_tool(
                    "task_create", {"tasks": [{"id": "T1", "title": "one"}]}
                )
                assert not made.is_error, made
                got = await client.call_tool("task_get", {"task_id": "T1"})
                assert not got.is_error and (got.structured_content or {})["title"] == "one"
                missing = await client.call_tool("task_get", {"task_id": "nope"})
                assert missing.is_error and "no task with id 'nope'" in missing.content[0].text
                status = await client.read_resource("wvo://status")
                assert "counts" in json.loads(status.contents[0].text)
                with pytest.raises(MCPError, match="Unknown resource: wvo://nope"):
                    await client.read_resource("wvo://nope")
                names = {t.name for t in (await client.list_tools()).tools}
                assert {"task_create", "task_get", "checkpoint"} <= names, names
            async with mcp_client.connect(server.url, "wvo_not_a_token") as client:
                with pytest.raises(HTTPRefused) as refused:
                    await client.call_tool("task_list", {})
            said = f"{type(refused.value).__name__}: {refused.value}"
            assert said.startswith("HTTPRefused: HTTP/1.1 401 Unauthorized: "), said
            assert "invalid_token" in said, said

        anyio.run(calls)


def test_an_sse_answer_is_read_from_its_data_lines() -> None:
    """MCP lets a server answer a POST as an SSE stream: the answer is an event's `data:`
    (one line or several), after any notification."""
    lines = [
        "event: message",
        'data: {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}',
        "",
        "id: 7",
        'data: {"jsonrpc": "2.0", "id": 3,',
        'data: "result": {"isError": false}}',
    ]
    found = list(mcp_client.sse_messages(lines))
    assert [m.get("id") for m in found] == [None, 3]
    assert mcp_client.answer(found[1]) == {"isError": False}
    with pytest.raises(MCPError, match="no such method"):
        mcp_client.answer(
            {"jsonrpc": "2.0", "id": 4, "error": {"code": -32601, "message": "no such method"}}
        )
