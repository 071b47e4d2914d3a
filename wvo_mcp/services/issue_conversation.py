"""An issue's conversation with its task: the sync's writes on the forge, and comments.

The sync itself runs in `edge/issue_sync.py` (`sync`, and `heard` for a comment); which issues it
skips, and why, is decided there with `rules/issue_tasks.py`: this module keeps the rows.

An issue's conversation with its task (edge/issue_sync.py drives it): what the sync has written
on the forge (each write claimed by one host, then marked done), and what a comment does:
a writer's answer or `/wvo tell`, each acted on once by its comment id (recorded in the
transaction that acts, as a webhook delivery is), or anyone else's shown as what it is."""

from datetime import datetime, timedelta
from typing import Any

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.models import Unsynced
from wvo_mcp.rules.issue_tasks import IssueComment, kind_of
from wvo_mcp.rules.text import plain
from wvo_mcp.services import notes, rows
from wvo_mcp.services.tasks import record_event
from wvo_mcp.store import Row, Tx

STALE = timedelta(minutes=10)  # a claim older than this, never finished: its host died


def claim(tx: Tx, key: str, now: datetime) -> bool:
    """This host may write `key` on the forge (no other has, or is at it)."""
    stale = timeutil.to_text(now - STALE)
    return tx.run("post_claim", {"key": key, "now": timeutil.to_text(now), "stale": stale}) == 1


def done(tx: Tx, key: str, at: str, now: datetime) -> None:
    tx.run("post_done", {"key": key, "at": at, "now": timeutil.to_text(now)})


def release(tx: Tx, key: str) -> None:
    """A claim given up (the forge failed): the next pass, on any host, tries again."""
    tx.run("post_release", {"key": key})


def post_of(tx: Tx, key: str) -> Row | None:
    return tx.one("post_of", {"key": key})


def synced(tx: Tx) -> list[str]:
    """The repositories whose comments the sync reads (`import github:` ran here)."""
    return [r["repository"] for r in tx.all("synced_repositories")]


def unsynced(tx: Tx, repository: str) -> list[Unsynced]:
    """The repository's open issues its last sync pass could not apply."""
    return [_unsynced(repository, r) for r in tx.all("unsynced_of", {"repository": repository})]


def keep_unsynced(tx: Tx, repository: str, found: list[Unsynced]) -> None:
    """What this pass could not apply, in place of what the last one kept."""
    tx.run("unsynced_clear", {"repository": repository})
    for u in found:
        tx.run("unsynced_add", {"repository": repository, "number": u.issue, "task_id": u.task,
                                "why": u.why, "made": int(u.made), "since": u.since})  # fmt: skip


def all_unsynced(tx: Tx) -> list[Unsynced]:
    return [_unsynced(r["repository"], r) for r in tx.all("unsynced_issues")]


def _unsynced(repository: str, row: Row) -> Unsynced:
    return Unsynced(repository=repository, issue=row["number"], task=row["task_id"],
                    why=row["why"], made=bool(row["made"]), since=row["since"])  # fmt: skip


def questions(tx: Tx, prefix: str) -> list[Row]:
    return tx.all("questions_under", {"prefix": rows.literal(prefix) + "%"})


def landed(tx: Tx, task_id: str) -> Row | None:
    return tx.one("task_landed", {"task_id": task_id})


def untold(tx: Tx, prefix: str) -> list[str]:
    """Done tasks under `prefix` whose issue has not been told of the landing yet."""
    return [r["id"] for r in tx.all("landed_untold", {"prefix": rows.literal(prefix) + "%"})]


def open_pulls(tx: Tx, prefix: str) -> list[Row]:
    """The open pull requests (task_id, number, url) of tasks under `prefix`."""
    return tx.all("pulls_open_under", {"prefix": rows.literal(prefix) + "%"})


def statuses(tx: Tx, prefix: str) -> dict[str, str]:
    found = tx.all("tasks_with_prefix", {"prefix": rows.literal(prefix) + "%"})
    return {r["id"]: r["status"] for r in found}


def outsider(
    tx: Tx, *, task_id: str, who: str, what: str, url: str, key: str, now: datetime
) -> None:
    """Words from someone who does not steer (rules/trust.py), shown to a person on the task
    and in the inbox, once per `key` (a review's or comment's own id; '' : every time);
    nothing else moves."""
    if key and tx.run("record_delivery", {"id": f"shown:{key}", "event": "outsider",
                                          "now": timeutil.to_text(now)}) != 1:  # fmt: skip
        return
    said = f"{what} ({url})" if url else what
    record_event(tx, task_id, at=timeutil.to_text(now), actor=f"outsider:{who}",
                 kind="outsider", reason=said[:500])  # fmt: skip


def comment(
    tx: Tx, settings: Settings, *, task_id: str, said: IssueComment, kind: str, text: str,
    now: datetime,
) -> str:  # fmt: skip
    """What one comment on a task's issue does (`kind` from rules/issue_tasks.reply), once:
    '' when it was acted on before."""
    forge = kind_of(task_id)
    # GitHub's comment ids as they always were; another forge's apart, as its notes are
    # numbered on their own and one database may sync both.
    ident = f"comment:{said.id}" if forge == "github" else f"comment:{forge}:{said.id}"
    recorded = {"id": ident, "event": "issue_comment", "now": timeutil.to_text(now)}
    if tx.run("record_delivery", recorded) != 1:
        return ""
    author = f"person:{forge}:{said.user}"
    try:
        if kind == "answer":
            notes.answer(tx, settings, task_id, text, author, now)
            return f"{task_id}: answered by @{said.user} ({said.url})"
        if kind == "tell":
            notes.tell(tx, "task", task_id, text, author, now)
            return f"{task_id}: told by @{said.user} ({said.url})"
    except ValidationFailed as exc:  # answered meanwhile, or the task is over: shown
        text = f"not acted on: {exc}"
    if kind == "shown":  # its author does not steer: their words go to a person's inbox
        words = plain(" ".join(said.body.split()), 300)
        outsider(tx, task_id=task_id, who=said.user, url=said.url, key="", now=now,
                 what=f"on #{said.number}, {text}: {words}")  # fmt: skip
        return f"{task_id}: @{said.user}'s comment shown, {text} ({said.url})"
    shown: dict[str, Any] = {"at": timeutil.to_text(now), "actor": author, "kind": "comment"}
    record_event(tx, task_id, **shown, reason=f"@{said.user} on #{said.number}: {text}"[:500])
    return f"{task_id}: @{said.user}'s comment shown, {text} ({said.url})"
