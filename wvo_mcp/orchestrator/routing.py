"""The routing area: agents, routes, usage and what a task costs (services/routing).

Fronts services/routing, services/usage (what a caller may charge) and
services/route_figures (the dashboard's budgets and routing view)."""

from functools import partial

from wvo_mcp.models import AgentIdentity, ProviderStatusReport, RouteDecision, UsageResult
from wvo_mcp.orchestrator.base import Facade
from wvo_mcp.rules import breakers
from wvo_mcp.services import agents, route_figures, routing, usage


class RoutingFacade(Facade):
    async def register_agent(
        self, agent_id: str, provider: str, model: str, bound: agents.Bound | None = None
    ) -> AgentIdentity:
        return await self.db.write(
            partial(
                agents.register,
                providers=self.providers,
                agent_id=agent_id,
                provider=provider,
                model=model,
                now=self.clock(),
                bound=bound,
            )
        )

    async def route_task(self, task_id: str) -> RouteDecision:
        return await self.db.read(
            partial(routing.route_task, providers=self.providers, task_id=task_id, now=self.clock())
        )

    async def record_usage(
        self,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        outcome: breakers.Outcome,
        task_id: str | None = None,
        token: str | None = None,
        agent_id: str | None = None,
        reporter: usage.Reporter = usage.ANYONE,
    ) -> UsageResult:
        """One model call as an MCP caller reports it: bounded, and charged only where
        `reporter` may charge (services/usage.py)."""
        return await self.db.write(
            partial(
                usage.record,
                settings=self.settings,
                providers=self.providers,
                reporter=reporter,
                task_id=task_id,
                token=token,
                provider=provider,
                model=model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                outcome=outcome,
                now=self.clock(),
                agent_id=agent_id,
            )
        )

    async def record_run(
        self,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        outcome: breakers.Outcome,
        task_id: str | None = None,
        token: str | None = None,
        agent_id: str | None = None,
    ) -> UsageResult:
        """What the autopilot saw a worker run use and how it ended (its CLI's own report,
        many calls): what budgets and breakers follow. Charged to its task while it holds it
        (through its lease)."""
        record = (
            usage.record_usage if task_id is None else partial(usage.record_task_usage, token=token)
        )
        return await self.db.write(
            partial(
                record,
                providers=self.providers,
                task_id=task_id,
                provider=provider,
                model=model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                outcome=outcome,
                now=self.clock(),
                agent_id=agent_id,
            )
        )

    async def charge_task(
        self,
        task_id: str,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        worker: str | None = None,
        token: str | None = None,
    ) -> None:
        """A run the autopilot made for a task that the run no longer holds: its usage
        counts towards what the task cost (record_usage without the task charges the
        provider's budgets); `worker` and its lease `token`: the worker's run, also its
        attempt's cost (usage.charge_task)."""
        await self.db.write(
            partial(
                usage.charge_task, providers=self.providers, task_id=task_id,
                provider=provider, model=model, input_tokens=input_tokens,
                output_tokens=output_tokens, now=self.clock(), worker=worker, token=token,
            )
        )  # fmt: skip

    async def provider_status(self) -> ProviderStatusReport:
        return await self.db.read(
            partial(usage.provider_status, providers=self.providers, now=self.clock())
        )

    async def route_view(self) -> route_figures.RouteBoard:
        """Each route's figures per task class, where a fresh task of each class goes now and
        why, and the learning policy in force (the dashboard's budgets and routing view)."""
        return await self.db.read(
            partial(route_figures.view, providers=self.providers, now=self.clock())
        )
