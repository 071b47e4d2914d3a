"""The `wvo-mcp` command: serve over stdio (default) and the operator's commands."""

import argparse
import dataclasses
import difflib
import logging
import os
import re
import sys
from argparse import SUPPRESS
from pathlib import Path
from typing import Any

from wvo_mcp import __version__
from wvo_mcp.cli import autopilot, backups, fleet, project, reports, roadmap, sandbox, serve, tasks
from wvo_mcp.cli.command import Command, Handler, with_app, with_trust
from wvo_mcp.cli.output import warn
from wvo_mcp.config import Settings
from wvo_mcp.errors import WvoError
from wvo_mcp.rules.text import plain, shown

# In the order `wvo-mcp --help` lists them.
COMMANDS: tuple[Command, ...] = (
    serve.SERVE,
    serve.STOP,
    serve.DASHBOARD,
    serve.TOKENS,
    roadmap.IMPORT,
    roadmap.EXPORT,
    roadmap.SCHEDULES,
    reports.STATUS,
    reports.HEALTH,
    reports.PROVIDERS,
    reports.SHOW,
    tasks.REQUEUE,
    autopilot.AUTOPILOT,
    tasks.CANCEL,
    tasks.DONE,
    tasks.APPROVE,
    reports.CONTEXT,
    reports.CHECKPOINTS,
    tasks.ROLLBACK,
    tasks.REJECT,
    fleet.INBOX,
    fleet.ANSWER,
    fleet.QUARANTINE,
    fleet.TELL,
    fleet.PAUSE,
    fleet.RESUME,
    fleet.REDIRECT,
    backups.BACKUP,
    backups.RESTORE,
    project.DEMO,
    project.INIT,
    project.DOCTOR,
    sandbox.SANDBOX,
)


def summary(doc: str) -> str:
    """A docstring's first sentence: a command's line in `wvo-mcp --help`."""
    text = " ".join(doc.split())
    found = re.match(r"(.+?\.)(?=\s+[A-Z`]|$)", text)
    return found.group(1) if found else text


HELP = "Show this help and exit."
VERBOSE = "Log what happens (migrations, requests) on stderr; WVO_LOG_LEVEL, when set, wins."


class Parser(argparse.ArgumentParser):
    """The top-level parser, knowing each command's own (for what it says of a mistake)."""

    commands: dict[str, argparse.ArgumentParser]


def parser() -> Parser:
    p = Parser(prog="wvo-mcp", description=__doc__, add_help=False)
    p.commands = {}
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
    for command in COMMANDS:
        doc = (command.handler.__doc__ or "").strip()
        cmd = sub.add_parser(command.name, help=summary(doc), description=doc, add_help=False)
        p.commands[command.name] = cmd
        cmd.add_argument("-h", "--help", action="help", help=HELP)
        # Also after the command (`wvo-mcp status -v`); unset, the one before it stands.
        cmd.add_argument("-v", "--verbose", action="store_true", default=SUPPRESS, help=VERBOSE)
        cmd.set_defaults(handler=command.handler)
        command.arguments(cmd)
    return p


def _parse(argv: list[str]) -> argparse.Namespace:
    # argparse does not hand `--` on to a subcommand, so `sandbox run ... -- CMD` is cut here.
    if "--" in argv:
        cut = argv.index("--")
        args = _parsed(argv[:cut])
        if getattr(args, "handler", None) is sandbox.cmd_sandbox:
            args.command = [*args.command, *argv[cut + 1 :]]
            return args
    return _parsed(argv)


def _parsed(argv: list[str]) -> argparse.Namespace:
    """argv parsed; words nobody knows are refused by the command they follow, with the
    option they most look like."""
    p = parser()
    args, extra = p.parse_known_args(argv)
    if extra:
        where = p.commands.get(getattr(args, "command", None) or "", p)
        options = [o for action in where._actions for o in action.option_strings]
        hints = [
            f"did you mean {found[0]}?"
            for word in extra
            if (found := difflib.get_close_matches(word.split("=")[0], options, n=1))
        ]
        said = f"unrecognized arguments: {' '.join(extra)}"
        where.error(f"{said} ({'; '.join(hints)})" if hints else said)
    return args


# Commands that run without a state folder found for them: init makes one, demo has its own,
# doctor and sandbox only look. Every other command, `serve` too (a client's committed entry
# names no folder: a teammate who has not run init is told to), refuses rather than make
# ./state where it stands.
STATELESS: tuple[Handler, ...] = (
    project.cmd_init,
    project.cmd_demo,
    project.cmd_doctor,
    sandbox.cmd_sandbox,
)


class PlainFormatter(logging.Formatter):
    """Log lines a person reads on stderr: a message (which may quote what an agent wrote)
    on one line with no control characters, a traceback's lines kept."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = plain(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return shown(super().formatException(ei))


def main(argv: list[str] | None = None) -> None:
    args = _parse(sys.argv[1:] if argv is None else argv)
    handler = getattr(args, "handler", serve.cmd_serve)
    state_root = args.state_root
    if handler is project.cmd_demo and state_root is None:
        state_root = "state/demo"
    else:
        from wvo_mcp.wiring import place

        state_root = place.chosen(state_root, os.environ, Path.cwd())
        if state_root is None and handler not in STATELESS:
            warn(f"wvo-mcp: {place.NOT_INITIALISED}")
            sys.exit(2)
    try:
        settings = Settings.from_env(state_root=state_root)
        if state_root is not None:
            from wvo_mcp.wiring import place

            top = place.workspace(args.state_root, os.environ, Path.cwd())
            if top is not None:
                settings = dataclasses.replace(settings, workspace_root=top)
        settings = with_trust(settings, args)
        with_app(args)
        # Quiet unless asked: a client shows every stderr line of a server as an error, and a
        # person's command answers on stdout; -v (or WVO_LOG_LEVEL) shows migrations and more.
        if not settings.log_level:
            settings = dataclasses.replace(
                settings, log_level="info" if args.verbose else "warning"
            )
        stderr_log = logging.StreamHandler(sys.stderr)
        stderr_log.setFormatter(PlainFormatter("%(levelname)s %(message)s"))
        logging.basicConfig(level=settings.log_level.upper(), handlers=[stderr_log])
        handler(settings, args)
    except WvoError as exc:
        warn(f"wvo-mcp: {exc}")
        sys.exit(2)
    except BrokenPipeError:
        # Whoever read the output stopped (`| head`): no traceback, and none at exit either,
        # when Python flushes stdout into the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
