"""What a sandbox run may ask for, checked before anything starts (pure, no I/O but `stat`)."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wvo_mcp.errors import ValidationFailed

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
MAX_COMMAND_BYTES = 131_072
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
    workspace: Path
    timeout_s: float = 30
    memory_mb: int = 512
    cpus: float = 1
    network: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    pids_limit: int = 256


def _in_range(name: str, value: float, low: float, high: float, unit: str) -> None:
    # `not low <= value` also refuses NaN.
    if isinstance(value, bool) or not low <= value <= high:
        raise ValidationFailed(f"{name}={value!r} is out of range; use {low:g} to {high:g} {unit}")


def argv(request: Request) -> list[str]:
    """The argv to execute: a string goes through /bin/sh -c."""
    if isinstance(request.command, str):
        return ["/bin/sh", "-c", request.command]
    return list(request.command)


def validate(request: Request) -> Request:
    """Refuse what cannot run, saying what would be accepted; return it with the workspace
    made absolute (symlinks resolved, so the bind is the real directory)."""
    command = request.command
    if isinstance(command, str):
        if not command.strip():
            raise ValidationFailed("command is empty; give an argv list or a shell command line")
        parts = [command]
    else:
        if not command or not command[0]:
            raise ValidationFailed(
                "command is empty; give an argv list like ['pytest', '-q'] or a shell string"
            )
        parts = list(command)
        if not all(isinstance(p, str) for p in parts):
            raise ValidationFailed("every command argument must be a string")
    if any("\0" in p for p in parts):
        raise ValidationFailed("command contains a NUL character")
    if sum(len(p.encode()) + 1 for p in parts) > MAX_COMMAND_BYTES:
        raise ValidationFailed(f"command is longer than {MAX_COMMAND_BYTES} bytes")
    _in_range("timeout_s", request.timeout_s, 0.1, 3600, "seconds")
    _in_range("memory_mb", request.memory_mb, 16, 65536, "MB")
    _in_range("cpus", request.cpus, 0.1, 64, "CPUs")
    _in_range("pids_limit", request.pids_limit, 8, 32768, "processes")
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
        timeout_s=float(request.timeout_s),
        memory_mb=int(request.memory_mb),
        cpus=float(request.cpus),
        network=bool(request.network),
        env=dict(request.env),
        pids_limit=int(request.pids_limit),
    )


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


def command_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The allow-list with the request's variables on top. A request may replace PATH, HOME
    and the rest: they only shape the command's own view, inside the sandbox (the sandbox
    tools themselves are started with a fixed environment)."""
    return {**BASE_ENV, **extra}
