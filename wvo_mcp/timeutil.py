"""Timestamps as fixed-width ISO-8601 UTC text, whose text order is their time order.

Timestamps are stored as fixed-width ISO-8601 UTC text: readable in sqlite3, and their
lexicographic order is their time order, so indexes and comparisons work on the text."""

from datetime import UTC, datetime, timedelta


def now() -> datetime:
    return datetime.now(UTC)


def to_text(moment: datetime) -> str:
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # Formatted field by field: strftime is slower, and its %Y is not zero-padded everywhere.
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


def from_text(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def after(moment: datetime, seconds: float) -> str:
    return to_text(moment + timedelta(seconds=seconds))
