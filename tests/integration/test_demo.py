"""The README's main job: `wvo-mcp demo` finishes the example roadmap with no task done twice."""

import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_demo_completes_the_example_roadmap_once_each(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    run = subprocess.run(
        [sys.executable, "-m", "wvo_mcp", "--state-root", str(state), "demo", "--agents", "3"],
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
    assert statuses == {"done": 29}
    assert done_events == (29, 29)
    assert agents == {"agent-1", "agent-2", "agent-3"}
