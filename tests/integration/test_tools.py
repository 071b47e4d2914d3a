"""Every MCP tool through the MCP client (the protocol revisions: test_protocol_revisions.py)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Agent, connect, table_rows, wvo
from tests.landing_state import HELD_WHY, TARGET, fill_state
from wvo_mcp import timeutil
from wvo_mcp.edge import calls

pytestmark = pytest.mark.anyio

TOOLS = {
    "task_create",
    "task_get",
    "task_list",
    "plan_next",
    "claim_task",
    "heartbeat",
    "checkpoint",
    "plan_update",
    "ask_person",
    "context_write",
    "context_read",
    "health_report",
    "agent_register",
    "route_task",
    "record_usage",
    "provider_status",
    "sandbox_run",
    "landing_queue",
}
READ_ONLY_TOOLS = {
    "task_get",
    "task_list",
    "plan_next",
    "context_read",
    "health_report",
    "route_task",
    "provider_status",
    "landing_queue",
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def wsjf(
    business_value: float,
    time_criticality: float,
    risk_reduction: float,
    enablement: int,
    job_size: int,
) -> float:
    cost_of_delay = business_value + time_criticality + risk_reduction + enablement
    return round(cost_of_delay / job_size, 4)


async def all_ids(agent: Agent, **filters: Any) -> list[str]:
    page = await agent.call("task_list", limit=500, **filters)
    assert page.get("next_cursor") is None
    return [t["id"] for t in table_rows(page)]


async def test_task_create_and_task_get(state_root: Path) -> None:
    due = (datetime.now(UTC) + timedelta(days=60)).replace(microsecond=0)
    async with connect(state_root, WVO_AGENT_ID="planner") as a:
        created = await a.call(
            "task_create",
            tasks=[
                {
                    "id": "E1.M1.T1",
                    "title": "  Design the schema  ",
                    "description": "tables and keys",
                    "epic_id": "E1",
                    "milestone_id": "E1.M1",
                    "complexity": 3,
                    "business_value": 8,
                    "time_criticality": 7,
                    "risk_reduction": 6,
                    "due_at": due.isoformat(),
                    "tags": ["db", "design"],
                    "max_attempts": 4,
                    "metadata": {"owner": "data", "links": [1, 2]},
                },
                {
                    "id": "E1.M1.T2",
                    "title": "Write migrations",
                    "epic_id": "E1",
                    "depends_on": ["E1.M1.T1"],
                    "job_size": 13,
                },
                {"title": "No id given"},
            ],
        )
        first, second, generated = created["created"]
        assert (first, second) == ("E1.M1.T1", "E1.M1.T2")
        assert generated and generated not in (first, second)
        assert sorted(created["ready"]) == sorted([first, generated])

        task = await a.call("task_get", task_id=first)
        assert task["title"] == "Design the schema"  # surrounding whitespace stripped
        assert task["description"] == "tables and keys"
        assert (task["epic_id"], task["milestone_id"]) == ("E1", "E1.M1")
        assert task["status"] == "pending"
        assert (task["complexity"], task["job_size"]) == (3, 6)  # job_size = 2 x complexity
        assert task["tags"] == ["db", "design"]
        assert task["max_attempts"] == 4
        assert task["metadata"] == {"owner": "data", "links": [1, 2]}
        assert at(task["due_at"]) == due
        assert task["attempts"] == 0 and task.get("assigned_to") is None
        assert task["requires_approval"] is False
        assert task.get("dependencies", []) == []
        assert task["dependents"] == [{"id": second, "status": "pending"}]
        assert task.get("latest_checkpoint") is None
        assert [e["kind"] for e in task["recent_events"]] == ["created"]
        assert task["recent_events"][0]["actor"] == "planner"
        breakdown = task["breakdown"]
        assert breakdown == {
            "business_value": 8,
            "time_criticality": 7.0,  # due beyond the horizon: no boost
            "risk_reduction": 6,
            "enablement": 1,
            "job_size": 6,
        }
        assert wsjf(**breakdown) == wsjf(8, 7, 6, 1, 6) == task["score"]

        dependent = await a.call("task_get", task_id=second)
        assert dependent["job_size"] == 13
        assert dependent["dependencies"] == [{"id": first, "status": "pending"}]
        assert dependent.get("dependents", []) == []

        assert (await a.call("task_get", task_id=generated))["title"] == "No id given"
        missing = await a.error("task_get", task_id="E9.nothing")
        assert "E9.nothing" in missing and "no task" in missing


async def test_task_list_filters_and_pagination(state_root: Path) -> None:
    specs = []
    for n in range(12):
        epic = "E1" if n % 2 == 0 else "E2"
        specs.append(
            {
                "id": f"T{n:02d}",
                "title": f"task {n}",
                "epic_id": epic,
                "milestone_id": f"{epic}.M{n % 3}",
                "tags": ["api"] if n % 4 == 0 else ["ops", "db"],
            }
        )
    every = sorted(s["id"] for s in specs)
    async with connect(state_root, WVO_AGENT_ID="lister") as a:
        await a.call("task_create", tasks=specs)

        # Pages of 5 cover every row exactly once, in id order.
        seen: list[str] = []
        sizes = []
        cursor = None
        for _ in range(10):
            page = await a.call("task_list", limit=5, cursor=cursor)
            seen += [t["id"] for t in table_rows(page)]
            sizes.append(len(page["rows"]))
            cursor = page.get("next_cursor")
            if cursor is None:
                break
        assert seen == every
        assert sizes == [5, 5, 2]

        # A limit that divides the rows evenly leaves no empty trailing page.
        page1 = await a.call("task_list", limit=6)
        page2 = await a.call("task_list", limit=6, cursor=page1["next_cursor"])
        assert len(page2["rows"]) == 6 and page2.get("next_cursor") is None

        assert await all_ids(a, epic_id="E1") == [s["id"] for s in specs if s["epic_id"] == "E1"]
        assert await all_ids(a, milestone_id="E2.M1") == ["T01", "T07"]
        assert await all_ids(a, tag="api") == ["T00", "T04", "T08"]
        assert await all_ids(a, tag="db", epic_id="E2") == [
            "T01",
            "T03",
            "T05",
            "T07",
            "T09",
            "T11",
        ]
        assert await all_ids(a, tag="nope") == []
        assert await all_ids(a, status="pending") == every

        # Filtered pagination: epic E2 in pages of 4.
        first = await a.call("task_list", epic_id="E2", limit=4)
        rest = await a.call("task_list", epic_id="E2", limit=4, cursor=first["next_cursor"])
        ids = [t["id"] for t in table_rows(first) + table_rows(rest)]
        assert ids == ["T01", "T03", "T05", "T07", "T09", "T11"]
        assert rest.get("next_cursor") is None

        claim = await a.call("claim_task", task_id="T05")
        assert claim["claimed"]
        assert await all_ids(a, status="in_progress") == ["T05"]
        assert "T05" not in await all_ids(a, status="pending")
        row = table_rows(await a.call("task_list", status="in_progress"))[0]
        assert row["assigned_to"] == "lister" and row["status"] == "in_progress"


async def test_plan_next_breakdown_and_counts(state_root: Path) -> None:
    async with connect(state_root, WVO_AGENT_ID="planner", WVO_WIP_LIMIT=4) as a:
        await a.call(
            "task_create",
            tasks=[
                {"id": "big", "title": "b", "business_value": 20, "job_size": 4, "epic_id": "X"},
                {"id": "small", "title": "s", "business_value": 2, "job_size": 10},
                {"id": "base", "title": "root", "business_value": 6, "job_size": 6},
                {"id": "child", "title": "c", "depends_on": ["base"]},
            ],
        )
        before = {t["id"]: t["status"] for t in table_rows(await a.call("task_list"))}
        plan = await a.call("plan_next", limit=2)
        assert plan["agent_id"] == "planner"
        assert [t["id"] for t in plan["tasks"]] == ["big", "base"]
        top = plan["tasks"][0]
        # Lean entries: enough to choose; task_get has the rest, the score's breakdown too.
        assert set(top) == {"id", "title", "epic_id", "score"}
        assert (top["title"], top["epic_id"]) == ("b", "X")
        big = await a.call("task_get", task_id="big")
        assert big["breakdown"] == {
            "business_value": 20,
            "time_criticality": 5.0,
            "risk_reduction": 5,
            "enablement": 0,
            "job_size": 4,
        }
        assert top["score"] == wsjf(**big["breakdown"]) == 7.5  # cost of delay 30 / job size 4
        assert big["status"] == "pending"
        assert (await a.call("task_get", task_id="base"))["breakdown"]["enablement"] == 1
        counts = plan["counts"]
        assert counts["ready"] == 3
        assert counts["waiting_on_dependencies"] == 1
        assert counts["backing_off"] == 0
        assert counts["by_status"] == {"pending": 4}  # statuses with no task are left out
        assert (counts["wip_global_used"], counts["wip_global_limit"]) == (0, 4)
        assert (counts["wip_agent_used"], counts["wip_agent_limit"]) == (0, 1)
        assert counts["wip_remaining"] == 1

        everything = await a.call("plan_next", limit=100)
        assert [t["id"] for t in everything["tasks"]] == ["big", "base", "small"]
        assert [t["id"] for t in (await a.call("plan_next", epic_id="X"))["tasks"]] == ["big"]
        # plan_next is read-only.
        after = {t["id"]: t["status"] for t in table_rows(await a.call("task_list"))}
        assert after == before

        assert (await a.call("claim_task"))["task"]["id"] == "big"
        counts = (await a.call("plan_next"))["counts"]
        assert counts["ready"] == 2
        assert counts["by_status"]["in_progress"] == 1
        assert counts["by_status"]["pending"] == 3
        assert (counts["wip_global_used"], counts["wip_agent_used"]) == (1, 1)
        assert counts["wip_remaining"] == 0
    async with connect(state_root, WVO_AGENT_ID="someone-else") as b:
        other = (await b.call("plan_next"))["counts"]
        assert (other["wip_agent_used"], other["wip_remaining"]) == (0, 1)


async def test_claim_heartbeat_checkpoint_and_done(state_root: Path) -> None:
    async with connect(state_root, WVO_AGENT_ID="worker", WVO_LEASE_SECONDS=900) as a:
        nothing = await a.call("claim_task")
        assert nothing["claimed"] is False and nothing["reason"] == "no_ready_task"
        assert nothing.get("lease_token") is None

        await a.call(
            "task_create",
            tasks=[
                {"id": "job", "title": "do it"},
                {"id": "next", "title": "n", "depends_on": ["job"]},
            ],
        )
        claim = await a.call("claim_task")
        assert claim["claimed"] is True and claim.get("reason") is None
        assert claim["agent_id"] == "worker"
        assert claim["lease_token"]
        assert claim["lease_seconds"] == 900  # WVO_LEASE_SECONDS
        assert claim["attempt"] == 1
        assert claim.get("last_checkpoint") is None
        assert claim["task"]["id"] == "job" and claim["task"]["title"] == "do it"
        # What is required is always there; what is optional only when it has a value.
        required = {"id", "title", "complexity", "score"}
        optional = {"description", "epic_id", "milestone_id", "due_at", "tags", "metadata"}
        assert required <= set(claim["task"]) <= required | optional
        token = claim["lease_token"]
        claimed_until = at(claim["lease_expires_at"])
        # The claim carries what the work needs; task_get has the lease and the history.
        held = await a.call("task_get", task_id="job")
        assert held["status"] == "in_progress"
        assert held["assigned_to"] == "worker"
        assert held["lease_expires_at"] == claim["lease_expires_at"]
        events = held["recent_events"]
        assert events[-1]["kind"] == "claimed" and events[-1]["actor"] == "worker"

        # heartbeat: lease_seconds sets the new length, and is remembered.
        beat = await a.call("heartbeat", task_id="job", lease_token=token, lease_seconds=7200)
        assert beat["task_id"] == "job"
        assert at(beat["lease_expires_at"]) - claimed_until > timedelta(seconds=6000)
        again = await a.call("heartbeat", task_id="job", lease_token=token)
        assert at(again["lease_expires_at"]) >= at(beat["lease_expires_at"])
        shorter = await a.call("heartbeat", task_id="job", lease_token=token, lease_seconds=30)
        assert at(shorter["lease_expires_at"]) < claimed_until
        task = await a.call("task_get", task_id="job")
        assert task["lease_expires_at"] == shorter["lease_expires_at"]

        # checkpoint: seq counts up, renews the lease from the checkpoint's own time.
        one = await a.call("checkpoint", task_id="job", lease_token=token, summary="half")
        two = await a.call(
            "checkpoint",
            task_id="job",
            lease_token=token,
            summary="most of it",
            next_steps="tests",
            progress=80,
            files=["a.py", "b.py"],
        )
        assert (one["seq"], two["seq"]) == (1, 2)
        assert two["task_id"] == "job"
        task = await a.call("task_get", task_id="job")
        latest = task["latest_checkpoint"]
        assert latest["seq"] == 2 and latest["summary"] == "most of it"
        assert latest["next_steps"] == "tests" and latest["progress"] == 80
        assert latest["files"] == ["a.py", "b.py"] and latest["agent_id"] == "worker"
        assert task["lease_expires_at"] == two["lease_expires_at"]
        assert at(two["lease_expires_at"]) - at(latest["created_at"]) == timedelta(seconds=30)
        assert at(two["lease_expires_at"]) >= at(shorter["lease_expires_at"])

        done = await a.call(
            "plan_update", task_id="job", status="done", lease_token=token, reason="shipped"
        )
        assert done["task_id"] == "job"
        assert (done["previous_status"], done["status"]) == ("in_progress", "done")
        assert done["attempts"] == 0 and done.get("not_before") is None
        assert done["unblocked"] == ["next"]
        assert "done" in done["message"]
        task = await a.call("task_get", task_id="job")
        assert task["status"] == "done" and task["completed_at"] is not None
        assert task.get("assigned_to") is None and task.get("lease_expires_at") is None
        status_event = task["recent_events"][-1]
        assert (status_event["to_status"], status_event["reason"]) == ("done", "shipped")
        # The finished lease no longer works.
        lost = await a.error("heartbeat", task_id="job", lease_token=token)
        assert "lease lost" in lost


async def test_plan_update_without_lease(state_root: Path) -> None:
    """Work nobody holds is moved by a person, not by an agent without a lease."""
    async with connect(state_root, WVO_AGENT_ID="triage") as a:
        await a.call("task_create", tasks=[{"id": "t1", "title": "x"}])
        for status in ("blocked", "cancelled", "done"):
            refused = await a.error("plan_update", task_id="t1", status=status)
            assert "'pending'" in refused and "person" in refused
        assert wvo(state_root, "cancel", "t1", "--reason", "not needed").returncode == 0
        task = await a.call("task_get", task_id="t1")
        assert task["status"] == "cancelled"
        kinds = [(e["from_status"], e["to_status"]) for e in task["recent_events"][1:]]
        assert kinds == [("pending", "cancelled")]
        assert task["recent_events"][-1]["actor"].startswith("person:")
        assert "no task" in await a.error("plan_update", task_id="ghost", status="blocked")


async def test_agent_id_is_the_environments_and_never_switches(state_root: Path) -> None:
    async with connect(state_root, WVO_AGENT_ID="env-agent", WVO_WIP_LIMIT=5) as a:
        await a.call(
            "task_create", tasks=[{"id": "one", "title": "1"}, {"id": "two", "title": "2"}]
        )
        assert (await a.call("plan_next"))["agent_id"] == "env-agent"
        assert (await a.call("plan_next", agent_id="env-agent"))["agent_id"] == "env-agent"
        switched = await a.error("claim_task", task_id="two", agent_id="explicit")
        assert "cannot switch" in switched and "'env-agent'" in switched

        mine = await a.call("claim_task", task_id="one")
        assert mine["agent_id"] == "env-agent"
        await a.call("checkpoint", task_id="one", lease_token=mine["lease_token"], summary="s")
        one = await a.call("task_get", task_id="one")
        assert one["assigned_to"] == one["latest_checkpoint"]["agent_id"] == "env-agent"
        assert one["recent_events"][0]["actor"] == "env-agent"  # task_create's actor
    async with connect(state_root) as b:
        # Without WVO_AGENT_ID the first id given is kept.
        theirs = await b.call("claim_task", task_id="two", agent_id="explicit")
        assert theirs["claimed"] and theirs["agent_id"] == "explicit"
        await b.call("plan_update", task_id="two", status="done", lease_token=theirs["lease_token"])
        two = await b.call("task_get", task_id="two")
        assert two["recent_events"][-1]["actor"] == "explicit"


async def test_agent_id_without_env_is_stable(state_root: Path) -> None:
    async with connect(state_root) as a:
        first = (await a.call("plan_next"))["agent_id"]
        second = (await a.call("plan_next"))["agent_id"]
        assert first and first == second
        await a.call("task_create", tasks=[{"id": "solo", "title": "s"}])
        claim = await a.call("claim_task")
        assert claim["task"]["id"] == "solo"
        holder = (await a.call("task_get", task_id="solo"))["assigned_to"]
        assert claim["agent_id"] == first == holder


async def test_landing_queue_lists_the_queue_and_its_figures(state_root: Path) -> None:
    """The merge queue of tests/landing_state.py, begun three hours ago, read over stdio."""
    filled = await fill_state(state_root, ago=3 * 3600)
    async with connect(state_root) as a:
        found = await a.call("landing_queue")
        short = await a.call("landing_queue", hours=1)
        refused = await a.error("landing_queue", hours=0)
    listed = [(e["target"], e.get("position"), e["task_id"], e["state"], e["returns"])
              for e in found["entries"]]  # fmt: skip
    assert listed == [
        (TARGET, 1, "B", "queued", 1),
        (TARGET, 2, "Q", "queued", 0),
        (TARGET, None, "H", "held", 0),
        (TARGET, None, "R", "review", 0),
    ]
    by_task = {e["task_id"]: e for e in found["entries"]}
    assert by_task["Q"]["title"] == "queued next"
    assert by_task["H"]["reason"].startswith(HELD_WHY)
    assert "reason" not in by_task["B"]  # lean: only a held entry says why
    # Waits are measured against now, three hours after the queue began: Q queued at 720 s.
    assert at(by_task["Q"]["waiting_since"]) == at(timeutil.after(filled.start, 720))
    assert by_task["Q"]["waited_s"] >= 3 * 3600 - 720
    figures = found["figures"]
    assert (figures["hours"], figures["landed"], figures["returned"]) == (24, 1, 1)
    assert figures["wait_p50_s"] == figures["wait_p95_s"] == 600.0
    assert figures["returns_per_landed"] == 1.0
    assert [(s["provider"], s["tier"], s["tokens_per_change"]) for s in figures["spend"]] == [
        ("claude", "sonnet", 550.0),
        ("codex", "medium", 1200.0),
    ]
    # The last hour began long after the landing: nothing landed in it; the same queue.
    assert (short["figures"]["landed"], short["figures"]["wait_p50_s"]) == (0, None)
    assert "spend" not in short["figures"] and len(short["entries"]) == 4
    assert "hours" in refused and "greater than or equal to 1" in refused


async def test_a_servers_tools_derived_for_an_earlier_one_read_refuse_and_act_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the SDK derives from each tool's function is kept from a process's first server
    for the next (edge/calls.Server.add_tool), as a forked server keeps what the warm
    process derived: the later server's tools read and refuse as freshly derived ones do,
    and act for its own agent on its own state."""
    monkeypatch.setattr(calls, "_DERIVED", {})  # the first server below derives them afresh
    async with connect(tmp_path / "first", WVO_AGENT_ID="ann") as first:
        await first.call("task_create", tasks=[{"id": "A1", "title": "the first's"}])
        fresh = (await first.client.list_tools()).tools
        refused = await first.error("claim_task", lease_second=5)
    assert calls._DERIVED
    async with connect(tmp_path / "second", WVO_AGENT_ID="bob") as second:
        kept = (await second.client.list_tools()).tools
        assert [t.model_dump() for t in kept] == [t.model_dump() for t in fresh]
        assert await second.error("claim_task", lease_second=5) == refused
        assert await all_ids(second) == []
        await second.call("task_create", tasks=[{"id": "B1", "title": "the second's"}])
        assert await all_ids(second) == ["B1"]
        claim = await second.claim()
        assert (claim["task"]["id"], claim["agent_id"]) == ("B1", "bob")  # its own tools
