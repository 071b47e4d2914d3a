"""The merge queue's ear: what the forge's webhooks said of the pull requests it follows.

The webhook on `serve --http` (edge/deliveries.py) writes each delivery's news of a pull
request to the database (services/pull_news.py), whichever process or host received it; the
autopilot that follows the pull request reads its repository's news on each pass, and a
pull request whose news is worth a look (rules/pull_news.worth_a_look) is looked at now,
not a poll later. Whether deliveries come at all (news heard within a day) decides how
often a pull request is looked at regardless: every `--forge-poll` seconds without them,
every `--forge-safety-poll` with them, as the net for a delivery the forge lost (the spacing
itself: pull_requests.py's `PullRequests._spacing`).

Carries out `rules/pull_news.py` for autopilot/landing/pull_requests.py."""

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial

from wvo_mcp import timeutil
from wvo_mcp.rules import pull_news
from wvo_mcp.rules.pull_news import Heard
from wvo_mcp.rules.pulls import Requirements
from wvo_mcp.rules.text import ForgeKind
from wvo_mcp.services import pull_news as news_rows
from wvo_mcp.store.base import Database

LAG = timedelta(seconds=30)  # news read again this far back: a slow commit lands late


class Listening:
    """One repository's news, as one autopilot hears it."""

    def __init__(self, db: Database, kind: ForgeKind, now: datetime) -> None:
        self.db = db
        self.kind = kind
        self.repository = ""  # owner/name as the forge names it: set before the first read
        self.events = False  # deliveries come: news was heard within a day
        self._since = now
        self._seen: dict[int, str] = {}  # news ids read, with when they were heard
        self._heard: dict[int, tuple[str, Heard]] = {}  # landing id -> its head, what was heard
        self.outsiders: set[str] = set()  # reviewers found not to steer, lowercase
        self.unheeded: list[pull_news.News] = []  # their reviews, as the last read heard them

    async def start(self, repository: str, now: datetime) -> None:
        """Whether `repository`'s deliveries come: news heard within the day before `now`."""
        self.repository = repository
        found = await self.db.read(partial(news_rows.latest, kind=self.kind,
                                           repository=repository, now=now))  # fmt: skip
        self.events = found is not None

    async def hear(
        self, pulls: Mapping[int, tuple[int, str]], required: Requirements, now: datetime
    ) -> set[int]:
        """The landings (by id, each with its pull request's number and verified head in
        `pulls`) whose news since the last read is worth a look now."""
        since = self._since - LAG
        rows = await self.db.read(partial(news_rows.since, kind=self.kind,
                                          repository=self.repository, at=since))  # fmt: skip
        fresh = [r for r in rows if r.id not in self._seen]
        self._seen = {i: at for i, at in self._seen.items() if at >= timeutil.to_text(since)}
        self._seen.update((r.id, r.at) for r in fresh)
        self._since = now
        if fresh:
            self.events = True
        news = [r.news for r in fresh]
        wanted = pull_news.ignoring(news, frozenset(self.outsiders))
        self.unheeded = [n for n in news if n not in wanted]
        due = set()
        for landing, (number, head) in pulls.items():
            mine = [n for n in wanted if pull_news.matches(n, number, head)]
            if not mine:
                continue
            was, heard = self._heard.get(landing, (head, Heard()))
            was_heard = heard if was == head else pull_news.restacked(heard)
            heard = pull_news.hear(was_heard, mine, head, self.kind)
            self._heard[landing] = (head, heard)
            if pull_news.worth_a_look(heard, required):
                due.add(landing)
        return due

    def looked(self, landing: int, head: str, approvers: frozenset[str] | None = None) -> None:
        """A look read the pull request at `head`: what was heard is old news, and the
        approvals it counted (None: its reviews were not judged) are those heard."""
        was, heard = self._heard.get(landing, (head, Heard()))
        if was != head:
            heard = pull_news.restacked(heard)
        self._heard[landing] = (head, pull_news.looked(heard, approvers))

    def forget(self, landing: int) -> None:
        self._heard.pop(landing, None)
