"""Shared context through the MCP client, with several servers on one database (concurrent
writers as real server processes)."""

from pathlib import Path

import anyio
import pytest

from tests.conftest import Agent, connect, wvo

pytestmark = pytest.mark.anyio


async def test_write_append_read_history_and_rendering(state_root: Path) -> None:
    async with connect(state_root, WVO_AGENT_ID="scribe") as a:
        first = await a.call("context_write", section="decisions", content="Use SQLite.")
        assert (first["section"], first["version"]) == ("decisions", 1)
        await a.call("context_write", section="conventions", content="Black, 100 columns.")
        second = await a.call(
            "context_write", section="decisions", content="WAL mode.", mode="append"
        )
        assert second["version"] == 2
        assert second["size_bytes"] == len("Use SQLite.\nWAL mode.")

        one = await a.call("context_read", section="decisions")
        assert one["sections"] == [
            {
                "name": "decisions",
                "version": 2,
                "content": "Use SQLite.\nWAL mode.",
                "updated_by": "scribe",
                "updated_at": one["sections"][0]["updated_at"],
            }
        ]
        old = await a.call("context_read", section="decisions", version=1)
        assert old["sections"][0]["content"] == "Use SQLite."
        every = await a.call("context_read")
        assert [s["name"] for s in every["sections"]] == ["decisions", "conventions"]
        assert every["total_bytes"] == len("Use SQLite.\nWAL mode.") + len("Black, 100 columns.")

        missing = await a.error("context_read", section="nothing-here")
        assert "no context section 'nothing-here'" in missing
        assert "no version 9" in await a.error("context_read", section="decisions", version=9)

    rendered = (state_root / "context.md").read_text()
    assert rendered.index("## decisions") < rendered.index("## conventions")
    assert "Use SQLite.\nWAL mode." in rendered
    assert "version 2" in rendered

    history = wvo(state_root, "context", "history", "decisions")
    assert history.returncode == 0, history.stderr
    assert [line.split()[0] for line in history.stdout.splitlines()[1:]] == ["2", "1"]
    shown = wvo(state_root, "context", "show", "decisions", "--version", "1")
    assert shown.returncode == 0 and "Use SQLite." in shown.stdout
    assert "WAL mode." not in shown.stdout


async def test_the_slower_of_two_servers_gets_the_conflict(state_root: Path) -> None:
    async with (
        connect(state_root, WVO_AGENT_ID="a") as a,
        connect(state_root, WVO_AGENT_ID="b") as b,
    ):
        await a.call("context_write", section="plan", content="v1", expected_version=0)
        seen_by_a = (await a.call("context_read", section="plan"))["sections"][0]["version"]
        seen_by_b = (await b.call("context_read", section="plan"))["sections"][0]["version"]
        assert seen_by_a == seen_by_b == 1

        won = await a.call(
            "context_write", section="plan", content="a's plan", expected_version=seen_by_a
        )
        assert won["version"] == 2
        lost = await b.error(
            "context_write", section="plan", content="b's plan", expected_version=seen_by_b
        )
        assert "Conflict" in lost and "version 2, not 1" in lost and "a's plan" in lost

        final = (await b.call("context_read", section="plan"))["sections"][0]
        assert (final["version"], final["content"], final["updated_by"]) == (2, "a's plan", "a")
        new_only = await b.error("context_write", section="plan", content="x", expected_version=0)
        assert "version 2, not 0" in new_only


async def _append_with_retries(agent: Agent, name: str, lines: int) -> int:
    """Read-modify-write with expected_version until each line lands; returns conflicts."""
    conflicts = 0
    for n in range(lines):
        while True:
            current = (await agent.call("context_read", section="log"))["sections"][0]
            result = await agent.client.call_tool(
                "context_write",
                {
                    "section": "log",
                    "content": current["content"] + f"\n{name} line {n}",
                    "expected_version": current["version"],
                },
            )
            if not result.is_error:
                break
            assert "Conflict" in result.content[0].text  # type: ignore[union-attr]
            conflicts += 1
    return conflicts


@pytest.mark.process
async def test_concurrent_writers_lose_no_update(state_root: Path) -> None:
    writers, lines = 4, 5
    async with connect(state_root, process=True, WVO_AGENT_ID="setup") as setup:
        await setup.call("context_write", section="log", content="start")
    conflicts: dict[str, int] = {}

    async def writer(name: str) -> None:
        async with connect(state_root, process=True, WVO_AGENT_ID=name) as agent:
            conflicts[name] = await _append_with_retries(agent, name, lines)

    async with anyio.create_task_group() as group:
        for i in range(writers):
            group.start_soon(writer, f"w{i}")

    async with connect(state_root) as reader:
        final = (await reader.call("context_read", section="log"))["sections"][0]
    body = final["content"].splitlines()
    expected = {f"w{i} line {n}" for i in range(writers) for n in range(lines)}
    assert set(body[1:]) == expected and len(body) == 1 + writers * lines
    assert final["version"] == 1 + writers * lines
    # Every write either landed once or was refused: nothing silently overwritten.
    assert len(conflicts) == writers


async def test_caps_refuse_with_sizes_and_write_nothing(state_root: Path) -> None:
    env = {"WVO_CONTEXT_SECTION_BYTES": 100, "WVO_CONTEXT_TOTAL_BYTES": 150}
    async with connect(state_root, **env) as a:
        await a.call("context_write", section="one", content="x" * 90)
        too_big = await a.error("context_write", section="one", content="y" * 20, mode="append")
        assert "111 bytes" in too_big and "100-byte cap" in too_big and "summarise" in too_big
        over_total = await a.error("context_write", section="two", content="z" * 61)
        assert "151 bytes in all" in over_total and "150-byte cap" in over_total
        state = await a.call("context_read")
        assert [(s["name"], s["version"]) for s in state["sections"]] == [("one", 1)]
        assert state["sections"][0]["content"] == "x" * 90
        bad_name = await a.error("context_write", section="../etc", content="x")
        assert "section" in bad_name
    rendered = (state_root / "context.md").read_text()
    assert "x" * 90 in rendered and "y" * 20 not in rendered and "z" * 61 not in rendered
