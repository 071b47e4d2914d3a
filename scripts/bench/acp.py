#!/usr/bin/env python
"""What an ACP worker's updates cost the autopilot: its CPU per `session/update` that the
driver (wvo_mcp/autopilot/acp_driver.py) turns into a line it reads, logs and shows live.

A real `wvo-mcp autopilot --until-empty` on a scratch repository, one worker slot, its
worker the stand-in ACP agent (fake_acp.py) in the real sandbox, working one task that first
sends N tool call updates (`fake: acp_flood`), against the same task with none. The
autopilot process's own CPU time (utime + stime of /proc/PID/stat, sampled until it exits:
not its children's, so neither the sandbox, the driver nor the agent) is compared:

    python -m scripts.bench.acp                   # 20,000 updates, 3 runs each
    python -m scripts.bench.acp --updates 2000 --runs 1

It prints the median CPU of each and the difference per update.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

from tests.autopilot.conftest import backlog, env, make_project
from tests.autopilot.test_acp_worker import acp_project

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float | None:
    """Seconds of CPU the process itself used, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def run(updates: int) -> float:
    with tempfile.TemporaryDirectory(prefix="wvo-bench-acp-") as scratch:
        project = acp_project(make_project(Path(scratch)))
        metadata = {"fake": "acp_flood", "fake_flood": updates} if updates else {}
        task: dict[str, object] = {"id": "B1", "title": "bench", "metadata": metadata}
        anyio.run(backlog, project, [task])
        process = subprocess.Popen(
            [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty",
             "--workers", "alpha:1"],
            env=env(project), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        used = 0.0
        while process.poll() is None:
            used = max(used, cpu_of(process.pid) or used)
            time.sleep(0.02)  # a sampling interval, not a wait for anything
        out = process.stdout.read() if process.stdout else ""
        if "1 launched, 1 done" not in out:
            raise SystemExit(f"the run did not land its task:\n{out[-2000:]}")
        return used


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    base = [run(0) for _ in range(args.runs)]
    flood = [run(args.updates) for _ in range(args.runs)]
    b, f = statistics.median(base), statistics.median(flood)
    for label, runs, median in (("no updates", base, b), (f"{args.updates} updates", flood, f)):
        shown = ", ".join(f"{x:.2f}" for x in runs)
        print(f"autopilot CPU, {label}: {median:.2f} s (runs: {shown})")
    print(f"per update: {(f - b) / args.updates * 1e6:.1f} µs of the autopilot's CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
