"""The loop's lane over HTTP (edge/hot_calls.py) answers as the SDK's path does.

Two real `serve --http` processes on one state folder: one with telemetry on, whose SDK
spans keep every call on the SDK's path, and one with the lane open (its debug log says
which calls it took). The same raw POSTs go to both; each answer (status, media type,
JSON-RPC body) must be the same, for answers, refusals, arguments refused, and every
handshake-era revision's shape."""

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER

from tests.http.conftest import MCP_HEADERS, HttpServer, connect, http_server, spec, token
from wvo_mcp.config import Settings
from wvo_mcp.edge import access
from wvo_mcp.edge.hot_calls import HOT
from wvo_mcp.edge.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.process]

LEASE = "0" * 32  # no lease's token


def call(tool: str, ident: object = 1, **params: Any) -> dict[str, Any]:
    params = {"name": tool, **params}
    return {"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": params}


CALLS: list[tuple[str | None, dict[str, Any]]] = [
    (None, call("plan_next", arguments={})),
    ("2025-11-25", call("plan_next", "a-string-id", arguments={"limit": 2})),
    ("2025-06-18", call("plan_next", 7)),
    ("2024-11-05", call("plan_next", 8, arguments={})),
    ("2025-11-25", call("plan_next", 9, arguments={}, _meta={"progressToken": "p1"})),
    ("2025-11-25", call("heartbeat", 10, arguments={"task_id": "H1", "lease_token": LEASE})),
    ("2025-11-25", call("checkpoint", 11, arguments={"task_id": "H1", "lease_token": LEASE})),
    ("2025-11-25", call("plan_update", 12, arguments={"task_id": "H1", "lease_secnds": 5})),
    ("2025-11-25", call("claim_task", 13, arguments={"agent_id": "someone-else"})),
    ("2025-11-25", call("heartbeat", 14, arguments='{"task_id": "H1"}')),
    ("2025-11-25", call("plan_next", 15, _meta={"progressToken": 1.5})),
    ("2025-11-25", call("no_such_tool", 16, arguments={})),
    ("2025-11-25", {**call("plan_next", 17), "extra": "ignored"}),
]


@pytest.fixture
def pair(state_root: Path) -> Iterator[tuple[HttpServer, HttpServer, str]]:
    """The SDK's path (telemetry on) and the lane, on one state folder, and an agent token."""
    secret = token(state_root, "agent", "hot")
    with ExitStack() as stack:
        sdk = stack.enter_context(http_server(state_root, WVO_OTEL_ENABLED=1))
        lane = stack.enter_context(
            http_server(state_root, WVO_OTEL_ENABLED=0, WVO_LOG_LEVEL="debug")
        )
        yield sdk, lane, secret


async def post(server: HttpServer, secret: str, version: str | None, body: object) -> Any:
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {secret}"}
    if version is not None:
        headers[MCP_PROTOCOL_VERSION_HEADER] = version
    async with server.http() as http:
        answer = await http.post(server.url, content=json.dumps(body), headers=headers)
    return answer.status_code, answer.headers.get("content-type"), answer.json()


async def test_the_lane_answers_each_call_as_the_sdk_does(
    pair: tuple[HttpServer, HttpServer, str], state_root: Path
) -> None:
    sdk, lane, secret = pair
    async with connect(sdk, secret) as agent:
        await agent.call("task_create", tasks=[spec("H1"), spec("H2", business_value=3)])
    for version, body in CALLS:
        theirs = await post(sdk, secret, version, body)
        ours = await post(lane, secret, version, body)
        assert ours == theirs, (version, body)
    # A person's claim: the role gate's refusal, the same on both.
    person = token(state_root, "person", "ann")
    refused = [await post(s, person, None, call("claim_task")) for s in (sdk, lane)]
    assert refused[0] == refused[1] and "agent token" in str(refused[0])
    # What was compared: answers and refusals of every kind, not one error for all.
    answers = [(await post(lane, secret, v, b))[2] for v, b in CALLS]
    listed = answers[0]["result"]["structuredContent"]["tasks"]
    assert {task["id"] for task in listed} == {"H1", "H2"}
    assert not any("resultType" in a.get("result", {}) for a in answers)  # handshake era
    assert answers[5]["result"]["isError"] and "LeaseLost" in str(answers[5]["result"])
    assert "summary" in answers[6]["result"]["content"][0]["text"]
    assert "lease_secnds" in answers[7]["result"]["content"][0]["text"]
    assert answers[8]["result"]["isError"]
    assert "error" in answers[10] and "Unknown tool" in str(answers[11]["result"])
    # ... and the lane did answer them (its debug log says so), the SDK's server none.
    took = lane.stderr.read_text()
    for tool in ("plan_next", "heartbeat", "checkpoint", "plan_update", "claim_task"):
        assert f"{tool}: answered in the loop's lane" in took, tool
    assert "answered in the loop's lane" not in sdk.stderr.read_text()


def test_the_lane_takes_only_plain_calls_of_the_loop(state_root: Path) -> None:
    """Which calls the lane takes, and that telemetry's spans close it."""
    http = access.HttpAccess(auth=None)
    server = build_server(Settings(state_root=state_root, otel_enabled=False), http=http)
    hot = server.hot
    assert hot is not None and hot.open
    for name in HOT:
        taken = hot.take(call(name, arguments={"task_id": "T1"}))
        assert taken is not None and taken.name == name
    assert hot.take(call("task_get", arguments={"task_id": "T1"})) is None  # not the loop's
    assert hot.take(call("heartbeat", task={"ttl": 5})) is None  # the SDK's to judge
    assert hot.take(call("heartbeat", requestState="x")) is None
    assert hot.take(call("heartbeat", arguments=[1])) is None
    assert hot.take(call("heartbeat", _meta={"progressToken": True})) is None
    assert hot.take(call("heartbeat", _meta={"progressToken": 3})) is not None
    assert hot.take({**call("heartbeat"), "extra": 1}) is not None  # ignored, as the SDK does
    assert hot.take({k: v for k, v in call("heartbeat").items() if k != "id"}) is None
    assert hot.take({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}) is None
    traced = build_server(Settings(state_root=state_root, otel_enabled=True), http=http)
    assert traced.hot is not None and not traced.hot.open
    assert isinstance(server, MCPServer) and access.RoleFilter in map(type, server.middleware)
