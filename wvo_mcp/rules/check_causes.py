"""Why a check failed in the sandbox, told from its exit code and output, and what fixes it
(pure): a command the sandbox cannot find, a script the package manager does not have, a
tool writing into the read-only toolchain, a check stopped by its limits, a test runner
that found no test, or a real failure. Each has its own fix.

The landing gate fails closed on them (autopilot/lander.py): a check that could not run
(CANNOT_RUN) never passes and is no change's fault, and one that ran no test is never a
pass, whatever its exit code (verification.py refuses it)."""

import re
from dataclasses import dataclass

# The summary line's outcome (verification.sandbox_summary): its last, after the command.
_EXIT = re.compile(r": exit (\d+) in [0-9.]+ s \(\w+ sandbox\)")
_NOT_FOUND = re.compile(r"(command not found|: not found$|No such file or directory$)", re.M)
_MISSING_SCRIPT = re.compile(
    r"(npm (ERR!|error) Missing script:|ERR_PNPM_NO_SCRIPT|error Command \"[^\"]+\" not found)"
)
_READ_ONLY = re.compile(r"(Read-only file system|EROFS|ENOENT[^\n]*node_modules/\.cache)")
_NPM_LOG = re.compile(r"(/[^\s]*/\.npm/_logs/[^\s]+)")
_KILLED = re.compile(r": killed: ([^:`]+) in [0-9.]+ s \(\w+ sandbox\)")
# What each test runner prints when it found no test to run, as it prints it (each is in
# tests/unit/test_check_causes.py, from the runner itself).
_NO_TESTS = (
    ("pytest", re.compile(r"\bno tests ran in [0-9.]+ ?s\b|^collected 0 items\b", re.M)),
    ("unittest", re.compile(r"^Ran 0 tests in |^NO TESTS RAN\b", re.M)),
    ("jest", re.compile(r"^No tests found, exiting with code \d", re.M)),
    ("vitest", re.compile(r"^No test files found, exiting with code \d", re.M)),
    ("mocha", re.compile(r"^Error: No test files found", re.M)),
    ("ava", re.compile("Couldn[\u2019']t find any files to test")),  # its apostrophe is U+2019
    ("npm", re.compile(r"^Error: no test specified", re.M)),  # npm init's default script
)
# Said of a check that exited 0 having run no test (verification.py), with why.
_RAN_NO_TEST = re.compile(r", but it ran no test \(([^)]{1,200})\): never a pass")


def said_no_test(why: str) -> str:
    """What a passing check's summary line gets when it ran no test (`why`: who says so)."""
    return f", but it ran no test ({why}): never a pass (a check that runs none passes anything)"


# Kinds where the check could not run: never a pass, never the change's fault.
CANNOT_RUN = frozenset({"not_found", "missing_script", "read_only", "stopped"})
NO_TESTS_FIX = (
    "give the check tests to run: one that runs none passes whatever is submitted. Where "
    "the project means it (a lint, a build), say so in the providers file: "
    "`gate: {allow_no_tests: WHY}`"
)


@dataclass(frozen=True)
class Cause:
    kind: str  # not_found | missing_script | stopped | no_tests | read_only | failing
    what: str  # what went wrong, in a few words
    fix: str


def ran_no_test(output: str) -> str | None:
    """The test runner that says, in `output`, that it found no test to run; None."""
    return next((runner for runner, said in _NO_TESTS if said.search(output)), None)


def cause(output: str, toolchain: str) -> Cause:
    """What a failed check's `output` (its summary line, then its output tails) says went
    wrong; `toolchain`: what the sandbox shows read-only, as Toolchain.describe says it."""
    head = output.split("\n", 1)[0]
    outcome = [*_EXIT.finditer(head), *_KILLED.finditer(head)]
    last = max(outcome, key=lambda m: m.start(), default=None)
    code = int(last.group(1)) if last is not None and last.re is _EXIT else None
    killed = last if last is not None and last.re is _KILLED else None
    if killed:
        return Cause(
            "stopped",
            f"the sandbox stopped the check ({killed.group(1)})",
            "the check could not finish within its limits (WVO_VERIFY_TIMEOUT_SECONDS, "
            "WVO_VERIFY_MEMORY_MB): raise them, or make the check lighter; nothing is "
            "blamed on the change meanwhile",
        )
    if _MISSING_SCRIPT.search(output):
        return Cause(
            "missing_script",
            "the package manager has no such script",
            "add it to package.json's `scripts`, or correct the command's name",
        )
    if code == 127 or (code is not None and _NOT_FOUND.search(output)):
        return Cause(
            "not_found",
            "a command was not found",
            "it is not on the sandbox's PATH, which holds the system folders (/usr/bin, /bin) "
            f"and the toolchain's programs ({toolchain}); install it there, or name it by its "
            "path in the toolchain",
        )
    runner = ran_no_test(output)
    marked = [*_RAN_NO_TEST.finditer(head)]
    if marked or runner is not None:
        why = marked[-1].group(1) if marked else f"{runner} found none"
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
    return Cause(
        "failing",
        "the check itself fails",
        "make it pass. If it passes by hand, the difference is the sandbox: a clean checkout "
        "(what git tracks, and the toolchain), no network, its own HOME and /tmp; "
        "`wvo-mcp sandbox run -- CMD` runs a command there to see",
    )


def notes(output: str) -> list[str]:
    """What in the output points into the sandbox, explained."""
    found = _NPM_LOG.search(output)
    if found is None:
        return []
    return [
        f"({found.group(1)} was in the sandbox's own home, gone with it; run with "
        "`--loglevel verbose` to have npm write its log into the output)"
    ]
