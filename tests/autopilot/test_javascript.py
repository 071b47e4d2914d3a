"""A JavaScript project shaped like a real one: its own node_modules, made here by `npm ci`
from the npm registry (pinned by samples/jsproject/package-lock.json), and an `npm test`
that keeps a cache where find-cache-dir says, as ava, nyc and xo do. Green by hand, it is
green in the pre-flight, every check and every worker, and every task lands; the person's
node_modules is never written."""

import shutil
import subprocess
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import autopilot, backlog, git, make_project
from tests.conftest import open_db

SAMPLE = Path(__file__).parent / "samples" / "jsproject"
NPM_TIMEOUT_S = 300

pytestmark = pytest.mark.skipif(
    shutil.which("npm") is None, reason="no npm: scripts/setup says how to get node and npm"
)


def js_project(tmp_path: Path) -> dict[str, Path]:
    project = make_project(tmp_path)
    repo = project["repo"]
    for name in ("package.json", "package-lock.json", "test.js"):
        shutil.copy(SAMPLE / name, repo / name)
    (repo / ".gitignore").write_text("node_modules/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a JavaScript project")
    git(repo, "branch", "integration")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=repo,
                   check=True, capture_output=True, timeout=NPM_TIMEOUT_S)  # fmt: skip
    by_hand = subprocess.run(["npm", "test"], cwd=repo, capture_output=True, text=True)
    assert by_hand.returncode == 0, by_hand.stderr  # green by hand
    shutil.rmtree(repo / "node_modules" / ".cache")  # as a fresh install has it: none
    return project


def test_npm_test_that_writes_its_cache_is_green_in_every_sandbox(tmp_path: Path) -> None:
    project = js_project(tmp_path)
    repo = project["repo"]
    before = sorted(str(p.relative_to(repo)) for p in (repo / "node_modules").rglob("*"))
    tasks = [{"id": f"T{n}", "title": f"task {n}"} for n in (1, 2)]
    tasks.append({"id": "T3", "title": "runs the tests", "metadata": {"fake_run": ["npm test"]}})
    anyio.run(backlog, project, tasks)
    done = autopilot(project, "--merge", "merge", "--onto", "integration", "--check", "npm test")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "pre-flight: `npm test` passes on integration" in done.stdout, done.stdout[-3000:]
    with open_db(project["state"]) as db:
        status = dict(db.execute("SELECT id, status FROM tasks").fetchall())
    assert status == {"T1": "done", "T2": "done", "T3": "done"}, done.stdout[-3000:]
    # The worker ran the project's tests in its own sandbox too, its cache its own.
    ran = git(repo, "show", "integration:ran-0.txt")
    assert (
        "ok" in ran and "cache in /tmp/.cache/sample-tests" in ran and ran.endswith("exit 0\n")
    ), ran
    after = sorted(str(p.relative_to(repo)) for p in (repo / "node_modules").rglob("*"))
    assert after == before  # nothing written into the person's node_modules


@pytest.mark.parametrize(
    ("check", "said"),
    [
        ("npm run tset", "(the package manager has no such script)"),
        ("jest --ci", "(a command was not found)"),
        (
            "mkdir -p node_modules/.cache/ava/x && touch node_modules/lockfile",
            "(a tool wrote into a read-only folder)",
        ),
    ],
)
def test_a_red_pre_flight_names_its_cause(tmp_path: Path, check: str, said: str) -> None:
    project = js_project(tmp_path)
    anyio.run(backlog, project, [{"id": "T1", "title": "one"}])
    refused = autopilot(project, "--merge", "merge", "--onto", "integration", "--check", check)
    assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert said in refused.stderr, refused.stderr
    assert "make it pass on integration" not in refused.stderr
