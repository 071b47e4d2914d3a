#!/usr/bin/env python
"""Fuzz every wvo-mcp tool over real stdio with hostile calls, and print what happened.

    python -m scripts.bench.fuzz                    # 10,000 drawn calls, seed 0
    python -m scripts.bench.fuzz --calls 50000 --seed 7 --keep

The calls come from the generator of tests/security/fuzzing.py (the CI test runs a bounded,
derandomised sample of the same): arguments drawn from each tool's real inputSchema by
hypothesis-jsonschema, most of them then damaged (wrong types, ~1 MB strings, 100k-item
lists, 1000+-deep nesting, NUL, lone surrogates, NaN/Infinity, hostile ids, unknown and
missing arguments), against one seeded `python -P -m wvo_mcp serve`. The explicit examples
of the test run first. Every call is checked as in the test; a violation is counted (and
the first few shown) instead of stopping the run, unless the server is gone.

Prints calls/s, counts by outcome, p50/p99 latency per outcome (send to reply; for a
dropped frame, to the reply of the liveness call read after it), the server's RSS before
and after, crashes and database-changed-on-refusal violations (both must be 0). Exit code 1
when any property broke. Run it with the Python that has wvo-mcp and its dev extra
installed (e.g. .venv/bin/python).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

# The generator lives in tests/security/fuzzing.py: import it from the repository root.
from tests.security.fuzzing import OUTCOMES, Call, Result, Target, Violation, explicit_calls

PROGRESS_EVERY = 1000


class ServerGone(Exception):
    """The server died: nothing more to learn from this run."""


class Tally:
    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.latency: defaultdict[str, list[float]] = defaultdict(list)
        self.by_tool: Counter[tuple[str, str]] = Counter()
        self.violations: Counter[str] = Counter()
        self.examples: list[str] = []
        self.calls = 0
        self.rss_kib: list[int] = []  # the server's, every PROGRESS_EVERY calls

    def record(self, call: Call, result: Result) -> None:
        self.calls += 1
        self.outcomes[result.outcome] += 1
        self.latency[result.outcome].append(result.latency_ms)
        self.by_tool[(call.tool, result.outcome)] += 1

    def violation(self, exc: Violation) -> None:
        self.calls += 1
        self.violations[exc.kind] += 1
        if len(self.examples) < 5:
            self.examples.append(str(exc)[:1500])


def check(target: Target, tally: Tally, call: Call) -> None:
    try:
        tally.record(call, target.check(call))
    except Violation as exc:
        tally.violation(exc)
        if not target.server.alive():
            raise ServerGone(str(exc)) from exc
    if tally.calls % PROGRESS_EVERY == 0:
        tally.rss_kib.append(target.server.rss_kib())
        print(
            f"  {tally.calls} calls, {dict(tally.outcomes)}, "
            f"server RSS {tally.rss_kib[-1] / 1024:.0f} MiB",
            file=sys.stderr,
            flush=True,
        )


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000, help="drawn calls (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (default 0)")
    parser.add_argument("--keep", action="store_true", help="keep the state folder")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="wvo-fuzz-"))
    tally = Tally()
    gone: str | None = None
    started = time.perf_counter()
    with Target.start(tmp) as target:
        rss_before = target.server.rss_kib()
        explicit = explicit_calls(target.known)

        @seed(args.seed)
        @settings(
            max_examples=args.calls,
            deadline=None,
            database=None,
            phases=[Phase.generate],  # count violations, do not stop to shrink them
            suppress_health_check=list(HealthCheck),
        )
        @given(target.calls())
        def drawn(call: Call) -> None:
            check(target, tally, call)

        try:
            for call in explicit:
                check(target, tally, call)
            drawn()
        except ServerGone as exc:
            gone = str(exc)
        elapsed = time.perf_counter() - started
        rss_after = target.server.rss_kib() if target.server.alive() else 0
        server_pid = target.server.pid
    log_tracebacks = target.log_tracebacks()  # once the server is gone: its whole log

    crashes = tally.violations["crash"] + tally.violations["not_alive"] + (1 if gone else 0)
    print(f"wvo-mcp fuzz: {tally.calls} calls ({len(explicit)} explicit + drawn), seed {args.seed}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; server pid {server_pid}"
    )
    print(f"wall {elapsed:.1f} s, {tally.calls / elapsed:.1f} calls/s (with digests and checks)")
    print()
    print(f"{'outcome':<16}{'calls':>8}{'share':>8}{'p50 ms':>10}{'p99 ms':>10}")
    for outcome in OUTCOMES:
        values = tally.latency.get(outcome, [])
        if not values:
            print(f"{outcome:<16}{0:>8}")
            continue
        print(
            f"{outcome:<16}{len(values):>8}{len(values) / tally.calls:>8.1%}"
            f"{percentile(values, 0.5):>10.2f}{percentile(values, 0.99):>10.2f}"
        )
    print()
    tools = sorted({tool for tool, _ in tally.by_tool})
    real = {t.name for t in target.tools}
    print(f"{'tool':<20}" + "".join(f"{o:>16}" for o in OUTCOMES))
    for tool in tools:
        name = tool if tool in real else repr(tool)[:18]  # an unknown name, quoted
        print(f"{name:<20}" + "".join(f"{tally.by_tool[(tool, o)]:>16}" for o in OUTCOMES))
    print()
    print(f"server RSS: {rss_before / 1024:.1f} MiB before, {rss_after / 1024:.1f} MiB after")
    if tally.rss_kib:
        series = ", ".join(f"{kib / 1024:.0f}" for kib in tally.rss_kib)
        print(f"server RSS every {PROGRESS_EVERY} calls (MiB): {series}")
    print(f"crashes (server died, hung, non-JSON-RPC stdout, failed liveness): {crashes}")
    print(f"database changed on a refused call: {tally.violations['db_changed_on_refusal']}")
    print(f"tracebacks in replies: {tally.violations['traceback']}")
    print(f"tracebacks in the server's log (unhandled exceptions): {len(log_tracebacks)}")
    print(
        f"bare 'Error executing tool X' (an exception not made a ToolError): "
        f"{tally.violations['unhandled']}"
    )
    print(
        f"contract breaks (reply not valid by the SDK types/outputSchema): "
        f"{tally.violations['contract']}"
    )
    for text in tally.examples + log_tracebacks[:3]:
        print(f"  - {text}")
    if gone:
        print(f"stopped early: the server is gone ({gone[:300]})")
    if args.keep:
        print(f"state kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if tally.violations or gone or log_tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
