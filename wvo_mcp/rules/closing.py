"""Closing words in a worker's commit messages, which would close issues once they land (pure).

GitHub and GitLab close an issue that a commit's message names after a closing word once the
commit reaches the default branch, whoever wrote it, and the sync would then take the issue's
task for closed. A worker's messages are data: a submission whose messages carry any such
reference is refused before anything of it is taken, and goes back to the worker with why.
The task's own issue is closed by the queue's own words (its pull request's text) or by the
sync once the task lands, never by a worker's.

Carried out by `wvo_mcp/git/intake.py` (take_commits) and `wvo_mcp/autopilot/submissions.py`."""

import re
import unicodedata
from collections.abc import Sequence

from wvo_mcp.rules.text import plain

SHOWN = 10  # closing phrases named in a refusal

# GitHub's keywords (close, closes, closed, fix, fixes, fixed, resolve, resolves, resolved)
# and GitLab's default closing pattern's (closing, fixing, resolving, implement…), in any
# case, a colon allowed; then "issue(s)" or not; then a reference: #N, PATH#N, !N, an issue's,
# pull request's or merge request's address, or an external tracker's KEY-123 (GitLab's
# Jira pattern, upper case). Wider than either forge reads: a refusal is only stricter.
_WORD = (
    r"(?<!\w)(?:clos(?:e[sd]?|ing)|fix(?:e[sd]|ing)?|resolv(?:e[sd]?|ing)"
    r"|implement(?:s|ed|ing)?)"
)
_REFERENCE = (
    r"(?:[\w.-]+(?:/[\w.-]+)*)?[#!]\d+"
    r"|https?://\S*?/(?:issues|pull|pulls|merge_requests|work_items)/\d+"
    r"|(?-i:[A-Z][A-Z0-9_]+-\d+)"
)
_CLOSING = re.compile(
    rf"{_WORD}\s*:?\s*(?:issues?\s+)?(?:{_REFERENCE})", re.IGNORECASE | re.MULTILINE
)


def closing(message: str) -> list[str]:
    """The closing phrases in a commit message (`Fixes #2`), each as written, once. Invisible
    format characters are dropped first, so none hides a phrase a forge may still read."""
    visible = "".join(c for c in message if unicodedata.category(c) != "Cf")
    found: list[str] = []
    for match in _CLOSING.finditer(visible):
        phrase = " ".join(match.group(0).split())
        if phrase not in found:
            found.append(phrase)
    return found


def refusal(found: Sequence[tuple[str, str]], tip: str) -> tuple[str, str]:
    """What a worker is told when its submission `tip` has commits (`found`: each commit and
    a closing phrase of its message) whose messages would close issues: a summary (the
    checkpoint's and the returned event's) and the details for its next attempt."""
    shown = "; ".join(f"{commit[:12]}: {plain(phrase, 80)}" for commit, phrase in found[:SHOWN])
    more = " and more" if len(found) > SHOWN else ""
    summary = f"returned: its commits' messages would close issues ({shown}{more})"
    details = (
        f"Your submission ({tip}) was not taken: these commit messages name an issue after a "
        f"closing word ({shown}{more}). GitHub and GitLab close such an issue when the commit "
        "reaches the default branch, whoever it belongs to, so a commit message may not close "
        "any: the merge queue closes your task's own issue itself when it lands. None of these "
        "commits reached the person's repository. This attempt starts afresh: do the work "
        "again, and write commit messages that say what changed without a closing word before "
        "an issue reference (`Fixes #3`, `Closes group/project#3`, `Resolves <issue URL>`; "
        "`See #3` or `Part of #3` are fine), then submit again."
    )
    return summary[:500], details
