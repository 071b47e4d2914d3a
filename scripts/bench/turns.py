#!/usr/bin/env python
"""Model turns per task: the real Claude Code CLI (pinned in tests/claude_code/) works a
chain of tasks through wvo-mcp (worker profile, stdio), its model a scripted Messages API on
127.0.0.1 (tests/integration/test_claude_code.py), by two loops:

- look: plan_next -> claim_task -> plan_update(done), per task (the loop before issue 36);
- chain: claim_task once, then plan_update(done, claim_next=true) per task (prescribed now).

    python -m scripts.bench.turns                     # 10 tasks, 3 rounds
    python -m scripts.bench.turns --tasks 20 --rounds 5 --json out.json

A turn is one request of the agent's own to the model (one that offers our tools; side
requests such as a title are not counted): each costs a real model seconds and re-reads the
whole context. Each round runs both loops on 1 and on N tasks, alternating which goes first;
"per task" is the difference between the two divided by N - 1, the steady state without the
first claim and the final answer. Seconds are Claude Code's and the server's own, start to
end (the scripted model answers at once): a floor, and noisy on a busy machine.
"""

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from scripts.bench.lib import Report, machine
from tests.integration.test_claude_code import CHAIN, CLAUDE, LOOK, LoopRun, work_the_board


def one_round(scratch: Path, tasks: int, order: list[str]) -> list[LoopRun]:
    runs = []
    for loop in order:
        for size in (1, tasks):
            root = scratch / f"{loop}-{size}"
            root.mkdir()
            runs.append(work_the_board(loop, size, root))
            done = runs[-1]
            print(f"{loop} {size} tasks: {done.turns} turns, {done.sent_bytes} B sent, "
                  f"{done.seconds:.1f} s", file=sys.stderr)  # fmt: skip
    return runs


def per_task(runs: list[LoopRun], loop: str, tasks: int, field: str) -> float:
    """The median over rounds of (value at N tasks - value at 1 task) / (N - 1)."""
    one = [float(getattr(r, field)) for r in runs if r.loop == loop and r.tasks == 1]
    many = [float(getattr(r, field)) for r in runs if r.loop == loop and r.tasks == tasks]
    return statistics.median((m - o) / (tasks - 1) for o, m in zip(one, many, strict=True))


def report(runs: list[LoopRun], tasks: int) -> Report:
    found = Report()
    for loop in (LOOK, CHAIN):
        at_n = [r for r in runs if r.loop == loop and r.tasks == tasks]
        found.info(f"{loop}: turns for {tasks} tasks", statistics.median(r.turns for r in at_n),
                   "turns")  # fmt: skip
        found.info(f"{loop}: turns per task", per_task(runs, loop, tasks, "turns"), "turns")
        found.info(f"{loop}: bytes sent to the model per task",
                   per_task(runs, loop, tasks, "sent_bytes"), "B",
                   note="the context the model re-reads, summed over its turns")  # fmt: skip
        found.info(f"{loop}: seconds for {tasks} tasks",
                   statistics.median(r.seconds for r in at_n), "s")  # fmt: skip
    look = per_task(runs, LOOK, tasks, "turns")
    chain = per_task(runs, CHAIN, tasks, "turns")
    found.info("turns per task, look / chain", look / chain, "x")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10, help="tasks in the larger board (>= 2)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write every run and the table here")
    args = parser.parse_args()
    if not CLAUDE.exists():
        raise SystemExit("the Claude Code CLI is not installed (scripts/setup installs it)")
    if args.tasks < 2:
        raise SystemExit("--tasks must be at least 2: per task is the difference from 1 task")
    runs: list[LoopRun] = []
    with tempfile.TemporaryDirectory(prefix="wvo-bench-turns-") as scratch:
        for n in range(args.rounds):
            folder = Path(scratch) / f"round-{n}"
            folder.mkdir()
            order = [LOOK, CHAIN] if n % 2 == 0 else [CHAIN, LOOK]
            runs += one_round(folder, args.tasks, order)
    found = report(runs, args.tasks)
    print(found.table())
    if args.json:
        payload = {
            "machine": machine(),
            "config": {"tasks": args.tasks, "rounds": args.rounds},
            "runs": [asdict(r) for r in runs],
            "results": [asdict(row) for row in found.rows],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
