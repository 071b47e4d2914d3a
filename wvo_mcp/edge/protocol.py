"""The JSON-RPC and MCP rules checked at wvo-mcp's edge, before the SDK sees a message (pure).

Both transports (stdio.py, http_server.py) and the prompt middleware (server.py) ask here.
What the SDK (mcp 2.3) would do instead, and why each check exists:

- A message with an `id` that is no string or integer (1.5, null, true, an object) passes
  its parser as a notification, so the request is never answered: here it is an Invalid
  Request, answered with a null id.
- A batch, or an object without `jsonrpc` or `method`, gets -32602 and the whole pydantic
  error (1.3 KB) over HTTP: here it is -32600 with one short sentence.
- An unsupported protocol version is answered with the SDK's per-request revisions only,
  though this server also speaks the handshake one.
- `prompts/get` of an unknown prompt or argument raises ValueError in the SDK: error code 0
  (or -32603) and a traceback in the log; here it is -32602 naming what is accepted.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic_core
from mcp.shared.inbound import InboundLadderRejection, classify_inbound_request
from mcp.types import (
    INVALID_REQUEST,
    UNSUPPORTED_PROTOCOL_VERSION,
    ErrorData,
    JSONRPCError,
    RequestId,
)
from mcp_types.methods import serialize_server_result
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    MODERN_PROTOCOL_VERSIONS,
)
from pydantic import ValidationError

# What this server speaks: the initialize handshake's newest revision, and the per-request
# ones. An unsupported-version error lists them all, so a client can fall back.
REVISIONS: tuple[str, ...] = (LATEST_HANDSHAKE_VERSION, *MODERN_PROTOCOL_VERSIONS)

ID_CHARS = 200  # a longer string id is valid, but not echoed in a refusal
SHOWN_CHARS = 60
REASON_CHARS = 100
NAMES_CHARS = 150
ACCEPTED = (
    'send one object {"jsonrpc": "2.0", "id": string or integer, "method": string, '
    '"params": object}, without "id" for a notification; batches are not supported'
)


def kind(value: object) -> str:
    """A JSON value's kind, as a refusal names it (never the value: it may be huge)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return "a floating-point number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def valid_id(value: object) -> bool:
    """JSON-RPC 2.0 as MCP narrows it: a request id is a string or an integer."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def reply_id(value: object) -> RequestId | None:
    """The id a refusal echoes: a valid one short enough to send back, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and len(value) <= ID_CHARS and value.isprintable():
        return value
    return None


def invalid_request(message: object) -> str | None:
    """What makes a decoded JSON value no JSON-RPC 2.0 message this server takes, or None.

    A response (no `method`, a `result` or an `error`) is the SDK's to check."""
    if isinstance(message, list):
        return "a batch (a JSON array) was sent"
    if not isinstance(message, dict):
        return f"{kind(message)} was sent instead of an object"
    if "id" in message and not valid_id(message["id"]):
        return f'"id" must be a string or an integer, not {kind(message["id"])}'
    if message.get("jsonrpc") != "2.0":
        return '"jsonrpc" must be "2.0"' if "jsonrpc" in message else '"jsonrpc" is missing'
    if "method" not in message:
        return None if "result" in message or "error" in message else '"method" is missing'
    if not isinstance(message["method"], str):
        return f'"method" must be a string, not {kind(message["method"])}'
    return None


def validation_reason(exc: ValidationError, message: object) -> str:
    """The first thing pydantic found wrong with a message, in a few words: against the kind
    of message it looks like (a request, a notification, a response or an error)."""
    errors = exc.errors(include_input=False, include_url=False)
    given = message if isinstance(message, dict) else {}
    if "method" in given:
        kind_of = "JSONRPCRequest" if "id" in given else "JSONRPCNotification"
    else:
        kind_of = "JSONRPCResponse" if "result" in given else "JSONRPCError"
    first = next((e for e in errors if e["loc"][:1] == (kind_of,)), errors[0] if errors else None)
    if first is None:
        return "it is no JSON-RPC 2.0 message"
    # Locations start with the union member tried (JSONRPCRequest...): not the caller's.
    where = ".".join(str(part) for part in first["loc"][1:])
    return f"{where or 'the message'}: {first['msg']}"[:REASON_CHARS]


def invalid(reason: str, request_id: RequestId | None) -> JSONRPCError:
    """The Invalid Request (-32600) answer: what was wrong, and what is accepted."""
    return JSONRPCError(
        jsonrpc="2.0",
        id=request_id,
        error=ErrorData(code=INVALID_REQUEST, message=f"Invalid Request: {reason}; {ACCEPTED}"),
    )


def unsupported_version(requested: str, request_id: RequestId | None) -> JSONRPCError:
    """The -32022 answer, listing every revision spoken (what was asked, cut short)."""
    return JSONRPCError(
        jsonrpc="2.0",
        id=request_id,
        error=ErrorData(
            code=UNSUPPORTED_PROTOCOL_VERSION,
            message=(
                f"Unsupported protocol version {shown(requested)}: this server speaks "
                f"{LATEST_HANDSHAKE_VERSION} (the initialize handshake) and "
                f"{', '.join(MODERN_PROTOCOL_VERSIONS)} (per request)"
            ),
            data={"supported": list(REVISIONS), "requested": requested[:SHOWN_CHARS]},
        ),
    )


def version_refusal(
    request: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> JSONRPCError | None:
    """The -32022 answer to a per-request message in a version not spoken, or None. The
    SDK's own ladder decides, so every other fault in the envelope keeps the SDK's answer."""
    route = classify_inbound_request(request, headers=headers)
    if not isinstance(route, InboundLadderRejection) or route.code != UNSUPPORTED_PROTOCOL_VERSION:
        return None
    requested = route.data.get("requested") if isinstance(route.data, dict) else None
    return unsupported_version(str(requested), reply_id(request.get("id")))


def shown(text: str) -> str:
    return repr(text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}…")


def prompt_refusal(
    name: object, arguments: object, prompts: Mapping[str, Sequence[str]]
) -> str | None:
    """Why `prompts/get` cannot render (an unknown prompt, or an argument it does not
    take), saying what would be accepted; None when it can. `prompts` maps each prompt to
    the arguments it takes. A name or arguments of the wrong type are the SDK's to refuse."""
    if not isinstance(name, str):
        return None
    if name not in prompts:
        names = ", ".join(sorted(prompts))
        if len(names) > NAMES_CHARS:
            names = f"{names[:NAMES_CHARS]}… (prompts/list has them all)"
        return f"Unknown prompt {shown(name)}: the prompts are {names or '(none)'}"
    if not isinstance(arguments, dict):
        return None
    unknown = sorted(set(arguments) - set(prompts[name]))
    if not unknown:
        return None
    if not prompts[name]:
        return f"Prompt {name!r} takes no arguments, not {shown(unknown[0])}"
    takes = ", ".join(prompts[name])
    return f"Prompt {name!r} takes no argument {shown(unknown[0])}; it takes only {takes}"


def result_body(ident: RequestId, result: dict[str, Any], version: str) -> bytes:
    """A `tools/call` answer made at the edge, shaped for protocol `version` as the SDK
    shapes its own (a handshake-era one has no resultType), so a client cannot tell where
    it was made."""
    shaped = _plain_result(result, version)
    if shaped is None:
        shaped = serialize_server_result("tools/call", version, result)
    return pydantic_core.to_json({"jsonrpc": "2.0", "id": ident, "result": shaped})


def _plain_result(result: dict[str, Any], version: str) -> dict[str, Any] | None:
    """What the SDK's sieve makes of a tool answer in our own shape (text content, an
    object of structured content, isError), without its model's validation; None for
    any other shape, which the sieve judges."""
    if version not in HANDSHAKE_PROTOCOL_VERSIONS or not result.keys() <= _PLAIN_KEYS:
        return None
    content = result.get("content")
    if not isinstance(content, list) or not isinstance(result.get("isError", False), bool):
        return None
    if not isinstance(result.get("structuredContent", {}), dict):
        return None
    for block in content:
        if not (isinstance(block, dict) and block.keys() == _TEXT_KEYS):
            return None
        if block["type"] != "text" or not isinstance(block["text"], str):
            return None
    return {k: v for k, v in result.items() if k != "resultType"}


_PLAIN_KEYS = frozenset({"content", "structuredContent", "isError", "resultType"})
_TEXT_KEYS = {"type", "text"}
