"""A heartbeat now renews without reading its task first (services/leases.renew, one round
trip on PostgreSQL): the renewal and the agent's sighting are each conditional on the token.
Attacked over real stdio: a forged or stale token, another agent's task, a task that does
not exist. Each is refused saying why, and no row of any table changed, the agents' table
included (an intruder that was never seen stays unseen)."""

from pathlib import Path

import pytest

from tests.conftest import agents, open_db
from tests.security.fuzzing import changed_tables, db_digest

pytestmark = [pytest.mark.anyio, pytest.mark.process]


async def test_a_heartbeat_without_the_lease_changes_nothing(state_root: Path) -> None:
    # No health monitor: its own snapshots would change a table whatever the attack does.
    quiet = {"WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0}
    async with agents(state_root, "holder", "intruder", process=True, **quiet) as found:
        holder, intruder = found["holder"], found["intruder"]
        await holder.call(
            "task_create", tasks=[{"id": "T", "title": "t"}, {"id": "U", "title": "u"}]
        )
        first = await holder.call("claim_task", task_id="T", lease_seconds=600)
        await holder.call(
            "plan_update", task_id="T", status="pending", lease_token=first["lease_token"]
        )
        held = await holder.call("claim_task", task_id="T", lease_seconds=600)
        token = {"lease_token": held["lease_token"]}
        with open_db(state_root) as db:
            before = db_digest(db)  # the agents' table among them: "intruder" was never seen
        attacks = {
            "forged token": ({"task_id": "T", "lease_token": "f" * 32}, "LeaseLost"),
            "the last holder's token": (
                {"task_id": "T", "lease_token": first["lease_token"], "lease_seconds": 86_400},
                "LeaseLost",
            ),
            "a task nobody holds": ({"task_id": "U", **token}, "LeaseLost"),
            "no such task": ({"task_id": "nope", **token}, "NotFound"),
        }
        for what, (arguments, refusal) in attacks.items():
            said = await intruder.error("heartbeat", **arguments)
            assert refusal in said, (what, said)
            with open_db(state_root) as db:
                assert changed_tables(before, db_digest(db)) == [], what
        # The holder's own heartbeat still renews.
        beat = await holder.call("heartbeat", task_id="T", lease_token=held["lease_token"])
        assert beat["lease_expires_at"] >= held["lease_expires_at"]
