"""What a model API's answer says it billed, in each vendor's wire format (pure): the
endpoints a coding agent calls, and how a JSON body or an event stream states its usage.
The driver is sandbox/meter.py, which charges each response as its bytes pass.

- anthropic: the Messages API. A stream says its input at `message_start`, its output at
  `message_delta`.
- responses: OpenAI's Responses API (Codex). A stream says both only at its end
  (`response.completed`, `.incomplete` or `.failed`).
- chat: OpenAI's Chat Completions. A stream says them in a last chunk, and only if the
  request asked (`stream_options.include_usage`).
- gemini: Gemini's `generateContent`, and `streamGenerateContent` (`alt=sse`), whose every
  chunk carries the usage so far.

Until a stream says its output, it is charged at most what its deltas carried (a token is at
least one byte of its text). Until it says its input, a request that points at nothing
stored upstream is charged its own bytes (a token is at least one byte of what is sent), and
one that does point at stored state (`previous_response_id`, a cached content) the ceiling.
"""

import json
import re
from collections.abc import Mapping
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


@dataclass
class Request:
    """A request's body, read as it passes for the most it may be billed."""

    held: bytearray = field(default_factory=bytearray)
    size: int = 0
    limit: int = 8 * 1024 * 1024

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if len(self.held) <= self.limit:
            self.held += data

    def _body(self) -> Mapping[str, object] | None:
        if len(self.held) > self.limit:
            return None
        try:
            found = json.loads(self.held)
        except ValueError:
            return None
        return found if isinstance(found, dict) else None

    def max_output(self) -> int:
        """Its own cap on output (each format's name for it), else the ceiling's."""
        body = self._body() or {}
        found = (
            _count(body.get("max_tokens")) or _count(body.get("max_output_tokens"))
            or _count(body.get("max_completion_tokens"))
            or _count(_at(body, "generationConfig", "maxOutputTokens"))
        )  # fmt: skip
        return found or billing.CEILING_OUTPUT

    def max_input(self) -> int:
        """The most its input can be billed: its own bytes, unless it points at what the
        API keeps (a stored response, a cached content), or cannot be read: the ceiling."""
        body = self._body()
        stored = body is None or any(
            body.get(k) for k in ("previous_response_id", "conversation", "cachedContent")
        )
        return billing.CEILING_INPUT if stored else min(self.size, billing.CEILING_INPUT)
