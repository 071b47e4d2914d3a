"""The SQLite database's copies: `backup` now, and `restore` from one."""

import argparse
from pathlib import Path

from wvo_mcp import backups
from wvo_mcp.cli.command import Command
from wvo_mcp.cli.output import say
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed


def cmd_backup(settings: Settings, args: argparse.Namespace) -> None:
    """Back the database up now (online: servers keep running) and prune old backups."""
    from wvo_mcp.timeutil import now

    _sqlite_only(settings, "backup")
    path = backups.take(settings.db_path, settings.backups_dir, now())
    say(f"backed up {settings.db_path} to {path} ({_size(path.stat().st_size)})")
    for pruned in backups.prune(settings.backups_dir):
        say(f"pruned {pruned.name}")


def _sqlite_only(settings: Settings, verb: str) -> None:
    if settings.database_url is not None:
        raise ValidationFailed(
            f"`wvo-mcp {verb}` copies the SQLite file; {settings.database_label} is PostgreSQL, "
            "which has its own tools: pg_dump -Fc to back up, pg_restore to restore, or "
            "continuous archiving (docs/postgres.md shows the commands)"
        )


def _size(n: int) -> str:
    return f"{n} bytes" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def cmd_restore(settings: Settings, args: argparse.Namespace) -> None:
    """Replace the database with a backup, after copying the current one aside; refused
    while servers run unless --force."""
    from wvo_mcp.timeutil import now

    _sqlite_only(settings, "restore")
    result = backups.restore(
        Path(args.file),
        settings.db_path,
        backups_dir=settings.backups_dir,
        force=args.force,
        now=now(),
    )
    if result.safety_copy is not None:
        say(f"kept the database as it was in {result.safety_copy}")
    say(f"restored {settings.db_path} from {result.restored_from}: {result.tasks} tasks")


def _restore_arguments(restore: argparse.ArgumentParser) -> None:
    restore.add_argument("file", help="A backup (e.g. from state/backups/db/).")
    restore.add_argument(
        "--force", action="store_true", help="Restore even while servers are running."
    )


BACKUP = Command("backup", cmd_backup)
RESTORE = Command("restore", cmd_restore, _restore_arguments)
