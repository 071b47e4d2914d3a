"""An answer as the agent receives it: JSON, empty fields omitted, a claim's checkpoint cut.

Every tool's answer goes through `lean` (edge/calls.py): one walk over the models, whose
fields it works out once per model. A claim carries its task's last checkpoint `brief`: long
text and file lists cut, pointing to task_get.
"""

import functools
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from wvo_mcp.models.tasks import Checkpoint


def lean(value: Any) -> Any:
    """An output as the agent receives it: JSON, with every field that is optional and left
    empty (None, [], {}) omitted. The model's schema stays true: such fields have defaults,
    so they are not required."""
    if type(value) in _PLAIN:  # most values: nothing to convert
        return value
    if isinstance(value, BaseModel):
        out = {}
        for name, key, optional in _fields(type(value)):
            item = getattr(value, name)
            if optional and (item is None or item == [] or item == {}):
                continue
            out[key] = lean(item)
        return out
    if isinstance(value, list | tuple):
        return [lean(item) for item in value]
    if isinstance(value, dict):
        return {key: lean(item) for key, item in value.items()}
    return to_jsonable_python(value)


_PLAIN = frozenset({str, int, float, bool, type(None)})


@functools.cache
def _fields(model: type[BaseModel]) -> tuple[tuple[str, str, bool], ...]:
    """A model's fields as lean() walks them (name, key, optional), worked out once."""
    return tuple(
        (name, field.alias or name, not field.is_required())
        for name, field in model.model_fields.items()
    )


# A claim hands over the last checkpoint; long text stays in task_get, not in every claim.
BRIEF_CHARS = 600
BRIEF_FILES = 20


def brief(found: Checkpoint | None, task_id: str) -> Checkpoint | None:
    """The checkpoint as a claim carries it: long text and file lists cut, saying where the
    rest is."""
    if found is None:
        return None

    def cut(text: str | None) -> str | None:
        if text is None or len(text) <= BRIEF_CHARS:
            return text
        return f"{text[:BRIEF_CHARS]}... [cut: task_get('{task_id}') has all of it]"

    files = found.files
    if len(files) > BRIEF_FILES:
        files = [*files[:BRIEF_FILES], f"... {len(files) - BRIEF_FILES} more: task_get"]
    return found.model_copy(
        update={"summary": cut(found.summary), "next_steps": cut(found.next_steps), "files": files}
    )
