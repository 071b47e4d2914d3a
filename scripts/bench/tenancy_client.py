#!/usr/bin/env python
"""The worker that tenancy.py starts through the autopilot's own machinery
(isolation.prepared, a `command`-kind WorkerKind), inside the worker sandbox or out. It holds
one MCP session with the autopilot's gateway (the SDK's streamable HTTP client, as the fake
worker's) and one keep-alive HTTP client for a stub model API, and times what it is asked,
one request a line:

    argv:   MCP_URL                          (the gateway, as the run sees it)
    env:    WVO_MCP_TOKEN                    (the run token)
    stdin:  {"task_id", "lease_token", "api"}, then requests:
            {"op": "mcp", "tool": "task_get" | "heartbeat", "n": N}
            {"op": "model", "n": N, "fresh": false | true}  (true: a new connection each)
    stdout: {"type": "ready"}, then per request {"ms": [...], "cpu_s", "bytes", "sent"}

    python tenancy_client.py --stub           # the stub model API: prints its port, then
                                             # serves on 127.0.0.1 until stdin closes

Nothing here is imported by the benchmark: this file is copied next to the wrapper the
sandbox shows read-only (the worker's CLI installation).
"""

import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REQUEST_TEXT = 4000  # characters of the prompt in a model request (~4.3 KB of JSON)
EVENTS = 12  # SSE events in a model answer
EVENT_TEXT = 300  # characters of text in each (~4.6 KB of events in all)


# --------------------------------------------------------------------------- stub model API


def sse_event(index: int) -> bytes:
    data = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": f"{index:03d} " + "y" * EVENT_TEXT},
    }
    return f"event: content_block_delta\ndata: {json.dumps(data)}\n\n".encode()


class Stub(BaseHTTPRequestHandler):
    """POST anything: the body is read and dropped; the answer is an SSE stream, one chunk
    (one write) per event, as a model API streams its tokens."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the CLIs' clients use it

    def setup(self) -> None:
        super().setup()
        # Small writes back to back: no Nagle delay, or the stub would time itself.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for index in range(EVENTS):
            event = sse_event(index)
            self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def stub() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # the benchmark closes it when done
    server.shutdown()
    return 0


# --------------------------------------------------------------------------- the worker


async def worker(mcp_url: str) -> int:
    import anyio.to_thread
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    first = json.loads(await anyio.to_thread.run_sync(sys.stdin.readline))
    held = {"task_id": first["task_id"], "lease_token": first["lease_token"]}
    headers = {"Authorization": f"Bearer {os.environ['WVO_MCP_TOKEN']}"}
    body = json.dumps(
        {
            "model": "stub",
            "max_tokens": 1024,
            "stream": True,
            "messages": [{"role": "user", "content": "x" * REQUEST_TEXT}],
        }
    ).encode()
    timeout = httpx2.Timeout(30, read=120)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        httpx2.AsyncClient(timeout=timeout, trust_env=False) as api,
        Client(streamable_http_client(mcp_url, http_client=http), read_timeout_seconds=60)
        as client,
    ):  # fmt: skip

        async def mcp(tool: str) -> None:
            arguments = {"task_id": held["task_id"]} if tool == "task_get" else held
            answer = await client.call_tool(tool, arguments)
            if answer.is_error:
                raise SystemExit(f"{tool} failed: {answer.content}")

        async def model(fresh: bool) -> int:
            extra = {"Connection": "close"} if fresh else {}
            received = 0
            request = api.build_request(
                "POST",
                first["api"] + "/v1/messages",
                content=body,
                headers={"Content-Type": "application/json", **extra},
            )
            answer = await api.send(request, stream=True)
            try:
                async for chunk in answer.aiter_raw():
                    received += len(chunk)
            finally:
                await answer.aclose()
            if answer.status_code != 200:
                raise SystemExit(f"the stub answered {answer.status_code}")
            return received

        print(json.dumps({"type": "ready"}), flush=True)
        while line := await anyio.to_thread.run_sync(sys.stdin.readline):
            asked = json.loads(line)
            samples, received, sent = [], 0, 0
            cpu = time.process_time()
            for _ in range(asked["n"]):
                started = time.perf_counter()
                if asked["op"] == "mcp":
                    await mcp(asked["tool"])
                else:
                    received += await model(asked["fresh"])
                    sent += len(body)
                samples.append(1000 * (time.perf_counter() - started))
            cpu = time.process_time() - cpu
            answer = {"ms": samples, "cpu_s": cpu, "bytes": received, "sent": sent}
            print(json.dumps(answer), flush=True)
    return 0


def main() -> int:
    if sys.argv[1:] == ["--stub"]:
        return stub()
    import anyio

    return anyio.run(worker, sys.argv[1])


if __name__ == "__main__":
    sys.exit(main())
