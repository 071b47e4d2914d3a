"""Lean input schemas and WVO_TOOLS parsing (pure)."""

import pytest

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.toolset import chosen, flat, lean


def test_lean_drops_titles_and_null_options_but_keeps_constraints() -> None:
    schema = {
        "title": "Args",
        "type": "object",
        "properties": {
            "title": {"title": "Title", "type": "string", "minLength": 1, "maxLength": 200},
            "id": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2},
            "agent_id": {
                "anyOf": [{"type": "string", "maxLength": 200}, {"type": "null"}],
                "default": None,
                "title": "Agent Id",
                "description": "who",
            },
            "either": {"anyOf": [{"type": "string"}, {"type": "array"}, {"type": "null"}]},
            "limit": {"default": 5, "type": "integer", "maximum": 100},
        },
    }
    assert lean(schema) == {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 200},
            "id": {"type": "string", "minLength": 2},
            "agent_id": {"type": "string", "maxLength": 200, "description": "who"},
            # A null option without a null default is a real choice: kept.
            "either": {"anyOf": [{"type": "string"}, {"type": "array"}, {"type": "null"}]},
            "limit": {"default": 5, "type": "integer", "maximum": 100},
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
