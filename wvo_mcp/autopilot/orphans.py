"""What an autopilot killed without warning leaves behind, found by the next one: whether
it is really gone, and its workers' process groups, ended only while the process that
leads each is still the one it started (a pid is reused; its start time is not)."""

import os
import signal
import socket
from typing import Any


def start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: fields follow the last ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[19]) if len(fields) > 19 else None


def me() -> dict[str, Any]:
    """This process, as its report names it, so another autopilot can tell it is gone."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": start_ticks(os.getpid())}


def gone(run: dict[str, Any], stale_before: str) -> bool:
    """An autopilot run is gone: its process on this host is not the one that wrote the
    report, or (on another host) it has not been heard of since `stale_before`."""
    if run["state"] == "ended":
        return False
    who = run["report"].get("process") or {}
    if who.get("host") == socket.gethostname() and isinstance(who.get("pid"), int):
        return start_ticks(who["pid"]) != who.get("started")
    return bool(run["seen_at"] < stale_before)


def end_group(pgid: object, started: object) -> bool:
    """SIGKILL a worker's process group if its leader is still the process it was."""
    if not isinstance(pgid, int) or pgid <= 1 or start_ticks(pgid) != started:
        return False
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True
