"""Removes a folder sandboxed code wrote, however deep, whatever its modes, never via a link.

Removing a folder that sandboxed code wrote (a worker's repository or home, a verification's
checkout): whatever it left there, as deep as it goes, with whatever modes, and never through
a link.

shutil.rmtree recurses once per folder level: a worker's chain of a few thousand folders
raises RecursionError, which no `ignore_errors` catches, in the autopilot that removes it.
Here one folder is open at a time: the walk goes down by name and back up through `..`,
checking it came back to the folder it left."""

import os
import stat
from contextlib import suppress
from pathlib import Path

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_PATH = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SHOWN = 3  # failures named in the error


class _Level:
    """A folder on the way down: its name in its parent, the parent's identity (to check
    the way back up), and its sub-folders still to remove (None: not listed yet)."""

    def __init__(self, name: str, parent: tuple[int, int]) -> None:
        self.name = name
        self.parent = parent
        self.folders: list[str] | None = None


def remove(path: Path) -> None:
    """`path` and everything in it; a link is removed, never followed; a folder on another
    file system (a mount point) is not entered. What could not be removed is said in one
    OSError, raised once everything else is gone."""
    parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        remove_in(parent, path.name, str(path))
    finally:
        os.close(parent)


def remove_in(folder: int, name: str, shown: str | None = None) -> None:
    """As remove(), the entry `name` of the open folder `folder` (`shown`: its path, for
    the error)."""
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(name, dir_fd=folder)
        return
    failed = _remove_folder(os.dup(folder), name, info.st_dev)
    if failed:
        more = f" and {len(failed) - _SHOWN} more" if len(failed) > _SHOWN else ""
        raise OSError(f"{shown or name}: could not remove {'; '.join(failed[:_SHOWN])}{more}")


def _remove_folder(fd: int, name: str, device: int) -> list[str]:
    """Empty and remove the folder `name` in the open folder `fd` (which this closes)."""
    failed: list[str] = []
    levels = [_Level(name, _identity(fd))]
    where = [name]  # the folders from the top down, for messages
    try:
        inner = _enter(fd, name)
    except OSError as exc:
        os.close(fd)
        return [f"{name} ({exc.strerror})"]
    os.close(fd)
    fd = inner
    try:
        while levels:
            level = levels[-1]
            if level.folders is None:
                level.folders = _empty(fd, where, failed)
            if level.folders:
                child = level.folders.pop()
                try:
                    inner = _enter(fd, child)
                except OSError as exc:
                    failed.append(f"{_shown(where, child)} ({exc.strerror})")
                    continue
                if os.fstat(inner).st_dev != device:
                    os.close(inner)
                    failed.append(f"{_shown(where, child)} (a mount point: not entered)")
                    continue
                levels.append(_Level(child, _identity(fd)))
                where.append(child)
                os.close(fd)
                fd = inner
                continue
            levels.pop()
            where.pop()
            up = os.open("..", _O_DIR, dir_fd=fd)
            os.close(fd)
            fd = up
            if _identity(fd) != level.parent:  # moved meanwhile: going on would remove elsewhere
                failed.append(f"{_shown(where, level.name)} (moved while being removed)")
                break
            try:
                os.rmdir(level.name, dir_fd=fd)
            except OSError as exc:
                failed.append(f"{_shown(where, level.name)} ({exc.strerror})")
    finally:
        os.close(fd)
    return failed


def _empty(fd: int, where: list[str], failed: list[str]) -> list[str]:
    """Unlink everything in the open folder `fd` but its folders, which are returned."""
    folders = []
    with os.scandir(fd) as entries:
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
                else:
                    os.unlink(entry.name, dir_fd=fd)
            except FileNotFoundError:
                continue
            except OSError as exc:
                failed.append(f"{_shown(where, entry.name)} ({exc.strerror})")
    return folders


def _enter(parent: int, name: str) -> int:
    """The folder `name` opened without following a link, listable and writable by its owner
    (a worker may have left it mode 000, which would stop the removal half-way)."""
    try:
        fd = os.open(name, _O_DIR, dir_fd=parent)
    except PermissionError:
        # Not readable: its mode is changed through a handle that needs no permission.
        handle = os.open(name, _O_PATH, dir_fd=parent)
        try:
            mode = stat.S_IMODE(os.fstat(handle).st_mode)
            os.chmod(f"/proc/self/fd/{handle}", mode | 0o700)
        finally:
            os.close(handle)
        fd = os.open(name, _O_DIR, dir_fd=parent)
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & 0o700 != 0o700:
        with suppress(OSError):  # not ours: the rmdir then says why
            os.fchmod(fd, mode | 0o700)
    return fd


def _shown(where: list[str], name: str) -> str:
    """A path below the top for a message: its first and last folders, however deep."""
    parts = [*where, name]
    return "/".join(parts) if len(parts) <= 4 else "/".join([parts[0], "…", *parts[-2:]])


def _identity(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino
