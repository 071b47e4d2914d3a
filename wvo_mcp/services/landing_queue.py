"""The merge queue as the database keeps it: entries, the landing lease, intents.

One queue of entries per target branch, who lands each target now (a lease with a fencing
token), and each landing written as an intent before its ref moves, so that an autopilot
killed at any moment loses no entry and a later one never lands an entry twice. The landing
itself (stacking, checks, bisection, pull requests) is autopilot/landing/'s."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import IllegalTransition, LeaseLost
from wvo_mcp.rules.transitions import Gate, Status
from wvo_mcp.services import leases, moves, reviews, route_outcomes
from wvo_mcp.services.tasks import record_event
from wvo_mcp.store import Row, Tx

LANDER = "autopilot"
OPEN = ("review", "queued", "testing", "landing", "held")


@dataclass(frozen=True)
class Entry:
    id: int
    task_id: str
    target: str  # '' for --merge leave: verified and done on the task's own branch
    base: str
    commit: str
    author: str
    state: str
    position: int
    returns: int
    entered_at: str
    queued_at: str | None
    finished_at: str | None
    reason: str | None
    landing_id: int | None


@dataclass(frozen=True)
class Landing:
    id: int
    target: str
    old: str
    new: str
    tree: str
    checks: str
    state: str
    run: str


@dataclass(frozen=True)
class Return:
    """What the next worker starts from when a submission comes back: a checkpoint."""

    summary: str
    details: str  # the conflicting hunks, or the failing check's output tail
    files: Sequence[str] = ()
    target_tip: str | None = None  # the target it must be brought onto


def entry(row: Row) -> Entry:
    return Entry(
        id=row["id"],
        task_id=row["task_id"],
        target=row["target"],
        base=row["base"],
        commit=row["commit_sha"],
        author=row["author"],
        state=row["state"],
        position=row["position"],
        returns=row["returns"],
        entered_at=row["entered_at"],
        queued_at=row["queued_at"],
        finished_at=row["finished_at"],
        reason=row["reason"],
        landing_id=row["landing_id"],
    )


def _landing(row: Row) -> Landing:
    return Landing(
        row["id"], row["target"], row["old"], row["new"], row["tree"], row["checks"],
        row["state"], row["run"],
    )  # fmt: skip


def take(
    tx: Tx,
    *,
    task_id: str,
    commit: str,
    base: str,
    target: str,
    now: datetime,
) -> Entry:
    """The lander took a holder's submitted commit: it is recorded as the task's submission
    and enters the queue (behind a review, when the task's gate asks for one), in one
    transaction, so a crash between the two cannot happen."""
    previous = tx.one("latest_entry", {"task_id": task_id})
    if previous is not None and previous["state"] in OPEN and previous["commit_sha"] == commit:
        return entry(previous)  # taken already (by another autopilot, or before a crash)
    if previous is not None and previous["state"] in OPEN:
        raise IllegalTransition(
            f"task {task_id!r}: its earlier submission ({previous['commit_sha'][:12]}) is still "
            f"{previous['state']} in the merge queue; take this one once that one has ended"
        )
    reviews.submit_commit(tx, task_id, commit, LANDER, now)
    row = leases.task_row(tx, task_id)
    returns = 0
    if previous is not None and previous["state"] != "closed":
        returns = previous["returns"] + (previous["state"] == "returned")
    stamp = timeutil.to_text(now)
    review = row["gate"] == Gate.REVIEW
    tx.run(
        "insert_entry",
        {
            "task_id": task_id,
            "target": target,
            "base": base,
            "commit": commit,
            "author": row["submitted_by"],
            "state": "review" if review else "queued",
            "returns": returns,
            "now": stamp,
            "queued_at": None if review else stamp,
        },
    )
    found = tx.one("latest_entry", {"task_id": task_id})
    assert found is not None
    return entry(found)


def open_entry(tx: Tx, task_id: str) -> Entry | None:
    row = tx.one("latest_entry", {"task_id": task_id})
    return None if row is None or row["state"] not in OPEN else entry(row)


# -- reviews --------------------------------------------------------------------------------


def reviews_waiting(tx: Tx, now: datetime, limit: int = 50) -> list[Entry]:
    rows = tx.all("reviews_waiting", {"now": timeutil.to_text(now), "limit": limit})
    return [entry(r) for r in rows]


def claim_review(tx: Tx, entry_id: int, run: str, until: datetime, now: datetime) -> bool:
    """This autopilot gives the entry to a reviewer of its own, unless another one did."""
    params = {"id": entry_id, "run": run, "until": timeutil.to_text(until)}
    return tx.run("claim_review", {**params, "now": timeutil.to_text(now)}) == 1


def reviewed(tx: Tx, settings: Settings, entry_id: int, now: datetime) -> str:
    """After a reviewer's run: an approval sends the entry to the back of its queue; a
    request for changes ends it and gives the task back (its notes reach the next attempt).
    Answers the entry's state: 'queued', 'changes', or 'review' (no verdict: asked again)."""
    row = tx.one("entry_by_id", {"id": entry_id})
    if row is None or row["state"] != "review":
        return "gone"
    found = reviews.latest_review(tx, row["task_id"], row["commit_sha"])
    stamp = timeutil.to_text(now)
    if found is None:
        tx.run("unclaim_review", {"id": entry_id})
        return "review"
    if found.verdict == "approve":
        tx.run("entry_approved", {"id": entry_id, "now": stamp})
        return "queued"
    why = f"review by {found.reviewer}: {found.notes}"[:500]
    end(tx, entry_id, "review", "changes", why, stamp)
    route_outcomes.record_attempt(tx, leases.task_row(tx, row["task_id"]), "returned", now)
    moves.update_status(
        tx, settings, row["task_id"], Status.PENDING, LANDER, None, why, now,
        landing=row["commit_sha"],
    )  # fmt: skip
    return "changes"


def renew_claims(tx: Tx, run: str, until: datetime) -> None:
    """This autopilot lives on: its reviews and the targets it lands stay its own."""
    stamp = timeutil.to_text(until)
    tx.run("renew_reviews", {"run": run, "until": stamp})
    tx.run("renew_targets", {"run": run, "until": stamp})


def drop_claims(tx: Tx, run: str) -> None:
    """An autopilot ended, or was found dead: what it reviewed or landed is free at once."""
    tx.run("drop_reviews", {"run": run})
    tx.run("release_targets", {"run": run})


# -- landing a target's queue ---------------------------------------------------------------


def hold_target(tx: Tx, target: str, run: str, until: datetime, now: datetime) -> int | None:
    """The fence under which `run` lands `target` (renewed if it already does), or None while
    another live autopilot does."""
    tx.run("insert_target", {"target": target})
    row = tx.one("target_row", {"target": target})
    assert row is not None
    stamp = timeutil.to_text(until)
    if row["holder"] == run:
        tx.run("renew_target", {"target": target, "run": run, "fence": row["fence"],
                                "until": stamp})  # fmt: skip
        return int(row["fence"])
    if row["holder"] is not None and (row["until"] or "") >= timeutil.to_text(now):
        return None
    tx.run("take_target", {"target": target, "run": run, "until": stamp, "fence": row["fence"]})
    # Batches the last holder started and did not finish go back where they were.
    tx.run("entries_unstart", {"target": target})
    return int(row["fence"]) + 1


def renew_target(tx: Tx, target: str, run: str, fence: int, until: datetime) -> bool:
    """The holder lands on: its lease moves on, unless another took the target since."""
    params = {"target": target, "run": run, "fence": fence, "until": timeutil.to_text(until)}
    return tx.run("renew_target", params) == 1


def fenced(tx: Tx, target: str, run: str, fence: int) -> None:
    """Refused (LeaseLost) unless `run` still lands `target` under `fence`."""
    row = tx.one("target_row", {"target": target})
    if row is None or row["holder"] != run or row["fence"] != fence:
        raise LeaseLost(
            f"another autopilot lands {target or 'its own branches'} now (fence "
            f"{None if row is None else row['fence']}, this one held {fence}): stop landing"
        )


def queued_targets(tx: Tx) -> list[str]:
    return [row["target"] for row in tx.all("queued_targets")]


def head(tx: Tx, target: str, limit: int) -> list[Entry]:
    return [entry(r) for r in tx.all("queue_head", {"target": target, "limit": limit})]


def start(tx: Tx, target: str, run: str, fence: int, ids: Sequence[int]) -> None:
    """Entries taken into a batch: being tested (the holder's until it lands or returns them)."""
    fenced(tx, target, run, fence)
    tx.run("entries_move", {"ids": json.dumps(list(ids)), "from": "queued", "to": "testing"})


def unstart(tx: Tx, target: str, run: str, fence: int, ids: Sequence[int]) -> None:
    """Entries of a batch that did not land and were not at fault: back in the queue."""
    fenced(tx, target, run, fence)
    tx.run("entries_move", {"ids": json.dumps(list(ids)), "from": "testing", "to": "queued"})


def unstart_all(tx: Tx, target: str, run: str, fence: int) -> None:
    """The holder could not finish its batch: all of it back in the queue."""
    fenced(tx, target, run, fence)
    tx.run("entries_unstart", {"target": target})


def intend(
    tx: Tx,
    *,
    target: str,
    run: str,
    fence: int,
    old: str,
    new: str,
    tree: str,
    checks: str,
    ids: Sequence[int],
    now: datetime,
) -> int:
    """Before the target moves: the landing as an intent, its entries in it. Refused unless
    every one of them is still in this holder's batch (a person may have moved a task)."""
    fenced(tx, target, run, fence)
    landing = tx.value(
        "insert_landing",
        {"target": target, "old": old, "new": new, "tree": tree, "checks": checks, "run": run,
         "now": timeutil.to_text(now)},
    )  # fmt: skip
    moved = tx.run("entries_landing", {"landing": landing, "ids": json.dumps(list(ids))})
    if moved != len(ids):
        raise LeaseLost(
            f"{len(ids) - moved} entr(ies) of the batch onto {target or 'their branches'} "
            "left it meanwhile (a person moved the task): test the batch again"
        )
    return int(landing)


def intents(tx: Tx, target: str) -> list[Landing]:
    return [_landing(r) for r in tx.all("landing_intents", {"target": target})]


def landing(tx: Tx, landing_id: int) -> Landing | None:
    row = tx.one("landing_by_id", {"id": landing_id})
    return None if row is None else _landing(row)


def entries_of(tx: Tx, landing_id: int) -> list[Entry]:
    return [entry(r) for r in tx.all("entries_of_landing", {"id": landing_id})]


def complete(tx: Tx, settings: Settings, landing_id: int, now: datetime) -> list[str]:
    """The target moved (or nothing had to): the landing's entries are landed and their
    tasks done, as the lander, with the checks that passed on the tree. Idempotent: a
    second call finds nothing left to do. Answers the tasks it finished."""
    found = landing(tx, landing_id)
    if found is None or found.state != "intent":
        return []
    stamp = timeutil.to_text(now)
    landed = []
    for item in (entry(r) for r in tx.all("entries_of_landing", {"id": landing_id})):
        if still_submitted(tx, item):
            landed.append(item)
        else:  # a person moved it while it landed: its commits are on the target regardless
            why = f"landed as {found.new[:12]} after a person moved its task"
            end(tx, item.id, "landing", "closed", why, stamp)
    tx.run("entries_landed", {"id": landing_id, "now": stamp})
    tx.run("landing_ends", {"id": landing_id, "state": "landed", "now": stamp})
    where = f"onto {found.target} as {found.new[:12]}" if found.old else "on its branch"
    checks = leases.Run(f"on tree {found.tree[:12]}: {found.checks}", "", "")
    for item in landed:
        moves.update_status(
            tx, settings, item.task_id, Status.DONE, LANDER, None,
            f"landed {where}", now, landing=item.commit, verified=checks,
        )  # fmt: skip
    return [item.task_id for item in landed]


def abandon(tx: Tx, landing_id: int, now: datetime) -> None:
    """The target moved elsewhere before this landing did: its entries queue again, but for
    those whose task a person moved meanwhile (close_open left them to this landing)."""
    stamp = timeutil.to_text(now)
    for item in (entry(r) for r in tx.all("entries_of_landing", {"id": landing_id})):
        if not still_submitted(tx, item):
            end(tx, item.id, "landing", "closed", "not landed: a person moved its task", stamp)
    tx.run("entries_unland", {"id": landing_id})
    tx.run("landing_ends", {"id": landing_id, "state": "abandoned", "now": stamp})


def still_submitted(tx: Tx, item: Entry) -> bool:
    """The entry's task still waits for exactly this submission: no person moved it since
    (a task sent back and submitted again has a new submission, not yet taken)."""
    row = leases.task_row(tx, item.task_id)
    return bool(row["status"] == Status.NEEDS_REVIEW and row["submitted_commit"] == item.commit)


def send_back(
    tx: Tx,
    settings: Settings,
    *,
    target: str,
    run: str,
    fence: int,
    entry_id: int,
    back: Return,
    hold: str | None,
    now: datetime,
    was: Literal["testing", "landing"] = "testing",
) -> Literal["returned", "held"]:
    """A submission that does not land: back to a worker as a new attempt, starting from a
    checkpoint with `back`; or, when `hold` says why a person must look (too many returns,
    a conflict with a person's work), held in needs_review for a person. `was` 'landing':
    its pull request came back (a review, a failed check): its landing's intent ends."""
    fenced(tx, target, run, fence)
    row = tx.one("entry_by_id", {"id": entry_id})
    assert row is not None
    if row["state"] != was:  # a person moved its task: its next submission is not this
        raise IllegalTransition(
            f"entry {entry_id} of task {row['task_id']!r} is {row['state']!r}, no longer in "
            "the batch being tested (a person moved its task): nothing recorded"
        )
    stamp = timeutil.to_text(now)
    if was == "landing":
        tx.run("landing_ends", {"id": row["landing_id"], "state": "abandoned", "now": stamp})
    task = leases.task_row(tx, row["task_id"])
    route_outcomes.record_attempt(tx, task, "held" if hold is not None else "returned", now)
    if hold is not None:
        end(tx, entry_id, was, "held", f"{hold}: {back.summary}", stamp)
        record_event(
            tx, row["task_id"], at=stamp, actor=LANDER, kind="held",
            reason=f"{hold}: {back.summary}"[:4000], lease_epoch=task["lease_epoch"],
        )  # fmt: skip
        return "held"
    end(tx, entry_id, was, "returned", back.summary, stamp)
    seq = tx.value("next_checkpoint_seq", (row["task_id"],))
    tx.run(
        "insert_checkpoint",
        (
            row["task_id"], seq, LANDER, task["lease_epoch"], back.summary[:2000],
            back.details, None, json.dumps(list(back.files)), stamp, back.target_tip,
            row["commit_sha"], None, None,
        ),
    )  # fmt: skip
    record_event(
        tx, row["task_id"], at=stamp, actor=LANDER, kind="returned",
        reason=back.summary[:4000], lease_epoch=task["lease_epoch"],
    )  # fmt: skip
    moves.update_status(
        tx, settings, row["task_id"], Status.PENDING, LANDER, None,
        f"returned to a worker: {back.summary}"[:500], now, landing=row["commit_sha"],
    )  # fmt: skip
    return "returned"


def refuse(tx: Tx, settings: Settings, *, task_id: str, back: Return, now: datetime) -> None:
    """A submission refused before it was taken (it never entered the queue, and its commits
    never reached the person's repository): a failed attempt of its task, and the next one
    starts from a checkpoint with `back` (no commit in it: there is none to restore)."""
    stamp = timeutil.to_text(now)
    task = leases.task_row(tx, task_id)
    if task["status"] != Status.NEEDS_REVIEW:  # a person moved it: not this submission's now
        raise IllegalTransition(
            f"task {task_id!r} is {task['status']!r}, no longer waiting for its submission "
            "to be taken: nothing recorded"
        )
    seq = tx.value("next_checkpoint_seq", (task_id,))
    tx.run(
        "insert_checkpoint",
        (
            task_id, seq, LANDER, task["lease_epoch"], back.summary[:2000], back.details,
            None, json.dumps(list(back.files)), stamp, back.target_tip, None, None, None,
        ),
    )  # fmt: skip
    record_event(
        tx, task_id, at=stamp, actor=LANDER, kind="returned", reason=back.summary[:4000],
        lease_epoch=task["lease_epoch"],
    )  # fmt: skip
    moves.update_status(
        tx, settings, task_id, Status.FAILED, LANDER, None, back.summary[:500], now,
        landing="",
    )  # fmt: skip


def hand_back(tx: Tx, settings: Settings, *, task_id: str, why: str, now: datetime) -> bool:
    """A submission nobody can take (its repository was on a host that died before it
    reached the remote): its task goes back to pending with its checkpoints, no attempt
    counted. False when it is no longer such a submission (taken, or moved meanwhile)."""
    task = leases.task_row(tx, task_id)
    untaken = task["submitted_by"] is not None and task["submitted_commit"] is None
    if task["status"] != Status.NEEDS_REVIEW or task["gate"] is None or not untaken:
        return False
    record_event(
        tx, task_id, at=timeutil.to_text(now), actor=LANDER, kind="returned",
        reason=why[:4000], lease_epoch=task["lease_epoch"],
    )  # fmt: skip
    moves.update_status(
        tx, settings, task_id, Status.PENDING, LANDER, None, why[:500], now, landing=""
    )
    return True


def adopt(tx: Tx, old: str, new: str) -> int:
    """Open entries and intents queued under a target's name from before targets were named
    by repository (`old`: its branch, or '' for --merge leave), renamed to `new`. How many
    entries were."""
    tx.run("adopt_landings", {"old": old, "new": new})
    return tx.run("adopt_entries", {"old": old, "new": new})


def end(tx: Tx, entry_id: int, was: str, state: str, why: str, stamp: str) -> None:
    """The entry ends as `state`, if it is still `was` (nothing happens otherwise)."""
    tx.run(
        "entry_ends",
        {"id": entry_id, "from": was, "state": state, "reason": why[:2000], "now": stamp},
    )


def close_open(tx: Tx, task_id: str, why: str, now: datetime) -> None:
    """A person moved the task out of needs_review: its submission leaves the queue."""
    tx.run("close_open_entries", {"task_id": task_id, "reason": why[:2000],
                                  "now": timeutil.to_text(now)})  # fmt: skip


def landings_after(tx: Tx, target: str, after: int = 0) -> list[Landing]:
    return [_landing(r) for r in tx.all("landings_since", {"target": target, "after": after})]


def queue(tx: Tx) -> list[tuple[Entry, str]]:
    """Every open entry in queue order, with its task's title."""
    return [(entry(r), r["title"]) for r in tx.all("queue_open")]


def task_spend(tx: Tx, task_id: str) -> str:
    """What the task cost so far, as a pull request's text says it ('' when nothing)."""
    row = tx.one("task_spend", {"task_id": task_id})
    if row is None or not (row["input_tokens"] or row["output_tokens"]):
        return ""
    return (f"{row['input_tokens']} input + {row['output_tokens']} output tokens, "
            f"${float(row['cost']):.2f}, over every attempt")  # fmt: skip
