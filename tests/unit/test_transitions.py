"""The status state machine: the table of legal moves and check_transition."""

import itertools
import re
from pathlib import Path
from typing import get_args

import pytest

from wvo_mcp.errors import IllegalTransition, WvoError
from wvo_mcp.models import StatusName
from wvo_mcp.rules.transitions import TERMINAL, TRANSITIONS, Status, check_transition, legal_moves

ROOT = Path(__file__).resolve().parents[2]
MIGRATION = ROOT / "wvo_mcp" / "store" / "sql" / "sqlite" / "migrations" / "0001_core.sql"

DESIGN_STATUSES = {
    "pending",
    "in_progress",
    "awaiting_approval",
    "needs_review",
    "blocked",
    "done",
    "failed",
    "cancelled",
}

ALL_PAIRS = list(itertools.product(Status, Status))


def test_there_are_exactly_the_eight_design_statuses() -> None:
    assert len(Status) == 8
    assert {s.value for s in Status} == DESIGN_STATUSES


def test_every_status_is_a_key_of_the_table() -> None:
    assert set(TRANSITIONS) == set(Status)
    assert len(TRANSITIONS) == 8


def test_table_only_names_known_statuses() -> None:
    for moves in TRANSITIONS.values():
        assert moves <= set(Status)


def test_status_values_agree_with_the_api_model() -> None:
    assert set(get_args(StatusName)) == DESIGN_STATUSES


def test_status_values_agree_with_the_schema_check_constraint() -> None:
    sql = MIGRATION.read_text()
    check = re.search(r"status\s+TEXT[^(]*CHECK \(status IN \((.*?)\)\)", sql, re.DOTALL)
    assert check is not None, "the tasks.status CHECK constraint was not found"
    in_schema = set(re.findall(r"'(\w+)'", check.group(1)))
    assert in_schema == DESIGN_STATUSES


def test_done_has_no_moves_and_is_the_only_terminal_status() -> None:
    assert TRANSITIONS[Status.DONE] == frozenset()
    assert legal_moves(Status.DONE) == []
    assert frozenset({Status.DONE}) == TERMINAL


@pytest.mark.parametrize("status", sorted(set(Status) - {Status.DONE}))
def test_every_other_status_has_a_way_out(status: Status) -> None:
    assert TRANSITIONS[status]


def test_failed_and_cancelled_can_only_be_requeued_or_cancelled() -> None:
    assert TRANSITIONS[Status.FAILED] == {Status.PENDING, Status.CANCELLED}
    assert TRANSITIONS[Status.CANCELLED] == {Status.PENDING}


def test_every_status_reaches_done() -> None:
    for start in Status:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in TRANSITIONS[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert Status.DONE in seen, f"{start} cannot reach done"


@pytest.mark.parametrize("status", list(Status))
def test_legal_moves_is_the_sorted_table_row(status: Status) -> None:
    moves = legal_moves(status)
    assert moves == sorted(m.value for m in TRANSITIONS[status])
    assert moves == sorted(moves)


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_check_transition_follows_the_table(current: Status, target: Status) -> None:
    if target in TRANSITIONS[current]:
        assert check_transition(current, target) is None
    else:
        with pytest.raises(IllegalTransition) as info:
            check_transition(current, target)
        message = str(info.value)
        assert repr(current.value) in message
        assert repr(target.value) in message


def test_no_status_moves_to_itself() -> None:
    for status in Status:
        assert status not in TRANSITIONS[status]
        with pytest.raises(IllegalTransition):
            check_transition(status, status)


@pytest.mark.parametrize("current", sorted(set(Status) - {Status.DONE}))
def test_refusal_names_every_legal_next_status(current: Status) -> None:
    illegal = next(s for s in Status if s not in TRANSITIONS[current])
    with pytest.raises(IllegalTransition) as info:
        check_transition(current, illegal)
    message = str(info.value)
    listed = message.split("legal next statuses from", 1)[1].split(":", 1)[1]
    named = {name.strip() for name in listed.split(",")}
    assert named == {s.value for s in TRANSITIONS[current]}


def test_refusal_from_done_says_it_is_final() -> None:
    with pytest.raises(IllegalTransition, match=r"none \(it is final\)"):
        check_transition(Status.DONE, Status.PENDING)


def test_illegal_transition_is_a_wvo_error() -> None:
    with pytest.raises(WvoError):
        check_transition(Status.BLOCKED, Status.DONE)
