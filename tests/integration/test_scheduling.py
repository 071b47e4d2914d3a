"""Scheduling through the MCP client: WSJF order, dependency gating, batch refusals, WIP limits,
named claims and approval."""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Agent, agents, connect, table_rows, wvo

pytestmark = pytest.mark.anyio


async def ranked(agent: Agent, **args: object) -> list[str]:
    plan = await agent.call("plan_next", limit=100, **args)
    return [t["id"] for t in plan["tasks"]]


async def task_ids(agent: Agent) -> list[str]:
    page = await agent.call("task_list", limit=500)
    return [t["id"] for t in table_rows(page)]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


# --- WSJF order -----------------------------------------------------------------------------


async def test_plan_next_ranks_by_wsjf_score(state_root: Path) -> None:
    specs = [
        # (business_value + time_criticality + risk_reduction + enablement) / job_size
        {"id": "low", "title": "l", "business_value": 1, "time_criticality": 1,
         "risk_reduction": 1, "job_size": 20},  # 0.15
        {"id": "mid2", "title": "m2", "business_value": 5, "job_size": 3},  # 15/3 = 5
        {"id": "high", "title": "h", "business_value": 20, "time_criticality": 1,
         "risk_reduction": 1, "job_size": 2},  # 11
        {"id": "mid", "title": "m", "business_value": 10, "job_size": 4},  # 20/4 = 5
        {"id": "size", "title": "s", "business_value": 12, "complexity": 2},  # 22/4 = 5.5
    ]  # fmt: skip
    async with connect(state_root) as a:
        await a.call("task_create", tasks=specs)
        plan = await a.call("plan_next", limit=10)
        order = [t["id"] for t in plan["tasks"]]
        # mid and mid2 tie at 5 and were created together: the id breaks the tie.
        assert order == ["high", "size", "mid", "mid2", "low"]
        scores = {t["id"]: t["score"] for t in plan["tasks"]}
        assert scores == {"high": 11.0, "size": 5.5, "mid": 5.0, "mid2": 5.0, "low": 0.15}
        for task in plan["tasks"]:
            b = (await a.call("task_get", task_id=task["id"]))["breakdown"]
            cod = b["business_value"] + b["time_criticality"] + b["risk_reduction"]
            cod += b["enablement"]
            assert round(cod / b["job_size"], 4) == task["score"]
        # Claims follow the same order.
        claim = await a.call("claim_task")
        assert claim["task"]["id"] == "high"


async def test_equal_scores_rank_older_first_then_by_id(state_root: Path) -> None:
    async with connect(state_root) as a:
        await a.call("task_create", tasks=[{"id": "zz-old", "title": "older"}])
        old_at = (await a.call("task_get", task_id="zz-old"))["created_at"]
        # Create equal-score tasks one by one until one is stamped strictly later.
        created_at = {"zz-old": old_at}
        deadline = time.monotonic() + 10
        n = 0
        while max(created_at.values()) == old_at:
            assert time.monotonic() < deadline, "every create got the same timestamp"
            task_id = f"aa-new-{n}"
            await a.call("task_create", tasks=[{"id": task_id, "title": "newer"}])
            created_at[task_id] = (await a.call("task_get", task_id=task_id))["created_at"]
            n += 1
        expected = sorted(created_at, key=lambda i: (created_at[i], i))
        order = await ranked(a)
        assert order == expected
        # The newest one ranks after the older one although its id sorts first.
        newest = max(created_at, key=lambda i: (created_at[i], i))
        assert order.index("zz-old") < order.index(newest)
        assert newest < "zz-old"


async def test_more_dependents_rank_higher(state_root: Path) -> None:
    async with connect(state_root) as a:
        await a.call(
            "task_create",
            tasks=[{"id": "a-plain", "title": "p"}, {"id": "z-enabler", "title": "e"}],
        )
        assert await ranked(a) == ["a-plain", "z-enabler"]
        # A later batch adds dependents to an existing task: it is re-ranked.
        await a.call(
            "task_create",
            tasks=[
                {"id": "dep-1", "title": "d1", "depends_on": ["z-enabler"]},
                {"id": "dep-2", "title": "d2", "depends_on": ["z-enabler"]},
            ],
        )
        plan = await a.call("plan_next", limit=10)
        assert [t["id"] for t in plan["tasks"]] == ["z-enabler", "a-plain"]
        assert plan["tasks"][0]["score"] > plan["tasks"][1]["score"]
        detail = await a.call("task_get", task_id="z-enabler")
        assert detail["breakdown"]["enablement"] == 2
        assert (await a.call("task_get", task_id="a-plain"))["breakdown"]["enablement"] == 0
        assert [d["id"] for d in detail["dependents"]] == ["dep-1", "dep-2"]


async def test_due_date_raises_time_criticality(state_root: Path) -> None:
    now = datetime.now(UTC)
    async with connect(state_root) as a:

        def dated(task_id: str, days: float | None) -> dict[str, object]:
            spec: dict[str, object] = {"id": task_id, "title": task_id, "time_criticality": 2}
            if days is not None:
                spec["due_at"] = iso(now + timedelta(days=days))
            return spec

        await a.call(
            "task_create",
            tasks=[
                dated("far", 90),
                dated("overdue", -1),
                dated("soon", 7),
                dated("undated", None),
            ],
        )
        plan = await a.call("plan_next", limit=10)
        tc = {
            t["id"]: (await a.call("task_get", task_id=t["id"]))["breakdown"]["time_criticality"]
            for t in plan["tasks"]
        }
        assert tc["overdue"] == 20
        assert tc["far"] == 2 and tc["undated"] == 2
        assert 2 < tc["soon"] < 20
        assert [t["id"] for t in plan["tasks"]][:2] == ["overdue", "soon"]
        overdue = await a.call("task_get", task_id="overdue")
        assert overdue["time_criticality"] == 2  # the planner's input is kept
        assert overdue["breakdown"]["time_criticality"] == 20


# --- dependencies ---------------------------------------------------------------------------


async def test_dependent_waits_until_dependency_done(state_root: Path) -> None:
    async with connect(state_root, WVO_AGENT_ID="dev") as a:
        created = await a.call(
            "task_create",
            tasks=[
                {"id": "A", "title": "first"},
                {"id": "B", "title": "second"},
                {"id": "C", "title": "after both", "depends_on": ["A", "B"], "business_value": 20},
            ],
        )
        assert sorted(created["ready"]) == ["A", "B"]
        assert await ranked(a) == ["A", "B"]
        counts = (await a.call("plan_next"))["counts"]
        assert (counts["ready"], counts["waiting_on_dependencies"]) == (2, 1)

        refused = await a.call("claim_task", task_id="C")
        assert refused["claimed"] is False and refused["reason"] == "task_not_ready"
        assert "A" in refused["message"] and "B" in refused["message"]

        claim = await a.call("claim_task", task_id="A")
        done = await a.call(
            "plan_update", task_id="A", status="done", lease_token=claim["lease_token"]
        )
        assert done.get("unblocked", []) == []  # C still waits on B
        assert "C" not in await ranked(a)
        refused = await a.call("claim_task", task_id="C")
        assert refused["reason"] == "task_not_ready"
        assert "B" in refused["message"] and "A (" not in refused["message"]

        claim = await a.call("claim_task", task_id="B")
        done = await a.call(
            "plan_update", task_id="B", status="done", lease_token=claim["lease_token"]
        )
        assert done["unblocked"] == ["C"]
        assert await ranked(a) == ["C"]
        assert (await a.call("claim_task"))["task"]["id"] == "C"


async def test_new_task_on_done_dependency_is_ready(state_root: Path) -> None:
    async with connect(state_root) as a:
        await a.call("task_create", tasks=[{"id": "base", "title": "b"}])
        claim = await a.call("claim_task")
        await a.call("plan_update", task_id="base", status="done", lease_token=claim["lease_token"])
        created = await a.call(
            "task_create", tasks=[{"id": "later", "title": "l", "depends_on": ["base"]}]
        )
        assert created["ready"] == ["later"]
        assert await ranked(a) == ["later"]


async def test_cycle_is_refused_and_nothing_written(state_root: Path) -> None:
    async with connect(state_root) as a:
        text = await a.error(
            "task_create",
            tasks=[
                {"id": "ok", "title": "fine"},
                {"id": "A", "title": "a", "depends_on": ["B"]},
                {"id": "B", "title": "b", "depends_on": ["A"]},
            ],
        )
        assert "cycle" in text
        assert "A -> B -> A" in text or "B -> A -> B" in text
        long = await a.error(
            "task_create",
            tasks=[
                {"id": "x", "title": "x", "depends_on": ["z"]},
                {"id": "y", "title": "y", "depends_on": ["x"]},
                {"id": "z", "title": "z", "depends_on": ["y"]},
            ],
        )
        assert "cycle" in long and all(name in long for name in ("x", "y", "z"))
        selfish = await a.error(
            "task_create", tasks=[{"id": "me", "title": "m", "depends_on": ["me"]}]
        )
        assert "me" in selfish and "itself" in selfish
        assert await task_ids(a) == []


async def test_unknown_dependency_is_refused_and_nothing_written(state_root: Path) -> None:
    async with connect(state_root) as a:
        await a.call("task_create", tasks=[{"id": "exists", "title": "e"}])
        text = await a.error(
            "task_create",
            tasks=[
                {"id": "good", "title": "g", "depends_on": ["exists"]},
                {"id": "bad", "title": "b", "depends_on": ["exists", "missing.T9"]},
            ],
        )
        assert "missing.T9" in text and "unknown" in text
        assert await task_ids(a) == ["exists"]
        detail = await a.call("task_get", task_id="exists")
        assert detail.get("dependents", []) == [] and detail["breakdown"]["enablement"] == 0


async def test_batch_is_all_or_nothing(state_root: Path) -> None:
    async with connect(state_root) as a:
        # A bad field in the last task refuses the earlier, valid ones too.
        text = await a.error(
            "task_create",
            tasks=[{"id": f"ok-{n}", "title": "fine"} for n in range(5)]
            + [{"id": "bad", "title": "b", "complexity": 11}],
        )
        assert "complexity" in text
        assert await task_ids(a) == []
        assert "pending" not in (await a.call("plan_next"))["counts"]["by_status"]


async def test_duplicate_ids_are_refused(state_root: Path) -> None:
    async with connect(state_root) as a:
        twice = await a.error(
            "task_create", tasks=[{"id": "dup", "title": "1"}, {"id": "dup", "title": "2"}]
        )
        assert "dup" in twice and "twice" in twice
        assert await task_ids(a) == []

        await a.call("task_create", tasks=[{"id": "dup", "title": "original"}])
        clash = await a.error(
            "task_create", tasks=[{"id": "fresh", "title": "f"}, {"id": "dup", "title": "again"}]
        )
        assert "dup" in clash and "exist" in clash
        assert await task_ids(a) == ["dup"]
        assert (await a.call("task_get", task_id="dup"))["title"] == "original"


# --- WIP limits and named claims -----------------------------------------------------------


async def test_per_agent_wip_limit(state_root: Path) -> None:
    async with agents(state_root, "solo", "helper") as team:
        a = team["solo"]
        await a.call("task_create", tasks=[{"id": f"t{n}", "title": "t"} for n in range(3)])
        first = await a.call("claim_task")
        assert first["claimed"]
        second = await a.call("claim_task")
        assert second["claimed"] is False and second["reason"] == "agent_wip_limit"
        assert "WVO_WIP_PER_AGENT" in second["message"] and "solo" in second["message"]
        named = await a.call("claim_task", task_id="t2")
        assert named["reason"] == "agent_wip_limit"
        assert (await a.call("task_get", task_id="t2"))["status"] == "pending"
        # Another agent is not limited by solo's claim.
        other = await team["helper"].call("claim_task")
        assert other["claimed"] and other["task"]["id"] != first["task"]["id"]
        # Finishing frees the slot.
        await a.call(
            "plan_update",
            task_id=first["task"]["id"],
            status="done",
            lease_token=first["lease_token"],
        )
        assert (await a.call("claim_task"))["claimed"]


async def test_per_agent_wip_limit_from_env(state_root: Path) -> None:
    async with connect(state_root, WVO_AGENT_ID="solo", WVO_WIP_PER_AGENT=2) as a:
        await a.call("task_create", tasks=[{"id": f"t{n}", "title": "t"} for n in range(3)])
        assert (await a.call("claim_task"))["claimed"]
        assert (await a.call("claim_task"))["claimed"]
        third = await a.call("claim_task")
        assert third["reason"] == "agent_wip_limit"


async def test_global_wip_limit(state_root: Path) -> None:
    async with agents(state_root, "agent-1", "agent-2", "agent-3", WVO_WIP_LIMIT=2) as team:
        a1, a2, a3 = team["agent-1"], team["agent-2"], team["agent-3"]
        await a1.call("task_create", tasks=[{"id": f"t{n}", "title": "t"} for n in range(4)])
        one = await a1.call("claim_task")
        two = await a2.call("claim_task")
        assert one["claimed"] and two["claimed"]
        three = await a3.call("claim_task")
        assert three["claimed"] is False and three["reason"] == "global_wip_limit"
        assert "WVO_WIP_LIMIT=2" in three["message"]
        named = await a3.call("claim_task", task_id="t3")
        assert named["reason"] == "global_wip_limit"
        counts = (await a3.call("plan_next"))["counts"]
        assert (counts["wip_global_used"], counts["wip_remaining"]) == (2, 0)
        await a1.call(
            "plan_update",
            task_id=one["task"]["id"],
            status="pending",
            lease_token=one["lease_token"],
        )
        assert (await a3.call("claim_task"))["claimed"]


async def test_per_epic_wip_limit(state_root: Path) -> None:
    async with agents(state_root, "agent-1", "agent-2", "agent-3", WVO_WIP_PER_EPIC=1) as team:
        a1, a2, a3 = team["agent-1"], team["agent-2"], team["agent-3"]
        await a1.call(
            "task_create",
            tasks=[
                {"id": "e1-a", "title": "a", "epic_id": "E1", "business_value": 20},
                {"id": "e1-b", "title": "b", "epic_id": "E1", "business_value": 19},
                {"id": "e2-a", "title": "c", "epic_id": "E2", "business_value": 1},
            ],
        )
        first = await a1.call("claim_task")
        assert first["task"]["id"] == "e1-a"
        # The next best task is in E1, which is full: the E2 task is granted instead.
        second = await a2.call("claim_task")
        assert second["task"]["id"] == "e2-a"
        third = await a3.call("claim_task")
        assert third["claimed"] is False and third["reason"] == "epic_wip_limit"
        named = await a3.call("claim_task", task_id="e1-b")
        assert named["reason"] == "epic_wip_limit" and "E1" in named["message"]
        assert (await a3.call("task_get", task_id="e1-b"))["status"] == "pending"


async def test_named_claim_of_blocked_or_unknown_task(state_root: Path) -> None:
    async with connect(state_root) as a:
        await a.call(
            "task_create",
            tasks=[
                {"id": "E1.T1", "title": "dependency"},
                {"id": "E1.T2", "title": "dependent", "depends_on": ["E1.T1"]},
            ],
        )
        refused = await a.call("claim_task", task_id="E1.T2")
        assert refused["claimed"] is False and refused["reason"] == "task_not_ready"
        assert "E1.T1" in refused["message"]
        assert refused.get("lease_token") is None and refused.get("task") is None
        assert (await a.call("task_get", task_id="E1.T2"))["status"] == "pending"

        unknown = await a.error("claim_task", task_id="E9.T9")
        assert "E9.T9" in unknown
        assert (await a.call("plan_next"))["counts"]["wip_global_used"] == 0


async def test_named_claim_of_held_task(state_root: Path) -> None:
    async with agents(state_root, "owner", "intruder") as team:
        await team["owner"].call("task_create", tasks=[{"id": "held", "title": "h"}])
        assert (await team["owner"].call("claim_task"))["claimed"]
        refused = await team["intruder"].call("claim_task", task_id="held")
        assert refused["reason"] == "task_not_ready" and "owner" in refused["message"]
        held = await team["intruder"].call("task_get", task_id="held")
        assert held["assigned_to"] == "owner"


# --- approval -------------------------------------------------------------------------------


async def test_requires_approval_until_a_person_approves(state_root: Path) -> None:
    async with connect(state_root, WVO_AGENT_ID="bot") as a:
        created = await a.call(
            "task_create", tasks=[{"id": "risky", "title": "drop table", "requires_approval": True}]
        )
        assert created.get("ready", []) == []
        task = await a.call("task_get", task_id="risky")
        assert task["status"] == "awaiting_approval" and task["requires_approval"] is True
        assert await ranked(a) == []
        named = await a.call("claim_task", task_id="risky")
        assert named["claimed"] is False and named["reason"] == "task_not_ready"
        assert (await a.call("claim_task"))["reason"] == "no_ready_task"
        # An agent cannot approve it itself.
        text = await a.error("plan_update", task_id="risky", status="pending")
        assert "approve" in text
        assert (await a.call("task_get", task_id="risky"))["status"] == "awaiting_approval"

        cli = wvo(state_root, "approve", "risky", "--by", "alice", "--note", "looks fine")
        assert cli.returncode == 0, cli.stderr
        assert "alice" in cli.stdout

        task = await a.call("task_get", task_id="risky")
        assert task["status"] == "pending"
        approved = task["recent_events"][-1]
        assert (approved["kind"], approved["actor"]) == ("approved", "person:alice")
        assert await ranked(a) == ["risky"]
        claim = await a.call("claim_task")
        assert claim["claimed"] and claim["task"]["id"] == "risky"

        again = wvo(state_root, "approve", "risky", "--by", "alice")
        assert again.returncode == 2 and "awaiting_approval" in again.stderr


async def test_approval_gate_after_dependencies(state_root: Path) -> None:
    async with connect(state_root) as a:
        await a.call(
            "task_create",
            tasks=[
                {"id": "prep", "title": "p"},
                {"id": "deploy", "title": "d", "depends_on": ["prep"], "requires_approval": True},
            ],
        )
        assert (await a.call("task_get", task_id="deploy"))["status"] == "pending"
        claim = await a.call("claim_task")
        done = await a.call(
            "plan_update", task_id="prep", status="done", lease_token=claim["lease_token"]
        )
        assert done.get("unblocked", []) == []  # it needs approval first
        assert (await a.call("task_get", task_id="deploy"))["status"] == "awaiting_approval"
        assert await ranked(a) == []
        assert wvo(state_root, "approve", "deploy", "--by", "bob").returncode == 0
        assert await ranked(a) == ["deploy"]
