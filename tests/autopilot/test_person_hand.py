"""A person's hand on an autopilot's fleet, with fake workers in their sandboxes: a message
reaches a running worker; a paused fleet's worker checkpoints and stops, its task handed
back at no cost, and after resume the next attempt starts from that checkpoint; a worker's
question waits for a person, and the answer given from the CLI reaches the next attempt and
lands with its work."""

from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import autopilot, backlog, git
from tests.conftest import open_db, wvo
from tests.security.tenancy import started, statuses, until, worktree

pytestmark = pytest.mark.process


def ok(project: dict[str, Path], *args: str) -> str:
    done = wvo(project["state"], *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def summaries(project: dict[str, Path], task_id: str) -> list[str]:
    with open_db(project["state"]) as db:
        rows = db.execute(
            "SELECT summary FROM checkpoints WHERE task_id = ? ORDER BY seq", (task_id,)
        ).fetchall()
    return [r[0] for r in rows]


def test_a_paused_fleet_stops_its_worker_at_no_cost_and_resumes_from_its_checkpoint(
    project: dict[str, Path],
) -> None:
    anyio.run(
        backlog, project, [{"id": "P", "title": "long work", "metadata": {"fake_wait": "go"}}]
    )
    with started(project) as pilot:
        until(pilot, "the worker waiting", lambda: (worktree(project, "P") / "go.waiting").exists())
        assert "told task P (its holder" in ok(project, "tell", "--task", "P", "mind the cache")
        until(pilot, "the message heard", lambda: any(
            s == "heard: tell: mind the cache" for s in summaries(project, "P")
        ))  # fmt: skip
        said = ok(project, "pause", "--all", "--reason", "release freeze")
        assert "the fleet paused: not claimable until resumed; told 1 holder(s)" in said
        until(pilot, "P handed back", lambda: statuses(project)["P"] == "pending")
        assert summaries(project, "P")[-1] == "paused by a person: stopped"
        ok(project, "resume", "--all")
        second = worktree(project, "P", 2)
        until(pilot, "the next attempt waiting", lambda: (second / "go.waiting").exists())
        (second / "go").write_text("")
        out = pilot.finish()
    assert statuses(project) == {"P": "done"}, out
    with open_db(project["state"]) as db:
        attempts = db.execute("SELECT attempts FROM tasks WHERE id = 'P'").fetchone()[0]
        failed = db.execute("SELECT coalesce(sum(failed), 0) FROM route_outcomes").fetchone()[0]
        sql = "SELECT coalesce(sum(failures), 0) FROM provider_breakers"
        breaker_failures = db.execute(sql).fetchone()[0]
        reasons = [r[0] or "" for r in db.execute(
            "SELECT reason FROM task_events WHERE task_id = 'P' AND to_status = 'pending'"
        )]  # fmt: skip
    assert (attempts, failed, breaker_failures) == (0, 0, 0)  # the pause cost nothing
    assert any("a person paused it" in r for r in reasons), reasons
    # The second run started from the first's checkpoint.
    log = (project["state"] / "runs" / "P" / "2.log").read_text()
    assert "done P (resumed)" in log, log[-2000:]


def test_a_workers_question_waits_for_a_person_and_the_answer_lands_with_the_work(
    project: dict[str, Path],
) -> None:
    question = {"fake": "ask", "fake_question": "MIT or Apache-2.0?"}
    anyio.run(backlog, project, [{"id": "Q", "title": "pick a licence", "metadata": question}])
    first = autopilot(project)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Q wait(s) for a person's answer: `wvo-mcp inbox`" in first.stdout, first.stdout
    assert statuses(project) == {"Q": "blocked"}
    assert "MIT or Apache-2.0?" in ok(project, "inbox")
    assert "claimable again" in ok(project, "answer", "Q", "Apache-2.0")
    second = autopilot(project)
    assert second.returncode == 0, second.stderr[-3000:]
    assert statuses(project) == {"Q": "done"}, second.stdout
    assert git(project["repo"], "show", "wvo/Q:answer.txt").strip() == "Apache-2.0"
    with open_db(project["state"]) as db:
        attempts = db.execute("SELECT attempts FROM tasks WHERE id = 'Q'").fetchone()[0]
    assert attempts == 0  # asking is no failed attempt
