"""Every benchmark module in scripts/bench imports and has a `main`, so a broken import or a
moved helper is caught without running a benchmark. The imports run in a child process:
importing scripts.bench.lib wraps the SDK client's result check, which this process keeps."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "scripts" / "bench"
# The package and what its benchmarks share: no benchmark of their own.
SHARED = {"__init__", "lib", "project", "subreaper"}

PROBE = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    module = importlib.import_module(f"scripts.bench.{name}")
    found[name] = callable(getattr(module, "main", None))
print(json.dumps(found))
"""


def test_every_bench_module_imports_and_has_a_main() -> None:
    names = sorted(path.stem for path in BENCH.glob("*.py") if path.stem not in SHARED)
    assert {"core", "fleet", "scale", "tenancy_client"} <= set(names)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *names], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert found == dict.fromkeys(names, True)


def test_the_learning_simulation_runs_and_never_routes_past_a_breaker_or_a_pin(
    tmp_path: Path,
) -> None:
    """scripts.bench.learning on its smallest stream: both modes work every task, and no
    grant goes to an open breaker or a pinned task's other tiers (its figures: BENCHMARKS.md)."""
    out = tmp_path / "learning.json"
    done = subprocess.run(
        [sys.executable, "-m", "scripts.bench.learning", "--tasks", "100", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(out.read_text())
    rows = {row["metric"]: row for row in found["results"]}
    for degraded in ("alpha", "beta"):
        for mode in ("static", "learned"):
            run = f"{degraded} degrades, {mode}"
            assert rows[f"{run}: grants to an open breaker / pinned elsewhere"]["value"] == 0
            assert rows[f"{run}: landed"]["value"] >= 90
        bases = found["details"][degraded]["bases"]
        assert set(bases["static"]) == {"rule", "pinned"}  # learning off: the static rule only
        learned = bases["learned"]
        assert learned["learned"] > 0 and learned["pinned"] == bases["static"]["pinned"]


def test_the_learning_sweep_reports_every_seed_against_the_oracle(tmp_path: Path) -> None:
    """scripts.bench.learning --seeds on small streams: for each workload (stationary, the
    cheap provider degrading, the favoured one degrading), the mean and the worst ratio to the
    hindsight oracle, and each seed's ratios in the JSON (its figures: BENCHMARKS.md)."""
    out = tmp_path / "sweep.json"
    done = subprocess.run(
        [sys.executable, "-m", "scripts.bench.learning", "--seeds", "2", "--sizes", "30",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(out.read_text())
    rows = {row["metric"]: row for row in found["results"]}
    for who, key in (("nothing", "none"), ("alpha", "alpha"), ("beta", "beta")):
        mean = rows[f"{who} degrades, 30 tasks: learned / hindsight oracle, mean of 2 seeds"]
        worst = rows[f"{who} degrades, 30 tasks: learned / hindsight oracle, worst of 2 seeds"]
        seeds = found["details"]["per_seed"][f"{key} 30"]
        assert seeds["seeds"] == [1, 2] and len(seeds["ratio"]) == len(seeds["known"]) == 2
        assert worst["value"] == max(seeds["ratio"]) >= mean["value"] > 0
        # The hindsight oracle picks on the very draws: no route can do better, by much.
        assert min(seeds["known"]) > 0.9
