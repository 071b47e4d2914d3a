"""A run's charge as its task event keeps it (rules/run_charges.py): read back as written,
whatever else an event's text holds, and said as a person needs it."""

import pytest

from wvo_mcp.rules import run_charges
from wvo_mcp.rules.run_charges import RunCharge, Tokens

CHARGE = RunCharge(
    role="worker", agent="claude-1", provider="claude", tier="sonnet", model="claude-sonnet-4-5",
    outcome="success", input_tokens=900, output_tokens=50, cost_usd=0.00345,
    meter=Tokens(900, 40), said=Tokens(700, 50, 0.01),
)  # fmt: skip


def test_a_charge_reads_back_as_written_with_its_events_time() -> None:
    text = run_charges.reason(CHARGE)
    assert '"at"' not in text  # the event's own, not repeated
    found = run_charges.read("2026-01-01T00:00:00Z", text)
    assert found == RunCharge(**{**CHARGE.__dict__, "at": "2026-01-01T00:00:00Z"})


@pytest.mark.parametrize("text", [None, "", "paused", "[1]", "7", '{"role": "worker"}',
                                  '{"meter": {"x": 1}}'])  # fmt: skip
def test_an_events_text_that_is_no_charge_is_none(text: str | None) -> None:
    assert run_charges.read("t", text) is None


def test_where_the_charge_came_from_is_said() -> None:
    assert run_charges.differ(CHARGE)
    assert run_charges.source(CHARGE) == (
        "the meter counted 900 in, 40 out; its CLI said 700 in, 50 out: the larger of each"
    )
    agreed = RunCharge(**{**CHARGE.__dict__, "said": Tokens(900, 40)})
    assert not run_charges.differ(agreed)
    assert run_charges.source(agreed) == "the meter and its CLI agree"
    silent = RunCharge(**{**CHARGE.__dict__, "said": None})
    assert run_charges.differ(silent) and "its CLI said nothing" in run_charges.source(silent)
    unmetered = RunCharge(**{**CHARGE.__dict__, "meter": None})
    assert not run_charges.differ(unmetered)
    assert run_charges.source(unmetered) == "its CLI's word (no meter stood in front)"
    ceiling = RunCharge(**{**CHARGE.__dict__, "meter": None, "said": None})
    assert "one request's ceiling" in run_charges.source(ceiling)
