"""The MCP server: thin tools over the orchestrator. `build_server()` registers everything."""

import functools
import gc
import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, ParamSpec, Protocol, TypeVar, cast

import anyio
from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, Message, UserMessage
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, StringConstraints

from wvo_mcp import __version__, guidance
from wvo_mcp.config import Settings
from wvo_mcp.edge import access, protocol, toolset
from wvo_mcp.errors import WvoError
from wvo_mcp.models import (
    AgentId,
    AgentIdentity,
    CheckpointResult,
    ClaimResult,
    ContextReadResult,
    ContextWriteResult,
    CreateResult,
    FolderPath,
    HealthReport,
    LandingQueue,
    LeaseResult,
    PlanNextResult,
    ProviderStatusReport,
    RouteDecision,
    SandboxResult,
    SectionName,
    StatusName,
    TaskBatch,
    TaskDetail,
    TaskId,
    TaskTable,
    TokenInfo,
    TokenList,
    UpdateResult,
    UsageResult,
    VerifyCommand,
    lean,
)
from wvo_mcp.monitor import HealthMonitor
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import identity
from wvo_mcp.rules.routing import Outcome
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import usage
from wvo_mcp.telemetry import Telemetry, annotate

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

LeaseToken = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ProviderName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
EnvVars = Annotated[
    dict[str, Annotated[str, StringConstraints(max_length=4000)]],
    Field(max_length=50, description="Extra variables; none are inherited from the server"),
]
LeaseSeconds = Annotated[int, Field(ge=1, le=86_400, description="Lease length, 1 s to 1 day")]
Text = Annotated[str, StringConstraints(max_length=4000)]
MAX_VERSION = 2**31  # context versions; larger integers would not even fit SQLite's

READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)

INSTRUCTIONS = """\
wvo-mcp hands out tasks from a shared task graph. Work loop: plan_next -> claim_task ->
(work; checkpoint and heartbeat before the lease expires) -> plan_update(done | failed |
blocked | needs_review | pending). Keep the lease_token from claim_task and pass it on every
call about that task. A "lease lost" error means another agent now owns the task: stop
working on it and claim something else."""


def _error_code(exc: WvoError) -> str:
    """LeaseLost -> lease_lost: the outcome recorded in telemetry."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def tool_call(
    telemetry: Telemetry, agent_of: Callable[[Context, str | None], str]
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Wrap a tool: our exceptions become MCP tool errors an agent can act on (the one place
    this happens), and the SDK's request span gets the task, the agent and the outcome."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            outcome = "ok"
            result: object = None
            try:
                result = await fn(*args, **kwargs)
                if isinstance(result, ClaimResult):
                    if not result.claimed:
                        outcome = result.reason or "not_claimed"
                    elif result._took_over_expired:
                        telemetry.lease_expiries(1)
                return cast(R, _answer(result))
            except WvoError as exc:
                outcome = _error_code(exc)
                raise ToolError(f"{type(exc).__name__}: {exc}") from exc
            finally:
                ctx, agent_id = kwargs.get("ctx"), kwargs.get("agent_id")
                task_id = kwargs.get("task_id") or _task_of(result)
                annotate(
                    **{
                        "wvo.task_id": task_id if isinstance(task_id, str) else None,
                        "wvo.agent_id": agent_of(
                            ctx, agent_id if isinstance(agent_id, str) else None
                        )
                        if isinstance(ctx, Context)
                        else None,
                        "wvo.outcome": outcome,
                    }
                )
                telemetry.tool_call(fn.__name__, outcome, (time.perf_counter() - started) * 1000)

        return wrapper

    return decorate


def _answer(result: object) -> object:
    """What the agent receives: lean structured content (models.lean) and a compact text
    copy of it for clients that show the text instead."""
    if not isinstance(result, BaseModel):
        return result
    content = lean(result)
    text = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=content)


def _task_of(result: object) -> str | None:
    if isinstance(result, ClaimResult):
        return result.task.id if result.task is not None else None
    task_id = getattr(result, "task_id", None)
    return task_id if isinstance(task_id, str) else None


def instance_id() -> str:
    """This server process, as leaders and telemetry name it (pids are reused, hence the tag)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def build_server(
    settings: Settings | None = None,
    *,
    http: access.HttpAccess | None = None,
    opened: list[Orchestrator] | None = None,
    admission: Callable[[], str] | None = None,
) -> MCPServer[Orchestrator]:
    """Every tool, resource and prompt over one orchestrator. `http`: served over HTTP to
    many callers (http.py): identities come from bearer tokens, roles gate the tools, and
    the person-only tools exist. `opened`: the list the open orchestrator is kept in, for
    routes beside the MCP endpoint (the dashboard) to read through. `admission`: the HTTP
    server's admission line for the health report."""
    settings = settings or Settings.from_env()
    me = instance_id()
    telemetry = Telemetry.start(settings, me)

    # Static resources get no Context; they reach the process's orchestrator through this.
    opened = [] if opened is None else opened

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

    auth = http.auth if http is not None else None
    server: MCPServer[Orchestrator] = MCPServer(
        "wvo-mcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        auth=auth,
        # Nothing here publishes list or resource changes: without this the SDK serves
        # subscriptions/listen and declares listChanged and subscribe under 2026-07-28,
        # while the handshake declares neither.
        subscriptions=False,
        token_verifier=None
        if http is None or auth is None
        else access.verifier(http, lambda: opened[-1] if opened else None),
    )

    def orchestrator(ctx: Context) -> Orchestrator:
        return cast(Orchestrator, ctx.request_context.lifespan_context)

    me_as_agent = identity.OneAgent(settings.agent_id)

    def agent(ctx: Context, agent_id: str | None, *, claims: bool = False) -> str:
        """The caller's id (identity.OneAgent): reserved names and a switch are refused."""

        def default() -> str:
            params = getattr(ctx.session, "client_params", None)
            client = params.client_info.name if params is not None else "agent"
            return identity.default_name(client, os.getpid())

        if http is not None:  # many callers: the token says who
            return access.acting_agent(agent_id, lambda: settings.agent_id or default())
        return me_as_agent.resolve(agent_id, default, claims=claims)

    def seen_as(ctx: Context, agent_id: str | None) -> str:
        """For telemetry: who the caller is, never raising."""
        if http is not None:
            caller = access.current()
            return caller.name if caller is not None else agent_id or "unknown"
        return me_as_agent.name or agent_id or "unknown"

    traced = tool_call(telemetry, seen_as)

    @server.tool(title="Create tasks", annotations=WRITES)
    @traced
    async def task_create(tasks: TaskBatch, ctx: Context) -> CreateResult:
        """Create tasks (with depends_on) all or nothing, at most 5000 or 4 MiB a call;
        duplicate or unknown ids and cycles are refused."""
        return await orchestrator(ctx).create_tasks(tasks, actor=agent(ctx, None))

    @server.tool(title="Show a task", annotations=READ_ONLY)
    @traced
    async def task_get(task_id: TaskId, ctx: Context) -> TaskDetail:
        """One task in full: description, WSJF breakdown, dependencies, events, checkpoint."""
        return await orchestrator(ctx).get_task(task_id)

    @server.tool(title="List tasks", annotations=READ_ONLY)
    @traced
    async def task_list(
        ctx: Context,
        status: StatusName | None = None,
        epic_id: str | None = None,
        milestone_id: str | None = None,
        tag: str | None = None,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> TaskTable:
        """Tasks by id, filtered, as a table; pass next_cursor back for the next page."""
        page = await orchestrator(ctx).list_tasks(
            status=status,
            epic_id=epic_id,
            milestone_id=milestone_id,
            tag=tag,
            limit=limit,
            cursor=cursor,
        )
        return TaskTable.of(page)

    @server.tool(title="See the next tasks", annotations=READ_ONLY)
    @traced
    async def plan_next(
        ctx: Context,
        agent_id: AgentId | None = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 5,
        epic_id: str | None = None,
        provider: ProviderName | None = None,
        model: ModelName | None = None,
    ) -> PlanNextResult:
        """Read-only: the top ready tasks in WSJF order, queue counts, and the claims you may
        still make. Look here, then claim_task."""
        return await orchestrator(ctx).plan_next(
            agent(ctx, agent_id), limit, epic_id, provider, model
        )

    @server.tool(title="Claim a task", annotations=WRITES)
    @traced
    async def claim_task(
        ctx: Context,
        agent_id: AgentId | None = None,
        task_id: TaskId | None = None,
        lease_seconds: LeaseSeconds | None = None,
        provider: ProviderName | None = None,
        model: ModelName | None = None,
    ) -> ClaimResult:
        """Claim the best ready task (or task_id). Returns it with a lease_token to pass on
        every later call about it, the expiry, and an earlier holder's last checkpoint.
        Nothing claimable: claimed=false and a reason."""
        return await orchestrator(ctx).claim(
            agent(ctx, agent_id, claims=True), task_id, lease_seconds, provider, model
        )

    @server.tool(title="Register this agent", annotations=WRITES)
    @traced
    async def agent_register(
        provider: ProviderName,
        model: ModelName,
        ctx: Context,
        agent_id: AgentId | None = None,
    ) -> AgentIdentity:
        """Declare your provider and model once: claims then hand you only your tier's work."""
        return await orchestrator(ctx).register_agent(agent(ctx, agent_id), provider, model)

    @server.tool(title="Route a task", annotations=READ_ONLY)
    @traced
    async def route_task(task_id: TaskId, ctx: Context) -> RouteDecision:
        """Where a task would be routed now (provider, tier, model, cost) and why."""
        return await orchestrator(ctx).route_task(task_id)

    @server.tool(title="Record model usage", annotations=WRITES)
    @traced
    async def record_usage(
        provider: ProviderName,
        model: ModelName,
        input_tokens: Annotated[int, Field(ge=0, le=usage.MAX_CALL_TOKENS)],
        output_tokens: Annotated[int, Field(ge=0, le=usage.MAX_CALL_TOKENS)],
        outcome: Outcome,
        ctx: Context,
        task_id: TaskId | None = None,
        lease_token: LeaseToken | None = None,
    ) -> UsageResult:
        """Report a model call's tokens and outcome: budgets and the provider's breaker follow;
        context_limit on a task (with its lease_token) escalates its next attempt."""
        return await orchestrator(ctx).record_usage(
            provider, model, input_tokens, output_tokens, outcome, task_id, lease_token,
            agent(ctx, None), access.reporter(),
        )  # fmt: skip

    @server.tool(title="Provider status", annotations=READ_ONLY)
    @traced
    async def provider_status(ctx: Context) -> ProviderStatusReport:
        """Per provider and tier: usage against budgets, tasks in flight, breaker state."""
        return await orchestrator(ctx).provider_status()

    @server.tool(title="Renew a lease", annotations=WRITES)
    @traced
    async def heartbeat(
        task_id: TaskId,
        lease_token: LeaseToken,
        ctx: Context,
        agent_id: AgentId | None = None,
        lease_seconds: LeaseSeconds | None = None,
    ) -> LeaseResult:
        """Renew your lease (lease_seconds, default the last length) before it expires."""
        return await orchestrator(ctx).heartbeat(
            task_id, lease_token, agent(ctx, agent_id), lease_seconds
        )

    @server.tool(title="Record progress", annotations=WRITES)
    @traced
    async def checkpoint(
        task_id: TaskId,
        lease_token: LeaseToken,
        summary: Annotated[str, StringConstraints(min_length=1, max_length=4000)],
        ctx: Context,
        agent_id: AgentId | None = None,
        next_steps: Text | None = None,
        progress: Annotated[int, Field(ge=0, le=100)] | None = None,
        files: Annotated[
            list[Annotated[str, StringConstraints(max_length=500)]], Field(max_length=200)
        ] = [],  # noqa: B006 - pydantic copies defaults
        git_snapshot: bool = False,
        attach_sandbox_run: bool = False,
    ) -> CheckpointResult:
        """Record progress and renew the lease; the next holder gets it if you stop.
        git_snapshot: snapshot the working tree; attach_sandbox_run: attach your last run."""
        return await orchestrator(ctx).checkpoint(
            task_id,
            lease_token,
            agent(ctx, agent_id),
            summary,
            next_steps,
            progress,
            files,
            git_snapshot,
            attach_sandbox_run,
        )

    @server.tool(title="Move a task", annotations=WRITES)
    @traced
    async def plan_update(
        task_id: TaskId,
        status: StatusName,
        ctx: Context,
        agent_id: AgentId | None = None,
        lease_token: LeaseToken | None = None,
        reason: Text | None = None,
    ) -> UpdateResult:
        """Move your task (pass lease_token): done (its verify_command must pass), failed
        (retried later), blocked, needs_review, awaiting_approval (a person decides),
        pending (give it back), cancelled."""
        return await orchestrator(ctx).update_status(
            task_id, Status(status), agent(ctx, agent_id), lease_token, reason
        )

    @server.tool(title="Write shared context", annotations=WRITES)
    @traced
    async def context_write(
        section: SectionName,
        content: Annotated[str, StringConstraints(max_length=65_536)],
        ctx: Context,
        mode: Literal["replace", "append"] = "replace",
        expected_version: Annotated[int, Field(ge=0, le=MAX_VERSION)] | None = None,
        agent_id: AgentId | None = None,
    ) -> ContextWriteResult:
        """Write a section of the shared context (short facts for other agents). Pass
        expected_version (0 if new): a concurrent write is then refused, not lost."""
        return await orchestrator(ctx).context_write(
            section, content, agent(ctx, agent_id), mode, expected_version
        )

    @server.tool(title="Read shared context", annotations=READ_ONLY)
    @traced
    async def context_read(
        ctx: Context,
        section: SectionName | None = None,
        version: Annotated[int, Field(ge=1, le=MAX_VERSION)] | None = None,
    ) -> ContextReadResult:
        """Read the shared context: all sections, one, or an earlier version of one."""
        return await orchestrator(ctx).context_read(section, version)

    @server.tool(title="Run in the sandbox", annotations=WRITES)
    @traced
    async def sandbox_run(
        command: Annotated[VerifyCommand, Field(description="argv list, or a /bin/sh -c string")],
        ctx: Context,
        workspace: FolderPath | None = None,
        timeout_s: Annotated[float, Field(ge=0.1, le=3600)] = 30.0,
        memory_mb: Annotated[int, Field(ge=16, le=65_536)] = 512,
        cpus: Annotated[float, Field(ge=0.1, le=64)] = 1.0,
        network: bool = False,
        env: EnvVars = {},  # noqa: B006 - pydantic copies defaults
        task_id: TaskId | None = None,
        lease_token: LeaseToken | None = None,
        agent_id: AgentId | None = None,
    ) -> SandboxResult:
        """Run a build or test command in the sandbox: only the workspace (or its folder
        `workspace`) is writable, no network unless asked, only the env you pass, limits,
        output tail. task_id + lease_token record it on your task."""
        return await orchestrator(ctx).sandbox_run(
            command,
            agent(ctx, agent_id),
            workspace=workspace,
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            cpus=cpus,
            network=network,
            env=env,
            task_id=task_id,
            lease_token=lease_token,
        )

    @server.tool(title="Health report", annotations=READ_ONLY)
    @traced
    async def health_report(
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=200)] = 10,
        full: bool = False,
    ) -> HealthReport:
        """The health monitor's latest observation, open anomalies and recent actions;
        full=true adds the task lists behind the counts."""
        report = await orchestrator(ctx).health_report(limit, full)
        if admission is not None:  # this process's, unlike the rest of the report
            report.admission = admission()
        return report

    @server.tool(title="Merge queue", annotations=READ_ONLY)
    @traced
    async def landing_queue(
        ctx: Context, hours: Annotated[int, Field(ge=1, le=720)] = 24
    ) -> LandingQueue:
        """The merge queue per target branch (place, state, wait, returns, why held) and the
        last `hours`' figures: landing rate, wait p50/p95, returns and cost per landed change."""
        return await orchestrator(ctx).landing_view(hours)

    if http is not None:
        _register_http_tools(server, tool_call(telemetry, seen_as), orchestrator)
        server.middleware.append(access.RoleGate(None if auth is not None else "agent"))
    directives = guidance.sources(settings)
    _register_resources(server, opened, directives)
    _register_prompts(server, directives)
    server.middleware.append(ProtocolEdge(server))
    _refuse_unknown_arguments(server)
    _shape_tools(server, settings.tools)
    return server


class _Traced(Protocol):
    def __call__(self, fn: Callable[P, Awaitable[R]], /) -> Callable[P, Awaitable[R]]: ...


def _register_http_tools(
    server: MCPServer[Orchestrator],
    traced: _Traced,
    orchestrator: Callable[[Context], Orchestrator],
) -> None:
    """The person-only moves (the CLI's approve, reject, requeue, cancel, done), for person
    tokens, a reviewer's verdict, for the run token of one review, and the operator's view of
    the tokens; only over HTTP (toolset.role_allows, scope_allows)."""
    Note = Annotated[str, StringConstraints(max_length=4000)]

    @server.tool(title="Approve a task", annotations=WRITES)
    @traced
    async def task_approve(task_id: TaskId, ctx: Context, note: Note | None = None) -> UpdateResult:
        """Person only: approve a task waiting in awaiting_approval."""
        return await orchestrator(ctx).approve(task_id, access.person(), note)

    @server.tool(title="Reject a task", annotations=WRITES)
    @traced
    async def task_reject(
        task_id: TaskId,
        note: Annotated[str, StringConstraints(min_length=1, max_length=4000)],
        ctx: Context,
        to: Literal["cancelled", "blocked", "pending", "in_progress"] = "cancelled",
    ) -> UpdateResult:
        """Person only: reject a task waiting in awaiting_approval (note says why): cancel
        it, block it, re-queue it, or hand it back to its holder (in_progress)."""
        return await orchestrator(ctx).reject(task_id, access.person(), note, Status(to))

    @server.tool(title="Requeue a task", annotations=WRITES)
    @traced
    async def task_requeue(
        task_id: TaskId, ctx: Context, reason: Note | None = None
    ) -> UpdateResult:
        """Person only: put a task back in the queue (a dead letter, a blocked or cancelled
        task, or a stuck in-progress one, whose holder then gets "lease lost")."""
        return await orchestrator(ctx).requeue(task_id, access.person(), reason)

    @server.tool(title="Cancel a task", annotations=WRITES)
    @traced
    async def task_cancel(
        task_id: TaskId, ctx: Context, reason: Note | None = None
    ) -> UpdateResult:
        """Person only: cancel a task (a holder's lease ends; task_requeue brings it back)."""
        return await orchestrator(ctx).update_status(
            task_id, Status.CANCELLED, access.person(),
            reason=reason or "cancelled by a person", by_person=True,
        )  # fmt: skip

    @server.tool(title="Mark a task done", annotations=WRITES)
    @traced
    async def task_done(
        task_id: TaskId, ctx: Context, reason: Note | None = None, skip_verify: bool = False
    ) -> UpdateResult:
        """Person only: mark a task done (its holder's lease ends); its verify_command must
        still pass unless skip_verify, which is recorded with your name."""
        return await orchestrator(ctx).update_status(
            task_id, Status.DONE, access.person(),
            reason=reason or "marked done by a person", by_person=True, skip_verify=skip_verify,
        )  # fmt: skip

    @server.tool(title="Submit a review", annotations=WRITES)
    @traced
    async def review_submit(
        task_id: TaskId,
        verdict: Literal["approve", "request_changes"],
        notes: Annotated[str, StringConstraints(min_length=1, max_length=4000)],
        ctx: Context,
    ) -> UpdateResult:
        """Reviewer only: your verdict on the submitted commit you were given: approve, or
        request_changes with notes saying what is wrong and what to do (the next attempt is
        given them)."""
        caller = access.current()
        scope = None if caller is None else caller.scope
        if caller is None or scope is None or scope.purpose != "reviewer" or not scope.commit:
            raise ToolError(
                "review_submit needs the run token an autopilot made for this review; "
                "nothing was recorded"
            )
        return await orchestrator(ctx).review(
            task_id, scope.commit, caller.name,
            "approve" if verdict == "approve" else "changes", notes,
        )  # fmt: skip

    @server.tool(title="List tokens", annotations=READ_ONLY)
    @traced
    async def token_list(ctx: Context) -> TokenList:
        """Operator only: who may call this server (token id, name, role, created, last
        used, revoked); never a secret."""
        found = await orchestrator(ctx).token_list()
        return TokenList(tokens=[TokenInfo(**t.shown()) for t in found])


def _register_resources(
    server: MCPServer[Orchestrator], opened: list[Orchestrator], directives: guidance.Sources
) -> None:
    def current() -> Orchestrator:
        if not opened:
            raise ResourceError("the server's database is not open")
        return opened[-1]

    @server.resource("wvo://status", mime_type="application/json", title="Queue status")
    async def status() -> str:
        """Counts per status, who holds what, the top of the ready queue, dead letters."""
        return (await current().status_report("resource", top=10)).model_dump_json(indent=1)

    @server.resource("wvo://health", mime_type="application/json", title="Health")
    async def health_resource() -> str:
        """The health monitor's latest observation, open anomalies and actions."""
        return (await current().health_report()).model_dump_json(indent=1)

    @server.resource("wvo://context", mime_type="text/markdown", title="Shared context")
    async def shared_context() -> str:
        """The shared project context as Markdown (what state/context.md holds)."""
        return await current().context_markdown()

    @server.resource("wvo://tasks/{task_id}", mime_type="application/json", title="A task")
    async def task(task_id: str) -> str:
        """One task with dependencies, events and its latest checkpoint."""
        try:
            detail = await current().get_task(task_id)
        except WvoError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        return detail.model_dump_json(indent=1)

    @server.resource("wvo://directives/{name}", mime_type="text/markdown", title="A directive")
    async def directive(name: str) -> str:
        """Guidance for agents: work_loop, error_recovery, approvals, writing_context, …"""
        try:
            return await anyio.to_thread.run_sync(guidance.text, directives, name)
        except WvoError as exc:
            raise ResourceNotFoundError(str(exc)) from exc


def _register_prompts(server: MCPServer[Orchestrator], directives: guidance.Sources) -> None:
    """One prompt per directive found at start-up; its text is read at each use."""

    def prompt_for(name: str) -> Callable[[str | None], Awaitable[list[Message]]]:
        async def prompt(task_id: str | None = None) -> list[Message]:
            try:
                text = await anyio.to_thread.run_sync(guidance.text, directives, name)
            except WvoError as exc:
                # Anything but MCPError reaches the client as a logged crash.
                raise MCPError(INVALID_PARAMS, str(exc)) from exc
            if task_id:
                text = (
                    f"You are working on task {task_id} (task_get shows it). "
                    f"Follow this guidance.\n\n{text}"
                )
            return [UserMessage(text)]

        return prompt

    for found in guidance.available(directives).values():
        server.prompt(
            name=found.name,
            title=found.title,
            description=f"{found.title} (directive; optional task_id to focus on one task)",
        )(prompt_for(found.name))


class ProtocolEdge:
    """Server middleware where the SDK's answers fall short of the protocol:
    - `prompts/get` of an unknown prompt, or with an argument the prompt does not take, is
      refused as Invalid params (-32602) saying what is accepted, before the SDK's handler
      raises a bare ValueError (code 0, or -32603, and a logged traceback);
    - `server/discover` over HTTP lists every revision the server speaks, as the
      unsupported-version error does (the SDK lists the per-request ones only)."""

    def __init__(self, server: MCPServer[Orchestrator]) -> None:
        self.server = server

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method == "prompts/get" and isinstance(ctx.params, Mapping):
            prompts = {
                p.name: [a.name for a in p.arguments or []]
                for p in await self.server.list_prompts()
            }
            name, arguments = ctx.params.get("name"), ctx.params.get("arguments")
            refused = protocol.prompt_refusal(name, arguments, prompts)
            if refused is not None:
                raise MCPError(INVALID_PARAMS, refused)
        result = await call_next(ctx)
        # Over HTTP (ctx.request set) every request may take either revision; a stdio
        # connection that served a per-request call takes no handshake any more, so the
        # SDK's answer (the per-request revisions) is the true one there.
        if ctx.method == "server/discover" and ctx.request is not None and isinstance(result, dict):
            return {**result, "supportedVersions": list(protocol.REVISIONS)}  # the wire form
        return result


def _shape_tools(server: MCPServer[Orchestrator], spec: str) -> None:
    """Only the tools WVO_TOOLS asks for, with lean input schemas (toolset.py)."""
    tools = server._tool_manager.list_tools()
    wanted = toolset.chosen(spec, (t.name for t in tools))
    for tool in tools:
        # The HTTP-only tools are gated by role instead (toolset.role_allows).
        if tool.name not in wanted and tool.name not in toolset.HTTP_ONLY:
            server.remove_tool(tool.name)
            continue
        tool.parameters = toolset.lean(tool.parameters)
        tool.description = toolset.flat(tool.description)
        if tool.annotations is not None:
            # Claude Code shows annotations.title, not the tool's own title (2.1.197).
            tool.annotations = tool.annotations.model_copy(update={"title": tool.title})
        if tool.name in toolset.ALWAYS_LOAD:
            tool.meta = {**(tool.meta or {}), "anthropic/alwaysLoad": True}


def _refuse_unknown_arguments(server: MCPServer[Orchestrator]) -> None:
    """The SDK ignores unknown top-level arguments, so a misspelt `lease_second` would fall
    back to the default in silence; make every tool refuse them (and say so in its schema)."""
    for tool in server._tool_manager.list_tools():
        model = tool.fn_metadata.arg_model
        model.model_config["extra"] = "forbid"
        model.model_rebuild(force=True)
        tool.parameters["additionalProperties"] = False
