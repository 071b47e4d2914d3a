"""The official MCP conformance suite (@modelcontextprotocol/conformance with the Node it needs,
pinned in tests/conformance/, installed by scripts/setup) against a real `serve --http`, once
per protocol revision: what it reports must be exactly what baseline.yaml lists."""

import datetime as dt
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conformance.verdicts import (
    REVISIONS,
    Expected,
    Verdict,
    compare,
    fold,
    parse_baseline,
)
from tests.http.conftest import http_server

HERE = Path(__file__).resolve().parent
NODE = HERE / "node_modules" / ".bin" / "node"  # node-linux-<arch> from the npm registry
PACKAGE = HERE / "node_modules" / "@modelcontextprotocol" / "conformance"
SUITE = PACKAGE / "dist" / "index.js"
GUARD = HERE / "loopback_only.cjs"
BASELINE = HERE / "baseline.yaml"
# The whole suite takes seconds; the bound is for a server that stops answering (each scenario
# then waits out its own timeout).
SCENARIO_TIMEOUT_MS = 30_000
SUITE_TIMEOUT_S = 300
# The suite writes each scenario's checks to server-<scenario>-<timestamp>/checks.json.
RESULT_DIR = re.compile(r"server-(?P<scenario>.+)-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z")

needs_suite = pytest.mark.skipif(
    not NODE.exists() or not SUITE.exists(),
    reason="the MCP conformance suite is not installed (scripts/setup installs it with npm)",
)


def suite_command(*args: str) -> list[str]:
    """The pinned suite under the pinned Node, held to 127.0.0.1 by the preloaded guard."""
    return [str(NODE), "--require", str(GUARD), str(SUITE), *args]


def suite_env(home: Path) -> dict[str, str]:
    """Nothing inherited but PATH: no proxy settings, no GITHUB_TOKEN, a scratch HOME."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "NO_COLOR": "1"}


def run_suite(url: str, revision: str, out: Path, scratch: Path) -> None:
    """`conformance server --requirements REVISION`: every scenario the revision requires, at
    its own wire version, plus those it runs unscored (extensions, pending ones)."""
    command = suite_command(
        "server", "--url", url, "--requirements", revision, "--output-dir", str(out),
        "--timeout", str(SCENARIO_TIMEOUT_MS),
    )  # fmt: skip
    try:
        run = subprocess.run(
            command, cwd=scratch, env=suite_env(scratch), capture_output=True, text=True,
            timeout=SUITE_TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the conformance suite ran over {SUITE_TIMEOUT_S} s: {exc.stdout!r}")
    # 1 only says some check failed, which the baseline decides about; anything else is a crash.
    assert run.returncode in (0, 1), f"the suite crashed ({run.returncode}): {run.stderr}"


def read_results(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Each scenario's checks, as the suite wrote them."""
    results: dict[str, list[dict[str, Any]]] = {}
    for folder in sorted(out.iterdir()):
        match = RESULT_DIR.fullmatch(folder.name)
        assert match is not None, f"an unexpected result folder: {folder.name}"
        scenario = match["scenario"]
        assert scenario not in results, f"{scenario} ran twice"
        checks = json.loads((folder / "checks.json").read_text())
        assert isinstance(checks, list) and all(isinstance(c, dict) for c in checks), folder
        results[scenario] = checks
    return results


def scenarios_run_for(revision: str) -> set[str]:
    """The server scenarios `--requirements REVISION` runs: the required ones and the
    unscored ones, from the suite's own frozen requirement set."""
    requirements = yaml.safe_load((PACKAGE / "requirements" / f"{revision}.yaml").read_text())
    unscored = {e["scenario"] for e in requirements.get("not_scored", []) if e["leg"] == "server"}
    return set(requirements["server"]) | unscored


def load_baseline() -> dict[str, dict[str, Expected]]:
    return parse_baseline(yaml.safe_load(BASELINE.read_text()))


@needs_suite
@pytest.mark.parametrize("revision", REVISIONS)
@pytest.mark.slow
def test_the_suite_reports_exactly_the_failures_the_baseline_lists(
    revision: str, state_root: Path, tmp_path: Path
) -> None:
    expected = load_baseline()[revision]
    out = tmp_path / "results"
    # The suite cannot send a bearer token, so the server runs as docs/http.md allows on
    # loopback only: --no-auth.
    with http_server(state_root, "--no-auth") as server:
        run_suite(server.url, revision, out, tmp_path)
    results = read_results(out)
    missing = scenarios_run_for(revision) - results.keys()
    assert not missing, f"scenarios that left no result: {sorted(missing)}"
    problems = compare(revision, fold(results), expected)
    assert not problems, f"{len(problems)} differences from baseline.yaml:\n" + "\n".join(problems)


@needs_suite
def test_the_suite_cannot_reach_past_127_0_0_1() -> None:
    """The guard stops both socket paths the suite uses before any packet leaves (127.0.0.2
    keeps a broken guard from reaching anything but this machine)."""
    script = """
        const net = require("node:net");
        try { net.connect(80, "127.0.0.2"); console.log("connected"); }
        catch (e) { console.log("net: " + e.message); }
        fetch("http://127.0.0.2/").then(
            () => console.log("fetched"), (e) => console.log("fetch: " + e.cause?.message));
    """
    run = subprocess.run(
        [str(NODE), "--require", str(GUARD), "-e", script],
        env=suite_env(HERE), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    refusal = "the conformance suite may connect to 127.0.0.1 only, not 127.0.0.2"
    assert run.stdout.splitlines() == [f"net: loopback_only.cjs: {refusal}",
                                       f"fetch: loopback_only.cjs: {refusal}"], run  # fmt: skip


def test_the_baseline_file_is_well_formed_and_every_entry_has_a_reason() -> None:
    baseline = load_baseline()
    assert set(baseline) == set(REVISIONS)
    assert all(e.reason.strip() for entries in baseline.values() for e in entries.values())


def test_a_new_failure_a_changed_status_and_a_stale_entry_each_differ() -> None:
    checks = {
        "ping": [{"id": "ping", "status": "SUCCESS"}],
        "tools-list": [
            {"id": "tools-list", "status": "WARNING", "errorMessage": "slow"},
            {"id": "tools-list", "status": "FAILURE", "errorMessage": "no tools"},
        ],
        "caching": [{"id": "ttl", "status": "WARNING", "errorMessage": "no ttl"}],
        "prompts-list": [{"id": "p", "status": "INFO"}, {"id": "q", "status": "SKIPPED"}],
    }
    found = fold(checks)
    assert found == {
        "tools-list:tools-list": Verdict("FAILURE", "no tools"),
        "caching:ttl": Verdict("WARNING", "no ttl"),
    }
    expected = {
        "caching:ttl": Expected("FAILURE", "needs a demo tool"),
        "ping:ping": Expected("FAILURE", "was broken"),
    }
    problems = compare("2026-07-28", found, expected)
    assert len(problems) == 3, problems
    assert problems[0].startswith("caching:ttl is now a warning, baseline.yaml says failure")
    assert problems[1].startswith("new failure tools-list:tools-list: no tools")
    assert problems[2].startswith("ping:ping passes now (or is no longer reported): remove it")
    agreeing = {key: Expected(verdict.status, "r") for key, verdict in found.items()}
    assert compare("2026-07-28", found, agreeing) == []


VALID_ENTRY = {"status": "failure", "revisions": ["2025-11-25"], "reason": "r", "checks": ["a:b"]}


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"reason": None}, "needs exactly the fields"),
        ({"status": "broken"}, "status must be one of"),
        ({"reason": " "}, "reason must say why"),
        ({"revisions": ["2024-01-01"]}, "revisions must be a non-empty list"),
        ({"revisions": [dt.date(2025, 11, 25)]}, "quoted (YAML reads a bare 2025-11-25 as a date)"),
        ({"checks": ["a: b"]}, "is not `scenario:check-id`"),
    ],
)
def test_a_malformed_baseline_entry_is_refused_saying_what_is_accepted(
    change: dict[str, Any], complaint: str
) -> None:
    entry = {k: v for k, v in {**VALID_ENTRY, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=re.escape(complaint)):
        parse_baseline([entry])


def test_a_check_listed_twice_for_one_revision_is_refused() -> None:
    entry = {"status": "warning", "revisions": ["2026-07-28"], "reason": "r", "checks": ["a:b"]}
    with pytest.raises(ValueError, match="a:b is listed twice for 2026-07-28"):
        parse_baseline([entry, entry])
