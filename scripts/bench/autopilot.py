#!/usr/bin/env python
"""What the autopilot costs: its overhead per task, its CPU while workers run, and how soon a
crashed worker's task runs again.

    python -m scripts.bench.autopilot                 # 80 tasks, 8 workers
    python -m scripts.bench.autopilot --tasks 20 --workers 4 --json out.json --keep

A real `wvo-mcp autopilot --until-empty` runs on a fresh git repository with 8 slots of the
fake Claude Code worker (wvo_mcp/autopilot/fake.py: its own wvo-mcp server, a checkpoint, a
commit, done; no model). One task in ten crashes on its first attempt, after its checkpoint.
Figures come from the database's event times (milliseconds) and /proc:

- claim → worker started: the autopilot's part (the worktree, the prompt, the MCP config),
  up to the config's write just before the spawn;
- claim → first checkpoint: that plus the worker's own start (its Python, its MCP client and
  its wvo-mcp server) up to its first call;
- done → the slot's next claim: the worker's own exit (its MCP client closing its server)
  plus the autopilot noticing the end and launching again; worker exit → next claim (from
  the exit line the autopilot writes in each run log) is the autopilot's part alone;
- crash → claimed again: a failed attempt (retry back-off set to 0 here) to the next claim;
- the autopilot process's CPU (utime + stime) over the run, per task and as a share of a core.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from scripts.bench import project
from scripts.bench.lib import ROOT, proc_cpu_seconds
from wvo_mcp.models import TaskSpec


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def setup(work: Path, tasks: int, workers: int) -> dict[str, str]:
    repo = project.repository(work / "repo", {"README.md": "bench\n"}, "start")
    wrapper = project.fake_worker(work / "fake-claude")
    # Tier big is where a failed attempt goes next (routing escalates).
    tiers = (("small", "fake-small", 0.001, 0.002), ("big", "fake-big", 0.002, 0.004))
    providers = project.providers_file(work / "providers.yaml", "fake", workers, wrapper, tiers)
    state = work / "state"
    env = {
        **project.autopilot_env(work, state, repo, providers, workers),
        "WVO_RETRY_BASE_SECONDS": "0",
    }
    specs = [
        TaskSpec(
            id=f"T{i:03d}",
            title=f"task {i}",
            metadata={"fake": "crash_once"} if i % 10 == 5 else {},
        )
        for i in range(tasks)
    ]
    project.create_tasks(state, specs)
    return env


def run_autopilot(env: dict[str, str], work: Path) -> tuple[float, float, str]:
    started = time.monotonic()
    output = work / "autopilot.out"
    with output.open("w") as out:
        pilot = subprocess.Popen(
            [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        cpu = 0.0
        while pilot.poll() is None:  # the last reading before it ends, every 50 ms
            with contextlib.suppress(OSError):
                cpu = proc_cpu_seconds(pilot.pid)
            time.sleep(0.05)
    text = output.read_text()
    if pilot.returncode != 0:
        raise SystemExit("the autopilot failed:\n" + text[-4000:])
    return time.monotonic() - started, cpu, text


def at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def figures(state: Path) -> dict[str, list[float]]:
    db = sqlite3.connect(state / "orchestrator.db")
    events = db.execute(
        "SELECT task_id, at, actor, kind, to_status FROM task_events ORDER BY id"
    ).fetchall()
    first_checkpoint = dict(
        db.execute("SELECT task_id, min(created_at) FROM checkpoints GROUP BY task_id")
    )
    claims: dict[str, float] = {}
    to_checkpoint, to_spawn, relaunch, crash_to_claim = [], [], [], []
    slot_done: dict[str, float] = {}
    crashed: dict[str, float] = {}
    for task_id, when, actor, kind, to_status in events:
        moment = at(when)
        if kind == "claimed":
            claims.setdefault(task_id, moment)
            if actor in slot_done:
                relaunch.append(moment - slot_done.pop(actor))
            if task_id in crashed:
                crash_to_claim.append(moment - crashed.pop(task_id))
        elif to_status == "done":
            slot_done[actor] = moment
        elif to_status in ("pending", "failed") and kind == "status":
            crashed[task_id] = moment
            slot_done[actor] = moment
    for task_id, first in first_checkpoint.items():
        if task_id in claims:
            to_checkpoint.append(at(first) - claims[task_id])
            # The worker's MCP config is written just before it is started.
            spawned = (state / "runs" / task_id / "1.mcp.json").stat().st_mtime
            to_spawn.append(spawned - claims[task_id])
    # The autopilot notes each worker's exit in its run log: exit → the slot's next claim is
    # the autopilot's own part of a relaunch.
    exits = []
    for run_log in (state / "runs").glob("*/*.log"):
        for line in run_log.read_text().splitlines():
            if line.startswith("# wvo-mcp autopilot: exited"):
                exits.append(at(line.rsplit(" at ", 1)[1]))
    claimed = sorted(at(when) for _, when, _, kind, _ in events if kind == "claimed")
    exit_to_claim = [next(c for c in claimed if c >= e) - e for e in exits if claimed[-1] >= e]
    return {
        "claim_to_worker_started_s": to_spawn,
        "worker_exit_to_next_claim_s": exit_to_claim,
        "claim_to_first_checkpoint_s": to_checkpoint,
        "done_to_next_claim_s": relaunch,
        "crash_to_claimed_again_s": crash_to_claim,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=80)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wvo-bench-autopilot-"))
    try:
        env = setup(work, args.tasks, args.workers)
        log(f"autopilot: {args.tasks} tasks, {args.workers} fake workers, in {work}")
        wall, cpu, _ = run_autopilot(env, work)
        found = figures(work / "state")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    rows = [
        ("tasks / workers / cores", f"{args.tasks} / {args.workers} / {os.cpu_count()}"),
        ("wall time, throughput", f"{wall:.1f} s, {args.tasks / wall:.2f} tasks/s"),
        (
            "autopilot CPU",
            f"{cpu:.2f} s = {1000 * cpu / args.tasks:.1f} ms a task, "
            f"{100 * cpu / wall:.1f}% of a core",
        ),
    ]
    for name, values in found.items():
        if values:
            ms = sorted(1000 * v for v in values)
            p50, p90 = statistics.median(ms), ms[int(0.9 * (len(ms) - 1))]
            summary = f"p50 {p50:.0f} ms, p90 {p90:.0f} ms, max {ms[-1]:.0f} ms (n={len(ms)})"
            rows.append((name, summary))
    width = max(len(name) for name, _ in rows)
    print("\n".join(f"{name.ljust(width)}  {value}" for name, value in rows))
    if args.json:
        args.json.write_text(json.dumps({"wall_s": wall, "cpu_s": cpu, **found}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
