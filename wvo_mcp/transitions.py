"""Task statuses and the one table of legal moves between them."""

from enum import StrEnum

from wvo_mcp.errors import IllegalTransition


class Status(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    AWAITING_APPROVAL = "awaiting_approval"
    NEEDS_REVIEW = "needs_review"
    BLOCKED = "blocked"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = Status

# `failed` is a dead letter: only a person re-queues it (-> pending).
# `done` is final; reopening means creating a follow-up task.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.PENDING: frozenset({S.IN_PROGRESS, S.AWAITING_APPROVAL, S.BLOCKED, S.CANCELLED}),
    S.IN_PROGRESS: frozenset(
        {S.DONE, S.PENDING, S.FAILED, S.BLOCKED, S.NEEDS_REVIEW, S.AWAITING_APPROVAL, S.CANCELLED}
    ),
    S.AWAITING_APPROVAL: frozenset({S.PENDING, S.IN_PROGRESS, S.BLOCKED, S.CANCELLED}),
    S.NEEDS_REVIEW: frozenset({S.DONE, S.PENDING, S.IN_PROGRESS, S.CANCELLED}),
    S.BLOCKED: frozenset({S.PENDING, S.CANCELLED}),
    S.DONE: frozenset(),
    S.FAILED: frozenset({S.PENDING, S.CANCELLED}),
    S.CANCELLED: frozenset({S.PENDING}),
}

TERMINAL: frozenset[Status] = frozenset(s for s, moves in TRANSITIONS.items() if not moves)


def legal_moves(current: Status) -> list[str]:
    return sorted(TRANSITIONS[current])


def check_transition(current: Status, target: Status) -> None:
    """Raise IllegalTransition naming the legal next statuses."""
    if target not in TRANSITIONS[current]:
        moves = ", ".join(legal_moves(current)) or "none (it is final)"
        raise IllegalTransition(
            f"cannot move a task from {current.value!r} to {target.value!r}; "
            f"legal next statuses from {current.value!r}: {moves}"
        )
