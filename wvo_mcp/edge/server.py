"""Builds the MCP server: opens the orchestrator and registers every tool and resource.

The MCP server: `build_server()` opens the orchestrator in the lifespan and registers every
feature (tools.py, person_tools.py, resources.py) through the tool-call wrapper (calls.py)."""

import gc
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
from mcp.server import MCPServer
from mcp.server._otel import OpenTelemetryMiddleware as SdkSpans
from mcp.server.auth.provider import TokenVerifier

from wvo_mcp import __version__, guidance
from wvo_mcp.config import Settings
from wvo_mcp.edge import access, calls, hot_calls, person_tools, resources, tool_calls, tools
from wvo_mcp.edge.calls import Server
from wvo_mcp.health.monitor_loop import HealthMonitor
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.telemetry import Telemetry

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
wvo-mcp hands out tasks from a shared task graph. Work loop: claim_task once (it picks the
best ready task) -> (work; checkpoint or heartbeat before the lease expires) ->
plan_update(done | failed | blocked | needs_review, claim_next=true), whose `next` is your
next task and lease; repeat until it says claimed=false. Keep the lease_token and pass it on
every call about that task. A "lease lost" error means another agent now owns the task: stop
working on it and claim something else."""


def instance_id() -> str:
    """This server process, as leaders and telemetry name it (pids are reused, hence the tag)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def build_server(
    settings: Settings | None = None,
    *,
    http: access.HttpAccess | None = None,
    opened: list[Orchestrator] | None = None,
    admission: Callable[[], str] | None = None,
    verifier: TokenVerifier | None = None,
) -> Server:
    """Every tool, resource and prompt over one orchestrator. `http`: served over HTTP to
    many callers (http.py): identities come from bearer tokens, roles gate the tools, and
    the person-only tools exist. `opened`: the list the open orchestrator is kept in, for
    routes beside the MCP endpoint (the dashboard) to read through. `admission`: the HTTP
    server's admission line for the health report. `verifier`: the process's token check,
    if made already (shared with the dashboard), else made here."""
    settings = settings or Settings.from_env()
    me = instance_id()
    telemetry = Telemetry.start(settings, me)

    # Static resources get no Context; they reach the process's orchestrator through this.
    opened = [] if opened is None else opened

    def current() -> Orchestrator | None:
        return opened[-1] if opened else None

    auth = http.auth if http is not None else None
    if http is None or auth is None:
        verifier = None
    elif verifier is None:
        verifier = access.verifier(http, current)
    server = Server(
        "wvo-mcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=_lifespan(settings, me, telemetry, opened, verifier),
        auth=auth,
        # Nothing here publishes list or resource changes: without this the SDK serves
        # subscriptions/listen and declares listChanged and subscribe under 2026-07-28,
        # while the handshake declares neither.
        subscriptions=False,
        token_verifier=verifier,
    )

    if not telemetry.enabled:
        # The SDK's span per message is a no-op while nothing records it, at a twentieth of
        # a tool call's server time; the SDK's way to opt out is to drop it from this list.
        server.middleware[:] = [m for m in server.middleware if not isinstance(m, SdkSpans)]
    callers = calls.Callers(settings, over_http=http is not None)
    traced = calls.tool_call(telemetry, callers.seen_as, callers.holder)
    tools.register(server, traced, callers, admission)
    if http is not None:
        person_tools.register(server, traced)
        server.middleware.append(access.RoleFilter(None if auth is not None else "agent"))
    directives = guidance.sources(settings)
    resources.register_resources(server, opened, directives)
    resources.register_prompts(server, directives)
    server.middleware.append(calls.ProtocolEdge(server))
    calls.refuse_unknown_arguments(server)
    calls.shape_tools(server, settings.tools)
    table = tool_calls.ToolCalls(server)
    table.install()
    # ProtocolEdge acts on prompts/get and server/discover: a tools/call passes it as it is.
    server.hot = hot_calls.HotCalls(server, table, current, passed=(calls.ProtocolEdge,))
    return server


def _lifespan(
    settings: Settings,
    me: str,
    telemetry: Telemetry,
    opened: list[Orchestrator],
    verifier: TokenVerifier | None = None,
) -> Callable[[MCPServer[Orchestrator]], AbstractAsyncContextManager[Orchestrator]]:
    """Per connection (once per stdio process): the orchestrator open, kept in `opened`, and
    the health monitor (and over HTTP the token check's reader) running beside it."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[Orchestrator]) -> AsyncIterator[Orchestrator]:
        telemetry.install()
        orchestrator = await Orchestrator.open(settings)
        opened.append(orchestrator)
        log.info("wvo-mcp %s serving %s as %s", __version__, settings.db_path, me)
        # ~100k long-lived objects (SDK, schemas, models) are built by now; a full collection
        # scanning them takes ~80 ms, and several servers on two cores, allocating alike,
        # collect at the same moment. Frozen, they are never scanned again.
        gc.freeze()
        try:
            async with anyio.create_task_group() as tasks:
                if settings.health_interval_seconds > 0:
                    # Started, not awaited: `initialize` is answered while it opens.
                    monitor = HealthMonitor(settings, me, telemetry, orchestrator.providers)
                    tasks.start_soon(monitor.run)
                if isinstance(verifier, access.StoreVerifier):  # the count of revocations
                    tasks.start_soon(verifier.watch, orchestrator)
                try:
                    yield orchestrator
                finally:
                    tasks.cancel_scope.cancel()
        finally:
            # Shielded: a signal stops the server by cancelling it, and cleanup still runs.
            with anyio.CancelScope(shield=True):
                opened.remove(orchestrator)
                await orchestrator.close()
                telemetry.shutdown()

    return lifespan
