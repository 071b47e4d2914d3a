#!/usr/bin/env python
"""What telling a flaky check from a bad change costs and saves (issue 57).

A real `wvo-mcp autopilot --until-empty --merge merge --onto integration --check PYTEST
--max-returns 1` on a project shaped as tests/autopilot/test_gate.py's (pytest in its own
.venv, a JUnit report the gate reads), fake Claude Code workers in the real sandbox, and a
backlog of TASKS good tasks (each adds a passing test) and BAD bad ones (each adds a test
that fails: a real regression). With the flaky test in the suite, it fails on a seeded draw
1 time in 10 on each run of a tree: the draw is seeded with the tree's tests and the run's
number (WVO_CHECK_RUN), so a rerun draws afresh, as a real flake does.

Settings: the suite without the flaky test (reruns 2, the default), and with it at reruns 0,
1 and 2. For each: the wall time to land the backlog, the good changes returned (each one a
worker paid to redo good work), the bad changes returned (of BAD), the flakes found, and the
reruns and their time per landed change.

    python -m scripts.bench.flakes                # 30 good and 3 bad tasks, one run each
    python -m scripts.bench.flakes --tasks 8 --bad 1
    python -m scripts.bench.flakes --setting "flaky, reruns 2"
"""

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio

from tests.autopilot.conftest import backlog, env
from tests.autopilot.test_gate import CHECK, pytest_project
from tests.autopilot.test_toolchain import PASSING
from tests.conftest import ROOT

FLAKY = """import hashlib
import os
import pathlib


def test_flaky():
    tests = sorted(pathlib.Path("tests").glob("test_*.py"))
    run = os.environ.get("WVO_CHECK_RUN", "1").encode()
    draw = hashlib.sha256(b"".join(p.read_bytes() for p in tests) + run).digest()[0]
    assert draw >= 26, "a flake: it fails 1 time in 10"
"""
BAD = "def test_bad():\n    assert 1 + 1 == 3, 'a real regression'\n"
JUNIT = f"{CHECK} --junitxml=reports/junit.xml"
RUN_DEADLINE_S = 1800  # one autopilot run: the benchmark stays bounded


def run(work: Path, flaky: bool, reruns: int, tasks: int, bad: int) -> dict[str, Any]:
    suite = {"tests/test_base.py": PASSING, **({"tests/test_flaky.py": FLAKY} if flaky else {})}
    project = pytest_project(work, suite)
    providers = project["providers"]
    providers.write_text(
        providers.read_text() + f"gate:\n  junit: reports/*.xml\n  reruns: {reruns}\n"
    )
    good = {f"G{n:02}": (f"tests/test_g{n:02}.py", PASSING.replace("one", f"g{n}"))
            for n in range(tasks)}  # fmt: skip
    bad_ones = {f"B{n}": (f"tests/test_b{n}.py", BAD.replace("bad", f"b{n}")) for n in range(bad)}
    specs: list[dict[str, object]] = [
        {"id": task, "title": task, "metadata": {"fake_files": {name: text}}}
        for task, (name, text) in {**good, **bad_ones}.items()
    ]
    anyio.run(backlog, project, specs)
    started = time.monotonic()
    ran = subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty", "--merge",
         "merge", "--onto", "integration", "--check", JUNIT, "--max-returns", "1"],
        cwd=ROOT, env=env(project), capture_output=True, text=True, timeout=RUN_DEADLINE_S,
    )  # fmt: skip
    wall = time.monotonic() - started
    if ran.returncode != 0:
        raise SystemExit(f"the autopilot failed:\n{ran.stdout[-3000:]}{ran.stderr[-3000:]}")
    with closing(sqlite3.connect(project["state"] / "orchestrator.db")) as db:
        done = dict(db.execute("SELECT id, status FROM tasks").fetchall())
        back = [t for (t,) in db.execute("SELECT task_id FROM task_events WHERE kind = 'returned'")]
        figures = db.execute(
            "SELECT coalesce(sum(runs), 0), coalesce(sum(flakes), 0), coalesce(sum(reruns), 0),"
            " coalesce(sum(rerun_seconds), 0) FROM check_figures"
        ).fetchone()
    landed = sum(1 for t, s in done.items() if t.startswith("G") and s == "done")
    held = sum(1 for t, s in done.items() if t.startswith("G") and s == "needs_review")
    if landed + held != tasks:
        raise SystemExit(f"{landed} of {tasks} good tasks landed:\n{ran.stdout[-3000:]}")
    return {
        "wall_s": wall,
        "good_returned": sum(1 for t in back if t.startswith("G")),
        "good_held": held,  # returned twice: a person is asked (--max-returns 1)
        "bad_returned": len({t for t in back if t.startswith("B")}),
        "checks": figures[0],
        "flakes": figures[1],
        "reruns_per_landed": figures[2] / landed,
        "rerun_s_per_landed": figures[3] / landed,
    }


SETTINGS = [("no flaky test", False, 2), ("flaky, reruns 0", True, 0),
            ("flaky, reruns 1", True, 1), ("flaky, reruns 2", True, 2)]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--bad", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--setting", action="append", choices=[s[0] for s in SETTINGS],
        help="run only these settings (repeat it); all four by default",
    )  # fmt: skip
    args = parser.parse_args(argv)
    settings = [s for s in SETTINGS if not args.setting or s[0] in args.setting]
    results = {}
    with tempfile.TemporaryDirectory(prefix="wvo-bench-flakes-") as scratch:
        for n, (label, flaky, reruns) in enumerate(settings):
            print(f"{label} ...", file=sys.stderr)
            work = Path(scratch) / str(n)
            work.mkdir()
            results[label] = run(work, flaky, reruns, args.tasks, args.bad)
    print(f"{args.tasks} good tasks and {args.bad} bad ones, one run of each setting")
    print(f"{'setting':<18} {'wall s':>7} {'good back':>9} {'bad back':>8} {'checks':>6} "
          f"{'flakes':>6} {'reruns/landed':>13} {'rerun s/landed':>14} "
          f"{'good held':>9}")  # fmt: skip
    for label, r in results.items():
        print(f"{label:<18} {r['wall_s']:>7.1f} {r['good_returned']:>9} "
              f"{r['bad_returned']:>5}/{args.bad:<2} {r['checks']:>6} {r['flakes']:>6} "
              f"{r['reruns_per_landed']:>13.2f} {r['rerun_s_per_landed']:>14.2f} "
              f"{r['good_held']:>9}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
