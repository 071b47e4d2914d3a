"""The `wvo-mcp` command: serve over stdio (default) and the operator's commands."""

import argparse
import dataclasses
import gc
import json
import logging
import math
import os
import re
import sys
import time
from argparse import SUPPRESS
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from wvo_mcp import __version__, backups, queue_figures
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed, WvoError
from wvo_mcp.models import LandingQueue
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import identity
from wvo_mcp.rules.transitions import Status

if TYPE_CHECKING:
    from wvo_mcp.edge import http_server
    from wvo_mcp.services.roadmap_update import RoadmapUpdate

T = TypeVar("T")


def _person(args: argparse.Namespace) -> str:
    return identity.person(getattr(args, "by", None))


async def _with(settings: Settings, fn: Callable[[Orchestrator], Awaitable[T]]) -> T:
    orchestrator = await Orchestrator.open(settings)
    try:
        return await fn(orchestrator)
    finally:
        await orchestrator.close()


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    """Serve MCP over stdio (what an agent's client starts), or over streamable HTTP with
    --http (many agents and people, bearer tokens: docs/http.md)."""
    from wvo_mcp.edge import stdio
    from wvo_mcp.edge.server import build_server
    from wvo_mcp.sandbox import protect

    options = _http_options(args)
    if options is not None:
        options.check()  # bad flags are refused before anything opens
        settings = _admission_flags(settings, args)
    # Held for the process's whole life, so `restore` knows servers are running.
    with _servers_lock(settings):
        # Open (and migrate) the database before speaking MCP: a refused database then ends
        # the process with a message, instead of leaving the client waiting for `initialize`.
        anyio.run(_with, settings, _opened)
        # Likewise a layout whose trusted files sandboxed commands could reach.
        protect.layout(settings, settings.workspace_root)
        if options is not None:
            from wvo_mcp.edge import http_server

            def ready() -> None:  # the port listens: the URL printed answers
                if options.dashboard:
                    print(f"dashboard: {options.dashboard_url}", flush=True)

            http_server.serve(settings, options, ready)
            return
        anyio.run(stdio.serve, build_server(settings))


def cmd_dashboard(settings: Settings, args: argparse.Namespace) -> None:
    """Serve the live dashboard (and MCP) over HTTP: `serve --http --dashboard`; prints the
    dashboard's URL (docs/dashboard.md)."""
    args.http = args.dashboard = True
    cmd_serve(settings, args)


def _servers_lock(settings: Settings) -> AbstractContextManager[None]:
    """SQLite's restore waits for servers to stop; PostgreSQL's own tools restore."""
    if settings.database_url is not None:
        return nullcontext()
    return backups.servers_lock(settings.db_path)


async def _opened(_: Orchestrator) -> None:
    return None


HTTP_FLAGS = {
    "host": "--host",
    "port": "--port",
    "certfile": "--certfile",
    "keyfile": "--keyfile",
    "allowed_host": "--allowed-host",
    "public_url": "--public-url",
    "no_auth": "--no-auth",
    "jwt_issuer": "--jwt-issuer",
    "jwks_url": "--jwks-url",
    "jwt_audience": "--jwt-audience",
    "dashboard": "--dashboard",
    "max_inflight": "--max-inflight",
    "rate_per_token": "--rate-per-token",
    "burst_per_token": "--burst-per-token",
}


def _http_options(args: argparse.Namespace) -> "http_server.Options | None":
    """`serve --http`'s options; None for stdio (HTTP flags without --http are refused)."""
    from wvo_mcp.edge import access, http_server

    if not getattr(args, "http", False):
        given = [flag for name, flag in HTTP_FLAGS.items() if getattr(args, name, None)]
        if given:
            raise ValidationFailed(
                f"{', '.join(given)}: only for `wvo-mcp serve --http`; add --http, or drop "
                "them to serve over stdio"
            )
        return None
    jwt_flags = (args.jwt_issuer, args.jwks_url)
    if any(jwt_flags) and not all(jwt_flags):
        raise ValidationFailed(
            "an external issuer needs both --jwt-issuer URL and --jwks-url URL "
            "(and optionally --jwt-audience; default: the server's resource URL)"
        )
    options = http_server.Options(
        host=args.host if args.host is not None else "127.0.0.1",
        port=args.port if args.port is not None else http_server.DEFAULT_PORT,
        certfile=Path(args.certfile) if args.certfile else None,
        keyfile=Path(args.keyfile) if args.keyfile else None,
        allowed_hosts=tuple(args.allowed_host or ()),
        public_url=args.public_url,
        no_auth=args.no_auth,
        dashboard=bool(getattr(args, "dashboard", False)),
    )
    if args.jwt_issuer:
        options = dataclasses.replace(
            options,
            jwt=access.Jwt(
                issuer=args.jwt_issuer,
                jwks_url=args.jwks_url,
                audience=args.jwt_audience or options.resource_url,
            ),
        )
    return options


def _admission_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    """The admission limits the flags give, over the environment's (docs/http.md)."""
    given = {
        "http_max_inflight": ("--max-inflight", args.max_inflight, 0),
        "http_rate_per_token": ("--rate-per-token", args.rate_per_token, 0),
        "http_burst_per_token": ("--burst-per-token", args.burst_per_token, 1),
    }
    changes: dict[str, Any] = {}
    for field, (flag, value, least) in given.items():
        if value is None:
            continue
        if not (value >= least and math.isfinite(value)):
            raise ValidationFailed(f"{flag} {value:g} must be a number of at least {least}")
        changes[field] = value
    return dataclasses.replace(settings, **changes)


def cmd_tokens(settings: Settings, args: argparse.Namespace) -> None:
    """Bearer tokens for `serve --http`: `tokens add --role agent|person|operator --name
    NAME` (prints the secret once), `tokens list`, `tokens revoke ID`."""
    if args.action == "add":
        if not args.role or not args.name:
            raise ValidationFailed(
                "tokens add needs --role (agent, person or operator) and --name (the agent id, "
                "e.g. claude-1, or the person's name)"
            )
        issued = anyio.run(
            lambda: _with(settings, lambda o: o.token_add(args.role, args.name, _person(args)))
        )
        token = issued.token
        print(issued.secret)
        print(
            f"token {token.id}: {token.role} {token.name}. The secret above is shown once; "
            "clients send it as the header `Authorization: Bearer <secret>` (docs/http.md); "
            f"`wvo-mcp tokens revoke {token.id}` ends it",
            file=sys.stderr,
        )
        return
    if args.action == "revoke":
        if not args.id:
            raise ValidationFailed("tokens revoke needs the token's ID (`wvo-mcp tokens list`)")
        anyio.run(lambda: _with(settings, lambda o: o.token_revoke(args.id)))
        print(f"revoked {args.id}: servers refuse it from the next request")
        return
    found = anyio.run(lambda: _with(settings, lambda o: o.token_list()))
    if args.json:
        _print_json([t.shown() for t in found])
        return
    _table(
        ["id", "role", "name", "created", "by", "last used", "revoked"],
        [
            [t.id, t.role, t.name, t.created_at, t.created_by, t.last_used_at or "-",
             t.revoked_at or "-"]
            for t in found
        ],
    )  # fmt: skip


def cmd_import(settings: Settings, args: argparse.Namespace) -> None:
    """Import a roadmap (YAML, or JSON for FILE.json) as one all-or-nothing batch of new
    tasks; with --update, apply an edited one to the tasks it names (docs/operations.md)."""
    from wvo_mcp import roadmap

    if args.dry_run and not args.update:
        raise ValidationFailed(
            "--dry-run goes with --update: `wvo-mcp import --update --dry-run FILE`"
        )
    # Parsing builds millions of small objects that the cyclic GC would rescan over and
    # over (most of the time of a 100k-task import); none of them form cycles.
    gc.disable()
    try:
        specs = roadmap.load(Path(args.file))
        if args.update:
            update = anyio.run(
                lambda: _with(
                    settings, lambda o: o.update_roadmap(specs, _person(args), args.dry_run)
                )
            )
        else:
            result = anyio.run(
                lambda: _with(settings, lambda o: o.create_tasks(specs, _person(args)))
            )
    finally:
        gc.enable()
    if args.update:
        _print_update(update, args.file, settings.database_label, args.dry_run)
        return
    print(
        f"imported {len(result.created)} tasks into {settings.database_label}; "
        f"{len(result.ready)} ready"
    )


def _print_update(found: "RoadmapUpdate", source: str, label: str, dry_run: bool) -> None:
    would = "would " if dry_run else ""
    print(
        f"{label}: {would}update {len(found.changed)}, {would}add {len(found.added)}, "
        f"{found.unchanged} unchanged, {len(found.skipped)} skipped, "
        f"{len(found.missing)} not in {source}"
    )
    for entry in found.changed:
        print(f"  {would}update {entry.id}: {', '.join(entry.fields)}")
    for task_id in found.added:
        print(f"  {would}add {task_id}")
    for entry in found.skipped:
        print(
            f"  skipped {entry.id} ({entry.status}; the file changes {', '.join(entry.fields)}): "
            f"{entry.why}"
        )
    if found.missing:
        print("not in the file, kept as they are (an update never deletes or cancels a task):")
        for gone in found.missing:
            print(f"  {gone.id} ({gone.status}) {gone.title}")
    if dry_run:
        print("nothing changed (--dry-run)")


def cmd_export(settings: Settings, args: argparse.Namespace) -> None:
    """Write every task as a roadmap (to FILE atomically, JSON for FILE.json; or YAML to stdout)."""
    from wvo_mcp import roadmap
    from wvo_mcp.files import write_atomically

    tasks = anyio.run(lambda: _with(settings, lambda o: o.export_tasks()))
    text = roadmap.dump(tasks, as_json=bool(args.file) and args.file.endswith(".json"))
    if args.file:
        write_atomically(Path(args.file), text)
        print(f"exported {len(tasks)} tasks to {args.file}")
    else:
        sys.stdout.write(text)


def cmd_status(settings: Settings, args: argparse.Namespace) -> None:
    """Counts per status, who holds what and for how long, and the top of the ready queue."""
    report = anyio.run(lambda: _with(settings, lambda o: o.status_report("cli", args.top)))
    if args.json:
        _print_json(report.model_dump(mode="json"))
        return
    counts = report.counts
    print(f"state: {settings.database_label}")
    print(
        f"ready {counts.ready} | waiting on dependencies {counts.waiting_on_dependencies} | "
        f"backing off {counts.backing_off} | WIP {counts.wip_global_used}/{counts.wip_global_limit}"
    )
    print("  ".join(f"{name} {n}" for name, n in counts.by_status.items()))
    print("\nin progress:")
    _table(
        ["task", "holder", "held s", "lease left s", "attempt"],
        [
            [t["id"], t["assigned_to"], t["held_seconds"], t["lease_left_seconds"], t["attempt"]]
            for t in report.in_progress
        ],
    )
    print("\nawaiting approval (`wvo-mcp approve ID` / `wvo-mcp reject ID --note ...`):")
    _table(
        ["task", "holder", "waiting s", "reason"],
        [
            [t["id"], t["holder"] or "-", t["waiting_seconds"], (t["reason"] or "")[:60]]
            for t in report.awaiting_approval
        ],
    )
    print("\ntop ready (WSJF):")
    _table(
        ["task", "score", "BV", "TC", "RR", "EN", "size", "title"],
        [
            [
                t.id,
                f"{t.score:.2f}",
                b.business_value,
                b.time_criticality,
                b.risk_reduction,
                b.enablement,
                b.job_size,
                t.title[:50],
            ]
            for t in report.top_ready
            if (b := t.breakdown) is not None  # the status report explains every score
        ],
    )
    if report.dead_letters:
        print("\ndead letters (re-queue with `wvo-mcp requeue ID`):")
        _table(
            ["task", "attempts", "title"],
            [[t.id, t.attempts, t.title[:60]] for t in report.dead_letters],
        )


def cmd_health(settings: Settings, args: argparse.Namespace) -> None:
    """The health monitor's latest observation, open anomalies and recent actions."""
    report = anyio.run(
        lambda: _with(settings, lambda o: o.health_report(args.limit, full=args.full))
    )
    if args.json:
        _print_json(report.model_dump(mode="json"))
        return
    print(f"state: {settings.database_label}")
    print(report.message)
    snap = report.snapshot
    if snap is not None:
        c = snap.counts
        baseline = "-" if c.baseline_done_per_hour is None else f"{c.baseline_done_per_hour:g}"
        leader = (
            "no leader now"
            if report.leader is None
            else f"leader {report.leader} (lease until {report.leader_expires_at})"
        )
        print(
            f"{leader}; latest tick {snap.at}; remediation "
            f"{'on' if snap.remediate else 'off (report only)'}"
        )
        # As `status` shows them: statuses with no task left out (--json has every one).
        held = "  ".join(f"{name} {n}" for name, n in c.by_status.items() if n)
        print(f"tasks: {held or 'none'}")
        print(
            f"ready {c.ready} ({c.unroutable_ready} no provider can take now) | waiting on "
            f"dependencies {c.waiting_on_dependencies} ({c.blocked_by_abandoned} on cancelled "
            f"or dead-lettered work) | backing off {c.backing_off}"
        )
        print(
            f"WIP {c.wip_used}/{c.wip_limit} | done last hour "
            f"{c.done_last_hour} (last 5 min {c.done_last_5m}, baseline {baseline}/h) | "
            f"expired leases {c.expired_leases} | stale {c.stale_tasks}"
        )
        print(
            f"agents active {c.agents_active} (idle {c.agents_idle}), silent "
            f"{c.agents_silent} | dead letters {c.dead_letters} | awaiting approval "
            f"{c.awaiting_approval} (stuck {c.stuck_approvals}) | dependency drift "
            f"{c.dependency_drift}"
        )
    print(f"\nopen anomalies ({report.open_anomalies}):")
    _table(
        ["severity", "kind", "task", "since", "message"],
        [
            [a.severity, a.kind, a.subject or "-", a.first_seen_at, a.message[:80]]
            for a in report.anomalies
        ],
    )
    print("\nrecent actions:")
    _table(
        ["at", "task", "action", "now", "reason"],
        [[a.at, a.task_id, a.kind, a.to_status, (a.reason or "")[:70]] for a in report.actions],
    )
    if report.observation is not None:
        print("\nobservation:")
        _print_json(report.observation.model_dump(mode="json"))


def cmd_providers(settings: Settings, args: argparse.Namespace) -> None:
    """Providers and tiers: usage against the hourly and daily limits, tasks in flight,
    spend, circuit breakers (as `provider_status`)."""
    report = anyio.run(lambda: _with(settings, lambda o: o.provider_status()))
    if args.json:
        _print_json(report.model_dump(mode="json"))
        return
    print(f"providers file: {report.source}")

    def budget(b: Any) -> str:
        used = f"{b.used_tokens}+{b.reserved_tokens}"
        return used if b.limit is None else f"{used}/{b.limit} ({b.share:.0%})"

    _table(
        ["#", "provider", "hour tokens", "day tokens", "in flight", "spend day", "breaker"],
        [
            [
                p.preference,
                p.name,
                budget(p.hour),
                budget(p.day),
                f"{p.in_flight}/{p.max_concurrent or '-'}",
                f"{p.spend_day:.4f}",
                p.breaker.state
                + (f" until {p.breaker.reopens_at}" if p.breaker.state == "open" else "")
                + (f" ({p.breaker.failures} failures)" if p.breaker.failures else ""),
            ]
            for p in report.providers
        ],
    )
    print("\ntiers (cheapest first within a provider):")
    _table(
        ["provider", "tier", "model", "complexity", "hour tokens", "day tokens", "spend day"],
        [
            [
                p.name,
                t.name,
                t.model,
                f"{t.complexity[0]}-{t.complexity[1]}",
                t.hour_tokens,
                t.day_tokens,
                f"{t.spend_day:.4f}",
            ]
            for p in report.providers
            for t in p.tiers
        ],
    )


def _table(header: list[str], rows: list[list[Any]]) -> None:
    if not rows:
        print("  (none)")
        return
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def cmd_show(settings: Settings, args: argparse.Namespace) -> None:
    """One task as JSON: fields, dependencies, recent events, latest checkpoint."""
    task = anyio.run(lambda: _with(settings, lambda o: o.get_task(args.task_id)))
    _print_json(task.model_dump(mode="json"))


def cmd_requeue(settings: Settings, args: argparse.Namespace) -> None:
    """Put a task back in the queue (a dead letter, a blocked or cancelled task, or a stuck
    in-progress one, whose holder then gets "lease lost")."""
    result = anyio.run(
        lambda: _with(settings, lambda o: o.requeue(args.task_id, _person(args), args.reason))
    )
    print(result.message)


def _person_moves(
    settings: Settings, args: argparse.Namespace, to: Status, why: str, skip_verify: bool = False
) -> None:
    result = anyio.run(
        lambda: _with(
            settings,
            lambda o: o.update_status(
                args.task_id,
                to,
                _person(args),
                reason=args.reason or why,
                by_person=True,
                skip_verify=skip_verify,
            ),
        )
    )
    print(result.message)


def cmd_cancel(settings: Settings, args: argparse.Namespace) -> None:
    """Cancel a task as a person (a holder's lease ends; `requeue` brings it back)."""
    _person_moves(settings, args, Status.CANCELLED, "cancelled by a person")


def cmd_done(settings: Settings, args: argparse.Namespace) -> None:
    """Mark a task done as a person (its holder's lease ends); a verify_command still has to
    pass unless --skip-verify, which is recorded with your name."""
    _person_moves(
        settings, args, Status.DONE, "marked done by a person", skip_verify=args.skip_verify
    )


def cmd_autopilot(settings: Settings, args: argparse.Namespace) -> None:
    """Launch and supervise coding CLIs as workers, one per task, each in its own git
    worktree (the providers file says which CLI works which provider's tasks). Ctrl-C
    drains: no new launches, running workers get a grace period to finish."""
    import signal

    from wvo_mcp.autopilot import loop, slots

    if args.action == "gc":
        _autopilot_gc(settings, args)
        return
    if args.action != "run":
        _autopilot_control(settings, args.action, args.id)
        return
    options = slots.Options(
        workers=_worker_counts(args.workers),
        epic=args.epic,
        until_empty=args.until_empty,
        max_cost=args.max_cost,
        worktrees=args.worktrees,
        drain_seconds=args.grace,
        merge=args.merge,
        onto=args.onto,
        check=args.check,
        batch=args.batch,
        test_slots=args.test_slots,
        max_returns=args.max_returns,
        avoid_conflicts=not args.no_conflict_avoidance,
        review_epics=frozenset(filter(None, (args.review or "").split(","))),
        goal=args.goal,
        unsandboxed=args.unsandboxed_workers,
        preflight=not args.skip_preflight,
    )
    if args.dry_run:
        lines = anyio.run(
            _with, settings, lambda o: loop.Autopilot(o, settings, options, _say).describe()
        )
        for line in lines:
            _say(line)
        return

    from wvo_mcp.autopilot import view

    # On a terminal, a live block below the event lines; elsewhere, the lines alone.
    terminal = view.Terminal() if sys.stdout.isatty() else None
    shown: list[str] = []

    def say(message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        if terminal is None:
            _say(line)
        else:
            terminal.say(line, shown)

    async def fly(orchestrator: Orchestrator) -> slots.Summary:
        pilot = loop.Autopilot(orchestrator, settings, options, say=say)
        try:
            return await _until_done(pilot)
        except* WvoError as errors:  # said as a message, like every command's refusals
            raise errors.exceptions[0] from None

    async def _until_done(pilot: loop.Autopilot) -> slots.Summary:
        async with anyio.create_task_group() as tasks:

            async def redraw() -> None:
                assert terminal is not None
                while True:
                    shown[:] = await pilot.view()
                    terminal.draw(shown)
                    await anyio.sleep(1)

            if terminal is not None:
                tasks.start_soon(redraw)

            async def drain_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        grace = options.drain_seconds
                        say(f"draining: no new workers; running ones get {grace:.0f} s")
                        pilot.stop()

            tasks.start_soon(drain_on_signal)
            summary = await pilot.run()
            tasks.cancel_scope.cancel()
        return summary

    started = time.monotonic()
    done = anyio.run(_with, settings, fly)
    _say(
        f"autopilot: {done.launched} launched, {done.done} done, {done.released} released; "
        f"{done.input_tokens} input + {done.output_tokens} output tokens, ${done.cost_usd:.2f}"
    )
    # The queue it leaves, and its figures over the run (what a person wakes up to).
    hours = (time.monotonic() - started) / 3600
    _say_landing(anyio.run(_with, settings, lambda o: o.landing_view(hours)))


def _say(message: str) -> None:
    print(message, flush=True)


def _autopilot_gc(settings: Settings, args: argparse.Namespace) -> None:
    """`autopilot gc`: remove what finished work left behind (workers' repositories, task
    branches, run logs, scratch folders), each only once nothing in it would be lost; one
    line per thing found says which and why."""
    from wvo_mcp.autopilot import gc

    where = gc.Where(worktrees=args.worktrees, onto=args.onto)
    found = anyio.run(
        _with, settings, lambda o: gc.collect(o, settings, where, dry_run=args.dry_run)
    )
    for item in found:
        _say(f"{item.verdict} {item.what}: {item.reason}")
    removed = sum(item.verdict == "remove" for item in found)
    done = "would remove" if args.dry_run else "removed"
    _say(f"gc: {done} {removed}, kept {len(found) - removed}")


def _autopilot_control(settings: Settings, action: str, run_id: str | None) -> None:
    """`autopilot status`, or ask running autopilots to pause, resume or stop."""
    from datetime import timedelta

    from wvo_mcp import timeutil

    if action != "status":
        by = identity.person()
        heard = anyio.run(_with, settings, lambda o: o.autopilot_want(action, by, run_id))
        _say(f"asked {heard} running autopilot(s) to {action}; each acts on its next round")
        if not heard:
            sys.exit(1)
        return
    now = timeutil.now()
    since = timeutil.to_text(now - timedelta(hours=1))

    async def read(o: Orchestrator) -> tuple[list[dict[str, Any]], LandingQueue]:
        return await o.autopilot_runs(since), await o.landing_view()

    runs, queue = anyio.run(_with, settings, read)
    if not runs:
        _say("no autopilot has run in the last hour")
    for run in runs:
        report = run["report"]
        silent = (now - timeutil.from_text(run["seen_at"])).total_seconds()
        state = run["state"] + (f" (silent {silent:.0f} s)" if silent > 30 else "")
        if report.get("unsandboxed"):
            state += ", workers UNSANDBOXED"
        if report.get("red"):
            red = report["red"]
            state += f", the target is red ({red['target'] or 'a base'} at {red['commit'][:12]})"
        _say(
            f"{run['id']}: {state}, since {run['started_at']}; {report.get('launched', 0)} "
            f"launched, {report.get('done', 0)} done, {report.get('released', 0)} released; "
            f"{report.get('input_tokens', 0)} + {report.get('output_tokens', 0)} tokens, "
            f"${report.get('cost_usd', 0):.2f}"
        )
        for worker in report.get("workers", []):
            _say(f"  {worker['agent']}: {worker['task']} since {worker['since']}")
    _say_landing(queue)


def _say_landing(found: LandingQueue) -> None:
    """The merge queue, one line per open entry, and its figures."""
    n = len(found.entries)
    _say(f"merge queue: {n or 'no'} open entr{'y' if n == 1 else 'ies'}")
    for line in queue_figures.entry_lines(found):
        _say(f"  {line}")
    _say(f"  {queue_figures.summary(found.figures)}")


def _worker_counts(text: str | None) -> dict[str, int] | None:
    """--workers claude:2,codex:1"""
    if text is None:
        return None
    counts = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, number = part.partition(":")
        if not name or not (number or "1").isdigit() or int(number or "1") < 1:
            raise ValidationFailed(
                f"--workers {text!r}: write PROVIDER:N pairs, e.g. claude:2,codex:1"
            )
        counts[name] = int(number or "1")
    return counts


def cmd_approve(settings: Settings, args: argparse.Namespace) -> None:
    """Approve a task waiting in awaiting_approval."""
    result = anyio.run(
        lambda: _with(settings, lambda o: o.approve(args.task_id, _person(args), args.note))
    )
    print(result.message)


def cmd_reject(settings: Settings, args: argparse.Namespace) -> None:
    """Reject a task waiting in awaiting_approval: cancel it (default), block it, re-queue
    it, or (mid-task) hand it back to its holder with --to in_progress."""
    result = anyio.run(
        lambda: _with(
            settings, lambda o: o.reject(args.task_id, _person(args), args.note, Status(args.to))
        )
    )
    print(result.message)


def cmd_checkpoints(settings: Settings, args: argparse.Namespace) -> None:
    """List a task's checkpoints with their git snapshots."""
    found = anyio.run(lambda: _with(settings, lambda o: o.checkpoints(args.task_id)))
    _table(
        ["seq", "at", "agent", "progress", "git ref", "summary"],
        [
            [c.seq, c.created_at, c.agent_id, c.progress, c.git_ref or "-", c.summary[:50]]
            for c in found
        ],
    )


def cmd_rollback(settings: Settings, args: argparse.Namespace) -> None:
    """Restore the workspace's files from a checkpoint's git snapshot (index and branches are
    left alone); shows what will change first, and refuses over uncommitted work unless
    --force."""

    def run(apply: bool) -> str:
        return anyio.run(
            lambda: _with(
                settings, lambda o: o.rollback(args.task_id, args.to, force=args.force, apply=apply)
            )
        )

    print(run(apply=False) or "(no differences)", flush=True)
    if args.dry_run:
        print("dry run: nothing changed")
        return
    run(apply=True)
    print(f"restored checkpoint {args.to}")


def cmd_context(settings: Settings, args: argparse.Namespace) -> None:
    """Show the shared context (`context show [SECTION] [--version N]`) or a section's
    versions (`context history SECTION`)."""
    if args.action == "history":
        if not args.section:
            raise ValidationFailed("context history needs a SECTION")
        versions = anyio.run(lambda: _with(settings, lambda o: o.context_history(args.section)))
        _table(
            ["version", "mode", "author", "at", "bytes"],
            [[v.version, v.mode, v.author, v.at, v.size_bytes] for v in versions],
        )
        return
    result = anyio.run(
        lambda: _with(settings, lambda o: o.context_read(args.section, args.version))
    )
    for section in result.sections:
        print(f"## {section.name} (version {section.version}, {section.updated_by})\n")
        print(section.content.rstrip("\n") + "\n")


def cmd_backup(settings: Settings, args: argparse.Namespace) -> None:
    """Back the database up now (online: servers keep running) and prune old backups."""
    from wvo_mcp.timeutil import now

    _sqlite_only(settings, "backup")
    path = backups.take(settings.db_path, settings.backups_dir, now())
    print(f"backed up {settings.db_path} to {path} ({_size(path.stat().st_size)})")
    for pruned in backups.prune(settings.backups_dir):
        print(f"pruned {pruned.name}")


def _sqlite_only(settings: Settings, verb: str) -> None:
    if settings.database_url is not None:
        raise ValidationFailed(
            f"`wvo-mcp {verb}` copies the SQLite file; {settings.database_label} is PostgreSQL, "
            "which has its own tools: pg_dump -Fc to back up, pg_restore to restore, or "
            "continuous archiving (docs/postgres.md shows the commands)"
        )


def _size(n: int) -> str:
    return f"{n} bytes" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def cmd_restore(settings: Settings, args: argparse.Namespace) -> None:
    """Replace the database with a backup, after copying the current one aside; refused
    while servers run unless --force."""
    from wvo_mcp.timeutil import now

    _sqlite_only(settings, "restore")
    result = backups.restore(
        Path(args.file),
        settings.db_path,
        backups_dir=settings.backups_dir,
        force=args.force,
        now=now(),
    )
    if result.safety_copy is not None:
        print(f"kept the database as it was in {result.safety_copy}")
    print(f"restored {settings.db_path} from {result.restored_from}: {result.tasks} tasks")


def cmd_demo(settings: Settings, args: argparse.Namespace) -> None:
    """Import the example roadmap into a fresh state folder and let simulated agents, each a
    real MCP client of its own server process, work through it concurrently."""
    from wvo_mcp.demo import run_autopilot_demo, run_demo

    run = run_autopilot_demo if args.autopilot else run_demo
    with resources.as_file(resources.files("wvo_mcp") / "data" / "example-roadmap.yaml") as ex:
        backlog = Path(args.roadmap) if args.roadmap else ex
        ok = anyio.run(lambda: run(backlog, settings.state_root, args.agents))
    sys.exit(0 if ok else 1)


def cmd_init(settings: Settings, args: argparse.Namespace) -> None:
    """Wire wvo-mcp into the git repository you are in: a state folder kept out of git, a
    providers file for the coding CLIs on PATH, the wvo server in .mcp.json (Claude Code)
    and .codex/config.toml (Codex), the work loop in AGENTS.md and CLAUDE.md, and a starter
    roadmap (or --goal: a planner writes one). Run twice, it changes nothing."""
    from wvo_mcp.wiring import clis, init

    options = init.Options(
        cwd=Path.cwd(),
        state_root=Path(args.state_root) if args.state_root else None,
        force=args.force,
        dry_run=args.dry_run,
        goal=args.goal,
    )
    wiring = init.plan(options, clis.find())
    for line in init.describe(wiring, args.dry_run):
        _say(line)
    tools = init.toolchain_found(wiring.top, wiring.state_root)
    _say(f"  toolchain the autopilot's checks and workers see, read-only: {tools}")
    roadmap = wiring.state_root / "roadmap.yaml"
    if args.dry_run:
        if args.goal:
            _say(f"  would run a planner worker for the goal: {args.goal}")
        elif not (wiring.state_root / "orchestrator.db").exists():
            _say(f"  would import the tasks of {roadmap} into a new database")
        _say("dry run: nothing written")
        return
    init.apply(wiring)
    here = dataclasses.replace(settings, state_root=wiring.state_root, workspace_root=wiring.top)
    if args.goal:
        _say(f"a planner worker turns the goal into tasks: {args.goal}")
        anyio.run(init.plan_goal, here, args.goal, _say)
    else:
        imported = anyio.run(init.seed, here, roadmap, _person(args))
        if imported:
            _say(f"  {here.database_label}: imported {imported} starter tasks from {roadmap}")
    shared = init.uncommitted(wiring.top)
    if shared:
        _say(f"\n{init.WHY_COMMIT}:")
        _say(f"  git add {' '.join(shared)} && git commit -m 'Wire wvo-mcp'")
    _say(
        "\nnext: run `claude` or `codex` here as usual (approve the project's wvo server when "
        "asked), or `wvo-mcp autopilot` to launch workers yourself; `wvo-mcp dashboard --no-auth` "
        "shows the board; `wvo-mcp doctor` checks all of this"
    )


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> None:
    """Check the wiring of the repository you are in: the state folder and its database,
    the server started from each client's configuration, the sandbox, the coding CLIs."""
    from wvo_mcp.wiring import doctor

    checks = anyio.run(doctor.run, settings, Path.cwd(), args.check, args.onto)
    if args.json:
        _print_json([dataclasses.asdict(c) for c in checks])
    else:
        for check in checks:
            print(f"{'ok' if check.ok else 'FAIL':<6}{check.name}: {check.detail}")
    sys.exit(0 if all(c.ok for c in checks) else 1)


def cmd_sandbox(settings: Settings, args: argparse.Namespace) -> None:
    """Run a command in the sandbox (`sandbox run [options] -- CMD...`), or see which
    sandbox backends work here (`sandbox doctor`)."""
    from wvo_mcp import sandbox

    if args.action == "doctor":
        checks = sandbox.doctor(settings)
        if args.json:
            _print_json([vars(c) for c in checks])
        else:
            for check in checks:
                print(
                    f"{check.name:<7}{'usable' if check.usable else 'not usable':<12}{check.detail}"
                )
        isolated = any(c.usable for c in checks if c.name != "none")
        if not isolated and not args.json:
            print(f"\nno isolated backend works here: {sandbox.NOT_ISOLATED_HINT}")
        sys.exit(0 if isolated else 1)
    command: list[str] = args.command
    if not command:
        raise ValidationFailed("sandbox run needs a command after --, e.g. `-- pytest -q`")
    env: dict[str, str] = {}
    for item in args.env or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValidationFailed(f"--env {item!r} is not NAME=VALUE")
        env[name] = value
    request = sandbox.Request(
        command=command,
        workspace=Path(args.workspace) if args.workspace else settings.workspace_root,
        timeout_s=args.timeout,
        memory_mb=args.memory_mb,
        cpus=args.cpus,
        network=args.network,
        env=env,
    )
    result = sandbox.run(request, settings)
    if args.json:
        _print_json(result.model_dump(mode="json"))
    else:
        peak = "-" if result.peak_memory_mb is None else f"{result.peak_memory_mb:g} MB"
        code = "- (killed)" if result.exit_code is None else result.exit_code
        print(
            f"backend {result.backend} | exit {code} | {result.duration_s:g} s | "
            f"peak memory {peak}" + (" | output truncated (tail kept)" if result.truncated else "")
        )
        if result.killed_reason:
            print(f"killed: {result.killed_reason}")
        for name, tail in [("stdout", result.stdout_tail), ("stderr", result.stderr_tail)]:
            if tail:
                print(f"--- {name} ---")
                print(tail.rstrip("\n"))
    sys.exit(sandbox.cli_exit_code(result))


def _http_arguments(cmd: argparse.ArgumentParser, flag: bool = True) -> None:
    """The flags of `serve --http` (said as such when `flag`), shared by `dashboard`."""

    def said(text: str) -> str:
        return f"With --http: {text}" if flag else text[0].upper() + text[1:]

    cmd.add_argument("--host", help=said("the address to bind (default 127.0.0.1)."))
    cmd.add_argument("--port", type=int, help=said("the port (default 8765)."))
    cmd.add_argument("--certfile", help=said("the TLS certificate (PEM)."))
    cmd.add_argument("--keyfile", help=said("the TLS private key (PEM)."))
    cmd.add_argument(
        "--allowed-host",
        action="append",
        metavar="HOST[:PORT]",
        help=said("a Host header to accept besides the bound address (repeatable)."),
    )
    cmd.add_argument(
        "--public-url", help=said("the URL clients use, e.g. https://mcp.example.com/mcp.")
    )
    cmd.add_argument(
        "--no-auth", action="store_true", help=said("no bearer tokens (on loopback only).")
    )
    cmd.add_argument(
        "--jwt-issuer", help=said("accept the JWTs of this OAuth issuer instead of tokens.")
    )
    cmd.add_argument("--jwks-url", help=said("the issuer's JWKS URL (its signing keys)."))
    cmd.add_argument("--jwt-audience", help=said("the JWTs' audience (default: the resource URL)."))
    cmd.add_argument(
        "--max-inflight",
        type=int,
        metavar="N",
        help=said(
            "requests at once in this process, beyond which 503 (default "
            "$WVO_HTTP_MAX_INFLIGHT or 256; 0: no cap)."
        ),
    )
    cmd.add_argument(
        "--rate-per-token",
        type=float,
        metavar="R",
        help=said(
            "requests a second per token on average, beyond which 429 (default "
            "$WVO_HTTP_RATE_PER_TOKEN or 50; 0: no limit)."
        ),
    )
    cmd.add_argument(
        "--burst-per-token",
        type=int,
        metavar="N",
        help=said("requests per token at once (default $WVO_HTTP_BURST_PER_TOKEN or 500)."),
    )


def _summary(doc: str) -> str:
    """A docstring's first sentence: a command's line in `wvo-mcp --help`."""
    text = " ".join(doc.split())
    found = re.match(r"(.+?\.)(?=\s+[A-Z`]|$)", text)
    return found.group(1) if found else text


HELP = "Show this help and exit."
VERBOSE = "Log what happens (migrations, requests) on stderr; WVO_LOG_LEVEL, when set, wins."


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wvo-mcp", description=__doc__, add_help=False)
    p.add_argument("-h", "--help", action="help", help=HELP)
    p.add_argument(
        "--version",
        action="version",
        version=f"wvo-mcp {__version__}",
        help="Print the version and exit.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help=VERBOSE)
    p.add_argument(
        "--state-root",
        help="The state folder (default: $WVO_STATE_ROOT, else the one `wvo-mcp init` recorded "
        "for this repository, else ./state if it holds a database).",
        default=None,
    )
    sub = p.add_subparsers(
        dest="command", metavar="COMMAND", help="What to do (default: serve over stdio)."
    )

    def add(
        name: str, fn: Callable[[Settings, argparse.Namespace], None]
    ) -> argparse.ArgumentParser:
        doc = (fn.__doc__ or "").strip()
        cmd = sub.add_parser(name, help=_summary(doc), description=doc, add_help=False)
        cmd.add_argument("-h", "--help", action="help", help=HELP)
        # Also after the command (`wvo-mcp status -v`); unset, the one before it stands.
        cmd.add_argument("-v", "--verbose", action="store_true", default=SUPPRESS, help=VERBOSE)
        cmd.set_defaults(handler=fn)
        return cmd

    serve = add("serve", cmd_serve)
    serve.add_argument(
        "--http", action="store_true", help="Serve streamable HTTP instead of stdio."
    )
    serve.add_argument(
        "--dashboard", action="store_true", help="With --http: also serve the live dashboard."
    )
    _http_arguments(serve)
    _http_arguments(add("dashboard", cmd_dashboard), flag=False)
    tokens = add("tokens", cmd_tokens)
    tokens.add_argument(
        "action", choices=["add", "list", "revoke"], help="Add a token, list them, or revoke one."
    )
    tokens.add_argument("id", nargs="?", help="For revoke: the token's id.")
    tokens.add_argument(
        "--role", choices=["agent", "person", "operator"], help="For add: what it may do."
    )
    tokens.add_argument("--name", help="For add: the agent id, or the person's name.")
    tokens.add_argument("--by", help="Who adds it (default: your user name).")
    tokens.add_argument("--json", action="store_true", help="Machine-readable output.")
    imports = add("import", cmd_import)
    imports.add_argument("file", help="The roadmap: YAML, or JSON for FILE.json.")
    imports.add_argument(
        "--update",
        action="store_true",
        help="Apply an edited roadmap: change the tasks it names and add its new ones. Claimed, "
        "held and done work stays as it is; tasks it leaves out are listed, not deleted.",
    )
    imports.add_argument(
        "--dry-run",
        action="store_true",
        help="With --update: say what would change, and change nothing.",
    )
    add("export", cmd_export).add_argument(
        "file", nargs="?", help="The file to write (default: YAML to stdout)."
    )
    status = add("status", cmd_status)
    status.add_argument("--json", action="store_true", help="Machine-readable output.")
    status.add_argument(
        "--top", type=int, default=5, help="How many ready tasks to show (default 5)."
    )
    health = add("health", cmd_health)
    health.add_argument("--json", action="store_true", help="Machine-readable output.")
    health.add_argument(
        "--limit", type=int, default=10, help="Anomalies and actions to show (default 10)."
    )
    health.add_argument(
        "--full", action="store_true", help="Also the task lists behind the counts."
    )
    providers = add("providers", cmd_providers)
    providers.add_argument("--json", action="store_true", help="Machine-readable output.")
    add("show", cmd_show).add_argument("task_id", help="The task's id.")
    requeue = add("requeue", cmd_requeue)
    requeue.add_argument("task_id", help="The task's id.")
    requeue.add_argument("--by", help="Who re-queues (default: your user name).")
    requeue.add_argument("--reason", help="Why, kept in the task's events.")
    autopilot = add("autopilot", cmd_autopilot)
    autopilot.add_argument(
        "action",
        nargs="?",
        default="run",
        choices=["run", "status", "pause", "resume", "stop", "gc"],
        help="Run (the default); or, from another terminal: status, pause, resume, stop; gc "
        "removes what finished work left behind (with --dry-run: lists it).",
    )
    autopilot.add_argument("--id", help="Pause, resume or stop only this run (see status).")
    autopilot.add_argument("--workers", help="Slots per provider, e.g. claude:2,codex:1.")
    autopilot.add_argument("--epic", help="Only this epic's tasks.")
    autopilot.add_argument(
        "--until-empty", action="store_true", help="Stop when nothing is left to run."
    )
    autopilot.add_argument("--max-cost", type=float, help="Drain once workers report this USD.")
    autopilot.add_argument(
        "--worktrees",
        type=Path,
        help="Where workers' repositories go (default: WORKSPACE.wvo-worktrees).",
    )
    autopilot.add_argument(
        "--grace", type=float, default=30.0, help="Seconds running workers get on Ctrl-C."
    )
    autopilot.add_argument(
        "--merge",
        choices=["leave", "merge", "rebase"],
        default="leave",
        help="How finished work lands: leave each task's branch for a person (default), or "
        "land it on --onto through the merge queue, by a merge commit or a rebase.",
    )
    autopilot.add_argument(
        "--onto",
        help="The target branch for --merge merge|rebase; for gc: work reachable from it landed.",
    )
    autopilot.add_argument(
        "--check", help='A project-wide check every landing tree passes, e.g. "make test".'
    )
    autopilot.add_argument(
        "--batch", type=int, default=4, help="Queue entries tested as one batch (default 4)."
    )
    autopilot.add_argument(
        "--test-slots", type=int, default=2, help="Landing checks run at once (default 2)."
    )
    autopilot.add_argument(
        "--max-returns",
        type=int,
        default=3,
        help="A submission the queue sent back this often goes to a person (default 3).",
    )
    autopilot.add_argument(
        "--no-conflict-avoidance",
        action="store_true",
        help="Launch ready work in rank order even when it touches what runs or waits to "
        "land (tasks declare what they touch in metadata.files).",
    )
    autopilot.add_argument("--goal", help="A planner worker turns this into tasks first.")
    autopilot.add_argument(
        "--review",
        help="Epics whose tasks another worker reviews (comma-separated); tasks with "
        "metadata.review true always are.",
    )
    autopilot.add_argument(
        "--skip-preflight",
        action="store_true",
        help="Start without first running --check on the target (by default a red target is "
        "refused before anything launches).",
    )
    autopilot.add_argument(
        "--unsandboxed-workers",
        action="store_true",
        help="Run the worker CLIs as you, without wvo-mcp's sandbox (a setting you trust; "
        "said in the output and on the dashboard).",
    )
    autopilot.add_argument(
        "--dry-run",
        action="store_true",
        help="Print what each provider's workers would see and reach, and start nothing; "
        "with gc: list what it would remove and why, and remove nothing.",
    )
    cancel = add("cancel", cmd_cancel)
    cancel.add_argument("task_id", help="The task's id.")
    cancel.add_argument("--by", help="Who cancels (default: your user name).")
    cancel.add_argument("--reason", help="Why, kept in the task's events.")
    done = add("done", cmd_done)
    done.add_argument("task_id", help="The task's id.")
    done.add_argument("--by", help="Who marks it done (default: your user name).")
    done.add_argument("--reason", help="Why, kept in the task's events.")
    done.add_argument(
        "--skip-verify",
        action="store_true",
        help="Skip the task's verify_command (recorded with your name).",
    )
    approve = add("approve", cmd_approve)
    approve.add_argument("task_id", help="The task's id.")
    approve.add_argument("--by", help="Who approves (default: your user name).")
    approve.add_argument("--note", help="A note, kept in the task's events.")
    context = add("context", cmd_context)
    context.add_argument(
        "action", choices=["show", "history"], help="Show sections, or list a section's versions."
    )
    context.add_argument("section", nargs="?", help="A section's name (history needs one).")
    context.add_argument("--version", type=int, help="An earlier version of the section.")
    add("checkpoints", cmd_checkpoints).add_argument("task_id", help="The task's id.")
    rollback = add("rollback", cmd_rollback)
    rollback.add_argument("task_id", help="The task's id.")
    rollback.add_argument("--to", type=int, required=True, help="The checkpoint's sequence number.")
    rollback.add_argument("--force", action="store_true", help="Overwrite uncommitted work.")
    rollback.add_argument("--dry-run", action="store_true", help="Only show what would change.")
    reject = add("reject", cmd_reject)
    reject.add_argument("task_id", help="The task's id.")
    reject.add_argument(
        "--note", required=True, help="Why; the holder and the task's events see it."
    )
    reject.add_argument("--by", help="Who rejects (default: your user name).")
    reject.add_argument(
        "--to",
        default="cancelled",
        choices=["cancelled", "blocked", "pending", "in_progress"],
        help="Where the task goes (default %(default)s).",
    )
    add("backup", cmd_backup)
    restore = add("restore", cmd_restore)
    restore.add_argument("file", help="A backup (e.g. from state/backups/db/).")
    restore.add_argument(
        "--force", action="store_true", help="Restore even while servers are running."
    )
    demo = add("demo", cmd_demo)
    demo.add_argument("--agents", type=int, default=4, help="Simulated agents (default 4).")
    demo.add_argument(
        "--autopilot", action="store_true", help="The autopilot runs fake Claude Code workers."
    )
    demo.add_argument("--roadmap", help="The backlog to import (default: the example roadmap).")
    init = add("init", cmd_init)
    init.add_argument(
        "--dry-run", action="store_true", help="Print what it would write, and write nothing."
    )
    init.add_argument(
        "--force", action="store_true", help="Replace entries of ours that you changed."
    )
    init.add_argument("--goal", help="A planner worker writes the backlog for this goal.")
    init.add_argument("--by", help="Who imports the starter tasks (default: your user name).")
    doctor = add("doctor", cmd_doctor)
    doctor.add_argument("--json", action="store_true", help="Machine-readable output.")
    doctor.add_argument(
        "--check",
        help="Also run this check once on the target, in the sandbox, as the autopilot's "
        "pre-flight does.",
    )
    doctor.add_argument(
        "--onto", help="The branch the pre-flight checks (default: the current HEAD)."
    )
    sandbox = add("sandbox", cmd_sandbox)
    sandbox.add_argument(
        "action", choices=["run", "doctor"], help="Run a command, or see which backends work."
    )
    sandbox.add_argument("command", nargs="*", help="For run: the command, after --.")
    sandbox.add_argument("--json", action="store_true", help="Machine-readable output.")
    sandbox.add_argument("--timeout", type=float, default=30, help="Seconds (default 30).")
    sandbox.add_argument("--memory-mb", type=int, default=512, help="Memory in MB (default 512).")
    sandbox.add_argument("--cpus", type=float, default=1, help="CPUs (default 1).")
    sandbox.add_argument("--network", action="store_true", help="Allow network access.")
    sandbox.add_argument(
        "--workspace", help="The writable directory (default: $WVO_WORKSPACE_ROOT or .)."
    )
    sandbox.add_argument(
        "--env",
        action="append",
        metavar="NAME=VALUE",
        help="A variable for the command (repeatable).",
    )
    return p


def _parse(argv: list[str]) -> argparse.Namespace:
    # argparse does not hand `--` on to a subcommand, so `sandbox run ... -- CMD` is cut here.
    if "--" in argv:
        cut = argv.index("--")
        args = parser().parse_args(argv[:cut])
        if getattr(args, "handler", None) is cmd_sandbox:
            args.command = [*args.command, *argv[cut + 1 :]]
            return args
    return parser().parse_args(argv)


# Commands that run without a state folder found for them: a client starts `serve` with
# WVO_STATE_ROOT (without one, ./state as ever), init makes one, demo has its own, doctor and
# sandbox only look. Every other command refuses rather than make ./state where it stands.
STATELESS = (cmd_serve, cmd_init, cmd_demo, cmd_doctor, cmd_sandbox)


def main(argv: list[str] | None = None) -> None:
    args = _parse(sys.argv[1:] if argv is None else argv)
    handler = getattr(args, "handler", cmd_serve)
    state_root = args.state_root
    if handler is cmd_demo and state_root is None:
        state_root = "state/demo"
    elif state_root is None and not os.environ.get("WVO_STATE_ROOT"):
        from wvo_mcp.wiring import place

        state_root = place.found(Path.cwd())
        if state_root is None and handler not in STATELESS:
            print(f"wvo-mcp: {place.NOT_INITIALISED}", file=sys.stderr)
            sys.exit(2)
    try:
        settings = Settings.from_env(state_root=state_root)
        # Quiet unless asked: a client shows every stderr line of a server as an error, and a
        # person's command answers on stdout; -v (or WVO_LOG_LEVEL) shows migrations and more.
        if not settings.log_level:
            settings = dataclasses.replace(
                settings, log_level="info" if args.verbose else "warning"
            )
        logging.basicConfig(
            level=settings.log_level.upper(), stream=sys.stderr, format="%(levelname)s %(message)s"
        )
        handler(settings, args)
    except WvoError as exc:
        print(f"wvo-mcp: {exc}", file=sys.stderr)
        sys.exit(2)
