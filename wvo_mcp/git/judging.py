"""Which files of a worker's repository differ from a commit, read as data, bounded.

Judging a worker's repository, read as data (git never runs there): which of its files
differ from a commit's tree, leaving out what that commit's own .gitignore files ignore, in
bounded memory and time; Unjudged when it cannot be read or holds more than a judgement may
take."""

import hashlib
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import suppress
from pathlib import Path

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.git.nofollow import CHUNK, O_DIR, O_READ, open_dir
from wvo_mcp.git.run import (
    BULK_TIMEOUT_S,
    ENV,
    GIT_TIMEOUT_S,
    PATH_BYTES,
    Git,
    check_run,
    clip,
    config_env,
    records,
    size_text,
    tail,
)
from wvo_mcp.git.trees import tree_path

_ADDED_MOST = 200_000  # files a worker added, asked about as ignored or not; more all count
_IGNORE_ROUNDS = 32  # folders deep that ignored added folders are looked for, then walked
# Judging a worker's repository (differs) is bounded in memory and time: past these it
# is not judged (Unjudged), and a file over _COMPARE_FILE_BYTES is never read.
_WALK_ENTRIES = 500_000  # paths its HEAD's tree has, and files and folders listed
_WALK_DEPTH = 128  # folders nested
_COMPARE_FILE_BYTES = 256 * 1024 * 1024  # one file read to compare; larger ones differ unread
_COMPARE_BYTES = 4 * 1024**3  # all files read to compare

_IGNORE_FILES = 10_000  # committed .gitignore files read, and their bytes (more: not read,
_IGNORE_BYTES = 16 * 1024 * 1024  # so fewer files are ignored and more keep a repository)


class Unjudged(Exception):
    """A worker's repository differs cannot judge (why, as a person reads it): what is in
    it cannot be read, or there is more of it than a judgement may take."""


def differs(git: Git, commit: str, folder: Path, most: int = 1000) -> list[str]:
    """The paths in `folder` (a worker's repository, read as data: git is never run
    there) whose files differ from `commit`'s tree: changed, added or removed, its .git
    left out. Blob ids are computed here, so no attribute, filter or config applies.

    An added file that the .gitignore files committed in `commit` ignore does not count
    (a cache: __pycache__, .pytest_cache), nor is an added folder they ignore walked.
    Only those rules, read as objects: never a .gitignore the worker left uncommitted,
    its .git/info/exclude or any configuration, which would let it pass off work as a
    cache.

    Whatever the worker left, memory and time stay bounded: a file is read a chunk at a
    time, and only when its size is the one `commit` records and at most
    _COMPARE_FILE_BYTES (a larger one counts as differing, said beside its path); a
    FIFO, socket or device is never opened. Unjudged when something cannot be read, or
    past _WALK_ENTRIES entries, _WALK_DEPTH folders deep or _COMPARE_BYTES read. A path
    too long to show whole is shown by its start and end."""
    return [clip(path) for path in _differs(git, commit, folder, most)]


def _differs(git: Git, commit: str, folder: Path, most: int) -> list[str]:
    tree = _tree_entries(git, commit)
    tracked_dirs: set[str] = set()  # the folders `commit` has something in
    for path in tree:
        parent = os.path.dirname(path)
        while parent and parent not in tracked_dirs:
            tracked_dirs.add(parent)
            parent = os.path.dirname(parent)
    algorithm = "sha256" if git.object_format == "sha256" else "sha1"
    found: list[str] = []
    added: list[str] = []  # files and links `commit` does not have
    seen: set[str] = set()
    with (
        _Walk(folder, entries=_WALK_ENTRIES - len(tree)) as walk,
        _Ignores(git, commit, tree) as ignores,
    ):
        todo: list[str] = [""]
        for depth in range(_IGNORE_ROUNDS + 1):
            # Folders `commit` has nothing in wait, to be walked only if not ignored; past
            # _IGNORE_ROUNDS of them, everything is walked (and each file asked about).
            deferred: list[str] | None = [] if depth < _IGNORE_ROUNDS else None
            for start in todo:
                for path, where, entry in walk.entries(start, tracked_dirs, deferred):
                    seen.add(path)
                    if path not in tree:
                        if entry.is_symlink() or entry.is_file(follow_symlinks=False):
                            added.append(path)  # a FIFO, socket or device holds no work
                    else:
                        differing = walk.compare(where, entry, path, tree[path], algorithm)
                        if differing is not None:
                            found.append(differing)
                            if len(found) >= most:
                                return found
                    if len(added) > _ADDED_MOST:
                        return [*found, *added][:most]  # too many to ask about: all count
            if not deferred:
                break
            if len(deferred) > _ADDED_MOST:
                return [*found, *added, *deferred][:most]  # too many to ask about
            ignored = ignores.of(deferred, folders=True)
            todo = [d for d in deferred if d not in ignored]
        ignored = ignores.of(added) if added else set()
    found += [p for p in added if p not in ignored]
    found += sorted(p for p, (mode, *_) in tree.items() if p not in seen and mode != "160000")
    return found[:most]


def blobs(git: Git, oids: Sequence[str], max_bytes: int) -> dict[str, bytes]:
    """The contents of the blobs `oids`, as long as they add up to at most `max_bytes`
    (sizes asked first: a blob past that is never read)."""
    if not oids:
        return {}
    sizes = subprocess.run(
        ["git", "cat-file", "--batch-check"], cwd=git.cwd, env=git.env_for(),
        input="".join(f"{oid}\n" for oid in oids).encode(), capture_output=True,
        timeout=GIT_TIMEOUT_S,
    )  # fmt: skip
    wanted, budget = [], max_bytes
    for line in sizes.stdout.decode(errors="replace").splitlines():
        oid, kind, size = [*line.split(), "", "", ""][:3]
        if kind == "blob" and size.isdigit() and int(size) <= budget:
            budget -= int(size)
            wanted.append(oid)
    batch = subprocess.run(
        ["git", "cat-file", "--batch"], cwd=git.cwd, env=git.env_for(),
        input="".join(f"{oid}\n" for oid in wanted).encode(), capture_output=True,
        timeout=GIT_TIMEOUT_S,
    )  # fmt: skip
    found: dict[str, bytes] = {}
    out, at = batch.stdout, 0
    for oid in wanted:
        # Each object comes back as "<id> blob <size>\n<content>\n".
        end = out.find(b"\n", at)
        header = out[at:end].split()
        if batch.returncode != 0 or end < 0 or header[:2] != [oid.encode(), b"blob"]:
            raise ValidationFailed(f"git cat-file could not read {oid} in {git.repo.top}")
        length = int(header[2])
        found[oid] = out[end + 1 : end + 1 + length]
        at = end + 2 + length
    return found


def _tree_entries(git: Git, commit: str) -> dict[str, tuple[str, str, int]]:
    """Every path of `commit`'s tree with its (mode, object id, size: -1 for a
    submodule); Unjudged past _WALK_ENTRIES of them."""
    git.checked_commit(commit, "commit")
    tree: dict[str, tuple[str, str, int]] = {}
    with git.spawn("ls-tree", "-r", "-z", "--long", "--full-tree", commit) as lister:
        assert lister.stdout is not None
        for record in records(lister.stdout, b"\0", limit=PATH_BYTES):
            meta, _, name = record.partition(b"\t")
            mode, _kind, oid, size = meta.decode().split()
            tree[os.fsdecode(name)] = (mode, oid, int(size) if size.isdigit() else -1)
            if len(tree) > _WALK_ENTRIES:
                raise Unjudged(f"the tree of {commit[:12]} has over {_WALK_ENTRIES} paths")
        if lister.wait() != 0:
            raise ValidationFailed(f"git ls-tree failed in {git.repo.top}")
    return tree


class _Ignores:
    """Which of a worker's added paths the .gitignore files committed in one commit ignore,
    asked of git's own check-ignore in a scratch repository of ours that holds only those
    files: no rule the worker left uncommitted, no info/exclude, no configured
    excludesFile applies."""

    def __init__(self, git: Git, commit: str, tree: Mapping[str, tuple[str, str, int]]) -> None:
        self.git, self.commit, self.tree = git, commit, tree
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> "_Ignores":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._scratch is not None:
            self._scratch.cleanup()

    def _mirror(self) -> Path:
        """The scratch repository, made on first use: each committed .gitignore at its path."""
        if self._scratch is not None:
            return Path(self._scratch.name) / "tree"
        self._scratch = tempfile.TemporaryDirectory(prefix="wvo-ignores-")
        top = Path(self._scratch.name) / "tree"
        top.mkdir()
        rules = sorted(
            (path, oid) for path, (mode, oid, _) in self.tree.items()
            if os.path.basename(path) == ".gitignore" and mode in ("100644", "100755")
        )[:_IGNORE_FILES]  # fmt: skip
        texts = blobs(self.git, [oid for _, oid in rules], _IGNORE_BYTES)
        for path, oid in rules:
            if oid in texts:
                parts = [os.fsdecode(p) for p in tree_path(os.fsencode(path))]
                top.joinpath(*parts[:-1]).mkdir(parents=True, exist_ok=True)
                top.joinpath(*parts).write_bytes(texts[oid])
        env = {**ENV, **config_env(), "GIT_CEILING_DIRECTORIES": str(top.parent)}
        with tempfile.TemporaryDirectory(prefix="wvo-template-") as template:
            check_run(["git", "init", "--quiet", f"--template={template}", str(top)], top, env)
        return top

    def of(self, paths: Sequence[str], folders: bool = False) -> set[str]:
        """Those of `paths` (relative, as found in the worker's repository) that are
        ignored; `folders`: they are folders there (a pattern ending in / matches them)."""
        top = self._mirror()
        if folders:  # git asks the working tree whether a path is a folder
            for path in paths:
                with suppress(OSError):
                    top.joinpath(path).mkdir(parents=True, exist_ok=True)
        env = {
            **ENV, **config_env(extra=[("core.excludesFile", os.devnull)]),
            "GIT_DIR": str(top / ".git"), "GIT_WORK_TREE": str(top),
        }  # fmt: skip
        asked = subprocess.run(
            ["git", "check-ignore", "--no-index", "--stdin", "-z"], cwd=top, env=env,
            input=b"".join(os.fsencode(p) + b"\0" for p in paths), capture_output=True,
            timeout=BULK_TIMEOUT_S,
        )  # fmt: skip
        if asked.returncode not in (0, 1):  # 1: none of them is ignored
            raise ValidationFailed(f"git check-ignore failed: {tail(os.fsdecode(asked.stderr))}")
        return {os.fsdecode(p) for p in asked.stdout.split(b"\0") if p}


class _Walk:
    """A worker's repository walked as data, iteratively (however deep it goes, no
    recursion), each folder opened relative to its parent without following links (however
    long its paths grow), within budgets: Unjudged past them, or at anything unreadable."""

    def __init__(self, top: Path, entries: int) -> None:
        try:
            self.root = open_dir(top, "the repository")
        except ValidationFailed as exc:
            raise Unjudged(str(exc)) from None
        self.entries_left = entries
        self.bytes_left = _COMPARE_BYTES

    def __enter__(self) -> "_Walk":
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.root)

    def entries(
        self, start: str, tracked: set[str], deferred: list[str] | None
    ) -> Iterator[tuple[str, int, os.DirEntry[str]]]:
        """(path relative to the top, its open folder, its entry) of each file, link or
        other non-folder under the folder `start`, the top's .git left out. With `deferred`,
        a folder that is not in `tracked` is not entered but added to it. The open folder
        is valid until the next entry is asked for."""
        parts = start.split("/") if start else []
        if len(parts) > _WALK_DEPTH:
            raise Unjudged(f"{clip(start)}: folders nested over {_WALK_DEPTH} deep")
        levels: list[tuple[int, str, list[str]]] = []  # (folder, its path, folders to enter)
        try:
            fd = os.dup(self.root)
            levels.append((fd, start, []))
            for n, part in enumerate(parts):  # down to `start`, one folder at a time
                child = self._open(fd, part, "/".join(parts[: n + 1]))
                os.close(fd)
                fd = child
                levels[0] = (fd, start, [])
            yield from self._listed(fd, start, levels[0][2], tracked, deferred)
            while levels:
                fd, here, inner = levels[-1]
                if not inner:
                    levels.pop()
                    os.close(fd)
                    continue
                name = inner.pop()
                path = f"{here}/{name}" if here else name
                if len(parts) + len(levels) > _WALK_DEPTH:
                    raise Unjudged(f"{clip(path)}: folders nested over {_WALK_DEPTH} deep")
                levels.append((self._open(fd, name, path), path, []))
                yield from self._listed(levels[-1][0], path, levels[-1][2], tracked, deferred)
        finally:
            for level in levels:
                os.close(level[0])

    def _listed(
        self, fd: int, here: str, inner: list[str], tracked: set[str], deferred: list[str] | None
    ) -> Iterator[tuple[str, int, os.DirEntry[str]]]:
        """The non-folders in the open folder `fd` (at `here`); its folders to walk go into
        `inner` (or `deferred`)."""
        try:
            with os.scandir(fd) as listing:
                for entry in listing:
                    self.entries_left -= 1
                    if self.entries_left < 0:
                        raise Unjudged(f"over {_WALK_ENTRIES} files and folders: more than a "
                                       "judgement may read")  # fmt: skip
                    if not here and entry.name == ".git":
                        continue
                    path = f"{here}/{entry.name}" if here else entry.name
                    if not entry.is_dir(follow_symlinks=False):
                        yield path, fd, entry
                    elif deferred is not None and path not in tracked:
                        deferred.append(path)
                    else:
                        inner.append(entry.name)
        except OSError as exc:
            where = clip(here) if here else "its top folder"
            raise Unjudged(f"{where}: cannot be listed ({exc.strerror})") from None

    @staticmethod
    def _open(parent: int, name: str, path: str) -> int:
        try:
            return os.open(name, O_DIR, dir_fd=parent)
        except OSError as exc:
            reason = f"cannot be opened as a folder ({exc.strerror})"
            raise Unjudged(f"{clip(path)}: {reason}") from None

    def compare(
        self,
        folder: int,
        entry: os.DirEntry[str],
        path: str,
        recorded: tuple[str, str, int],
        algorithm: str,
    ) -> str | None:
        """None when `entry` (in the open `folder`) is what the tree records for `path`;
        otherwise `path`, with why beside it when it differs unread for its size."""
        mode, oid, size = recorded
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                if mode != "120000" or info.st_size != size:
                    return path
                target = os.readlink(os.fsencode(entry.name), dir_fd=folder)
                return path if _blob_id(target, algorithm) != oid else None
        except OSError as exc:
            raise Unjudged(f"{clip(path)}: cannot be read ({exc.strerror})") from None
        if not stat.S_ISREG(info.st_mode):
            return path  # a FIFO, socket or device where `commit` has a file: never opened
        if mode != ("100755" if info.st_mode & 0o100 else "100644") or info.st_size != size:
            return path  # its size alone says it changed: not read
        if size > _COMPARE_FILE_BYTES:
            return f"{path} (over {size_text(_COMPARE_FILE_BYTES)}: not compared)"
        self.bytes_left -= size
        if self.bytes_left < 0:
            raise Unjudged(f"over {size_text(_COMPARE_BYTES)} of files to compare: more than a "
                           "judgement may read")  # fmt: skip
        try:
            fd = os.open(entry.name, O_READ, dir_fd=folder)
            try:
                now = os.fstat(fd)
                if not stat.S_ISREG(now.st_mode) or now.st_size != size:
                    return path  # changed since it was listed
                found = stream_blob_id(fd, size, algorithm)
            finally:
                os.close(fd)
        except OSError as exc:
            raise Unjudged(f"{clip(path)}: cannot be read ({exc.strerror})") from None
        return path if found != oid else None


def stream_blob_id(fd: int, size: int, algorithm: str) -> str | None:
    """git's blob id (`blob <size>`, a NUL byte and the content, hashed with `algorithm`) of the
    `size` bytes the open file `fd` holds from where it stands, read a chunk at a time; None
    when it does not hold exactly that many (it changed meanwhile)."""
    digest = hashlib.new(algorithm, b"blob %d\0" % size)
    buffer = bytearray(min(size, CHUNK) or 1)
    view = memoryview(buffer)
    left = size
    while left:
        got = os.readv(fd, [view[: min(left, len(buffer))]])
        if not got:
            return None
        digest.update(view[:got])
        left -= got
    if os.read(fd, 1):
        return None
    return digest.hexdigest()


def _blob_id(data: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm, b"blob %d\0" % len(data) + data).hexdigest()
