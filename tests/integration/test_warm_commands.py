"""Warm start for every command but `stop`: a command the warm process forked answers as it
would have cold, takes the signals its relay is sent, ends its relay as it ended, and dies
with a relay killed outright."""

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, alive, children_of, wait_for
from tests.http.conftest import free_port
from tests.integration.test_lifecycle import EXIT_DEADLINE_S
from tests.integration.test_warm_start import (  # noqa: F401 (cleanup: a fixture)
    cleanup,
    imported,
    start_warm,
)
from tests.listening import until_listening

pytestmark = [pytest.mark.process, pytest.mark.usefixtures("cleanup")]

MARK = "WVO_TEST_COMMAND"  # in a command's environment: which of the test's it is


def command_env(state_root: Path, warm: bool, **more: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(state_root.parent),
        "WVO_STATE_ROOT": str(state_root),
        "WVO_WARM_START": "1" if warm else "0",
        "WVO_WARM_SHARED": "0",
        **more,
    }


def run(
    state_root: Path, *words: str, warm: bool, **more: str
) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", *words],
        cwd=ROOT,
        env=command_env(state_root, warm, **more),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=EXIT_DEADLINE_S,
        check=False,
    )


@pytest.mark.parametrize(
    "words",
    [("show", "NOPE"), ("tokens", "list"), ("task", "--bogus"), ("cancel", "--bogus")],
    ids=["refused", "answered", "unknown command", "unknown option"],
)
def test_a_forked_command_answers_and_exits_as_it_would_cold(
    state_root: Path, words: tuple[str, ...]
) -> None:
    start_warm(state_root)
    cold = run(state_root, *words, warm=False)
    warm = run(state_root, *words, warm=True)
    assert (warm.returncode, warm.stdout, warm.stderr) == (
        cold.returncode,
        cold.stdout,
        cold.stderr,
    )
    # The relay imported none of the commands: a process the warm process forked ran it.
    told = run(state_root, *words, warm=True, PYTHONPROFILEIMPORTTIME="1")
    assert told.returncode == cold.returncode
    assert "wvo_mcp.cli.entry" not in imported(told.stderr), told.stderr[-2000:]


def test_stop_is_never_handed_to_the_warm_process_it_stops(state_root: Path) -> None:
    warm = start_warm(state_root)
    stopped = run(state_root, "stop", warm=True, PYTHONPROFILEIMPORTTIME="1")
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    assert "wvo_mcp.cli.entry" in imported(stopped.stderr)  # run by the relay itself
    assert warm.wait(EXIT_DEADLINE_S) == 0


class HttpServe:
    """`wvo-mcp serve --http` on a free loopback port, listening; `forked`: the process the
    warm process forked for it (None when it runs cold, in the process started)."""

    def __init__(self, state_root: Path, warm: subprocess.Popen[bytes] | None) -> None:
        self.mark = uuid.uuid4().hex
        port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "wvo_mcp", "serve", "--http", "--no-auth",
             "--port", str(port)],
            cwd=ROOT,
            env=command_env(state_root, warm is not None, **{MARK: self.mark}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        until_listening(self.proc, port, lambda: "see its stderr")
        self.forked = None if warm is None else self._forked_by(warm.pid)

    def _forked_by(self, warm: int) -> int:
        def found() -> int | None:
            for child in children_of(warm):
                try:
                    environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                if f"{MARK}={self.mark}".encode() in environ:
                    return child
            return None

        pid: int = wait_for(found, "the server the warm process forked")
        return pid

    def ended(self) -> int:
        code = self.proc.wait(EXIT_DEADLINE_S)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_relay_reaches_its_command_which_ends_as_it_would_cold(
    state_root: Path, signum: int
) -> None:
    cold = HttpServe(state_root, None)
    cold.proc.send_signal(signum)
    expected = cold.ended()
    warm = start_warm(state_root)
    served = HttpServe(state_root, warm)
    forked = served.forked
    assert forked is not None
    served.proc.send_signal(signum)
    assert served.ended() == expected
    wait_for(lambda: not alive(forked), "the forked server gone")


def test_a_command_killed_by_a_signal_kills_its_relay_by_the_same(state_root: Path) -> None:
    served = HttpServe(state_root, start_warm(state_root))
    assert served.forked is not None
    os.kill(served.forked, signal.SIGKILL)
    assert served.ended() == -signal.SIGKILL


def test_a_relay_killed_outright_kills_its_command(state_root: Path) -> None:
    served = HttpServe(state_root, start_warm(state_root))
    assert served.forked is not None
    forked = served.forked
    served.proc.kill()
    assert served.ended() == -signal.SIGKILL
    wait_for(lambda: not alive(forked), "the forked server killed with its relay")
