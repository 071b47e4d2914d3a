"""Runs one worker CLI in isolation, watches it, and ends it with everything it started.

One CLI run, as buildkite's JobExecutor runs a job: made ready in isolation
(isolation.py), started in a process group of its own (its stdout and stderr Unix sockets:
`_socket_pair`), its output read into its log and its
event stream, watched for silence, a resource limit or the end of a drain's grace, and
killed as one group, whatever it started. A person's pause ends it here
(`Executor._watch`); an ACP worker's driver ends its own turn first (`autopilot/acp_driver.py`).

Carries out `rules/pauses.py`."""

import contextlib
import math
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import anyio
from anyio.abc import ByteReceiveStream, Process, UNIXSocketStream

from wvo_mcp import timeutil
from wvo_mcp.autopilot import isolation, orphans, worker_output
from wvo_mcp.autopilot.gateway import Gateway
from wvo_mcp.autopilot.lines import Lines
from wvo_mcp.autopilot.run_logs import RunLog
from wvo_mcp.autopilot.slots import DRAINED, PAUSED, Slot
from wvo_mcp.config import Settings
from wvo_mcp.git import Git
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.text import plain
from wvo_mcp.sandbox.meter import Tally
from wvo_mcp.sandbox.toolchain import Toolchain
from wvo_mcp.services.bearer_tokens import Scope

LINE_BYTES = 1024 * 1024  # a longer output line is dropped, not buffered
CHUNK_BYTES = 65_536  # read at a time from the CLI's stdout and stderr
KILL_GRACE_S = 5.0
METER_CLOSE_S = 10.0  # for the meter's open responses to settle once the run is gone


def stop_reason(
    limit: str, silent_s: float, hang_s: float, drained: bool, paused: bool = False
) -> str:
    """Why a running CLI is stopped now, or "" to let it run: a resource limit it reached,
    the end of a drain's grace or of a person's pause's, or silence (no output, no lease
    renewed) past hang_s."""
    if limit:
        return limit
    if drained:
        return "drained"
    if paused:
        return "paused"
    return "silent" if silent_s > hang_s else ""


def stopped(drained: bool, limit: str, hang_s: float, paused: bool = False) -> worker_output.Finish:
    """How a run the autopilot stopped ended (what its CLI would have said is lost)."""
    if drained:
        return worker_output.Finish("failure", worker_output.Usage(), DRAINED)
    if paused:
        return worker_output.Finish("failure", worker_output.Usage(), PAUSED)
    why = "stopped" if limit else f"hung: silent for {hang_s:.0f} s"
    return worker_output.Finish("failure", worker_output.Usage(), why)


@dataclass
class _Seen:
    """What the watch knows of a running CLI, shared with the reader."""

    last: float  # when it last showed it was alive (monotonic)
    hung: bool = False  # the watch stopped it
    limit: str = ""  # the resource limit it reached while it ran (run_limits.py)
    paused: bool = False  # stopped at the end of a person's pause's grace


class Executor:
    def __init__(
        self,
        orchestrator: Orchestrator,
        settings: Settings,
        git: Git,
        gateway: Gateway,
        toolchain: Toolchain,
        *,
        sandboxed: bool,
        poll_seconds: float,
        deadline: Callable[[], float],
        say: Callable[[str], None],
        run_id: str = "",
        pause_grace: float = 30.0,
    ) -> None:
        self.orchestrator = orchestrator
        self.run_id = run_id  # the autopilot's: marked on every process of its runs
        self.settings = settings
        self.git = git
        self.gateway = gateway
        self.toolchain = toolchain
        self.sandboxed = sandboxed
        self.poll_seconds = poll_seconds
        self._deadline = deadline  # when a drain's grace ends (monotonic; inf: no drain)
        self.pause_grace = pause_grace  # how long a paused task's worker may take to stop
        self.say = say

    async def run(
        self,
        slot: Slot,
        task_id: str,
        model: str,
        text: str,
        workdir: Path,
        log: Path,
        scope: Scope,
        *,
        writable: bool = True,
        borrowed: tuple[Path, ...] = (),
    ) -> worker_output.Finish:
        """One CLI run, isolated (isolation.py), its output in `log`, supervised."""
        run = isolation.Run(
            kind=slot.kind,
            agent_id=slot.agent_id,
            task_id=task_id,
            model=model,
            prompt=text,
            workdir=workdir,
            scope=scope,
            writable=writable,
            borrowed=borrowed,
            hidden=(self.settings.state_root, self.git.repo.top),
            toolchain=self.toolchain,
            mark=f"{self.run_id}/{uuid.uuid4().hex[:12]}" if self.run_id else "",
        )
        with log.open("a") as run_log:
            async with isolation.prepared(run, self.gateway, sandboxed=self.sandboxed) as ready:
                try:
                    return await self._supervise(slot, task_id, ready, run_log)
                finally:
                    if not self.sandboxed and run.mark:  # a sandbox's processes die with it
                        with anyio.CancelScope(shield=True):
                            await anyio.to_thread.run_sync(orphans.end_marked, run.mark)

    async def _supervise(
        self, slot: Slot, task_id: str, ready: isolation.Ready, run_log: TextIO
    ) -> worker_output.Finish:
        stream = worker_output.stream_for(slot.kind.kind)
        slot.tail.clear()
        # Its stdout and stderr are sockets, not pipes: a process it starts can reopen a pipe
        # through /proc/<pid>/fd and write lines the autopilot would read as the CLI's own;
        # a socket cannot be opened that way (docs/security.md, "What a run is charged").
        with contextlib.ExitStack() as ends:
            out, out_child = _socket_pair(ends)
            err, err_child = _socket_pair(ends)
            process = await anyio.open_process(
                ready.argv,
                cwd=ready.cwd,
                env=ready.env,
                stdin=subprocess.PIPE,
                stdout=out_child.fileno(),
                stderr=err_child.fileno(),
                start_new_session=True,  # its own process group, killed as one
                pass_fds=ready.pass_fds,
            )
            ends.pop_all()  # the CLI has its ends; the autopilot's are its streams'
        out_child.close()
        err_child.close()
        stdout = await UNIXSocketStream.from_socket(out)
        stderr = await UNIXSocketStream.from_socket(err)
        slot.pgid, slot.started = process.pid, orphans.start_ticks(process.pid)
        seen = _Seen(time.monotonic())
        log = RunLog(run_log)
        lines = Lines(LINE_BYTES)
        try:
            async with anyio.create_task_group() as group:
                watch = self._watch
                group.start_soon(watch, slot, task_id, ready, process, seen, group.cancel_scope)
                group.start_soon(_feed, process, ready.stdin)
                group.start_soon(_copy, stderr, log)
                await _read(stdout, lines, log, stream, slot, seen)
                code = await process.wait()
                group.cancel_scope.cancel()
        finally:
            # Whatever it started (its tools, its shells) goes with it.
            with anyio.CancelScope(shield=True):
                await _kill(process)
                await stdout.aclose()
                await stderr.aclose()
                if ready.meter is not None:  # what was still streaming, charged as cut
                    with anyio.move_on_after(METER_CLOSE_S):
                        await ready.meter.close()
            ended = timeutil.to_text(timeutil.now())
            run_log.write(f"# wvo-mcp autopilot: exited with {process.returncode} at {ended}\n")
            if ready.meter is not None:
                _refusals(ready.meter.tally, run_log)
        if lines.dropped:
            self.say(
                f"{slot.agent_id} {task_id}: {lines.dropped} output line(s) over {LINE_BYTES} "
                "bytes dropped"
            )
        if seen.hung:
            drained = time.monotonic() > self._deadline()
            hang_s = slot.kind.hang_seconds
            finish = isolation.metered(ready, stopped(drained, seen.limit, hang_s, seen.paused))
            return finish if drained or seen.paused else isolation.limited(ready, finish)
        return isolation.limited(ready, isolation.metered(ready, stream.finish(code)))

    async def _watch(
        self,
        slot: Slot,
        task_id: str,
        ready: isolation.Ready,
        process: Process,
        seen: _Seen,
        scope: anyio.CancelScope,
    ) -> None:
        lease = None
        paused_at = math.inf  # when the watch first saw its task paused (monotonic)
        while True:
            await anyio.sleep(self.poll_seconds)
            if task_id:  # a planner holds no task: only its output counts
                detail = await self.orchestrator.get_task(task_id)
                if detail.lease_expires_at != lease:  # a heartbeat or checkpoint renewed it
                    lease = detail.lease_expires_at
                    seen.last = max(seen.last, time.monotonic())
                paused_at = min(paused_at, time.monotonic()) if detail.paused else math.inf
            now = time.monotonic()
            seen.limit = ready.fence.breached() if ready.fence is not None else ""
            drained = now > self._deadline()
            seen.paused = now - paused_at > self.pause_grace
            hang_s = slot.kind.hang_seconds
            why = stop_reason(seen.limit, now - seen.last, hang_s, drained, seen.paused)
            if why:
                seen.hung = True
                self.say(f"{slot.agent_id} {task_id}: {why}; stopped")
                await _kill(process)
                scope.cancel()
                return


async def _feed(process: Process, prompt: bytes) -> None:
    assert process.stdin is not None
    try:
        await process.stdin.send(prompt)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass  # it exited before reading its prompt: its exit says why
    finally:
        await process.stdin.aclose()


def _socket_pair(ends: contextlib.ExitStack) -> tuple[socket.socket, socket.socket]:
    """(the autopilot's end, the CLI's end) of a stream socket pair, both closed with `ends`
    unless it lets them go. Only the CLI writes."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ends.callback(mine.close)
    ends.callback(theirs.close)
    mine.shutdown(socket.SHUT_WR)
    theirs.shutdown(socket.SHUT_RD)
    return mine, theirs


async def _read(
    stdout: ByteReceiveStream,
    lines: Lines,
    log: RunLog,
    stream: worker_output.Stream,
    slot: Slot,
    seen: _Seen,
) -> None:
    """The CLI's stdout, line by line, into its log and its event stream, until it ends.
    Whatever it prints (one endless line, NUL bytes, broken UTF-8), each pass awaits a
    receive, so the watch and a drain go on."""
    while True:
        try:
            chunk = await stdout.receive(CHUNK_BYTES)
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            break
        ended, dropped = lines.ended, lines.dropped
        for line in lines.feed(chunk):
            _line(line, log, stream, slot)
        if lines.ended != ended:
            seen.last = time.monotonic()
        if lines.dropped and not dropped:  # said once a run
            log.write(f"# wvo-mcp autopilot: an output line over {LINE_BYTES} bytes dropped\n")
    last = lines.end()
    if last is not None:
        _line(last, log, stream, slot)


def _line(line: bytes, log: RunLog, stream: worker_output.Stream, slot: Slot) -> None:
    text = line.decode("utf-8", errors="replace")
    log.write(text + "\n")
    stream.feed(text)
    slot.tail.append(worker_output.glimpse(text))


def _refusals(tally: Tally, run_log: TextIO) -> None:
    """What the run's meter did not pass on to its model API, for whoever reads its log."""
    for why in tally.reasons:
        run_log.write(f"# wvo-mcp autopilot: the meter refused: {plain(why)}\n")
    if tally.refused > len(tally.reasons):
        run_log.write(f"# wvo-mcp autopilot: the meter refused {tally.refused} in all\n")


async def _copy(stderr: ByteReceiveStream, log: RunLog) -> None:
    """The CLI's stderr into its log, as it comes."""
    while True:
        try:
            chunk = await stderr.receive(CHUNK_BYTES)
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            return
        log.write(chunk.decode("utf-8", errors="replace"))


async def _kill(process: Process) -> None:
    """SIGTERM to the worker's whole process group, then SIGKILL to what is left of it."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        with anyio.move_on_after(KILL_GRACE_S):
            await process.wait()
            # No event tells when the rest of the group (grandchildren) is gone: poll.
            while _group_alive(process.pid):  # noqa: ASYNC110
                await anyio.sleep(0.05)
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
