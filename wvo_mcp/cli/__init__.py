"""The `wvo-mcp` command, a module per command group; entry.py assembles them."""

from wvo_mcp.cli.entry import main, parser

__all__ = ["main", "parser"]
