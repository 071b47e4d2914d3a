"""The merge queue's figures (pure): percentiles, empty windows, spend per landed change,
each open entry's place and wait, and the one-line summary."""

from datetime import UTC, datetime, timedelta

import pytest

from wvo_mcp.models import LandedSpend, LandingFigures, LandingQueue, QueueEntry
from wvo_mcp.queue_figures import (
    Spend,
    duration,
    entry_lines,
    figures,
    percentile,
    places,
    summary,
    wait,
    waiting_since,
)

T0 = datetime(2031, 5, 6, 7, 0, tzinfo=UTC)


def test_percentiles_interpolate_between_the_closest_ranks() -> None:
    hundred = [float(n) for n in range(100, 0, -1)]  # 1..100, in any order
    assert percentile(hundred, 0.5) == pytest.approx(50.5)
    assert percentile(hundred, 0.95) == pytest.approx(95.05)
    assert percentile(hundred, 0.0) == 1.0 and percentile(hundred, 1.0) == 100.0
    assert percentile([7.0], 0.5) == 7.0 == percentile([7.0], 0.95)
    assert percentile([10.0, 20.0], 0.5) == 15.0
    assert percentile([10.0, 20.0], 0.95) == pytest.approx(19.5)
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([], 0.5) is None


def test_an_empty_window_gives_zeros_and_none_not_a_division_error() -> None:
    empty = figures(24, [], 0, 0, [])
    assert (empty.landed, empty.returned, empty.landed_per_hour) == (0, 0, 0.0)
    assert (empty.wait_p50, empty.wait_p95, empty.returns_per_landed) == (None, None, None)
    assert empty.spend == ()
    # Returns with nothing landed: counted, but no ratio to a landed change.
    returned_only = figures(24, [], 0, 3, [Spend("codex", "medium", 0, 10, 0, 1.0)])
    assert (returned_only.returned, returned_only.returns_per_landed) == (3, None)
    assert returned_only.spend == ()
    # A window of no length.
    assert figures(0, [60.0], 1, 0, []).landed_per_hour == 0.0


def test_a_window_of_landed_changes() -> None:
    spend = [
        Spend("claude", "sonnet", 1, 500, 50, 0.75),
        Spend("codex", "medium", 4, 3000, 1000, 2.0),
    ]
    found = figures(2, [60.0, 120.0, 180.0, 600.0], 4, 2, spend)
    assert (found.landed, found.returned, found.landed_per_hour) == (4, 2, 2.0)
    assert found.wait_p50 == 150.0
    assert found.wait_p95 == pytest.approx(537.0)
    assert found.returns_per_landed == 0.5
    # Each tier's spend over every landed change: the rows add up to one change's cost.
    per = [(s.provider, s.tier, s.changes, s.tokens, s.cost) for s in found.spend]
    assert per == [("claude", "sonnet", 1, 137.5, 0.1875), ("codex", "medium", 4, 1000.0, 0.5)]


def test_waits_are_seconds_and_never_negative() -> None:
    assert wait(T0, T0 + timedelta(minutes=10)) == 600.0
    assert wait(T0, T0 - timedelta(seconds=5)) == 0.0  # a clock stepped back
    assert wait(None, T0) is None and wait(T0, None) is None


def test_places_count_per_target_with_the_batch_being_landed_first() -> None:
    entries = [
        ("main", "queued", 9),
        ("main", "review", 3),
        ("main", "testing", 12),  # put back behind later ones, and taken again: first
        ("release", "queued", 4),
        ("main", "queued", 5),
        ("main", "held", 1),
        ("main", "landing", 20),
        ("release", "testing", 6),
    ]
    assert places(entries) == [4, None, 2, 2, 3, None, 1, 1]
    assert places([]) == []


def test_an_entry_waits_since_it_entered_was_queued_or_was_held() -> None:
    assert waiting_since("review", "t1", None, None) == "t1"
    assert waiting_since("queued", "t1", "t2", None) == "t2"
    assert waiting_since("testing", "t1", "t2", None) == "t2"
    assert waiting_since("held", "t1", "t2", "t3") == "t3"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (0, "0s"), (59.9, "59s"), (61, "1m01s"), (3600 * 3 + 125, "3h02m"),
     (86400 * 2 + 3600 * 4 + 5, "2d04h")],
)  # fmt: skip
def test_durations_read_as_people_read_them(seconds: float | None, shown: str) -> None:
    assert duration(seconds) == shown


def test_the_summary_line() -> None:
    quiet = LandingFigures(
        since="s", hours=24, landed=0, landed_per_hour=0.0, wait_p50_s=None, wait_p95_s=None,
        returned=0, returns_per_landed=None,
    )  # fmt: skip
    assert summary(quiet) == (
        "last 24 h: 0 landed (0.00/h), queue wait p50 - p95 -, 0 returned (- per landed)"
    )
    busy = quiet.model_copy(
        update={
            "landed": 6, "landed_per_hour": 0.25, "wait_p50_s": 90.0, "wait_p95_s": 725.0,
            "returned": 3, "returns_per_landed": 0.5,
            "spend": [LandedSpend(provider="codex", tier="medium", changes=6,
                                  tokens_per_change=1200.0, cost_per_change=0.0123)],
        }
    )  # fmt: skip
    assert summary(busy) == (
        "last 24 h: 6 landed (0.25/h), queue wait p50 1m30s p95 12m05s, 3 returned "
        "(0.5 per landed); per landed change: codex/medium 1200 tokens $0.0123"
    )


def test_a_short_window_is_said_in_minutes() -> None:
    run = LandingFigures(
        since="s", hours=0.5, landed=1, landed_per_hour=2.0, wait_p50_s=30.0, wait_p95_s=30.0,
        returned=0, returns_per_landed=0.0,
    )  # fmt: skip
    assert summary(run).startswith("last 30m00s: 1 landed (2.00/h), queue wait p50 30s p95 30s")


def test_entry_lines_are_one_plain_line_each() -> None:
    def entry(**given: object) -> QueueEntry:
        fields: dict[str, object] = {
            "target": "main", "position": 1, "task_id": "T1", "title": "fix it",
            "state": "queued", "waiting_since": "t", "waited_s": 75.0, "returns": 0,
        }  # fmt: skip
        return QueueEntry.model_validate({**fields, **given})

    quiet = LandingFigures(
        since="s", hours=24, landed=0, landed_per_hour=0.0, wait_p50_s=None, wait_p95_s=None,
        returned=0, returns_per_landed=None,
    )  # fmt: skip
    found = LandingQueue(
        entries=[
            entry(),
            entry(task_id="T2", position=None, state="held", returns=3, waited_s=4000.0,
                  title="evil\x1b[2J\ntitle", reason="too many returns:\nsee " + "x" * 300),
            entry(target="", task_id="T3", position=2, state="testing"),
        ],
        figures=quiet,
    )  # fmt: skip
    lines = entry_lines(found)
    assert lines[0] == "main #1 T1 queued for 1m15s: fix it"
    assert lines[1].startswith("main - T2 held for 1h06m, returned 3x: evil [2J title [too many")
    assert lines[1].endswith("x…]") and len(lines[1]) < 220
    assert lines[2] == "(own branch) #2 T3 testing for 1m15s: fix it"
    assert all(line.isprintable() for line in lines)
