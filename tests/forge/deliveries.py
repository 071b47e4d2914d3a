"""Webhook deliveries as GitHub sends them, held to GitHub's published payload schemas
(@octokit/webhooks-schemas, pinned by tests/forge/package-lock.json): a test names the event,
the action and the fields it means; every other required field is the schema's simplest
value; the whole is validated before a test may send it."""

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

FILE = Path(__file__).parent / "node_modules/@octokit/webhooks-schemas/schema.json"
SIMPLEST = {
    "date-time": "2026-01-01T00:00:00Z",
    "uri": "https://example.invalid/",
    "uri-template": "https://example.invalid/",
    "email": "x@example.invalid",
}


def available() -> bool:
    return FILE.is_file()


@functools.cache
def _schemas() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(FILE.read_text())["definitions"]
    return found


def payload(event: str, action: str, **fields: Any) -> dict[str, Any]:
    """`event`'s `action` payload with `fields` (merged into the simplest valid one), once
    it validates; a test that builds what GitHub never sends fails here."""
    definitions = _schemas()
    schema = definitions[f"{event}${action}"]
    found = _merge(_simplest(schema), {"action": action, **fields})
    validator = Draft7Validator(
        {**schema, "definitions": definitions}, format_checker=Draft7Validator.FORMAT_CHECKER
    )
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
                for e in validator.iter_errors(found)]  # fmt: skip
    assert not problems, f"not a {event} {action} payload GitHub sends: {problems[:5]}"
    return found


def _simplest(schema: Any) -> Any:
    if "$ref" in schema:
        return _simplest(_schemas()[schema["$ref"].rsplit("/", 1)[-1]])
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged = _merge(merged, _simplest(part))
        return merged
    for key in ("oneOf", "anyOf"):
        if key in schema:
            options = schema[key]
            nulls = [o for o in options if o.get("type") == "null"]
            return None if nulls else _simplest(options[0])
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        if "null" in kind:
            return None
        kind = kind[0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: _simplest(props[name]) for name in schema.get("required", [])
                if name in props}  # fmt: skip
    return {"array": [], "integer": 1, "number": 1, "boolean": False, "null": None}.get(
        str(kind), SIMPLEST.get(schema.get("format", ""), "x")
    )


def _merge(base: Any, given: Any) -> Any:
    if isinstance(base, dict) and isinstance(given, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in given.items()}}
    return given
