"""MCP over stdio: newline-delimited JSON-RPC on this process's stdin and stdout.

When both are pipes or sockets (how MCP clients start servers), the event loop reads and
writes them directly: no thread hand-off per line, which is most of a fast call's cost
with the SDK's transport. Otherwise (a terminal, a file) the SDK's transport serves.
Either way the descriptors are moved off 0 and 1 while serving, so a stray print or a
child process never reaches the wire.

Every line that does not parse gets a JSON-RPC error (the SDK would drop it and the client
would wait for its own timeout), with the request's id when a lenient parse of the line
finds one, else a null id (JSON-RPC 2.0). So does a line longer than MAX_LINE_BYTES, which
is skipped unread.
"""

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import signal
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import mcp_types
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from mcp.server import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ValidationError

MAX_LINE_BYTES = 16 * 1024 * 1024  # four times the largest task_create batch, escapes and all

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


def oversized() -> JSONRPCError:
    return JSONRPCError(
        jsonrpc="2.0",
        id=None,
        error=ErrorData(
            code=INVALID_REQUEST,
            message=f"Invalid request: a line longer than {MAX_LINE_BYTES} bytes was skipped. "
            "Send smaller messages (split a large task_create into several calls)",
        ),
    )


Streams = tuple[ObjectReceiveStream[SessionMessage | Exception], ObjectSendStream[SessionMessage]]


def _is_pipe(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@contextlib.contextmanager
def _wire() -> Iterator[tuple[int, int]]:
    """This process's stdin and stdout as private descriptors; 0 reads the null device and 1
    writes to stderr meanwhile. Restored on exit."""
    wire_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    wire_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
        yield wire_in, wire_out
    finally:
        os.close(null)
        os.dup2(wire_in, 0)
        os.dup2(wire_out, 1)
        os.close(wire_in)
        os.close(wire_out)


@contextlib.asynccontextmanager
async def pipe_streams() -> AsyncIterator[Streams]:
    """The session's streams over stdin and stdout read and written by the event loop."""
    loop = asyncio.get_running_loop()
    with _wire() as (wire_in, wire_out):
        reader = asyncio.StreamReader(limit=MAX_LINE_BYTES, loop=loop)
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop),
            os.fdopen(wire_in, "rb", buffering=0, closefd=False),
        )
        write_transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.streams.FlowControlMixin(loop=loop),
            os.fdopen(wire_out, "wb", buffering=0, closefd=False),
        )
        writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
        incoming_send, incoming = anyio.create_memory_object_stream[SessionMessage | Exception]()
        outgoing, outgoing_recv = anyio.create_memory_object_stream[SessionMessage]()

        async def read_lines() -> None:
            async with incoming_send:
                skipping = False
                while True:
                    try:
                        line = await reader.readuntil(b"\n")
                    except asyncio.IncompleteReadError as end:
                        if end.partial.strip() and not skipping:
                            await _parsed(end.partial, incoming_send, outgoing)
                        return
                    except asyncio.LimitOverrunError as over:
                        # Drop what is buffered of the long line; its end is dropped too.
                        await reader.readexactly(over.consumed)
                        if not skipping:
                            await outgoing.send(SessionMessage(oversized()))
                        skipping = True
                        continue
                    if skipping:
                        skipping = False
                    elif line.strip():
                        await _parsed(line, incoming_send, outgoing)

        async def write_messages() -> None:
            async with outgoing_recv:
                async for item in outgoing_recv:
                    text = item.message.model_dump_json(by_alias=True, exclude_unset=True)
                    writer.write(text.encode() + b"\n")
                    await writer.drain()

        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(write_messages)
                async with anyio.create_task_group() as reading:
                    reading.start_soon(read_lines)
                    try:
                        yield incoming, outgoing
                    finally:
                        reading.cancel_scope.cancel()
                        await outgoing.aclose()  # the writer sends what is left, then ends
        finally:
            read_transport.close()
            write_transport.close()


async def _parsed(
    line: bytes,
    incoming: ObjectSendStream[SessionMessage | Exception],
    outgoing: ObjectSendStream[SessionMessage],
) -> None:
    try:
        text = line.decode("utf-8", errors="replace")
        message = mcp_types.jsonrpc_message_adapter.validate_json(text, by_name=False)
    except Exception as exc:
        await outgoing.send(SessionMessage(refusal(exc)))
        return
    await incoming.send(SessionMessage(message))


@contextlib.asynccontextmanager
async def sdk_streams() -> AsyncIterator[Streams]:
    """The SDK's stdio transport, with the lines it cannot parse answered."""
    async with stdio_server() as (read, write):
        relay_send, relay_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)

        async def relay() -> None:
            async with relay_send:
                async for item in read:
                    if isinstance(item, Exception):
                        await write.send(SessionMessage(refusal(item)))
                    else:
                        await relay_send.send(item)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(relay)
            yield relay_recv, write
            tasks.cancel_scope.cancel()


async def serve(server: MCPServer[Any]) -> None:
    """Serve `server` on this process's stdin and stdout until stdin closes, or until
    SIGINT or SIGTERM: clients stop servers with signals and leave stdin open."""
    # The private attribute is what MCPServer.run_stdio_async itself serves.
    lowlevel = server._lowlevel_server
    signalled = False
    streams = pipe_streams() if _is_pipe(0) and _is_pipe(1) else sdk_streams()
    async with streams as (read, write):

        async def stop_on_signal(scope: anyio.CancelScope) -> None:
            nonlocal signalled
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    signalled = True
                    scope.cancel()  # the server's cleanup is shielded, so it still runs
                    return

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(stop_on_signal, tasks.cancel_scope)
            await lowlevel.run(read, write, lowlevel.create_initialization_options())
            tasks.cancel_scope.cancel()
    if signalled:
        # Cleanup has run. The SDK's transport reads stdin in a worker thread that only a
        # line or EOF would free, and the client keeps stdin open: leave without waiting.
        logging.shutdown()
        sys.stderr.flush()
        os._exit(0)
