#!/usr/bin/env python
"""Landing through pull requests (`--via pull-request`): the forge's API calls per landed
change, and the time from a worker's submission to its merged pull request, on each forge.

    python -m scripts.bench.forge_landing --quick            # smoke run, ~10 minutes
    python -m scripts.bench.forge_landing --checks 60        # ~26 minutes (BENCHMARKS.md)
    python -m scripts.bench.forge_landing --forge gitlab     # one forge only

Every run is real: the test forge (tests/forge/server.py: GitHub's REST API validated
against GitHub's own description; tests/forge/gitlab/server.py: GitLab's REST API validated
against GitLab's Go client's description; real git behind each over smart HTTP, main
protected), and
`wvo-mcp autopilot --until-empty --merge merge --onto origin/main --via pull-request
--check "sh check.sh"` with the fake Claude Code worker in its sandbox, on a fresh clone and
state folder. The check stands in for a test suite (about 0.3 s of hashing); the forge runs
the same one on each pull request's head as its required check, after a sleep of
`--checks` seconds (a real CI's minutes). A scripted reviewer
approves each head as soon as the forge's check on it has ended, so what is measured is
the queue and the forge, not a person.

- calls per landed change: every request the forge answered (conditional ones included),
  over the tasks; and of those the ones the forge counts against the rate limit (on GitHub
  all but a 304; GitLab sends no ETags for these reads, so it counts every one);
- forge check runs per landed change: the forge's required check, run on each head pushed
  (a restack pushes a new head: under the strict policy a merge puts every other pull
  request behind);
- submission to merged: per task, from its worker's move to needs_review to its task's
  move to done (the merge seen); p50 and p95; and from its last approval (given once the
  forge's check on its head ended) to the same;
- the changes an hour one token lands before the forge's published limits stop it.

Each forge runs polling (`--forge-poll` 10, no webhook) and on events (the test forge
delivers its webhooks to a real `serve --http` on the autopilot's database), for each check
duration; medians over the repeats. The table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
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
from typing import Any

from scripts.bench import project
from scripts.bench.lib import ROOT, BenchError, Report, free_port, http_server, log
from scripts.bench.remote_landing import CHECK_SH, at
from tests.forge import description as github_description
from tests.forge.gitlab import description as gitlab_description
from tests.forge.gitlab import server as gitlab_server
from tests.forge.server import TOKEN, Forge
from wvo_mcp.models import TaskSpec
from wvo_mcp.queue_figures import percentile

RUN_TIMEOUT_S = 1800  # and, with the forge's checks one after another, four each a task
FORGES: dict[str, tuple[type[Forge], str]] = {
    "github": (Forge, TOKEN),
    "gitlab": (gitlab_server.Forge, gitlab_server.TOKEN),
}


def reviewer(forge: Forge, stop: threading.Event, approved: dict[str, float]) -> None:
    """Approves each pull request's head once the forge's check on it has ended; when it
    last did, by branch, in `approved`."""
    seen: set[tuple[int, str]] = set()
    while not stop.wait(0.05):
        for pull in forge.open_pulls():
            run = forge.runs.get(pull.head)
            if (pull.number, pull.head) in seen or run is None or not run.done.is_set():
                continue
            seen.add((pull.number, pull.head))
            forge.review(pull.number, "APPROVED")
            approved[pull.branch] = time.time()


def one_run(
    kind: str, tasks: int, slots: int, mode: str, check_s: float, batch: int = 1,
    fail_one: bool = False,
) -> dict[str, float]:  # fmt: skip
    """One autopilot run to empty on a fresh test forge whose required check takes `check_s`
    seconds (its own hashing after a sleep): `mode` "poll" (--forge-poll 10, no webhook) or
    "events" (the forge's webhook to a real `serve --http` on the autopilot's database);
    `batch`: --forge-batch; `fail_one`: the forge's check fails the middle task's first try."""
    work = Path(tempfile.mkdtemp(prefix="wvo-bench-forge-"))
    temp = tempfile.mkdtemp(prefix="wvo-f-")  # short: a run's sockets are made there
    try:
        seed = project.repository(work / "seed", {"check.sh": CHECK_SH}, "the project")
        made, token = FORGES[kind]
        with made(work, seed) as forge, contextlib.ExitStack() as stack:
            forge.check = f"sleep {check_s:g} && sh check.sh"  # the forge's CI, not the queue's
            folder = work / "host"
            folder.mkdir()
            project.git(folder, "clone", "-q", str(forge.bare), "repo")
            project.git(folder / "repo", "remote", "set-url", "origin", forge.url)
            worker = project.fake_worker(folder / "bin" / "fake-claude")
            # A provider runs at most 64 workers: a larger fleet is two.
            fleet = {"alpha": slots} if slots <= 64 else {"alpha": slots // 2,
                                                          "beta": slots - slots // 2}  # fmt: skip
            providers = project.providers_file(folder / "providers.yaml", fleet, slots, worker,
                                               hang_seconds=120)  # fmt: skip
            state = folder / "state"
            env = project.autopilot_env(folder, state, folder / "repo", providers,
                                        max(16, slots))  # fmt: skip
            env |= {"WVO_FORGE_TOKEN": token, "TMPDIR": temp}
            specs = [TaskSpec(id=f"T{n:03}", title=f"task {n}") for n in range(tasks)]
            if fail_one:  # its first try writes bad.txt, its second fixes it
                specs[tasks // 2].metadata = {"fake_files": {"bad.txt": "bad\n"},
                                              "fake_fix": {"bad.txt": "fixed\n"}}  # fmt: skip
                forge.failing = lambda sha: forge.git("show", f"{sha}:bad.txt",
                                                      check=False) == "bad"  # fmt: skip
            project.create_tasks(state, specs)
            if mode == "events":
                stack.enter_context(webhook(forge, kind, state, folder, env))
            argv = [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty",
                    "--merge", "merge", "--onto", "origin/main", "--via", "pull-request",
                    "--forge-api", forge.api, "--forge-poll", "10", "--check",
                    "sh check.sh", "--skip-preflight", "--workers",
                    ",".join(f"{name}:{count}" for name, count in fleet.items()),
                    "--forge-batch", str(batch)]  # fmt: skip
            stop = threading.Event()
            approved: dict[str, float] = {}
            approving = threading.Thread(target=reviewer, args=(forge, stop, approved),
                                         daemon=True)  # fmt: skip
            approving.start()
            started = time.monotonic()
            try:
                done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                                      timeout=RUN_TIMEOUT_S + 4 * check_s * tasks)  # fmt: skip
            finally:
                stop.set()
                approving.join()
            wall = time.monotonic() - started
            if done.returncode != 0:
                raise BenchError(f"the autopilot failed: {done.stdout[-2000:]}{done.stderr}")
            if forge.violations:
                raise BenchError(f"the forge was asked out of its description: {forge.violations}")
            merged = sum(p.merged for p in forge.pulls.values())
            if batch == 1 and merged != tasks:
                raise BenchError(f"{merged} of {tasks} pull requests merged")
            opened = len(forge.pulls)
            calls = len(forge.requests)
            counted = sum(status != 304 for _, _, status in forge.requests)
            made_content = sum(method == "POST" and path.endswith(CREATES)
                               for method, path, _ in forge.requests)  # fmt: skip
            runs = len(forge.runs)
        after = merged_after(state, approved)
        return measure(state, tasks, wall) | {
            "calls_per_change": calls / tasks,
            "counted_per_change": counted / tasks,
            "created_per_change": made_content / tasks,
            "forge_checks_per_change": runs / tasks,
            "pull_requests": float(opened),
            "merged_after_p50_s": percentile(after, 0.5) or 0.0,
            "merged_after_p95_s": percentile(after, 0.95) or 0.0,
            "ceiling_per_hour": ceiling(kind, counted / tasks, made_content / tasks),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(temp, ignore_errors=True)


CREATES = ("/pulls", "/merge_requests", "/comments", "/notes")  # content-creating requests
# Each forge's published budget for one token: GitHub's REST limit and its secondary limit
# on content-creating requests (500 an hour); GitLab.com's authenticated API limit
# (2,000 requests a minute per user).
LIMITS = {"github": (5000.0, 500.0), "gitlab": (120_000.0, float("inf"))}


def ceiling(kind: str, counted: float, created: float) -> float:
    """Changes an hour one token lands before the forge's limits stop it."""
    per_hour, content = LIMITS[kind]
    return min(per_hour / max(counted, 1e-9), content / max(created, 1e-9))


def merged_after(state: Path, approved: dict[str, float]) -> list[float]:
    """Seconds from each pull request's last approval (given once its head's check ended:
    the last thing it waited for) to its task done (the queue saw its merge), sorted."""
    with sqlite3.connect(state / "orchestrator.db") as db:
        done = dict(db.execute(
            "SELECT task_id, max(at) FROM task_events WHERE to_status = 'done' "
            "GROUP BY task_id").fetchall())  # fmt: skip
    return sorted(at(done[b.removeprefix("wvo/")]) - t for b, t in approved.items()
                  if b.removeprefix("wvo/") in done)  # fmt: skip


@contextlib.contextmanager
def webhook(forge: Forge, kind: str, state: Path, folder: Path, env: dict[str, str]) -> Any:
    """`serve --http` on the autopilot's state folder, the forge's webhook delivered to it."""
    port, secret = free_port(), "bench-webhook-secret"
    named = f"{kind}:{forge.full}"
    served = {**env, "WVO_WEBHOOK_SECRET": secret, "WVO_GITLAB_WEBHOOK_SECRET": secret,
              "WVO_WEBHOOK_REPOS": named}  # fmt: skip
    command = [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(state), "serve",
               "--http", "--port", str(port)]  # fmt: skip
    with (
        (folder / "serve.log").open("w") as errlog,
        http_server(command, port, "serve --http", ROOT, served, errlog),
    ):
        forge.deliver_to(f"http://127.0.0.1:{port}", secret)
        yield


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
    parser.add_argument("--quick", action="store_true", help="4 tasks, 20 s checks, one repeat")
    parser.add_argument("--tasks", type=int, default=6)
    parser.add_argument("--slots", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--checks", default="60,300", help="the forge's check, seconds (a list)")
    parser.add_argument("--modes", default="poll,events")
    parser.add_argument("--forge", choices=[*FORGES, "both"], default="both")
    parser.add_argument("--batch", type=int, default=1, help="--forge-batch (default 1)")
    parser.add_argument(
        "--fail-one",
        action="store_true",
        help="the forge's check fails the middle task's first try",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    kinds = list(FORGES) if args.forge == "both" else [args.forge]
    if "github" in kinds and not github_description.available():
        raise BenchError("no @octokit/openapi: run scripts/setup")
    if "gitlab" in kinds and not gitlab_description.available():
        raise BenchError("no go-gitlab description: run scripts/setup")
    tasks, repeats = (4, 1) if args.quick else (args.tasks, args.repeats)
    checks = [20.0] if args.quick else [float(c) for c in args.checks.split(",")]
    Key = tuple[str, str, float]
    found: dict[Key, list[dict[str, float]]] = {
        (kind, mode, check): [] for check in checks for mode in args.modes.split(",")
        for kind in kinds
    }  # fmt: skip
    for repeat in range(repeats):
        for kind, mode, check in found:
            log(f"{kind}, {mode}, checks of {check:g} s, {args.slots} slots, {tasks} tasks, "
                f"repeat {repeat}")  # fmt: skip
            found[kind, mode, check].append(
                one_run(kind, tasks, args.slots, mode, check, args.batch, args.fail_one)
            )
    report = Report()
    medians = {
        key: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for key, runs in found.items()
    }
    for (kind, mode, check), figures in medians.items():
        label = f"{kind}, {mode}, {check:g} s checks"
        note = f"{args.slots} slots, {tasks} tasks, {repeats} repeat(s), batch {args.batch}"
        report.info(f"{label}: API calls per landed change", figures["calls_per_change"], "",
                    note)  # fmt: skip
        report.info(f"{label}: of which counted against the rate limit",
                    figures["counted_per_change"], "")  # fmt: skip
        report.info(f"{label}: pull requests opened", figures["pull_requests"], "")
        report.info(f"{label}: forge check runs per landed change",
                    figures["forge_checks_per_change"], "")  # fmt: skip
        report.info(f"{label}: submission to merged p50", figures["submission_p50_s"], "s")
        report.info(f"{label}: submission to merged p95", figures["submission_p95_s"], "s")
        report.info(f"{label}: last check or approval to merged p50",
                    figures["merged_after_p50_s"], "s")  # fmt: skip
        report.info(f"{label}: last check or approval to merged p95",
                    figures["merged_after_p95_s"], "s")  # fmt: skip
        report.info(f"{label}: changes an hour one token lands before the forge's limits",
                    figures["ceiling_per_hour"], "/h")  # fmt: skip
    print(report.table())
    if args.json is not None:
        keyed = {f"{kind} {mode} {check:g}": v for (kind, mode, check), v in found.items()}
        middle = {f"{kind} {mode} {check:g}": v for (kind, mode, check), v in medians.items()}
        args.json.write_text(json.dumps({"runs": keyed, "medians": middle}, indent=2))


if __name__ == "__main__":
    main()
