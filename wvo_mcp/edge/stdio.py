"""MCP over stdio: newline-delimited JSON-RPC on this process's stdin and stdout.

When both are pipes or sockets (how MCP clients start servers), the event loop reads and
writes them directly: no thread hand-off per line, which is most of a fast call's cost
with the SDK's transport. Otherwise (a terminal, a file) worker threads read and write them.
Either way the descriptors are moved off 0 and 1 while serving, so a stray print or a
child process never reaches the wire.

Every line passes `Edge` before the SDK sees it (protocol.py says why): a line that does not
parse, or is no JSON-RPC 2.0 message (a batch, no `jsonrpc` or `method`, an `id` that is
no string or integer) gets a JSON-RPC error (the SDK would drop it, or take it for a
notification, and the client would wait for its own timeout), with the request's id when
one can be read and is valid, else a null id (JSON-RPC 2.0). So does a line longer than
MAX_LINE_BYTES, which is skipped unread.

A server stops as its client expects: told to (SIGINT, SIGTERM) or at the end of stdin, it
reads no more, answers every call it is serving with that call's own result or refusal
(within GRACE_S), then ends. The SDK would cancel them instead, and answer each with
JSON-RPC's `Connection closed`, though its write may have committed. Told by a signal, it
says so as soon as the last answer is written (`answered`), so that the process the client
watches can end before the server's own cleanup (cli/handle.py).
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
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, NoReturn

import anyio
import mcp_types
import pydantic_core
from anyio.abc import ObjectReceiveStream, ObjectSendStream, TaskGroup
from mcp.server import MCPServer
from mcp.server.connection import Connection
from mcp.shared.message import SessionMessage
from mcp.shared.transport_context import TransportContext
from mcp.types import (
    INVALID_REQUEST,
    PARSE_ERROR,
    PROTOCOL_VERSION_META_KEY,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
)
from pydantic import ValidationError

from wvo_mcp.edge import protocol
from wvo_mcp.edge.hot_calls import Call, HotCalls

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 16 * 1024 * 1024  # four times the largest task_create batch, escapes and all
GRACE_S = 10.0  # for the calls a stopping server is serving; past it they are cancelled
CANCELLED = "notifications/cancelled"  # a request the client gave up: answered by no one

DETAIL_CHARS = 120
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
    return protocol.reply_id(found.get("id")) if isinstance(found, dict) else None


def _depth(line: str) -> int:
    deepest = depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub('""', line)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def refusal(exc: Exception, line: str) -> JSONRPCError:
    """What was wrong with a line the SDK's parser refused, and what would be accepted,
    without echoing the line."""
    if isinstance(exc, ValidationError) and not any(
        e["type"].startswith("json_") for e in exc.errors(include_input=False)
    ):
        # Valid JSON, so the same parser reads it: say which rule it breaks.
        found = _decoded(line)
        reason = protocol.invalid_request(found) or protocol.validation_reason(exc, found)
        given = found.get("id") if isinstance(found, dict) else None
        return protocol.invalid(reason, protocol.reply_id(given))
    if isinstance(exc, ValidationError):
        detail = "; ".join(e["msg"] for e in exc.errors(include_input=False)[:3])
    else:
        detail = str(exc)
    return JSONRPCError(
        jsonrpc="2.0",
        id=line_id(line),
        error=ErrorData(
            code=PARSE_ERROR,
            message=(
                f"Parse error: {detail[:DETAIL_CHARS]}. Send one JSON-RPC 2.0 message per "
                "line (UTF-8 JSON, no NaN or lone surrogates)"
            ),
        ),
    )


def _decoded(line: str) -> object:
    try:
        return pydantic_core.from_json(line)
    except ValueError:
        return None


def oversized() -> JSONRPCError:
    return JSONRPCError(
        jsonrpc="2.0",
        id=None,
        error=ErrorData(
            code=INVALID_REQUEST,
            message=f"Invalid Request: a line longer than {MAX_LINE_BYTES} bytes was skipped. "
            "Send smaller messages (split a large task_create into several calls)",
        ),
    )


class Edge:
    """What each line becomes before the SDK sees it: the message to serve, or the error
    to answer it with.

    The SDK ties a connection to a protocol era with its first request, even one in a
    version it then refuses; a client told to fall back to the initialize handshake could
    not. So until a request is served, one in a version this server does not speak is
    refused here, listing every revision (protocol.REVISIONS). Afterwards the SDK answers
    it, with the versions the connection's era still takes."""

    def __init__(self) -> None:
        self.era_open = True

    def take(self, line: bytes) -> JSONRPCMessage | JSONRPCError:
        text = line.decode("utf-8", errors="replace")
        try:
            message = mcp_types.jsonrpc_message_adapter.validate_json(text, by_name=False)
        except Exception as exc:
            return refusal(exc, text)
        if isinstance(message, JSONRPCNotification):
            # The SDK reads a request whose id is invalid (1.5, null, true) as a
            # notification; only a message without "id" is one.
            found = _decoded(text)
            if isinstance(found, dict) and "id" in found:
                return protocol.invalid(protocol.invalid_request(found) or '"id" is invalid', None)
        if self.era_open and isinstance(message, JSONRPCRequest):
            refused = unsupported(message)
            if refused is not None:
                return refused
            self.era_open = False
        return message


def unsupported(request: JSONRPCRequest) -> JSONRPCError | None:
    """The -32022 answer to a per-request message in a version not spoken, or None."""
    meta = (request.params or {}).get("_meta")
    if request.method == "initialize" or not isinstance(meta, dict):
        return None
    if PROTOCOL_VERSION_META_KEY not in meta:
        return None  # no envelope: the handshake era's
    return protocol.version_refusal(request.model_dump(by_alias=True, exclude_none=True))


Streams = tuple[ObjectReceiveStream[SessionMessage | Exception], ObjectSendStream[SessionMessage]]


@dataclass(frozen=True)
class Taken:
    """A connection cli/front.py began: `replay`, lines the server reads first as its
    client's; `answered`, ids among them the client has its answer to (the server's second
    is dropped); `pending`, what was read and not answered, read next."""

    replay: Sequence[bytes] = ()
    answered: frozenset[int | str] = frozenset()
    pending: bytes = b""


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
async def pipe_streams(taken: Taken | None = None) -> AsyncIterator[Streams]:
    """The session's streams over stdin and stdout read and written by the event loop;
    `taken`: what cli/front.py read and answered before the server was ready."""
    loop = asyncio.get_running_loop()
    taken = taken or Taken()
    with _wire() as (wire_in, wire_out):
        reader = asyncio.StreamReader(limit=MAX_LINE_BYTES, loop=loop)
        if taken.pending:
            reader.feed_data(taken.pending)
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop),
            os.fdopen(wire_in, "rb", buffering=0, closefd=False),
        )
        write_transport, protocol_ = await loop.connect_write_pipe(
            lambda: asyncio.streams.FlowControlMixin(loop=loop),
            os.fdopen(wire_out, "wb", buffering=0, closefd=False),
        )
        writer = asyncio.StreamWriter(write_transport, protocol_, None, loop)

        async def write(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        try:
            # A stop closes the read side: the reader ends as at the end of stdin, with no
            # cancel scope around each read.
            lines = _pipe_lines(reader)
            async with session(lines, write, taken, interrupt=read_transport.close) as streams:
                yield streams
        finally:
            read_transport.close()
            write_transport.close()


async def _pipe_lines(reader: asyncio.StreamReader) -> AsyncGenerator[bytes | None, None]:
    """Each non-blank line; None for one longer than MAX_LINE_BYTES, skipped unread."""
    skipping = False
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as end:
            if end.partial.strip() and not skipping:
                yield end.partial
            return
        except asyncio.LimitOverrunError as over:
            # Drop what is buffered of the long line; its end is dropped too.
            await reader.readexactly(over.consumed)
            if not skipping:
                yield None
            skipping = True
            continue
        if skipping:
            skipping = False
        elif line.strip():
            yield line


@contextlib.asynccontextmanager
async def file_streams() -> AsyncIterator[Streams]:
    """The session's streams over a stdin and stdout that are no pipes (a terminal, a file),
    read and written in worker threads."""
    with _wire() as (wire_in, wire_out):
        reader = os.fdopen(wire_in, "rb", closefd=False)
        writer = os.fdopen(wire_out, "wb", closefd=False)

        async def write(data: bytes) -> None:
            await anyio.to_thread.run_sync(_write_all, writer, data)

        async with session(_file_lines(reader), write) as streams:
            yield streams


async def _file_lines(reader: IO[bytes]) -> AsyncGenerator[bytes | None, None]:
    """As _pipe_lines, from a blocking file."""
    skipping = False
    while True:
        # Abandoned on cancel: a terminal's read ends only with a line.
        line = await anyio.to_thread.run_sync(
            reader.readline, MAX_LINE_BYTES + 1, abandon_on_cancel=True
        )
        if not line:
            return
        whole = line.endswith(b"\n")
        if skipping:
            skipping = not whole
        elif not whole and len(line) > MAX_LINE_BYTES:
            skipping = True
            yield None
        elif line.strip():
            yield line


def _write_all(writer: IO[bytes], data: bytes) -> None:
    writer.write(data)
    writer.flush()


class _Incoming(ObjectReceiveStream[SessionMessage | Exception]):
    """What the server reads: each line taken by the Edge as the server asks for the next;
    a line the Edge refuses is answered at once and the next one read. Once stdin ends or
    stop() is called, its end comes only when every request read has been answered (or
    GRACE_S has passed), since at its end the SDK cancels what it still serves.

    stop() ends a read in progress with `interrupt` (which must end `lines`) when given;
    else each read is made in a cancel scope that stop() cancels, which costs a fast call
    4 µs (BENCHMARKS.md, "The per-call floor, third round")."""

    def __init__(
        self,
        lines: AsyncGenerator[bytes | None, None],
        answer: "_Outgoing",
        replay: Sequence[bytes] = (),
        interrupt: Callable[[], None] | None = None,
    ) -> None:
        self.lines = lines
        self.answer = answer
        self.edge = Edge()
        self.stopping = False
        self._interrupt = interrupt
        self._reading: anyio.CancelScope | None = None
        self._replay = list(replay)
        self._answered: Callable[[], None] = lambda: None
        self.lane: Lane | None = None  # the loop's calls, once serve() opens it

    def _served(self, message: JSONRPCMessage) -> SessionMessage | None:
        """`message` for the SDK to serve, or None when the loop's lane took it."""
        self.answer.track(message)
        if self.lane is not None and self.lane.took(message):
            return None
        return SessionMessage(message)

    async def receive(self) -> SessionMessage | Exception:
        while self._replay:
            taken = self.edge.take(self._replay.pop(0))
            if not isinstance(taken, JSONRPCError):
                served = self._served(taken)
                if served is not None:
                    return served
        if not self.stopping:
            if self._interrupt is not None:
                read = await self._read()
            else:
                with anyio.CancelScope() as self._reading:
                    read = await self._read()
            if read is not None:
                return read
            self.stopping = True
        with anyio.move_on_after(GRACE_S):
            await self.answer.all_answered()
        self._answered()
        raise anyio.EndOfStream

    async def _read(self) -> SessionMessage | None:
        """The next message to serve; None at the end of the lines or once stopping (a line
        read after stop() is not served)."""
        async for line in self.lines:
            if self.stopping:
                return None
            taken = oversized() if line is None else self.edge.take(line)
            if isinstance(taken, JSONRPCError):
                await self.answer.send(SessionMessage(taken))
                continue
            served = self._served(taken)
            if served is not None:
                return served
        return None

    def stop(self, answered: Callable[[], None]) -> None:
        """Read no more: end once what is being served is answered, calling `answered`."""
        self.stopping = True
        self._answered = answered
        if self._interrupt is not None:
            self._interrupt()
        elif self._reading is not None:
            self._reading.cancel()

    async def aclose(self) -> None:
        await self.lines.aclose()


class _Outgoing(ObjectSendStream[SessionMessage]):
    """What the server writes: one line per message, written by the task that sends it.
    It knows which requests are still unanswered (all_answered() waits until none is)."""

    def __init__(
        self, write: Callable[[bytes], Awaitable[None]], dropped: frozenset[int | str] = frozenset()
    ) -> None:
        self.write = write
        self.closed = False
        self.unanswered: set[int | str] = set()
        # Made only when a stop waits: an event per request cost every call 1.5 µs.
        self._emptied: anyio.Event | None = None
        self._dropped = set(dropped)  # answered already: the server's answer goes nowhere
        self.lane: Lane | None = None

    def track(self, message: JSONRPCMessage) -> None:
        """A message read: a request waits for its answer; a cancelled one waits for none."""
        if isinstance(message, JSONRPCRequest):
            self.unanswered.add(message.id)
        elif isinstance(message, JSONRPCNotification) and message.method == CANCELLED:
            request = (message.params or {}).get("requestId")
            if isinstance(request, int | str):
                self._done(request)

    def _done(self, request: int | str) -> None:
        self.unanswered.discard(request)
        if not self.unanswered and self._emptied is not None:
            self._emptied.set()

    async def all_answered(self) -> None:
        """Return once no request read is unanswered."""
        if self.unanswered:
            if self._emptied is None or self._emptied.is_set():
                self._emptied = anyio.Event()
            await self._emptied.wait()

    async def send(self, item: SessionMessage) -> None:
        if self.closed:
            raise anyio.ClosedResourceError
        message = item.message
        if self.lane is not None and isinstance(message, JSONRPCResponse):
            self.lane.answered(message)
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id in self._dropped:
            self._dropped.discard(message.id)
            self._done(message.id)
            return
        text = message.model_dump_json(by_alias=True, exclude_unset=True)
        try:
            await self.write(text.encode() + b"\n")
        except OSError as exc:  # the client is gone: the SDK stops writing to it
            self.unanswered.clear()
            if self._emptied is not None:
                self._emptied.set()
            raise anyio.BrokenResourceError from exc
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
            self._done(message.id)

    async def send_answer(self, request: int | str, line: bytes) -> None:
        """The lane's answer to `request`, unless the client cancelled it meanwhile."""
        if self.closed or request not in self.unanswered:
            return
        try:
            await self.write(line)
        except OSError:  # the client is gone: nothing more reaches it
            log.info("the client left before a call's answer was written")
        self._done(request)

    async def aclose(self) -> None:
        self.closed = True


class Lane:
    """The loop's tool calls on one stdio connection, answered by hot_calls.py beside the
    SDK (which would serve each through its dispatcher, runner and models). It opens once
    the client has said `notifications/initialized` after the SDK answered its
    `initialize`: the revision is the one the SDK negotiated, and the client's info and
    capabilities are what its `initialize` said. Until then, and for every other message,
    the SDK serves as before."""

    def __init__(self, hot: HotCalls, tasks: TaskGroup, outgoing: "_Outgoing") -> None:
        self.hot = hot
        self.tasks = tasks
        self.outgoing = outgoing
        self.connection: Connection | None = None
        self._hello: JSONRPCRequest | None = None  # the client's initialize
        self._version: str | None = None  # ... as the SDK answered it
        self._initialized = False  # the client said notifications/initialized

    def took(self, message: JSONRPCMessage) -> bool:
        """Whether the lane serves `message` (it is then being served)."""
        if isinstance(message, JSONRPCNotification):
            self._initialized |= message.method == "notifications/initialized"
            return False
        if not isinstance(message, JSONRPCRequest):
            return False
        if message.method == "initialize":
            self._hello, self._version, self.connection = message, None, None
            self._initialized = False
            return False
        if message.method != "tools/call" or (self.connection is None and not self._open()):
            return False
        call = self.hot.take({"id": message.id, "method": message.method, "params": message.params})
        if call is None or self.connection is None or not _handshake_meta(message):
            return False
        self.tasks.start_soon(self._serve, call, self.connection)
        return True

    def answered(self, response: JSONRPCResponse) -> None:
        """The SDK's answer to the client's `initialize`: the revision it negotiated."""
        if self._hello is not None and response.id == self._hello.id:
            version = response.result.get("protocolVersion")
            self._version = version if isinstance(version, str) else None

    def _open(self) -> bool:
        """Whether the lane is open: the client initialized, and the SDK's answer to its
        `initialize` was sent (a warm start's replayed handshake can be read before)."""
        if self._hello is None or self._version is None or not self._initialized:
            return False
        params = self._hello.params or {}
        info, capabilities = params.get("clientInfo"), params.get("capabilities")
        self.connection = Connection.from_envelope(self._version, info, capabilities)
        return True

    async def _serve(self, call: Call, connection: Connection) -> None:
        state = self.hot.state()
        answer = await self.hot.answer(call, connection, state, transport=STDIO)
        await self.outgoing.send_answer(call.id, answer + b"\n")


STDIO = TransportContext(kind="stdio", can_send_request=False)


def _handshake_meta(message: JSONRPCRequest) -> bool:
    """No per-request envelope (2026-07-28) in its `_meta`: the connection's era serves it."""
    meta = (message.params or {}).get("_meta")
    return not isinstance(meta, dict) or PROTOCOL_VERSION_META_KEY not in meta


@contextlib.asynccontextmanager
async def session(
    lines: AsyncGenerator[bytes | None, None],
    write: Callable[[bytes], Awaitable[None]],
    taken: Taken | None = None,
    interrupt: Callable[[], None] | None = None,
) -> AsyncIterator[Streams]:
    """The SDK's streams over `lines` (None: a line too long) and `write`: what passes the
    Edge goes to the server, the rest is answered here. They read and write in the tasks
    that ask, not through memory streams and tasks of their own, whose hand-offs were a
    fifth of a fast call's CPU. `interrupt`, if given, ends `lines` when the server stops."""
    taken = taken or Taken()
    outgoing = _Outgoing(write, taken.answered)
    incoming = _Incoming(lines, outgoing, taken.replay, interrupt)
    try:
        yield incoming, outgoing
    finally:
        await incoming.aclose()
        await outgoing.aclose()


def _exit(code: int) -> NoReturn:
    sys.stderr.flush()
    os._exit(code)


def _nobody(code: int) -> None:
    return None


async def serve(
    server: MCPServer[Any],
    taken: Taken | None = None,
    leave: Callable[[int], NoReturn] = _exit,
    answered: Callable[[int], None] = _nobody,
) -> None:
    """Serve `server` on this process's stdin and stdout until stdin closes, or until
    SIGINT or SIGTERM (clients stop servers with signals and leave stdin open); either way
    the calls it is serving are answered first (_Incoming). A second signal, or GRACE_S
    more, stops it at once. Stopped by a signal, it calls `answered(0)` once the client has
    every answer it will get (cli/handle.py: the process the client watches ends then), and
    ends the process with `leave(0)` once the server's cleanup has run."""
    # The private attribute is what MCPServer.run_stdio_async itself serves.
    lowlevel = server._lowlevel_server
    signalled = False
    streams = pipe_streams(taken) if _is_pipe(0) and _is_pipe(1) else file_streams()

    def ended() -> None:
        if signalled:
            # A worker thread reading a terminal (file_streams) is freed only by a line or
            # EOF, and a client keeps stdin open: nothing more is waited for.
            logging.shutdown()
            leave(0)

    async with streams as (read, write):

        async def stop_on_signal(scope: anyio.CancelScope) -> None:
            nonlocal signalled
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    if not signalled and isinstance(read, _Incoming):
                        signalled = True
                        read.stop(lambda: answered(0))
                        scope.deadline = anyio.current_time() + GRACE_S + 1
                        continue
                    signalled = True
                    scope.cancel()  # the server's cleanup is shielded, so it still runs
                    answered(0)  # nothing more is answered
                    return

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(stop_on_signal, tasks.cancel_scope)
            hot = getattr(server, "hot", None)
            if isinstance(read, _Incoming) and isinstance(write, _Outgoing) and hot is not None:
                read.lane = write.lane = Lane(hot, tasks, write)
            await lowlevel.run(read, write, lowlevel.create_initialization_options())
            ended()  # cleanup has run; this server's signal handlers still stand
            tasks.cancel_scope.cancel()
    ended()  # cancelled by a second signal: cleanup has run too
