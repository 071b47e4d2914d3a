"""The landing gate's flakes and quarantine (services/flakes.py), on every backend, with a
clock the test moves: each check's figures add up, a flake quarantines the tests that
failed in it, an entry expires, and a person's entry replaces the autopilot's."""

import re

import pytest

from tests.contract.conftest import World
from wvo_mcp.errors import NotFound, ValidationFailed
from wvo_mcp.orchestrator import Orchestrator

pytestmark = pytest.mark.anyio
CHECK = "pytest -q --junitxml=reports/junit.xml"


async def test_a_checks_figures_add_up_and_a_flake_suggests_its_tests(
    world: World, orch: Orchestrator
) -> None:
    await orch.check_counted(CHECK, failed=False)
    await orch.check_counted(CHECK, failed=True, reruns=2, seconds=3.5)  # it came back
    await orch.check_flaked(
        target="main", command=CHECK, tree="a" * 40,
        tests=["tests.t::test_x"], reruns=1, output="FAILED", seconds=1.5,
    )  # fmt: skip
    [figures] = (await orch.gate()).checks
    assert (figures.runs, figures.failures, figures.flakes, figures.reruns) == (3, 2, 1, 3)
    assert figures.rerun_seconds == 5.0 and figures.flake_rate == pytest.approx(1 / 3)
    [flake] = (await orch.gate()).flakes
    assert (flake.target, flake.tree, flake.tests, flake.reruns) == (
        "main", "a" * 40, ["tests.t::test_x"], 1)  # fmt: skip
    # Suggested, not let through: a worker's change can write the tests that flake.
    [entry] = (await orch.gate()).quarantine
    assert entry.added_by == "autopilot" and entry.evidence.startswith("failed on tree aaaaaaaa")
    assert await orch.quarantined() == frozenset()
    # A person quarantines it; a later flake of it leaves the person's entry as it is.
    mine = await orch.quarantine("tests.t::test_x", "known race", "person:ann", 3)
    await orch.check_flaked(
        target="main", command=CHECK, tree="b" * 40,
        tests=["tests.t::test_x"], reruns=1, output="FAILED", seconds=0.5,
    )  # fmt: skip
    [entry] = (await orch.gate()).quarantine
    assert (entry.added_by, entry.expires_at) == ("person:ann", mine.expires_at)
    assert await orch.quarantined() == frozenset({"tests.t::test_x"})
    world.clock.advance(4 * 24 * 3600)  # past its 3 days: still listed, no longer live
    assert await orch.quarantined() == frozenset()
    assert [e.live for e in (await orch.gate()).quarantine] == [False]


async def test_a_person_adds_and_removes_an_entry(world: World, orch: Orchestrator) -> None:
    await orch.check_flaked(
        target="main",
        command=CHECK,
        tree="b" * 40,
        tests=["tests.t::test_y"],
        reruns=1,
        output="x",
        seconds=0.1,
    )
    mine = await orch.quarantine("tests.t::test_y", "known race, issue 12", "person:ann", 30)
    [entry] = (await orch.gate()).quarantine
    assert (entry.added_by, entry.evidence, entry.expires_at) == (
        "person:ann", "known race, issue 12", mine.expires_at)  # fmt: skip
    with pytest.raises(ValidationFailed, match="--days is 1 to 365"):
        await orch.quarantine("tests.t::test_z", "r", "person:ann", 0)
    await orch.unquarantine("tests.t::test_y")
    with pytest.raises(NotFound, match="is not quarantined"):
        await orch.unquarantine("tests.t::test_y")
    assert (await orch.gate()).quarantine == []


async def test_a_persons_pytest_node_id_is_refused_naming_the_reports_form(
    world: World, orch: Orchestrator
) -> None:
    """A node id no report holds would never match: refused, naming the JUnit form, and
    nothing is written. A name the check's own report gave is the autopilot's to keep (a
    report is the check's, and its write must not fail on it)."""
    with pytest.raises(ValidationFailed, match=re.escape("'tests.test_x.TestC::test_y[1]'")):
        await orch.quarantine("tests/test_x.py::TestC::test_y[1]", "flaky", "person:ann", 3)
    assert (await orch.gate()).quarantine == []
    await orch.check_flaked(
        target="main", command=CHECK, tree="c" * 40,
        tests=["tests/odd.py::test_z"], reruns=1, output="x", seconds=0.1,
    )  # fmt: skip
    assert [e.test for e in (await orch.gate()).quarantine] == ["tests/odd.py::test_z"]
