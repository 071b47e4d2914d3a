"""The live board under a fleet: 16 agents (real MCP clients) on two `serve --http`
processes, the board served by a third, watched in a real browser. Every claim must show as
its card in the in-progress column before the agent finishes the task, so no move can hide
inside another; the benchmark (scripts/bench/dashboard.py) times the same path."""

import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from tests.conftest import Agent
from tests.dashboard.test_dashboard import TIMEOUT_MS, browser_page, sign_in
from tests.http.conftest import connect, free_port, http_server, spec, token

pytestmark = pytest.mark.anyio
AGENTS = 16
TASKS = 48
SERVERS = 2  # the agents' servers; the board's is another process
FLEET = {"WVO_WIP_LIMIT": str(AGENTS)}


@pytest.mark.browser
async def test_sixteen_agents_on_other_processes_move_every_card_live(state_root: Path):
    from playwright.async_api import expect

    person = token(state_root, "person", "ada")
    secrets = [token(state_root, "agent", f"agent-{n:02d}") for n in range(AGENTS)]
    with (
        http_server(state_root, "--dashboard", **FLEET) as board,
        http_server(state_root, **FLEET) as first,
        http_server(state_root, **FLEET) as second,
    ):
        servers = [first, second]
        async with browser_page(board) as page:
            async with connect(first, secrets[0]) as planner:
                await planner.call("task_create", tasks=[spec(f"T{n:02d}") for n in range(TASKS)])
            await sign_in(page, person)
            await expect(page.locator("#col-pending .card")).to_have_count(TASKS)
            finished: dict[str, list[str]] = {}

            async def work(agent: Agent, name: str) -> None:
                done = finished.setdefault(name, [])
                while True:
                    claim = await agent.call("claim_task")
                    if not claim["claimed"]:
                        return
                    task_id = claim["task"]["id"]
                    # The card must reach the in-progress column while the agent holds it.
                    await expect(page.locator(f"#col-in_progress #card-{task_id}")).to_be_visible(
                        timeout=TIMEOUT_MS
                    )
                    await agent.call(
                        "plan_update", task_id=task_id, status="done",
                        lease_token=claim["lease_token"],
                    )  # fmt: skip
                    done.append(task_id)

            async def one(n: int) -> None:
                async with connect(servers[n % SERVERS], secrets[n]) as agent:
                    await work(agent, f"agent-{n:02d}")

            async with anyio.create_task_group() as fleet:
                for n in range(AGENTS):
                    fleet.start_soon(one, n)

            await expect(page.locator("#col-done .card")).to_have_count(TASKS, timeout=TIMEOUT_MS)
            await expect(page.locator("#col-done .count")).to_have_text(str(TASKS))
            await expect(page.locator("#col-in_progress .card")).to_have_count(0)
            await expect(page.locator("#col-pending .count")).to_have_text("0")
            shown = await page.eval_on_selector_all(".card", "cards => cards.map(c => c.id)")
    done = sorted(t for tasks in finished.values() for t in tasks)
    assert done == [f"T{n:02d}" for n in range(TASKS)]  # each task done once
    assert sorted(shown) == [f"card-T{n:02d}" for n in range(TASKS)]  # each card once
    assert sum(1 for tasks in finished.values() if tasks) > 1  # the fleet shared the work


@pytest.mark.browser
async def test_the_page_reconnects_by_itself_and_catches_up(state_root: Path):
    """The board's server goes away and comes back on its port: the page says so, then
    shows what another process changed meanwhile, without a reload."""
    from playwright.async_api import expect

    person = token(state_root, "person", "ada")
    agent_secret = token(state_root, "agent", "a1")
    port = free_port()
    with http_server(state_root) as other:
        async with connect(other, agent_secret) as agent:
            await agent.call("task_create", tasks=[spec("T1")])
            with http_server(state_root, "--dashboard", port=port) as board:
                async with browser_page(board) as page:
                    await sign_in(page, person)
                    await expect(page.locator("#col-pending #card-T1")).to_be_visible()
                    marker = await page.evaluate("window.wvoPage = 1")
                    board.process.terminate()
                    board.process.wait(timeout=30)
                    live = page.locator("#live")
                    await expect(live).to_have_attribute("data-state", "closed")
                    await agent.call("task_create", tasks=[spec("T2")])
                    await agent.call("claim_task", task_id="T1")
                    with http_server(state_root, "--dashboard", port=port):
                        await expect(live).to_have_attribute(
                            "data-state", "open", timeout=TIMEOUT_MS
                        )
                        await expect(page.locator("#col-pending #card-T2")).to_be_visible(
                            timeout=TIMEOUT_MS
                        )
                        await expect(page.locator("#col-in_progress #card-T1")).to_be_visible()
                        assert await page.evaluate("window.wvoPage") == marker  # no reload


async def test_each_viewer_gets_the_cards_its_filters_pass_rendered_for_its_role(
    state_root: Path,
):
    """The stream carries the changed cards themselves: all of them to a viewer of the whole
    board, those of epic E1 to a viewer filtering by it (the others' ids tell it to drop
    them); buttons only for a person."""
    person = token(state_root, "person", "ada")
    operator = token(state_root, "operator", "ops")
    agent_secret = token(state_root, "agent", "a1")
    with http_server(state_root, "--dashboard") as server:
        async with (
            connect(server, agent_secret) as agent,
            server.http(person) as as_person,
            server.http(operator) as as_operator,
            as_person.stream("GET", f"{server.base}/dashboard/events") as whole,
            as_operator.stream("GET", f"{server.base}/dashboard/events?epic=E1") as narrow,
        ):
            streams = [whole.aiter_lines(), narrow.aiter_lines()]
            for lines in streams:
                async for line in lines:
                    if line.startswith("event: hello"):
                        break
            await agent.call("task_create", tasks=[spec("T1", epic_id="E1"), spec("T2")])

            async def cards(lines: AsyncIterator[str]) -> tuple[list[str], dict[str, str]]:
                async for line in lines:
                    if line.startswith("data: ") and '"ids"' in line:
                        data = json.loads(line[6:])
                        return data["ids"], {c["id"]: c["html"] for c in data["cards"]}
                raise AssertionError("the stream ended")

            ids, shown = await cards(streams[0])
            assert ids == ["T1", "T2"] and sorted(shown) == ["T1", "T2"]
            assert "data-action" in shown["T1"]  # a person's cards have buttons
            ids, shown = await cards(streams[1])
            assert ids == ["T1", "T2"] and list(shown) == ["T1"]
            assert "data-action" not in shown["T1"]  # an operator's do not


@pytest.mark.browser
async def test_columns_refill_when_thinned_and_page_when_they_grow(state_root: Path):
    """Claims thin the pending column's loaded page below half: it loads the next page by
    itself. The done column, shown whole, keeps its first 200 cards and pages the rest."""
    from playwright.async_api import expect

    person = token(state_root, "person", "ada")
    agent_secret = token(state_root, "agent", "a1")
    many = {"WVO_WIP_LIMIT": "40", "WVO_WIP_PER_AGENT": "40"}
    with http_server(state_root, "--dashboard", **many) as server:
        async with connect(server, agent_secret) as agent, browser_page(server) as page:
            await agent.call("task_create", tasks=[spec(f"T{n:03d}") for n in range(240)])
            await sign_in(page, person)
            pending = page.locator("#col-pending")
            await expect(pending.locator(".card")).to_have_count(50)
            leases = [
                (await agent.call("claim_task", task_id=f"T{n:03d}"))["lease_token"]
                for n in range(30)
            ]
            # 20 of the first page are left: the next page (T050-T099) joins them.
            await expect(pending.locator("#card-T099")).to_be_visible(timeout=TIMEOUT_MS)
            await expect(pending.locator(".card")).to_have_count(70)
            for n, lease in enumerate(leases):
                await agent.call(
                    "plan_update", task_id=f"T{n:03d}", status="done", lease_token=lease
                )
            for n in range(30, 210):
                claim = await agent.call("claim_task", task_id=f"T{n:03d}")
                await agent.call(
                    "plan_update", task_id=f"T{n:03d}", status="done",
                    lease_token=claim["lease_token"],
                )  # fmt: skip
            done = page.locator("#col-done")
            await expect(done.locator(".count")).to_have_text("210", timeout=TIMEOUT_MS)
            await expect(done.locator(".card")).to_have_count(200)
            await expect(done.locator("#card-T199")).to_be_visible()
            await done.locator("button.more").click()
            await expect(done.locator(".card")).to_have_count(210)
            await expect(done.locator("button.more")).to_be_hidden()
