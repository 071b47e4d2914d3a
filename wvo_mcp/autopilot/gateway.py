"""The HTTP endpoint through which workers reach wvo-mcp, each run with its own token.

How the autopilot's workers reach wvo-mcp: its HTTP transport, served in this process on
127.0.0.1, where each run acts with a token of its own. A run token names the run's agent,
is scoped to its one task (and, for a reviewer, the one commit it reviews), expires unless
renewed while the run lives, and is revoked when it ends. No worker is given the database,
the state folder or a way to the dashboard: only this endpoint, through its egress proxy.
Their model API traffic goes through the meter (sandbox/meter.py), not here."""

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import anyio
import anyio.to_thread

from wvo_mcp import scratch_dirs, timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.services import bearer_tokens

TOKEN_TTL = timedelta(minutes=10)  # a run token outlives a dead autopilot by this at most
RENEW_AFTER = TOKEN_TTL / 3
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


@dataclasses.dataclass
class RunToken:
    id: str
    secret: str
    renewed: float  # monotonic


class Gateway:
    """wvo-mcp over HTTP for this process's worker runs (`async with Gateway(...)`)."""

    def __init__(self, orchestrator: Orchestrator, settings: Settings) -> None:
        self.orchestrator = orchestrator
        self.settings = settings
        self.url = ""
        self.port = 0
        self._live: dict[str, RunToken] = {}

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator["Gateway"]:
        import uvicorn

        from wvo_mcp.edge import http_server

        # IPPROTO_TCP named: asyncio sets TCP_NODELAY on the connections it accepts only from
        # a listener whose protocol says TCP, and without it every call waits ~40 ms on Nagle
        # and delayed ACKs (BENCHMARKS.md, "Worker sandbox").
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}{http_server.PATH}"
        with scratch_dirs.temporary("gateway", self.settings.state_root) as empty:
            # The server's workspace is an empty folder: workers work in their own
            # repositories, and nothing here reads or writes the person's files for them.
            served = dataclasses.replace(self.settings, workspace_root=Path(empty))
            app = http_server.app(served, http_server.Options(host="127.0.0.1", port=self.port))
            config = uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                server_header=False,
                log_config=None,
                timeout_graceful_shutdown=2,
            )
            server = uvicorn.Server(config)
            # Its own thread and event loop: worker calls never wait on the autopilot's loop.
            thread = threading.Thread(
                target=server.run, kwargs={"sockets": [listener]}, daemon=True, name="gateway"
            )
            thread.start()
            try:
                await self._started(server, thread)
                yield self
            finally:
                server.should_exit = True
                await anyio.to_thread.run_sync(thread.join, STOP_TIMEOUT_S)
                listener.close()
                with anyio.CancelScope(shield=True):
                    for run in list(self._live.values()):
                        await self._revoke(run)

    async def _started(self, server: object, thread: threading.Thread) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        # uvicorn says it is up only through this flag; poll it, with a deadline.
        while not getattr(server, "started", False):
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ValidationFailed(
                    "the autopilot's wvo-mcp endpoint for its workers did not start (see the "
                    "log above); nothing was launched"
                )
            await anyio.sleep(0.02)

    async def token(self, agent_id: str, scope: bearer_tokens.Scope) -> str:
        """A run token for `agent_id` on `scope`: its secret."""
        issued = await self.orchestrator.token_add(
            "agent", agent_id, by="autopilot", expires_at=self._expiry(), scope=scope
        )
        self._live[issued.secret] = RunToken(issued.token.id, issued.secret, time.monotonic())
        return issued.secret

    async def renew(self) -> None:
        """Keep the live runs' tokens alive (each round; a write only every RENEW_AFTER)."""
        now = time.monotonic()
        for run in list(self._live.values()):
            if now - run.renewed >= RENEW_AFTER.total_seconds():
                await self.orchestrator.token_extend(run.id, self._expiry())
                run.renewed = now

    async def revoke(self, secret: str) -> None:
        """The run ended: its token works no more, on any server of this database."""
        run = self._live.get(secret)
        if run is not None:
            await self._revoke(run)

    async def _revoke(self, run: RunToken) -> None:
        self._live.pop(run.secret, None)
        with contextlib.suppress(ValidationFailed):  # revoked meanwhile (by a person)
            await self.orchestrator.token_revoke(run.id)

    def _expiry(self) -> datetime:
        return timeutil.now() + TOKEN_TTL
