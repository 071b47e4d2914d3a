"""How commands run inside a repository find its state folder (`wvo-mcp init` records it in
.git/config): a folder a sandboxed command made in the working tree, or a record in a file
it can write, must never become the state wvo-mcp trusts (its providers, tokens, tasks)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CLI_TIMEOUT_SECONDS, fresh_env
from tests.gitwork import git

WVO = Path(sys.executable).with_name("wvo-mcp")
PLANTED = """version: 1
providers:
  - name: planted
    preference: 1
    tiers: [{name: t, model: m, complexity: [1, 10]}]
"""


def wvo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WVO), *args],
        cwd=cwd,
        env=fresh_env(
            {"PATH": "/usr/bin:/bin", "HOME": str(cwd.parent), "WVO_OTEL_ENABLED": "0"}, warm=True
        ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    return path


def test_a_state_folder_planted_in_the_working_tree_is_not_used(repo: Path) -> None:
    (repo / ".wvo").mkdir()
    (repo / ".wvo" / "providers.yaml").write_text(PLANTED)
    shown = wvo(repo, "providers")
    assert shown.returncode == 2 and "run `wvo-mcp init` here first" in shown.stderr
    assert "planted" not in shown.stdout
    assert not (repo / ".wvo" / "orchestrator.db").exists()


def test_a_record_in_an_included_config_file_is_not_read(repo: Path, tmp_path: Path) -> None:
    """The working tree is the sandbox's to write, and git would follow an include into it."""
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "providers.yaml").write_text(PLANTED)
    (repo / "wvo.cfg").write_text(f"[wvo]\n\tstateRoot = {planted}\n")
    git(repo, "config", "include.path", "../wvo.cfg")
    assert git(repo, "config", "--get", "wvo.stateRoot") == str(planted)  # git would use it
    shown = wvo(repo, "providers")
    assert shown.returncode == 2 and "run `wvo-mcp init` here first" in shown.stderr
    assert "planted" not in shown.stdout and not (planted / "orchestrator.db").exists()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_a_sandboxed_command_cannot_forge_the_record(repo: Path, tmp_path: Path) -> None:
    assert wvo(repo, "init").returncode == 0
    state = git(repo, "config", "--get", "wvo.stateRoot")
    forged = tmp_path / "forged"
    attack = (
        f"git config wvo.stateRoot {forged}; "
        f"printf '[wvo]\\n\\tstateRoot = {forged}\\n' >> .git/config; "
        "rm -rf .wvo; mkdir -p .wvo && echo x > .wvo/providers.yaml"
    )
    ran = wvo(repo, "sandbox", "run", "--workspace", str(repo), "--", "/bin/sh", "-c", attack)
    assert "backend bwrap" in ran.stdout, ran.stdout + ran.stderr
    assert git(repo, "config", "--get", "wvo.stateRoot") == state
    assert (repo / ".wvo" / "orchestrator.db").exists()
    assert not (repo / ".wvo" / "providers.yaml").exists()
