"""What a sandboxed command or a worker prints now reaches people: sandbox and verification
output tails are stored (run_outputs) and shown on the dashboard, and an autopilot worker's
latest lines are shown as the task's live log. A command that prints markup, control
characters and a flood of output must leave a bounded row, escaped text, and nothing else
changed."""

import json
from pathlib import Path

import anyio
import pytest

from tests.conftest import open_db
from tests.http.conftest import connect, http_server, spec, token
from tests.integration.test_git_checkpoints import make_repo
from wvo_mcp.edge.dashboard import detail
from wvo_mcp.services.leases import OUTPUT_KEPT

pytestmark = pytest.mark.anyio
UNTOUCHED = ("tasks", "checkpoints", "agents", "api_tokens")
MARKUP = "<script>window.pwned=1</script><img src=x onerror=alert(1)>"
# Markup (written as octal escapes, so the command line itself holds none), an escape
# sequence, a NUL, 200 KB, then the markup again: the tail keeps the end.
PRINTED = MARKUP.replace("<", "\\074").replace(">", "\\076")
HOSTILE = (
    f"printf '{PRINTED}\\033[2J\\000'; head -c 200000 /dev/zero | tr '\\000' A; printf '{PRINTED}'"
)


def untouched(state_root: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the tables a sandbox run must not touch (a token's last use aside)."""
    with open_db(state_root) as db:
        found = {t: [tuple(r) for r in db.execute(f"SELECT * FROM {t}")] for t in UNTOUCHED}
        found["api_tokens"] = [r[:6] + r[7:] for r in found["api_tokens"]]  # not last_used_at
        return found


async def test_a_flooding_command_leaves_a_bounded_escaped_tail_and_nothing_else(
    state_root: Path, tmp_path: Path
):
    repo = make_repo(tmp_path / "repo")
    person = token(state_root, "person", "ada")
    agent_secret = token(state_root, "agent", "claude-1")
    with http_server(state_root, "--dashboard", WVO_WORKSPACE_ROOT=repo) as server:
        async with connect(server, agent_secret) as agent, server.http(person) as http:
            await agent.call("task_create", tasks=[spec("T1")])
            lease = (await agent.call("claim_task", task_id="T1"))["lease_token"]
            before = untouched(state_root)
            ran = await agent.call(
                "sandbox_run", command=["sh", "-c", HOSTILE], task_id="T1", lease_token=lease
            )
            assert ran["exit_code"] == 0, ran
            after = untouched(state_root)
            answer = await http.get(f"{server.base}/dashboard/api/tasks/T1")
            seen = await agent.call("task_get", task_id="T1")
    assert after == before  # the run is recorded as an event and its tails, nothing more
    with open_db(state_root) as db:
        kept = db.execute("SELECT stdout, stderr FROM run_outputs").fetchall()
    [(stdout, stderr)] = [tuple(r) for r in kept]
    assert len(stdout) <= OUTPUT_KEPT + len("[...]\n") and stdout.endswith(MARKUP), stdout[-200:]
    assert stderr == ""
    html = answer.json()["html"]
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html
    assert MARKUP not in json.dumps(seen)  # agents read back the summary alone


def test_a_workers_hostile_lines_stay_text_in_the_live_log():
    log = detail.LiveLog(f"alpha-1{MARKUP}", f"h:1:{MARKUP}", [MARKUP, "\x1b[2J\x00"])
    html = detail._live_log(log)
    assert "<script" not in html and "<img" not in html
    assert html.count("&lt;script&gt;") == 4  # the agent (twice), the run, the line


@pytest.mark.process
def test_a_workers_words_reach_the_persons_terminal_as_text(tmp_path: Path) -> None:
    """A worker checkpoints and fails with escape sequences and a forged line: the
    autopilot's lines (`released …: worker ended (failure): …`) and the run's log hold them
    as text, on the line they belong to."""
    from tests.autopilot.conftest import autopilot, backlog, make_project
    from tests.unit.test_terminal_text import CONTROL, HOSTILE

    project = make_project(tmp_path)
    metadata = {"fake": "said", "fake_said": HOSTILE}
    task = {"id": "T1", "title": "says", "max_attempts": 1, "metadata": metadata}
    anyio.run(backlog, project, [task])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "released T1: worker ended (failure): tests fail" in ran.stdout, ran.stdout
    [log] = (project["state"] / "runs" / "T1").glob("*.log")
    for text in (ran.stdout, ran.stderr, log.read_text()):
        assert not [c for c in text if c in CONTROL and c != "\n"], repr(text[-3000:])
    lines = (ran.stdout + ran.stderr).splitlines()
    assert not [line for line in lines if line.startswith("12:00:00 T1 landed")], lines
