"""A commit's files written or read without a checkout, and a new repository per worker.

A commit's files out of git without a checkout (so no attributes, filters, eol conversion
or hooks): a tree written as raw blobs into a fresh folder (materialize), a folder's files
read as objects (read_tree_files), and a new repository for one worker attempt
(clone_for_worker). Each folder written is made and opened relative to its parent, following
no link."""

import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import IO

from wvo_mcp import removal
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.git.nofollow import CHUNK, O_DIR, O_NEW, open_dir
from wvo_mcp.git.refs import valid_ref
from wvo_mcp.git.run import ENV, GIT_TIMEOUT_S, Git, check_run, config_env, records

_SYMLINK_BYTES = 4095  # PATH_MAX less the NUL

_FILE_MODES = {"100644": 0o644, "100755": 0o755, "120000": 0o777}


def read_tree_files(
    git: Git, commit: str, folder: str, names: re.Pattern[str], max_bytes: int
) -> dict[str, bytes | None]:
    """The files directly in `folder` as committed at `commit` whose names `names`
    matches, read as objects (never a checkout, the working tree, the index or a
    filter). An entry that is not a regular file (a link, a folder, a submodule) or is
    over `max_bytes` is not read: None. {} when `commit` has no such folder or is none."""
    if commit.startswith("-") or ":" in commit:
        raise ValidationFailed(f"not a commit: {commit!r}")
    # Quoted paths keep the listing ASCII; a name git had to quote matches no `names`.
    listed = git.run([], "ls-tree", "-l", f"{commit}:{folder}", config=[("core.quotePath", "true")])
    if listed.returncode != 0:
        return {}
    found: dict[str, bytes | None] = {}
    ids: dict[str, str] = {}  # name -> object id, of the files to read
    for line in listed.stdout.splitlines():
        meta, _, name = line.partition("\t")
        mode, kind, oid, size = meta.split()
        if names.fullmatch(name):
            found[name] = None
            if mode in ("100644", "100755") and kind == "blob" and int(size) <= max_bytes:
                ids[name] = oid
    if not ids:
        return found
    batch = subprocess.run(
        ["git", "cat-file", "--batch"], cwd=git.cwd, env=git.env_for(),
        input="".join(f"{oid}\n" for oid in ids.values()).encode(),
        capture_output=True, timeout=GIT_TIMEOUT_S,
    )  # fmt: skip
    out, at = batch.stdout, 0
    for name, oid in ids.items():
        # Each object comes back as "<id> blob <size>\n<content>\n".
        end = out.find(b"\n", at)
        header = out[at:end].split()
        if batch.returncode != 0 or end < 0 or header[:2] != [oid.encode(), b"blob"]:
            raise ValidationFailed(f"git cat-file could not read {oid} in {git.repo.top}")
        length = int(header[2])
        found[name] = out[end + 1 : end + 1 + length]
        at = end + 2 + length
    return found


def materialize(
    git: Git,
    commit: str,
    dest: Path,
    max_bytes: int = 2 * 1024**3,
    max_files: int = 500_000,
) -> None:
    """The tree of `commit` written into the empty folder `dest` as raw blobs: no
    checkout, so no attributes, filters, eol conversion or hooks. Regular files get
    mode 0644 or 0755, links are created (never followed), submodules are skipped. A path
    that could leave `dest` or reach a .git, a path through a link or file written
    earlier, more than `max_files` entries or `max_bytes` bytes: ValidationFailed, and
    `dest` is left empty."""
    git.checked_commit(commit, "commit")
    root = open_dir(dest, "dest")
    try:
        if os.listdir(root):
            raise ValidationFailed(f"{dest} is not empty: materialize writes a fresh folder")
        try:
            _write_tree(git, commit, root, max_bytes, max_files)
        except BaseException:
            _empty_dir(root)
            raise
    finally:
        os.close(root)


def _write_tree(git: Git, commit: str, root: int, max_bytes: int, max_files: int) -> None:
    folders = _Folders(root)
    with (
        git.spawn("ls-tree", "-r", "-z", "--full-tree", commit) as lister,
        git.spawn("cat-file", "--batch", stdin=True) as reader,
    ):
        assert lister.stdout is not None and reader.stdin and reader.stdout
        written = files = 0
        try:
            for record in records(lister.stdout, b"\0", limit=CHUNK):
                files += 1
                if files > max_files:
                    raise ValidationFailed(f"the tree of {commit} has over {max_files} files")
                meta, tab, path = record.partition(b"\t")
                fields = meta.split(b" ")
                if not tab or len(fields) != 3:
                    raise ValidationFailed(f"git ls-tree gave an unreadable line: {record!r}")
                mode, kind, oid = (f.decode("ascii", "replace") for f in fields)
                shown = os.fsdecode(path)
                parts = tree_path(path)
                if mode == "160000":
                    continue  # a submodule: its commit is not in this repository
                if mode not in _FILE_MODES or kind != "blob":
                    raise ValidationFailed(f"{shown!r}: unsupported tree entry mode {mode}")
                reader.stdin.write(oid.encode() + b"\n")
                reader.stdin.flush()
                header = reader.stdout.readline(200).split()
                if len(header) != 3 or header[1] != b"blob" or not header[2].isdigit():
                    raise ValidationFailed(f"{shown!r}: object {oid} is not a readable blob")
                size = int(header[2])
                written += size
                if written > max_bytes:
                    raise ValidationFailed(
                        f"the tree of {commit} holds over {max_bytes} bytes (at {shown!r})"
                    )
                where = folders.enter(parts[:-1], shown)
                if mode == "120000":
                    _write_link(where, parts[-1], reader.stdout, size, shown)
                else:
                    mode_bits = _FILE_MODES[mode]
                    _write_file(where, parts[-1], reader.stdout, size, mode_bits, shown)
                if reader.stdout.read(1) != b"\n":
                    raise ValidationFailed(f"git cat-file stopped inside {oid}")
        finally:
            folders.close()
        if lister.wait() != 0:
            raise ValidationFailed(f"git ls-tree could not list {commit} in {git.repo.top}")


def clone_for_worker(
    git: Git,
    dest: Path,
    base: str,
    branch: str,
    name: str = "wvo-mcp worker",
    email: str = "wvo-mcp-worker@localhost",
    also: Mapping[str, str] | None = None,
    made: bool = False,
) -> None:
    """A new repository at `dest` (which must not exist, or, `made`, be the empty folder
    the caller just made for it) for one worker attempt: its
    objects borrowed from this repository through objects/info/alternates, `branch` at
    `base` checked out, `name` and `email` set to commit with, and the branches in
    `also` at their commits (the target a returned conflict is resolved against).
    Nothing of this repository's configuration, hooks or templates goes with it. On
    failure `dest` is removed."""
    if not valid_ref(f"refs/heads/{branch}"):
        raise ValidationFailed(f"not a valid branch name: {branch!r}")
    commit = git.checked_commit(base, "base")
    objects = git.objects
    if "\n" in str(objects) or not objects.is_absolute():
        raise ValidationFailed(f"{objects} cannot be written in an alternates file")
    fmt = git.object_format
    dest = Path(os.path.abspath(dest))
    try:
        if not made:
            dest.mkdir(mode=0o755)  # never into a folder a worker may have had
        elif not stat.S_ISDIR(os.lstat(dest).st_mode) or os.listdir(dest):
            raise ValidationFailed(f"{dest} is not the empty folder made for this run")
    except OSError as exc:
        raise ValidationFailed(
            f"cannot make {dest} ({exc.strerror}): a new path in an existing folder is needed"
        ) from None
    try:
        git_dir = dest / ".git"
        # Brand new and ours until this returns, so git may run here.
        env = {**ENV, **config_env(), "GIT_CEILING_DIRECTORIES": str(dest.parent)}
        with tempfile.TemporaryDirectory(prefix="wvo-template-") as template:
            check_run(
                ["git", "init", "--quiet", f"--template={template}",
                 f"--object-format={fmt}", f"--initial-branch={branch}", str(dest)],
                dest, env,
            )  # fmt: skip
        alternates = os.open(
            git_dir / "objects" / "info" / "alternates",
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o644,
        )
        with os.fdopen(alternates, "w") as handle:
            handle.write(f"{objects}\n")
        env = {**env, "GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(dest)}
        for step in (
            ["config", "user.name", name],
            ["config", "user.email", email],
            ["update-ref", f"refs/heads/{branch}", commit, "0" * len(commit)],
            *(
                ["update-ref", f"refs/heads/{name}", git.checked_commit(tip, name)]
                for name, tip in (also or {}).items()
                if name != branch and valid_ref(f"refs/heads/{name}")
            ),
            ["read-tree", "--reset", "-u", "HEAD"],
        ):
            check_run(["git", *step], dest, env)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def tree_path(path: bytes) -> list[bytes]:
    """The components of a tree path, or ValidationFailed for one that could climb out of
    the destination or write into a git directory."""
    parts = path.split(b"/")
    for part in parts:
        if part in (b"", b".", b"..") or b"\0" in part:
            raise ValidationFailed(f"unsafe path in the tree: {os.fsdecode(path)!r}")
        # .git, and the spellings some file systems fold into it (".GIT", ".git. ").
        if part.rstrip(b". ").lower() == b".git":
            raise ValidationFailed(f"a .git entry in the tree: {os.fsdecode(path)!r}")
    return parts


class _Folders:
    """Open folders along the current path under the destination, each made and opened
    relative to its parent without following links: a link written earlier in the tree
    cannot redirect a later write."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.stack: list[tuple[bytes, int]] = []

    def enter(self, parts: list[bytes], shown: str) -> int:
        keep = 0
        while keep < min(len(parts), len(self.stack)) and self.stack[keep][0] == parts[keep]:
            keep += 1
        while len(self.stack) > keep:
            os.close(self.stack.pop()[1])
        for part in parts[keep:]:
            parent = self.stack[-1][1] if self.stack else self.root
            with suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=parent)
            try:
                fd = os.open(part, O_DIR, dir_fd=parent)
            except OSError:
                raise ValidationFailed(
                    f"{shown!r}: {os.fsdecode(part)!r} is a link or a file earlier in the tree"
                ) from None
            os.fchmod(fd, 0o755)
            self.stack.append((part, fd))
        return self.stack[-1][1] if self.stack else self.root

    def close(self) -> None:
        while self.stack:
            os.close(self.stack.pop()[1])


def _write_file(
    folder: int, name: bytes, source: IO[bytes], size: int, mode: int, shown: str
) -> None:
    try:
        fd = os.open(name, O_NEW, 0o600, dir_fd=folder)
    except OSError as exc:
        raise ValidationFailed(f"{shown!r}: cannot be written ({exc.strerror})") from None
    with os.fdopen(fd, "wb") as handle:
        left = size
        while left:
            chunk = source.read(min(left, CHUNK))
            if not chunk:
                raise ValidationFailed(f"{shown!r}: git cat-file stopped early")
            handle.write(chunk)
            left -= len(chunk)
        os.fchmod(handle.fileno(), mode)


def _write_link(folder: int, name: bytes, source: IO[bytes], size: int, shown: str) -> None:
    if size > _SYMLINK_BYTES:
        raise ValidationFailed(f"{shown!r}: a link target over {_SYMLINK_BYTES} bytes")
    target = source.read(size)
    if len(target) != size or not target or b"\0" in target:
        raise ValidationFailed(f"{shown!r}: not a usable link target")
    try:
        os.symlink(target, name, dir_fd=folder)
    except OSError as exc:
        raise ValidationFailed(f"{shown!r}: cannot be written ({exc.strerror})") from None


def _empty_dir(folder: int) -> None:
    """Remove everything in `folder` (opened without links), following no link, however deep
    it goes."""
    for name in os.listdir(folder):
        removal.remove_in(folder, name)
