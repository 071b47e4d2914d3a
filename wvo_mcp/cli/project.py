"""`init`, `doctor` and `demo`: wire wvo-mcp into a repository, check it, show it at work.

wvo-mcp in a project: `init` wires it into the repository you are in, `doctor` checks the
wiring, `demo` shows it at work on a scratch backlog."""

import argparse
import dataclasses
import sys
from importlib import resources
from pathlib import Path

import anyio

from wvo_mcp.cli.command import Command, app_arguments, person, trust_arguments
from wvo_mcp.cli.output import print_json, say
from wvo_mcp.config import Settings


def cmd_demo(settings: Settings, args: argparse.Namespace) -> None:
    """Import the example roadmap into a fresh state folder and let simulated agents, each a
    real MCP client of its own server process, work through it concurrently."""
    from wvo_mcp.cli.demo import run_autopilot_demo, run_demo

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
        say(line)
    tools = init.toolchain_found(wiring.top, wiring.state_root)
    say(f"  toolchain the autopilot's checks and workers see, read-only: {tools}")
    roadmap = wiring.state_root / "roadmap.yaml"
    if args.dry_run:
        if args.goal:
            say(f"  would run a planner worker for the goal: {args.goal}")
        elif not (wiring.state_root / "orchestrator.db").exists():
            say(f"  would import the tasks of {roadmap} into a new database")
        say("dry run: nothing written")
        return
    init.apply(wiring)
    here = dataclasses.replace(settings, state_root=wiring.state_root, workspace_root=wiring.top)
    if args.goal:
        say(f"a planner worker turns the goal into tasks: {args.goal}")
        anyio.run(init.plan_goal, here, args.goal, say)
    else:
        imported = anyio.run(init.seed, here, roadmap, person(args))
        if imported:
            say(f"  {here.database_label}: imported {imported} starter tasks from {roadmap}")
    shared, local = init.shared(wiring, init.uncommitted(wiring.top))
    if shared:
        say()
        say(f"{init.WHY_COMMIT}:")
        say(f"  git add {' '.join(shared)} && git commit -m 'Wire wvo-mcp'")
    if local:
        say()
        say(
            f"per machine, not to commit: {' and '.join(local)} start wvo-mcp as "
            f"{wiring.local_command}, this machine's, since `wvo-mcp` is not on PATH; put its "
            "folder on PATH (`pipx ensurepath`) and run `wvo-mcp init --force` to make them "
            "shareable"
        )
    say(
        f"per machine: the state folder {wiring.state_root} (recorded in .git/config); a "
        "teammate runs `wvo-mcp init` in their clone once, which keeps the committed files"
    )
    say()
    say(
        "next: run `claude` or `codex` here as usual (approve the project's wvo server when "
        "asked), or `wvo-mcp autopilot` to launch workers yourself; `wvo-mcp dashboard --no-auth` "
        "shows the board; `wvo-mcp doctor` checks all of this"
    )
    if (lands := init.landing(wiring.top)) is not None:
        say(lands)


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> None:
    """Check the wiring of the repository you are in: the state folder and its database,
    the server started from each client's configuration, the sandbox, the coding CLIs."""
    from wvo_mcp.wiring import doctor

    checks = anyio.run(
        doctor.run,
        settings,
        Path.cwd(),
        args.check,
        args.onto,
        "pull-request" if args.via == "merge-request" else args.via,
        args.forge_api,
    )
    if args.json:
        print_json([dataclasses.asdict(c) for c in checks])
    else:
        for check in checks:
            say(f"{'ok' if check.ok else 'FAIL':<6}{check.name}: {check.detail}")
    sys.exit(0 if all(c.ok for c in checks) else 1)


def _demo_arguments(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--agents", type=int, default=4, help="Simulated agents (default 4).")
    demo.add_argument(
        "--autopilot", action="store_true", help="The autopilot runs fake Claude Code workers."
    )
    demo.add_argument("--roadmap", help="The backlog to import (default: the example roadmap).")


def _init_arguments(init: argparse.ArgumentParser) -> None:
    init.add_argument(
        "--dry-run", action="store_true", help="Print what it would write, and write nothing."
    )
    init.add_argument(
        "--force", action="store_true", help="Replace entries of ours that you changed."
    )
    init.add_argument("--goal", help="A planner worker writes the backlog for this goal.")
    init.add_argument("--by", help="Who imports the starter tasks (default: your user name).")


def _doctor_arguments(doctor: argparse.ArgumentParser) -> None:
    doctor.add_argument("--json", action="store_true", help="Machine-readable output.")
    trust_arguments(doctor)
    app_arguments(doctor)
    doctor.add_argument(
        "--check",
        help="Also run this check once on the target, in the sandbox, as the autopilot's "
        "pre-flight does.",
    )
    doctor.add_argument(
        "--onto", help="The branch the pre-flight checks (default: the current HEAD)."
    )
    doctor.add_argument(
        "--via",
        choices=["push", "pull-request", "merge-request"],
        default="push",
        help="With pull-request (merge-request: GitLab's word for it) and --onto "
        "REMOTE/BRANCH, also check the forge's token and each permission landing through "
        "pull or merge requests needs (probes that write nothing).",
    )
    doctor.add_argument(
        "--forge-api",
        metavar="URL",
        help="The forge's API base URL (default: WVO_FORGE_API, else from the remote's URL).",
    )


DEMO = Command("demo", cmd_demo, _demo_arguments)
INIT = Command("init", cmd_init, _init_arguments)
DOCTOR = Command("doctor", cmd_doctor, _doctor_arguments)
