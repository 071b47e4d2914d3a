"""Request validation, the environment allow-list, and how outcomes become results."""

import signal
from pathlib import Path

import pytest

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.sandbox import cli_exit_code
from wvo_mcp.sandbox.environment import BASE_ENV, command_env
from wvo_mcp.sandbox.outcome import Outcome, result
from wvo_mcp.sandbox.output import Tail
from wvo_mcp.sandbox.request import Request, argv, validate


def test_a_valid_request_comes_back_with_the_workspace_resolved(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "ws")
    checked = validate(Request(command=["pytest", "-q"], workspace=tmp_path / "link"))
    assert checked.workspace == (tmp_path / "ws").resolve()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"command": []}, "command is empty"),
        ({"command": "  "}, "command is empty"),
        ({"command": ["a\0b"]}, "NUL"),
        ({"timeout_s": 3601}, "timeout_s=3601 is out of range; use 0.1 to 3600 seconds"),
        ({"timeout_s": float("nan")}, "timeout_s"),
        ({"memory_mb": 15}, "use 16 to 65536 MB"),
        ({"cpus": 0}, "use 0.1 to 64 CPUs"),
        ({"pids_limit": 4}, "use 8 to 32768"),
        ({"env": {"A-B": "x"}}, "env name 'A-B' is not valid"),
        ({"env": {"A": "x\0"}}, "without NUL"),
        ({"workspace": Path("/usr")}, "system directory"),
        ({"workspace": Path("/etc/apt")}, "system directory"),
    ],
)
def test_bad_requests_say_what_would_be_accepted(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    fields: dict[str, object] = {"command": ["true"], "workspace": tmp_path, **change}
    with pytest.raises(ValidationFailed, match=message.replace("(", r"\(")):
        validate(Request(**fields))  # type: ignore[arg-type]


def test_a_missing_or_file_workspace_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="does not exist"):
        validate(Request(command=["true"], workspace=tmp_path / "nope"))
    (tmp_path / "file").write_text("")
    with pytest.raises(ValidationFailed, match="is not a directory"):
        validate(Request(command=["true"], workspace=tmp_path / "file"))


def test_a_string_runs_through_the_shell() -> None:
    assert argv(Request(command="make test", workspace=Path("."))) == [
        "/bin/sh",
        "-c",
        "make test",
    ]


def test_the_environment_is_the_allow_list_plus_the_request() -> None:
    env = command_env(
        Request(command="true", workspace=Path("."), env={"CI": "1", "HOME": "/work"})
    )
    assert env == {**BASE_ENV, "CI": "1", "HOME": "/work"}
    assert env["PATH"].startswith("/usr/local/sbin") and env["LANG"] == "C.UTF-8"


def _outcome(**fields: object) -> Outcome:
    base: dict[str, object] = {
        "returncode": 0,
        "timed_out": False,
        "stdout": Tail(10),
        "stderr": Tail(10),
        "duration_s": 0.5,
    }
    return Outcome(**{**base, **fields})  # type: ignore[arg-type]


def test_results_name_what_killed_the_command() -> None:
    def shown(**fields: object) -> tuple[int | None, str | None, int]:
        res = result("bwrap", _outcome(**fields), memory_mb=64, pids_limit=32)
        return res.exit_code, res.killed_reason, cli_exit_code(res)

    assert shown(returncode=3) == (3, None, 3)
    assert shown(returncode=None, timed_out=True) == (None, "timeout", 124)
    oom = {"returncode": 137, "oom_killed": True, "signal_as_status": True}
    assert shown(**oom) == (None, "memory limit (64 MB)", 137)
    child_oom = {"returncode": 1, "oom_killed": True, "signal_as_status": True}
    assert shown(**child_oom)[:2] == (1, "memory limit (64 MB) killed a process of the command")
    assert shown(returncode=1, pids_hit=True)[1] == "pids limit (32) refused new processes"
    # The unisolated backend sees signals as negative return codes.
    assert shown(returncode=-signal.SIGTERM) == (None, "signal SIGTERM", 137)


def test_truncation_of_either_stream_is_reported() -> None:
    stderr = Tail(10)
    stderr.write(b"x" * 20)
    res = result("none", _outcome(stderr=stderr), memory_mb=64, pids_limit=32)
    assert res.truncated and res.stdout_tail == "" and res.stderr_tail.endswith("x" * 10)
