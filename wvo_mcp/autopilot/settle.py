"""How a worker's run settles, decided from how it ended and where its task stands (pure).

The loop records, charges, takes or hands back as told. A CLI refused tools it needed (Claude
Code's permission_denials, the task unfinished) settles as a refused login: its provider's
breaker opens and the task fails over (the person is told by loop.py's `_tell_auth`)."""

import dataclasses
from dataclasses import dataclass

from wvo_mcp.autopilot import worker_output
from wvo_mcp.autopilot.slots import DRAINED, PAUSED
from wvo_mcp.models import TaskDetail
from wvo_mcp.rules import breakers, routing
from wvo_mcp.rules.transitions import Status

ROUTING_OUTCOME: dict[worker_output.Outcome, breakers.Outcome] = {
    "success": "success",
    "failure": "failure",
    "rate_limited": "rate_limited",
    "context_limit": "context_limit",
    "auth": "auth_failed",
}


@dataclass(frozen=True)
class Standing:
    """Where a task stands after its worker's run: the part settling reads."""

    status: Status
    assigned_to: str | None = None
    submitted_by: str | None = None
    submitted_commit: str | None = None
    paused: bool = False  # by a person: it, its epic or the fleet

    @classmethod
    def of(cls, detail: TaskDetail) -> "Standing":
        return cls(
            detail.status,
            detail.assigned_to,
            detail.submitted_by,
            detail.submitted_commit,
            detail.paused is not None,
        )


@dataclass(frozen=True)
class Settlement:
    finish: worker_output.Finish  # as recorded: "auth" when its CLI was refused a tool it needed
    holding: bool  # the run still holds the task: its outcome is recorded against the task
    # It no longer holds its task (it submitted, gave up or lost its lease): what it cost
    # is charged to the task and its attempt apart (usage.charge_task); while it holds
    # the task, recording the run charges both.
    charge: bool
    take: bool  # its submission waits to be taken (nothing else follows)
    tell_auth: bool  # its provider's login, key or tools were refused
    release: Status | None  # handed back: PENDING costs the task nothing, FAILED an attempt


def settle(
    finish: worker_output.Finish, standing: Standing, agent_id: str, told_to_stop: bool = False
) -> Settlement:
    """`told_to_stop`: the autopilot's drain told the run to checkpoint and stop, so a run
    that ends still holding its task stopped as told (a drain's, blameless)."""
    holding = standing.status == Status.IN_PROGRESS and standing.assigned_to == agent_id
    submitted = standing.status == Status.NEEDS_REVIEW and standing.submitted_by == agent_id
    if told_to_stop and holding and not ours(finish):
        finish = dataclasses.replace(finish, outcome="failure", message=DRAINED)
    if finish.denied and not submitted:
        # Its CLI refused a tool the work needed: the provider cannot work here as it is set
        # up, like a refused key (its breaker opens, routing fails over).
        finish = dataclasses.replace(finish, outcome="auth")
    take = submitted and standing.submitted_commit is None
    # The provider's fault (or ours) costs the task nothing; anything else is a failed
    # attempt: counted, retried after a back-off, a dead letter at max_attempts.
    blameless = (
        finish.outcome in ("rate_limited", "auth") or ours(finish) or standing.paused
    )  # a person's pause: the worker stopped as told, or was stopped after its grace
    release = (Status.PENDING if blameless else Status.FAILED) if holding else None
    return Settlement(
        finish=finish,
        holding=holding,
        charge=not holding,
        take=take,
        tell_auth=not take and finish.outcome == "auth",
        release=release,
    )


def cost(usage: worker_output.Usage, tier: routing.Tier) -> float:
    """What a run cost, for --max-cost: its tokens at its tier's prices, or what its CLI
    said if more (a worker's commands can lower neither the tokens nor this)."""
    priced = routing.Estimate(usage.input_tokens, usage.output_tokens).cost(tier)
    return max(usage.cost_usd or 0.0, priced)


def ours(finish: worker_output.Finish) -> bool:
    """The autopilot stopped the run: a drain, or a person's pause."""
    return finish.message in (DRAINED, PAUSED)


def release_reason(finish: worker_output.Finish) -> str:
    """Why a run's task goes back, as its event and the autopilot's line say it: a stop of
    the autopilot's own as what it was (a pause, a drain), never as the worker's failure.
    Its driver: loop.Autopilot._settle."""
    return finish.message if ours(finish) else f"worker ended ({finish.outcome}): {finish.message}"


def judged(finish: worker_output.Finish) -> breakers.Outcome:
    """The outcome a run's provider is held to: none of its own fault when the autopilot
    stopped it (its breaker takes no failure for it)."""
    return "success" if ours(finish) else ROUTING_OUTCOME[finish.outcome]


def recorded(finish: worker_output.Finish) -> bool:
    """Whether a run goes on its provider's record: whatever it used, and how it failed,
    unless the autopilot stopped it (a drain, a pause) or its own limits did, which says
    nothing about the provider."""
    usage = finish.usage
    faulted = not ours(finish) and not finish.limit
    return bool(
        usage.input_tokens or usage.output_tokens or (faulted and finish.outcome != "success")
    )
