"""Weighted Shortest Job First (SAFe), as pure functions.

score = (business_value + time_criticality + risk_reduction + enablement) / job_size

Carried out by `wvo_mcp/services/rows.py` (a row's score), `wvo_mcp/services/tasks.py`
(stored at creation and on `rescore`) and `wvo_mcp/services/picking.py` (claims in its order).
"""

from dataclasses import dataclass

MAX_INPUT = 20
ENABLEMENT_CAP = 10
# How far ahead of a due date time criticality starts to rise towards MAX_INPUT.
DUE_HORIZON_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Why a task ranks where it does: (business_value + time_criticality + risk_reduction
    + enablement) / job_size. Only the inputs travel; the sums are derived."""

    business_value: int
    time_criticality: float
    risk_reduction: int
    enablement: int
    job_size: int

    @property
    def cost_of_delay(self) -> float:
        return self.business_value + self.time_criticality + self.risk_reduction + self.enablement

    @property
    def score(self) -> float:
        return round(self.cost_of_delay / self.job_size, 4)


def default_job_size(complexity: int) -> int:
    """Complexity 1..10 maps onto job size 2..20 when the planner gives none."""
    return max(1, min(MAX_INPUT, complexity * 2))


def time_criticality(base: int, seconds_to_due: float | None) -> float:
    """Rises linearly from `base` to the maximum over the horizon; overdue is the maximum."""
    if seconds_to_due is None or seconds_to_due >= DUE_HORIZON_SECONDS:
        return float(base)
    if seconds_to_due <= 0:
        return float(MAX_INPUT)
    closeness = 1.0 - seconds_to_due / DUE_HORIZON_SECONDS
    return round(base + (MAX_INPUT - base) * closeness, 2)


def enablement(open_dependents: int) -> int:
    return min(open_dependents, ENABLEMENT_CAP)


def breakdown(
    *,
    business_value: int,
    time_criticality: float,
    risk_reduction: int,
    open_dependents: int,
    job_size: int,
) -> Breakdown:
    return Breakdown(
        business_value=business_value,
        time_criticality=time_criticality,
        risk_reduction=risk_reduction,
        enablement=enablement(open_dependents),
        job_size=job_size,
    )
