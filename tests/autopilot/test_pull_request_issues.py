"""An issue whose task lands through a pull request is told so once (issue 70, finding 3),
end to end on the test forge: the merge closes the issue (its `Closes #N`), then the sync
comments on it with the pull request named and labels it where asked, however often it runs;
a merge made by hand while the autopilot does not look cancels nothing, through the sync or
GitHub's close delivered to the webhook. The forge is named
by WVO_FORGE_API alone, for `import` and the autopilot both; the pull request names the tree
its checks passed on."""

import os
import subprocess
from pathlib import Path

import pytest

from tests.autopilot.test_pull_requests import approve, attend, host
from tests.autopilot.test_remote_landing import Host, statuses
from tests.conftest import wvo
from tests.forge import both
from tests.forge.description import available
from tests.forge.server import TOKEN, Forge
from tests.http.conftest import http_server
from tests.http.test_webhooks import SECRET, deliver, done, payload
from wvo_mcp.sandbox import bwrap

pytestmark = [
    pytest.mark.skipif(not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}"),
    pytest.mark.skipif(not available(), reason="no @octokit/openapi (scripts/setup)"),
    # The sync's comment and GitHub's webhook after a landing: GitLab's sync and webhook are
    # tested with them (tests/forge, tests/http), not as landing scenarios.
    pytest.mark.parametrize("forge", ["github"], indirect=True),
]
forge = both.landing  # the fixture, on the test GitHub alone (pytestmark)
OTHER = "ghp_forge-test-token-of-the-sync"  # the sync's own token, where the test says so


def sync(pilot: Host, forge: Forge, *more: str, token: str = TOKEN) -> str:
    """`import github:team/project` into the host's state with its settings: the forge named
    by WVO_FORGE_API, no --forge-api."""
    env = {k: v for k, v in pilot.env.items() if k.startswith("WVO_")}
    env["WVO_FORGE_TOKEN"] = token
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        done = wvo(pilot.project["state"], "import", "github:team/project", *more)
    finally:
        for key, value in old.items():
            os.environ.pop(key, None) if value is None else os.environ.update({key: value})
    assert done.returncode == 0, done.stderr
    return done.stdout


def start(pilot: Host, log: Path) -> "subprocess.Popen[str]":
    args = pilot.args("--until-empty", "--via", "pull-request", "--forge-poll", "0.2")
    with log.open("w") as out:
        return subprocess.Popen(args, env=pilot.env, stdout=out, stderr=subprocess.STDOUT,
                                text=True, cwd=Path(__file__).parents[2])  # fmt: skip


def landed(forge: Forge, number: int) -> list[str]:
    return [c.body for c in forge.said if c.number == number and c.body.startswith("Landed")]


def test_an_issue_its_pull_request_closes_is_told_once_with_the_pull_request_and_label(
    tmp_path: Path, forge: Forge
) -> None:
    number = forge.open_issue("Say hello", "Add a greeting.", ("wvo",))
    pilot = host(tmp_path, forge, WVO_FORGE_API=forge.api)
    sync(pilot, forge)
    log = tmp_path / "autopilot.log"
    attend(forge, start(pilot, log), log, approve)
    [pull] = forge.pulls.values()
    assert pull.merged and forge.issues[number].state == "closed"  # by the merge
    task = f"gh/team/project/{number}"
    assert statuses(pilot) == {task: "done"}
    # Its text names the tree the queue's checks passed on: the merged head's.
    tree = forge.git("rev-parse", f"{pull.head}^{{tree}}")
    assert f"They passed on tree `{tree}`" in pull.body, pull.body

    said = sync(pilot, forge, "--landed-label", "shipped")
    assert f"#{number}: its task landed: commented on and labelled 'shipped' (closed " \
        "already)" in said, said  # fmt: skip
    url = f"{forge.web}/team/project/pull/{pull.number}"
    assert landed(forge, number) == [
        f"Landed in {url}: task `{task}` is done.\n<!-- wvo-mcp:landed:{task} -->"
    ]
    assert "shipped" in forge.issues[number].labels and forge.issues[number].state == "closed"
    writes = [r for r in forge.requests if r[0] != "GET"]
    again = sync(pilot, forge, "--landed-label", "shipped")
    assert "its task landed" not in again, again
    assert len(landed(forge, number)) == 1
    assert [r for r in forge.requests if r[0] != "GET"] == writes, "nothing written twice"


def test_a_merge_by_hand_the_autopilot_has_not_seen_cancels_nothing_and_is_told_once(
    tmp_path: Path, forge: Forge
) -> None:
    number = forge.open_issue("Say hello", "Add a greeting.", ("wvo",))
    task = f"gh/team/project/{number}"
    pilot = host(tmp_path, forge, WVO_FORGE_API=forge.api)
    sync(pilot, forge)
    log = tmp_path / "autopilot.log"
    between: list[str] = []
    webhook = http_server(pilot.project["state"], WVO_WEBHOOK_SECRET=SECRET,
                          WVO_FORGE_TOKEN=OTHER, WVO_FORGE_API=forge.api,
                          WVO_WEBHOOK_REPOS="team/project")  # fmt: skip

    def merges_by_hand_unseen(forge: Forge, pull: int, head: str) -> None:
        """The autopilot's token refused (it does not see the forge), a person merges, and
        GitHub's close of the issue reaches the webhook, then the sync runs, each with a
        token of its own, before the autopilot looks again."""
        with forge.lock:
            forge.tokens = {OTHER}
        # Nor does it see the branch move: its git is refused too (lighttpd reads its users
        # file at each request), else a fetch of its own could find the merge first.
        users = forge.git_server.conf.parent / "users"
        kept = users.read_text()
        users.write_text(f"{forge.git_server.user}:not-the-team's\n")
        refused = subprocess.run(["git", "ls-remote", forge.url], capture_output=True, text=True,
                                 env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})  # fmt: skip
        assert refused.returncode != 0, refused.stdout
        forge.review(pull, "APPROVED")
        forge.merge_by_hand(pull)
        assert forge.issues[number].state == "closed"
        closed = payload(forge, number, "closed", state="closed", title="Say hello")
        between.append(done(deliver(server, closed, "d-closed")))
        between.append(sync(pilot, forge, token=OTHER))
        between.append(statuses(pilot)[task])
        users.write_text(kept)
        with forge.lock:
            forge.tokens.add(TOKEN)

    with webhook as server:
        attend(forge, start(pilot, log), log, merges_by_hand_unseen)
    [pull] = forge.pulls.values()
    hooked, said, status = between
    assert f"#{number} was closed by the merge of pull request #{pull.number}" in hooked, hooked
    assert f"#{number}: closed by the merge of pull request #{pull.number}: its task is not " \
        "cancelled" in said and "0 cancelled (issue closed)" in said, said  # fmt: skip
    assert status == "needs_review", "the task waits for the autopilot to see the merge"
    assert statuses(pilot) == {task: "done"}
    told = sync(pilot, forge)
    assert f"#{number}: its task landed: commented on (closed already)" in told, told
    assert len(landed(forge, number)) == 1 and "/pull/" in landed(forge, number)[0]
    assert "its task landed" not in sync(pilot, forge)
