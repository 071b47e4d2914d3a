"""`wvo-mcp autopilot`: run workers, steer running autopilots, clean up after them.

`autopilot`: run workers and supervise them (`run`), or, from another terminal, see and
steer running autopilots (`status`, `pause`, `resume`, `stop`) and clear what finished work
left behind (`gc`)."""

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from wvo_mcp import queue_figures
from wvo_mcp.cli.command import Command, app_arguments, opened, trust_arguments
from wvo_mcp.cli.output import say
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed, WvoError
from wvo_mcp.models import LandingQueue
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import identity

if TYPE_CHECKING:
    from wvo_mcp.autopilot import slots


def cmd_autopilot(settings: Settings, args: argparse.Namespace) -> None:
    """Launch and supervise coding CLIs as workers, one per task, each in its own git
    worktree (the providers file says which CLI works which provider's tasks). Ctrl-C
    drains: no new launches, running workers get a grace period to finish."""
    from wvo_mcp.autopilot import loop

    if args.action == "gc":
        _autopilot_gc(settings, args)
        return
    if args.action != "run":
        _autopilot_control(settings, args.action, args.id)
        return
    options = _options(args)
    if args.dry_run:
        lines = anyio.run(
            opened, settings, lambda o: loop.Autopilot(o, settings, options, say).describe()
        )
        for line in lines:
            say(line)
        return
    started = time.monotonic()
    done = _fly(settings, options)
    say(
        f"autopilot: {done.launched} launched, {done.done} done, {done.released} released; "
        f"{done.input_tokens} input + {done.output_tokens} output tokens, ${done.cost_usd:.2f}"
    )
    # The queue it leaves, and its figures over the run (what a person wakes up to).
    hours = (time.monotonic() - started) / 3600
    _say_landing(anyio.run(opened, settings, lambda o: o.landing_view(hours)))


def _options(args: argparse.Namespace) -> "slots.Options":
    from wvo_mcp.autopilot import slots

    if not 1 <= args.forge_batch <= 50 or (args.forge_batch > 1 and args.via == "push"):
        raise ValidationFailed(
            f"--forge-batch {args.forge_batch}: give a number of tasks from 1 to 50 (what one "
            "pull request's text holds), and (above 1) --via pull-request, whose pull "
            "requests it batches"
        )
    return slots.Options(
        workers=_worker_counts(args.workers),
        epic=args.epic,
        until_empty=args.until_empty,
        max_cost=args.max_cost,
        worktrees=args.worktrees,
        drain_seconds=args.grace,
        merge=args.merge,
        onto=args.onto,
        push=args.push,
        via="pull-request" if args.via == "merge-request" else args.via,
        forge_api=args.forge_api,
        forge_poll=args.forge_poll,
        forge_safety_poll=args.forge_safety_poll,
        forge_batch=args.forge_batch,
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


def _fly(settings: Settings, options: "slots.Options") -> "slots.Summary":
    """Run the autopilot until it is done, or drained by SIGINT or SIGTERM."""
    import signal

    from wvo_mcp.autopilot import loop, slots, view

    # On a terminal, a live block below the event lines; elsewhere, the lines alone.
    terminal = view.Terminal() if sys.stdout.isatty() else None
    shown: list[str] = []

    def stamped(message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        if terminal is None:
            say(line)
        else:
            terminal.say(line, shown)

    async def fly(orchestrator: Orchestrator) -> slots.Summary:
        pilot = loop.Autopilot(orchestrator, settings, options, say=stamped)
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
                        stamped(f"draining: no new workers; running ones get {grace:.0f} s")
                        pilot.stop()

            tasks.start_soon(drain_on_signal)
            summary = await pilot.run()
            tasks.cancel_scope.cancel()
        return summary

    return anyio.run(opened, settings, fly)


def _autopilot_gc(settings: Settings, args: argparse.Namespace) -> None:
    """`autopilot gc`: remove what finished work left behind (workers' repositories, task
    branches, run logs, scratch folders), each only once nothing in it would be lost; one
    line per thing found says which and why."""
    from wvo_mcp.autopilot import gc

    where = gc.Where(worktrees=args.worktrees, onto=args.onto)
    found = anyio.run(
        opened, settings, lambda o: gc.collect(o, settings, where, dry_run=args.dry_run)
    )
    for item in found:
        say(f"{item.verdict} {item.what}: {item.reason}")
    removed = sum(item.verdict == "remove" for item in found)
    done = "would remove" if args.dry_run else "removed"
    say(f"gc: {done} {removed}, kept {len(found) - removed}")


def _autopilot_control(settings: Settings, action: str, run_id: str | None) -> None:
    """`autopilot status`, or ask running autopilots to pause, resume or stop."""
    from datetime import timedelta

    from wvo_mcp import timeutil

    if action != "status":
        by = identity.person()
        heard = anyio.run(opened, settings, lambda o: o.autopilot_want(action, by, run_id))
        say(f"asked {heard} running autopilot(s) to {action}; each acts on its next round")
        if not heard:
            sys.exit(1)
        return
    now = timeutil.now()
    since = timeutil.to_text(now - timedelta(hours=1))

    async def read(o: Orchestrator) -> tuple[list[dict[str, Any]], LandingQueue]:
        return await o.autopilot_runs(since), await o.landing_view()

    runs, queue = anyio.run(opened, settings, read)
    if not runs:
        say("no autopilot has run in the last hour")
    for run in runs:
        report = run["report"]
        silent = (now - timeutil.from_text(run["seen_at"])).total_seconds()
        state = run["state"] + (f" (silent {silent:.0f} s)" if silent > 30 else "")
        if report.get("unsandboxed"):
            state += ", workers UNSANDBOXED"
        if report.get("held"):
            state += f", landing held: {report['held']}"
        if report.get("red"):
            red = report["red"]
            state += f", the target is red ({red['target'] or 'a base'} at {red['commit'][:12]})"
        host = (report.get("process") or {}).get("host", "?")
        onto = f", landing onto {report['target']}" if report.get("target") else ""
        say(
            f"{run['id']} on {host}{onto}: {state}, since {run['started_at']}; "
            f"{report.get('launched', 0)} "
            f"launched, {report.get('done', 0)} done, {report.get('released', 0)} released; "
            f"{report.get('input_tokens', 0)} + {report.get('output_tokens', 0)} tokens, "
            f"${report.get('cost_usd', 0):.2f}"
        )
        for worker in report.get("workers", []):
            say(f"  {worker['agent']}: {worker['task']} since {worker['since']}")
    _say_landing(queue)


def _say_landing(found: LandingQueue) -> None:
    """The merge queue, one line per open entry, and its figures."""
    n = len(found.entries)
    say(f"merge queue: {n or 'no'} open entr{'y' if n == 1 else 'ies'}")
    for line in queue_figures.entry_lines(found) + queue_figures.pull_lines(found):
        say(f"  {line}")
    say(f"  {queue_figures.summary(found.figures)}")


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


def _autopilot_arguments(autopilot: argparse.ArgumentParser) -> None:
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
    _landing_arguments(autopilot)
    _launch_arguments(autopilot)
    trust_arguments(autopilot)
    app_arguments(autopilot)


def _landing_arguments(autopilot: argparse.ArgumentParser) -> None:
    """How finished work lands: the merge queue's flags."""
    autopilot.add_argument(
        "--merge",
        choices=["leave", "merge", "rebase"],
        default="leave",
        help="How finished work lands: leave each task's branch for a person (default), or "
        "land it on --onto through the merge queue, by a merge commit or a rebase.",
    )
    autopilot.add_argument(
        "--onto",
        help="The target branch for --merge merge|rebase: a local branch (main), or a remote's "
        "as git names it (origin/main: landed by compare-and-swap pushes, from any number of "
        "hosts); for gc: work reachable from it landed.",
    )
    autopilot.add_argument(
        "--push",
        metavar="REMOTE",
        help="With --merge leave: push each verified task's branch wvo/<task> to this remote "
        "(origin), for a person or the hosting service's pull requests to take from there.",
    )
    autopilot.add_argument(
        "--via",
        choices=["push", "pull-request", "merge-request"],
        default="push",
        help="How --onto a remote's branch lands: by compare-and-swap pushes (default), or "
        "through the forge's pull requests, merged once its required checks and reviews "
        "pass (a protected branch; GitHub or GitLab; docs/forge.md). merge-request is "
        "GitLab's word for pull-request: the same.",
    )
    autopilot.add_argument(
        "--forge-api",
        metavar="URL",
        help="With --via pull-request: the forge's API base URL (default: WVO_FORGE_API, else "
        "from the remote's URL; https://HOST/api/v3 for a GitHub Enterprise Server, "
        "https://HOST/api/v4 for GitLab).",
    )
    autopilot.add_argument(
        "--forge-poll",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="With --via pull-request: seconds between two looks at one pull request "
        "while no webhook delivery comes for its repository (default 10).",
    )
    autopilot.add_argument(
        "--forge-safety-poll",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="With --via pull-request, where webhook deliveries come (serve --http): seconds "
        "between two looks at one pull request that no delivery asked for, the net for a "
        "lost one (default 600).",
    )
    autopilot.add_argument(
        "--forge-batch",
        type=int,
        default=1,
        metavar="N",
        help="With --via pull-request: up to N verified tasks go out as one pull request, "
        "each its own commit, split when its check fails or a reviewer asks for changes; "
        "for when the forge's limits, not the fleet, bound landing (default 1: one each).",
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


def _launch_arguments(autopilot: argparse.ArgumentParser) -> None:
    """What the autopilot launches, and how."""
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


AUTOPILOT = Command("autopilot", cmd_autopilot, _autopilot_arguments)
