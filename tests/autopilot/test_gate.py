"""The gate fails closed (issue 57), with a real pytest in the project's own .venv: a check
that ran no test is never a pass, refused before anything launches and returned when a
worker's change leaves it so; a check that could not run is no change's fault, and holds
the work for a person; a submission that changes nothing lands only where its task says it
needs none (tests/autopilot/test_landing_edges.py)."""

import json
import shutil
import sys
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import autopilot, backlog, git
from tests.autopilot.test_toolchain import PASSING, statuses, venv_project
from tests.conftest import open_db, wvo
from wvo_mcp.services.landing_queue import LANDER

CHECK = ".venv/bin/python -m pytest -q -p no:cacheprovider"
# pytest and what it needs, from the suite's own environment, into the project's .venv.
PYTEST = ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py.py")


def pytest_project(tmp_path: Path, tests: dict[str, str]) -> dict[str, Path]:
    """A project whose check is pytest from its own .venv, its tests `tests` (none: it has
    none)."""
    project = venv_project(tmp_path)
    repo = project["repo"]
    git(repo, "checkout", "-q", "integration")
    git(repo, "rm", "-q", "-r", "tests")
    for name, text in tests.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "its tests", "--allow-empty")
    git(repo, "checkout", "-q", "main")
    ours = Path(next(p for p in sys.path if p.endswith("site-packages")))
    theirs = next((repo / ".venv" / "lib").glob("python3*/site-packages"))
    for name in PYTEST:
        source = ours / name
        if source.is_dir():
            shutil.copytree(source, theirs / name)
        elif source.exists():
            shutil.copy(source, theirs / name)
    return project


def args(check: str = CHECK, *extra: str) -> list[str]:
    return ["--merge", "merge", "--onto", "integration", "--check", check, *extra]


def refused_before_anything(project: dict[str, Path], check: str, what: str) -> str:
    """The autopilot's refusal at its start; nothing claimed, nothing run."""
    tip = git(project["repo"], "rev-parse", "integration").strip()
    anyio.run(backlog, project, [{"id": "T1", "title": "one"}])
    refused = autopilot(project, *args(check))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    said = refused.stderr
    assert (
        f"the check `{check}` fails on integration at {tip[:12]} before any worker has "
        f"changed anything (the check ran no test ({what})), a check that runs none would pass "
        "whatever a worker submits; nothing was started." in said
    ), said
    assert "Fix: give the check tests to run" in said and "`gate: {allow_no_tests: WHY}`" in said
    assert statuses(project) == {"T1": "pending"}
    assert not (project["state"] / "runs").exists()
    return said


def test_pytest_with_no_test_is_refused_before_anything_launches(tmp_path: Path) -> None:
    project = pytest_project(tmp_path, {})
    said = refused_before_anything(project, CHECK, "pytest found none")
    assert "exit 5" in said and "no tests ran" in said, said


def test_an_empty_junit_report_is_refused_before_anything_launches(tmp_path: Path) -> None:
    """The check exits 0 and says nothing of tests; its report (where the providers file
    says it writes one) holds none."""
    project = pytest_project(tmp_path, {})
    providers = project["providers"]
    providers.write_text(providers.read_text() + "gate:\n  junit: reports/*.xml\n")
    check = (
        ".venv/bin/python -c \"import os; os.makedirs('reports'); "
        "open('reports/junit.xml', 'w').write('<testsuites tests=\\\"0\\\"/>')\""
    )
    refused_before_anything(project, check, "its JUnit report holds no test")


def test_npms_default_test_script_is_refused_before_anything_launches(tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.skip("no npm here")
    project = pytest_project(tmp_path, {"package.json": (
        '{"name": "x", "version": "1.0.0", "scripts": '
        '{"test": "echo \\"Error: no test specified\\" && exit 1"}}\n'
    )})  # fmt: skip
    said = refused_before_anything(project, "npm test", "npm found none")
    assert "Error: no test specified" in said, said


def test_a_project_that_means_it_checks_with_no_test_and_lands(tmp_path: Path) -> None:
    project = pytest_project(tmp_path, {})
    providers = project["providers"]
    reason = "a linter is this repository's check; it has no tests yet"
    providers.write_text(providers.read_text() + f"gate:\n  allow_no_tests: {reason}\n")
    anyio.run(backlog, project, [{"id": "T1", "title": "one"}])
    ran = autopilot(project, *args(".venv/bin/python -m unittest"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert statuses(project) == {"T1": "done"}, ran.stdout


def test_a_change_that_deletes_every_test_is_returned_and_never_lands(tmp_path: Path) -> None:
    project = pytest_project(tmp_path, {"tests/test_base.py": PASSING})
    gone = {"fake_delete": ["tests/test_base.py"]}
    anyio.run(backlog, project, [{"id": "T1", "title": "deletes", "metadata": gone}])
    ran = autopilot(project, *args(CHECK, "--max-returns", "1"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "pre-flight: `" in ran.stdout, ran.stdout  # the target runs its test
    assert (
        "T1 returned: a check failed stacked onto the target (the check ran no test (pytest "
        "found none)): `.venv/bin/python -m pytest -q -p no:cacheprovider`: exit 5 in "
    ) in ran.stdout, ran.stdout
    assert "T1 waits for a person in needs_review: it came back 1 time(s) already" in ran.stdout
    assert statuses(project) == {"T1": "needs_review"}
    assert git(project["repo"], "ls-tree", "--name-only", "integration", "tests/").split() == [
        "tests/test_base.py"
    ]  # never landed
    with open_db(project["state"]) as db:
        details = db.execute(
            "SELECT next_steps FROM checkpoints WHERE task_id = 'T1' AND agent_id = ?", (LANDER,)
        ).fetchone()[0]
    assert "keep the project's tests where its check finds them" in details, details


@pytest.mark.parametrize(
    ("verify", "env", "what"),
    [
        ("no-such-tool --run", {}, "a command was not found"),
        ("sleep 60", {"WVO_VERIFY_TIMEOUT_SECONDS": "2"}, "the sandbox stopped the check "
         "(timeout)"),
    ],
)  # fmt: skip
def test_a_check_that_cannot_run_holds_the_work_for_a_person(
    tmp_path: Path, verify: str, env: dict[str, str], what: str
) -> None:
    """No change's fault: not returned, no attempt spent; the cause named, the work held."""
    project = pytest_project(tmp_path, {"tests/test_base.py": PASSING})
    tip = git(project["repo"], "rev-parse", "integration")
    anyio.run(backlog, project, [{"id": "T1", "title": "one", "verify_command": verify}])
    ran = autopilot(project, *args(), **env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (
        f"T1 waits for a person in needs_review: its check could not run, which no worker can "
        f"fix ({what}: `{verify}`: "
    ) in ran.stdout, ran.stdout
    assert statuses(project) == {"T1": "needs_review"}
    with open_db(project["state"]) as db:
        attempts, returns = db.execute(
            "SELECT t.attempts, e.returns FROM tasks t JOIN landing_entries e ON e.task_id = t.id"
        ).fetchone()
        back = db.execute("SELECT count(*) FROM task_events WHERE kind = 'returned'").fetchone()
    assert (attempts, returns, back[0]) == (0, 0, 0)
    assert git(project["repo"], "rev-parse", "integration") == tip  # nothing landed


# A seeded flaky test: it fails on each tree's first run of the check (WVO_CHECK_RUN), and
# passes on its reruns, so the gate must tell it from the real regression beside it.
FLAKY = """import os


def test_flaky():
    assert os.environ.get("WVO_CHECK_RUN") != "1", "a flake: it fails on a tree's first run"
"""
BROKEN = "def test_b1():\n    assert 1 + 1 == 3, 'a real regression'\n"


def test_a_flaky_check_is_told_from_a_bad_change(tmp_path: Path) -> None:
    project = pytest_project(
        tmp_path, {"tests/test_base.py": PASSING, "tests/test_flaky.py": FLAKY}
    )
    providers = project["providers"]
    providers.write_text(providers.read_text() + "gate:\n  junit: reports/*.xml\n")
    check = f"{CHECK} --junitxml=reports/junit.xml"
    touches_flaky = {"tests/test_flaky.py": FLAKY + "# the good change that touches it\n"}
    anyio.run(backlog, project, [
        {"id": "G1", "title": "good", "metadata": {"fake_files": {"tests/test_g1.py": PASSING}}},
        {"id": "G2", "title": "good, on the flaky test's file",
         "metadata": {"fake_files": touches_flaky}},
        {"id": "B1", "title": "bad", "metadata": {"fake_files": {"tests/test_b1.py": BROKEN}}},
    ])  # fmt: skip
    ran = autopilot(project, *args(check, "--max-returns", "1"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert statuses(project) == {"G1": "done", "G2": "done", "B1": "needs_review"}, ran.stdout
    assert "a flake of tests.test_flaky::test_flaky: `" in ran.stdout, ran.stdout
    with open_db(project["state"]) as db:
        back = db.execute(
            "SELECT task_id, reason FROM task_events WHERE kind = 'returned'"
        ).fetchall()
        returned = db.execute(
            "SELECT next_steps FROM checkpoints WHERE agent_id = ? AND task_id = 'B1'", (LANDER,)
        ).fetchone()[0]
    assert [t for t, _ in back] == ["B1"], back  # no good change went back
    assert "(the change's own failure: the check ran and failed with exit 1)" in back[0][1], back
    assert "FAILED tests/test_b1.py::test_b1" in returned, returned  # the failure that came back
    listed = wvo(project["state"], "quarantine", "list", "--json")
    gate = json.loads(listed.stdout)
    [flaky] = gate["quarantine"]
    assert (flaky["test"], flaky["added_by"], flaky["live"]) == (
        "tests.test_flaky::test_flaky", "autopilot", True)  # fmt: skip
    assert (
        flaky["evidence"].startswith("failed on tree ") and "passed on rerun 1" in flaky["evidence"]
    )
    [figures] = gate["checks"]
    assert figures["command"] == check and figures["flakes"] >= 1 and figures["reruns"] >= 1
    status = wvo(project["state"], "status").stdout
    assert "landing checks (a flake is a failure that did not come back" in status, status
    assert CHECK[:40] in status.split("landing checks")[1], status
    assert git(project["repo"], "ls-tree", "--name-only", "integration", "tests/").split() == [
        "tests/test_base.py", "tests/test_flaky.py", "tests/test_g1.py"]  # fmt: skip


def test_a_person_quarantines_a_test_and_takes_it_out(tmp_path: Path) -> None:
    project = pytest_project(tmp_path, {})
    state = project["state"]
    refused = wvo(state, "quarantine", "add", "tests.test_a::test_b")
    assert refused.returncode == 2 and "add needs --reason" in refused.stderr
    added = wvo(state, "quarantine", "add", "tests.test_a::test_b", "--reason", "flaky on CI",
                "--days", "3", "--by", "ann")  # fmt: skip
    assert added.returncode == 0 and "quarantined tests.test_a::test_b until " in added.stdout
    [entry] = json.loads(wvo(state, "quarantine", "--json").stdout)["quarantine"]
    assert (entry["evidence"], entry["added_by"]) == ("flaky on CI", "person:ann")
    assert wvo(state, "quarantine", "remove", "tests.test_a::test_b").returncode == 0
    again = wvo(state, "quarantine", "remove", "tests.test_a::test_b")
    assert again.returncode != 0 and "is not quarantined" in again.stderr, again.stderr
    assert json.loads(wvo(state, "quarantine", "--json").stdout)["quarantine"] == []
