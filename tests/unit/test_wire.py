"""What each vendor's wire format says a response billed (rules/wire.py), read by the meter's
Reading as bodies and event streams in any pieces: OpenAI's Responses and Chat Completions,
Gemini's generateContent; cut streams bounded by what passed; requests bounded by their
bytes unless they point at what the API stores."""

import json

import pytest

from wvo_mcp.rules import billing, wire
from wvo_mcp.sandbox import meter
from wvo_mcp.sandbox.meter import Reading

RESPONSES_USAGE = {"input_tokens": 1000, "input_tokens_details": {"cached_tokens": 800},
                   "output_tokens": 50, "output_tokens_details": {"reasoning_tokens": 20},
                   "total_tokens": 1050}  # fmt: skip
CHAT_USAGE = {"prompt_tokens": 500, "completion_tokens": 40, "total_tokens": 540,
              "prompt_tokens_details": {"cached_tokens": 100}}  # fmt: skip
GEMINI_USAGE = {"promptTokenCount": 300, "candidatesTokenCount": 30, "thoughtsTokenCount": 10,
                "cachedContentTokenCount": 100, "totalTokenCount": 340}  # fmt: skip


def sse(events: list[object], done: bool = False) -> bytes:
    lines = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)
    return lines + (b"data: [DONE]\n\n" if done else b"")


RESPONSES_STREAM = sse([
    {"type": "response.created", "response": {"id": "resp_1", "usage": None}},
    {"type": "response.output_text.delta", "delta": "Hello"},
    {"type": "response.function_call_arguments.delta", "delta": '{"usage": 99}'},
    {"type": "response.completed", "response": {"id": "resp_1", "usage": RESPONSES_USAGE}},
])  # fmt: skip
CHAT_STREAM = sse([
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]},
    {"choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": "stop"}]},
    {"choices": [], "usage": CHAT_USAGE},
], done=True)  # fmt: skip
GEMINI_STREAM = sse([
    {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}],
     "usageMetadata": {"promptTokenCount": 300, "candidatesTokenCount": 2}},
    {"candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}],
     "usageMetadata": GEMINI_USAGE},
])  # fmt: skip
# (input, output) each says: cached input at a tenth of new input's price.
BILLED = {"responses": (280, 50), "chat": (410, 40), "gemini": (210, 40)}


@pytest.mark.parametrize(
    ("name", "body"),
    [("responses", {"object": "response", "usage": RESPONSES_USAGE}),
     ("chat", {"object": "chat.completion", "usage": CHAT_USAGE}),
     ("gemini", {"candidates": [], "usageMetadata": GEMINI_USAGE})],
)  # fmt: skip
def test_a_json_answer_is_charged_what_it_says(name: wire.Name, body: object) -> None:
    reading = Reading(stream=False, name=name)
    reading.feed(json.dumps(body).encode())
    assert reading.done() and reading.figures() == BILLED[name]
    assert reading.usage.said_input and reading.usage.said_output


@pytest.mark.parametrize("size", [1, 5, 64, 100_000])
@pytest.mark.parametrize(
    ("name", "stream"),
    [("responses", RESPONSES_STREAM), ("chat", CHAT_STREAM), ("gemini", GEMINI_STREAM)],
)
def test_a_stream_is_charged_what_its_end_says_in_any_pieces(
    name: wire.Name, stream: bytes, size: int
) -> None:
    reading = Reading(stream=True, name=name)
    for at in range(0, len(stream), size):
        reading.feed(stream[at : at + size])
    assert reading.done() and reading.figures() == BILLED[name]


@pytest.mark.parametrize(
    ("name", "stream", "cut_at"),
    [("responses", RESPONSES_STREAM, b'"response.completed"'),
     ("chat", CHAT_STREAM, b'{"choices": [], "usage"'),
     ("gemini", GEMINI_STREAM, b'"finishReason"')],
)  # fmt: skip
def test_a_cut_stream_is_charged_at_least_the_text_that_passed(
    name: wire.Name, stream: bytes, cut_at: bytes
) -> None:
    reading = Reading(stream=True, name=name)
    reading.feed(stream[: stream.index(cut_at)])
    _, out = reading.figures()
    assert not reading.usage.said_output and out >= len(b"Hel")
    assert out >= 2 if name != "responses" else out >= len(b"Hello") + len(b'{"usage": 99}')


def test_a_request_bounds_its_input_by_its_bytes_unless_it_points_at_stored_state() -> None:
    plain = wire.Request()
    plain.feed(json.dumps({"model": "m", "input": "x" * 5000, "max_output_tokens": 64}).encode())
    assert plain.max_input() == plain.size and plain.max_output() == 64
    stored = wire.Request()
    stored.feed(json.dumps({"model": "m", "previous_response_id": "resp_1"}).encode())
    assert stored.max_input() == billing.CEILING_INPUT
    odd = wire.Request()
    odd.feed(b"not json")
    assert odd.max_input() == billing.CEILING_INPUT and odd.max_output() == billing.CEILING_OUTPUT
    gemini = wire.Request()
    gemini.feed(json.dumps({"generationConfig": {"maxOutputTokens": 99}}).encode())
    assert gemini.max_output() == 99


@pytest.mark.parametrize(
    ("api", "method", "target", "base", "billed"),
    [("openai", b"POST", b"/v1/responses", "/v1", "responses"),
     ("openai", b"POST", b"/v1/chat/completions", "/v1", "chat"),
     ("openai", b"GET", b"/v1/models", "/v1", None),
     ("gemini", b"POST", b"/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", "",
      "gemini"),
     ("gemini", b"POST", b"/v1beta/models/gemini-2.5-flash:generateContent", "", "gemini"),
     ("gemini", b"POST", b"/v1/models/gemini-2.5-flash:countTokens", "", None)],
)  # fmt: skip
def test_each_apis_endpoints_are_passed_on_in_their_format(
    api: wire.Api, method: bytes, target: bytes, base: str, billed: str | None
) -> None:
    assert meter.refusal(api, method, target, base) is None
    assert wire.endpoint(api, method, target, base) == (True, billed)


@pytest.mark.parametrize(
    ("api", "method", "target", "base"),
    [("openai", b"POST", b"/v1/files", "/v1"),
     ("openai", b"POST", b"/v1/batches", "/v1"),  # results later, usage elsewhere
     ("openai", b"POST", b"/v1/responses/../files", "/v1"),
     ("openai", b"POST", b"/responses", "/v1"),  # around the base URL's path
     ("gemini", b"POST", b"/v1beta/models/../files:generateContent", ""),
     ("gemini", b"POST", b"/upload/v1beta/files", ""),
     ("gemini", b"POST", b"/v1beta/cachedContents", "")],
)  # fmt: skip
def test_anything_else_is_refused(api: wire.Api, method: bytes, target: bytes, base: str) -> None:
    why = meter.refusal(api, method, target, base)
    assert why is not None and "is not passed on" in why
