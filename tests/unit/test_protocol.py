"""protocol.py's checks as pure functions: what each says is wrong, and that it stays short.
Their effect on real servers is in tests/integration/test_protocol.py."""

import json
import math

import mcp_types
import pytest
from mcp.types import INVALID_REQUEST, UNSUPPORTED_PROTOCOL_VERSION
from pydantic import ValidationError

from wvo_mcp.edge import protocol

SHORT = 300
BOTH = ["2025-11-25", "2026-07-28"]


@pytest.mark.parametrize(
    ("message", "said"),
    [
        ([{"jsonrpc": "2.0", "id": 1, "method": "ping"}], "a batch"),
        ([], "a batch"),
        (42, "an integer was sent"),
        (None, "null was sent"),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}, "floating-point"),
        ({"jsonrpc": "2.0", "id": math.inf, "method": "ping"}, "not Infinity"),
        ({"jsonrpc": "2.0", "id": math.nan, "method": "ping"}, "not NaN"),
        ({"jsonrpc": "2.0", "id": None, "method": "ping"}, "not null"),
        ({"jsonrpc": "2.0", "id": False, "method": "ping"}, "not false"),
        ({"jsonrpc": "2.0", "id": [1], "method": "ping"}, "not an array"),
        ({"id": 1, "method": "ping"}, '"jsonrpc" is missing'),
        ({"jsonrpc": 2.0, "id": 1, "method": "ping"}, '"jsonrpc" must be "2.0"'),
        ({"jsonrpc": "2.0", "id": 1}, '"method" is missing'),
        ({"jsonrpc": "2.0", "id": 1, "method": None}, '"method" must be a string, not null'),
    ],
)
def test_what_is_no_json_rpc_message(message: object, said: str) -> None:
    reason = protocol.invalid_request(message)
    assert reason is not None and said in reason, reason
    answer = protocol.invalid(reason, None)
    assert answer.error.code == INVALID_REQUEST
    assert len(answer.error.message) < SHORT
    assert '"jsonrpc": "2.0"' in answer.error.message


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": "a", "method": "ping", "params": {}},
        {"jsonrpc": "2.0", "id": 10**40, "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 1, "result": {}},  # a response: the SDK's to check
    ],
)
def test_what_passes_on(message: object) -> None:
    assert protocol.invalid_request(message) is None


def test_the_reply_id_is_echoed_only_when_valid_and_short() -> None:
    assert protocol.reply_id(7) == 7 and protocol.reply_id("r-1") == "r-1"
    for bad in (True, 1.5, None, {}, "x" * (protocol.ID_CHARS + 1), "a\nb"):
        assert protocol.reply_id(bad) is None, bad


def _refused(message: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        mcp_types.jsonrpc_message_adapter.validate_python(message, by_name=False)
    return caught.value


@pytest.mark.parametrize(
    ("message", "said"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": [1]}, "params:"),
        ({"jsonrpc": "2.0", "method": "x", "params": "p"}, "params:"),
        ({"jsonrpc": "2.0", "id": 1, "result": 5}, "result:"),
        ({"jsonrpc": "2.0", "id": 1, "error": {}}, "error.code:"),
    ],
)
def test_a_validation_failure_is_named_for_the_message_it_looks_like(
    message: object, said: str
) -> None:
    reason = protocol.validation_reason(_refused(message), message)
    assert reason.startswith(said) and len(reason) <= protocol.REASON_CHARS, reason


def test_an_unsupported_version_lists_every_revision_and_cuts_what_was_asked() -> None:
    answer = protocol.unsupported_version("v" * 5000, 3)
    assert answer.id == 3 and answer.error.code == UNSUPPORTED_PROTOCOL_VERSION
    assert answer.error.data == {"supported": BOTH, "requested": "v" * 60}
    assert len(answer.error.message) < SHORT


def test_the_version_ladder_is_the_sdks() -> None:
    """Only a version not spoken is ours to answer; a missing envelope key keeps the SDK's
    answer (-32602)."""
    meta = "io.modelcontextprotocol/protocolVersion"
    caps = "io.modelcontextprotocol/clientCapabilities"
    asked = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    old = protocol.version_refusal({**asked, "params": {"_meta": {meta: "1999", caps: {}}}})
    assert old is not None and old.error.data == {"supported": BOTH, "requested": "1999"}
    assert protocol.version_refusal({**asked, "params": {"_meta": {meta: "1999"}}}) is None
    spoken = {"_meta": {meta: "2026-07-28", caps: {}}}
    assert protocol.version_refusal({**asked, "params": spoken}) is None


PROMPTS = {"work_loop": ["task_id"], "bare": []}


@pytest.mark.parametrize(
    ("name", "arguments", "said"),
    [
        ("nope", None, "Unknown prompt 'nope': the prompts are bare, work_loop"),
        ("work_loop", {"task": "1"}, "takes no argument 'task'; it takes only task_id"),
        ("bare", {"x": "1"}, "takes no arguments, not 'x'"),
        ("n" * 500, None, "'" + "n" * 60 + "…'"),
    ],
)
def test_a_prompt_refusal_says_what_is_accepted(name: str, arguments: object, said: str) -> None:
    refused = protocol.prompt_refusal(name, arguments, PROMPTS)
    assert refused is not None and said in refused, refused
    assert len(refused) < SHORT


def test_many_prompts_are_cut_short_in_a_refusal() -> None:
    many = {f"prompt_{n:03}": [] for n in range(200)}
    refused = protocol.prompt_refusal("nope", None, many)
    assert refused is not None and "prompts/list has them all" in refused
    assert len(refused) < SHORT


@pytest.mark.parametrize(
    ("name", "arguments"),
    [("work_loop", None), ("work_loop", {"task_id": "T1"}), ("bare", {}), (5, None)],
)
def test_what_renders_passes_on(name: object, arguments: object) -> None:
    assert protocol.prompt_refusal(name, arguments, PROMPTS) is None


def sieved(result: dict[str, object], version: str) -> object:
    from mcp_types.methods import serialize_server_result

    return serialize_server_result("tools/call", version, result)


RESULTS: list[dict[str, object]] = [
    {
        "content": [{"type": "text", "text": '{"claimed":true}'}],
        "structuredContent": {"claimed": True, "task": {"id": "T1", "tags": ["a"]}},
        "isError": False,
        "resultType": "complete",
    },
    {"content": [{"type": "text", "text": "LeaseLost: …"}], "isError": True},
    {"content": [], "structuredContent": {}},
    # Not our shape: the sieve judges each (an image, annotations, _meta, a bad isError).
    {"content": [{"type": "image", "data": "AA==", "mimeType": "image/png"}]},
    {"content": [{"type": "text", "text": "x", "annotations": {"priority": 1}}]},
    {"content": [{"type": "text", "text": "x"}], "_meta": {"k": 1}},
]


@pytest.mark.parametrize("version", mcp_types.version.HANDSHAKE_PROTOCOL_VERSIONS)
@pytest.mark.parametrize("result", RESULTS)
def test_an_answer_in_our_shape_is_shaped_as_the_sdks_sieve_shapes_it(
    result: dict[str, object], version: str
) -> None:
    body = json.loads(protocol.result_body(7, result, version))
    assert body == {"jsonrpc": "2.0", "id": 7, "result": sieved(result, version)}
    assert "resultType" not in body["result"]


def test_an_answer_the_sieve_refuses_is_refused_the_same() -> None:
    with pytest.raises(ValidationError):
        protocol.result_body(7, {"content": "not a list"}, "2025-11-25")
    assert protocol._plain_result({"content": [], "isError": "no"}, "2025-11-25") is None
