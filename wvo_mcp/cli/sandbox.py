"""`sandbox`: run a command in the sandbox, or see which backends work here."""

import argparse
import sys
from pathlib import Path

from wvo_mcp.cli.command import Command
from wvo_mcp.cli.output import print_json, say, show
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed


def cmd_sandbox(settings: Settings, args: argparse.Namespace) -> None:
    """Run a command in the sandbox (`sandbox run [options] -- CMD...`), or see which
    sandbox backends work here (`sandbox doctor`)."""
    from wvo_mcp import sandbox

    if args.action == "doctor":
        checks = sandbox.doctor(settings)
        if args.json:
            print_json([vars(c) for c in checks])
        else:
            for check in checks:
                say(
                    f"{check.name:<7}{'usable' if check.usable else 'not usable':<12}{check.detail}"
                )
        isolated = any(c.usable for c in checks if c.name != "none")
        if not isolated and not args.json:
            show(f"\nno isolated backend works here: {sandbox.NOT_ISOLATED_HINT}\n")
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
        print_json(result.model_dump(mode="json"))
    else:
        peak = "-" if result.peak_memory_mb is None else f"{result.peak_memory_mb:g} MB"
        code = "- (killed)" if result.exit_code is None else result.exit_code
        say(
            f"backend {result.backend} | exit {code} | {result.duration_s:g} s | "
            f"peak memory {peak}" + (" | output truncated (tail kept)" if result.truncated else "")
        )
        if result.killed_reason:
            say(f"killed: {result.killed_reason}")
        for name, tail in [("stdout", result.stdout_tail), ("stderr", result.stderr_tail)]:
            if tail:
                say(f"--- {name} ---")
                show(tail.rstrip("\n") + "\n")
    sys.exit(sandbox.cli_exit_code(result))


def _sandbox_arguments(sandbox: argparse.ArgumentParser) -> None:
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


SANDBOX = Command("sandbox", cmd_sandbox, _sandbox_arguments)
