#!/usr/bin/env python
"""Landing onto a git remote from one autopilot or from two "hosts": changes landed per
hour at the same total number of slots, the push's share of each landing, and the time
from a worker's submission to its landing on the remote.

    python -m scripts.bench.remote_landing --quick             # smoke run, ~2 minutes
    python -m scripts.bench.remote_landing --json out.json     # full run, ~10 minutes

Every run is real: a bare repository served by `git daemon` on 127.0.0.1 (the team's
remote), a throwaway PostgreSQL cluster (tests/pgcluster.py) with a fresh database per run,
and `wvo-mcp autopilot --until-empty --merge merge --onto origin/main --check "sh check.sh"`
with the fake Claude Code worker in its sandbox. A host is a clone of the remote with its
own state folder, home and temp folder. `one` is one autopilot with SLOTS slots; `two` is two
autopilots with SLOTS/2 each, started together. The check stands in for a test suite: about
0.3 s of hashing on one core. Tasks touch files of their own (nothing conflicts or fails).

- landed per hour: tasks / the wall time from the first start to the last exit;
- push share: per landing, (landings.landed_at - landings.at), the intent written before
  the push to its completion (the push, and one transaction; also given alone, its
  median), over the landing's whole
  time (from when its batch could start, the later of the previous landing's end and its
  entries' queued_at, to its end); the median;
- submission to remote: per task, from its worker's move to needs_review to its landing's
  end; p50 and p95.

Configurations run interleaved, medians over the repeats. The table goes to stdout,
progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import psycopg

from scripts.bench import project
from scripts.bench.lib import ROOT, BenchError, Report, log
from tests.gitservers import Daemon, bare
from tests.pgcluster import Cluster
from wvo_mcp.config import Settings
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.queue_figures import percentile

CHECK_SH = "#!/bin/sh\nhead -c 150000000 /dev/zero | sha256sum >/dev/null && echo ok\n"
RUN_TIMEOUT_S = 1800


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def make_host(work: Path, name: str, served: Path, url: str, db: str, slots: int) -> Any:
    folder = work / name
    folder.mkdir()
    project.git(folder, "clone", "-q", str(served), "repo")
    project.git(folder / "repo", "remote", "set-url", "origin", url)
    worker = project.fake_worker(folder / "bin" / "fake-claude")
    providers = project.providers_file(folder / "providers.yaml", "alpha", slots, worker,
                                       hang_seconds=120)  # fmt: skip
    env = project.autopilot_env(folder, folder / "state", folder / "repo", providers, 16)
    env |= {"WVO_DATABASE_URL": db, "TMPDIR": tempfile.mkdtemp(prefix=f"wvo-{name}-")}
    return env


def create(db: str, tasks: int) -> None:
    async def main() -> None:
        orchestrator = await Orchestrator.open(Settings(database_url=db))
        try:
            specs = [TaskSpec(id=f"T{n:03}", title=f"task {n}") for n in range(tasks)]
            await orchestrator.create_tasks(specs, actor="bench")
        finally:
            await orchestrator.close()

    anyio.run(main)


def one_run(pg: Cluster, hosts: int, slots: int, tasks: int, name: str) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="wvo-bench-remote-"))
    envs: list[dict[str, str]] = []
    try:
        seed = project.repository(work / "seed", {"check.sh": CHECK_SH}, "the project")
        served = bare(work / "served", seed)
        db = pg.create_database(name)
        create(db, tasks)
        with Daemon(work / "served") as server:
            url = server.url("project.git")
            envs = [make_host(work, f"h{n}", served, url, db, slots // hosts)
                    for n in range(hosts)]  # fmt: skip
            argv = [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty",
                    "--merge", "merge", "--onto", "origin/main", "--check", "sh check.sh",
                    "--skip-preflight", "--workers", f"alpha:{slots // hosts}"]  # fmt: skip
            started = time.monotonic()
            running = [
                subprocess.Popen(
                    argv,
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for env in envs
            ]
            outs = [p.communicate(timeout=RUN_TIMEOUT_S)[0] for p in running]
            wall = time.monotonic() - started
        if any(p.returncode for p in running):
            raise BenchError(f"an autopilot failed: {outs[-1][-2000:]}")
        return measure(db, tasks, wall)
    finally:
        for env in envs:
            shutil.rmtree(env["TMPDIR"], ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def measure(db: str, tasks: int, wall: float) -> dict[str, float]:
    with psycopg.connect(db) as conn:
        landings = conn.execute(
            "SELECT id, at, landed_at FROM landings WHERE state = 'landed' ORDER BY landed_at"
        ).fetchall()
        entries = conn.execute(
            "SELECT task_id, landing_id, queued_at FROM landing_entries WHERE state = 'landed'"
        ).fetchall()
        submitted = conn.execute(
            "SELECT task_id, max(at) FROM task_events WHERE to_status = 'needs_review' "
            "GROUP BY task_id"
        ).fetchall()
    if len(entries) != tasks:
        raise BenchError(f"{len(entries)} of {tasks} tasks landed")
    ended = {lid: at(done) for lid, _, done in landings}
    queued: dict[int, float] = {}
    for _, lid, when in entries:
        queued[lid] = max(queued.get(lid, 0.0), at(when))
    shares, pushes, previous = [], [], 0.0
    for lid, intent, done in landings:
        start = max(previous, queued[lid])
        pushes.append(at(done) - at(intent))
        shares.append(pushes[-1] / max(at(done) - start, 1e-6))
        previous = at(done)
    by_task: dict[str, str] = dict(submitted)
    waits = sorted(ended[lid] - at(by_task[task]) for task, lid, _ in entries)
    return {
        "landed_per_hour": tasks / wall * 3600,
        "push_share": statistics.median(shares),
        "push_ms": statistics.median(pushes) * 1000,
        "submission_p50_s": percentile(waits, 0.5) or 0.0,
        "submission_p95_s": percentile(waits, 0.95) or 0.0,
        "landings": len(landings),
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 tasks, one repeat")
    parser.add_argument("--tasks", type=int, default=24)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tasks, repeats = (8, 1) if args.quick else (args.tasks, args.repeats)
    found: dict[str, list[dict[str, float]]] = {"one": [], "two": []}
    with Cluster.start() as pg:
        for repeat in range(repeats):
            for label, hosts in (("one", 1), ("two", 2)):
                log(f"{label} autopilot(s), {args.slots} slots, {tasks} tasks, repeat {repeat}")
                found[label].append(one_run(pg, hosts, args.slots, tasks, f"r{label}{repeat}"))
    report = Report()
    medians = {
        label: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for label, runs in found.items()
    }
    for label, figures in medians.items():
        who = "1 autopilot" if label == "one" else "2 autopilots"
        note = f"{who}, {args.slots} slots in all, {tasks} tasks, {repeats} repeat(s)"
        report.info(f"{label}: landed per hour", figures["landed_per_hour"], "/h", note)
        report.info(f"{label}: push share of a landing", figures["push_share"] * 100, "%")
        report.info(f"{label}: push (intent to landed)", figures["push_ms"], "ms")
        report.info(f"{label}: submission to remote p50", figures["submission_p50_s"], "s")
        report.info(f"{label}: submission to remote p95", figures["submission_p95_s"], "s")
        report.info(f"{label}: landings (batches)", figures["landings"], "")
    print(report.table())
    if args.json is not None:
        args.json.write_text(json.dumps({"runs": found, "medians": medians}, indent=2))


if __name__ == "__main__":
    main()
