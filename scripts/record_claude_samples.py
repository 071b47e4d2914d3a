#!/usr/bin/env python
"""Record what the real Claude Code CLI prints for each outcome the autopilot must recognise.

    python scripts/record_claude_samples.py                      # all scenarios
    python scripts/record_claude_samples.py success rate_limit   # some of them

The CLI pinned in tests/claude_code/ (installed by scripts/setup) runs headless once per
scenario (`claude -p PROMPT --output-format stream-json --verbose`, no MCP servers), pointed
at a scripted Anthropic Messages API on 127.0.0.1 that answers every request the same way:
a streamed text reply with usage (success) or one HTTP error. Its stdout goes, with the
temporary paths and the dummy key scrubbed, to tests/autopilot/samples/claude/<scenario>.jsonl,
and README.md there is rewritten with the CLI version and each run's exit code.

CLAUDE_CODE_MAX_RETRIES=1 keeps every run short while still showing one retry
(a `system`/`api_retry` line) for the errors the CLI retries.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLAUDE = ROOT / "tests" / "claude_code" / "node_modules" / ".bin" / "claude"
OUT = ROOT / "tests" / "autopilot" / "samples" / "claude"
API_KEY = "sk-ant-test"
PROMPT = "Say hello."
RUN_TIMEOUT_S = 60
MAX_RETRIES = 1

# scenario -> (HTTP status, Anthropic error type, message); None is the streamed success.
SCENARIOS: dict[str, tuple[int, str, str] | None] = {
    "success": None,
    "rate_limit": (
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your rate limit.",
    ),
    "auth": (401, "authentication_error", "invalid x-api-key"),
    "context_limit": (
        400,
        "invalid_request_error",
        "prompt is too long: 250000 tokens > 200000 maximum",
    ),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "server_error": (500, "api_error", "Internal server error"),
}
ABOUT = {
    "success": "a streamed text reply whose message_start/message_delta carry usage "
    "(input, output, cache read and cache creation tokens)",
    "rate_limit": "HTTP 429 `rate_limit_error`",
    "auth": 'HTTP 401 `authentication_error` "invalid x-api-key"',
    "context_limit": 'HTTP 400 `invalid_request_error` "prompt is too long: 250000 tokens > '
    '200000 maximum"',
    "overloaded": "HTTP 529 `overloaded_error`",
    "server_error": "HTTP 500 `api_error`",
}
USAGE = {
    "input_tokens": 1200,
    "cache_creation_input_tokens": 300,
    "cache_read_input_tokens": 4000,
    "output_tokens": 25,
}


def _sse(model: str) -> bytes:
    """The Messages API's stream for one text reply."""
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_scripted", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {**USAGE, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "text_delta", "text": "Hello from the scripted model."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": USAGE},
        {"type": "message_stop"},
    ]  # fmt: skip
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def serve(scenario: str) -> ThreadingHTTPServer:
    error = SCENARIOS[scenario]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.end_headers()

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or "{}")
            if error is None:
                payload = _sse(body.get("model", "claude-sonnet-4-5"))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
            else:
                status, kind, message = error
                payload = json.dumps(
                    {"type": "error", "error": {"type": kind, "message": message},
                     "request_id": "req_scripted"}
                ).encode()  # fmt: skip
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("request-id", "req_scripted")
                self.send_header("retry-after", "0")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def record(scenario: str) -> tuple[int, list[str]]:
    """Run the CLI against the scenario's API; its exit code and scrubbed stdout lines."""
    api = serve(scenario)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home, project = Path(tmp, "home"), Path(tmp, "project")
            home.mkdir()
            project.mkdir()
            run = subprocess.run(
                [str(CLAUDE), "-p", PROMPT, "--output-format", "stream-json", "--verbose",
                 "--strict-mcp-config", "--mcp-config", '{"mcpServers":{}}'],
                cwd=project,
                env={
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "HOME": str(home),
                    "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{api.server_address[1]}",
                    "ANTHROPIC_API_KEY": API_KEY,
                    "CLAUDE_CODE_MAX_RETRIES": str(MAX_RETRIES),
                    "DISABLE_TELEMETRY": "1",
                    "DISABLE_AUTOUPDATER": "1",
                    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                },
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
            )  # fmt: skip
            if run.stderr.strip():
                print(f"[{scenario}] stderr: {run.stderr.strip()[-2000:]}", file=sys.stderr)
            scrubbed = []
            for line in run.stdout.splitlines():
                for real, fake in (
                    (str(project.resolve()), "/work/project"),
                    (str(project), "/work/project"),
                    (str(home.resolve()), "/work/home"),
                    (str(home), "/work/home"),
                    (re.sub(r"[^A-Za-z0-9]", "-", str(project)), "-work-project"),  # memory path
                    (f"127.0.0.1:{api.server_address[1]}", "127.0.0.1:PORT"),  # random each run
                    (API_KEY, "sk-ant-REDACTED"),
                ):
                    line = line.replace(real, fake)
                scrubbed.append(line)
            return run.returncode, scrubbed
    finally:
        api.shutdown()
        api.server_close()


def shape(lines: list[str]) -> str:
    """The type/subtype sequence of the JSON lines."""
    seq = []
    for line in lines:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            seq.append("<not json>")
            continue
        seq.append("/".join(str(message[k]) for k in ("type", "subtype") if k in message))
    return " ".join(seq)


def write_readme(version: str, codes: dict[str, int]) -> None:
    rows = "\n".join(
        f"| `{name}.jsonl` | {ABOUT[name]} | {codes[name]} |" for name in SCENARIOS if name in codes
    )
    (OUT / "README.md").write_text(
        f"""# Recorded Claude Code CLI output

Stdout of the real Claude Code CLI, {version}, run headless as
`claude -p "{PROMPT}" --output-format stream-json --verbose --strict-mcp-config
--mcp-config '{{"mcpServers":{{}}}}'` against a scripted Anthropic Messages API on 127.0.0.1,
with `CLAUDE_CODE_MAX_RETRIES={MAX_RETRIES}` (errors the CLI retries show one
`system`/`api_retry` line). Every error response is the Anthropic error body
(`{{"type":"error","error":{{"type":...,"message":...}},"request_id":"req_scripted"}}`) with
`retry-after: 0` and `request-id: req_scripted` headers. One JSON object per line; the last
one is the `result` message.
The working directory is scrubbed to `/work/project`, the temporary HOME to `/work/home`, the
local API's random port to `PORT`; the API key is a dummy (`{API_KEY}`, scrubbed to
`sk-ant-REDACTED` should it appear). Session ids and uuids are the CLI's own (random).

| File | What the API answered | CLI exit code |
|---|---|---|
{rows}

Re-record (after `scripts/setup` has installed the CLI):

    .venv/bin/python scripts/record_claude_samples.py [scenario ...]
"""
    )


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
        return 2
    if not CLAUDE.exists():
        print(f"{CLAUDE} is missing: run scripts/setup", file=sys.stderr)
        return 1
    version = subprocess.run(
        [str(CLAUDE), "--version"], capture_output=True, text=True, timeout=30
    ).stdout.strip()
    OUT.mkdir(parents=True, exist_ok=True)
    codes = {}
    for name in SCENARIOS:
        path = OUT / f"{name}.jsonl"
        if argv and name not in argv:
            if path.exists():  # keep the earlier recording's exit code in the README
                codes[name] = _recorded_code(name)
            continue
        code, lines = record(name)
        path.write_text("".join(line + "\n" for line in lines))
        codes[name] = code
        print(f"{name}: exit {code}, {len(lines)} lines: {shape(lines)}")
    write_readme(version, codes)
    return 0


def _recorded_code(name: str) -> int:
    """The exit code the README gives for an earlier recording (-1 if it has none)."""
    readme = OUT / "README.md"
    for row in readme.read_text().splitlines() if readme.exists() else []:
        if row.startswith(f"| `{name}.jsonl` |"):
            return int(row.rstrip(" |").rsplit("|", 1)[-1])
    return -1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
