"""`wvo-mcp demo`: simulated agents work an example roadmap at once; none does a task twice.

`wvo-mcp demo`: simulated agents, each a real MCP client of its own stdio server process,
work through the example roadmap concurrently; the audit trail then proves no task was done
twice. The agents only pace themselves with sleeps; correctness comes from the server."""

import dataclasses
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from wvo_mcp import queue_figures, roadmap
from wvo_mcp.cli.output import say
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Status

LEASE_SECONDS = 30
# Complexity at or above this fails its first attempt, to show retries with back-off.
FLAKY_COMPLEXITY = 8
# One agent dies holding its first task; its short lease keeps the recovery quick.
CRASHING_AGENT = "agent-2"
CRASH_LEASE_SECONDS = 1
# A fast health monitor, so it can notice the silent agent within the demo.
MONITOR = {"WVO_AUTOPILOT_HEALTH_INTERVAL_MS": "250", "WVO_AUTOPILOT_STALE_TASK_MINUTES": "0.01"}


def _say(who: str, text: str) -> None:
    say(f"{time.strftime('%H:%M:%S')} {who:<8} {text}")


def _fresh_state(state_root: Path) -> None:
    db = state_root / "orchestrator.db"
    if db.exists() and state_root.name != "demo":
        raise ValidationFailed(
            f"the demo needs a fresh state folder, and {db} exists; pass --state-root DIR "
            "with a new folder (state/demo is reset on every run)"
        )
    for leftover in state_root.glob("orchestrator.db*"):
        leftover.unlink()
    for folder in ("backups", "telemetry"):
        shutil.rmtree(state_root / folder, ignore_errors=True)


async def _agent(name: str, state_root: Path, total_agents: int, done: Counter[str]) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-P", "-m", "wvo_mcp", "serve"],
        env={
            "WVO_STATE_ROOT": str(state_root),
            "WVO_AGENT_ID": name,
            "WVO_WIP_LIMIT": str(total_agents),
            "WVO_RETRY_BASE_SECONDS": "0.3",
            # All three start at once, cold: a warm process would only outlive the demo.
            "WVO_WARM_START": "0",
            **MONITOR,
        },
    )
    rng = random.Random(name)
    async with Client(params, read_timeout_seconds=30) as client:

        async def call(tool: str, **arguments: Any) -> dict[str, Any]:
            result = await client.call_tool(tool, arguments)
            if result.is_error:
                raise RuntimeError(f"{tool}: {result.content[0].text}")  # type: ignore[union-attr]
            content: dict[str, Any] = result.structured_content or {}
            return content

        crashes = name == CRASHING_AGENT
        while True:
            lease = CRASH_LEASE_SECONDS if crashes else LEASE_SECONDS
            claim = await call("claim_task", lease_seconds=lease)
            if not claim["claimed"]:
                counts = (await call("plan_next", limit=1))["counts"]["by_status"]
                open_work = sum(
                    counts.get(s, 0) for s in ("pending", "in_progress", "awaiting_approval")
                )
                if open_work == 0:
                    _say(name, "queue empty; stopping")
                    return
                await anyio.sleep(0.05)
                continue
            task, token = claim["task"], claim["lease_token"]
            tid = task["id"]
            resumed = claim.get("last_checkpoint")
            _say(
                name,
                f"claimed {tid} (score {task['score']:.2f}, attempt {claim['attempt']})"
                + (f", resuming from checkpoint {resumed['seq']}" if resumed else ""),
            )
            await anyio.sleep(rng.uniform(0.05, 0.2))
            await call(
                "checkpoint",
                task_id=tid,
                lease_token=token,
                summary=f"{name}: first half of {tid} done",
                progress=50,
                files=[f"src/{tid.lower()}.py"],
            )
            if crashes:
                _say(name, f"crashes holding {tid} (it never heartbeats or releases it again)")
                return
            await call("heartbeat", task_id=tid, lease_token=token)
            await anyio.sleep(rng.uniform(0.05, 0.2))
            if task["complexity"] >= FLAKY_COMPLEXITY and claim["attempt"] == 1:
                update = await call(
                    "plan_update",
                    task_id=tid,
                    lease_token=token,
                    status="failed",
                    reason="tests failed (simulated flaky build)",
                )
                _say(name, f"failed {tid}: {update['message']}")
                continue
            update = await call(
                "plan_update", task_id=tid, lease_token=token, status="done", reason="tests pass"
            )
            done[name] += 1
            unblocked = update.get("unblocked", [])
            _say(name, f"done {tid}" + (f"; unblocked {', '.join(unblocked)}" if unblocked else ""))


async def _approver(orchestrator: Orchestrator, stop: anyio.Event) -> None:
    """Stands in for the person who approves gated tasks."""
    while not stop.is_set():
        page = await orchestrator.list_tasks(status=Status.AWAITING_APPROVAL.value)
        for task in page.tasks:
            result = await orchestrator.approve(task.id, "person:demo", "looks safe")
            _say("person", result.message)
        with anyio.move_on_after(0.2):
            await stop.wait()


async def run_demo(roadmap_file: Path, state_root: Path, agents: int) -> bool:
    _fresh_state(state_root)
    specs = roadmap.load(roadmap_file)
    orchestrator = await Orchestrator.open(Settings.from_env(state_root=state_root))
    try:
        created = await orchestrator.create_tasks(specs, actor="person:demo")
        _say(
            "demo",
            f"imported {len(created.created)} tasks from {roadmap_file}; "
            f"{len(created.ready)} ready; starting {agents} agents",
        )
        started = time.monotonic()
        done: Counter[str] = Counter()
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(_approver, orchestrator, stop)
            async with anyio.create_task_group() as workers:
                for i in range(agents):
                    workers.start_soon(_agent, f"agent-{i + 1}", state_root, agents, done)
            stop.set()
        elapsed = time.monotonic() - started
        completions = await orchestrator.completions()
        page = await orchestrator.list_tasks(limit=500)
        health = await orchestrator.health_report(limit=20)
    finally:
        await orchestrator.close()

    twice = {tid: who for tid, who in completions.items() if len(who) > 1}
    not_done = [t.id for t in page.tasks if t.status is not Status.DONE]
    say()
    say(
        f"summary: {len(completions)}/{len(page.tasks)} tasks done in {elapsed:.1f} s "
        f"by {agents} agents"
    )
    for name in sorted(done):
        say(f"  {name}: {done[name]} tasks")
    say(f"  tasks done more than once: {len(twice)}" + (f" {twice}" if twice else ""))
    if not_done:
        say(f"  not done: {', '.join(not_done)}")
    for action in health.actions:
        say(f"  health monitor {action.kind} {action.task_id}: {action.reason}")
    say(f"  health: {health.message}")
    for backup in sorted((state_root / "backups" / "db").glob("orchestrator-*.db")):
        say(f"  backup taken by the monitor's leader: {backup}")
    say(
        f"inspect: sqlite3 {state_root / 'orchestrator.db'} "
        "'select task_id, actor, kind, to_status from task_events order by id'"
    )
    return not twice and not not_done


async def run_autopilot_demo(roadmap_file: Path, demo_root: Path, workers: int) -> bool:
    """The same roadmap worked by `wvo-mcp autopilot`: fake Claude Code workers (no model
    needed: wvo_mcp/autopilot/fake.py) of two providers, each task in its own sandbox and
    its own repository made from a scratch one, their work landed on `main` through the
    merge queue with the project's check. One task crashes on its first attempt, one is rate
    limited on the first provider, one fails the check once, to show recovery, failover and
    a return."""
    from wvo_mcp.autopilot import loop, slots

    root = demo_root / "autopilot"
    state, repo, providers = await anyio.to_thread.run_sync(_scratch_project, root, workers)
    specs = roadmap.load(roadmap_file)
    specs[0] = specs[0].model_copy(update={"metadata": {"fake": "crash_once"}})
    specs[1] = specs[1].model_copy(
        update={"metadata": {"fake": "rate_limit", "fake_provider": "claude"}}
    )
    specs[2] = specs[2].model_copy(
        update={"metadata": {"fake_files": {"notes.txt": "<<<<<<< half a merge\n"},
                             "fake_fix": {"notes.txt": "resolved\n"}}}
    )  # fmt: skip
    settings = dataclasses.replace(
        Settings.from_env(state_root=state),
        workspace_root=repo, providers_file=providers, wip_global=workers,
        retry_base_seconds=0.3, health_interval_seconds=0.0,
    )  # fmt: skip
    orchestrator = await Orchestrator.open(settings)
    try:
        created = await orchestrator.create_tasks(specs, actor="person:demo")
        _say("demo", f"imported {len(created.created)} tasks; autopilot with {workers} workers")
        options = slots.Options(until_empty=True, merge="merge", onto="main", check=CHECK)
        pilot = loop.Autopilot(
            orchestrator, settings, options, say=lambda text: _say("autopilot", text)
        )
        started = time.monotonic()
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(_approver, orchestrator, stop)
            summary = await pilot.run()
            stop.set()
        elapsed = time.monotonic() - started
        completions = await orchestrator.completions()
        page = await orchestrator.list_tasks(limit=500)
        queue = await orchestrator.landing_view()
    finally:
        await orchestrator.close()
    twice = {tid: who for tid, who in completions.items() if len(who) > 1}
    listed = await anyio.run_process(["git", "log", "--first-parent", "--format=%s", "main"],
                                     cwd=repo)  # fmt: skip
    landings = [s for s in listed.stdout.decode().splitlines() if s.startswith("Land ")]
    found = queue.figures
    per_change = sum(s.cost_per_change for s in found.spend)
    say()
    say(f"summary: {len(completions)}/{len(page.tasks)} tasks done in {elapsed:.1f} s")
    say(f"  {summary.launched} workers launched, {summary.released} attempts handed back")
    say(f"  tasks done more than once: {len(twice)}")
    say(
        f"  merge queue onto main, checked with `{CHECK}`: {found.landed} landed "
        f"({len(landings)} landing commits on main), {found.returned} returned to a worker"
    )
    say(f"  cost per landed change: ${per_change:.4f} "
          f"({queue_figures.summary(found)})")  # fmt: skip
    say(f"  tokens reported: {summary.input_tokens} in, {summary.output_tokens} out")
    say(f"inspect: git -C {repo} log --oneline --graph main | head; ls {state / 'runs'}")
    return not twice and len(completions) == len(page.tasks) == found.landed


# The demo project's check: no half-merged file lands.
CHECK = "sh check.sh"
CHECK_SH = """#!/bin/sh
if grep -rl '^<<<<<<<' --include='*.txt' .; then echo "half-merged files above"; exit 1; fi
echo "no half-merged files"
"""


def _scratch_project(root: Path, workers: int) -> tuple[Path, Path, Path]:
    """A fresh git repository, and a providers file whose two providers run the fake worker."""
    from wvo_mcp.autopilot import fake

    shutil.rmtree(root, ignore_errors=True)
    state, repo = root / "state", root / "project"
    repo.mkdir(parents=True)
    (repo / "README.md").write_text("The demo's project.\n")
    (repo / "check.sh").write_text(CHECK_SH)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "start"]):
        subprocess.run(
            ["git", "-c", "user.name=demo", "-c", "user.email=demo@localhost", *args],
            cwd=repo, check=True, capture_output=True,
        )  # fmt: skip
    # In a folder of its own: a worker sees its CLI's folder (read-only), never the state's.
    wrapper = root / "bin" / "fake-claude"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -P "{fake.__file__}" "$@"\n')
    wrapper.chmod(0o755)
    providers = root / "providers.yaml"
    providers.write_text(
        "version: 1\nproviders:\n"
        + "".join(
            f"""  - name: {name}
    preference: {preference}
    max_concurrent: {slots}
    tiers:
      - {{name: all, model: {name}-model, complexity: [1, 10], input_cost_per_1k: 0.003,
         output_cost_per_1k: 0.015}}
    worker: {{kind: claude, executable: "{wrapper}", max_workers: {slots}, hang_seconds: 30}}
"""
            for preference, (name, slots) in enumerate(
                [("claude", (workers + 1) // 2), ("codex", max(1, workers // 2))], start=1
            )
        )
    )
    return state, repo, providers
