"""A verification longer than the lease: the holder's lease is renewed while the gate runs,
so no other agent takes the task (and its work) meanwhile."""

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import POLL_DEADLINE_SECONDS, agents, open_db
from wvo_mcp.sandbox import bwrap

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}"),
]
# Starts, then waits (bounded) for the test to let it finish.
GATE = (
    "touch started; i=0; while [ ! -e release ] && [ $i -lt 600 ]; do sleep 0.05; "
    "i=$((i+1)); done; [ -e release ]"
)


async def _until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + POLL_DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await anyio.sleep(0.05)


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_the_lease_outlives_a_long_verification(state_root: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    env = {"WVO_WORKSPACE_ROOT": workspace, "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0}
    async with agents(state_root, "holder", "rival", **env) as team:
        holder, rival = team["holder"], team["rival"]
        await holder.call("task_create", tasks=[{"id": "T", "title": "t", "verify_command": GATE}])
        claim = await holder.call("claim_task", lease_seconds=1)
        first_expiry = _stamp(claim["lease_expires_at"])
        finished: dict[str, Any] = {}

        async def finish() -> None:
            finished.update(
                await holder.call(
                    "plan_update", task_id="T", status="done", lease_token=claim["lease_token"]
                )
            )

        async with anyio.create_task_group() as running:
            running.start_soon(finish)
            await _until((workspace / "started").exists, "the verification to start")
            # Past the lease first granted: without renewal the task would be claimable now.
            await _until(lambda: datetime.now(UTC) > first_expiry, "the first expiry")
            taken = await rival.call("claim_task", task_id="T")
            assert not taken["claimed"] and "holder" in taken["message"], taken
            with open_db(state_root) as db:
                row = db.execute(
                    "SELECT status, assigned_to, lease_expires_at FROM tasks"
                ).fetchone()
            assert (row["status"], row["assigned_to"]) == ("in_progress", "holder")
            assert _stamp(row["lease_expires_at"]) > datetime.now(UTC)
            (workspace / "release").touch()
        assert finished["status"] == "done"
    with open_db(state_root) as db:
        claims = db.execute("SELECT actor FROM task_events WHERE kind = 'claimed'").fetchall()
    assert [c["actor"] for c in claims] == ["holder"]
