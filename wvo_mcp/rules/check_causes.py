"""Why a check failed in the sandbox, told from its exit and output, and what fixes it (pure).

Why a check failed in the sandbox, told from its exit code and output, and what fixes it
(pure): a command the sandbox cannot find or execute, a script the package manager does not
have, a tool writing into the read-only toolchain, a check stopped by its limits, a test
runner that ran no test, or a real failure. Each has its own fix.

The landing gate fails closed on them (autopilot/landing/steps.py): a check that could not
run (CANNOT_RUN) never passes and is no change's fault, and one that ran no test is never a
pass, whatever its exit code (verification.py refuses it). "Could not run" is read from
how the check ended and from its command line's own first word, never from a line a test
printed: a test that fails on a missing file fails the check, whoever's words it prints.

Carried out by `wvo_mcp/autopilot/landing/steps.py`, `wvo_mcp/autopilot/landing/gate.py` and
`wvo_mcp/verification.py`."""

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

# The summary line's outcome (verification.sandbox_summary): its last, after the command.
_EXIT = re.compile(r": exit (-?\d+) in [0-9.]+ s \(\w+ sandbox\)")
_KILLED = re.compile(r": killed: ([^:`]+) in [0-9.]+ s \(\w+ sandbox\)")
# What the shell exits with when it cannot find a command, or finds one it cannot execute.
NOT_FOUND_EXIT, NOT_EXECUTABLE_EXIT = 127, 126
# bwrap's own words (exit 1) when it cannot start a command given as a list, with no shell:
# read only where they name the command line's own first word.
_NOT_STARTED = re.compile(
    r"^bwrap: execvp (.+): (No such file or directory|Permission denied)$", re.M
)
# A package manager's own words for a script it does not have: read only where it is the
# command line's own first word.
_MISSING_SCRIPT = re.compile(
    r"(npm (ERR!|error) Missing script:|ERR_PNPM_NO_SCRIPT|error Command \"[^\"]+\" not found)"
)
PACKAGE_MANAGERS = frozenset({"npm", "pnpm", "yarn"})
_READ_ONLY = re.compile(r"(Read-only file system|EROFS|ENOENT[^\n]*node_modules/\.cache)")
_NPM_LOG = re.compile(r"(/[^\s]*/\.npm/_logs/[^\s]+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # a runner forced into colour (--color=yes)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_PYTHON = re.compile(r"python[0-9.]*")
_RUN_VIA = frozenset({"uv", "poetry", "pdm", "pipenv", "hatch", "rye"})  # `uv run CMD`
# pytest's exit status for "no tests collected" (its -qq prints no summary line at all).
PYTEST_NONE_EXIT = 5

# How a runner says it ran no test (each with its `why`: "<runner> found none").
FOUND_NONE = "found none"
SKIPPED_ALL = "ran none: each test was skipped or filtered out"
# Its tests did not load (an import error): it ran none, but where the check failed, that is
# the failure itself, not an empty suite.
NOT_LOADED = "ran none: its tests failed to load or set up"

# Each form is in tests/unit/test_check_causes.py, as the runner itself printed it.
# pytest's summary line: "no tests ran in 0.42s", "1 warning in 0.01s", "5 deselected in
# 0.2s", "1 error in 0.47s", "3 passed, 1 skipped in 1.20s (0:00:01)", between "="s or not.
_COUNT = r"\d+ [a-z]+(?: [a-z]+)?"
_PYTEST = re.compile(
    rf"^=*\s*(no tests ran|{_COUNT}(?:, {_COUNT})*) in [0-9.]+ ?s(?: \([0-9:.]+\))?\s*=*$", re.M
)
_PYTEST_COLLECTED_NONE = re.compile(r"^collected 0 items$", re.M)
_PYTEST_NOT_RUN = frozenset({"warning", "warnings", "deselected", "skipped", "error", "errors"})
_UNITTEST_NONE = re.compile(r"^Ran 0 tests in |^NO TESTS RAN\b", re.M)
_UNITTEST_SKIPPED = re.compile(r"^Ran (\d+) tests? in [0-9.]+s\n\nOK \(skipped=(\d+)\)$", re.M)
_JEST_NONE = re.compile(r"^No tests found, exiting with code \d", re.M)
_JEST_TESTS = re.compile(r"^Tests:\s+((?:\d+ [a-z]+, )*\d+ total)$", re.M)
_JEST_EMPTY_FILE = "Your test suite must contain at least one test."
_VITEST_NONE = re.compile(r"^No test files found, exiting with code \d", re.M)
_VITEST_NO_TESTS = re.compile(r"^\s*Tests\s+no tests$", re.M)
_VITEST_TESTS = re.compile(r"^\s*Tests\s+(\d+ [a-z]+(?: \| \d+ [a-z]+)*) \(\d+\)$", re.M)
_VITEST_EMPTY_FILE = re.compile(r"^Error: No test suite found in file ", re.M)
_MOCHA_NONE = re.compile(r"^Error: No test files found", re.M)
_MOCHA_ZERO = re.compile(r"^\s*0 passing \(", re.M)
_MOCHA_FAILING = re.compile(r"^\s*\d+ failing$", re.M)
_MOCHA_PENDING = re.compile(r"^\s*\d+ pending$", re.M)
# ava's apostrophe is U+2019; its cross is U+2718.
_AVA_NONE = re.compile("Couldn[\u2019']t find any files to test")
_AVA_EMPTY_FILE = re.compile("^\\s*\u2718 No tests found in ", re.M)
_AVA_UNMATCHED = re.compile("Couldn[\u2019']t find any matching tests")
_AVA_SKIPPED = re.compile(r"^\s*\d+ tests? skipped$", re.M)
_AVA_RAN = re.compile(r"^\s*\d+ (tests? passed|tests? failed|known failures?)$", re.M)
_NPM_DEFAULT = re.compile(r"^Error: no test specified", re.M)  # npm init's default script
# The TAP summary of node's own runner (node --test) and of mocha's tap reporter.
_TAP_PASS_0 = re.compile(r"^# pass 0$", re.M)
_TAP_FAIL_0 = re.compile(r"^# fail 0$", re.M)
_TAP_TESTS_0 = re.compile(r"^# tests 0$", re.M)
_TAP_CANCELLED = re.compile(r"^# cancelled [1-9]", re.M)
# Said of a check that exited 0 having run no test (verification.py), with why.
_RAN_NO_TEST = re.compile(r", but it ran no test \(([^)]{1,200})\): never a pass")


def _counts(said: str, sep: str) -> set[str]:
    """The outcome words of a runner's counts ("1 passed, 2 skipped": passed, skipped)."""
    return {part.split(" ", 1)[1] for part in said.split(sep) if " " in part}


def _pytest(text: str) -> str | None:
    loaded_none = None
    for said in _PYTEST.finditer(text):
        if said.group(1) == "no tests ran":
            return FOUND_NONE
        words = _counts(said.group(1), ", ")
        if not words <= _PYTEST_NOT_RUN:
            continue  # a test passed, failed, xfailed or xpassed: one ran
        if words & {"error", "errors"}:
            loaded_none = NOT_LOADED
        elif words & {"deselected", "skipped"}:
            return SKIPPED_ALL
        else:
            return FOUND_NONE  # only warnings: "1 warning" over an empty testpaths
    return FOUND_NONE if _PYTEST_COLLECTED_NONE.search(text) else loaded_none


def _unittest(text: str) -> str | None:
    if _UNITTEST_NONE.search(text):
        return FOUND_NONE
    skipped = any(m.group(1) == m.group(2) for m in _UNITTEST_SKIPPED.finditer(text))
    return SKIPPED_ALL if skipped else None


def _jest(text: str) -> str | None:
    if _JEST_NONE.search(text):
        return FOUND_NONE
    for said in _JEST_TESTS.finditer(text):
        words = _counts(said.group(1), ", ") - {"total"}
        if not words and said.group(1) == "0 total":
            return FOUND_NONE if _JEST_EMPTY_FILE in text else NOT_LOADED
        if words and words <= {"skipped", "todo"}:
            return SKIPPED_ALL  # -t matching no test says so too
    return None


def _vitest(text: str) -> str | None:
    if _VITEST_NONE.search(text):
        return FOUND_NONE
    if _VITEST_NO_TESTS.search(text):
        return FOUND_NONE if _VITEST_EMPTY_FILE.search(text) else NOT_LOADED
    skipped = any(_counts(m.group(1), " | ") <= {"skipped", "todo"}
                  for m in _VITEST_TESTS.finditer(text))  # fmt: skip
    return SKIPPED_ALL if skipped else None


def _mocha(text: str) -> str | None:
    if _MOCHA_NONE.search(text):
        return FOUND_NONE
    if _MOCHA_ZERO.search(text) and not _MOCHA_FAILING.search(text):
        return SKIPPED_ALL if _MOCHA_PENDING.search(text) else FOUND_NONE
    return None


def _ava(text: str) -> str | None:
    if _AVA_NONE.search(text):
        return FOUND_NONE
    if _AVA_RAN.search(text):
        return None  # one file of several may have none: the others ran
    if _AVA_EMPTY_FILE.search(text):
        return FOUND_NONE
    if _AVA_UNMATCHED.search(text) or _AVA_SKIPPED.search(text):
        return SKIPPED_ALL
    return None


def _npm(text: str) -> str | None:
    return FOUND_NONE if _NPM_DEFAULT.search(text) else None


def _tap(text: str) -> str | None:
    if not (_TAP_PASS_0.search(text) and _TAP_FAIL_0.search(text)):
        return None
    if _TAP_CANCELLED.search(text):
        return None
    return FOUND_NONE if _TAP_TESTS_0.search(text) else SKIPPED_ALL


_NO_TESTS: tuple[tuple[str, Callable[[str], str | None]], ...] = (
    ("pytest", _pytest),
    ("unittest", _unittest),
    ("jest", _jest),
    ("vitest", _vitest),
    ("mocha", _mocha),
    ("ava", _ava),
    ("npm", _npm),
    ("a TAP runner", _tap),
)


def said_no_test(why: str) -> str:
    """What a passing check's summary line gets when it ran no test (`why`: who says so)."""
    return f", but it ran no test ({why}): never a pass (a check that runs none passes anything)"


# Kinds where the check could not run: never a pass, never the change's fault.
CANNOT_RUN = frozenset({"not_found", "not_executable", "missing_script", "read_only", "stopped"})
NO_TESTS_FIX = (
    "give the check tests to run: one that runs none passes whatever is submitted. Where "
    "the project means it (a lint, a build), say so in the providers file: "
    "`gate: {allow_no_tests: WHY}`, which lets through only a check that exits 0 (pytest over "
    "no test exits 5: `pytest -q || [ $? -eq 5 ]`)"
)


@dataclass(frozen=True)
class Cause:
    kind: str  # one of CANNOT_RUN, no_tests, or failing (the check ran and failed)
    what: str  # what went wrong, in a few words
    fix: str


def _no_test(output: str) -> tuple[str, bool] | None:
    """Who says, in `output`, that it ran no test, and whether its tests loaded at all."""
    text = _ANSI.sub("", output)
    unloaded = None
    for runner, reads in _NO_TESTS:
        how = reads(text)
        if how is None:
            continue
        if how != NOT_LOADED:
            return f"{runner} {how}", True
        unloaded = unloaded or (f"{runner} {how}", False)
    return unloaded


def ran_no_test(output: str) -> str | None:
    """Who says in `output` that it ran no test, and how ("pytest found none"); None where
    no runner says so."""
    found = _no_test(output)
    return found[0] if found else None


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:  # cut at 200 characters, or quoted oddly: its words as they stand
        return command.split()


def _program(command: str) -> str:
    """The program `command` starts, by its first word's file name (through `python -m`,
    `uv run` and the like, the one they start)."""
    words = _words(command)
    while words and _ASSIGNMENT.match(words[0]):
        words = words[1:]
    while words:
        name = words[0].rsplit("/", 1)[-1]
        starts = words[1:2] == ["run"] if name in _RUN_VIA else None
        if starts is None and _PYTHON.fullmatch(name):
            starts = words[1:2] == ["-m"]
        if not starts:
            return name
        words = words[2:]  # the program they start, with its own words
    return ""


def _outcome(head: str) -> tuple[int | None, str | None, str]:
    """From a summary line (verification.sandbox_summary): the exit code, or why the sandbox
    stopped it, and the command, as it quotes it."""
    outcome = [*_EXIT.finditer(head), *_KILLED.finditer(head)]
    last = max(outcome, key=lambda m: m.start(), default=None)
    if last is None:
        return None, None, ""
    start = head.find("`")
    command = head[start + 1 : last.start() - 1] if 0 <= start < last.start() - 1 else ""
    if last.re is _KILLED:
        return None, last.group(1), command
    return int(last.group(1)), None, command


def cause(output: str, toolchain: str) -> Cause:
    """What a failed check's `output` (its summary line, then its output tails) says went
    wrong; `toolchain`: what the sandbox shows read-only, as Toolchain.describe says it."""
    code, killed, command = _outcome(output.split("\n", 1)[0])
    if killed:
        return Cause(
            "stopped",
            f"the sandbox stopped the check ({killed})",
            "the check could not finish within its limits (WVO_VERIFY_TIMEOUT_SECONDS, "
            "WVO_VERIFY_MEMORY_MB): raise them, or make the check lighter; nothing is "
            "blamed on the change meanwhile",
        )
    first = next(iter(_words(command)), None)
    unstarted = {m.group(2) for m in _NOT_STARTED.finditer(output) if m.group(1) == first}
    if code == NOT_FOUND_EXIT or "No such file or directory" in unstarted:
        return Cause(
            "not_found",
            "a command was not found",
            "it is not on the sandbox's PATH, which holds the system folders (/usr/bin, /bin) "
            f"and the toolchain's programs ({toolchain}); install it there, or name it by its "
            "path in the toolchain",
        )
    if code == NOT_EXECUTABLE_EXIT or unstarted:
        return Cause(
            "not_executable",
            "a command was found but could not be executed",
            "a script needs its executable bit (git keeps it: `git update-index --chmod=+x "
            "FILE`), or run it through its interpreter (`sh FILE`); a program must be built "
            f"for this machine, from the system folders or the toolchain ({toolchain})",
        )
    program = _program(command)
    if program in PACKAGE_MANAGERS and _MISSING_SCRIPT.search(output):
        return Cause(
            "missing_script",
            "the package manager has no such script",
            "add it to package.json's `scripts`, or correct the command's name",
        )
    marked = [m.group(1) for m in _RAN_NO_TEST.finditer(output.split("\n", 1)[0])]
    said = (marked[-1], not marked[-1].endswith(NOT_LOADED)) if marked else _no_test(output)
    if said is not None and said[1]:
        return Cause("no_tests", f"the check ran no test ({said[0]})", NO_TESTS_FIX)
    if code == PYTEST_NONE_EXIT and program == "pytest":
        why = f"pytest found none: its exit status {PYTEST_NONE_EXIT}"
        return Cause("no_tests", f"the check ran no test ({why})", NO_TESTS_FIX)
    if _READ_ONLY.search(output):
        return Cause(
            "read_only",
            "a tool wrote into a read-only folder",
            f"the toolchain ({toolchain}) is read-only in every sandbox: have the tool write "
            "in the checkout or $TMPDIR. Anything new in node_modules is each sandbox's own, "
            "but a package's own folder, .venv and declared folders stay read-only; "
            "find-cache-dir tools follow CACHE_DIR",
        )
    # Tests that did not load (said is not None): the error that stopped them is the failure.
    failed = "the check ran and failed" + (f" with exit {code}" if code else "")
    return Cause(
        "failing",
        f"the check ran no test ({said[0]})" if said is not None and not code else failed,
        "make it pass. If it passes by hand, the difference is the sandbox: a clean checkout "
        "(what git tracks, and the toolchain), no network, its own HOME and /tmp; "
        "`wvo-mcp sandbox run -- CMD` runs a command there to see",
    )


def tail(output: str, limit: int) -> str:
    """`output` cut to about its last `limit` characters, its first line (the summary: the
    command and how it ended, which causes are read from) kept."""
    if len(output) <= limit:
        return output
    head = output.split("\n", 1)[0][: limit // 2]
    return f"{head}\n[...]\n{output[len(output) - (limit - len(head)) :]}"


def notes(output: str) -> list[str]:
    """What in the output points into the sandbox, explained."""
    found = _NPM_LOG.search(output)
    if found is None:
        return []
    return [
        f"({found.group(1)} was in the sandbox's own home, gone with it; run with "
        "`--loglevel verbose` to have npm write its log into the output)"
    ]
