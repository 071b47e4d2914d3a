"""A sandboxed command attacks warm start's socket (WVO_WARM_START): whoever connects there
hands the warm process an environment and arguments it forks a server with, so a command
that reached it could start a server of its choosing on the trusted state folder. The
socket lives in the state folder's `run/`, which a sandboxed command never sees."""

import os
import signal
from pathlib import Path

import pytest

from tests.conftest import alive, children_of, connect, wait_for
from tests.integration.test_warm_start import listening, start_warm, warm_pids
from tests.security.test_sandbox_boundaries import QUIET, sandboxed, tree
from wvo_mcp.cli import warm_relay
from wvo_mcp.sandbox import bwrap

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.process,
    pytest.mark.skipif(not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}"),
]

CONNECT = """
import socket, sys
for path in sys.argv[1:]:
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(b'{"argv": ["serve"], "env": {}}\\n')
        print("CONNECTED", path)
    except OSError as exc:
        print("REFUSED", path, type(exc).__name__)
"""


async def test_a_sandboxed_command_cannot_reach_the_warm_process(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    state = workspace / ".wvo"  # where `wvo-mcp init` puts it: inside the workspace
    warm = start_warm(state)
    run = warm_relay.run_dir(state)
    socket_path = run / warm_relay.SOCKET
    try:
        async with connect(state, WVO_WORKSPACE_ROOT=workspace, **QUIET) as agent:
            before_run = tree(run)
            result = await sandboxed(
                agent,
                [
                    "sh",
                    "-c",
                    'ls -A .wvo; [ -e .wvo/run/warm.sock ] && echo "SEES SOCKET"; '
                    '[ -e "$1" ] && echo "SEES HOST SOCKET"; '
                    'python3 -c "$2" .wvo/run/warm.sock "$1" || echo NOPYTHON; '
                    "mkdir -p .wvo/run 2>/dev/null && echo MKDIR; echo finished",
                    "sh",
                    str(socket_path),
                    CONNECT,
                ],
            )
        out = result["stdout_tail"]
        assert result["exit_code"] == 0 and "finished" in out, result
        assert "SEES" not in out and "CONNECTED" not in out and "MKDIR" not in out, out
        # The attack ran (python is there), and both of its paths were refused.
        assert out.count("REFUSED") == 2, out
        # The host: the warm process handed nothing to anyone, and still listens as before.
        assert children_of(warm.pid) == []
        assert alive(warm.pid) and listening(state)
        assert tree(run) == before_run
    finally:
        for pid in warm_pids(state):
            os.kill(pid, signal.SIGKILL)
        warm.wait(10)
        wait_for(lambda: not any(alive(pid) for pid in warm_pids(state)), "warm gone")
