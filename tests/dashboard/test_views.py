"""What the dashboard shows beyond the board: usage by agent and provider refreshed live
(usage reports write no task event), the health view's chart and backups, sandbox and
verification output tails, and the autopilot's live log, pause and resume."""

import json
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from tests.autopilot.conftest import backlog, env, make_project
from tests.autopilot.test_acp_worker import acp_project
from tests.conftest import POLL_DEADLINE_SECONDS, ROOT, Store, open_db, wvo
from tests.dashboard.test_dashboard import (
    HOSTILE,
    TIMEOUT_MS,
    browser_page,
    sign_in,
    store_token,
)
from tests.http.conftest import connect, http_server, spec, token
from tests.integration.test_git_checkpoints import make_repo
from tests.landing_state import RUN, TARGET, fill_state, sha
from tests.security.tenancy import started, until, worktree
from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.services import landing_queue

pytestmark = pytest.mark.anyio


@pytest.mark.browser
async def test_usage_the_chart_and_backups_follow_live(state_root: Path):
    """An agent's usage report (no task event) refreshes the open agents and budgets views;
    the health view charts completions per hour and lists the backups."""
    from playwright.async_api import expect

    person = token(state_root, "person", "ada")
    agent_secret = token(state_root, "agent", "codex-1")
    made = wvo(state_root, "backup")
    assert made.returncode == 0, made.stderr
    with http_server(state_root, "--dashboard") as server:
        async with connect(server, agent_secret) as agent, browser_page(server) as page:
            await agent.call("agent_register", provider="codex", model="gpt-5-codex")
            await agent.call("task_create", tasks=[spec("T1"), spec("T2")])
            lease = (await agent.call("claim_task", task_id="T1"))["lease_token"]
            await sign_in(page, person)

            await page.locator("#tabs .tab[data-view=agents]").click()
            row = page.locator("#view-agents .agent[data-id=codex-1]")
            await expect(row.locator(".tier")).to_have_text("medium")
            await expect(row.locator(".tokens")).to_have_text("0")
            usage = {"provider": "codex", "model": "gpt-5-codex", "outcome": "success"}
            await agent.call("record_usage", input_tokens=1000, output_tokens=200,
                             task_id="T1", lease_token=lease, **usage)  # fmt: skip
            await expect(row.locator(".tokens")).to_have_text("1200", timeout=TIMEOUT_MS)
            cost = float(await row.locator(".cost").text_content() or "0")
            assert cost > 0

            await page.locator("#tabs .tab[data-view=budgets]").click()
            codex = page.locator("#view-budgets .provider[data-name=codex]")
            medium = codex.locator(".tiers tbody tr", has_text="medium")
            await expect(medium).to_contain_text("1200")
            await agent.call("record_usage", input_tokens=300, output_tokens=0, **usage)
            await expect(medium).to_contain_text("1500", timeout=TIMEOUT_MS)

            await agent.call("plan_update", task_id="T1", status="done", lease_token=lease)
            await page.locator("#tabs .tab[data-view=health]").click()
            health = page.locator("#view-health")
            bars = health.locator("svg.chart rect")
            await expect(bars).to_have_count(12)
            await expect(bars.last.locator("title")).to_contain_text("1 done")
            await expect(health.locator(".backups")).to_contain_text("1 kept")


async def test_the_stream_names_changed_views_on_both_stores(store: Store):
    """Usage reports and autopilot rounds write no task event: the stream names the views
    they change."""
    agent_secret = store_token(store, "agent", "a1")
    viewer = store_token(store, "operator", "ops")
    with http_server(store.state_root, "--dashboard", **store.env) as server:
        async with connect(server, agent_secret) as agent:  # an agent token charges its own
            await agent.call("agent_register", provider="claude", model="claude-sonnet-4-5")
        async with (
            connect(server, agent_secret) as agent,
            server.http(viewer) as http,
            http.stream("GET", f"{server.base}/dashboard/events") as stream,
        ):
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            async for line in lines:
                if line.startswith("event: hello"):
                    break
            await agent.call("record_usage", provider="claude", model="claude-sonnet-4-5",
                             input_tokens=10, output_tokens=5, outcome="success")  # fmt: skip
            views: set[str] = set()
            async for line in lines:
                if line.startswith("data: ") and "views" in line:
                    views.update(json.loads(line[6:])["views"])
                    if {"agents", "budgets"} <= views:
                        break
            assert "autopilot" not in views and "health" not in views, views


async def test_sandbox_and_verification_output_tails_are_kept_for_people(
    state_root: Path, tmp_path: Path
):
    """A sandbox run recorded on a task and the passing verification keep their output
    tails, shown (escaped) in the task's detail; the agent's own task_get stays lean."""
    repo = make_repo(tmp_path / "repo")
    person = token(state_root, "person", "ada")
    agent_secret = token(state_root, "agent", "claude-1")
    verify = ["sh", "-c", "echo verified-$((2*3)); echo '<b>err</b>' >&2"]
    with http_server(state_root, "--dashboard", WVO_WORKSPACE_ROOT=repo) as server:
        async with connect(server, agent_secret) as agent, server.http(person) as http:
            await agent.call("task_create", tasks=[spec("T1", verify_command=verify)])
            lease = (await agent.call("claim_task", task_id="T1"))["lease_token"]
            command = ["sh", "-c", "echo from-sandbox-$((6*7))"]
            ran = await agent.call("sandbox_run", command=command, task_id="T1", lease_token=lease)
            assert ran["exit_code"] == 0 and "from-sandbox-42" in ran["stdout_tail"], ran
            await agent.call("plan_update", task_id="T1", status="done", lease_token=lease)
            seen = await agent.call("task_get", task_id="T1")
            detail = await http.get(f"{server.base}/dashboard/api/tasks/T1")
    assert detail.status_code == 200, detail.text
    html = detail.json()["html"]
    runs = html[html.index('<section class="runs">') :]
    runs = runs[: runs.index("</section>")]
    assert 'data-kind="sandbox_run"' in runs and 'data-kind="verified"' in runs
    assert "from-sandbox-42" in runs and "verified-6" in runs
    assert "&lt;b&gt;err&lt;/b&gt;" in runs and "<b>err</b>" not in runs
    assert "from-sandbox-42" not in json.dumps(seen) and "verified-6" not in json.dumps(seen)
    with open_db(state_root) as db:
        kept = db.execute(
            "SELECT e.kind, o.stdout FROM run_outputs o JOIN task_events e ON e.id = o.event_id "
            "ORDER BY e.id"
        ).fetchall()
    assert [(k, out.strip()) for k, out in kept] == [
        ("sandbox_run", "from-sandbox-42"),
        ("verified", "verified-6"),
    ]


@pytest.mark.browser
async def test_a_person_watches_an_autopilot_worker_and_pauses_and_resumes_it(tmp_path: Path):
    """A real autopilot with a fake Claude Code worker that stays on its task: the task's
    detail shows the worker's live log; the Autopilot tab pauses and resumes the run, as
    `wvo-mcp autopilot pause` does, recorded with the person's name."""
    project = make_project(tmp_path)
    providers = project["providers"]
    providers.write_text(providers.read_text().replace("hang_seconds: 15", "hang_seconds: 600"))
    await backlog(project, [{"id": "H1", "title": "stays", "metadata": {"fake": "hang"}}])
    state = project["state"]
    person = token(state, "person", "ann")
    errors = tmp_path / "pilot.stderr"
    with (
        errors.open("w") as stderr,
        subprocess.Popen(  # noqa: ASYNC220 - its lines are read by a thread, below
            [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--workers", "alpha:1",
             "--grace", "1"],
            cwd=ROOT, env=env(project), stdout=subprocess.PIPE, stderr=stderr, text=True,
        ) as pilot,
    ):  # fmt: skip
        said: queue.Queue[str] = queue.Queue()
        lines = pilot.stdout
        assert lines is not None
        threading.Thread(target=lambda: [said.put(line) for line in lines], daemon=True).start()

        async def until(text: str) -> None:
            """Wait (off the event loop, with a deadline) for the autopilot to say `text`."""

            def wait() -> None:
                while text not in said.get(timeout=POLL_DEADLINE_SECONDS):
                    pass

            await anyio.to_thread.run_sync(wait)

        try:
            await until(" starts H1")
            await watch_pause_and_resume(project, person, until)
            pilot.send_signal(signal.SIGINT)
            pilot.wait(timeout=60)
        finally:
            if pilot.poll() is None:
                pilot.kill()
                pilot.wait()
    assert pilot.returncode == 0, errors.read_text()[-3000:]
    with open_db(state) as db:
        asked = db.execute("SELECT asked_by FROM autopilot_runs").fetchall()
    assert [tuple(r) for r in asked] == [("person:ann",)]


async def watch_pause_and_resume(
    project: dict[str, Path], person: str, until: Callable[[str], Awaitable[None]]
) -> None:
    """The browser's part: the live log, then pause and resume from the Autopilot tab."""
    from playwright.async_api import expect

    server_env = {k: v for k, v in env(project).items() if k not in ("PATH", "HOME")}
    with http_server(project["state"], "--dashboard", **server_env) as server:
        async with browser_page(server) as page:
            await sign_in(page, person)
            await expect(page.locator("#col-in_progress #card-H1")).to_be_visible()
            await page.locator("#card-H1 .title a").click()
            log = page.locator("#panel .live-log")
            await expect(log).to_have_attribute("data-agent", "alpha-1", timeout=TIMEOUT_MS)
            await expect(log.locator("pre")).to_contain_text("[system]")

            page.on("dialog", lambda dialog: dialog.accept())
            await page.locator("#panel button.close").click()
            await page.locator("#tabs .tab[data-view=autopilot]").click()
            run = page.locator("#view-autopilot .pilot-run")
            await expect(run).to_have_attribute("data-state", "running")
            await expect(run.locator(".worker")).to_contain_text("H1")
            await run.locator("button[data-pilot=pause]").click()
            await until("paused by person:ann")
            await expect(run).to_have_attribute("data-state", "paused", timeout=TIMEOUT_MS)
            await expect(run).to_contain_text("last asked by person:ann")
            await run.locator("button[data-pilot=resume]").click()
            await until("resumed by person:ann")
            await expect(run).to_have_attribute("data-state", "running", timeout=TIMEOUT_MS)


async def test_autopilot_actions_refuse_what_they_cannot_do(state_root: Path):
    """No running autopilot to hear it: 409; an unknown action: 404; an operator or an
    agent: 403; in each case nothing is asked of any run."""
    person = token(state_root, "person", "ann")
    with open_db(state_root, writable=True) as db:
        db.execute(
            "INSERT INTO autopilot_runs (id, started_at, seen_at, state) "
            "VALUES ('h:1:ab', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'ended')"
        )
    operator = token(state_root, "operator", "ops")
    agent_secret = token(state_root, "agent", "a1")
    headers = {"X-WVO-Action": "1"}
    with http_server(state_root, "--dashboard") as server:
        base = f"{server.base}/dashboard/api/autopilot"
        async with server.http(person) as http:
            none = await http.post(f"{base}/pause", json={"run": "h:1:ab"}, headers=headers)
            assert none.status_code == 409 and "Autopilot tab" in none.json()["error"]
            bad = await http.post(f"{base}/stop-everything", json={}, headers=headers)
            assert bad.status_code == 404 and "pause or resume" in bad.json()["error"]
        for secret in (operator, agent_secret):
            async with server.http(secret) as http:
                refused = await http.post(f"{base}/pause", json={}, headers=headers)
                assert refused.status_code == 403, refused.text
    with open_db(state_root) as db:
        runs = db.execute("SELECT id, state, wanted, asked_by FROM autopilot_runs").fetchall()
    assert [tuple(r) for r in runs] == [("h:1:ab", "ended", None, None)]


def test_an_unsandboxed_run_is_said_on_the_autopilot_tab() -> None:
    from wvo_mcp.edge.dashboard import views

    run = {"id": "h:1:a", "state": "running", "started_at": "t0", "seen_at": "t1"}
    shown = views.autopilot([{**run, "report": {"unsandboxed": True}}], can_act=False)
    assert "UNSANDBOXED" in shown and 'class="warning"' in shown
    assert "UNSANDBOXED" not in views.autopilot([{**run, "report": {}}], can_act=False)


def test_each_hosts_run_shows_its_host_its_target_and_why_its_landing_holds() -> None:
    from wvo_mcp.edge.dashboard import views

    run = {"id": "h:1:a", "state": "running", "started_at": "t0", "seen_at": "t1"}
    report = {
        "process": {"host": "build-7"},
        "target": "example.com:team/p#main",
        "held": "the remote origin (example.com:team/p) cannot be reached <x>",
    }
    shown = views.autopilot([{**run, "report": report}], can_act=False)
    assert "on build-7, landing onto <code>example.com:team/p#main</code>; since" in shown
    assert '<p class="warning held">landing holds: the remote origin' in shown
    assert "&lt;x&gt;" in shown  # escaped
    quiet = views.autopilot([{**run, "report": {**report, "held": ""}}], can_act=False)
    assert "landing holds" not in quiet


@pytest.mark.browser
async def test_the_autopilot_tab_shows_the_merge_queue_and_follows_it_live(state_root: Path):
    """The Landing section: the queue (place, task, state, wait) and the figures, every
    agent-written title escaped; an entry taken into a batch (no task event) and its landing
    show without a reload."""
    from playwright.async_api import expect

    await fill_state(state_root, title=HOSTILE, ago=3600)
    person = token(state_root, "person", "ada")
    settings = Settings.from_env({"WVO_STATE_ROOT": str(state_root), "WVO_OTEL_ENABLED": "0"})
    with http_server(state_root, "--dashboard") as server:
        async with browser_page(server) as page:
            await sign_in(page, person)
            await page.locator("#tabs .tab[data-view=autopilot]").click()
            section = page.locator("#view-autopilot .landing")
            rows = section.locator("table.queue .entry")
            await expect(rows).to_have_count(4)
            assert await rows.evaluate_all("rs => rs.map(r => r.dataset.id)") == [
                "B", "Q", "H", "R"
            ]  # fmt: skip
            first = rows.nth(0)
            await expect(first.locator(".position")).to_have_text("1")
            await expect(first.locator(".state")).to_have_text("queued")
            await expect(first.locator(".returns")).to_have_text("1")
            # Queued 660 s after the queue began, an hour ago: some 49 minutes, ticking.
            await expect(first.locator(".waited")).to_have_text(re.compile(r"^\d+m\d\ds$"))
            hostile = section.locator(".entry[data-id=Q] .title")
            await expect(hostile).to_have_text(HOSTILE)
            assert await page.locator("#evil").count() == 0
            assert await page.evaluate("window.pwned") is None
            held = section.locator(".entry[data-id=H]")
            await expect(held.locator(".position")).to_have_text("\u2013")
            await expect(held.locator(".reason")).to_contain_text("a person's commit")
            figures = section.locator("dl.figures")
            await expect(figures.locator("[data-figure=landed]")).to_have_text("1")
            await expect(figures.locator("[data-figure='queue wait p95']")).to_have_text("10m00s")
            await expect(figures.locator("[data-figure='returns per landed change']")).to_have_text(
                "1"
            )
            spend = section.locator("table.spend .spend[data-provider=codex]")
            await expect(spend.locator(".tokens")).to_have_text("1200")

            # Another process takes B into a batch: no task event, yet the tab follows.
            orch = await Orchestrator.open(settings)
            try:
                now = timeutil.now()
                fence = await orch.db.write(
                    partial(landing_queue.hold_target, target=TARGET, run=RUN,
                            until=now + timedelta(hours=1), now=now)
                )  # fmt: skip
                assert fence is not None
                b = (await orch.landing_queue())[0][0]
                assert b.task_id == "B"
                await orch.db.write(
                    partial(landing_queue.start, target=TARGET, run=RUN, fence=fence, ids=[b.id])
                )
                await expect(first.locator(".state")).to_have_text("testing", timeout=TIMEOUT_MS)
                landing_id = await orch.db.write(
                    partial(
                        landing_queue.intend, target=TARGET, run=RUN, fence=fence, old=sha(101),
                        new=sha(103), tree=sha(104), checks="make test: exit 0", ids=[b.id],
                        now=timeutil.now(),
                    )
                )  # fmt: skip
                done = await orch.db.write(
                    partial(landing_queue.complete, settings=orch.settings, landing_id=landing_id,
                            now=timeutil.now())
                )  # fmt: skip
                assert done == ["B"]
            finally:
                await orch.close()
            await expect(rows).to_have_count(3, timeout=TIMEOUT_MS)
            await expect(rows.nth(0)).to_have_attribute("data-id", "Q")
            await expect(figures.locator("[data-figure=landed]")).to_have_text("2")


def test_the_landing_section_escapes_what_agents_wrote() -> None:
    from wvo_mcp.edge.dashboard import views
    from wvo_mcp.models import LandingFigures, LandingQueue, QueueEntry

    figures = LandingFigures(
        since="s", hours=24, landed=0, landed_per_hour=0.0, wait_p50_s=None, wait_p95_s=None,
        returned=0, returns_per_landed=None,
    )  # fmt: skip
    entry = QueueEntry(
        target='<b>"main"</b>', position=None, task_id="T1", title=HOSTILE, state="held",
        waiting_since='"><script>', waited_s=5, returns=0, reason=HOSTILE,
    )  # fmt: skip
    shown = views.autopilot([], False, LandingQueue(entries=[entry], figures=figures))
    assert "no autopilot has run in the last hour" in shown
    assert "<script>" not in shown and "<img" not in shown and "<b>" not in shown
    assert shown.count("&lt;script&gt;window.pwned") == 2  # the title and the reason
    empty = views.landing(LandingQueue(entries=[], figures=figures))
    assert "nothing in the merge queue" in empty and 'table class="spend"' not in empty


def test_pull_requests_show_their_link_and_what_they_wait_for() -> None:
    from wvo_mcp.edge.dashboard import views
    from wvo_mcp.models import LandingFigures, LandingQueue, PullRequestShown

    figures = LandingFigures(
        since="s", hours=24, landed=0, landed_per_hour=0.0, wait_p50_s=None, wait_p95_s=None,
        returned=0, returns_per_landed=None,
    )  # fmt: skip
    pulls = [
        PullRequestShown(target="t", task_id="T1", title=HOSTILE, number=4,
                         url="https://github.com/team/project/pull/4", state="open",
                         waiting="waiting for checks: test", updated_at="u"),
        PullRequestShown(target="t", task_id="T2", title="b", number=5,
                         url="javascript:alert(1)", state="merged", waiting="", updated_at="u"),
    ]  # fmt: skip
    shown = views.landing(LandingQueue(entries=[], figures=figures, pulls=pulls))
    assert 'href="https://github.com/team/project/pull/4"' in shown
    assert "waiting for checks: test" in shown and ">merged<" in shown
    assert "javascript:" not in shown and "<script>" not in shown


def test_schedules_show_their_newest_task_and_next_time_escaped() -> None:
    from wvo_mcp.edge.dashboard import views
    from wvo_mcp.models import Scheduled

    found = [
        Scheduled(id="deps", every="0 6 * * 1", last_task="deps.20261130-0600",
                  last_status="done", next_at="2026-12-07T06:00:00.000Z"),
        Scheduled(id=HOSTILE, every="1d", last_task=HOSTILE, last_status=None,
                  next_at="x", stopped=True),
    ]  # fmt: skip
    shown = views.scheduled(found)
    assert "<time>2026-12-07T06:00:00.000Z</time>" in shown and "(done)" in shown
    assert "stopped" in shown and "(gone)" in shown and "<script>" not in shown
    assert views.scheduled([]) == ""


def test_the_routes_section_shows_each_routes_figures_escaped() -> None:
    """Names come from the providers file and the store: shown as text. Each route's
    figures and state, where a fresh task goes and why, and the policy line."""
    from wvo_mcp.edge.dashboard import views
    from wvo_mcp.rules.learning import Policy, RouteFigures
    from wvo_mcp.services.route_figures import ClassRoutes, RouteBoard, RouteRow

    figures = RouteFigures(
        provider=HOSTILE, tier='"><b>t</b>', outcomes=12, evidence=9.25, first_try_rate=0.75,
        landing_rate=0.8, cost_per_attempt=0.02, cost_per_landed=0.025, proven=True,
        below_floor=False,
    )  # fmt: skip
    untried = RouteFigures("p", "q", 1, 1.0, None, 0.5, 0.01, 0.02, False, False)
    classes = (
        ClassRoutes("c1-3", 1, None, "rule", f"nothing free: {HOSTILE}", ()),
        ClassRoutes(
            "c4-7", 4, f"{HOSTILE}/t", "learned", "lowest est. cost per landed change",
            (RouteRow(figures, "chosen"), RouteRow(untried, "unproven")),
        ),
    )  # fmt: skip
    policy = Policy(enabled=False, floor=0.6, explore_share=0.05)
    shown = views.routes(RouteBoard(policy, 2, classes))
    assert "<script>" not in shown and "<img" not in shown and "<b>" not in shown
    assert shown.count("&lt;script&gt;window.pwned") == 4  # the reason, chosen, provider x2
    policy = "learning off; floor 60% first try; explore share 5%; optimism 1; proven from 5"
    assert policy in shown
    assert "2 pins" in shown
    low = shown[shown.index('data-class="c1-3"') : shown.index('data-class="c4-7"')]
    assert "goes nowhere now (rule)" in low and "no outcomes yet" in low
    assert 'data-state="chosen"' in shown and 'data-basis="learned"' in shown
    cells = re.findall(r'<td class="([a-z-]+)">([^<]*)</td>', shown)
    assert cells[:6] == [
        ("outcomes", "12"), ("evidence", "9.2"), ("first-try", "75%"), ("landing-rate", "80%"),
        ("cost", "0.0250"), ("state", "chosen"),
    ]  # fmt: skip
    assert ("first-try", "&ndash;") in cells and ("state", "unproven") in cells


@pytest.mark.browser
async def test_a_person_watches_an_acp_workers_plan_and_tool_calls_live(tmp_path: Path):
    """A real autopilot whose worker is an ACP agent (the stand-in, in its sandbox) that
    waits on its task: the task's detail shows its plan and tool calls as they happen."""
    from playwright.async_api import expect

    project = acp_project(make_project(tmp_path))
    await backlog(project, [{"id": "W1", "title": "waits", "metadata": {"fake_wait": "go"}}])
    person = token(project["state"], "person", "ann")
    server_env = {k: v for k, v in env(project).items() if k not in ("PATH", "HOME")}
    waiting = worktree(project, "W1") / "go.waiting"
    with started(project) as pilot:
        await anyio.to_thread.run_sync(partial(until, pilot, "it waiting", waiting.exists))
        with http_server(project["state"], "--dashboard", **server_env) as server:
            async with browser_page(server) as page:
                await sign_in(page, person)
                await page.locator("#card-W1 .title a").click()
                log = page.locator("#panel .live-log pre")
                await expect(log).to_contain_text("[session] fake-acp", timeout=TIMEOUT_MS)
                await expect(log).to_contain_text("[plan] 0/3 done")
                await expect(log).to_contain_text("[tool] wvo: task_get (in_progress)")
                await expect(log).to_contain_text("[tool] waiting (in_progress)")
        (worktree(project, "W1") / "go").write_text("")
        out = await anyio.to_thread.run_sync(pilot.finish)
    assert "1 launched, 1 done" in out, out


@pytest.mark.browser
async def test_a_person_quarantines_a_flaky_test_from_the_autopilot_tab(state_root: Path):
    """The landing gate on the Autopilot tab: a check's figures and the quarantine (a flake
    the autopilot found, with its evidence); a person adds a test with why, and removes it,
    as `wvo-mcp quarantine` does."""
    from playwright.async_api import expect

    orchestrator = await Orchestrator.open(Settings(state_root=state_root))
    try:
        await orchestrator.check_flaked(target="main", command="pytest -q", tree="c" * 40,
                                        tests=["tests.t::test_flaky"], reruns=1,
                                        output="FAILED", seconds=0.4)  # fmt: skip
    finally:
        await orchestrator.close()
    person = token(state_root, "person", "ann")
    with http_server(state_root, "--dashboard") as server:
        async with browser_page(server) as page:
            await sign_in(page, person)
            await page.locator("#tabs .tab[data-view=autopilot]").click()
            gate = page.locator("#view-autopilot section.gate")
            await expect(gate.locator("tr.check .rate")).to_have_text("100.0%")
            await expect(gate.locator("tr.flake")).to_contain_text("tests.t::test_flaky")
            found = gate.locator('tr.quarantined[data-test="tests.t::test_flaky"]')
            await expect(found).to_contain_text("failed on tree cccccccccccc of main")
            await expect(found).to_contain_text("autopilot (suggested)")
            page.on("dialog", lambda dialog: dialog.accept("races on CI, issue 7"))
            await gate.locator(".quarantine-test").fill("tests.t::test_other")
            await gate.locator("button[data-quarantine=add]").click()
            added = gate.locator('tr.quarantined[data-test="tests.t::test_other"]')
            await expect(added).to_contain_text("races on CI, issue 7", timeout=TIMEOUT_MS)
            await expect(added).to_contain_text("person:ann")
            await added.locator("button[data-quarantine=remove]").click()
            await expect(added).to_have_count(0, timeout=TIMEOUT_MS)
        refused = await _post_quarantine(server, token(state_root, "agent", "a1"))
        assert refused.status_code == 403, refused.text
    with open_db(state_root) as db:
        tests = [r[0] for r in db.execute("SELECT test FROM quarantine")]
    assert tests == ["tests.t::test_flaky"]  # what an agent sent changed nothing


async def _post_quarantine(server: Any, secret: str) -> Any:
    async with server.http(secret) as http:
        return await http.post(
            f"{server.base}/dashboard/api/quarantine/remove",
            json={"test": "tests.t::test_flaky"}, headers={"X-WVO-Action": "1"},
        )  # fmt: skip
