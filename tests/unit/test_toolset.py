"""Lean input schemas and WVO_TOOLS parsing (pure)."""

import pytest

from wvo_mcp.edge.toolset import PROFILES, chosen, flat, lean, scope_allows
from wvo_mcp.errors import ValidationFailed


def test_lean_drops_titles_and_null_options_but_keeps_constraints() -> None:
    schema = {
        "title": "Args",
        "type": "object",
        "properties": {
            "title": {"title": "Title", "type": "string", "minLength": 1, "maxLength": 200},
            "id": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 100},
            "agent_id": {
                "anyOf": [{"type": "string", "maxLength": 200}, {"type": "null"}],
                "default": None,
                "title": "Agent Id",
                "description": "who",
            },
            "either": {"anyOf": [{"type": "string"}, {"type": "array"}, {"type": "null"}]},
            "limit": {"default": 5, "type": "integer", "maximum": 100},
            "files": {"default": [], "type": "array"},
            "snapshot": {"default": False, "type": "boolean"},
            "count": {"default": 0, "type": "integer"},
        },
    }
    assert lean(schema) == {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 200},
            "id": {"type": "string", "minLength": 2},  # an id's length goes with its pattern
            "agent_id": {"type": "string", "maxLength": 200, "description": "who"},
            # A null option without a null default is a real choice: kept.
            "either": {"anyOf": [{"type": "string"}, {"type": "array"}, {"type": "null"}]},
            "limit": {"default": 5, "type": "integer", "maximum": 100},
            # An empty default goes without saying; a zero is a number it may not guess.
            "files": {"type": "array"},
            "snapshot": {"type": "boolean"},
            "count": {"default": 0, "type": "integer"},
        },
    }


def test_chosen_reads_profiles_tools_and_all() -> None:
    known = ["plan_next", "claim_task", "task_create", "sandbox_run"]
    assert chosen("all", known) == set(known) == chosen("", known)
    assert chosen("sandbox_run, plan_next", known) == {"sandbox_run", "plan_next"}
    with pytest.raises(ValidationFailed, match="'nope'"):
        chosen("worker,nope", known)


def test_flat_keeps_paragraphs_and_drops_indentation() -> None:
    assert flat("One line\n        goes on.\n\n        Second.") == "One line goes on.\nSecond."


def test_the_merge_queue_is_read_by_agents_and_planners_not_by_a_run_about_one_task() -> None:
    assert "landing_queue" in PROFILES["planner"] and "landing_queue" in PROFILES["operator"]
    assert "landing_queue" not in PROFILES["worker"]
    assert scope_allows("planner", "landing_queue")
    assert not scope_allows("worker", "landing_queue")
    assert not scope_allows("reviewer", "landing_queue")
