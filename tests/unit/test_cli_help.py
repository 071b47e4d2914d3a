"""`wvo-mcp --help` and every command's --help: each summary and each option's help is a whole
sentence, and -v is taken before or after the command."""

import argparse
import re

import pytest

from wvo_mcp import cli
from wvo_mcp.cli.entry import summary

SENTENCE = re.compile(r"[A-Z].*\.", re.DOTALL)


def helps(parser: argparse.ArgumentParser, where: str) -> list[tuple[str, str | None]]:
    """(where, help) of every argument of `parser`, every command's summary, and the same
    inside every command, all the way down."""
    found: list[tuple[str, str | None]] = []
    for action in parser._actions:
        name = "/".join(action.option_strings) or action.dest
        found.append((f"{where} {name}", action.help))
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                found.append((f"{where} {choice.dest} (summary)", choice.help))
            for command, sub in action.choices.items():
                found += helps(sub, f"{where} {command}")
    return found


def test_every_summary_and_option_help_is_a_whole_sentence() -> None:
    found = helps(cli.parser(), "wvo-mcp")
    assert len(found) > 150  # every command's options were walked, not just the top's
    wrong = [(where, text) for where, text in found if not SENTENCE.fullmatch(text or "")]
    assert wrong == []


def test_a_summary_is_the_first_sentence_of_a_long_docstring() -> None:
    assert summary("Wire it in.\n    Run twice, it changes nothing.") == "Wire it in."
    long = summary("One line, e.g. this one,\n    over two.")
    assert long == "One line, e.g. this one, over two."
    assert summary("Names `a.b`. Then more.") == "Names `a.b`."


@pytest.mark.parametrize(
    ("argv", "verbose"),
    [(["status"], False), (["-v", "status"], True), (["status", "-v"], True),
     (["--verbose", "import", "f"], True), (["serve"], False)],
)  # fmt: skip
def test_verbose_is_taken_before_or_after_the_command(argv: list[str], verbose: bool) -> None:
    assert cli.parser().parse_args(argv).verbose is verbose


def test_help_is_printed_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["status", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: wvo-mcp status")
    assert "Show this help and exit." in out and "Machine-readable output." in out
