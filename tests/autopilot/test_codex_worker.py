"""The autopilot runs the real Codex CLI (`codex exec`) as a worker, its model replaced by a
scripted Responses API on 127.0.0.1 (OPENAI_BASE_URL), reached only through the run's
meter: the model checkpoints through wvo-mcp, commits with Codex's shell tool in the
worktree, and finishes with plan_update(done); the run is charged what the API billed."""

import json
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.autopilot.conftest import autopilot, backlog, codex_providers, events, git
from tests.conftest import ROOT, open_db
from tests.listening import serve_in_thread

CODEX = ROOT / "tests" / "claude_code" / "node_modules" / ".bin" / "codex"
pytestmark = [
    pytest.mark.skipif(
        not CODEX.exists() or shutil.which("node") is None,
        reason="the Codex CLI is not installed (scripts/setup installs it with npm)",
    ),
    pytest.mark.anyio,
    pytest.mark.slow,
]
# Not in Codex's bundled model catalog: a known model would get our MCP tools deferred
# behind tool_search (tests/autopilot/samples/codex/README.md).
MODEL = "stub-model"


class WorkerModel:
    """A model working the task its prompt hands it, one step per request: each request
    carries the whole conversation, so the step is the number of tool outputs so far."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.requests.append(body)
        items = body.get("input", [])
        if "checkpoint" not in json.dumps(body.get("tools", [])):
            return _message("ok")  # a side request, without our tools
        text = json.dumps(items)
        found = re.search(r"task_id '([^']+)', lease_token '([^']+)'", text)
        assert found is not None, text[-2000:]
        task_id, token = found.groups()
        held = {"task_id": task_id, "lease_token": token}
        step = sum(1 for item in items if item.get("type") == "function_call_output")
        if step == 0:
            return _call("checkpoint", {**held, "summary": "started", "progress": 10}, "mcp__wvo")
        if step == 1:
            commit = (
                f"echo {task_id} > {task_id}.txt && git add -A && "
                f"git -c user.name=codex -c user.email=codex@localhost commit -qm {task_id}"
            )
            return _call("exec_command", {"cmd": commit})
        if step == 2:
            return _call("plan_update", {**held, "status": "needs_review"}, "mcp__wvo")
        return _message(f"{task_id} is done.")


def _call(name: str, arguments: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    call = {"type": "function_call", "id": f"fc_{name}", "call_id": f"call_{name}",
            "name": name, "arguments": json.dumps(arguments)}  # fmt: skip
    return call | ({"namespace": namespace} if namespace else {})


def _message(text: str) -> dict[str, Any]:
    return {"type": "message", "id": "msg_scripted", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}  # fmt: skip


def _events(item: dict[str, Any], number: int) -> Iterator[dict[str, Any]]:
    """The Responses API's stream for one reply of one output item."""
    response = {"id": f"resp_{number}", "object": "response", "model": MODEL}
    yield {"type": "response.created", "response": response}
    yield {"type": "response.output_item.done", "output_index": 0, "item": item}
    usage = {"input_tokens": 1000, "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": 1020}  # fmt: skip
    yield {"type": "response.completed", "response": {**response, "usage": usage}}


def _native_codex() -> Path:
    """The platform binary that bin/codex.js runs (from an @openai/codex-<platform> package)."""
    found = sorted(CODEX.resolve().parents[2].glob("codex-*/vendor/*/bin/codex"))
    assert found, "no native codex binary beside @openai/codex"
    return found[0]


def serve_model(model: WorkerModel) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            item = model.reply(body)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for event in _events(item, len(model.requests)):
                self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serve_in_thread(server)
    return server


async def test_the_autopilot_runs_codex_through_claim_checkpoint_and_done(
    project: dict[str, Path],
) -> None:
    model = WorkerModel()
    api = serve_model(model)
    project["providers"].write_text(codex_providers(CODEX, MODEL))
    await backlog(project, [{"id": "CX1", "title": "a task for Codex"}])
    home = project["state"].parent / "home"
    (home / ".codex").mkdir(parents=True)
    try:
        base = f"http://127.0.0.1:{api.server_address[1]}/v1"
        ran = autopilot(project, HOME=str(home), OPENAI_API_KEY="scripted", OPENAI_BASE_URL=base)
    finally:
        api.shutdown()
        api.server_close()
    log = project["state"] / "runs" / "CX1" / "1.log"
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "1 launched, 1 done" in ran.stdout, ran.stdout + log.read_text()[-3000:]
    # Codex was given the worker profile of our tools, as the namespace mcp__wvo.
    offered = {
        tool["name"]
        for request in model.requests
        for namespace in request.get("tools", [])
        if namespace.get("name") == "mcp__wvo"
        for tool in namespace.get("tools", [])
    }
    assert {"checkpoint", "plan_update"} <= offered
    assert "task_create" not in offered
    # The shell command ran in the sandbox and succeeded.
    shell = [
        item["output"]
        for item in model.requests[-1]["input"]
        if item.get("type") == "function_call_output" and item.get("call_id") == "call_exec_command"
    ]
    assert shell and "exited with code 0" in shell[0], shell
    with open_db(project["state"]) as db:
        moves = db.execute(
            "SELECT actor, kind, to_status FROM task_events WHERE task_id = 'CX1' "
            "AND kind IN ('claimed', 'status') ORDER BY id"
        ).fetchall()
        checkpoints = db.execute(
            "SELECT agent_id, summary FROM checkpoints WHERE task_id = 'CX1'"
        ).fetchall()
        used = db.execute(
            "SELECT sum(input_tokens) FROM provider_usage WHERE length(period) = 10"
        ).fetchone()[0]
    assert [tuple(m) for m in moves] == [
        ("codex-1", "claimed", "in_progress"),
        ("codex-1", "status", "needs_review"),
        ("autopilot", "status", "done"),
    ]
    assert [tuple(c) for c in checkpoints] == [("codex-1", "started")]
    assert git(project["repo"], "show", "wvo/CX1:CX1.txt").strip() == "CX1"
    assert [t for t, actor, _ in events(project, "commits")] == ["CX1"]
    # Charged what the API billed, counted by the run's meter: 1,000 in each answer.
    assert used == 1000 * len(model.requests), (used, len(model.requests))
