"""A failed check's cause, told from its output: each with its own fix."""

import pytest

from wvo_mcp.rules.check_causes import CANNOT_RUN, cause, notes, ran_no_test

TOOLS = "node_modules (found)"


def failed(code: int, stdout: str = "", stderr: str = "") -> str:
    return (
        f"`npm test`: exit {code} in 0.4 s (bwrap sandbox)\n--- stdout (tail) ---\n{stdout}"
        f"\n--- stderr (tail) ---\n{stderr}"
    )


@pytest.mark.parametrize(
    ("output", "kind"),
    [
        (failed(127, stderr="sh: 1: jest: not found"), "not_found"),
        (failed(127, stderr="bash: line 1: vitest: command not found"), "not_found"),
        (
            failed(1, stderr='npm error Missing script: "tset"\nnpm error\nnpm error Did you mean'),
            "missing_script",
        ),
        (failed(1, stderr='npm ERR! Missing script: "lint"'), "missing_script"),
        (
            failed(1, stderr="EROFS: read-only file system, mkdir '/r/node_modules/.cache'"),
            "read_only",
        ),
        (
            failed(
                1,
                stderr="Error: ENOENT: no such file or directory, mkdir "
                "'/r/node_modules/.cache/ava'",
            ),
            "read_only",
        ),
        (failed(1, stderr="touch: cannot touch '.venv/x': Read-only file system"), "read_only"),
        (failed(1, stdout="not ok 3 - adds\n# fail 1"), "failing"),
        (failed(2, stdout="FAILED tests/test_a.py::test_b - assert 1 == 2"), "failing"),
    ],
)
def test_each_cause_is_told_apart(output: str, kind: str) -> None:
    found = cause(output, TOOLS)
    assert found.kind == kind, found
    if kind == "not_found":
        assert "not on the sandbox's PATH" in found.fix and TOOLS in found.fix
    if kind == "failing":
        assert "If it passes by hand, the difference is the sandbox" in found.fix


def test_npms_log_path_in_the_sandbox_is_explained() -> None:
    output = failed(1, stderr="npm error A complete log of this run can be found in: "
                    "/tmp/home/.npm/_logs/2026-11-25T07_40_00_000Z-debug-0.log")  # fmt: skip
    said = notes(output)
    assert said and "gone with it" in said[0] and "--loglevel verbose" in said[0]
    assert notes(failed(1, stdout="plain")) == []


# Each as the runner printed it, run here with no test to find (pytest 9, Python 3.11's
# unittest, jest 30, vitest 3, mocha 11, ava 6, and npm init's default test script).
NO_TESTS = {
    "pytest": (5, "\nno tests ran in 0.42s\n"),
    "unittest": (0, "\n----------------------------------------------------------------------\n"
                    "Ran 0 tests in 0.000s\n\nOK\n"),
    "jest": (1, "No tests found, exiting with code 1\nRun with `--passWithNoTests` to exit "
                "with code 0\nIn /tmp/ntjs\n  2 files checked.\n"),
    "vitest": (0, "\n RUN  v3.2.7 /tmp/ntjs\n\nNo test files found, exiting with code 0\n"),
    "mocha": (1, 'Error: No test files found: "test"\n'),
    "ava": (1, "\n  \u2718 Couldn\u2019t find any files to test\n"),
    "npm": (1, '> x@1.0.0 test\n> echo "Error: no test specified" && exit 1\n\n'
               "Error: no test specified\n"),
}  # fmt: skip


@pytest.mark.parametrize("runner", list(NO_TESTS))
def test_a_check_that_ran_no_test_is_told_by_its_runners_words(runner: str) -> None:
    code, said = NO_TESTS[runner]
    assert ran_no_test(said) == runner
    if code:  # failed: its cause says so, and how to allow it where that is meant
        found = cause(failed(code, stdout=said), TOOLS)
        assert found.kind == "no_tests" and f"({runner} found none)" in found.what
        assert "`gate: {allow_no_tests: WHY}`" in found.fix
    assert ran_no_test("collected 12 items\n12 passed in 0.5s") is None
    assert ran_no_test("Ran 3 tests in 0.010s\n\nOK") is None


def test_a_check_the_sandbox_stopped_could_not_run() -> None:
    output = "`pytest -x`: killed: timeout in 300.0 s (bwrap sandbox)\n--- stdout (tail) ---\n"
    found = cause(output, TOOLS)
    assert found.kind == "stopped" and found.kind in CANNOT_RUN
    assert found.what == "the sandbox stopped the check (timeout)"
    assert cause(failed(1, stdout="FAILED t"), TOOLS).kind not in CANNOT_RUN


def test_the_outcome_is_read_after_the_command_it_quotes() -> None:
    """A command (a task's verify_command: an agent may write it) that quotes an outcome
    does not change how its run ended."""
    output = "`echo ': exit 127 in 1.0 s (bwrap sandbox)'; false`: exit 1 in 0.2 s (bwrap sandbox)"
    assert cause(output + "\nnot found", TOOLS).kind == "failing"
