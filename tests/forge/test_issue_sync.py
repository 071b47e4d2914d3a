"""`wvo-mcp import github:OWNER/REPO --label wvo` against the test forge: labelled issues
become tasks with their dependencies, a second sync makes nothing twice, an edited issue
updates its task as `import --update` does (claimed work untouched), and a closed issue
cancels its task. Every request is validated against GitHub's own description."""

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wvo
from tests.forge.description import available
from tests.forge.server import TOKEN, Forge

pytestmark = pytest.mark.skipif(not available(), reason="no @octokit/openapi (scripts/setup)")


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Forge]:
    seed = tmp_path / "seed"
    seed.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=seed, check=True)
    (seed / "README.md").write_text("a project\n")
    subprocess.run([*git, "add", "-A"], cwd=seed, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=seed, check=True)
    with Forge(tmp_path, seed) as found:
        yield found
        assert found.violations == [], found.violations[:5]


def sync(forge: Forge, state: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("WVO_FORGE_TOKEN", TOKEN)
    done = wvo(state, "import", "github:team/project", "--label", "wvo", "--forge-api", forge.api)
    assert done.returncode == 0, done.stderr
    return done.stdout


def tasks(state: Path) -> dict[str, tuple[str, str, str]]:
    with sqlite3.connect(state / "orchestrator.db") as db:
        rows = db.execute("SELECT id, title, status, description FROM tasks").fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def deps(state: Path, task_id: str) -> list[str]:
    with sqlite3.connect(state / "orchestrator.db") as db:
        query = "SELECT depends_on_id FROM task_dependencies WHERE task_id = ? ORDER BY 1"
        rows = db.execute(query, (task_id,)).fetchall()
    return [r[0] for r in rows]


def test_labelled_issues_become_tasks_once_and_stay_in_step(
    forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    first = forge.open_issue("Add the login page", "The form and its route.", ("wvo", "size: S"))
    second = forge.open_issue("Log in with a token", f"Blocked by #{first}.", ("wvo",))
    forge.open_issue("Someone else's", "not labelled", ("question",))
    said = sync(forge, state, monkeypatch)
    assert "2 task(s) created" in said, said
    one, two = f"gh/team/project/{first}", f"gh/team/project/{second}"
    found = tasks(state)
    assert set(found) == {one, two}
    assert found[one][:2] == ("Add the login page", "pending")
    assert found[one][2] == "The form and its route."
    assert deps(state, two) == [one]
    # Run again: nothing twice.
    again = sync(forge, state, monkeypatch)
    assert "0 task(s) created" in again and "2 unchanged" in again, again
    assert set(tasks(state)) == {one, two}
    # An edited issue updates its task; a closed one cancels its.
    forge.edit_issue(first, title="Add the login page (with a logout)")
    forge.edit_issue(second, state="closed")
    third = sync(forge, state, monkeypatch)
    assert "1 updated" in third and "1 cancelled" in third, third
    found = tasks(state)
    assert found[one][:2] == ("Add the login page (with a logout)", "pending")
    assert found[two][1] == "cancelled"
    # Reopened: wanted again.
    forge.edit_issue(second, state="open")
    fourth = sync(forge, state, monkeypatch)
    assert "1 pending again" in fourth, fourth
    assert tasks(state)[two][1] == "pending"


def test_a_sync_without_a_token_says_what_to_do_and_writes_nothing(
    forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WVO_FORGE_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    state = tmp_path / "state"
    forge.open_issue("a task")
    done = wvo(state, "import", "github:team/project", "--forge-api", forge.api)
    assert done.returncode != 0 and "WVO_FORGE_TOKEN" in done.stderr, done.stderr
    assert forge.requests == []


def test_a_team_s_own_label_table_is_checked_and_used(
    forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    table = tmp_path / "labels.yaml"
    table.write_text("'effort: huge': {complexity: 9, job_size: 10}\n")
    number = forge.open_issue("a big one", "", ("wvo", "effort: huge"))
    monkeypatch.setenv("WVO_FORGE_TOKEN", TOKEN)
    done = wvo(state, "import", "github:team/project", "--labels", str(table),
               "--forge-api", forge.api)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(state / "orchestrator.db") as db:
        row = db.execute("SELECT complexity, job_size FROM tasks WHERE id = ?",
                         (f"gh/team/project/{number}",)).fetchone()  # fmt: skip
    assert tuple(row) == (9, 10)
    table.write_text("'effort: huge': {complexity: 99}\n")
    refused = wvo(state, "import", "github:team/project", "--labels", str(table),
                  "--forge-api", forge.api)  # fmt: skip
    assert refused.returncode != 0 and "1-10" in refused.stderr, refused.stderr
