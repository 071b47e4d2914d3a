"""A pull request's text is the product's own (issue 68, finding 4; issue 72), end to end on
each test forge: a labelled issue whose body closes another repository's issue and another
open issue here, pings a team, and carries GitLab's quick actions (at a line's start, after a
fence GitLab's extractor ends early, and in a `>>>` quote), goes through `import` and the
autopilot's `--via pull-request` to a merge, which closes issues and records mentions as GitHub
does (outside code only, tests/forge/server.py's `acting`; on GitLab an indented block is
code too, but its closing pattern reads code as well) and records every quick action GitLab
would run (tests/forge/gitlab/server.py's `acted`). Only the task's own issue closes, and
nothing the queue writes runs a quick action."""

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
from tests.forge import both
from tests.forge.both import Side
from tests.forge.description import available
from tests.forge.server import Acting, Forge
from wvo_mcp.sandbox import bwrap

pytestmark = [
    pytest.mark.skipif(not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}"),
    pytest.mark.skipif(not available(), reason="no @octokit/openapi (scripts/setup)"),
]
forge = both.landing  # the fixture: each scenario on the test GitHub and the test GitLab
side = both.side  # the fixture: what the scenario says differently on each
# GitLab runs these as the token's user wherever a line starts with them outside its code
# zones: a ``` zone ends at the first line that is exactly ```, a >>> quote at the next >>>.
QUICK = "/merge\n/approve\n```\n/close\n```\n/label ~deploy\n>>>\n/unlock\n>>>\n/close"


def test_an_issues_closing_keywords_mentions_and_quick_actions_act_nowhere_through_its_pull_request(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    other = forge.open_issue("Keep this open", "Not a task.", labels=())
    said = (f"Add a greeting.\n\nFixes other-org/other-repo#4\ncloses #{other}\n"
            f"@team/everyone please look\n{QUICK}")  # fmt: skip
    number = forge.open_issue("Say hello /merge", said, ("wvo",))
    pilot = host(tmp_path, forge)
    import_issues(pilot, forge)
    log = tmp_path / "autopilot.log"
    attend(forge, start(pilot, forge, log), log, approve)

    [pull] = forge.pulls.values()
    assert pull.merged and statuses(pilot) == {side.task(number): "done"}
    # No other issue was closed, here or elsewhere, and nobody was pinged; its own closed.
    assert forge.issues[other].state == "open"
    assert forge.closed_elsewhere == [] and forge.mentioned == []
    assert forge.issues[number].state == "closed"
    # The issue's words are in it, quoted; the one closing line is the product's.
    assert forge.acting(pull.body) == Acting((f"{forge.full}#{number}",), ())
    assert forge.acting(pull.title) == Acting((), ())
    # (On GitLab a zero-width space follows each # and @ of theirs: its closing pattern reads
    # code too.)
    assert "Fixes other-org/other-repo#4" in pull.body.replace("\u200b", "")
    assert f"\n\nCloses #{number}.\n\n" in pull.body
    assert "/unlock" in pull.body  # quoted, not dropped
    # GitLab would have run none of it (the fixture asserts `acted` empty after each test).
    assert getattr(forge, "acted", []) == []
