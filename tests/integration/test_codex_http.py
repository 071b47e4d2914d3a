"""docs/http.md's Codex wiring, end to end: the real Codex CLI (`codex exec`) reaches
`wvo-mcp serve --http` as a streamable HTTP MCP server (`url` + `bearer_token_env_var`), its
model replaced by a scripted Responses API on 127.0.0.1 (as in
tests/autopilot/test_codex_worker.py). The token names the agent: Codex claims and finishes a
task as "codex-http" without passing an agent_id; without the token it claims nothing."""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.autopilot.test_codex_worker import (
    CODEX,
    MODEL,
    WorkerModel,
    _call,
    _message,
    serve_model,
)
from tests.conftest import wvo
from tests.http.conftest import events, http_server, task_row, token

pytestmark = pytest.mark.skipif(
    not CODEX.exists() or shutil.which("node") is None,
    reason="the Codex CLI is not installed (scripts/setup installs it with npm)",
)
AGENT = "codex-http"
TASK = "H1"
MOVES = ("claimed", "status")  # the task events that move it
CODEX_TIMEOUT_SECONDS = 120


class ClaimingModel(WorkerModel):
    """A model that claims a task through wvo-mcp, marks it done with the lease the claim
    handed it, and says so: one step per request, told apart by the tool outputs in the
    conversation so far."""

    def __init__(self) -> None:
        super().__init__()
        self.claims: list[dict[str, Any]] = []  # claim_task's answers, parsed

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.requests.append(body)
        if "claim_task" not in json.dumps(body.get("tools", [])):
            return _message("no wvo tools")  # a side request, or the server is unreachable
        outputs = {
            item.get("call_id"): item.get("output")
            for item in body.get("input", [])
            if item.get("type") == "function_call_output"
        }
        if not outputs:
            return _call("claim_task", {}, "mcp__wvo")
        if "call_claim_task" in outputs and "call_plan_update" not in outputs:
            claim = _tool_answer(outputs["call_claim_task"])
            with self.lock:
                self.claims.append(claim)
            if not claim.get("claimed"):
                return _message("nothing claimed")
            held = {"task_id": claim["task"]["id"], "lease_token": claim["lease_token"]}
            return _call("plan_update", {**held, "status": "done"}, "mcp__wvo")
        return _message("done")


def _tool_answer(output: Any) -> dict[str, Any]:
    """An MCP tool's structured answer from the function_call_output Codex sends back: a
    string, or a list of content items, holding the answer's JSON (an unparsable output is
    kept as text so the test's assertions show it)."""
    texts = [output] if isinstance(output, str) else [part.get("text", "") for part in output]
    for text in texts:
        # Codex puts "Wall time: …\nOutput:\n" before the tool's text.
        start = text.find("{") if isinstance(text, str) else -1
        try:
            found, _ = json.JSONDecoder().raw_decode(text, start)
        except (TypeError, ValueError):
            continue
        if isinstance(found, dict):
            return found
    return {"unparsed": output}


def codex_exec(
    workdir: Path, api_port: int, server_url: str, secret: str | None, *, required: bool = False
) -> subprocess.CompletedProcess[str]:
    """`codex exec` as the autopilot runs it (wvo_mcp/autopilot/worker_config.py), with wvo-mcp
    declared as docs/http.md says: a `url` and the variable holding the bearer token.
    `required`: a server Codex cannot start fails the run (else Codex goes on without it)."""
    stub = "model_providers.stub"
    command = [
        str(CODEX), "exec", "--json", "--ephemeral", "--skip-git-repo-check",
        "--cd", str(workdir), "--model", MODEL, "--sandbox", "workspace-write",
        "-c", 'approval_policy="never"',
        "-c", f"mcp_servers.wvo.url={json.dumps(server_url)}",
        "-c", 'mcp_servers.wvo.bearer_token_env_var="WVO_MCP_TOKEN"',
        *(["-c", "mcp_servers.wvo.required=true"] if required else []),
        # Codex cuts long tool outputs in the middle before the model sees them.
        "-c", "tool_output_token_limit=100000",
        "-c", 'model_provider="stub"',
        "-c", f'{stub}.name="stub"',
        "-c", f'{stub}.base_url="http://127.0.0.1:{api_port}/v1"',
        "-c", f'{stub}.env_key="STUB_API_KEY"',
        "-c", f'{stub}.wire_api="responses"',
        "-c", f"{stub}.request_max_retries=0",
        "-c", f"{stub}.stream_max_retries=0",
        "Claim the next task with claim_task and mark it done.",
    ]  # fmt: skip
    home = workdir.parent / "home"
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "CODEX_HOME": str(home / ".codex"),
        "STUB_API_KEY": "scripted",
        **({} if secret is None else {"WVO_MCP_TOKEN": secret}),
    }
    try:
        return subprocess.run(
            command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, capture_output=True,
            text=True, timeout=CODEX_TIMEOUT_SECONDS,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"codex exec did not finish: {exc.stdout!r} {exc.stderr!r}")


@pytest.fixture
def state_with_task(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    roadmap = tmp_path / "roadmap.yaml"
    roadmap.write_text(yaml.safe_dump({"version": 1, "tasks": [{"id": TASK, "title": "h"}]}))
    imported = wvo(state, "import", str(roadmap))
    assert imported.returncode == 0, imported.stderr
    return state


def test_codex_claims_and_finishes_a_task_over_http_as_its_token(
    state_with_task: Path, tmp_path: Path
) -> None:
    state = state_with_task
    secret = token(state, "agent", AGENT)
    workdir = tmp_path / "work"
    workdir.mkdir()
    model = ClaimingModel()
    api = serve_model(model)
    try:
        with http_server(state, WVO_TOOLS="worker", WVO_OTEL_ENABLED="0") as served:
            ran = codex_exec(workdir, api.server_address[1], served.url, secret)
    finally:
        api.shutdown()
        api.server_close()
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    # The claim named no agent: the server acted as the token's name.
    assert len(model.claims) == 1, model.claims
    (claim,) = model.claims
    assert claim.get("claimed") is True, claim
    assert claim["agent_id"] == AGENT, claim
    assert claim["task"]["id"] == TASK, claim
    # Codex reported both MCP calls as completed.
    calls = [
        json.loads(line)["item"]
        for line in ran.stdout.splitlines()
        if line.startswith("{") and '"item.completed"' in line and '"mcp_tool_call"' in line
    ]
    assert [(c["server"], c["tool"], c["status"]) for c in calls] == [
        ("wvo", "claim_task", "completed"),
        ("wvo", "plan_update", "completed"),
    ], ran.stdout[-3000:]
    assert task_row(state, TASK)["status"] == "done"
    moves = [e for e in events(state, TASK) if e["kind"] in MOVES]
    assert [(m["actor"], m["kind"], m["to_status"]) for m in moves] == [
        (AGENT, "claimed", "in_progress"),
        (AGENT, "status", "done"),
    ]


@pytest.mark.parametrize("secret", [None, "wvo_not-a-token"], ids=["no-token", "wrong-token"])
def test_codex_without_a_valid_token_claims_nothing(
    secret: str | None, state_with_task: Path, tmp_path: Path
) -> None:
    state = state_with_task
    token(state, "agent", AGENT)  # a valid token exists; Codex is not given it
    workdir = tmp_path / "work"
    workdir.mkdir()
    model = ClaimingModel()
    api = serve_model(model)
    try:
        with http_server(
            state, WVO_TOOLS="worker", WVO_OTEL_ENABLED="0", WVO_LOG_LEVEL="info"
        ) as served:
            ran = codex_exec(workdir, api.server_address[1], served.url, secret, required=True)
    finally:
        api.shutdown()
        api.server_close()
    # Read once the server has exited: every request it answered is logged by then.
    served_log = served.stderr.read_text()
    assert ran.returncode != 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    if secret is None:
        # Codex refuses to start the server without the variable, and says which.
        assert "Environment variable WVO_MCP_TOKEN" in ran.stderr, ran.stderr[-3000:]
        assert "POST /mcp" not in served_log, served_log
    else:
        assert '"POST /mcp HTTP/1.1" 401' in served_log, served_log
        assert '"POST /mcp HTTP/1.1" 200' not in served_log, served_log
    assert model.claims == [] and model.requests == [], model.requests
    assert task_row(state, TASK)["status"] == "pending"
    assert [e for e in events(state, TASK) if e["kind"] in MOVES] == []
