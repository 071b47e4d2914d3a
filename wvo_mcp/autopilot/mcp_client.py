"""A small MCP client of wvo-mcp's own endpoint over streamable HTTP, importing no `mcp`.

The fake worker (fake.py, fake_probe.py, fake_acp.py) and the ACP driver (acp_driver.py) each
start once per run, by the hundred in a test suite and in the demo; importing the SDK's
client (which builds every pydantic model of the protocol) cost each start half a second of
CPU or more. What it sends stays what an MCP client sends wvo-mcp's endpoint
(edge/http_server.py): a JSON-RPC request of the handshake-era revision, POSTed with the
run's bearer token. That endpoint is stateless (no session id, no `initialize` needed: each
request is served at its header's version), and answers one JSON body; an SSE stream's
answer (a `data:` line) is read too, as MCP allows either.
"""

import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2

PROTOCOL = "2025-11-25"  # the handshake era's newest: wvo-mcp's edge answers it itself
CONNECT_TIMEOUT_S = 30.0
READ_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 60.0  # a whole request, as the SDK client's read_timeout_seconds was
SAID_CHARS = 300  # of a refusal's body, in its exception


class MCPError(Exception):
    """The server's JSON-RPC error answer (or an answer that is none): its message, as the
    SDK's MCPError reads."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


class HTTPRefused(Exception):
    """The server refused the request over HTTP without a JSON-RPC answer (a token refused,
    a rate or a cap reached): its status line and what its body says."""

    def __init__(self, status: int, reason: str, body: str) -> None:
        said = f": {body[:SAID_CHARS]}" if body else ""
        super().__init__(f"HTTP/1.1 {status} {reason}{said}")
        self.status = status


@dataclass(frozen=True)
class Content:
    """A content item; `text` is empty for one that has none (an image, a blob)."""

    type: str
    text: str


@dataclass(frozen=True)
class ToolResult:
    content: list[Content]
    structured_content: dict[str, Any] | None
    is_error: bool


@dataclass(frozen=True)
class Resource:
    contents: list[Content]


@dataclass(frozen=True)
class Tool:
    name: str


@dataclass(frozen=True)
class Tools:
    tools: list[Tool]


def items(found: object) -> list[Content]:
    listed = found if isinstance(found, list) else []
    return [
        Content(str(c.get("type", "")), str(c.get("text", "")))
        for c in listed
        if isinstance(c, dict)
    ]


def sse_messages(lines: Iterable[str]) -> Iterable[dict[str, Any]]:
    """The JSON-RPC messages of an SSE stream's lines: each event's `data:` lines, joined."""
    data: list[str] = []
    for line in (*lines, ""):
        if line == "":  # an event ends
            if data:
                message = json.loads("\n".join(data))
                if isinstance(message, dict):
                    yield message
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def answer(message: dict[str, Any]) -> dict[str, Any]:
    """A response's result, or its error raised."""
    error = message.get("error")
    if isinstance(error, dict):
        raise MCPError(int(error.get("code", 0)), str(error.get("message", "")), error.get("data"))
    result = message.get("result")
    if not isinstance(result, dict):
        raise MCPError(-32603, f"an answer with no result: {json.dumps(message)[:SAID_CHARS]}")
    return result


class Client:
    """JSON-RPC requests to one MCP endpoint, over `http` (which carries the bearer token)."""

    def __init__(self, http: httpx2.AsyncClient, url: str) -> None:
        self.http, self.url = http, url
        self.last_id = 0

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.last_id += 1
        ident = self.last_id
        body = json.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        with anyio.fail_after(REQUEST_TIMEOUT_S):
            async with self.http.stream("POST", self.url, content=body) as response:
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if kind == "text/event-stream" and response.status_code < 400:
                    lines: list[str] = []
                    async for line in response.aiter_lines():
                        lines.append(line)
                        if line == "":  # an event ended: the answer may be in it
                            for message in sse_messages(lines):
                                if message.get("id") == ident:
                                    return answer(message)
                            lines = []
                    for message in sse_messages(lines):
                        if message.get("id") == ident:
                            return answer(message)
                    raise MCPError(-32000, f"the SSE stream of {method} ended without an answer")
                text = (await response.aread()).decode(errors="replace")
        return self.answered(response, kind, text, method)

    def answered(
        self, response: httpx2.Response, kind: str, text: str, method: str
    ) -> dict[str, Any]:
        """A JSON answer (a JSON-RPC error whatever the status, as MCP allows), else the
        HTTP refusal."""
        found: object = None
        if kind == "application/json":
            try:
                found = json.loads(text)
            except ValueError:
                found = None
        rpc = isinstance(found, dict) and found.get("jsonrpc") == "2.0"
        if isinstance(found, dict) and rpc and ("error" in found or response.status_code < 400):
            return answer(found)
        if response.status_code >= 400 or response.status_code == 202:
            raise HTTPRefused(response.status_code, response.reason_phrase, text.strip())
        raise MCPError(-32600, f"{method}: no JSON-RPC answer ({kind or 'no content type'})")

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        result = await self.request("tools/call", {"name": name, "arguments": arguments})
        structured = result.get("structuredContent")
        return ToolResult(
            content=items(result.get("content")),
            structured_content=structured if isinstance(structured, dict) else None,
            is_error=bool(result.get("isError", False)),
        )

    async def read_resource(self, uri: str) -> Resource:
        result = await self.request("resources/read", {"uri": uri})
        return Resource(items(result.get("contents")))

    async def list_tools(self) -> Tools:
        result = await self.request("tools/list", {})
        listed = result.get("tools")
        names = (
            [t.get("name") for t in listed if isinstance(t, dict)]
            if isinstance(listed, list)
            else []
        )
        return Tools([Tool(n) for n in names if isinstance(n, str)])


@asynccontextmanager
async def connect(url: str, token: str) -> AsyncIterator[Client]:
    """A client of the endpoint at `url`, sending `token` as its bearer token."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": PROTOCOL,
    }
    timeout = httpx2.Timeout(CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S)
    # Plain HTTP (the autopilot's own endpoint): no certificate store to load, which took a
    # third of a run's CPU (45 ms a TLS context, three with the sandbox's proxy variables).
    verify = not url.startswith("http://")
    async with httpx2.AsyncClient(headers=headers, timeout=timeout, verify=verify) as http:
        yield Client(http, url)
