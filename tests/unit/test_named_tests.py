"""A person's name for a quarantined test (rules/named_tests.py): a pytest node id, which no
JUnit report holds, is refused with the name pytest's own report gives that test, checked
against a real pytest's `--junitxml` report read as the gate reads it (rules/junit.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

from wvo_mcp.rules import junit, named_tests

TESTS = """import pytest


def test_plain():
    assert False


class TestGroup:
    class TestInner:
        def test_nested(self):
            assert False


@pytest.mark.parametrize("value", ["a::b", "c[d]"])
def test_params(value):
    assert value == ""
"""


def test_each_node_id_is_refused_with_the_name_pytests_report_gives_it(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # its rootdir: here, not this project
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / "test_x.py").write_text(TESTS)
    run = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests"]
    listed = subprocess.run([*run, "--collect-only", "-q"], cwd=tmp_path, capture_output=True,
                            text=True, check=False)  # fmt: skip
    node_ids = [line for line in listed.stdout.splitlines() if "::" in line]
    assert len(node_ids) == 4, listed.stdout
    subprocess.run([*run, "-q", "--junitxml=report.xml"], cwd=tmp_path, capture_output=True,
                   check=False)  # fmt: skip
    report = junit.parse((tmp_path / "report.xml").read_bytes())
    assert report is not None and report.tests == 4
    for node_id in node_ids:
        assert node_id not in report.failed  # quarantined as it is, it would never match
        said = named_tests.refusal(node_id)
        assert said is not None and "pytest node id" in said
        named = named_tests.junit_form(node_id)
        assert named in report.failed, (node_id, named, report.failed)
        assert repr(named) in said
        assert named_tests.refusal(named) is None  # the name it gives is taken
    assert sorted(map(named_tests.junit_form, node_ids)) == sorted(report.failed)


@pytest.mark.parametrize(
    "name",
    [
        "tests.test_x::test_y",
        "tests.test_x.TestC::test_y[tests/a.py]",
        "src/app.test.ts::suite > adds",  # vitest's classname is its file's path
        "test_y",
    ],
)
def test_a_reports_name_is_taken(name: str) -> None:
    assert named_tests.refusal(name) is None


def test_a_file_is_not_a_test() -> None:
    said = named_tests.refusal("tests/test_x.py")
    assert said is not None and "names a file, not a test" in said and "classname::name" in said
