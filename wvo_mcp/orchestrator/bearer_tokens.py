"""The bearer tokens area: the HTTP transport's bearer tokens (services/bearer_tokens).

Finding a token records its use (token_used, once a minute at most); past capacity that
bookkeeping is left for a later use, while a revocation is never missed."""

import contextlib
from datetime import datetime
from functools import partial

from wvo_mcp.errors import Overloaded
from wvo_mcp.orchestrator import arrival
from wvo_mcp.orchestrator.base import Facade
from wvo_mcp.rules.claim_admission import HELD_WAIT_S
from wvo_mcp.services import bearer_tokens
from wvo_mcp.store import Lock


class BearerTokensFacade(Facade):
    async def token_add(
        self,
        role: str,
        name: str,
        by: str,
        expires_at: datetime | None = None,
        scope: bearer_tokens.Scope | None = None,
        provider: str | None = None,
    ) -> bearer_tokens.Issued:
        """A new bearer token for the HTTP transport; its secret is in the answer only.
        `expires_at` and `scope`: a run token (the autopilot's, for one worker run);
        `provider`: the provider an agent token is bound to."""
        known = tuple(p.name for p in self.providers.providers)
        return await self.db.write(
            partial(
                bearer_tokens.add,
                role=role,
                name=name,
                by=by,
                now=self.clock(),
                expires_at=expires_at,
                scope=scope,
                provider=provider,
                known=known,
            )
        )

    async def token_extend(self, token_id: str, expires_at: datetime) -> None:
        await self.db.write(partial(bearer_tokens.extend, token_id=token_id, expires_at=expires_at))

    async def token_find(self, secret: str) -> bearer_tokens.Token | None:
        """The live token a bearer secret belongs to (its last use recorded, once a
        minute at most), or None."""
        now = self.clock()
        found = await self.db.read(
            partial(bearer_tokens.find, secret=secret, now=now),
            snapshot=False,
            within=arrival.left(HELD_WAIT_S),
        )
        if found is not None and bearer_tokens.stale(found, now):
            await self.token_used(found.id)
        return found

    async def token_used(self, token_id: str) -> None:
        """Record a use of a token (once in USED_RESOLUTION): one conditional row update,
        however many agents present it at once. Past capacity it is left for a later use:
        bookkeeping never refuses the call it comes with."""
        write = partial(bearer_tokens.used, token_id=token_id, now=self.clock())
        with contextlib.suppress(Overloaded):
            await self.db.write(write, Lock.TASK, arrival.left(HELD_WAIT_S))

    async def token_revocations(self, within: float | None = None) -> int:
        """Tokens ever revoked, waiting at most `within` seconds (else what is left of the
        call's held-work bound); past it Overloaded (the call it came with is refused: a
        revocation is never missed)."""
        within = arrival.left(HELD_WAIT_S) if within is None else within
        return await self.db.read(bearer_tokens.revocations, snapshot=False, within=within)

    async def token_list(self) -> list[bearer_tokens.Token]:
        return await self.db.read(bearer_tokens.all_tokens)

    async def token_revoke(self, token_id: str) -> None:
        await self.db.write(partial(bearer_tokens.revoke, token_id=token_id, now=self.clock()))
