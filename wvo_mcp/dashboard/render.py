"""The board as HTML, rendered on the server (the page and the fragments the live view
fetches share these functions, so a card looks the same however it arrived)."""

import re
from html import escape
from urllib.parse import quote

from wvo_mcp.models import Checkpoint, DependencyRef, Event
from wvo_mcp.services.board import Board, Card, Column, Filters
from wvo_mcp.services.tasks import TaskView

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
    if card.status in ("failed", "blocked", "cancelled"):
        found.append(("requeue", "Re-queue"))
    if card.status not in ("done", "cancelled", "failed"):
        found.append(("cancel", "Cancel"))
    return found


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
        buttons = "".join(
            f'<button type="button" data-action="{a}">{label}</button>'
            for a, label in _actions(card)
        )
        parts.append(f'<div class="actions">{buttons}</div>')
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


# ---- a task's detail ----------------------------------------------------------------------

TASK_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>wvo-mcp: __TASK__</title>
<link rel="stylesheet" href="/dashboard/static/app.css">
<script src="/dashboard/static/app.js" defer></script>
</head>
<body class="task-page">
<header><h1><a href="/dashboard">wvo-mcp</a></h1><span class="who">__WHO__</span></header>
<main>__DETAIL__</main>
</body>
</html>
"""


def _text(value: str | None) -> str:
    """Agent-written text: escaped, line breaks kept (by the stylesheet)."""
    return f'<div class="text">{escape(value or "")}</div>'


def _refs(found: list[DependencyRef]) -> str:
    if not found:
        return '<p class="none">none</p>'
    items = "".join(
        f'<li><a class="open" href="{task_url(r.id)}">{escape(r.id)}</a> '
        f'<span class="status">{escape(r.status.value)}</span></li>'
        for r in found
    )
    return f"<ul>{items}</ul>"


def _event(event: Event) -> str:
    move = ""
    if event.from_status or event.to_status:
        move = (
            f' <span class="move">{escape(event.from_status or "")} &rarr; '
            f"{escape(event.to_status or '')}</span>"
        )
    reason = "" if event.reason is None else f'<div class="text">{escape(event.reason)}</div>'
    return (
        f'<li class="event" data-kind="{escape(event.kind)}"><time>{escape(event.at)}</time> '
        f'<span class="kind">{escape(event.kind)}</span>{move} '
        f'<span class="actor">{escape(event.actor)}</span>{reason}</li>'
    )


def _checkpoint(found: Checkpoint, git: bool) -> str:
    e = escape
    parts = [
        f'<li class="checkpoint" data-seq="{found.seq}"><div class="meta">'
        f'<span class="seq">#{found.seq}</span> <time>{e(found.created_at)}</time> '
        f'<span class="agent">{e(found.agent_id)}</span>'
    ]
    if found.progress is not None:
        parts.append(f' <span class="progress">{found.progress}%</span>')
    parts.append(f'</div><div class="summary">{e(found.summary)}</div>')
    if found.next_steps:
        parts.append(f"<h4>Next steps</h4>{_text(found.next_steps)}")
    if found.files:
        files = "".join(f"<li><code>{e(f)}</code></li>" for f in found.files)
        parts.append(f'<h4>Files</h4><ul class="files">{files}</ul>')
    if found.sandbox_run:
        parts.append(f"<h4>Sandbox run</h4>{_text(found.sandbox_run)}")
    if found.git_ref:
        base = e(found.git_head or "none (no commits yet)")
        parts.append(
            f'<div class="git">git snapshot <code>{e(found.git_ref)}</code> on <code>{base}</code>'
        )
        if git:
            parts.append(
                f' <button type="button" class="diff" data-seq="{found.seq}">Show diff</button>'
                '<div class="diff-out"></div>'
            )
        parts.append("</div>")
    parts.append("</li>")
    return "".join(parts)


def diff(patch: str, cut: bool) -> str:
    """A unified diff, escaped, its lines classed for colour."""
    lines = []
    for line in patch.splitlines():
        kind = (
            "file" if line.startswith(("diff --git", "+++ ", "--- ", "index "))
            else "hunk" if line.startswith("@@")
            else "add" if line.startswith("+")
            else "del" if line.startswith("-")
            else "ctx"
        )  # fmt: skip
        lines.append(f'<span class="{kind}">{escape(line)}</span>')
    more = '<p class="cut">(cut: the diff is longer)</p>' if cut else ""
    if not lines:
        return '<p class="none">no changes against its base</p>'
    return f'<pre class="patch">{"".join(lines)}</pre>{more}'


def task(view: TaskView, event_limit: int, git: bool) -> str:
    """A task's detail: everything escaped (titles, descriptions, summaries and reasons are
    written by agents)."""
    e = escape
    found, events, checkpoints, runs = view.task, view.events, view.checkpoints, view.runs
    b = found.breakdown
    verify = found.verify_command
    if isinstance(verify, list):
        verify = " ".join(verify)
    facts = [
        ("status", found.status.value),
        ("epic", found.epic_id),
        ("milestone", found.milestone_id),
        ("tags", ", ".join(found.tags) or None),
        ("attempts", f"{found.attempts} of {found.max_attempts}"),
        ("holder", found.assigned_to),
        ("lease expires", found.lease_expires_at),
        ("not before", found.not_before),
        ("due", found.due_at),
        ("needs approval", "yes" if found.requires_approval else None),
        ("verify command", verify),
        ("created", found.created_at),
        ("updated", found.updated_at),
        ("completed", found.completed_at),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{e(v)}</dd>" for k, v in facts if v)
    wsjf = (
        f'<table class="wsjf"><tr><th>business value</th><td>{b.business_value}</td></tr>'
        f"<tr><th>time criticality</th><td>{b.time_criticality:g}</td></tr>"
        f"<tr><th>risk reduction</th><td>{b.risk_reduction}</td></tr>"
        f"<tr><th>enablement (open dependents)</th><td>{b.enablement}</td></tr>"
        f"<tr><th>cost of delay</th><td>{b.cost_of_delay:g}</td></tr>"
        f"<tr><th>job size</th><td>{b.job_size}</td></tr>"
        f"<tr><th>score</th><td>{b.score:g}</td></tr></table>"
    )
    newest = f"the {event_limit} newest" if len(events) >= event_limit else f"{len(events)}"
    run_items = "".join(_event(r) for r in runs) or '<li class="none">none recorded</li>'
    cps = "".join(_checkpoint(c, git) for c in checkpoints)
    return (
        f'<article class="detail" id="detail" data-id="{e(found.id)}">'
        f'<header><h2><span class="task-id">{e(found.id)}</span> '
        f'<span class="title">{e(found.title)}</span></h2>'
        f'<a class="page-link" href="{task_url(found.id)}">page</a>'
        '<button type="button" class="close" hidden>close</button></header>'
        f'<section class="description"><h3>Description</h3>{_text(found.description)}</section>'
        f'<section class="facts"><dl>{dl}</dl></section>'
        f"<section><h3>WSJF</h3>{wsjf}</section>"
        f'<section class="deps"><h3>Waits on</h3>{_refs(found.dependencies)}'
        f"<h3>Unblocks</h3>{_refs(found.dependents)}</section>"
        f'<section class="checkpoints"><h3>Checkpoints ({len(checkpoints)})</h3>'
        f"<ol>{cps or '<li class=none>none</li>'}</ol></section>"
        '<section class="runs"><h3>Sandbox and verification runs</h3>'
        f'<ol>{run_items}</ol><p class="note">Each run\'s summary (command, exit, time, '
        "sandbox) as recorded; their output is not stored (the agent that ran it got the "
        "tails).</p></section>"
        f'<section class="events"><h3>Events ({newest})</h3>'
        f"<ol>{''.join(_event(ev) for ev in events)}</ol></section></article>"
    )


def task_page(detail: str, task_id: str, who: str) -> str:
    values = {"__TASK__": escape(task_id), "__WHO__": escape(who), "__DETAIL__": detail}
    return re.sub(r"__[A-Z]+__", lambda m: values.get(m.group(0), m.group(0)), TASK_PAGE)
