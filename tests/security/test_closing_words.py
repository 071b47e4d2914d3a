"""A worker's commit messages close nothing (issue 83, finding 2), through the real autopilot
`--via pull-request` on each test forge, which closes what a commit that reaches the default
branch names, as GitHub and GitLab do: a worker whose task is W commits with the message
`Fixes #2, closes #3`; its submission is refused before anything of it reaches the person's
repository, and goes back to it with why; its next attempt lands with plain words, and the
other issues stay open, their tasks untouched."""

import signal
import subprocess
import time
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import RUN_TIMEOUT_S, backlog
from tests.autopilot.test_pull_requests import approve, host, import_issues
from tests.autopilot.test_remote_landing import Host, statuses
from tests.conftest import open_db
from tests.forge import both
from tests.forge.both import Side
from tests.forge.description import available
from tests.forge.server import Forge
from wvo_mcp.rules.closing import closing
from wvo_mcp.sandbox import bwrap

pytestmark = [
    pytest.mark.skipif(not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}"),
    pytest.mark.skipif(not available(), reason="no @octokit/openapi (scripts/setup)"),
]
forge = both.landing  # the fixture: on the test GitHub and the test GitLab
side = both.side


def returned(state: Path, task_id: str) -> list[str]:
    with open_db(state) as db:
        return [r[0] or "" for r in db.execute(
            "SELECT reason FROM task_events WHERE task_id = ? AND kind = 'returned' ORDER BY id",
            (task_id,),
        )]  # fmt: skip


def test_a_workers_closing_words_close_nothing_and_cancel_nothing(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    two = forge.open_issue("Two", "Someone's work.")
    three = forge.open_issue("Three", "Someone else's work.")
    pilot = host(tmp_path, forge)
    state = pilot.project["state"]
    import_issues(pilot, forge)
    words = f"Fixes #{two}, closes #{three}"
    anyio.run(backlog, pilot.project, [
        {"id": "W1", "title": "the worker's own", "epic_id": "E",
         "metadata": {"fake_message": words}},
    ])  # fmt: skip
    log = tmp_path / "autopilot.log"
    land_then_stop(pilot, forge, side, log)
    # Its first submission went back to it, saying why, and nothing of it was taken.
    [back] = returned(state, "W1")
    assert "messages would close issues" in back and f"Fixes #{two}" in back, back
    refused = back.split("(", 1)[1].split(":", 1)[0]  # the commit, as the refusal names it
    repo = pilot.project["repo"]
    found = subprocess.run(["git", "-C", str(repo), "cat-file", "-e", f"{refused}^{{commit}}"],
                           capture_output=True)  # fmt: skip
    assert found.returncode != 0, f"the refused commit {refused} reached the person's repository"
    # Its next attempt landed, and no closing word of a worker's reached the branch.
    assert statuses(pilot) == {"W1": "done", side.task(two): "pending", side.task(three): "pending"}
    [pull] = forge.pulls.values()
    assert pull.merged and pull.merged_by == "autopilot", pull
    assert closing(forge.git("log", "--format=%B", forge.branch)) == []
    assert forge.issues[two].state == "open" and forge.issues[three].state == "open"
    assert "messages would close issues" in log.read_text()
    import_issues(pilot, forge)  # the sync, once more: nothing of theirs is cancelled
    assert statuses(pilot) == {"W1": "done", side.task(two): "pending", side.task(three): "pending"}


def land_then_stop(pilot: Host, forge: Forge, side: Side, log: Path) -> None:
    """The autopilot on epic E alone until W1's pull request merged (a writer approves each
    head once its check ended), then stopped as a person stops it: `--until-empty` would wait
    for the issues' tasks, which are no work of E's."""
    via = ("--via", "merge-request" if side.gitlab else "pull-request")
    args = pilot.args(*via, "--forge-api", forge.api, "--forge-poll", "0.1", "--epic", "E")
    with log.open("w") as out:
        process = subprocess.Popen(args, env=pilot.env, stdout=out, stderr=subprocess.STDOUT,
                                   text=True, cwd=Path(__file__).parents[2])  # fmt: skip
    deadline = time.monotonic() + RUN_TIMEOUT_S
    seen: set[tuple[int, str]] = set()
    try:
        while not any(p.merged for p in forge.pulls.values()):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-4000:]
            for pull in forge.open_pulls():
                run = forge.runs.get(pull.head)
                if (pull.number, pull.head) not in seen and run is not None and run.done.is_set():
                    seen.add((pull.number, pull.head))
                    approve(forge, pull.number, pull.head)
            time.sleep(0.05)
        while statuses(pilot).get("W1") != "done":
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=RUN_TIMEOUT_S)
