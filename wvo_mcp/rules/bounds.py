"""What a command and a sandbox run may ask for, as plain values and checks (pure).

What a command and a sandbox run may ask for, as plain values and checks (pure): the
sandbox checks a run against them, and the settings and a task's verify_command are held to
the same ones, so the gate never starts with a value the sandbox would refuse.

Carried out by `wvo_mcp/sandbox/request.py` and `wvo_mcp/config.py`."""

from wvo_mcp.errors import ValidationFailed

MAX_COMMAND_BYTES = 131_072  # every argument in UTF-8 plus its terminating NUL, together
# What a run may ask for, (lowest, highest), both accepted.
TIMEOUT_RANGE = (0.1, 3600.0)  # seconds
MEMORY_RANGE = (16, 65536)  # MB
CPUS_RANGE = (0.1, 64.0)
PIDS_RANGE = (8, 32768)
TMP_RANGE = (1, 65536)  # MB of a RAM-backed folder: a sandbox's /tmp, a worker's home
CPU_WEIGHT_RANGE = (1, 10000)  # cgroup v2's cpu.weight, where 100 is every group's own
DEFAULT_TMP_MB = 1024
OUTPUT_BYTES_RANGE = (256, 1_048_576)  # bytes kept of each of stdout and stderr


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
