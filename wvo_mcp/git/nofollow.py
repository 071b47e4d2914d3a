"""Opens a path a worker can write one step at a time, following no link.

Paths a worker can write, opened one component at a time from the root, following no
symbolic link and never blocking on a FIFO: the open flags, and small reads."""

import os
import stat
from pathlib import Path

from wvo_mcp.errors import ValidationFailed

CHUNK = 1024 * 1024

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted where a file is expected must not hang the reader.
O_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def read_small(folder: int, name: str, limit: int) -> bytes | None:
    """The regular file `name` in `folder`, if it is one (not a link, FIFO or device) and
    holds at most `limit` bytes."""
    try:
        fd = os.open(name, O_READ, dir_fd=folder)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(limit + 1)
        return data if len(data) <= limit else None
    finally:
        os.close(fd)


def open_dir(path: Path, what: str) -> int:
    """The folder `path` (absolute) opened one component at a time, following no link on
    the way: a folder a worker can write cannot be swapped for a link to elsewhere."""
    if not path.is_absolute():
        raise ValidationFailed(f"{what} must be an absolute path, got {str(path)!r}")
    fd = os.open("/", O_DIR)
    try:
        for part in path.parts[1:]:
            inner = os.open(part, O_DIR, dir_fd=fd)
            os.close(fd)
            fd = inner
    except OSError as exc:
        os.close(fd)
        raise ValidationFailed(
            f"{what} {path}: {exc.strerror} at {part!r} (a folder reached without "
            "symbolic links is needed)"
        ) from None
    return fd
