"""The relay's arguments, and the relay as a real process on this host: the command's exit
status and signals pass through it. (What it carries, it carries inside a sandbox:
tests/security/test_egress.py.)"""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HANG_SECONDS
from wvo_mcp.sandbox import relay

DEADLINE_S = HANG_SECONDS  # a guard against a hang, never a time to beat


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-I", "-m", "wvo_mcp.sandbox.relay", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("the relay did not exit")
    return process.returncode, out, err


def test_arguments_are_parsed() -> None:
    config = relay.parse(
        [
            "--socket",
            "/ws/egress.sock",
            "--forward",
            "127.0.0.1:8765",
            "--forward=[::1]:9000",
            "--forward",
            "api.anthropic.com:443",
            "--proxy-port=3128",
            "--",
            "claude",
            "--print",
            "--",
        ]
    )
    assert config.socket_path == "/ws/egress.sock"
    assert config.forwards == [("127.0.0.1", 8765), ("::1", 9000), ("api.anthropic.com", 443)]
    assert config.proxy_port == 3128
    assert config.argv == ["claude", "--print", "--"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--socket", "/s", "true"], "no command: put it after --"),
        (["--socket", "/s", "--"], "no command after --"),
        (["--forward", "127.0.0.1:80", "--", "true"], "--socket PATH"),
        (["--socket", "/s", "--forward", "127.0.0.1", "--", "true"], "not HOST:PORT"),
        (["--socket", "/s", "--forward", "host:http", "--", "true"], "'http' is not a port"),
        (["--socket", "/s", "--forward", "host:0", "--", "true"], "use 1 to 65535"),
        (["--socket", "/s", "--forward", "host:65536", "--", "true"], "use 1 to 65535"),
        (["--socket", "/s", "--forward", "::1:80", "--", "true"], "IPv6 address in brackets"),
        (["--socket", "/s", "--forward", "[::1:80", "--", "true"], "not [IPv6]:PORT"),
        (["--socket", "/s", "--forward", "a b:80", "--", "true"], "not HOST:PORT"),
        (["--socket", "/s", "--forward", ":80", "--", "true"], "not HOST:PORT"),
        (["--socket", "/s", "--proxy-port", "x", "--", "true"], "--proxy-port 'x' is not"),
        (["--socket", "/s", "--proxy-port", "--", "true"], "--proxy-port needs a value"),
        (["--socket", "/s", "--proxy-port"], "no command"),
        (["--socket", "/s", "--listen", "1", "--", "true"], "unknown option '--listen'"),
        (["--socket", "/s", "--socket", "", "--", "true"], "unknown option '--socket'"),
        (
            ["--socket", "/s", "--forward", "a:80", "--proxy-port", "80", "--", "true"],
            "a port is given twice",
        ),
    ],
)
def test_bad_arguments_are_refused_saying_why(args: list[str], message: str) -> None:
    with pytest.raises(relay.Usage, match=message.replace("[", r"\[")):
        relay.parse(args)


def test_bad_arguments_exit_2_with_the_usage_on_stderr() -> None:
    status, out, err = finish(start("--socket", "/s", "--forward", "host:99999", "--", "true"))
    assert status == 2 and out == ""
    assert "wvo relay: --forward port '99999' is not a port; use 1 to 65535" in err
    assert "usage: python -I -m wvo_mcp.sandbox.relay --socket PATH" in err


def test_the_command_runs_with_its_arguments_and_its_status_comes_back(tmp_path: Path) -> None:
    code = "import sys; print(sys.argv[1:]); sys.exit(3)"
    status, out, _ = finish(
        start("--socket", str(tmp_path / "s"), "--", sys.executable, "-c", code, "a b", "--x")
    )
    assert status == 3
    assert out == "['a b', '--x']\n"


def test_a_command_killed_by_a_signal_exits_128_plus_the_signal(tmp_path: Path) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    status, _, _ = finish(start("--socket", str(tmp_path / "s"), "--", sys.executable, "-c", code))
    assert status == 128 + signal.SIGKILL


def test_a_missing_command_exits_127(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-program")
    status, _, err = finish(start("--socket", str(tmp_path / "s"), "--", missing))
    assert status == 127
    assert f"command not found: {missing!r}" in err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signals_to_the_relay_reach_the_command(tmp_path: Path, signum: int) -> None:
    code = (
        "import signal, sys\n"
        "def stop(n, _):\n"
        "    print('got', n, flush=True); sys.exit(7)\n"
        "for n in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP): signal.signal(n, stop)\n"
        "print('ready', flush=True)\n"
        "signal.pause()\n"
    )
    process = start("--socket", str(tmp_path / "s"), "--", sys.executable, "-c", code)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signum)
    status, out, _ = finish(process)
    assert status == 7
    assert out == f"got {int(signum)}\n"


def test_the_inline_command_line_runs_without_the_package(tmp_path: Path) -> None:
    line = relay.command(
        sys.executable,
        str(tmp_path / "s"),
        [sys.executable, "-c", "print('inside')"],
        proxy_port=None,
    )
    assert line[:3] == [sys.executable, "-I", "-c"]
    assert line[4:] == ["--socket", str(tmp_path / "s"), "--", sys.executable, "-c", line[-1]]
    # From a folder where wvo_mcp cannot be imported, as in a sandbox.
    done = subprocess.run(
        line, cwd=tmp_path, capture_output=True, text=True, timeout=DEADLINE_S, check=False
    )
    assert (done.returncode, done.stdout) == (0, "inside\n")
