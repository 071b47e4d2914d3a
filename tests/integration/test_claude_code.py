"""The real Claude Code CLI (pinned in tests/claude_code/, installed by scripts/setup) runs
the work loop through wvo-mcp, its model replaced by a scripted Messages API on 127.0.0.1:
plan_next, claim_task, then plan_update(done) with the lease token the claim returned; and a
board of tasks worked by the loop before issue 36 and by the one prescribed since, counting
the model's turns (scripts/bench/turns.py times the same runs)."""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, open_db, warm_runtime, wvo
from tests.listening import serve_in_thread

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
        if not offers_ours(body):
            return [{"type": "text", "text": "ok"}]  # a side request (a title, a summary)
        return self.step(_tool_results(body.get("messages", [])))

    def step(self, results: list[str]) -> list[dict[str, Any]]:
        """One task by the loop before issue 36: plan_next, claim_task, plan_update(done)."""
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


# The loops a model can work every ready task by. LOOK, the loop before issue 36: see the
# queue, claim, finish, three turns a task. CHAIN, the one prescribed since: claim_task once,
# then each plan_update(done, claim_next=true) finishes a task and claims the next, one turn.
LOOK, CHAIN = "look", "chain"
END = {"type": "text", "text": "Nothing is left."}


class LoopModel(ScriptedModel):
    """A model that works every ready task by `loop` (LOOK or CHAIN) until nothing is left."""

    def __init__(self, loop: str) -> None:
        super().__init__()
        self.loop = loop

    def step(self, results: list[str]) -> list[dict[str, Any]]:
        return [loop_step(self.loop, results)]


def loop_step(loop: str, results: list[str]) -> dict[str, Any]:
    """The next block of a model working by `loop`, from the tool results so far (pure)."""
    n = len(results)  # numbers the tool uses: Claude Code matches results to them by id
    if not results:
        return _use(*(("mcp__wvo__plan_next", {"limit": 1}) if loop == LOOK
                      else ("mcp__wvo__claim_task", {})), n=n)  # fmt: skip
    try:
        last = json.loads(results[-1])
    except ValueError:
        return {"type": "text", "text": f"A tool failed: {results[-1][:500]}"}
    if "tasks" in last:  # plan_next's answer
        return _use("mcp__wvo__claim_task", {}, n=n) if last["tasks"] else END
    if "previous_status" in last and loop == LOOK:  # finished: look again
        return _use("mcp__wvo__plan_next", {"limit": 1}, n=n)
    claim = last.get("next", last)  # plan_update's `next`, or claim_task's answer
    if not claim.get("claimed"):
        return END
    done = {"task_id": claim["task"]["id"], "lease_token": claim["lease_token"], "status": "done"}
    return _use("mcp__wvo__plan_update", {**done, "claim_next": True} if loop == CHAIN else done,
                n=n)  # fmt: skip


def offers_ours(body: dict[str, Any]) -> bool:
    """Whether a request is the agent's own turn (it offers our tools), not a side request."""
    return any(t.get("name") == "mcp__wvo__claim_task" for t in body.get("tools", []))


def _use(name: str, arguments: dict[str, Any], n: int | None = None) -> dict[str, Any]:
    if n is not None:
        return {"type": "tool_use", "id": f"toolu_{n:08d}", "name": name, "input": arguments}
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


Events = Callable[[list[dict[str, Any]]], Iterator[tuple[str, dict[str, Any]]]]


def serve_model(model: ScriptedModel, events: Events = _events) -> ThreadingHTTPServer:
    """`model` as a Messages API on 127.0.0.1; `events`: how each reply is streamed."""

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
            for event, data in events(blocks):
                self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serve_in_thread(server)
    return server


def claude_env(api: ThreadingHTTPServer, home: Path, path: str, **env: str) -> dict[str, str]:
    """Claude Code's environment for a run against the scripted model `api`: nothing of
    this machine's but PATH, no traffic but to the model, MCP servers up before the first
    request, and this test process's runtime folder: its servers are forked as a user's
    are, by a shared warm process that ends with the session (conftest.warm_runtime)."""
    return {
        "PATH": path,
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(warm_runtime()),
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{api.server_address[1]}",
        "ANTHROPIC_API_KEY": "scripted",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "MCP_CONNECTION_NONBLOCKING": "0",
        **env,
    }


def drive_claude(
    model: ScriptedModel, config: dict[str, Any], tmp_path: Path, prompt: str, **env: str
) -> None:
    """Claude Code, headless, with `config` as its only MCP servers and `model` as its
    model, run to a successful end with the wvo server connected."""
    api = serve_model(model)
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(config))
    home = tmp_path / "home"
    home.mkdir()
    try:
        run = subprocess.run(
            [str(CLAUDE), "-p", prompt, "--mcp-config", str(path), "--strict-mcp-config",
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


def run_claude(
    config: dict[str, Any], tmp_path: Path, **env: str
) -> tuple[ScriptedModel, dict[str, Any]]:
    """Claude Code, headless, with `config` as its only MCP servers and the scripted model;
    the model's requests, and the claim it was shown."""
    model = ScriptedModel()
    drive_claude(model, config, tmp_path, "Work the wvo-mcp loop: take one task and finish it.",
                 **env)  # fmt: skip

    # The model was offered the worker profile, and what it got back is our lean JSON.
    offered = {t["name"] for r in model.requests for t in r.get("tools", [])}
    ours = sorted(n.removeprefix("mcp__wvo__") for n in offered if n.startswith("mcp__wvo__"))
    assert ours == sorted(
        ["plan_next", "claim_task", "heartbeat", "checkpoint", "plan_update", "ask_person",
         "context_read", "context_write", "task_get"]
    )  # fmt: skip
    main = [r for r in model.requests if "mcp__wvo__claim_task" in str(r.get("tools"))]
    shown = _tool_results(main[-1]["messages"])
    assert len(shown) == 3 and not re.search(r'"[a-z_]+":null', "".join(shown))
    claim: dict[str, Any] = json.loads(shown[1])
    return model, claim


def worker_server(state_root: Path, **env: str) -> dict[str, Any]:
    """The .mcp.json entry of a stdio server for agent claude-1, worker profile."""
    return {
        "command": sys.executable,
        "args": ["-P", "-m", "wvo_mcp", "serve"],
        "env": {
            "WVO_STATE_ROOT": str(state_root),
            "WVO_AGENT_ID": "claude-1",
            "WVO_TOOLS": "worker",
            "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": "0",
            **env,
        },
    }


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
    _, claim = run_claude({"mcpServers": {"wvo": worker_server(state_root)}}, tmp_path)
    assert_done_by(state_root, claim["task"]["id"], "claude-1")


@pytest.mark.slow
def test_three_sessions_started_at_once_in_a_fresh_repository_all_connect(
    state_root: Path, tmp_path: Path
) -> None:
    """Three Claude Code sessions start at once on a fresh state folder, with the product's
    defaults (warm start on, no warm process yet) and Claude Code's own MCP_TIMEOUT, on a
    machine the rest of the suite keeps busy: each connects before its model's first turn
    and does a task."""
    imported = wvo(state_root, "import", str(ROOT / "state" / "roadmap.yaml"))
    assert imported.returncode == 0, imported.stderr
    claims: dict[str, dict[str, Any]] = {}
    failed: list[BaseException] = []

    def session(n: int) -> None:
        try:
            server = worker_server(state_root, WVO_AGENT_ID=f"claude-{n}")
            server["env"].pop("WVO_WARM_START", None)  # the product's default: on
            server["env"]["WVO_WARM_SHARED"] = "0"  # as no warm process listens yet
            folder = tmp_path / f"session-{n}"
            folder.mkdir()
            claims[f"claude-{n}"] = run_claude({"mcpServers": {"wvo": server}}, folder)[1]
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=session, args=(n,)) for n in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RUN_TIMEOUT_S + 30)
    try:
        assert not failed, failed[0]
        assert len({claim["task"]["id"] for claim in claims.values()}) == 3, claims
        for agent, claim in claims.items():
            assert_done_by(state_root, claim["task"]["id"], agent)
    finally:
        wvo(state_root, "stop")  # the warm process the first of them started


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


@dataclass(frozen=True)
class LoopRun:
    """One Claude Code run working a board: the model's own turns (requests offering our
    tools; side requests such as a title are not counted), what they sent, and the tools
    it called in order."""

    loop: str
    tasks: int
    turns: int
    sent_bytes: int  # the turns' request bodies: the context the model reads, re-sent
    calls: list[str]
    seconds: float  # Claude Code's start to its end, the scripted model answering at once


def chain_roadmap(tasks: int) -> str:
    """A roadmap of `tasks` tasks, each depending on the one before: only one is ever
    ready, so each claim must see what the move before it released."""
    lines = ["version: 1", "tasks:"]
    for n in range(1, tasks + 1):
        after = f"[T{n - 1:03d}]" if n > 1 else "[]"
        lines += [f"  - id: T{n:03d}", f'    title: "step {n}"', f"    depends_on: {after}"]
    return "\n".join(lines) + "\n"


def work_the_board(loop: str, tasks: int, root: Path) -> LoopRun:
    """Claude Code (worker profile, over stdio) works a chain of `tasks` tasks on a new
    state folder under `root` by `loop`, until nothing is left."""
    state = root / "state"
    roadmap = root / "chain.yaml"
    roadmap.write_text(chain_roadmap(tasks))
    imported = wvo(state, "import", str(roadmap))
    assert imported.returncode == 0, imported.stderr
    server = worker_server(state, WVO_OTEL_ENABLED="0")
    model = LoopModel(loop)
    started = time.monotonic()
    drive_claude(model, {"mcpServers": {"wvo": server}}, root, "Work every wvo-mcp task.")
    seconds = time.monotonic() - started
    turns = [r for r in model.requests if offers_ours(r)]
    calls = [
        block["name"].removeprefix("mcp__wvo__")
        for message in turns[-1]["messages"]
        if message.get("role") == "assistant" and isinstance(message.get("content"), list)
        for block in message["content"]
        if block.get("type") == "tool_use"
    ]
    sent = sum(len(json.dumps(r, separators=(",", ":"))) for r in turns)
    return LoopRun(loop, tasks, len(turns), sent, calls, seconds)


@pytest.mark.slow
@pytest.mark.parametrize("loop", [LOOK, CHAIN])
def test_claude_code_works_a_board_in_the_turns_its_loop_takes(loop: str, tmp_path: Path) -> None:
    """Four tasks in a chain. LOOK takes three turns a task, then a look at an empty queue
    and the final answer; CHAIN one claim, one turn a task (each plan_update finishing one
    task and claiming the next, which that move made ready), and the final answer."""
    tasks = 4
    run = work_the_board(loop, tasks, tmp_path)
    if loop == LOOK:
        assert run.calls == ["plan_next", "claim_task", "plan_update"] * tasks + ["plan_next"]
        assert run.turns == 3 * tasks + 2
    else:
        assert run.calls == ["claim_task"] + ["plan_update"] * tasks
        assert run.turns == tasks + 2
    for n in range(1, tasks + 1):
        assert_done_by(tmp_path / "state", f"T{n:03d}", "claude-1")
