"""Timestamps are stored as fixed-width ISO-8601 UTC text: readable in sqlite3, and their
lexicographic order is their time order, so indexes and comparisons work on the text."""

from datetime import UTC, datetime, timedelta


def now() -> datetime:
    return datetime.now(UTC)


def to_text(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    # strftime's %Y does not zero-pad years before 1000 on every platform.
    return (
        f"{moment.year:04d}"
        + moment.strftime("-%m-%dT%H:%M:%S.")
        + f"{moment.microsecond // 1000:03d}Z"
    )


def from_text(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def after(moment: datetime, seconds: float) -> str:
    return to_text(moment + timedelta(seconds=seconds))
