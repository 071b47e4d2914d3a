"""The real Claude Code CLI (pinned in tests/claude_code/, installed by scripts/setup) runs
the work loop through wvo-mcp, its model replaced by a scripted Messages API on 127.0.0.1:
plan_next, claim_task, then plan_update(done) with the lease token the claim returned."""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, open_db, wvo

CLAUDE = ROOT / "tests" / "claude_code" / "node_modules" / ".bin" / "claude"
pytestmark = pytest.mark.skipif(
    not CLAUDE.exists() or shutil.which("node") is None,
    reason="the Claude Code CLI is not installed (scripts/setup installs it with npm)",
)
RUN_TIMEOUT_S = 180


class ScriptedModel:
    """Answers Claude Code's requests as a model would that works the loop: each request
    that offers our tools gets the next step, worked out from the tool results so far."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def reply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        with self.lock:
            self.requests.append(body)
        tools = {t.get("name") for t in body.get("tools", [])}
        if "mcp__wvo__claim_task" not in tools:
            return [{"type": "text", "text": "ok"}]  # a side request (a title, a summary)
        results = _tool_results(body.get("messages", []))
        if not results:
            return [_use("mcp__wvo__plan_next", {"limit": 3})]
        if len(results) == 1:
            return [_use("mcp__wvo__claim_task", {})]
        if len(results) == 2:
            claim = json.loads(results[1])
            return [
                _use(
                    "mcp__wvo__plan_update",
                    {
                        "task_id": claim["task"]["id"],
                        "lease_token": claim["lease_token"],
                        "status": "done",
                    },
                )
            ]
        return [{"type": "text", "text": "The task is done."}]


def _use(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{abs(hash(name)) % 10**8}", "name": name,
            "input": arguments}  # fmt: skip


def _tool_results(messages: list[dict[str, Any]]) -> list[str]:
    """The text of every tool result the model has been shown, in order."""
    found = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if block.get("type") == "tool_result":
                inner = block.get("content")
                if isinstance(inner, list):
                    inner = "".join(b.get("text", "") for b in inner if b.get("type") == "text")
                found.append(str(inner))
    return found


def _events(blocks: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The Messages API's stream for one reply."""
    yield "message_start", {
        "type": "message_start",
        "message": {
            "id": "msg_scripted", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5", "content": [], "stop_reason": None,
            "stop_sequence": None, "usage": {"input_tokens": 100, "output_tokens": 1},
        },
    }  # fmt: skip
    for index, block in enumerate(blocks):
        if block["type"] == "tool_use":
            start = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            start = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        yield "content_block_start", {
            "type": "content_block_start", "index": index, "content_block": start,
        }  # fmt: skip
        yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                      "delta": delta}  # fmt: skip
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    yield "message_delta", {
        "type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
        "usage": {"output_tokens": 10},
    }  # fmt: skip
    yield "message_stop", {"type": "message_stop"}


def serve_model(model: ScriptedModel) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.end_headers()

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            blocks = model.reply(body)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for event, data in _events(blocks):
                self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def claude_env(api: ThreadingHTTPServer, home: Path, path: str, **env: str) -> dict[str, str]:
    """Claude Code's environment for a run against the scripted model `api`: nothing of
    this machine's but PATH, no traffic but to the model, MCP servers up before the first
    request."""
    return {
        "PATH": path,
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{api.server_address[1]}",
        "ANTHROPIC_API_KEY": "scripted",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "MCP_CONNECTION_NONBLOCKING": "0",
        **env,
    }


def run_claude(
    config: dict[str, Any], tmp_path: Path, **env: str
) -> tuple[ScriptedModel, dict[str, Any]]:
    """Claude Code, headless, with `config` as its only MCP servers and the scripted model;
    the model's requests, and the claim it was shown."""
    model = ScriptedModel()
    api = serve_model(model)
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(config))
    home = tmp_path / "home"
    home.mkdir()
    try:
        run = subprocess.run(
            [str(CLAUDE), "-p", "Work the wvo-mcp loop: take one task and finish it.",
             "--mcp-config", str(path), "--strict-mcp-config",
             "--allowedTools", "mcp__wvo__*", "--output-format", "stream-json", "--verbose"],
            cwd=ROOT,
            env=claude_env(api, home, os.environ.get("PATH", "/usr/bin:/bin"), **env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )  # fmt: skip
    finally:
        api.shutdown()
        api.server_close()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines[-1]["type"] == "result" and lines[-1]["subtype"] == "success", lines[-1]
    # A run succeeds without a server that failed to connect; only its init line says so.
    init = next(line for line in lines if line.get("subtype") == "init")
    assert init["mcp_servers"] == [{"name": "wvo", "status": "connected"}], init["mcp_servers"]

    # The model was offered the worker profile, and what it got back is our lean JSON.
    offered = {t["name"] for r in model.requests for t in r.get("tools", [])}
    ours = sorted(n.removeprefix("mcp__wvo__") for n in offered if n.startswith("mcp__wvo__"))
    assert ours == sorted(
        ["plan_next", "claim_task", "heartbeat", "checkpoint", "plan_update",
         "context_read", "context_write", "task_get"]
    )  # fmt: skip
    main = [r for r in model.requests if "mcp__wvo__claim_task" in str(r.get("tools"))]
    shown = _tool_results(main[-1]["messages"])
    assert len(shown) == 3 and not re.search(r'"[a-z_]+":null', "".join(shown))
    claim: dict[str, Any] = json.loads(shown[1])
    return model, claim


def assert_done_by(state_root: Path, task_id: str, agent: str) -> None:
    """The task the model claimed is done, by `agent`, exactly once."""
    with open_db(state_root) as db:
        status = db.execute("SELECT status FROM tasks WHERE id = ?", (task_id,))
        assert status.fetchone()[0] == "done"
        events = db.execute(
            "SELECT actor, kind, to_status FROM task_events WHERE task_id = ? AND kind != "
            "'created' ORDER BY id",
            (task_id,),
        ).fetchall()
    assert [tuple(e) for e in events] == [
        (agent, "claimed", "in_progress"),
        (agent, "status", "done"),
    ]


@pytest.mark.slow
def test_claude_code_works_the_loop(state_root: Path, tmp_path: Path) -> None:
    imported = wvo(state_root, "import", str(ROOT / "state" / "roadmap.yaml"))
    assert imported.returncode == 0, imported.stderr
    server = {
        "command": sys.executable,
        "args": ["-P", "-m", "wvo_mcp", "serve"],
        "env": {
            "WVO_STATE_ROOT": str(state_root),
            "WVO_AGENT_ID": "claude-1",
            "WVO_TOOLS": "worker",
            "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": "0",
        },
    }
    _, claim = run_claude({"mcpServers": {"wvo": server}}, tmp_path)
    assert_done_by(state_root, claim["task"]["id"], "claude-1")


@pytest.mark.slow
def test_claude_code_works_the_loop_over_http_with_a_bearer_token(
    state_root: Path, tmp_path: Path
) -> None:
    """The wiring docs/http.md shows: an `http` server in .mcp.json whose Authorization
    header takes the token from the environment (`${WVO_MCP_TOKEN}`)."""
    from tests.http.conftest import http_server, token

    imported = wvo(state_root, "import", str(ROOT / "state" / "roadmap.yaml"))
    assert imported.returncode == 0, imported.stderr
    secret = token(state_root, "agent", "claude-http")
    # INFO: the access log shows what the CLI sent.
    env = {"WVO_TOOLS": "worker", "WVO_OTEL_ENABLED": "0", "WVO_LOG_LEVEL": "info"}
    with http_server(state_root, **env) as served:
        config = {
            "mcpServers": {
                "wvo": {
                    "type": "http",
                    "url": served.url,
                    "headers": {"Authorization": "Bearer ${WVO_MCP_TOKEN}"},
                }
            }
        }
        _, claim = run_claude(config, tmp_path, WVO_MCP_TOKEN=secret)
    # The agent is who its token says, though the model never named it.
    assert claim["agent_id"] == "claude-http"
    assert_done_by(state_root, claim["task"]["id"], "claude-http")
    # The CLI opened its GET stream, got 405 (docs/http.md) and carried on over POST.
    log = served.stderr.read_text()
    assert '"GET /mcp HTTP/1.1" 405' in log and '"POST /mcp HTTP/1.1" 200' in log, log
    assert " 503" not in log, log
