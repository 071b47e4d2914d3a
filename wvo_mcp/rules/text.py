"""Agent-written text made safe where a person reads it, and quoted where a model reads it (pure).

Agent-written text where a person reads it (pure). Every line the CLI, the autopilot and
the logs show a person passes through `plain` or `shown` (cli/output.py, autopilot/view.py,
cli/entry.py's log format); tests/unit/test_terminal_text.py finds any print that does not.
What others wrote reaches a prompt or a pull request `fenced`: quoted, never markup; on
GitLab `indented` and `unlinked`, where neither a fence keeps a quick action from acting nor
code a closing pattern (`quoted` picks).

Carried out by `wvo_mcp/cli/output.py`, `wvo_mcp/autopilot/view.py` and
`wvo_mcp/edge/issue_sync.py`."""

import re
from typing import Literal

ForgeKind = Literal["github", "gitlab"]  # which forge a text goes to decides how it quotes


def plain(text: str, limit: int = 10_000) -> str:
    """One line, no control characters, cut at `limit`: a title, reason or message an agent
    wrote, for a terminal (escape sequences could rewrite what the person sees, and a line
    break could print a forged line of its own)."""
    flat = "".join(c if c.isprintable() else " " for c in text)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def shown(text: str) -> str:
    """Text of many lines (a check's output, a context section): its line breaks and tabs
    kept, every other control character a space."""
    return "".join(c if c.isprintable() or c in "\n\t" else " " for c in text)


def fenced(text: str, info: str = "text") -> str:
    """Someone else's words quoted as they are, in a fenced code block none of their lines
    can close: CommonMark ends a fence only on a line of at least as many backticks as
    opened it, and this fence is longer than any run of backticks in them. Inside it nothing
    is markup (no heading, list, link, mention or reference acts), and no line of theirs
    reads as a line of the text around it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def indented(text: str) -> str:
    """Someone else's words quoted as an indented code block, every line four spaces in,
    for GitLab: it runs quick actions (`/merge`, `/approve`, `/close`, …) from any line that
    starts with "/" in a description or note, as the token's user, and its extractor
    (lib/gitlab/quick_actions/extractor.rb) skips only a zone from a line starting ``` to the
    first line that is exactly ```, so a longer fence (`fenced`) does not hold them: one of
    their lines that is ``` would end the zone, and the next would act. Here no line of
    theirs starts at column 0, whatever it is (``` ~~~ >>> < /), so none starts a command or
    a zone; every line break Python knows ends a line, so none hides in one. Inside it
    nothing is markup either. The text around it must leave a blank line before it."""
    lines = text.splitlines() or [""]
    return "\n".join(f"    {line}" for line in lines)


def quoted(text: str, kind: ForgeKind, info: str = "text") -> str:
    """Someone else's words quoted for a text on forge `kind`: fenced on GitHub, indented
    on GitLab (whose quick actions a fence does not hold) and `unlinked` (whose closing
    pattern reads code too)."""
    return indented(unlinked(text)) if kind == "gitlab" else fenced(text, info)


def unlinked(text: str) -> str:
    """Someone else's words, their lines kept, with a zero-width space after each `@`, `#`
    and `!` before a name or number and in each `://`, so no mention, reference or link is
    in them: GitLab's closing pattern (lib/gitlab/closing_issue_extractor.rb) reads a merge
    request's raw text, code blocks too, so `Fixes #3` quoted would close #3 on merge."""
    return re.sub(r"([@#!])(?=[\w-])", "\\1\u200b", text).replace("://", ":\u200b//")


def spanned(text: str) -> str:
    """One line of someone else's words as an inline code span (nothing in it acts): its
    backticks longer than any run in it, spaced off a backtick at either end."""
    flat = plain(text)
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{ticks}{pad}{flat}{pad}{ticks}"


def inert(text: str) -> str:
    """One line of someone else's words where no code span can hold them (a pull request's
    title, which a merge commit's message may carry to the branch): a zero-width space
    after each `@` and `#` before a name or number, and in each `://`, so no mention,
    reference, closing keyword or link in it acts, while it reads the same."""
    flat = re.sub(r"([@#])(?=[\w-])", "\\1\u200b", plain(text))
    return flat.replace("://", ":\u200b//")
