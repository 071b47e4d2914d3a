"""What a person reads: `status`, `health`, `providers`, `show`, `checkpoints`, `context`."""

import argparse
import dataclasses
from typing import Any

import anyio

from wvo_mcp.cli.command import Command, opened
from wvo_mcp.cli.output import print_json, say, show, table
from wvo_mcp.cli.roadmap import show_schedules
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.text import plain
from wvo_mcp.rules.transitions import Status


def cmd_status(settings: Settings, args: argparse.Namespace) -> None:
    """Counts per status, who holds what and for how long, and the top of the ready queue."""
    report = anyio.run(lambda: opened(settings, lambda o: o.status_report("cli", args.top)))
    if args.json:
        print_json(report.model_dump(mode="json"))
        return
    counts = report.counts
    say(f"state: {settings.database_label}")
    say(
        f"ready {counts.ready} | waiting on dependencies {counts.waiting_on_dependencies} | "
        f"backing off {counts.backing_off} | "
        f"WIP {counts.wip_global_used}/{counts.wip_global_limit}"
    )
    say("  ".join(f"{name} {n}" for name, n in counts.by_status.items()))
    show("\nin progress:\n")
    table(
        ["task", "holder", "held s", "lease left s", "attempt"],
        [
            [t["id"], t["assigned_to"], t["held_seconds"], t["lease_left_seconds"], t["attempt"]]
            for t in report.in_progress
        ],
    )
    show("\nawaiting approval (`wvo-mcp approve ID` / `wvo-mcp reject ID --note ...`):\n")
    table(
        ["task", "holder", "waiting s", "reason"],
        [
            [t["id"], t["holder"] or "-", t["waiting_seconds"], (t["reason"] or "")[:60]]
            for t in report.awaiting_approval
        ],
    )
    if report.paused:
        say()
        say(f"{report.paused} (`wvo-mcp resume`)")
    if report.stopped:
        show("\nstopped until a person acts:\n")
        for t in report.stopped:
            reason = f": {plain(t['reason'], 100)}" if t["reason"] else ""
            say(f"  {plain(t['id'])} {t['status']} for {t['waiting_seconds']} s{reason}")
            say(f"    {plain(t['way_out'])}")
    show("\ntop ready (WSJF):\n")
    table(
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
    if report.scheduled:
        show("\nscheduled (`wvo-mcp schedules`):\n")
        show_schedules(report.scheduled)
    if report.unsynced:
        show("\nissues not synced (each said once on the issue; fixed there, the next "
             "`import github:` pass syncs it):\n")  # fmt: skip
        for u in report.unsynced:
            kept = f"{u.task} stays as it was" if u.made else "no task"
            say(f"  {plain(u.repository)}#{u.issue} ({kept}, since {u.since}): "
                f"{plain(u.why, 300)}")  # fmt: skip
    if report.checks:
        show("\nlanding checks (a flake is a failure that did not come back on a rerun; "
             "failures: first runs that failed; `wvo-mcp quarantine`):\n")  # fmt: skip
        table(
            ["check", "runs", "failures", "flake rate", "returns spared", "reruns", "rerun time"],
            [[plain(c.command, 60), c.runs, c.failures, f"{c.flake_rate:.1%}", c.flakes,
              c.reruns, f"{c.rerun_seconds:.1f} s"] for c in report.checks],
        )  # fmt: skip
    routes = [f"  {t.id}: {t.route}" for t in report.top_ready if t.route]
    if routes:
        show("\nroutes:\n" + "\n".join(routes) + "\n")
    if report.dead_letters:
        show("\ndead letters (re-queue with `wvo-mcp requeue ID`):\n")
        table(
            ["task", "attempts", "title"],
            [[t.id, t.attempts, t.title[:60]] for t in report.dead_letters],
        )


def cmd_health(settings: Settings, args: argparse.Namespace) -> None:
    """The health monitor's latest observation, open anomalies and recent actions."""
    report = anyio.run(
        lambda: opened(settings, lambda o: o.health_report(args.limit, full=args.full))
    )
    if args.json:
        print_json(report.model_dump(mode="json"))
        return
    say(f"state: {settings.database_label}")
    say(report.message)
    snap = report.snapshot
    if snap is not None:
        c = snap.counts
        baseline = "-" if c.baseline_done_per_hour is None else f"{c.baseline_done_per_hour:g}"
        leader = (
            "no leader now"
            if report.leader is None
            else f"leader {report.leader} (lease until {report.leader_expires_at})"
        )
        say(
            f"{leader}; latest tick {snap.at}; remediation "
            f"{'on' if snap.remediate else 'off (report only)'}"
        )
        # As `status` shows them: statuses with no task left out (--json has every one).
        held = "  ".join(f"{name} {n}" for name, n in c.by_status.items() if n)
        say(f"tasks: {held or 'none'}")
        say(
            f"ready {c.ready} ({c.unroutable_ready} no provider can take now) | waiting on "
            f"dependencies {c.waiting_on_dependencies} ({c.blocked_by_abandoned} on cancelled "
            f"or dead-lettered work) | backing off {c.backing_off}"
        )
        say(
            f"WIP {c.wip_used}/{c.wip_limit} | done last hour "
            f"{c.done_last_hour} (last 5 min {c.done_last_5m}, baseline {baseline}/h) | "
            f"expired leases {c.expired_leases} | stale {c.stale_tasks}"
        )
        say(
            f"agents active {c.agents_active} (idle {c.agents_idle}), silent "
            f"{c.agents_silent} | dead letters {c.dead_letters} | awaiting approval "
            f"{c.awaiting_approval} (stuck {c.stuck_approvals}) | dependency drift "
            f"{c.dependency_drift}"
        )
    show(f"\nopen anomalies ({report.open_anomalies}):\n")
    table(
        ["severity", "kind", "task", "since", "message"],
        [
            [a.severity, a.kind, a.subject or "-", a.first_seen_at, a.message[:80]]
            for a in report.anomalies
        ],
    )
    show("\nrecent actions:\n")
    table(
        ["at", "task", "action", "now", "reason"],
        [[a.at, a.task_id, a.kind, a.to_status, (a.reason or "")[:70]] for a in report.actions],
    )
    if report.observation is not None:
        show("\nobservation:\n")
        print_json(report.observation.model_dump(mode="json"))


def cmd_providers(settings: Settings, args: argparse.Namespace) -> None:
    """Providers and tiers: usage against the hourly and daily limits, tasks in flight,
    spend, circuit breakers (as `provider_status`)."""
    report = anyio.run(lambda: opened(settings, lambda o: o.provider_status()))
    if args.json:
        print_json(report.model_dump(mode="json"))
        return
    say(f"providers file: {report.source}")

    def budget(b: Any) -> str:
        used = f"{b.used_tokens}+{b.reserved_tokens}"
        return used if b.limit is None else f"{used}/{b.limit} ({b.share:.0%})"

    table(
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
    show("\ntiers (cheapest first within a provider):\n")
    table(
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


def cmd_show(settings: Settings, args: argparse.Namespace) -> None:
    """One task as JSON: fields, dependencies, recent events, latest checkpoint, what each
    autopilot run on it was charged (`charges`: when, who, tokens in and out, cost, and the
    meter's count and its CLI's word they came from), and for a pending task where routing
    would send it now and why."""

    async def read(orch: Orchestrator) -> dict[str, Any]:
        task = await orch.get_task(args.task_id)
        shown = task.model_dump(mode="json")
        shown["charges"] = [dataclasses.asdict(c) for c in await orch.run_charges(task.id)]
        if task.status == Status.PENDING:
            shown["route"] = (await orch.route_task(task.id)).model_dump(mode="json")
        return shown

    print_json(anyio.run(lambda: opened(settings, read)))


def cmd_checkpoints(settings: Settings, args: argparse.Namespace) -> None:
    """List a task's checkpoints with their git snapshots."""
    found = anyio.run(lambda: opened(settings, lambda o: o.checkpoints(args.task_id)))
    table(
        ["seq", "at", "agent", "progress", "git ref", "summary"],
        [
            [c.seq, c.created_at, c.agent_id, c.progress, c.git_ref or "-", c.summary[:50]]
            for c in found
        ],
    )


def cmd_context(settings: Settings, args: argparse.Namespace) -> None:
    """Show the shared context (`context show [SECTION] [--version N]`) or a section's
    versions (`context history SECTION`)."""
    if args.action == "history":
        if not args.section:
            raise ValidationFailed("context history needs a SECTION")
        versions = anyio.run(lambda: opened(settings, lambda o: o.context_history(args.section)))
        table(
            ["version", "mode", "author", "at", "bytes"],
            [[v.version, v.mode, v.author, v.at, v.size_bytes] for v in versions],
        )
        return
    result = anyio.run(
        lambda: opened(settings, lambda o: o.context_read(args.section, args.version))
    )
    for section in result.sections:
        say(f"## {section.name} (version {section.version}, {section.updated_by})")
        say()
        show(section.content.rstrip("\n") + "\n\n")


def _json_flag(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--json", action="store_true", help="Machine-readable output.")


def _status_arguments(status: argparse.ArgumentParser) -> None:
    _json_flag(status)
    status.add_argument(
        "--top", type=int, default=5, help="How many ready tasks to show (default 5)."
    )


def _health_arguments(health: argparse.ArgumentParser) -> None:
    _json_flag(health)
    health.add_argument(
        "--limit", type=int, default=10, help="Anomalies and actions to show (default 10)."
    )
    health.add_argument(
        "--full", action="store_true", help="Also the task lists behind the counts."
    )


def _task_id(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("task_id", help="The task's id.")


def _context_arguments(context: argparse.ArgumentParser) -> None:
    context.add_argument(
        "action", choices=["show", "history"], help="Show sections, or list a section's versions."
    )
    context.add_argument("section", nargs="?", help="A section's name (history needs one).")
    context.add_argument("--version", type=int, help="An earlier version of the section.")


STATUS = Command("status", cmd_status, _status_arguments)
HEALTH = Command("health", cmd_health, _health_arguments)
PROVIDERS = Command("providers", cmd_providers, _json_flag)
SHOW = Command("show", cmd_show, _task_id)
CHECKPOINTS = Command("checkpoints", cmd_checkpoints, _task_id)
CONTEXT = Command("context", cmd_context, _context_arguments)
