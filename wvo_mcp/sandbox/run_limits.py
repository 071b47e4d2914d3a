"""A run's resource limits, enforced the strongest way this machine allows.

The resource limits of one worker, reviewer or planner run, enforced the strongest way
this machine allows, and which of them stopped it.

With a writable cgroup (v2, or v1 per controller: cgroups.py) the run's memory, processes and
CPU weight are its cgroup's, entered before bwrap starts. Where a controller is missing, the
fallback is what rlimits give, set by the relay inside the sandbox: RLIMIT_NPROC counts per
user namespace from Linux 5.14, so there it bounds that sandbox's processes (never root's,
whom it does not bind); the CPU gets a lower priority, not a share. Memory has no fallback:
an address-space or data rlimit would stop the CLIs themselves (Claude Code reserves tens of
GB of address space it never uses). /tmp and the home are sized tmpfs mounts either way
(bwrap --size), so what a run writes there is bounded too."""

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from wvo_mcp.sandbox import bwrap, cgroups
from wvo_mcp.sandbox.request import WorkerLimits

NPROC_KERNEL = (5, 14)  # RLIMIT_NPROC counts per user namespace from this release
FALLBACK_NICE = 10
CGROUP_HINT = (
    "no writable cgroup for it here: run the autopilot in one, e.g. "
    "`systemd-run --user --scope -p Delegate=yes wvo-mcp autopilot …`"
)


@dataclass(frozen=True)
class Plan:
    """How each limit is enforced here: "cgroup v1" or "cgroup v2", "rlimit" (processes)
    or "nice" (CPU), or "" with the reason in `why`."""

    memory: str = ""
    pids: str = ""
    cpu: str = ""
    sized: bool = False  # /tmp and the home are tmpfs mounts capped in size
    why: Mapping[str, str] | None = None  # limit -> why it is not enforced

    @property
    def complete(self) -> bool:
        """Memory and processes are bounded, /tmp and the home sized."""
        return bool(self.memory and self.pids and self.sized)


def kernel(release: str) -> tuple[int, int]:
    """'6.8.0-45-generic' -> (6, 8); (0, 0) when it cannot be read."""
    found = re.match(r"(\d+)\.(\d+)", release)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def plan_for(
    applied: Mapping[str, str], *, root: bool, kernel: tuple[int, int], sized: bool
) -> Plan:
    """What is enforced, given which cgroup controllers took their limits (pure)."""
    why: dict[str, str] = {}
    memory = f"cgroup {applied['memory']}" if "memory" in applied else ""
    if not memory:
        why["memory"] = f"{CGROUP_HINT} (an address-space rlimit would stop the CLI itself)"
    pids = f"cgroup {applied['pids']}" if "pids" in applied else ""
    if not pids and root:
        why["pids"] = f"{CGROUP_HINT} (RLIMIT_NPROC does not bind root)"
    elif not pids and kernel < NPROC_KERNEL:
        why["pids"] = (
            f"{CGROUP_HINT} (before Linux 5.14 RLIMIT_NPROC counts all of your processes, "
            "not the sandbox's)"
        )
    elif not pids:
        pids = "rlimit"
    cpu = f"cgroup {applied['cpu']}" if "cpu" in applied else "nice"
    if not sized:
        why["tmp"] = "this bwrap has no --size (bwrap 0.5 and later have): not capped"
    return Plan(memory, pids, cpu, sized, why)


def describe(plan: Plan, limits: WorkerLimits) -> str:
    """One line for `autopilot --dry-run` and `doctor` (pure)."""
    why = plan.why or {}
    memory = (
        f"memory {limits.memory_mb} MB ({plan.memory})"
        if plan.memory
        else f"memory NOT limited: {why.get('memory', '')}"
    )
    if plan.pids == "rlimit":
        pids = f"{limits.pids} processes (RLIMIT_NPROC in its user namespace)"
    elif plan.pids:
        pids = f"{limits.pids} processes and threads ({plan.pids})"
    else:
        pids = f"processes NOT limited: {why.get('pids', '')}"
    cpu = (
        f"CPU weight {limits.cpu_weight} ({plan.cpu})"
        if plan.cpu != "nice"
        else f"CPU at nice {FALLBACK_NICE} (no cpu cgroup: below your own work, not a share)"
    )
    sized = (
        f"/tmp {limits.tmp_mb} MB and home {limits.home_mb} MB (sized tmpfs)"
        if plan.sized
        else f"/tmp and home {why.get('tmp', '')}"
    )
    return f"{memory}; {pids}; {cpu}; {sized}"


class Fence:
    """One run's limits: its cgroup (if any), the fallback's options, what it reached."""

    def __init__(self, limits: WorkerLimits, plan: Plan, group: cgroups.RunGroup | None):
        self.limits = limits
        self.plan = plan
        self.group = group

    def launcher(self, argv: list[str]) -> list[str]:
        """argv wrapped so the run enters its cgroup before bwrap starts."""
        return self.group.launcher(argv) if self.group is not None else argv

    @property
    def nproc(self) -> int | None:
        return self.limits.pids if self.plan.pids == "rlimit" else None

    @property
    def nice(self) -> int | None:
        return FALLBACK_NICE if self.plan.cpu == "nice" else None

    def breached(self) -> str:
        """The limit that stops the run while it runs (the supervisor looks at each poll):
        a refused fork. A CLI that can start nothing cannot work, and a fork bomb would
        hold it there."""
        if self.group is not None and self.plan.pids.startswith("cgroup") and self.group.pids_hit():
            return f"process limit {self.limits.pids} reached"
        return ""

    def reached(self) -> str:
        """The limit the run reached, once it ended: its process limit, or its memory limit
        (the kernel killed one of its processes); "" when neither."""
        if self.breached():
            return self.breached()
        if self.group is not None and self.plan.memory and self.group.oom_killed():
            return f"memory limit {self.limits.memory_mb} MB reached"
        return ""

    def close(self) -> None:
        """Kill whatever of the run is left (anything that left its process group or
        session too) and remove its cgroup (blocking: run it in a thread)."""
        if self.group is not None:
            self.group.kill()
            self.group.remove()


def open_fence(limits: WorkerLimits, owner: str = "") -> Fence:
    """The limits of one run of the state folder marked `owner` (scratch_dirs.owner), its
    cgroup made (blocking: cgroupfs writes, a probe of bwrap)."""
    group = cgroups.open_group(limits.memory_mb, None, limits.pids, limits.cpu_weight, owner)
    plan = plan_for(
        group.applied if group is not None else {},
        root=os.getuid() == 0,
        kernel=kernel(os.uname().release),
        sized=bwrap.sizes(),
    )
    return Fence(limits, plan, group)


def probe(limits: WorkerLimits | None = None) -> Plan:
    """How a run's limits would be enforced here (makes and removes a probe cgroup)."""
    fence = open_fence(limits or WorkerLimits())
    with contextlib.suppress(OSError):
        fence.close()
    return fence.plan
