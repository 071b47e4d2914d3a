"""Directives, Markdown guidance for agents, from the package, the person and the project.

Directives: Markdown guidance for agents. Three places give them, each overriding the one
before file by file and free to add more:

1. the packaged copies (wvo_mcp/data/directives);
2. the person's: `directives/` in the state folder;
3. the project's: `directives/` as committed at a commit (the workspace repository's HEAD,
   or the commit an autopilot run started from), read as git objects.

Never the workspace's working tree: sandboxed commands write it, and the work-loop directive
opens every worker's prompt. A commit holds only what someone with the right to commit put
there (a sandboxed command cannot write the git directory, sandbox/protect.py). Everything
is read at each use, so an edit or a new commit shows without a restart.

The state folder is out of a sandboxed command's reach, but its files are still read as
untrusted: only regular files directly in the folder, no symbolic link followed (not even the
folder itself), each checked through the descriptor that is then read. Committed files are
blobs only (no links, folders or submodules), read with git as data, never checked out or
filtered. Either way a file over MAX_BYTES is refused, undecodable bytes are replaced, and a
bad file is skipped with a warning on stderr (a weaker copy of the same name shows through)
instead of stopping the server. A directive's file name is `[A-Za-z0-9_-]+.md`; others are
not directives and are passed over in silence."""

import errno
import logging
import os
import re
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path

from wvo_mcp.config import Settings
from wvo_mcp.errors import NotFound, WvoError
from wvo_mcp.git import Git, locate, trees

# Resolved once: the packaged folder is trusted, and a symlink in a source checkout.
PACKAGED = (Path(str(resources.files("wvo_mcp"))) / "data" / "directives").resolve()
FOLDER = "directives"  # in the state folder, and in the project's commits
MAX_BYTES = 64 * 1024
FILE_NAME = re.compile(r"[A-Za-z0-9_-]+\.md")

log = logging.getLogger(__name__)

# O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Directive:
    name: str  # work_loop for work-loop.md
    title: str  # the first Markdown heading
    text: str


@dataclass(frozen=True)
class Sources:
    """Where directives are read from (the module docstring says in which order)."""

    state_root: Path  # the person's copies are in state_root/directives
    git: Git | None = None  # the project's repository; None: no committed copies
    commit: str = "HEAD"  # the project's copies are those committed here


def sources(settings: Settings) -> Sources:
    """The state folder, and the workspace's repository found now: one that appears later
    (a sandboxed command could plant it) is never read."""
    repo = locate(settings.workspace_root)
    return Sources(settings.state_root, None if repo is None else Git(repo, repo.top))


def _is_directive(filename: str) -> bool:
    return bool(FILE_NAME.fullmatch(filename)) and filename.lower() != "readme.md"


def _name(filename: str) -> str:
    return filename.removesuffix(".md").replace("-", "_")


def _directive(filename: str, data: bytes) -> Directive:
    text = data.decode("utf-8", errors="replace")
    stem = filename.removesuffix(".md")
    title = next(
        (line[2:].strip() for line in text.splitlines() if line.startswith("# ")),
        stem.replace("-", " "),
    )
    return Directive(_name(filename), title, text)


def _read(folder_fd: int, filename: str) -> bytes:
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
    return data


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
            filenames = sorted(e.name for e in entries if _is_directive(e.name))
        for filename in filenames:
            if only is not None and _name(filename) != only:
                continue
            try:
                found[_name(filename)] = _directive(filename, _read(folder_fd, filename))
            except (OSError, ValueError) as exc:
                log.warning("directive %s skipped: %s", folder / filename, _why(exc))
    except OSError as exc:
        log.warning("directives folder %s could not be listed: %s", folder, _why(exc))
    finally:
        os.close(folder_fd)
    return found


def _read_committed(where: Sources, only: str | None = None) -> dict[str, Directive]:
    """The directives committed in `directives/` at `where.commit` (just `only`, if given)."""
    if where.git is None:
        return {}
    try:
        files = trees.read_tree_files(where.git, where.commit, FOLDER, FILE_NAME, MAX_BYTES)
    except (OSError, subprocess.SubprocessError, WvoError) as exc:
        # Unreadable history must not stop the server: the weaker copies show through.
        log.warning("directives committed at %s not read: %s", where.commit, exc)
        return {}
    found: dict[str, Directive] = {}
    for filename, data in sorted(files.items()):
        if not _is_directive(filename) or (only is not None and _name(filename) != only):
            continue
        if data is None:
            log.warning(
                "directive %s/%s committed at %s skipped: not a regular file of at most %d "
                "bytes", FOLDER, filename, where.commit, MAX_BYTES,
            )  # fmt: skip
            continue
        found[_name(filename)] = _directive(filename, data)
    return found


def _layers(where: Sources, only: str | None) -> list[Callable[[], dict[str, Directive]]]:
    """Readers of each place, weakest first."""
    return [
        partial(_read_folder, PACKAGED, only),
        partial(_read_folder, where.state_root / FOLDER, only),
        partial(_read_committed, where, only),
    ]


def available(where: Sources) -> dict[str, Directive]:
    found: dict[str, Directive] = {}
    for read in _layers(where, None):
        found.update(read())
    return found


def text(where: Sources, name: str) -> str:
    """The directive's text, read now from the strongest place that has it."""
    for read in reversed(_layers(where, name)):
        if found := read():
            return found[name].text
    there_are = ", ".join(sorted(available(where)))
    raise NotFound(f"no directive {name!r}; there are: {there_are}")
