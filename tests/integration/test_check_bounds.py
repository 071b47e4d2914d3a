"""The setting that bounds a landing check is the one docs/configuration.md and
docs/autopilot.md name: `WVO_VERIFY_TIMEOUT_SECONDS` stops the autopilot's pre-flight of
`--check` (as `doctor --check` runs it, through the landing gate's own call), as it stops a
task's verify_command."""

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.autopilot.conftest import git
from tests.conftest import ROOT
from tests.integration.test_init import init

SETTINGS = (ROOT / "docs" / "configuration.md").read_text()


def test_the_docs_say_the_verify_settings_bound_the_landing_checks() -> None:
    for name in ("WVO_VERIFY_TIMEOUT_SECONDS", "WVO_VERIFY_MEMORY_MB"):
        [row] = [line for line in SETTINGS.splitlines() if line.startswith(f"| `{name}` |")]
        assert "landing check" in row or "each of those runs" in row, row
    autopilot = (ROOT / "docs" / "autopilot.md").read_text()
    assert "`WVO_VERIFY_TIMEOUT_SECONDS` (300) and `WVO_VERIFY_MEMORY_MB` (2048)" in autopilot


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="the pre-flight runs in bubblewrap")
def test_the_verify_timeout_stops_a_landing_check(tmp_path: Path) -> None:
    repo = tmp_path / "project"
    (tmp_path / "home").mkdir()
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "start")
    made = init(repo)
    assert made.returncode == 0, made.stderr
    stopped = init(repo, "doctor", "--json", "--check", "sleep 600",
                   WVO_VERIFY_TIMEOUT_SECONDS="1")  # fmt: skip
    said = {c["name"]: c for c in json.loads(stopped.stdout)}["pre-flight"]
    assert not said["ok"] and stopped.returncode == 1, said
    # Killed at its timeout: never sooner, and how much later is the machine's load.
    ran = re.search(r"`sleep 600`: killed: timeout in ([0-9.]+) s", said["detail"])
    assert ran and float(ran[1]) >= 1.0, said["detail"]
    assert "(WVO_VERIFY_TIMEOUT_SECONDS, WVO_VERIFY_MEMORY_MB): raise them" in said["detail"]
