"""Landing through pull requests as a GitHub App (WVO_GITHUB_APP_ID and its private key), end
to end on the test GitHub: its JWT checked as GitHub checks it, installation tokens that
expire, every request and answer held to GitHub's description. The App lands what a
person's token does, and no worker sees its key or any of its tokens."""

import json
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import backlog
from tests.autopilot.test_pull_requests import approve, attend, checkpoints, start
from tests.autopilot.test_remote_landing import make_host, statuses
from tests.forge import both
from tests.forge.description import available
from tests.forge.server import Forge
from wvo_mcp.sandbox import bwrap

pytestmark = [
    pytest.mark.skipif(not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}"),
    pytest.mark.skipif(not available(), reason="no @octokit/openapi (scripts/setup)"),
    pytest.mark.parametrize("forge", ["github"], indirect=True),
]
forge = both.landing  # the fixture, on the test GitHub alone


def test_a_github_app_lands_what_a_token_does_and_no_worker_sees_its_key_or_a_token(
    tmp_path: Path, forge: Forge
) -> None:
    app = forge.install_app(life=61.0)  # kept a second by githubkit: minted again and again
    keys = tmp_path / "keys"
    keys.mkdir()
    key = keys / "wvo-queue.private-key.pem"
    key.write_text(app.key)
    forge.tokens.clear()  # no person's token is taken: the App's alone
    pilot = make_host(tmp_path, "a", forge.bare, forge.url, WVO_GITHUB_APP_ID=str(app.id),
                      WVO_GITHUB_APP_PRIVATE_KEY_FILE=str(key))  # fmt: skip
    line = app.key.splitlines()[5]  # a line of the key, as a worker would find it
    port = forge.web.rsplit(":", 1)[1]
    spec = {"secrets": [line], "read": [str(key), str(keys)], "tcp": [f"127.0.0.1:{port}"]}
    anyio.run(backlog, pilot.project, [
        {"id": "A", "title": "as the app"},
        {"id": "H", "title": "hunts", "metadata": {"fake": "probe", "fake_probe": spec}},
    ])  # fmt: skip
    log = tmp_path / "autopilot.log"
    attend(forge, start(pilot, forge, log), log, approve)
    assert statuses(pilot) == {"A": "done", "H": "done"}
    assert all(p.merged and p.merged_by == "autopilot" for p in forge.pulls.values())
    assert sorted(p.branch for p in forge.pulls.values()) == ["wvo/A", "wvo/H"]
    # Every request the App's: its installation tokens, each used before it expired.
    assert len(app.minted) >= 2 and app.expired == [] and app.refused == [], app
    assert all(status != 401 for _, _, status in forge.requests), forge.requests
    # The hostile worker found neither the key nor a token, and could not reach the forge.
    summaries = [s for s, _ in checkpoints(pilot, "H")]
    found = [o for s in summaries if s.startswith("probe ") for o in json.loads(s[6:])]
    assert {o["probe"] for o in found} >= {"secret", "read", "tcp"}, found
    assert [o for o in found if o["ok"]] == [], found
    runs = (pilot.project["state"] / "runs").rglob("*.log")
    said = [log.read_text(), *(p.read_text(errors="replace") for p in runs)]
    for text in said:
        assert line not in text and not any(token in text for token in app.minted)
    assert forge.violations == []
