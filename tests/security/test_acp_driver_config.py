"""An ACP worker's driver configuration, `.wvo/acp.json` in its run's home: written new for
each run, never over a file or link planted there, and a hostile `poll_seconds` in it
bounded to what the providers file allows (its default otherwise)."""

import json
from pathlib import Path, PurePosixPath

import pytest

from wvo_mcp.autopilot import acp_driver, isolation
from wvo_mcp.rules.acp_agents import POLL_SECONDS, POLL_SECONDS_RANGE

CONFIG = {
    "agent": ["gemini", "--experimental-acp"],
    "cwd": "/work",
    "mcp_url": "http://127.0.0.1:9/mcp",
    "mcp_name": "wvo",
    "permissions": "allow",
}


@pytest.mark.parametrize(
    "planted",
    ["0", "-1", "1e-9", "1e9", "601", "NaN", "Infinity", "-Infinity", "true", '"0.5"',
     "null", "[1]", '{"s": 1}'],
)  # fmt: skip
def test_a_planted_poll_is_refused_for_the_default(planted: str, tmp_path: Path) -> None:
    """Raw JSON as a hostile writer would put it (Python's reader takes NaN and Infinity)."""
    path = tmp_path / "acp.json"
    path.write_text(json.dumps(CONFIG)[:-1] + f', "poll_seconds": {planted}}}')
    assert acp_driver.Config.read(path).poll_seconds == POLL_SECONDS


@pytest.mark.parametrize("given", [*POLL_SECONDS_RANGE, 30])
def test_a_poll_within_the_providers_files_bounds_is_kept(given: float, tmp_path: Path) -> None:
    path = tmp_path / "acp.json"
    path.write_text(json.dumps({**CONFIG, "poll_seconds": given}))
    assert acp_driver.Config.read(path).poll_seconds == given


@pytest.mark.parametrize("plant", ["file", "link"])
def test_a_runs_files_are_never_written_over_what_is_planted(plant: str, tmp_path: Path) -> None:
    """A run's home is new, and its files are created, never opened: a file or a link
    already where one goes (a planted configuration) fails the run's start, and what it
    points at is left as it was."""
    home, target = tmp_path / "home", tmp_path / "elsewhere.json"
    target.write_text('{"poll_seconds": 0.1}')
    (home / ".wvo").mkdir(parents=True)
    where = home / ".wvo" / "acp.json"
    if plant == "file":
        where.write_text(target.read_text())
    else:
        where.symlink_to(target)
    with pytest.raises(FileExistsError):
        isolation._write_home(home, {PurePosixPath(".wvo/acp.json"): json.dumps(CONFIG)})
    assert target.read_text() == '{"poll_seconds": 0.1}'
