"""A sandbox run's request checked before it starts: its workspace, limits and variables.

What a run may ask for (`validate`: a workspace that is no system folder, limits in range,
the variables it adds), and what a worker's may (WorkerLimits); its environment is built in
environment.py. Pure, no I/O but `stat`. Carries out `rules/bounds.py`. A worker run's
limits are enforced by sandbox/run_limits.py (`Fence.breached` while it runs), and the run
stopped by autopilot/worker_process.py:stop_reason."""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules.bounds import (
    CPUS_RANGE,
    DEFAULT_TMP_MB,
    MEMORY_RANGE,
    PIDS_RANGE,
    TIMEOUT_RANGE,
    TMP_RANGE,
    check_command,
    check_range,
)
from wvo_mcp.sandbox.toolchain import Toolchain

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_ENV_VARS = 100
MAX_ENV_VALUE_BYTES = 32_768
# System directories a workspace may not be: binding one read-write would undo the sandbox.
SYSTEM_DIRS = frozenset(
    [
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/var",
    ]
)
SYSTEM_TREES = ("/proc/", "/sys/", "/dev/", "/usr/", "/etc/", "/boot/")


@dataclass(frozen=True)
class Request:
    """One command to run: an argv list, or a string run by `/bin/sh -c`."""

    command: list[str] | str
    workspace: Path  # the root mounted read-write; nothing outside it is
    timeout_s: float = 30
    memory_mb: int = 512
    cpus: float = 1
    network: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    pids_limit: int = 256
    tmp_mb: int = DEFAULT_TMP_MB  # its /tmp, a tmpfs: RAM, so capped
    # Where the command starts, relative to the workspace. It is entered inside the
    # sandbox, after the mount: a link swapped in after the check cannot lead outside.
    cwd: str = "."
    # The project's toolchain, shown read-only at its place in the workspace (toolchain.py).
    toolchain: Toolchain = field(default_factory=Toolchain)


@dataclass(frozen=True)
class WorkerLimits:
    """What one autopilot worker, reviewer or planner run may use (the providers file's
    `worker.limits`; docs/security.md says why these defaults)."""

    memory_mb: int = 4096  # everything it runs, its RAM-backed /tmp and home included
    pids: int = 1024  # processes and threads, together
    tmp_mb: int = DEFAULT_TMP_MB
    home_mb: int = 512
    cpu_weight: int = 100  # its share of the CPU against other groups when it is busy


def argv(request: Request) -> list[str]:
    """The argv to execute: a string goes through /bin/sh -c."""
    if isinstance(request.command, str):
        return ["/bin/sh", "-c", request.command]
    return list(request.command)


def validate(request: Request) -> Request:
    """Refuse what cannot run, saying what would be accepted; return it with the workspace
    made absolute (symlinks resolved, so the bind is the real directory)."""
    command = request.command
    check_command(command)
    check_range("timeout_s", request.timeout_s, TIMEOUT_RANGE, "seconds")
    check_range("memory_mb", request.memory_mb, MEMORY_RANGE, "MB")
    check_range("cpus", request.cpus, CPUS_RANGE, "CPUs")
    check_range("pids_limit", request.pids_limit, PIDS_RANGE, "processes")
    check_range("tmp_mb", request.tmp_mb, TMP_RANGE, "MB")
    check_env(request.env)
    workspace = Path(request.workspace).expanduser()
    if not workspace.is_dir():
        what = "does not exist" if not workspace.exists() else "is not a directory"
        raise ValidationFailed(
            f"workspace {str(workspace)!r} {what}; give an existing project directory"
        )
    workspace = workspace.resolve()
    text = str(workspace)
    if text in SYSTEM_DIRS or text.startswith(SYSTEM_TREES):
        raise ValidationFailed(
            f"workspace {text!r} is a system directory; give a project directory "
            "(it is mounted read-write)"
        )
    return Request(
        command=list(command) if isinstance(command, list) else command,
        workspace=workspace,
        cwd=subfolder(request.cwd),
        timeout_s=float(request.timeout_s),
        memory_mb=int(request.memory_mb),
        cpus=float(request.cpus),
        network=bool(request.network),
        env=dict(request.env),
        pids_limit=int(request.pids_limit),
        tmp_mb=int(request.tmp_mb),
        toolchain=request.toolchain,
    )


def subfolder(given: str) -> str:
    """A relative path that stays below the workspace, normalised (pure: no file is read)."""
    normal = os.path.normpath(given) if given else "."
    if "\0" in normal or os.path.isabs(normal) or normal == ".." or normal.startswith("../"):
        raise ValidationFailed(
            f"working folder {given!r} is not a relative path inside the workspace; give "
            "one like 'src/app', or omit it for the workspace itself"
        )
    return normal


def check_env(env: Mapping[str, str]) -> None:
    """Names must be shell-style names; values plain text of bounded size."""
    if len(env) > MAX_ENV_VARS:
        raise ValidationFailed(f"env has {len(env)} variables; at most {MAX_ENV_VARS}")
    for name, value in env.items():
        if not isinstance(name, str) or not ENV_NAME.match(name):
            raise ValidationFailed(
                f"env name {name!r} is not valid; use letters, digits and _, not starting "
                "with a digit"
            )
        if not isinstance(value, str) or "\0" in value:
            raise ValidationFailed(f"env {name} must be a string without NUL characters")
        if len(value.encode()) > MAX_ENV_VALUE_BYTES:
            raise ValidationFailed(f"env {name} is longer than {MAX_ENV_VALUE_BYTES} bytes")
