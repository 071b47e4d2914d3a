"""Others' words quoted into a text on GitLab act nowhere (rules/text.indented, quoted): GitLab
runs a quick action (`/merge`, `/approve`, `/close`, …) from any line that starts with "/"
outside the zones its extractor skips, and a fence does not hold them. `commands` below is
that extractor's rule, as GitLab documents and codes it (lib/gitlab/quick_actions/
extractor.rb): a zone from a line starting ``` to the first line that is exactly ```, an
HTML block, a `>>>` quote; then a command at column 0. The zones are cut out here, where GitLab
only steps over them: stricter, so a quote that passes here passes there."""

import re

from hypothesis import given
from hypothesis import strategies as st

from wvo_mcp.rules import pulls
from wvo_mcp.rules.text import fenced, indented, quoted

ZONES = (
    re.compile(r"^```.+?\n```$", re.MULTILINE | re.DOTALL),
    re.compile(r"^<[^>]+?>\n.+?\n</[^>]+?>$", re.MULTILINE | re.DOTALL),
    re.compile(r"^>>>\n.+?\n>>>$", re.MULTILINE | re.DOTALL),
)
COMMAND = re.compile(r"^/([a-z_]+)", re.MULTILINE)
HOSTILE = [
    "/merge",
    "```\n/merge",
    "fine\n```\n/approve\n```",
    "~~~\n/close\n~~~",
    ">>>\n/label ~ship\n>>>\n/merge",
    "<details>\n/x\n</details>\n/approve",
    "one\r/merge\rtwo\u2028/close\u2029/approve\x85/merge",
    "\n\n/merge\n\n",
]


def commands(text: str) -> list[str]:
    """The quick actions GitLab would run from `text` (a description or a note)."""
    for zone in ZONES:
        text = zone.sub("", text)
    # Ruby's ^ starts a line after "\n" only; any other break is counted too, to be safe.
    return COMMAND.findall("\n".join(text.splitlines()))


def test_a_fence_does_not_hold_a_quick_action_on_gitlab() -> None:
    assert commands(fenced("```\n/merge")) == ["merge"]  # why GitLab needs its own quoting


def test_no_line_of_theirs_starts_a_line_indented() -> None:
    for words in HOSTILE:
        said = indented(words)
        assert commands(said) == [], words
        assert all(line.startswith("    ") for line in said.splitlines()), words
        assert quoted(words, "gitlab") == said and quoted(words, "github") == fenced(words)
    assert indented("") == "    "


PIECES = ["/merge", "```", "~~~", ">>>", "<a>", "\n", "\r", " ", "`", "x", "\u2028"]


@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_nothing_they_write_starts_a_line_of_an_indented_quote(words: str) -> None:
    said = indented(words)
    assert all(line.startswith("    ") for line in said.splitlines())
    assert commands(said) == []


def test_a_merge_request_s_text_on_gitlab_runs_no_quick_action() -> None:
    for words in HOSTILE:
        summary = pulls.Summary(
            "gl/group/sub/project/12", words, words, "make check", words, words,
            (words, "https://example.test/x"), "#12", words, "a" * 40,
        )  # fmt: skip
        text = pulls.body(summary, "gitlab")
        assert commands(text) == [], text
        assert "Closes #12." in text
        own = [line for line in text.split("\n") if not line.startswith("    ")]
        assert not [line for line in own if line.startswith("/")], text
    # GitHub's text is as it always was: fenced.
    github = pulls.body(pulls.Summary("T1", "t", "/merge", "", "", ""))
    assert fenced("t\n\n/merge") in github and github == pulls.body(
        pulls.Summary("T1", "t", "/merge", "", "", ""), "github")  # fmt: skip


def test_a_quote_on_gitlab_names_no_issue_and_one_on_github_is_as_written() -> None:
    # GitLab's closing pattern reads the raw text, code blocks too (closing_issue_extractor.rb).
    words = "Fixes #3, #9 and other/repo#4\ncloses https://gitlab.example/g/p/-/issues/5 !6 @ann"
    on_gitlab = quoted(words, "gitlab")
    assert re.findall(r"#\d|://|![\w]|@\w", on_gitlab) == []
    assert on_gitlab.replace("\u200b", "") == indented(words)
    assert quoted(words, "github") == fenced(words)
