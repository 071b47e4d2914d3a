"""Roadmap files: a backlog a person edits as YAML (or JSON), read and written as one batch.

Roadmap files: a human-edited YAML backlog (or the same document as JSON, which parses
~20x faster at 100k tasks), imported as one all-or-nothing batch."""

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.models import MAX_METADATA_DEPTH, ScheduledSpec, TaskSpec

FORMAT_VERSION = 1


# libyaml's loader when PyYAML was built with it: ~7x faster than the pure-Python one.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(text: str, source: str = "roadmap", *, as_json: bool = False) -> list[TaskSpec]:
    too_deep = ValidationFailed(
        f"{source} is nested too deeply to read; a task's metadata may nest at most "
        f"{MAX_METADATA_DEPTH} levels"
    )
    try:
        document = json.loads(text) if as_json else yaml.load(text, Loader=_YamlLoader)
    except (yaml.YAMLError, ValueError) as exc:
        if "maximum nesting depth" in str(exc):  # PyYAML from 6.0.4 stops at 1000 levels
            raise too_deep from None
        kind = "JSON" if as_json else "YAML"
        raise ValidationFailed(f"{source} is not valid {kind}: {exc}") from None
    except RecursionError:
        # The parsers recurse per level: thousands of nested brackets exhaust the stack.
        raise too_deep from None
    if not isinstance(document, dict) or not isinstance(document.get("tasks"), list):
        raise ValidationFailed(f"{source}: expected a mapping with a `tasks:` list")
    version = document.get("version", FORMAT_VERSION)
    if type(version) is not int or version != FORMAT_VERSION:  # True == 1.0 == 1 in Python
        raise ValidationFailed(f"{source}: version {version!r} is unknown; expected 1")
    specs: list[TaskSpec] = []
    for index, entry in enumerate(document["tasks"]):
        label = f"{source}: task #{index + 1}"
        if isinstance(entry, dict) and "id" in entry:
            label += f" ({entry['id']})"
        try:
            scheduled = isinstance(entry, dict) and "every" in entry
            specs.append((ScheduledSpec if scheduled else TaskSpec).model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: "
                f"{err['msg'].removeprefix('Value error, ')}"
                for err in exc.errors()
            )
            raise ValidationFailed(f"{label}: {problems}") from None
    return specs


def load(path: Path) -> list[TaskSpec]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationFailed(f"cannot read {path}: {exc.strerror}") from None
    return parse(text, str(path), as_json=path.suffix == ".json")


def dump(tasks: list[dict[str, Any]], *, as_json: bool = False) -> str:
    document = {"version": FORMAT_VERSION, "tasks": tasks}
    if as_json:
        return json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    header = "# wvo-mcp roadmap: `wvo-mcp import FILE` loads it as one batch.\n"
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
