"""Every task id a new task may take makes valid git names for its autopilot branch and its
refs (git/refs.py), and an id that would not is refused at creation saying the rule."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from wvo_mcp import roadmap
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.git.refs import branch_name, ref_name, valid_ref
from wvo_mcp.models import TaskSpec

IDS = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}\Z")


@given(IDS)
def test_any_task_id_makes_a_valid_branch_and_ref(task_id: str) -> None:
    """A task of an id made before the rule (a trailing '.') can run too."""
    assert valid_ref(f"refs/heads/{branch_name(task_id)}"), branch_name(task_id)
    assert valid_ref(ref_name(task_id, 1)), ref_name(task_id, 1)


@given(IDS)
def test_a_new_task_id_is_refused_only_for_a_trailing_dot(task_id: str) -> None:
    try:
        TaskSpec(id=task_id, title="t")
    except ValidationError as refused:
        assert task_id.endswith("."), refused
        assert "end a task id with a letter, a digit or one of _ - : /" in str(refused)
    else:
        assert not task_id.endswith(".")


def test_an_import_names_the_rule() -> None:
    with pytest.raises(ValidationFailed, match=r"ends with '\.'"):
        roadmap.parse("tasks:\n  - id: T1.\n    title: t\n")
