#!/usr/bin/env python
"""Landing through pull requests (`--via pull-request`): the forge's API calls per landed
change, and the time from a worker's submission to its merged pull request, on each forge.

    python -m scripts.bench.forge_landing --quick            # smoke run, ~4 minutes
    python -m scripts.bench.forge_landing --json out.json    # full run, ~16 minutes
    python -m scripts.bench.forge_landing --forge gitlab     # one forge only

Every run is real: the test forge (tests/forge/server.py: GitHub's REST API validated
against GitHub's own description; tests/forge/gitlab/server.py: GitLab's REST API validated
against GitLab's Go client's description; real git behind each over smart HTTP, main
protected), and
`wvo-mcp autopilot --until-empty --merge merge --onto origin/main --via pull-request
--check "sh check.sh"` with the fake Claude Code worker in its sandbox, on a fresh clone and
state folder. The check stands in for a test suite (about 0.3 s of hashing); the forge runs
the same one on each pull request's head as its required check. A scripted reviewer
approves each head as soon as the forge's check on it has ended, so what is measured is
the queue and the forge, not a person.

- calls per landed change: every request the forge answered (conditional ones included),
  over the tasks; and of those the ones the forge counts against the rate limit (on GitHub
  all but a 304; GitLab sends no ETags for these reads, so it counts every one);
- forge check runs per landed change: the forge's required check, run on each head pushed
  (a restack pushes a new head: under the strict policy a merge puts every other pull
  request behind);
- submission to merged: per task, from its worker's move to needs_review to its task's
  move to done (the merge seen); p50 and p95.

`--forge-poll` 10 (the default) and 2 run interleaved, and the forges within each, medians
over the repeats. The table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from scripts.bench import project
from scripts.bench.lib import ROOT, BenchError, Report, log
from scripts.bench.remote_landing import CHECK_SH, at
from tests.forge import description as github_description
from tests.forge.gitlab import description as gitlab_description
from tests.forge.gitlab import server as gitlab_server
from tests.forge.server import TOKEN, Forge
from wvo_mcp.models import TaskSpec
from wvo_mcp.queue_figures import percentile

RUN_TIMEOUT_S = 1800
FORGES: dict[str, tuple[type[Forge], str]] = {
    "github": (Forge, TOKEN),
    "gitlab": (gitlab_server.Forge, gitlab_server.TOKEN),
}


def reviewer(forge: Forge, stop: threading.Event) -> None:
    """Approves each pull request's head once the forge's check on it has ended."""
    seen: set[tuple[int, str]] = set()
    while not stop.wait(0.05):
        for pull in forge.open_pulls():
            run = forge.runs.get(pull.head)
            if (pull.number, pull.head) in seen or run is None or not run.done.is_set():
                continue
            seen.add((pull.number, pull.head))
            forge.review(pull.number, "APPROVED")


def one_run(kind: str, tasks: int, slots: int, poll: float) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="wvo-bench-forge-"))
    temp = tempfile.mkdtemp(prefix="wvo-f-")  # short: a run's sockets are made there
    try:
        seed = project.repository(work / "seed", {"check.sh": CHECK_SH}, "the project")
        made, token = FORGES[kind]
        with made(work, seed) as forge:
            folder = work / "host"
            folder.mkdir()
            project.git(folder, "clone", "-q", str(forge.bare), "repo")
            project.git(folder / "repo", "remote", "set-url", "origin", forge.url)
            worker = project.fake_worker(folder / "bin" / "fake-claude")
            providers = project.providers_file(folder / "providers.yaml", "alpha", slots,
                                               worker, hang_seconds=120)  # fmt: skip
            state = folder / "state"
            env = project.autopilot_env(folder, state, folder / "repo", providers, 16)
            env |= {"WVO_FORGE_TOKEN": token, "TMPDIR": temp}
            project.create_tasks(state, [TaskSpec(id=f"T{n:03}", title=f"task {n}")
                                         for n in range(tasks)])  # fmt: skip
            argv = [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty",
                    "--merge", "merge", "--onto", "origin/main", "--via", "pull-request",
                    "--forge-api", forge.api, "--forge-poll", str(poll), "--check",
                    "sh check.sh", "--skip-preflight", "--workers", f"alpha:{slots}"]  # fmt: skip
            stop = threading.Event()
            approving = threading.Thread(target=reviewer, args=(forge, stop), daemon=True)
            approving.start()
            started = time.monotonic()
            try:
                done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                                      timeout=RUN_TIMEOUT_S)  # fmt: skip
            finally:
                stop.set()
                approving.join()
            wall = time.monotonic() - started
            if done.returncode != 0:
                raise BenchError(f"the autopilot failed: {done.stdout[-2000:]}{done.stderr}")
            if forge.violations:
                raise BenchError(f"the forge was asked out of its description: {forge.violations}")
            merged = sum(p.merged for p in forge.pulls.values())
            if merged != tasks:
                raise BenchError(f"{merged} of {tasks} pull requests merged")
            calls = len(forge.requests)
            counted = sum(status != 304 for _, _, status in forge.requests)
            runs = len(forge.runs)
        return measure(state, tasks, wall) | {
            "calls_per_change": calls / tasks,
            "counted_per_change": counted / tasks,
            "forge_checks_per_change": runs / tasks,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(temp, ignore_errors=True)


def measure(state: Path, tasks: int, wall: float) -> dict[str, float]:
    with sqlite3.connect(state / "orchestrator.db") as db:
        submitted = dict(db.execute(
            "SELECT task_id, max(at) FROM task_events WHERE to_status = 'needs_review' "
            "GROUP BY task_id").fetchall())  # fmt: skip
        done = dict(db.execute(
            "SELECT task_id, max(at) FROM task_events WHERE to_status = 'done' "
            "GROUP BY task_id").fetchall())  # fmt: skip
    if len(done) != tasks:
        raise BenchError(f"{len(done)} of {tasks} tasks done")
    waits = sorted(at(done[t]) - at(submitted[t]) for t in done)
    return {
        "submission_p50_s": percentile(waits, 0.5) or 0.0,
        "submission_p95_s": percentile(waits, 0.95) or 0.0,
        "landed_per_hour": tasks / wall * 3600,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 tasks, one repeat")
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--forge", choices=[*FORGES, "both"], default="both")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    kinds = list(FORGES) if args.forge == "both" else [args.forge]
    if "github" in kinds and not github_description.available():
        raise BenchError("no @octokit/openapi: run scripts/setup")
    if "gitlab" in kinds and not gitlab_description.available():
        raise BenchError("no go-gitlab description: run scripts/setup")
    tasks, repeats = (6, 1) if args.quick else (args.tasks, args.repeats)
    found: dict[tuple[str, float], list[dict[str, float]]] = {
        (kind, poll): [] for poll in (10.0, 2.0) for kind in kinds
    }
    for repeat in range(repeats):
        for kind, poll in found:
            log(f"{kind}, --forge-poll {poll:g}, {args.slots} slots, {tasks} tasks, "
                f"repeat {repeat}")  # fmt: skip
            found[kind, poll].append(one_run(kind, tasks, args.slots, poll))
    report = Report()
    medians = {
        key: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for key, runs in found.items()
    }
    for (kind, poll), figures in medians.items():
        label = f"{kind}, poll {poll:g} s"
        note = f"{args.slots} slots, {tasks} tasks, {repeats} repeat(s)"
        report.info(f"{label}: API calls per landed change", figures["calls_per_change"], "",
                    note)  # fmt: skip
        report.info(f"{label}: of which counted against the rate limit",
                    figures["counted_per_change"], "")  # fmt: skip
        report.info(f"{label}: forge check runs per landed change",
                    figures["forge_checks_per_change"], "")  # fmt: skip
        report.info(f"{label}: submission to merged p50", figures["submission_p50_s"], "s")
        report.info(f"{label}: submission to merged p95", figures["submission_p95_s"], "s")
        report.info(f"{label}: landed per hour", figures["landed_per_hour"], "/h")
    print(report.table())
    if args.json is not None:
        keyed = {f"{kind} {poll:g}": v for (kind, poll), v in found.items()}
        middle = {f"{kind} {poll:g}": v for (kind, poll), v in medians.items()}
        args.json.write_text(json.dumps({"runs": keyed, "medians": middle}, indent=2))


if __name__ == "__main__":
    main()
