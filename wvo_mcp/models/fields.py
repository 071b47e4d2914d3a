"""The field types and limits the contract shares: ids, names, scores, commands, moments, metadata.

Every area's models and the tools' own arguments take their constraints from here, so an id,
a folder or a moment is refused alike wherever it arrives, from a tool or a roadmap;
`json_problem` says what plain JSON is, for a task's metadata.
"""

import math
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

TaskId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"),
]


def _names_a_branch(task_id: str) -> str:
    """A new task's id: its autopilot branch (wvo/<id>) and refs must be git names."""
    if task_id.endswith("."):
        raise ValueError(
            f"task id {task_id!r} ends with '.', which git refuses at the end of a branch "
            "name (wvo/<id>): end a task id with a letter, a digit or one of _ - : /"
        )
    return task_id


# An id a new task may take (task_create, import): any TaskId that makes a branch name.
NewTaskId = Annotated[TaskId, AfterValidator(_names_a_branch)]
AgentId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Score = Annotated[int, Field(ge=1, le=20)]
StatusName = Literal[
    "pending",
    "in_progress",
    "awaiting_approval",
    "needs_review",
    "blocked",
    "done",
    "failed",
    "cancelled",
]

MAX_METADATA_BYTES = 16_384
# As deep as an MCP frame can nest at all (the SDK's JSON limit is 200); a roadmap file could
# nest deeper, and json.dumps would then fail with a RecursionError instead of refusing.
MAX_METADATA_DEPTH = 200
# One task_create call, its tasks as compact JSON (the fields given, UTF-8). A person's
# roadmap import (`wvo-mcp import`) is not capped this way.
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_BATCH_TASKS = 5000
VerifyCommand = (
    Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    | Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=4000)]],
        Field(min_length=1, max_length=200),
    ]
)


def _without_nul(value: str) -> str:
    if "\0" in value:
        raise ValueError(
            "contains a NUL character; a path is text without NUL (\\0): give a folder "
            "inside the workspace root (relative to it, or absolute), or omit it"
        )
    return value


# A folder a tool is asked to work in. Path functions raise on a NUL (ValueError: embedded
# null byte) instead of refusing, so it is refused here, where the input is typed.
FolderPath = Annotated[
    str, StringConstraints(min_length=1, max_length=1000), AfterValidator(_without_nul)
]


def _in_utc(moment: datetime) -> datetime:
    """The moment in UTC, as the store writes it. A far offset at either end of the calendar
    moves it out of the years Python's dates hold (1-9999): refused here, not an
    OverflowError when it is written."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{moment.isoformat()} is outside the dates that can be stored: once converted to "
            "UTC it must fall from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
        ) from None


# A point in time an agent or a roadmap gives: with a time zone, representable in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]


def _not_finite(number: float) -> str:
    return "NaN" if math.isnan(number) else "Infinity" if number > 0 else "-Infinity"


def json_problem(value: object, where: str) -> str | None:
    """Why `value` is not plain JSON, naming the place (`where.key.0`), or None (pure). An
    MCP frame may carry NaN and Infinity literals and a YAML roadmap dates, bytes, sets and
    non-string keys: none is JSON, so SQLite's json_valid and every reader would reject the
    stored text. Iterative, so depth cannot exhaust the stack."""
    pending: list[tuple[object, str, int]] = [(value, where, 0)]
    while pending:
        item, path, depth = pending.pop()
        if isinstance(item, dict | list) and depth >= MAX_METADATA_DEPTH:
            return (
                f"{where} is nested more than {MAX_METADATA_DEPTH} levels deep; flatten it to "
                f"at most {MAX_METADATA_DEPTH}"
            )
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    return (
                        f"{path} has the key {key!r} ({type(key).__name__}); the keys of JSON "
                        "objects are strings (quote it)"
                    )
                pending.append((inner, f"{path}.{key}", depth + 1))
        elif isinstance(item, list):
            pending.extend((inner, f"{path}.{n}", depth + 1) for n, inner in enumerate(item))
        elif isinstance(item, float) and not math.isfinite(item):
            text = _not_finite(item)
            return (
                f"{path} is {text}: JSON numbers must be finite (NaN, Infinity and -Infinity "
                f'are not JSON); give a finite number, or the string "{text}"'
            )
        elif item is not None and not isinstance(item, str | int | float):  # bool is an int
            return (
                f"{path} holds a {type(item).__name__} ({str(item)[:40]!r}), which JSON has "
                "no form for; give an object, array, string, finite number, true, false or "
                "null (quote a date: '2030-01-31')"
            )
    return None
