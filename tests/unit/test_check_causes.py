"""A failed check's cause, told from how it ended, its command line's own first word and its
test runner's words (rules/check_causes.py), and how the lander words it to a worker or a
person (issue 69, findings 4 and 5).

Every run below is what the real runner printed in the real sandbox (`wvo-mcp sandbox run`,
bwrap), on a scratch project in /tmp: pytest 9.2.0 from the project's .venv, Python 3.11's
unittest, ava 6.4.1 (pinned by tests/autopilot/samples/avaproject), jest 30.5.2, vitest
3.2.7, mocha 11.8.0, node 20's own runner (`node --test`) and npm 10. pytest's warning is
its own for `testpaths = tests` over a folder git does not keep (an empty one)."""

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import anyio
import pytest

from wvo_mcp import timeutil
from wvo_mcp.autopilot.landing import gate, lander, steps
from wvo_mcp.config import Settings
from wvo_mcp.errors import VerificationFailed
from wvo_mcp.models import SandboxResult
from wvo_mcp.providers import Providers
from wvo_mcp.rules.check_causes import (
    CANNOT_RUN,
    cause,
    notes,
    ran_no_test,
    said_no_test,
    tail,
)
from wvo_mcp.store import Database
from wvo_mcp.verification import Verification, sandbox_summary

TOOLS = "node_modules (found)"


@dataclass(frozen=True)
class Run:
    command: str | list[str]
    code: int
    stdout: str
    stderr: str

    def result(self) -> SandboxResult:
        return SandboxResult(
            backend="bwrap", exit_code=self.code, timed_out=False, killed_reason=None,
            stdout_tail=self.stdout, stderr_tail=self.stderr, truncated=False,
            duration_s=0.4, peak_memory_mb=None,
        )  # fmt: skip

    def output(self) -> str:
        """As a failed check says it (Verification.check): its summary line, then its tails."""
        return (
            f"{sandbox_summary(self.command, self.result())}\n--- stdout (tail) ---\n"
            f"{self.stdout}\n--- stderr (tail) ---\n{self.stderr}"
        )


# What each runner printed, by name (recorded as the docstring says).
RUNS = {
    name: Run(**run)
    for name, run in json.loads((Path(__file__).parent / "runner_outputs.json").read_text()).items()
}

FOUND = "found none"
SKIPPED = "ran none: each test was skipped or filtered out"
NOT_LOADED = "ran none: its tests failed to load or set up"
# Each run of no test, and who says so, how.
RAN_NONE = {
    "pytest-no-tests-ran": f"pytest {FOUND}",
    "pytest-1-warning": f"pytest {FOUND}",  # finding 4: the form the old pattern missed
    "pytest-1-warning-verbose": f"pytest {FOUND}",
    "pytest-masked": f"pytest {FOUND}",
    "pytest-deselected": f"pytest {SKIPPED}",
    "pytest-skipped": f"pytest {SKIPPED}",
    "unittest-none": f"unittest {FOUND}",
    "unittest-skipped": f"unittest {SKIPPED}",
    "jest-none": f"jest {FOUND}",
    "jest-path-filter": f"jest {FOUND}",
    "jest-pass-with-no-tests": f"jest {FOUND}",
    "jest-empty-file": f"jest {FOUND}",
    "jest-name-filter": f"jest {SKIPPED}",
    "jest-skipped": f"jest {SKIPPED}",
    "vitest-none": f"vitest {FOUND}",
    "vitest-path-filter": f"vitest {FOUND}",
    "vitest-pass-with-no-tests": f"vitest {FOUND}",
    "vitest-empty-file": f"vitest {FOUND}",
    "vitest-name-filter": f"vitest {SKIPPED}",
    "vitest-skipped": f"vitest {SKIPPED}",
    "mocha-none": f"mocha {FOUND}",
    "mocha-empty-file": f"mocha {FOUND}",
    "mocha-grep": f"mocha {FOUND}",
    "mocha-skipped": f"mocha {SKIPPED}",
    "mocha-tap": f"a TAP runner {FOUND}",
    "ava-none": f"ava {FOUND}",
    "ava-empty-file": f"ava {FOUND}",
    "ava-match": f"ava {SKIPPED}",
    "ava-skipped": f"ava {SKIPPED}",
    "node-none": f"a TAP runner {FOUND}",
    "node-skipped": f"a TAP runner {SKIPPED}",
    "npm-default": f"npm {FOUND}",
}
# Runs whose tests did not load: they ran none, but a failed one is the failure itself.
UNLOADED = {
    "pytest-collection-error": f"pytest {NOT_LOADED}",
    "pytest-collection-error-verbose": f"pytest {NOT_LOADED}",
    "jest-import-error": f"jest {NOT_LOADED}",
    "vitest-import-error": f"vitest {NOT_LOADED}",
}
RAN = ["pytest-passed-with-warning", "pytest-cat-missing", "jest-passed", "vitest-passed",
       "mocha-passed", "ava-passed", "ava-import-error", "node-passed"]  # fmt: skip


@pytest.mark.parametrize("name", list(RAN_NONE))
def test_each_runners_run_of_no_test_is_read_whole(name: str) -> None:
    run, why = RUNS[name], RAN_NONE[name]
    assert ran_no_test(run.stdout + "\n" + run.stderr) == why
    if run.code:  # failed: its cause says so, and how to allow it where that is meant
        found = cause(run.output(), TOOLS)
        assert (found.kind, found.what) == ("no_tests", f"the check ran no test ({why})")
        assert "`gate: {allow_no_tests: WHY}`" in found.fix


@pytest.mark.parametrize("name", list(UNLOADED))
def test_tests_that_did_not_load_ran_none_and_failing_that_is_the_failure(name: str) -> None:
    run = RUNS[name]
    assert ran_no_test(run.stdout + "\n" + run.stderr) == UNLOADED[name]  # masked: refused
    found = cause(run.output(), TOOLS)
    assert (found.kind, found.what) == ("failing", f"the check ran and failed with exit {run.code}")
    # Masked (`|| true`): it exits 0, and Verification refuses it as having run no test.
    masked = Run(f"{run.command} || true", 0, run.stdout, run.stderr)
    head, _, rest = masked.output().partition("\n")
    refused = f"{head}{said_no_test(UNLOADED[name])}\n{rest}"
    found = cause(refused, TOOLS)
    assert (found.kind, found.what) == ("failing", f"the check ran no test ({UNLOADED[name]})")
    assert "make it pass" in found.fix  # its load error is the failure: no "give it tests"


def test_a_passing_check_refused_for_running_no_test_is_told_so() -> None:
    run = RUNS["pytest-masked"]
    head, _, rest = run.output().partition("\n")
    found = cause(f"{head}{said_no_test('pytest found none')}\n{rest}", TOOLS)
    assert (found.kind, found.what) == ("no_tests", "the check ran no test (pytest found none)")


@pytest.mark.parametrize("name", RAN)
def test_a_run_that_ran_a_test_is_not_taken_for_none(name: str) -> None:
    run = RUNS[name]
    assert ran_no_test(run.stdout + "\n" + run.stderr) is None
    assert cause(run.output(), TOOLS).kind == "failing" or run.code == 0


def test_pytests_exit_status_for_no_test_is_read_where_it_prints_no_summary() -> None:
    """-qq prints no summary line: exit 5 from pytest, named by the command line's own
    first word (as `python -m pytest` too), says it collected none; from anything else, not."""
    run = RUNS["pytest-qq"]
    assert ran_no_test(run.stdout) is None
    found = cause(run.output(), TOOLS)
    assert found.what == "the check ran no test (pytest found none: its exit status 5)"
    for command in ("PYTHONHASHSEED=0 .venv/bin/python3 -m pytest -qq", "uv run pytest -qq"):
        assert cause(Run(command, 5, run.stdout, "").output(), TOOLS).kind == "no_tests"
    assert cause(Run("make test", 5, run.stdout, "").output(), TOOLS).kind == "failing"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("sh-not-found", "not_found"),  # exit 127: the shell found no such command
        ("npm-test-jest-missing", "not_found"),  # npm passes its script's 127 on
        ("bwrap-not-found", "not_found"),  # the sandbox could not start the first word
        ("sh-not-executable", "not_executable"),  # exit 126
        ("bwrap-not-executable", "not_executable"),
        ("npm-missing-script", "missing_script"),  # the package manager's own words
        # Finding 5: a test that reads a file the change deleted fails the check; the
        # words of its output are not the shell's, nor the sandbox's.
        ("cat-missing", "failing"),
        ("pytest-cat-missing", "failing"),
    ],
)
def test_could_not_run_is_read_from_the_exit_status_and_the_first_word(
    name: str, kind: str
) -> None:
    found = cause(RUNS[name].output(), TOOLS)
    assert found.kind == kind, found
    assert (kind in CANNOT_RUN) == (kind != "failing")
    if kind == "not_found":
        assert "not on the sandbox's PATH" in found.fix and TOOLS in found.fix
    if kind == "failing":
        assert found.what == "the check ran and failed with exit 1"
        assert "If it passes by hand, the difference is the sandbox" in found.fix


@pytest.mark.parametrize(
    ("command", "printed"),
    [
        ("node test.js", RUNS["sh-not-found"].stderr),  # a test that ran a missing tool
        ("node_modules/.bin/ava", RUNS["bwrap-not-found"].stderr),  # names another word
        ("node_modules/.bin/jest --ci", RUNS["npm-missing-script"].stderr),  # not npm's own
        ("python3 -m pytest", "E   FileNotFoundError: [Errno 2] No such file or directory"),
        ("sh run-tests.sh", "run-tests.sh: 3: ./fixture.sh: Permission denied"),
    ],
)
def test_a_line_a_test_printed_never_makes_a_check_that_could_not_run(
    command: str, printed: str
) -> None:
    assert cause(Run(command, 1, "", printed).output(), TOOLS).kind == "failing"


def test_npms_log_path_in_the_sandbox_is_explained() -> None:
    said = notes(RUNS["npm-missing-script"].output())
    assert said and "gone with it" in said[0] and "--loglevel verbose" in said[0]
    assert notes(Run("npm test", 1, "plain", "").output()) == []


def test_a_check_the_sandbox_stopped_could_not_run() -> None:
    output = "`pytest -x`: killed: timeout in 300.0 s (bwrap sandbox)\n--- stdout (tail) ---\n"
    found = cause(output, TOOLS)
    assert found.kind == "stopped" and found.kind in CANNOT_RUN
    assert found.what == "the sandbox stopped the check (timeout)"


def test_the_outcome_is_read_after_the_command_it_quotes() -> None:
    """A command (a task's verify_command: an agent may write it) that quotes an outcome
    does not change how its run ended."""
    output = "`echo ': exit 127 in 1.0 s (bwrap sandbox)'; false`: exit 1 in 0.2 s (bwrap sandbox)"
    assert cause(output + "\nnot found", TOOLS).kind == "failing"


async def _materialize(commit: str, checkout: Path) -> None:
    """The checkout stays empty: the sandbox's run is the real one's output."""


def test_a_masked_pytest_over_an_empty_suite_is_no_green_pre_flight(tmp_path: Path) -> None:
    """Finding 4: `pytest -q || [ $? -eq 5 ]` (a project's way to tolerate an empty suite)
    exits 0 over no test, pytest saying only `1 warning`. `doctor --check` and the
    autopilot's pre-flight (gate.checked, then lander.preflight_failure) must refuse it."""
    run = RUNS["pytest-masked"]
    providers = Providers("test", (), tokens_per_complexity=1000, output_share=0.3)
    settings = Settings(state_root=tmp_path)
    verifier = Verification(cast(Database, None), settings, providers, None, timeutil.now)
    verifier._sandboxed = lambda request, stop=None: run.result()  # type: ignore[method-assign]
    orchestrator = cast(Any, SimpleNamespace(providers=providers, settings=settings,
                                             check=verifier.check))  # fmt: skip
    checked = anyio.run(gate.checked, orchestrator, _materialize, "0" * 40, run.command)
    assert isinstance(checked, VerificationFailed), checked  # not "ok pre-flight"
    assert ", but it ran no test (pytest found none): never a pass" in str(checked)
    said = lander.preflight_failure(str(run.command), "HEAD at 000000000000", str(checked), TOOLS)
    assert (
        "before any worker has changed anything (the check ran no test (pytest found none)), a "
        "check that runs none would pass whatever a worker submits; nothing was started." in said
    ), said


def _returned(output: str) -> steps.Failed:
    """What the lander makes of a failing check's output: the verdict as Steps.verify keeps
    it (its tail), then the words Steps.fail sends back or holds with."""
    kind = cause(output, "").kind
    kept = tail(output, steps.OUTPUT_TAIL)
    return steps.failed(steps.Verdict(False, "`x`: exit 0", kept, False, kind), "f" * 40)


def test_a_change_that_deletes_a_file_its_test_reads_goes_back_to_its_worker() -> None:
    """Finding 5: a test that `cat`s a file the change deleted fails the check, in a long
    output (its summary line beyond the tail a worker is given): back to the worker, said as
    the change's own failure, never held as a check that could not run."""
    run = RUNS["pytest-cat-missing"]
    long = Run(run.command, 1, "." * 6000 + "\n" + run.stdout, "")
    failed = _returned(long.output())
    what = "the change's own failure: the check ran and failed with exit 1"
    assert failed.back.summary.startswith(
        f"returned: a check failed stacked onto the target ({what}): "
        f"`{run.command}`: exit 1 in 0.4 s (bwrap sandbox)"
    ), failed.back.summary
    assert f"would land (what it passed: `x`: exit 0): {what}. Fix: make it pass" in (
        failed.back.details
    )
    for said in (failed.back.summary, failed.back.details, failed.cause):
        assert "could not run" not in said and "the check itself fails" not in said, said
    assert failed.kind == "failing" and failed.kind not in CANNOT_RUN  # not held


def test_a_check_that_could_not_run_is_held_with_its_own_cause() -> None:
    """The hold and its words come from one cause, read on the output as kept (its summary
    line kept too): never "could not run" said with a failure's words."""
    run = RUNS["npm-test-jest-missing"]
    failed = _returned(Run(run.command, 127, "x" * 6000 + run.stdout, run.stderr).output())
    assert failed.cause.startswith("a command was not found: `npm test`: exit 127 in "), failed
    assert "the change's own failure" not in failed.back.summary
    assert failed.kind == "not_found" and failed.kind in CANNOT_RUN  # held, with these words


def test_the_tail_a_worker_is_given_keeps_the_summary_line() -> None:
    output = "`pytest -q`: exit 1 in 0.4 s (bwrap sandbox)\n" + "y" * 9000 + "\nlast line"
    kept = tail(output, 4000)
    assert kept.startswith("`pytest -q`: exit 1 in 0.4 s (bwrap sandbox)\n[...]\n")
    assert kept.endswith("y\nlast line") and len(kept) <= 4000 + 10
    assert tail("short", 4000) == "short"
