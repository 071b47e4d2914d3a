"""The merge queue as the store keeps it (services/landing_queue.py): entries taken from holders'
submissions, reviews claimed by one autopilot at a time, a target held under a fence, and
landings written as intents that complete once and only once. On every backend."""

import json
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest

from tests.contract.conftest import START, World, create, events_of
from wvo_mcp.errors import IllegalTransition, LeaseLost
from wvo_mcp.models import Event, UpdateResult
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Gate, Status
from wvo_mcp.services import landing_queue, moves, pulls, reviews
from wvo_mcp.services.landing_queue import Entry, Return
from wvo_mcp.store import Row, Tx

pytestmark = pytest.mark.anyio
TARGET = "main"
BASE = "0" * 40
OLD, NEW, TREE = "1" * 40, "2" * 40, "3" * 40
RUN_A, RUN_B = "autopilot-a", "autopilot-b"
LATER = START + timedelta(seconds=61)  # past a 60 s claim or target lease taken at START


def sha(n: int) -> str:
    return f"{n:040x}"


def seconds(n: float) -> datetime:
    return START + timedelta(seconds=n)


# --- helpers --------------------------------------------------------------------------------


async def waiting(orch: Orchestrator, task_id: str, author: str, gate: Gate = Gate.LAND) -> None:
    """Claim the task for `author` under `gate`; its holder submits it (needs_review)."""
    claim = await orch.claim(author, task_id, gate=gate)
    assert claim.claimed and claim.lease_token is not None, claim
    moved = await orch.update_status(task_id, Status.NEEDS_REVIEW, author, claim.lease_token)
    assert moved.status == Status.NEEDS_REVIEW


async def take(orch: Orchestrator, task_id: str, commit: str, now: datetime = START) -> Entry:
    return await orch.db.write(
        partial(
            landing_queue.take, task_id=task_id, commit=commit, base=BASE, target=TARGET, now=now
        )
    )


async def queued(orch: Orchestrator, task_id: str, commit: str, author: str) -> Entry:
    """A task with a land gate, submitted by `author` and taken into the queue."""
    await waiting(orch, task_id, author)
    return await take(orch, task_id, commit)


def as_dict(row: Row) -> dict[str, Any]:
    # sqlite3.Row iterates its values, not its column names.
    return {key: row[key] for key in row.keys()}  # noqa: SIM118


async def row_of(orch: Orchestrator, entry_id: int) -> dict[str, Any]:
    """An entry's row, with the columns Entry leaves out (its review claim)."""

    def read(tx: Tx) -> dict[str, Any]:
        row = tx.one("entry_by_id", {"id": entry_id})
        assert row is not None
        return as_dict(row)

    return await orch.db.read(read)


async def entry_of(orch: Orchestrator, entry_id: int) -> Entry:
    return landing_queue.entry(await row_of(orch, entry_id))


async def states(orch: Orchestrator, *ids: int) -> list[str]:
    return [(await entry_of(orch, i)).state for i in ids]


async def entries_of(orch: Orchestrator, task_id: str) -> list[Entry]:
    """Every open entry of a task (the queue's own listing)."""
    return [e for e, _ in await orch.db.read(landing_queue.queue) if e.task_id == task_id]


async def by_person(
    orch: Orchestrator, task_id: str, status: Status, reason: str = "not this way"
) -> UpdateResult:
    return await orch.db.write(
        partial(
            moves.update_status, settings=orch.settings, task_id=task_id, target=status,
            actor="person:ann", token=None, reason=reason, now=START, by_person=True,
        )
    )  # fmt: skip


async def hold(
    orch: Orchestrator, run: str, now: datetime = START, lease: float = 60
) -> int | None:
    until = now + timedelta(seconds=lease)
    return await orch.db.write(
        partial(landing_queue.hold_target, target=TARGET, run=run, until=until, now=now)
    )


async def start(orch: Orchestrator, run: str, fence: int, *ids: int) -> None:
    await orch.db.write(partial(landing_queue.start, target=TARGET, run=run, fence=fence, ids=ids))


async def intend(orch: Orchestrator, run: str, fence: int, *ids: int) -> int:
    return await orch.db.write(
        partial(
            landing_queue.intend, target=TARGET, run=run, fence=fence, old=OLD, new=NEW, tree=TREE,
            checks="pytest -q: exit 0", ids=ids, now=START,
        )
    )  # fmt: skip


async def complete(orch: Orchestrator, landing_id: int) -> list[str]:
    return await orch.db.write(
        partial(landing_queue.complete, settings=orch.settings, landing_id=landing_id, now=START)
    )


async def send_back(
    orch: Orchestrator,
    run: str,
    fence: int,
    entry_id: int,
    back: Return,
    hold: str | None = None,
) -> str:
    return await orch.db.write(
        partial(
            landing_queue.send_back, settings=orch.settings, target=TARGET, run=run, fence=fence,
            entry_id=entry_id, back=back, hold=hold, now=START,
        )
    )  # fmt: skip


async def returned(orch: Orchestrator, run: str, fence: int, item: Entry) -> None:
    """The lander tests the entry and returns it to a worker."""
    await start(orch, run, fence, item.id)
    back = Return("returned: the check failed", "the tail")
    assert await send_back(orch, run, fence, item.id, back) == "returned"


async def intents(orch: Orchestrator) -> list[landing_queue.Landing]:
    return await orch.db.read(partial(landing_queue.intents, target=TARGET))


async def checkpoints(orch: Orchestrator, task_id: str) -> list[dict[str, Any]]:
    def read(tx: Tx) -> list[dict[str, Any]]:
        return [as_dict(r) for r in tx.all("checkpoints_of", (task_id,))]

    return await orch.db.read(read)


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


# --- take -----------------------------------------------------------------------------------


async def test_take_records_the_commit_and_queues_one_entry(
    world: World, orch: Orchestrator
) -> None:
    await create(
        orch,
        {"id": "A", "title": "lands"},
        {"id": "B", "title": "reviewed", "metadata": {"review": True}},
        {"id": "C", "title": "lands too"},
    )
    await waiting(orch, "A", "w1")
    first = await take(orch, "A", sha(1))
    assert (first.task_id, first.target, first.base, first.commit) == ("A", TARGET, BASE, sha(1))
    assert (first.author, first.state, first.returns) == ("w1", "queued", 0)
    assert first.queued_at == first.entered_at and first.finished_at is None
    assert (await orch.get_task("A")).submitted_commit == sha(1)
    # Taken again (another autopilot, or after a crash): the same entry, nothing recorded.
    events = await events_of(orch, "A")
    again = await take(orch, "A", sha(1), seconds(5))
    assert again == first
    assert [e.id for e in await entries_of(orch, "A")] == [first.id]
    assert await events_of(orch, "A") == events
    assert kinds(events).count("submitted") == 1

    await waiting(orch, "B", "w2", Gate.REVIEW)
    reviewed = await take(orch, "B", sha(2))
    assert (reviewed.state, reviewed.queued_at, reviewed.returns) == ("review", None, 0)
    await waiting(orch, "C", "w3")
    last = await take(orch, "C", sha(3))
    assert first.position < reviewed.position < last.position
    listed = [(e.task_id, e.state, title) for e, title in await orch.db.read(landing_queue.queue)]
    assert listed == [
        ("A", "queued", "lands"),
        ("B", "review", "reviewed"),
        ("C", "queued", "lands too"),
    ]
    head = await orch.db.read(partial(landing_queue.head, target=TARGET, limit=10))
    assert [e.task_id for e in head] == ["A", "C"]  # a review waits outside the queue


async def test_take_refuses_a_task_that_is_not_a_submission(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "P", "title": "pending"})
    with pytest.raises(IllegalTransition, match="not a submission"):
        await take(orch, "P", sha(1))
    assert await entries_of(orch, "P") == []
    assert (await orch.get_task("P")).submitted_commit is None


# --- returns --------------------------------------------------------------------------------


async def test_returns_count_until_a_person_acts(world: World, orch: Orchestrator) -> None:
    await create(orch, {"id": "T", "title": "returned often", "max_attempts": 3})
    fence = await hold(orch, RUN_A)
    assert fence is not None
    counts = []
    for n in range(1, 4):
        item = await queued(orch, "T", sha(n), "w1")
        counts.append(item.returns)
        if n < 3:
            await returned(orch, RUN_A, fence, item)
            assert (await entry_of(orch, item.id)).state == "returned"
    assert counts == [0, 1, 2]
    # A person takes the task out of needs_review: its open entry closes, the count restarts.
    await by_person(orch, "T", Status.PENDING, "let me look")
    closed = await entry_of(orch, item.id)
    assert closed.state == "closed" and closed.finished_at is not None
    assert closed.reason == "person:ann moved the task to pending: let me look"
    assert await entries_of(orch, "T") == []
    fresh = await queued(orch, "T", sha(4), "w1")
    assert fresh.returns == 0
    # Cancelled by a person: closed as well, and a revived task starts again from 0.
    await by_person(orch, "T", Status.CANCELLED, "not needed")
    cancelled = await entry_of(orch, fresh.id)
    assert (cancelled.state, cancelled.reason) == (
        "closed",
        "person:ann moved the task to cancelled: not needed",
    )
    await by_person(orch, "T", Status.PENDING, "needed after all")
    assert (await queued(orch, "T", sha(5), "w1")).returns == 0
    # The returns never cost an attempt.
    assert (await orch.get_task("T")).attempts == 0


# --- reviews --------------------------------------------------------------------------------


async def test_a_review_is_claimed_by_one_autopilot_at_a_time(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "R", "title": "reviewed", "metadata": {"review": True}})
    await waiting(orch, "R", "w1", Gate.REVIEW)
    item = await take(orch, "R", sha(1))

    async def waiting_at(now: datetime) -> list[int]:
        return [e.id for e in await orch.db.read(partial(landing_queue.reviews_waiting, now=now))]

    async def claim(run: str, now: datetime) -> bool:
        until = now + timedelta(seconds=60)
        return await orch.db.write(
            partial(landing_queue.claim_review, entry_id=item.id, run=run, until=until, now=now)
        )

    assert await waiting_at(START) == [item.id]
    assert await claim(RUN_A, START)
    assert not await claim(RUN_B, seconds(30))
    assert await waiting_at(seconds(30)) == []
    row = await row_of(orch, item.id)
    assert (row["claimed_by"], row["state"]) == (RUN_A, "review")
    # A's claim ran out (it died): B may claim it.
    assert await waiting_at(LATER) == [item.id]
    assert await claim(RUN_B, LATER)
    assert not await claim(RUN_A, LATER)
    assert (await row_of(orch, item.id))["claimed_by"] == RUN_B
    # B's reviewer gave no verdict: asked again, by whoever claims it first.
    verdict = await orch.db.write(
        partial(landing_queue.reviewed, settings=orch.settings, entry_id=item.id, now=LATER)
    )
    assert verdict == "review"
    row = await row_of(orch, item.id)
    assert (row["state"], row["claimed_by"], row["claim_until"]) == ("review", None, None)
    assert await waiting_at(LATER) == [item.id]
    assert await claim(RUN_A, LATER)


async def test_an_approved_review_joins_the_back_of_the_queue(
    world: World, orch: Orchestrator
) -> None:
    await create(
        orch,
        {"id": "Q1", "title": "first"},
        {"id": "R", "title": "reviewed", "metadata": {"review": True}},
        {"id": "Q2", "title": "second"},
    )
    first = await queued(orch, "Q1", sha(1), "w1")
    await waiting(orch, "R", "w2", Gate.REVIEW)
    item = await take(orch, "R", sha(2))
    second = await queued(orch, "Q2", sha(3), "w3")
    assert first.position < item.position < second.position
    await orch.db.write(
        partial(
            landing_queue.claim_review, entry_id=item.id, run=RUN_A, until=seconds(60), now=START
        )
    )
    await orch.db.write(
        partial(reviews.review, task_id="R", commit=sha(2), reviewer="w4", verdict="approve",
                notes="good", now=seconds(10))
    )  # fmt: skip
    verdict = await orch.db.write(
        partial(landing_queue.reviewed, settings=orch.settings, entry_id=item.id, now=seconds(20))
    )
    assert verdict == "queued"
    row = await row_of(orch, item.id)
    assert (row["state"], row["claimed_by"], row["claim_until"]) == ("queued", None, None)
    assert row["position"] > second.position
    assert row["queued_at"] is not None and row["queued_at"] > item.entered_at
    head = await orch.db.read(partial(landing_queue.head, target=TARGET, limit=10))
    assert [e.task_id for e in head] == ["Q1", "Q2", "R"]
    assert await orch.db.read(partial(landing_queue.reviews_waiting, now=seconds(20))) == []
    assert (await orch.get_task("R")).status == Status.NEEDS_REVIEW
    # Asked again (a second autopilot's reviewer finished late): nothing more happens.
    again = await orch.db.write(
        partial(landing_queue.reviewed, settings=orch.settings, entry_id=item.id, now=seconds(30))
    )
    assert again == "gone"
    assert (await entry_of(orch, item.id)).position == row["position"]


async def test_a_review_asking_for_changes_gives_the_task_back(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "R", "title": "reviewed", "metadata": {"review": True}})
    await waiting(orch, "R", "w1", Gate.REVIEW)
    item = await take(orch, "R", sha(1))
    await orch.db.write(
        partial(reviews.review, task_id="R", commit=sha(1), reviewer="w2", verdict="changes",
                notes="add a test", now=seconds(10))
    )  # fmt: skip
    verdict = await orch.db.write(
        partial(landing_queue.reviewed, settings=orch.settings, entry_id=item.id, now=seconds(20))
    )
    assert verdict == "changes"
    ended = await entry_of(orch, item.id)
    assert (ended.state, ended.reason) == ("changes", "review by w2: add a test")
    assert ended.finished_at is not None
    task = await orch.get_task("R")
    assert (task.status, task.attempts) == (Status.PENDING, 0)
    moves = [(e.actor, e.from_status, e.to_status) for e in await events_of(orch, "R")]
    assert moves[-1] == ("autopilot", "needs_review", "pending")
    # Its next submission is a new entry, not a return.
    again = await queued(orch, "R", sha(2), "w1")
    assert (again.state, again.returns) == ("review", 0)
    assert again.id != item.id


# --- holding a target -----------------------------------------------------------------------


async def test_a_target_is_landed_under_one_fence_at_a_time(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "X", "title": "x"}, {"id": "Y", "title": "y"})
    x = await queued(orch, "X", sha(1), "w1")
    y = await queued(orch, "Y", sha(2), "w2")
    assert await hold(orch, RUN_A) == 1
    assert await hold(orch, RUN_A, seconds(30)) == 1  # renewed: until START + 90
    assert await hold(orch, RUN_B, seconds(31)) is None
    assert await hold(orch, RUN_B, seconds(89)) is None
    await start(orch, RUN_A, 1, x.id, y.id)
    assert await states(orch, x.id, y.id) == ["testing", "testing"]
    # A went silent: B takes the target, and A's unfinished batch is queued again.
    assert await hold(orch, RUN_B, seconds(91)) == 2
    assert await states(orch, x.id, y.id) == ["queued", "queued"]
    assert [
        e.id for e in await orch.db.read(partial(landing_queue.head, target=TARGET, limit=9))
    ] == [
        x.id,
        y.id,
    ]
    assert await hold(orch, RUN_A, seconds(92)) is None
    # Whatever A still writes under fence 1 is refused and changes nothing.
    with pytest.raises(LeaseLost, match="another autopilot lands main"):
        await start(orch, RUN_A, 1, x.id)
    assert await states(orch, x.id, y.id) == ["queued", "queued"]
    await start(orch, RUN_B, 2, x.id)
    with pytest.raises(LeaseLost):
        await orch.db.write(
            partial(landing_queue.unstart, target=TARGET, run=RUN_A, fence=1, ids=[x.id])
        )
    with pytest.raises(LeaseLost):
        await orch.db.write(partial(landing_queue.unstart_all, target=TARGET, run=RUN_A, fence=1))
    assert await states(orch, x.id, y.id) == ["testing", "queued"]
    with pytest.raises(LeaseLost):
        await intend(orch, RUN_A, 1, x.id)
    assert await intents(orch) == []
    assert await states(orch, x.id) == ["testing"]
    events = await events_of(orch, "X")
    with pytest.raises(LeaseLost):
        await send_back(orch, RUN_A, 1, x.id, Return("returned: stale", "from A"))
    with pytest.raises(LeaseLost):
        await send_back(orch, RUN_A, 1, x.id, Return("held: stale", "from A"), hold="ask")
    assert await states(orch, x.id) == ["testing"]
    assert (await orch.get_task("X")).status == Status.NEEDS_REVIEW
    assert await events_of(orch, "X") == events
    assert await checkpoints(orch, "X") == []
    # B's own writes go through.
    await orch.db.write(
        partial(landing_queue.unstart, target=TARGET, run=RUN_B, fence=2, ids=[x.id])
    )
    assert await states(orch, x.id) == ["queued"]


async def test_drop_claims_frees_what_a_run_reviewed_and_landed(
    world: World, orch: Orchestrator
) -> None:
    await create(
        orch, {"id": "R", "title": "r", "metadata": {"review": True}}, {"id": "X", "title": "x"}
    )
    await waiting(orch, "R", "w1", Gate.REVIEW)
    item = await take(orch, "R", sha(1))
    await queued(orch, "X", sha(2), "w2")
    claimed = await orch.db.write(
        partial(
            landing_queue.claim_review, entry_id=item.id, run=RUN_A, until=seconds(60), now=START
        )
    )
    assert claimed
    assert await hold(orch, RUN_A) == 1
    assert await hold(orch, RUN_B, seconds(1)) is None
    await orch.db.write(partial(landing_queue.drop_claims, run=RUN_A))
    row = await row_of(orch, item.id)
    assert (row["claimed_by"], row["claim_until"]) == (None, None)
    waiting_now = await orch.db.read(partial(landing_queue.reviews_waiting, now=seconds(1)))
    assert [e.id for e in waiting_now] == [item.id]
    assert await hold(orch, RUN_B, seconds(1)) == 2  # at once, not after A's lease ran out
    claimed = await orch.db.write(
        partial(landing_queue.claim_review, entry_id=item.id, run=RUN_B, until=seconds(61),
                now=seconds(1))
    )  # fmt: skip
    assert claimed


# --- landing --------------------------------------------------------------------------------


async def test_a_landing_completes_once(world: World, orch: Orchestrator) -> None:
    await create(orch, {"id": "X", "title": "x"}, {"id": "Y", "title": "y"})
    x = await queued(orch, "X", sha(1), "w1")
    y = await queued(orch, "Y", sha(2), "w2")
    fence = await hold(orch, RUN_A)
    assert fence == 1
    await start(orch, RUN_A, fence, x.id, y.id)
    landing_id = await intend(orch, RUN_A, fence, x.id, y.id)
    assert await states(orch, x.id, y.id) == ["landing", "landing"]
    assert [(await entry_of(orch, i)).landing_id for i in (x.id, y.id)] == [landing_id] * 2
    [found] = await intents(orch)
    assert (found.id, found.old, found.new, found.tree, found.state, found.run) == (
        landing_id, OLD, NEW, TREE, "intent", RUN_A,
    )  # fmt: skip
    assert sorted(await complete(orch, landing_id)) == ["X", "Y"]
    assert await states(orch, x.id, y.id) == ["landed", "landed"]
    for i in (x.id, y.id):
        assert (await entry_of(orch, i)).finished_at is not None
    assert await intents(orch) == []
    done = await orch.db.read(partial(landing_queue.landing, landing_id=landing_id))
    assert done is not None and done.state == "landed"
    after = await orch.db.read(partial(landing_queue.landings_after, target=TARGET))
    assert [a.id for a in after] == [landing_id]
    for task_id in ("X", "Y"):
        assert (await orch.get_task(task_id)).status == Status.DONE
        events = await events_of(orch, task_id)
        [verified] = [e for e in events if e.kind == "verified"]
        assert verified.actor == "autopilot"
        assert verified.reason == f"on tree {TREE[:12]}: pytest -q: exit 0"
        assert events[-1].to_status == "done"
        assert events[-1].reason == f"landed onto {TARGET} as {NEW[:12]}"
    # Completed again (a second autopilot found the same intent): nothing more.
    before = await events_of(orch, "X")
    assert await complete(orch, landing_id) == []
    assert await events_of(orch, "X") == before
    assert await states(orch, x.id, y.id) == ["landed", "landed"]
    assert await orch.db.read(landing_queue.queued_targets) == []


async def test_an_abandoned_landing_queues_its_entries_again(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "X", "title": "x"}, {"id": "Y", "title": "y"})
    x = await queued(orch, "X", sha(1), "w1")
    y = await queued(orch, "Y", sha(2), "w2")
    fence = await hold(orch, RUN_A)
    assert fence is not None
    await start(orch, RUN_A, fence, x.id, y.id)
    landing_id = await intend(orch, RUN_A, fence, x.id, y.id)
    await orch.db.write(partial(landing_queue.abandon, landing_id=landing_id, now=START))
    assert await states(orch, x.id, y.id) == ["queued", "queued"]
    assert [(await entry_of(orch, i)).landing_id for i in (x.id, y.id)] == [None, None]
    assert await intents(orch) == []
    gone = await orch.db.read(partial(landing_queue.landing, landing_id=landing_id))
    assert gone is not None and gone.state == "abandoned"
    assert await orch.db.read(partial(landing_queue.landings_after, target=TARGET)) == []
    # Abandoned is final: completing it afterwards lands nothing.
    assert await complete(orch, landing_id) == []
    assert await states(orch, x.id, y.id) == ["queued", "queued"]
    assert (await orch.get_task("X")).status == Status.NEEDS_REVIEW
    head = await orch.db.read(partial(landing_queue.head, target=TARGET, limit=9))
    assert [e.id for e in head] == [x.id, y.id]


async def test_intend_refuses_a_batch_a_person_changed(world: World, orch: Orchestrator) -> None:
    await create(orch, {"id": "P", "title": "p"}, {"id": "Q", "title": "q"})
    p = await queued(orch, "P", sha(1), "w1")
    q = await queued(orch, "Q", sha(2), "w2")
    fence = await hold(orch, RUN_A)
    assert fence is not None
    await start(orch, RUN_A, fence, p.id, q.id)
    await by_person(orch, "Q", Status.CANCELLED, "wrong idea")
    assert await states(orch, p.id, q.id) == ["testing", "closed"]
    with pytest.raises(LeaseLost, match="1 entr"):
        await intend(orch, RUN_A, fence, p.id, q.id)
    assert await states(orch, p.id, q.id) == ["testing", "closed"]
    assert (await entry_of(orch, p.id)).landing_id is None
    assert await intents(orch) == []
    # Tested again without it, it lands.
    landing_id = await intend(orch, RUN_A, fence, p.id)
    assert await complete(orch, landing_id) == ["P"]
    assert (await orch.get_task("Q")).status == Status.CANCELLED


async def test_a_task_cancelled_while_it_lands_stays_cancelled(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "K", "title": "k"}, {"id": "L", "title": "l"})
    k = await queued(orch, "K", sha(1), "w1")
    other = await queued(orch, "L", sha(2), "w2")
    fence = await hold(orch, RUN_A)
    assert fence is not None
    await start(orch, RUN_A, fence, k.id, other.id)
    landing_id = await intend(orch, RUN_A, fence, k.id, other.id)
    await by_person(orch, "K", Status.CANCELLED, "stop")
    # Its landing is under way: whoever completes the landing ends the entry, not the person.
    assert await states(orch, k.id) == ["landing"]
    assert await complete(orch, landing_id) == ["L"]
    ended = await entry_of(orch, k.id)
    assert ended.state == "closed" and ended.finished_at is not None
    assert ended.reason == f"landed as {NEW[:12]} after a person moved its task"
    assert (await orch.get_task("K")).status == Status.CANCELLED
    assert "verified" not in kinds(await events_of(orch, "K"))
    assert (await orch.get_task("L")).status == Status.DONE
    assert await states(orch, other.id) == ["landed"]


# --- what does not land ---------------------------------------------------------------------


async def test_a_returned_submission_starts_a_new_attempt_from_a_checkpoint(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "T", "title": "t", "max_attempts": 2})
    item = await queued(orch, "T", sha(1), "w1")
    fence = await hold(orch, RUN_A)
    assert fence is not None
    await start(orch, RUN_A, fence, item.id)
    back = Return(
        summary="returned: merge of it onto main conflicts in a.py",
        details="<<<<<<< ours\n=======\n>>>>>>> theirs",
        files=("a.py", "b/c.py"),
        target_tip=OLD,
    )
    assert await send_back(orch, RUN_A, fence, item.id, back) == "returned"
    ended = await entry_of(orch, item.id)
    assert (ended.state, ended.reason) == ("returned", back.summary)
    task = await orch.get_task("T")
    assert (task.status, task.attempts) == (Status.PENDING, 0)
    [checkpoint] = await checkpoints(orch, "T")
    assert (checkpoint["agent_id"], checkpoint["summary"], checkpoint["next_steps"]) == (
        "autopilot", back.summary, back.details,
    )  # fmt: skip
    assert json.loads(checkpoint["files"]) == ["a.py", "b/c.py"]
    assert (checkpoint["git_head"], checkpoint["git_commit"]) == (OLD, sha(1))
    assert task.latest_checkpoint is not None
    assert task.latest_checkpoint.summary == back.summary
    events = await events_of(orch, "T")
    [event] = [e for e in events if e.kind == "returned"]
    assert (event.actor, event.reason) == ("autopilot", back.summary)
    assert (events[-1].from_status, events[-1].to_status) == ("needs_review", "pending")


async def test_a_held_submission_waits_for_a_person(world: World, orch: Orchestrator) -> None:
    await create(orch, {"id": "H", "title": "h"})
    item = await queued(orch, "H", sha(1), "w1")
    fence = await hold(orch, RUN_A)
    assert fence is not None
    await start(orch, RUN_A, fence, item.id)
    back = Return("returned: conflicts in a.py", "hunks", ("a.py",))
    why = "returned 3 times"
    assert await send_back(orch, RUN_A, fence, item.id, back, hold=why) == "held"
    ended = await entry_of(orch, item.id)
    assert (ended.state, ended.reason) == ("held", f"{why}: {back.summary}")
    assert ended.finished_at is not None
    task = await orch.get_task("H")
    assert (task.status, task.attempts) == (Status.NEEDS_REVIEW, 0)
    assert await checkpoints(orch, "H") == []
    events = await events_of(orch, "H")
    assert (events[-1].kind, events[-1].actor, events[-1].reason) == (
        "held", "autopilot", f"{why}: {back.summary}",
    )  # fmt: skip
    assert "returned" not in kinds(events)
    # Held is open: a person's move closes it, and nothing lands it meanwhile.
    assert [e.id for e in await entries_of(orch, "H")] == [item.id]
    assert await orch.db.read(partial(landing_queue.head, target=TARGET, limit=9)) == []
    await by_person(orch, "H", Status.PENDING, "try again")
    assert await states(orch, item.id) == ["closed"]


# --- a person moves a task while the lander works on it -------------------------------------


async def test_an_abandoned_landing_does_not_queue_a_task_a_person_moved(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "K", "title": "k"}, {"id": "L", "title": "l"})
    k = await queued(orch, "K", sha(1), "w1")
    other = await queued(orch, "L", sha(2), "w2")
    fence = await hold(orch, RUN_A)
    assert fence is not None
    await start(orch, RUN_A, fence, k.id, other.id)
    landing_id = await intend(orch, RUN_A, fence, k.id, other.id)
    await by_person(orch, "K", Status.CANCELLED, "stop")
    await orch.db.write(partial(landing_queue.abandon, landing_id=landing_id, now=START))
    # Queued again, a cancelled task's commits would be stacked, tested and landed.
    ended = await entry_of(orch, k.id)
    assert (ended.state, ended.landing_id) == ("closed", None)
    assert ended.reason is not None and "person" in ended.reason
    assert await states(orch, other.id) == ["queued"]
    head = await orch.db.read(partial(landing_queue.head, target=TARGET, limit=9))
    assert [e.task_id for e in head] == ["L"]
    assert (await orch.get_task("K")).status == Status.CANCELLED


async def test_a_narrowed_batch_queues_again_only_tasks_still_submitted(
    world: World, orch: Orchestrator
) -> None:
    """A batch's pull request halved (autopilot/landing/batches.py): its second half queues
    again where it was, but for a task a person cancelled while the batch was out."""
    await create(orch, {"id": "A", "title": "a"}, {"id": "B", "title": "b"},
                 {"id": "C", "title": "c"})  # fmt: skip
    items = [await queued(orch, t, sha(n), "w1") for n, t in enumerate("ABC", 1)]
    fence = await hold(orch, RUN_A)
    assert fence is not None
    await start(orch, RUN_A, fence, *(i.id for i in items))
    landing_id = await intend(orch, RUN_A, fence, *(i.id for i in items))
    await by_person(orch, "C", Status.CANCELLED, "not this one")
    kept = "4" * 40
    await orch.db.write(partial(
        pulls.batch_narrowed, target=TARGET, run=RUN_A, fence=fence, landing_id=landing_id,
        kept=["A"], dropped=[(items[1].id, "B"), (items[2].id, "C")], old=OLD, new=kept,
        tree=TREE, checks="ok", now=START,
    ))  # fmt: skip
    assert await states(orch, *(i.id for i in items)) == ["landing", "queued", "closed"]
    head = await orch.db.read(partial(landing_queue.head, target=TARGET, limit=9))
    assert [e.task_id for e in head] == ["B"]
    found = await orch.db.read(partial(landing_queue.landing, landing_id=landing_id))
    assert found is not None and found.new == kept
    still = await orch.db.read(partial(landing_queue.entries_of, landing_id=landing_id))
    assert [e.task_id for e in still] == ["A"]
    # Fenced: a holder that lost the target writes nothing.
    with pytest.raises(LeaseLost):
        await orch.db.write(partial(
            pulls.batch_narrowed, target=TARGET, run=RUN_B, fence=fence, landing_id=landing_id,
            kept=[], dropped=[(items[0].id, "A")], old=OLD, new=kept, tree=TREE, checks="",
            now=START,
        ))  # fmt: skip
    assert await states(orch, items[0].id) == ["landing"]


async def test_a_landing_does_not_finish_a_task_submitted_again_meanwhile(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "K", "title": "k"})
    k = await queued(orch, "K", sha(1), "w1")
    fence = await hold(orch, RUN_A)
    assert fence is not None
    await start(orch, RUN_A, fence, k.id)
    landing_id = await intend(orch, RUN_A, fence, k.id)
    # A person sends it back while it lands, and a worker submits new work at once.
    await by_person(orch, "K", Status.PENDING, "redo it")
    await waiting(orch, "K", "w2")
    assert await complete(orch, landing_id) == []
    task = await orch.get_task("K")
    assert (task.status, task.submitted_by, task.submitted_commit) == (
        Status.NEEDS_REVIEW, "w2", None,
    )  # fmt: skip
    assert await states(orch, k.id) == ["closed"]
    # The new submission enters the queue afresh.
    fresh = await take(orch, "K", sha(2))
    assert (fresh.state, fresh.author, fresh.returns) == ("queued", "w2", 0)


async def test_a_late_send_back_of_an_entry_a_person_closed_changes_nothing(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "P", "title": "p"})
    item = await queued(orch, "P", sha(1), "w1")
    fence = await hold(orch, RUN_A)
    assert fence is not None
    await start(orch, RUN_A, fence, item.id)
    # A person sends the task back while its batch is tested; a worker submits it again.
    await by_person(orch, "P", Status.PENDING, "redo it")
    await waiting(orch, "P", "w2")
    events = await events_of(orch, "P")
    back = Return("returned: the check failed", "the tail")
    for held in (None, "returned 3 times"):
        with pytest.raises(IllegalTransition, match="'closed'"):
            await send_back(orch, RUN_A, fence, item.id, back, hold=held)
    assert await events_of(orch, "P") == events
    assert await checkpoints(orch, "P") == []
    assert (await orch.get_task("P")).status == Status.NEEDS_REVIEW
    assert await states(orch, item.id) == ["closed"]


# --- pull requests (--via pull-request) -------------------------------------------------------


async def opened(orch: Orchestrator, fence: int, task_id: str, landing_id: int, head: str) -> None:
    await orch.db.write(
        partial(pulls.pull_opened, target=TARGET, run=RUN_A, fence=fence, task_id=task_id,
                number=7, url="https://forge.invalid/pull/7", branch=f"wvo/{task_id}",
                head=head, landing_id=landing_id, now=START)
    )  # fmt: skip


async def test_a_pull_request_outlives_a_return_and_carries_the_next_submission(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "P", "title": "proposed"})
    fence = await hold(orch, RUN_A)
    assert fence is not None
    item = await queued(orch, "P", sha(1), "w1")
    await start(orch, RUN_A, fence, item.id)
    landing_id = await intend(orch, RUN_A, fence, item.id)
    await opened(orch, fence, "P", landing_id, sha(11))
    found = await orch.db.read(partial(pulls.pull_of, target=TARGET, task_id="P"))
    assert found is not None and (found.number, found.head, found.state) == (7, sha(11), "open")
    assert found.landing_id == landing_id
    await orch.db.write(partial(pulls.pull_waits, target=TARGET, task_id="P",
                                waiting="waiting for a review", now=START))  # fmt: skip
    # What the landing_queue tool, `autopilot status` and the dashboard show.
    [shown] = (await orch.landing_view(24)).pulls
    assert (shown.number, shown.url, shown.state) == (7, "https://forge.invalid/pull/7", "open")
    assert (shown.waiting, shown.title) == ("waiting for a review", "proposed")
    # Restacked: the intent lands the new head, and the next push is leased on it.
    await orch.db.write(
        partial(pulls.pull_moved, target=TARGET, run=RUN_A, fence=fence, task_id="P",
                landing_id=landing_id, old=OLD, new=sha(12), tree=TREE, checks="ok", now=START)
    )  # fmt: skip
    [intent] = await orch.db.read(partial(landing_queue.intents, target=TARGET))
    assert (intent.old, intent.new) == (OLD, sha(12))
    # A review sends it back from its landing: the intent ends, the pull request stays open.
    back = Return("returned: ann requested changes on pull request #7", "rename it")
    outcome = await orch.db.write(
        partial(landing_queue.send_back, settings=orch.settings, target=TARGET, run=RUN_A,
                fence=fence, entry_id=item.id, back=back, hold=None, now=START, was="landing")
    )  # fmt: skip
    assert outcome == "returned"
    assert await orch.db.read(partial(landing_queue.intents, target=TARGET)) == []
    await orch.db.write(partial(pulls.pull_ended, target=TARGET, task_id="P", state="open",
                                now=START, waiting="with a worker"))  # fmt: skip
    kept = await orch.db.read(partial(pulls.pull_of, target=TARGET, task_id="P"))
    assert kept is not None and kept.state == "open" and kept.landing_id is None
    assert kept.head == sha(12)
    assert (await orch.get_task("P")).status == Status.PENDING


async def test_a_pull_request_a_person_closed_blocks_its_task_with_a_question(
    world: World, orch: Orchestrator
) -> None:
    await create(orch, {"id": "Q", "title": "closed"})
    fence = await hold(orch, RUN_A)
    assert fence is not None
    item = await queued(orch, "Q", sha(1), "w1")
    await start(orch, RUN_A, fence, item.id)
    landing_id = await intend(orch, RUN_A, fence, item.id)
    await opened(orch, fence, "Q", landing_id, sha(1))
    asked = await orch.db.write(
        partial(pulls.closed_by_person, settings=orch.settings, target=TARGET, run=RUN_A,
                fence=fence, entry_id=item.id, question="closed without a merge: why?",
                now=START)
    )  # fmt: skip
    assert asked
    task = await orch.get_task("Q")
    assert task.status == Status.BLOCKED
    assert [q.task_id for q in (await orch.inbox()).questions] == ["Q"]
    assert (await entry_of(orch, item.id)).state == "closed"
    ended = await orch.db.read(partial(pulls.pull_of, target=TARGET, task_id="Q"))
    assert ended is not None and ended.state == "closed"
    # Only a person unblocks it: an agent's move is refused.
    with pytest.raises(IllegalTransition):
        await orch.update_status("Q", Status.PENDING, "w1", None)
