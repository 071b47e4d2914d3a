"""A real `wvo-mcp serve --http` process per test, tokens made with the CLI, and MCP clients
that send them (the SDK's streamable HTTP client)."""

import json
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import CLI_TIMEOUT_SECONDS, ROOT, Agent, shared_warm, wvo
from tests.listening import until_listening

# A legacy `initialize` request: what a client sends first; answered 200 once authenticated.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HttpServer:
    url: str  # the MCP endpoint
    process: subprocess.Popen[bytes]
    stderr: Path
    cafile: Path | None = None

    @property
    def base(self) -> str:
        return self.url.removesuffix("/mcp")

    def verify(self) -> ssl.SSLContext | bool:
        return True if self.cafile is None else ssl.create_default_context(cafile=self.cafile)

    def http(self, token: str | None = None) -> httpx2.AsyncClient:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx2.AsyncClient(
            headers=headers, verify=self.verify(), timeout=httpx2.Timeout(30, read=60)
        )


def server_env(**env: object) -> dict[str, str]:
    """What the server child gets: nothing inherited but PATH and HOME, forked by the test
    process's shared warm process (`shared_warm`), plus `env`."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"),
            **shared_warm()}  # fmt: skip
    return {**base, **{k: str(v) for k, v in env.items()}}


@contextmanager
def http_server(
    state_root: Path,
    *flags: str,
    cafile: Path | None = None,
    port: int | None = None,
    subcommand: tuple[str, ...] = ("serve", "--http"),
    **env: object,
) -> Iterator[HttpServer]:
    """`wvo-mcp serve --http` (or `subcommand`) on a loopback port (a free one unless given),
    ready (its port answers) when this yields; killed afterwards whatever happened."""
    port = port or free_port()
    state_root.mkdir(parents=True, exist_ok=True)
    stderr = state_root.parent / f"http-{port}.stderr"
    command = [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(state_root),
               *subcommand, "--port", str(port), *flags]  # fmt: skip
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            command, cwd=ROOT, env=server_env(**env), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        until_listening(process, port, stderr.read_text)
        scheme = "https" if cafile is not None else "http"
        yield HttpServer(f"{scheme}://127.0.0.1:{port}/mcp", process, stderr, cafile)
    finally:
        process.terminate()
        try:
            process.wait(timeout=CLI_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def token(state_root: Path, role: str, name: str, *extra: str) -> str:
    """A new token's secret, as `wvo-mcp tokens add` prints it (alone on stdout)."""
    made = wvo(state_root, "tokens", "add", "--role", role, "--name", name, *extra)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("wvo_") and "\n" not in secret, made.stdout
    return secret


@asynccontextmanager
async def connect(server: HttpServer, secret: str, mode: str = "legacy") -> AsyncIterator[Agent]:
    """An MCP client of `server` sending `secret` as its bearer token."""
    async with (
        server.http(secret) as http,
        Client(
            streamable_http_client(server.url, http_client=http), mode=mode,
            read_timeout_seconds=30,
        ) as client,
    ):  # fmt: skip
        yield Agent(client)


def task_row(state_root: Path, task_id: str) -> dict[str, object]:
    from tests.conftest import open_db

    with open_db(state_root) as db:
        row = db.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        assert row is not None, task_id
        return dict(row)


def events(state_root: Path, task_id: str) -> list[dict[str, object]]:
    from tests.conftest import open_db

    with open_db(state_root) as db:
        rows = db.execute(
            "SELECT actor, kind, from_status, to_status FROM task_events WHERE task_id = ? "
            "ORDER BY id",
            (task_id,),
        ).fetchall()
        return [dict(r) for r in rows]


def spec(task_id: str, **fields: object) -> dict[str, object]:
    """One task for task_create."""
    return {"id": task_id, "title": f"task {task_id}", **fields}


def initialize_body() -> str:
    return json.dumps(INITIALIZE)
