"""Named SQL, one folder per dialect: its queries.sql and its numbered migrations.

Named SQL, one folder per dialect (`sqlite/`, `postgres/`): every statement lives in the
dialect's queries.sql under a `-- name: ...` header (the same names in both), schema changes
in the dialect's numbered files under migrations/."""

import re
from functools import cache
from importlib import resources
from typing import Literal

Dialect = Literal["sqlite", "postgres"]

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    parts = _HEADER.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice in queries.sql")
        lines = [line for line in body.strip().splitlines() if not line.startswith("--")]
        queries[name] = "\n".join(lines).strip()
    return queries


@cache
def queries(dialect: Dialect = "sqlite") -> dict[str, str]:
    folder = resources.files(__package__).joinpath(dialect)
    return parse_queries(folder.joinpath("queries.sql").read_text())


@cache
def migrations(dialect: Dialect = "sqlite") -> list[tuple[int, str, str]]:
    """(version, file name, script) in version order."""
    found = []
    for entry in resources.files(__package__).joinpath(dialect, "migrations").iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text()))
    found.sort()
    versions = [version for version, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return found
