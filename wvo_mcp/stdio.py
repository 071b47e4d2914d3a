"""MCP over stdio: the SDK's transport, plus an answer to every line it cannot parse.

The SDK hands the server a line its JSON-RPC parser refuses (broken JSON, a lone surrogate
escape, nesting past its limit, a wrong `jsonrpc`) as an exception, and the server drops it:
the client would wait for its own timeout. Here it gets a JSON-RPC error instead, with the
request's id when a lenient parse of the line finds one, else a null id (JSON-RPC 2.0).
"""

import json
import logging
import os
import re
import signal
import sys
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ValidationError

MESSAGE_CHARS = 300
ID_CHARS = 200
LENIENT_CHARS = 1_000_000
LENIENT_DEPTH = 64
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def line_id(line: str) -> int | str | None:
    """The request id in a line the SDK refused, read by Python's parser, which takes lone
    surrogates and NaN; None when the line is too large or too deep to read the same way
    whatever the call stack, or has no usable id."""
    if len(line) > LENIENT_CHARS or _depth(line) > LENIENT_DEPTH:
        return None
    try:
        found = json.loads(line)
    except ValueError:
        return None
    value = found.get("id") if isinstance(found, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and len(value) <= ID_CHARS and value.isprintable():
        return value
    return None


def _depth(line: str) -> int:
    deepest = depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub('""', line)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def request_id(exc: Exception) -> int | str | None:
    """The refused request's id, from the line the SDK's error carries."""
    if isinstance(exc, ValidationError):
        for error in exc.errors():
            if isinstance(error.get("input"), str):
                return line_id(error["input"])
    return None


def refusal(exc: Exception) -> JSONRPCError:
    """What was wrong with a line, and what would be accepted, without echoing the line."""
    parse = not isinstance(exc, ValidationError) or any(
        e["type"].startswith("json_") for e in exc.errors(include_input=False)
    )
    if isinstance(exc, ValidationError):
        detail = "; ".join(e["msg"] for e in exc.errors(include_input=False)[:3])
    else:
        detail = str(exc)
    return JSONRPCError(
        jsonrpc="2.0",
        id=request_id(exc),
        error=ErrorData(
            code=PARSE_ERROR if parse else INVALID_REQUEST,
            message=(
                f"{'Parse error' if parse else 'Invalid request'}: {detail[:MESSAGE_CHARS]}. "
                "Send one JSON-RPC 2.0 message per line (UTF-8 JSON, no NaN or lone "
                "surrogates)"
            ),
        ),
    )


async def serve(server: MCPServer[Any]) -> None:
    """Serve `server` on this process's stdin and stdout until stdin closes, or until
    SIGINT or SIGTERM: clients stop servers with signals and leave stdin open."""
    # The private attribute is what MCPServer.run_stdio_async itself serves.
    lowlevel = server._lowlevel_server
    signalled = False
    async with stdio_server() as (read, write):
        relay_send, relay_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)

        async def relay() -> None:
            async with relay_send:
                async for item in read:
                    if isinstance(item, Exception):
                        await write.send(SessionMessage(refusal(item)))
                    else:
                        await relay_send.send(item)

        async def stop_on_signal(scope: anyio.CancelScope) -> None:
            nonlocal signalled
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    signalled = True
                    scope.cancel()  # the server's cleanup is shielded, so it still runs
                    return

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(relay)
            tasks.start_soon(stop_on_signal, tasks.cancel_scope)
            await lowlevel.run(relay_recv, write, lowlevel.create_initialization_options())
            tasks.cancel_scope.cancel()
        if signalled:
            # Cleanup has run. The SDK reads stdin in a worker thread that only a line or
            # EOF would free, and the client keeps stdin open: leave without waiting on it.
            logging.shutdown()
            sys.stderr.flush()
            os._exit(0)
