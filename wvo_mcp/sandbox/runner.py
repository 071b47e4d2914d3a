"""Starts a process, caps its output, stops it at the timeout, leaves nothing running.

Start a process, drain its output into capped tails, stop it at the timeout, and leave
nothing of it running."""

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from wvo_mcp.sandbox.cgroups import RunGroup
from wvo_mcp.sandbox.outcome import Outcome
from wvo_mcp.sandbox.output import Tail

CHUNK = 65_536
DRAIN_DEADLINE_S = 10.0
STOP_POLL_S = 0.1  # how often a stoppable run looks whether it was asked to stop


def _drain(stream: IO[bytes], tail: Tail) -> None:
    with stream:
        while chunk := stream.read1(CHUNK):  # type: ignore[attr-defined]
            tail.write(chunk)


def _exited_within(pid: int, timeout_s: float, stop: threading.Event | None = None) -> bool:
    """Wait for the process to exit without reaping it: while it is an unreaped zombie its
    pid (and process group id) cannot be reused, so the group kill below hits only ours.
    `stop`, set by another thread, ends the wait as a timeout does."""
    fd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                return False
            slice_s = left if stop is None else min(left, STOP_POLL_S)
            if poller.poll(max(1, int(slice_s * 1000))):
                return True
    finally:
        os.close(fd)


def execute(
    argv: list[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None,
    timeout_s: float,
    output_bytes: int,
    group: RunGroup | None,
    signal_as_status: bool,
    pass_fds: Sequence[int] = (),
    stop: threading.Event | None = None,
) -> Outcome:
    """Run argv (inside `group` when given) and kill its whole tree when it ends or times out."""
    full = group.launcher(argv) if group is not None else argv
    stdout, stderr = Tail(output_bytes), Tail(output_bytes)
    started = time.monotonic()
    proc = subprocess.Popen(
        full,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        close_fds=True,
        pass_fds=tuple(pass_fds),  # the toolchain's folders, which bwrap mounts
        # Its own session and process group: a kill of the group misses nothing of the
        # launcher's, and the terminal's signals do not reach it.
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        threading.Thread(target=_drain, args=(proc.stdout, stdout), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        timed_out = not _exited_within(proc.pid, timeout_s, stop)
        duration = time.monotonic() - started
    finally:
        # Also after a normal exit: background children the command left must not survive.
        if group is not None:
            group.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        returncode = proc.wait()
    for reader in readers:
        reader.join(DRAIN_DEADLINE_S)
    return Outcome(
        returncode=None if timed_out else returncode,
        timed_out=timed_out,
        stdout=stdout,
        stderr=stderr,
        duration_s=duration,
        peak_memory_mb=group.peak_memory_mb() if group is not None else None,
        oom_killed=group.oom_killed() if group is not None else False,
        pids_hit=group.pids_hit() if group is not None else False,
        signal_as_status=signal_as_status,
    )
