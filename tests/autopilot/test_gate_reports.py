"""The gate reads only what the check wrote (issue 69): a JUnit report a worker commits,
naming only a quarantined test as failed, never speaks for the check, for its own change or
for the ones after it on the branch; nor does a committed link, which the trusted side never
follows out of the checkout. Through the real autopilot, its sandbox and a real pytest in
the project's .venv; the walk itself on folders made here."""

import os
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import autopilot, backlog, git
from tests.autopilot.test_gate import CHECK, args, pytest_project
from tests.autopilot.test_toolchain import PASSING, statuses
from tests.conftest import open_db, wvo
from wvo_mcp import verification
from wvo_mcp.rules import junit
from wvo_mcp.services.landing_queue import LANDER

QUARANTINED = "tests.test_x::test_x"  # X: a person quarantined it
CHECKED = f"{CHECK} --junitxml=reports/junit.xml"
BROKEN_Y = "def test_y():\n    assert 1 + 1 == 3, 'broken by the change'\n"
TOLD = "the gate does not read "


def planted(times: int = 200) -> str:
    """A report naming only X as failed, as often as a report's names are read (small: a
    task's metadata carries it)."""
    case = '<testcase classname="tests.test_x" name="test_x"><error/></testcase>'
    return f"<testsuite>{case * times}</testsuite>"


def gated_project(tmp_path: Path) -> dict[str, Path]:
    """A pytest project whose check writes reports/junit.xml, read as `gate: {junit}` (no
    reruns: a failure that is the change's is returned at once), tests X and Y passing."""
    project = pytest_project(tmp_path, {
        "tests/test_base.py": PASSING,
        "tests/test_x.py": "def test_x():\n    assert True\n",
        "tests/test_y.py": "def test_y():\n    assert True\n",
    })  # fmt: skip
    providers = project["providers"]
    providers.write_text(providers.read_text() + "gate:\n  junit: reports/*.xml\n  reruns: 0\n")
    return project


def quarantine_x(project: dict[str, Path]) -> None:
    added = wvo(project["state"], "quarantine", "add", QUARANTINED, "--reason", "flaky on CI",
                "--by", "ann")  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr


def returned_not_landed(project: dict[str, Path], task: str, ran: str, tip: str) -> str:
    """`task` went back to its worker with Y's failure, then waited for a person; the
    target did not move. Its last submitted commit."""
    assert statuses(project)[task] == "needs_review", ran
    assert "only quarantined tests failed" not in ran, ran
    assert git(project["repo"], "rev-parse", "integration") == tip, ran  # nothing landed
    with open_db(project["state"]) as db:
        back = db.execute(
            "SELECT count(*) FROM task_events WHERE kind = 'returned' AND task_id = ?", (task,)
        ).fetchone()[0]
        steps = db.execute(
            "SELECT next_steps FROM checkpoints WHERE task_id = ? AND agent_id = ?",
            (task, LANDER),
        ).fetchone()[0]
        [submitted] = db.execute(
            "SELECT commit_sha FROM landing_entries WHERE task_id = ? ORDER BY id DESC LIMIT 1",
            (task,),
        ).fetchone()
    assert back >= 1, ran
    assert "FAILED tests/test_y.py::test_y" in steps, steps
    return str(submitted)


def mode_in(project: dict[str, Path], commit: str, path: str) -> str:
    """The mode of `path` in `commit`'s tree ('120000': a link), '' where it has none."""
    listed = git(project["repo"], "ls-tree", commit, "--", path).split()
    return listed[0] if listed else ""


def test_a_planted_report_does_not_open_the_gate_now_or_later(tmp_path: Path) -> None:
    project = gated_project(tmp_path)
    tip = git(project["repo"], "rev-parse", "integration")
    plant = {"tests/test_y.py": BROKEN_Y, "reports/0-results.xml": planted()}
    anyio.run(backlog, project, [
        {"id": "P1", "title": "breaks Y, plants a report", "metadata": {"fake_files": plant}},
    ])  # fmt: skip
    quarantine_x(project)
    ran = autopilot(project, *args(CHECKED, "--max-returns", "1"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    submitted = returned_not_landed(project, "P1", ran.stdout, tip)
    assert mode_in(project, submitted, "reports/0-results.xml") == "100644"  # it was planted
    # Said once, though each attempt's tree carries it.
    assert ran.stdout.count(f"{TOLD}reports/0-results.xml, committed in ") == 1, ran.stdout
    assert "`gate: {junit: reports/*.xml}`" in ran.stdout, ran.stdout

    # The planted report on the branch (as it stayed where it landed): an ordinary break
    # after it is returned too.
    repo = project["repo"]
    git(repo, "checkout", "-q", "integration")
    (repo / "reports").mkdir()
    (repo / "reports" / "0-results.xml").write_text(planted())
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a planted report, on the branch")
    git(repo, "checkout", "-q", "main")
    tip = git(repo, "rev-parse", "integration")
    breaks = {"fake_files": {"tests/test_y.py": BROKEN_Y}}
    anyio.run(backlog, project, [{"id": "B2", "title": "breaks Y", "metadata": breaks}])
    ran = autopilot(project, *args(CHECKED, "--max-returns", "1"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"pre-flight: `{CHECKED}` passes on integration" in ran.stdout, ran.stdout
    returned_not_landed(project, "B2", ran.stdout, tip)
    assert ran.stdout.count(f"{TOLD}reports/0-results.xml, committed in ") == 1, ran.stdout


@pytest.mark.parametrize(
    ("links", "told"),
    [
        # A folder link inside: the glob went through it to a committed report.
        ("ln -s planted reports", "reports"),
        # Links out of the checkout, to a report and to a folder of reports on the host.
        ("mkdir reports && ln -s {outside}/0-results.xml reports/0-results.xml",
         "reports/0-results.xml"),
        ("ln -s {outside} reports", "reports"),
    ],
)  # fmt: skip
def test_a_committed_link_opens_no_gate_and_reaches_nothing_outside(
    tmp_path: Path, links: str, told: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "0-results.xml").write_text(planted())
    (outside / "victim.xml").write_text(planted(1))
    before = {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in outside.iterdir()}
    project = gated_project(tmp_path)
    tip = git(project["repo"], "rev-parse", "integration")
    change = {"tests/test_y.py": BROKEN_Y, "planted/0-results.xml": planted()}
    anyio.run(backlog, project, [
        {"id": "P1", "title": "breaks Y, links a report in",
         "metadata": {"fake_files": change, "fake_run": [links.format(outside=outside)]}},
    ])  # fmt: skip
    quarantine_x(project)
    ran = autopilot(project, *args(CHECKED, "--max-returns", "1"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    submitted = returned_not_landed(project, "P1", ran.stdout, tip)
    assert mode_in(project, submitted, told) == "120000"  # the link was committed
    assert ran.stdout.count(f"{TOLD}{told}, committed in ") == 1, ran.stdout
    # Neither removed nor written through: the host's files are as they were.
    after = {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in outside.iterdir()}
    assert after == before


# The walk itself: what clear_reports removes before a check, and read_junit reads after.
REPORT = '<testsuites><testcase classname="t" name="ran"/></testsuites>'


def test_committed_matches_and_links_on_the_way_are_removed_never_followed(
    tmp_path: Path,
) -> None:
    checkout, outside = tmp_path / "checkout", tmp_path / "outside"
    (checkout / "reports").mkdir(parents=True)
    (checkout / "planted").mkdir()
    outside.mkdir()
    (outside / "host.xml").write_text(planted())
    (checkout / "reports" / "0-results.xml").write_text(planted())
    (checkout / "reports" / "keep.txt").write_text("not a report")
    (checkout / "reports" / "out.xml").symlink_to(outside / "host.xml")
    (checkout / "reports" / "folder.xml").mkdir()  # never read: not a file
    (checkout / "planted" / "0.xml").write_text(planted())
    os.mkfifo(checkout / "reports" / "fifo.xml")
    removed = verification.clear_reports(checkout, "reports/*.xml")
    assert removed == ["reports/0-results.xml", "reports/fifo.xml", "reports/out.xml"]
    assert sorted(p.name for p in (checkout / "reports").iterdir()) == ["folder.xml", "keep.txt"]
    assert (outside / "host.xml").read_text() == planted()
    assert verification.read_junit(checkout, "reports/*.xml") is None
    (checkout / "reports" / "junit.xml").write_text(REPORT)
    assert verification.read_junit(checkout, "reports/*.xml") == junit.Report(1, ())

    # A folder link the glob would pass through: removed itself, to inside or out.
    for target in (checkout / "planted", outside):
        (checkout / "logs").symlink_to(target, target_is_directory=True)
        assert verification.read_junit(checkout, "logs/*.xml") is None  # not followed
        assert verification.clear_reports(checkout, "logs/*.xml") == ["logs"]
        assert not (checkout / "logs").exists() and not (checkout / "logs").is_symlink()
    assert (checkout / "planted" / "0.xml").exists() and (outside / "host.xml").exists()


def test_a_recursive_glob_enters_real_folders_only(tmp_path: Path) -> None:
    checkout, outside = tmp_path / "checkout", tmp_path / "outside"
    (checkout / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (outside / "junit.xml").write_text(planted())
    (checkout / "junit.xml").write_text(planted())
    (checkout / "a" / "b" / "junit.xml").write_text(planted())
    (checkout / "a" / "out").symlink_to(outside, target_is_directory=True)
    assert verification.clear_reports(checkout, "**/junit.xml") == [
        "a/b/junit.xml", "junit.xml"]  # fmt: skip
    assert (outside / "junit.xml").exists() and (checkout / "a" / "out").is_symlink()
    assert verification.read_junit(checkout, "**/junit.xml") is None
    (checkout / "a" / "b" / "junit.xml").write_text(REPORT)
    assert verification.read_junit(checkout, "**/junit.xml") == junit.Report(1, ())
