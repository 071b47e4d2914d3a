#!/usr/bin/env python
"""What the meter (wvo_mcp/sandbox/meter.py) adds to a model request, in each wire format it
reads: a model-API-sized request (~4.3 KB) posted to a stub API on 127.0.0.1 (a process of
its own, HTTP/1.1 kept alive) that answers with an SSE stream of 12 chunks (~5 KB) in that
format (Anthropic's Messages, OpenAI's Responses and Chat Completions, Gemini's
streamGenerateContent; usage where each puts it), straight and through the meter, in
alternating blocks on one kept connection each.

    python -m scripts.bench.meter                 # 2,000 requests each way, each format
    python -m scripts.bench.meter --requests 200  # a smoke run

It prints, per format, p50 and p99 of each way and the difference, and this process's CPU
per metered request beyond a straight one (the meter runs here, as in the autopilot).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

import anyio
import httpx2

from wvo_mcp.rules import wire
from wvo_mcp.sandbox.meter import Meter, Upstream

STUB = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
text = "x" * 380
streams = {
    "/v1/messages": [{"type": "message_start", "message": {"usage": {"input_tokens": 1000,
                      "output_tokens": 1}}}]
        + [{"type": "content_block_delta", "delta": {"text": text}} for _ in range(10)]
        + [{"type": "message_delta", "usage": {"output_tokens": 200}}],
    "/v1/responses": [{"type": "response.created", "response": {"id": "r"}}]
        + [{"type": "response.output_text.delta", "delta": text} for _ in range(10)]
        + [{"type": "response.completed", "response": {"id": "r", "usage": {
            "input_tokens": 1000, "output_tokens": 200}}}],
    "/v1/chat/completions": [{"choices": [{"delta": {"role": "assistant"}}]}]
        + [{"choices": [{"delta": {"content": text}}]} for _ in range(10)]
        + [{"choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 200}}],
    "/v1beta/models/m:streamGenerateContent": [
        {"candidates": [{"content": {"parts": [{"text": text}]}}],
         "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 20 * n}}
        for n in range(1, 11)]
        + [{"candidates": [{"content": {"parts": [{"text": ""}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 200}}],
}
chunks = {path: [f"data: {json.dumps(e)}\n\n".encode() for e in events]
          for path, events in streams.items()}
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        sent = chunks[self.path.split("?")[0]]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        # One write, as a model API's frames come: many small ones would wait on Nagle.
        framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in sent)
        self.wfile.write(framed + b"0\r\n\r\n")
server = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"""
# format: (the meter's API, the base URL's path, the request's target)
FORMATS: dict[str, tuple[wire.Api, str, str]] = {
    "anthropic": ("anthropic", "", "/v1/messages"),
    "responses": ("openai", "/v1", "/v1/responses"),
    "chat": ("openai", "/v1", "/v1/chat/completions"),
    "gemini": ("gemini", "", "/v1beta/models/m:streamGenerateContent?alt=sse"),
}
BODY = {"model": "m", "messages": [{"role": "user", "content": "y" * 4200}], "stream": True}


async def measure(requests: int, port: int, name: str) -> dict[str, float]:
    api, base, target = FORMATS[name]
    measured = Meter(Upstream.of(f"http://127.0.0.1:{port}{base}"), api)
    times: dict[str, list[float]] = {"straight": [], "metered": []}
    cpu: dict[str, float] = {"straight": 0.0, "metered": 0.0}
    async with anyio.create_task_group() as group:
        await group.start(measured.serve)
        urls = {"straight": f"http://127.0.0.1:{port}",
                "metered": f"http://127.0.0.1:{measured.port}"}  # fmt: skip
        clients = {k: httpx2.AsyncClient(base_url=u) for k, u in urls.items()}
        for block in range(requests // 50):
            for way in ("straight", "metered") if block % 2 else ("metered", "straight"):
                for _ in range(50):
                    start, used = time.perf_counter(), time.process_time()
                    answer = await clients[way].post(target, json=BODY)
                    assert answer.status_code == 200 and answer.content
                    times[way].append((time.perf_counter() - start) * 1000)
                    cpu[way] += time.process_time() - used
        for client in clients.values():
            await client.aclose()
        group.cancel_scope.cancel()
    tally = measured.tally
    assert tally.responses == len(times["metered"]) and tally.unread == 0
    assert tally.output_tokens == 200 * tally.responses, (name, tally)
    found = {}
    for way, seen in times.items():
        seen.sort()
        found[f"{way}_p50_ms"] = statistics.median(seen)
        found[f"{way}_p99_ms"] = seen[int(len(seen) * 0.99) - 1]
        found[f"{way}_cpu_ms"] = cpu[way] * 1000 / len(seen)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    stub = subprocess.Popen([sys.executable, "-c", STUB], stdout=subprocess.PIPE, text=True)
    found: dict[str, dict[str, float]] = {}
    try:
        assert stub.stdout is not None
        port = int(stub.stdout.readline())
        for name in FORMATS:
            found[name] = anyio.run(measure, args.requests, port, name)
    finally:
        stub.kill()
    print(json.dumps({n: {k: round(v, 3) for k, v in f.items()} for n, f in found.items()},
                     indent=2))  # fmt: skip
    for name, figures in found.items():
        added = figures["metered_p50_ms"] - figures["straight_p50_ms"]
        extra_cpu = figures["metered_cpu_ms"] - figures["straight_cpu_ms"]
        print(f"{name}: the meter adds {added:+.2f} ms p50, {extra_cpu:+.2f} ms CPU a request",
              file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
