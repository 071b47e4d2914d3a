"""The MCP resources (status, health, context, a task, a directive) and the prompts.

The resources (status, health, shared context, a task, a directive) and one prompt per
directive."""

from collections.abc import Awaitable, Callable

import anyio
from mcp.server.mcpserver import Message, UserMessage
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from wvo_mcp import guidance
from wvo_mcp.edge.calls import Server
from wvo_mcp.errors import WvoError
from wvo_mcp.orchestrator import Orchestrator


def register_resources(
    server: Server, opened: list[Orchestrator], directives: guidance.Sources
) -> None:
    """Static resources get no Context: they read the process's open orchestrator from
    `opened`."""

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


def register_prompts(server: Server, directives: guidance.Sources) -> None:
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
