"""A task's run logs: each run's log capped (RunLog), numbered, the newest RUN_LOGS_KEPT kept.

One log per run of a task, in the state folder (`<state>/runs/<task>/<n>.log`): a
worker's stdout lines and its stderr, at most RUN_LOG_BYTES, shown as text a person can read
safely; runs numbered 1, 2, ... (next_run), and the oldest removed past RUN_LOGS_KEPT
(rotate)."""

from pathlib import Path
from typing import TextIO

from wvo_mcp.rules.text import shown

RUN_LOG_BYTES = 8 * 1024 * 1024  # of a worker's output, per run
RUN_LOGS_KEPT = 20  # runs kept per task: older logs are removed


class RunLog:
    """The run's log: a worker's stdout lines and its stderr, RUN_LOG_BYTES at most, with no
    control character but line breaks and tabs (a person reads it, and a terminal would obey
    a worker's escape sequences)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.written = 0

    def write(self, text: str) -> None:
        if self.written >= RUN_LOG_BYTES:  # a chatty worker fills no disk
            return
        text = shown(text[: RUN_LOG_BYTES - self.written])
        self.written += len(text)
        self.out.write(text)
        if self.written >= RUN_LOG_BYTES:
            self.out.write(f"\n# wvo-mcp autopilot: log cut at {RUN_LOG_BYTES} bytes\n")


def runs(run_dir: Path) -> list[int]:
    return sorted(int(p.stem) for p in run_dir.glob("*.log") if p.stem.isdigit())


def last_run(run_dir: Path) -> int:
    numbers = runs(run_dir)
    return numbers[-1] if numbers else 0


def next_run(run_dir: Path, repos: Path) -> str:
    """The next run's number (1, 2, ...), taken for good: its log in this state folder and
    its repository's folder under `repos` (beside the person's repository) are both made
    now, each only if new, so no two runs share a number, whichever autopilots and state
    folders work on one repository."""
    rotate(run_dir)
    repos.mkdir(parents=True, exist_ok=True)
    number = max(last_run(run_dir), *(int(p.name) for p in repos.iterdir() if p.name.isdigit()), 0)
    while True:
        number += 1
        try:
            (repos / str(number)).mkdir(mode=0o755)
        except FileExistsError:
            continue
        try:
            (run_dir / f"{number}.log").open("x").close()
        except FileExistsError:
            (repos / str(number)).rmdir()
            continue
        return str(number)


def rotate(run_dir: Path) -> None:
    """Keep the newest RUN_LOGS_KEPT numbered runs of a task (their logs)."""
    for number in runs(run_dir)[: -RUN_LOGS_KEPT + 1 or None]:
        for leftover in run_dir.glob(f"{number}.*"):
            leftover.unlink(missing_ok=True)
