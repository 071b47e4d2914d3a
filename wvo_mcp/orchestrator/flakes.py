"""The flakes area: the landing gate's flakes and quarantine (services/flakes).

What a landing check counted, which of its failures did not come back on the same tree,
and the tests quarantined for it (issue 57)."""

from functools import partial

from wvo_mcp.models import GateFigures, QuarantinedTest
from wvo_mcp.orchestrator.base import Facade
from wvo_mcp.services import flakes


class FlakesFacade(Facade):
    async def gate(self) -> GateFigures:
        return await self.db.read(partial(flakes.gate, now=self.clock()))

    async def quarantined(self) -> frozenset[str]:
        return await self.db.read(partial(flakes.quarantined, now=self.clock()))

    async def quarantine(self, test: str, reason: str, by: str, days: float) -> QuarantinedTest:
        return await self.db.write(
            partial(flakes.put, test=test, evidence=reason, by=by, days=days, now=self.clock())
        )

    async def unquarantine(self, test: str) -> None:
        await self.db.write(partial(flakes.drop, test=test))

    async def check_counted(
        self, command: str, *, failed: bool, reruns: int = 0, seconds: float = 0.0
    ) -> None:
        await self.db.write(partial(flakes.counted, command=command, failed=failed,
                                    flaked=False, reruns=reruns, seconds=seconds))  # fmt: skip

    async def check_flaked(
        self, *, target: str, command: str, tree: str, tests: list[str], reruns: int,
        output: str, seconds: float,
    ) -> None:  # fmt: skip
        """A landing check's failure that did not come back on the same tree (services/
        flakes.py): recorded, and its tests quarantined."""
        await self.db.write(partial(flakes.flaked, target=target, command=command, tree=tree,
                                    tests=tests, reruns=reruns, output=output,
                                    seconds=seconds, now=self.clock()))  # fmt: skip
