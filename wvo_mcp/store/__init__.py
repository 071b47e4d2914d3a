"""The store: one SQLite file shared by every server process."""

from wvo_mcp.store.sqlite import Database, Tx

__all__ = ["Database", "Tx"]
