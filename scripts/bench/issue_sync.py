#!/usr/bin/env python
"""`wvo-mcp import github:OWNER/REPO --label wvo` on a repository of many labelled issues:
the wall time of a first sync (every issue a new task) and of a re-run with nothing
changed, and the API calls each made; then `--every 1`'s passes with nothing changed, and
how many of their calls GitHub would count against the rate limit.

    python -m scripts.bench.issue_sync [--issues 1000] [--repeats 3]

Every run is real: the test forge (tests/forge/server.py: GitHub's REST API validated both
ways against GitHub's own description) holding ISSUES open issues with the label, one in
ten "blocked by" the one before it, and the real CLI in its own process on a fresh state
folder (SQLite). The time is the CLI process's, start to exit. The table goes to stdout,
progress to stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench import project
from scripts.bench.lib import ROOT, BenchError, Report, log
from tests.forge.description import available
from tests.forge.server import TOKEN, Forge

PASSES = 5  # of a watching sync, after its first


def one_run(issues: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="wvo-bench-issues-"))
    try:
        seed = project.repository(work / "seed", {"README.md": "a project\n"}, "the project")
        with Forge(work, seed) as forge:
            for n in range(issues):
                body = f"Blocked by #{n}." if n % 10 == 9 else f"Issue {n}'s description."
                forge.open_issue(f"issue {n}", body, ("wvo", "size: s"))
            state = work / "state"
            env = {**os.environ, "WVO_FORGE_TOKEN": TOKEN}
            argv = [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(state),
                    "import", "github:team/project", "--forge-api", forge.api]  # fmt: skip
            found: dict[str, float] = {}
            for label in ("first", "again"):
                before = len(forge.requests)
                started = time.monotonic()
                done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                                      timeout=600)  # fmt: skip
                found[f"{label}_s"] = time.monotonic() - started
                found[f"{label}_calls"] = len(forge.requests) - before
                if done.returncode != 0:
                    raise BenchError(f"the sync failed: {done.stderr[-2000:]}")
            found.update(watched(forge, [*argv, "--every", "1"], env))
            if forge.violations:
                raise BenchError(f"the forge was asked out of its description: {forge.violations}")
        return found
    finally:
        shutil.rmtree(work, ignore_errors=True)


def watched(forge: Forge, argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """`--every 1` on the synced state: PASSES passes after its first (whose answers it has
    then cached), each one's calls and how many GitHub would count (all but the 304s)."""
    comments = "/repos/team/project/issues/comments"

    before = len(forge.requests)

    def passes() -> int:
        return sum(path == comments for _, path, _ in list(forge.requests)[before:])

    with subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL) as watch:
        try:
            deadline = time.monotonic() + 600
            while passes() < 1:  # a pass ends by reading the comments
                if time.monotonic() > deadline or watch.poll() is not None:
                    raise BenchError("the watching sync made no pass")
                time.sleep(0.05)
            start, first = len(forge.requests), passes()
            while passes() < first + PASSES:
                if time.monotonic() > deadline or watch.poll() is not None:
                    raise BenchError("the watching sync stopped making passes")
                time.sleep(0.05)
            seen = list(forge.requests)[start:]
        finally:
            watch.terminate()
            watch.wait(timeout=60)
    calls = len(seen) / PASSES
    counted = sum(status != 304 for _, _, status in seen) / PASSES
    return {"watch_calls": calls, "watch_counted": counted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not available():
        raise BenchError("no @octokit/openapi: run scripts/setup")
    runs = []
    for repeat in range(args.repeats):
        log(f"{args.issues} issues, repeat {repeat}")
        runs.append(one_run(args.issues))
    report = Report()
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    note = f"{args.issues} labelled issues, {args.repeats} repeat(s), medians"
    report.info("first sync (every issue a new task)", median["first_s"], "s", note)
    report.info("first sync: API calls", median["first_calls"], "")
    report.info("re-run, nothing changed", median["again_s"], "s")
    report.info("re-run: API calls", median["again_calls"], "")
    report.info("--every, each pass with nothing changed: API calls", median["watch_calls"], "")
    report.info("--every: of which GitHub counts (not 304)", median["watch_counted"], "")
    print(report.table())


if __name__ == "__main__":
    main()
