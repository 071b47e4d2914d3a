"""The autopilot's live view: the block it redraws, and how it redraws it."""

import io

from wvo_mcp.autopilot.view import Running, Terminal, block
from wvo_mcp.models import Checkpoint, QueueCounts

COUNTS = QueueCounts(
    ready=5, lease_expired=0, waiting_on_dependencies=3, backing_off=0,
    by_status={"pending": 8, "in_progress": 2}, wip_global_used=2, wip_global_limit=4,
    wip_agent_used=0, wip_agent_limit=1, wip_remaining=1,
)  # fmt: skip


def test_the_block_shows_each_worker_the_queue_and_the_totals() -> None:
    checkpoint = Checkpoint(seq=1, agent_id="claude-1", summary="parser skeleton", progress=60,
                            created_at="2026-11-22T10:00:00.000Z")  # fmt: skip
    lines = block(
        "running",
        [Running("claude-1", "E1.T3", 72, checkpoint), Running("codex-1", "E2.T1", 8, None)],
        COUNTS,
        {"done": 12, "released": 2, "input_tokens": 8000, "output_tokens": 200, "cost_usd": 0.31},
    )
    assert "12 done" in lines[0] and "8.2k tokens" in lines[0] and "$0.31" in lines[0]
    assert "ready 5" in lines[1] and "waiting 3" in lines[1] and "in progress 2" in lines[1]
    assert lines[2].split()[:3] == ["claude-1", "E1.T3", "1m12s"]
    assert "60%" in lines[2] and "parser skeleton" in lines[2]
    assert lines[3].split() == ["codex-1", "E2.T1", "0m08s"]
    assert block("paused", [], COUNTS, {})[2].strip() == "(no worker running)"


def test_the_terminal_redraws_the_block_below_the_event_lines() -> None:
    out = io.StringIO()
    terminal = Terminal(out)
    terminal.draw(["a", "b"])
    terminal.say("event", ["a", "c"])
    # The block is erased (up 2 lines, clear), the event printed, the block drawn again.
    assert out.getvalue() == "a\nb\n\x1b[2F\x1b[Jevent\na\nc\n"
