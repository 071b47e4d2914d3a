"""Retry decisions for failed attempts, without I/O.

Carried out by `wvo_mcp/services/leases.py` and `wvo_mcp/services/moves.py`."""

from dataclasses import dataclass

from wvo_mcp.rules.transitions import Status


@dataclass(frozen=True, slots=True)
class RetryDecision:
    status: Status  # PENDING to retry, FAILED for the dead letter
    attempts: int
    delay_seconds: float  # how long before the task is ready again


def after_failure(
    attempts: int, max_attempts: int, base_seconds: float, cap_seconds: float
) -> RetryDecision:
    """`attempts` counts failed attempts before this one."""
    attempts += 1
    if attempts >= max_attempts:
        return RetryDecision(Status.FAILED, attempts, 0.0)
    delay = min(cap_seconds, base_seconds * 2 ** (attempts - 1))
    return RetryDecision(Status.PENDING, attempts, delay)
