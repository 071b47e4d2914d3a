"""The autopilot runs the real Claude Code CLI as a worker, its model replaced by a scripted
Messages API on 127.0.0.1: the model checkpoints through wvo-mcp, commits with Claude
Code's Bash tool in the worktree, and finishes with plan_update(done)."""

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.autopilot.conftest import autopilot, backlog, claude_providers, events, git
from tests.conftest import open_db
from tests.integration.test_claude_code import CLAUDE, _tool_results, _use, pytestmark, serve_model

pytestmark = [pytestmark, pytest.mark.anyio, pytest.mark.slow]  # skipped without the CLI


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
    project["providers"].write_text(claude_providers(CLAUDE))
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


class ResolvingModel:
    """Claude Code's model for a task whose first submission conflicts with work another
    worker landed meanwhile: it commits shared.txt (once the other task is done, so the
    conflict is certain), and, sent back with the conflict as its checkpoint, brings the
    target in as the checkpoint says, keeps both sides, commits and submits again."""

    def __init__(self, state: Path, other: str) -> None:
        self.state, self.other = state, other
        self.requests: list[dict[str, Any]] = []
        self.prompts: list[str] = []

    def _other_done(self) -> None:
        deadline = time.monotonic() + 120
        while True:  # the scripted model waits on the database: no event to wait on
            with open_db(self.state) as db:
                row = db.execute("SELECT status FROM tasks WHERE id = ?", (self.other,)).fetchone()
            if row[0] == "done":
                return
            assert time.monotonic() < deadline, f"{self.other} never landed"
            time.sleep(0.1)

    def reply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        self.requests.append(body)
        if "mcp__wvo__checkpoint" not in {t.get("name") for t in body.get("tools", [])}:
            return [{"type": "text", "text": "ok"}]
        first = body["messages"][0]["content"]
        text = first if isinstance(first, str) else " ".join(b.get("text", "") for b in first)
        found = re.search(r"task_id '([^']+)', lease_token '([^']+)'", text)
        assert found is not None, text[-2000:]
        held = {"task_id": found.group(1), "lease_token": found.group(2)}
        onto = re.search(r"in your repository as branch '([^']+)'", text)
        step = len(_tool_results(body["messages"]))
        commit = "git -c user.name=claude -c user.email=claude@localhost commit -qm"
        if onto is None:  # the first attempt
            if step == 0:
                self.prompts.append(text)
                self._other_done()
                work = f"echo 'claude was here' >> shared.txt && git add -A && {commit} CR1"
                return [_use("Bash", {"command": work, "description": "commit the work"})]
        elif step == 0:
            self.prompts.append(text)
            # What the checkpoint said: merge the target, keep both sides of each hunk.
            resolve = (
                f"git merge -q {onto.group(1)} >/dev/null 2>&1; "
                "grep -v -e '^<<<<<<<' -e '^=======' -e '^>>>>>>>' shared.txt > kept.txt; "
                f"mv kept.txt shared.txt && git add -A && {commit} 'CR1: both sides'"
            )
            return [_use("Bash", {"command": resolve, "description": "resolve the conflict"})]
        if step == 1:
            return [_use("mcp__wvo__plan_update", {**held, "status": "needs_review"})]
        return [{"type": "text", "text": "submitted."}]


async def test_claude_code_resolves_a_returned_conflict_from_its_checkpoint_and_lands(
    project: dict[str, Path],
) -> None:
    # alpha's fake takes the easy task, Claude Code the hard one: both append to shared.txt.
    fake = re.search(r"executable: (\S+)", project["providers"].read_text())
    assert fake is not None
    project["providers"].write_text(f"""version: 1
providers:
  - name: alpha
    preference: 1
    tiers:
      - {{name: all, model: alpha-model, complexity: [1, 5], input_cost_per_1k: 0.001,
         output_cost_per_1k: 0.002}}
    worker: {{kind: claude, executable: {fake.group(1)}, max_workers: 1, hang_seconds: 120}}
  - name: claude
    preference: 2
    tiers:
      - {{name: sonnet, model: claude-sonnet-4-5, complexity: [6, 10],
         input_cost_per_1k: 0.003, output_cost_per_1k: 0.015}}
    worker: {{kind: claude, executable: {CLAUDE}, max_workers: 1, hang_seconds: 120}}
""")
    repo = project["repo"]
    git(repo, "branch", "integration")
    await backlog(
        project,
        [
            {"id": "FA1", "title": "the fake's", "complexity": 2,
             "metadata": {"fake_shared": "shared.txt"}},
            {"id": "CR1", "title": "Claude Code's", "complexity": 8},
        ],
    )  # fmt: skip
    model = ResolvingModel(project["state"], "FA1")
    api = serve_model(model)  # type: ignore[arg-type]
    home = project["state"].parent / "home"
    home.mkdir()
    try:
        ran = autopilot(
            project, "--merge", "merge", "--onto", "integration",
            HOME=str(home),
            ANTHROPIC_BASE_URL=f"http://127.0.0.1:{api.server_address[1]}",
            ANTHROPIC_API_KEY="scripted",
            DISABLE_TELEMETRY="1",
            DISABLE_AUTOUPDATER="1",
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
            MCP_CONNECTION_NONBLOCKING="0",
        )  # fmt: skip
    finally:
        api.shutdown()
        api.server_close()
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    with open_db(project["state"]) as db:
        status = dict(db.execute("SELECT id, status FROM tasks").fetchall())
        entries = db.execute(
            "SELECT state FROM landing_entries WHERE task_id = 'CR1' ORDER BY id"
        ).fetchall()
    assert status == {"FA1": "done", "CR1": "done"}, ran.stdout
    assert [e[0] for e in entries] == ["returned", "landed"], ran.stdout
    # Its second run was handed the conflict: the file, the hunks, the branch to bring in.
    assert len(model.prompts) == 2, ran.stdout
    returned = model.prompts[1]
    assert "conflicts in shared.txt" in returned and "<<<<<<<" in returned
    assert "claude was here" in returned and "FA1 by" in returned
    # And it landed with both sides, on the target, once.
    lines = git(repo, "show", "integration:shared.txt")
    assert "claude was here" in lines and "FA1 by" in lines and "<<<<<<<" not in lines
    subjects = git(repo, "log", "--first-parent", "--format=%s", "integration").splitlines()
    assert sum(s.startswith("Land CR1 ") for s in subjects) == 1, subjects
