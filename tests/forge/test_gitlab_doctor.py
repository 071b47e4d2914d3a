"""`wvo-mcp doctor --via merge-request` on a GitLab remote, against the test GitLab: which forge
and why, where the token was read, each permission probed without writing, each failure in
GitLab's words (scope, role, project access token), and the trust rule in force."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import fresh_env
from tests.forge import both
from tests.forge.gitlab.server import TOKEN, Forge
from wvo_mcp.config import Settings
from wvo_mcp.forge import credentials
from wvo_mcp.git import Git, locate
from wvo_mcp.wiring import doctor

WVO = Path(sys.executable).with_name("wvo-mcp")
forge = both.forge  # the fixture, on the test GitLab alone (under its relative URL root)
pytestmark = pytest.mark.parametrize("forge", ["gitlab"], indirect=True)


@pytest.fixture
def clone(forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Git:
    """A person's clone of the test GitLab's project (its remote the smart-HTTP URL), in an
    environment that names no forge and no token."""
    for name in (*credentials.GITLAB, *credentials.GITLAB_HOSTS, credentials.OWN,
                 "WVO_FORGE_API", "WVO_TRUST_ROLE", "WVO_TRUST"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", forge.url, str(path)], check=True, capture_output=True)
    repo = locate(path)
    assert repo is not None
    return Git(repo, repo.top)


PERSON = ("the token's user @wvo-bot-person (a person's account: a project or group access "
          "token, a bot user of its own, is the norm for a fleet)")  # fmt: skip


def _doctor(
    settings: Settings, git: Git, api: str | None, via: str = "merge-request"
) -> dict[str, doctor.Check]:
    return {c.name: c for c in doctor._forge(settings, git, "origin/main", api, via)}


def test_doctor_says_the_forge_the_token_and_the_rule_and_writes_nothing(
    forge: Forge, clone: Git, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.from_env()
    monkeypatch.setenv("WVO_FORGE_TOKEN", TOKEN)
    found = _doctor(settings, clone, forge.api)
    assert all(c.ok for c in found.values()), found
    said = found["forge"].detail
    assert said.startswith(f"group/sub/project on {forge.api}, GitLab's API, as --forge-api "
                           "names it (its path ends in /api/v4)"), said  # fmt: skip
    assert "with a token for 127.0.0.1 (from WVO_FORGE_TOKEN)" in said
    assert "main requires checks: pipeline, approving reviews: 1" in said
    assert "pipelines must succeed: yes; all threads resolved: yes" in said
    assert "merge method merge, squash option default_off; no merge train" in said
    assert set(found) == {"forge", "forge token: project: read",
                          "forge token: merge requests: read", "forge token: pipelines: read",
                          "forge token: issues: read", "forge token: token scope: api",
                          "forge token: role: may merge into main",
                          "forge token: merge requests: write", "who steers"}  # fmt: skip
    assert found["forge token: role: may merge into main"].detail == (
        f"{PERSON} is a Maintainer (access level 40); main's protection lets Developers + "
        "Maintainers merge"
    )
    forge.bots.add(forge.login)  # a project access token's user: nothing more to say
    assert _doctor(settings, clone, forge.api)["forge token: role: may merge into main"].detail == (
        "the token's user @wvo-bot-person is a Maintainer (access level 40); main's "
        "protection lets Developers + Maintainers merge"
    )
    forge.bots.discard(forge.login)
    assert found["who steers"].detail.startswith(
        "the repository's admin, maintain, write steer; everyone else's words are data; "
        "on GitLab: Owner, Maintainer, Developer"
    )
    assert all(TOKEN not in c.detail for c in found.values())
    # `--via pull-request` on a GitLab remote is the same way of landing: the same probes.
    same = _doctor(settings, clone, forge.api, "pull-request")
    assert list(same) == list(found) and all(c.ok for c in same.values())
    # WVO_FORGE_API does what --forge-api does, and says so.
    told = _doctor(dataclasses.replace(settings, forge_api=forge.api), clone, None)
    assert "as WVO_FORGE_API names it" in told["forge"].detail and all(c.ok for c in told.values())
    # With neither, a host that does not say "gitlab" is taken for a GitHub Enterprise
    # Server: said, with the flag that names the GitLab.
    [guessed] = _doctor(settings, clone, None).values()
    assert not guessed.ok
    assert "is neither github.com nor a GitLab's by name" in guessed.detail
    assert "give --forge-api https://127.0.0.1/api/v4" in guessed.detail
    # An API outside the instance's root names another project: GitLab says it has none.
    [outside] = _doctor(settings, clone, f"{forge.web}/api/v4").values()
    assert not outside.ok and "git/group/sub/project" in outside.detail
    # glab's own variable, where GITLAB_HOST names this host.
    monkeypatch.delenv("WVO_FORGE_TOKEN")
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    monkeypatch.setenv("GITLAB_HOST", forge.web)
    assert "(from GITLAB_TOKEN)" in _doctor(settings, clone, forge.api)["forge"].detail
    assert forge.pulls == {} and forge.notes == [] and forge.issues == {}, "wrote nothing"
    writes = [(m, p, s) for m, p, s in forge.requests if m != "GET"]
    assert writes and all(
        (m, p, s) == ("POST", f"/projects/{forge.id}/merge_requests", 400) for m, p, s in writes
    ), writes  # only the write probe, refused as invalid


def test_a_read_api_token_or_a_reporter_is_told_what_to_give_it(
    forge: Forge, clone: Git, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.from_env()
    monkeypatch.setenv("WVO_FORGE_TOKEN", TOKEN)
    forge.scopes = ["read_api"]
    found = _doctor(settings, clone, forge.api)
    assert found["forge"].ok and found["forge token: project: read"].ok
    assert all(found[f"forge token: {r}: read"].ok for r in ("merge requests", "pipelines",
                                                             "issues"))  # fmt: skip
    scope = found["forge token: token scope: api"]
    assert not scope.ok and scope.detail.startswith("scopes: read_api: the queue opens")
    assert "make a project access token with the api scope" in scope.detail
    write = found["forge token: merge requests: write"]
    assert write.detail == (
        "GitLab refused to open a merge request (403: insufficient_scope): give the token the "
        "api scope: make a project access token with the api scope (Settings > Access tokens; "
        "a token's scopes are fixed when it is made)"
    ), write
    # A Reporter, where Developers + Maintainers may merge into main.
    forge.scopes = ["api"]
    forge.levels[forge.login] = 20
    role = _doctor(settings, clone, forge.api)["forge token: role: may merge into main"]
    assert not role.ok
    assert role.detail == (
        f"{PERSON} is a Reporter (access level 20); main's protection lets Developers + "
        "Maintainers merge: merging needs the Developer role or above: make a project access "
        "token with the Developer role (Settings > Access tokens)"
    )
    # Where only Maintainers may merge, a Developer is told so, and how to widen it.
    forge.levels[forge.login] = 30
    forge.merge_access = 40
    role = _doctor(settings, clone, forge.api)["forge token: role: may merge into main"]
    assert not role.ok and "is a Developer (access level 30)" in role.detail
    assert "lets Maintainers merge: merging needs the Maintainer role" in role.detail
    assert "or allow Developers + Maintainers to merge in Settings > Repository" in role.detail
    assert forge.pulls == {}, "wrote nothing"
    writes = {(m, p, s) for m, p, s in forge.requests if m != "GET"}
    assert writes == {("POST", f"/projects/{forge.id}/merge_requests", 403),
                      ("POST", f"/projects/{forge.id}/merge_requests", 400)}  # fmt: skip


def test_no_token_or_a_revoked_one_is_refused_with_where_a_token_is_read(
    forge: Forge, clone: Git, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = Settings.from_env()
    only_git = tmp_path / "only-git"  # a PATH with git and no `glab` to ask for a token
    only_git.mkdir()
    (only_git / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    monkeypatch.setenv("PATH", str(only_git))
    [missing] = _doctor(settings, clone, forge.api).values()
    assert not missing.ok and missing.name == "forge"
    assert "--via merge-request needs a token for 127.0.0.1" in missing.detail
    assert "WVO_FORGE_TOKEN (or GITLAB_TOKEN with GITLAB_HOST=127.0.0.1)" in missing.detail
    assert "`glab auth login --hostname 127.0.0.1`" in missing.detail
    assert forge.requests == [], "nothing asked without a token"
    monkeypatch.setenv("WVO_FORGE_TOKEN", "glpat-revoked-0000000000")
    found = _doctor(settings, clone, forge.api)
    assert not found["forge"].ok
    assert "refused the token" in found["forge"].detail
    assert "(read from WVO_FORGE_TOKEN)" in found["forge"].detail
    assert "glab auth login --hostname 127.0.0.1" in found["forge"].detail
    assert "glpat-revoked" not in found["forge"].detail
    assert {m for m, _, _ in forge.requests} == {"GET", "POST"} and forge.pulls == {}


def test_the_command_takes_merge_request_and_prints_the_forge_s_lines(
    forge: Forge, clone: Git, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        [str(WVO), "doctor", "--json", "--onto", "origin/main", "--via", "merge-request",
         "--forge-api", forge.api],
        cwd=clone.repo.top, capture_output=True, text=True, stdin=subprocess.DEVNULL,
        env=fresh_env({"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                       "WVO_OTEL_ENABLED": "0", "WVO_FORGE_TOKEN": TOKEN}),
        timeout=120,
    )  # fmt: skip
    found = {c["name"]: c for c in json.loads(done.stdout)}
    forge_lines = {n: c for n, c in found.items() if n == "forge" or n.startswith("forge ")}
    assert len(forge_lines) == 9 and all(c["ok"] for c in forge_lines.values()), forge_lines
    # No delivery heard yet: what a webhook would save, and how to point one here.
    hook = forge_lines["forge webhook"]["detail"]
    assert "no delivery heard for group/sub/project" in hook and "/webhooks/gitlab" in hook, hook
    assert "WVO_GITLAB_WEBHOOK_SECRET" in hook and "pipeline events" in hook, hook
    assert found["remote"]["ok"], found["remote"]  # git over the same smart-HTTP URL
    assert TOKEN not in done.stdout and TOKEN not in done.stderr
