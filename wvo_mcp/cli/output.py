"""How commands answer on stdout: JSON, a table, or a line at once."""

import json
from typing import Any

from wvo_mcp.rules.text import plain


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def table(header: list[str], rows: list[list[Any]]) -> None:
    if not rows:
        print("  (none)")
        return
    cells = [header, *[[plain(str(c)) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def say(message: str) -> None:
    print(message, flush=True)
