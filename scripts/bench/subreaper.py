"""What a benchmark's sandboxes cost, counted in its own RUSAGE_CHILDREN. With its own pid
namespace, bwrap's outer process exits as soon as the sandbox's init reports the command's
exit status, without waiting for that init: the sandbox's CPU would then go to the host's
init. A benchmark that is a child subreaper adopts the init instead, and counts it once
reap_adopted() waits for it. Shared by merge_queue.py and tenancy.py."""

from __future__ import annotations

import contextlib
import ctypes
import os
import time
from pathlib import Path

from scripts.bench.lib import BenchError

PR_SET_CHILD_SUBREAPER = 36
SPAWNED: set[int] = set()  # processes the benchmark started (and waits for itself)


def become_subreaper() -> None:
    """Adopt orphaned descendants."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise BenchError(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")


def reap_adopted(settle: float = 0.0, name: str | None = None) -> None:
    """Wait for every adopted process (named `name`, any by default) that has ended, never
    for one in SPAWNED (its owner waits for it); for up to `settle` seconds while any is
    still running."""
    deadline = time.monotonic() + settle
    while True:
        running = 0
        for task in Path("/proc/self/task").iterdir():
            with contextlib.suppress(OSError):
                for pid in map(int, (task / "children").read_text().split()):
                    if pid in SPAWNED:
                        continue
                    if name is not None and Path(f"/proc/{pid}/comm").read_text() != f"{name}\n":
                        continue
                    with contextlib.suppress(ChildProcessError):
                        if os.waitpid(pid, os.WNOHANG) == (0, 0):
                            running += 1
        if not running or time.monotonic() >= deadline:
            return
        time.sleep(0.02)  # polling: the adopted inits end on their own
