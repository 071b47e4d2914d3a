"""JavaScript projects shaped like real ones: their own node_modules, made here by `npm ci`
from the npm registry (pinned by each sample's package-lock.json). One's `npm test` keeps a
cache where find-cache-dir says (CACHE_DIR); the other's is ava 6, which writes
node_modules/.cache/ava whatever the environment says, then a vite build, which bundles its
config in node_modules/.vite-temp, with neither folder there after `npm ci`. Green by hand,
each is green in the pre-flight, every check and every worker, and every task lands; the
person's node_modules is never written."""

import shutil
import subprocess
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import autopilot, backlog, git, make_project
from tests.conftest import open_db

SAMPLES = Path(__file__).parent / "samples"
SAMPLE = SAMPLES / "jsproject"
AVA = SAMPLES / "avaproject"
NPM_TIMEOUT_S = 300

pytestmark = pytest.mark.skipif(
    shutil.which("npm") is None, reason="no npm: scripts/setup says how to get node and npm"
)


def js_project(tmp_path: Path, sample: Path = SAMPLE) -> dict[str, Path]:
    project = make_project(tmp_path)
    repo = project["repo"]
    shutil.copytree(sample, repo, dirs_exist_ok=True)
    (repo / ".gitignore").write_text("node_modules/\ndist/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a JavaScript project")
    git(repo, "branch", "integration")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=repo,
                   check=True, capture_output=True, timeout=NPM_TIMEOUT_S)  # fmt: skip
    made = set((repo / "node_modules").iterdir())
    by_hand = subprocess.run(["npm", "test"], cwd=repo, capture_output=True, text=True)
    assert by_hand.returncode == 0, by_hand.stdout + by_hand.stderr  # green by hand
    for cache in set((repo / "node_modules").iterdir()) - made:  # as a fresh install: none
        shutil.rmtree(cache)
    shutil.rmtree(repo / "dist", ignore_errors=True)
    return project


def lands(project: dict[str, Path], tasks: list[dict[str, object]]) -> str:
    """Every task landed, with `npm test` as the check (green in the pre-flight too), and
    nothing written into the person's node_modules: what the worker's own `npm test`
    printed (the task that runs it)."""
    modules = project["repo"] / "node_modules"

    def listing() -> list[str]:
        return sorted(str(p.relative_to(modules)) for p in modules.rglob("*"))

    before = listing()
    anyio.run(backlog, project, tasks)
    done = autopilot(project, "--merge", "merge", "--onto", "integration", "--check", "npm test")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "pre-flight: `npm test` passes on integration" in done.stdout, done.stdout[-3000:]
    with open_db(project["state"]) as db:
        status = dict(db.execute("SELECT id, status FROM tasks").fetchall())
    assert status == {t["id"]: "done" for t in tasks}, done.stdout[-3000:]
    assert listing() == before
    return git(project["repo"], "show", "integration:ran-0.txt")


RUNS = {"fake_run": ["npm test"]}  # a worker that runs the project's tests


def test_npm_test_that_writes_its_cache_is_green_in_every_sandbox(tmp_path: Path) -> None:
    tasks = [{"id": f"T{n}", "title": f"task {n}"} for n in (1, 2)]
    ran = lands(js_project(tmp_path), [*tasks, {"id": "T3", "title": "tests", "metadata": RUNS}])
    # The worker ran the project's tests in its own sandbox too, its cache its own.
    assert (
        "ok" in ran and "cache in /tmp/.cache/sample-tests" in ran and ran.endswith("exit 0\n")
    ), ran


def test_ava_and_vite_write_their_caches_in_node_modules_and_every_task_lands(
    tmp_path: Path,
) -> None:
    project = js_project(tmp_path, AVA)
    modules = project["repo"] / "node_modules"
    assert not (modules / ".cache").exists() and not (modules / ".vite-temp").exists()
    ran = lands(project, [{"id": "T1", "title": "one"}, {"id": "T2", "title": "tests",
                                                         "metadata": RUNS}])  # fmt: skip
    assert "1 test passed" in ran and ran.endswith("exit 0\n"), ran


@pytest.mark.parametrize(
    ("check", "said"),
    [
        ("npm run tset", "(the package manager has no such script)"),
        ("jest --ci", "(a command was not found)"),
        (  # new folders in node_modules are the check's own; a package's are read-only
            "mkdir -p node_modules/.cache/ava/x && touch node_modules/find-cache-dir/lockfile",
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
