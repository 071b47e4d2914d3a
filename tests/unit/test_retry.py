"""Retry decisions: exponential back-off, a cap, and a dead letter at max_attempts."""

import itertools

import pytest

from wvo_mcp.rules.retry import RetryDecision, after_failure
from wvo_mcp.rules.transitions import Status

P, F = Status.PENDING, Status.FAILED


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "base", "cap", "expected"),
    [
        # Doubling from the base.
        (0, 5, 30.0, 3600.0, (P, 1, 30.0)),
        (1, 5, 30.0, 3600.0, (P, 2, 60.0)),
        (2, 5, 30.0, 3600.0, (P, 3, 120.0)),
        (3, 5, 30.0, 3600.0, (P, 4, 240.0)),
        # The attempt that reaches max_attempts is the dead letter.
        (4, 5, 30.0, 3600.0, (F, 5, 0.0)),
        (2, 3, 30.0, 3600.0, (F, 3, 0.0)),
        # One attempt allowed: the first failure is final.
        (0, 1, 30.0, 3600.0, (F, 1, 0.0)),
        # Already past the limit (e.g. max_attempts lowered later): still dead.
        (7, 3, 30.0, 3600.0, (F, 8, 0.0)),
        # The cap.
        (0, 10, 30.0, 100.0, (P, 1, 30.0)),
        (1, 10, 30.0, 100.0, (P, 2, 60.0)),
        (2, 10, 30.0, 100.0, (P, 3, 100.0)),
        (5, 10, 30.0, 100.0, (P, 6, 100.0)),
        (8, 20, 30.0, 3600.0, (P, 9, 3600.0)),  # 30 * 256 = 7680 -> 3600
        # A cap below the base wins.
        (0, 5, 30.0, 10.0, (P, 1, 10.0)),
        # Fractional and zero bases.
        (2, 5, 0.5, 60.0, (P, 3, 2.0)),
        (3, 5, 0.0, 60.0, (P, 4, 0.0)),
    ],
)
def test_after_failure(
    attempts: int,
    max_attempts: int,
    base: float,
    cap: float,
    expected: tuple[Status, int, float],
) -> None:
    decision = after_failure(attempts, max_attempts, base, cap)
    assert isinstance(decision, RetryDecision)
    assert (decision.status, decision.attempts, decision.delay_seconds) == pytest.approx(expected)
    assert decision.status is expected[0]


def test_each_retry_doubles_the_delay_until_the_cap() -> None:
    base, cap = 7.0, 1000.0
    delays = [after_failure(n, 20, base, cap).delay_seconds for n in range(19)]
    assert delays[0] == base
    for earlier, later in itertools.pairwise(delays):
        assert later == min(cap, 2 * earlier)
    assert delays[-1] == cap
    assert max(delays) == cap


@pytest.mark.parametrize("max_attempts", [1, 2, 3, 5, 20])
def test_a_task_gets_exactly_max_attempts_tries(max_attempts: int) -> None:
    attempts, statuses = 0, []
    while True:
        decision = after_failure(attempts, max_attempts, 1.0, 60.0)
        statuses.append(decision.status)
        attempts = decision.attempts
        if decision.status is Status.FAILED:
            break
        assert len(statuses) < 100, "never dead-lettered"
    assert attempts == max_attempts
    assert statuses == [P] * (max_attempts - 1) + [F]


def test_attempts_always_increase_by_one() -> None:
    for attempts in range(10):
        assert after_failure(attempts, 5, 1.0, 10.0).attempts == attempts + 1


def test_decision_is_immutable() -> None:
    decision = after_failure(0, 3, 1.0, 10.0)
    with pytest.raises(AttributeError):
        decision.attempts = 5  # type: ignore[misc]
