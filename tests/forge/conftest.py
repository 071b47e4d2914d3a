"""What the forge tests share: the test forge (server.py) serving a one-commit repository,
every request and answer of the test held to GitHub's description."""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.forge.server import Forge


def seeded(repo: Path) -> Path:
    """A repository of one commit (a README and the project's check, check.sh)."""
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    (repo / "README.md").write_text("a project\n")
    (repo / "check.sh").write_text("echo checked\n")
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=repo, check=True)
    return repo


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Forge]:
    with Forge(tmp_path, seeded(tmp_path / "seed")) as found:
        yield found
        assert found.violations == [], found.violations[:5]
