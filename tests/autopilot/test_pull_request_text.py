"""A pull request's text is the product's own (issue 68, finding 4), end to end: a labelled
issue whose body closes another repository's issue and another open issue here, and pings a
team, goes through `import github:` and the autopilot's `--via pull-request` to a merge on
the test forge, which closes issues and records mentions as GitHub does (outside code only,
tests/forge/server.py's `acting`). Only the task's own issue closes."""

from pathlib import Path

import pytest

from tests.autopilot.test_pull_requests import (
    approve,
    attend,
    host,
    import_issues,
    start,
)
from tests.autopilot.test_remote_landing import statuses
from tests.forge.description import available
from tests.forge.server import Acting, Forge, acting
from wvo_mcp.sandbox import bwrap

pytestmark = [
    pytest.mark.skipif(not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}"),
    pytest.mark.skipif(not available(), reason="no @octokit/openapi (scripts/setup)"),
]


def test_an_issues_closing_keywords_and_mentions_act_nowhere_through_its_pull_request(
    tmp_path: Path, forge: Forge
) -> None:
    other = forge.open_issue("Keep this open", "Not a task.", labels=())
    words = (f"Add a greeting.\n\nFixes other-org/other-repo#4\ncloses #{other}\n"
             "@team/everyone please look")  # fmt: skip
    number = forge.open_issue("Say hello", words, ("wvo",))
    pilot = host(tmp_path, forge)
    import_issues(pilot, forge)
    log = tmp_path / "autopilot.log"
    attend(forge, start(pilot, forge, log), log, approve)

    [pull] = forge.pulls.values()
    assert pull.merged and statuses(pilot) == {f"gh/team/project/{number}": "done"}
    # No other issue was closed, here or elsewhere, and nobody was pinged; its own closed.
    assert forge.issues[other].state == "open"
    assert forge.closed_elsewhere == [] and forge.mentioned == []
    assert forge.issues[number].state == "closed"
    # The issue's words are in it, quoted; the one closing line is the product's.
    assert acting(pull.body, forge.full) == Acting((f"team/project#{number}",), ())
    assert acting(pull.title, forge.full) == Acting((), ())
    assert "Fixes other-org/other-repo#4" in pull.body and f"\n\nCloses #{number}.\n\n" in (
        pull.body)  # fmt: skip
