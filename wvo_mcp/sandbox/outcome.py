"""From what happened to a process to the result an agent reads (pure)."""

import signal
from dataclasses import dataclass
from typing import Literal

from wvo_mcp.models import SandboxResult
from wvo_mcp.sandbox.output import Tail

Backend = Literal["docker", "bwrap", "none"]


@dataclass(frozen=True)
class BackendCheck:
    """Whether a backend can run here, and why not when it cannot."""

    name: Backend
    usable: bool
    detail: str


@dataclass(frozen=True)
class Outcome:
    """A finished run as the backend saw it."""

    returncode: int | None  # negative: killed by that signal (subprocess's convention)
    timed_out: bool
    stdout: Tail
    stderr: Tail
    duration_s: float
    peak_memory_mb: float | None = None
    oom_killed: bool = False
    pids_hit: bool = False
    # bwrap and Docker report a command killed by signal N as exit status 128 + N.
    signal_as_status: bool = False


def killed_by(outcome: Outcome) -> int | None:
    """The signal that ended the command, when one did."""
    code = outcome.returncode
    if code is None:
        return None
    if code < 0:
        return -code
    if outcome.signal_as_status and 128 < code < 128 + 65:
        return code - 128
    return None


def result(backend: Backend, outcome: Outcome, *, memory_mb: int, pids_limit: int) -> SandboxResult:
    """The shared result shape; `exit_code` is None whenever the sandbox killed the command."""
    sig = killed_by(outcome)
    reason: str | None = None
    if outcome.timed_out:
        reason = "timeout"
    elif outcome.oom_killed and sig == signal.SIGKILL:
        reason = f"memory limit ({memory_mb} MB)"
    elif outcome.oom_killed:
        # A child was OOM-killed and the command carried on: it ran short of memory.
        reason = f"memory limit ({memory_mb} MB) killed a process of the command"
    elif outcome.pids_hit:
        reason = f"pids limit ({pids_limit}) refused new processes"
    elif sig is not None and outcome.returncode is not None and outcome.returncode < 0:
        reason = f"signal {signal.Signals(sig).name}" if sig in _SIGNALS else f"signal {sig}"
    sandbox_killed = outcome.timed_out or (outcome.oom_killed and sig == signal.SIGKILL)
    exit_code = None if sandbox_killed or outcome.returncode is None else outcome.returncode
    if exit_code is not None and exit_code < 0:
        exit_code = None  # killed by a signal (only the unisolated backend reports it so)
    return SandboxResult(
        backend=backend,
        exit_code=exit_code,
        timed_out=outcome.timed_out,
        killed_reason=reason,
        stdout_tail=outcome.stdout.text(),
        stderr_tail=outcome.stderr.text(),
        truncated=outcome.stdout.truncated or outcome.stderr.truncated,
        duration_s=round(outcome.duration_s, 3),
        peak_memory_mb=outcome.peak_memory_mb,
    )


_SIGNALS = {int(s) for s in signal.Signals}


def cli_exit_code(res: SandboxResult) -> int:
    """What `wvo-mcp sandbox run` exits with: the command's code, 124 on a timeout (as
    timeout(1)), 137 when otherwise killed."""
    if res.timed_out:
        return 124
    if res.exit_code is None:
        return 137
    return res.exit_code
