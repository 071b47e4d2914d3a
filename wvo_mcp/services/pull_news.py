"""What webhooks said of pull requests, as rows: written with the delivery, read by the queue.

A delivery's news (rules/pull_news.py) is written in one transaction with its record, so a
replay writes nothing; the merge queue that follows the pull request reads its repository's
news since it last read, and decides whether to look (autopilot/landing/pull_requests.py).
News is kept a day: enough for a queue that restarts, and to say whether deliveries come."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from wvo_mcp import timeutil
from wvo_mcp.rules.pull_news import News, What
from wvo_mcp.rules.text import ForgeKind
from wvo_mcp.services import webhooks
from wvo_mcp.store import Tx

KEPT = timedelta(days=1)
CHANNEL = "wvo_pull_news"  # what a write of news wakes (Database.notified; news_told)


@dataclass(frozen=True)
class Heard:
    id: int
    news: News
    at: str


def heard(
    tx: Tx, *, delivery: str, digest: str, event: str, kind: ForgeKind, repository: str,
    news: list[News], now: datetime,
) -> None:  # fmt: skip
    """The delivery recorded (a replay is refused: ValidationFailed), its news kept."""
    webhooks.record_once(tx, delivery, event, digest, now)
    stamp = timeutil.to_text(now)
    tx.run("news_forget", {"before": timeutil.to_text(now - KEPT)})
    tx.many("news_add", [
        {"forge": kind, "repository": repository.lower(), "number": n.number, "sha": n.sha[:64],
         "what": n.what, "name": n.name[:200], "state": n.state[:40], "now": stamp}
        for n in news
    ])  # fmt: skip
    if news:
        tx.run("news_told")


def since(tx: Tx, kind: ForgeKind, repository: str, at: datetime) -> list[Heard]:
    """`repository`'s news heard at `at` or later, oldest first."""
    rows = tx.all("news_since", {"forge": kind, "repository": repository.lower(),
                                 "since": timeutil.to_text(at)})  # fmt: skip
    return [Heard(int(r["id"]), News(int(r["number"]), r["sha"], _what(r["what"]), r["name"],
                                     r["state"]), r["at"]) for r in rows]  # fmt: skip


def latest(tx: Tx, kind: ForgeKind, repository: str, now: datetime) -> datetime | None:
    """When `repository`'s last news was heard (None: none in the day before `now`)."""
    found = tx.value("news_latest", {"forge": kind, "repository": repository.lower(),
                                     "since": timeutil.to_text(now - KEPT)})  # fmt: skip
    return None if found is None else timeutil.from_text(str(found))


_WHATS: dict[str, What] = {"pull": "pull", "check": "check", "suite": "suite",
                           "review": "review", "queue": "queue"}  # fmt: skip


def _what(text: str) -> What:
    return _WHATS.get(text, "pull")
