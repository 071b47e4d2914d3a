"""What a worker's run is charged, and how it ended, come from what its CLI said, never from
what the worker's own commands wrote (docs/security.md, "What a run is charged"); whatever
its CLI prints, the autopilot goes on; and every attempt's cost reaches its task and its
route, however the attempt ended.

Each test runs a real `wvo-mcp autopilot` whose workers are the fake CLI
(wvo_mcp/autopilot/fake.py) in their real sandbox, and reads the host's database."""

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.autopilot import test_codex_worker as codex_worker
from tests.autopilot.conftest import (
    autopilot,
    backlog,
    claude_providers,
    codex_providers,
    env,
    events,
    make_project,
)
from tests.conftest import ROOT, open_db
from tests.integration.test_claude_code import (
    CLAUDE,
    _events,
    _tool_results,
    _use,
    serve_model,
)
from tests.listening import serve_in_thread
from tests.unit.test_wire import REFERENCES
from wvo_mcp.autopilot.worker_process import LINE_BYTES
from wvo_mcp.rules import billing, learning
from wvo_mcp.sandbox import bwrap

pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(not bwrap.probe().usable, reason="bubblewrap cannot sandbox here"),
]
# What the CLI reports: far more than any forged line says.
USED = {"input_tokens": 850_000, "output_tokens": 50_000}
CHEAP = {"type": "result", "is_error": False, "result": "done", "total_cost_usd": 0,
         "usage": {"input_tokens": 1, "output_tokens": 1}}  # fmt: skip
REFUSED_KEY = {**CHEAP, "is_error": True, "api_error_status": 401, "result": "Invalid API key"}
LIMITED = {**CHEAP, "is_error": True, "api_error_status": 429, "result": "rate limit"}


def spent(state: Path) -> dict[str, tuple[int, int]]:
    """(input, output) tokens per table that charges them: the task's, the providers'
    (one window), the agents'."""
    with open_db(state) as db:
        return {
            table: tuple(db.execute(query).fetchone())
            for table, query in (
                ("task", "SELECT sum(input_tokens), sum(output_tokens) FROM task_usage"),
                ("provider", "SELECT sum(input_tokens), sum(output_tokens) FROM provider_usage "
                 "WHERE period LIKE '____-__-__'"),
                ("agent", "SELECT sum(input_tokens), sum(output_tokens) FROM agent_usage"),
            )
        }  # fmt: skip


def breakers(state: Path) -> dict[str, str]:
    with open_db(state) as db:
        return dict(db.execute("SELECT provider, state FROM provider_breakers").fetchall())


def summaries(project: dict[str, Path], task_id: str) -> list[str]:
    with open_db(project["state"]) as db:
        rows = db.execute("SELECT summary FROM checkpoints WHERE task_id = ?", (task_id,))
        return [r[0] for r in rows]


@pytest.mark.parametrize("inherited", [False, True], ids=["through-proc", "inherited-stdout"])
@pytest.mark.parametrize(
    ("forged", "mode"),
    [(CHEAP, "forge_output"), (REFUSED_KEY, "forge_output"), (LIMITED, "forge_output_fail_once")],
    ids=["cheap-success", "refused-key-after-success", "rate-limit-after-failure"],
)
def test_a_line_the_workers_commands_write_changes_no_charge_and_no_outcome(
    tmp_path: Path, forged: dict[str, Any], mode: str, inherited: bool
) -> None:
    project = make_project(tmp_path)
    metadata = {"fake": mode, "fake_forge_line": json.dumps(forged), "fake_usage": USED,
                "fake_forge_inherit": inherited}  # fmt: skip
    anyio.run(backlog, project, [{"id": "F", "title": "forges", "metadata": metadata}])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    said = {s for s in summaries(project, "F") if s.startswith("forger: ")}
    # Through /proc it cannot even open the CLI's output; inherited, its line is read and
    # judged as tampering.
    assert said == {"forger: opened" if inherited else "forger: refused: ENXIO"}, said
    runs = 2 if mode == "forge_output_fail_once" else 1  # it failed by itself once, then landed
    reported = USED["input_tokens"] * runs, USED["output_tokens"] * runs
    assert spent(project["state"]) == dict.fromkeys(("task", "provider", "agent"), reported)
    assert "open" not in breakers(project["state"]).values(), breakers(project["state"])
    reasons = [r for t, _, r in events(project, "status") if t == "F"]
    if mode == "forge_output_fail_once":  # a counted attempt, not a blameless rate limit
        assert any(r.startswith("worker ended (failure)") for r in reasons), reasons
        assert not any("rate_limited" in r for r in reasons), reasons
    assert "1 done" in ran.stdout, ran.stdout


def test_one_endless_line_leaves_the_watch_working(tmp_path: Path) -> None:
    """2 MiB and no newline, then silence: the worker is stopped as silent, its task goes
    back, and the next attempt lands."""
    project = make_project(tmp_path)
    text = project["providers"].read_text()
    project["providers"].write_text(text.replace("hang_seconds: 15", "hang_seconds: 3"))
    endless = {"fake": "longline_once"}
    anyio.run(backlog, project, [{"id": "L", "title": "prints forever", "metadata": endless}])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "L: silent; stopped" in ran.stdout, ran.stdout
    assert f"1 output line(s) over {LINE_BYTES} bytes dropped" in ran.stdout, ran.stdout
    assert any("hung: silent" in r for t, _, r in events(project, "status") if t == "L")
    assert "1 done" in ran.stdout, ran.stdout


def test_a_long_line_that_ends_is_dropped_and_the_run_goes_on(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    ended = {"fake": "longline", "fake_longline_end": True}
    anyio.run(backlog, project, [{"id": "E", "title": "one long line", "metadata": ended}])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert f"1 output line(s) over {LINE_BYTES} bytes dropped" in ran.stdout, ran.stdout
    assert "1 done" in ran.stdout, ran.stdout
    [log] = (project["state"] / "runs" / "E").glob("*.log")
    assert log.stat().st_size < LINE_BYTES  # the line was never kept


def test_ctrl_c_drains_whatever_a_worker_prints(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    anyio.run(backlog, project, [{"id": "C", "title": "prints", "metadata": {"fake": "longline"}}])
    pilot = subprocess.Popen(
        [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--grace", "1"],
        cwd=ROOT, env=env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert pilot.stdout is not None
    try:
        for line in pilot.stdout:  # until its worker started
            if " starts C " in line:
                break
        # It checkpoints, then prints its endless line: once the checkpoint is there, the
        # line is on its way.
        anyio.run(_until, lambda: bool(summaries(project, "C")))
        pilot.send_signal(signal.SIGINT)
        out, err = pilot.communicate(timeout=60)
    finally:
        pilot.kill()
    assert pilot.returncode == 0, err[-3000:]
    assert "released C" in out, out


async def _until(done: Callable[[], bool]) -> None:
    with anyio.fail_after(60):
        while not done():  # noqa: ASYNC110 (another process writes it: no event to wait on)
            await anyio.sleep(0.05)


def test_a_given_up_attempt_costs_its_task_and_its_route(tmp_path: Path) -> None:
    """Attempt 1 gives up (plan_update failed), attempt 2 lands: the task, the providers and
    the route statistics hold both runs' tokens, as the CLI reported them."""
    project = make_project(tmp_path)
    usage = {"input_tokens": 60_000, "output_tokens": 6_000}
    metadata = {"fake": "give_up_once", "fake_usage": usage}
    anyio.run(backlog, project, [{"id": "G", "title": "gives up", "metadata": metadata}])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "1 done" in ran.stdout, ran.stdout
    both = usage["input_tokens"] * 2, usage["output_tokens"] * 2
    assert spent(project["state"]) == dict.fromkeys(("task", "provider", "agent"), both)
    with open_db(project["state"]) as db:
        routes = db.execute(
            "SELECT provider, outcomes, attempts, failed, landed, tokens FROM route_outcomes"
        ).fetchall()
        [(cost,)] = db.execute("SELECT sum(cost) FROM task_usage").fetchall()
    run = usage["input_tokens"] + usage["output_tokens"]
    keep = learning.Policy().keep
    by_provider = {r[0]: r[1:] for r in routes}
    # Either both attempts ran on one route (the give-up's cost added to its outcome, then
    # faded by the landing's), or on two.
    if len(by_provider) == 1:
        [(outcomes, _, failed, landed, tokens)] = by_provider.values()
        assert (outcomes, landed) == (2, 1) and failed == pytest.approx(keep)
        assert tokens == pytest.approx(run * keep + run)
    else:
        assert sorted(round(r[-1]) for r in by_provider.values()) == [run, run], by_provider
    assert cost == pytest.approx(2 * (60 * 0.001 + 6 * 0.002))


# -- the meter: Claude Code's model traffic, counted on the trusted side --------------------


BIG = {"input_tokens": 300_000, "cache_read_input_tokens": 100_000, "output_tokens": 9_000}


class KillingModel:
    """A model that, with usage a forger would want unseen, checkpoints, then has the Bash
    tool end the CLI itself before it can print its result line: only the meter saw what
    the run used."""

    def __init__(self) -> None:
        self.reported = [0, 0]  # input (cached at its price) and output tokens it reported
        self.lock = threading.Lock()

    def reply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        if "mcp__wvo__checkpoint" not in {t.get("name") for t in body.get("tools", [])}:
            return [{"type": "text", "text": "ok"}]
        first = body["messages"][0]["content"]
        text = first if isinstance(first, str) else " ".join(b.get("text", "") for b in first)
        found = re.search(r"task_id '([^']+)', lease_token '([^']+)'", text)
        assert found is not None
        held = {"task_id": found.group(1), "lease_token": found.group(2)}
        if not _tool_results(body["messages"]):
            return [_use("mcp__wvo__checkpoint", {**held, "summary": "started"})]
        return [_use("Bash", {"command": "kill -9 $PPID", "description": "end it"})]

    def events(self, blocks: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
        """Its answers' streams, each with BIG usage, which it adds up as it reports it."""
        with self.lock:
            self.reported[0] += billing.anthropic_input(BIG)
            self.reported[1] += BIG["output_tokens"]
        for name, data in _events(blocks):
            if name == "message_start":
                data["message"]["usage"] = {**BIG, "output_tokens": 1}
            if name == "message_delta":
                data["usage"] = {"output_tokens": BIG["output_tokens"]}
            yield name, data


def claude_autopilot(
    tmp_path: Path, task_id: str, model: Any, events: Callable[..., Any]
) -> tuple[dict[str, Path], subprocess.CompletedProcess[str]]:
    """A real autopilot whose one worker is the real Claude Code, sandboxed, its model
    `model` (streamed by `events`) behind the run's meter, working task `task_id` once."""
    project = make_project(tmp_path)
    project["providers"].write_text(claude_providers(CLAUDE))
    anyio.run(backlog, project, [{"id": task_id, "title": "t", "max_attempts": 1}])
    api = serve_model(model, events)
    home = project["state"].parent / "home"
    home.mkdir()
    try:
        ran = autopilot(
            project, HOME=str(home), ANTHROPIC_API_KEY="scripted", DISABLE_TELEMETRY="1",
            ANTHROPIC_BASE_URL=f"http://127.0.0.1:{api.server_address[1]}",
            DISABLE_AUTOUPDATER="1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
            MCP_CONNECTION_NONBLOCKING="0",
        )  # fmt: skip
    finally:
        api.shutdown()
        api.server_close()
    assert ran.returncode == 0, ran.stderr[-3000:]
    return project, ran


@pytest.mark.skipif(not CLAUDE.exists(), reason="the Claude Code CLI is not installed")
def test_the_meter_charges_what_the_model_api_reported_when_the_cli_says_nothing(
    tmp_path: Path,
) -> None:
    model = KillingModel()
    project, ran = claude_autopilot(tmp_path, "K", model, model.events)
    assert "no result line" in ran.stdout, ran.stdout  # its CLI said nothing of its usage
    assert model.reported[0] >= 2 * 310_000, model.reported  # two answers at least
    reported = (model.reported[0], model.reported[1])
    assert spent(project["state"]) == dict.fromkeys(("task", "provider", "agent"), reported)


# A process the worker's Bash starts calls the model API itself, through its run's meter (its
# base URL and key are in its environment): three streams it cuts after their input is
# billed and five deltas, and a Message Batches job, whose answers carry no usage.
CHILD = r"""python3 - <<'PY'
import http.client, json, os, socket, struct, urllib.parse
base = urllib.parse.urlsplit(os.environ["ANTHROPIC_BASE_URL"])
head = {"content-type": "application/json", "x-api-key": os.environ.get("ANTHROPIC_API_KEY", ""),
        "anthropic-version": "2023-06-01"}
ask = {"model": "claude-sonnet-4-5", "max_tokens": 4000, "stream": True,
       "messages": [{"role": "user", "content": "child"}]}
for _ in range(3):
    c = http.client.HTTPConnection(base.hostname, base.port, timeout=60)
    c.request("POST", base.path + "/v1/messages?beta=true", json.dumps(ask), head)
    r = c.getresponse()
    seen = 0
    while seen < 5:
        seen += r.fp.readline().startswith(b'data: {"type": "content_block_delta"')
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.sock.close()  # a reset, before the answer says its output
c = http.client.HTTPConnection(base.hostname, base.port, timeout=60)
batch = {"requests": [{"custom_id": "a", "params": {**ask, "stream": False}}]}
c.request("POST", base.path + "/v1/messages/batches", json.dumps(batch), head)
print("batch", c.getresponse().status)
PY"""
CUT_INPUT = 40_000


class SpendingModel:
    """The worker's model has its Bash run CHILD, then ends. It bills as the API does: each
    answer's usage in full, and a cut stream its input and the deltas it wrote before it saw
    the connection go."""

    def __init__(self) -> None:
        self.billed = [0, 0]
        self.paths: list[str] = []
        self.lock = threading.Lock()

    def reply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        if body["messages"][0]["content"] == "child":
            return [{"type": "child"}]
        if "mcp__wvo__checkpoint" not in {t.get("name") for t in body.get("tools", [])}:
            return [{"type": "text", "text": "ok"}]
        if not _tool_results(body["messages"]):
            return [_use("Bash", {"command": CHILD, "description": "spend"})]
        return [{"type": "text", "text": "spent"}]

    def bill(self, tokens_in: int, tokens_out: int) -> None:
        with self.lock:
            self.billed[0] += tokens_in
            self.billed[1] += tokens_out

    def events(self, blocks: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
        if blocks != [{"type": "child"}]:
            self.bill(100, 10)  # as _events reports them
            yield from _events(blocks)
            return
        usage = {"input_tokens": CUT_INPUT, "output_tokens": 1}
        start = {"type": "message_start", "message": {
            "id": "msg_child", "type": "message", "role": "assistant", "content": [],
            "model": "claude-sonnet-4-5", "usage": usage}}  # fmt: skip
        written = 0
        try:
            yield "message_start", start
            delta = {"type": "text_delta", "text": "abcd"}
            for index in range(300):  # until a write fails: the client has gone
                yield "content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": delta}  # fmt: skip
                written += 1
                if index >= 5:
                    time.sleep(0.05)  # generating, slowly, as an API does
        finally:
            self.bill(CUT_INPUT, written)


@pytest.mark.skipif(not CLAUDE.exists(), reason="the Claude Code CLI is not installed")
def test_a_workers_child_cannot_spend_a_token_its_run_is_not_charged(tmp_path: Path) -> None:
    model = SpendingModel()
    project, _ = claude_autopilot(tmp_path, "S", model, model.events)
    billed_in, billed_out = model.billed
    assert billed_in >= 2 * CUT_INPUT, model.billed  # the child's streams were billed
    charged = spent(project["state"])
    for table, (tokens_in, tokens_out) in charged.items():
        assert tokens_in == billed_in, (table, charged, model.billed)
        assert tokens_out >= billed_out, (table, charged, model.billed)
    [log] = (project["state"] / "runs" / "S").glob("*.log")
    text = log.read_text()
    assert billed_in >= 3 * CUT_INPUT and "batch 403" in text, text[-3000:]
    assert "the meter refused: POST '/v1/messages/batches" in text, text[-3000:]


# -- the meter: Codex's model traffic, counted on the trusted side too (issue 56) ------------


class KillingCodexModel:
    """A Responses API whose every answer bills BIG, and whose first has Codex's shell end
    Codex itself before it can say its turn's usage: only the meter saw what the run used."""

    def __init__(self) -> None:
        self.answers = 0
        self.lock = threading.Lock()

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        if "checkpoint" not in json.dumps(body.get("tools", [])):
            return codex_worker._message("ok")
        return codex_worker._call("exec_command", {"cmd": "kill -9 $PPID"})

    def serve(self) -> Any:
        model = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                item = model.reply(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                with model.lock:
                    model.answers += 1
                usage = {"input_tokens": 300_000, "input_tokens_details": {"cached_tokens": 0},
                         "output_tokens": 9_000, "total_tokens": 309_000}  # fmt: skip
                response = {"id": "resp", "object": "response", "model": codex_worker.MODEL}
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for event in (
                    {"type": "response.created", "response": response},
                    {"type": "response.output_item.done", "output_index": 0, "item": item},
                    {"type": "response.completed", "response": {**response, "usage": usage}},
                ):
                    self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
                                     .encode())  # fmt: skip
                self.wfile.flush()

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve_in_thread(server)
        return server


def codex_autopilot(
    project: dict[str, Path], task: str, api: ThreadingHTTPServer
) -> subprocess.CompletedProcess[str]:
    """The autopilot's one Codex worker on `task`, its API `api` (a scripted model, shut
    down after)."""
    project["providers"].write_text(codex_providers(codex_worker.CODEX, codex_worker.MODEL))
    anyio.run(backlog, project, [{"id": task, "title": "t", "max_attempts": 1}])
    home = project["state"].parent / "home"
    (home / ".codex").mkdir(parents=True)
    try:
        url = f"http://127.0.0.1:{api.server_address[1]}/v1"
        return autopilot(project, HOME=str(home), OPENAI_API_KEY="scripted", OPENAI_BASE_URL=url)
    finally:
        api.shutdown()
        api.server_close()


@pytest.mark.skipif(not codex_worker.CODEX.exists(), reason="the Codex CLI is not installed")
def test_a_codex_run_is_charged_what_its_api_billed_when_the_cli_says_nothing(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path)
    model = KillingCodexModel()
    ran = codex_autopilot(project, "K", model.serve())
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "exit code 137" in ran.stdout, ran.stdout  # killed: Codex said nothing of its usage
    billed = (300_000 * model.answers, 9_000 * model.answers)
    assert spent(project["state"]) == dict.fromkeys(("task", "provider", "agent"), billed)


# -- a worker's child points its requests elsewhere (issue 69) ------------------------------

POINTED = 871_000  # input the API bills each of the child's requests: what it fetched or kept


def _asks(name: str, path: str) -> list[tuple[str, dict[str, Any]]]:
    """Each kind of reference in format `name` (tests/unit/test_wire.py), as a child asks
    it of `path` under its API's base URL, marked as the child's by its model."""
    return [(path, body | {"model": "child"}) for kind, body in REFERENCES.values() if kind == name]


# The child sends each, reads its answer's first line, and resets the connection.
ASKING = r"""python3 - <<'PY'
import http.client, json, os, socket, struct, urllib.parse
asks = json.loads(r'''ASKS''')
BASE
for path, body in asks:
    c = http.client.HTTPConnection(base.hostname, base.port, timeout=60)
    c.request("POST", base.path + path, json.dumps(body), {"content-type": "application/json",
              "x-api-key": "child", "anthropic-version": "2023-06-01"})
    c.getresponse().fp.readline()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.sock.close()
print("pointed", len(asks))
PY"""
# Claude Code's child: its base URL is in its environment.
CLAUDE_BASE = 'base = urllib.parse.urlsplit(os.environ["ANTHROPIC_BASE_URL"])'
# Codex's: its base URL is on Codex's command line (the autopilot's model provider).
CODEX_BASE = r"""def lines():
    pid = os.getpid()
    while pid > 1:
        yield open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
found = next(a for argv in lines() for a in argv
             if a.startswith(b"model_providers.") and b".base_url=" in a)
base = urllib.parse.urlsplit(json.loads(found.split(b"=", 1)[1]))"""


def asking(asks: list[tuple[str, dict[str, Any]]], base: str) -> str:
    return ASKING.replace("ASKS", json.dumps(asks)).replace("BASE", base)


class PointingModel:
    """The worker's model has its Bash run a child that asks each kind of Anthropic
    reference and cuts each answer, then ends. It bills as an API would: each answer of its
    own its usage; each of the child's, an early word of 1,000 input tokens as it starts,
    then POINTED input once the child has gone."""

    def __init__(self) -> None:
        self.asks = _asks("anthropic", "/v1/messages?beta=true")
        self.billed = [0, 0]
        self.cut = 0
        self.lock = threading.Lock()

    def reply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        if body.get("model") == "child":
            return [{"type": "child"}]
        if "mcp__wvo__checkpoint" not in {t.get("name") for t in body.get("tools", [])}:
            return [{"type": "text", "text": "ok"}]
        if not _tool_results(body["messages"]):
            command = asking(self.asks, CLAUDE_BASE)
            return [_use("Bash", {"command": command, "description": "point"})]
        return [{"type": "text", "text": "pointed"}]

    def events(self, blocks: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
        if blocks != [{"type": "child"}]:
            with self.lock:
                self.billed = [self.billed[0] + 100, self.billed[1] + 10]  # as _events says
            yield from _events(blocks)
            return
        start = {"type": "message_start", "message": {
            "id": "msg_child", "type": "message", "role": "assistant", "content": [],
            "model": "child", "usage": {"input_tokens": 1_000, "output_tokens": 1}}}  # fmt: skip
        try:
            yield "message_start", start
            for _ in range(300):  # until a write fails: the child has gone
                yield "ping", {"type": "ping"}
                time.sleep(0.05)
        finally:
            with self.lock:
                self.billed[0] += POINTED
                self.cut += 1


@pytest.mark.skipif(not CLAUDE.exists(), reason="the Claude Code CLI is not installed")
def test_a_workers_child_pointing_at_input_elsewhere_is_charged_what_was_billed(
    tmp_path: Path,
) -> None:
    """Claude Code's child asks the Messages API, through its run's meter, with each kind
    of reference (a URL, a file, a PDF, a container, MCP servers, server tools, a block or a
    field the meter does not know), and cuts each answer once it has started."""
    model = PointingModel()
    project, _ = claude_autopilot(tmp_path, "P", model, model.events)
    [log] = (project["state"] / "runs" / "P").glob("*.log")
    assert f"pointed {len(model.asks)}" in log.read_text(), log.read_text()[-3000:]
    assert model.cut == len(model.asks), model.cut  # each was cut, and billed
    billed_in, billed_out = model.billed
    charged = spent(project["state"])
    for table, (tokens_in, tokens_out) in charged.items():
        assert tokens_in >= billed_in, (table, charged, model.billed)
        assert tokens_out >= billed_out, (table, charged, model.billed)


class PointingCodexModel:
    """A Responses API whose first answer has Codex's shell run a child that asks each kind
    of Responses and Chat Completions reference and cuts each answer, then says it is done.
    Each answer of Codex's own bills its usage; each of the child's starts, holds until the
    child has gone, and bills POINTED input then."""

    def __init__(self) -> None:
        self.usage = {"input_tokens": 1_000, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": 20, "total_tokens": 1_020}  # fmt: skip
        self.asks = _asks("responses", "/responses") + _asks("chat", "/chat/completions")
        self.billed = [0, 0]
        self.cut = 0
        self.lock = threading.Lock()

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        if any(i.get("type") == "function_call_output" for i in body.get("input", [])):
            return codex_worker._message("pointed")
        command = asking(self.asks, CODEX_BASE)
        return codex_worker._call("exec_command", {"cmd": command, "yield_time_ms": 30_000})

    def serve(self) -> Any:
        model = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                if body.get("model") == "child":
                    self.hold(self.path.endswith("/chat/completions"))
                    return
                with model.lock:
                    model.billed = [model.billed[0] + 1_000, model.billed[1] + 20]
                response = {"id": "resp", "object": "response", "model": codex_worker.MODEL}
                for event in (
                    {"type": "response.created", "response": response},
                    {"type": "response.output_item.done", "output_index": 0,
                     "item": model.reply(body)},
                    {"type": "response.completed",
                     "response": {**response, "usage": model.usage}},
                ):  # fmt: skip
                    self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
                                     .encode())  # fmt: skip
                self.wfile.flush()

            def hold(self, chat: bool) -> None:
                """The answer's start, then a comment line at a time until the child has
                gone; billed then."""
                start = {"choices": [{"index": 0, "delta": {"role": "assistant"}}]} if chat else {
                    "type": "response.created", "response": {"id": "resp_child"}}  # fmt: skip
                try:
                    self.wfile.write(f"data: {json.dumps(start)}\n\n".encode())
                    for _ in range(300):
                        self.wfile.write(b": generating\n\n")
                        time.sleep(0.05)
                except OSError:
                    pass
                finally:
                    with model.lock:
                        model.billed[0] += POINTED
                        model.cut += 1

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve_in_thread(server)
        return server


@pytest.mark.skipif(not codex_worker.CODEX.exists(), reason="the Codex CLI is not installed")
def test_a_codex_workers_child_pointing_at_input_elsewhere_is_charged_what_was_billed(
    tmp_path: Path,
) -> None:
    """Codex's child finds its run's meter on Codex's command line and asks, through it, the
    Responses API (a file by URL or id, a PDF, an image by URL or id, a stored prompt, an
    item reference, server tools, `background`, a field the meter does not know) and Chat
    Completions (40 image URLs with no usage asked for, files, audio, web search), and cuts
    each answer once it has started."""
    project = make_project(tmp_path)
    model = PointingCodexModel()
    ran = codex_autopilot(project, "Q", model.serve())
    assert ran.returncode == 0, ran.stderr[-3000:]
    [log] = (project["state"] / "runs" / "Q").glob("*.log")
    assert f"pointed {len(model.asks)}" in log.read_text(), log.read_text()[-3000:]
    assert model.cut == len(model.asks), model.cut
    billed_in, billed_out = model.billed
    charged = spent(project["state"])
    for table, (tokens_in, tokens_out) in charged.items():
        assert tokens_in >= billed_in, (table, charged, model.billed)
        assert tokens_out >= billed_out, (table, charged, model.billed)
