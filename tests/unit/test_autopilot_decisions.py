"""The autopilot's pure decisions (wvo_mcp/autopilot/dispatch.py, settle.py, worker_process.py's
stop_reason and stopped): what it launches, when it stops a running CLI, and how a worker's
run settles, from what it read."""

from typing import Any, get_args

import pytest

from wvo_mcp import providers
from wvo_mcp.autopilot import dispatch, settle, worker_output, worker_process
from wvo_mcp.autopilot.slots import DRAINED, PAUSED, Slot
from wvo_mcp.autopilot.submissions import submitted
from wvo_mcp.models import QueueCounts, RouteAlternative, RouteDecision
from wvo_mcp.rules.routing import PassedOverReason
from wvo_mcp.rules.transitions import Gate, Status

KIND = providers.WorkerKind(kind="claude")


def slot(provider: str, index: int) -> Slot:
    return Slot(provider, index, KIND)


CLAUDE_1, CLAUDE_2, CODEX_1 = slot("claude", 1), slot("claude", 2), slot("codex", 1)
ALL = [CLAUDE_1, CLAUDE_2, CODEX_1]


@pytest.mark.parametrize(
    ("author", "free", "chosen"),
    [
        # Another provider first, even when the author's own provider has a free worker.
        ("claude-1", [CLAUDE_2, CODEX_1], CODEX_1),
        ("codex-1", [CODEX_1, CLAUDE_1], CLAUDE_1),
        # Else another agent of the same provider: never the author.
        ("claude-1", [CLAUDE_1, CLAUDE_2], CLAUDE_2),
        ("claude-1", [CLAUDE_1], None),
        ("claude-1", [], None),
        # An author this autopilot does not run (another's agent): any free worker.
        ("claude-1-a1b2c3", [CLAUDE_1], CLAUDE_1),
    ],
)
def test_the_reviewer(author: str, free: list[Slot], chosen: Slot | None) -> None:
    assert dispatch.reviewer(author, ALL, free) is chosen


def test_an_agent_that_takes_configuration_from_its_checkout_never_reviews() -> None:
    gemini = Slot("gemini", 1, providers.WorkerKind(kind="acp", agent="gemini"))
    codex = Slot("codex-acp", 1, providers.WorkerKind(kind="acp", agent="codex-acp"))
    assert dispatch.reviewer("claude-1", [*ALL, gemini], [gemini, CLAUDE_2]) is CLAUDE_2
    assert dispatch.reviewer("claude-1", [*ALL, gemini], [gemini]) is None
    assert dispatch.reviewer("claude-1", [*ALL, codex], [codex]) is codex


def decision(
    routed: bool = True,
    provider: str | None = "claude",
    model: str | None = "sonnet",
    passed: tuple[PassedOverReason, ...] = (),
) -> RouteDecision:
    return RouteDecision(
        task_id="T1",
        routed=routed,
        provider=provider,
        tier="mid" if routed else None,
        model=model,
        estimated_tokens=0,
        estimated_cost=None,
        reason="a reason",
        alternatives=[
            RouteAlternative(provider="claude", tier=None, model=None, why=why, detail="")
            for why in passed
        ],
    )


@pytest.mark.parametrize(
    ("routed", "free", "placed"),
    [
        (decision(), [CODEX_1, CLAUDE_2], (CLAUDE_2, "sonnet")),
        (decision(), [CODEX_1], None),  # routed where no worker is free: it waits
        (decision(routed=False, provider=None, model=None), ALL, None),
        (decision(model=None), ALL, None),
    ],
)
def test_a_routed_task_goes_to_a_free_worker_of_its_provider(
    routed: RouteDecision, free: list[Slot], placed: tuple[Slot, str] | None
) -> None:
    assert dispatch.placement(routed, free) == placed


@pytest.mark.parametrize(
    ("routed", "never"),
    [
        (decision(provider="gemini"), True),  # routed where this autopilot runs nobody
        (decision(provider="claude"), False),
        (decision(False, None, None, ("tier_range", "not_above_failed_tier")), True),
        (decision(False, None, None, ("larger_than_budget",)), True),  # no hour is that big
        # Breakers close, budgets refill, capacity frees: time may bring it here.
        (decision(False, None, None, ("tier_range", "breaker_open")), False),
        (decision(False, None, None, ("over_daily_budget",)), False),
        (decision(False, None, None, ("at_capacity",)), False),
    ],
)
def test_work_that_can_never_start_here(routed: RouteDecision, never: bool) -> None:
    assert dispatch.never(routed, {"claude", "codex"}) is never


def test_until_empty_does_not_wait_for_a_budget_and_says_when_it_resets() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 25, 14, 37, tzinfo=UTC)
    hourly = decision(False, None, None, ("over_hourly_budget", "over_hourly_budget"))
    daily = decision(False, None, None, ("over_hourly_budget", "over_daily_budget"))
    assert dispatch.never(hourly, {"claude"}, budgets_too=True)
    assert not dispatch.never(decision(False, None, None, ("at_capacity",)), {"claude"}, True)
    assert dispatch.resets(hourly, now) == "the hourly token budget resets at 15:00 UTC"
    assert dispatch.resets(daily, now) == "the daily token budget resets at 2026-11-26 00:00 UTC"
    assert dispatch.resets(decision(False, None, None, ("at_capacity",)), now) == ""


@pytest.mark.parametrize(
    ("epic", "gate"), [("E1", Gate.REVIEW), ("E2", Gate.LAND), (None, Gate.LAND)]
)
def test_the_gate_follows_the_review_epics(epic: str | None, gate: Gate) -> None:
    assert dispatch.gate(epic, frozenset({"E1"})) is gate


@pytest.mark.parametrize(
    ("limit", "spent", "over"),
    [(None, 1e9, False), (2.0, 1.99, False), (2.0, 2.0, True), (2.0, 2.5, True), (0.0, 0.0, True)],
)
def test_the_budget(limit: float | None, spent: float, over: bool) -> None:
    assert dispatch.over_budget(limit, spent) is over


def test_work_apart_goes_first_and_each_part_keeps_its_order() -> None:
    ranked = ["a", "b", "c", "d", "e"]
    assert dispatch.apart_first(ranked, [True, False, True, False, False]) == [
        "b",
        "d",
        "e",
        "a",
        "c",
    ]
    with pytest.raises(ValueError):
        dispatch.apart_first(ranked, [True])


def counts(pending: int = 0, in_progress: int = 0, deps: int = 0, backing: int = 0) -> QueueCounts:
    by_status = {Status.PENDING.value: pending, Status.IN_PROGRESS.value: in_progress}
    return QueueCounts(
        ready=0,
        lease_expired=0,
        waiting_on_dependencies=deps,
        backing_off=backing,
        by_status={k: v for k, v in by_status.items() if v},
        wip_global_used=0,
        wip_global_limit=0,
        wip_agent_used=0,
        wip_agent_limit=0,
        wip_remaining=0,
    )


@pytest.mark.parametrize(
    ("queue", "landing", "stuck", "idle"),
    [
        (counts(), [], False, True),
        (counts(in_progress=1), [], True, False),  # running work may bring more
        (counts(pending=1, backing=1), [], True, False),
        (counts(), ["queued"], False, False),  # a submission waits to land
        (counts(), ["review"], False, False),
        (counts(), ["held", "held"], False, True),  # held for a person: nothing to do here
        (counts(pending=2), [], False, False),
        (counts(pending=2), [], True, True),  # ready work that can never start here
        (counts(pending=2, deps=2), [], False, True),  # all of it waits on dependencies
    ],
)
def test_idle(queue: QueueCounts, landing: list[str], stuck: bool, idle: bool) -> None:
    assert dispatch.idle(queue, landing, stuck) is idle


def finish(
    outcome: worker_output.Outcome = "failure",
    message: str = "",
    tokens: int = 0,
    **more: Any,
) -> worker_output.Finish:
    return worker_output.Finish(outcome, worker_output.Usage(tokens, tokens), message, **more)


HOLDING = settle.Standing(Status.IN_PROGRESS, assigned_to="claude-1")
SUBMITTED = settle.Standing(Status.NEEDS_REVIEW, submitted_by="claude-1")
TAKEN = settle.Standing(Status.NEEDS_REVIEW, submitted_by="claude-1", submitted_commit="c0ffee")
DONE = settle.Standing(Status.DONE, submitted_by="claude-2", submitted_commit="c0ffee")


@pytest.mark.parametrize(
    ("ended", "standing", "outcome", "release", "take", "tell_auth"),
    [
        # Holding it still: the attempt counts, unless the provider (or the autopilot) is
        # to blame.
        (finish("failure"), HOLDING, "failure", Status.FAILED, False, False),
        (finish("success"), HOLDING, "success", Status.FAILED, False, False),  # not submitted
        (finish("context_limit"), HOLDING, "context_limit", Status.FAILED, False, False),
        (finish("rate_limited"), HOLDING, "rate_limited", Status.PENDING, False, False),
        (finish("auth"), HOLDING, "auth", Status.PENDING, False, True),
        (finish("failure", DRAINED), HOLDING, "failure", Status.PENDING, False, False),
        # Its CLI refused a tool it needed: as a refused login.
        (finish("failure", denied=("Bash",)), HOLDING, "auth", Status.PENDING, False, True),
        # Submitted: taken, and nothing else.
        (finish("success"), SUBMITTED, "success", None, True, False),
        (finish("auth"), SUBMITTED, "auth", None, True, False),
        (finish("success", denied=("Bash",)), SUBMITTED, "success", None, True, False),
        # Submitted and already taken (by another autopilot recovering it): left.
        (finish("success"), TAKEN, "success", None, False, False),
        (finish("auth"), TAKEN, "auth", None, False, True),
        # Lost: its lease lapsed and another agent holds it, or it was moved meanwhile.
        (
            finish("failure"),
            settle.Standing(Status.IN_PROGRESS, "claude-2"),
            "failure",
            None,
            False,
            False,
        ),
        (
            finish("failure", denied=("Bash",)),
            settle.Standing(Status.DONE),
            "auth",
            None,
            False,
            True,
        ),
        (
            finish("success"),
            settle.Standing(Status.NEEDS_REVIEW, submitted_by="claude-2"),
            "success",
            None,
            False,
            False,
        ),
    ],
)
def test_how_a_run_settles(
    ended: worker_output.Finish,
    standing: settle.Standing,
    outcome: worker_output.Outcome,
    release: Status | None,
    take: bool,
    tell_auth: bool,
) -> None:
    settled = settle.settle(ended, standing, "claude-1")
    assert settled.finish.outcome == outcome
    assert settled.finish.message == ended.message and settled.finish.usage == ended.usage
    assert settled.release == release
    assert settled.take is take
    assert settled.tell_auth is tell_auth
    assert settled.holding is (standing is HOLDING)
    # Whichever way the attempt ended, a run that no longer holds its task is charged apart.
    assert settled.charge is (standing is not HOLDING)


@pytest.mark.parametrize(
    ("ended", "recorded"),
    [
        (finish("success"), False),  # nothing used, nothing wrong: nothing to record
        (finish("success", tokens=10), True),
        (finish("failure"), True),
        (finish("rate_limited"), True),
        (finish("failure", DRAINED), False),  # the autopilot stopped it
        (finish("failure", DRAINED, tokens=10), True),  # what it used still counts
        (finish("failure", "stopped", limit="memory limit reached"), False),
    ],
)
def test_what_goes_on_the_providers_record(ended: worker_output.Finish, recorded: bool) -> None:
    assert settle.recorded(ended) is recorded


@pytest.mark.parametrize(
    ("ended", "standing", "release"),
    [
        (finish("failure", "exit code 1"), HOLDING, Status.PENDING),  # it stopped as told
        (finish("success"), HOLDING, Status.PENDING),
        (finish("success"), SUBMITTED, None),  # it submitted first: taken, not a drain's
    ],
)
def test_a_run_the_drain_told_to_stop_is_handed_back_at_no_cost(
    ended: worker_output.Finish, standing: settle.Standing, release: Status | None
) -> None:
    settled = settle.settle(ended, standing, "claude-1", told_to_stop=True)
    assert settled.release == release
    assert settled.take is (standing is SUBMITTED)
    if standing is HOLDING:
        assert settled.finish.message == DRAINED and settle.judged(settled.finish) == "success"
    # Not told, the same run still holding is a failed attempt.
    untold = settle.settle(finish("failure", "exit code 1"), HOLDING, "claude-1")
    assert untold.release == Status.FAILED


def test_every_outcome_has_a_routing_outcome() -> None:
    assert set(settle.ROUTING_OUTCOME) == set(get_args(worker_output.Outcome))


@pytest.mark.parametrize(
    ("limit", "silent", "drained", "why"),
    [
        ("", 10.0, False, ""),  # it spoke within hang_seconds: it runs on
        ("", 60.0, False, ""),  # exactly at the limit is not past it
        ("", 60.5, False, "silent"),
        ("", 0.0, True, "drained"),  # the grace ended, whatever it was doing
        ("", 99.0, True, "drained"),
        ("memory limit reached", 0.0, False, "memory limit reached"),
        ("memory limit reached", 99.0, True, "memory limit reached"),  # the limit says most
    ],
)
def test_why_a_running_cli_is_stopped(limit: str, silent: float, drained: bool, why: str) -> None:
    assert worker_process.stop_reason(limit, silent, 60.0, drained) == why


@pytest.mark.parametrize(
    ("drained", "limit", "message"),
    [
        (True, "", DRAINED),
        (True, "memory limit reached", DRAINED),  # stopped by the drain: blameless
        (False, "memory limit reached", "stopped"),  # the fence names the limit (limited)
        (False, "", "hung: silent for 60 s"),
    ],
)
def test_how_a_stopped_run_ended(drained: bool, limit: str, message: str) -> None:
    ended = worker_process.stopped(drained, limit, 60.0)
    assert (ended.outcome, ended.message, ended.usage) == (
        "failure",
        message,
        worker_output.Usage(),
    )
    # A drained run is blameless and off the provider's record; a hung one is neither.
    assert settle.settle(ended, HOLDING, "claude-1").release == (
        Status.PENDING if drained else Status.FAILED
    )
    assert settle.recorded(ended) is not drained


@pytest.mark.parametrize(
    ("ended", "reason"),
    [
        (worker_process.stopped(False, "", 15, paused=True), PAUSED),
        (worker_process.stopped(True, "", 15), DRAINED),
        (
            worker_output.Finish("failure", worker_output.Usage(), "tests fail"),
            "worker ended (failure): tests fail",
        ),
    ],
)
def test_a_pause_or_a_drain_is_said_as_what_it_was(
    ended: worker_output.Finish, reason: str
) -> None:
    assert settle.release_reason(ended) == reason


def test_a_submission_taken_again_is_not_said_to_bring_zero_commits() -> None:
    start, tip = "a" * 40, "b" * 40
    assert submitted("w", "T1", 2, "wvo/T1", start, tip) == (
        "w submitted T1: 2 new commit(s) on wvo/T1 (aaaaaaaaaaaa..bbbbbbbbbbbb)"
    )
    again = submitted("w", "T1", 0, "wvo/T1", start, tip)
    assert "0 new commit" not in again and "again: wvo/T1 is at it already" in again
