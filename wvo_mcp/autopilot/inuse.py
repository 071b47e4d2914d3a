"""Which live processes use a folder, so that `autopilot gc` keeps it.

Which live processes use a folder, as /proc shows them: a working or root folder or an
open file in it, an argument or environment value naming it (bwrap's `--bind`, an
unsandboxed CLI's HOME), or a mount of it in another mount namespace (what a sandboxed
worker sees). `autopilot gc` keeps what any of them uses."""

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_TEXT_BYTES = 1024 * 1024  # of one process's argv or environment
_BEFORE = "(?:^|(?<=[\0\\s:'\"=]))"  # a path starts the text, or follows one of these
_AFTER = "(?=$|[\0\\s:'\"/;])"


@dataclass(frozen=True)
class _Mount:
    device: str  # major:minor
    root: str  # the folder of its filesystem that is mounted
    point: str  # where it is mounted


def users(folders: Sequence[Path], proc: Path = PROC) -> dict[Path, list[str]] | None:
    """Each of `folders` (absolute, without links) with the live processes that use it, as
    "1234 (bwrap)"; None where /proc cannot be read, so that nothing counts as unused."""
    if not (proc / "self" / "mountinfo").is_file():
        return None
    own = _mounts(proc / "self" / "mountinfo")
    own_ns = _link(proc / "self" / "ns" / "mnt")
    inside = {folder: _inside(folder, own) for folder in folders}
    named = {
        folder: re.compile(_BEFORE + re.escape(str(folder)) + _AFTER, re.MULTILINE)
        for folder in folders
    }
    found: dict[Path, list[str]] = {folder: [] for folder in folders}
    mounted_in: dict[str, set[Path]] = {}  # per mount namespace, the folders mounted in it
    for pid in _pids(proc):
        where = proc / pid
        text = "\0".join(_texts(where))
        ns = _link(where / "ns" / "mnt")
        if ns is not None and ns != own_ns and ns not in mounted_in:
            mounts = _mounts(where / "mountinfo")
            mounted_in[ns] = {f for f, at in inside.items() if at and _mounted(at, mounts)}
        using = mounted_in.get(ns or "", set())
        for folder in folders:
            if folder in using or named[folder].search(text):
                found[folder].append(f"{pid} ({_comm(where)})")
    return found


def _pids(proc: Path) -> Iterator[str]:
    me = str(os.getpid())
    for entry in os.scandir(proc):
        if entry.name.isdigit() and entry.name != me:
            yield entry.name


def _texts(where: Path) -> Iterator[str]:
    """Every path the process shows: its folders, open files, arguments and environment.
    A process that ended meanwhile, or another user's, shows what it can."""
    for name in ("cwd", "root"):
        found = _link(where / name)
        if found is not None:
            yield found
    try:
        fds = os.listdir(where / "fd")
    except OSError:
        fds = []
    for fd in fds:
        found = _link(where / "fd" / fd)
        if found is not None and found.startswith("/"):
            yield found
    for name in ("cmdline", "environ"):
        try:
            with open(where / name, "rb") as handle:
                yield handle.read(_TEXT_BYTES).decode(errors="replace")
        except OSError:
            continue


def _link(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _comm(where: Path) -> str:
    try:
        return (where / "comm").read_text().strip()
    except OSError:
        return "?"


def _mounts(path: Path) -> list[_Mount]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) >= 5:
            found.append(_Mount(fields[2], _unescape(fields[3]), _unescape(fields[4])))
    return found


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _inside(folder: Path, own: list[_Mount]) -> tuple[str, str] | None:
    """(device, the folder's path within its filesystem), by this namespace's mounts."""
    best = None
    for mount in own:
        point = Path(mount.point)
        if (point == folder or point in folder.parents) and (
            best is None or len(mount.point) > len(best.point)
        ):
            best = mount
    if best is None:
        return None
    rest = folder.relative_to(best.point)
    return best.device, os.path.normpath(os.path.join(best.root, rest))


def _mounted(at: tuple[str, str], mounts: list[_Mount]) -> bool:
    device, path = at
    return any(m.device == device and (m.root == path or m.root.startswith(path + "/"))
               for m in mounts)  # fmt: skip
