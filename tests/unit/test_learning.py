"""The learned route over tables of histories: classes, decayed sums, cold start, the floor,
bounded exploration, adapting after a route degrades, a lone candidate, the reasons; the
learned route within routing's rules (breakers, budgets, retries, pins)."""

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules.breakers import Breaker
from wvo_mcp.rules.learning import (
    Candidate,
    OutcomeKind,
    Pin,
    Policy,
    RouteStats,
    candidate,
    choose,
    exploring,
    observed_estimate,
    offered,
    pin_for,
    pinned,
    recorded,
    route,
    task_class,
)
from wvo_mcp.rules.routing import Escalation, Estimate, Provider, Tier, Usage

CHEAP = Candidate("codex", "low", "low-model", 0.10)
DEAR = Candidate("claude", "sonnet", "sonnet-model", 0.30)
NEW = Candidate("codex", "high", "high-model", 0.05)
QUIET = Policy(explore_share=0.0, optimism=0.0)  # no exploration: the greedy choice
KEEP = Policy().keep


def history(first_try: float, n: int, cost: float, stats: RouteStats | None = None) -> RouteStats:
    """`n` outcomes spread evenly: a share `first_try` landed first time, the rest returned."""
    stats = stats or RouteStats()
    for i in range(n):
        landed = int((i + 1) * first_try) > int(i * first_try)
        kind: OutcomeKind = "landed_first_try" if landed else "returned"
        stats = recorded(stats, kind, 1000, cost, KEEP)
    return stats


def key(c: Candidate) -> tuple[str, str]:
    return c.provider, c.tier


def pick(stats: dict[Candidate, RouteStats], policy: Policy = QUIET) -> str:
    chosen = choose(
        [CHEAP, DEAR],
        {key(c): s for c, s in stats.items()},
        policy,
        draw=None,  # an attempt that may not explore
        static_choice=CHEAP,
    )
    return f"{chosen.route.tier}:{chosen.basis}"


@pytest.mark.parametrize(
    ("complexity", "expected"),
    [(1, "c1-3"), (3, "c1-3"), (4, "c4-7"), (7, "c4-7"), (8, "c8-10"), (10, "c8-10")],
)
def test_task_class_is_the_complexity_band(complexity: int, expected: str) -> None:
    assert task_class(complexity) == expected


@pytest.mark.parametrize("complexity", [0, 11, -3])
def test_a_complexity_outside_1_to_10_has_no_class(complexity: int) -> None:
    with pytest.raises(ValidationFailed, match="give 1 to 10"):
        task_class(complexity)


@pytest.mark.parametrize(
    ("kind", "bumped"),
    [
        ("landed_first_try", {"attempts", "landed", "first_try_landed"}),
        ("landed", {"attempts", "landed"}),
        ("returned", {"attempts", "returned"}),
        ("failed", {"attempts", "failed"}),
        ("held", {"held"}),
    ],
)
def test_each_outcome_bumps_its_sums(kind: OutcomeKind, bumped: set[str]) -> None:
    after = recorded(RouteStats(), kind, 1500, 0.25, 1.0)
    counts = ("attempts", "first_try_landed", "landed", "returned", "failed", "held")
    assert {name for name in counts if getattr(after, name) == 1.0} == bumped
    assert {name for name in counts if getattr(after, name) == 0.0} == set(counts) - bumped
    assert (after.outcomes, after.tokens, after.cost) == (1, 1500.0, 0.25)


def test_each_outcome_halves_the_past_at_keep_one_half() -> None:
    stats = recorded(RouteStats(), "landed_first_try", 1000, 1.0, 0.5)
    stats = recorded(stats, "failed", 3000, 2.0, 0.5)
    assert stats.outcomes == 2  # a plain count
    assert (stats.attempts, stats.landed, stats.failed) == (1.5, 0.5, 1.0)
    assert (stats.tokens, stats.cost) == (3500.0, 2.5)


@pytest.mark.parametrize(
    ("kind", "tokens", "cost", "keep", "match"),
    [
        ("lost", 1, 0.1, 0.9, "not one of"),
        ("landed", -1, 0.1, 0.9, "tokens -1: give a finite number >= 0"),
        ("landed", 1, float("nan"), 0.9, "cost nan: give a finite number >= 0"),
        ("landed", 1, -0.5, 0.9, "cost -0.5: give a finite number >= 0"),
        ("landed", 1, 0.1, 0.0, "keep"),
        ("landed", 1, 0.1, 1.5, "keep"),
    ],
)
def test_recorded_refuses_what_it_cannot_count(
    kind: OutcomeKind, tokens: int, cost: float, keep: float, match: str
) -> None:
    with pytest.raises(ValidationFailed, match=match):
        recorded(RouteStats(), kind, tokens, cost, keep)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"floor": 1.2}, "floor 1.2 must be from 0 to 1"),
        ({"explore_share": -0.1}, "explore_share -0.1 must be from 0 to 1"),
        ({"half_life_outcomes": 0.5}, "half_life_outcomes 0.5 must be 1 to 1000"),
        ({"min_evidence": 0.0}, "min_evidence 0.0 must be above 0"),
        # With a half-life of 10 a route holds at most 14.9 decayed attempts.
        ({"min_evidence": 15}, "below 14.9"),
    ],
)
def test_policy_refuses_out_of_range_values(fields: dict[str, float], match: str) -> None:
    with pytest.raises(ValidationFailed, match=match):
        Policy(**fields)  # type: ignore[arg-type]


def test_offered_tiers_are_the_covering_one_and_those_above() -> None:
    tiers = (Tier("low", "l", 1, 3, 0.1, 0.4), Tier("mid", "m", 4, 7, 1, 4))
    codex = Provider("codex", (*tiers, Tier("high", "h", 8, 10, 2, 8)))
    assert [t.name for t in offered(codex, 2)] == ["low", "mid", "high"]
    assert [t.name for t in offered(codex, 5)] == ["mid", "high"]
    assert [t.name for t in offered(codex, 9)] == ["high"]
    assert offered(Provider("small", tiers), 9) == ()
    assert candidate(codex, tiers[1], Estimate(1000, 1000)).cost_per_attempt == 5.0


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        # cold start: nothing recorded, or less than min_evidence (5) everywhere
        ({}, "low:cold_start"),
        ({DEAR: history(0.9, 4, 0.3)}, "low:cold_start"),
        # $0.10 landing 20 % costs about $0.44 per landed change; $0.30 landing 90 %, $0.35
        ({CHEAP: history(0.2, 20, 0.1), DEAR: history(0.9, 20, 0.3)}, "sonnet:learned"),
        ({CHEAP: history(0.9, 20, 0.1), DEAR: history(0.9, 20, 0.3)}, "low:learned"),
        # one proven route is enough to learn from
        ({DEAR: history(0.9, 20, 0.3)}, "sonnet:learned"),
    ],
)
def test_the_lowest_cost_per_landed_change_wins(
    stats: dict[Candidate, RouteStats], expected: str
) -> None:
    assert pick(stats) == expected


def test_learning_off_keeps_the_static_choice() -> None:
    stats = {CHEAP: history(0.1, 20, 0.1), DEAR: history(1.0, 20, 0.3)}
    assert pick(stats) == "sonnet:learned"
    assert pick(stats, Policy(enabled=False)) == "low:learning_off"


@pytest.mark.parametrize(
    ("floor", "cheap_first_try", "expected"),
    [
        (0.0, 0.5, "low:learned"),  # $0.10 at 50 % beats $0.30 at 90 %
        (0.6, 0.5, "sonnet:learned"),  # ... unless under the floor
        (0.6, 0.7, "low:learned"),
        (0.95, 0.5, "low:floor"),  # both under: the static rule
    ],
)
def test_the_floor_excludes_routes_that_land_too_rarely_first_time(
    floor: float, cheap_first_try: float, expected: str
) -> None:
    stats = {CHEAP: history(cheap_first_try, 20, 0.1), DEAR: history(0.9, 20, 0.3)}
    assert pick(stats, Policy(floor=floor, explore_share=0.0)) == expected


@pytest.mark.parametrize("explore_share", [0.0, 0.05, 0.1, 0.3])
def test_exploration_never_exceeds_its_share(explore_share: float) -> None:
    # NEW is cheap and never proven, so Thompson sampling would pick it whenever it may
    # (with no optimism: doubt alone would try it on every attempt).
    stats = {key(CHEAP): history(0.6, 20, 0.1), key(DEAR): history(0.9, 20, 0.3)}
    policy = Policy(explore_share=explore_share, optimism=0.0)
    explored = 0
    for task in range(2000):
        chosen = choose(
            [CHEAP, DEAR, NEW], stats, policy, draw=exploring(policy, f"T-{task}", 1),
            static_choice=CHEAP,
        )  # fmt: skip
        explored += chosen.explored
    # Each attempt may explore with probability explore_share: 2000 of them stay within
    # four standard deviations of the share. Those that may, mostly do: the sample that
    # picks the best known route is no exploration.
    slack = 4 * (explore_share * (1 - explore_share) / 2000) ** 0.5
    assert explore_share / 2 <= explored / 2000 <= explore_share + slack


def test_an_attempt_explores_or_not_alike_in_every_call() -> None:
    policy = Policy(explore_share=0.5)
    first = [exploring(policy, f"T-{i}", 3) is None for i in range(200)]
    assert first == [exploring(policy, f"T-{i}", 3) is None for i in range(200)]
    assert 60 < first.count(True) < 140
    again = [exploring(policy, f"T-{i}", 4) is None for i in range(200)]
    assert again != first  # a new grant draws anew
    assert exploring(Policy(explore_share=0.0), "T-1", 1) is None
    assert exploring(Policy(enabled=False, explore_share=1.0), "T-1", 1) is None


def test_the_same_draws_give_the_same_choices() -> None:
    stats = {key(CHEAP): history(0.6, 20, 0.1), key(NEW): history(0.5, 3, 0.05)}

    def run(draw: Callable[[], float] | random.Random | None) -> list[str]:
        return [
            choose(
                [CHEAP, DEAR, NEW], stats, Policy(optimism=0.0), draw=draw, static_choice=CHEAP,
            ).route.tier
            for _ in range(50)
        ]  # fmt: skip

    # high is unproven and could beat low: every attempt that may explore tries it
    assert set(run(random.Random(1))) == set(run(lambda: 0.999)) == {"high"}
    assert set(run(None)) == {"low"}  # an attempt that may not explore: the best known
    # Once high is proven, a Thompson sample decides, and the same draws decide alike.
    stats[key(NEW)] = history(0.5, 12, 0.06)
    seeded = run(random.Random(1))
    assert seeded == run(random.Random(1))
    assert set(seeded) == {"low", "high"}


@pytest.mark.parametrize(
    ("cheap_cost", "half_life", "floor", "within"),
    [
        (0.10, 20, 0.0, 40),  # it switches when landing falls under a third of sonnet's
        (0.20, 20, 0.0, 20),
        (0.28, 20, 0.0, 5),
        (0.10, 10, 0.0, 25),  # 19 without optimism: doubt keeps the cheaper 3 tasks longer
        (0.05, 20, 0.6, 20),  # six times cheaper takes 56 on cost alone; the floor, 15
    ],
)
def test_a_degraded_route_loses_the_choice_within_a_bounded_number_of_tasks(
    cheap_cost: float, half_life: float, floor: float, within: int
) -> None:
    policy = Policy(explore_share=0.0, half_life_outcomes=half_life, floor=floor)
    keep = policy.keep
    stats = {key(CHEAP): RouteStats(), key(DEAR): RouteStats()}
    for _ in range(60):  # both land 90 % first time; CHEAP is cheaper and chosen
        stats[key(CHEAP)] = recorded(stats[key(CHEAP)], "landed_first_try", 1000, cheap_cost, keep)
        stats[key(DEAR)] = recorded(stats[key(DEAR)], "landed_first_try", 1000, 0.3, keep)
    for tasks in range(1, 200):  # noqa: B007 (the count is asserted below)
        chosen = choose(
            [CHEAP, DEAR], stats, policy, draw=None, static_choice=CHEAP,
        )  # fmt: skip
        if chosen.route == DEAR:
            break
        # CHEAP's provider degraded: every attempt now fails
        stats[key(CHEAP)] = recorded(stats[key(CHEAP)], "failed", 1000, cheap_cost, keep)
    assert tasks <= within


def test_doubt_tries_a_little_known_route_until_its_outcomes_rule_it_out() -> None:
    # NEW costs a sixth of DEAR a try but lands 5 %: $1 per landed change against $0.33.
    # Half way DEAR degrades to 10 % ($3), and NEW is the better route.
    policy, rates = Policy(explore_share=0.0), {"sonnet": 0.9, "high": 0.05}
    stats, tries = {key(DEAR): history(0.9, 20, 0.3)}, {"sonnet": 0, "high": 0}
    chosen_tiers = []
    for task in range(400):
        if task == 200:
            rates["sonnet"] = 0.1
        route = choose([DEAR, NEW], stats, policy, draw=None, static_choice=DEAR).route
        n, rate = tries[route.tier], rates[route.tier]
        tries[route.tier] += 1
        kind: OutcomeKind = "landed_first_try" if int((n + 1) * rate) > int(n * rate) else "failed"
        stats[key(route)] = recorded(
            stats.get(key(route), RouteStats()), kind, 1000, route.cost_per_attempt, policy.keep
        )
        chosen_tiers.append(route.tier)
    on_new = [chosen_tiers[i : i + 50].count("high") for i in range(0, 400, 50)]
    assert 0 < on_new[0] < 50  # untried, it is given the benefit of the doubt, for a while
    assert sum(on_new[1:4]) <= 2  # ruled out: exploration has shrunk to nothing
    assert on_new[5] >= 45 and on_new[7] >= 49  # DEAR's change brings it back, and it stays


@pytest.mark.parametrize(
    ("candidates", "stats", "policy", "expected"),
    [
        # NEW hopes to cost $0.06 per landed change untried, the static route $0.18 after
        # one failure: doubt tries NEW at once, without waiting for a proven route.
        ([CHEAP, DEAR, NEW], {CHEAP: history(0.0, 1, 0.1)}, Policy(), "high:exploration"),
        ([CHEAP, DEAR, NEW], {CHEAP: history(0.0, 1, 0.1)}, QUIET, "low:cold_start"),
        # Nothing recorded yet: every route hopes the same landing, so the one cheaper a try
        # than the static route is tried first (doubt from the first task)...
        ([CHEAP, DEAR, NEW], {}, Policy(), "high:exploration"),
        # ...and one dearer a try is not; nor is any without doubt.
        ([CHEAP, DEAR], {}, Policy(), "low:cold_start"),
        ([CHEAP, DEAR, NEW], {}, QUIET, "low:cold_start"),
        # DEAR could not plausibly beat the static route: the static rule stands.
        ([CHEAP, DEAR], {CHEAP: history(1.0, 2, 0.1)}, Policy(), "low:cold_start"),
    ],
)
def test_before_any_route_is_proven_doubt_tries_one_that_could_beat_the_static_route(
    candidates: list[Candidate],
    stats: dict[Candidate, RouteStats],
    policy: Policy,
    expected: str,
) -> None:
    chosen = choose(
        candidates, {key(c): s for c, s in stats.items()}, policy, draw=None,
        static_choice=CHEAP,
    )  # fmt: skip
    assert f"{chosen.route.tier}:{chosen.basis}" == expected


def test_a_class_leaves_a_dear_static_route_within_a_few_tasks_of_its_first_outcome() -> None:
    # The static rule's route costs three times as much per landed change as NEW; both land
    # 90 %. With doubt, NEW is tried from the static route's first outcome and keeps the
    # class; without, the class waits for min_evidence attempts on the static route.
    dear_static = Candidate("codex", "low", "low-model", 0.15)
    cheap = replace(NEW, cost_per_attempt=0.05)
    routes = [dear_static, cheap]

    def on_static(policy: Policy) -> int:
        stats: dict[tuple[str, str], RouteStats] = {}
        tries = {"low": 0, "high": 0}
        for _ in range(30):
            route = choose(routes, stats, policy, draw=None, static_choice=dear_static).route
            n = tries[route.tier]
            tries[route.tier] += 1
            kind: OutcomeKind = (
                "landed_first_try" if int((n + 1) * 0.9) > int(n * 0.9) else "failed"
            )
            stats[key(route)] = recorded(
                stats.get(key(route), RouteStats()), kind, 1000, route.cost_per_attempt, policy.keep
            )
        return tries["low"]

    assert on_static(Policy(explore_share=0.0)) <= 2
    assert on_static(QUIET) >= 5  # the cold start holds until a route is proven


def test_without_decay_the_same_degradation_takes_far_longer() -> None:
    stats = {key(CHEAP): RouteStats(), key(DEAR): RouteStats()}
    for _ in range(60):
        stats[key(CHEAP)] = recorded(stats[key(CHEAP)], "landed_first_try", 1000, 0.1, 1.0)
        stats[key(DEAR)] = recorded(stats[key(DEAR)], "landed_first_try", 1000, 0.3, 1.0)
    for _ in range(50):
        stats[key(CHEAP)] = recorded(stats[key(CHEAP)], "failed", 1000, 0.1, 1.0)
    chosen = choose([CHEAP, DEAR], stats, QUIET, draw=None, static_choice=CHEAP)
    assert chosen.route == CHEAP  # 60 of 110 landed at plain counts: still the cheaper


@pytest.mark.parametrize(
    "stats",
    [RouteStats(), history(0.0, 20, 5.0), history(1.0, 20, 0.01)],
)
def test_a_lone_candidate_is_chosen_whatever_its_figures(stats: RouteStats) -> None:
    # A pin, or every other route blocked, leaves one: the caller decided.
    chosen = choose(
        [DEAR], {key(DEAR): stats}, Policy(floor=0.9), draw=lambda: 0.0, static_choice=CHEAP,
    )  # fmt: skip
    assert (chosen.route, chosen.basis, chosen.explored) == (DEAR, "only_route", False)


@pytest.mark.parametrize(
    ("policy", "explores", "parts"),
    [
        (
            Policy(floor=0.6, explore_share=0.0, optimism=0.0),
            False,
            [
                "lowest est. cost per landed change: claude/sonnet est. $0.35 per landed change, "
                "93% first try, over 20 outcomes",
                "codex/low below the 60% first-try floor (52% first try)",
                "codex/high unproven (2.8 of 5 attempts)",
            ],
        ),
        (
            Policy(optimism=0.0),
            True,
            [
                "exploring codex/high (one of the 10% of attempts that may explore)",
                "codex/low est.",
            ],
        ),
        (
            Policy(explore_share=0.0),
            False,
            [
                "trying codex/high: too few outcomes to rule out that it beats codex/low "
                "(as low as $0.",
                "codex/low est.",
            ],
        ),
        (
            Policy(min_evidence=14, optimism=0.0),
            False,
            ["cold start, no route has 14 attempts yet"],
        ),
        (
            Policy(min_evidence=14),
            False,
            ["trying codex/high before any route is proven: as low as $0.", "codex/low unproven"],
        ),
    ],
)
def test_reasons_name_the_figures(policy: Policy, explores: bool, parts: list[str]) -> None:
    stats = {
        key(CHEAP): history(0.5, 20, 0.1),
        key(DEAR): history(0.9, 20, 0.3),
        key(NEW): history(0.5, 3, 0.05),
    }
    chosen = choose(
        [CHEAP, DEAR, NEW], stats, policy, draw=(lambda: 0.999) if explores else None,
        static_choice=CHEAP,
    )  # fmt: skip
    for part in parts:
        assert part in chosen.reason
    sonnet = chosen.figures[1]
    assert (sonnet.tier, sonnet.outcomes, sonnet.proven) == ("sonnet", 20, policy.min_evidence < 11)
    assert sonnet.cost_per_landed == pytest.approx(0.3 / sonnet.landing_rate)


KINDS: list[OutcomeKind] = ["landed_first_try", "landed", "returned", "failed", "held"]
outcomes = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 10**6), st.floats(0, 100)), max_size=40
)


@given(outcomes)
def test_sums_never_go_negative_and_keep_one_counts_plainly(
    seq: list[tuple[OutcomeKind, int, float]],
) -> None:
    plain = decayed = RouteStats()
    for kind, tokens, cost in seq:
        plain = recorded(plain, kind, tokens, cost, 1.0)
        decayed = recorded(decayed, kind, tokens, cost, KEEP)
    assert plain.outcomes == decayed.outcomes == len(seq)
    assert plain.attempts == sum(kind != "held" for kind, _, _ in seq)
    assert plain.landed == sum(kind.startswith("landed") for kind, _, _ in seq)
    assert plain.tokens == sum(tokens for _, tokens, _ in seq)
    assert min(decayed.attempts, decayed.landed, decayed.cost, decayed.held) >= 0
    assert decayed.landed <= decayed.attempts + 1e-9


@given(st.lists(outcomes, min_size=1, max_size=4), st.floats(0, 1), st.floats(0, 1), st.integers())
def test_the_choice_is_always_a_candidate(
    histories: list[list[tuple[OutcomeKind, int, float]]], floor: float, share: float, seed: int
) -> None:
    candidates = [Candidate("p", f"t{i}", f"m{i}", 0.1 * (i + 1)) for i in range(len(histories))]
    stats = {}
    for c, seq in zip(candidates, histories, strict=True):
        s = RouteStats()
        for kind, tokens, cost in seq:
            s = recorded(s, kind, tokens, cost, KEEP)
        stats[key(c)] = s
    chosen = choose(
        candidates, stats, Policy(floor=floor), draw=random.Random(seed) if share < 0.5 else None,
        static_choice=candidates[0],
    )  # fmt: skip
    assert chosen.route in candidates
    assert all(f.cost_per_landed >= 0 for f in chosen.figures)


@given(st.lists(st.floats(0.01, 10), min_size=2, max_size=6), st.integers(0, 5))
def test_with_nothing_recorded_the_first_task_goes_to_the_cheapest_try_or_the_static_route(
    prices: list[float], static: int
) -> None:
    candidates = [Candidate("p", f"t{i}", f"m{i}", price) for i, price in enumerate(prices)]
    static_choice = candidates[static % len(candidates)]
    chosen = choose(candidates, {}, Policy(), draw=None, static_choice=static_choice)
    cheapest = min(prices)
    if cheapest < static_choice.cost_per_attempt:  # same hoped landing: the price decides
        assert chosen.basis == "exploration"
        assert chosen.route.cost_per_attempt == cheapest
    else:  # nothing could plausibly cost less than the static route
        assert (chosen.route, chosen.basis) == (static_choice, "cold_start")
    quiet = choose(candidates, {}, QUIET, draw=None, static_choice=static_choice)
    assert (quiet.route, quiet.basis) == (static_choice, "cold_start")


# -- the learned route within routing's rules (learning.route, pins) ------------------------

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
ALPHA = Provider(
    "alpha",
    (Tier("small", "a-s", 1, 3, 0.001, 0.002), Tier("big", "a-l", 4, 10, 0.004, 0.008)),
    hourly_tokens=100_000,
)
BETA = Provider("beta", (Tier("any", "b-1", 1, 10, 0.003, 0.006),))
NEEDS = Estimate(1600, 400)
# beta/any is the cheapest per landed change by far: alpha/small lands one in ten.
LEARNED = {
    ("alpha", "small"): history(0.1, 20, 0.002),
    ("beta", "any"): history(1.0, 20, 0.0025),
}
QUIET_ROUTE = Policy(explore_share=0.0, optimism=0.0)
OPEN = Usage(breaker=Breaker("open", 3, 1, NOW + timedelta(seconds=30)))


def routed(
    usage: dict[str, Usage] | None = None,
    policy: Policy = QUIET_ROUTE,
    failed_on: Escalation | None = None,
    draw: random.Random | None = None,
) -> tuple[str | None, str | None, str]:
    d = route(
        2, NEEDS, (ALPHA, BETA), usage or {}, NOW, failed_on,
        stats=LEARNED, policy=policy, draw=draw,
    )  # fmt: skip
    return d.provider, d.tier, d.basis


@pytest.mark.parametrize(
    ("usage", "policy", "failed_on", "expected"),
    [
        ({}, QUIET_ROUTE, None, ("beta", "any", "learned")),
        ({}, Policy(enabled=False), None, ("alpha", "small", "rule")),
        # a retry after a failure escalates by the rule, whatever was learned
        ({}, QUIET_ROUTE, Escalation("alpha", "small"), ("alpha", "big", "rule")),
        # an open breaker or a spent budget takes beta out: alpha's tiers are left to learn on
        ({"beta": OPEN}, QUIET_ROUTE, None, ("alpha", "small", "learned")),
        ({"alpha": Usage(hour_tokens=99_000)}, QUIET_ROUTE, None, ("beta", "any", "only_route")),
        ({"alpha": OPEN, "beta": OPEN}, QUIET_ROUTE, None, (None, None, "rule")),
    ],
)
def test_the_learned_route_keeps_within_routings_rules(
    usage: dict[str, Usage],
    policy: Policy,
    failed_on: Escalation | None,
    expected: tuple[str | None, str | None, str],
) -> None:
    assert routed(usage, policy, failed_on) == expected


def test_exploring_never_reaches_a_blocked_provider() -> None:
    policy = Policy(explore_share=1.0)
    # beta/any is so far ahead that no sample of the others beats it
    free = {routed({}, policy, draw=random.Random(i))[:2] for i in range(200)}
    assert free == {("beta", "any")}
    # with beta's breaker open, alpha/big is untried and could beat alpha/small: it is tried
    blocked = {routed({"beta": OPEN}, policy, draw=random.Random(i))[:2] for i in range(200)}
    assert blocked == {("alpha", "big")}


def test_a_half_open_provider_chosen_by_learning_takes_the_trial() -> None:
    half_open = Usage(breaker=Breaker("open", 3, 1, NOW - timedelta(seconds=1)))
    d = route(2, NEEDS, (ALPHA, BETA), {"beta": half_open}, NOW, None,
              stats=LEARNED, policy=QUIET_ROUTE)  # fmt: skip
    assert (d.provider, d.half_open_probe) == ("beta", True)
    taken = Usage(breaker=half_open.breaker, probe_in_flight=True)
    assert routed({"beta": taken})[:2] == ("alpha", "small")


def test_a_pin_holds_and_waits_while_its_provider_is_blocked() -> None:
    pin = Pin("alpha", "big", epic_id="E")
    assert pin_for([pin, Pin("beta", "any", task_id="T")], "T", "E") == Pin(
        "beta", "any", task_id="T"
    )  # the task's own pin beats its epic's
    assert pin_for([pin], "U", "E") == pin and pin_for([pin], "U", None) is None
    d = pinned(pin, NEEDS, (ALPHA, BETA), {}, NOW)
    assert (d.provider, d.tier, d.basis) == ("alpha", "big", "pinned")
    assert d.reason == "pinned to alpha/big for epic E by the providers file"
    waiting = pinned(pin, NEEDS, (ALPHA, BETA), {"alpha": OPEN}, NOW)
    assert (waiting.routed, waiting.basis) == (False, "pinned")
    assert [a.why for a in waiting.alternatives] == ["breaker_open"]
    assert "it stays ready until it can" in waiting.reason


def test_a_failures_retry_counts_where_routing_sends_it() -> None:
    # alpha/small lands one in ten at $0.004 a try; its failures go one tier up, to
    # alpha/big: its cost per landed change counts those retries, not retries of itself.
    stats = {("alpha", "small"): history(0.1, 20, 0.004), ("alpha", "big"): history(0.9, 20, 0.01)}
    d = route(2, NEEDS, (ALPHA, BETA), {"beta": OPEN}, NOW, None, stats=stats,
              policy=QUIET_ROUTE)  # fmt: skip
    big, small = d.reason.split("; ")[0], d.reason.split("; ")[1]
    assert (d.provider, d.tier) == ("alpha", "big")
    assert big.startswith("lowest est. cost per landed change: alpha/big est. $0.012")
    # $0.004 a try, and most fail on to alpha/big at $0.012 per landed change: $0.014 (as
    # if retried on itself, $0.004 / 19 % = $0.021)
    assert small.startswith("alpha/small est. $0.014 per landed change")
    alone = choose([candidate(ALPHA, ALPHA.tiers[0], NEEDS)], {}, QUIET_ROUTE, draw=None,
                   static_choice=candidate(ALPHA, ALPHA.tiers[0], NEEDS))  # fmt: skip
    assert alone.figures[0].after_failure is None  # as if retried where it was


def test_only_an_unproven_route_that_could_win_is_explored() -> None:
    # NEW costs $0.05 a try: even landing every time it cannot beat CHEAP's $0.02 per
    # landed change, so an exploring attempt leaves it be.
    stats = {key(CHEAP): history(0.9, 20, 0.018)}
    dear_new = Candidate("codex", "high", "high-model", 0.05)
    chosen = choose([CHEAP, dear_new], stats, Policy(), draw=lambda: 0.999, static_choice=CHEAP)
    assert (chosen.route, chosen.basis) == (CHEAP, "learned")
    cheap_new = Candidate("codex", "high", "high-model", 0.01)
    chosen = choose([CHEAP, cheap_new], stats, Policy(), draw=lambda: 0.999, static_choice=CHEAP)
    assert (chosen.route, chosen.basis) == (cheap_new, "exploration")


def test_a_class_estimate_is_its_tokens_per_outcome_once_proven() -> None:
    policy = Policy(min_evidence=5.0)
    landed = RouteStats(outcomes=4, attempts=4.0, landed=4.0, tokens=400_000.0)
    assert observed_estimate([landed], policy, 0.2) is None  # 4 attempts of 5
    held = RouteStats(outcomes=2, attempts=1.0, held=1.0, tokens=200_000.0)
    # Holds spend too: 600k over 6 outcomes, a fifth of it output.
    assert observed_estimate([landed, held], policy, 0.2) == Estimate(80_000, 20_000)
    silent = RouteStats(outcomes=9, attempts=9.0)  # a route that never reports usage
    assert observed_estimate([silent], policy, 0.2) is None
