"""The verification gate: a task's verify_command must pass in the sandbox before `done`.
Also sandbox runs recorded on a task and attached to a checkpoint, through the MCP client."""

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Agent, connect, wvo

pytestmark = pytest.mark.anyio

# exit 3 until the workspace holds ok.txt; says what it saw on both streams
GATE = "if test -f ok.txt; then echo green; else echo 'no ok.txt' >&2; echo red; exit 3; fi"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    return folder


def env(workspace: Path) -> dict[str, Any]:
    return {
        "WVO_WORKSPACE_ROOT": workspace,
        "WVO_AGENT_ID": "holder",
        "WVO_OTEL_ENABLED": 0,
        "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0,
    }


async def claimed(agent: Agent) -> str:
    await agent.call(
        "task_create", tasks=[{"id": "T1", "title": "make it green", "verify_command": GATE}]
    )
    claim = await agent.call("claim_task")
    assert claim["claimed"]
    return str(claim["lease_token"])


async def test_done_waits_for_the_verify_command(state_root: Path, workspace: Path) -> None:
    async with connect(state_root, **env(workspace)) as agent:
        token = await claimed(agent)
        assert (await agent.call("task_get", task_id="T1"))["verify_command"] == GATE

        refused = await agent.error("plan_update", task_id="T1", status="done", lease_token=token)
        assert "VerificationFailed" in refused
        assert "exit 3" in refused
        assert "no ok.txt" in refused and "red" in refused  # both tails
        task = await agent.call("task_get", task_id="T1")
        assert (task["status"], task["assigned_to"]) == ("in_progress", "holder")
        assert not [e for e in task["recent_events"] if e["kind"] == "verified"]

        (workspace / "ok.txt").write_text("fixed\n")
        done = await agent.call("plan_update", task_id="T1", status="done", lease_token=token)
        assert done["status"] == "done"
        events = (await agent.call("task_get", task_id="T1"))["recent_events"]
        verified = [e for e in events if e["kind"] == "verified"]
        assert len(verified) == 1
        assert "exit 0" in verified[0]["reason"]


async def test_done_is_refused_when_the_verify_command_ran_no_test(
    state_root: Path, workspace: Path
) -> None:
    """It exits 0, but its test runner found nothing to run: never a pass (issue 57)."""
    empty = "echo 'No test files found, exiting with code 0'"
    async with connect(state_root, **env(workspace)) as agent:
        await agent.call(
            "task_create", tasks=[{"id": "T1", "title": "tested", "verify_command": empty}]
        )
        token = (await agent.call("claim_task"))["lease_token"]
        refused = await agent.error("plan_update", task_id="T1", status="done", lease_token=token)
        assert (
            "exit 0 in " in refused
            and (
                ", but it ran no test (vitest found none): never a pass (a check that runs none "
                "passes anything)) It stays in_progress with you"
            )
            in refused
        ), refused
        assert (await agent.call("task_get", task_id="T1"))["status"] == "in_progress"


async def test_a_person_can_bypass_the_gate_and_it_is_recorded(
    state_root: Path, workspace: Path
) -> None:
    async with connect(state_root, **env(workspace)) as agent:
        await claimed(agent)
    refused = wvo(state_root, "done", "T1", "--by", "alice")
    assert refused.returncode == 2
    assert "exit 3" in refused.stderr
    bypassed = wvo(state_root, "done", "T1", "--skip-verify", "--by", "alice")
    assert bypassed.returncode == 0, bypassed.stderr
    shown = json.loads(wvo(state_root, "show", "T1").stdout)
    assert shown["status"] == "done"
    skipped = [e for e in shown["recent_events"] if e["kind"] == "verification_skipped"]
    assert [e["actor"] for e in skipped] == ["person:alice"]


async def test_a_sandbox_run_is_recorded_and_attached_to_the_next_checkpoint(
    state_root: Path, workspace: Path
) -> None:
    async with connect(state_root, **env(workspace)) as agent:
        token = await claimed(agent)
        nothing = await agent.error(
            "checkpoint", task_id="T1", lease_token=token, summary="x", attach_sandbox_run=True
        )
        assert "no sandbox run is recorded" in nothing
        run = await agent.call(
            "sandbox_run", command=["sh", "-c", "exit 7"], task_id="T1", lease_token=token
        )
        assert (run["exit_code"], run["timed_out"]) == (7, False)
        saved = await agent.call(
            "checkpoint",
            task_id="T1",
            lease_token=token,
            summary="tests still red",
            attach_sandbox_run=True,
        )
        task = await agent.call("task_get", task_id="T1")
        assert task["latest_checkpoint"]["seq"] == saved["seq"]
        attached = task["latest_checkpoint"]["sandbox_run"]
        assert "exit 7" in attached and run["backend"] in attached
        assert any(e["kind"] == "sandbox_run" for e in task["recent_events"])

        stale = await agent.error(
            "sandbox_run", command="true", task_id="T1", lease_token="not-mine"
        )
        assert "lease lost" in stale
        outside = await agent.error("sandbox_run", command="true", workspace="/")
        assert "outside the workspace root" in outside


async def test_the_tool_and_the_cli_return_the_same_shape(
    state_root: Path, workspace: Path
) -> None:
    async with connect(state_root, **env(workspace)) as agent:
        tool = await agent.call("sandbox_run", command=["sh", "-c", "echo hi; exit 2"])
    cli = wvo(
        state_root,
        "sandbox",
        "run",
        "--workspace",
        str(workspace),
        "--json",
        "--",
        "sh",
        "-c",
        "echo hi; exit 2",
    )
    shown = json.loads(cli.stdout)
    assert set(shown) == set(tool)
    assert (shown["exit_code"], tool["exit_code"]) == (2, 2)
    assert shown["stdout_tail"] == tool["stdout_tail"] == "hi\n"


async def test_verify_command_round_trips_through_the_roadmap(
    state_root: Path, workspace: Path, tmp_path: Path
) -> None:
    roadmap = tmp_path / "roadmap.yaml"
    roadmap.write_text(
        "version: 1\ntasks:\n"
        "  - id: A\n    title: argv form\n    verify_command: [pytest, -q, tests/]\n"
        "  - id: B\n    title: shell form\n    verify_command: make check\n"
    )
    assert wvo(state_root, "import", str(roadmap)).returncode == 0
    exported = wvo(state_root, "export").stdout
    assert "verify_command:\n  - pytest\n  - -q\n  - tests/" in exported
    assert "verify_command: make check" in exported
