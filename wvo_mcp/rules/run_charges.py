"""What one autopilot run was charged: the meter's count beside the CLI's own report (pure).

What one autopilot run was charged (pure), as its task's `charged` event keeps it: the
tokens charged and their cost at the run's tier, beside the two words they came from, the
meter's count (what nothing in the sandbox can lower) and the CLI's own report
(autopilot/isolation.py's `metered` charges the larger of each). Written by the autopilot
(autopilot/roles.py), read back for `wvo-mcp show` and the dashboard's task detail.

Carried out by `wvo_mcp/autopilot/roles.py`."""

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

KIND = "charged"  # the task event's kind


@dataclass(frozen=True)
class Tokens:
    input_tokens: int
    output_tokens: int
    cost_usd: float | None = None  # the CLI's own figure, where it gives one


@dataclass(frozen=True)
class RunCharge:
    """One run made for a task (its worker's, or a reviewer's)."""

    role: str  # "worker" or "reviewer"
    agent: str  # the slot that ran it
    provider: str
    tier: str
    model: str
    outcome: str
    input_tokens: int  # charged: to the provider's budgets and the task's cost
    output_tokens: int
    cost_usd: float  # those tokens at the tier's prices
    meter: Tokens | None  # what the run's meter counted; None: no meter stood in front
    said: Tokens | None  # what its CLI said it used; None: it said nothing
    at: str = ""  # when it was charged (the event's time)


def reason(charge: RunCharge) -> str:
    """The event's text: the figures as JSON (its time is the event's own)."""
    found = dataclasses.asdict(charge)
    del found["at"]
    return json.dumps(found, separators=(",", ":"))


def read(at: str, text: str | None) -> RunCharge | None:
    """A `charged` event's charge; None where its text is not one (never raises)."""
    try:
        found: dict[str, Any] = json.loads(text or "")
        found["meter"] = _tokens(found.get("meter"))
        found["said"] = _tokens(found.get("said"))
        return RunCharge(**found, at=at)
    except (ValueError, TypeError, AttributeError):
        return None


def _tokens(value: object) -> Tokens | None:
    return None if value is None else Tokens(**value) if isinstance(value, dict) else None


def differ(charge: RunCharge) -> bool:
    """Whether the meter's count and the CLI's word differ (one of them missing included,
    where the run was metered): then both are shown beside the charge."""
    meter, said = charge.meter, charge.said
    if meter is None:
        return False
    return said is None or (meter.input_tokens, meter.output_tokens) != (
        said.input_tokens,
        said.output_tokens,
    )


def source(charge: RunCharge) -> str:
    """Where the charge came from, in a few words, for a person."""
    meter, said = charge.meter, charge.said
    if meter is not None and said is not None:
        if not differ(charge):
            return "the meter and its CLI agree"
        return (
            f"the meter counted {meter.input_tokens} in, {meter.output_tokens} out; its CLI "
            f"said {said.input_tokens} in, {said.output_tokens} out: the larger of each"
        )
    if meter is not None:
        return (
            f"the meter counted {meter.input_tokens} in, {meter.output_tokens} out; its CLI "
            "said nothing"
        )
    if said is not None:
        return "its CLI's word (no meter stood in front)"
    if charge.input_tokens or charge.output_tokens:
        return "its CLI said nothing: one request's ceiling (no meter stood in front)"
    return "nothing was used"
