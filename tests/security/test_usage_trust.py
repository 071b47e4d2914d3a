"""Usage a caller can affect is its own, and no more (docs/security.md, "Usage-trust rule").

An autopilot worker (the fake, wvo_mcp/autopilot/fake.py, in its real sandbox under a real
`wvo-mcp autopilot`) reports usage with its run token for another provider, another tier,
no task, and more tokens than any model's context holds; and, for its own task, provider and
tier, failures that would open a breaker. An agent token over a real `serve --http` reports
for a provider its agent does not run on. Each test then reads the host's database: budgets
and breakers follow only what the autopilot saw the worker's CLI report, and only the
reports the rule accepts are kept at all; the learned route's statistics count only what
the autopilot charged, so a worker's report cannot steer routing."""

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.autopilot.conftest import autopilot, backlog, make_project
from tests.conftest import open_db
from tests.http.conftest import connect, http_server, token, wvo
from tests.security.tenancy import trail
from wvo_mcp.autopilot import fake
from wvo_mcp.rules import billing
from wvo_mcp.sandbox import bwrap
from wvo_mcp.services.usage import MAX_CALL_TOKENS, NOTED_PER_ATTEMPT

pytestmark = pytest.mark.anyio
QUIET = {"WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0, "WVO_OTEL_ENABLED": 0}
TOKENS = {"input_tokens": 1000, "output_tokens": 1000}
OWN = {"provider": "$provider", "model": "$model", **TOKENS}
NO_TASK = {"task_id": None, "lease_token": None}
# What a worker tries, (the call, what its refusal says would be accepted).
REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"provider": "beta", "model": "beta-model", **TOKENS, "outcome": "auth_failed"},
     "reports usage for provider 'alpha' only, not 'beta'"),
    ({"provider": "beta", "model": "beta-model", **TOKENS, "outcome": "rate_limited",
      **NO_TASK}, "pass task_id 'P' with its lease_token"),
    ({"provider": "$provider", "model": "alpha-big", **TOKENS, "outcome": "failure"},
     "for tier 'all' (model 'alpha-model') only, not 'big'"),
    ({**OWN, "outcome": "auth_failed", **NO_TASK}, "pass task_id 'P' with its lease_token"),
    ({**OWN, "outcome": "failure", "lease_token": None},
     "needs task_id 'P' with its lease_token"),
    ({**OWN, "input_tokens": 3_000_000, "output_tokens": 3_000_000, "outcome": "success"},
     f"0 to {MAX_CALL_TOKENS:,} tokens in and out together"),
    ({**OWN, "input_tokens": 10**9, "outcome": "success"}, f"less than or equal to "
     f"{MAX_CALL_TOKENS}"),
]  # fmt: skip
# Its own task, provider and tier: noted on its task, charging nothing.
NOTED = [{**OWN, "outcome": "auth_failed"}] * 3 + [{**OWN, "outcome": "success"}]


# alpha's second tier, inserted after its first one's model and complexity.
BIG = """\
        input_cost_per_1k: 0.001
        output_cost_per_1k: 0.002
      - name: big
        model: alpha-big
        complexity: [6, 10]
"""


def two_tiers(providers: Path) -> None:
    """alpha gets a second tier, for work above complexity 5 (the worker's task is not)."""
    text = providers.read_text()
    one = "        model: alpha-model\n        complexity: [1, 10]\n"
    assert one in text
    providers.write_text(text.replace(one, one.replace("[1, 10]", "[1, 5]") + BIG))


def host(state: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What routing decides on, as the database holds it."""
    with open_db(state) as db:
        return {
            table: [tuple(r) for r in db.execute(f"SELECT {columns} FROM {table} ORDER BY 1, 2")]
            for table, columns in (
                ("provider_usage", "provider, tier, period, input_tokens, output_tokens, "
                 "calls, failures"),
                ("provider_breakers", "provider, state, failures, opens"),
                ("agent_usage", "agent_id, day, input_tokens, output_tokens"),
                ("route_outcomes", "provider, tier, task_class, outcomes, attempts, "
                 "first_try_landed, failed, tokens"),
            )
        }  # fmt: skip


@pytest.mark.skipif(not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}")
def test_a_worker_reports_usage_for_nothing_but_its_own_run(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    two_tiers(project["providers"])
    spec = {"usage": [call for call, _ in REFUSED] + NOTED}
    anyio.run(
        backlog,
        project,
        [{"id": "P", "title": "reports usage", "complexity": 2,
          "metadata": {"fake": "probe", "fake_probe": spec}}],
    )  # fmt: skip
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]

    with open_db(project["state"]) as db:
        summaries = [r[0] for r in db.execute(
            "SELECT summary FROM checkpoints WHERE task_id = 'P' ORDER BY seq"
        )]  # fmt: skip
        routed = db.execute("SELECT routed_provider, routed_tier, status FROM tasks").fetchone()
    assert tuple(routed) == ("alpha", "all", "done")
    found = [o for s in summaries if s.startswith("probe ") for o in json.loads(s[6:])]
    tried = [o for o in found if o["probe"] == "usage"]
    assert len(tried) == len(REFUSED) + len(NOTED), found
    for outcome, (_, why) in zip(tried, REFUSED, strict=False):
        assert not outcome["ok"] and why in outcome["said"], outcome
    for outcome in tried[len(REFUSED) :]:
        assert outcome["ok"] and "Not charged" in outcome["said"], outcome

    # The host: the autopilot's own record of the run (the fake CLI's result line) and
    # nothing else; no breaker moved; the accepted reports only on P's trail.
    seen_in = billing.anthropic_input(fake.USAGE)
    seen_out = fake.USAGE["output_tokens"]
    state = host(project["state"])
    assert {(p, t, i, o, c, f) for p, t, _, i, o, c, f in state["provider_usage"]} == {
        ("alpha", "all", seen_in, seen_out, 1, 0)
    }, state
    assert len(state["provider_usage"]) == 2  # this hour and this day
    assert all(s == "closed" and failures == 0 for _, s, failures, _ in
               state["provider_breakers"]), state  # fmt: skip
    assert [(a, i, o) for a, _, i, o in state["agent_usage"]] == [("alpha-1", seen_in, seen_out)]
    # The learned route's statistics: P's one attempt, landed, at what the autopilot charged;
    # no failure the worker reported, no route it named, none of its tokens.
    assert state["route_outcomes"] == [
        ("alpha", "all", "c1-3", 1, 1.0, 1.0, 0.0, float(seen_in + seen_out))
    ], state
    noted = [reason for _, kind, _, reason in trail(project, "P") if kind == "usage_reported"]
    assert noted == [
        f"1000 input and 1000 output tokens on alpha/all ({o['outcome']}), as the worker "
        "reports them"
        for o in NOTED
    ]


async def test_an_agent_token_charges_only_its_own_provider(tmp_path: Path) -> None:
    state = tmp_path / "state"
    agent_secret = token(state, "agent", "codex-1")
    operator_secret = token(state, "operator", "ops")
    call = {"input_tokens": 1000, "output_tokens": 1000}
    with http_server(state, **QUIET) as server:
        async with connect(server, agent_secret) as agent:
            unregistered = await agent.client.call_tool(
                "record_usage", {"provider": "codex", "model": "gpt-5-codex", **call,
                                 "outcome": "success"})  # fmt: skip
            said = unregistered.content[0].text  # type: ignore[union-attr]
            assert unregistered.is_error and "call agent_register(provider, model) first" in said
            await agent.call("agent_register", provider="codex", model="gpt-5-codex")
            before = host(state)
            for model, outcome in (("claude-sonnet-4-5", "auth_failed"),
                                   ("claude-opus-4-1", "rate_limited")):  # fmt: skip
                for _ in range(3):
                    answer = await agent.client.call_tool(
                        "record_usage",
                        {"provider": "claude", "model": model, **call, "outcome": outcome},
                    )
                    said = answer.content[0].text  # type: ignore[union-attr]
                    assert answer.is_error and "Nothing was recorded" in said, said
                    assert "reports usage for provider 'codex' only, not 'claude'" in said
            huge = await agent.client.call_tool(
                "record_usage", {"provider": "codex", "model": "gpt-5-codex",
                                 "input_tokens": 3_000_000, "output_tokens": 3_000_000,
                                 "outcome": "failure"})  # fmt: skip
            assert huge.is_error and "0 to 4,000,000 tokens" in huge.content[0].text  # type: ignore[union-attr]
            assert host(state) == before
            # Its own provider, any of its tiers: charged.
            await agent.call("record_usage", provider="codex", model="gpt-5-codex-mini", **call,
                             outcome="success")  # fmt: skip
        # An operator reports for the fleet: any provider.
        async with connect(server, operator_secret) as operator:
            await operator.call("record_usage", provider="claude", model="claude-sonnet-4-5",
                                **call, outcome="success")  # fmt: skip
    after = host(state)
    assert {(p, t) for p, t, *_ in after["provider_usage"]} == {
        ("codex", "low"),
        ("claude", "sonnet"),
    }
    assert all(s == "closed" for _, s, _, _ in after["provider_breakers"]), after


@pytest.mark.skipif(not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}")
def test_a_flood_of_a_workers_own_reports_keeps_a_bounded_trail(tmp_path: Path) -> None:
    """Its own task, provider and tier, reported again and again: an attempt keeps
    NOTED_PER_ATTEMPT of them, and the rest are refused and leave nothing."""
    project = make_project(tmp_path)
    flood = [{**OWN, "outcome": "success"}] * (NOTED_PER_ATTEMPT + 20)
    anyio.run(
        backlog,
        project,
        [{"id": "P", "title": "floods", "metadata": {"fake": "probe",
                                                     "fake_probe": {"usage": flood}}}],
    )  # fmt: skip
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    with open_db(project["state"]) as db:
        summaries = [r[0] for r in db.execute("SELECT summary FROM checkpoints ORDER BY seq")]
    found = [o for s in summaries if s.startswith("probe ") for o in json.loads(s[6:])]
    tried = [o for o in found if o["probe"] == "usage"]
    assert [o["ok"] for o in tried] == [True] * NOTED_PER_ATTEMPT + [False] * 20
    assert f"already has {NOTED_PER_ATTEMPT} usage reports noted" in tried[-1]["said"]
    noted = [reason for _, kind, _, reason in trail(project, "P") if kind == "usage_reported"]
    assert len(noted) == NOTED_PER_ATTEMPT


def registrations(state: Path) -> list[tuple[Any, ...]]:
    """Each agent's registered provider and model (a claim also marks when it was seen)."""
    query = "SELECT id, provider, model FROM agents WHERE provider IS NOT NULL ORDER BY 1"
    with open_db(state) as db:
        return [tuple(r) for r in db.execute(query)]


async def test_the_provider_belongs_to_the_agent_token(tmp_path: Path) -> None:
    """A token made for codex, and one made with none (bound by its agent's first
    registration), try every way to act or charge as claude: each is refused and writes
    nothing; a refused claim registers nothing either."""
    state = tmp_path / "state"
    made_for = token(state, "agent", "codex-1", "--provider", "codex")
    unbound = token(state, "agent", "codex-2")
    call = {"input_tokens": 1000, "output_tokens": 1000}
    claude = {"provider": "claude", "model": "claude-sonnet-4-5"}
    with http_server(state, **QUIET) as server:
        async with connect(server, made_for) as first, connect(server, unbound) as second:
            # A refused claim changes no registration: nothing is ready yet.
            empty = await second.call("claim_task", provider="codex", model="gpt-5-codex")
            assert not empty["claimed"] and registrations(state) == []
            await first.call("task_create", tasks=[{"id": "T", "title": "t", "complexity": 2}])
            await second.call("agent_register", provider="codex", model="gpt-5-codex")
            before = registrations(state), host(state)
            for agent, why in ((first, "its token was made for it"),
                               (second, "it registered it first")):  # fmt: skip
                for tool, arguments in (("agent_register", claude),
                                        ("claim_task", {**claude, "task_id": "T"}),
                                        ("claim_task", claude)):  # fmt: skip
                    answer = await agent.client.call_tool(tool, arguments)
                    said = answer.content[0].text  # type: ignore[union-attr]
                    assert answer.is_error and why in said and "Nothing was changed" in said
                    assert "--provider claude" in said, said
                charged = await agent.client.call_tool(
                    "record_usage", {**claude, **call, "outcome": "auth_failed"}
                )
                assert charged.is_error and "Nothing was recorded" in charged.content[0].text  # type: ignore[union-attr]
            assert (registrations(state), host(state)) == before
            # Its own provider, another model: fine, and its claim registers it.
            mini = {"provider": "codex", "model": "gpt-5-codex-mini"}
            assert (await first.call("claim_task", **mini, task_id="T"))["claimed"]
    assert registrations(state) == [("codex-1", "codex", "gpt-5-codex-mini"),
                                    ("codex-2", "codex", "gpt-5-codex")]  # fmt: skip


def test_a_token_is_made_for_a_known_provider_and_only_an_agents(tmp_path: Path) -> None:
    state = tmp_path / "state"
    for extra, why in (
        (("agent", "a-1", "--provider", "nobody"), "provider 'nobody' is not in the providers"),
        (("person", "ada", "--provider", "codex"), "a person token has none"),
    ):
        made = wvo(state, "tokens", "add", "--role", *extra[:1], "--name", *extra[1:])
        assert made.returncode == 2 and why in made.stderr, made.stderr
    token(state, "agent", "a-2", "--provider", "codex")
    listed = wvo(state, "tokens", "list", "--json")
    assert [(t["name"], t["provider"]) for t in json.loads(listed.stdout)] == [("a-2", "codex")]
