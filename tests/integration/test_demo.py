"""The README's main job: `wvo-mcp demo` finishes the example roadmap with no task done twice."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_demo_completes_the_example_roadmap_once_each(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    run = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "wvo_mcp",
            "--state-root",
            str(state),
            "demo",
            "--agents",
            "3",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "tasks done more than once: 0" in run.stdout
    with sqlite3.connect(state / "orchestrator.db") as db:
        statuses = dict(db.execute("select status, count(*) from tasks group by status"))
        done_events = db.execute(
            "select count(*), count(distinct task_id) from task_events where to_status = 'done'"
        ).fetchone()
        agents = {
            row[0] for row in db.execute("select actor from task_events where kind='claimed'")
        }
        # agent-2 dies holding its first task: the health monitor (or a claim) recovers it.
        recovered = db.execute(
            "select task_id, kind from task_events where kind in ('requeued', 'lease_expired')"
        ).fetchall()
        crashed = db.execute(
            "select task_id from task_events where actor = 'agent-2' and kind = 'claimed'"
        ).fetchall()
        finished_by = db.execute(
            "select actor from task_events where task_id = ? and to_status = 'done'", crashed[0]
        ).fetchall()
    assert statuses == {"done": 29}
    assert done_events == (29, 29)
    assert agents == {"agent-1", "agent-2", "agent-3"}
    assert len(crashed) == 1
    assert [task_id for task_id, _ in recovered] == [crashed[0][0]]
    assert finished_by[0][0] in {"agent-1", "agent-3"}
    assert "crashes holding" in run.stdout
    # The monitor's leader took the first backup of the run.
    assert list((state / "backups" / "db").glob("orchestrator-*.db"))


def test_demo_with_the_autopilot_from_a_fresh_clone(tmp_path: Path) -> None:
    """The README's way: `./scripts/demo --autopilot` in a fresh clone, with the default,
    relative state root (state/demo), which every worker, started in its own worktree, must
    still find. The clone's set-up step is swapped for a link to this test's environment
    (scripts/setup would install a new one from the network); that environment runs this
    tree's wvo_mcp."""
    clone = tmp_path / "wvo-mcp"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, capture_output=True)
    (clone / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (clone / "scripts" / "setup").write_text("#!/bin/sh\n# .venv is linked to the test's.\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WVO_")}
    run = subprocess.run(
        ["./scripts/demo", "--autopilot"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "summary: 29/29 tasks done" in run.stdout and "done more than once: 0" in run.stdout
    # The first task crashed once, whoever took it.
    assert "no result line" in run.stdout
    demo = clone / "state" / "demo" / "autopilot"
    # Every path handed to a worker was absolute: its runs are in the clone's state folder.
    assert f"{demo / 'project'}.wvo-worktrees" in run.stdout
    state = demo / "state"
    assert any((state / "runs").iterdir())
    with sqlite3.connect(state / "orchestrator.db") as db:
        workers = {r[0] for r in db.execute("select actor from task_events where kind='claimed'")}
        noted = db.execute("select count(*) from task_events where kind = 'commits'").fetchone()
        (limited,) = db.execute(
            "select id from tasks where metadata like '%rate_limit%'"
        ).fetchone()
        claimers = [
            r[0]
            for r in db.execute(
                "select actor from task_events where task_id = ? and kind = 'claimed' order by id",
                (limited,),
            )
        ]
    # The second is rate limited on claude only: if a claude worker took it first (which
    # slot is free first is a matter of timing), it failed over to codex.
    if claimers[0].startswith("claude"):
        assert "rate_limited" in run.stdout, run.stdout[-2000:]
        assert claimers[-1].startswith("codex"), claimers
    else:
        assert claimers == [claimers[0]] and claimers[0].startswith("codex"), claimers
    assert {w.split("-")[0] for w in workers} == {"claude", "codex"}
    assert noted[0] >= 29  # one task is returned once by the check, and submits again
    # Everything landed on main through the merge queue, the check returning one change.
    assert "merge queue onto main, checked with `sh check.sh`: 29 landed (29 landing" in run.stdout
    assert "1 returned to a worker" in run.stdout and "cost per landed change: $" in run.stdout
    log = subprocess.run(
        ["git", "log", "--first-parent", "--format=%s", "main"],
        cwd=demo / "project", capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert sum(s.startswith("Land ") for s in log.stdout.splitlines()) == 29
    assert "<<<<<<<" not in (demo / "project" / "notes.txt").read_text()
    # Every worker's repository went as its work landed: nothing in any was left unlanded.
    assert "kept," not in run.stdout, run.stdout[-3000:]
