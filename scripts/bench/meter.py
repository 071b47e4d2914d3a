#!/usr/bin/env python
"""What the meter (wvo_mcp/sandbox/meter.py) adds to a model request: a model-API-sized
request (~4.3 KB) posted to a stub Messages API on 127.0.0.1 (a process of its own, HTTP/1.1
kept alive) that answers with an SSE stream of 12 chunks (~5 KB, usage in its first and last
events), straight and through the meter, in alternating blocks on one kept connection each.

    python -m scripts.bench.meter                 # 2,000 requests each way
    python -m scripts.bench.meter --requests 200  # a smoke run

It prints p50 and p99 of each way and the difference, and this process's CPU per metered
request beyond a straight one (the meter runs here, as in the autopilot).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

import anyio
import httpx2

from wvo_mcp.sandbox.meter import Meter, Upstream

STUB = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
usage = {"input_tokens": 1000, "output_tokens": 1}
events = [{"type": "message_start", "message": {"usage": usage}}]
events += [{"type": "content_block_delta", "delta": {"text": "x" * 380}} for _ in range(10)]
events += [{"type": "message_delta", "usage": {"output_tokens": 200}}]
chunks = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        # One write, as a model API's frames come: many small ones would wait on Nagle.
        self.wfile.write(b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n")
server = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"""
BODY = {"model": "m", "messages": [{"role": "user", "content": "y" * 4200}], "stream": True}


async def measure(requests: int, port: int) -> dict[str, float]:
    measured = Meter(Upstream.of(f"http://127.0.0.1:{port}"))
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
                    answer = await clients[way].post("/v1/messages", json=BODY)
                    assert answer.status_code == 200 and answer.content
                    times[way].append((time.perf_counter() - start) * 1000)
                    cpu[way] += time.process_time() - used
        for client in clients.values():
            await client.aclose()
        group.cancel_scope.cancel()
    assert measured.tally.responses == len(times["metered"])
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
    try:
        assert stub.stdout is not None
        found = anyio.run(measure, args.requests, int(stub.stdout.readline()))
    finally:
        stub.kill()
    print(json.dumps({k: round(v, 3) for k, v in found.items()}, indent=2))
    added = found["metered_p50_ms"] - found["straight_p50_ms"]
    extra_cpu = found["metered_cpu_ms"] - found["straight_cpu_ms"]
    print(f"meter adds {added:+.2f} ms p50, {extra_cpu:+.2f} ms CPU a request", file=sys.stderr)


if __name__ == "__main__":
    main()
