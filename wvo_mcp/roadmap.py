"""Roadmap files: a human-edited YAML backlog, imported as one all-or-nothing batch."""

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.models import TaskSpec

FORMAT_VERSION = 1


def parse(text: str, source: str = "roadmap") -> list[TaskSpec]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed(f"{source} is not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("tasks"), list):
        raise ValidationFailed(f"{source}: expected a mapping with a `tasks:` list")
    version = document.get("version", FORMAT_VERSION)
    if type(version) is not int or version != FORMAT_VERSION:  # True == 1.0 == 1 in Python
        raise ValidationFailed(f"{source}: version {version!r} is unknown; expected 1")
    specs = []
    for index, entry in enumerate(document["tasks"]):
        label = f"{source}: task #{index + 1}"
        if isinstance(entry, dict) and "id" in entry:
            label += f" ({entry['id']})"
        try:
            specs.append(TaskSpec.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ValidationFailed(f"{label}: {problems}") from None
    return specs


def load(path: Path) -> list[TaskSpec]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationFailed(f"cannot read {path}: {exc.strerror}") from None
    return parse(text, str(path))


def dump(tasks: list[dict[str, Any]]) -> str:
    header = "# wvo-mcp roadmap: `wvo-mcp import FILE` loads it as one batch.\n"
    body = yaml.safe_dump(
        {"version": FORMAT_VERSION, "tasks": tasks}, sort_keys=False, allow_unicode=True
    )
    return header + body


def write_atomically(path: Path, text: str) -> None:
    """A reader sees the old file or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
