"""The autopilot's live view on a terminal: event lines, and a block of what runs now.

The autopilot's live view on a terminal: its event lines scroll, and below them a block
of what runs now is redrawn (each worker's task, time, last checkpoint; queue counts;
totals). Not on a terminal, only the event lines are written.

Carries out `rules/text.py`."""

import sys
from dataclasses import dataclass
from typing import TextIO

from wvo_mcp.models import Checkpoint, QueueCounts
from wvo_mcp.rules.text import plain


@dataclass(frozen=True)
class Running:
    agent: str
    task: str
    seconds: float
    checkpoint: Checkpoint | None


def block(
    state: str,
    running: list[Running],
    counts: QueueCounts,
    totals: dict[str, float],
    width: int = 100,
) -> list[str]:
    """The redrawn lines (pure)."""
    tokens = totals.get("input_tokens", 0) + totals.get("output_tokens", 0)
    lines = [
        f"── autopilot {state} · {totals.get('done', 0):.0f} done · "
        f"{totals.get('released', 0):.0f} handed back · {tokens / 1000:.1f}k tokens · "
        f"${totals.get('cost_usd', 0):.2f}",
        f"   queue: ready {counts.ready} · waiting {counts.waiting_on_dependencies} · "
        f"in progress {counts.by_status.get('in_progress', 0)}",
    ]
    for run in running:
        minutes, seconds = divmod(int(run.seconds), 60)
        line = f"  {run.agent:<12} {run.task:<16} {minutes:>3}m{seconds:02d}s"
        if run.checkpoint is not None:
            progress = run.checkpoint.progress
            line += f"  {progress if progress is not None else '?':>3}%  {run.checkpoint.summary}"
        lines.append(line)
    if not running:
        lines.append("  (no worker running)")
    return [plain(line)[:width] for line in lines]


class Terminal:
    """Event lines above, the block below, redrawn in place with ANSI escapes: its own, the
    only ones it writes (every line it is given is made plain first)."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.drawn = 0

    def _erase(self) -> None:
        if self.drawn:
            # Up to the block's first line, then clear to the end of the screen.
            self.out.write(f"\x1b[{self.drawn}F\x1b[J")
            self.drawn = 0

    def say(self, line: str, last: list[str]) -> None:
        self._erase()
        self.out.write(plain(line) + "\n")
        self.draw(last)

    def draw(self, lines: list[str]) -> None:
        self._erase()
        self.out.write("".join(plain(line) + "\n" for line in lines))
        self.out.flush()
        self.drawn = len(lines)
