"""What a worker's output says happened (pure): token usage and the outcome.

Claude Code (`--output-format stream-json`) ends with one `result` line. Its `subtype` says
"success" even for errors: `is_error`, `api_error_status` (the API's HTTP status) and
`terminal_reason` tell them apart (see tests/autopilot/samples/claude, recorded from the
real CLI). Codex (`exec --json`) reports usage on each `turn.completed` and failures on
`turn.failed` or `error` events, by message only. A `command` worker is judged by its exit
code and, on failure, the same message patterns. An `acp` worker's driver (acp_driver.py)
writes an `acp` line per thing its agent does and one `acp_end` line for how its turn ended.

Every line is untrusted: a line that is not JSON, or not an object, is ignored.

Carries out `rules/billing.py`."""

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from wvo_mcp.rules import billing

Outcome = Literal["success", "failure", "rate_limited", "context_limit", "auth"]
MESSAGE_CHARS = 8000  # a reviewer's notes fit; reasons written to events are cut shorter
GLIMPSE_CHARS = 240  # a line of the dashboard's live log

# By HTTP status first (Claude Code names it), then by message (Codex, plain CLIs).
_BY_STATUS: dict[int, Outcome] = {401: "auth", 403: "auth", 429: "rate_limited"}
_PATTERNS: tuple[tuple[Outcome, re.Pattern[str]], ...] = (
    (
        "auth",
        re.compile(
            r"invalid (x-)?api[ -]key|authentication|unauthori[sz]ed|not logged in|"
            r"please (run /)?login|\b401\b|token (has )?expired|sign in again|"
            r"missing environment variable",
            re.IGNORECASE,
        ),
    ),
    (
        "context_limit",
        re.compile(
            r"prompt is too long|context[ _-]window|context[ _-]length|maximum context|"
            r"too many tokens|input is too long|prompt_too_long",
            re.IGNORECASE,
        ),
    ),
    (
        "rate_limited",
        re.compile(r"rate[ _-]?limit|usage limit|too many requests|\b429\b|quota", re.IGNORECASE),
    ),
)


@dataclass
class Usage:
    input_tokens: int = 0  # what the model read, cached input at its price (rules/billing)
    output_tokens: int = 0
    cost_usd: float | None = None  # as the CLI reported it, when it does


@dataclass
class Finish:
    outcome: Outcome
    usage: Usage
    message: str = ""
    denied: tuple[str, ...] = ()  # tools the CLI's permissions refused (Claude Code)
    limit: str = ""  # the limit that stopped it (run_limits.py), e.g. "memory limit … reached"
    said_usage: bool = False  # its CLI gave its word on what it used (a last line carrying it)
    # Once charged (isolation.metered), the words `usage` was taken from, kept for the run's
    # record: what its meter counted (None: no meter), what its CLI said (None: nothing).
    metered: Usage | None = None
    said: Usage | None = None


def classify(message: str) -> Outcome | None:
    """The outcome a failure message names, if it names one."""
    for outcome, pattern in _PATTERNS:
        if pattern.search(message):
            return outcome
    return None


def _object(line: str) -> dict[str, Any] | None:
    try:
        found = json.loads(line)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _text(value: object) -> str:
    return value[:MESSAGE_CHARS] if isinstance(value, str) else ""


def glimpse(line: str) -> str:
    """A worker's output line as the dashboard's live log shows it: a JSON event of Claude
    Code or Codex shortened to its type and what was said, called or run; any other line as
    it is. Cut to GLIMPSE_CHARS."""
    event = _object(line)
    if event is None:
        return line[:GLIMPSE_CHARS]
    said = []
    message = event.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            said.append(_text(part.get("text")))
        elif part.get("type") == "tool_use":
            said.append(f"calls {_text(part.get('name'))}")
        elif part.get("type") == "tool_result":
            said.append("tool result")
    item = event.get("item")
    if isinstance(item, dict):
        said.append(f"{_text(item.get('type'))}: {_text(item.get('text') or item.get('command'))}")
    if event.get("type") == "result":
        said.append(_text(event.get("result")))
    if event.get("type") in ("acp", "acp_end"):
        return _acp_glimpse(event)
    shown = " ".join(" ".join(s.split()) for s in said if s)
    return f"[{_text(event.get('type')) or '?'}] {shown}".rstrip()[:GLIMPSE_CHARS]


def _acp_glimpse(event: dict[str, Any]) -> str:
    """An ACP driver's line: what its agent planned, called, said or asked, or how it ended."""
    kind = _text(event.get("event")) or "end"
    if kind == "plan":
        entries = event.get("entries")
        steps = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
        done = sum(e.get("status") == "completed" for e in steps)
        now = next((e for e in steps if e.get("status") == "in_progress"), None)
        shown = f"{done}/{len(steps)} done" + (f"; now: {_text(now.get('content'))}" if now else "")
    elif kind == "tool":
        shown = (
            f"{_text(event.get('title')) or _text(event.get('id'))} ({_text(event.get('status'))})"
        )
    elif kind == "permission":
        shown = f"{_text(event.get('title'))}: {_text(event.get('answer'))}"
    elif kind == "end":
        ended = _text(event.get("error")) or _text(event.get("stop_reason"))
        shown = f"{ended}: {_text(event.get('message'))}"
    else:
        shown = _text(event.get("text")) or _text(event.get("agent"))
    return f"[{kind}] {' '.join(shown.split())}".rstrip()[:GLIMPSE_CHARS]


def tampered(lines: int, kind: str) -> str:
    """Why a run's outcome is not taken from its output: `lines` final lines where its CLI
    writes one (a process it started wrote to its output, or tried to)."""
    return (
        f"its output held {lines} {kind} lines where its CLI writes one: something it ran "
        "wrote to its output; counted as a failed attempt, charged the most any line said"
    )


def _most(a: Usage, b: Usage) -> Usage:
    """Per figure, the larger: what a run is charged when its output says it twice."""
    costs = [c for c in (a.cost_usd, b.cost_usd) if c is not None]
    return Usage(
        max(a.input_tokens, b.input_tokens),
        max(a.output_tokens, b.output_tokens),
        max(costs) if costs else None,
    )


@dataclass
class ClaudeStream:
    """Claude Code's stream-json: one `result` line at the end decides. More than one is
    tampering (docs/security.md, "What a run is charged"): the most any of them said is
    charged, and the outcome is a plain failure, unless a success came first, which no later
    line undoes."""

    results: list[dict[str, Any]] = field(default_factory=list)

    def feed(self, line: str) -> None:
        event = _object(line)
        if event is not None and event.get("type") == "result":
            self.results.append(event)

    def finish(self, exit_code: int | None) -> Finish:
        if not self.results:
            return Finish("failure", Usage(), f"no result line (exit code {exit_code})")
        finishes = [_claude_finish(result, exit_code) for result in self.results]
        if len(finishes) == 1:
            return dataclasses.replace(finishes[0], said_usage=True)
        usage = finishes[0].usage
        for other in finishes[1:]:
            usage = _most(usage, other.usage)
        first = finishes[0]
        if first.outcome == "success":
            return dataclasses.replace(first, usage=usage, said_usage=True)
        return Finish("failure", usage, tampered(len(finishes), "result"), said_usage=True)


def _claude_finish(result: dict[str, Any], exit_code: int | None) -> Finish:
    """What one `result` line says."""
    usage = result.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    cost = result.get("total_cost_usd")
    counted = Usage(
        input_tokens=billing.anthropic_input(usage),
        output_tokens=_count(usage.get("output_tokens")),
        cost_usd=float(cost)
        if isinstance(cost, int | float) and not isinstance(cost, bool) and 0 <= cost < 1e9
        else None,
    )
    denials = result.get("permission_denials")
    denied = tuple(
        sorted(
            {
                _text(d.get("tool_name"))[:100] or "?"
                for d in (denials if isinstance(denials, list) else [])
                if isinstance(d, dict)
            }
        )
    )
    message = _text(result.get("result"))
    if result.get("is_error") is not True and exit_code == 0:
        return Finish("success", counted, message, denied)
    status = result.get("api_error_status")
    if result.get("terminal_reason") == "prompt_too_long":
        outcome: Outcome = "context_limit"
    elif isinstance(status, int) and status in _BY_STATUS:
        outcome = _BY_STATUS[status]
    else:
        outcome = classify(message) or "failure"
    return Finish(outcome, counted, message, denied)


@dataclass
class CodexStream:
    """codex exec --json (tests/autopilot/samples/codex, recorded from codex-cli 0.169.0):
    each `turn.completed` carries the thread's usage so far (cached input included in
    input_tokens); `turn.failed` names the error. Top-level `error` events are not final
    (retries say "Reconnecting... n/5"; a model missing from Codex's catalog is one too)."""

    usage: Usage = field(default_factory=Usage)
    failed: str | None = None
    last_error: str = ""
    said: str = ""  # the last agent message: what a reviewer answered
    completed: bool = False
    finals: list[str] = field(default_factory=list)  # turn.completed / turn.failed, in order

    def feed(self, line: str) -> None:
        event = _object(line)
        if event is None:
            return
        kind = event.get("type")
        if kind == "turn.completed":
            self.completed = True
            self.finals.append("completed")
            usage = event.get("usage")
            if isinstance(usage, dict):  # the thread's so far: the most said is charged
                said = Usage(billing.openai_input(usage), _count(usage.get("output_tokens")))
                self.usage = _most(self.usage, said)
        elif kind == "turn.failed":
            self.finals.append("failed")
            error = event.get("error")
            if self.failed is None:
                self.failed = _text(error.get("message")) if isinstance(error, dict) else ""
        elif kind == "error":
            self.last_error = _text(event.get("message"))
        elif kind == "item.completed":
            item = event.get("item")
            if isinstance(item, dict) and item.get("type") == "agent_message":
                self.said = _text(item.get("text"))

    def finish(self, exit_code: int | None) -> Finish:
        # One turn ends once: a failure after its completion, a second failure or a
        # completion after a failure was written by something the run started.
        first = self.finals[0] if self.finals else None
        said = self.completed  # a completed turn says the thread's usage
        if exit_code == 0 and first == "completed":
            return Finish("success", self.usage, self.said, said_usage=said)
        if self.finals.count("failed") > 1 or (first == "failed" and self.completed):
            ended = tampered(len(self.finals), "turn end")
            return Finish("failure", self.usage, ended, said_usage=said)
        message = self.failed or self.last_error or f"exit code {exit_code}"
        return Finish(classify(message) or "failure", self.usage, message, said_usage=said)


@dataclass
class PlainStream:
    """Any other CLI: its exit code, and on failure its last lines' messages."""

    tail: list[str] = field(default_factory=list)

    def feed(self, line: str) -> None:
        self.tail = [*self.tail[-19:], line[:MESSAGE_CHARS]]

    def finish(self, exit_code: int | None) -> Finish:
        if exit_code == 0:
            return Finish("success", Usage())
        message = "\n".join(self.tail)[-MESSAGE_CHARS:] or f"exit code {exit_code}"
        return Finish(classify(message) or "failure", Usage(), message)


@dataclass
class AcpStream:
    """An ACP worker's driver: one `acp_end` line says how its agent's turn ended (its
    stop reason, or the error its prompt was answered with). Its usage is never taken from
    here: the run's meter counts it. More than one end is tampering, as for Claude Code."""

    ends: list[dict[str, Any]] = field(default_factory=list)

    def feed(self, line: str) -> None:
        event = _object(line)
        if event is not None and event.get("type") == "acp_end":
            self.ends.append(event)

    def finish(self, exit_code: int | None) -> Finish:
        if not self.ends:
            return Finish("failure", Usage(), f"no acp_end line (exit code {exit_code})")
        if len(self.ends) > 1:
            return Finish("failure", Usage(), tampered(len(self.ends), "acp_end"))
        end = self.ends[0]
        error, stop = _text(end.get("error")), _text(end.get("stop_reason"))
        message = _text(end.get("message"))
        word = end.get("usage")  # what its agent said it used, where it says (the driver's sum)
        said = isinstance(word, dict)
        used = Usage(_count(word.get("input_tokens")), _count(word.get("output_tokens"))) if (
            isinstance(word, dict)) else Usage()  # fmt: skip
        if error:
            return Finish(classify(error) or "failure", used, error, said_usage=said)
        if end.get("paused") is True and exit_code == 0:
            return Finish("success", used, message or "paused by a person", said_usage=said)
        if end.get("asked") is True and exit_code == 0:  # its task waits for the answer
            return Finish("success", used, message or "asked a person", said_usage=said)
        if stop == "end_turn" and exit_code == 0:
            return Finish("success", used, message, said_usage=said)
        ended = f"the agent's turn ended: {stop or '?'}; {message}"
        return Finish("failure", used, ended, said_usage=said)


Stream = ClaudeStream | CodexStream | PlainStream | AcpStream


def stream_for(kind: str) -> Stream:
    if kind == "claude":
        return ClaudeStream()
    if kind == "codex":
        return CodexStream()
    if kind == "acp":
        return AcpStream()
    return PlainStream()
