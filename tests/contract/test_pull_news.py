"""What a forge's webhook said of pull requests, as the store keeps it (services/pull_news.py)
and the merge queue hears it (autopilot/landing/listening.py), on every backend: written with
its delivery's record (a replay writes nothing), read by repository since a moment, a day
kept; a landing is woken only by news worth a look at its head."""

import hashlib
from datetime import timedelta
from functools import partial

import pytest

from tests.contract.conftest import World
from wvo_mcp.autopilot.landing.listening import Listening
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.pull_news import News
from wvo_mcp.rules.pulls import Requirements
from wvo_mcp.services import pull_news

pytestmark = pytest.mark.anyio
HEAD = "a" * 40
REQUIRED = Requirements(checks=("check",), approvals=1)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def tell(orch: Orchestrator, delivery: str, *news: News, repo: str = "Team/Project") -> None:
    await orch.heard_pulls(delivery, digest(delivery), "check_run", "github", repo, list(news))


async def test_news_is_kept_with_its_delivery_and_a_replay_writes_nothing(
    world: World, orch: Orchestrator
) -> None:
    check = News(3, HEAD, "check", "check", "success")
    await tell(orch, "d-1", check)
    with pytest.raises(ValidationFailed, match="received already"):
        await tell(orch, "d-1", News(3, HEAD, "check", "check", "failure"))
    await tell(orch, "d-2", News(4, HEAD, "pull", "amy", "opened"), repo="team/other")
    found = await orch.db.read(
        partial(pull_news.since, kind="github", repository="team/project", at=world.clock.now())
    )
    assert [h.news for h in found] == [check]  # the repository's, by any case; the replay none
    gitlab = await orch.db.read(
        partial(pull_news.since, kind="gitlab", repository="team/project", at=world.clock.now())
    )
    assert gitlab == []
    world.clock.advance(25 * 3600)
    await tell(orch, "d-3", News(5, HEAD, "pull", "amy", "opened"))
    latest = await orch.db.read(partial(pull_news.latest, kind="github", repository="team/project",
                                        now=world.clock.now()))  # fmt: skip
    assert latest == world.clock.now()
    later = world.clock.now() + timedelta(days=2)  # nothing heard since: deliveries stopped
    assert await orch.db.read(partial(pull_news.latest, kind="github",
                                      repository="team/project", now=later)) is None  # fmt: skip
    kept = await orch.db.read(partial(pull_news.since, kind="github", repository="team/project",
                                      at=world.clock.now() - timedelta(days=2)))  # fmt: skip
    assert [h.news.number for h in kept] == [5]  # a day's news kept, no more


async def test_the_ear_wakes_a_landing_only_for_news_worth_a_look_at_its_head(
    world: World, orch: Orchestrator
) -> None:
    ear = Listening(orch.db, "github", world.clock.now())
    await ear.start("team/project", world.clock.now())
    assert not ear.events  # nothing heard yet: the queue polls
    pulls = {7: (3, HEAD)}  # landing 7 follows pull request #3 at HEAD
    await tell(orch, "d-1", News(3, HEAD, "pull", "wvo", "opened"))
    assert await ear.hear(pulls, REQUIRED, world.clock.now()) == set()
    assert ear.events  # deliveries come
    await tell(orch, "d-2", News(0, HEAD, "check", "check", "success"))  # a status: by commit
    assert await ear.hear(pulls, REQUIRED, world.clock.now()) == set()  # no approval yet
    await tell(orch, "d-3", News(3, "b" * 40, "review", "amy", "APPROVED"))  # an old head's
    assert await ear.hear(pulls, REQUIRED, world.clock.now()) == set()
    await tell(orch, "d-4", News(3, HEAD, "review", "amy", "APPROVED"))
    assert await ear.hear(pulls, REQUIRED, world.clock.now()) == {7}
    assert await ear.hear(pulls, REQUIRED, world.clock.now()) == set()  # read once
    ear.looked(7, HEAD, frozenset({"amy"}))  # amy's approval counted
    ear.outsiders.add("eve")
    await tell(orch, "d-5", News(3, HEAD, "review", "eve", "CHANGES_REQUESTED"))
    assert await ear.hear(pulls, REQUIRED, world.clock.now()) == set()  # eve does not steer
    # Restacked by the queue: the approval the look counted is carried to the new head, so
    # its check passing is worth a look (not the safety poll's, minutes later).
    pulls = {7: (3, "c" * 40)}
    await tell(orch, "d-7", News(3, "c" * 40, "check", "check", "success"))
    assert await ear.hear(pulls, REQUIRED, world.clock.now()) == {7}
    await tell(orch, "d-6", News(3, "c" * 40, "pull", "bob", "closed"))
    assert await ear.hear(pulls, REQUIRED, world.clock.now()) == {7}


async def test_the_ear_reads_news_committed_after_its_read_but_stamped_before_it_once(
    world: World, orch: Orchestrator
) -> None:
    """A delivery's transaction stamped before a read may commit after it: news is read
    again a while back, each once."""
    ear = Listening(orch.db, "github", world.clock.now())
    await ear.start("team/project", world.clock.now())
    pulls = {7: (3, HEAD)}
    start = world.clock.now()
    assert await ear.hear(pulls, REQUIRED, world.clock.advance(5)) == set()
    world.clock.current = start + timedelta(seconds=1)  # stamped before that read
    await tell(orch, "d-1", News(3, HEAD, "pull", "bob", "closed"))
    assert await ear.hear(pulls, REQUIRED, world.clock.advance(9)) == {7}
    ear.looked(7, HEAD)
    assert await ear.hear(pulls, REQUIRED, world.clock.advance(1)) == set()


async def test_news_wakes_a_listener_on_postgresql_and_no_one_on_sqlite(
    world: World, orch: Orchestrator
) -> None:
    """On PostgreSQL an autopilot listening (autopilot/loop.py) is woken by the news another
    process writes, once it commits; SQLite tells no one, and its readers read each pass."""
    listening = orch.db.notified(pull_news.CHANNEL)
    if orch.db.engine != "postgresql":
        assert [_ async for _ in listening] == []
        return
    await anext(listening)  # listening now: what came before is read then
    await tell(orch, "d-1", News(3, HEAD, "pull", "bob", "closed"))
    await anext(listening)  # woken by the write (a hang here would be a lost wake)
    await listening.aclose()
