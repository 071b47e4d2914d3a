"""Online backups of the database, their retention, and restore.

Backups use SQLite's backup API, so they are consistent snapshots taken while other
processes write (in WAL mode a reader never blocks a writer). Each is a standalone file
(journal mode DELETE, no -wal beside it) named `orchestrator-YYYYMMDDTHHMMSSZ.db`; the time
in the name is all retention needs. Plain sync functions: callers in async code run them in
a worker thread.
"""

import fcntl
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.store.sql import migrations

BACKUP_PREFIX = "orchestrator"
SAFETY_PREFIX = "pre-restore"  # another prefix, so retention never prunes these
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
# A second backup within the same second gets `-1`, `-2`, ... after the stamp.
_NAME = re.compile(rf"^{BACKUP_PREFIX}-(\d{{8}}T\d{{6}}Z)(?:-(\d{{1,6}}))?\.db$")
# Backups are rare and may meet a checkpoint or a writer: plain waiting is fine.
BUSY_TIMEOUT_S = 15.0
# The backup API's pause between retries when the destination is locked.
RETRY_SLEEP_S = 0.01


def take(
    db_path: Path,
    backups_dir: Path,
    now: datetime,
    *,
    prefix: str = BACKUP_PREFIX,
    check: bool = True,
) -> Path:
    """Back `db_path` up into `backups_dir` as `<prefix>-<UTC stamp>.db`; return its path.

    The copy is checked (`PRAGMA quick_check`) before it gets its name, so a file with a
    backup's name is always complete; `check=False` keeps a damaged database as it is."""
    if not db_path.is_file():
        raise ValidationFailed(f"there is no database at {db_path} to back up")
    with _scratch(backups_dir, prefix) as tmp:
        _copy(db_path, tmp)
        if check:
            with closing(sqlite3.connect(tmp)) as copy:
                problems = _check(copy, "quick_check")
            if problems:
                raise ValidationFailed(
                    f"the backup of {db_path} failed quick_check: {problems}; "
                    "the database itself may be damaged (run `PRAGMA integrity_check`)"
                )
        _fsync(tmp)
        return _publish(tmp, backups_dir, prefix, now)


@contextmanager
def _scratch(folder: Path, prefix: str) -> Iterator[Path]:
    """A temporary file in `folder` (a dot name no listing takes for a backup), removed
    at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{prefix}-", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _copy(source: Path, dest: Path) -> None:
    """Copy the database `source` into the empty file `dest` as a standalone file."""
    with closing(_read_only(source)) as src, closing(sqlite3.connect(dest)) as copy:
        # One step: the whole copy is read in one read transaction, one snapshot.
        src.backup(copy, pages=-1)
        # The copied header still says WAL; a standalone file must not need a -wal.
        copy.execute("PRAGMA journal_mode = DELETE")


def _publish(tmp: Path, folder: Path, prefix: str, now: datetime) -> Path:
    """Give `tmp` its final name without ever replacing an existing backup."""
    stamp = now.astimezone(UTC).strftime(STAMP_FORMAT)
    for n in range(1_000_000):
        path = folder / (f"{prefix}-{stamp}.db" if n == 0 else f"{prefix}-{stamp}-{n}.db")
        try:
            # A hard link appears complete and atomically, and fails when the name is taken
            # (a rename would silently replace a backup taken in the same second).
            os.link(tmp, path)
        except FileExistsError:
            continue
        _fsync(folder)
        return path
    raise ValidationFailed(f"too many backups named {prefix}-{stamp} in {folder}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_only(path: Path) -> sqlite3.Connection:
    # mode=ro: never creates a missing file and never writes to the source.
    uri = f"{path.resolve().as_uri()}?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)


def _check(conn: sqlite3.Connection, pragma: str) -> str:
    """'' when the check passes, otherwise its first few complaints."""
    rows = [str(row[0]) for row in conn.execute(f"PRAGMA {pragma}").fetchall()]
    return "" if rows == ["ok"] else "; ".join(rows[:5])


# --------------------------------------------------------------------------- retention


def keep(
    stamps: Sequence[datetime], hourly: int = 24, daily: int = 7, weekly: int = 4
) -> set[datetime]:
    """The backups to keep, restic-style: for each of the `hourly` most recent hours that
    hold a backup the newest backup in that hour, the same for days and ISO weeks (UTC),
    and always the newest backup."""
    newest_first = sorted(set(stamps), reverse=True)
    kept: set[datetime] = set(newest_first[:1])
    buckets: list[tuple[int, Callable[[datetime], Hashable]]] = [
        (hourly, lambda m: (m.date(), m.hour)),
        (daily, lambda m: m.date()),
        (weekly, lambda m: m.isocalendar()[:2]),  # (ISO year, ISO week)
    ]
    for slots, bucket in buckets:
        seen: set[Hashable] = set()
        for stamp in newest_first:
            if len(seen) >= slots:
                break
            key = bucket(_utc(stamp))
            if key not in seen:  # the first one met is the newest of its bucket
                seen.add(key)
                kept.add(stamp)
    return kept


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def listing(backups_dir: Path) -> list[tuple[Path, datetime]]:
    """The backups in `backups_dir`, oldest first; other files (temporary files, pre-restore
    copies) are not backups."""
    if not backups_dir.is_dir():
        return []
    found = []
    for path in backups_dir.iterdir():
        match = _NAME.match(path.name)
        if match is None or not path.is_file():
            continue
        stamp = datetime.strptime(match[1], STAMP_FORMAT).replace(tzinfo=UTC)
        # The suffix orders backups within their second (so only the last one can be kept).
        found.append((path, stamp + timedelta(microseconds=int(match[2] or 0))))
    found.sort(key=lambda item: item[1])
    return found


def prune(backups_dir: Path) -> list[Path]:
    """Delete the backups the retention policy does not keep; return them."""
    found = listing(backups_dir)
    kept = keep([stamp for _, stamp in found])
    deleted = []
    for path, stamp in found:
        if stamp not in kept:
            path.unlink(missing_ok=True)  # another process may have pruned it first
            deleted.append(path)
    return deleted


def latest(backups_dir: Path) -> tuple[Path, datetime] | None:
    """The newest backup and its time, or None."""
    found = listing(backups_dir)
    return found[-1] if found else None


def due(backups_dir: Path, now: datetime, interval_minutes: float) -> bool:
    """True when backups are on (interval > 0) and none is newer than the interval."""
    if interval_minutes <= 0:
        return False
    newest = latest(backups_dir)
    return newest is None or now - newest[1] >= timedelta(minutes=interval_minutes)


# --------------------------------------------------------------------------- verify


def verify(path: Path) -> None:
    """Refuse (ValidationFailed) a file that is not a sound wvo-mcp database this version
    can open. Read-only, so SQLite's integrity_check skips CHECK constraints here."""
    if not path.is_file():
        raise ValidationFailed(f"{path} is not a file")
    latest_schema = migrations()[-1][0]
    try:
        with closing(_read_only(path)) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            problems = _check(conn, "integrity_check")
            has_tasks = conn.execute(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'tasks'"
            ).fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise ValidationFailed(f"{path} cannot be read as a SQLite database ({exc})") from None
    if problems:
        raise ValidationFailed(f"{path} failed integrity_check: {problems}")
    if not has_tasks:
        raise ValidationFailed(f"{path} is not a wvo-mcp database (it has no tasks table)")
    if version > latest_schema:
        raise ValidationFailed(
            f"{path} has schema version {version}, but this wvo-mcp knows up to "
            f"{latest_schema}; upgrade wvo-mcp to restore it"
        )


# --------------------------------------------------------------------------- servers lock


def servers_lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".servers.lock")


@contextmanager
def servers_lock(db_path: Path) -> Iterator[None]:
    """Held shared by every serving process for its whole life. A lock on an open file
    dies with the process, even on SIGKILL, so it never goes stale."""
    with _locked(db_path, fcntl.LOCK_SH):
        yield


def servers_running(db_path: Path) -> bool:
    """True while any process holds the servers lock."""
    with _locked(db_path, fcntl.LOCK_EX | fcntl.LOCK_NB) as alone:
        return not alone


@contextmanager
def _locked(db_path: Path, operation: int) -> Iterator[bool]:
    """Yields whether the lock was taken (only LOCK_NB can fail to take it)."""
    path = servers_lock_path(db_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ValidationFailed(
            f"cannot use {path.parent} as the state folder: {exc.strerror}; "
            "point WVO_STATE_ROOT (or --state-root) at a folder"
        ) from None
    try:
        try:
            fcntl.flock(fd, operation)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


# --------------------------------------------------------------------------- restore


@dataclass(frozen=True)
class RestoreResult:
    restored_from: Path
    safety_copy: Path | None  # None when there was no database to keep
    tasks: int


def restore(
    backup: Path, db_path: Path, *, backups_dir: Path, force: bool, now: datetime
) -> RestoreResult:
    """Replace the contents of the live database with `backup`.

    Refused while servers run unless `force`. The current database is first copied to
    `pre-restore-<stamp>.db` in `backups_dir`. The backup is copied in through SQLite (the
    backup API), not by replacing the file, so servers that run anyway (`force`) switch to
    the restored contents consistently instead of writing on into an unlinked file."""
    verify(backup)
    if db_path.exists() and backup.resolve() == db_path.resolve():
        raise ValidationFailed(f"{backup} is the live database itself")
    # Held exclusively while restoring, so a server that starts meanwhile waits for it.
    with (
        _locked(db_path, fcntl.LOCK_EX | fcntl.LOCK_NB) as alone,
        _scratch(backups_dir, "restore") as staged,
    ):
        if not alone and not force:
            raise ValidationFailed(f"servers are running on {db_path}; stop them or pass --force")
        # A read-only connection's integrity_check skips CHECK constraints: check a copy of
        # our own with a writable connection, before anything changes.
        try:
            _copy(backup, staged)
            with closing(sqlite3.connect(staged)) as conn:
                problems = _check(conn, "integrity_check")
        except sqlite3.DatabaseError as exc:
            raise ValidationFailed(
                f"{backup} cannot be read as a SQLite database ({exc})"
            ) from None
        if problems:
            raise ValidationFailed(f"{backup} failed integrity_check: {problems}")
        safety = _safety_copy(db_path, backups_dir, now) if db_path.exists() else None
        try:
            with (
                closing(_read_only(staged)) as src,
                closing(sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S)) as live,
            ):
                src.backup(live, pages=-1, sleep=RETRY_SLEEP_S)
                mode = live.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                problems = _check(live, "integrity_check")
                tasks = int(live.execute("SELECT count(*) FROM tasks").fetchone()[0])
        except sqlite3.Error as exc:
            raise ValidationFailed(
                f"restoring {backup} into {db_path} failed ({exc}){_kept(safety)}"
            ) from None
    if problems:
        raise ValidationFailed(
            f"{db_path} failed integrity_check after the restore: {problems}{_kept(safety)}"
        )
    if mode != "wal":
        # Only possible when a non-WAL database was held open by others (--force).
        raise ValidationFailed(
            f"{db_path} was restored but is in journal mode {mode}; the next server to open "
            "it alone switches it back to WAL"
        )
    return RestoreResult(restored_from=backup, safety_copy=safety, tasks=tasks)


def _kept(safety: Path | None) -> str:
    return f"; the database as it was is in {safety}" if safety else ""


def _safety_copy(db_path: Path, backups_dir: Path, now: datetime) -> Path:
    try:
        # Unchecked: a damaged database is kept as it is, it may be why we restore.
        return take(db_path, backups_dir, now, prefix=SAFETY_PREFIX, check=False)
    except sqlite3.DatabaseError as exc:
        raise ValidationFailed(
            f"cannot copy the live database {db_path} before restoring ({exc}); nothing was "
            "changed. If it is damaged beyond reading, move it and its -wal and -shm files "
            "aside, then restore again"
        ) from None
