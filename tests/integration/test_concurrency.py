"""Several real `python -m wvo_mcp serve` processes on one database.

The audit trail (task_events, ids in commit order) is the ground truth: after the servers
exit it is read straight from the database (sqlite3, or psycopg) and replayed to check that
no task was granted twice, every task was done exactly once, and the WIP limits held at
every commit. On PostgreSQL, sixteen servers.
"""

import json
import os
import signal
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from mcp import MCPError

from tests.conftest import Agent, Store, connect, open_db, server_pid

pytestmark = [pytest.mark.anyio, pytest.mark.process]

WIP_GLOBAL = 4
WIP_PER_AGENT = 1
TASKS = 60
POLL_SECONDS = 0.02  # pause between polls of a queue that has nothing for us yet


def backlog() -> list[dict[str, Any]]:
    """60 tasks; 30 of them wait on one or two others (chains and diamonds)."""
    tasks = []
    for i in range(TASKS):
        deps = []
        if i >= 10 and i % 2 == 0:
            deps.append(f"T{i - 10:02d}")
        if i >= 30 and i % 5 == 0:
            deps.append(f"T{i - 7:02d}")
        if i >= 40 and i % 2 == 1 and i % 5 != 0:
            deps.append(f"T{i - 1:02d}")
        tasks.append(
            {
                "id": f"T{i:02d}",
                "title": f"task {i}",
                "business_value": 1 + i % 20,
                "complexity": 1 + i % 10,
                "depends_on": list(dict.fromkeys(deps)),
            }
        )
    return tasks


def replay(events: Sequence[Mapping[str, Any]]) -> tuple[int, dict[str, int]]:
    """Walk the audit trail in commit order; fail on a double grant or a stray release.

    Returns the most tasks in progress at once, globally and per agent."""
    holder: dict[str, str] = {}  # task -> agent holding it
    most_global = 0
    most_by_agent: dict[str, int] = defaultdict(int)
    for ev in events:
        task = ev["task_id"]
        if ev["kind"] == "claimed":
            assert task not in holder, (
                f"event {ev['id']}: {task} granted to {ev['actor']} while {holder.get(task)} "
                "still held it"
            )
            holder[task] = ev["actor"]
            most_global = max(most_global, len(holder))
            held = sum(1 for who in holder.values() if who == ev["actor"])
            most_by_agent[ev["actor"]] = max(most_by_agent[ev["actor"]], held)
        elif ev["from_status"] == "in_progress" and ev["to_status"] != "in_progress":
            assert task in holder, f"event {ev['id']}: {task} left in_progress it never entered"
            if ev["kind"] == "status":
                assert ev["actor"] == holder[task], (
                    f"event {ev['id']}: {ev['actor']} moved {task}, held by {holder[task]}"
                )
            del holder[task]
    assert not holder, f"still in progress at the end of the trail: {holder}"
    return most_global, dict(most_by_agent)


# Sixteen servers on PostgreSQL: its rules are made race-free explicitly (docs/postgres.md).
SERVERS = {"sqlite": 6, "postgres": 16}


async def test_servers_drain_one_queue_without_double_grants(store: Store) -> None:
    state_root, agents = store.state_root, SERVERS[store.name]
    specs = backlog()
    deps_of = {t["id"]: t["depends_on"] for t in specs}
    claimed_by: dict[str, list[str]] = defaultdict(list)  # as the clients saw it
    holding: dict[str, str] = {}  # task -> agent, between a granted claim and its done
    done_by: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    connected = 0
    go = anyio.Event()

    async def work(name: str) -> None:
        nonlocal connected
        async with connect(
            state_root,
            process=True,
            WVO_AGENT_ID=name,
            WVO_WIP_LIMIT=WIP_GLOBAL,
            WVO_WIP_PER_AGENT=WIP_PER_AGENT,
            **store.env,
        ) as agent:
            connected += 1
            if connected == agents:  # every server is up: start contending at once
                go.set()
            await go.wait()
            await drain(agent, name)

    async def drain(agent: Agent, name: str) -> None:
        while True:
            claim = await agent.claim()
            assert claim["agent_id"] == name
            if not claim["claimed"]:
                # This agent holds nothing between iterations, so only these two apply.
                assert claim["reason"] in ("no_ready_task", "global_wip_limit"), claim
                refusals[claim["reason"]] += 1
                plan = await agent.call("plan_next", limit=1)
                counts = plan["counts"]["by_status"]
                if (
                    claim["reason"] == "no_ready_task"
                    and counts.get("pending", 0) == 0
                    and counts.get("in_progress", 0) == 0
                ):
                    return
                await anyio.sleep(POLL_SECONDS)
                continue
            tid = claim["task"]["id"]
            assert tid not in holding, f"{tid} granted to {name} while {holding[tid]} holds it"
            holding[tid] = name
            claimed_by[tid].append(name)
            assert claim["attempt"] == 1
            task = await agent.call("task_get", task_id=tid)  # holder and dependencies
            assert task["assigned_to"] == name
            assert {d["id"] for d in task.get("dependencies", [])} == set(deps_of[tid])
            deps = task.get("dependencies", [])
            assert all(d["status"] == "done" for d in deps), deps
            again = await agent.claim()  # one task per agent at a time
            assert (again["claimed"], again["reason"]) == (False, "agent_wip_limit"), again

            saved = await agent.call(
                "checkpoint",
                task_id=tid,
                lease_token=claim["lease_token"],
                summary=f"{name} halfway through {tid}",
                progress=50,
            )
            assert saved["seq"] == 1
            del holding[tid]  # before the commit that releases it, so no false alarm
            update = await agent.call(
                "plan_update", task_id=tid, status="done", lease_token=claim["lease_token"]
            )
            assert (update["previous_status"], update["status"]) == ("in_progress", "done")
            done_by[name] += 1

    # The backlog (and the schema) exist before the workers start; six servers opening a
    # brand-new database at once is test_migrations' business.
    async with connect(state_root, process=True, WVO_AGENT_ID="planner", **store.env) as planner:
        created = await planner.call("task_create", tasks=specs)
        assert len(created["created"]) == TASKS
        assert len(created["ready"]) == sum(1 for t in specs if not t["depends_on"])

    with anyio.fail_after(240):
        async with anyio.create_task_group() as group:
            for i in range(agents):
                group.start_soon(work, f"agent-{i}")

    assert sum(done_by.values()) == TASKS
    assert all(len(who) == 1 for who in claimed_by.values()), {
        t: who for t, who in claimed_by.items() if len(who) != 1
    }

    events = store.rows("SELECT * FROM task_events ORDER BY id")
    statuses = {r["id"]: r["status"] for r in store.rows("SELECT id, status FROM tasks")}
    buckets = {
        r["bucket"]: r["tasks"] for r in store.rows("SELECT bucket, tasks FROM queue_counts")
    }

    assert statuses == {t["id"]: "done" for t in specs}
    assert buckets["done"] == TASKS
    assert all(n == 0 for bucket, n in buckets.items() if bucket != "done"), buckets

    done_events = [ev for ev in events if ev["to_status"] == "done"]
    assert Counter(ev["task_id"] for ev in done_events) == Counter(t["id"] for t in specs)
    last_claim: dict[str, dict[str, Any]] = {}
    claim_event: dict[str, int] = {}
    for ev in events:
        if ev["kind"] == "claimed":
            last_claim[ev["task_id"]] = ev
            claim_event[ev["task_id"]] = ev["id"]
    done_event = {ev["task_id"]: ev for ev in done_events}
    for tid, ev in done_event.items():
        assert ev["actor"] == last_claim[tid]["actor"] == claimed_by[tid][-1], tid
        assert ev["lease_epoch"] == last_claim[tid]["lease_epoch"] == 1, tid
        for dep in deps_of[tid]:
            # Claimed only after every dependency's completion committed.
            assert done_event[dep]["id"] < claim_event[tid], (tid, dep)

    most_global, most_by_agent = replay(events)
    print(
        f"\ntasks done per agent: {dict(sorted(done_by.items()))}; refusals: {dict(refusals)}; "
        f"most in progress at once: {most_global}"
    )
    assert most_global <= WIP_GLOBAL
    assert max(most_by_agent.values()) <= WIP_PER_AGENT, most_by_agent
    assert set(most_by_agent) == set(done_by)
    # Agents looping on one queue overlap; if they never did, nothing above was tested.
    assert most_global > 1


async def test_sigkilled_lease_holder_is_recovered_with_its_checkpoint(state_root: Path) -> None:
    fillers = [f"F{i:02d}" for i in range(40)]
    held = anyio.Event()
    killed = anyio.Event()
    victim: dict[str, Any] = {}
    sent: set[str] = set()  # checkpoint summaries the victim sent (maybe committed)
    recovered: dict[str, Any] = {}
    writer_did: list[str] = []

    async with connect(
        state_root, process=True, WVO_AGENT_ID="writer", WVO_WIP_LIMIT=WIP_GLOBAL
    ) as writer:
        await writer.call(
            "task_create",
            tasks=[
                # The most valuable task: whoever claims without naming a task gets it first.
                {"id": "victim", "title": "the task whose holder dies", "business_value": 20},
                *({"id": f, "title": f"filler {f}", "business_value": 1} for f in fillers),
            ],
        )

        async def doomed() -> None:
            # No WVO_AGENT_ID: the agent id carries the server's pid.
            async with connect(state_root, process=True, WVO_WIP_LIMIT=WIP_GLOBAL) as agent:
                claim = await agent.call("claim_task", task_id="victim", lease_seconds=1)
                assert claim["claimed"], claim
                victim.update(claim)
                held.set()
                pid = server_pid(claim["agent_id"])
                token = claim["lease_token"]
                for seq in (1, 2):
                    summary = f"before the crash, step {seq}"
                    sent.add(summary)
                    saved = await agent.call(
                        "checkpoint",
                        task_id="victim",
                        lease_token=token,
                        summary=summary,
                        next_steps="finish the rest",
                        progress=40,
                        files=["src/victim.py"],
                    )
                    assert saved["seq"] == seq
                victim["acknowledged_seq"] = 2

                async def in_flight(i: int) -> None:
                    summary = f"in flight {i}"
                    sent.add(summary)
                    with suppress(MCPError):  # the server may die under this request
                        await agent.client.call_tool(
                            "checkpoint",
                            {"task_id": "victim", "lease_token": token, "summary": summary},
                        )

                # Kill while requests are in flight and the writer is committing too.
                async with anyio.create_task_group() as flight:
                    for i in range(8):
                        flight.start_soon(in_flight, i)
                    await anyio.lowlevel.checkpoint()
                    os.kill(pid, signal.SIGKILL)
                    killed.set()
                victim["pid"] = pid
                with pytest.raises(MCPError):
                    await agent.call("plan_next")

        async def churn() -> None:
            """Claim (best first), checkpoint, finish, until the victim comes back to us."""
            await held.wait()  # the victim is the best task: let the doomed agent have it
            with anyio.fail_after(60):
                while True:
                    claim = await writer.call("claim_task", lease_seconds=30)
                    if not claim["claimed"]:
                        assert claim["reason"] == "no_ready_task", claim
                        await anyio.sleep(POLL_SECONDS)
                        continue
                    tid, token = claim["task"]["id"], claim["lease_token"]
                    if tid == "victim":
                        assert killed.is_set(), "the victim's lease expired before the kill"
                        recovered.update(claim)
                        # The lease epoch as granted, before this lease ends.
                        now_held = await writer.call("task_get", task_id=tid)
                        recovered["lease_epoch"] = now_held["lease_epoch"]
                    await writer.call(
                        "checkpoint", task_id=tid, lease_token=token, summary="writer was here"
                    )
                    await writer.call("plan_update", task_id=tid, status="done", lease_token=token)
                    writer_did.append(tid)
                    if tid == "victim":
                        return

        async with anyio.create_task_group() as group:
            group.start_soon(churn)
            # The victim's connection must wind down without hanging or failing the test.
            with anyio.fail_after(30):
                await doomed()

        with open_db(state_root) as db:  # while the writer's server is still up
            assert [r[0] for r in db.execute("PRAGMA integrity_check")] == ["ok"]

        assert recovered["attempt"] == 2
        last = recovered["last_checkpoint"]
        assert last is not None
        assert last["agent_id"] == victim["agent_id"]
        assert last["seq"] >= victim["acknowledged_seq"]
        assert last["summary"] in sent
        assert recovered["lease_epoch"] == 2
        after = await writer.call("plan_next")
        assert after["counts"]["by_status"].get("in_progress", 0) == 0

    # The victim's server is gone for good.
    with pytest.raises(ProcessLookupError):
        os.kill(victim["pid"], 0)
    with open_db(state_root) as db:
        assert [r[0] for r in db.execute("PRAGMA integrity_check")] == ["ok"]
        trail = [
            (ev["actor"], ev["kind"], ev["to_status"])
            for ev in db.execute(
                "SELECT * FROM task_events WHERE task_id = 'victim' ORDER BY id"
            ).fetchall()
        ]
        saved = db.execute(
            "SELECT * FROM checkpoints WHERE task_id = 'victim' ORDER BY seq"
        ).fetchall()
    seqs = [(row["seq"], row["agent_id"], row["lease_epoch"]) for row in saved]
    acknowledged = saved[victim["acknowledged_seq"] - 1]
    assert (
        acknowledged["summary"],
        acknowledged["next_steps"],
        acknowledged["progress"],
        json.loads(acknowledged["files"]),
    ) == ("before the crash, step 2", "finish the rest", 40, ["src/victim.py"])
    assert trail == [
        ("writer", "created", "pending"),
        (victim["agent_id"], "claimed", "in_progress"),
        ("scheduler", "lease_expired", "pending"),
        ("writer", "claimed", "in_progress"),
        ("writer", "status", "done"),
    ]
    # The victim's checkpoints (acknowledged or not) then the writer's, numbered 1..n.
    assert [s for s, _, _ in seqs] == list(range(1, len(seqs) + 1))
    assert seqs[-1][1:] == ("writer", 2)
    assert all(who == victim["agent_id"] and epoch == 1 for _, who, epoch in seqs[:-1])
    assert len(seqs) - 1 >= victim["acknowledged_seq"]
    assert writer_did[-1] == "victim"
