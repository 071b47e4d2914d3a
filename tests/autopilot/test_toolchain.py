"""A project shaped like a real one: its test runner lives in its own `.venv`, which git
ignores and a fresh checkout lacks. The autopilot's checks and workers see it read-only; a
red target is refused before anything launches; a target red by itself holds the queue and
charges no worker."""

import subprocess
import sys
from pathlib import Path

import anyio

from tests.autopilot.conftest import autopilot, backlog, env, git, make_project
from tests.conftest import ROOT, open_db

CHECK = ".venv/bin/python -m minitest"
# The project's own test runner, installed only in its .venv: every tests/test_*.py file's
# test_* functions, exit 1 when one fails.
MINITEST = """import importlib.util, pathlib, sys
failed = 0
for path in sorted(pathlib.Path("tests").glob("test_*.py")):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in dir(module):
        if name.startswith("test_"):
            try:
                getattr(module, name)()
            except AssertionError as exc:
                failed += 1
                print(f"FAILED {path}::{name}: {exc}")
print(f"minitest: {failed} failed")
sys.exit(1 if failed else 0)
"""
PASSING = "def test_one():\n    assert 1 + 1 == 2\n"
FAILING = "def test_red():\n    assert False, 'the base is red'\n"


def venv_project(tmp_path: Path, base_test: str = PASSING) -> dict[str, Path]:
    """make_project's repository with a .venv (made here, from this Python's base
    interpreter) holding the project's test runner, and a test suite of its own."""
    project = make_project(tmp_path)
    repo = project["repo"]
    (repo / ".gitignore").write_text(".venv/\n__pycache__/\n")
    (repo / "tests").mkdir()
    (repo / "tests" / "test_base.py").write_text(base_test)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tests")
    git(repo, "branch", "integration")
    base_python = Path(sys.base_prefix) / "bin" / "python3"
    subprocess.run([str(base_python), "-m", "venv", "--without-pip", str(repo / ".venv")],
                   check=True)  # fmt: skip
    site = next((repo / ".venv" / "lib").glob("python3*/site-packages"))
    (site / "minitest").mkdir()
    (site / "minitest" / "__init__.py").write_text("")
    (site / "minitest" / "__main__.py").write_text(MINITEST)
    return project


def merge_args(*extra: str) -> list[str]:
    return ["--merge", "merge", "--onto", "integration", "--check", CHECK, *extra]


def statuses(project: dict[str, Path]) -> dict[str, str]:
    with open_db(project["state"]) as db:
        return dict(db.execute("SELECT id, status FROM tasks").fetchall())


def test_checks_and_workers_use_the_projects_venv_and_land_every_task(tmp_path: Path) -> None:
    project = venv_project(tmp_path)
    repo = project["repo"]
    before = sorted(p.name for p in (repo / ".venv").iterdir())
    tasks = [
        {"id": f"T{n}", "title": f"test {n}",
         "metadata": {"fake_files": {f"tests/test_t{n}.py": f"def test_t{n}():\n    assert {n}\n"}}}
        for n in (1, 2)
    ]  # fmt: skip
    tasks.append({"id": "T3", "title": "uses the toolchain", "metadata": {"fake_run": [
        ".venv/bin/python -c 'import minitest, sys; print(sys.prefix)'",
        "python -c 'import os; print(os.environ[\"VIRTUAL_ENV\"])'",
        "touch .venv/planted",
    ]}})  # fmt: skip
    anyio.run(backlog, project, tasks)
    done = autopilot(project, *merge_args())
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"pre-flight: `{CHECK}` passes on integration" in done.stdout
    assert statuses(project) == {"T1": "done", "T2": "done", "T3": "done"}, done.stdout
    landed = git(repo, "ls-tree", "-r", "--name-only", "integration").split()
    assert {"tests/test_t1.py", "tests/test_t2.py", "ran-0.txt"} <= set(landed)
    # The worker ran the project's Python from its own repository's .venv, on its PATH...
    ran = [git(repo, "show", f"integration:ran-{n}.txt") for n in range(3)]
    assert ran[0].endswith(".venv\nexit 0\n") and ".wvo-worktrees" in ran[0], ran[0]
    assert ran[1].strip().endswith(".venv\nexit 0"), ran[1]
    # ...and could not write into it: the person's .venv is as it was.
    assert "Read-only file system" in ran[2] and not ran[2].endswith("exit 0\n"), ran[2]
    assert sorted(p.name for p in (repo / ".venv").iterdir()) == before


def test_a_red_target_is_refused_before_anything_launches(tmp_path: Path) -> None:
    project = venv_project(tmp_path, base_test=FAILING)
    anyio.run(backlog, project, [{"id": "T1", "title": "one"}])
    refused = autopilot(project, *merge_args())
    assert refused.returncode == 2, refused.stdout + refused.stderr
    said = refused.stderr
    assert f"the check `{CHECK}` fails on integration at" in said, said
    assert "exit 1" in said and "FAILED tests/test_base.py::test_red" in said, said
    assert "--skip-preflight" in said
    assert statuses(project) == {"T1": "pending"}  # nothing was claimed
    assert not (project["state"] / "runs").exists()


def test_a_missing_declared_toolchain_folder_is_refused_at_start(tmp_path: Path) -> None:
    project = venv_project(tmp_path)
    providers = project["providers"]
    providers.write_text(providers.read_text() + "toolchain:\n  folders: [tools/bin]\n")
    anyio.run(backlog, project, [{"id": "T1", "title": "one"}])
    refused = autopilot(project, *merge_args())
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "toolchain folder 'tools/bin'" in refused.stderr, refused.stderr
    assert statuses(project) == {"T1": "pending"}


def test_a_target_red_by_itself_holds_the_queue_and_charges_no_worker(tmp_path: Path) -> None:
    project = venv_project(tmp_path, base_test=FAILING)
    repo = project["repo"]
    files = {"T1": {"tests/test_t1.py": PASSING}, "T2": {"tests/test_t2.py": PASSING}}
    anyio.run(backlog, project, [
        {"id": t, "title": t, "metadata": {"fake_files": f}} for t, f in files.items()
    ])  # fmt: skip
    args = [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty",
            *merge_args("--skip-preflight")]  # fmt: skip
    run = subprocess.Popen(args, cwd=ROOT, env=env(project), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    seen: list[str] = []
    try:
        assert run.stdout is not None
        for line in run.stdout:  # bounded by the autopilot's own end, or the kill below
            seen.append(line)
            if "the target is red" in line:
                break
        assert any("the target is red" in line for line in seen), "".join(seen)
        # A person fixes the target: the held submissions land, none of them was charged.
        wt = tmp_path / "fix"
        git(repo, "worktree", "add", "-q", str(wt), "integration")
        (wt / "tests" / "test_base.py").write_text(PASSING)
        git(wt, "commit", "-qam", "fix the target")
        git(repo, "worktree", "remove", str(wt))
        out, err = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, "".join(seen) + out + err
    assert statuses(project) == {"T1": "done", "T2": "done"}, out
    with open_db(project["state"]) as db:
        returns = db.execute("SELECT task_id, returns FROM landing_entries").fetchall()
        back = db.execute("SELECT count(*) FROM task_events WHERE reason LIKE 'returned%'")
        assert back.fetchone()[0] == 0
    assert all(n == 0 for _, n in returns), returns
    assert "integration moved: landing again" in out
