#!/usr/bin/env python
"""Claude Code's stop on a busy machine: real Claude Code sessions (the CLI pinned in
tests/claude_code/, headless, its model a scripted Messages API on 127.0.0.1 as in
tests/integration/test_claude_code.py) each work one task through wvo-mcp and end, beside
processes burning CPU that hold the 1-minute load average at --load or more. Each session's
debug log says how Claude Code stopped its server: SIGINT alone ("MCP server process exited
cleanly"), or SIGINT then SIGTERM 100 ms later ("SIGINT failed, sending SIGTERM"), then
SIGKILL 400 ms after that ("SIGTERM failed"). Sessions alternate between the modes asked
for: `cold` (WVO_WARM_START=0: the server is a child of the process Claude Code started) and
`warm` (the state folder's warm process forked the server).

With --raw N, N raw clients per mode follow (JSON-RPC on pipes): the milliseconds from
their SIGINT to the end of the process each started, which Claude Code sees only at its own
checks, every 50 ms.

The burners are started in this process's session, as Claude Code and a cold server are,
and each ends on its own after --max-minutes whatever becomes of this process; they are
killed when it ends. The load is read from /proc/loadavg every second while sessions run.

    python -m scripts.bench.claude_stop                      # 20 sessions each, cold and warm
    python -m scripts.bench.claude_stop --sessions 5 --modes cold --json out.json
    python -m scripts.bench.claude_stop --sessions 0 --raw 20   # raw clients' stops alone
"""

import argparse
import contextlib
import json
import os
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from scripts.bench.lib import BenchError, log, machine
from tests.integration.test_claude_code import (
    CLAUDE,
    RUN_TIMEOUT_S,
    ScriptedModel,
    _tool_results,
    claude_env,
    offers_ours,
    serve_model,
    worker_server,
)
from tests.integration.test_lifecycle import Server
from tests.integration.test_warm_start import start_warm, warm_pids

MODES = ("cold", "warm")
WARMUP_MAX_S = 400.0  # the 1-minute average nears a steady load in ~3 minutes
GONE_DEADLINE_S = 30.0  # for the server to finish on its own after its session
RAW_DEADLINE_S = 30.0  # for the process a raw client started to end after SIGINT
PROMPT = "Work the wvo-mcp loop: take one task and finish it."
SIGINT_SENT = "Sending SIGINT to MCP server process"
EXITED = "MCP server process exited cleanly"
SIGTERM_SENT = "SIGINT failed, sending SIGTERM"
SIGKILL_SENT = "SIGTERM failed, sending SIGKILL"
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z)")


@dataclass
class Session:
    mode: str
    ok: bool  # Claude Code ended with 0, the server connected and the task done
    stop: str  # "SIGINT alone", "SIGTERM", "SIGKILL", or "not seen"
    stop_ms: float | None  # SIGINT sent to the exit seen (Claude Code checks every 50 ms)
    load: tuple[float, float]  # the 1-minute load average as it began and as it ended
    left: bool  # a process of its server still there GONE_DEADLINE_S after the session
    seconds: float


def burner(seconds: float) -> subprocess.Popen[bytes]:
    """A process burning one CPU, for `seconds` at most."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    return subprocess.Popen([sys.executable, "-c", code])


def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


class LoadLog:
    """The 1-minute load average, read every second in a thread while it runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.wait(1.0):
            self.samples.append(load1())

    def __enter__(self) -> "LoadLog":
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join()


def roadmap(path: Path, tasks: int) -> None:
    lines = ["version: 1", "tasks:"]
    for n in range(tasks):
        lines += [f"  - id: S{n}", f'    title: "Task {n}"', "    depends_on: []"]
    path.write_text("\n".join(lines) + "\n")


def wvo(state_root: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(state_root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"wvo-mcp {' '.join(args)}: {done.stderr}")


def workspace(folder: Path) -> None:
    """The repository Claude Code works in: one of its own, with one commit."""
    folder.mkdir()
    for git in (["init", "-q"], ["-c", "user.name=bench", "-c", "user.email=bench@example.com",
                                 "commit", "-q", "--allow-empty", "-m", "start"]):  # fmt: skip
        subprocess.run(["git", *git], cwd=folder, check=True, capture_output=True)


def stamp(line: str) -> datetime | None:
    found = STAMP.match(line)
    return datetime.fromisoformat(found.group(1).replace("Z", "+00:00")) if found else None


def how_stopped(debug: Path) -> tuple[str, float | None]:
    """How Claude Code stopped the server, by its debug log, and the milliseconds from its
    SIGINT to the exit it saw (None unless SIGINT alone)."""
    said = [line for line in debug.read_text().splitlines() if 'MCP server "wvo"' in line]
    sent = next((line for line in said if SIGINT_SENT in line), None)
    if sent is None:
        return "not seen", None
    if any(SIGKILL_SENT in line for line in said):
        return "SIGKILL", None
    if any(SIGTERM_SENT in line for line in said):
        return "SIGTERM", None
    exited = next((line for line in said if EXITED in line), None)
    began, ended = stamp(sent), stamp(exited) if exited else None
    if began is None or ended is None:
        return "SIGINT alone", None
    return "SIGINT alone", (ended - began).total_seconds() * 1000


def naming(state_root: Path, but: set[int]) -> list[int]:
    """The live processes, other than `but`, whose environment names `state_root`: a
    server, or the process Claude Code started."""
    wanted = f"WVO_STATE_ROOT={state_root}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in but:
            continue
        with contextlib.suppress(OSError):  # gone, or not ours to read
            named = wanted in (entry / "environ").read_bytes()
            if named and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.append(int(entry.name))
    return found


def session(state_root: Path, folder: Path, mode: str, but: set[int]) -> Session:
    """One Claude Code session working one task, and how it stopped its server; `but`: the
    processes of `state_root` that are no server of its (this one, the warm process)."""
    folder.mkdir()
    server = worker_server(state_root, WVO_WARM_START="1" if mode == "warm" else "0")
    del server["env"]["WVO_AUTOPILOT_HEALTH_INTERVAL_MS"]  # the default: every 60 s
    config = folder / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"wvo": server}}))
    (folder / "home").mkdir()
    debug = folder / "debug.log"
    model = ScriptedModel()
    api = serve_model(model)
    began, load_before = time.monotonic(), load1()
    try:
        run = subprocess.run(
            [str(CLAUDE), "-p", PROMPT, "--mcp-config", str(config), "--strict-mcp-config",
             "--allowedTools", "mcp__wvo__*", "--output-format", "stream-json", "--verbose",
             "--debug-file", str(debug)],
            env=claude_env(api, folder / "home", os.environ.get("PATH", "/usr/bin:/bin"),
                           MCP_TIMEOUT="60000"),  # the start is not what is measured here
            cwd=state_root.parent / "work",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )  # fmt: skip
    finally:
        api.shutdown()
        api.server_close()
    seconds = time.monotonic() - began
    load = (load_before, load1())
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    init: dict[str, Any] = next((line for line in lines if line.get("subtype") == "init"), {})
    connected = init.get("mcp_servers") == [{"name": "wvo", "status": "connected"}]
    turns = [r for r in model.requests if offers_ours(r)]
    worked = bool(turns) and len(_tool_results(turns[-1].get("messages", []))) == 3
    ok = run.returncode == 0 and connected and worked
    if not ok:
        log(f"{mode}: the session failed ({run.returncode}): {run.stderr[-2000:]}")
    stop, stop_ms = how_stopped(debug) if debug.exists() else ("not seen", None)
    deadline = time.monotonic() + GONE_DEADLINE_S
    while (left := bool(naming(state_root, but))) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling: the server finishes on its own
    return Session(mode, ok, stop, stop_ms, load, left, seconds)


def raw_stop(state_root: Path, mode: str) -> float:
    """Milliseconds from SIGINT to the end of the process a raw client (JSON-RPC on pipes, as
    tests/integration/test_lifecycle.py's) started, its server idle after a call: what
    Claude Code waits for, without its own checks every 50 ms."""
    client = Server(state_root, WVO_WARM_START="1" if mode == "warm" else "0")
    try:
        client.start()
        client.request("tools/call", {"name": "plan_next", "arguments": {}})
        pidfd = os.pidfd_open(client.proc.pid)
        try:
            began = time.monotonic()
            client.proc.send_signal(signal.SIGINT)
            select.select([pidfd], [], [], RAW_DEADLINE_S)  # readable once it has ended
            return (time.monotonic() - began) * 1000
        finally:
            os.close(pidfd)
    finally:
        client.proc.kill()  # ended already, but for a hang
        client.proc.wait()
        for pipe in (client.proc.stdin, client.proc.stdout, client.proc.stderr):
            if pipe is not None:
                pipe.close()


def warm_up(target: float) -> None:
    """Wait until the 1-minute load average reaches `target`."""
    deadline = time.monotonic() + WARMUP_MAX_S
    while (found := load1()) < target:
        if time.monotonic() > deadline:
            raise BenchError(f"the 1-minute load is {found} after {WARMUP_MAX_S:g} s: more burners")
        time.sleep(1.0)  # polling: the average rises on its own
    log(f"load {Path('/proc/loadavg').read_text().strip()}")


def report(
    sessions: list[Session], raw: dict[str, list[float]], loads: list[float]
) -> dict[str, Any]:
    found: dict[str, Any] = {"load_1min": {"min": min(loads), "median": statistics.median(loads),
                                           "max": max(loads)} if loads else None}  # fmt: skip
    print(f"1-minute load average while sessions ran: {found['load_1min']}")
    for mode in sorted({s.mode for s in sessions}):
        mine = [s for s in sessions if s.mode == mode]
        counts = {k: sum(s.stop == k for s in mine)
                  for k in ("SIGINT alone", "SIGTERM", "SIGKILL", "not seen")}  # fmt: skip
        waits = sorted(s.stop_ms for s in mine if s.stop_ms is not None)
        found[mode] = {
            "sessions": len(mine),
            "ok": sum(s.ok for s in mine),
            "stops": counts,
            "left": sum(s.left for s in mine),
            "sigint_to_exit_seen_ms": waits,
        }
        print(f"{mode}: {counts['SIGINT alone']} of {len(mine)} stopped by SIGINT alone; "
              f"{counts['SIGTERM']} needed SIGTERM, {counts['SIGKILL']} SIGKILL, "
              f"{counts['not seen']} not seen; {found[mode]['ok']} ok; "
              f"{found[mode]['left']} left a process; SIGINT to exit seen (ms): "
              f"{' '.join(f'{w:.0f}' for w in waits)}")  # fmt: skip
    for mode, took in sorted(raw.items()):
        took.sort()
        found[f"raw_{mode}_ms"] = took
        print(f"{mode}, a raw client: SIGINT to the end of the process it started (ms): median "
              f"{statistics.median(took):.0f}, max {took[-1]:.0f}, {sum(t > 100 for t in took)} "
              f"of {len(took)} past 100: {' '.join(f'{t:.0f}' for t in took)}")  # fmt: skip
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20, help="per mode")
    parser.add_argument("--modes", default="cold,warm", help="cold, warm or both (cold,warm)")
    parser.add_argument("--raw", type=int, default=0, help="raw clients' stops per mode, after")
    parser.add_argument("--burners", type=int, default=14)
    parser.add_argument("--load", type=float, default=12.0, help="the 1-minute load to reach")
    parser.add_argument("--max-minutes", type=float, default=60.0, help="the burners' life")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not CLAUDE.exists() or set(modes) - set(MODES):
        raise BenchError("the Claude Code CLI is not installed, or an unknown mode")

    def ended(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(1)  # the burners are killed on the way out

    signal.signal(signal.SIGTERM, ended)
    sessions: list[Session] = []
    raw: dict[str, list[float]] = {mode: [] for mode in modes} if args.raw else {}
    burners: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="claude-stop-") as tmp:
        state_root = Path(tmp) / "state"
        workspace(Path(tmp) / "work")
        roadmap(Path(tmp) / "roadmap.yaml", args.sessions * len(modes) + 5)
        wvo(state_root, "import", str(Path(tmp) / "roadmap.yaml"))
        loads = LoadLog()
        but = {os.getpid()}
        try:
            if "warm" in modes:
                but.add(start_warm(state_root).pid)
            burners = [burner(args.max_minutes * 60) for _ in range(args.burners)]
            log(f"{args.burners} burners; waiting for a 1-minute load of {args.load:g}")
            warm_up(args.load)
            with loads:
                for n in range(args.sessions * len(modes)):
                    mode = modes[n % len(modes)]
                    found = session(state_root, Path(tmp) / f"s{n}", mode, but)
                    sessions.append(found)
                    log(f"{n + 1}: {mode} {found.stop} {found.stop_ms} ms, load {found.load}, "
                        f"{found.seconds:.1f} s{'' if found.ok else ', FAILED'}")  # fmt: skip
                for n in range(args.raw * len(modes)):
                    mode = modes[n % len(modes)]
                    raw[mode].append(raw_stop(state_root, mode))
                    log(f"raw {n + 1}: {mode} {raw[mode][-1]:.0f} ms, load {load1()}")
        finally:
            for each in burners:
                each.kill()
            for each in burners:
                each.wait()
            for pid in warm_pids(state_root):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    results = report(sessions, raw, loads.samples)
    if args.json:
        details = {"machine": machine(), "burners": args.burners, "target_load": args.load}
        args.json.write_text(
            json.dumps({**details, **results, "sessions": [asdict(s) for s in sessions]})
        )


if __name__ == "__main__":
    main()
