"""Agent-written text where a person reads it (pure). Every line the CLI, the autopilot and
the logs show a person passes through `plain` or `shown` (cli/output.py, autopilot/view.py,
cli/entry.py's log format); tests/unit/test_terminal_text.py finds any print that does not."""


def plain(text: str, limit: int = 10_000) -> str:
    """One line, no control characters, cut at `limit`: a title, reason or message an agent
    wrote, for a terminal (escape sequences could rewrite what the person sees, and a line
    break could print a forged line of its own)."""
    flat = "".join(c if c.isprintable() else " " for c in text)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def shown(text: str) -> str:
    """Text of many lines (a check's output, a context section): its line breaks and tabs
    kept, every other control character a space."""
    return "".join(c if c.isprintable() or c in "\n\t" else " " for c in text)
