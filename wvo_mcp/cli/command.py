"""What a command is, and what every command's handler uses: the orchestrator opened for one
call, and the person a command acts as."""

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from wvo_mcp.config import Settings
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules import identity

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


def person(args: argparse.Namespace) -> str:
    return identity.person(getattr(args, "by", None))


async def opened(settings: Settings, fn: Callable[[Orchestrator], Awaitable[T]]) -> T:
    orchestrator = await Orchestrator.open(settings)
    try:
        return await fn(orchestrator)
    finally:
        await orchestrator.close()
