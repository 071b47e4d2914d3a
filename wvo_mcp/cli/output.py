"""How commands answer a person: JSON, a table or text, made safe for a terminal.

How commands answer a person: JSON, a table, a line, or text of many lines; each passes
what it shows through rules/text, since much of it an agent wrote (titles, reasons,
summaries, a check's output) and a terminal obeys the escape sequences in it."""

import json
import sys
from typing import Any

from wvo_mcp.rules.text import plain, shown


def print_json(value: Any) -> None:
    # json.dumps writes every control character as \uXXXX (ensure_ascii)
    print(json.dumps(value, indent=2, default=str))


def table(header: list[str], rows: list[list[Any]]) -> None:
    if not rows:
        print("  (none)")
        return
    cells = [header, *[[plain(str(c)) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def say(message: str = "") -> None:
    """One line on stdout, at once."""
    print(plain(message), flush=True)


def show(text: str) -> None:
    """Text of many lines on stdout, as it is but for its control characters."""
    sys.stdout.write(shown(text))
    sys.stdout.flush()


def warn(message: str) -> None:
    """One line on stderr: a refusal or a problem, for the person."""
    print(plain(message), file=sys.stderr, flush=True)
