"""A check's JUnit report is written in the sandbox, then read by the autopilot outside it
(issue 57): a report that is a link to a host file, or a FIFO, is never followed or waited
on. Through the real autopilot, its sandbox and a real pytest in the project's .venv."""

import os
from pathlib import Path

import anyio

from tests.autopilot.conftest import autopilot, backlog
from tests.autopilot.test_gate import CHECK, args, pytest_project
from tests.autopilot.test_toolchain import PASSING, statuses


def test_a_report_that_links_out_or_blocks_is_not_read(tmp_path: Path) -> None:
    # On the host, a report of no test: followed, it would refuse the check as one that ran
    # none. The check itself runs a test and writes no report of its own.
    outside = tmp_path / "outside.xml"
    outside.write_text("<testsuites/>")
    before = outside.stat()
    project = pytest_project(tmp_path, {"tests/test_base.py": PASSING})
    providers = project["providers"]
    providers.write_text(providers.read_text() + "gate:\n  junit: reports/*.xml\n")
    check = f"mkdir reports && ln -s {outside} reports/a.xml && mkfifo reports/b.xml && {CHECK}"
    anyio.run(backlog, project, [{"id": "T1", "title": "one"}])
    ran = autopilot(project, *args(check))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "ran no test" not in ran.stdout + ran.stderr, ran.stdout
    assert statuses(project) == {"T1": "done"}, ran.stdout
    after = outside.stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    assert outside.read_text() == "<testsuites/>" and os.access(outside, os.R_OK)
