"""The facade (wvo_mcp/orchestrator/): one mixin per area, joined into Orchestrator.

A name defined in two mixins would be resolved silently by the MRO, and a method lost in the
split would only fail where it is called: both are refused here."""

from pathlib import Path

from wvo_mcp import orchestrator
from wvo_mcp.orchestrator import Orchestrator

# Orchestrator's public methods when it was one class (wvo_mcp/orchestrator.py), less
# `verify`, which nothing called.
# fmt: off
PUBLIC = [
    "adopt_target", "agents_view", "answer", "approve", "ask", "autopilot_beat",
    "autopilot_runs", "autopilot_start", "autopilot_want", "board_cards", "board_changes",
    "board_column", "board_view", "charge_task", "check_counted", "check_flaked", "checkpoint",
    "checkpoint_diff", "checkpoints", "claim", "claim_review", "close", "completions",
    "context_history", "context_markdown", "context_read", "context_write", "create_tasks",
    "delivered", "delivered_issue", "delivered_run", "done_per_hour", "drain", "export_tasks",
    "forge_claim", "forge_done", "forge_post", "forge_release", "gate", "get_task",
    "hand_back", "health_report", "heartbeat", "inbox", "issue_comment", "keep_unsynced",
    "landed", "landing_claims", "landing_queue", "landing_view", "last_event_id",
    "latest_review", "list_tasks", "note", "notes_for", "open", "outsider_said", "pause",
    "plan_next", "provider_status", "quarantine", "quarantined", "questions_under",
    "record_run", "record_usage", "red_tasks", "redirect", "register_agent", "reject",
    "release_orphans", "requeue", "resume", "review", "reviewed", "reviews_waiting",
    "rollback", "route_task", "route_view", "run_charges", "schedules", "schedules_due",
    "status_report", "submit_commit", "synced_repositories", "take_submission", "task_landed",
    "task_view", "tasks_under", "tell", "token_add", "token_extend", "token_find",
    "token_list", "token_revocations", "token_revoke", "token_used", "unquarantine",
    "unschedule", "unsynced", "untaken_submissions", "update_and_claim", "update_roadmap",
    "update_status",
]
# fmt: on

MAX_LINES = 300


def test_orchestrator_keeps_every_public_method_it_had() -> None:
    assert len(PUBLIC) == 103
    lost = [name for name in PUBLIC if not callable(getattr(Orchestrator, name, None))]
    assert lost == []


def test_no_public_name_is_defined_in_two_facade_classes() -> None:
    where: dict[str, list[str]] = {}
    for cls in Orchestrator.__mro__[:-1]:  # all but object
        for name in vars(cls):
            if not name.startswith("_"):
                where.setdefault(name, []).append(cls.__name__)
    twice = {name: classes for name, classes in where.items() if len(classes) > 1}
    assert twice == {}


def test_every_facade_module_stays_short() -> None:
    folder = Path(orchestrator.__file__).parent
    modules = sorted(folder.glob("*.py"))
    assert len(modules) > 1
    long = {
        path.name: n for path in modules if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
