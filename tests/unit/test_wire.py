"""What each vendor's wire format says a response billed (rules/wire.py), read by the meter's
Reading as bodies and event streams in any pieces: OpenAI's Responses and Chat Completions,
Gemini's generateContent; cut streams bounded by what passed; requests bounded by their
bytes unless they point at what the API stores."""

import json
from collections.abc import Callable

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
    plain = wire.Request("responses")
    plain.feed(json.dumps({"model": "m", "input": "x" * 5000, "max_output_tokens": 64}).encode())
    assert plain.max_input() == plain.size and plain.max_output() == 64
    stored = wire.Request("responses")
    stored.feed(json.dumps({"model": "m", "previous_response_id": "resp_1"}).encode())
    assert stored.max_input() == billing.CEILING_INPUT
    odd = wire.Request("responses")
    odd.feed(b"not json")
    assert odd.max_input() == billing.CEILING_INPUT and odd.max_output() == billing.CEILING_OUTPUT
    gemini = wire.Request("gemini")
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


# -- the input bound is an allowlist (issue 69) ---------------------------------------------

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
PDF = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoK"
URL = "https://example.com/big.png"


def ask(name: wire.Name, *parts: object, **top: object) -> dict[str, object]:
    """A request in format `name`: one user message of `parts` (a word if none), and `top`."""
    if name == "anthropic":
        messages = [{"role": "user", "content": list(parts) or "hi"}]
        return {"model": "claude-sonnet-4-5", "max_tokens": 1000, "stream": True,
                "messages": messages} | top  # fmt: skip
    if name == "responses":
        given = [{"type": "message", "role": "user", "content": list(parts) or "hi"}]
        return {"model": "gpt-5.5", "stream": True, "input": given} | top
    if name == "chat":
        messages = [{"role": "user", "content": list(parts) or "hi"}]
        return {"model": "gpt-4o-mini", "stream": True, "messages": messages} | top
    return {"contents": [{"role": "user", "parts": list(parts) or [{"text": "hi"}]}]} | top


def image_url(url: str) -> dict[str, object]:
    return {"type": "image_url", "image_url": {"url": url}}


def source(kind: str, **given: object) -> dict[str, object]:
    """An Anthropic image's or document's source."""
    return {"type": kind} | given


def file_data(media: str) -> str:
    return f"data:{media};base64,{PDF}"


FAR_MCP = "https://mcp.example.com/sse"
# Each kind of input a request can point at, or a part the meter does not know, per format:
# the API fetches, keeps or makes it itself, so the request's own bytes do not bound it.
REFERENCES: dict[str, tuple[wire.Name, dict[str, object]]] = {
    "anthropic-image-url": (
        "anthropic",
        ask("anthropic", {"type": "image", "source": source("url", url=URL)}),
    ),
    "anthropic-image-file": (
        "anthropic",
        ask("anthropic", {"type": "image", "source": source("file", file_id="f1")}),
    ),
    "anthropic-document-url": (
        "anthropic",
        ask("anthropic", {"type": "document", "source": source("url", url=URL)}),
    ),
    "anthropic-document-file": (
        "anthropic",
        ask("anthropic", {"type": "document", "source": source("file", file_id="f1")}),
    ),
    "anthropic-pdf-pages": (
        "anthropic",
        ask(
            "anthropic",
            {
                "type": "document",
                "source": source("base64", media_type="application/pdf", data=PDF),
            },
        ),
    ),
    "anthropic-tool-result-url": (
        "anthropic",
        ask(
            "anthropic",
            {
                "type": "tool_result",
                "tool_use_id": "t",
                "content": [{"type": "image", "source": source("url", url=URL)}],
            },
        ),
    ),
    "anthropic-unknown-block": (
        "anthropic",
        ask("anthropic", {"type": "container_upload", "file_id": "f1"}),
    ),
    "anthropic-container": ("anthropic", ask("anthropic", container="container_011")),
    "anthropic-mcp-servers": (
        "anthropic",
        ask("anthropic", mcp_servers=[{"type": "url", "url": FAR_MCP, "name": "far"}]),
    ),
    "anthropic-web-search": (
        "anthropic",
        ask(
            "anthropic",
            tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
        ),
    ),
    "anthropic-web-fetch": (
        "anthropic",
        ask("anthropic", tools=[{"type": "web_fetch_20250910", "name": "web_fetch"}]),
    ),
    "anthropic-code-execution": (
        "anthropic",
        ask("anthropic", tools=[{"type": "code_execution_20250825", "name": "code_execution"}]),
    ),
    "anthropic-compaction": (
        "anthropic",
        ask("anthropic", context_management={"edits": [{"type": "compact_20260112"}]}),
    ),
    "anthropic-unknown-field": ("anthropic", ask("anthropic", unknown_field=1)),
    "responses-file-url": ("responses", ask("responses", {"type": "input_file", "file_url": URL})),
    "responses-file-id": ("responses", ask("responses", {"type": "input_file", "file_id": "f1"})),
    "responses-pdf-pages": (
        "responses",
        ask(
            "responses",
            {"type": "input_file", "filename": "a.pdf", "file_data": file_data("application/pdf")},
        ),
    ),
    "responses-image-url": (
        "responses",
        ask("responses", {"type": "input_image", "image_url": URL}),
    ),
    "responses-image-file-id": (
        "responses",
        ask("responses", {"type": "input_image", "file_id": "f1"}),
    ),
    "responses-stored-prompt": ("responses", ask("responses", prompt={"id": "pmpt_1"})),
    "responses-item-reference": (
        "responses",
        ask("responses", input=[{"type": "item_reference", "id": "msg_1"}]),
    ),
    "responses-tool-output-file": (
        "responses",
        ask(
            "responses",
            input=[
                {
                    "type": "function_call_output",
                    "call_id": "c",
                    "output": [{"type": "input_file", "file_id": "f1"}],
                }
            ],
        ),
    ),
    "responses-web-search": ("responses", ask("responses", tools=[{"type": "web_search"}])),
    "responses-file-search": (
        "responses",
        ask("responses", tools=[{"type": "file_search", "vector_store_ids": ["vs_1"]}]),
    ),
    "responses-mcp": (
        "responses",
        ask("responses", tools=[{"type": "mcp", "server_label": "far", "server_url": FAR_MCP}]),
    ),
    "responses-server-tool-search": (
        "responses",
        ask("responses", tools=[{"type": "tool_search"}]),
    ),
    "responses-background": ("responses", ask("responses", background=True)),
    "responses-unknown-field": ("responses", ask("responses", unknown_field=1)),
    "chat-40-image-urls": ("chat", ask("chat", *[image_url(f"{URL}?{n}") for n in range(40)])),
    "chat-file-id": ("chat", ask("chat", {"type": "file", "file": {"file_id": "f1"}})),
    "chat-pdf-pages": (
        "chat",
        ask(
            "chat",
            {
                "type": "file",
                "file": {"filename": "a.pdf", "file_data": file_data("application/pdf")},
            },
        ),
    ),
    "chat-audio": (
        "chat",
        ask("chat", {"type": "input_audio", "input_audio": {"data": PDF, "format": "wav"}}),
    ),
    "chat-web-search": ("chat", ask("chat", web_search_options={})),
    "chat-stored-audio": (
        "chat",
        ask("chat", messages=[{"role": "assistant", "audio": {"id": "audio_1"}}]),
    ),
    "chat-unknown-field": ("chat", ask("chat", unknown_field=1)),
    "gemini-file-uri": (
        "gemini",
        ask("gemini", {"fileData": {"mimeType": "application/pdf", "fileUri": URL}}),
    ),
    "gemini-file-data-snake-case": (
        "gemini",
        ask("gemini", {"file_data": {"mime_type": "image/png", "file_uri": "gs://bucket/big.png"}}),
    ),
    "gemini-cached-content": ("gemini", ask("gemini", cachedContent="cachedContents/c1")),
    "gemini-google-search": ("gemini", ask("gemini", tools=[{"googleSearch": {}}])),
    "gemini-url-context": ("gemini", ask("gemini", tools=[{"url_context": {}}])),
    "gemini-code-execution": ("gemini", ask("gemini", tools=[{"codeExecution": {}}])),
    "gemini-pdf-pages": (
        "gemini",
        ask("gemini", {"inlineData": {"mimeType": "application/pdf", "data": PDF}}),
    ),
    "gemini-video": (
        "gemini",
        ask("gemini", {"inlineData": {"mimeType": "video/mp4", "data": PDF}}),
    ),
    "gemini-unknown-field": ("gemini", ask("gemini", unknownField=1)),
}


def bound(name: wire.Name, body: object) -> wire.Request:
    request = wire.Request(name)
    request.feed(json.dumps(body).encode())
    return request


@pytest.mark.parametrize(("name", "body"), list(REFERENCES.values()), ids=list(REFERENCES))
def test_a_request_that_points_at_anything_not_inline_is_bounded_by_the_ceiling(
    name: wire.Name, body: dict[str, object]
) -> None:
    request = bound(name, body)
    assert not request.inline() and request.max_input() == billing.CEILING_INPUT
    assert wire.extra_input(name, body) is None


@pytest.mark.parametrize(
    ("name", "image"),
    [("anthropic", {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                "data": PNG}}),
     ("responses", {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}",
                    "detail": "high"}),
     ("chat", image_url(f"data:image/png;base64,{PNG}")),
     ("gemini", {"inlineData": {"mimeType": "image/png", "data": PNG}}),
     ("gemini", {"inline_data": {"mime_type": "image/png", "data": PNG}})],
)  # fmt: skip
def test_an_inline_image_is_sized_by_the_most_an_image_bills_not_by_its_bytes(
    name: wire.Name, image: dict[str, object]
) -> None:
    """A flat PNG is a few hundred bytes at any size, and bills by its pixels."""
    words = {"anthropic": {"type": "text", "text": "see"}, "responses": {
        "type": "input_text", "text": "see"}, "chat": {"type": "text", "text": "see"},
        "gemini": {"text": "see"}}[name]  # fmt: skip
    text = bound(name, ask(name, words))
    assert text.inline() and text.max_input() == text.size
    three = bound(name, ask(name, words, image, image, image))
    assert three.inline() and three.max_input() == three.size + 3 * wire.IMAGE_TOKENS


# What the pinned CLIs send (tests/claude_code/package.json), recorded from each against a
# scripted model API that had it run a shell command and read a PNG, cut to their shape.
CLAUDE_CODE = {
    "model": "claude-sonnet-4-5",
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "<system-reminder>…"},
                                     {"type": "text", "text": "look at pic.png"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "It wants the picture.", "signature": "EqQB…"},
            {"type": "tool_use", "id": "toolu_0", "name": "Bash", "input": {"command": "echo"}},
            {"type": "tool_use", "id": "toolu_1", "name": "Read",
             "input": {"file_path": "/work/pic.png"}}]},
        {"role": "user", "content": [
            {"tool_use_id": "toolu_0", "type": "tool_result", "content": "hi", "is_error": False},
            {"tool_use_id": "toolu_1", "type": "tool_result", "content": [{"type": "image",
             "source": {"type": "base64", "data": PNG, "media_type": "image/png"}}],
             "cache_control": {"type": "ephemeral"}}]},
    ],
    "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197;"},
               {"type": "text", "text": "You are a Claude agent…",
                "cache_control": {"type": "ephemeral"}}],
    "tools": [{"name": "Bash", "description": "…", "input_schema": {"type": "object"}}],
    "metadata": {"user_id": '{"device_id":"91e9"}'},
    "max_tokens": 32000,
    "thinking": {"budget_tokens": 31999, "type": "enabled"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "stream": True,
}  # fmt: skip
OPENCODE = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 32000,
    "system": [{"type": "text", "text": "You are OpenCode…",
                "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": '"look at pic.png"'}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "read",
         "input": {"filePath": "/work/pic.png"}, "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
         "content": [{"type": "text", "text": "Image read successfully"}, {"type": "image",
                     "source": {"type": "base64", "media_type": "image/png", "data": PNG}}],
         "cache_control": {"type": "ephemeral"}}]},
    ],
    "tools": [{"name": "read", "description": "…", "eager_input_streaming": True,
               "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "auto"},
    "stream": True,
}  # fmt: skip
CODEX = {
    "model": "gpt-5.5",
    "stream": True,
    "input": [
        {"type": "message", "id": "msg_1", "role": "developer",
         "content": [{"type": "input_text", "text": "You are Codex…"}]},
        {"type": "message", "id": "msg_2", "role": "user",
         "content": [{"type": "input_text", "text": "look at pic.png"}]},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Look."}],
         "encrypted_content": "gAAAAABo…"},
        {"type": "function_call", "id": "fc_1", "name": "view_image",
         "arguments": '{"path": "/work/pic.png"}', "call_id": "call_1"},
        {"type": "function_call_output", "id": "fco_1", "call_id": "call_1", "output": [
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}",
             "detail": "original"}]},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "A picture.", "annotations": []}]},
    ],
    "tools": [
        {"type": "function", "name": "exec_command", "description": "…", "strict": False,
         "parameters": {"type": "object"}},
        {"type": "custom", "name": "apply_patch", "description": "…",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: …"}},
        {"type": "tool_search", "execution": "client", "description": "# Tool discovery…",
         "parameters": {"type": "object"}},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"effort": "medium"},
    "store": False,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "01a21a69",
    "text": {"verbosity": "low"},
    "client_metadata": {"session_id": "01a21a69", "x-codex-turn-metadata": "{}"},
}  # fmt: skip
GEMINI_CLI = {
    "contents": [
        {"parts": [{"text": "<session_context>…"}, {"text": "look at pic.png"}], "role": "user"},
        {"parts": [{"text": "Reading it.", "thought": True, "thoughtSignature": "CiQB…"},
                   {"functionCall": {"id": "read_file_1", "args": {"file_path": "pic.png"},
                                     "name": "read_file"},
                    "thoughtSignature": "skip_thought_signature_validator"}], "role": "model"},
        {"parts": [{"functionResponse": {"name": "read_file", "id": "read_file_1",
                                         "response": {"output": "Binary content provided."}}},
                   {"inlineData": {"data": PNG, "mimeType": "image/png"}}], "role": "user"},
    ],
    "systemInstruction": {"parts": [{"text": "You are a non-interactive CLI agent…"}],
                          "role": "user"},
    "tools": [{"functionDeclarations": [{"name": "read_file", "description": "…",
                                         "parametersJsonSchema": {"type": "object"}}]}],
    "generationConfig": {"temperature": 1, "topP": 0.95, "topK": 64,
                         "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 8192}},
}  # fmt: skip


def pointing_away(part: object) -> object:
    """`part` with each inline image in it swapped for the same image at a URL."""
    if isinstance(part, list):
        return [pointing_away(p) for p in part]
    if not isinstance(part, dict):
        return part
    if part.get("type") == "base64":  # Anthropic's source
        return {"type": "url", "url": URL}
    if part.get("type") == "input_image":
        return {**part, "image_url": URL}
    if "inlineData" in part:
        return {"fileData": {"mimeType": "image/png", "fileUri": URL}}
    return {k: pointing_away(v) for k, v in part.items()}


@pytest.mark.parametrize(
    ("name", "body"),
    [pytest.param("anthropic", CLAUDE_CODE, id="claude-code"),
     pytest.param("anthropic", OPENCODE, id="opencode"),
     pytest.param("responses", CODEX, id="codex"),
     pytest.param("gemini", GEMINI_CLI, id="gemini-cli")],
)  # fmt: skip
def test_what_the_pinned_clis_send_is_inline_until_it_points_elsewhere(
    name: wire.Name, body: dict[str, object]
) -> None:
    """Their requests, each with the PNG a tool read, are bounded by their bytes and the
    image's allowance; the same request with that image at a URL, by the ceiling."""
    sent = bound(name, body)
    assert sent.inline() and sent.max_input() == sent.size + wire.IMAGE_TOKENS
    pointing = bound(name, pointing_away(body))
    assert not pointing.inline() and pointing.max_input() == billing.CEILING_INPUT


def test_codex_names_a_server_side_search_in_every_request_so_its_bound_is_the_ceiling() -> None:
    """Codex 0.169.0 offers the API's own web search (from its cache) in every request: what
    a search adds to the input is the API's to say, so a cut Codex answer is charged the
    ceiling of input."""
    searching = CODEX | {"tools": [*CODEX["tools"], {
        "type": "web_search", "external_web_access": False,
        "search_content_types": ["text", "image"]}]}  # fmt: skip
    assert bound("responses", searching).max_input() == billing.CEILING_INPUT


def test_a_request_nested_past_what_python_reads_is_bounded_by_the_ceiling() -> None:
    """A hostile body's depth raises RecursionError, not ValueError, where it is read."""
    deep = wire.Request("anthropic")
    deep.feed(b"[" * 100_000 + b"]" * 100_000)
    assert deep.max_input() == billing.CEILING_INPUT
    assert deep.max_output() == billing.CEILING_OUTPUT


# -- a request's output is bounded for each answer it asks for (issue 83) ------------------


@pytest.mark.parametrize(
    ("name", "asked", "most"),
    [("chat", {"n": 128, "max_tokens": 16_000}, 2_048_000),
     ("chat", {"n": 8, "max_completion_tokens": 4_000}, 32_000),
     ("chat", {"n": 3}, 3 * billing.CEILING_OUTPUT),
     ("chat", {"n": 1_000, "max_tokens": 100}, 100_000),  # above what the API takes: as said
     ("chat", {"n": 10**30, "max_tokens": 100}, billing.MOST_OUTPUT),  # what a tally holds
     ("chat", {"n": 2, "max_tokens": 10, "max_completion_tokens": 4_000}, 8_000),
     ("gemini", {"generationConfig": {"candidateCount": 8, "maxOutputTokens": 8_192}}, 65_536),
     ("gemini", {"generation_config": {"candidate_count": 8, "max_output_tokens": 8_192}},
      65_536),
     ("gemini", {"generationConfig": {"candidate_count": 8, "maxOutputTokens": 8_192}}, 65_536),
     ("gemini", {"generationConfig": {"candidateCount": 1, "maxOutputTokens": 8_192},
                 "generation_config": {"candidateCount": 4, "maxOutputTokens": 2}}, 32_768)],
)  # fmt: skip
def test_a_requests_output_is_bounded_by_its_cap_for_each_answer_it_asks_for(
    name: wire.Name, asked: dict[str, object], most: int
) -> None:
    """Chat Completions bills `n` answers, Gemini `candidateCount`, each up to the cap, in
    any spelling the API reads: a cut or unreadable answer is charged all of them."""
    assert bound(name, ask(name, **asked)).max_output() == most


@pytest.mark.parametrize(
    "count", ["8", 8.0, True, -1, 0, 1e30, [8], {"n": 8}], ids=repr
)  # a string, a float, a boolean, not positive, not a number
@pytest.mark.parametrize(
    ("name", "asking"),
    [("chat", lambda n: {"n": n, "max_tokens": 100}),
     ("gemini", lambda n: {"generationConfig": {"candidateCount": n, "maxOutputTokens": 100}})],
)  # fmt: skip
def test_a_count_of_answers_that_is_no_positive_integer_is_bounded_by_the_ceiling(
    name: wire.Name, asking: Callable[[object], dict[str, object]], count: object
) -> None:
    """What the API makes of it is unknown (Gemini reads `"8"` as 8): never fewer than the
    most Chat Completions takes."""
    assert bound(name, ask(name, **asking(count))).max_output() == billing.CEILING_ANSWERS * 100


@pytest.mark.parametrize(
    ("name", "asked", "most"),
    [("chat", {"best_of": 4, "max_tokens": 100}, billing.CEILING_ANSWERS * 100),
     ("chat", {"use_beam_search": True, "n": 2, "max_tokens": 100},
      billing.CEILING_ANSWERS * 100),
     ("chat", {"best_of": 500, "max_tokens": 100}, 50_000),  # above the ceiling: as said
     ("gemini", {"candidateCount": 8, "generationConfig": {"maxOutputTokens": 100}},
      billing.CEILING_ANSWERS * 100),
     ("chat", {"n": 2, "max_tokens": "16000", "max_completion_tokens": 10},
      2 * billing.CEILING_OUTPUT)],
)  # fmt: skip
def test_a_field_the_meter_does_not_know_may_ask_for_more_answers(
    name: wire.Name, asked: dict[str, object], most: int
) -> None:
    """An OpenAI-compatible server takes fields of its own (`best_of`, beam search), as
    unknown input is bounded by the ceiling; so is a cap it cannot read beside one it can."""
    assert bound(name, ask(name, **asked)).max_output() == most


def test_a_body_that_cannot_be_read_asks_for_as_many_answers_as_its_api_takes() -> None:
    """Over what the meter reads (the API may read it), or not JSON: Chat Completions and
    Gemini bound it by the ceiling of answers; the Messages and Responses APIs answer once."""
    for name, answers in (("chat", billing.CEILING_ANSWERS), ("gemini", billing.CEILING_ANSWERS),
                          ("anthropic", 1), ("responses", 1)):  # fmt: skip
        large = wire.Request(name, limit=1_000)
        large.feed(json.dumps(ask(name, n=128, max_tokens=16_000) | {"pad": "x" * 1_000}).encode())
        odd = wire.Request(name)
        odd.feed(b"not json")
        for unread in (large, odd):
            assert unread.max_output() == answers * billing.CEILING_OUTPUT, name
    anthropic = bound("anthropic", ask("anthropic", n=128))  # the Messages API refuses it
    assert anthropic.max_output() == 1_000


def test_a_body_that_gives_a_name_twice_is_unreadable_and_bounded_by_the_ceiling() -> None:
    """Which of two values an API's parser keeps is its own: `"n": 128, "n": 1` is read by
    neither, so the answers and the cap are the ceiling's (and the input, as unknown)."""
    twice = wire.Request("chat")
    twice.feed(b'{"model": "m", "messages": [], "max_tokens": 100, "n": 128, "n": 1}')
    assert twice.max_output() == billing.CEILING_ANSWERS * billing.CEILING_OUTPUT
    nested = wire.Request("gemini")
    nested.feed(b'{"generationConfig": {"candidateCount": 8, "candidateCount": 1}}')
    assert nested.max_output() == billing.CEILING_ANSWERS * billing.CEILING_OUTPUT


def test_an_absurd_cap_or_count_is_charged_the_most_a_tally_holds() -> None:
    """A worker's `max_tokens: 1e30` (refused by any API) is charged the most, not a number
    the store cannot write."""
    huge = wire.Request("chat")
    huge.feed(json.dumps({"model": "m", "messages": [], "max_tokens": 10**30, "n": 10**9}).encode())
    assert huge.max_output() == billing.MOST_OUTPUT
