"""The store: one database interface, with SQLite (the default) and PostgreSQL behind it.

The store: one interface (base.py), a backend per engine. SQLite, one file in the state
folder, is the embedded default; PostgreSQL (WVO_DATABASE_URL) serves many hosts."""

from wvo_mcp.config import Settings
from wvo_mcp.store.base import Alone, Answer, Database, Lock, Params, Row, Tx
from wvo_mcp.store.sqlite import SqliteDatabase

# The monitor's SQLite connection: every transaction off the event loop (its scans may be
# long), and a small page cache: a tick reads each page it needs once, and a big cache would
# only add to every server's memory.
MONITOR_CACHE_KIB = 256

__all__ = ["Alone", "Answer", "Database", "Lock", "Params", "Row", "Tx", "database"]


def database(settings: Settings, *, monitor: bool = False) -> Database:
    """The store `settings` name, not yet open."""
    if settings.database_url is not None:
        # Imported only when used: the SQLite default never loads the driver.
        from wvo_mcp.store.postgres import PostgresDatabase

        return PostgresDatabase(
            settings.database_url,
            pool_size=2 if monitor else None,
            reconnect_seconds=settings.database_reconnect_seconds,
        )
    if monitor:
        return SqliteDatabase(settings.db_path, cache_kib=MONITOR_CACHE_KIB, inline=False)
    return SqliteDatabase(settings.db_path)
