"""How a client stops a stdio server: SIGINT, then SIGTERM, with stdin left open (Claude
Code does so). The server cleans up (leadership handed over, telemetry flushed) and exits
0; and it keeps stderr quiet, since a client shows every stderr line as an error."""

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HANG_SECONDS, POLL_DEADLINE_SECONDS, ROOT, fresh_env, open_db, serve_once

pytestmark = pytest.mark.process

EXIT_DEADLINE_S = HANG_SECONDS  # a guard against a hang, never a time to beat
INITIALIZE = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "lifecycle", "version": "1"},
}


class Server:
    """A real server on raw pipes; stdin stays open until the test ends."""

    def __init__(
        self, state_root: Path, preexec_fn: Callable[[], None] | None = None, **env: str
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "wvo_mcp", "serve"],
            cwd=ROOT,
            # The user's shared warm process only where a test asks for it (its own
            # XDG_RUNTIME_DIR): one would outlive the test and serve the next tests' folders.
            env={
                "WVO_STATE_ROOT": str(state_root),
                "PATH": "/usr/bin:/bin",
                "WVO_WARM_SHARED": "0",
                **env,
            },
            preexec_fn=preexec_fn,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.next_id = 0

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        assert self.proc.stdout is not None
        reply: dict[str, Any] = json.loads(self.proc.stdout.readline())
        assert reply.get("id") == self.next_id, reply
        return reply

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def start(self) -> None:
        self.request("initialize", INITIALIZE)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def stop(self, signum: int) -> tuple[int | None, str]:
        """Signal it with stdin still open; its exit code (None if it hung) and stderr."""
        self.proc.send_signal(signum)
        try:
            code: int | None = self.proc.wait(EXIT_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        stderr = self.proc.stderr.read().decode()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            pipe.close()
        return code, stderr


def _state(pid: int) -> str:
    """A process's state letter; Z once it is gone, as for a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def _leader(state_root: Path) -> Any:
    with open_db(state_root) as db:
        return db.execute("SELECT holder, expires_at FROM monitor_leader").fetchone()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_with_stdin_open_cleans_up_and_exits_0(
    state_root: Path, signum: signal.Signals
) -> None:
    server = Server(
        state_root,
        WVO_AUTOPILOT_HEALTH_INTERVAL_MS="200",
        WVO_OTEL_ENABLED="1",
        OTEL_BSP_SCHEDULE_DELAY="60000",  # spans stay in memory until the shutdown flush
    )
    server.start()
    called = server.request("tools/call", {"name": "plan_next", "arguments": {}})
    serving = int(called["result"]["structuredContent"]["agent_id"].rsplit("-", 1)[1])
    deadline = time.monotonic() + POLL_DEADLINE_SECONDS
    while _leader(state_root) is None:  # the monitor has taken the lead
        assert time.monotonic() < deadline, "no monitor leader"
        time.sleep(0.05)
    code, stderr = server.stop(signum)
    assert code == 0, stderr
    # The process the client started ends once every call is answered; on Linux the server
    # (its child, cli/handle.py) finishes its cleanup on its own, then ends.
    deadline = time.monotonic() + EXIT_DEADLINE_S
    while _state(serving) != "Z":
        assert time.monotonic() < deadline, "the server did not end"
        time.sleep(0.05)
    # Leadership handed over: its lease ends at the shutdown, not two intervals later.
    leader = _leader(state_root)
    expires = datetime.fromisoformat(leader["expires_at"].replace("Z", "+00:00"))
    assert expires <= datetime.now(UTC)
    # Telemetry flushed: the tool call's span reached the file at the shutdown.
    spans = (state_root / "telemetry" / "spans.jsonl").read_text().splitlines()
    assert any(json.loads(s)["name"] == "tools/call plan_next" for s in spans)
    assert "Traceback" not in stderr


def test_serve_is_quiet_on_stderr_unless_asked(state_root: Path) -> None:
    quiet = Server(state_root, WVO_AUTOPILOT_HEALTH_INTERVAL_MS="0")
    quiet.start()
    quiet.request("tools/call", {"name": "plan_next", "arguments": {}})
    code, stderr = quiet.stop(signal.SIGTERM)
    assert (code, stderr) == (0, "")  # migrations and "serving" are INFO

    told = Server(state_root, WVO_AUTOPILOT_HEALTH_INTERVAL_MS="0", WVO_LOG_LEVEL="info")
    told.start()
    told.request("tools/call", {"name": "plan_next", "arguments": {}})  # the server's own
    code, stderr = told.stop(signal.SIGTERM)
    assert code == 0 and "serving" in stderr


def test_a_bad_log_level_is_refused_at_start(state_root: Path) -> None:
    started = serve_once({"WVO_STATE_ROOT": str(state_root), "WVO_LOG_LEVEL": "loud"})
    assert started.returncode == 2 and "WVO_LOG_LEVEL" in started.stderr


def test_requests_from_a_file_are_answered_to_a_file(state_root: Path, tmp_path: Path) -> None:
    """stdin and stdout that are not pipes (a file, a terminal) go through the SDK's own
    transport: the answers are the same, and EOF ends the server cleanly."""
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
    ]
    requests, answers = tmp_path / "requests.jsonl", tmp_path / "answers.jsonl"
    requests.write_text("".join(json.dumps(line) + "\n" for line in lines) + "{broken\n")
    with requests.open("rb") as stdin, answers.open("wb") as stdout:
        done = subprocess.run(
            [sys.executable, "-P", "-m", "wvo_mcp", "serve"],
            cwd=ROOT,
            env=fresh_env({"WVO_STATE_ROOT": str(state_root), "PATH": "/usr/bin:/bin"}),
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    replies = {r.get("id"): r for r in map(json.loads, answers.read_text().splitlines())}
    assert replies[1]["result"]["serverInfo"]["name"] == "wvo-mcp"
    assert {t["name"] for t in replies[2]["result"]["tools"]} >= {"claim_task", "plan_next"}
    assert replies[None]["error"]["code"] == -32700  # the broken line, answered
