"""A worker's change can write the tests and make one flake (issues 57 and 69): a test that
never failed on the target is no flake, whatever its reruns say, so the change goes back as
its own failure, is never recorded as a flake nor suggested for the quarantine, and the
change after it (which breaks the test for good) never runs on a gate it loosened. The real
autopilot, sandbox and pytest."""

import json
from pathlib import Path

import anyio

from tests.autopilot.conftest import autopilot, backlog
from tests.autopilot.test_gate import CHECK, args, pytest_project
from tests.autopilot.test_toolchain import PASSING, statuses
from tests.conftest import open_db, wvo

# Fails on each tree's first run only: a flake the worker made.
PLANTED = """import os


def test_p():
    assert os.environ.get("WVO_CHECK_RUN") != "1"
"""
BROKEN = "def test_p():\n    assert False, 'broken for good'\n"


def test_a_planted_flake_does_not_let_a_later_breakage_through(tmp_path: Path) -> None:
    project = pytest_project(tmp_path, {"tests/test_base.py": PASSING})
    providers = project["providers"]
    providers.write_text(providers.read_text() + "gate:\n  junit: reports/*.xml\n")
    check = f"{CHECK} --junitxml=reports/junit.xml"
    anyio.run(backlog, project, [
        {"id": "P1", "title": "plants", "metadata": {"fake_files": {"tests/test_p.py": PLANTED}}},
        {"id": "P2", "title": "breaks it", "depends_on": ["P1"],
         "metadata": {"fake_files": {"tests/test_p.py": BROKEN}}},
    ])  # fmt: skip
    ran = autopilot(project, *args(check, "--max-returns", "1"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "not a flake:" in ran.stdout and "never failed on integration" in ran.stdout, ran.stdout
    assert "a flake of tests.test_p::test_p" not in ran.stdout, ran.stdout
    assert statuses(project) == {"P1": "needs_review", "P2": "pending"}, ran.stdout
    assert "only quarantined tests failed" not in ran.stdout
    with open_db(project["state"]) as db:
        back = [t for (t,) in db.execute("SELECT task_id FROM task_events WHERE kind = 'returned'")]
    assert back == ["P1"], back  # held for a person after that: --max-returns 1
    assert json.loads(wvo(project["state"], "quarantine", "--json").stdout)["quarantine"] == []
