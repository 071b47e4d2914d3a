"""A task's detail on the dashboard lists what each autopilot run on it was charged (issue
70): after a real autopilot whose fake Claude Code worker ran in its sandbox behind its
run's meter (which counted nothing) and said its usage, the card's panel, in Chromium, shows
the run's tokens and cost, and the meter's count beside the CLI's word, which differ."""

import re
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import autopilot, backlog, env, make_project
from tests.dashboard.test_dashboard import TIMEOUT_MS, browser_page, sign_in
from tests.http.conftest import http_server, token
from wvo_mcp.sandbox import bwrap

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not bwrap.probe().usable, reason="bubblewrap cannot sandbox here"),
]


@pytest.mark.browser
async def test_a_tasks_panel_shows_what_each_run_was_charged(tmp_path: Path) -> None:
    from playwright.async_api import expect

    project = make_project(tmp_path)
    usage = {"input_tokens": 60_000, "output_tokens": 6_000}
    await backlog(project, [{"id": "C1", "title": "charged", "metadata": {"fake_usage": usage}}])
    ran = await anyio.to_thread.run_sync(autopilot, project)
    assert ran.returncode == 0 and "1 done" in ran.stdout, ran.stdout + ran.stderr[-3000:]
    person = token(project["state"], "person", "ann")
    server_env = {k: v for k, v in env(project).items() if k not in ("PATH", "HOME")}
    with http_server(project["state"], "--dashboard", **server_env) as server:
        async with browser_page(server) as page:
            await sign_in(page, person)
            await page.locator("#card-C1 .title a").click()
            charges = page.locator("#panel section.charges tr.charge")
            await expect(charges).to_have_count(1, timeout=TIMEOUT_MS)
            charge = charges.first
            await expect(charge).to_have_attribute("data-role", "worker")
            await expect(charge).to_have_attribute("data-differ", "true")
            # Either provider's slot may take it: both have one tier, "all", at one price.
            await expect(charge.locator(".agent")).to_have_text(re.compile(r"^(alpha|beta)-\d+$"))
            await expect(charge).to_contain_text(re.compile(r"(alpha|beta)/all"))
            await expect(charge.locator(".in")).to_have_text("60000")
            await expect(charge.locator(".out")).to_have_text("6000")
            await expect(charge.locator(".cost")).to_have_text("0.0720")
            await expect(charge.locator(".source")).to_have_text(
                "the meter counted 0 in, 0 out; its CLI said 60000 in, 6000 out: the larger of each"
            )
