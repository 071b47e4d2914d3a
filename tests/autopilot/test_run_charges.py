"""What each run was charged, per run (issue 70), through `wvo-mcp show` after real
autopilot runs. Its fake Claude Code workers run in their real sandbox, each behind its
run's meter (which counts nothing: the fake calls no model API), and say their usage on
their result line: each run is listed once, charged its CLI's word beside the meter's count,
a reviewer's run as its own, a paused run with what it used, and together they are what the
task's and the providers' tallies hold. The real Claude Code, killed before it says its
usage: its run shows the meter's count, and no word of its CLI."""

import json
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import autopilot, backlog, make_project
from tests.conftest import open_db, wvo
from tests.integration.test_claude_code import CLAUDE
from tests.security.tenancy import started, statuses, until, worktree
from tests.security.test_run_metering import KillingModel, claude_autopilot
from wvo_mcp.sandbox import bwrap

pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(not bwrap.probe().usable, reason="bubblewrap cannot sandbox here"),
]
USAGE = {"input_tokens": 60_000, "output_tokens": 6_000}
COST = 60 * 0.001 + 6 * 0.002  # the providers' one tier: 0.001 and 0.002 per 1k


def test_show_lists_what_each_run_was_charged(tmp_path: Path) -> None:
    """Attempt 1 gives up, attempt 2 lands: two runs, each listed once."""
    project = make_project(tmp_path)
    metadata = {"fake": "give_up_once", "fake_usage": USAGE}
    anyio.run(backlog, project, [{"id": "G", "title": "gives up once", "metadata": metadata}])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "1 done" in ran.stdout, ran.stdout

    shown = wvo(project["state"], "show", "G")
    assert shown.returncode == 0, shown.stderr
    charges = json.loads(shown.stdout)["charges"]
    assert len(charges) == 2, charges
    for charge in charges:
        assert charge["role"] == "worker" and charge["tier"] == "all", charge
        assert charge["agent"].startswith(f"{charge['provider']}-"), charge
        assert charge["model"] == f"{charge['provider']}-model", charge
        assert (charge["input_tokens"], charge["output_tokens"]) == (60_000, 6_000), charge
        assert charge["cost_usd"] == pytest.approx(COST), charge
        assert charge["meter"] == {"input_tokens": 0, "output_tokens": 0, "cost_usd": None}
        said = charge["said"]
        assert (said["input_tokens"], said["output_tokens"]) == (60_000, 6_000), charge
        assert charge["at"] and charge["outcome"] == "success", charge
    assert charges[0]["at"] <= charges[1]["at"]
    with open_db(project["state"]) as db:
        tally = db.execute(
            "SELECT sum(input_tokens), sum(output_tokens), sum(cost) FROM task_usage "
            "WHERE task_id = 'G'"
        ).fetchone()
    assert tally[:2] == (120_000, 12_000)
    assert sum(c["cost_usd"] for c in charges) == pytest.approx(tally[2])


@pytest.mark.skipif(not CLAUDE.exists(), reason="the Claude Code CLI is not installed")
def test_a_run_whose_cli_said_nothing_shows_the_meters_count(tmp_path: Path) -> None:
    """The real Claude Code, killed by its own Bash before its result line: `show` lists
    the run charged what the meter counted, and that its CLI said nothing."""
    model = KillingModel()
    project, ran = claude_autopilot(tmp_path, "K", model, model.events)
    assert "no result line" in ran.stdout, ran.stdout
    shown = wvo(project["state"], "show", "K")
    [charge] = json.loads(shown.stdout)["charges"]
    reported = {"input_tokens": model.reported[0], "output_tokens": model.reported[1]}
    assert charge["meter"] == {**reported, "cost_usd": None}, charge
    assert charge["said"] is None, charge
    assert {k: charge[k] for k in reported} == reported, charge
    assert (charge["provider"], charge["tier"], charge["role"]) == ("claude", "sonnet", "worker")


def test_a_reviewers_run_is_listed_as_its_own(tmp_path: Path) -> None:
    """The worker's run, then the other provider's reviewer's, each with its own agent."""
    project = make_project(tmp_path)
    task = {"id": "R1", "title": "reviewed", "metadata": {"review": True, "fake_usage": USAGE}}
    anyio.run(backlog, project, [task])
    ran = autopilot(project, "--workers", "alpha:1,beta:1")
    assert ran.returncode == 0 and "1 done" in ran.stdout, ran.stdout + ran.stderr[-3000:]
    charges = json.loads(wvo(project["state"], "show", "R1").stdout)["charges"]
    assert [c["role"] for c in charges] == ["worker", "reviewer"], charges
    worker, reviewer = charges
    assert worker["provider"] != reviewer["provider"], charges
    assert reviewer["agent"].startswith(f"{reviewer['provider']}-"), reviewer
    assert reviewer["said"] is not None and reviewer["meter"] is not None, reviewer


def test_a_paused_run_is_charged_what_it_used_and_listed(tmp_path: Path) -> None:
    """A pause costs no attempt and no provider failure, but the tokens its stopped run
    used are charged as any run's (docs/operations.md) and listed with it."""
    project = make_project(tmp_path)
    metadata = {"fake_wait": "go", "fake_usage": USAGE}
    anyio.run(backlog, project, [{"id": "P", "title": "long work", "metadata": metadata}])
    with started(project) as pilot:
        until(pilot, "the worker waiting", lambda: (worktree(project, "P") / "go.waiting").exists())
        assert wvo(project["state"], "pause", "--task", "P").returncode == 0
        until(pilot, "P handed back", lambda: statuses(project)["P"] == "pending")
        [paused] = json.loads(wvo(project["state"], "show", "P").stdout)["charges"]
        assert wvo(project["state"], "resume", "--task", "P").returncode == 0
        second = worktree(project, "P", 2)
        until(pilot, "the next attempt waiting", lambda: (second / "go.waiting").exists())
        (second / "go").write_text("")
        out = pilot.finish()
    assert statuses(project) == {"P": "done"}, out
    assert (paused["input_tokens"], paused["output_tokens"]) == (60_000, 6_000), paused
    charges = json.loads(wvo(project["state"], "show", "P").stdout)["charges"]
    assert charges[0] == paused and len(charges) == 2, charges
    with open_db(project["state"]) as db:
        used = db.execute(
            "SELECT sum(input_tokens), sum(output_tokens) FROM provider_usage "
            "WHERE period LIKE '____-__-__'"
        ).fetchone()
        attempts = db.execute("SELECT attempts FROM tasks WHERE id = 'P'").fetchone()[0]
    assert tuple(used) == (120_000, 12_000) and attempts == 0
