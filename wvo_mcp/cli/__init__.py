"""The `wvo-mcp` command, a module per command group; entry.py assembles them.

Kept light: with warm start (on Linux unless WVO_WARM_START=0), `serve` over stdio hands its
client to the state folder's warm process (relay.py) before the commands, pydantic and the
SDK are imported."""

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse


def main(argv: list[str] | None = None) -> None:
    from wvo_mcp.cli import relay

    given = sys.argv[1:] if argv is None else argv
    served = relay.handed_over(given)
    if served is not None:
        sys.exit(served)
    from wvo_mcp.cli import entry

    entry.main(given)


def parser() -> "argparse.ArgumentParser":
    from wvo_mcp.cli import entry

    return entry.parser()


__all__ = ["main", "parser"]
