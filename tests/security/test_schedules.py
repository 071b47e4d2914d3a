"""A schedule is a person's (issue 55): an agent over real stdio cannot make a task come
back. `task_create` has no `every`, so a task that carries one is refused, saying what is
accepted, and nothing is written: no task, no schedule."""

from pathlib import Path

import pytest

from tests.conftest import connect, open_db

pytestmark = [pytest.mark.anyio, pytest.mark.process]
QUIET = {"WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0, "WVO_OTEL_ENABLED": 0}


async def test_an_agent_cannot_schedule_a_task(state_root: Path) -> None:
    async with connect(state_root, process=True, WVO_AGENT_ID="planner", **QUIET) as agent:
        refused = await agent.error(
            "task_create", tasks=[{"id": "loop", "title": "again and again", "every": "5m"}]
        )
    assert "tasks.0.every" in refused and "Extra inputs are not permitted" in refused, refused
    with open_db(state_root) as db:
        assert db.execute("SELECT count(*) FROM tasks").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM schedules").fetchone()[0] == 0
