"""Provider routing through the MCP client: tiers decide what agents get, budgets and
breakers fail work over, failures escalate, and usage from several processes adds up."""

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import HANG_SECONDS, Agent, agents, connect, open_db, table_rows, wvo

pytestmark = pytest.mark.anyio

PROVIDERS = """\
version: 1
estimate:
  tokens_per_complexity: 1000
  output_share: 0.2
providers:
  - name: alpha
    preference: 1
    hourly_tokens: 50000
    daily_tokens: 100000
    max_concurrent: 10
    breaker:
      failure_threshold: 2
      cooldown_seconds: 0.5
      cooldown_cap_seconds: 2
    tiers:
      - {name: small, model: alpha-s, complexity: [1, 3],
         input_cost_per_1k: 0.001, output_cost_per_1k: 0.002}
      - {name: mid, model: alpha-m, complexity: [4, 7],
         input_cost_per_1k: 0.002, output_cost_per_1k: 0.004}
      - {name: big, model: alpha-l, complexity: [8, 10],
         input_cost_per_1k: 0.004, output_cost_per_1k: 0.008}
  - name: beta
    preference: 2
    hourly_tokens: 1000000
    tiers:
      - {name: any, model: beta-1, complexity: [1, 7],
         input_cost_per_1k: 0.003, output_cost_per_1k: 0.006}
      - {name: top, model: beta-2, complexity: [8, 10],
         input_cost_per_1k: 0.01, output_cost_per_1k: 0.02}
"""
ENV = {
    "WVO_WIP_LIMIT": 20,
    "WVO_WIP_PER_AGENT": 1,
    "WVO_RETRY_BASE_SECONDS": 0,
    "WVO_OTEL_ENABLED": 0,
    "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0,
}
SMALL = {"provider": "alpha", "model": "alpha-s"}
MID = {"provider": "alpha", "model": "alpha-m"}
BIG = {"provider": "alpha", "model": "alpha-l"}
BETA = {"provider": "beta", "model": "beta-1"}
DEADLINE_SECONDS = HANG_SECONDS  # a guard against a hang, never a time to beat


@pytest.fixture
def routed_state(state_root: Path) -> Path:
    state_root.mkdir(parents=True)
    (state_root / "providers.yaml").write_text(PROVIDERS)
    return state_root


def backlog(*complexities: int) -> list[dict[str, Any]]:
    return [
        {"id": f"C{c}-{i}", "title": f"complexity {c}", "complexity": c}
        for i, c in enumerate(complexities)
    ]


async def drain(agent: Agent, name: str, identity: dict[str, str]) -> list[dict[str, Any]]:
    """Claim and finish until nothing is routed to this agent's tier."""
    taken = []
    while True:
        claim = await agent.claim(agent_id=name, **identity)
        if not claim["claimed"]:
            assert claim["reason"] in ("no_task_for_tier", "no_ready_task"), claim
            return taken
        taken.append(claim)
        await agent.call(
            "plan_update",
            agent_id=name,
            task_id=claim["task"]["id"],
            status="done",
            lease_token=claim["lease_token"],
        )


async def test_agents_of_different_tiers_get_only_what_their_tier_may_take(
    routed_state: Path,
) -> None:
    tasks = backlog(*range(1, 11), *range(1, 11))
    async with connect(routed_state, **ENV) as small, connect(routed_state, **ENV) as big:
        await small.call("task_create", tasks=tasks)
        planned = await small.call("plan_next", agent_id="s", limit=100, **SMALL)
        assert planned["routed_for"] == "alpha/small (alpha-s)"
        assert {t["id"].split("-")[0] for t in planned["tasks"]} == {"C1", "C2", "C3"}

        results: dict[str, list[dict[str, Any]]] = {}

        async def work(agent: Agent, name: str, identity: dict[str, str]) -> None:
            results[name] = await drain(agent, name, identity)

        async with anyio.create_task_group() as group:
            group.start_soon(work, small, "s", SMALL)
            group.start_soon(work, big, "l", BIG)

        def complexities(name: str) -> list[int]:
            return sorted(c["task"]["complexity"] for c in results[name])

        assert complexities("s") == [1, 1, 2, 2, 3, 3]
        assert complexities("l") == [8, 8, 9, 9, 10, 10]
        assert {(c["route"]["provider"], c["route"]["tier"]) for c in results["s"]} == {
            ("alpha", "small")
        }
        assert {c["route"]["model"] for c in results["l"]} == {"alpha-l"}
        # Mid-complexity work waits for a mid-tier agent.
        left = await small.call("task_list", status="pending", limit=100)
        assert sorted(int(t["complexity"]) for t in table_rows(left)) == [4, 4, 5, 5, 6, 6, 7, 7]
        refused = await small.call("claim_task", agent_id="s", task_id="C5-4", **SMALL)
        assert refused["reason"] == "task_not_ready"
        assert "alpha/mid" in refused["message"]


async def test_a_provider_over_budget_fails_over_to_the_next(routed_state: Path) -> None:
    async with agents(routed_state, "a", "b", **ENV) as team:
        agent = team["a"]
        await agent.call("task_create", tasks=backlog(5))
        first = await agent.call("route_task", task_id="C5-0")
        assert (first["provider"], first["tier"], first["estimated_tokens"]) == (
            "alpha",
            "mid",
            5000,
        )

        used = await agent.call(
            "record_usage", input_tokens=40_000, output_tokens=6_000, outcome="success", **MID
        )
        assert used["hour"]["used_tokens"] == 46_000
        assert used["hour"]["share"] == pytest.approx(0.92)

        routed = await agent.call("route_task", task_id="C5-0")
        assert (routed["provider"], routed["tier"], routed["model"]) == ("beta", "any", "beta-1")
        assert routed["alternatives"][0]["provider"] == "alpha"
        assert routed["alternatives"][0]["why"] == "over_hourly_budget"
        assert "46000 tokens used" in routed["alternatives"][0]["detail"]

        none_for_alpha = await agent.call("claim_task", **MID)
        assert none_for_alpha["reason"] == "no_task_for_tier"
        assert "beta/any" in none_for_alpha["message"]
        # Agent b is another server process: a's server cannot claim as b.
        switched = await agent.error("claim_task", agent_id="b", **BETA)
        assert "cannot switch to 'b'" in switched
        taken = await team["b"].call("claim_task", **BETA)
        assert taken["claimed"] and taken["route"]["provider"] == "beta"
        assert (await agent.call("task_get", task_id="C5-0"))["assigned_to"] == "b"
        status = await agent.call("provider_status")
        beta = next(p for p in status["providers"] if p["name"] == "beta")
        assert (beta["in_flight"], beta["hour"]["reserved_tokens"]) == (1, 5000)


async def test_a_breaker_opened_by_rate_limits_half_opens_after_its_cool_down(
    routed_state: Path,
) -> None:
    async with connect(routed_state, **ENV) as agent:
        await agent.call("task_create", tasks=backlog(2, 2))
        limited = await agent.call(
            "record_usage", input_tokens=10, output_tokens=0, outcome="rate_limited", **SMALL
        )
        assert limited["breaker"]["state"] == "open"
        assert limited["breaker"]["reopens_at"] is not None
        routed = await agent.call("route_task", task_id="C2-0")
        assert routed["provider"] == "beta"
        assert routed["alternatives"][0]["why"] == "breaker_open"

        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:  # the cool-down is 0.5 s
            state = (await agent.call("provider_status"))["providers"][0]["breaker"]["state"]
            if state == "half_open":
                break
            assert time.monotonic() < deadline, "the breaker never half-opened"
            await anyio.sleep(0.05)

        # Half-open lets one task through: the first claim is the trial, the next fails over.
        trial = await agent.call("claim_task", agent_id="s1", **SMALL)
        assert trial["claimed"] and trial["route"]["provider"] == "alpha"
        held_back = await agent.call("route_task", task_id="C2-1")
        assert held_back["provider"] == "beta"
        assert held_back["alternatives"][0]["why"] == "probe_in_flight"

        # Usage is charged to a task by its holder only, with the task's lease token.
        anonymous = await agent.error(
            "record_usage",
            task_id=trial["task"]["id"],
            input_tokens=800,
            output_tokens=200,
            outcome="success",
            **SMALL,
        )
        assert "needs that task's lease_token" in anonymous
        closed = await agent.call(
            "record_usage",
            task_id=trial["task"]["id"],
            lease_token=trial["lease_token"],
            input_tokens=800,
            output_tokens=200,
            outcome="success",
            **SMALL,
        )
        assert closed["breaker"] == {"state": "closed", "failures": 0, "reopens_at": None}
        assert (await agent.call("route_task", task_id="C2-1"))["provider"] == "alpha"


async def test_a_failed_attempt_is_routed_one_tier_up(routed_state: Path) -> None:
    async with agents(routed_state, "s", "m", **ENV) as team:
        agent = team["s"]
        await agent.call("task_create", tasks=backlog(2))
        claim = await agent.call("claim_task", **SMALL)
        await agent.call(
            "plan_update",
            task_id="C2-0",
            status="failed",
            lease_token=claim["lease_token"],
            reason="could not do it",
        )
        routed = await agent.call("route_task", task_id="C2-0")
        assert (routed["provider"], routed["tier"]) == ("alpha", "mid")
        assert "escalated after a failure on alpha/small" in routed["reason"]
        assert (await agent.call("claim_task", **SMALL))["claimed"] is False
        again = await team["m"].call("claim_task", **MID)
        assert again["claimed"] and again["attempt"] == 2
        # A context limit on the mid tier sends the third attempt up again: reported by the
        # holder with its lease token (the first attempt's token no longer counts).
        stale = await agent.error(
            "record_usage",
            task_id="C2-0",
            lease_token=claim["lease_token"],
            input_tokens=100,
            output_tokens=0,
            outcome="context_limit",
            **MID,
        )
        assert "lease lost" in stale
        assert (await agent.call("route_task", task_id="C2-0"))["tier"] == "mid"
        await team["m"].call(
            "record_usage",
            task_id="C2-0",
            lease_token=again["lease_token"],
            input_tokens=100,
            output_tokens=0,
            outcome="context_limit",
            **MID,
        )
        assert (await agent.call("route_task", task_id="C2-0"))["tier"] == "big"


@pytest.mark.process
async def test_usage_from_several_processes_adds_up(routed_state: Path) -> None:
    servers, reports = 3, 10

    async def report(i: int) -> None:
        async with connect(routed_state, process=True, **ENV) as agent:
            for _ in range(reports):
                await agent.call(
                    "record_usage", input_tokens=100, output_tokens=50, outcome="success", **BETA
                )

    async with anyio.create_task_group() as group:
        for i in range(servers):
            group.start_soon(report, i)
    async with connect(routed_state, **ENV) as agent:
        beta = (await agent.call("provider_status"))["providers"][1]
    total = servers * reports * 150
    # Every report lands in one hour window and one day window; the run may straddle a
    # boundary, so the windows are summed (keys: YYYY-MM-DDTHH and YYYY-MM-DD).
    with open_db(routed_state) as db:
        windows = dict(
            db.execute(
                "select length(period), sum(input_tokens + output_tokens) from provider_usage "
                "where provider = 'beta' group by length(period)"
            ).fetchall()
        )
        current = dict(
            db.execute(
                "select period, sum(input_tokens + output_tokens) from provider_usage "
                "where provider = 'beta' group by period"
            ).fetchall()
        )
        calls = db.execute("select sum(calls) from provider_usage where provider = 'beta'")
        assert calls.fetchone()[0] == 2 * servers * reports  # one hour row, one day row each
        spend = db.execute(
            "select sum(cost) from provider_usage where provider = 'beta' and length(period) = 10"
        ).fetchone()[0]
    assert windows == {13: total, 10: total}
    assert spend == pytest.approx(servers * reports * (0.1 * 0.003 + 0.05 * 0.006))
    # provider_status reads the current windows (0 if one began after the last report).
    latest_hour = current[max(k for k in current if len(k) == 13)]
    latest_day = current[max(k for k in current if len(k) == 10)]
    assert beta["hour"]["used_tokens"] in (latest_hour, 0)
    assert beta["day"]["used_tokens"] in (latest_day, 0)
    assert sum(t["day_tokens"] for t in beta["tiers"]) == beta["day"]["used_tokens"]


async def test_a_registered_or_configured_agent_is_routed_without_saying_so_again(
    routed_state: Path,
) -> None:
    async with connect(routed_state, **ENV) as agent:
        await agent.call("task_create", tasks=backlog(2, 9))
        me = await agent.call("agent_register", agent_id="r", **BIG)
        assert (me["tier"], me["complexity"]) == ("big", [8, 10])
        claim = await agent.call("claim_task", agent_id="r")
        assert claim["task"]["id"] == "C9-1" and claim["route"]["tier"] == "big"
        refused = await agent.error("agent_register", agent_id="r", provider="gamma", model="x")
        assert "known: alpha, beta" in refused
    env = {**ENV, "WVO_AGENT_PROVIDER": "alpha", "WVO_AGENT_MODEL": "alpha-s"}
    async with connect(routed_state, **env) as configured:
        claim = await configured.call("claim_task", agent_id="c")
        assert claim["task"]["id"] == "C2-0" and claim["route"]["model"] == "alpha-s"


async def test_an_invalid_providers_file_is_refused_at_start_with_line_and_field(
    routed_state: Path,
) -> None:
    broken = PROVIDERS.replace("complexity: [4, 7]", "complexity: [7, 4]")
    (routed_state / "providers.yaml").write_text(broken)
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if "[7, 4]" in text)
    shown = wvo(routed_state, "providers")
    assert shown.returncode == 2
    assert (
        f"providers.yaml line {line}: providers[0].tiers[1].complexity: range [7, 4] is "
        "backwards" in shown.stderr
    )
    served = await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(routed_state), "serve"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    )
    assert served.returncode == 2
    assert f"line {line}" in served.stderr
    assert served.stdout == ""


async def test_the_health_monitor_reports_budgets_and_breakers(routed_state: Path) -> None:
    env = {**ENV, "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 100, "WVO_BACKUP_INTERVAL_MINUTES": 0}
    async with connect(routed_state, **env) as agent:
        await agent.call("task_create", tasks=backlog(2))
        # alpha: 41k of 50k tokens this hour (82 %); beta's breaker opened by a rate limit.
        await agent.call(
            "record_usage", input_tokens=40_000, output_tokens=1_000, outcome="success", **MID
        )
        await agent.call(
            "record_usage", input_tokens=1, output_tokens=0, outcome="rate_limited", **BETA
        )
        wanted = {("provider_near_budget", "alpha"), ("provider_breaker_open", "beta")}
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            report = await agent.call("health_report", limit=50)
            found = {(a["kind"], a["subject"]) for a in report["anomalies"]}
            if wanted <= found:
                break
            assert time.monotonic() < deadline, f"not reported: {wanted - found}"
            await anyio.sleep(0.05)
        near = next(a for a in report["anomalies"] if a["kind"] == "provider_near_budget")
        assert near["severity"] == "warning" and "82%" in near["message"]
        full = await agent.call("health_report", full=True)
        alpha = next(p for p in full["observation"]["providers"] if p["name"] == "alpha")
        assert alpha["hour_share"] == pytest.approx(0.82)


async def test_a_tier_finds_its_work_however_deep_it_ranks(routed_state: Path) -> None:
    easy = [
        {"id": f"E{i:04d}", "title": "easy and valuable", "complexity": 1, "business_value": 20}
        for i in range(1500)
    ]
    hard = [
        {"id": f"H{i}", "title": "hard and late", "complexity": 9, "business_value": 1}
        for i in range(3)
    ]
    async with connect(routed_state, **ENV) as agent:
        await agent.call("task_create", tasks=[*easy, *hard])
        planned = await agent.call("plan_next", agent_id="l", limit=10, **BIG)
        assert [t["id"] for t in planned["tasks"]] == ["H0", "H1", "H2"]
        claim = await agent.call("claim_task", agent_id="l", **BIG)
        assert claim["claimed"] and claim["task"]["id"] == "H0"
