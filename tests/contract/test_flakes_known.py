"""What is known to flake on a target (services/flakes.known, issue 69), on every backend: the
tests of the flakes recorded there lately, the check as a whole where one of it named no
test, and a person's quarantine; another target's flakes and old ones prove nothing."""

from functools import partial

import pytest

from tests.contract.conftest import World
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.flakes import WHOLE
from wvo_mcp.services import flakes

pytestmark = pytest.mark.anyio
CHECK = "pytest -q --junitxml=reports/junit.xml"


async def test_a_targets_flakes_are_what_is_known_to_flake_there(
    world: World, orch: Orchestrator
) -> None:
    async def known(target: str, command: str = CHECK) -> frozenset[str]:
        return await orch.db.read(
            partial(flakes.known, target=target, command=command, now=world.clock.now())
        )

    assert await known("main") == frozenset()
    flaked = partial(orch.check_flaked, reruns=1, output="F", seconds=1.0)
    await flaked(target="main", command=CHECK, tree="a" * 40, tests=["tests.t::test_x"])
    await flaked(target="other", command=CHECK, tree="b" * 40, tests=["tests.t::test_y"])
    await flaked(target="main", command="make lint", tree="c" * 40, tests=[])  # no report
    assert await known("main") == {"tests.t::test_x"}
    assert await known("main", "make lint") == {"tests.t::test_x", WHOLE}
    assert await known("other") == {"tests.t::test_y"}
    await orch.quarantine("tests.t::test_z", "known race", "person:ann", 30)
    assert await known("main") == {"tests.t::test_x", "tests.t::test_z"}
    world.clock.advance((flakes.KNOWN_DAYS + 1) * 24 * 3600)  # a record proves for a while
    assert await known("main") == {"tests.t::test_z"}
