"""The merge queue's pure decisions (wvo_mcp/rules/merge_queue.py): the bisection that finds
the first failing prefix of a batch, who gets a submission that does not land, and what a tree
must pass."""

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from wvo_mcp.rules import merge_queue

SEARCH = settings(max_examples=500, deadline=None, derandomize=True, database=None)


def rounds_bound(n: int, slots: int) -> int:
    """ceil(log_{slots+1}(n)) + 1, in integers (no float rounding at exact powers)."""
    rounds, reach = 0, 1
    while reach < n:
        reach *= slots + 1
        rounds += 1
    return rounds + 1


def bisect(n: int, slots: int, fails: Callable[[int], bool]) -> tuple[int, int, int]:
    """The loop the lander runs, starting from the target (good=0) and the whole failed
    batch (bad=n): (good, bad, rounds), each round's probes checked on the way."""
    good, bad, rounds = 0, n, 0
    while True:
        points = merge_queue.probes(good, bad, slots)
        if not points:
            return good, bad, rounds
        rounds += 1
        assert rounds <= n, "the loop does not narrow"
        assert len(points) == len(set(points)), points
        assert len(points) <= slots, points
        assert all(good < p < bad for p in points), (good, bad, points)
        good, bad = merge_queue.narrow(good, bad, {p: not fails(p) for p in points})


@settings(SEARCH)
@given(st.data(), st.integers(1, 64), st.integers(1, 8))
def test_bisection_finds_the_first_failing_prefix(data: st.DataObject, n: int, slots: int) -> None:
    k = data.draw(st.integers(1, n), label="first failing prefix")
    good, bad, rounds = bisect(n, slots, lambda p: p >= k)
    assert (good, bad) == (k - 1, k)
    assert rounds <= rounds_bound(n, slots), (n, slots, k, rounds)


@settings(SEARCH)
@given(st.data(), st.integers(1, 64), st.integers(1, 8))
def test_bisection_ends_on_a_failing_prefix_after_a_passing_one_whatever_the_outcomes(
    data: st.DataObject, n: int, slots: int
) -> None:
    # Flaky or order-dependent checks: any prefix below n may pass or fail.
    outcomes = data.draw(st.lists(st.booleans(), min_size=n - 1, max_size=n - 1), label="fails")
    fails = {p: failed for p, failed in enumerate(outcomes, start=1)} | {n: True}
    good, bad, _ = bisect(n, slots, fails.__getitem__)
    assert good < bad
    assert bad == good + 1
    assert fails[bad]
    assert good == 0 or not fails[good]


def test_bisection_finds_every_first_failing_prefix_exhaustively() -> None:
    # The whole space the property above samples is small enough to walk.
    for n in range(1, 65):
        for slots in range(1, 9):
            for k in range(1, n + 1):
                good, bad, rounds = bisect(n, slots, k.__le__)  # p fails when k <= p
                assert (good, bad) == (k - 1, k), (n, slots, k)
                assert rounds <= rounds_bound(n, slots), (n, slots, k, rounds)


def test_probes_spread_evenly_and_stop_when_the_culprit_is_found() -> None:
    assert merge_queue.probes(0, 8, 1) == [4]
    assert merge_queue.probes(0, 9, 2) == [3, 6]
    assert merge_queue.probes(0, 3, 8) == [1, 2]  # no more probes than prefixes between
    assert merge_queue.probes(4, 5, 3) == []
    assert merge_queue.probes(5, 5, 3) == []
    assert merge_queue.probes(0, 4, 0) == [2]  # no slot configured still makes progress


def test_narrow_takes_the_shortest_failure_and_the_longest_pass_below_it() -> None:
    assert merge_queue.narrow(0, 10, {3: True, 6: False, 8: False}) == (3, 6)
    # A pass above a failure does not count: the failure bounds the search.
    assert merge_queue.narrow(0, 10, {3: False, 6: True}) == (0, 3)
    # Outcomes outside (good, bad) are stale and ignored.
    assert merge_queue.narrow(4, 8, {2: False, 9: True, 6: True}) == (6, 8)


def test_hold_for_person_names_the_persons_commits() -> None:
    commits = [f"{n:x}" * 40 for n in range(1, 8)]
    reason = merge_queue.hold_for_person(0, 3, commits)
    assert reason is not None
    assert "person" in reason
    for shown in commits[:5]:
        assert shown[:12] in reason
    assert commits[0] not in reason  # shortened
    assert commits[5][:12] not in reason  # at most five named


def test_an_empty_submission_is_done_only_where_its_task_needs_no_change() -> None:
    assert merge_queue.empty_done({"needs_change": False})
    for metadata in ({}, {"needs_change": True}, {"needs_change": "false"}, {"needs_change": 0}):
        assert not merge_queue.empty_done(metadata), metadata
    assert merge_queue.empty_hold(0) is None  # back to its worker, once
    assert merge_queue.empty_hold(1) == "its submission changed nothing again"


def test_hold_for_person_after_too_many_returns() -> None:
    assert merge_queue.hold_for_person(2, 3, []) is None
    reason = merge_queue.hold_for_person(3, 3, [])
    assert reason is not None and "3" in reason and "--max-returns" in reason
    assert merge_queue.hold_for_person(5, 3, []) is not None
    # A person's conflicting commit wins over the count, whatever it is.
    both = merge_queue.hold_for_person(9, 3, ["a" * 40])
    assert both is not None and "a" * 12 in both


def test_checks_project_first_each_once_none_skipped() -> None:
    assert merge_queue.checks(
        "make check", ["pytest", None, "make check", "pytest", ["ruff", "."]]
    ) == [
        "make check",
        "pytest",
        ["ruff", "."],
    ]
    assert merge_queue.checks(None, [None, ["a", "b"], ["a", "b"], "a b"]) == [["a", "b"], "a b"]
    assert merge_queue.checks(None, []) == []
    assert merge_queue.checks("only", [None]) == ["only"]
