"""A person's quarantine through the real CLI: a pytest node id, which no JUnit report holds,
is refused with the name to use; an entry made where the providers file names no report
(so the failing tests are never known) is warned of; and `status` shows each landing
check's failures beside its flakes and reruns."""

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, wvo
from wvo_mcp.config import Settings
from wvo_mcp.orchestrator import Orchestrator

NO_REPORT = "names no JUnit report (gate: {junit: GLOB})"


def listed(state: Path) -> list[str]:
    shown = wvo(state, "quarantine", "list", "--json")
    assert shown.returncode == 0, shown.stderr
    return [q["test"] for q in json.loads(shown.stdout)["quarantine"]]


def test_a_node_id_is_refused_with_the_name_its_report_gives(state_root: Path) -> None:
    refused = wvo(state_root, "quarantine", "add", "tests/test_x.py::TestC::test_y",
                  "--reason", "flaky on CI")  # fmt: skip
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "is a pytest node id, which no JUnit report holds" in refused.stderr
    assert "'tests.test_x.TestC::test_y'" in refused.stderr, refused.stderr
    assert "Nothing was changed" in refused.stderr
    assert listed(state_root) == []


def test_an_entry_without_a_report_to_name_its_tests_is_warned_of(state_root: Path) -> None:
    added = wvo(state_root, "quarantine", "add", "tests.test_x::test_y", "--reason", "flaky")
    assert added.returncode == 0, added.stderr
    assert "quarantined tests.test_x::test_y until" in added.stdout
    assert NO_REPORT in added.stderr and "this entry lets none through" in added.stderr
    assert listed(state_root) == ["tests.test_x::test_y"]

    packaged = ROOT / "wvo_mcp" / "data" / "providers.yaml"
    (state_root / "providers.yaml").write_text(
        packaged.read_text() + "\ngate:\n  junit: reports/*.xml\n"
    )
    named = wvo(state_root, "quarantine", "add", "tests.test_x::test_z", "--reason", "flaky")
    assert named.returncode == 0 and named.stderr == "", named.stderr


@pytest.mark.anyio
async def test_status_shows_each_checks_failures(state_root: Path) -> None:
    orchestrator = await Orchestrator.open(Settings(state_root=state_root))
    try:
        await orchestrator.check_counted("make test", failed=False)
        await orchestrator.check_counted("make test", failed=True, reruns=2, seconds=1.0)
        await orchestrator.check_counted("make test", failed=True, reruns=2, seconds=1.0)
        await orchestrator.check_counted("make lint", failed=False)
    finally:
        await orchestrator.close()
    status = wvo(state_root, "status")
    assert status.returncode == 0, status.stderr
    checks = status.stdout.split("landing checks (")[1].splitlines()
    header = next(line.split() for line in checks if line.strip().startswith("check"))
    assert header[:3] == ["check", "runs", "failures"], checks
    rows = {line.split()[1]: line.split()[2:4] for line in checks if line.startswith("  make")}
    assert rows == {"test": ["3", "2"], "lint": ["1", "0"]}, checks
