"""The product's GitHub client as a GitHub App (wvo_mcp/forge/github_app.py) against the test
GitHub (tests/forge/app.py): its JWT checked as GitHub checks it, its installation found,
tokens minted before they expire, each refusal saying what to do, and `doctor` probing what
the App may do."""

import subprocess
from pathlib import Path

import pytest

from tests.forge.description import available
from tests.forge.server import Forge
from wvo_mcp.errors import Fault, ValidationFailed
from wvo_mcp.forge import github_app
from wvo_mcp.forge.github import GitHub

pytestmark = pytest.mark.skipif(not available(), reason="no @octokit/openapi (scripts/setup)")


def test_as_a_github_app_each_request_carries_an_installation_token_minted_before_it_expires(
    forge: Forge, tmp_path: Path
) -> None:
    app = forge.install_app(life=60.0)  # each token lives a minute: githubkit mints anew
    key = tmp_path / "app.pem"
    key.write_text(app.key)
    found = github_app.configured({"WVO_GITHUB_APP_ID": str(app.id),
                                   "WVO_GITHUB_APP_PRIVATE_KEY_FILE": str(key)})  # fmt: skip
    assert found is not None and app.key not in repr(found)
    client = GitHub(forge.api, forge.full, "", app=found)
    forge.tokens.clear()  # no person's token: only the App's work
    assert client.repository().name == forge.full
    required = client.requirements("main")
    forge.push_branch("wvo/a1", {"a.txt": "a\n"})
    opened = client.open("wvo/a1", "main", "as the app", "")
    assert client.look(opened.number, required).pull.number == opened.number
    assert client.installation == app.installation
    assert len(app.minted) >= 2 and app.expired == [] and app.refused == [], app
    assert all(status != 401 for _, _, status in forge.requests), forge.requests
    assert forge.violations == []


def test_an_app_not_installed_or_not_itself_is_refused_saying_what_to_do(
    forge: Forge, tmp_path: Path
) -> None:
    app = forge.install_app()
    other = forge.owner, forge.name
    forge.owner, forge.name = "team", "elsewhere"  # the App is installed on team/project only
    try:
        client = GitHub(forge.api, "team/project", "",
                        app=github_app.App(str(app.id), app.key, "test"))  # fmt: skip
        with pytest.raises(Fault, match=r"is not installed on team/project.*Install App"):
            client.repository()
    finally:
        forge.owner, forge.name = other
    impostor = GitHub(forge.api, forge.full, "", app=github_app.App("999", app.key, "test"))
    with pytest.raises(Fault, match=r"refused the token.*check WVO_GITHUB_APP_ID \(999\)"):
        impostor.repository()
    assert app.refused == ["Integration not found"]
    with pytest.raises(ValidationFailed, match="numeric App ID"):
        github_app.configured({"WVO_GITHUB_APP_ID": "Iv1.abc", "WVO_GITHUB_APP_PRIVATE_KEY": "x"})
    with pytest.raises(ValidationFailed, match="no private key"):
        github_app.configured({"WVO_GITHUB_APP_ID": "7", "WVO_GITHUB_APP_PRIVATE_KEY": "hunter2"})
    with pytest.raises(ValidationFailed, match="without its id"):
        github_app.configured({"WVO_GITHUB_APP_PRIVATE_KEY_FILE": str(tmp_path / "k.pem")})
    assert github_app.configured({}) is None


def test_doctor_probes_what_the_app_may_do_as_the_app(
    forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wvo_mcp.config import Settings
    from wvo_mcp.git import Git, locate
    from wvo_mcp.wiring import doctor

    app = forge.install_app()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", forge.url, str(clone)], check=True, capture_output=True)
    repo = locate(clone)
    assert repo is not None
    git = Git(repo, repo.top)
    for name in ("WVO_FORGE_TOKEN", "GH_TOKEN", "GITHUB_TOKEN", "GH_ENTERPRISE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WVO_GITHUB_APP_ID", str(app.id))
    monkeypatch.setenv("WVO_GITHUB_APP_PRIVATE_KEY", app.key)
    forge.tokens.clear()
    forge.permissions["pull_requests"] = "read"  # the App was given too little
    found = {c.name: c for c in doctor._forge(Settings.from_env(), git, "origin/main", forge.api)}
    assert f"as GitHub App {app.id} (its key from WVO_GITHUB_APP_PRIVATE_KEY)" in (
        found["forge"].detail)  # fmt: skip
    assert not found["forge token: pull requests: write"].ok
    assert found["forge token: metadata: read"].ok
    assert app.minted and app.refused == [] and forge.pulls == {}
    assert app.key not in repr(found)
