"""The OODA health monitor, over servers sharing one database (real processes where one is
killed).

Monitors tick every 100 ms here and call a task stale 0.6 s after its last sign of life;
tests wait for outcomes by polling the database or health_report, never by sleeping."""

import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from mcp import MCPError

from tests.conftest import HANG_SECONDS, Agent, agents, connect, open_db, server_pid, wvo

pytestmark = pytest.mark.anyio

T = TypeVar("T")

FAST = {
    "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 100,
    "WVO_AUTOPILOT_STALE_TASK_MINUTES": 0.01,
    "WVO_RETRY_BASE_SECONDS": 0,
    "WVO_BACKUP_INTERVAL_MINUTES": 0,
    "WVO_OTEL_ENABLED": 0,
    "WVO_WIP_LIMIT": 10,
}
NO_MONITOR = {**FAST, "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0}
DEADLINE_SECONDS = HANG_SECONDS  # a guard against a hang, never a time to beat


async def until(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Poll `check` until it returns something truthy; fail after the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await anyio.sleep(0.05)


def rows(state_root: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    with open_db(state_root) as db:
        return [dict(r) for r in db.execute(sql, params)]


def monitor_events(state_root: Path) -> list[dict[str, Any]]:
    return rows(
        state_root,
        "select task_id, kind, to_status from task_events where actor = 'health-monitor' "
        "order by id",
    )


def snapshots(state_root: Path) -> int:
    return int(rows(state_root, "select count(*) n from health_snapshots")[0]["n"])


async def ticks_pass(state_root: Path, n: int) -> None:
    """Wait until `n` more ticks have been recorded."""
    target = snapshots(state_root) + n

    async def done() -> bool:
        return snapshots(state_root) >= target

    await until(done, f"{n} more health ticks")


async def open_anomalies(agent: Agent) -> set[tuple[str, str]]:
    report = await agent.call("health_report", limit=200)
    return {(a["kind"], a["subject"]) for a in report["anomalies"]}


async def abandon(state_root: Path, task_ids: list[str], lease_seconds: int = 1) -> None:
    """Claim each task as its own agent (one server each, without a monitor), then leave
    without a heartbeat."""
    names = [f"gone-{i}" for i in range(len(task_ids))]
    async with agents(state_root, *names, **NO_MONITOR) as team:
        for name, task_id in zip(names, task_ids, strict=True):
            claim = await team[name].call(
                "claim_task", task_id=task_id, lease_seconds=lease_seconds
            )
            assert claim["claimed"], claim


@pytest.mark.process
async def test_sigkilled_holder_is_requeued_by_the_monitor_and_handed_on_with_its_checkpoint(
    state_root: Path,
) -> None:
    async with connect(state_root, WVO_AGENT_ID="heir", **FAST) as heir:
        await heir.call("task_create", tasks=[{"id": "T1", "title": "survives its agent"}])
        # No WVO_AGENT_ID: the agent id names the server's pid, which the test then kills.
        async with connect(state_root, process=True, **FAST) as doomed:
            claim = await doomed.call("claim_task", task_id="T1", lease_seconds=1)
            await doomed.call(
                "checkpoint",
                task_id="T1",
                lease_token=claim["lease_token"],
                summary="parser half done",
                next_steps="finish the lexer",
                progress=50,
            )
            os.kill(server_pid(claim["agent_id"]), signal.SIGKILL)
            with pytest.raises(MCPError):
                await doomed.call("plan_next")

        async def requeued() -> dict[str, Any] | None:
            task = await heir.call("task_get", task_id="T1")
            return task if task["status"] == "pending" else None

        task = await until(requeued, "the monitor to re-queue T1")
        assert monitor_events(state_root) == [
            {"task_id": "T1", "kind": "requeued", "to_status": "pending"}
        ]
        assert task["attempts"] == 1
        assert task.get("assigned_to") is None

        taken = await heir.call("claim_task")
        assert taken["claimed"] and taken["task"]["id"] == "T1"
        assert taken["attempt"] == 2
        assert taken["last_checkpoint"]["summary"] == "parser half done"
        assert taken["last_checkpoint"]["next_steps"] == "finish the lexer"
        assert taken["last_checkpoint"]["agent_id"] == claim["agent_id"]

        # The old holder's token is fenced off even though nobody else had claimed it yet.
        report = await heir.call("health_report")
        assert report["actions"][0]["task_id"] == "T1"
        assert "parser" not in report["actions"][0]["reason"]


@pytest.mark.parametrize("servers", [2, 3])
async def test_each_stale_task_is_requeued_exactly_once_by_several_servers(
    state_root: Path, servers: int
) -> None:
    ids = [f"S{i}" for i in range(6)]
    async with connect(state_root, **NO_MONITOR) as setup:
        await setup.call("task_create", tasks=[{"id": i, "title": i} for i in ids])
    await abandon(state_root, ids)

    async with anyio.create_task_group() as group:
        stop = anyio.Event()

        async def serve() -> None:
            async with connect(state_root, **FAST) as agent:
                await agent.call("plan_next")
                await stop.wait()

        for _ in range(servers):
            group.start_soon(serve)

        async def all_requeued() -> bool:
            pending = rows(state_root, "select id from tasks where status = 'pending'")
            return len(pending) == len(ids)

        await until(all_requeued, "every stale task to be re-queued")
        await ticks_pass(state_root, 3)  # later ticks, by any server, must not act again
        stop.set()

    events = monitor_events(state_root)
    assert sorted(e["task_id"] for e in events) == ids
    assert {e["kind"] for e in events} == {"requeued"}
    attempts = rows(state_root, "select attempts, lease_epoch from tasks")
    assert all(r["attempts"] == 1 and r["lease_epoch"] == 1 for r in attempts)
    # Every tick recorded was a leader's, and one term never had two leaders.
    terms = rows(
        state_root,
        "select term, count(distinct leader) leaders from health_snapshots group by term",
    )
    assert all(t["leaders"] == 1 for t in terms), terms


@pytest.mark.process
async def test_killing_the_leader_hands_leadership_to_another_server(state_root: Path) -> None:
    async with (
        connect(state_root, process=True, **FAST) as first,
        connect(state_root, process=True, **FAST) as second,
    ):
        pids = {
            server_pid((await agent.call("plan_next"))["agent_id"]): agent
            for agent in (first, second)
        }

        async def led() -> dict[str, Any] | None:
            report = await first.call("health_report")
            return report if report["leader"] and report["snapshot"] else None

        before = await led_by(led)
        leader_pid = int(before["leader"].split(":")[1])
        assert leader_pid in pids
        survivor = next(agent for pid, agent in pids.items() if pid != leader_pid)
        os.kill(leader_pid, signal.SIGKILL)

        async def new_leader() -> dict[str, Any] | None:
            report = await survivor.call("health_report")
            if report["leader"] in (None, before["leader"]):
                return None
            snapshot = report["snapshot"]
            return report if snapshot["leader"] == report["leader"] else None

        after = await until(new_leader, "another server to take the lead")
        assert int(after["leader"].split(":")[1]) != leader_pid
        assert after["snapshot"]["at"] > before["snapshot"]["at"]
        lead = rows(state_root, "select holder, term from monitor_leader")
        assert lead == [{"holder": after["leader"], "term": 2}]


async def led_by(check: Callable[[], Awaitable[T | None]]) -> T:
    return await until(check, "a leader's first tick")


async def test_drifted_dependency_counts_are_repaired(state_root: Path) -> None:
    async with connect(state_root, **NO_MONITOR) as setup:
        await setup.call(
            "task_create",
            tasks=[
                {"id": "A", "title": "first"},
                {"id": "B", "title": "needs A", "depends_on": ["A"]},
                {"id": "C", "title": "needs nothing"},
            ],
        )
    # What a bug (or a hand edit) could leave: B looks ready, C looks blocked.
    with open_db(state_root, writable=True) as db:
        db.execute("update tasks set unmet_dependencies = 0 where id = 'B'")
        db.execute("update tasks set unmet_dependencies = 2 where id = 'C'")

    async with connect(state_root, **FAST) as agent:

        async def repaired() -> bool:
            found = rows(state_root, "select id, unmet_dependencies n from tasks order by id")
            return {r["id"]: r["n"] for r in found} == {"A": 0, "B": 1, "C": 0}

        await until(repaired, "the counts to be repaired")
        events = monitor_events(state_root)
        assert sorted(e["task_id"] for e in events) == ["B", "C"]
        assert {e["kind"] for e in events} == {"dependencies_repaired"}
        plan = await agent.call("plan_next")
        assert sorted(t["id"] for t in plan["tasks"]) == ["A", "C"]
        assert not {k for k, _ in await open_anomalies(agent)} & {"dependency_desync"}


async def test_report_only_mode_reports_and_changes_nothing(state_root: Path) -> None:
    async with connect(state_root, **NO_MONITOR) as setup:
        await setup.call(
            "task_create",
            tasks=[{"id": "A", "title": "first"}, {"id": "B", "title": "b", "depends_on": ["A"]}],
        )
    await abandon(state_root, ["A"])
    with open_db(state_root, writable=True) as db:
        db.execute("update tasks set unmet_dependencies = 0 where id = 'B'")
    before = rows(state_root, "select * from tasks order by id")

    async with connect(state_root, **FAST, WVO_AUTOPILOT_HEALTH_AUTO_REMEDIATE=0) as agent:

        async def reported() -> set[tuple[str, str]]:
            found = await open_anomalies(agent)
            return found if {("stale_task", "A"), ("dependency_desync", "B")} <= found else set()

        await until(reported, "the anomalies to be reported")
        await ticks_pass(state_root, 3)
        report = await agent.call("health_report")
        assert report["snapshot"]["remediate"] is False
        assert report.get("actions", []) == []

    assert rows(state_root, "select * from tasks order by id") == before
    assert monitor_events(state_root) == []


async def test_an_expired_lease_alone_is_not_stale(state_root: Path) -> None:
    """Stale counts from the last heartbeat or checkpoint, and needs the lease expired too."""
    async with connect(state_root, **NO_MONITOR) as setup:
        await setup.call(
            "task_create",
            tasks=[{"id": "quiet", "title": "long lease"}, {"id": "recent", "title": "recent"}],
        )
        # A long lease is never taken away, however long its holder stays silent.
        claim = await setup.call("claim_task", agent_id="slow", task_id="quiet", lease_seconds=3600)
        assert claim["claimed"]
    await abandon(state_root, ["recent"])

    # Heard from 1 s ago at most, and the threshold is 10 minutes: not stale yet.
    env = {**FAST, "WVO_AUTOPILOT_STALE_TASK_MINUTES": 10}
    async with connect(state_root, **env) as agent:

        async def expired_seen() -> bool:
            report = await agent.call("health_report")
            snapshot = report["snapshot"]
            return bool(snapshot) and snapshot["counts"]["expired_leases"] == 1

        await until(expired_seen, "a tick that sees the expired lease")
        await ticks_pass(state_root, 3)
        report = await agent.call("health_report")
        assert report["snapshot"]["counts"]["stale_tasks"] == 0
        assert report.get("actions", []) == []
    statuses = rows(state_root, "select id, status from tasks order by id")
    assert statuses == [
        {"id": "quiet", "status": "in_progress"},
        {"id": "recent", "status": "in_progress"},
    ]


async def test_abandoned_dependencies_starve_the_queue_and_are_reported(
    state_root: Path,
) -> None:
    async with connect(state_root, **FAST) as agent:
        await agent.call(
            "task_create",
            tasks=[
                {"id": "base", "title": "base"},
                {"id": "top", "title": "needs base", "depends_on": ["base"]},
            ],
        )
        # Cancelling pending work is a person's move, not an agent's.
        refused = await agent.error(
            "plan_update", task_id="base", status="cancelled", reason="descoped"
        )
        assert "not yours to make" in refused and "only a person" in refused
        assert (await agent.call("task_get", task_id="base"))["status"] == "pending"
        cancelled = wvo(state_root, "cancel", "base", "--by", "dana", "--reason", "descoped")
        assert cancelled.returncode == 0, cancelled.stderr

        async def reported() -> set[tuple[str, str]]:
            found = await open_anomalies(agent)
            wanted = {("blocked_by_abandoned", "top"), ("starvation", "")}
            return found if wanted <= found else set()

        await until(reported, "starvation and the abandoned dependency to be reported")
        report = await agent.call("health_report")
        starving = next(a for a in report["anomalies"] if a["kind"] == "starvation")
        assert starving["severity"] == "critical"
        assert report["anomalies"][0] == starving  # most severe first

        # A person revives the dependency: both anomalies resolve on the next ticks.
        revived = wvo(state_root, "requeue", "base")
        assert revived.returncode == 0, revived.stderr

        async def resolved() -> bool:
            found = await open_anomalies(agent)
            return not found & {("blocked_by_abandoned", "top"), ("starvation", "")}

        await until(resolved, "the anomalies to resolve")
    kept = rows(state_root, "select kind, resolved_at from health_anomalies order by id")
    assert {r["kind"] for r in kept} >= {"blocked_by_abandoned", "starvation"}
    assert all(r["resolved_at"] for r in kept)


async def test_health_cli_shows_what_the_tool_reports(state_root: Path) -> None:
    ids = ["H1"]
    async with connect(state_root, **NO_MONITOR) as setup:
        await setup.call("task_create", tasks=[{"id": i, "title": i} for i in ids])
    await abandon(state_root, ids)
    async with connect(state_root, **FAST) as agent:

        async def acted() -> dict[str, Any] | None:
            report = await agent.call("health_report")
            return report if report["actions"] else None

        report = await until(acted, "the monitor's first action")
        # health_report refuses what it cannot honour, in words an agent can act on.
        refused = await agent.error("health_report", limit=0)
        assert "limit" in refused

    shown = wvo(state_root, "health", "--json")
    assert shown.returncode == 0, shown.stderr
    cli = json.loads(shown.stdout)
    assert cli["actions"][0] == report["actions"][0]
    assert sum(cli["snapshot"]["counts"]["by_status"].values()) == 1
    text = wvo(state_root, "health")
    assert text.returncode == 0, text.stderr
    assert "recent actions:" in text.stdout and "H1" in text.stdout and "requeued" in text.stdout
    # With no server left, nobody leads; the report says so rather than naming the dead.
    assert cli.get("leader") is None


async def test_a_fresh_database_reports_no_snapshot_yet(state_root: Path) -> None:
    async with connect(state_root, **NO_MONITOR) as agent:
        report = await agent.call("health_report")
    assert report.get("snapshot") is None
    assert report.get("leader") is None
    assert "WVO_AUTOPILOT_HEALTH_INTERVAL_MS" in report["message"]


async def test_old_events_of_finished_tasks_are_pruned_and_unfinished_ones_kept(
    state_root: Path,
) -> None:
    async with connect(state_root, **NO_MONITOR) as setup:
        await setup.call(
            "task_create",
            tasks=[
                {"id": "shipped", "title": "done long ago"},
                {"id": "dropped", "title": "cancelled long ago"},
                {"id": "open", "title": "still pending"},
                {"id": "recent", "title": "done just now"},
            ],
        )
        for task_id in ("shipped", "recent"):
            claim = await setup.call("claim_task", agent_id="a", task_id=task_id)
            await setup.call(
                "plan_update", task_id=task_id, status="done", lease_token=claim["lease_token"]
            )
        refused = await setup.error("plan_update", task_id="dropped", status="cancelled")
        assert "only a person" in refused
    cancelled = wvo(state_root, "cancel", "dropped", "--by", "dana")
    assert cancelled.returncode == 0, cancelled.stderr
    # Age every event but the recent task's past the 30-day default retention.
    with open_db(state_root, writable=True) as db:
        db.execute(
            "update task_events set at = '2020-01-01T00:00:00.000Z' where task_id != 'recent'"
        )
    before = rows(state_root, "select task_id, count(*) n from task_events group by task_id")

    async with connect(state_root, **FAST):

        async def pruned() -> bool:
            left = rows(state_root, "select distinct task_id from task_events")
            return {r["task_id"] for r in left} == {"open", "recent"}

        await until(pruned, "the leader to prune old events")
    after = rows(state_root, "select task_id, count(*) n from task_events group by task_id")
    kept = {r["task_id"]: r["n"] for r in after}
    was = {r["task_id"]: r["n"] for r in before}
    assert kept == {"open": was["open"], "recent": was["recent"]}


async def test_health_cli_prints_the_counts_per_status(state_root: Path) -> None:
    """The plain output shows the observation's counts, as `--json` has them: per status,
    and ready, waiting and backing off."""
    expected = {"pending": 2, "in_progress": 1, "done": 1}
    async with connect(state_root, WVO_AGENT_ID="worker", **FAST) as agent:
        await agent.call(
            "task_create",
            tasks=[
                {"id": "A", "title": "a"},
                {"id": "B", "title": "b", "depends_on": ["A"]},
                {"id": "C", "title": "c"},
                {"id": "D", "title": "d"},
            ],
        )
        claim = await agent.call("claim_task", task_id="C")
        await agent.call(
            "plan_update", task_id="C", status="done", lease_token=claim["lease_token"]
        )
        await agent.call("claim_task", task_id="A")

        async def observed() -> bool:
            snapshot = (await agent.call("health_report")).get("snapshot")
            if snapshot is None:
                return False
            return {s: n for s, n in snapshot["counts"]["by_status"].items() if n} == expected

        await until(observed, "a tick that saw every task where it is")

    shown = wvo(state_root, "health", "--json")
    assert shown.returncode == 0, shown.stderr
    counts = json.loads(shown.stdout)["snapshot"]["counts"]
    assert counts["by_status"] == {**dict.fromkeys(counts["by_status"], 0), **expected}
    text = wvo(state_root, "health")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    # Every status that has tasks, in the order --json gives them; the empty ones left out.
    per_status = "tasks: " + "  ".join(f"{s} {n}" for s, n in counts["by_status"].items() if n)
    assert per_status in lines, text.stdout
    assert sorted(per_status.removeprefix("tasks: ").split("  ")) == sorted(
        f"{status} {n}" for status, n in expected.items()
    )
    assert any(
        line.startswith(f"ready {counts['ready']} (")
        and f"waiting on dependencies {counts['waiting_on_dependencies']} (" in line
        and f"backing off {counts['backing_off']}" in line
        for line in lines
    ), text.stdout
    assert counts["ready"] == 1 and counts["waiting_on_dependencies"] == 1
    # The server (and its monitor) left: nobody leads, said as such.
    assert any(line.startswith("no leader now; latest tick ") for line in lines), text.stdout
