"""The `wvo-mcp` command, a module per command group; entry.py assembles them.

Kept light: with warm start (on Linux unless WVO_WARM_START=0), a command (`serve` over stdio
and every other but `stop`) is handed to the state folder's warm process (warm_relay.py) before
the commands, pydantic and the SDK are imported; served cold instead, by a child of this process
on Linux (handle.py), a server's first answers come from front.py while they import."""

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from wvo_mcp.cli import warm_relay


def main(argv: list[str] | None = None) -> None:
    from wvo_mcp.cli import handle, warm_relay

    given = sys.argv[1:] if argv is None else argv
    shape = warm_relay.command_shape(given)
    stdio = shape is not None and shape.stdio_serve
    client = argv is None and stdio
    if client:
        handle.leave_on_signal()  # until the server's own handlers: nothing is owed yet
    # Called with its words (in a test's process, say), a command other than serve over stdio
    # writes to this process's sys.stdout: it runs here.
    relayed = argv is None or stdio
    served = warm_relay.handed_over(shape) if shape is not None and relayed else None
    if served is not None:
        if client:
            handle.leave(served)  # no interpreter shutdown: the client waits for this end
        sys.exit(served)
    if client:
        served = handle.served_in_child()
        if served is not None:
            handle.leave(served)
        # Served cold: the first answers come from the table while the rest imports.
        from wvo_mcp.cli import front

        front.serve(warm_relay.tools_profile(), HEAVY, lambda: _directives(shape))
    from wvo_mcp.cli import entry

    entry.main(given)


def _directives(shape: "warm_relay.Shape | None") -> list[tuple[str, str]] | None:
    """The directives a server started as `shape` here lists as prompts, as (name, title),
    found as entry.py and edge/server.py find them; None without a state folder."""
    import dataclasses
    import logging
    import os
    from pathlib import Path

    from wvo_mcp import guidance
    from wvo_mcp.config import Settings
    from wvo_mcp.wiring import place

    given = None if shape is None else shape.state_root
    chosen = place.chosen(given, os.environ, Path.cwd())
    if chosen is None:
        return None
    settings = Settings.from_env(state_root=chosen)
    top = place.workspace(given, os.environ, Path.cwd())
    if top is not None:
        settings = dataclasses.replace(settings, workspace_root=top)
    sources = guidance.sources(settings)
    said = logging.getLogger(guidance.__name__)
    said.disabled = True  # a file skipped is the server's to say, once
    try:
        return [(d.name, d.title) for d in guidance.available(sources).values()]
    finally:
        said.disabled = False


# What serving over stdio imports (front.py imports them in a thread while it answers).
HEAVY = ("wvo_mcp.cli.entry", "wvo_mcp.edge.stdio", "wvo_mcp.edge.server")


def parser() -> "argparse.ArgumentParser":
    from wvo_mcp.cli import entry

    return entry.parser()


__all__ = ["main", "parser"]
