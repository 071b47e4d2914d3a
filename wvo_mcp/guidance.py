"""Directives: Markdown guidance for agents. A project's own `directives/` folder wins over
the packaged copies, file by file, so a team can edit or add them; files are re-read on
every use, so edits show without a restart.

The project's folder is writable by sandboxed commands, so its files are hostile input. Only
regular files directly in the folder are read: no symbolic link is followed (not even the
folder itself), so nothing outside it is ever served, and each file is checked through the
descriptor that is then read, so nothing can be swapped in between. Files larger than
MAX_BYTES are refused and undecodable bytes replaced. A bad file is skipped with a warning
on stderr (a packaged copy of the same name shows through) instead of stopping the server."""

import errno
import logging
import os
import stat
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from wvo_mcp.errors import NotFound

# Resolved once: the packaged folder is trusted, and a symlink in a source checkout.
PACKAGED = (Path(str(resources.files("wvo_mcp"))) / "data" / "directives").resolve()
MAX_BYTES = 64 * 1024

log = logging.getLogger(__name__)

# O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Directive:
    name: str  # work_loop for work-loop.md
    title: str  # the first Markdown heading
    text: str


def _directive(filename: str, text: str) -> Directive:
    stem = filename.removesuffix(".md")
    title = next(
        (line[2:].strip() for line in text.splitlines() if line.startswith("# ")),
        stem.replace("-", " "),
    )
    return Directive(stem.replace("-", "_"), title, text)


def _read(folder_fd: int, filename: str) -> str:
    fd = os.open(filename, _FILE_FLAGS, dir_fd=folder_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        with open(fd, "rb", closefd=False) as file:
            data = file.read(MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES} bytes")
    return data.decode("utf-8", errors="replace")


def _why(exc: OSError | ValueError) -> str:
    if isinstance(exc, OSError):
        return "a symbolic link" if exc.errno == errno.ELOOP else str(exc.strerror)
    return str(exc)


def _read_folder(folder: Path, only: str | None = None) -> dict[str, Directive]:
    """The readable directives in `folder` (just the one named `only`, if given)."""
    try:
        folder_fd = os.open(folder, _FOLDER_FLAGS)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        # With O_DIRECTORY, Linux reports a link as ENOTDIR rather than ELOOP.
        reason = "a symbolic link" if folder.is_symlink() else _why(exc)
        log.warning("directives folder %s skipped: %s", folder, reason)
        return {}
    found: dict[str, Directive] = {}
    try:
        with os.scandir(folder_fd) as entries:
            filenames = sorted(e.name for e in entries if e.name.endswith(".md"))
        for filename in filenames:
            name = filename.removesuffix(".md").replace("-", "_")
            if filename.startswith(".") or filename.lower() == "readme.md":
                continue
            if only is not None and name != only:
                continue
            try:
                found[name] = _directive(filename, _read(folder_fd, filename))
            except (OSError, ValueError) as exc:
                # %r: a file name could hold a newline and forge a log line.
                log.warning("directive %r skipped: %s", str(folder / filename), _why(exc))
    except OSError as exc:
        log.warning("directives folder %s could not be listed: %s", folder, _why(exc))
    finally:
        os.close(folder_fd)
    return found


def _folders(workspace_root: Path) -> tuple[Path, Path]:
    return PACKAGED, workspace_root / "directives"


def available(workspace_root: Path) -> dict[str, Directive]:
    found: dict[str, Directive] = {}
    for folder in _folders(workspace_root):
        found.update(_read_folder(folder))
    return found


def text(workspace_root: Path, name: str) -> str:
    """The directive's text, read now: the project's copy, else the packaged one."""
    for folder in reversed(_folders(workspace_root)):
        if found := _read_folder(folder, only=name):
            return found[name].text
    there_are = ", ".join(sorted(available(workspace_root)))
    raise NotFound(f"no directive {name!r}; there are: {there_are}")
