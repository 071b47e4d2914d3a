"""ACP workers (`kind: acp`) end to end: the autopilot's driver (acp_driver.py) drives a
stand-in ACP agent (fake_acp.py) in the worker's real sandbox; its plan, tool calls and
words reach the run log and the dashboard's live view, its permission requests are answered
by the providers file's policy, a person's words and a pause reach it without a kill, and a
hostile agent (a flood, a 2 MiB line, a write outside) changes nothing it must not."""

import re
import signal
import sys
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import autopilot, backlog, git
from tests.autopilot.test_person_hand import summaries
from tests.conftest import ROOT, wvo
from tests.security.tenancy import started, statuses, until, worktree

FAKE_ACP = ROOT / "wvo_mcp" / "autopilot" / "fake_acp.py"


def acp_project(project: dict[str, Path], permissions: str = "allow") -> dict[str, Path]:
    """The project's two providers, their workers the stand-in ACP agent."""
    wrapper = project["repo"].parent / "bin" / "fake-acp"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -P "{FAKE_ACP}" "$@"\n')
    wrapper.chmod(0o755)
    text = project["providers"].read_text()
    text = re.sub(
        r"      kind: claude\n      executable: \S+\n",
        f"      kind: acp\n      agent: custom\n      executable: {wrapper}\n"
        f"      permissions: {permissions}\n"
        # A person's words reach the driver at its next read of the task: 0.5 s, not 5.
        "      poll_seconds: 0.5\n",
        text,
    )
    assert text.count("kind: acp") == 2
    project["providers"].write_text(text)
    return project


def run_log(project: dict[str, Path], task_id: str, run: int = 1) -> str:
    return (project["state"] / "runs" / task_id / f"{run}.log").read_text()


@pytest.mark.anyio
@pytest.mark.process
async def test_an_acp_agent_lands_its_task_and_its_plan_and_tool_calls_are_logged(
    project: dict[str, Path],
) -> None:
    acp_project(project)
    await backlog(project, [{"id": "A1", "title": "one"}, {"id": "A2", "title": "two"}])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "2 launched, 2 done, 0 released" in ran.stdout, ran.stdout
    assert git(project["repo"], "show", "wvo/A1:A1.txt").startswith("A1")
    log = run_log(project, "A1")
    assert '"event":"session"' in log and '"agent":"fake-acp ' in log
    assert '"event":"plan"' in log and '"content":"read the task"' in log
    assert '"title":"wvo: checkpoint","kind":"other","status":"in_progress"' in log
    assert '"title":"wvo: plan_update"' in log
    assert '{"type":"acp_end","stop_reason":"end_turn","paused":false' in log


@pytest.mark.anyio
@pytest.mark.process
async def test_a_denied_permission_ends_the_turn_without_the_work(
    project: dict[str, Path],
) -> None:
    acp_project(project, permissions="deny")
    await backlog(project, [{"id": "D1", "title": "asks", "max_attempts": 1,
                             "metadata": {"fake_acp_ask": "edit D1.txt"}}])  # fmt: skip
    autopilot(project)
    log = run_log(project, "D1")
    assert '"event":"permission","title":"edit D1.txt","kind":"edit","answer":"reject_once"' in log
    assert "permission refused: edit D1.txt" in log
    assert statuses(project)["D1"] != "done"
    assert "D1" not in git(project["repo"], "log", "--all", "--format=%s").split()


@pytest.mark.process
def test_a_person_tells_and_pauses_an_acp_worker_without_a_kill(
    project: dict[str, Path],
) -> None:
    acp_project(project)
    anyio.run(
        backlog, project, [{"id": "P", "title": "long work", "metadata": {"fake_wait": "go"}}]
    )
    with started(project) as pilot:
        until(pilot, "the worker waiting", lambda: (worktree(project, "P") / "go.waiting").exists())
        told = wvo(project["state"], "tell", "--task", "P", "mind the cache")
        assert told.returncode == 0, told.stderr
        until(pilot, "the message heard", lambda: any(
            s == "heard: tell: mind the cache" for s in summaries(project, "P")
        ))  # fmt: skip
        paused = wvo(project["state"], "pause", "--task", "P", "--reason", "freeze")
        assert paused.returncode == 0, paused.stderr
        until(pilot, "P handed back", lambda: statuses(project)["P"] == "pending")
        assert wvo(project["state"], "resume", "--task", "P").returncode == 0
        second = worktree(project, "P", 2)
        until(pilot, "the next attempt waiting", lambda: (second / "go.waiting").exists())
        (second / "go").write_text("")
        out = pilot.finish()
    assert statuses(project) == {"P": "done"}, out
    first = run_log(project, "P")
    # The driver heard the person (the agent reads none itself while it waits), cancelled
    # the turn and prompted again with the words and the task: the stand-in keeps nothing of
    # a cancelled turn (as Gemini CLI), so it heard them and worked on from that prompt
    # alone. Then the pause ended its turn, and the run ended by itself: the autopilot never
    # stopped it.
    assert '{"type":"acp","event":"told","text":"tell: mind the cache"}' in first
    assert '"stop_reason":"cancelled","paused":true' in first
    assert "exited with 0" in first, first[-2000:]
    assert not re.search(r"P: .*; stopped", out), out


@pytest.mark.process
def test_a_drain_reaches_an_acp_worker_without_a_kill(project: dict[str, Path]) -> None:
    """Ctrl-C drains: the autopilot tells its workers to checkpoint and stop, which the
    driver brings to the agent as a person's words are; the grace's kill is not needed."""
    acp_project(project)
    anyio.run(
        backlog, project, [{"id": "P", "title": "long work", "metadata": {"fake_wait": "go"}}]
    )
    with started(project, "--grace", "600") as pilot:
        until(pilot, "the worker waiting", lambda: (worktree(project, "P") / "go.waiting").exists())
        pilot.process.send_signal(signal.SIGINT)
        out = pilot.finish()
    assert "told 1 worker(s) to checkpoint and stop" in out, out
    assert statuses(project) == {"P": "pending"}, out  # handed back, its attempt not spent
    assert "stopped: the autopilot drained" in out and not re.search(r"P: .*; stopped", out)
    log = run_log(project, "P")
    assert '{"type":"acp","event":"told","text":"drain: The autopilot running you' in log, log
    assert '"stop_reason":"end_turn"' in log and "exited with 0" in log, log[-2000:]
    assert any(s.startswith("heard: drain: ") for s in summaries(project, "P"))


@pytest.mark.process
def test_an_acp_agents_permission_is_asked_of_a_person_and_the_answer_holds_later(
    project: dict[str, Path],
) -> None:
    """`permissions: ask`: the driver puts the agent's request to a person (ask_person), the
    run ends and the task waits; answered "allow", the next run is let do it, and lands."""
    acp_project(project, permissions="ask")
    asks = {"fake_acp_ask": "edit Q1.txt"}
    anyio.run(backlog, project, [{"id": "Q1", "title": "asks", "metadata": asks}])
    first = autopilot(project)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Q1 wait(s) for a person's answer" in first.stdout, first.stdout
    assert statuses(project) == {"Q1": "blocked"}
    inbox = wvo(project["state"], "inbox").stdout
    assert "asks permission to: edit Q1.txt" in inbox and 'Answer "allow"' in inbox, inbox
    log = run_log(project, "Q1")
    assert '"title":"edit Q1.txt","kind":"edit","answer":"asked a person"' in log, log
    assert '"asked":true' in log and "exited with 0" in log, log[-2000:]
    assert wvo(project["state"], "answer", "Q1", "allow").returncode == 0
    second = autopilot(project)
    assert statuses(project) == {"Q1": "done"}, second.stdout
    log = run_log(project, "Q1", 2)
    assert '"title":"edit Q1.txt","kind":"edit","answer":"allow_once"' in log, log


@pytest.mark.process
def test_the_dry_run_says_an_unmetered_acp_agent_and_its_policy(
    project: dict[str, Path],
) -> None:
    acp_project(project, permissions="deny")
    ran = autopilot(project, "--dry-run")
    assert ran.returncode == 0, ran.stderr
    assert "alpha: 2 acp worker(s)" in ran.stdout, ran.stdout
    assert "NOT METERED: agent custom names no model API (`api:` anthropic, openai or gemini)" in (
        ran.stdout
    )
    assert "agent:      custom over ACP, its permission requests answered 'deny'; never " in (
        ran.stdout
    )
