"""A check's JUnit report, read: from a real pytest run, and hostile ones (rules/junit.py,
verification.read_junit)."""

import subprocess
import sys
from pathlib import Path

from wvo_mcp.rules import junit
from wvo_mcp.verification import read_junit

SUITE = """import pytest
def test_passes(): pass
def test_fails(): assert False
@pytest.mark.skip
def test_skipped(): pass
"""


def test_a_real_pytest_report_says_what_ran_and_what_failed(tmp_path: Path) -> None:
    (tmp_path / "test_s.py").write_text(SUITE)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=r.xml"],
        cwd=tmp_path, capture_output=True, check=False,
    )  # fmt: skip
    report = junit.parse((tmp_path / "r.xml").read_bytes())
    assert report == junit.Report(2, ("test_s::test_fails",))


def test_what_is_not_a_report_of_tests_is_none_or_none_ran() -> None:
    assert junit.parse(b"<testsuites/>") == junit.Report(0, ())
    assert junit.parse(b'<testsuite tests="3"></testsuite>') == junit.Report(0, ())
    assert junit.parse(b"<html/>") is None
    assert junit.parse(b"not xml") is None
    assert junit.parse(b"<testsuites>" + b" " * junit.MAX_BYTES + b"</testsuites>") is None
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(b'<!ENTITY %c "%s">' % (98 + i, b"&%c;" % (97 + i) * 10) for i in range(9))
        + b"]><testsuites><testcase name='&j;'/></testsuites>"
    )
    assert junit.parse(laughs) is None  # expat refuses the expansion


def test_a_report_that_links_out_of_the_checkout_is_not_read(tmp_path: Path) -> None:
    checkout, outside = tmp_path / "checkout", tmp_path / "outside"
    (checkout / "reports").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.xml").write_text('<testsuites><testcase name="x"/></testsuites>')
    (checkout / "reports" / "a.xml").symlink_to(outside / "secret.xml")
    (checkout / "out").symlink_to(outside, target_is_directory=True)
    assert read_junit(checkout, "reports/*.xml") is None
    assert read_junit(checkout, "out/*.xml") is None
    (checkout / "reports" / "b.xml").write_text('<testsuites><testcase name="y"/></testsuites>')
    assert read_junit(checkout, "reports/*.xml") == junit.Report(1, ())
