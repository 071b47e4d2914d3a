"""Shared context: versions, optimistic writes (a stale expected_version is a Conflict),
append, history, earlier versions, caps, and the rendered Markdown."""

import pytest

from tests.contract.conftest import World
from wvo_mcp.errors import Conflict, NotFound, ValidationFailed
from wvo_mcp.orchestrator import Orchestrator

pytestmark = pytest.mark.anyio


async def test_versions_append_history_and_rendering(world: World, orch: Orchestrator) -> None:
    first = await orch.context_write("decisions", "Use SQLite.", "scribe", expected_version=0)
    assert (first.section, first.version, first.size_bytes) == ("decisions", 1, 11)
    world.clock.advance(1)
    await orch.context_write("conventions", "Black, 100 columns.", "scribe")
    world.clock.advance(1)
    second = await orch.context_write("decisions", "WAL mode.", "editor", mode="append")
    assert second.version == 2
    assert second.size_bytes == len("Use SQLite.\nWAL mode.")
    assert second.total_bytes == len("Use SQLite.\nWAL mode.") + len("Black, 100 columns.")

    one = (await orch.context_read("decisions")).sections
    assert [(s.name, s.version, s.content, s.updated_by, s.updated_at) for s in one] == [
        ("decisions", 2, "Use SQLite.\nWAL mode.", "editor", world.clock.text())
    ]
    old = await orch.context_read("decisions", version=1)
    assert [(s.version, s.content, s.updated_by) for s in old.sections] == [
        (1, "Use SQLite.", "scribe")
    ]
    every = await orch.context_read()
    assert [s.name for s in every.sections] == ["decisions", "conventions"]
    assert every.total_bytes == second.total_bytes
    history = await orch.context_history("decisions")
    assert [(v.version, v.mode, v.author) for v in history] == [
        (2, "append", "editor"),
        (1, "replace", "scribe"),
    ]

    with pytest.raises(NotFound, match="no context section 'nothing-here'"):
        await orch.context_read("nothing-here")
    with pytest.raises(NotFound, match="no version 9"):
        await orch.context_read("decisions", version=9)

    rendered = await orch.context_markdown()
    assert rendered.index("## decisions") < rendered.index("## conventions")
    assert "Use SQLite.\nWAL mode." in rendered and "version 2, editor" in rendered
    assert (world.tmp_path / "state" / "context.md").read_text() == rendered


async def test_a_stale_expected_version_is_a_conflict(world: World) -> None:
    a, b = await world.open(), await world.open()
    await a.context_write("plan", "v1", "a", expected_version=0)
    seen_by_a = (await a.context_read("plan")).sections[0].version
    seen_by_b = (await b.context_read("plan")).sections[0].version
    assert seen_by_a == seen_by_b == 1

    won = await a.context_write("plan", "a's plan", "a", expected_version=seen_by_a)
    assert won.version == 2
    with pytest.raises(Conflict, match="version 2, not 1") as lost:
        await b.context_write("plan", "b's plan", "b", expected_version=seen_by_b)
    assert "a's plan" in str(lost.value)
    final = (await b.context_read("plan")).sections[0]
    assert (final.version, final.content, final.updated_by) == (2, "a's plan", "a")
    with pytest.raises(Conflict, match="version 2, not 0"):
        await b.context_write("plan", "x", "b", expected_version=0)
    with pytest.raises(Conflict, match="does not exist yet"):
        await b.context_write("fresh", "x", "b", expected_version=3)
    assert [v.version for v in await a.context_history("plan")] == [2, 1]


async def test_caps_refuse_with_sizes_and_write_nothing(world: World) -> None:
    orch = await world.open(context_section_bytes=100, context_total_bytes=150)
    await orch.context_write("one", "x" * 90, "w")
    with pytest.raises(ValidationFailed, match=r"111 bytes.*100-byte cap"):
        await orch.context_write("one", "y" * 20, "w", mode="append")
    with pytest.raises(ValidationFailed, match=r"151 bytes in all.*150-byte cap"):
        await orch.context_write("two", "z" * 61, "w")
    state = await orch.context_read()
    assert [(s.name, s.version, s.content) for s in state.sections] == [("one", 1, "x" * 90)]
    # Replacing a section counts its new size, not old + new.
    assert (await orch.context_write("one", "w" * 100, "w")).total_bytes == 100
