"""The claims area: what an agent would claim, and its claim (services/claims).

A claim passes claim admission (orchestrator/claim_admission.py) before and around its turn;
`next_claim` is claim_next's claim, which the leases area makes with a move."""

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

import anyio.lowlevel

from wvo_mcp.models import ClaimResult, PlanNextResult
from wvo_mcp.orchestrator import arrival, claim_admission
from wvo_mcp.orchestrator.base import Facade
from wvo_mcp.rules.transitions import Gate, Status
from wvo_mcp.services import agents, claims
from wvo_mcp.store import Tx

# A claim's grants another write beat, made again each time without the task it lost, before
# it is refused as having found none (`no_ready_task`: try again shortly).
LOST_TRIES = 3


class ClaimsFacade(Facade):
    async def plan_next(
        self,
        agent_id: str,
        limit: int = 5,
        epic_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> PlanNextResult:
        return await self.db.read(
            partial(
                claims.plan_next,
                settings=self.settings,
                agent_id=agent_id,
                limit=limit,
                epic_id=epic_id,
                now=self.clock(),
                providers=self.providers,
                provider=provider,
                model=model,
            )
        )

    async def claim(
        self,
        agent_id: str,
        task_id: str | None = None,
        lease_seconds: int | None = None,
        provider: str | None = None,
        model: str | None = None,
        gate: Gate = Gate.NONE,
        bound: agents.Bound | None = None,
    ) -> ClaimResult:
        """`gate`: raised on the task as it is granted (the autopilot's claims: its holder
        may then finish only as far as needs_review); `bound`: an agent token's caller.
        Past capacity, refused at once (reason busy) before anything is read. While claims
        queue for their turn, one sure to be refused is refused from a read, without the
        turn; while none queue, the turn costs what that read would."""
        arrived = arrival.arrived()

        def read() -> Callable[[Tx], ClaimResult | None]:
            return partial(
                claims.refusal_before_turn, settings=self.settings, agent_id=agent_id,
                task_id=task_id, now=self.clock(), providers=self.providers, provider=provider,
                model=model, bound=bound,
            )  # fmt: skip

        refused = await claim_admission.before_turn(self.db, self.claims, agent_id, arrived, read)
        if refused is not None:
            return refused
        lease_seconds = lease_seconds or self.settings.default_lease_seconds
        if task_id is None and gate is Gate.NONE:
            ask = claims.Ask(agent_id, lease_seconds, provider, model, bound)
            return await self._best(ask, arrived)
        claim: Callable[[Tx], ClaimResult] = partial(
            claims.claim, settings=self.settings, agent_id=agent_id, task_id=task_id,
            lease_seconds=lease_seconds, now=self.clock(), providers=self.providers,
            provider=provider, model=model, bound=bound,
        )  # fmt: skip

        def claim_admitted(tx: Tx) -> ClaimResult:
            result = claim(tx)
            if gate is not Gate.NONE and result.claimed and result.task is not None:
                tx.run("raise_gate", {"id": result.task.id, "gate": gate.value})
            return result

        done = await claim_admission.in_turn(
            self.db, self.claims, claim_admitted, agent_id, arrived
        )
        return claims.busy(agent_id, done) if isinstance(done, float) else done

    async def _best(self, ask: claims.Ask, arrived: float) -> ClaimResult:
        """The best task's claim, in a turn with the other claims of the best task queued
        in this process (claim_admission.best_in_turn); made again without a task another write
        took first, a few times at most (claims take turns, so only a write other than a
        claim can)."""
        agent_id, lost = ask.agent_id, frozenset[str]()
        while True:
            if lost:  # a turn is shielded from its caller's going: none more for one gone
                await anyio.lowlevel.checkpoint_if_cancelled()
            done = await claim_admission.best_in_turn(
                self.db, self.claims, self.turns, replace(ask, lost=lost), arrived, self._claim
            )
            if isinstance(done, float):
                return claims.busy(agent_id, done)
            if done._lost is None or len(lost) + 1 >= LOST_TRIES:
                return done
            lost |= {done._lost}

    def _claim(self, tx: Tx, asks: Sequence[claims.Ask]) -> list[Callable[[], ClaimResult]]:
        return claims.best_then_read(tx, self.settings, asks, self.clock(), self.providers)


def next_claim(orch: Facade, agent_id: str, after: Status) -> Callable[[Tx], ClaimResult]:
    """claim_next's claim, as claim_task's with no arguments, made now."""
    claim = partial(
        claims.claim, settings=orch.settings, agent_id=agent_id, task_id=None,
        lease_seconds=orch.settings.default_lease_seconds, now=orch.clock(),
        providers=orch.providers,
    )  # fmt: skip
    return partial(claims.claim_next, claim=claim, agent_id=agent_id, after=after)
