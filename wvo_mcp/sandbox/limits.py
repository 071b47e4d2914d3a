"""What a sandbox run may ask for, checked before anything starts (pure, no I/O but `stat`)."""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.sandbox.toolchain import Toolchain

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The whole environment a command starts from; the parent's is never passed on, so
# tokens and keys in the server's environment do not reach the command.
BASE_ENV: Mapping[str, str] = {
    "PATH": DEFAULT_PATH,
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TERM": "dumb",
}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_ENV_VARS = 100
MAX_ENV_VALUE_BYTES = 32_768
MAX_COMMAND_BYTES = 131_072  # every argument in UTF-8 plus its terminating NUL, together
# What a run may ask for, (lowest, highest), both accepted. Settings (config.py) checks the
# verification limits against these same pairs, so the gate never starts with a value the
# sandbox would refuse.
TIMEOUT_RANGE = (0.1, 3600.0)  # seconds
MEMORY_RANGE = (16, 65536)  # MB
CPUS_RANGE = (0.1, 64.0)
PIDS_RANGE = (8, 32768)
TMP_RANGE = (1, 65536)  # MB of a RAM-backed folder: a sandbox's /tmp, a worker's home
CPU_WEIGHT_RANGE = (1, 10000)  # cgroup v2's cpu.weight, where 100 is every group's own
DEFAULT_TMP_MB = 1024
OUTPUT_BYTES_RANGE = (256, 1_048_576)  # bytes kept of each of stdout and stderr
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


def _plain(number: float) -> str:
    """3600.0 -> 3600, 1048576 -> 1048576 (not 1.04858e+06), 0.1 -> 0.1."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def check_range(name: str, value: float, bounds: tuple[float, float], unit: str) -> None:
    """Refuse a value outside `bounds` (both ends accepted), saying what would be."""
    low, high = bounds
    # `not low <= value` also refuses NaN.
    if isinstance(value, bool) or not low <= value <= high:
        raise ValidationFailed(
            f"{name}={value!r} is out of range; use {_plain(low)} to {_plain(high)} {unit}"
        )


def check_command(command: object, name: str = "command") -> None:
    """The one rule for what a command may be, for the sandbox and for a task's
    verify_command alike (pure): a non-empty argv list of strings whose first argument is not
    empty, or a shell command line that is not blank; no NUL character anywhere; at most
    MAX_COMMAND_BYTES in all (each argument in UTF-8 plus one byte)."""
    if isinstance(command, str):
        if not command.strip():
            raise ValidationFailed(f"{name} is empty; give an argv list or a shell command line")
        parts = [command]
    elif isinstance(command, list):
        if not command:
            raise ValidationFailed(
                f"{name} is empty; give an argv list like ['pytest', '-q'] or a shell string"
            )
        if not command[0]:
            raise ValidationFailed(
                f"{name}'s first argument (the program) is empty; give an argv list like "
                "['pytest', '-q'] or a shell string"
            )
        parts = list(command)
        if not all(isinstance(p, str) for p in parts):
            raise ValidationFailed(f"every {name} argument must be a string")
    else:
        raise ValidationFailed(f"{name} must be an argv list of strings or a shell string")
    if any("\0" in p for p in parts):
        raise ValidationFailed(
            f"{name} contains a NUL character; arguments are text without NUL (\\0)"
        )
    size = sum(len(p.encode()) + 1 for p in parts)
    if size > MAX_COMMAND_BYTES:
        raise ValidationFailed(
            f"{name} is {size} bytes (each argument in UTF-8 plus one); at most "
            f"{MAX_COMMAND_BYTES}: put a long script in a file in the workspace and run that"
        )


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


def command_env(request: Request) -> dict[str, str]:
    """The allow-list, the toolchain's PATH and VIRTUAL_ENV, and the request's variables on
    top. A request may replace PATH, HOME and the rest: they only shape the command's own
    view, inside the sandbox (the sandbox tools themselves are started with a fixed
    environment)."""
    tools = request.toolchain.env(request.workspace, DEFAULT_PATH)
    return {**BASE_ENV, **tools, **request.env}
