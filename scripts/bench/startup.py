#!/usr/bin/env python
"""Start-up of `wvo-mcp serve` over stdio, cold and with warm start (WVO_WARM_START=1, the
state folder's warm process already running): a fresh client process per sample (raw
JSON-RPC over pipes) from its start to `tools/list` answered, then, a second later, the
resident memory of the process the client started. With warm start that process is a relay
and the server is a child the warm process forked, whose pages are shared with it until
written: the child's RSS, PSS and USS (its private pages; /proc/PID/smaps_rollup) say what
it costs of its own.

    python -m scripts.bench.startup                 # 10 samples of each, alternating
    python -m scripts.bench.startup --samples 20 --json out.json
"""

import argparse
import json
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from scripts.bench.core import proc_status_kb
from scripts.bench.lib import SERVER_ARGS, BenchError, RawClient, log

SETTLE_S = 1.0  # the memory is read this long after tools/list: what an idle server holds
WARM_DEADLINE_S = 30.0
MODES = ("cold", "warm")


def smaps_kb(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        found[key] = int(value.split()[0])
    return found


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def served_by(client: RawClient) -> int:
    """The pid of the server answering: the default agent id is `<client name>-<pid>`."""
    return int(client.call("plan_next", {})["agent_id"].rsplit("-", 1)[1])


def sample(state_root: Path, mode: str, errlog: Any, warm_pids: set[int]) -> dict[str, float]:
    env = {
        "WVO_STATE_ROOT": str(state_root),
        "WVO_OTEL_ENABLED": "0",
        "WVO_WARM_START": "1" if mode == "warm" else "0",
    }
    started = time.perf_counter()
    client = RawClient(SERVER_ARGS, env, errlog)
    try:
        tools = client.request("tools/list", {})["tools"]
        took = time.perf_counter() - started
        if not tools:
            raise BenchError("tools/list answered no tools")
        time.sleep(SETTLE_S)
        started_pid = client.process.pid
        found = {"start_s": took, "rss_mib": proc_status_kb(started_pid, "VmRSS") / 1024}
        server = served_by(client)
        if (server != started_pid) != (mode == "warm"):
            raise BenchError(f"{mode}: served by {server}, started {started_pid}")
        if mode == "warm":
            warm_pids.add(parent(server))
            smaps = smaps_kb(server)
            warm = smaps_kb(parent(server))
            found |= {
                "child_rss_mib": smaps["Rss"] / 1024,
                "child_pss_mib": smaps["Pss"] / 1024,
                "child_uss_mib": (smaps["Private_Clean"] + smaps["Private_Dirty"]) / 1024,
                "warm_rss_mib": warm["Rss"] / 1024,
                "warm_pss_mib": warm["Pss"] / 1024,
            }
        else:
            found["server_pss_mib"] = smaps_kb(server)["Pss"] / 1024
        return found
    finally:
        client.close()


def warm_up(state_root: Path, errlog: Any) -> None:
    """The database made, and the warm process running: a first relay finds none, serves
    its client itself and starts one."""
    env = {"WVO_STATE_ROOT": str(state_root), "WVO_WARM_START": "1"}
    RawClient(SERVER_ARGS, env, errlog).close()
    warm_listening(state_root)


def warm_listening(state_root: Path) -> None:
    """Once the warm process a first relay started listens (a poll: it is another process)."""
    deadline = time.monotonic() + WARM_DEADLINE_S
    while not (state_root / "run" / "warm.sock").exists():
        if time.monotonic() > deadline:
            raise BenchError(f"no warm process started for {state_root}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    load_before = os.getloadavg()
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    warm_pids: set[int] = set()
    with tempfile.TemporaryDirectory(prefix="wvo-bench-startup-") as scratch:
        state_root = Path(scratch) / "state"
        errlog = open(Path(scratch) / "stderr.log", "w")  # noqa: SIM115 - closed below
        try:
            warm_up(state_root, errlog)
            for n in range(args.samples):
                for mode in MODES if n % 2 == 0 else reversed(MODES):
                    results[mode].append(sample(state_root, mode, errlog, warm_pids))
                log(f"sample {n + 1}: " + ", ".join(
                    f"{m} {results[m][-1]['start_s'] * 1000:.0f} ms" for m in MODES
                ))  # fmt: skip
        finally:
            for pid in warm_pids:
                os.kill(pid, signal.SIGTERM)
            errlog.close()
    load_after = os.getloadavg()
    report(results, load_before, load_after)
    if args.json:
        args.json.write_text(json.dumps({"samples": results, "load": [load_before, load_after]}))


def report(
    results: dict[str, list[dict[str, float]]],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    load = f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    print(f"`wvo-mcp serve` over stdio, median of {len(results['cold'])} samples ({load}):")
    for mode in MODES:
        rows = results[mode]
        for key in rows[0]:
            values = [row[key] for row in rows]
            median = statistics.median(values)
            low, high = min(values), max(values)
            if key == "start_s":
                median, low, high = median * 1000, low * 1000, high * 1000
            print(f"  {mode:<5} {key:<15} {median:8.1f}   ({low:.1f}-{high:.1f})")


if __name__ == "__main__":
    main()
