"""The context area: the shared context document's sections and versions (services/context).

Writes are versioned: `expected_version` refuses a write over one not seen."""

from functools import partial
from typing import Literal

from wvo_mcp.models import ContextReadResult, ContextVersion, ContextWriteResult
from wvo_mcp.orchestrator.base import Facade
from wvo_mcp.services import context


class ContextFacade(Facade):
    async def context_write(
        self,
        section: str,
        content: str,
        author: str,
        mode: Literal["replace", "append"] = "replace",
        expected_version: int | None = None,
    ) -> ContextWriteResult:
        return await self.db.write(
            partial(
                context.write,
                settings=self.settings,
                name=section,
                content=content,
                mode=mode,
                expected_version=expected_version,
                author=author,
                now=self.clock(),
            )
        )

    async def context_read(
        self, section: str | None = None, version: int | None = None
    ) -> ContextReadResult:
        return await self.db.read(partial(context.read, name=section, version=version))

    async def context_history(self, section: str, limit: int = 20) -> list[ContextVersion]:
        return await self.db.read(partial(context.history, name=section, limit=limit))

    async def context_markdown(self) -> str:
        return await self.db.read(context.markdown)
