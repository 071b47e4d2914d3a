"""`tools/list` and `tools/call` on the SDK's low-level server, from a table built once.

`tools/list` and `tools/call` on the SDK's low-level server, from a table built once with
the server: the listed tools in their wire form, and per tool its argument model's validator
and the arguments that may come JSON-encoded.

MCPServer's own path, per call, looks the tool up through its manager, works out afresh
which arguments a client may have sent as JSON text, dumps the validated model to keyword
arguments, converts the answer to a model and dumps it again. The words an agent reads stay
the SDK's: an unknown tool, a refused argument ("Error executing tool NAME: …"), and the
text of a crash kept on the server."""

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolRequestParams, ListToolsResult, PaginatedRequestParams
from pydantic import ValidationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One tool as a call needs it."""

    name: str
    fn: Callable[..., Awaitable[Any]]
    validate: Callable[[Any], Any]  # the argument model's own validator, built once
    fields: tuple[tuple[str, str], ...]  # (attribute of the validated model, keyword)
    json_text: frozenset[str]  # arguments whose str value may be JSON (Claude Desktop's habit)
    context: str | None  # the keyword the Context goes in
    convert: Callable[[Any], Any]  # the SDK's conversion, for an answer not already wire form


def entries(server: MCPServer[Any]) -> dict[str, Entry]:
    """Each registered tool's entry, from what MCPServer derived when it was added."""
    table = {}
    for tool in server._tool_manager.list_tools():
        model = tool.fn_metadata.arg_model
        fields = model.model_fields
        table[tool.name] = Entry(
            name=tool.name,
            fn=tool.fn,
            validate=model.__pydantic_validator__.validate_python,
            fields=tuple((name, info.alias or name) for name, info in fields.items()),
            json_text=frozenset(
                key
                for name, info in fields.items()
                if info.annotation is not str
                for key in (name, info.alias)
                if key
            ),
            context=tool.context_kwarg,
            convert=tool.fn_metadata.convert_result,
        )
    return table


class ToolCalls:
    """The handlers; `install` puts them in place of MCPServer's, once every tool is
    registered and shaped (server.build_server)."""

    def __init__(self, server: MCPServer[Any]) -> None:
        self.server = server
        self.table = entries(server)
        self.listed: dict[str, Any] | None = None

    def install(self) -> None:
        lowlevel = self.server._lowlevel_server
        lowlevel.add_request_handler("tools/list", PaginatedRequestParams, self.list_tools)
        lowlevel.add_request_handler("tools/call", CallToolRequestParams, self.call_tool)

    async def list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> dict[str, Any]:
        if self.listed is None:  # the tools are fixed once the server is built
            listed = ListToolsResult(tools=await self.server.list_tools())
            self.listed = listed.model_dump(by_alias=True, mode="json", exclude_none=True)
        return self.listed

    async def call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: CallToolRequestParams
    ) -> Any:
        return await self.call(ctx, params.name, params.arguments or {})

    async def call(
        self, ctx: ServerRequestContext[Any, Any], name: str, arguments: dict[str, Any]
    ) -> Any:
        """Tool `name`'s answer in wire form, a refusal as a tool error; the SDK's path and
        the loop's own (hot_calls.py) both call here."""
        entry = self.table.get(name)
        try:
            if entry is None:
                raise ToolError(f"Unknown tool: {name}")
            return await self._run(entry, ctx, arguments)
        except MCPError:
            raise
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                # Field names only: the rejected values are the caller's data.
                fields = sorted({".".join(map(str, e["loc"])) for e in exc.__cause__.errors()})
                log.info("Tool %r rejected arguments: %r", name, fields)
            else:
                log.info("Tool %r failed: %r", name, str(exc))
            return _error(str(exc))
        except Exception:
            log.exception("Tool %r raised an unexpected exception", name)
            return _error(f"Error executing tool {name}")

    async def _run(
        self, entry: Entry, ctx: ServerRequestContext[Any, Any], arguments: dict[str, Any]
    ) -> Any:
        try:
            model = entry.validate(_decoded(arguments, entry.json_text))
        except ValidationError as exc:
            raise ToolError(f"Error executing tool {entry.name}: {exc}") from exc
        kwargs = {keyword: getattr(model, name) for name, keyword in entry.fields}
        if entry.context is not None:
            kwargs[entry.context] = Context(request_context=ctx, mcp_server=self.server)
        try:
            answer = await entry.fn(**kwargs)
        except ToolError as exc:
            raise ToolError(f"Error executing tool {entry.name}: {exc}") from exc
        return answer if isinstance(answer, dict) else entry.convert(answer)


def _decoded(arguments: dict[str, Any], json_text: frozenset[str]) -> dict[str, Any]:
    """`arguments`, with a JSON list or object sent as text decoded where the argument is
    not text (the SDK's pre_parse_json, on the keys worked out once)."""
    decoded = arguments
    for key, value in arguments.items():
        if key not in json_text or not isinstance(value, str):
            continue
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            continue
        if isinstance(parsed, str | int | float):
            continue  # '"hello"' or '5' stays text for validation to take or refuse
        if decoded is arguments:
            decoded = dict(arguments)
        decoded[key] = parsed
    return decoded


def _error(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": True, "resultType": "complete"}
