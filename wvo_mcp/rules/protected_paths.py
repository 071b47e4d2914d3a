"""Which paths a task's commits may not change: the state folder's, inside the repository (pure).

Which paths a task's commits may not change (pure): the state folder's, when it lies inside
the repository the autopilot works on (`wvo-mcp init` puts it at `<repo>/.wvo/`, ignored by
git). Git writes a committed file over an ignored one on checkout, merge and fast-forward, and
puts a committed link or file in place of an ignored folder, deleting what was in it: a
worker's commit there would become wvo-mcp's configuration (or remove its database) at a
person's next checkout. So no submission that changes such a path is taken.

Carried out by `wvo_mcp/autopilot/submissions.py` and `wvo_mcp/git/intake.py`. Which state
folder a command uses is another question, answered by `wiring/place.py:chosen`."""

import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import PurePath

SHOWN = 20  # paths named in a refusal


def inside(top: PurePath, folders: Iterable[PurePath]) -> list[str]:
    """Each of `folders` that lies inside the repository whose work tree is `top`, as git
    names paths: relative to the top, '/'-separated, "" for the top itself; each once.
    Both absolute and normalised (no `.` or `..`), links resolved as the caller wants."""
    found: list[str] = []
    for folder in folders:
        if not folder.is_relative_to(top):
            continue
        name = folder.relative_to(top).as_posix()
        name = "" if name == "." else name
        if name not in found:
            found.append(name)
    return found


def _key(path: str, fold: bool) -> str:
    """A path as the file system tells it apart: where git ignores case (core.ignorecase),
    case and Unicode normalisation are folded away, erring towards a match."""
    return unicodedata.normalize("NFC", path).casefold() if fold else path


def touches(path: str, folder: str, fold: bool = False) -> bool:
    """Whether a change git lists at `path` (a file, a link or a submodule) changes `folder`
    or what is in it: `path` is the folder itself (a link or file put in its place), lies
    under it, or is a folder leading to it (replaced by a link or a file, it takes the
    state folder with it). "" is the whole repository."""
    path, folder = _key(path, fold), _key(folder, fold)
    if not folder:
        return True
    return path == folder or path.startswith(f"{folder}/") or folder.startswith(f"{path}/")


def touched(paths: Iterable[str], folders: Sequence[str], fold: bool = False) -> list[str]:
    """The paths of `paths` that change any of `folders`, each once, in order."""
    found: list[str] = []
    for path in paths:
        if path not in found and any(touches(path, folder, fold) for folder in folders):
            found.append(path)
    return found


def refusal(paths: Sequence[str], folders: Sequence[str], commit: str) -> tuple[str, str]:
    """What a worker is told when its submission `commit` changes the state folder: a
    summary (the checkpoint's, and the returned event's) and the details for its next
    attempt."""
    shown = ", ".join(paths[:SHOWN]) + (" and more" if len(paths) > SHOWN else "")
    where = " or ".join(f"{folder or '.'}/" for folder in folders)
    summary = f"returned: its commits change wvo-mcp's state folder {where}: {shown}"
    details = (
        f"Your submission ({commit}) was not taken: its commits add, change or delete "
        f"{shown}. {where} is wvo-mcp's state folder (its providers file, directives, "
        "database and tokens), and a task's commits may not change anything in it, nor put "
        "a link or a file in its place or in place of a folder leading to it: whatever a "
        "worker writes is data, never wvo-mcp's configuration. None of these commits reached "
        "the person's repository. This attempt starts afresh: commit your work without "
        "touching those paths, and submit again."
    )
    return summary[:500], details
