"""Hostile input never hurts the server: property-based tool calls from every tool's real
inputSchema, and malformed JSON-RPC frames over a raw pipe. One real stdio server process
per test; the generator and the checks live in tests/security/fuzzing.py (shared with
scripts/bench/fuzz.py, which runs 10,000+ calls).

Why the calls are drawn inside the test body: `@given` wraps an inner function that closes
over a server started once for the test, so there is no function-scoped fixture for
hypothesis to complain about, no event loop to bridge (the client is a plain pipe with
select deadlines) and the server's state carries from call to call, as an agent's would.
`derandomize=True` and no example database keep CI runs identical.
"""

import collections
import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings

from tests.conftest import server_params
from tests.security.fuzzing import (
    OUTCOMES,
    TRACEBACK_MARKERS,
    Call,
    RawServer,
    Target,
    explicit_calls,
    fuzz_env,
    issue_23_cases,
    log_tracebacks,
    request_line,
)
from wvo_mcp.edge.stdio import MAX_LINE_BYTES

MAX_EXAMPLES = 150  # plus the explicit examples; keeps this file under a minute in CI


@contextlib.contextmanager
def raw_server(tmp_path: Path) -> Iterator[RawServer]:
    """A real stdio server spoken to in raw lines (not yet initialized), which must then
    exit 0 when its client closes the pipe; its stderr is tmp_path/server.stderr."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    params = server_params(tmp_path / "state", **fuzz_env(workspace))
    with open(tmp_path / "server.stderr", "wb") as stderr:
        server = RawServer(params, stderr)
        try:
            yield server
        finally:
            code = server.close()
    assert code == 0, (tmp_path / "server.stderr").read_text()[-3000:]


def test_hostile_tool_calls_never_hurt_the_server(tmp_path: Path) -> None:
    seen: collections.Counter[str] = collections.Counter()
    with Target.start(tmp_path) as target:

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            # Drawn arguments can be large (1 MB strings) and the server is shared on
            # purpose; neither is a problem here.
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
                HealthCheck.filter_too_much,
            ],
            print_blob=False,
        )
        @given(target.calls())
        def one_call(call: Call) -> None:
            result = target.check(call)
            seen[result.outcome] += 1
            seen[f"tool:{call.tool}"] += 1

        for call in explicit_calls(target.known):
            one_call = example(call)(one_call)
        one_call()

    # The run meant something: each outcome happened, and most tools were called; every
    # frame was answered.
    assert all(seen[outcome] > 0 for outcome in OUTCOMES if outcome != "dropped"), seen
    assert seen["dropped"] == 0, seen
    called = {key.removeprefix("tool:") for key in seen} & {t.name for t in target.tools}
    assert len(called) >= len(target.tools) // 2, seen
    assert not target.log_tracebacks(), target.log_tracebacks()[0]


def _frame(**fields: object) -> bytes:
    return json.dumps(fields).encode()


TOOLS_LIST = {"jsonrpc": "2.0", "method": "tools/list", "params": {}}


def _call(request_id: int, raw_arguments: str, name: str = "task_get") -> bytes:
    return (
        f'{{"jsonrpc":"2.0","id":{request_id},"method":"tools/call",'
        f'"params":{{"name":"{name}","arguments":{raw_arguments}}}}}'
    ).encode()


# (case, the frame) — each is followed by a valid tools/list that must be answered.
MALFORMED_FRAMES: list[tuple[str, bytes]] = [
    ("invalid JSON", b"{jsonrpc: 2.0, id: 1, method: tools/list}"),
    ("not JSON at all", b"hello, server"),
    ("truncated object", b'{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{'),
    ("empty line", b""),
    ("only whitespace", b" \t  "),
    ("invalid UTF-8", b'{"jsonrpc":"2.0","id":3,"method":"\xff\xfe\xc0"}'),
    ("binary garbage", bytes(b for b in range(256) if b != 0x0A)),
    ("huge garbage line (16 MB)", b"a" * (16 << 20)),
    ("huge valid call (16 MB)", _call(4, json.dumps({"task_id": "x" * (16 << 20)}))),
    ("array batch", b"[" + _frame(id=5, **TOOLS_LIST) + b"," + _frame(id=6, **TOOLS_LIST) + b"]"),
    ("empty batch", b"[]"),
    ("a JSON number", b"42"),
    ("JSON null", b"null"),
    ("a JSON string", b'"tools/list"'),
    ("wrong jsonrpc version", _frame(jsonrpc="1.0", id=7, method="tools/list")),
    ("jsonrpc as a number", _frame(jsonrpc=2.0, id=8, method="tools/list")),
    ("no jsonrpc member", _frame(id=9, method="tools/list")),
    ("params a list", _frame(jsonrpc="2.0", id=10, method="tools/list", params=[1, 2])),
    ("params a string", _frame(jsonrpc="2.0", id=11, method="tools/call", params="task_get")),
    ("params null", _frame(jsonrpc="2.0", id=12, method="tools/call", params=None)),
    ("id an object", _frame(jsonrpc="2.0", id={"a": 1}, method="tools/list")),
    ("id a list", _frame(jsonrpc="2.0", id=[1], method="tools/list")),
    ("id true", _frame(jsonrpc="2.0", id=True, method="tools/list")),
    ("id null", _frame(jsonrpc="2.0", id=None, method="tools/list")),
    ("id a float", _frame(jsonrpc="2.0", id=1.5, method="tools/list")),
    ("id of 40 digits", _frame(jsonrpc="2.0", id=10**40, method="tools/list")),
    ("method a number", _frame(jsonrpc="2.0", id=13, method=5)),
    ("method empty", _frame(jsonrpc="2.0", id=14, method="")),
    ("unknown method", _frame(jsonrpc="2.0", id=15, method="nope/nope", params={})),
    ("unknown notification", _frame(jsonrpc="2.0", method="notifications/nope")),
    ("unsolicited result", _frame(jsonrpc="2.0", id=999, result={})),
    ("unsolicited error", _frame(jsonrpc="2.0", id=998, error={"code": 1, "message": "x"})),
    (
        "cancel of an unknown request",
        _frame(jsonrpc="2.0", method="notifications/cancelled", params={"requestId": 12345}),
    ),
    ("duplicate keys", b'{"jsonrpc":"2.0","id":16,"id":17,"method":"tools/list"}'),
    ("tools/call NaN literal", _call(18, '{"limit":NaN}', "task_list")),
    ("tools/call Infinity", _call(19, '{"limit":Infinity}', "task_list")),
    ("tools/call -Infinity", _call(20, '{"lease_seconds":-Infinity}', "claim_task")),
    ("tools/call lone surrogate escape", _call(21, '{"task_id":"\\ud800"}')),
    ("tools/call lone low surrogate", _call(22, '{"task_id":"T\\udfff1"}')),
    ("tools/call NUL escape", _call(23, '{"task_id":"T1\\u0000"}')),
    (
        "tools/call surrogate as raw bytes",
        _call(24, '{"task_id":"T1"}').replace(b"T1", b"\xed\xa0\x80"),
    ),
    ("tools/call 10000 deep", _call(25, '{"task_id":' + "[" * 10_000 + "]" * 10_000 + "}")),
    ("tools/call 5000-digit number", _call(26, '{"limit":' + "9" * 5_000 + "}", "task_list")),
    ("tools/call arguments a list", _call(27, "[1,2]")),
    ("tools/call arguments a string", _call(28, '"T1"')),
    (
        "tools/call name a number",
        _frame(jsonrpc="2.0", id=29, method="tools/call", params={"name": 5}),
    ),
    ("tools/call without name", _frame(jsonrpc="2.0", id=30, method="tools/call", params={})),
    ("tools/call unknown tool", _call(31, "{}", "nope")),
    (
        "resources/read outside wvo://",
        _frame(jsonrpc="2.0", id=32, method="resources/read", params={"uri": "file:///etc/passwd"}),
    ),
    (
        "resources/read task ../../",
        _frame(
            jsonrpc="2.0",
            id=33,
            method="resources/read",
            params={"uri": "wvo://tasks/../../etc/passwd"},
        ),
    ),
    (
        "resources/read directive ../",
        _frame(
            jsonrpc="2.0",
            id=34,
            method="resources/read",
            params={"uri": "wvo://directives/..%2F..%2F..%2Fetc%2Fpasswd"},
        ),
    ),
    (
        "prompts/get a path",
        _frame(jsonrpc="2.0", id=35, method="prompts/get", params={"name": "../../etc/passwd"}),
    ),
    (
        "prompts/get task_id with NUL",
        _frame(
            jsonrpc="2.0",
            id=36,
            method="prompts/get",
            params={"name": "work_loop", "arguments": {"task_id": "T1\x00"}},
        ),
    ),
    (
        "prompts/get an unknown argument",
        _frame(
            jsonrpc="2.0",
            id=38,
            method="prompts/get",
            params={"name": "work_loop", "arguments": {"nope": "x"}},
        ),
    ),
    (
        "initialize again",
        _frame(
            jsonrpc="2.0",
            id=37,
            method="initialize",
            params={"protocolVersion": "1900-01-01", "capabilities": {}, "clientInfo": {}},
        ),
    ),
]


def _no_traceback(reply: dict[str, object]) -> None:
    text = json.dumps(reply)
    for marker in TRACEBACK_MARKERS:
        assert marker not in text, reply


def test_malformed_frames_over_a_raw_pipe(tmp_path: Path, subtests: pytest.Subtests) -> None:
    with raw_server(tmp_path) as server:
        with subtests.test(msg="a request before initialize"):
            early = server.request("tools/list", {})
            _no_traceback(early)
        server.initialize()
        tools = server.request("tools/list")
        assert len(tools["result"]["tools"]) >= 10, tools
        for case, frame in MALFORMED_FRAMES:
            with subtests.test(msg=case):
                server.send(frame)
                # Whatever came of it, a valid request is still answered (and every
                # stdout line read on the way was JSON-RPC: read_message checks).
                after = server.request("tools/list", {})
                assert "result" in after and after["result"]["tools"], after
                for reply in server.replies.values():
                    _no_traceback(reply)
                server.replies.clear()
    # Any traceback is an exception we missed (an unknown prompt too: calls.ProtocolEdge
    # refuses it before the SDK's handler would log one).
    unexpected = log_tracebacks(tmp_path / "server.stderr")
    assert not unexpected, unexpected[0]


@pytest.mark.parametrize(
    "arguments",
    ['{"task_id":"\\ud800"}', '{"task_id":' + "[" * 1_000 + "]" * 1_000 + "}"],
    ids=["lone surrogate escape", "nested 1000 deep"],
)
def test_a_request_the_sdk_cannot_parse_still_gets_an_answer(
    tmp_path: Path, arguments: str
) -> None:
    with raw_server(tmp_path) as server:
        server.initialize()
        server.send(_call(1_000, arguments))
        # Answered with its own id where Python's lenient parser reads the line (a lone
        # surrogate), else with a null id (JSON-RPC 2.0); before a request sent after it.
        expected = 1_000 if "ud800" in arguments else None
        refused = server.wait_for(expected)
        assert refused["error"]["code"] in (-32700, -32600), refused
        assert "one JSON-RPC 2.0 message per line" in refused["error"]["message"]
        assert "Traceback" not in refused["error"]["message"]
        assert "result" in server.request("ping", {})


def test_frames_are_written_by_hand() -> None:
    """The generator's frames carry what an SDK client could not send: NaN literals, lone
    surrogates as escapes (ASCII frames) or as invalid UTF-8 (raw frames)."""
    assert b'"limit":NaN' in request_line(1, "tools/call", {"limit": math.nan})
    assert b"\\ud800" in request_line(1, "x", {"a": "\ud800"}, ascii_only=True)
    assert b"\xed\xa0\x80" in request_line(1, "x", {"a": "\ud800"}, ascii_only=False)


def test_a_line_too_long_is_skipped_with_an_answer(tmp_path: Path) -> None:
    with raw_server(tmp_path) as server:
        server.initialize()
        # A request whose line is 1 byte over the limit, ending mid-way through a chunk.
        padding = "x" * (MAX_LINE_BYTES + 1)
        server.send(_call(7, json.dumps({"task_id": padding})))
        refused = server.wait_for(None)
        assert refused["error"]["code"] == -32600, refused
        assert f"longer than {MAX_LINE_BYTES} bytes" in refused["error"]["message"]
        # Nothing of the long line is read as a request; the next one is answered.
        assert "result" in server.request("ping", {})
        assert 7 not in server.replies


def test_issue_23_inputs_are_refused_saying_what_is_accepted(
    tmp_path: Path, subtests: pytest.Subtests
) -> None:
    """Each input of issue 23 (items 1-3), sent as it was found: over a raw pipe, since the
    SDK's client would turn NaN into null. A tool error that names the field and what would
    be accepted (not the SDK's bare "Error executing tool"), and no row of any table
    changed: not the task count, not T1 (claimed, the lease a refused run would record on)."""
    with Target.start(tmp_path) as target:
        server = target.server
        token = target.known.lease_tokens[0]

        def task_get(task_id: str) -> dict[str, object]:
            reply = server.request(
                "tools/call", {"name": "task_get", "arguments": {"task_id": task_id}}
            )
            return reply["result"]

        for case in issue_23_cases(token):
            with subtests.test(msg=case.name):
                before = target.digest()
                held = task_get("T1")
                reply = server.request(
                    "tools/call", {"name": case.tool, "arguments": case.arguments}
                )
                result = reply["result"]
                text = result["content"][0]["text"]
                assert result["isError"], (case, reply)
                assert "validation error" in text, text  # refused as an input, not a crash
                for words in case.says:
                    assert words in text, (words, text)
                assert target.digest() == before
                assert task_get("T1") == held
                assert task_get("N23")["isError"]
        tasks = server.call_tool("task_list", {"limit": 500})
        assert [row[0] for row in tasks["rows"]] == ["T1", "T2", "T3", "T4", "T5"]
    assert not log_tracebacks(tmp_path / "server.stderr")


# Issue 23 item 4: a request whose id is not a string or an integer, which the SDK's parser
# reads as a notification and leaves unanswered (wvo_mcp/edge/protocol.py answers it).
INVALID_IDS = ["1.5", "null", '{"a":1}', "Infinity", "true", "[1]"]


@pytest.mark.parametrize("request_id", INVALID_IDS)
def test_a_request_with_an_invalid_id_gets_invalid_request(tmp_path: Path, request_id: str) -> None:
    with raw_server(tmp_path) as server:
        server.initialize()
        server.send(f'{{"jsonrpc":"2.0","id":{request_id},"method":"ping"}}'.encode())
        # JSON-RPC 2.0: an id that cannot be used is answered with a null id.
        refused = server.wait_for(None)
        assert refused["error"]["code"] == -32600, refused
        assert "id" in refused["error"]["message"], refused
        assert len(refused["error"]["message"]) < 300, refused
        assert "result" in server.request("ping", {})
