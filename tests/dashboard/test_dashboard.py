"""The live dashboard (`serve --http --dashboard`) in a real browser: Debian's headless
Chromium driven by Playwright, against a real server, with real MCP agents working."""

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.conftest import CLI_TIMEOUT_SECONDS, POLL_DEADLINE_SECONDS, ROOT, Store
from tests.http.conftest import HttpServer, connect, events, http_server, spec, token
from tests.integration.test_git_checkpoints import make_repo

pytestmark = pytest.mark.anyio
CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
TIMEOUT_MS = POLL_DEADLINE_SECONDS * 1000
ROUTES = ["/dashboard", "/dashboard/static/app.js", "/dashboard/api/cards?ids=T1",
          "/dashboard/api/column?status=pending", "/dashboard/events", "/dashboard/tasks/T1",
          "/dashboard/api/tasks/T1", "/dashboard/api/tasks/T1/checkpoints/1/diff",
          "/dashboard/api/views/agents", "/dashboard/api/views/budgets",
          "/dashboard/api/views/health"]  # fmt: skip
CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
HOSTILE = '<script>window.pwned = 1</script><img id="evil" src="x">'
# A folder to save the docs' screenshots in (docs/dashboard.md says how); unset, none are taken.
SCREENSHOTS = os.environ.get("WVO_SCREENSHOTS")


def store_token(store: Store, role: str, name: str) -> str:
    """`token`, made in the store's database (PostgreSQL through WVO_DATABASE_URL)."""
    if store.url is None:
        return token(store.state_root, role, name)
    command = [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(store.state_root),
               "tokens", "add", "--role", role, "--name", name]  # fmt: skip
    made = subprocess.run(command, cwd=ROOT, env={**os.environ, **store.env}, text=True,
                          capture_output=True, timeout=CLI_TIMEOUT_SECONDS)  # fmt: skip
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@asynccontextmanager
async def browser_page(server: HttpServer, width: int = 1280) -> AsyncIterator[object]:
    if not HAVE_CHROMIUM:
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup installs Debian's chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(
                base_url=server.base, viewport={"width": width, "height": 800}
            )
            yield await context.new_page()
        finally:
            await browser.close()


async def sign_in(page, secret: str) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import expect

    answer = await page.goto("/dashboard")
    assert answer.status == 401
    await page.fill("input[name=token]", secret)
    await page.click("button[type=submit]")
    await expect(page.locator("#live")).to_have_attribute("data-state", "open", timeout=TIMEOUT_MS)


async def screenshot(page, name: str, full_page: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Save the page as NAME in `WVO_SCREENSHOTS`'s folder (Playwright makes it); without
    it, write nothing."""
    if SCREENSHOTS:
        await page.screenshot(path=os.path.join(SCREENSHOTS, name), full_page=full_page)


@pytest.mark.browser
async def test_every_column_fits_a_1200_pixel_screen(state_root: Path):
    """After a run the work is in Done, the last column: it must be on the screen."""
    person = token(state_root, "person", "ada")
    with http_server(state_root, "--dashboard") as server:
        async with browser_page(server, width=1200) as page:
            await sign_in(page, person)
            edges = await page.evaluate(
                "() => [...document.querySelectorAll('#board .column')].map("
                "c => [c.id, Math.round(c.getBoundingClientRect().right)])"
            )
            width = await page.evaluate("() => document.documentElement.clientWidth")
    assert "col-done" in [name for name, _ in edges], edges
    assert len(edges) == 8 and all(right <= width for _, right in edges), (edges, width)


@pytest.mark.browser
async def test_cards_move_live_as_agents_work_and_a_person_approves(state_root: Path):
    from playwright.async_api import expect

    person = token(state_root, "person", "ada")
    agent_secret = token(state_root, "agent", "claude-1")
    with http_server(state_root, "--dashboard") as server:
        async with connect(server, agent_secret) as agent, browser_page(server) as page:
            await agent.call("task_create", tasks=[
                spec("T1", epic_id="E1"), spec("T2", requires_approval=True)])  # fmt: skip
            await sign_in(page, person)
            card = page.locator("#card-T1")
            await expect(page.locator("#col-pending #card-T1")).to_be_visible()
            await expect(page.locator("#col-pending .count")).to_have_text("1")
            await expect(card.locator(".epic")).to_have_text("E1")

            claim = await agent.call("claim_task", task_id="T1")
            lease = claim["lease_token"]
            await expect(page.locator("#col-in_progress #card-T1")).to_be_visible(
                timeout=TIMEOUT_MS
            )
            await expect(card.locator(".holder")).to_have_text("claude-1")
            await expect(card.locator(".lease")).to_have_text(re.compile(r"lease \d+:\d\d"))
            first = await card.locator(".lease").text_content()
            await expect(card.locator(".lease")).not_to_have_text(first, timeout=TIMEOUT_MS)

            await agent.call("checkpoint", task_id="T1", lease_token=lease, summary="half",
                             progress=40)  # fmt: skip
            await expect(card.locator(".progress")).to_have_text("40%", timeout=TIMEOUT_MS)
            await agent.call("plan_update", task_id="T1", status="done", lease_token=lease)
            await expect(page.locator("#col-done #card-T1")).to_be_visible(timeout=TIMEOUT_MS)
            await expect(page.locator("#col-done .count")).to_have_text("1")

            # T2 waits for a person; nothing is claimable until the approval.
            refused = await agent.call("claim_task", task_id="T2")
            assert not refused["claimed"], refused
            page.on("dialog", lambda dialog: dialog.accept())
            await page.locator("#card-T2 button[data-action=approve]").click()
            await expect(page.locator("#col-pending #card-T2")).to_be_visible(timeout=TIMEOUT_MS)
            claimed = await agent.call("claim_task", task_id="T2")
            assert claimed["claimed"], claimed
            await expect(page.locator("#col-in_progress #card-T2")).to_be_visible(
                timeout=TIMEOUT_MS
            )
            # More work arrives: the board now has cards in several columns.
            await agent.call("task_create", tasks=[
                spec("T3", title="write the release notes", epic_id="E1"),
                spec("T4", title="migrate the database", requires_approval=True),
                spec("T5", title="announce the release", depends_on=["T3"])])  # fmt: skip
            await expect(page.locator("#col-pending #card-T5")).to_be_visible(timeout=TIMEOUT_MS)
            await expect(page.locator("#card-T4 button[data-action=approve]")).to_be_visible()
            await screenshot(page, "dashboard-board.png")
    approvals = [e for e in events(state_root, "T2") if e["kind"] == "approved"]
    assert [e["actor"] for e in approvals] == ["person:ada"], events(state_root, "T2")


@pytest.mark.browser
async def test_an_operator_views_without_actions(state_root: Path):
    from playwright.async_api import expect

    operator = token(state_root, "operator", "ops")
    agent_secret = token(state_root, "agent", "a1")
    with http_server(state_root, "--dashboard") as server:
        async with connect(server, agent_secret) as agent, browser_page(server) as page:
            await agent.call("task_create", tasks=[spec("T1", requires_approval=True)])
            await sign_in(page, operator)
            await expect(page.locator("#card-T1")).to_be_visible()
            await expect(page.locator("#card-T1 button")).to_have_count(0)


async def test_the_stream_names_changed_tasks_on_both_stores(store: Store):
    state_root = store.state_root
    agent_secret = store_token(store, "agent", "a1")
    viewer = store_token(store, "operator", "ops")
    with http_server(state_root, "--dashboard", **store.env) as server:
        async with connect(server, agent_secret) as agent, server.http(viewer) as http:
            page = await http.get(server.base + "/dashboard")
            cursor = re.search(r'data-cursor="(\d+)"', page.text)
            assert page.status_code == 200 and cursor
            async with http.stream("GET", f"{server.base}/dashboard/events?after={cursor[1]}",
                                   headers={"Accept": "text/event-stream"}) as stream:  # fmt: skip
                assert stream.status_code == 200
                await agent.call("task_create", tasks=[spec("T9")])
                await agent.call("claim_task", task_id="T9")
                seen: set[str] = set()
                last_id = None
                async for line in stream.aiter_lines():
                    if line.startswith("id: "):
                        last_id = int(line[4:])
                    if line.startswith("data: ") and "ids" in line:
                        data = json.loads(line[6:])
                        seen.update(data["ids"])
                        if data["counts"].get("in_progress") == 1:
                            break
                assert "T9" in seen and last_id is not None and last_id > int(cursor[1])
            # A reconnect with Last-Event-ID hears only what came after it.
            await agent.call("task_create", tasks=[spec("T10")])
            async with http.stream("GET", f"{server.base}/dashboard/events",
                                   headers={"Last-Event-ID": str(last_id)}) as again:  # fmt: skip
                async for line in again.aiter_lines():
                    if line.startswith("data: ") and "ids" in line:
                        assert json.loads(line[6:])["ids"] == ["T10"]
                        break
            cards = await http.get(server.base + "/dashboard/api/cards?ids=T9,T10&q=t9")
            assert [c["id"] for c in cards.json()["cards"]] == ["T9"]


@pytest.mark.browser
async def test_a_person_opens_a_task_and_sees_its_events_checkpoints_and_diff(
    state_root: Path, tmp_path: Path
):
    """The detail panel: events, a checkpoint an MCP agent made (with a git snapshot of a
    throwaway repository, shown as a diff), dependencies; hostile text stays text, and the
    page runs under its Content-Security-Policy without a violation."""
    from playwright.async_api import expect

    repo = make_repo(tmp_path / "repo")
    person = token(state_root, "person", "ada")
    agent_secret = token(state_root, "agent", "claude-1")
    with http_server(state_root, "--dashboard", WVO_WORKSPACE_ROOT=repo) as server:
        async with connect(server, agent_secret) as agent, browser_page(server) as page:
            refused: list[str] = []
            page.on("console", lambda m: refused.append(m.text) if "Refused" in m.text else None)
            await agent.call("task_create", tasks=[
                spec("T1", description="first <b>line</b>\nsecond line", business_value=8),
                spec("T2", title=HOSTILE, depends_on=["T1"]),
            ])  # fmt: skip
            lease = (await agent.call("claim_task", task_id="T1"))["lease_token"]
            (repo / "app.py").write_text("print('v2')  # <script>alert(1)</script>\n")
            await agent.call("checkpoint", task_id="T1", lease_token=lease,
                             summary="half way <i>there</i>", next_steps="finish it",
                             files=["app.py"], progress=50, git_snapshot=True)  # fmt: skip

            answer = await page.goto("/dashboard")
            assert answer.headers["content-security-policy"] == CSP
            await sign_in(page, person)
            title = page.locator("#card-T2 .title")
            await expect(title).to_have_text(HOSTILE)
            await page.locator("#card-T1 .title a").click()
            panel = page.locator("#panel")
            await expect(panel.locator(".detail .title")).to_have_text("task T1")
            await expect(panel.locator(".description")).to_contain_text("first <b>line</b>")
            await expect(panel.locator(".wsjf")).to_contain_text("business value")
            await expect(panel.locator(".deps")).to_contain_text("T2")
            checkpoint = panel.locator(".checkpoint[data-seq='1']")
            await expect(checkpoint.locator(".summary")).to_have_text("half way <i>there</i>")
            await expect(checkpoint).to_contain_text("finish it")
            await expect(checkpoint.locator(".files")).to_have_text("app.py")
            kinds = panel.locator(".events .kind")
            await expect(kinds).to_have_text(["created", "claimed"])
            await checkpoint.locator("button.diff").click()
            added = checkpoint.locator(".patch .add")
            await expect(added).to_have_text(["+print('v2')  # <script>alert(1)</script>"])

            # The live view refreshes an open panel: the task moves on, the panel follows.
            await agent.call("plan_update", task_id="T1", status="done", lease_token=lease)
            await expect(kinds.last).to_have_text("status", timeout=TIMEOUT_MS)

            await panel.locator(".deps a", has_text="T2").click()
            await expect(panel.locator(".detail .title")).to_have_text(HOSTILE)
            await expect(page.locator("#evil")).to_have_count(0)
            assert await page.evaluate("window.pwned") is None

            # The same detail as a page of its own.
            answer = await page.goto("/dashboard/tasks/T1")
            assert answer.status == 200
            assert answer.headers["content-security-policy"] == CSP
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "same-origin"
            await expect(page.locator(".checkpoint .summary")).to_have_text("half way <i>there</i>")
            await page.locator(".checkpoint button.diff").click()
            await expect(page.locator(".patch .add").last).to_contain_text("print('v2')")
            await screenshot(page, "dashboard-task.png", full_page=True)
            assert await page.evaluate("window.pwned") is None
            assert refused == [], refused


@pytest.mark.browser
async def test_the_agents_budgets_and_health_views(state_root: Path):
    """Each view's tab shows its server-rendered fragment: an agent with its held task and
    done count, the providers with their budgets and breakers and each route's figures per
    task class, the health report; a view follows the live stream."""
    from playwright.async_api import expect

    operator = token(state_root, "operator", "ops")
    agent_secret = token(state_root, "agent", "claude-1")
    with http_server(state_root, "--dashboard") as server:
        async with connect(server, agent_secret) as agent, browser_page(server) as page:
            refused: list[str] = []
            page.on("console", lambda m: refused.append(m.text) if "Refused" in m.text else None)
            await agent.call("agent_register", provider="codex", model="gpt-5-codex")
            await agent.call("task_create", tasks=[spec("T1"), spec("T2", title=HOSTILE)])
            claim = await agent.call("claim_task", task_id="T1")
            assert claim["claimed"], claim
            await agent.call("plan_update", task_id="T1", status="done",
                             lease_token=claim["lease_token"])  # fmt: skip
            await sign_in(page, operator)

            await page.locator("#tabs .tab[data-view=agents]").click()
            await expect(page.locator("#board")).to_be_hidden()
            row = page.locator("#view-agents .agent[data-id=claude-1]")
            await expect(row).to_contain_text("gpt-5-codex")
            await expect(row.locator(".done")).to_have_text("1")
            await expect(row.locator(".state")).to_have_text("idle")
            # The live stream refreshes the open view: the agent now holds T2.
            second = await agent.call("claim_task", task_id="T2")
            await expect(row.locator(".task")).to_contain_text(HOSTILE, timeout=TIMEOUT_MS)
            await expect(row.locator(".state")).to_have_text("working")

            await page.locator("#tabs .tab[data-view=budgets]").click()
            await expect(page.locator("#view-agents")).to_be_hidden()
            codex = page.locator("#view-budgets .provider[data-name=codex]")
            await expect(codex.locator(".breaker-state")).to_have_text("closed")
            await expect(codex.locator(".in-flight")).to_contain_text("in flight: 1 of 4")
            await expect(codex.locator("meter")).to_have_count(3)
            await expect(codex.locator(".tiers")).to_contain_text("medium")
            await expect(page.locator("#view-budgets .provider[data-name=claude]")).to_be_visible()
            # Routes: T1's outcome on the route it was given, for its class (complexity 5);
            # T2's done follows live.
            routes = page.locator("#view-budgets .routes")
            await expect(routes.locator(".policy")).to_contain_text("learning on; floor 0%")
            medium = routes.locator(".route-class[data-class=c4-7] .route[data-tier=medium]")
            await expect(medium).to_have_attribute("data-provider", "codex")
            await expect(medium.locator(".outcomes")).to_have_text("1")
            await expect(medium.locator(".first-try")).to_have_text("100%")
            await expect(routes.locator(".route-class[data-class=c4-7] .chosen")).to_contain_text(
                "a fresh task (complexity 4) goes to codex/"
            )
            await agent.call("plan_update", task_id="T2", status="done",
                             lease_token=second["lease_token"])  # fmt: skip
            await expect(medium.locator(".outcomes")).to_have_text("2", timeout=TIMEOUT_MS)

            await page.locator("#tabs .tab[data-view=health]").click()
            health = page.locator("#view-health")
            await expect(health.locator("h3").first).to_contain_text("Open anomalies")
            await expect(health).to_contain_text(re.compile("no anomalies|critical|warning|info"))

            await page.locator("#tabs .tab[data-view=board]").click()
            await expect(page.locator("#card-T2")).to_be_visible()
            await expect(page.locator("#evil")).to_have_count(0)
            assert await page.evaluate("window.pwned") is None
            assert refused == [], refused


@pytest.mark.browser
async def test_a_person_answers_from_the_inbox_tells_and_pauses_and_the_task_moves(
    state_root: Path,
):
    from playwright.async_api import expect

    person = token(state_root, "person", "ada")
    agent_secret = token(state_root, "agent", "claude-1")
    with http_server(state_root, "--dashboard") as server:
        async with connect(server, agent_secret) as agent, browser_page(server) as page:
            await agent.call("task_create", tasks=[spec("Q1", title="pick a licence")])
            claim = await agent.call("claim_task", task_id="Q1")
            await sign_in(page, person)
            asked = HOSTILE + " MIT or Apache?"
            await agent.call(
                "ask_person", task_id="Q1", lease_token=claim["lease_token"], question=asked
            )
            await expect(page.locator("#col-blocked #card-Q1")).to_be_visible(timeout=TIMEOUT_MS)
            await page.click("#tabs button[data-view=inbox]")
            question = page.locator("#view-inbox .question[data-id=Q1]")
            await expect(question.locator(".asked")).to_have_text(asked, timeout=TIMEOUT_MS)
            assert await page.evaluate("() => window.pwned") is None
            assert await page.locator("#evil").count() == 0  # shown as text, never run

            answers = iter(["Apache-2.0", "use the v2 API"])
            page.on("dialog", lambda dialog: dialog.accept(next(answers, "")))
            await question.locator("button[data-action=answer]").click()
            await expect(page.locator("#view-inbox .none")).to_have_text(
                "no question waits for an answer", timeout=TIMEOUT_MS
            )
            await page.click("#tabs button[data-view=board]")
            await expect(page.locator("#col-pending #card-Q1")).to_be_visible(timeout=TIMEOUT_MS)
            again = await agent.call("claim_task", task_id="Q1")
            said = [(n["kind"], n["text"]) for n in again["from_a_person"]]
            assert said == [("answer", "Apache-2.0")]
            assert [n["text"] for n in again["asked_by_an_agent"]] == [asked]

            # From its card: a message reaches the holder with its next call; a pause too.
            await expect(page.locator("#col-in_progress #card-Q1")).to_be_visible(
                timeout=TIMEOUT_MS
            )
            await page.locator("#card-Q1 button[data-action=tell]").click()
            await expect(page.locator("#message")).to_contain_text("told task Q1")
            held = {"task_id": "Q1", "lease_token": again["lease_token"]}
            beat = await agent.call("heartbeat", **held)
            assert [n["text"] for n in beat["from_a_person"]] == ["use the v2 API"]
            await page.locator("#card-Q1 button[data-action=pause]").click()
            await expect(page.locator("#message")).to_contain_text("task Q1 paused")
            beat = await agent.call("heartbeat", **held)
            assert [n["kind"] for n in beat["from_a_person"]] == ["pause"]
    kinds = [e["kind"] for e in events(state_root, "Q1")]
    assert {"told", "paused"} <= set(kinds), kinds
    answered = [e for e in events(state_root, "Q1") if e["from_status"] == "blocked"]
    assert [(e["actor"], e["to_status"]) for e in answered] == [("person:ada", "pending")]
