"""The board and its cards as HTML, the same for the whole page and the live view.

The board as HTML, rendered on the server (the page and the fragments the live view
fetches share these functions, so a card looks the same however it arrived)."""

import functools
import re
from html import escape
from urllib.parse import quote

from wvo_mcp.services.board import Board, Card, Column, Filters

LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wvo-mcp dashboard: sign in</title>
</head>
<body><h1>wvo-mcp dashboard</h1>
<form method="post" action="/dashboard/login">
<label>Token (<code>wvo-mcp tokens add --role person|operator</code>)
<input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Sign in</button></form></body></html>
"""


def task_url(task_id: str) -> str:
    """The task's detail page, escaped for an attribute."""
    return escape(f"/dashboard/tasks/{quote(task_id, safe='')}")


def _actions(card: Card) -> list[tuple[str, str]]:
    """(action, label) a person may take on this card."""
    found = []
    if card.status == "awaiting_approval":
        found += [("approve", "Approve"), ("reject", "Reject")]
    if card.status == "in_progress":
        found.append(("tell", "Tell"))
    if card.status in ("pending", "in_progress"):
        found.append(("pause", "Pause"))
    if card.status in ("failed", "blocked", "cancelled"):
        found.append(("requeue", "Re-queue"))
    if card.status not in ("done", "cancelled", "failed"):
        found.append(("cancel", "Cancel"))
    return found


def buttons(actions: list[tuple[str, str]]) -> str:
    """A person's action buttons (app.js posts each `data-action`)."""
    return (
        '<div class="actions">'
        + "".join(
            f'<button type="button" data-action="{a}">{label}</button>' for a, label in actions
        )
        + "</div>"
    )


@functools.lru_cache(maxsize=4096)  # a changed card goes to every viewer: rendered once
def card(card: Card, can_act: bool) -> str:
    e = escape
    parts = [
        f'<article class="card" id="card-{e(card.id)}" data-id="{e(card.id)}" '
        f'data-status="{e(card.status)}">',
        f'<div class="top"><span class="task-id">{e(card.id)}</span>'
        f'<span class="score" title="WSJF score">{card.wsjf_score:.2f}</span></div>',
        f'<div class="title"><a class="open" href="{task_url(card.id)}">{e(card.title)}</a>'
        '</div><div class="meta">',
    ]
    if card.epic_id:
        parts.append(f'<span class="epic">{e(card.epic_id)}</span>')
    if card.ready:
        parts.append('<span class="ready">ready</span>')
    if card.holder:
        parts.append(f'<span class="holder">{e(card.holder)}</span>')
    if card.lease_expires_at:
        parts.append(f'<span class="lease" data-expires="{e(card.lease_expires_at)}"></span>')
    parts.append(f'<span class="attempt">attempt {card.attempt}</span>')
    if card.progress is not None:
        parts.append(f'<span class="progress">{card.progress}%</span>')
    parts.append("</div>")
    if can_act:
        parts.append(buttons(_actions(card)))
    parts.append("</article>")
    return "".join(parts)


def cards(column: Column, can_act: bool) -> str:
    return "".join(card(c, can_act) for c in column.cards)


def _column(column: Column, counts: dict[str, int], can_act: bool) -> str:
    s = escape(column.status)
    ready = (
        f' <span class="ready-count">({counts.get("ready", 0)} ready)</span>'
        if column.status == "pending"
        else ""
    )
    more = "" if column.next_after is None else escape(column.next_after)
    return (
        f'<section class="column" id="col-{s}" data-status="{s}" data-next="{more}">'
        f'<h2>{s.replace("_", " ")} <span class="count">{counts.get(column.status, 0)}</span>'
        f'{ready}</h2><div class="cards">{cards(column, can_act)}</div>'
        f'<button type="button" class="more"{"" if more else " hidden"}>more</button></section>'
    )


def board(found: Board, can_act: bool) -> str:
    return "".join(_column(c, found.counts, can_act) for c in found.columns)


def page(template: str, found: Board, filters: Filters, who: str, can_act: bool) -> str:
    values = {
        "__BOARD__": board(found, can_act),
        "__CURSOR__": str(found.cursor),
        "__WHO__": escape(who),
        "__CAN_ACT__": "1" if can_act else "0",
        "__EPIC__": escape(filters.epic_id or ""),
        "__TAG__": escape(filters.tag or ""),
        "__AGENT__": escape(filters.agent or ""),
        "__SEARCH__": escape(filters.search or ""),
    }
    # One pass: a task's title that spells a placeholder stays as it is.
    return re.sub(r"__[A-Z_]+?__", lambda m: values.get(m.group(0), m.group(0)), template)
