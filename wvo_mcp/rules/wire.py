"""What a model API's answer says it billed, in each vendor's wire format (pure).

What a model API's answer says it billed, in each vendor's wire format (pure): the
endpoints a coding agent calls, and how a JSON body or an event stream states its usage.
Carried out by `wvo_mcp/sandbox/meter.py`, which charges each response as its bytes pass.

- anthropic: the Messages API. A stream says its input at `message_start`, its output at
  `message_delta`.
- responses: OpenAI's Responses API (Codex). A stream says both only at its end
  (`response.completed`, `.incomplete` or `.failed`).
- chat: OpenAI's Chat Completions. A stream says them in a last chunk, and only if the
  request asked (`stream_options.include_usage`).
- gemini: Gemini's `generateContent`, and `streamGenerateContent` (`alt=sse`), whose every
  chunk carries the usage so far.

Until a stream says its output, it is charged at most what its deltas carried (a token is at
least one byte of its text). Until it says its input, a request is charged its own bytes (a
token is at least one byte of what is sent) and a fixed allowance for each inline image only
when every part of it is content the meter knows to be inline, by an allowlist of each
format's fields and parts (`extra_input`). Any other request (one that points at a file, a
URL, a stored prompt or response, or names a server-side tool or a field the meter does not
know) is charged the ceiling, and so is its input when its stream ends before it says its
output, whatever it had said of it (a server tool's results add to it as it answers). Where
its output is bounded by the request, that is its cap for each answer it asks for (`answers`).
"""

import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

from wvo_mcp.rules import billing

Name = Literal["anthropic", "responses", "chat", "gemini"]
_QUERY = r"(\?[A-Za-z0-9_.=&%-]{0,256})?"
_MODEL = r"[A-Za-z0-9._-]{1,100}"
# (method, path under the base URL's, format of the answer, or None: nothing to charge).
ENDPOINTS: dict[str, tuple[tuple[str, str, Name | None], ...]] = {
    # Claude Code 2.1.197 with nonessential traffic off: a HEAD of the base URL to see that it
    # answers, the Messages API, and its token counter (a query of plain words may follow).
    "anthropic": (("HEAD", "", None), ("HEAD", "/", None),
                  ("POST", "/v1/messages", "anthropic"),
                  ("POST", "/v1/messages/count_tokens", None)),
    # Under an OpenAI base URL (`…/v1`).
    "openai": (("POST", "/responses", "responses"), ("POST", "/chat/completions", "chat"),
               ("GET", "/models", None)),
    # Under Gemini's (`https://generativelanguage.googleapis.com`), v1 and v1beta alike.
    "gemini": (("POST", rf"/v1(beta)?/models/{_MODEL}:generateContent", "gemini"),
               ("POST", rf"/v1(beta)?/models/{_MODEL}:streamGenerateContent", "gemini"),
               ("POST", rf"/v1(beta)?/models/{_MODEL}:countTokens", None),
               ("GET", rf"/v1(beta)?/models(/{_MODEL})?", None)),
}  # fmt: skip
Api = Literal["anthropic", "openai", "gemini"]


def endpoint(api: Api, method: bytes, target: bytes, base: str) -> tuple[bool, Name | None]:
    """Whether `method target` is one of `api`'s endpoints under `base` (origin form, the
    base URL's path), and which format its answer is in (None: nothing billed)."""
    for allowed, path, name in ENDPOINTS[api]:
        pattern = re.escape(base) + path if base or path else "/"
        if method.decode("ascii", "replace") == allowed and re.fullmatch(
            (pattern or "/") + _QUERY, target.decode("ascii", "replace")
        ):
            return True, name
    return False, None


def known(api: Api, base: str) -> str:
    """The endpoints, as a refusal names them."""
    return ", ".join(dict.fromkeys(f"{m} {base + p or '/'}" for m, p, _ in ENDPOINTS[api]))


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _at(found: object, *path: str) -> object:
    for key in path:
        found = found.get(key) if isinstance(found, dict) else None
    return found


@dataclass
class Usage:
    """One response's usage as its body or events say it: the most each figure reached,
    and whether the API has said each (else the stream's bound stands for it)."""

    input_tokens: int = 0
    output_tokens: int = 0
    said_input: bool = False
    said_output: bool = False
    streamed: int = 0  # output tokens at most, by the text the deltas carried

    def input(self, tokens: int, restated: bool = False) -> None:
        """`restated`: the figure stands for the whole so far (a Gemini chunk's, which a
        later one may lower when it names the cached part), else the most it reached."""
        self.input_tokens = tokens if restated else max(self.input_tokens, tokens)
        self.said_input = True

    def output(self, tokens: int) -> None:
        self.output_tokens = max(self.output_tokens, tokens)
        self.said_output = True


def read_body(name: Name, body: object, usage: Usage) -> None:
    """A JSON answer's usage."""
    if name == "anthropic":
        _anthropic(_at(body, "usage"), usage)
    elif name in _OPENAI_NAMES:
        _openai(name, _at(body, "usage"), usage)
    else:
        _gemini(_at(body, "usageMetadata"), usage)


def read_event(name: Name, event: object, usage: Usage) -> None:
    """One event of a stream (its `data:` as JSON)."""
    if not isinstance(event, dict):
        return
    kind = event.get("type")
    if name == "anthropic":
        if kind == "message_start":
            _anthropic(_at(event, "message", "usage"), usage, output=False)
        elif kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            usage.streamed += billing.streamed_output(event["delta"])
        elif kind == "message_delta":
            _anthropic(event.get("usage"), usage)
    elif name == "responses":
        if isinstance(kind, str) and kind.endswith(".delta"):
            usage.streamed += _bytes(event.get("delta"))
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            _openai(name, _at(event, "response", "usage"), usage)
    elif name == "chat":
        for choice in event.get("choices") or []:
            delta = _at(choice, "delta")
            if isinstance(delta, dict):
                usage.streamed += _bytes(json.dumps(delta)) if delta else 0
        _openai(name, event.get("usage"), usage)
    else:
        for candidate in event.get("candidates") or []:
            usage.streamed += _bytes(json.dumps(_at(candidate, "content") or ""))
        _gemini(event.get("usageMetadata"), usage, final="candidates" in event and any(
            _at(c, "finishReason") for c in event.get("candidates") or []))  # fmt: skip


def _bytes(text: object) -> int:
    return max(1, len(text.encode())) if isinstance(text, str) and text else 0


def _anthropic(found: object, usage: Usage, output: bool = True) -> None:
    if not isinstance(found, dict):
        return
    if any(k in found for k in ("input_tokens", "cache_read_input_tokens")):
        usage.input(billing.anthropic_input(found))
    if output and "output_tokens" in found:
        usage.output(_count(found.get("output_tokens")))


# OpenAI's two APIs name the same figures apart: (input, its details, output).
_OPENAI_NAMES = {
    "responses": ("input_tokens", "input_tokens_details", "output_tokens"),
    "chat": ("prompt_tokens", "prompt_tokens_details", "completion_tokens"),
}


def _openai(name: Name, found: object, usage: Usage) -> None:
    """OpenAI's usage (Responses or Chat Completions): its input counts its cached part."""
    if not isinstance(found, dict):
        return
    given, details, made = _OPENAI_NAMES[name]
    cached = _count(_at(found, details, "cached_tokens"))
    usage.input(billing.openai_input({"input_tokens": found.get(given),
                                      "cached_input_tokens": cached}))  # fmt: skip
    usage.output(_count(found.get(made)))


def _gemini(found: object, usage: Usage, final: bool = True) -> None:
    """Gemini's figures: its prompt (with tool-use prompts) counts its cached part; its
    output, the candidates and the model's thoughts. A stream's chunks say them so far."""
    if not isinstance(found, dict):
        return
    prompt = _count(found.get("promptTokenCount")) + _count(found.get("toolUsePromptTokenCount"))
    cached = _count(found.get("cachedContentTokenCount"))
    usage.input(billing.openai_input({"input_tokens": prompt, "cached_input_tokens": cached}),
                restated=True)  # fmt: skip
    out = _count(found.get("candidatesTokenCount")) + _count(found.get("thoughtsTokenCount"))
    usage.output_tokens = max(usage.output_tokens, out)
    usage.said_output = usage.said_output or final


# -- what a request's input can bill, before its answer says ---------------------------------
#
# An allowlist, format by format: a list of what points elsewhere would always be one field
# short (issue 69). What it names is what the pinned coding CLIs send (Claude Code, OpenCode,
# Codex, Gemini CLI; tests/unit/test_wire.py holds their shapes) and plain inline content;
# everything else bounds the request's input by the ceiling. Nothing is refused: a request's
# body passes on as it arrives, and the ceiling is charged only when its answer never says.

# An inline image bills by its pixels, not its bytes (a flat PNG is a few hundred bytes at any
# size): each counts as the most one image bills on the vendors' models (gpt-4o-mini's, at
# high detail, 48,169 tokens; Claude's, at most 3.75 MP / 750 = 5,000).
IMAGE_TOKENS = 65_536


class _Outside(Exception):
    """A part that is not content the meter knows to be inline."""


def _fields(part: object, known: Collection[str]) -> dict[str, object]:
    """`part`, an object with none but the `known` fields."""
    if not isinstance(part, dict) or not part.keys() <= set(known):
        raise _Outside
    return part


def _items(value: object) -> list[object]:
    if not isinstance(value, list):
        raise _Outside
    return value


def _kind(part: object, kinds: Mapping[str, Collection[str]]) -> tuple[str, dict[str, object]]:
    """`part`'s `type`, one of `kinds`, with none but that kind's fields."""
    kind = part.get("type") if isinstance(part, dict) else None
    if not isinstance(kind, str) or kind not in kinds:
        raise _Outside
    return kind, _fields(part, kinds[kind])


def _data_image(url: object) -> int:
    """An image given inline as a data URL (an http(s) URL is fetched by the API)."""
    if isinstance(url, str) and re.match(r"data:image/[\w.+-]+;base64,", url):
        return 1
    raise _Outside


# Anthropic's Messages API. `context_management` may only clear (its compaction is another
# sampling of the whole context); a tool is a custom one (a typed one is a server tool, whose
# results add input as it answers, or an Anthropic-defined one, with a prompt of its own).
_ANTHROPIC = frozenset({
    "model", "messages", "system", "max_tokens", "stream", "metadata", "stop_sequences",
    "temperature", "top_k", "top_p", "tools", "tool_choice", "thinking", "context_management",
    "service_tier", "output_config", "output_format",
})  # fmt: skip
_ANTHROPIC_BLOCKS: dict[str, Collection[str]] = {
    "text": ("type", "text", "cache_control", "citations"),
    "image": ("type", "source", "cache_control"),
    "document": ("type", "source", "title", "context", "citations", "cache_control"),
    "tool_use": ("type", "id", "name", "input", "cache_control", "caller"),
    "tool_result": ("type", "tool_use_id", "content", "is_error", "cache_control"),
    "thinking": ("type", "thinking", "signature"),
    "redacted_thinking": ("type", "data"),
}
_ANTHROPIC_TOOL = frozenset({
    "type", "name", "description", "input_schema", "cache_control", "defer_loading",
    "eager_input_streaming", "strict", "input_examples",
})  # fmt: skip


def _anthropic_request(body: object) -> int:
    found = _fields(body, _ANTHROPIC)
    images = _anthropic_content(found.get("system", ""), ("text",))
    for message in _items(found.get("messages", [])):
        images += _anthropic_content(_fields(message, ("role", "content")).get("content", ""))
    for tool in _items(found.get("tools", [])):
        if _fields(tool, _ANTHROPIC_TOOL).get("type", "custom") != "custom":
            raise _Outside
    for edit in _items(_fields(found.get("context_management", {}), ("edits",)).get("edits", [])):
        kind = edit.get("type") if isinstance(edit, dict) else None
        if not (isinstance(kind, str) and kind.startswith("clear_")):
            raise _Outside
    return images


def _anthropic_content(content: object, kinds: Collection[str] = tuple(_ANTHROPIC_BLOCKS)) -> int:
    if isinstance(content, str):
        return 0
    images = 0
    for block in _items(content):
        kind, found = _kind(block, {k: v for k, v in _ANTHROPIC_BLOCKS.items() if k in kinds})
        if kind == "image":
            images += _anthropic_source(found.get("source"), ("base64",))
        elif kind == "document":  # a PDF's pages are not sized by its bytes: text only
            images += _anthropic_source(found.get("source"), ("text", "content"))
        elif kind == "tool_result":
            images += _anthropic_content(found.get("content", ""), ("text", "image", "document"))
    return images


def _anthropic_source(source: object, kinds: Collection[str]) -> int:
    """An image's or a document's source given inline (a `url` or a `file` is fetched)."""
    sources = {"base64": ("type", "media_type", "data"), "text": ("type", "media_type", "data"),
               "content": ("type", "content")}  # fmt: skip
    kind, found = _kind(source, {k: sources[k] for k in kinds})
    if kind == "content":
        return _anthropic_content(found.get("content", ""), ("text", "image"))
    media = found.get("media_type")
    if not isinstance(media, str) or not media.startswith("text/" if kind == "text" else "image/"):
        raise _Outside
    return 1 if kind == "base64" else 0


# OpenAI's Responses API. A stored prompt, response or conversation, `background` (it goes on
# after its stream is cut) and every server-side tool are outside; Codex's client-executed
# tool search is in.
_RESPONSES = frozenset({
    "model", "input", "instructions", "stream", "stream_options", "tools", "tool_choice",
    "parallel_tool_calls", "reasoning", "store", "include", "prompt_cache_key",
    "prompt_cache_retention", "text", "client_metadata", "metadata", "max_output_tokens",
    "max_tool_calls", "temperature", "top_p", "top_logprobs", "truncation", "service_tier",
    "user", "safety_identifier",
})  # fmt: skip
_RESPONSES_ITEMS: dict[str, Collection[str]] = {
    "message": ("type", "id", "role", "content", "status", "phase"),
    "function_call": ("type", "id", "call_id", "name", "arguments", "status", "namespace"),
    "function_call_output": ("type", "id", "call_id", "output", "status"),
    "custom_tool_call": ("type", "id", "call_id", "name", "input", "status", "namespace"),
    "custom_tool_call_output": ("type", "id", "call_id", "output", "status"),
    "reasoning": ("type", "id", "summary", "content", "encrypted_content", "status"),
    "tool_search_call": ("type", "id", "call_id", "arguments", "status", "execution"),
    "tool_search_output": ("type", "id", "call_id", "status", "execution", "tools"),
}
_RESPONSES_PARTS: dict[str, Collection[str]] = {
    "input_text": ("type", "text"),
    "output_text": ("type", "text", "annotations", "logprobs"),
    "refusal": ("type", "refusal"),
    "input_image": ("type", "image_url", "detail"),
}
_RESPONSES_TOOLS: dict[str, Collection[str]] = {
    "function": ("type", "name", "description", "parameters", "strict", "defer_loading"),
    "custom": ("type", "name", "description", "format", "defer_loading"),
    "namespace": ("type", "name", "description", "tools"),
    "tool_search": ("type", "execution", "description", "parameters"),
}


def _responses_request(body: object) -> int:
    found = _fields(body, _RESPONSES)
    if not isinstance(found.get("instructions", ""), str):
        raise _Outside
    _responses_tools(found.get("tools", []))
    given = found.get("input", "")
    if isinstance(given, str):
        return 0
    images = 0
    for item in _items(given):
        if isinstance(item, dict) and "type" not in item:  # a message by its role alone
            item = {**item, "type": "message"}
        kind, part = _kind(item, _RESPONSES_ITEMS)
        if kind in ("message", "function_call_output", "custom_tool_call_output"):
            images += _responses_content(part.get("content" if kind == "message" else "output"))
        elif kind == "reasoning":
            for said in [*_items(part.get("summary", [])), *_items(part.get("content", []))]:
                _kind(said, {"summary_text": ("type", "text"), "reasoning_text": ("type", "text")})
        elif kind == "tool_search_output":
            _responses_tools(part.get("tools", []))
    return images


def _responses_content(content: object) -> int:
    if isinstance(content, str):
        return 0
    images = 0
    for part in _items(content):
        kind, found = _kind(part, _RESPONSES_PARTS)
        if kind == "input_image":
            images += _data_image(found.get("image_url"))
    return images


def _responses_tools(tools: object) -> None:
    for tool in _items(tools):
        kind, found = _kind(tool, _RESPONSES_TOOLS)
        if kind == "namespace":
            _responses_tools(found.get("tools", []))
        elif kind == "tool_search" and found.get("execution") != "client":
            raise _Outside


# OpenAI's Chat Completions. Server-side search (`web_search_options`), audio (its input is
# not sized by its bytes; an assistant's `audio` is a stored answer) and files are outside.
_CHAT = frozenset({
    "model", "messages", "stream", "stream_options", "tools", "tool_choice",
    "parallel_tool_calls", "functions", "function_call", "temperature", "top_p", "n", "stop",
    "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty",
    "logit_bias", "logprobs", "top_logprobs", "response_format", "seed", "user",
    "safety_identifier", "reasoning_effort", "verbosity", "service_tier", "store", "metadata",
    "prompt_cache_key", "prompt_cache_retention",
})  # fmt: skip
_CHAT_MESSAGE = frozenset({
    "role", "content", "name", "tool_calls", "tool_call_id", "function_call", "refusal",
})  # fmt: skip
_CHAT_PARTS: dict[str, Collection[str]] = {
    "text": ("type", "text"),
    "refusal": ("type", "refusal"),
    "image_url": ("type", "image_url"),
}


def _chat_request(body: object) -> int:
    found = _fields(body, _CHAT)
    for tool in _items(found.get("tools", [])):
        _kind(tool, {"function": ("type", "function"), "custom": ("type", "custom")})
    images = 0
    for message in _items(found.get("messages", [])):
        content = _fields(message, _CHAT_MESSAGE).get("content")
        if content is None or isinstance(content, str):
            continue
        for part in _items(content):
            kind, given = _kind(part, _CHAT_PARTS)
            if kind == "image_url":
                images += _data_image(_fields(given.get("image_url"), ("url", "detail")).get("url"))
    return images


# Gemini's generateContent, whose JSON takes camelCase and snake_case names alike. A cached
# content, a file by its URI, and every tool but function declarations (Google Search, URL
# context, code execution run on the server) are outside.
_GEMINI = frozenset({
    "contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
    "safetySettings", "labels", "model",
})  # fmt: skip
_GEMINI_PART = frozenset({
    "text", "thought", "thoughtSignature", "inlineData", "functionCall", "functionResponse",
    "executableCode", "codeExecutionResult", "mediaResolution",
})  # fmt: skip


def _camel(part: object) -> object:
    """`part` with its fields named in camelCase, as Gemini reads either."""
    if not isinstance(part, dict):
        return part
    return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): v for k, v in part.items()}


def _gemini_request(body: object) -> int:
    found = _fields(_camel(body), _GEMINI)
    for tool in _items(found.get("tools", [])):
        _fields(_camel(tool), ("functionDeclarations",))
    system = found.get("systemInstruction")
    contents = _items(found.get("contents", [])) + ([] if system is None else [system])
    images = 0
    for content in contents:
        if not isinstance(content, str):
            images += _gemini_parts(_fields(_camel(content), ("role", "parts")).get("parts", []))
    return images


def _gemini_parts(parts: object) -> int:
    images = 0
    for part in _items(parts):
        found = _fields(_camel(part), _GEMINI_PART)
        if "inlineData" in found:  # an image or text: a sound's, a video's or a PDF's
            data = _fields(_camel(found["inlineData"]), ("mimeType", "data", "displayName"))
            media = data.get("mimeType")  # tokens are not sized by their bytes
            if not isinstance(media, str) or not media.startswith(("image/", "text/")):
                raise _Outside
            images += 1 if media.startswith("image/") else 0
        response = _fields(_camel(found.get("functionResponse", {})), (
            "id", "name", "response", "parts", "willContinue", "scheduling"))  # fmt: skip
        images += _gemini_parts(response.get("parts", []))
    return images


_READERS: dict[Name, Callable[[object], int]] = {
    "anthropic": _anthropic_request,
    "responses": _responses_request,
    "chat": _chat_request,
    "gemini": _gemini_request,
}


def extra_input(name: Name, body: object) -> int | None:
    """What a request in format `name` can bill beyond its own bytes when every part of it is
    content the meter knows to be inline (IMAGE_TOKENS an inline image); None when any is not:
    a reference, a URL, a stored object, a server-side tool, a field it does not know."""
    try:
        return _READERS[name](body) * IMAGE_TOKENS
    except (_Outside, RecursionError):
        return None


# -- how many answers a request's output is billed for ---------------------------------------
#
# Chat Completions bills its cap on output for each of `n` answers, Gemini for each of
# `candidateCount`; the Messages and Responses APIs answer once, and refuse a field they do
# not know. An OpenAI-compatible server at a person's base URL may take its own (`best_of`,
# beam search), so in the formats that can ask for several, what the meter cannot read (a
# field it does not know, a count that is no positive integer, the body) asks for the
# ceiling's many, as unknown input is bounded by the ceiling.
_CAPS: tuple[tuple[str, ...], ...] = (
    ("max_tokens",), ("max_output_tokens",), ("max_completion_tokens",),
    *((c, f) for c in ("generationConfig", "generation_config")
      for f in ("maxOutputTokens", "max_output_tokens")),
)  # fmt: skip
_ANSWERS: dict[Name, tuple[tuple[str, ...], ...]] = {
    "chat": (("n",), ("best_of",)),
    "gemini": tuple((c, f) for c in ("generationConfig", "generation_config")
                    for f in ("candidateCount", "candidate_count")),
}  # fmt: skip
_KNOWN: dict[Name, frozenset[str]] = {"chat": _CHAT, "gemini": _GEMINI}


def _most(
    body: Mapping[str, object], paths: tuple[tuple[str, ...], ...], absent: int, ceiling: int
) -> int:
    """The largest count `body` gives at `paths` (a null is its API's default: not given).
    One that is no positive integer counts as `ceiling`: what its API makes of it is unknown
    (Gemini reads `"8"` as 8). Any other is taken at its word, as a larger one only adds."""
    found = [v for v in (_at(body, *path) for path in paths) if v is not None]
    return max((_count(v) or ceiling for v in found), default=absent)


def answers(name: Name | None, body: Mapping[str, object] | None) -> int:
    """How many answers a request in format `name` asks for, each billed up to its cap on
    output (`body`: None when it cannot be read)."""
    if name is None or name not in _ANSWERS:
        return 1
    if body is None:
        return billing.CEILING_ANSWERS
    most = _most(body, _ANSWERS[name], 1, billing.CEILING_ANSWERS)
    try:
        _fields(_camel(body) if name == "gemini" else body, _KNOWN[name])
    except _Outside:
        return max(most, billing.CEILING_ANSWERS)
    return most


def _unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """An object whose every name is given once. Which of a name's two values a parser keeps
    is its own choice (Python's the last, another's maybe the first): a body that gives one
    twice (`"n": 128, "n": 1`) is unreadable, and bounded by the ceiling."""
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a name given twice")
    return found


@dataclass
class Request:
    """A request's body in wire format `name`, read as it passes for the most it may be
    billed."""

    name: Name | None  # None: an endpoint nothing is billed for
    held: bytearray = field(default_factory=bytearray)
    size: int = 0
    limit: int = 8 * 1024 * 1024
    _read: tuple[int | None] | None = field(default=None, repr=False)  # extra_input, once

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        self._read = None
        if len(self.held) <= self.limit:
            self.held += data

    def _body(self) -> Mapping[str, object] | None:
        if len(self.held) > self.limit:
            return None
        try:
            found = json.loads(self.held, object_pairs_hook=_unique)
        except (ValueError, RecursionError):  # nested past what Python reads: unreadable
            return None
        return found if isinstance(found, dict) else None

    def max_output(self) -> int:
        """Its own cap on output (the most any format's name for it gives), else the
        ceiling's, for each answer it asks for; at most billing.MOST_OUTPUT."""
        body = self._body()
        cap = _most(body or {}, _CAPS, billing.CEILING_OUTPUT, billing.CEILING_OUTPUT)
        return min(cap * answers(self.name, body), billing.MOST_OUTPUT)

    def inline(self) -> bool:
        """Whether every part of it is content the meter knows to be inline: what its API
        says of its input as its answer starts is then all of it."""
        return self._extra() is not None

    def max_input(self) -> int:
        """The most its input can be billed: its own bytes and its images' allowance when it
        is all inline content; else, or when it cannot be read, the ceiling."""
        extra = self._extra()
        return billing.CEILING_INPUT if extra is None else min(
            self.size + extra, billing.CEILING_INPUT)  # fmt: skip

    def _extra(self) -> int | None:
        if self._read is None:
            body = self._body()
            self._read = (None if body is None or self.name is None
                          else extra_input(self.name, body),)  # fmt: skip
        return self._read[0]
