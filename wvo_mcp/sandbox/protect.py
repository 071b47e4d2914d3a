"""What a sandboxed command must never change, and how the workspace is mounted so it cannot.

The server later trusts its state folder (database, backups, telemetry, providers file), its
own Python installation and package, the sys.path it imports from, and the git directory
its own git commands read. Inside the workspace the state folder is hidden: the command sees
an empty read-only folder there, because reading the database would show every tenant's
work and locking its files (the writers' lock, SQLite's) would stall every server's writes.
The rest, which commands need to run Python and git, is bound read-only over the writable
workspace. Every directory between the workspace root and one of those is bound onto itself,
so that as a mount point it cannot be renamed away and replaced by a planted copy. A layout
that cannot be protected so is refused, saying how to fix it.
"""

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import wvo_mcp
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.git import locate

# How a backend mounts a path at itself: "pinned" bound onto itself (writable, but a mount
# point), "read-only" bound read-only, "hidden" an empty read-only folder over it.
Mount = Literal["pinned", "read-only", "hidden"]


class Trusted(NamedTuple):
    what: str  # named for messages
    path: Path
    hidden: bool = False  # nothing of it is for a command to read


@dataclass(frozen=True)
class Layout:
    root: Path  # the workspace root: the only writable host directory, mounted as it is
    read_only: tuple[Path, ...]  # trusted paths inside it, bound read-only
    pinned: tuple[Path, ...]  # directories between the root and those, bound onto themselves
    hidden: tuple[Path, ...] = ()  # trusted folders inside it, seen empty and read-only

    def mounts(self) -> list[tuple[Path, Mount]]:
        """(path, how) in mount order: parents before what is inside them."""
        found: list[tuple[Path, Mount]] = [(p, "pinned") for p in self.pinned]
        found += [(p, "read-only") for p in self.read_only]
        found += [(p, "hidden") for p in self.hidden]
        return sorted(found, key=lambda item: len(item[0].parts))


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def trusted(settings: Settings, workspace: Path) -> list[Trusted]:
    """What the server trusts; the state folder hidden."""
    found = [Trusted("the state folder", settings.state_root, hidden=True)]
    if settings.providers_file is not None:
        found.append(Trusted("the providers file", settings.providers_file))
    for prefix in dict.fromkeys([sys.prefix, sys.exec_prefix, sys.base_prefix]):
        found.append(Trusted("the server's Python installation", Path(prefix)))
    found.append(Trusted("the wvo_mcp package", Path(wvo_mcp.__file__).parent))
    repo = locate(workspace)
    if repo is not None:
        found += [Trusted("the git repository", p) for p in (repo.entry, repo.git_dir)]
    return found


def plan(workspace: Path, trusted: Iterable[Trusted], import_path: Iterable[str]) -> Layout:
    """How to mount `workspace`; ValidationFailed when something the server trusts cannot
    be kept out of a command's reach."""
    root = workspace.resolve()
    read_only: set[Path] = set()
    hidden: set[Path] = set()
    for what, path, hide in trusted:
        real = path.resolve()
        if _within(root, real):
            raise ValidationFailed(
                f"the workspace {root} is inside {what} ({real}): a sandboxed command could "
                "change it. Give the workspace (WVO_WORKSPACE_ROOT) and the state folder "
                "(WVO_STATE_ROOT) separate folders, the state folder may be inside the workspace"
            )
        lexical = Path(os.path.abspath(path))
        if lexical != real and _within(lexical, root):
            raise ValidationFailed(
                f"{what} is reached through a symbolic link inside the workspace ({lexical} "
                f"-> {real}); a sandboxed command could replace the link. Configure its real "
                f"path, {real}"
            )
        if real != root and _within(real, root) and real.exists():
            (hidden if hide else read_only).add(real)
    for entry in import_path:
        folder = Path(entry or os.getcwd()).resolve()
        if entry and not os.path.isabs(entry) and not folder.exists():
            continue  # a path hook's key, such as an editable install's finder
        if _within(folder, root) and not any(_within(folder, p) for p in read_only | hidden):
            raise ValidationFailed(
                f"Python imports modules from {folder}, which is in the workspace {root}: a "
                "sandboxed command could plant code that a server would later run. Start the "
                "server with the `wvo-mcp` command or `python -P -m wvo_mcp` (no current "
                "directory on the import path), and keep PYTHONPATH out of the workspace"
            )
    # Inside a hidden folder nothing is seen; inside a read-only path nothing more needs
    # protecting, but a hidden folder there must still be hidden (it is mounted after).
    hidden = {p for p in hidden if not any(q != p and _within(p, q) for q in hidden)}
    read_only = {
        p
        for p in read_only
        if not any(_within(p, q) for q in hidden)
        and not any(q != p and _within(p, q) for q in read_only)
    }
    # Never a folder inside a read-only path: bound onto itself it would be writable again.
    pinned = {
        a
        for p in read_only | hidden
        for a in p.parents
        if a != root and _within(a, root) and not any(_within(a, q) for q in read_only)
    }
    return Layout(root, tuple(sorted(read_only)), tuple(sorted(pinned)), tuple(sorted(hidden)))


def layout(settings: Settings, workspace: Path) -> Layout:
    """The layout for a run in `workspace` under `settings` (the state folder is created
    first: a missing one could be planted by the command)."""
    settings.state_root.mkdir(parents=True, exist_ok=True)
    return plan(workspace, trusted(settings, workspace), sys.path)
