"""Which task runs next on which slot, and who reviews it (pure); command lines: worker_config.py.

What the autopilot launches, decided from what it has read (pure: the loop reads the
database and git, asks these, and applies the answer): which task on which slot, and which
provider reviews a submission (`reviewer`).

Carries out `rules/acp_agents.py` and `rules/routing.py`."""

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from wvo_mcp.autopilot.slots import Slot
from wvo_mcp.models import QueueCounts, RouteDecision
from wvo_mcp.rules import acp_agents, routing
from wvo_mcp.rules.transitions import Gate, Status

T = TypeVar("T")

BUDGETS = ("over_hourly_budget", "over_daily_budget")


def reviewer(author: str, slots: Sequence[Slot], free: Sequence[Slot]) -> Slot | None:
    """Who reviews a submission: a free worker of another provider than its author's, else
    at least another agent than its author, never one whose agent would take configuration
    from the checkout it reviews (acp_agents.Agent.reviews); None: it waits for one."""
    provider = next((s.provider for s in slots if s.agent_id == author), "")
    free = [s for s in free if s.kind.kind != "acp" or acp_agents.AGENTS[s.kind.agent].reviews]
    return next((s for s in free if s.provider != provider), None) or next(
        (s for s in free if s.agent_id != author), None
    )


def placement(decision: RouteDecision, free: Sequence[Slot]) -> tuple[Slot, str] | None:
    """The free slot a routed task goes to, with its model; None: it waits."""
    slot = next((s for s in free if s.provider == decision.provider), None)
    if not decision.routed or slot is None or decision.model is None:
        return None
    return slot, decision.model


def never(decision: RouteDecision, providers: Collection[str], budgets_too: bool = False) -> bool:
    """Routing will not send this task to any of `providers` (where this autopilot runs
    workers), whatever time brings (`budgets_too`: or until a token budget resets, which
    `--until-empty` does not wait for)."""
    if decision.routed:
        return decision.provider not in providers
    whys = routing.PERMANENT + (BUDGETS if budgets_too else ())
    return all(a.why in whys for a in decision.alternatives)


def resets(decision: RouteDecision, now: datetime) -> str:
    """When the budgets that hold a task back reset (UTC windows), as a sentence; ''."""
    whys = {a.why for a in decision.alternatives}
    if "over_daily_budget" in whys:
        at = (now + timedelta(days=1)).strftime("%Y-%m-%d 00:00 UTC")
        return f"the daily token budget resets at {at}"
    if "over_hourly_budget" in whys:
        hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return f"the hourly token budget resets at {hour.strftime('%H:%M UTC')}"
    return ""


def gate(epic_id: str | None, review_epics: Collection[str]) -> Gate:
    """How far its holder may finish a task: the autopilot lands it, behind a review where
    its epic asks for one."""
    return Gate.REVIEW if epic_id in review_epics else Gate.LAND


def over_budget(limit: float | None, spent: float) -> bool:
    return limit is not None and spent >= limit


def apart_first(ranked: Sequence[T], clashes: Sequence[bool]) -> list[T]:
    """Ready work that clashes with nothing running or queued goes first; the order holds
    within each part (a preference, never a lock)."""
    apart = [task for task, clash in zip(ranked, clashes, strict=True) if not clash]
    near = [task for task, clash in zip(ranked, clashes, strict=True) if clash]
    return apart + near


def working(counts: QueueCounts) -> bool:
    """Work runs, or waits out a retry's back-off: more may come of it."""
    return bool(counts.by_status.get(Status.IN_PROGRESS, 0) or counts.backing_off)


def open_work(counts: QueueCounts) -> int:
    """Pending tasks that wait on no dependency."""
    return counts.by_status.get(Status.PENDING, 0) - counts.waiting_on_dependencies


def idle(counts: QueueCounts, landing_states: Sequence[str], stuck: bool) -> bool:
    """Nothing left that a worker here could take: no ready, backing-off or running work,
    no submission waiting for a review or to land, or only ready work that can never start
    here (`stuck`)."""
    if working(counts):
        return False
    if any(state != "held" for state in landing_states):
        return False
    return open_work(counts) <= 0 or stuck
