"""The person's token by the forge's host and kind (forge/credentials.py): GitLab's variables
only for the host glab sends them to, glab's login asked for a GitLab host and gh's for a
GitHub one, each with an allowlisted environment, and refusals that say what is read."""

import json
import os
import stat
from pathlib import Path

import pytest

from wvo_mcp.forge import credentials

GLPAT = "glpat-for-code-example"


def _cli(bin_dir: Path, name: str, answer: str) -> Path:
    """A fake `gh` or `glab` that writes down how it was asked (its arguments and
    environment) and prints `answer`."""
    log = bin_dir / f"{name}.calls"
    script = bin_dir / name
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'args': sys.argv[1:], 'env': dict(os.environ)}) + '\\n')\n"
        f"print({answer!r})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return log


def _calls(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_gitlab_s_variables_are_read_for_the_host_glab_sends_them_to() -> None:
    env = {"GITLAB_TOKEN": "glpat-for-gitlab-com", "PATH": "/nonexistent"}
    found = credentials.token("gitlab.com", env, kind="gitlab")
    assert found is not None and (found.value, found.source) == (
        "glpat-for-gitlab-com", "GITLAB_TOKEN")  # fmt: skip
    assert credentials.token("code.example", env, kind="gitlab") is None
    said = credentials.missing("code.example", "import gitlab:GROUP/PROJECT", env, kind="gitlab")
    assert "GITLAB_TOKEN is set, but read for gitlab.com only" in said, said
    assert "a gitlab.com token is never sent to code.example" in said
    assert "WVO_FORGE_TOKEN (or GITLAB_TOKEN with GITLAB_HOST=code.example)" in said, said
    assert "`glab auth login --hostname code.example`" in said and "gh auth" not in said
    for named in ("code.example", "https://code.example", "https://Code.Example:8443/"):
        mine = {**env, "GITLAB_HOST": named}
        found = credentials.token("code.example", mine, kind="gitlab")
        assert found is not None and found.source == "GITLAB_TOKEN", named
        # Named for another host, the token is not sent to gitlab.com either.
        assert credentials.token("gitlab.com", mine, kind="gitlab") is None, named
    later = {"OAUTH_TOKEN": "third", "GITLAB_ACCESS_TOKEN": "second", "PATH": "/nonexistent"}
    found = credentials.token("gitlab.com", later, kind="gitlab")
    assert found is not None and found.source == "GITLAB_ACCESS_TOKEN"
    own = credentials.token("code.example", {**env, "WVO_FORGE_TOKEN": "mine"}, kind="gitlab")
    assert own is not None and own.source == "WVO_FORGE_TOKEN"
    # GitHub's variables are never read for GitLab, nor GitLab's for GitHub.
    assert (
        credentials.token("gitlab.com", {"GH_TOKEN": "gho_x", "PATH": "/x"}, kind="gitlab") is None
    )
    assert credentials.token("github.com", {**env, "PATH": "/x"}) is None
    assert credentials.names("gitlab.com", "gitlab", {}) == (
        "WVO_FORGE_TOKEN", "GITLAB_TOKEN", "GITLAB_ACCESS_TOKEN", "OAUTH_TOKEN")  # fmt: skip
    assert credentials.names("github.com") == ("WVO_FORGE_TOKEN", "GH_TOKEN", "GITHUB_TOKEN")


def test_glab_is_asked_for_a_gitlab_host_and_gh_for_a_github_one(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    glab = _cli(bin_dir, "glab", GLPAT)
    gh = _cli(bin_dir, "gh", "gho_from-gh")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path),
        "GLAB_CONFIG_DIR": str(tmp_path / "glab"), "GH_CONFIG_DIR": str(tmp_path / "gh"),
        "GITLAB_TOKEN": "glpat-for-gitlab-com", "SECRET_OF_THE_SHELL": "x",
    }  # fmt: skip
    found = credentials.token("code.example", env, kind="gitlab")
    assert found is not None and (found.value, found.source) == (GLPAT, credentials.GLAB)
    [asked] = _calls(glab)
    assert asked["args"] == ["config", "get", "token", "--host", "code.example"]
    told = asked["env"]
    assert isinstance(told, dict)
    assert "GITLAB_TOKEN" not in told and "SECRET_OF_THE_SHELL" not in told  # allowlisted
    assert told["GLAB_CONFIG_DIR"] == env["GLAB_CONFIG_DIR"] and "GH_CONFIG_DIR" not in told
    assert _calls(gh) == [], "gh is never asked for a GitLab host"
    hub = credentials.token("ghe.example", env)
    assert hub is not None and (hub.value, hub.source) == ("gho_from-gh", credentials.GH)
    assert [c["args"] for c in _calls(gh)] == [["auth", "token", "--hostname", "ghe.example"]]
    assert len(_calls(glab)) == 1, "glab is never asked for a GitHub host"


def test_a_refused_gitlab_token_says_where_it_was_read_and_what_would_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in credentials.GITLAB_HOSTS:  # the server's own environment: gitlab.com's
        monkeypatch.delenv(name, raising=False)
    said = credentials.refused("gitlab.com", "GITLAB_TOKEN", kind="gitlab")
    assert said.startswith("give a valid token for gitlab.com (read from GITLAB_TOKEN): ")
    assert "WVO_FORGE_TOKEN (or GITLAB_TOKEN or GITLAB_ACCESS_TOKEN or OAUTH_TOKEN)" in said
    assert "`glab auth login --hostname gitlab.com`" in said
    hub = credentials.refused("127.0.0.1", "GH_ENTERPRISE_TOKEN")
    assert "`gh auth login --hostname 127.0.0.1`" in hub and "glab" not in hub
