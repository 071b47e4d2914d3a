"""Checkpoints of the person's working tree, kept as commits, and restoring them.

Checkpoints of the person's working tree: a snapshot (tracked and untracked non-ignored
files) as a commit object, stored under refs/wvo/checkpoints/ without touching the working
tree, the index or any branch; what it changed; restoring it. The state folder is left out
(Git.keep_out)."""

import os
import stat
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.git.run import (
    GIT_TIMEOUT_S,
    OBJECT_ID,
    PATH_BYTES,
    Git,
    clip,
    records,
    size_text,
)

_SNAPSHOT_FILE_BYTES = 256 * 1024 * 1024  # a checkpoint's snapshot stores no larger file


@dataclass(frozen=True)
class Snapshot:
    head: str | None  # None in a repository without commits
    commit: str


def snapshot(git: Git, message: str) -> Snapshot:
    """The working tree as a commit object. Refused (ValidationFailed, nothing stored)
    when it holds a file over _SNAPSHOT_FILE_BYTES, or when git takes over
    GIT_TIMEOUT_S: git reads every file it stores whole (a sparse 1 TiB file takes it
    hours, in a few MiB of memory)."""
    off = git.no_drivers()
    # Empty (and a non-zero exit) in a repository without commits.
    head = git.output(off, "rev-parse", "--verify", "--quiet", "HEAD", check=False) or None
    with tempfile.TemporaryDirectory(prefix="wvo-index-") as scratch:
        # A private index: `add -A` there stages everything without touching the real one.
        index = Path(scratch) / "index"
        large = _larger(git, off, index, _SNAPSHOT_FILE_BYTES)
        if large:
            shown = ", ".join(f"{clip(p)} ({size_text(n)})" for p, n in large[:5])
            raise ValidationFailed(
                f"no snapshot taken: the working tree holds files over "
                f"{size_text(_SNAPSHOT_FILE_BYTES)}: {shown}; remove them, have .gitignore "
                "ignore them, or checkpoint without git_snapshot"
            )
        try:
            git.output(off, "add", "-A", "--", ":/", *git.keep_out, index=index)
        except subprocess.TimeoutExpired:
            raise ValidationFailed(
                f"no snapshot taken: git took over {GIT_TIMEOUT_S} s to read the working "
                "tree; checkpoint without git_snapshot"
            ) from None
        tree = git.output(off, "write-tree", index=index)
    parents = ["-p", head] if head else []
    commit = git.output(off, "commit-tree", tree, *parents, "-m", message)
    return Snapshot(head=head, commit=commit)


def _larger(git: Git, off: Sequence[str], index: Path, most: int) -> list[tuple[str, int]]:
    """The files `add -A` into the empty `index` would store that hold over `most`
    bytes, with their sizes (listed by git, which reads no file to list them)."""
    found = []
    args = ("ls-files", "-z", "--others", "--exclude-standard", "--full-name")
    with git.spawn(*args, "--", ":/", *git.keep_out, off=off, index=index) as lister:
        assert lister.stdout is not None
        for record in records(lister.stdout, b"\0", limit=PATH_BYTES):
            path = os.fsdecode(record)
            with suppress(OSError):  # gone meanwhile: git will not store it either
                info = os.lstat(git.repo.top / path)
                if stat.S_ISREG(info.st_mode) and info.st_size > most:
                    found.append((path, info.st_size))
    return found


def uncommitted(git: Git) -> str:
    return git.output(
        git.no_drivers(),
        "status", "--porcelain", "--ignore-submodules=all", "--", ".", *git.keep_out,
    )  # fmt: skip


def diff_stat(git: Git, commit: str) -> str:
    """What restoring `commit` would change in the working tree."""
    return git.output(
        git.no_drivers(),
        "diff", "--stat", "--no-ext-diff", "--no-textconv", "--ignore-submodules=all",
        "-R", commit, "--", ".", *git.keep_out,
    )  # fmt: skip


def snapshot_diff(git: Git, head: str | None, commit: str, max_bytes: int) -> tuple[str, bool]:
    """The patch from `head` (the HEAD a snapshot was taken on; None: a repository
    without commits, every file added) to the snapshot `commit`, and whether it was cut
    at `max_bytes`. Reads objects only (never the working tree or the index); drivers and
    converters off; the output is read no further than `max_bytes`."""
    for given in (head, commit):
        if given is not None and not OBJECT_ID.fullmatch(given):
            raise ValidationFailed(f"not a commit id: {given!r}")
    off = git.no_drivers()
    missing = [
        c for c in (head, commit)
        if c is not None
        and git.run([], "cat-file", "-e", f"{c}^{{commit}}").returncode != 0
    ]  # fmt: skip
    if missing:
        raise ValidationFailed(
            f"commit {missing[0]} is not in {git.repo.top} (a snapshot taken by a server "
            "on another workspace?)"
        )
    plain = ["--no-ext-diff", "--no-textconv", "--no-color"]
    args = (
        ["diff-tree", "-p", "-r", "--root", "--no-commit-id", *plain, commit]
        if head is None
        else ["diff", *plain, head, commit]
    )
    with subprocess.Popen(
        ["git", *args], cwd=git.cwd, env=git.env_for(off),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    ) as process:  # fmt: skip
        timer = threading.Timer(GIT_TIMEOUT_S, process.kill)
        timer.start()
        try:
            assert process.stdout is not None
            out = process.stdout.read(max_bytes + 1)
            cut = len(out) > max_bytes
            if cut:
                process.kill()
            process.wait()
        finally:
            timer.cancel()
    if not cut and process.returncode != 0:
        raise ValidationFailed(f"git {args[0]} failed in {git.repo.top}")
    return out[:max_bytes].decode(errors="replace"), cut


def restore(git: Git, commit: str, force: bool = False) -> None:
    """Working-tree files as in `commit`; the index and branches stay as they are. Refused
    over uncommitted work, which it would overwrite, unless `force`."""
    dirty = "" if force else uncommitted(git)
    if dirty:
        raise ValidationFailed(
            "the workspace has uncommitted work that the rollback would overwrite:\n"
            f"{dirty}\ncommit or stash it, or pass --force"
        )
    git.output(
        git.no_drivers(),
        "restore", f"--source={commit}", "--worktree", "--", ".", *git.keep_out,
    )  # fmt: skip
