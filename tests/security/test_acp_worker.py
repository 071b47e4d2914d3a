"""A hostile ACP agent (fake_acp.py) under the autopilot, in its real sandbox: a flood of
session updates, a 2 MiB line on the protocol's stream, and a permission asked (and
allowed) for a path outside its sandbox. None of them reaches past its run: the run log
stays bounded, the line that is no message is skipped, the write never reaches the host,
and the work still lands."""

from pathlib import Path

import pytest

from tests.autopilot.conftest import autopilot, backlog, git, make_project
from tests.autopilot.test_acp_worker import acp_project, run_log, summaries
from wvo_mcp.autopilot.run_logs import RUN_LOG_BYTES

pytestmark = [pytest.mark.anyio, pytest.mark.process]


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    return make_project(tmp_path)


async def test_a_flood_of_session_updates_is_logged_within_bounds_and_the_work_lands(
    project: dict[str, Path],
) -> None:
    acp_project(project)
    flood = {"fake": "acp_flood", "fake_flood": 30_000}
    await backlog(project, [{"id": "F1", "title": "floods", "metadata": flood}])
    ran = autopilot(project)
    assert "1 launched, 1 done, 0 released" in ran.stdout, ran.stdout + ran.stderr[-2000:]
    log = run_log(project, "F1")
    assert len(log.encode()) <= RUN_LOG_BYTES + 4096
    assert log.count('"id":"flood-') > 1000  # they came through, as lines of their own
    assert git(project["repo"], "show", "wvo/F1:F1.txt").startswith("F1")


async def test_a_2_mib_line_on_the_protocol_is_dropped_and_the_session_goes_on(
    project: dict[str, Path],
) -> None:
    acp_project(project)
    await backlog(project, [{"id": "L1", "title": "long", "metadata": {"fake": "acp_longline"}}])
    ran = autopilot(project)
    assert "1 launched, 1 done, 0 released" in ran.stdout, ran.stdout + ran.stderr[-2000:]
    log = run_log(project, "L1")
    assert '"event":"dropped"' not in log  # 2 MiB is under the driver's 8 MiB message bound
    assert "x" * 4096 not in log  # not a JSON-RPC message: never written on
    assert git(project["repo"], "show", "wvo/L1:L1.txt").startswith("L1")


async def test_a_write_outside_the_sandbox_fails_even_when_permission_is_allowed(
    project: dict[str, Path],
) -> None:
    acp_project(project, permissions="allow")
    outside = project["repo"].parent / "outside.txt"  # the person's, not the worker's
    await backlog(project, [{"id": "O1", "title": "reaches out", "metadata": {
        "fake": "acp_outside", "fake_outside": str(outside)}}])  # fmt: skip
    ran = autopilot(project)
    assert "1 launched, 1 done, 0 released" in ran.stdout, ran.stdout + ran.stderr[-2000:]
    log = run_log(project, "O1")
    assert f'"event":"permission","title":"write {outside}","kind":"edit"' in log
    assert '"answer":"allow_once"' in log
    # Whatever it was told, and whatever it believes it wrote (the sandbox's own empty view of
    # the folders around its mounts takes a write), the person's folder never sees it.
    assert [s for s in summaries(project, "O1") if s.startswith("outside: ")], log[-2000:]
    assert not outside.exists()
