"""Agent-written text where a person reads it (pure)."""


def plain(text: str, limit: int = 10_000) -> str:
    """One line, no control characters, cut at `limit`: a title, reason or message an agent
    wrote, for a terminal (escape sequences could rewrite what the person sees)."""
    flat = "".join(c if c.isprintable() else " " for c in text)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
