"""A task's detail as HTML, escaped; how many events and runs it shows: routes.py (EVENTS, RUNS).

A task's detail as HTML: the panel over the board and its own page, with its checkpoints,
diffs, runs, charges and the live log. Everything in it is written by agents and their
commands: escaped."""

import re
from dataclasses import dataclass
from html import escape

from wvo_mcp.edge.dashboard.render import buttons, task_url
from wvo_mcp.models import Checkpoint, DependencyRef, Event
from wvo_mcp.rules import run_charges
from wvo_mcp.rules.run_charges import RunCharge
from wvo_mcp.services.tasks import RunView, TaskView

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


def _run(run: RunView) -> str:
    """A sandbox run or verification: its event, and its output tails folded away."""
    tails = "".join(
        f'<details class="output" data-stream="{name}"><summary>{name} (tail)</summary>'
        f'<pre class="tail">{escape(text)}</pre></details>'
        for name, text in (("stdout", run.stdout), ("stderr", run.stderr))
        if text
    )
    return _event(run.event).removesuffix("</li>") + tails + "</li>"


def _charges(found: list[RunCharge]) -> str:
    """Each autopilot run's charge: tokens and cost, and where the meter's count and its
    CLI's word differ, both (rules/run_charges.py)."""
    if not found:
        return '<p class="none">no autopilot run charged</p>'
    e = escape
    rows = "".join(
        f'<tr class="charge" data-role="{e(c.role)}" '
        f'data-differ="{str(run_charges.differ(c)).lower()}">'
        f'<td><time>{e(c.at)}</time></td><td class="agent">{e(c.agent)}</td>'
        f"<td>{e(c.role)}</td><td>{e(c.provider)}/{e(c.tier)}</td><td>{e(c.outcome)}</td>"
        f'<td class="in">{c.input_tokens}</td><td class="out">{c.output_tokens}</td>'
        f'<td class="cost">{c.cost_usd:.4f}</td>'
        f'<td class="source">{e(run_charges.source(c))}</td></tr>'
        for c in found
    )
    return (
        '<table class="charges"><thead><tr><th>at</th><th>agent</th><th>run</th>'
        "<th>provider/tier</th><th>outcome</th><th>tokens in</th><th>tokens out</th>"
        f"<th>cost (USD)</th><th>from</th></tr></thead><tbody>{rows}</tbody></table>"
    )


@dataclass(frozen=True)
class LiveLog:
    """An autopilot worker's latest output lines for the task it runs."""

    agent: str
    run_id: str
    lines: list[str]


def _live_log(log: LiveLog | None) -> str:
    if log is None:
        return ""
    lines = "\n".join(log.lines) or "(no output yet)"
    return (
        f'<section class="live-log" data-agent="{escape(log.agent)}"><h3>Live log: '
        f'{escape(log.agent)}</h3><pre class="tail">{escape(lines)}</pre>'
        f'<p class="note">the worker\'s latest output lines, as autopilot '
        f"<code>{escape(log.run_id)}</code> reported them on its last round</p></section>"
    )


def task(
    view: TaskView, event_limit: int, git: bool, log: LiveLog | None = None, can_act: bool = False
) -> str:
    """A task's detail: everything escaped (titles, descriptions, summaries, reasons and
    output are written by agents and their commands)."""
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
        ("paused", found.paused),
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
    run_items = "".join(_run(r) for r in runs) or '<li class="none">none recorded</li>'
    cps = "".join(_checkpoint(c, git) for c in checkpoints)
    notes = "".join(
        f'<li><span class="kind">{e(n.kind)}</span> <span class="who">{e(n.author)}</span> '
        f"<time>{e(n.at)}</time><p>{e(n.text)}</p></li>"
        for n in found.notes
    )
    hand = ""
    if can_act and found.status.value not in ("done", "cancelled"):
        wanted = [("tell", "Tell")] if found.status.value == "in_progress" else []
        wanted.append(("resume", "Resume") if found.paused else ("pause", "Pause"))
        hand = buttons(wanted)
    return (
        f'<article class="detail" id="detail" data-id="{e(found.id)}">'
        f'<header><h2><span class="task-id">{e(found.id)}</span> '
        f'<span class="title">{e(found.title)}</span></h2>'
        f'<a class="page-link" href="{task_url(found.id)}">page</a>'
        '<button type="button" class="close" hidden>close</button></header>'
        f"{hand}"
        f'<section class="description"><h3>Description</h3>{_text(found.description)}</section>'
        f'<section class="facts"><dl>{dl}</dl></section>{_live_log(log)}'
        + (
            f'<section class="notes"><h3>A person\'s words</h3><ol>{notes}</ol></section>'
            if notes
            else ""
        )
        + f"<section><h3>WSJF</h3>{wsjf}</section>"
        f'<section class="deps"><h3>Waits on</h3>{_refs(found.dependencies)}'
        f"<h3>Unblocks</h3>{_refs(found.dependents)}</section>"
        f'<section class="checkpoints"><h3>Checkpoints ({len(checkpoints)})</h3>'
        f"<ol>{cps or '<li class=none>none</li>'}</ol></section>"
        f'<section class="charges"><h3>Runs charged</h3>{_charges(view.charges)}'
        '<p class="note">What each autopilot run on it was charged: the larger of its meter\'s '
        "count and its CLI's word, each figure, at its tier's prices.</p></section>"
        '<section class="runs"><h3>Sandbox and verification runs</h3>'
        f'<ol>{run_items}</ol><p class="note">Each run\'s summary (command, exit, time, '
        "sandbox) and the last lines of its output.</p></section>"
        f'<section class="events"><h3>Events ({newest})</h3>'
        f"<ol>{''.join(_event(ev) for ev in events)}</ol></section></article>"
    )


def task_page(detail: str, task_id: str, who: str) -> str:
    values = {"__TASK__": escape(task_id), "__WHO__": escape(who), "__DETAIL__": detail}
    return re.sub(r"__[A-Z]+__", lambda m: values.get(m.group(0), m.group(0)), TASK_PAGE)
