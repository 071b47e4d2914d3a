"""What every command's handler uses: the orchestrator opened for one call, and who acts.

What a command is, and what every command's handler uses: the orchestrator opened for one
call, and the person a command acts as."""

import argparse
import dataclasses
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from wvo_mcp.config import Settings
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import identity, trust

T = TypeVar("T")

Handler = Callable[[Settings, argparse.Namespace], None]


def _no_arguments(_: argparse.ArgumentParser) -> None:
    return None


@dataclass(frozen=True)
class Command:
    """A command: its name, its handler (whose docstring is its help), and its arguments."""

    name: str
    handler: Handler
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments


def trust_arguments(cmd: argparse.ArgumentParser) -> None:
    """Who steers from the forge (rules/trust.py), for the commands that read it."""
    cmd.add_argument(
        "--trust-role",
        choices=("triage", "write", "maintain", "admin", "nobody"),
        help="The lowest role on the repository whose reviews count and whose comments and "
        "labels act (default write, or WVO_TRUST_ROLE; 'nobody': only --trust). Everyone "
        "else's words are shown, never acted on (docs/forge.md).",
    )
    cmd.add_argument(
        "--trust",
        action="append",
        metavar="LOGIN|ORG/TEAM",
        help="Also trust this account or team, whatever its role (repeatable; added to WVO_TRUST).",
    )


def app_arguments(cmd: argparse.ArgumentParser) -> None:
    """Who asks GitHub: a GitHub App, for the commands that ask it (forge/github_app.py)."""
    cmd.add_argument(
        "--github-app-id",
        metavar="ID",
        help="Ask GitHub as this GitHub App (its numeric App ID; default WVO_GITHUB_APP_ID), "
        "with installation tokens it mints and refreshes, instead of a person's token.",
    )
    cmd.add_argument(
        "--github-app-key",
        metavar="PEM",
        help="The App's private key file (default WVO_GITHUB_APP_PRIVATE_KEY_FILE, or the "
        "key itself in WVO_GITHUB_APP_PRIVATE_KEY); never given to a worker.",
    )


def with_app(args: argparse.Namespace) -> None:
    """The command's --github-app-id and --github-app-key over WVO_GITHUB_APP_*, for this
    process: the forge is asked as the App (forge/select.py)."""
    from wvo_mcp.forge import github_app

    given = {github_app.APP_ID: getattr(args, "github_app_id", None),
             github_app.APP_KEY_FILE: getattr(args, "github_app_key", None)}  # fmt: skip
    for name, value in given.items():
        if value:
            os.environ[name] = str(value)
    if given[github_app.APP_KEY_FILE]:
        os.environ.pop(github_app.APP_KEY, None)  # the file named wins over the variable
    github_app.configured()  # a key without an id, or no key, is refused now, saying why


def with_trust(settings: Settings, args: argparse.Namespace) -> Settings:
    """Settings with the command's --trust-role and --trust over WVO_TRUST_ROLE/WVO_TRUST."""
    role, listed = getattr(args, "trust_role", None), getattr(args, "trust", None)
    if role is None and not listed:
        return settings
    was = settings.trust
    known = [*sorted(was.accounts), *sorted(was.teams), *(listed or [])]
    found = trust.parse(role or was.role, ",".join(known), "--trust")
    return dataclasses.replace(settings, trust=found)


def person(args: argparse.Namespace) -> str:
    return identity.person(getattr(args, "by", None))


async def opened(settings: Settings, fn: Callable[[Orchestrator], Awaitable[T]]) -> T:
    orchestrator = await Orchestrator.open(settings)
    try:
        return await fn(orchestrator)
    finally:
        await orchestrator.close()
