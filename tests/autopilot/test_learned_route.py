"""`wvo-mcp autopilot` learns its route (issue 37): the fake workers of two providers land at
different rates, and the outcomes the run records move its later tasks to the one that
lands, by the learned route and not by a breaker."""

import re
from pathlib import Path

import pytest

from tests.autopilot.conftest import autopilot, backlog, env
from tests.conftest import agents, open_db

TASKS = 18
# min_evidence is 5 decayed attempts: with a half-life of 10 outcomes, 6 outcomes hold 5.1.
PROVEN = 6


def providers(wrapper: Path) -> str:
    """alpha first by preference and cheaper per attempt; one tier each, so a failure on
    alpha escalates to beta. alpha has one slot and no max_concurrent: fresh tasks wait for
    it rather than spill over to beta; its breaker never opens: only outcomes move the route."""
    spec = ""
    for name, preference, slots, price in (("alpha", 1, 1, 0.001), ("beta", 2, 2, 0.003)):
        breaker = "\n    breaker:\n      failure_threshold: 1000" if name == "alpha" else ""
        spec += f"""  - name: {name}
    preference: {preference}{breaker}
    tiers:
      - name: all
        model: {name}-model
        complexity: [1, 10]
        input_cost_per_1k: {price}
        output_cost_per_1k: {2 * price}
    worker:
      kind: claude
      executable: {wrapper}
      max_workers: {slots}
      hang_seconds: 15
"""
    # The estimate is what the fakes use (1500 input, 100 output tokens), so a route's cost
    # per attempt is the same observed or estimated (alpha's crashes report nothing): alpha's
    # is a third of beta's.
    return (
        "version: 1\nestimate:\n  tokens_per_complexity: 1600\n  output_share: 0.0625\n"
        f"providers:\n{spec}learning:\n  explore_share: 0\n"
    )


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_provider_that_lands_nothing_loses_the_route_to_one_that_lands(
    project: dict[str, Path],
) -> None:
    wrapper = project["providers"].parent / "bin" / "fake-claude"
    project["providers"].write_text(providers(wrapper))
    # alpha's worker crashes on every task (a failed attempt); beta's lands each.
    crashes = {"fake": "crash", "fake_provider": "alpha"}
    ids = [f"L{i:02d}" for i in range(TASKS)]
    await backlog(
        project, [{"id": i, "title": i, "complexity": 1, "metadata": crashes} for i in ids]
    )
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert f"{TASKS} done" in ran.stdout, ran.stdout
    with open_db(project["state"]) as db:
        claims = db.execute(
            "SELECT task_id, actor FROM task_events WHERE kind = 'claimed' ORDER BY id"
        ).fetchall()
        status = dict(db.execute("SELECT id, status FROM tasks").fetchall())
        routes = {
            r["provider"]: dict(r)
            for r in db.execute("SELECT * FROM route_outcomes WHERE task_class = 'c1-3'")
        }
        breaker = db.execute(
            "SELECT state FROM provider_breakers WHERE provider = 'alpha'"
        ).fetchone()
    assert status == dict.fromkeys(ids, "done"), ran.stdout
    first: dict[str, str] = {}
    for task_id, actor in claims:
        first.setdefault(task_id, actor.split("-")[0])
    order = list(first.values())  # by each task's first claim
    # Fresh tasks went to alpha (the static rule's, a third of beta's price) until its
    # failures ruled it out, then to beta for good. Doubt tries beta from alpha's first
    # failures and gives alpha, so much cheaper, a few more tries than min_evidence alone
    # (tasks are claimed while others still run, so the count varies a little).
    tried = order.count("alpha")
    last = len(order) - 1 - order[::-1].index("alpha")
    assert set(order[last + 1 :]) == {"beta"} and tried <= PROVEN + 2, order
    assert TASKS - (last + 1) >= 3, f"the route moved only after {last + 1} of {TASKS}: {order}"
    # Each crash's retry escalated to beta. Every alpha attempt was recorded failed on its
    # route; each task landed first try on beta (after a crash on alpha, or straight away).
    alpha_claims = sum(actor.startswith("alpha-") for _, actor in claims)
    assert alpha_claims == tried and len(claims) == tried + TASKS, claims
    assert routes["alpha"]["outcomes"] == alpha_claims and routes["alpha"]["landed"] == 0
    assert routes["beta"]["outcomes"] == TASKS
    assert routes["beta"]["first_try_landed"] == pytest.approx(routes["beta"]["attempts"])
    # A landed attempt costs what its worker's run was charged after it submitted, decayed
    # like the attempts: 1150 tokens each (1000 new input, 500 cached at a tenth, 100 output).
    assert routes["beta"]["tokens"] == pytest.approx(1150 * routes["beta"]["attempts"])
    assert breaker is None or breaker[0] == "closed"  # not the breaker's doing
    # A new task of the class routes to beta, and route_task says why, with the figures.
    settings = {k: v for k, v in env(project).items() if k.startswith("WVO_")}
    async with agents(project["state"], "planner", **settings) as team:
        planner = team["planner"]
        await planner.call("task_create", tasks=[{"id": "N", "title": "n", "complexity": 1}])
        found = await planner.call("route_task", task_id="N")
    assert (found["provider"], found["tier"], found["basis"]) == ("beta", "all", "learned")
    told = re.fullmatch(
        r"lowest est\. cost per landed change: beta/all est\. \$([\d.]+) per landed change, "
        rf"100% first try, over {TASKS} outcomes; alpha/all est\. \$([\d.]+) per landed "
        rf"change, 0% first try, over {alpha_claims} outcomes",
        found["reason"],
    )
    assert told is not None, found["reason"]
    assert float(told[1]) < float(told[2])
