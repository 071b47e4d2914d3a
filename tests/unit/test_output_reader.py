"""The autopilot's reader of a worker's output (worker_process._read) on a real socket, against
hostile streams: whatever arrives, it returns at the end, keeps only lines within the limit,
reads the CLI's result line after the garbage, and lets other tasks run on every pass."""

import io
import socket
import threading
import time

import anyio
import pytest
from anyio.abc import UNIXSocketStream

from wvo_mcp.autopilot import worker_output, worker_process
from wvo_mcp.autopilot.lines import Lines
from wvo_mcp.autopilot.run_logs import RunLog
from wvo_mcp.autopilot.slots import Slot
from wvo_mcp.autopilot.worker_process import LINE_BYTES, _read, _Seen
from wvo_mcp.providers import WorkerKind

pytestmark = pytest.mark.anyio
RESULT = b'{"type":"result","is_error":false,"usage":{"input_tokens":7,"output_tokens":3}}\n'
# (what the CLI prints, how many lines over the limit are dropped)
HOSTILE = {
    "no newline at all": (b"x" * (3 * LINE_BYTES), 1),
    "one huge line, then the result": (b"y" * (2 * LINE_BYTES) + b"\n" + RESULT, 1),
    "NUL bytes and broken UTF-8": (b"\x00\xff\xfe\xc3(\n\x00\n" + RESULT, 0),
    "a result split across reads": (RESULT, 0),  # written a byte at a time below
    "a last line without a newline": (RESULT.rstrip(b"\n"), 0),
}


def write(sock: socket.socket, data: bytes, one_byte: bool) -> None:
    with sock:
        if one_byte:
            for n in range(len(data)):
                sock.sendall(data[n : n + 1])
        else:
            sock.sendall(data)


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_the_reader_survives_hostile_output(name: str) -> None:
    data, dropped = HOSTILE[name]
    mine, theirs = socket.socketpair()
    writer = threading.Thread(target=write, args=(theirs, data, "split" in name))
    writer.start()
    stream = worker_output.ClaudeStream()
    lines, log = Lines(LINE_BYTES), RunLog(io.StringIO())
    slot = Slot("alpha", 1, WorkerKind(kind="claude"))
    with anyio.fail_after(60):
        async with await UNIXSocketStream.from_socket(mine) as stdout:
            await _read(stdout, lines, log, stream, slot, _Seen(time.monotonic()))
    writer.join()
    finish = stream.finish(0)
    if b"result" in data:
        assert (finish.outcome, finish.usage.input_tokens) == ("success", 7), finish
    else:
        assert finish.message.startswith("no result line")
    assert lines.dropped == dropped
    assert log.written < LINE_BYTES  # a dropped line is never logged


async def test_other_tasks_run_while_an_endless_line_streams_in() -> None:
    """The watch must get its turn: it ticks between the reader's passes over 64 MiB sent
    with no newline, where the old reader spun without yielding."""
    mine, theirs = socket.socketpair()
    chunk = b"z" * worker_process.CHUNK_BYTES
    writer = threading.Thread(target=write, args=(theirs, chunk * 1024, False))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    writer.start()
    slot = Slot("alpha", 1, WorkerKind(kind="claude"))
    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            async with await UNIXSocketStream.from_socket(mine) as stdout:
                lines = Lines(LINE_BYTES)
                log, stream = RunLog(io.StringIO()), worker_output.ClaudeStream()
                await _read(stdout, lines, log, stream, slot, _Seen(time.monotonic()))
            group.cancel_scope.cancel()
    writer.join()
    assert lines.dropped == 1 and lines.ended == 0
    assert ticks > 100  # at least once for each of its passes would be ~1,000
