"""`wvo-mcp serve --http`: a real server process, the SDK's streamable HTTP client (both
protocol revisions: tests/integration/test_protocol_revisions.py), bearer tokens from
`wvo-mcp tokens add`."""

import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests.certs import self_signed
from tests.conftest import HANG_SECONDS, POLL_DEADLINE_SECONDS, ROOT, wvo_process
from tests.http.conftest import (
    MCP_HEADERS,
    connect,
    events,
    free_port,
    http_server,
    initialize_body,
    spec,
    task_row,
    token,
)

pytestmark = [pytest.mark.anyio, pytest.mark.process]
PERSON_TOOLS = {"task_approve", "task_reject", "task_requeue", "task_cancel", "task_done"}


async def _awaiting_approval(agent, task_id: str = "T1") -> str:
    """A task claimed by `agent` and handed to a person: awaiting_approval."""
    await agent.call("task_create", tasks=[spec(task_id)])
    claim = await agent.call("claim_task", task_id=task_id)
    assert claim["claimed"], claim
    moved = await agent.call(
        "plan_update", task_id=task_id, status="awaiting_approval",
        lease_token=claim["lease_token"], reason="please look",
    )  # fmt: skip
    assert moved["status"] == "awaiting_approval"
    return claim["lease_token"]


async def test_a_person_token_approves_as_that_person(state_root: Path):
    agent_secret = token(state_root, "agent", "a1")
    person_secret = token(state_root, "person", "alice")
    with http_server(state_root) as server:
        async with connect(server, agent_secret) as agent:
            await _awaiting_approval(agent)
        async with connect(server, person_secret) as person:
            tools = {t.name for t in (await person.client.list_tools()).tools}
            assert tools >= PERSON_TOOLS
            assert "claim_task" not in tools and "plan_update" not in tools
            refused = await person.error("claim_task")
            assert "does not work tasks as an agent" in refused
            approved = await person.call("task_approve", task_id="T1", note="fine")
            assert approved["status"] == "in_progress"
    row = task_row(state_root, "T1")
    assert row["status"] == "in_progress" and row["assigned_to"] == "a1"
    decision = [e for e in events(state_root, "T1") if e["kind"] == "approved"]
    assert [e["actor"] for e in decision] == ["person:alice"]


async def test_a_person_token_skips_verification_on_record(state_root: Path):
    agent_secret = token(state_root, "agent", "a1")
    person_secret = token(state_root, "person", "bob")
    with http_server(state_root) as server:
        async with connect(server, agent_secret) as agent:
            await agent.call("task_create", tasks=[spec("T1", verify_command="exit 1")])
            assert (await agent.call("claim_task"))["claimed"]
        async with connect(server, person_secret) as person:
            done = await person.call("task_done", task_id="T1", skip_verify=True)
            assert done["status"] == "done"
    moves = [e for e in events(state_root, "T1") if e["to_status"] == "done"]
    assert [e["actor"] for e in moves] == ["person:bob"]


async def test_operator_sees_the_tokens_but_never_a_secret(state_root: Path):
    agent_secret = token(state_root, "agent", "a1")
    operator_secret = token(state_root, "operator", "ops-1")
    with http_server(state_root) as server:
        async with connect(server, agent_secret) as agent:
            assert "needs an operator token" in await agent.error("token_list")
        async with connect(server, operator_secret) as operator:
            tools = {t.name for t in (await operator.client.list_tools()).tools}
            assert "token_list" in tools and not tools & PERSON_TOOLS
            assert "a person's decision" in await operator.error("task_approve", task_id="T1")
            listed = await operator.call("token_list")
            assert {(t["role"], t["name"]) for t in listed["tokens"]} == {
                ("agent", "a1"),
                ("operator", "ops-1"),
            }
            text = str(listed)
            assert agent_secret not in text and operator_secret not in text
            plan = await operator.call("plan_next")
            assert plan["agent_id"] == "ops-1"


async def test_allowed_host_lets_a_proxy_name_through(state_root: Path):
    secret = token(state_root, "agent", "a1")
    with http_server(state_root, "--allowed-host", "mcp.example.com") as server:
        async with server.http(secret) as http:
            proxied = await http.post(
                server.url, content=initialize_body(),
                headers={**MCP_HEADERS, "Host": "mcp.example.com"},
            )  # fmt: skip
            assert proxied.status_code == 200
            other = await http.post(
                server.url, content=initialize_body(),
                headers={**MCP_HEADERS, "Host": "other.example.com"},
            )  # fmt: skip
            assert other.status_code == 421


async def test_the_health_monitor_runs_in_the_http_server(state_root: Path):
    secret = token(state_root, "agent", "a1")
    with http_server(state_root, WVO_AUTOPILOT_HEALTH_INTERVAL_MS=100) as server:
        async with connect(server, secret) as agent:
            deadline = anyio.current_time() + POLL_DEADLINE_SECONDS
            while not (report := await agent.call("health_report")).get("snapshot"):
                assert anyio.current_time() < deadline, report
                await anyio.sleep(0.05)
            # The tick's own record of who led it: the leader lease (two 100 ms intervals)
            # may have lapsed by the time this reads it, on a busy machine.
            assert report["snapshot"]["leader"], report


def _refused_at_start(state_root: Path, *flags: str) -> str:
    """`serve --http FLAGS` must exit 2 before serving; its message."""
    result = wvo_process(state_root, "serve", "--http", *flags)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stdout == ""
    return result.stderr


def test_off_loopback_without_auth_is_refused_at_start(state_root: Path):
    message = _refused_at_start(state_root, "--host", "0.0.0.0", "--no-auth", "--port", "1")
    assert "--no-auth is refused on --host 0.0.0.0" in message
    assert "127.0.0.1" in message and "tokens add" in message
    message = _refused_at_start(state_root, "--host", "10.1.2.3", "--no-auth")
    assert "--no-auth is refused" in message


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--port", "70000"), "must be 1-65535"),
        (("--certfile", "cert.pem"), "both --certfile and --keyfile"),
        (("--certfile", "/nonexistent.pem", "--keyfile", "/nonexistent.key"), "no such file"),
        (("--host", "0.0.0.0"), "also give --public-url"),
        (("--public-url", "ftp://x/mcp"), "must be an http:// or https:// URL"),
        (("--jwt-issuer", "https://id.example"), "needs both --jwt-issuer URL and --jwks-url"),
    ],
)
def test_bad_http_flags_say_what_is_accepted(state_root: Path, flags: tuple[str, ...], says: str):
    assert says in _refused_at_start(state_root, *flags)


# `ready` runs once the port listens, before uvicorn sets its own signal handlers.
STOPPED_AS_IT_LISTENS = """
import os, signal, sys
from wvo_mcp.config import Settings
from wvo_mcp.edge import http_server
settings = Settings.from_env(state_root=sys.argv[1])
options = http_server.Options(port=int(sys.argv[2]), no_auth=True)
http_server.serve(settings, options, lambda: os.kill(os.getpid(), signal.SIGINT))
print("returned")
"""


def test_a_stop_as_the_port_starts_listening_is_a_stop_like_any_other(state_root: Path):
    """A client that stops the server it has just reached gets the graceful stop: the server
    returns, it is not killed by the signal."""
    stopped = subprocess.run(
        [sys.executable, "-P", "-c", STOPPED_AS_IT_LISTENS, str(state_root), str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=HANG_SECONDS,
    )  # fmt: skip
    assert (stopped.returncode, stopped.stdout) == (0, "returned\n"), stopped.stderr[-2000:]


def test_http_flags_without_http_are_refused(state_root: Path):
    result = wvo_process(state_root, "serve", "--port", "8765")
    assert result.returncode == 2
    assert "--port: only for `wvo-mcp serve --http`" in result.stderr


async def test_no_auth_on_loopback_serves_agents_by_argument(state_root: Path):
    with http_server(state_root, "--no-auth") as server:
        async with connect(server, "ignored") as agent:
            tools = {t.name for t in (await agent.client.list_tools()).tools}
            assert not tools & PERSON_TOOLS
            assert (await agent.call("plan_next", agent_id="local-1"))["agent_id"] == "local-1"
            assert "needs a person token" in await agent.error("task_approve", task_id="T1")
            text = await agent.error("plan_next", agent_id="person:mallory")
            assert "reserved" in text


async def test_tls_with_a_certificate_and_key(state_root: Path, tmp_path: Path):
    certfile, keyfile = self_signed(tmp_path)
    secret = token(state_root, "agent", "a1")
    flags = ("--certfile", str(certfile), "--keyfile", str(keyfile))
    with http_server(state_root, *flags, cafile=certfile) as server:
        assert server.url.startswith("https://")
        async with connect(server, secret) as agent:
            assert (await agent.call("plan_next"))["agent_id"] == "a1"
        async with server.http() as http:
            refused = await http.post(server.url, content=initialize_body(), headers=MCP_HEADERS)
            assert refused.status_code == 401
            assert re.search(r'resource_metadata="https://127\.0\.0\.1:\d+/', refused.headers[
                "www-authenticate"])  # fmt: skip
        plain = server.url.replace("https://", "http://")
        async with server.http(secret) as http:
            with pytest.raises(Exception):  # noqa: B017 - plain HTTP to a TLS port fails somehow
                await http.post(plain, content=initialize_body(), headers=MCP_HEADERS)


async def test_a_person_token_tells_pauses_and_answers_as_that_person(state_root: Path):
    agent_secret = token(state_root, "agent", "a1")
    person_secret = token(state_root, "person", "alice")
    with http_server(state_root) as server:
        async with connect(server, agent_secret) as agent, connect(server, person_secret) as person:
            await agent.call("task_create", tasks=[spec("T1"), spec("T2")])
            claim = await agent.call("claim_task", task_id="T1")
            held = {"task_id": "T1", "lease_token": claim["lease_token"]}
            told = await person.call("task_tell", task_id="T1", message="use v2")
            assert told["tasks"] == ["T1"]
            beat = await agent.call("heartbeat", **held)
            assert [(n["text"], n["author"]) for n in beat["from_a_person"]] == [
                ("use v2", "person:alice")
            ]
            assert "from_a_person" not in await agent.call("heartbeat", **held)  # given once
            both = await person.error("task_pause", task_id="T1", everyone=True)
            assert "name exactly one of" in both and "Nothing was changed" in both
            paused = await person.call("task_pause", task_id="T2", reason="later")
            assert paused["paused"]
            assert "task T2" in (await agent.call("plan_next"))["paused"]
            await person.call("task_resume", task_id="T2")
            await agent.call("ask_person", question="which DB?", **held)
            [asked] = (await person.call("inbox"))["questions"]
            assert (asked["task_id"], asked["asked_by"]) == ("T1", "a1")
            answered = await person.call("task_answer", task_id="T1", answer="PostgreSQL")
            assert answered["status"] == "pending"
            redirected = await person.call("task_redirect", task_id="T2", description="smaller")
            assert "its next holder reads it" in redirected["message"]
            # An agent answers nobody's question, not even its own.
            refused = await agent.error("task_answer", task_id="T1", answer="me")
            assert "needs a person token" in refused
    actors = {(e["kind"], e["actor"]) for e in events(state_root, "T1")}
    assert {("told", "person:alice"), ("status", "person:alice")} <= actors
