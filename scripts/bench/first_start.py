#!/usr/bin/env python
"""A client's wait for `wvo-mcp serve` over stdio, as Claude Code waits for it: from the
process's start to `initialize` answered (when its agent may use the server), to `tools/list`
answered, and to its first tool call answered; for a first start (a fresh state folder, no
warm process), a cold start (WVO_WARM_START=0), a warm start (the warm process running), and
three of each started at once; with the front (cli/front.py: the first answers from the
table while the server imports) and without it (WVO_FRONT=0), alternating, in one run. With
--busy N, N processes spin on the CPU and one more starts short-lived processes the whole
time, as other work on a person's laptop does.

    python -m scripts.bench.first_start                  # quiet, 5 samples of each
    python -m scripts.bench.first_start --busy 6         # beside a busy machine's load
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from scripts.bench.lib import SERVER_ARGS, BenchError, log

MODES = ("first", "cold", "warm")
INITIALIZE = {"protocolVersion": "2025-11-25", "capabilities": {},
              "clientInfo": {"name": "bench", "version": "1"}}  # fmt: skip
BUSY_S = 900  # a spinner's life at most: the load ends with the bench, or by then
SPAWNER = (
    f"import subprocess, time\nend = time.time() + {BUSY_S}\nwhile time.time() < end:\n"
    "    subprocess.run(['/bin/true'])\n"
)
SPINNER = f"import time\nend = time.time() + {BUSY_S}\nwhile time.time() < end:\n    pass\n"


def one(state_root: Path, env: dict[str, str], out: dict[str, float]) -> None:
    """A client's start: the seconds to each answer, into `out`."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *SERVER_ARGS], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"),
             "WVO_STATE_ROOT": str(state_root), "WVO_OTEL_ENABLED": "0", **env},
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    asked = [("initialize", "initialize", INITIALIZE), ("tools", "tools/list", {}),
             ("call", "tools/call", {"name": "plan_next", "arguments": {}})]  # fmt: skip
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
            process.stdin.flush()
            _answer(process, n)
            out[name] = time.perf_counter() - started
    finally:
        process.stdin.close()
        process.wait(30)
        process.stdout.close()


def _answer(process: subprocess.Popen[bytes], n: int) -> None:
    assert process.stdout is not None
    while True:
        line = process.stdout.readline()
        if not line:
            raise BenchError(f"the server ended before answering request {n}")
        if json.loads(line).get("id") == n:
            return


def sample(scratch: Path, mode: str, front: bool, at_once: int) -> list[dict[str, float]]:
    state_root = Path(tempfile.mkdtemp(dir=scratch))
    env = {"WVO_FRONT": "1" if front else "0", "WVO_WARM_START": "0" if mode == "cold" else "1"}
    if mode == "warm":  # a first client starts the warm process; the next are forked
        one(state_root, env, {})
        warm_listening(state_root)
    found: list[dict[str, float]] = [{} for _ in range(at_once)]
    threads = [threading.Thread(target=one, args=(state_root, env, f)) for f in found]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    subprocess.run([sys.executable, *SERVER_ARGS[:-1], "stop"], env={**os.environ,
                   "WVO_STATE_ROOT": str(state_root)}, capture_output=True)  # fmt: skip
    if any(len(f) < 3 for f in found):
        raise BenchError(f"{mode}: a client got no answer")
    return found


def warm_listening(state_root: Path) -> None:
    deadline = time.monotonic() + 60
    while not (state_root / "run" / "warm.sock").exists():
        if time.monotonic() > deadline:
            raise BenchError(f"no warm process started for {state_root}")
        time.sleep(0.05)


def busy(count: int) -> list[subprocess.Popen[bytes]]:
    load = [subprocess.Popen([sys.executable, "-c", SPINNER]) for _ in range(count)]
    if count:
        load.append(subprocess.Popen([sys.executable, "-c", SPAWNER]))
    return load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--busy", type=int, default=0, help="CPU spinners beside it")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {}
    load = busy(args.busy)
    try:
        with tempfile.TemporaryDirectory(prefix="wvo-bench-first-") as scratch:
            for n in range(args.samples):
                for front in (True, False) if n % 2 == 0 else (False, True):
                    for mode in MODES:
                        for at_once in (1, 3):
                            key = f"{mode} x{at_once} {'front' if front else 'no front'}"
                            results.setdefault(key, []).extend(
                                sample(Path(scratch), mode, front, at_once)
                            )
                log(f"sample {n + 1} of {args.samples}, load {os.getloadavg()[0]:.1f}")
    finally:
        for process in load:
            process.send_signal(signal.SIGKILL)
            process.wait()
    report(results, args.busy)
    if args.json:
        args.json.write_text(json.dumps(results))


def report(results: dict[str, list[dict[str, float]]], spinners: int) -> None:
    print(f"seconds from start to each answer, median (max), {spinners} spinners beside it:")
    print(f"  {'':<22}{'initialize':>18}{'tools/list':>18}{'first call':>18}")
    for key, rows in results.items():
        cells = []
        for name in ("initialize", "tools", "call"):
            values = [r[name] for r in rows]
            cells.append(f"{statistics.median(values):7.2f} ({max(values):5.2f})")
        print(f"  {key:<22}" + "".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
