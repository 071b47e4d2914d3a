"""The dashboard's views beside the board as HTML: agents, budgets, health, the autopilot.

The dashboard's views beside the board as HTML fragments: agents, budgets and routes,
health and schedules, the inbox, and the autopilot with its merge queue and landing gate."""

from dataclasses import dataclass
from html import escape
from typing import Any

from wvo_mcp import queue_figures
from wvo_mcp.edge.dashboard.render import task_url
from wvo_mcp.models import (
    Budget,
    GateFigures,
    HealthReport,
    Inbox,
    LandingQueue,
    ProviderStatusReport,
    Scheduled,
)
from wvo_mcp.services.board import AgentRow
from wvo_mcp.services.route_figures import ClassRoutes, RouteBoard


def agents(found: list[AgentRow], stale_minutes: float) -> str:
    """Each agent with its route, the task it holds, today's usage, its done count and the
    monitor's reading of it."""
    e = escape
    if not found:
        return '<p class="none">no agents yet</p>'
    rows = []
    for a in found:
        task = (
            f'<a class="open" href="{task_url(a.task_id)}">{e(a.task_id)}</a> '
            f'<span class="title">{e(a.task_title or "")}</span>'
            if a.task_id
            else '<span class="none">none</span>'
        )
        rows.append(
            f'<tr class="agent" data-id="{e(a.id)}" data-state="{e(a.state)}">'
            f'<td class="agent-id">{e(a.id)}</td><td>{e(a.provider or "")}</td>'
            f'<td>{e(a.model or "")}</td><td class="tier">{e(a.tier or "")}</td>'
            f'<td class="state">{e(a.state)}</td><td class="task">{task}</td>'
            f"<td><time>{e(a.beat_at or '')}</time></td><td><time>{e(a.last_seen_at)}</time></td>"
            f'<td class="tokens">{a.tokens_today}</td><td class="cost">{a.cost_today:.4g}</td>'
            f'<td class="done">{a.done}</td></tr>'
        )
    return (
        '<table class="agents"><thead><tr><th>agent</th><th>provider</th><th>model</th>'
        "<th>tier</th><th>state</th><th>current task</th><th>last heartbeat</th>"
        "<th>last seen</th><th>tokens today</th><th>cost today</th><th>tasks done</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<p class="note">silent: not seen for {stale_minutes:g} minutes (the health '
        "monitor's stale threshold); working: holds a live lease; idle: neither. Tokens and "
        "cost: today's (UTC) usage reports that name the agent.</p>"
    )


def _meter(used: int, limit: int | None, label: str) -> str:
    if limit is None:
        return f'<span class="meter-label">{label}: {used} tokens (no limit)</span>'
    return (
        f'<span class="meter-label">{label}: {used} of {limit} tokens</span> '
        f'<meter min="0" max="{limit}" low="{limit * 0.7:g}" high="{limit * 0.9:g}" '
        f'optimum="0" value="{min(used, limit)}">{used} of {limit}</meter>'
    )


def _budget(found: Budget, label: str) -> str:
    used = found.used_tokens + found.reserved_tokens
    reserved = f" ({found.reserved_tokens} reserved)" if found.reserved_tokens else ""
    return f'<div class="budget">{_meter(used, found.limit, label)}{reserved}</div>'


def budgets(report: ProviderStatusReport) -> str:
    """Per provider (in preference order) and tier: token use against the limits, the
    breaker, and tasks in flight against the cap."""
    e = escape
    parts = [f'<p class="note">providers file: <code>{e(report.source)}</code></p>']
    for p in report.providers:
        b = p.breaker
        reopens = f" until <time>{e(b.reopens_at)}</time>" if b.reopens_at else ""
        cap = "no cap" if p.max_concurrent is None else f"of {p.max_concurrent}"
        flight = (
            f'<meter min="0" max="{p.max_concurrent}" value="{p.in_flight}"></meter>'
            if p.max_concurrent
            else ""
        )
        tiers = "".join(
            f"<tr><td>{e(t.name)}</td><td>{e(t.model)}</td>"
            f"<td>{t.complexity[0]}&ndash;{t.complexity[1]}</td>"
            f"<td>{t.hour_tokens}</td><td>{t.day_tokens}</td><td>{t.spend_day:g}</td></tr>"
            for t in p.tiers
        )
        parts.append(
            f'<section class="provider" data-name="{e(p.name)}">'
            f'<h3><span class="name">{e(p.name)}</span> <span class="preference">'
            f"(preference {p.preference})</span></h3>"
            f"{_budget(p.hour, 'this hour')}{_budget(p.day, 'today')}"
            f'<div class="spend">spend: {p.spend_hour:g} this hour, {p.spend_day:g} today</div>'
            f'<div class="breaker" data-state="{e(str(b.state))}">breaker '
            f'<span class="breaker-state">{e(str(b.state))}</span>{reopens} '
            f"({b.failures} consecutive failures)</div>"
            f'<div class="in-flight">in flight: {p.in_flight} {cap} {flight}</div>'
            '<table class="tiers"><thead><tr><th>tier</th><th>model</th><th>complexity</th>'
            "<th>tokens this hour</th><th>tokens today</th><th>spend today</th></tr></thead>"
            f"<tbody>{tiers}</tbody></table></section>"
        )
    if not report.providers:
        parts.append('<p class="none">no providers configured</p>')
    return "".join(parts)


def _share(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:.0%}"


def _route_class(found: ClassRoutes) -> str:
    e = escape
    chosen = (
        f'to <span class="route-name">{e(found.chosen)}</span>' if found.chosen else "nowhere now"
    )
    rows = "".join(
        f'<tr class="route" data-provider="{e(r.figures.provider)}" '
        f'data-tier="{e(r.figures.tier)}" data-state="{e(r.state)}">'
        f"<td>{e(r.figures.provider)}</td><td>{e(r.figures.tier)}</td>"
        f'<td class="outcomes">{r.figures.outcomes}</td>'
        f'<td class="evidence">{r.figures.evidence:.1f}</td>'
        f'<td class="first-try">{_share(r.figures.first_try_rate)}</td>'
        f'<td class="landing-rate">{_share(r.figures.landing_rate)}</td>'
        f'<td class="cost">{r.figures.cost_per_landed:.4f}</td>'
        f'<td class="state">{e(r.state)}</td></tr>'
        for r in found.routes
    )
    table = (
        '<table class="routes"><thead><tr><th>provider</th><th>tier</th><th>outcomes</th>'
        "<th>evidence</th><th>first try</th><th>landing per attempt</th>"
        "<th>est. cost per landed change</th><th>state</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if rows
        else '<p class="none">no outcomes yet</p>'
    )
    return (
        f'<section class="route-class" data-class="{e(found.task_class)}">'
        f"<h4>class {e(found.task_class)}</h4>"
        f'<p class="chosen" data-basis="{e(found.basis)}">a fresh task (complexity '
        f"{found.complexity}) goes {chosen} ({e(found.basis.replace('_', ' '))}): "
        f'<span class="reason">{e(found.reason)}</span></p>{table}</section>'
    )


def routes(found: RouteBoard) -> str:
    """Per task class, each route with outcomes: its figures and state, and where a fresh
    task goes now and why; the learning policy in force. Names come from the providers file
    and the store: escaped."""
    p = found.policy
    pins = f"{found.pins} pin{'' if found.pins == 1 else 's'}"
    policy = (
        f"learning {'on' if p.enabled else 'off'}; floor {p.floor:.0%} first try; explore "
        f"share {p.explore_share:.0%}; optimism {p.optimism:g}; proven from "
        f"{p.min_evidence:g} attempts; an outcome "
        f"weighs half after {p.half_life_outcomes:g} more; {pins}"
    )
    return (
        f'<section class="routes"><h3>Routes</h3><p class="policy">{policy}</p>'
        f"{''.join(_route_class(c) for c in found.classes)}"
        '<p class="note">Task class: the complexity band. Evidence: attempts, older ones '
        "fading; landing per attempt counts one landed and one not before any. Chosen: where "
        "a fresh task of the class's lowest complexity, with no estimate or pin of its own, "
        "goes now on an attempt whose draw does not explore: a little-known route while its "
        "outcomes cannot yet rule it out, else the best known. Below floor routes are not "
        "chosen by what was learned.</p></section>"
    )


def _chart(hours: list[tuple[str, int]]) -> str:
    """Completions per hour as bars (an SVG: no script, no inline style)."""
    top = max((n for _, n in hours), default=0) or 1
    bars = "".join(
        f'<rect x="{i * 14}" y="{40 - round(40 * n / top)}" width="12" '
        f'height="{round(40 * n / top)}"><title>{escape(hour)}:00 UTC: {n} done</title></rect>'
        for i, (hour, n) in enumerate(hours)
    )
    return (
        f'<svg class="chart" viewBox="0 0 {len(hours) * 14} 40" width="{len(hours) * 14 * 2}" '
        f'height="80" role="img" aria-label="tasks done per hour, the last {len(hours)} '
        f'hours (at most {top})">{bars}</svg>'
    )


@dataclass(frozen=True)
class Backups:
    count: int
    latest: str | None  # its time; None: no backup yet


def health(report: HealthReport, hours: list[tuple[str, int]], backups: Backups | None) -> str:
    """Open anomalies by severity, the monitor's latest actions, throughput per hour and
    the backups (None: the database is not a file this server backs up)."""
    e = escape
    parts = [f'<p class="message">{e(report.message)}</p>']
    if report.leader:
        parts.append(f'<p class="note">monitor: <code>{e(report.leader)}</code></p>')
    parts.append(f"<h3>Open anomalies ({report.open_anomalies})</h3>")
    if not report.anomalies:
        parts.append('<p class="none no-anomalies">no anomalies</p>')
    for severity in ("critical", "warning", "info"):
        found = [a for a in report.anomalies if a.severity == severity]
        if not found:
            continue
        items = "".join(
            f'<li class="anomaly" data-kind="{e(a.kind)}"><span class="kind">{e(a.kind)}</span>'
            f' <span class="subject">{e(a.subject)}</span> <span class="text">{e(a.message)}'
            f"</span> <time>since {e(a.first_seen_at)}</time></li>"
            for a in found
        )
        parts.append(
            f'<h4 class="severity" data-severity="{severity}">{severity} ({len(found)})</h4>'
            f'<ul class="anomalies" data-severity="{severity}">{items}</ul>'
        )
    parts.append("<h3>The monitor's latest actions</h3>")
    actions = "".join(
        f'<li class="action"><time>{e(a.at)}</time> '
        f'<a class="open" href="{task_url(a.task_id)}">{e(a.task_id)}</a> '
        f'<span class="kind">{e(a.kind)}</span>'
        f"{' &rarr; ' + e(a.to_status) if a.to_status else ''} "
        f'<span class="text">{e(a.reason or "")}</span></li>'
        for a in report.actions
    )
    parts.append(f'<ol class="actions">{actions}</ol>' if actions else '<p class="none">none</p>')
    parts.append("<h3>Throughput</h3>")
    if report.snapshot is None:
        parts.append('<p class="none">no health tick yet</p>')
    else:
        c = report.snapshot.counts
        base = c.baseline_done_per_hour
        top = max(c.done_last_hour, round(base or 0), 1)
        baseline = (
            f"<li>baseline (median per hour, previous day): {base:g} "
            f'<meter min="0" max="{top}" value="{base:g}"></meter></li>'
            if base is not None
            else "<li>baseline: not enough history yet</li>"
        )
        parts.append(
            f'<ul class="throughput"><li>done in the last hour: {c.done_last_hour} '
            f'<meter min="0" max="{top}" value="{c.done_last_hour}"></meter></li>'
            f"<li>done in the last 5 minutes: {c.done_last_5m}</li>{baseline}"
            f"<li>work in progress: {c.wip_used} of {c.wip_limit}</li>"
            f"<li>agents: {c.agents_active} active, {c.agents_idle} idle, "
            f"{c.agents_silent} silent</li></ul>"
            f'<p class="note">as of the monitor\'s tick at <time>{e(report.snapshot.at)}'
            "</time></p>"
        )
    parts.append(f'<h4>Done per hour</h4><div class="throughput-chart">{_chart(hours)}</div>')
    parts.append("<h3>Backups</h3>")
    if backups is None:
        parts.append('<p class="none">PostgreSQL: back up with pg_dump (docs/postgres.md)</p>')
    elif backups.latest is None:
        parts.append('<p class="none backups">no backup yet</p>')
    else:
        parts.append(
            f'<p class="backups">{backups.count} kept; the latest at '
            f"<time>{e(backups.latest)}</time></p>"
        )
    return "".join(parts)


# ---- the autopilot view -------------------------------------------------------------------


def autopilot(runs: list[dict[str, Any]], can_act: bool, queue: LandingQueue | None = None) -> str:
    """Each autopilot run of the last hour: its state, who last asked something of it, its
    workers with their tasks and latest output, its totals; pause and resume for a person.
    Then the merge queue and its figures."""
    after = "" if queue is None else landing(queue)
    if not runs:
        return '<p class="none">no autopilot has run in the last hour</p>' + after
    return _runs(runs, can_act) + after


def gate(found: GateFigures, can_act: bool) -> str:
    """The landing gate: each check's runs, flake rate, the returns its flakes spared and
    its reruns' time; the quarantine of flaky tests, each with its evidence and expiry, a
    person's Remove, and Add (as `wvo-mcp quarantine`). Names and evidence come from a
    check's report: escaped."""
    e = escape
    checks = "".join(
        f'<tr class="check"><td class="command"><code>{e(c.command[:200])}</code></td>'
        f'<td>{c.runs}</td><td class="failures">{c.failures}</td>'
        f'<td class="rate">{c.flake_rate:.1%}</td>'
        f'<td class="spared">{c.flakes}</td><td>{c.reruns}</td><td>{c.rerun_seconds:.1f} s</td>'
        "</tr>"
        for c in found.checks
    )
    rows = "".join(
        f'<tr class="quarantined" data-test="{e(q.test)}" data-live="{str(q.live).lower()}">'
        f'<td class="test"><code>{e(q.test)}</code></td>'
        f"<td>{e(q.expires_at) if q.live else e(q.expires_at) + ' (expired)'}</td>"
        f"<td>{e(q.by)}</td><td class=\"evidence\">{e(q.evidence)}</td>"
        + (f'<td><button data-quarantine="remove" data-test="{e(q.test)}">Remove</button></td>'
           if can_act else "")
        + "</tr>"
        for q in found.quarantine
    )  # fmt: skip
    add = (
        '<p class="quarantine-add"><input class="quarantine-test" placeholder="classname::name"'
        ' maxlength="300"> <button data-quarantine="add">Quarantine</button></p>'
        if can_act
        else ""
    )
    figures = (
        '<table class="checks"><thead><tr><th>check</th><th>runs</th><th>failures</th>'
        "<th>flake rate</th>"
        "<th>returns spared</th><th>reruns</th><th>rerun time</th></tr></thead>"
        f"<tbody>{checks}</tbody></table>"
        if checks
        else '<p class="none">no landing check has run</p>'
    )
    listed = (
        '<table class="quarantine"><thead><tr><th>test</th><th>until</th><th>by</th>'
        f"<th>evidence</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else '<p class="none no-quarantine">no test is quarantined</p>'
    )
    seen = "".join(
        f'<tr class="flake"><td>{e(f.at)}</td><td>{e(f.target) or "<i>own branch</i>"}</td>'
        f"<td><code>{e(f.tree[:12])}</code></td>"
        f"<td>{e(', '.join(f.tests[:10])) or '<i>no report</i>'}</td><td>{f.reruns}</td></tr>"
        for f in found.flakes
    )
    flakes = (
        "<h4>Latest flakes (failed, then passed on a rerun of the same tree)</h4>"
        '<table class="flakes"><thead><tr><th>at</th><th>target</th><th>tree</th>'
        f"<th>tests</th><th>reruns</th></tr></thead><tbody>{seen}</tbody></table>"
        if seen
        else ""
    )
    return (
        '<section class="gate"><h3>The landing gate</h3>'
        f"{figures}{flakes}<h4>Quarantined tests (their failure alone blocks no landing)</h4>"
        f"{listed}{add}</section>"
    )


def landing(found: LandingQueue) -> str:
    """The merge queue per target, in landing order (place, task, state, wait, returns, why
    held), and the figures of its window. Titles and reasons are agent-written: escaped."""
    e = escape
    rows = []
    for q in found.entries:
        place = "&ndash;" if q.position is None else str(q.position)
        held = f'<div class="reason">{e(q.reason)}</div>' if q.reason else ""
        rows.append(
            f'<tr class="entry" data-id="{e(q.task_id)}" data-state="{e(q.state)}">'
            f'<td class="target">{e(q.target) or "<i>own branch</i>"}</td>'
            f'<td class="position">{place}</td>'
            f'<td class="task"><a class="open" href="{task_url(q.task_id)}">{e(q.task_id)}</a> '
            f'<span class="title">{e(q.title)}</span>{held}</td>'
            f'<td class="state">{e(q.state)}</td>'
            f'<td class="wait"><span class="waited" data-since="{e(q.waiting_since)}">'
            f"{e(queue_figures.duration(q.waited_s))}</span></td>"
            f'<td class="returns">{q.returns}</td></tr>'
        )
    table = (
        '<table class="queue"><thead><tr><th>target</th><th>place</th><th>task</th>'
        "<th>state</th><th>waiting</th><th>returns</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="none no-entries">nothing in the merge queue</p>'
    )
    f = found.figures
    per = "&ndash;" if f.returns_per_landed is None else f"{f.returns_per_landed:g}"
    facts = [
        ("landed", str(f.landed)),
        ("landed per hour", f"{f.landed_per_hour:.2f}"),
        ("queue wait p50", queue_figures.duration(f.wait_p50_s)),
        ("queue wait p95", queue_figures.duration(f.wait_p95_s)),
        ("returned to a worker", str(f.returned)),
        ("returns per landed change", per),
    ]
    dl = "".join(f'<dt>{k}</dt><dd data-figure="{k}">{v}</dd>' for k, v in facts)
    spend = "".join(
        f'<tr class="spend" data-provider="{e(s.provider)}" data-tier="{e(s.tier)}">'
        f"<td>{e(s.provider)}</td><td>{e(s.tier)}</td><td>{s.changes}</td>"
        f'<td class="tokens">{s.tokens_per_change:g}</td>'
        f'<td class="cost">{s.cost_per_change:.4f}</td></tr>'
        for s in f.spend
    )
    spent = (
        '<table class="spend"><thead><tr><th>provider</th><th>tier</th><th>changes</th>'
        "<th>tokens per landed change</th><th>cost per landed change</th></tr></thead>"
        f"<tbody>{spend}</tbody></table>"
        if spend
        else ""
    )
    return (
        f'<section class="landing"><h3>Landing</h3>{table}{pull_requests(found)}'
        f'<h4>The last {e(_hours(f.hours))}</h4><dl class="figures">{dl}</dl>{spent}'
        '<p class="note">Queue wait: from joining the queue (after its review) to landing. '
        "Tokens and cost: every attempt of the tasks that landed, per provider and tier, over "
        "every landed change.</p></section>"
    )


def pull_requests(found: LandingQueue) -> str:
    """Each pull request the queue opened (--via pull-request): its link, its task, and
    its state or what it waits for."""
    e = escape
    rows = []
    for p in found.pulls:
        link = p.url if p.url.startswith(("https://", "http://")) else ""
        now = p.waiting if p.state == "open" and p.waiting else p.state
        rows.append(
            f'<tr class="pull" data-id="{e(p.task_id)}" data-state="{e(p.state)}">'
            f'<td class="number"><a class="forge" href="{e(link)}" rel="noreferrer">'
            f"#{p.number}</a></td>"
            f'<td class="task"><a class="open" href="{task_url(p.task_id)}">{e(p.task_id)}</a> '
            f'<span class="title">{e(p.title)}</span></td>'
            f'<td class="waiting">{e(now)}</td></tr>'
        )
    if not rows:
        return ""
    return (
        '<h4>Pull requests</h4><table class="pulls"><thead><tr><th>pull request</th>'
        f"<th>task</th><th>state</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _hours(hours: float) -> str:
    return f"{hours:g} hours" if hours != 1 else "hour"


def _runs(runs: list[dict[str, Any]], can_act: bool) -> str:
    e = escape
    parts = []
    for run in runs:
        report = run["report"] if isinstance(run["report"], dict) else {}
        buttons = ""
        if can_act and run["state"] != "ended":
            wanted = "resume" if run["state"] == "paused" else "pause"
            buttons = (
                f'<button type="button" class="pilot" data-pilot="{wanted}" '
                f'data-run="{e(run["id"])}">{wanted.capitalize()}</button>'
            )
        asked = f" (last asked by {e(run['asked_by'])})" if run.get("asked_by") else ""
        workers = []
        for w in report.get("workers", []) if isinstance(report.get("workers"), list) else []:
            if not isinstance(w, dict):
                continue
            tail = "\n".join(str(line) for line in w.get("tail") or [])
            workers.append(
                f'<li class="worker"><span class="agent">{e(str(w.get("agent", "")))}</span> '
                f'<a class="open" href="{task_url(str(w.get("task", "")))}">'
                f"{e(str(w.get('task', '')))}</a> since <time>{e(str(w.get('since', '')))}"
                f'</time><details><summary>latest output</summary><pre class="tail">'
                f"{e(tail or '(none yet)')}</pre></details></li>"
            )
        totals = ", ".join(
            f"{report.get(k, 0)} {label}"
            for k, label in (("launched", "launched"), ("done", "done"), ("released", "released"))
        )
        unsandboxed = (
            '<p class="warning">workers run UNSANDBOXED (--unsandboxed-workers): each CLI runs as '
            "the person who started it, with their files and network</p>"
            if report.get("unsandboxed") is True
            else ""
        )
        red = report.get("red")
        if isinstance(red, dict):
            unsandboxed += (
                f'<p class="warning">the target is red: {e(str(red.get("target") or "a base"))} '
                f"at <code>{e(str(red.get('commit', ''))[:12])}</code> fails the project's "
                "check by itself; the queue holds and no worker is charged until it is fixed"
                f'<pre class="tail">{e(str(red.get("output", "")))}</pre></p>'
            )
        held = report.get("held")
        if isinstance(held, str) and held:
            unsandboxed += f'<p class="warning held">landing holds: {e(held)}</p>'
        process = report.get("process")
        host = process.get("host") if isinstance(process, dict) else None
        where = f" on {e(str(host))}" if host else ""
        if report.get("target"):
            where += f", landing onto <code>{e(str(report['target']))}</code>"
        parts.append(
            f'<section class="pilot-run" data-id="{e(run["id"])}" data-state="{e(run["state"])}">'
            f'<h3><code>{e(run["id"])}</code> <span class="pilot-state">{e(run["state"])}</span>'
            f"{asked} {buttons}</h3><p>{where.strip(' ,') + '; ' if where else ''}since "
            f"<time>{e(run['started_at'])}</time>, last round "
            f"<time>{e(run['seen_at'])}</time>; {e(totals)}; "
            f"{report.get('input_tokens', 0)} + {report.get('output_tokens', 0)} tokens, "
            f"${float(report.get('cost_usd', 0) or 0):.2f}</p>{unsandboxed}"
            f'<ul class="workers">{"".join(workers) or "<li class=none>no worker running</li>"}'
            "</ul></section>"
        )
    return "".join(parts)


def scheduled(found: list[Scheduled]) -> str:
    """Tasks that come back: each schedule's newest task and when the next comes."""
    if not found:
        return ""
    e = escape
    rows = "".join(
        f'<tr class="schedule" data-id="{e(s.id)}"><td>{e(s.id)}</td><td>{e(s.every)}</td>'
        f'<td><a class="open" href="{task_url(s.last_task)}">{e(s.last_task)}</a> '
        f"({e(s.last_status or 'gone')})</td>"
        f'<td class="next">{"stopped" if s.stopped else f"<time>{e(s.next_at)}</time>"}</td></tr>'
        for s in found
    )
    return (
        '<section class="scheduled"><h3>Scheduled</h3><table class="scheduled"><thead><tr>'
        "<th>schedule</th><th>every</th><th>newest task</th><th>next</th></tr></thead>"
        f'<tbody>{rows}</tbody></table><p class="note">The next comes at its time once the '
        "newest is done or cancelled (`wvo-mcp schedules`).</p></section>"
    )


def inbox(found: Inbox, can_act: bool) -> str:
    """Agents' questions waiting for a person, oldest first, each with its Answer button;
    then what those who do not steer said on the forge, not acted on."""
    return _questions(found, can_act) + _outsiders(found)


def _outsiders(found: Inbox) -> str:
    if not found.outsiders:
        return ""
    e = escape
    rows = "".join(
        f'<article class="outsider card" data-id="{e(o.task_id)}">'
        f'<div class="top"><a class="open task-id" href="{task_url(o.task_id)}">'
        f"{e(o.task_id)}</a> <span>{e(o.title)}</span></div>"
        f'<p class="said">{e(o.said)}</p>'
        f'<div class="meta"><span class="holder">{e(o.who)}</span><span>{e(o.at)}</span>'
        "</div></article>"
        for o in found.outsiders
    )
    return (
        '<h3>Not acted on</h3><p class="note">Reviews and comments on the forge by those who '
        "do not steer (docs/forge.md): shown, never acted on.</p>"
        f'<div class="inbox outsiders">{rows}</div>'
    )


def _questions(found: Inbox, can_act: bool) -> str:
    if not found.questions:
        return '<p class="none">no question waits for an answer</p>'
    e = escape
    rows = []
    for q in found.questions:
        button = '<button type="button" data-action="answer">Answer</button>' if can_act else ""
        rows.append(
            f'<article class="question card" data-id="{e(q.task_id)}">'
            f'<div class="top"><a class="open task-id" href="{task_url(q.task_id)}">'
            f"{e(q.task_id)}</a> <span>{e(q.title)}</span></div>"
            f'<p class="asked">{e(q.question)}</p>'
            f'<div class="meta"><span class="holder">{e(q.asked_by)}</span>'
            f"<span>{e(q.asked_at)}</span></div>{button}</article>"
        )
    return f'<div class="inbox">{"".join(rows)}</div>'
