"""Task statuses and the one table of legal moves between them, with who may make each."""

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


class Actor(StrEnum):
    HOLDER = "holder"  # the agent holding the task's lease, presenting its token
    AGENT = "agent"  # any agent, holding nothing
    SCHEDULER = "scheduler"  # claims, and the approval gate of a task becoming ready
    MONITOR = "monitor"  # the health monitor, taking a task back from a silent holder
    PERSON = "person"  # at the host, through the CLI


S, A = Status, Actor
HOLDER, AGENT, SCHEDULER, MONITOR, PERSON = (
    A.HOLDER,
    A.AGENT,
    A.SCHEDULER,
    A.MONITOR,
    A.PERSON,
)

# Every legal move and who may make it. What leaves `awaiting_approval` or a dead letter
# (`failed`), and what revives `blocked` or `cancelled` work, is a person's alone: no
# sequence of agent moves gets past a person's gate (tests/security proves it by search).
# `done` is final; reopening means creating a follow-up task.
MOVES: dict[Status, dict[Status, frozenset[Actor]]] = {
    S.PENDING: {
        S.IN_PROGRESS: frozenset({SCHEDULER}),
        S.AWAITING_APPROVAL: frozenset({SCHEDULER}),
        S.CANCELLED: frozenset({PERSON}),
    },
    S.IN_PROGRESS: {
        S.DONE: frozenset({HOLDER, PERSON}),
        S.PENDING: frozenset({HOLDER, MONITOR, PERSON}),
        S.FAILED: frozenset({HOLDER, MONITOR, SCHEDULER}),  # a dead letter after a lost lease
        S.BLOCKED: frozenset({HOLDER}),
        S.NEEDS_REVIEW: frozenset({HOLDER}),
        S.AWAITING_APPROVAL: frozenset({HOLDER}),
        S.CANCELLED: frozenset({HOLDER, PERSON}),
    },
    S.AWAITING_APPROVAL: {
        S.PENDING: frozenset({PERSON}),
        S.IN_PROGRESS: frozenset({PERSON}),
        S.BLOCKED: frozenset({PERSON}),
        S.CANCELLED: frozenset({PERSON}),
    },
    # Review is an agent's job; `done` still passes the verification gate.
    S.NEEDS_REVIEW: {
        S.DONE: frozenset({AGENT, PERSON}),
        S.PENDING: frozenset({AGENT, PERSON}),
        S.CANCELLED: frozenset({PERSON}),
    },
    S.BLOCKED: {S.PENDING: frozenset({PERSON}), S.CANCELLED: frozenset({PERSON})},
    S.DONE: {},
    S.FAILED: {S.PENDING: frozenset({PERSON}), S.CANCELLED: frozenset({PERSON})},
    S.CANCELLED: {S.PENDING: frozenset({PERSON})},
}

TRANSITIONS: dict[Status, frozenset[Status]] = {s: frozenset(m) for s, m in MOVES.items()}
TERMINAL: frozenset[Status] = frozenset(s for s, moves in TRANSITIONS.items() if not moves)

# Who each kind of actor is, and how it makes a move: messages say what would be accepted.
AS: dict[Actor, str] = {
    HOLDER: "the task's holder",
    AGENT: "an agent that does not hold the task",
    SCHEDULER: "the scheduler",
    MONITOR: "the health monitor",
    PERSON: "a person",
}
HOW: dict[Actor, str] = {
    HOLDER: "the holder, passing its lease_token",
    AGENT: "any agent",
    SCHEDULER: "claim_task",
    MONITOR: "the health monitor (a silent holder's task)",
    PERSON: "a person at the host (`wvo-mcp approve`, `reject`, `requeue`, `cancel`, `done`)",
}


def legal_moves(current: Status, actor: Actor | None = None) -> list[str]:
    """The statuses `actor` (anyone, when None) may move a task in `current` to."""
    return sorted(t for t, who in MOVES[current].items() if actor is None or actor in who)


def may(current: Status, target: Status, actor: Actor) -> bool:
    return actor in MOVES[current].get(target, frozenset())


def check_transition(current: Status, target: Status, actor: Actor | None = None) -> None:
    """Raise IllegalTransition unless the move is legal (for `actor`, when given), naming
    the moves that would be accepted and who else may make this one."""
    if target not in TRANSITIONS[current]:
        moves = ", ".join(legal_moves(current)) or "none (it is final)"
        message = (
            f"cannot move a task from {current.value!r} to {target.value!r}; "
            f"legal next statuses from {current.value!r}: {moves}"
        )
        raise IllegalTransition(
            message if actor is None else f"{message}; {_yours(current, actor)}"
        )
    if actor is None or may(current, target, actor):
        return
    who = "; or ".join(HOW[a] for a in sorted(MOVES[current][target]))
    raise IllegalTransition(
        f"moving a task from {current.value!r} to {target.value!r} is not yours to make "
        f"as {AS[actor]}: only {who} may; {_yours(current, actor)}"
    )


def _yours(current: Status, actor: Actor) -> str:
    yours = legal_moves(current, actor)
    if yours:
        return f"from {current.value!r} you may move it to: {', '.join(yours)}"
    others = sorted({a for who in MOVES[current].values() for a in who})
    return (
        f"you may not move a task from {current.value!r} at all: only "
        + ("; or ".join(HOW[a] for a in others) or "nobody (it is final)")
        + " may"
    )
