"""A flake is proven on the target, not assumed (issue 69), with the real autopilot, sandbox
and pytest: a change whose own test fails on the first run and passes on a rerun (a bug
that shows some of the time) goes back to its worker with the evidence, while a test that
flakes on the target itself is still a flake, and the good change it hits lands."""

import json
from pathlib import Path

import anyio

from tests.autopilot.conftest import autopilot, backlog, git
from tests.autopilot.test_gate import CHECK, args, pytest_project
from tests.autopilot.test_toolchain import PASSING, statuses
from tests.conftest import open_db, wvo
from wvo_mcp.services.landing_queue import LANDER

# The target's flake passes only on a tree's second run: a change's tree fails it, then
# passes on the rerun, and the target's own tree, run again (runs 2 and 3), fails it too.
FLAKY = """import os


def test_flaky():
    assert os.environ.get("WVO_CHECK_RUN") == "2", "a flake: it passes on a tree's second run"
"""
# The change's own test fails on each tree's first run (WVO_CHECK_RUN) and passes on its
# reruns: on the target it never failed, as it is not there.
MADE_FLAKY = """import os


def test_m1():
    assert os.environ.get("WVO_CHECK_RUN") != "1", "a race the change brought"
"""


def test_a_change_that_makes_its_test_flaky_is_returned_a_flake_on_the_target_is_not(
    tmp_path: Path,
) -> None:
    project = pytest_project(
        tmp_path, {"tests/test_base.py": PASSING, "tests/test_flaky.py": FLAKY}
    )
    providers = project["providers"]
    providers.write_text(providers.read_text() + "gate:\n  junit: reports/*.xml\n")
    check = f"{CHECK} --junitxml=reports/junit.xml"
    tasks: list[dict[str, object]] = [
        {"id": "G1", "title": "good", "metadata": {"fake_files": {"tests/test_g1.py": PASSING}}},
        {"id": "M1", "title": "makes its test flaky",
         "metadata": {"fake_files": {"tests/test_m1.py": MADE_FLAKY}}},
    ]  # fmt: skip
    anyio.run(backlog, project, tasks)
    # No pre-flight: nothing is recorded of the target before the first flake, so the
    # target's flake is proven by its own tree, the check run again there.
    ran = autopilot(project, *args(check, "--max-returns", "1", "--skip-preflight"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert statuses(project) == {"G1": "done", "M1": "needs_review"}, ran.stdout
    assert "a flake of tests.test_flaky::test_flaky: `" in ran.stdout, ran.stdout
    assert "never failed on integration" in ran.stdout, ran.stdout
    with open_db(project["state"]) as db:
        back = [t for (t,) in db.execute("SELECT task_id FROM task_events WHERE kind = 'returned'")]
        returned = db.execute(
            "SELECT next_steps FROM checkpoints WHERE agent_id = ? AND task_id = 'M1'", (LANDER,)
        ).fetchone()[0]
        recorded = [json.loads(t) for (t,) in db.execute("SELECT tests FROM check_flakes")]
    assert back == ["M1"], back  # the good change was not returned, the flaky one was
    # The evidence its worker starts from: what failed, on which runs, and that the target
    # never failed it.
    assert "it failed on run 1 and passed on run 2 of this tree" in returned, returned
    assert "tests.test_m1::test_m1 never failed on integration" in returned, returned
    assert "Make it pass on every run" in returned, returned
    # Only the target's flake is known: the change's never made its test a known flake.
    assert recorded and all(tests == ["tests.test_flaky::test_flaky"] for tests in recorded)
    gate = json.loads(wvo(project["state"], "quarantine", "list", "--json").stdout)
    assert [e["test"] for e in gate["quarantine"]] == ["tests.test_flaky::test_flaky"]
    assert git(project["repo"], "ls-tree", "--name-only", "integration", "tests/").split() == [
        "tests/test_base.py", "tests/test_flaky.py", "tests/test_g1.py"]  # fmt: skip
