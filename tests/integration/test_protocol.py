"""MCP protocol faults met at wvo-mcp's edge (wvo_mcp/edge/protocol.py), on real server processes:
stdio spoken to with raw JSON lines, and `serve --http` with httpx, in both protocol
revisions. Each refusal has its exact JSON-RPC code and a short message saying what would
be accepted; a refused write changes nothing; the server logs no traceback."""

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PROTOCOL_VERSION_META_KEY,
    UNSUPPORTED_PROTOCOL_VERSION,
)

from tests.conftest import PROTOCOL_MODES, ROOT, fresh_env, open_db, server_params
from tests.http.conftest import MCP_HEADERS, HttpServer, http_server, token
from tests.security.fuzzing import RawServer, db_digest, log_tracebacks
from wvo_mcp.config import Settings
from wvo_mcp.edge import access
from wvo_mcp.edge.server import build_server
from wvo_mcp.edge.stdio import MAX_LINE_BYTES

pytestmark = pytest.mark.process

QUIET = {"WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0, "WVO_OTEL_ENABLED": 0}
MODERN = "2026-07-28"
LEGACY_VERSION = "2025-11-25"
BOTH = [LEGACY_VERSION, MODERN]
ENVELOPE = {
    PROTOCOL_VERSION_META_KEY: MODERN,
    CLIENT_CAPABILITIES_META_KEY: {},
    CLIENT_INFO_META_KEY: {"name": "protocol-test", "version": "1"},
}
SHORT = 300  # characters: a refusal's message is a sentence, not a dump
PROMPTS = ("approvals", "error_recovery", "planning", "work_loop", "writing_context")
ACCEPTED = ('"jsonrpc": "2.0"', '"method": string', '"id": string or integer')
SNEAKED = {"name": "task_create", "arguments": {"tasks": [{"id": "sneaked", "title": "s"}]}}


def in_mode(mode: str, params: dict[str, Any]) -> dict[str, Any]:
    """Request params as the revision sends them (2026-07-28: with the envelope)."""
    return {**params, "_meta": ENVELOPE} if mode == MODERN else params


def frame(mode: str, request_id: str, **fields: object) -> bytes:
    """A tools/call that would create a task, with `request_id` written as raw JSON text
    (Infinity is no Python literal); `fields` replace or (None) drop its members."""
    members = {
        "jsonrpc": "2.0",
        "id": "ID",
        "method": "tools/call",
        "params": in_mode(mode, SNEAKED),
    }
    members.update(fields)
    text = json.dumps({k: v for k, v in members.items() if v is not None})
    return text.replace('"ID"', request_id).encode()


# (case, frame, the id the answer carries, what its message says was wrong)
def malformed(mode: str) -> list[tuple[str, bytes, object, str]]:
    bad_id = '"id" must be a string or an integer'
    call = json.loads(frame(mode, "6"))
    return [
        ("no jsonrpc", frame(mode, "3", jsonrpc=None), 3, '"jsonrpc" is missing'),
        ("jsonrpc 1.0", frame(mode, "4", jsonrpc="1.0"), 4, '"jsonrpc" must be "2.0"'),
        ("no method", frame(mode, "5", method=None), 5, '"method" is missing'),
        ("method a number", frame(mode, "7", method=7), 7, '"method" must be a string'),
        ("a batch", json.dumps([call]).encode(), None, "batch"),
        ("an empty batch", b"[]", None, "batch"),
        ("a JSON string", b'"tools/call"', None, "a string was sent"),
        ("id 1.5", frame(mode, "1.5"), None, bad_id),
        ("id 1.0", frame(mode, "1.0"), None, bad_id),
        ("id null", frame(mode, "null"), None, bad_id),
        ("id an object", frame(mode, '{"a":1}'), None, bad_id),
        ("id a list", frame(mode, "[1]"), None, bad_id),
        ("id Infinity", frame(mode, "Infinity"), None, bad_id),
        ("id true", frame(mode, "true"), None, bad_id),
    ]


def assert_invalid_request(case: str, reply: dict[str, Any], request_id: object, said: str) -> None:
    assert "result" not in reply, (case, reply)
    assert reply["id"] == request_id, (case, reply)
    error = reply["error"]
    assert error["code"] == INVALID_REQUEST, (case, reply)
    assert len(error["message"]) < SHORT, (case, error["message"])
    assert said in error["message"], (case, error["message"])
    assert all(shape in error["message"] for shape in ACCEPTED), (case, error["message"])


def assert_short(error: dict[str, Any], code: int, *names: str) -> None:
    assert error["code"] == code, error
    assert len(error["message"]) < SHORT, error["message"]
    assert all(name in error["message"] for name in names), error["message"]


def tasks(state_root: Path) -> list[str]:
    with open_db(state_root) as db:
        return [row[0] for row in db.execute("SELECT id FROM tasks ORDER BY id")]


def digest(state_root: Path) -> dict[str, tuple[int, str]]:
    """Rows and a hash of every table."""
    with open_db(state_root) as db:
        return db_digest(db)


def no_traceback(stderr: Path) -> None:
    text = stderr.read_text("utf-8", "replace")
    assert not log_tracebacks(stderr) and "Traceback" not in text, text[-3000:]


# ---------------------------------------------------------------------------------- stdio


@contextmanager
def stdio(tmp_path: Path, mode: str | None) -> Iterator[RawServer]:
    """A real stdio server opened in `mode` (None: not opened), closed cleanly, with no
    traceback in its log."""
    log = tmp_path / "server.stderr"
    with log.open("wb") as stderr:
        server = RawServer(server_params(tmp_path / "state", **QUIET), stderr)
        try:
            if mode == "legacy":
                server.initialize()
            elif mode == MODERN:
                assert "result" in server.request("server/discover", in_mode(mode, {}))
            yield server
        finally:
            code = server.close()
    assert code == 0, log.read_text()[-3000:]
    no_traceback(log)


@pytest.mark.parametrize("mode", PROTOCOL_MODES)
def test_malformed_requests_are_invalid_requests_over_stdio(tmp_path: Path, mode: str) -> None:
    state_root = tmp_path / "state"
    with stdio(tmp_path, mode) as server:
        first = {"name": "task_create", "arguments": {"tasks": [{"id": "T1", "title": "t"}]}}
        created = server.request("tools/call", in_mode(mode, first))
        assert not created["result"].get("isError"), created
        before = digest(state_root)
        for case, line, request_id, said in malformed(mode):
            server.send(line)
            reply = server.wait_for(request_id)
            assert_invalid_request(case, reply, request_id, said)
        # A notification (no "id" at all) is still answered with nothing.
        server.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/nope"}).encode())
        assert "result" in server.request("tools/list", in_mode(mode, {}))
        assert server.replies == {}, server.replies
        assert digest(state_root) == before
    assert tasks(state_root) == ["T1"]


@pytest.mark.parametrize("mode", PROTOCOL_MODES)
def test_prompts_get_refusals_are_invalid_params_over_stdio(tmp_path: Path, mode: str) -> None:
    with stdio(tmp_path, mode) as server:
        listed = server.request("prompts/list", in_mode(mode, {}))["result"]["prompts"]
        assert sorted(p["name"] for p in listed) == sorted(PROMPTS)
        unknown = server.request("prompts/get", in_mode(mode, {"name": "no_such_prompt"}))
        assert_short(unknown["error"], INVALID_PARAMS, "'no_such_prompt'", *PROMPTS)
        extra = server.request(
            "prompts/get", in_mode(mode, {"name": "work_loop", "arguments": {"task": "T1"}})
        )
        assert_short(extra["error"], INVALID_PARAMS, "'task'", "task_id")
        focused = server.request(
            "prompts/get", in_mode(mode, {"name": "work_loop", "arguments": {"task_id": "T1"}})
        )
        assert "task T1" in focused["result"]["messages"][0]["content"]["text"]


def test_an_unsupported_version_names_both_and_the_client_falls_back(tmp_path: Path) -> None:
    """The first request, in a version not spoken, leaves the connection open to either
    revision: the handshake the answer offers then works."""
    with stdio(tmp_path, None) as server:
        asked = {**ENVELOPE, PROTOCOL_VERSION_META_KEY: "2099-01-01"}
        refused = server.request("tools/list", {"_meta": asked})["error"]
        assert_short(refused, UNSUPPORTED_PROTOCOL_VERSION, *BOTH)
        assert refused["data"] == {"supported": BOTH, "requested": "2099-01-01"}
        server.initialize()
        assert server.request("tools/list")["result"]["tools"]


def test_a_per_request_connection_names_what_it_still_takes(tmp_path: Path) -> None:
    """Once a 2026-07-28 request was served, the connection takes no handshake: the SDK's
    answer, naming only 2026-07-28, is then the true one."""
    with stdio(tmp_path, MODERN) as server:
        asked = {**ENVELOPE, PROTOCOL_VERSION_META_KEY: "2099-01-01"}
        refused = server.request("tools/list", {"_meta": asked})["error"]
        assert refused["code"] == UNSUPPORTED_PROTOCOL_VERSION
        assert refused["data"]["supported"] == [MODERN], refused


def capabilities(tmp_path: Path, mode: str) -> dict[str, Any]:
    (tmp_path / mode).mkdir()
    with stdio(tmp_path / mode, None) as server:
        if mode == "legacy":
            found: dict[str, Any] = server.initialize()["result"]["capabilities"]
        else:
            discovered = server.request("server/discover", in_mode(mode, {}))["result"]
            found = discovered["capabilities"]
            assert discovered["supportedVersions"] == [MODERN]
            listen = server.request("subscriptions/listen", in_mode(mode, {"notifications": {}}))
            assert listen["error"]["code"] == METHOD_NOT_FOUND, listen
        return found


def test_both_revisions_declare_the_same_capabilities(tmp_path: Path) -> None:
    """No list-changed notification is ever sent and no resource subscription served, and
    both revisions say so."""
    legacy, modern = capabilities(tmp_path, "legacy"), capabilities(tmp_path, MODERN)
    assert legacy == modern
    assert legacy["tools"] == {"listChanged": False}
    assert legacy["prompts"] == {"listChanged": False}
    assert legacy["resources"] == {"listChanged": False, "subscribe": False}


def _walk(schema: object) -> Iterator[dict[str, Any]]:
    if isinstance(schema, list):
        for item in schema:
            yield from _walk(item)
    elif isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from _walk(value)


@pytest.mark.parametrize("mode", PROTOCOL_MODES)
def test_every_listed_tool_has_a_title(tmp_path: Path, mode: str) -> None:
    with stdio(tmp_path, mode) as server:
        listed = server.request("tools/list", in_mode(mode, {}))["result"]["tools"]
    assert len(listed) == 18
    for tool in listed:
        assert 0 < len(tool["title"]) <= 30, tool["name"]
        assert tool["annotations"]["title"] == tool["title"], tool["name"]
        assert not [n for n in _walk(tool["inputSchema"]) if isinstance(n.get("title"), str)]


def test_every_tool_has_its_own_title_http_only_ones_too(tmp_path: Path) -> None:
    server = build_server(
        Settings(state_root=tmp_path / "unused-state", otel_enabled=False),
        http=access.HttpAccess(None),
    )

    async def listed() -> list[Any]:
        return list(await server.list_tools())

    found = anyio.run(listed)
    assert len(found) == 31
    titles = [tool.title for tool in found]
    assert all(titles) and len(set(titles)) == len(titles), titles


def test_lines_from_a_file_are_checked_alike(state_root: Path, tmp_path: Path) -> None:
    """stdin and stdout that are no pipes (a file, a terminal) pass the same checks."""
    initialize = {
        "protocolVersion": LEGACY_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "file", "version": "1"},
    }
    lines = [
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": initialize}),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        frame("legacy", "1.5").decode(),
        json.dumps([{"jsonrpc": "2.0", "id": 2, "method": "ping"}]),
        json.dumps({"jsonrpc": "2.0", "id": 3, "method": "prompts/get", "params": {"name": "x"}}),
        json.dumps({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": SNEAKED}),
    ]
    requests, answers = tmp_path / "requests.jsonl", tmp_path / "answers.jsonl"
    requests.write_text("".join(line + "\n" for line in lines))
    with requests.open("rb") as stdin, answers.open("wb") as stdout:
        done = subprocess.run(
            [sys.executable, "-P", "-m", "wvo_mcp", "serve"],
            cwd=ROOT,
            env=fresh_env({"WVO_STATE_ROOT": str(state_root), "PATH": "/usr/bin:/bin",
                           **{k: str(v) for k, v in QUIET.items()}}),
            stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, timeout=60,
        )  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stderr.decode(), done.stderr
    replies = [json.loads(line) for line in answers.read_text().splitlines()]
    by_id = {r["id"]: r for r in replies if r["id"] is not None}
    refused = [r for r in replies if r["id"] is None]
    assert [r["error"]["code"] for r in refused] == [INVALID_REQUEST, INVALID_REQUEST]
    assert '"id" must be' in refused[0]["error"]["message"]
    assert "batch" in refused[1]["error"]["message"]
    assert_short(by_id[3]["error"], INVALID_PARAMS, "'x'", "work_loop")
    # The one valid write ran, after the refused ones changed nothing.
    assert not by_id[4]["result"].get("isError")
    assert tasks(state_root) == ["sneaked"]


# ----------------------------------------------------------------------------------- HTTP


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HttpServer, str, Path]]:
    """One `serve --http` for this module, an agent's token for it, and its state folder."""
    state_root = tmp_path_factory.mktemp("http") / "state"
    state_root.mkdir()
    secret = token(state_root, "agent", "protocol-test")
    with http_server(state_root, **QUIET) as server:
        yield server, secret, state_root
    no_traceback(server.stderr)


def headers(mode: str, method: str, name: str | None = None) -> dict[str, str]:
    """What each revision's client sends along (2026-07-28: the routing headers too)."""
    found = {**MCP_HEADERS, "MCP-Protocol-Version": LEGACY_VERSION if mode == "legacy" else MODERN}
    if mode == MODERN:
        found["Mcp-Method"] = method
        if name is not None:
            found["Mcp-Name"] = name
    return found


def answer(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC message of a response, plain JSON or the SSE event carrying it."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
        assert len(data) == 1, response.text
        found: dict[str, Any] = json.loads(data[0])
        return found
    found = response.json()
    return found


@contextmanager
def client(server: HttpServer, secret: str | None) -> Iterator[httpx2.Client]:
    auth = {} if secret is None else {"Authorization": f"Bearer {secret}"}
    with closing(httpx2.Client(headers=auth, timeout=60)) as http:
        yield http


@pytest.mark.parametrize("mode", PROTOCOL_MODES)
def test_malformed_bodies_are_invalid_requests_over_http(
    served: tuple[HttpServer, str, Path], mode: str
) -> None:
    server, secret, state_root = served
    before = tasks(state_root)
    with client(server, secret) as http:
        for case, body, request_id, said in malformed(mode):
            sent = http.post(server.url, content=body, headers=headers(mode, "tools/call"))
            # The SDK answers a body it cannot take with 400; so does the check before it.
            assert sent.status_code == 400, (case, sent.status_code, sent.text)
            assert_invalid_request(case, sent.json(), request_id, said)
        notified = http.post(
            server.url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers=headers(mode, "notifications/initialized"),
        )
        assert (notified.status_code, notified.content) == (202, b"")
    assert tasks(state_root) == before
    assert "sneaked" not in before
    no_traceback(server.stderr)


def test_a_body_is_not_read_before_the_token_is_checked(
    served: tuple[HttpServer, str, Path],
) -> None:
    server, _, _ = served
    with client(server, None) as http:
        sent = http.post(server.url, content=b"[]", headers=headers("legacy", "ping"))
    assert sent.status_code == 401, sent.text


def test_an_oversized_body_is_413_before_it_is_checked(
    served: tuple[HttpServer, str, Path],
) -> None:
    """The check reads a body only as far as the SDK's limit, MAX_LINE_BYTES."""
    server, secret, _ = served
    with client(server, secret) as http:
        sent = http.post(
            server.url, content=b"[" * (MAX_LINE_BYTES + 1), headers=headers("legacy", "ping")
        )
    assert sent.status_code == 413, sent.text


@pytest.mark.parametrize("mode", PROTOCOL_MODES)
def test_prompts_get_refusals_are_invalid_params_over_http(
    served: tuple[HttpServer, str, Path], mode: str
) -> None:
    server, secret, _ = served
    with client(server, secret) as http:
        unknown = http.post(
            server.url,
            json={"jsonrpc": "2.0", "id": 1, "method": "prompts/get",
                  "params": in_mode(mode, {"name": "no_such_prompt"})},
            headers=headers(mode, "prompts/get", "no_such_prompt"),
        )  # fmt: skip
        assert_short(answer(unknown)["error"], INVALID_PARAMS, "'no_such_prompt'", *PROMPTS)
        extra = http.post(
            server.url,
            json={"jsonrpc": "2.0", "id": 2, "method": "prompts/get",
                  "params": in_mode(mode, {"name": "planning", "arguments": {"goal": "g"}})},
            headers=headers(mode, "prompts/get", "planning"),
        )  # fmt: skip
        assert_short(answer(extra)["error"], INVALID_PARAMS, "'goal'", "task_id")
    no_traceback(server.stderr)


def test_an_unsupported_version_names_both_over_http(
    served: tuple[HttpServer, str, Path],
) -> None:
    server, secret, _ = served
    asked = {**ENVELOPE, PROTOCOL_VERSION_META_KEY: "2099-01-01"}
    version = {"MCP-Protocol-Version": "2099-01-01", "Mcp-Method": "tools/list"}
    with client(server, secret) as http:
        request = http.post(
            server.url,
            json={"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {"_meta": asked}},
            headers={**MCP_HEADERS, **version},
        )
        notification = http.post(
            server.url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers={**MCP_HEADERS, **version, "Mcp-Method": "notifications/initialized"},
        )
    for sent, request_id in ((request, 9), (notification, None)):
        assert sent.status_code == 400, sent.text
        reply = sent.json()
        assert reply["id"] == request_id, reply
        assert_short(reply["error"], UNSUPPORTED_PROTOCOL_VERSION, *BOTH)
        assert reply["error"]["data"] == {"supported": BOTH, "requested": "2099-01-01"}


def test_both_revisions_declare_the_same_capabilities_over_http(
    served: tuple[HttpServer, str, Path],
) -> None:
    server, secret, _ = served
    initialize = {
        "protocolVersion": LEGACY_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "protocol-test", "version": "1"},
    }
    with client(server, secret) as http:
        legacy = http.post(
            server.url,
            json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": initialize},
            headers=MCP_HEADERS,
        )
        modern = http.post(
            server.url,
            json={"jsonrpc": "2.0", "id": 2, "method": "server/discover",
                  "params": in_mode(MODERN, {})},
            headers=headers(MODERN, "server/discover"),
        )  # fmt: skip
    declared = answer(legacy)["result"]["capabilities"]
    assert declared == answer(modern)["result"]["capabilities"]
    assert declared["resources"] == {"listChanged": False, "subscribe": False}
    # Stateless HTTP takes either revision on any request: discover names both, as the
    # unsupported-version error does.
    assert answer(modern)["result"]["supportedVersions"] == [LEGACY_VERSION, MODERN]
