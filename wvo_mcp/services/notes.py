"""Words between a person and a task's holders: tells, redirects, questions, answers.

Words between a person and a task's holders: a person's message (tell), a changed task
(redirect), an agent's question and a person's answer; and the autopilot's drain, to the
workers it runs. Each note reaches the task's holder
with the answer to its next call, once per holder; a note for one holder (a pause, a
redirect of the attempt under way) reaches only that one. Every note is data: stored as
text, capped, never read as instructions by the server."""

import json
from collections.abc import Callable
from datetime import datetime
from typing import Literal, TypeVar

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.models import Asked, Inbox, Note, Outsider, Question, Told, UpdateResult
from wvo_mcp.rules.bounds import check_command
from wvo_mcp.rules.pauses import Scope
from wvo_mcp.rules.transitions import Status
from wvo_mcp.services import leases, moves, rows
from wvo_mcp.services.tasks import NOTES_SHOWN, record_event
from wvo_mcp.store import Row, Tx

A = TypeVar("A", bound=Asked)
Kind = Literal["tell", "pause", "redirect", "question", "answer", "drain"]
MAX_TEXT = 4000  # characters of one note
OUTSIDERS = 50  # the newest words of those who do not steer, in the inbox
DRAIN = (
    "The autopilot running you is stopping. Checkpoint now (what is done, what is next), "
    "then stop: the task goes back with your checkpoint, for its next holder."
)


def add(
    tx: Tx,
    task_id: str,
    kind: Kind,
    text: str,
    author: str,
    stamp: str,
    *,
    for_epoch: int | None = None,
    reply_to: int | None = None,
) -> None:
    tx.run(
        "add_note",
        {
            "task_id": task_id, "kind": kind, "body": text[:MAX_TEXT], "author": author,
            "now": stamp, "for_epoch": for_epoch, "reply_to": reply_to,
        },
    )  # fmt: skip


def due(tx: Tx, agent_id: str) -> bool:
    """Whether the agent's held tasks have notes it was not given yet."""
    return tx.one("notes_due", (agent_id,)) is not None


def asking(write: Callable[[Tx], A], agent_id: str) -> Callable[[Tx], Callable[[], A]]:
    """`write` of a holder's call, asking in its own transaction whether the agent has notes
    due (for Database.write_then_read): an answer that finds none needs no lookup after
    it, which past capacity would be a second wait for the database (edge/calls.py)."""

    def both(tx: Tx) -> Callable[[], A]:
        result = write(tx)
        return asking_due(tx, agent_id, lambda: result)

    return both


def asking_after(
    write: Callable[[Tx], Callable[[], A]], agent_id: str
) -> Callable[[Tx], Callable[[], A]]:
    """`asking`, for a write that itself reads its answers after the commit
    (Database.write_then_read)."""
    return lambda tx: asking_due(tx, agent_id, write(tx))


def asking_due(tx: Tx, agent_id: str, read: Callable[[], A]) -> Callable[[], A]:
    """`read`, its answer marked when the agent has no notes due (asked now, beside what
    is still to be sent)."""
    due = tx.ask("notes_due", (agent_id,))

    def read_both() -> A:
        result = read()
        if due.one() is None:
            result._no_notes_for = agent_id
        return result

    return read_both


def deliver(tx: Tx, agent_id: str) -> list[Note]:
    """The notes the agent's held tasks have for it now, oldest first, marked given."""
    found = sorted(tx.all("deliver_notes", (agent_id,)), key=lambda r: r["id"])
    return [rows.note(r) for r in found[-NOTES_SHOWN:]]


def _text(text: str, what: str) -> str:
    if not text.strip():
        raise ValidationFailed(f"the {what} is empty: write what to say. Nothing was changed")
    if len(text) > MAX_TEXT:
        raise ValidationFailed(
            f"the {what} is {len(text)} characters; at most {MAX_TEXT}. Nothing was changed"
        )
    return text


def open_task(tx: Tx, task_id: str, over: str = "nobody works on it any more") -> Row:
    """The task a person's note or pause is for, locked; refused when it is over (`over`
    says what that means for the act)."""
    row = leases.task_row(tx, task_id, lock=True)
    if row["status"] in (Status.DONE, Status.CANCELLED):
        raise ValidationFailed(f"task {task_id!r} is {row['status']}: {over}. Nothing was changed")
    return row


def tell(tx: Tx, scope: Scope, key: str, text: str, author: str, now: datetime) -> Told:
    """A person's message: to a task's holder (now and every later one), or to every holder
    in an epic, or in the fleet."""
    _text(text, "message")
    stamp = timeutil.to_text(now)
    if scope == "task":
        row = open_task(tx, key)
        targets = [key]
        holder = row["assigned_to"] if row["status"] == Status.IN_PROGRESS else None
        whom = f"its holder {holder}" if holder else "its next holder"
        message = f"told task {key} ({whom}, and every later holder)"
    else:
        held = tx.all("held_tasks")
        targets = [r["id"] for r in held if scope == "fleet" or r["epic_id"] == key]
        if not targets:
            where = f"in epic {key!r}" if scope == "epic" else "anywhere"
            raise ValidationFailed(
                f"nobody holds a task {where} now: tell a task by its id to leave the message "
                "for its next holder. Nothing was changed"
            )
        message = f"told {len(targets)} holder(s): {', '.join(targets)}"
    for target in targets:
        add(tx, target, "tell", text, author, stamp)
        record_event(tx, target, at=stamp, actor=author, kind="told", reason=text[:MAX_TEXT])
    return Told(tasks=targets, message=message)


def drain(tx: Tx, held: list[tuple[str, str]], author: str, now: datetime) -> list[str]:
    """The autopilot's drain, to each of its workers (task, agent) still holding its task,
    that holder alone; the tasks told. Its driver: autopilot/loop.py."""
    stamp = timeutil.to_text(now)
    told = []
    for task_id, agent_id in held:
        row = leases.task_row(tx, task_id, lock=True)
        if row["status"] == Status.IN_PROGRESS and row["assigned_to"] == agent_id:
            add(tx, task_id, "drain", DRAIN, author, stamp, for_epoch=row["lease_epoch"])
            told.append(task_id)
    return told


def ask(
    tx: Tx,
    settings: Settings,
    task_id: str,
    token: str,
    agent_id: str,
    question: str,
    now: datetime,
) -> UpdateResult:
    """The holder asks a person: its task waits in blocked (its lease released, its
    checkpoint and branch kept, no WIP slot held) until a person answers."""
    _text(question, "question")
    moved = moves.update_status(
        tx, settings, task_id, Status.BLOCKED, agent_id, token,
        f"asked a person: {question[:500]}", now,
    )  # fmt: skip
    add(tx, task_id, "question", question, agent_id, timeutil.to_text(now))
    moved.message = (
        f"asked: task {task_id} waits for a person's answer, your lease is released. Stop "
        "working on it; the answer reaches whoever takes it next, with your checkpoint"
    )
    return moved


def answer(
    tx: Tx, settings: Settings, task_id: str, text: str, author: str, now: datetime
) -> UpdateResult:
    """A person's answer to a task's open question: the task is claimable again, and its
    next holder is given the question and the answer."""
    _text(text, "answer")
    row = leases.task_row(tx, task_id, lock=True)
    question = tx.one("open_question", (task_id,))
    if question is None or row["status"] != Status.BLOCKED:
        raise ValidationFailed(
            f"task {task_id!r} has no question waiting for an answer (it is {row['status']}); "
            "`wvo-mcp inbox` lists the open ones, and `wvo-mcp tell` reaches a holder. Nothing "
            "was changed"
        )
    stamp = timeutil.to_text(now)
    add(tx, task_id, "answer", text, author, stamp, reply_to=question["id"])
    moved = moves.update_status(
        tx, settings, task_id, Status.PENDING, author, None, f"answered: {text[:500]}", now,
        by_person=True,
    )  # fmt: skip
    moved.message = f"answered: task {task_id} is claimable again; its next holder is given it"
    return moved


def inbox(tx: Tx, limit: int = 200) -> Inbox:
    return Inbox(
        questions=[
            Question(
                task_id=r["task_id"],
                title=r["title"],
                question=r["body"],
                asked_by=r["author"],
                asked_at=r["created_at"],
            )
            for r in tx.all("open_questions", (limit,))
        ],
        outsiders=[
            Outsider(
                task_id=r["task_id"],
                title=r["title"],
                who=r["actor"].removeprefix("outsider:"),
                said=r["reason"] or "",
                at=r["at"],
            )
            for r in tx.all("outsider_words", (OUTSIDERS,))
        ],
    )


def redirect(
    tx: Tx,
    settings: Settings,
    task_id: str,
    author: str,
    now: datetime,
    *,
    description: str | None,
    verify_command: str | list[str] | None,
    restart: bool,
) -> UpdateResult:
    """A person's new description or acceptance check for a task. Its holder, if any, is
    told and works on (`restart` False) or its attempt ends at once, costing nothing, and
    the next starts from the last checkpoint with the new text."""
    if description is None and verify_command is None:
        raise ValidationFailed(
            "give a new description, a new verify_command, or both. Nothing was changed"
        )
    if description is not None and len(description) > 8000:
        raise ValidationFailed(
            f"the description is {len(description)} characters; at most 8000. Nothing was changed"
        )
    if verify_command is not None:
        check_command(verify_command, "verify_command")
    row = open_task(tx, task_id)
    stamp = timeutil.to_text(now)
    tx.run(
        "redirect_task",
        {
            "id": task_id,
            "description": description,
            "verify_command": None if verify_command is None else json.dumps(verify_command),
            "now": stamp,
        },
    )
    changed = " and ".join(
        part
        for part, given in (("description", description), ("verify_command", verify_command))
        if given is not None
    )
    said = f"A person ({author}) changed this task's {changed}"
    shown = "; ".join(
        f"{part}: {given}"
        for part, given in (("description", description), ("verify_command", verify_command))
        if given is not None
    )
    record_event(tx, task_id, at=stamp, actor=author, kind="redirected", reason=shown[:MAX_TEXT])
    held = row["status"] == Status.IN_PROGRESS
    if held and restart:
        moved = moves.update_status(
            tx, settings, task_id, Status.PENDING, author, None,
            f"redirected: restarted with the new {changed}", now, by_person=True,
        )  # fmt: skip
        moved.message = (
            f"redirected task {task_id}: its holder's attempt ended (it costs nothing); the "
            "next attempt starts from the last checkpoint with the new text"
        )
        return moved
    if held:
        text = f"{said}; work on with it. {shown}"
        add(tx, task_id, "redirect", text, author, stamp, for_epoch=row["lease_epoch"])
    status = Status(row["status"])
    return UpdateResult(
        task_id=task_id,
        previous_status=status,
        status=status,
        attempts=row["attempts"],
        message=f"redirected task {task_id}: "
        + ("its holder is told with its next call" if held else "its next holder reads it"),
    )
