"""The agents' MCP tools, each one await on the orchestrator through the call wrapper.

The agents' tools, registered one feature at a time; each is one await on the
orchestrator, wrapped by calls.tool_call."""

from collections.abc import Callable
from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import Field, StringConstraints

from wvo_mcp.edge import access
from wvo_mcp.edge.calls import READ_ONLY, WRITES, Callers, Server, Traced, orchestrator_of
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
    UpdateResult,
    UsageResult,
    VerifyCommand,
)
from wvo_mcp.rules.breakers import Outcome
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import usage

LeaseToken = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ProviderName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
EnvVars = Annotated[
    dict[str, Annotated[str, StringConstraints(max_length=4000)]],
    Field(max_length=50, description="Extra variables (none are inherited)"),
]
LeaseSeconds = Annotated[int, Field(ge=1, le=86_400)]  # the bounds say it: 1 s to 1 day
Text = Annotated[str, StringConstraints(max_length=4000)]
MAX_VERSION = 2**31  # context versions; larger integers would not even fit SQLite's


def register(
    server: Server, traced: Traced, callers: Callers, admission: Callable[[], str] | None
) -> None:
    """Every agent tool, in the order tools/list shows them. `admission`: the HTTP server's
    admission line for the health report."""
    register_tasks(server, traced, callers)
    register_planning(server, traced, callers)
    register_routing(server, traced, callers)
    register_leases(server, traced, callers)
    register_asking(server, traced, callers)
    register_context(server, traced, callers)
    register_sandbox(server, traced, callers)
    register_views(server, traced, admission)


def register_tasks(server: Server, traced: Traced, callers: Callers) -> None:
    """Creating, showing and listing tasks."""

    @server.tool(title="Create tasks", annotations=WRITES)
    @traced
    async def task_create(tasks: TaskBatch, ctx: Context) -> CreateResult:
        """Create tasks (with depends_on), all or nothing: duplicate or unknown ids and cycles
        are refused."""
        return await orchestrator_of(ctx).create_tasks(tasks, actor=callers.agent(ctx, None))

    @server.tool(title="Show a task", annotations=READ_ONLY)
    @traced
    async def task_get(task_id: TaskId, ctx: Context) -> TaskDetail:
        """One task in full: description, WSJF, dependencies, events, checkpoint, notes."""
        return await orchestrator_of(ctx).get_task(task_id)

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
        page = await orchestrator_of(ctx).list_tasks(
            status=status,
            epic_id=epic_id,
            milestone_id=milestone_id,
            tag=tag,
            limit=limit,
            cursor=cursor,
        )
        return TaskTable.of(page)


def register_planning(server: Server, traced: Traced, callers: Callers) -> None:
    """The ready queue, and claiming from it."""

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
        """Read-only: top ready tasks (WSJF order), queue counts, claims you may still make."""
        return await orchestrator_of(ctx).plan_next(
            callers.agent(ctx, agent_id), limit, epic_id, provider, model
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
        """Claim the best ready task (or task_id): it, a lease_token for every call about
        it, its expiry, the last checkpoint. Nothing claimable: claimed=false, a reason."""
        return await orchestrator_of(ctx).claim(
            callers.agent(ctx, agent_id, claims=True), task_id, lease_seconds, provider, model,
            bound=access.bound(),
        )  # fmt: skip


def register_routing(server: Server, traced: Traced, callers: Callers) -> None:
    """Providers and models: who an agent is, where a task goes, what calls cost."""

    @server.tool(title="Register this agent", annotations=WRITES)
    @traced
    async def agent_register(
        provider: ProviderName,
        model: ModelName,
        ctx: Context,
        agent_id: AgentId | None = None,
    ) -> AgentIdentity:
        """Declare your provider and model once: claims then hand you only your tier's work."""
        return await orchestrator_of(ctx).register_agent(
            callers.agent(ctx, agent_id), provider, model, access.bound()
        )

    @server.tool(title="Route a task", annotations=READ_ONLY)
    @traced
    async def route_task(task_id: TaskId, ctx: Context) -> RouteDecision:
        """Where a task would be routed now (provider, tier, model, cost) and why."""
        return await orchestrator_of(ctx).route_task(task_id)

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
        """Report a model call's tokens and outcome; context_limit on your task (with its
        lease_token) escalates its next attempt."""
        return await orchestrator_of(ctx).record_usage(
            provider, model, input_tokens, output_tokens, outcome, task_id, lease_token,
            callers.agent(ctx, None), access.reporter(),
        )  # fmt: skip

    @server.tool(title="Provider status", annotations=READ_ONLY)
    @traced
    async def provider_status(ctx: Context) -> ProviderStatusReport:
        """Per provider and tier: usage against budgets, tasks in flight, breaker state."""
        return await orchestrator_of(ctx).provider_status()


def register_leases(server: Server, traced: Traced, callers: Callers) -> None:
    """A holder's work on its task: renewing, recording progress, moving it."""

    @server.tool(title="Renew a lease", annotations=WRITES)
    @traced
    async def heartbeat(
        task_id: TaskId,
        lease_token: LeaseToken,
        ctx: Context,
        agent_id: AgentId | None = None,
        lease_seconds: LeaseSeconds | None = None,
    ) -> LeaseResult:
        """Renew your lease before it expires (lease_seconds: default the last length)."""
        return await orchestrator_of(ctx).heartbeat(
            task_id, lease_token, callers.agent(ctx, agent_id), lease_seconds
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
        git_snapshot: snapshot the work tree; attach_sandbox_run: your last run."""
        return await orchestrator_of(ctx).checkpoint(
            task_id,
            lease_token,
            callers.agent(ctx, agent_id),
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
        claim_next: bool = False,
    ) -> UpdateResult:
        """Move your task (with lease_token): done (verify_command must pass), failed
        (retried), blocked, needs_review, awaiting_approval (a person decides), pending (give
        it back), cancelled. claim_next: also claim your next (in `next`)."""
        orchestrator, agent = orchestrator_of(ctx), callers.agent(ctx, agent_id, claims=claim_next)
        if claim_next:
            return await orchestrator.update_and_claim(
                task_id, Status(status), agent, lease_token, reason
            )
        return await orchestrator.update_status(task_id, Status(status), agent, lease_token, reason)


def register_asking(server: Server, traced: Traced, callers: Callers) -> None:
    """An agent's question to a person."""

    @server.tool(title="Ask a person", annotations=WRITES)
    @traced
    async def ask_person(
        task_id: TaskId,
        lease_token: LeaseToken,
        question: Annotated[str, StringConstraints(min_length=1, max_length=4000)],
        ctx: Context,
    ) -> UpdateResult:
        """Only what you cannot decide alone; checkpoint first. The task then waits for a
        person's answer: stop work on it."""
        return await orchestrator_of(ctx).ask(
            task_id, lease_token, callers.agent(ctx, None), question
        )


def register_context(server: Server, traced: Traced, callers: Callers) -> None:
    """The shared context agents leave for one another."""

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
        """Write a shared-context section (short facts for other agents); with
        expected_version (0 if new) a concurrent write is refused, not lost."""
        return await orchestrator_of(ctx).context_write(
            section, content, callers.agent(ctx, agent_id), mode, expected_version
        )

    @server.tool(title="Read shared context", annotations=READ_ONLY)
    @traced
    async def context_read(
        ctx: Context,
        section: SectionName | None = None,
        version: Annotated[int, Field(ge=1, le=MAX_VERSION)] | None = None,
    ) -> ContextReadResult:
        """Read the shared context: all sections, one, or an earlier version of one."""
        return await orchestrator_of(ctx).context_read(section, version)


def register_sandbox(server: Server, traced: Traced, callers: Callers) -> None:
    """Commands run in the sandbox."""

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
        `workspace`) writable, no network unless asked, only the env you pass; output tail.
        task_id + lease_token record it on your task."""
        return await orchestrator_of(ctx).sandbox_run(
            command,
            callers.agent(ctx, agent_id),
            workspace=workspace,
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            cpus=cpus,
            network=network,
            env=env,
            task_id=task_id,
            lease_token=lease_token,
        )


def register_views(server: Server, traced: Traced, admission: Callable[[], str] | None) -> None:
    """Read-only reports: health and the merge queue."""

    @server.tool(title="Health report", annotations=READ_ONLY)
    @traced
    async def health_report(
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=200)] = 10,
        full: bool = False,
    ) -> HealthReport:
        """The health monitor's latest observation, open anomalies and recent actions
        (full=true: the tasks behind the counts)."""
        report = await orchestrator_of(ctx).health_report(limit, full)
        if admission is not None:  # this process's, unlike the rest of the report
            report.admission = admission()
        return report

    @server.tool(title="Merge queue", annotations=READ_ONLY)
    @traced
    async def landing_queue(
        ctx: Context, hours: Annotated[int, Field(ge=1, le=720)] = 24
    ) -> LandingQueue:
        """The merge queue per target branch (place, state, wait, why held) and the last
        `hours`' landing rate, waits, returns and cost per landed change."""
        return await orchestrator_of(ctx).landing_view(hours)
