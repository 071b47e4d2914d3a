"""A provider's circuit breaker: when a reported outcome opens or closes it (pure).

Failures in a row, a rate limit or a refused login open it for a cool-down that doubles with
each opening (half-open past it: one trial), and a success closes it. Carried out by
`wvo_mcp/services/routing.py` (record_usage); routing passes over a provider whose breaker is
open (rules/routing.py)."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

# What a reported model call came to.
Outcome = Literal["success", "failure", "rate_limited", "context_limit", "auth_failed"]
BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 3
    cooldown_seconds: float = 30.0
    cooldown_cap_seconds: float = 600.0


@dataclass(frozen=True, slots=True)
class Breaker:
    """A provider's circuit breaker as stored; half-open is `open` past `reopens_at`."""

    state: Literal["closed", "open"] = "closed"
    failures: int = 0  # consecutive failures
    opens: int = 0  # consecutive openings: each doubles the cool-down
    reopens_at: datetime | None = None

    def current(self, now: datetime) -> BreakerState:
        if self.state == "open" and self.reopens_at is not None and now >= self.reopens_at:
            return "half_open"
        return self.state


def after_outcome(
    breaker: Breaker, outcome: Outcome, policy: BreakerPolicy, now: datetime
) -> Breaker:
    """The breaker after a reported outcome: a success closes it; a rate limit, a refused
    login or key, a failure in half-open, or `failure_threshold` failures in a row open it
    for a growing cool-down."""
    if outcome == "success":
        return Breaker()
    if outcome == "context_limit":
        return breaker  # the task outgrew the model: escalation's business, not the provider's
    current = breaker.current(now)
    failures = breaker.failures + 1
    if current == "open":
        return replace(breaker, failures=failures)  # stragglers of work started before it opened
    at_once = outcome in ("rate_limited", "auth_failed")
    if at_once or current == "half_open" or failures >= policy.failure_threshold:
        opens = breaker.opens + 1
        cooldown = min(policy.cooldown_cap_seconds, policy.cooldown_seconds * 2 ** (opens - 1))
        return Breaker("open", failures, opens, now + timedelta(seconds=cooldown))
    return replace(breaker, failures=failures)
