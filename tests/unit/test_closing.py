"""What in a commit message would close an issue on GitHub or GitLab (rules/closing.py)."""

import pytest

from wvo_mcp.rules.closing import SHOWN, closing, refusal


@pytest.mark.parametrize(
    ("message", "found"),
    [
        ("Fixes #2, closes #3", ["Fixes #2", "closes #3"]),
        ("fix: the parser\n\nResolves: group/sub/project#12", ["Resolves: group/sub/project#12"]),
        ("CLOSED #9", ["CLOSED #9"]),
        ("Closing issue #7 and #8", ["Closing issue #7"]),  # GitLab closes both: one refuses
        ("Implements ABC-123", ["Implements ABC-123"]),  # GitLab's Jira pattern
        ("fixes https://github.com/o/r/issues/4", ["fixes https://github.com/o/r/issues/4"]),
        (
            "Closes https://gitlab.example/g/p/-/issues/5",
            ["Closes https://gitlab.example/g/p/-/issues/5"],
        ),
        ("squash-fixes #3", ["fixes #3"]),  # GitLab's \b reads a word after a hyphen
        ("Fix\u200bes #3", ["Fixes #3"]),  # an invisible character hides nothing
        ("fixed\n#9", ["fixed #9"]),
    ],
)
def test_a_closing_word_before_an_issue_is_found(message: str, found: list[str]) -> None:
    assert closing(message) == found


@pytest.mark.parametrize(
    "message",
    [
        "fix: the parser",
        "Fixes the bug reported in #3",
        "See #3; part of #4",
        "prefixes #3",  # no word of its own
        "fixes utf-8 decoding",  # KEY-123 is upper case only
        "closes https://example.com/docs",  # an address, not an issue's
    ],
)
def test_words_that_close_nothing_are_not_found(message: str) -> None:
    assert closing(message) == []


def test_a_refusal_names_each_commit_and_phrase_and_says_what_is_fine() -> None:
    found = [(f"{n:040x}", f"Fixes #{n}") for n in range(SHOWN + 2)]
    summary, details = refusal(found, "f" * 40)
    assert summary.startswith("returned: its commits' messages would close issues")
    assert f"{0:012x}: Fixes #0" in summary and "and more" in summary
    assert "f" * 40 in details and "`See #3`" in details and "None of these" in details
