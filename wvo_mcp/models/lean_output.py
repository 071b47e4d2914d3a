"""An answer as the agent receives it: JSON, with the optional fields left empty omitted.

Every tool's answer goes through `lean` (edge/calls.py): one walk over the models, whose
fields it works out once per model.
"""

import functools
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python


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
