"""The loop's tool calls over HTTP and stdio, answered without the SDK's per-request machinery.

An agent's loop is claim_task, heartbeat, checkpoint and plan_update (plan_next too): most
of a fleet's requests. For a plain call of one of them in a handshake-era revision, the
SDK would validate the message again as a model, build a runner, pass the call through its
middleware chain, validate the parameters as a model, validate the answer against its
result model for the revision, and dump a response model; here the body parsed once
(http_server.Endpoint) goes to the same tool-call table (tool_calls.py), behind the same
role gate, and the answer's bytes are written as they go on the wire.

Anything else goes the SDK's way, word for word as before: another method or tool, a
parameter this lane does not take (`task`, `requestState`, a `_meta.progressToken` of the
wrong type), a call the role gate refuses, and every call while the SDK's OpenTelemetry
spans are on (or any server middleware this lane does not know). The wire is the same
either way (tests/integration/test_hot_calls.py compares the two)."""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import pydantic_core
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.request_state import RequestStateBoundary
from mcp.server.runner import modern_error_data
from mcp.server.session import ServerSession
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.message import MessageMetadata, ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp.types import INTERNAL_ERROR, ErrorData, RequestId
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from wvo_mcp.edge import access, protocol, tool_calls

# The loop's tools: most of what a fleet asks (toolset.LOOP's writes and plan_next).
HOT = frozenset({"claim_task", "heartbeat", "checkpoint", "plan_update", "plan_next"})
# Server middleware a plain tools/call of a hot tool passes through unchanged (the SDK's
# RequestStateBoundary acts on a call's requestState), or that this lane applies itself
# (RoleFilter); build_server names its own others (calls.ProtocolEdge).
PASSED = (RequestStateBoundary, access.RoleFilter)

log = logging.getLogger(__name__)


@dataclass
class OneAnswer:
    """The dispatch context of a request whose only answer is its JSON result: nothing goes
    to the client meanwhile (no request, no notification), as in the SDK's JSON mode."""

    transport: TransportContext
    request_id: RequestId
    message_metadata: MessageMetadata
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = False

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> None:
        return None

    async def progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        return None


ONE_ANSWER = TransportContext(kind="streamable-http", can_send_request=False)


@dataclass(frozen=True)
class Call:
    """A plain call of a hot tool, as this lane answers it."""

    id: RequestId
    name: str
    arguments: dict[str, Any]
    params: dict[str, Any]


class HotCalls:
    """The lane; `open` is False (every call the SDK's) while a middleware it does not
    know is on the server, such as the SDK's OpenTelemetry spans."""

    def __init__(
        self,
        server: MCPServer[Any],
        calls: tool_calls.ToolCalls,
        state: Callable[[], object | None],
        passed: tuple[type, ...] = (),
    ) -> None:
        self.server = server
        self.calls = calls
        self.state = state  # the open orchestrator (server.py's lifespan), or None
        self.open = "tools/call" not in server._lowlevel_server.cache_hints and all(
            isinstance(m, (*PASSED, *passed)) for m in server.middleware
        )
        self.roles = next((m for m in server.middleware if isinstance(m, access.RoleFilter)), None)
        # Born ready, with no client info and no channel back: nothing a call changes, so
        # one per revision serves every call (the SDK builds one a request).
        self.connections: dict[str, Connection] = {}

    def take(self, found: object) -> Call | None:
        """The call this lane answers, or None for the SDK: `found` is a JSON-RPC request
        that protocol.invalid_request passed."""
        if not self.open or not isinstance(found, dict) or found.get("method") != "tools/call":
            return None
        if "id" not in found:  # a notification: the SDK's, which answers none
            return None
        params = found.get("params")
        if not isinstance(params, dict) or params.keys() - {"name", "arguments", "_meta"}:
            return None
        name, arguments = params.get("name"), params.get("arguments")
        if not isinstance(name, str) or name not in HOT or name not in self.calls.table:
            return None
        if arguments is None:
            arguments = {}
        elif not isinstance(arguments, dict):
            return None
        if "_meta" in params and not _plain_meta(params["_meta"]):
            return None
        if self.roles is not None and self.roles.refusal(name, arguments) is not None:
            return None  # the SDK's path says why, as the role gate words it
        ident = found["id"]
        return Call(ident, name, arguments, params)

    def connection(self, version: str) -> Connection:
        """A stateless HTTP request's connection in `version`: born ready, no client info."""
        connection = self.connections.get(version)
        if connection is None:
            connection = self.connections[version] = Connection.from_envelope(version, None, None)
        return connection

    async def answer(
        self,
        call: Call,
        connection: Connection,
        state: object,
        request: Request | None = None,
        transport: TransportContext = ONE_ANSWER,
    ) -> bytes:
        """The JSON-RPC answer's bytes, as the SDK's JSON response or stdio line carries
        them, on `connection` (its revision, and over stdio its client's `initialize`)."""
        version = connection.protocol_version
        metadata = ServerMessageMetadata(request_context=request, can_send_request=False)
        dctx = OneAnswer(transport, call.id, metadata)
        ctx: ServerRequestContext[Any, Any] = ServerRequestContext(
            session=ServerSession(dctx, connection),
            lifespan_context=state,
            protocol_version=version,
            method="tools/call",
            params=call.params,
            request_id=call.id,
            request=request,
        )
        log.debug("%s: answered in the loop's lane", call.name)
        try:
            result = await self.calls.call(ctx, call.name, call.arguments)
        except Exception as exc:  # the SDK's mapping, as Endpoint._answer makes it
            return _error_body(call.id, modern_error_data(exc))
        if isinstance(result, BaseModel):  # no hot tool's: calls.py answers in wire form
            result = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        try:
            return protocol.result_body(call.id, result, version)
        except ValidationError:  # the SDK's words for an answer its revision cannot carry
            log.exception("handler for 'tools/call' returned an invalid result")
            error = ErrorData(code=INTERNAL_ERROR, message="Handler returned an invalid result")
            return _error_body(call.id, error)


def _error_body(ident: RequestId, error: ErrorData) -> bytes:
    dumped = error.model_dump(by_alias=True, mode="json", exclude_unset=True)
    return pydantic_core.to_json({"jsonrpc": "2.0", "id": ident, "error": dumped})


def _plain_meta(meta: object) -> bool:
    """A `_meta` the SDK's request model takes: an object whose progressToken, if any, is
    a string or an integer."""
    if not isinstance(meta, dict):
        return False
    return "progressToken" not in meta or protocol.valid_id(meta["progressToken"])
