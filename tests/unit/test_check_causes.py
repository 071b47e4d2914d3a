"""A failed check's cause, told from how it ended, its command line's own first word and its
test runner's words (rules/check_causes.py), and how the lander words it to a worker or a
person (issue 69, findings 4 and 5).

Every run below is what the real runner printed in the real sandbox (`wvo-mcp sandbox run`,
bwrap), on a scratch project in /tmp: pytest 9.2.0 from the project's .venv, Python 3.11's
unittest, ava 6.4.1 (pinned by tests/autopilot/samples/avaproject), jest 30.5.2, vitest
3.2.7, mocha 11.8.0, node 20's own runner (`node --test`) and npm 10. pytest's warning is
its own for `testpaths = tests` over a folder git does not keep (an empty one)."""

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import anyio
import pytest

from wvo_mcp import timeutil
from wvo_mcp.autopilot import lander
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


RUNS = {
    "pytest-no-tests-ran": Run(
        ".venv/bin/pytest -q -p no:cacheprovider",
        5,
        "\nno tests ran in 0.22s\n",
        "",
    ),
    "pytest-1-warning": Run(
        ".venv/bin/pytest -q -p no:cacheprovider",
        5,
        "\n"
        "=============================== warnings summary ======================="
        "========\n"
        "../../../../work/main/.venv/lib/python3.11/site-packages/_pytest/config/"
        "__init__.py:1810\n"
        "  /work/main/.venv/lib/python3.11/site-packages/_pytest/config/__init__."
        "py:1810: PytestConfigWarning: No files were found in testpaths; consider"
        " removing or adjusting your testpaths configuration. Searching recursive"
        "ly from the current directory instead.\n"
        "    self.args, self.args_source = self._decide_args(\n"
        "\n"
        "-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html\n"
        "1 warning in 0.35s\n",
        "",
    ),
    "pytest-1-warning-verbose": Run(
        ".venv/bin/pytest -p no:cacheprovider",
        5,
        "============================= test session starts ======================"
        "========\n"
        "platform linux -- Python 3.11.7, pytest-9.2.0, pluggy-1.7.0\n"
        "rootdir: /tmp/cc_scratch/runs/py-warnfull\n"
        "configfile: pytest.ini\n"
        "plugins: hypothesis-6.170.9, xdist-3.8.0, platformdirs-4.14.8, anyio-4.1"
        "6.0\n"
        "collected 0 items\n"
        "\n"
        "=============================== warnings summary ======================="
        "========\n"
        "../../../../work/main/.venv/lib/python3.11/site-packages/_pytest/config/"
        "__init__.py:1810\n"
        "  /work/main/.venv/lib/python3.11/site-packages/_pytest/config/__init__."
        "py:1810: PytestConfigWarning: No files were found in testpaths; consider"
        " removing or adjusting your testpaths configuration. Searching recursive"
        "ly from the current directory instead.\n"
        "    self.args, self.args_source = self._decide_args(\n"
        "\n"
        "-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html\n"
        "============================== 1 warning in 0.23s ======================"
        "========\n",
        "",
    ),
    "pytest-masked": Run(
        ".venv/bin/pytest -q -p no:cacheprovider || [ $? -eq 5 ]",
        0,
        "\n"
        "=============================== warnings summary ======================="
        "========\n"
        "../../../../work/main/.venv/lib/python3.11/site-packages/_pytest/config/"
        "__init__.py:1810\n"
        "  /work/main/.venv/lib/python3.11/site-packages/_pytest/config/__init__."
        "py:1810: PytestConfigWarning: No files were found in testpaths; consider"
        " removing or adjusting your testpaths configuration. Searching recursive"
        "ly from the current directory instead.\n"
        "    self.args, self.args_source = self._decide_args(\n"
        "\n"
        "-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html\n"
        "1 warning in 0.15s\n",
        "",
    ),
    "pytest-qq": Run(
        ".venv/bin/pytest -qq -p no:cacheprovider",
        5,
        "\n"
        "=============================== warnings summary ======================="
        "========\n"
        "../../../../work/main/.venv/lib/python3.11/site-packages/_pytest/config/"
        "__init__.py:1810\n"
        "  /work/main/.venv/lib/python3.11/site-packages/_pytest/config/__init__."
        "py:1810: PytestConfigWarning: No files were found in testpaths; consider"
        " removing or adjusting your testpaths configuration. Searching recursive"
        "ly from the current directory instead.\n"
        "    self.args, self.args_source = self._decide_args(\n"
        "\n"
        "-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html\n",
        "",
    ),
    "pytest-deselected": Run(
        ".venv/bin/pytest -q -p no:cacheprovider -k nomatch",
        5,
        "\n1 deselected in 0.16s\n",
        "",
    ),
    "pytest-skipped": Run(
        ".venv/bin/pytest -q -p no:cacheprovider",
        0,
        "s                                                                       "
        " [100%]\n"
        "1 skipped in 0.20s\n",
        "",
    ),
    "pytest-collection-error": Run(
        ".venv/bin/pytest -q -p no:cacheprovider",
        2,
        "\n"
        "==================================== ERRORS ============================"
        "========\n"
        "__________________________ ERROR collecting test_a.py __________________"
        "________\n"
        "ImportError while importing test module '/tmp/cc_scratch/runs/py-err/tes"
        "t_a.py'.\n"
        "Hint: make sure your test modules/packages have valid Python names.\n"
        "Traceback:\n"
        "/root/.pyenv/versions/3.11.7/lib/python3.11/importlib/__init__.py:126: i"
        "n import_module\n"
        "    return _bootstrap._gcd_import(name[level:], package, level)\n"
        "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "test_a.py:1: in <module>\n"
        "    import missing_mod\n"
        "E   ModuleNotFoundError: No module named 'missing_mod'\n"
        "=========================== short test summary info ===================="
        "========\n"
        "ERROR test_a.py\n"
        "!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!"
        "!!!!!!!!\n"
        "1 error in 0.48s\n",
        "",
    ),
    "pytest-collection-error-verbose": Run(
        ".venv/bin/pytest -p no:cacheprovider",
        2,
        "============================= test session starts ======================"
        "========\n"
        "platform linux -- Python 3.11.7, pytest-9.2.0, pluggy-1.7.0\n"
        "rootdir: /tmp/cc_scratch/runs/py-errfull\n"
        "plugins: hypothesis-6.170.9, xdist-3.8.0, platformdirs-4.14.8, anyio-4.1"
        "6.0\n"
        "collected 0 items / 1 error\n"
        "\n"
        "==================================== ERRORS ============================"
        "========\n"
        "__________________________ ERROR collecting test_a.py __________________"
        "________\n"
        "ImportError while importing test module '/tmp/cc_scratch/runs/py-errfull"
        "/test_a.py'.\n"
        "Hint: make sure your test modules/packages have valid Python names.\n"
        "Traceback:\n"
        "/root/.pyenv/versions/3.11.7/lib/python3.11/importlib/__init__.py:126: i"
        "n import_module\n"
        "    return _bootstrap._gcd_import(name[level:], package, level)\n"
        "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "test_a.py:1: in <module>\n"
        "    import missing_mod\n"
        "E   ModuleNotFoundError: No module named 'missing_mod'\n"
        "=========================== short test summary info ===================="
        "========\n"
        "ERROR test_a.py\n"
        "!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!"
        "!!!!!!!!\n"
        "=============================== 1 error in 0.23s ======================="
        "========\n",
        "",
    ),
    "pytest-passed-with-warning": Run(
        ".venv/bin/pytest -q -p no:cacheprovider",
        0,
        ".                                                                       "
        " [100%]\n"
        "=============================== warnings summary ======================="
        "========\n"
        "test_a.py::test_a\n"
        "  /tmp/cc_scratch/runs/py-passw/test_a.py:4: UserWarning: old\n"
        '    warnings.warn("old")\n'
        "\n"
        "-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html\n"
        "1 passed, 1 warning in 0.18s\n",
        "",
    ),
    "pytest-cat-missing": Run(
        ".venv/bin/python -m pytest -q -p no:cacheprovider",
        1,
        "F                                                                       "
        " [100%]\n"
        "=================================== FAILURES ==========================="
        "========\n"
        "_____________________________ test_reads_its_data ______________________"
        "________\n"
        "\n"
        "    def test_reads_its_data():\n"
        '        out = subprocess.run(["cat", "data/input.txt"], capture_output=T'
        "rue, text=True)\n"
        ">       assert out.returncode == 0, out.stderr\n"
        "E       AssertionError: cat: data/input.txt: No such file or directory\n"
        "E         \n"
        "E       assert 1 == 0\n"
        "E        +  where 1 = CompletedProcess(args=['cat', 'data/input.txt'], r"
        "eturncode=1, stdout='', stderr='cat: data/input.txt: No such file or dir"
        "ectory\\n').returncode\n"
        "\n"
        "test_data.py:6: AssertionError\n"
        "=========================== short test summary info ===================="
        "========\n"
        "FAILED test_data.py::test_reads_its_data - AssertionError: cat: data/inp"
        "ut.tx...\n"
        "1 failed in 0.18s\n",
        "",
    ),
    "unittest-none": Run(
        ".venv/bin/python -m unittest",
        0,
        "",
        "\n"
        "----------------------------------------------------------------------\n"
        "Ran 0 tests in 0.000s\n"
        "\n"
        "OK\n",
    ),
    "unittest-skipped": Run(
        ".venv/bin/python -m unittest",
        0,
        "",
        "s\n"
        "----------------------------------------------------------------------\n"
        "Ran 1 test in 0.000s\n"
        "\n"
        "OK (skipped=1)\n",
    ),
    "jest-none": Run(
        "node_modules/.bin/jest --ci",
        1,
        "No tests found, exiting with code 1\n"
        "Run with `--passWithNoTests` to exit with code 0\n"
        "In /tmp/cc_scratch/runs/jest-empty\n"
        "  1 file checked.\n"
        "  testMatch: **/__tests__/**/*.?([mc])[jt]s?(x), **/?(*.)+(spec|test).?("
        "[mc])[jt]s?(x) - 0 matches\n"
        "  testPathIgnorePatterns: /node_modules/ - 1 match\n"
        "  testRegex:  - 0 matches\n"
        "Pattern:  - 0 matches\n",
        "",
    ),
    "jest-path-filter": Run(
        "node_modules/.bin/jest --ci nomatch",
        1,
        "No tests found, exiting with code 1\n"
        "Run with `--passWithNoTests` to exit with code 0\n"
        "In /tmp/cc_scratch/runs/jest-pathfiltered\n"
        "  2 files checked.\n"
        "  testMatch: **/__tests__/**/*.?([mc])[jt]s?(x), **/?(*.)+(spec|test).?("
        "[mc])[jt]s?(x) - 1 match\n"
        "  testPathIgnorePatterns: /node_modules/ - 2 matches\n"
        "  testRegex:  - 0 matches\n"
        "Pattern: nomatch - 0 matches\n",
        "",
    ),
    "jest-pass-with-no-tests": Run(
        "node_modules/.bin/jest --ci --passWithNoTests",
        0,
        "No tests found, exiting with code 0\n",
        "",
    ),
    "jest-empty-file": Run(
        "node_modules/.bin/jest --ci",
        1,
        "",
        "FAIL ./x.test.js\n"
        "  ● Test suite failed to run\n"
        "\n"
        "    Your test suite must contain at least one test.\n"
        "\n"
        "      at onResult (node_modules/@jest/core/build/index.js:1054:18)\n"
        "          at Array.map (<anonymous>)\n"
        "\n"
        "Test Suites: 1 failed, 1 total\n"
        "Tests:       0 total\n"
        "Snapshots:   0 total\n"
        "Time:        0.925 s\n"
        "Ran all test suites.\n",
    ),
    "jest-name-filter": Run(
        "node_modules/.bin/jest --ci -t nomatch",
        0,
        "",
        "Test Suites: 1 skipped, 0 of 1 total\n"
        "Tests:       1 skipped, 1 total\n"
        "Snapshots:   0 total\n"
        "Time:        0.616 s\n"
        'Ran all test suites with tests matching "nomatch".\n',
    ),
    "jest-skipped": Run(
        "node_modules/.bin/jest --ci",
        0,
        "",
        "Test Suites: 1 skipped, 0 of 1 total\n"
        "Tests:       1 skipped, 1 total\n"
        "Snapshots:   0 total\n"
        "Time:        0.904 s\n"
        "Ran all test suites.\n",
    ),
    "jest-import-error": Run(
        "node_modules/.bin/jest --ci",
        1,
        "",
        "FAIL ./x.test.js\n"
        "  ● Test suite failed to run\n"
        "\n"
        "    Cannot find module './missing' from 'x.test.js'\n"
        "\n"
        "    > 1 | require('./missing'); test('adds', () => { expect(1+1).toBe(2)"
        "; });\n"
        "        | ^\n"
        "      2 |\n"
        "\n"
        "      at Resolver._throwModNotFoundError (node_modules/jest-resolve/buil"
        "d/index.js:1031:11)\n"
        "      at Object.require (x.test.js:1:1)\n"
        "\n"
        "Test Suites: 1 failed, 1 total\n"
        "Tests:       0 total\n"
        "Snapshots:   0 total\n"
        "Time:        2.517 s\n"
        "Ran all test suites.\n",
    ),
    "jest-passed": Run(
        "node_modules/.bin/jest --ci",
        0,
        "",
        "PASS ./x.test.js\n"
        "  ✓ adds (3 ms)\n"
        "\n"
        "Test Suites: 1 passed, 1 total\n"
        "Tests:       1 passed, 1 total\n"
        "Snapshots:   0 total\n"
        "Time:        0.702 s\n"
        "Ran all test suites.\n",
    ),
    "vitest-none": Run(
        "node_modules/.bin/vitest run",
        1,
        "\n RUN  v3.2.7 /tmp/cc_scratch/runs/vitest-empty\n\n",
        "No test files found, exiting with code 1\n"
        "\n"
        "include: **/*.{test,spec}.?(c|m)[jt]s?(x)\n"
        "exclude:  **/node_modules/**, **/dist/**, **/cypress/**, **/.{idea,git,c"
        "ache,output,temp}/**, **/{karma,rollup,webpack,vite,vitest,jest,ava,babe"
        "l,nyc,cypress,tsup,build,eslint,prettier}.config.*\n"
        "\n",
    ),
    "vitest-path-filter": Run(
        "node_modules/.bin/vitest run nomatch",
        1,
        "\n RUN  v3.2.7 /tmp/cc_scratch/runs/vitest-pathfiltered\n\n",
        "No test files found, exiting with code 1\n"
        "\n"
        "filter: nomatch\n"
        "include: **/*.{test,spec}.?(c|m)[jt]s?(x)\n"
        "exclude:  **/node_modules/**, **/dist/**, **/cypress/**, **/.{idea,git,c"
        "ache,output,temp}/**, **/{karma,rollup,webpack,vite,vitest,jest,ava,babe"
        "l,nyc,cypress,tsup,build,eslint,prettier}.config.*\n"
        "\n",
    ),
    "vitest-pass-with-no-tests": Run(
        "node_modules/.bin/vitest run --passWithNoTests",
        0,
        "\n"
        " RUN  v3.2.7 /tmp/cc_scratch/runs/vitest-pwnt\n"
        "\n"
        "No test files found, exiting with code 0\n"
        "\n",
        "include: **/*.{test,spec}.?(c|m)[jt]s?(x)\n"
        "exclude:  **/node_modules/**, **/dist/**, **/cypress/**, **/.{idea,git,c"
        "ache,output,temp}/**, **/{karma,rollup,webpack,vite,vitest,jest,ava,babe"
        "l,nyc,cypress,tsup,build,eslint,prettier}.config.*\n"
        "\n",
    ),
    "vitest-empty-file": Run(
        "node_modules/.bin/vitest run",
        1,
        "\n"
        " RUN  v3.2.7 /tmp/cc_scratch/runs/vitest-zero\n"
        "\n"
        "\n"
        " Test Files  1 failed (1)\n"
        "      Tests  no tests\n"
        "   Start at  00:30:14\n"
        "   Duration  378ms (transform 68ms, setup 0ms, collect 30ms, tests 0ms, "
        "environment 0ms, prepare 117ms)\n"
        "\n",
        "\n"
        "⎯⎯⎯⎯⎯⎯ Failed Suites 1 ⎯⎯⎯⎯⎯⎯⎯\n"
        "\n"
        " FAIL  x.test.js [ x.test.js ]\n"
        "Error: No test suite found in file /tmp/cc_scratch/runs/vitest-zero/x.te"
        "st.js\n"
        "⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯[1/1]⎯\n"
        "\n",
    ),
    "vitest-name-filter": Run(
        "node_modules/.bin/vitest run -t nomatch",
        0,
        "\n"
        " RUN  v3.2.7 /tmp/cc_scratch/runs/vitest-filtered\n"
        "\n"
        " ↓ x.test.js (1 test | 1 skipped)\n"
        "\n"
        " Test Files  1 skipped (1)\n"
        "      Tests  1 skipped (1)\n"
        "   Start at  00:30:17\n"
        "   Duration  738ms (transform 95ms, setup 0ms, collect 40ms, tests 0ms, "
        "environment 0ms, prepare 251ms)\n"
        "\n",
        "",
    ),
    "vitest-skipped": Run(
        "node_modules/.bin/vitest run",
        0,
        "\n"
        " RUN  v3.2.7 /tmp/cc_scratch/runs/vitest-skipped\n"
        "\n"
        " ↓ x.test.js (1 test | 1 skipped)\n"
        "\n"
        " Test Files  1 skipped (1)\n"
        "      Tests  1 skipped (1)\n"
        "   Start at  00:30:23\n"
        "   Duration  321ms (transform 42ms, setup 0ms, collect 13ms, tests 0ms, "
        "environment 0ms, prepare 98ms)\n"
        "\n",
        "",
    ),
    "vitest-import-error": Run(
        "node_modules/.bin/vitest run",
        1,
        "\n"
        " RUN  v3.2.7 /tmp/cc_scratch/runs/vitest-broken\n"
        "\n"
        "\n"
        " Test Files  1 failed (1)\n"
        "      Tests  no tests\n"
        "   Start at  00:31:32\n"
        "   Duration  1.08s (transform 146ms, setup 0ms, collect 0ms, tests 0ms, "
        "environment 0ms, prepare 410ms)\n"
        "\n",
        "\n"
        "⎯⎯⎯⎯⎯⎯ Failed Suites 1 ⎯⎯⎯⎯⎯⎯⎯\n"
        "\n"
        " FAIL  x.test.js [ x.test.js ]\n"
        "Error: Cannot find module './missing.js' imported from '/tmp/cc_scratch/"
        "runs/vitest-broken/x.test.js'\n"
        " \u276f x.test.js:1:1\n"
        "      1| import './missing.js'; import {test, expect} from 'vitest'; tes"
        "t('adds…\n"
        "       | ^\n"
        "      2| \n"
        "\n"
        "Caused by: Error: Failed to load url ./missing.js (resolved id: ./missin"
        "g.js) in /tmp/cc_scratch/runs/vitest-broken/x.test.js. Does the file exi"
        "st?\n"
        " \u276f loadAndTransform node_modules/vite/dist/node/chunks/config.js:22907:3"
        "3\n"
        "\n"
        "⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯[1/1]⎯\n"
        "\n",
    ),
    "vitest-passed": Run(
        "node_modules/.bin/vitest run",
        0,
        "\n"
        " RUN  v3.2.7 /tmp/cc_scratch/runs/vitest-pass\n"
        "\n"
        " ✓ x.test.js (1 test) 3ms\n"
        "\n"
        " Test Files  1 passed (1)\n"
        "      Tests  1 passed (1)\n"
        "   Start at  00:30:26\n"
        "   Duration  364ms (transform 38ms, setup 0ms, collect 17ms, tests 3ms, "
        "environment 0ms, prepare 100ms)\n"
        "\n",
        "",
    ),
    "mocha-none": Run(
        "node_modules/.bin/mocha",
        1,
        "",
        'Error: No test files found: "test"\n',
    ),
    "mocha-empty-file": Run(
        "node_modules/.bin/mocha",
        0,
        "\n\n  0 passing (5ms)\n\n",
        "",
    ),
    "mocha-grep": Run(
        "node_modules/.bin/mocha --grep nomatch",
        0,
        "\n\n  0 passing (1ms)\n\n",
        "",
    ),
    "mocha-skipped": Run(
        "node_modules/.bin/mocha",
        0,
        "\n\n  - adds\n\n  0 passing (2ms)\n  1 pending\n\n",
        "",
    ),
    "mocha-tap": Run(
        "node_modules/.bin/mocha --reporter tap",
        0,
        "# tests 0\n# pass 0\n# fail 0\n1..0\n",
        "",
    ),
    "mocha-passed": Run(
        "node_modules/.bin/mocha",
        0,
        "\n\n  ✔ adds\n\n  1 passing (3ms)\n\n",
        "",
    ),
    "ava-none": Run(
        "node_modules/.bin/ava",
        1,
        "\n  ✘ Couldn\u2019t find any files to test\n\n",
        "",
    ),
    "ava-empty-file": Run(
        "node_modules/.bin/ava",
        1,
        "\n  ✘ No tests found in test.js\n  ─\n\n",
        "",
    ),
    "ava-match": Run(
        "node_modules/.bin/ava --match nomatch",
        1,
        "\n  ✘ Couldn\u2019t find any matching tests\n\n",
        "",
    ),
    "ava-skipped": Run(
        "node_modules/.bin/ava",
        0,
        "\n  - [skip] adds\n  ─\n\n  1 test skipped\n",
        "",
    ),
    "ava-import-error": Run(
        "node_modules/.bin/ava",
        1,
        "\n"
        "  Uncaught exception in test.js\n"
        "\n"
        "  Error [ERR_MODULE_NOT_FOUND]: Cannot find module '/tmp/cc_scratch/runs"
        "/ava-broken/missing.js' imported from /tmp/cc_scratch/runs/ava-broken/te"
        "st.js\n"
        "\n"
        "  Error [ERR_MODULE_NOT_FOUND]: Cannot find module '/tmp/cc_scratch/runs"
        "/ava-broken/missing.js' imported from /tmp/cc_scratch/runs/ava-broken/te"
        "st.js\n"
        "      at finalizeResolution (node:internal/modules/esm/resolve:283:11)\n"
        "      at moduleResolve (node:internal/modules/esm/resolve:952:10)\n"
        "      at defaultResolve (node:internal/modules/esm/resolve:1188:11)\n"
        "      at ModuleLoader.defaultResolve (node:internal/modules/esm/loader:7"
        "08:12)\n"
        "      at #cachedDefaultResolve (node:internal/modules/esm/loader:657:25)"
        "\n"
        "      at ModuleLoader.resolve (node:internal/modules/esm/loader:640:38)\n"
        "      at ModuleLoader.getModuleJobForImport (node:internal/modules/esm/l"
        "oader:264:38)\n"
        "      at ModuleJob._link (node:internal/modules/esm/module_job:168:49)\n"
        "\n"
        "  ✘ test.js exited with a non-zero exit code: 1\n"
        "  ─\n"
        "\n"
        "  1 uncaught exception\n",
        "",
    ),
    "ava-passed": Run(
        "node_modules/.bin/ava",
        0,
        "\n  ✔ adds\n  ─\n\n  1 test passed\n",
        "",
    ),
    "node-none": Run(
        "node --test",
        0,
        "TAP version 13\n"
        "1..0\n"
        "# tests 0\n"
        "# suites 0\n"
        "# pass 0\n"
        "# fail 0\n"
        "# cancelled 0\n"
        "# skipped 0\n"
        "# todo 0\n"
        "# duration_ms 3.554484\n",
        "",
    ),
    "node-skipped": Run(
        "node --test",
        0,
        "TAP version 13\n"
        "# Subtest: adds\n"
        "ok 1 - adds # SKIP\n"
        "  ---\n"
        "  duration_ms: 5.804893\n"
        "  ...\n"
        "1..1\n"
        "# tests 1\n"
        "# suites 0\n"
        "# pass 0\n"
        "# fail 0\n"
        "# cancelled 0\n"
        "# skipped 1\n"
        "# todo 0\n"
        "# duration_ms 146.150084\n",
        "",
    ),
    "node-passed": Run(
        "node --test",
        0,
        "TAP version 13\n"
        "# Subtest: adds\n"
        "ok 1 - adds\n"
        "  ---\n"
        "  duration_ms: 1.334131\n"
        "  ...\n"
        "1..1\n"
        "# tests 1\n"
        "# suites 0\n"
        "# pass 1\n"
        "# fail 0\n"
        "# cancelled 0\n"
        "# skipped 0\n"
        "# todo 0\n"
        "# duration_ms 142.429051\n",
        "",
    ),
    "npm-default": Run(
        "npm test",
        1,
        "\n"
        "> npmdef@1.0.0 test\n"
        '> echo "Error: no test specified" && exit 1\n'
        "\n"
        "Error: no test specified\n",
        "",
    ),
    "npm-test-jest-missing": Run(
        "npm test",
        127,
        "\n> x@1.0.0 test\n> jest --ci\n\n",
        "sh: 1: jest: not found\n",
    ),
    "npm-missing-script": Run(
        "npm run tset",
        1,
        "",
        'npm error Missing script: "tset"\n'
        "npm error\n"
        "npm error Did you mean this?\n"
        "npm error   npm set # Set a value in the npm configuration\n"
        "npm error\n"
        "npm error To see a list of scripts, run:\n"
        "npm error   npm run\n"
        "npm error A complete log of this run can be found in: /tmp/.npm/_logs/20"
        "26-11-27T00_37_01_379Z-debug-0.log\n",
    ),
    "sh-not-found": Run(
        "no-such-tool --run",
        127,
        "",
        "sh: 1: no-such-tool: not found\n",
    ),
    "sh-not-executable": Run(
        "./package.json",
        126,
        "",
        "sh: 1: ./package.json: Permission denied\n",
    ),
    "bwrap-not-found": Run(
        ["no-such-tool", "--run"],
        1,
        "",
        "bwrap: execvp no-such-tool: No such file or directory\n",
    ),
    "bwrap-not-executable": Run(
        ["./package.json"],
        1,
        "",
        "bwrap: execvp ./package.json: Permission denied\n",
    ),
    "cat-missing": Run(
        "cat data/input.txt",
        1,
        "",
        "cat: data/input.txt: No such file or directory\n",
    ),
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
    autopilot's pre-flight (lander.checked, then preflight_failure) must refuse it."""
    run = RUNS["pytest-masked"]
    providers = Providers("test", (), tokens_per_complexity=1000, output_share=0.3)
    settings = Settings(state_root=tmp_path)
    verifier = Verification(cast(Database, None), settings, providers, None, timeutil.now)
    verifier._sandboxed = lambda request, stop=None: run.result()  # type: ignore[method-assign]
    orchestrator = cast(Any, SimpleNamespace(providers=providers, settings=settings,
                                             check=verifier.check))  # fmt: skip
    checked = anyio.run(lander.checked, orchestrator, _materialize, "0" * 40, run.command)
    assert isinstance(checked, VerificationFailed), checked  # not "ok pre-flight"
    assert ", but it ran no test (pytest found none): never a pass" in str(checked)
    said = lander.preflight_failure(str(run.command), "HEAD at 000000000000", str(checked), TOOLS)
    assert (
        "before any worker has changed anything (the check ran no test (pytest found none)), a "
        "check that runs none would pass whatever a worker submits; nothing was started." in said
    ), said


def _returned(output: str) -> lander.Failed:
    """What the lander makes of a failing check's output: the verdict as _verify keeps it
    (its tail), then the words _fail sends back or holds with."""
    kind = cause(output, "").kind
    kept = tail(output, lander.OUTPUT_TAIL)
    return lander._failed(lander.Verdict(False, "`x`: exit 0", kept, False, kind), "f" * 40)


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
