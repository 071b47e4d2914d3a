"""Ends the workers of an autopilot that died, but only processes provably theirs.

What an autopilot killed without warning leaves behind, found by the next one (or by
`autopilot gc`): whether it is really gone, and its workers' processes, ended only when they
provably are its runs': the process group and session a worker led while its leader is
still the process it started (a pid is reused; its start time is not), and any process that
carries the run's mark in its environment (MARK: a worker's children, its setsid child or
daemon keep it). A leader that is gone proves nothing: its pid may since lead a stranger's
group or session (a double-forking daemon's, whose leader exits). A sandboxed worker's
processes die with its sandbox; its cgroup is leftovers.py's."""

import contextlib
import os
import signal
from collections.abc import Callable
from typing import Any

from wvo_mcp import processes
from wvo_mcp.processes import start_ticks

# In every worker's environment: `<the autopilot run's id>/<the worker run's>`.
MARK = "WVO_AUTOPILOT_RUN"
__all__ = ["MARK", "end_marked", "end_run", "gone", "start_ticks"]


def gone(run: dict[str, Any], stale_before: str) -> bool:
    """An autopilot run is gone: its process on this machine is not the one that wrote the
    report, or (elsewhere) it has not been heard of since `stale_before`."""
    if run["state"] == "ended":
        return False
    who = run["report"].get("process") or {}
    if on_this_host(run) and isinstance(who.get("pid"), int):
        return start_ticks(who["pid"]) != who.get("started")
    return bool(run["seen_at"] < stale_before)


def on_this_host(run: dict[str, Any]) -> bool:
    """The run's pids are this machine's (its pid namespace, since this boot)."""
    here = processes.machine()
    return bool(here) and (run["report"].get("process") or {}).get("machine") == here


def end_run(run: dict[str, Any]) -> int:
    """SIGKILL what a gone run's workers left on this host: the processes of each worker's
    group or session while its leader is the process it started, and every process marked
    as one of the run's. How many processes were sent the signal."""
    if not on_this_host(run):
        return 0
    led: set[int] = set()
    for worker in run["report"].get("workers", []):
        pgid, started = worker.get("pgid"), worker.get("started")
        if not isinstance(pgid, int) or isinstance(pgid, bool) or pgid <= 1:
            continue
        if started is not None and start_ticks(pgid) == started:  # the very process it led
            led.add(pgid)
    prefix = f"{run['id']}/"
    return _end(lambda seen, mark: seen.group in led or seen.session in led or (
        mark is not None and mark.startswith(prefix)))  # fmt: skip


def end_marked(mark: str) -> int:
    """SIGKILL every process marked as one worker run's (`mark`: its MARK value): what an
    unsandboxed worker started outside its process group (a setsid child, a daemon)."""
    return _end(lambda seen, found: found == mark)


def _end(ours: Callable[[processes.Seen, str | None], bool]) -> int:
    me_ = os.getpid()
    ended = 0
    for seen in processes.every():
        if seen.pid == me_ or not ours(seen, processes.environ_value(seen.pid, MARK)):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(seen.pid, signal.SIGKILL)
            ended += 1
    return ended
