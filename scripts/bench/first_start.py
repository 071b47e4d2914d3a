#!/usr/bin/env python
"""A client's wait for `wvo-mcp serve` over stdio, as Claude Code waits for it: from the
process's start to `initialize` answered (when its agent may use the server), to `tools/list`
answered, and to its first tool call answered, then the second and the tenth call's own time;
always in a fresh state folder (no database yet) but for "warm". Modes: "first", no warm
process anywhere (warm start on); "shared", the user's shared warm process of this build
listening (started by a client of another state folder); "cold", WVO_WARM_START=0; "warm",
the state folder's own warm process running. One and three clients at once, with the front
(cli/front.py: the first answers from the table while the server imports) and without it
(WVO_FRONT=0), alternating, in one run. Each sample has its own XDG_RUNTIME_DIR, so no
warm process of the person running it is used. With --busy N, N processes spin on the CPU and
one more starts short-lived processes the whole time, as other work on a laptop does. With
--baseline DIR, the tree at DIR (`git worktree add` or `git archive`, on this one's import
path) is measured beside this one, alternating.

    python -m scripts.bench.first_start                  # quiet, 5 samples of each
    python -m scripts.bench.first_start --busy 6         # beside a busy machine's load
    python -m scripts.bench.first_start --modes first,shared --at-once 1 --baseline /tmp/base
"""

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from scripts.bench.lib import SERVER_ARGS, BenchError, log

MODES = ("first", "shared", "cold", "warm")
CALLS = 10  # tool calls per client: the first, the second and the tenth are reported
INITIALIZE = {"protocolVersion": "2025-11-25", "capabilities": {},
              "clientInfo": {"name": "bench", "version": "1"}}  # fmt: skip
BUSY_S = 900  # a spinner's life at most: the load ends with the bench, or by then
SPAWNER = (
    f"import subprocess, time\nend = time.time() + {BUSY_S}\nwhile time.time() < end:\n"
    "    subprocess.run(['/bin/true'])\n"
)
SPINNER = f"import time\nend = time.time() + {BUSY_S}\nwhile time.time() < end:\n    pass\n"


def one(state_root: Path, env: dict[str, str], out: dict[str, float], tool: str) -> None:
    """A client's start: the seconds to each answer, into `out`."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *SERVER_ARGS], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"),
             "WVO_STATE_ROOT": str(state_root), "WVO_OTEL_ENABLED": "0", **env},
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    call = ("tools/call", {"name": tool, "arguments": {}})
    asked = [("initialize", "initialize", INITIALIZE), ("tools", "tools/list", {}),
             ("call", *call), *((f"call{n}", *call) for n in range(2, CALLS + 1))]  # fmt: skip
    try:
        for n, (name, method, params) in enumerate(asked, 1):
            line = {"jsonrpc": "2.0", "id": n, "method": method, "params": params}
            process.stdin.write(json.dumps(line).encode() + b"\n")
            if n == 1:
                process.stdin.flush()
                _answer(process, n)
                out[name] = time.perf_counter() - started
                process.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
                continue
            asked_at = time.perf_counter()
            process.stdin.flush()
            answer = _answer(process, n)
            out[name] = time.perf_counter() - (started if n <= 3 else asked_at)
        # The CPU the client's process and its server used through the last call.
        server = str(answer.get("structuredContent", {}).get("agent_id", "")).rpartition("-")[2]
        out["cpu"] = sum(_cpu(pid) for pid in {process.pid, int(server or process.pid)})
    finally:
        process.stdin.close()
        process.wait(30)
        process.stdout.close()


def _cpu(pid: int) -> float:
    """The seconds of CPU process `pid` has used (user and system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _answer(process: subprocess.Popen[bytes], n: int) -> dict[str, Any]:
    assert process.stdout is not None
    while True:
        line = process.stdout.readline()
        if not line:
            raise BenchError(f"the server ended before answering request {n}")
        found = json.loads(line)
        if found.get("id") == n:
            if "result" not in found or found["result"].get("isError"):
                raise BenchError(f"request {n} was refused: {line[:300]!r}")
            result: dict[str, Any] = found["result"]
            return result


def sample(
    scratch: Path, mode: str, front: bool, at_once: int, tool: str, tree: str | None
) -> list[dict[str, float]]:
    state_root = Path(tempfile.mkdtemp(dir=scratch))
    runtime = Path(tempfile.mkdtemp(dir=scratch))  # the user's runtime folder: its own
    env = {"WVO_FRONT": "1" if front else "0", "WVO_WARM_START": "0" if mode == "cold" else "1",
           "XDG_RUNTIME_DIR": str(runtime), **({"PYTHONPATH": tree} if tree else {})}  # fmt: skip
    folders = [state_root]
    if mode == "warm":  # a first client starts the warm process; the next are forked
        env["WVO_WARM_SHARED"] = "0"
        one(state_root, env, {}, tool)
        warm_listening([state_root], runtime)
    if mode == "shared":  # a client of another state folder starts the user's shared one
        folders.append(Path(tempfile.mkdtemp(dir=scratch)))
        one(folders[-1], env, {}, tool)
        warm_listening(folders, runtime)  # a tree before it: that folder's own
    found: list[dict[str, float]] = [{} for _ in range(at_once)]
    threads = [threading.Thread(target=one, args=(state_root, env, f, tool)) for f in found]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if mode != "cold":  # the warm process a first start started: stopped once it listens
        warm_listening(folders, runtime)
    for folder in folders:
        subprocess.run([sys.executable, *SERVER_ARGS[:-1], "stop"], env={**os.environ, **env,
                       "WVO_STATE_ROOT": str(folder)}, capture_output=True)  # fmt: skip
    stop_shared(runtime)
    if any(len(f) < CALLS + 3 for f in found):
        raise BenchError(f"{mode}: a client got no answer")
    return found


def warm_listening(folders: list[Path], runtime: Path) -> None:
    """Until a warm process listens: one of `folders`' own, or the shared one in `runtime`."""
    socks = [f"{f}/run/warm.sock" for f in folders] + [f"{runtime}/wvo-mcp/*/warm.sock"]
    deadline = time.monotonic() + 60
    while not any(any(Path("/").glob(sock.lstrip("/"))) for sock in socks):
        if time.monotonic() > deadline:
            raise BenchError(f"no warm process started for {folders} or in {runtime}")
        time.sleep(0.05)


def stop_shared(runtime: Path) -> None:
    """Ends the shared warm process of this sample's runtime folder, and its servers."""
    for sock in runtime.glob("wvo-mcp/*/warm.sock"):
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as conn:
            conn.connect(str(sock))
            pid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                      12))[0]  # fmt: skip
            os.kill(pid, signal.SIGTERM)


def end_warm(scratch: Path) -> None:
    """Ends the warm processes started in this run that no `stop` reached (one that began
    listening after it): each listening on a socket in `scratch`, by pidfd; not the servers
    they forked (they end with their clients), nor anything else."""
    for sock in scratch.rglob("warm.sock"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            try:
                conn.connect(str(sock))
                creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
                pidfd = os.pidfd_open(struct.unpack("3i", creds)[0])
            except OSError:
                continue  # none listens there now, or it ended meanwhile
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        except OSError:
            pass
        finally:
            os.close(pidfd)


def busy(count: int) -> list[subprocess.Popen[bytes]]:
    load = [subprocess.Popen([sys.executable, "-c", SPINNER]) for _ in range(count)]
    if count:
        load.append(subprocess.Popen([sys.executable, "-c", SPAWNER]))
    return load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--busy", type=int, default=0, help="CPU spinners beside it")
    parser.add_argument("--modes", default=",".join(MODES), help="of " + ",".join(MODES))
    parser.add_argument("--at-once", default="1,3", help="clients started at once")
    parser.add_argument("--fronts", default="front,no front", help="front, no front or both")
    parser.add_argument("--tool", default="plan_next", help="the tool called, no arguments")
    parser.add_argument("--baseline", type=Path, help="another tree measured beside this one")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not set(modes) <= set(MODES):
        parser.error(f"--modes: of {', '.join(MODES)}")
    fronts = [f.strip() == "front" for f in args.fronts.split(",") if f.strip()]
    trees: list[tuple[str, str | None]] = [("", None)]
    if args.baseline:
        trees.append(("baseline ", str(args.baseline.resolve())))
    results: dict[str, list[dict[str, float]]] = {}
    load = busy(args.busy)
    try:
        with tempfile.TemporaryDirectory(prefix="wvo-bench-first-") as scratch:
            for n in range(args.samples):
                order = trees if n % 2 == 0 else trees[::-1]
                for label, tree in order:
                    for front in fronts if n % 2 == 0 else fronts[::-1]:
                        for mode in modes:
                            for at_once in (int(a) for a in args.at_once.split(",")):
                                key = f"{label}{mode} x{at_once} {'front' if front else 'no front'}"
                                results.setdefault(key, []).extend(
                                    sample(Path(scratch), mode, front, at_once, args.tool, tree)
                                )
                log(f"sample {n + 1} of {args.samples}, load {os.getloadavg()[0]:.1f}")
            end_warm(Path(scratch))
    finally:
        for process in load:
            process.send_signal(signal.SIGKILL)
            process.wait()
    report(results, args.busy)
    if args.json:
        args.json.write_text(json.dumps(results))


def report(results: dict[str, list[dict[str, float]]], spinners: int) -> None:
    load = os.getloadavg()[0]
    print(f"seconds from start to each answer, median (max), {spinners} spinners beside it;")
    print("the second and the tenth call's own time in ms, median; the CPU seconds of the")
    print(f"client's process and its server through the tenth, median; load at the end {load:.1f}")
    heads = ("initialize", "tools/list", "first call")
    print(f"  {'':<32}" + "".join(f"{h:>15}" for h in heads) + f"{'2nd':>7}{'10th':>7}{'CPU':>7}")
    for key, rows in results.items():
        cells = []
        for name in ("initialize", "tools", "call"):
            values = [r[name] for r in rows]
            cells.append(f"{statistics.median(values):6.2f} ({max(values):5.2f})")
        later = [statistics.median(r[f"call{n}"] for r in rows) * 1000 for n in (2, CALLS)]
        cpu = statistics.median(r["cpu"] for r in rows)
        print(f"  {key:<32}" + "".join(f"{c:>15}" for c in cells)
              + "".join(f"{ms:7.1f}" for ms in later) + f"{cpu:7.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
