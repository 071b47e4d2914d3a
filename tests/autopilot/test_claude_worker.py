"""The autopilot runs the real Claude Code CLI as a worker, its model replaced by a scripted
Messages API on 127.0.0.1: the model checkpoints through wvo-mcp, commits with Claude
Code's Bash tool in the worktree, and finishes with plan_update(done)."""

import re
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.autopilot.conftest import autopilot, backlog, events, git
from tests.conftest import open_db
from tests.integration.test_claude_code import CLAUDE, _tool_results, _use, pytestmark, serve_model

pytestmark = [pytestmark, pytest.mark.anyio]  # skipped where the CLI is not installed


class WorkerModel:
    """A model working the task its prompt hands it, one step per request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def reply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        with self.lock:
            self.requests.append(body)
        if "mcp__wvo__checkpoint" not in {t.get("name") for t in body.get("tools", [])}:
            return [{"type": "text", "text": "ok"}]  # a side request (a title, a summary)
        first = body["messages"][0]["content"]
        text = first if isinstance(first, str) else " ".join(b.get("text", "") for b in first)
        found = re.search(r"task_id '([^']+)', lease_token '([^']+)'", text)
        assert found is not None, text[-2000:]
        task_id, token = found.groups()
        held = {"task_id": task_id, "lease_token": token}
        step = len(_tool_results(body["messages"]))
        if step == 0:
            return [_use("mcp__wvo__checkpoint", {**held, "summary": "started", "progress": 10})]
        if step == 1:
            commit = (
                f"echo {task_id} > {task_id}.txt && git add -A && "
                f"git -c user.name=claude -c user.email=claude@localhost commit -qm {task_id}"
            )
            return [_use("Bash", {"command": commit, "description": "commit the work"})]
        if step == 2:
            return [_use("mcp__wvo__plan_update", {**held, "status": "needs_review"})]
        return [{"type": "text", "text": f"{task_id} is done."}]


async def test_the_autopilot_runs_claude_code_through_claim_checkpoint_and_done(
    project: dict[str, Path],
) -> None:
    project["providers"].write_text(f"""version: 1
providers:
  - name: claude
    preference: 1
    tiers:
      - name: sonnet
        model: claude-sonnet-4-5
        complexity: [1, 10]
        input_cost_per_1k: 0.003
        output_cost_per_1k: 0.015
    worker:
      kind: claude
      executable: {CLAUDE}
      max_workers: 1
      hang_seconds: 120
""")
    await backlog(project, [{"id": "CC1", "title": "a task for Claude Code"}])
    model = WorkerModel()
    api = serve_model(model)  # type: ignore[arg-type]  # the same reply() as ScriptedModel
    home = project["state"].parent / "home"
    home.mkdir()
    try:
        ran = autopilot(
            project,
            HOME=str(home),
            ANTHROPIC_BASE_URL=f"http://127.0.0.1:{api.server_address[1]}",
            ANTHROPIC_API_KEY="scripted",
            DISABLE_TELEMETRY="1",
            DISABLE_AUTOUPDATER="1",
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
            MCP_CONNECTION_NONBLOCKING="0",
        )
    finally:
        api.shutdown()
        api.server_close()
    log = project["state"] / "runs" / "CC1" / "1.log"
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "1 launched, 1 done" in ran.stdout, ran.stdout + log.read_text()[-3000:]
    # Claude Code was given the worker profile of our tools, under the slot's identity.
    offered = {t["name"] for r in model.requests for t in r.get("tools", [])}
    assert {"mcp__wvo__checkpoint", "mcp__wvo__plan_update"} <= offered
    assert "mcp__wvo__task_create" not in offered
    with open_db(project["state"]) as db:
        moves = db.execute(
            "SELECT actor, kind, to_status FROM task_events WHERE task_id = 'CC1' "
            "AND kind IN ('claimed', 'status') ORDER BY id"
        ).fetchall()
        checkpoints = db.execute(
            "SELECT agent_id, summary FROM checkpoints WHERE task_id = 'CC1'"
        ).fetchall()
    assert [tuple(m) for m in moves] == [
        ("claude-1", "claimed", "in_progress"),
        ("claude-1", "status", "needs_review"),
        ("autopilot", "status", "done"),
    ]
    assert [tuple(c) for c in checkpoints] == [("claude-1", "started")]
    assert git(project["repo"], "show", "wvo/CC1:CC1.txt").strip() == "CC1"
    assert [t for t, actor, _ in events(project, "commits")] == ["CC1"]
    # The usage Claude Code reported (its result line) was charged to the provider.
    with open_db(project["state"]) as db:
        used = db.execute(
            "SELECT sum(input_tokens) FROM provider_usage WHERE length(period) = 10"
        ).fetchone()[0]
    assert used and used > 0
