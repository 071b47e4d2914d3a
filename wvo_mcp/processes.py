"""Processes as /proc shows them: start time, session, environment, and which machine a pid is on.

Processes as /proc shows them: when one started (a pid is reused, its start time is
not), its session, and its environment, read without following anything it controls."""

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")
ENVIRON_BYTES = 1024 * 1024  # read of one process's environment


@dataclass(frozen=True)
class Seen:
    pid: int
    group: int  # its process group
    session: int
    started: int  # clock ticks since boot


def _stat(pid: int | str, proc: Path = PROC) -> list[bytes] | None:
    try:
        with open(proc / str(pid) / "stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: fields follow the last ')'.
    return stat[stat.rfind(b")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), or None if there is none."""
    fields = _stat(pid)
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


def alive(pid: int, started: int | None) -> bool:
    """Whether process `pid` is the one that started at `started` (None: any process)."""
    ticks = start_ticks(pid)
    return ticks is not None and (started is None or ticks == started)


def every(proc: Path = PROC) -> Iterator[Seen]:
    """Every live process (one that ends meanwhile is left out)."""
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        fields = _stat(entry.name, proc)
        if fields is None or len(fields) <= 19 or fields[0] == b"Z":
            continue
        yield Seen(int(entry.name), int(fields[2]), int(fields[3]), int(fields[19]))


def environ_value(pid: int, name: str, proc: Path = PROC) -> str | None:
    """The value of `name` in process `pid`'s environment as the kernel shows it, or None
    (no such variable, or not ours to read)."""
    try:
        with open(proc / str(pid) / "environ", "rb") as handle:
            text = handle.read(ENVIRON_BYTES)
    except OSError:
        return None
    key = os.fsencode(name) + b"="
    for entry in text.split(b"\0"):
        if entry.startswith(key):
            return os.fsdecode(entry[len(key) :])
    return None


def machine() -> str:
    """Where a pid means this process's pid: this kernel since its boot (a VM's or a
    machine's boot id) and this pid namespace (a container's). A hostname is not enough:
    containers and VMs may share one."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        space = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""  # no way to tell: every other run is then judged by its silence
    return f"{boot}/{space}"


def me() -> dict[str, Any]:
    """This process, as its report names it, so another autopilot can tell it is gone."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "machine": machine(), "pid": pid,
            "started": start_ticks(pid)}  # fmt: skip
