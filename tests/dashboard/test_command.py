"""`wvo-mcp dashboard` as a person starts it: the URL it prints answers at once, a busy port is
one line saying what to do, and the server's root leads to the board."""

import selectors
import socket
import subprocess
import sys
from pathlib import Path

import httpx2

from tests.conftest import CLI_TIMEOUT_SECONDS, POLL_DEADLINE_SECONDS, ROOT, wvo
from tests.http.conftest import free_port, server_env


def dashboard(state_root: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(state_root), "dashboard",
         "--no-auth", "--port", str(port)],
        cwd=ROOT, env=server_env(WVO_OTEL_ENABLED="0"), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def first_line(process: subprocess.Popen[str]) -> str:
    """The first line the process prints, or a failure once the deadline passes."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as ready:
        ready.register(process.stdout, selectors.EVENT_READ)
        assert ready.select(POLL_DEADLINE_SECONDS * 3), "the dashboard printed nothing"
    return process.stdout.readline()


def test_the_printed_url_answers_and_the_root_leads_to_the_board(state_root: Path) -> None:
    assert wvo(state_root, "status").returncode == 0  # a migrated database
    port = free_port()
    with dashboard(state_root, port) as process:
        try:
            url = f"http://127.0.0.1:{port}/dashboard"
            assert first_line(process) == f"dashboard: {url}\n"
            # Printed only once the port listens: the first connection is taken, no retry.
            socket.create_connection(("127.0.0.1", port), timeout=CLI_TIMEOUT_SECONDS).close()
            with httpx2.Client(timeout=CLI_TIMEOUT_SECONDS) as http:
                root = http.get(f"http://127.0.0.1:{port}/")
                assert root.status_code == 307 and root.headers["location"] == "/dashboard"
                board = http.get(f"http://127.0.0.1:{port}/", follow_redirects=True)
                assert board.status_code == 200 and str(board.url) == url
                assert "text/html" in board.headers["content-type"]
        finally:
            process.terminate()


def test_a_busy_port_is_one_line_and_no_url(state_root: Path) -> None:
    assert wvo(state_root, "status").returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = dashboard(state_root, port)
        out, err = process.communicate(timeout=CLI_TIMEOUT_SECONDS)
    assert process.returncode == 2
    assert out == ""
    assert err.splitlines() == [
        f"wvo-mcp: port {port} on 127.0.0.1 is in use: pass --port N for a free one, or stop "
        "what listens there"
    ]
