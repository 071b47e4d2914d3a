"""Per-run cgroups: limits, peak memory, OOM kills and a tree kill nothing escapes.

Works on v2, v1 and hybrid layouts by looking at what exists: for each of memory, cpu and
pids, the v2 file (`memory.max`, `cpu.max`, `pids.max`) when the run's v2 cgroup has it,
else the v1 hierarchy mounted for that controller. The kill is v2 `cgroup.kill` when
present, else SIGKILL to every pid in the run's cgroups until none is left.
"""

import contextlib
import os
import re
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from wvo_mcp import processes

CONTROLLERS = ("memory", "cpu", "pids")
PREFIX = "wvo-sandbox-"
# wvo-sandbox-<maker's pid>-<its start ticks>-<owner>-<random>: <owner> the state folder's
# mark (scratch_dirs.owner), which alone says whose leftover it is; before issue 53 without
# it, and before issue 43 without the ticks (neither is any state folder's to sweep).
NAME = re.compile(r"wvo-sandbox-(\d+)-(?:(\d+)-)?(?:([0-9a-f]{12})-)?[0-9a-f]{8}")
CPU_PERIOD_US = 100_000
KILL_DEADLINE_S = 10.0
# Enters every cgroup file given, then becomes the command: the command is inside its
# limits from its first instruction, with no window in which it could fork outside them.
LAUNCHER = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do '
    'echo $$ > "$1" || { echo "wvo-mcp sandbox: cannot enter cgroup $1" >&2; exit 125; }; '
    'shift; n=$((n-1)); done; exec "$@"'
)


@dataclass(frozen=True)
class Layout:
    """Where this process's cgroups are, per hierarchy (directories that exist)."""

    v2: Path | None = None  # our own v2 cgroup directory
    v1: dict[str, Path] = field(default_factory=dict)  # controller -> our own v1 cgroup

    def describe(self) -> str:
        parts = []
        if self.v2 is not None:
            parts.append(f"v2 at {self.v2}")
        parts += [f"v1 {name} at {path}" for name, path in sorted(self.v1.items())]
        return "; ".join(parts) or "no cgroup hierarchy found"


def parse_proc_cgroup(text: str) -> tuple[str | None, dict[str, str]]:
    """`/proc/self/cgroup` → (our v2 path, {v1 controller: our path})."""
    v2: str | None = None
    v1: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2 = path
            continue
        for name in controllers.split(","):
            v1[name] = path
    return v2, v1


def parse_mountinfo(text: str) -> tuple[tuple[str, str] | None, dict[str, tuple[str, str]]]:
    """`/proc/self/mountinfo` → (v2 (root, mount point), {v1 controller: (root, mount point)})."""
    v2: tuple[str, str] | None = None
    v1: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, point, fstype, options = fields[3], fields[4], tail[0], tail[2].split(",")
        point = point.replace("\\040", " ")
        if fstype == "cgroup2" and v2 is None:
            v2 = (root, point)
        elif fstype == "cgroup":
            for name in CONTROLLERS:
                if name in options and name not in v1:
                    v1[name] = (root, point)
    return v2, v1


def _join(mount: tuple[str, str], path: str) -> Path:
    root, point = mount
    relative = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
    return Path(point) / ("" if relative == "." else relative)


def detect() -> Layout:
    """This process's cgroup directories, for the hierarchies that are mounted."""
    try:
        own_v2, own_v1 = parse_proc_cgroup(Path("/proc/self/cgroup").read_text())
        mount_v2, mount_v1 = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    except OSError:
        return Layout()
    v2 = _join(mount_v2, own_v2) if mount_v2 and own_v2 is not None else None
    v1 = {
        name: _join(mount, own_v1[name])
        for name, mount in mount_v1.items()
        if name in own_v1 and _join(mount, own_v1[name]).is_dir()
    }
    return Layout(v2=v2 if v2 is not None and v2.is_dir() else None, v1=v1)


def move_into(listed: str) -> None:
    """Moves this process into the groups that `listed` (another process's /proc/PID/cgroup)
    names, in each hierarchy where this process is elsewhere; OSError or ValueError when a
    hierarchy is not mounted here or its group may not be joined."""
    mine_v2, mine_v1 = parse_proc_cgroup(Path("/proc/self/cgroup").read_text())
    theirs_v2, theirs_v1 = parse_proc_cgroup(listed)
    mount_v2, mount_v1 = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    groups = [] if theirs_v2 == mine_v2 else [(mount_v2, theirs_v2)]
    groups += [(mount_v1.get(n), p) for n, p in theirs_v1.items() if p != mine_v1.get(n)]
    if set(theirs_v1) != set(mine_v1):
        raise ValueError("another cgroup layout")
    for mount, path in groups:
        if mount is None or path is None or ".." in Path(path).parts:
            raise ValueError(f"no group {path!r} to join here")
        (_join(mount, path) / "cgroup.procs").write_text(str(os.getpid()))


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
    except OSError:
        return False
    return True


def _counter(text: str | None, key: str) -> int:
    """A `key N` line of memory.events / memory.oom_control / pids.events."""
    for line in (text or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return 0


class RunGroup:
    """The cgroups of one run: created, limited, joined by the launcher, read, killed, removed."""

    def __init__(self, layout: Layout, owner: str = "") -> None:
        # Its maker's pid and start time: a cgroup whose maker is gone is a leftover of the
        # state folder it names (orphaned).
        me = os.getpid()
        mark = f"{owner}-" if owner else ""
        self.name = f"{PREFIX}{me}-{processes.start_ticks(me)}-{mark}{uuid.uuid4().hex[:8]}"
        self.dirs: list[Path] = []
        self.v2: Path | None = None
        self.v1: dict[str, Path] = {}
        if layout.v2 is not None:
            self.v2 = self._make(self._v2_parent(layout.v2))
        for name, base in layout.v1.items():
            made = self._make(base)
            if made is not None:
                self.v1[name] = made
        self.applied: dict[str, str] = {}  # controller -> "v1" / "v2"

    @staticmethod
    def _v2_parent(own: Path) -> Path:
        # v2 forbids processes in a cgroup that hands controllers to children; when ours
        # hands none (we live in it), the run's cgroup goes beside ours, where the parent's
        # controllers are available. The root cgroup is exempt from that rule.
        subtree = (_read(own / "cgroup.subtree_control") or "").split()
        is_root = not (own / "cgroup.type").exists() and (own / "cgroup.procs").exists()
        if subtree or is_root or own.parent == own:
            return own
        return own.parent

    def _make(self, base: Path) -> Path | None:
        path = base / self.name
        try:
            path.mkdir()
        except OSError:
            return None
        self.dirs.append(path)
        return path

    @property
    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs]

    def launcher(self, argv: list[str]) -> list[str]:
        """argv wrapped so the process enters every cgroup before it runs."""
        files = [str(p) for p in self.procs_files]
        return ["/bin/sh", "-c", LAUNCHER, "wvo-sandbox", str(len(files)), *files, *argv]

    def limit(
        self, memory_mb: int, cpus: float | None, pids: int, weight: int | None = None
    ) -> None:
        """Apply the limits with whatever this machine offers; `applied` says which and how.
        `cpus` caps the CPU time (a quota); `weight` instead gives a share of it when the
        machine is busy (cpu.weight, or v1's cpu.shares), all of it when it is idle."""
        memory_bytes = str(memory_mb * 1024 * 1024)
        if self.v2 is not None and _write(self.v2 / "memory.max", memory_bytes):
            self.applied["memory"] = "v2"
            _write(self.v2 / "memory.swap.max", "0")
        elif "memory" in self.v1 and _write(
            self.v1["memory"] / "memory.limit_in_bytes", memory_bytes
        ):
            self.applied["memory"] = "v1"
            # Without swap accounting this file is absent; with it, no escape into swap.
            _write(self.v1["memory"] / "memory.memsw.limit_in_bytes", memory_bytes)
        if cpus is not None:
            self._quota(cpus)
        if weight is not None:
            self._weigh(weight)
        if self.v2 is not None and _write(self.v2 / "pids.max", str(pids)):
            self.applied["pids"] = "v2"
        elif "pids" in self.v1 and _write(self.v1["pids"] / "pids.max", str(pids)):
            self.applied["pids"] = "v1"

    def _quota(self, cpus: float) -> None:
        quota = max(1000, round(cpus * CPU_PERIOD_US))
        if self.v2 is not None and _write(self.v2 / "cpu.max", f"{quota} {CPU_PERIOD_US}"):
            self.applied["cpu"] = "v2"
        elif (
            "cpu" in self.v1
            and _write(self.v1["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            and _write(self.v1["cpu"] / "cpu.cfs_quota_us", str(quota))
        ):
            self.applied["cpu"] = "v1"

    def _weigh(self, weight: int) -> None:
        if self.v2 is not None and _write(self.v2 / "cpu.weight", str(weight)):
            self.applied["cpu"] = "v2"
        elif "cpu" in self.v1 and _write(self.v1["cpu"] / "cpu.shares", str(shares(weight))):
            self.applied["cpu"] = "v1"

    @property
    def kills_with_cgroup_kill(self) -> bool:
        return self.v2 is not None and (self.v2 / "cgroup.kill").exists()

    def peak_memory_mb(self) -> float | None:
        candidates = []
        if self.v2 is not None:
            candidates.append(self.v2 / "memory.peak")
        if "memory" in self.v1:
            candidates.append(self.v1["memory"] / "memory.max_usage_in_bytes")
        for path in candidates:
            text = _read(path)
            if text and text.strip().isdigit():
                return round(int(text) / 1024 / 1024, 1)
        return None

    def oom_killed(self) -> bool:
        if self.v2 is not None and _counter(_read(self.v2 / "memory.events"), "oom_kill"):
            return True
        if "memory" in self.v1:
            control = _read(self.v1["memory"] / "memory.oom_control")
            if control is not None and "oom_kill " in control:
                return _counter(control, "oom_kill") > 0
            # Older kernels have no oom_kill counter: reaching the limit is the best sign.
            failcnt = (_read(self.v1["memory"] / "memory.failcnt") or "0").strip()
            return failcnt.isdigit() and int(failcnt) > 0
        return False

    def pids_hit(self) -> bool:
        """Whether a fork was refused by the pids limit."""
        for base in [self.v2, self.v1.get("pids")]:
            if base is not None and _counter(_read(base / "pids.events"), "max"):
                return True
        return False

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.procs_files:
            found.update(int(p) for p in (_read(path) or "").split() if p.isdigit())
        return found

    def kill(self) -> bool:
        """Kill every process in the run's cgroups; True once none is left."""
        if self.kills_with_cgroup_kill and self.v2 is not None:
            _write(self.v2 / "cgroup.kill", "1")
        deadline = time.monotonic() + KILL_DEADLINE_S
        while True:
            alive = self.pids()
            if not alive:
                return True
            if time.monotonic() > deadline:
                return False
            # Repeat until empty: a process may fork between the read and the kill.
            for pid in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def remove(self) -> None:
        for path in reversed(self.dirs):
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    # Busy until the killed processes are reaped by their parents.
                    time.sleep(0.01)


def orphaned(owner: str, layout: Layout | None = None) -> list[Path]:
    """The run cgroups of the state folder marked `owner` (scratch_dirs.owner), beside this
    process's own, whose maker (an autopilot, a server's sandbox run) is gone: nobody will
    kill what is in them or remove them but whoever finds them. A maker that is still the
    process it was is never touched, nor another state folder's or another user's run."""
    layout = layout if layout is not None else detect()
    bases = [*layout.v1.values()]
    if layout.v2 is not None:
        bases += [layout.v2, RunGroup._v2_parent(layout.v2)]
    found = []
    for base in dict.fromkeys(bases):
        try:
            entries = list(os.scandir(base))
        except OSError:
            continue
        for entry in entries:
            named = NAME.fullmatch(entry.name)
            if named is None or named.group(3) != owner or not entry.is_dir(follow_symlinks=False):
                continue
            ticks = None if named.group(2) is None else int(named.group(2))
            if not processes.alive(int(named.group(1)), ticks):
                found.append(Path(entry.path))
    return found


def clear(path: Path) -> bool:
    """A leftover run cgroup: whatever is in it killed (cgroup.kill, else SIGKILL to each
    pid until none is left), then removed, innermost first. True once it is gone."""
    for inner in sorted((p for p in path.rglob("*") if p.is_dir()), reverse=True):
        clear(inner)
    if (path / "cgroup.kill").exists():
        _write(path / "cgroup.kill", "1")
    deadline = time.monotonic() + KILL_DEADLINE_S
    while time.monotonic() < deadline:
        alive = [int(p) for p in (_read(path / "cgroup.procs") or "").split() if p.isdigit()]
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            time.sleep(0.01)  # busy until the killed processes are reaped
    return False


def shares(weight: int) -> int:
    """v2's cpu.weight (1..10000, 100 by default) as v1's cpu.shares (2.., 1024 by default)."""
    return max(2, weight * 1024 // 100)


def open_group(
    memory_mb: int, cpus: float | None, pids: int, weight: int | None = None, owner: str = ""
) -> RunGroup | None:
    """A limited cgroup for one run of the state folder marked `owner`, or None when no
    hierarchy can be written here."""
    group = RunGroup(detect(), owner)
    if not group.dirs:
        return None
    group.limit(memory_mb, cpus, pids, weight)
    return group


def capabilities() -> str:
    """Which limits a run gets here, for the doctor (creates and removes a probe group)."""
    layout = detect()
    group = RunGroup(layout)
    try:
        if not group.dirs:
            return f"no writable cgroup ({layout.describe()}): no memory, CPU or pids limits"
        group.limit(64, 1, 64)
        applied = ", ".join(f"{name} ({how})" for name, how in group.applied.items())
        missing = [name for name in CONTROLLERS if name not in group.applied]
        kill = (
            "v2 cgroup.kill"
            if group.kills_with_cgroup_kill
            else "SIGKILL to every pid in the cgroup until none is left"
        )
        text = f"cgroup limits: {applied or 'none'}; tree kill by {kill}"
        if missing:
            text += f"; NOT limited here: {', '.join(missing)}"
        return text
    finally:
        group.kill()
        group.remove()
