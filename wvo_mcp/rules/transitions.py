"""Task statuses and the one table of legal moves between them, with who may make each.

Carried out by `wvo_mcp/services/moves.py` (a move refused for want of an approving review:
`_check_approval`), `wvo_mcp/services/leases.py` and `wvo_mcp/services/reviews.py`."""

from enum import StrEnum

from wvo_mcp.errors import IllegalTransition, ValidationFailed


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
    LANDER = "lander"  # the autopilot, landing a holder's submitted commit once verified
    PERSON = "person"  # at the host, through the CLI


class Gate(StrEnum):
    """What stands between a task's holder and `done` (tasks.gate; NULL is NONE)."""

    NONE = ""  # the holder finishes it (its verify_command must pass)
    LAND = "land"  # the holder submits (needs_review); the autopilot verifies and lands it
    REVIEW = "review"  # as LAND, once an agent other than the author approved the commit


S, A = Status, Actor
HOLDER, AGENT, SCHEDULER, MONITOR, LANDER, PERSON = (
    A.HOLDER,
    A.AGENT,
    A.SCHEDULER,
    A.MONITOR,
    A.LANDER,
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
    # Ungated, review is any agent's job; `done` still passes the verification gate.
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

# A gated task (an autopilot's, or one whose review is required) is finished by its holder
# only as far as needs_review: the lander takes it from there, and a review gate also needs
# an approval (APPROVAL below). A failed landing (verification, conflict) is a failed attempt.
GATED: dict[Status, dict[Status, frozenset[Actor]]] = {
    **MOVES,
    S.IN_PROGRESS: {**MOVES[S.IN_PROGRESS], S.DONE: frozenset({PERSON})},
    S.NEEDS_REVIEW: {
        S.DONE: frozenset({LANDER, PERSON}),
        S.PENDING: frozenset({LANDER, PERSON}),
        S.FAILED: frozenset({LANDER}),
        S.BLOCKED: frozenset({LANDER}),  # a person closed its pull request: they are asked
        S.CANCELLED: frozenset({PERSON}),
    },
}
TABLES: dict[Gate, dict[Status, dict[Status, frozenset[Actor]]]] = {
    Gate.NONE: MOVES,
    Gate.LAND: GATED,
    Gate.REVIEW: GATED,
}
# Moves that need more than the right actor: under a review gate the lander finishes only
# work that an agent other than its author approved, exactly as submitted.
APPROVAL: frozenset[tuple[Gate, Status, Status, Actor]] = frozenset(
    {(Gate.REVIEW, S.NEEDS_REVIEW, S.DONE, LANDER)}
)

TRANSITIONS: dict[Status, frozenset[Status]] = {s: frozenset(m) for s, m in MOVES.items()}
TERMINAL: frozenset[Status] = frozenset(s for s, moves in TRANSITIONS.items() if not moves)

# Moves after which plan_update may claim the mover's next task in the same call
# (claim_next): the mover lets go of the task and it does not go straight back to the
# queue. Not pending (the claim would most likely hand the same task back), nor
# awaiting_approval (its holder keeps it while a person decides).
CLAIM_NEXT_AFTER = (S.DONE, S.NEEDS_REVIEW, S.FAILED, S.BLOCKED, S.CANCELLED)


def check_claim_next(target: Status) -> None:
    """Raise ValidationFailed unless a move to `target` may claim the next task with it."""
    if target in CLAIM_NEXT_AFTER:
        return
    why = (
        "a task given back is ready again: the claim would hand it straight back to you"
        if target is S.PENDING
        else "you keep the task"
    )
    raise ValidationFailed(
        f"claim_next goes with a move that lets go of the task ({', '.join(CLAIM_NEXT_AFTER)}), "
        f"not {target.value!r}: {why}. Move it without claim_next, then claim_task if you mean "
        "to. Nothing was changed"
    )


# Who each kind of actor is, and how it makes a move: messages say what would be accepted.
AS: dict[Actor, str] = {
    HOLDER: "the task's holder",
    AGENT: "an agent that does not hold the task",
    SCHEDULER: "the scheduler",
    MONITOR: "the health monitor",
    LANDER: "the autopilot landing submitted work",
    PERSON: "a person",
}
HOW: dict[Actor, str] = {
    HOLDER: "the holder, passing its lease_token",
    AGENT: "any agent",
    SCHEDULER: "claim_task",
    MONITOR: "the health monitor (a silent holder's task)",
    LANDER: "the autopilot, once the submitted commit is verified (and approved, under review)",
    PERSON: "a person at the host (`wvo-mcp approve`, `reject`, `requeue`, `cancel`, `done`)",
}


def legal_moves(current: Status, actor: Actor | None = None, gate: Gate = Gate.NONE) -> list[str]:
    """The statuses `actor` (anyone, when None) may move a task in `current` to."""
    table = TABLES[gate][current]
    return sorted(t for t, who in table.items() if actor is None or actor in who)


def may(current: Status, target: Status, actor: Actor, gate: Gate = Gate.NONE) -> bool:
    return actor in TABLES[gate][current].get(target, frozenset())


def needs_approval(current: Status, target: Status, actor: Actor, gate: Gate) -> bool:
    """Whether this move also needs an approving review of the submitted commit."""
    return (gate, current, target, actor) in APPROVAL


def check_transition(
    current: Status, target: Status, actor: Actor | None = None, gate: Gate = Gate.NONE
) -> None:
    """Raise IllegalTransition unless the move is legal (for `actor` on a task behind
    `gate`, when given), naming the moves that would be accepted and who else may make it."""
    table = TABLES[gate]
    if target not in table[current]:
        moves = ", ".join(legal_moves(current, gate=gate)) or "none (it is final)"
        message = (
            f"cannot move a task from {current.value!r} to {target.value!r}; "
            f"legal next statuses from {current.value!r}: {moves}"
        )
        raise IllegalTransition(
            message if actor is None else f"{message}; {_yours(current, actor, gate)}"
        )
    if actor is None or may(current, target, actor, gate):
        return
    who = "; or ".join(HOW[a] for a in sorted(table[current][target]))
    behind = {
        Gate.NONE: "",
        Gate.LAND: " (the autopilot lands this task: submit it with needs_review)",
        Gate.REVIEW: " (this task is reviewed: submit it with needs_review; an agent other "
        "than its author approves it)",
    }[gate]
    raise IllegalTransition(
        f"moving a task from {current.value!r} to {target.value!r} is not yours to make "
        f"as {AS[actor]}{behind}: only {who} may; {_yours(current, actor, gate)}"
    )


def _yours(current: Status, actor: Actor, gate: Gate = Gate.NONE) -> str:
    yours = legal_moves(current, actor, gate)
    if yours:
        return f"from {current.value!r} you may move it to: {', '.join(yours)}"
    others = sorted({a for who in TABLES[gate][current].values() for a in who})
    return (
        f"you may not move a task from {current.value!r} at all: only "
        + ("; or ".join(HOW[a] for a in others) or "nobody (it is final)")
        + " may"
    )
