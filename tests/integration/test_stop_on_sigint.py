"""A client's SIGINT ends its stdio server on its own, whatever the server is doing and however
busy the machine. Claude Code sends SIGINT, and SIGTERM if the process it started is still
there 100 ms later ("SIGINT failed" in its debug log), then SIGKILL 400 ms after that. The
process it started is a small handle (cli/handle.py) whose server runs in a child: the
handle passes the signal on and ends at once, waiting for nothing the server does, and the
server, which holds the client's pipes too, answers each call it was serving and cleans up
on its own."""

import fcntl
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, alive, open_db, parent_of, wait_for, wvo
from tests.integration.test_claude_code import (
    CLAUDE,
    RUN_TIMEOUT_S,
    ScriptedModel,
    _tool_results,
    assert_done_by,
    claude_env,
    offers_ours,
    serve_model,
    worker_server,
)
from tests.integration.test_lifecycle import EXIT_DEADLINE_S, Server
from tests.integration.test_warm_start import Relay, cleanup, start_warm
from wvo_mcp.backups import servers_lock_path

pytestmark = pytest.mark.process
__all__ = ["cleanup"]  # the fixture, used by name

# Processes burning one CPU beside Claude Code and its server, which run on it alone: a load
# of 8 or more there, as 14 made on two cores, while the rest of the suite has the others.
# Niced, as a person's background build is: at Claude Code's own priority they starve Node
# itself, which then reads its 100 ms wait for the server's end as over before it has seen
# even a server that left at once (libuv runs its due timers before it reaps a child).
BUSY = 7
BUSY_NICE = 10
ONE_CPU = {max(os.sched_getaffinity(0))}


def on_one_cpu() -> None:
    """In a child before it runs: ONE_CPU only, as `taskset` would start it."""
    os.sched_setaffinity(0, ONE_CPU)


def burning() -> None:
    """In a burner before it runs: ONE_CPU only, niced by BUSY_NICE."""
    on_one_cpu()
    os.nice(BUSY_NICE)


def stopped_by_sigint(server: Server) -> tuple[int, str]:
    """SIGINT alone, as a client sends it first: the exit code and stderr of the process the
    client started. Not ended within EXIT_DEADLINE_S (a guard against a hang, not a time to
    beat), it gets SIGTERM, as Claude Code sends next, and the test fails."""
    server.proc.send_signal(signal.SIGINT)
    try:
        code = server.proc.wait(EXIT_DEADLINE_S)
    except subprocess.TimeoutExpired:
        ended, stderr = server.stop(signal.SIGTERM)
        pytest.fail(f"SIGINT did not end the server; SIGTERM was needed ({ended}): {stderr}")
    assert server.proc.stdin and server.proc.stdout and server.proc.stderr
    stderr = server.proc.stderr.read().decode()
    for pipe in (server.proc.stdin, server.proc.stdout, server.proc.stderr):
        pipe.close()
    return code, stderr


def waiting_for(lock: Path) -> list[int]:
    """The processes blocked on a flock of `lock` (/proc/locks marks them `->`)."""
    inode = f":{os.stat(lock).st_ino}"
    found = []
    for line in Path("/proc/locks").read_text().splitlines():
        words = line.split()
        where = next((i for i, w in enumerate(words) if w.endswith(inode)), None)
        if "->" in words and where is not None:
            found.append(int(words[where - 1]))
    return found


def holds_the_server(pid: int) -> bool:
    """Whether process `pid` has loaded the server (the SDK's pydantic core)."""
    return "_pydantic_core" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.usefixtures("cleanup")
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "forked by the warm process"])
def test_sigint_while_the_server_starts_ends_it_at_once_with_0(
    state_root: Path, warm: bool
) -> None:
    """SIGINT before the server serves (here it waits for the servers lock, which `restore`
    holds while it restores; importing and opening the database are alike) ends it with 0,
    quietly, on its own: no KeyboardInterrupt and its traceback, no interpreter shutdown
    joining the threads that import or open the database."""
    state_root.mkdir(parents=True)
    if warm:
        start_warm(state_root)
    lock = servers_lock_path(state_root / "orchestrator.db")
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        server = Server(state_root, WVO_WARM_START="1" if warm else "0")
        [waiting] = wait_for(lambda: waiting_for(lock), "the server waiting for the lock")
        assert stopped_by_sigint(server) == (0, "")
    wait_for(lambda: not alive(waiting), "the server gone")


@pytest.mark.usefixtures("cleanup")
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "forked by the warm process"])
def test_the_process_a_client_starts_holds_no_server_and_ends_on_sigint_with_0(
    state_root: Path, warm: bool
) -> None:
    """What a client waits for after SIGINT is the end of the process it started, and a
    process holding the server (~80 MB) is slow to end on a busy machine: the kernel frees
    its memory first, 14-340 ms beside 14 busy processes on two cores. So that process
    never loads the server, cold or warm; the server, idle, ends just after it."""
    if warm:
        start_warm(state_root)
    server = Server(state_root, WVO_WARM_START="1" if warm else "0")
    server.start()
    called = server.request("tools/call", {"name": "plan_next", "arguments": {}})
    serving = int(called["result"]["structuredContent"]["agent_id"].rsplit("-", 1)[1])
    assert holds_the_server(serving)
    assert not holds_the_server(server.proc.pid)
    assert stopped_by_sigint(server) == (0, "")
    wait_for(lambda: not alive(serving), "the server gone")


def state_of(pid: int) -> str:
    """A process's state letter (T: stopped by SIGSTOP); Z once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def lease_of_the_monitor(state_root: Path) -> datetime | None:
    """When the health monitor's leadership lease ends; None while no server leads it."""
    with open_db(state_root) as db:
        found = db.execute("SELECT expires_at FROM monitor_leader").fetchone()
    return None if found is None else datetime.fromisoformat(found[0].replace("Z", "+00:00"))


@pytest.mark.usefixtures("cleanup")
@pytest.mark.parametrize(
    ("warm", "signum"),
    [(False, signal.SIGINT), (True, signal.SIGINT), (False, signal.SIGTERM)],
    ids=["cold", "forked by the warm process", "cold, SIGTERM"],
)
def test_the_process_a_client_starts_ends_on_its_signal_while_its_server_never_runs(
    state_root: Path, warm: bool, signum: signal.Signals
) -> None:
    """On a busy machine a server may not run for the 100 ms Claude Code gives the process it
    started; here it is stopped (SIGSTOP) for as long as the test likes. The process the
    client started ends on the client's signal with 0 all the same, waiting for nothing the
    server does. The server, let run again, answers the call it was serving (a done waiting
    for its turn to write) with that call's own result on the client's pipe, hands the health
    monitor's leadership over and ends on its own: the handle's end is no kill to it."""
    if warm:
        start_warm(state_root)
    client = Relay(
        state_root, WVO_WARM_START="1" if warm else "0", WVO_AUTOPILOT_HEALTH_INTERVAL_MS="200"
    )
    server = client.server_pid()
    assert (parent_of(server) == client.proc.pid) is not warm
    client.call("task_create", tasks=[{"id": "T1", "title": "t"}])
    claim = client.call("claim_task")
    wait_for(lambda: lease_of_the_monitor(state_root), "the server leading the health monitor")
    [lock] = state_root.glob("*.writers.lock")
    with lock.open("a") as queue:
        fcntl.flock(queue, fcntl.LOCK_EX)  # every write of every server waits for its turn
        done = {"task_id": "T1", "lease_token": claim["lease_token"], "status": "done"}
        params = {"name": "plan_update", "arguments": done}
        client.send({"jsonrpc": "2.0", "id": 100, "method": "tools/call", "params": params})
        # Answered after the done was read (lines are read in order): the done is in flight.
        assert client.request("ping", {})["result"] == {}
        os.kill(server, signal.SIGSTOP)
        wait_for(lambda: state_of(server) == "T", "the server stopped")
        client.proc.send_signal(signum)
        try:
            code = client.proc.wait(EXIT_DEADLINE_S)  # a guard against a hang, no time to beat
        except subprocess.TimeoutExpired:
            os.kill(server, signal.SIGCONT)
            pytest.fail("the process the client started waited for its server to run")
        assert code == 0
        assert state_of(server) == "T"  # it ended while its server did nothing
    os.kill(server, signal.SIGCONT)
    assert client.proc.stdout is not None and client.proc.stderr is not None
    answer = json.loads(client.proc.stdout.readline())
    assert answer.get("id") == 100 and "result" in answer, answer
    assert answer["result"]["structuredContent"]["status"] == "done", answer
    assert client.proc.stdout.readline() == b""  # the server's end closes the client's pipes
    assert client.proc.stderr.read() == b""
    wait_for(lambda: not alive(server), "the server gone")
    lease = lease_of_the_monitor(state_root)
    assert lease is not None and lease <= datetime.now(UTC)  # handed over at its shutdown
    for pipe in (client.proc.stdin, client.proc.stdout, client.proc.stderr):
        if pipe is not None:
            pipe.close()


# A server's thread that waits on its handle's end (handle.told_by), in a process of its own.
HANDLE_ENDS = """
import socket, sys
from wvo_mcp.cli import handle
mine, its = socket.socketpair()
mine.sendall(sys.argv[1].encode())
mine.close()
handle._stop_when_gone(its)
print("serving on")
"""


@pytest.mark.parametrize(
    ("said", "stopped"),
    [("left\n", False), ("", True), ("lef", True), ("right\n", True)],
    ids=["left after passing a stop on", "gone without a word", "a word cut short", "another"],
)
def test_a_server_whose_handle_is_gone_stops_itself_unless_its_handle_passed_a_stop_on(
    said: str, stopped: bool
) -> None:
    """A handle gone without a word (killed) stops its server as SIGTERM does. One that passed
    its client's SIGINT or SIGTERM on and left says so first: its end is no second signal,
    which would make the server cancel the calls it is answering."""
    ended = subprocess.run(
        [sys.executable, "-P", "-c", HANDLE_ENDS, said],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=EXIT_DEADLINE_S,
        check=False,
    )
    if stopped:
        assert (ended.returncode, ended.stdout) == (-signal.SIGTERM, ""), ended
    else:
        assert (ended.returncode, ended.stdout) == (0, "serving on\n"), ended


class BusyModel(ScriptedModel):
    """The scripted model, which makes Claude Code's CPU busy once it has connected its
    server (under that load a cold server's start outlasts Claude Code's wait for it): BUSY
    processes burning ONE_CPU (niced), which stop() ends."""

    def __init__(self) -> None:
        super().__init__()
        self.busy: list[subprocess.Popen[bytes]] = []
        self.stopped = False

    def reply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        with self.lock:
            if offers_ours(body) and not self.busy and not self.stopped:
                self.busy = [
                    subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=burning)
                    for _ in range(BUSY)
                ]
        return super().reply(body)

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            for burner in self.busy:
                burner.kill()
            for burner in self.busy:
                burner.wait()


def naming(state_root: Path, but: set[int]) -> list[int]:
    """The live processes whose environment names `state_root` (a server, or the process
    Claude Code started), other than `but`."""
    wanted = f"WVO_STATE_ROOT={state_root}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in but:
            continue
        try:
            named = wanted in (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if named and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not CLAUDE.exists(), reason="the Claude Code CLI is not installed")
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "forked by the warm process"])
@pytest.mark.usefixtures("cleanup")  # its warm process ends with it, not in another's teardown
def test_claude_code_ends_its_server_with_sigint_alone_on_a_busy_machine(
    state_root: Path, tmp_path: Path, warm: bool
) -> None:
    """The real Claude Code works a task through wvo-mcp on the product's defaults (health
    monitor on) beside BUSY niced processes burning its one CPU, and ends its session: its log
    shows it sending SIGINT and never "SIGINT failed" (nor "SIGTERM failed"), and no process
    of the server is left."""
    imported = wvo(state_root, "import", str(ROOT / "state" / "roadmap.yaml"))
    assert imported.returncode == 0, imported.stderr
    warm_pid = start_warm(state_root).pid if warm else None
    server = worker_server(state_root, WVO_WARM_START="1" if warm else "0")
    del server["env"]["WVO_AUTOPILOT_HEALTH_INTERVAL_MS"]  # the default: every 60 s
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"wvo": server}}))
    (tmp_path / "home").mkdir()
    debug = tmp_path / "debug.log"
    model = BusyModel()
    api = serve_model(model)
    try:
        run = subprocess.run(
            [str(CLAUDE), "-p", "Work the wvo-mcp loop: take one task and finish it.",
             "--mcp-config", str(config), "--strict-mcp-config", "--allowedTools",
             "mcp__wvo__*", "--output-format", "stream-json", "--verbose",
             "--debug-file", str(debug)],
            cwd=ROOT,
            env=claude_env(api, tmp_path / "home", os.environ.get("PATH", "/usr/bin:/bin")),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            preexec_fn=on_one_cpu,  # and the servers it starts, forked warm or not
        )  # fmt: skip
    finally:
        model.stop()
        api.shutdown()
        api.server_close()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    init = next(line for line in lines if line.get("subtype") == "init")
    assert init["mcp_servers"] == [{"name": "wvo", "status": "connected"}], init
    turns = [r for r in model.requests if "mcp__wvo__claim_task" in str(r.get("tools"))]
    claim = json.loads(_tool_results(turns[-1]["messages"])[1])
    assert_done_by(state_root, claim["task"]["id"], "claude-1")
    said = [line for line in debug.read_text().splitlines() if 'MCP server "wvo"' in line]
    assert any("Sending SIGINT to MCP server process" in line for line in said), said
    assert not [line for line in said if "failed, sending" in line], said
    others = {os.getpid(), *([warm_pid] if warm_pid else [])}
    wait_for(lambda: not naming(state_root, others), "no process of the server left")
