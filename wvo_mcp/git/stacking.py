"""Stacks a taken commit onto a target by a merge or a rebase, with its conflicts.

The merge queue's git: a taken commit stacked onto a target by a merge or a rebase, as
objects or in a scratch worktree of our own, and the conflicts that stop it, with their
hunks."""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wvo_mcp import scratch_dirs
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.git.run import Git, locate, tail

HUNK_FILES = 20  # conflicted files shown with their hunks
HUNK_FILE_BYTES = 1024 * 1024
HUNK_CHARS = 12_000
HUNK_CONTEXT = 3  # lines shown around each conflict


@dataclass(frozen=True)
class Conflict:
    """What stops a merge or a rebase: the files in conflict and their hunks (as text)."""

    files: list[str]
    hunks: str


def conflict_regions(text: str, context: int = HUNK_CONTEXT) -> str:
    """Each `<<<<<<<` .. `>>>>>>>` region of `text`, with `context` lines around it and
    line numbers."""
    lines = text.splitlines()
    shown: list[str] = []
    start = None
    for number, line in enumerate(lines):
        if line.startswith("<<<<<<<") and start is None:
            start = number
        elif line.startswith(">>>>>>>") and start is not None:
            first, last = max(0, start - context), min(len(lines), number + 1 + context)
            shown.append(f"@@ line {first + 1}")
            shown += lines[first:last]
            start = None
    return "\n".join(shown)


def merge_onto(git: Git, onto: str, commit: str, message: str) -> str | Conflict:
    """A merge commit of `commit` onto `onto` (its first parent), made by git's own merge
    (ort, which resolves what it can) as objects only: no worktree, no index. Its id, or
    the Conflict; `onto` itself when the merge changes nothing there (no empty commit)."""
    off = git.no_drivers()
    git.checked_commits((onto, "target"), (commit, "tip"))
    tree = _merged_tree(git, off, onto, commit)
    if isinstance(tree, Conflict):
        return tree
    if tree == git.tree_of(onto):
        return onto
    return git.output(off, "commit-tree", tree, "-p", onto, "-p", commit, "-m", message)


def _merged_tree(git: Git, off: list[str], onto: str, commit: str) -> str | Conflict:
    found = git.raw("merge-tree", "--write-tree", "-z", "--name-only", onto, commit, off=off)
    if found.returncode not in (0, 1):
        stderr = tail(found.stderr.decode(errors="replace"))
        raise ValidationFailed(f"git merge-tree failed in {git.repo.top}: {stderr}")
    # "<tree>\0" then, on a conflict, "<path>\0" per conflicted stage, "\0", messages.
    # Paths stay bytes until shown: as text (undecodable bytes replaced) they could name
    # no file of the tree.
    tree, *rest = found.stdout.split(b"\0")
    if found.returncode == 0:
        return tree.decode()
    paths = list(dict.fromkeys(rest[: rest.index(b"")] if b"" in rest else rest))
    files = [path.decode(errors="replace") for path in paths]
    return Conflict(files, _hunks(git, tree.decode(), paths))


def _hunks(git: Git, tree: str, paths: Sequence[bytes]) -> str:
    """The conflicting regions, with their markers, as merge-tree wrote them into its
    tree (read as objects: a link's target is never followed), cut to HUNK_CHARS."""
    parts: list[str] = []
    for path in paths[:HUNK_FILES]:
        name = path.decode(errors="replace")
        where = os.fsdecode(tree.encode() + b":" + path)  # the exact bytes, as argv
        # The size first: a blob over the limit is never read into memory.
        size = git.run([], "cat-file", "-s", where).stdout.strip()
        shown = (
            git.run([], "cat-file", "blob", where)
            if size.isdigit() and int(size) <= HUNK_FILE_BYTES
            else None
        )
        if shown is not None and shown.returncode == 0:
            regions = conflict_regions(shown.stdout)
            parts.append(f"--- {name}\n{regions or '(no text conflict: a file-level one)'}")
        else:
            parts.append(f"--- {name}\n(not shown: binary, too big, or a file-level conflict)")
    text = "\n".join(parts)
    return text if len(text) <= HUNK_CHARS else text[:HUNK_CHARS] + "\n[... cut]"


def rebase_onto(
    git: Git, onto: str, commit: str, message: str, owner: Path | None = None
) -> str | Conflict:
    """`commit`'s history since it left `onto`, replayed onto `onto` by git rebase in a
    scratch worktree of our own (never a worker's repository; in a scratch folder of the
    state folder `owner`): the new tip. A history that already merged `onto` in (a
    resolved conflict) replays into the conflicts it resolved: when the two merge
    cleanly as a whole, it lands as one commit with `message` on top of `onto` instead.
    Else the Conflict. `onto` itself when what lands changes nothing there (no empty
    commit)."""
    git.checked_commit(onto, "target")
    with scratch_dirs.temporary("rebase", owner) as scratch:
        place = Path(scratch) / "tree"
        git.add_detached_worktree(place, commit)
        try:
            repo = locate(place)
            assert repo is not None
            here = Git(repo, place)
            conflicts = here.rebase(onto)
            tip = "" if conflicts else here.head()
        finally:
            git.remove_worktree(place, force=True)
    if tip:
        return onto if git.tree_of(tip) == git.tree_of(onto) else tip
    off = git.no_drivers()
    merged = _merged_tree(git, off, onto, commit)
    if isinstance(merged, Conflict):
        return Conflict(conflicts, merged.hunks)
    if merged == git.tree_of(onto):
        return onto
    return git.output(off, "commit-tree", merged, "-p", onto, "-m", message)


def conflicts(git: Git, one: str, other: str) -> list[str]:
    """The files git's merge of two commits would leave in conflict ([] : it is clean).
    Objects only: merge-tree writes a tree nobody refers to, no ref moves."""
    found = _merged_tree(git, git.no_drivers(), one, other)
    return found.files if isinstance(found, Conflict) else []
