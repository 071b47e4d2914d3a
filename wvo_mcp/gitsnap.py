"""Trusted git calls: snapshots of a workspace for checkpoints (the working tree, tracked and
untracked non-ignored files, as a commit under refs/wvo/checkpoints/, without touching the
working tree, the index or any branch), and taking an autopilot worker's commits as data.

The workspace is written by sandboxed commands, so every git call here runs no program the
repository could name (hooks, fsmonitor, filters, textconv, external diff, pager, ...),
reads no system or user configuration, gets no stdin (it is the MCP pipe) and a minimal
environment, and uses the git directory found when the server started, never one that
appears later. Snapshots and restores leave the state folder out.

A worker's own repository (clone_for_worker) is never handed to git: its HEAD and refs are
read as files (read_head), its objects copied as plain files and validated by index-pack
(Git.take_commits), and a commit is written out as raw blobs (Git.materialize). Paths a
worker can write are opened one component at a time, following no symbolic link.
"""

import hashlib
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO

from wvo_mcp import removal, scratch_dirs
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules import state_folder

GIT_TIMEOUT_S = 120
BULK_TIMEOUT_S = 900  # one pack or one tree of up to a few GiB
REF_ROOT = "refs/wvo/checkpoints"
_REF_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
_GITFILE_BYTES = 4096
_OBJECT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1 or SHA-256
_HEX_ID = re.compile(r"[0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?")
_HEAD_BYTES = 4096
_PACKED_REFS_BYTES = 32 * 1024 * 1024
_REFS_MOST = 10_000  # refs read from one worker's repository
_REF_DEPTH = 16  # folders under refs/
_SYMLINK_BYTES = 4095  # PATH_MAX less the NUL
_CHUNK = 1024 * 1024
# A worker's object files: loose objects and packs, nothing else (no info/alternates).
_FANOUT = re.compile(r"[0-9a-f]{2}")
_LOOSE = re.compile(r"[0-9a-f]{38}(?:[0-9a-f]{24})?")
_PACK = re.compile(r"pack-[0-9a-f]{40}(?:[0-9a-f]{24})?\.(?:pack|idx)")
_INTAKE_FILES = 1_000_000
_INCLUDE_DEPTH = 10  # git's own limit: deeper includes make every git call fail
_INCLUDE_FILES = 100
_PATH_BYTES = 1024 * 1024  # one path in a listing of a worker's commits
_ADDED_MOST = 200_000  # files a worker added, asked about as ignored or not; more all count
_IGNORE_ROUNDS = 32  # folders deep that ignored added folders are looked for, then walked
# Judging a worker's repository (Git.differs) is bounded in memory and time: past these it
# is not judged (Unjudged), and a file over _COMPARE_FILE_BYTES is never read.
_WALK_ENTRIES = 500_000  # paths its HEAD's tree has, and files and folders listed
_WALK_DEPTH = 128  # folders nested
_COMPARE_FILE_BYTES = 256 * 1024 * 1024  # one file read to compare; larger ones differ unread
_COMPARE_BYTES = 4 * 1024**3  # all files read to compare
_SNAPSHOT_FILE_BYTES = 256 * 1024 * 1024  # a checkpoint's snapshot stores no larger file
_IGNORE_FILES = 10_000  # committed .gitignore files read, and their bytes (more: not read,
_IGNORE_BYTES = 16 * 1024 * 1024  # so fewer files are ignored and more keep a repository)

ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/nonexistent",
    "LANG": "C",
    "LC_ALL": "C",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_ATTR_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_NO_REPLACE_OBJECTS": "1",
    "GIT_AUTHOR_NAME": "wvo-mcp",
    "GIT_AUTHOR_EMAIL": "wvo-mcp@localhost",
    "GIT_COMMITTER_NAME": "wvo-mcp",
    "GIT_COMMITTER_EMAIL": "wvo-mcp@localhost",
}
# Every setting through which configuration makes git run a program, switched off. Given as
# GIT_CONFIG_KEY_n / GIT_CONFIG_VALUE_n pairs (config_env), never as `-c name=value`: git
# splits a -c argument at its first '=', and a driver's name may contain one.
NO_PROGRAMS: tuple[tuple[str, str], ...] = (
    ("core.fsmonitor", "false"),
    ("core.hooksPath", os.devnull),
    ("core.pager", "cat"),
    ("core.editor", ":"),
    ("core.sshCommand", ""),
    ("core.askPass", ""),
    ("core.attributesFile", os.devnull),
    ("credential.helper", ""),
    ("diff.external", ""),
    ("gpg.program", ""),
    ("commit.gpgSign", "false"),
    ("protocol.allow", "never"),
    ("submodule.recurse", "false"),
    ("status.submoduleSummary", "false"),
)
# Drivers that attributes (which the workspace writes) can select by name.
DRIVERS = r"^(filter|diff|merge)\..+\.(clean|smudge|process|textconv|command|driver|required)$"
_DRIVER_NAME = re.compile(DRIVERS, re.DOTALL)


def config_env(off: Sequence[str] = (), extra: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """NO_PROGRAMS, an empty value for each configuration name in `off`, then `extra`, as
    the environment variables git reads command-line configuration from: a name travels
    whole, whatever bytes it holds (names are str with surrogate escapes, as os.fsdecode
    gives them)."""
    pairs = [*NO_PROGRAMS, *((name, "") for name in off), *extra]
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for n, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{n}"] = key
        env[f"GIT_CONFIG_VALUE_{n}"] = value
    return env


@dataclass(frozen=True)
class Repo:
    top: Path  # the top of the work tree
    entry: Path  # top/.git: the git directory, or a file naming it
    git_dir: Path


class Blocked(ValidationFailed):
    """A branch left where it was: the working tree that has it checked out would lose
    something if its files followed (changes nobody committed, or untracked files the new
    commit would overwrite)."""


class Protected(ValidationFailed):
    """A worker's commits change the state folder (state_folder.py): nothing was taken."""

    def __init__(self, paths: Sequence[str], folders: Sequence[str], tip: str) -> None:
        self.paths, self.folders, self.tip = list(paths), list(folders), tip
        where = " or ".join(f"{folder or '.'}/" for folder in folders)
        super().__init__(
            f"its commits change the state folder {where} ({', '.join(self.paths[:5])}"
            f"{' …' if len(self.paths) > 5 else ''}); nothing was taken"
        )


@dataclass(frozen=True)
class Snapshot:
    head: str | None  # None in a repository without commits
    commit: str


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


def locate(workspace: Path) -> Repo | None:
    """The repository `workspace` is in, found as git would, without running git."""
    here = workspace.resolve()
    for folder in (here, *here.parents):
        entry = folder / ".git"
        if entry.is_dir():
            return Repo(folder, entry, entry.resolve())
        if entry.is_file():
            with entry.open("rb") as handle:
                text = handle.read(_GITFILE_BYTES).decode(errors="replace")
            if not text.startswith("gitdir:"):
                return None
            return Repo(folder, entry, (folder / text[len("gitdir:") :].strip()).resolve())
    return None


class Unjudged(Exception):
    """A worker's repository Git.differs cannot judge (why, as a person reads it): what is in
    it cannot be read, or there is more of it than a judgement may take."""


class Git:
    """git commands on one repository, run as the module docstring says."""

    def __init__(self, repo: Repo, cwd: Path, exclude: Sequence[Path] = ()) -> None:
        self.repo = repo
        self.cwd = cwd
        self.env = {**ENV, "GIT_DIR": str(repo.git_dir), "GIT_WORK_TREE": str(repo.top)}
        # Pathspecs that keep what the server trusts out of snapshots and restores.
        self.keep_out = [
            f":(top,exclude){path.resolve().relative_to(repo.top)}"
            for path in exclude
            if repo.top in path.resolve().parents
        ]
        # The folders among them that no taken commit may change: as named (the last
        # component may be a link to elsewhere, which a commit could replace just the same)
        # and with their links resolved.
        named = [Path(os.path.abspath(path)) for path in exclude]
        self.protected = state_folder.inside(
            repo.top, [p for path in named for p in (path.parent.resolve() / path.name,
                                                    path.resolve())]
        )  # fmt: skip

    @cached_property
    def common_dir(self) -> Path:
        """The git directory shared by all worktrees (objects, refs, config)."""
        found = self._git([], "rev-parse", "--path-format=absolute", "--git-common-dir")
        return Path(found)

    def _no_drivers(self) -> list[str]:
        """Every filter, diff and merge driver the configuration names, to be switched off.
        Read afresh for each operation, so a driver configured later is switched off too: any
        command that touches the index or the working tree may run one (even write-tree
        re-hashes racily clean files through their filters)."""
        found = self._raw("config", "--null", "--name-only", "--get-regexp", DRIVERS)
        names = {os.fsdecode(n) for n in found.stdout.split(b"\0") if n}
        return sorted(names | self._drivers_behind_includes())

    def _drivers_behind_includes(self) -> set[str]:
        """Drivers named in the repository's configuration files and every file they include,
        whatever the include's condition: a condition false here (`onbranch:`, `gitdir:`)
        may be true in the git a command starts for another worktree or branch."""
        todo = [(self.common_dir / "config", 0), (self.repo.git_dir / "config.worktree", 0)]
        todo.append((self.common_dir / "config.worktree", 0))
        seen: set[Path] = set()
        names: set[str] = set()
        while todo:
            path, depth = todo.pop()
            if path in seen or depth > _INCLUDE_DEPTH or not path.is_file():
                continue  # git skips a missing include too
            seen.add(path)
            if len(seen) > _INCLUDE_FILES:
                raise ValidationFailed(
                    f"the git configuration of {self.repo.top} includes more than "
                    f"{_INCLUDE_FILES} files; include fewer"
                )
            listed = self._raw("config", "--file", str(path), "--no-includes", "--null", "--list")
            if listed.returncode != 0:
                continue  # gone meanwhile, or unreadable: git fails on it, then, not us
            for entry in listed.stdout.split(b"\0"):
                key, _, value = os.fsdecode(entry).partition("\n")
                if _DRIVER_NAME.fullmatch(key):
                    names.add(key)
                elif key == "include.path" or (
                    key.startswith("includeif.") and key.endswith(".path")
                ):
                    target = _include_target(path, value)
                    if target is not None:
                        todo.append((target, depth + 1))
        return names

    def _run(
        self,
        off: Sequence[str],
        *args: str,
        index: Path | None = None,
        config: Sequence[tuple[str, str]] = (),
        alternate: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """git `args` with NO_PROGRAMS, the drivers `off` and `config` set through the
        environment, and `alternate` as an extra object store; its output as text,
        undecodable bytes replaced."""
        return subprocess.run(
            ["git", *args], cwd=self.cwd, stdin=subprocess.DEVNULL, capture_output=True,
            text=True, errors="replace", timeout=GIT_TIMEOUT_S,
            env=self._env(off, index, config, alternate),
        )  # fmt: skip

    def _raw(self, *args: str, off: Sequence[str] = ()) -> subprocess.CompletedProcess[bytes]:
        """git `args` as _run runs them, its output as bytes (names exactly as git gives
        them: no decoding, no newline translation)."""
        return subprocess.run(
            ["git", *args], cwd=self.cwd, stdin=subprocess.DEVNULL, capture_output=True,
            timeout=GIT_TIMEOUT_S, env=self._env(off),
        )  # fmt: skip

    def _env(
        self,
        off: Sequence[str] = (),
        index: Path | None = None,
        config: Sequence[tuple[str, str]] = (),
        alternate: Path | None = None,
    ) -> dict[str, str]:
        env = {**self.env, **config_env(off, config)}
        if index is not None:
            env["GIT_INDEX_FILE"] = str(index)
        if alternate is not None:
            if ":" in str(alternate) or '"' in str(alternate):  # the list's separator, quote
                raise ValidationFailed(f"unusable scratch folder {alternate}; set TMPDIR")
            env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = str(alternate)
        return env

    def _git(
        self, off: list[str], *args: str, index: Path | None = None, check: bool = True
    ) -> str:
        result = self._run(off, *args, index=index)
        if check and result.returncode != 0:
            raise ValidationFailed(
                f"git {args[0]} failed in {self.repo.top}: {result.stderr.strip()}"
            )
        return result.stdout.strip()

    def snapshot(self, message: str) -> Snapshot:
        """The working tree as a commit object. Refused (ValidationFailed, nothing stored)
        when it holds a file over _SNAPSHOT_FILE_BYTES, or when git takes over
        GIT_TIMEOUT_S: git reads every file it stores whole (a sparse 1 TiB file takes it
        hours, in a few MiB of memory)."""
        off = self._no_drivers()
        # Empty (and a non-zero exit) in a repository without commits.
        head = self._git(off, "rev-parse", "--verify", "--quiet", "HEAD", check=False) or None
        with tempfile.TemporaryDirectory(prefix="wvo-index-") as scratch:
            # A private index: `add -A` there stages everything without touching the real one.
            index = Path(scratch) / "index"
            large = self._larger(off, index, _SNAPSHOT_FILE_BYTES)
            if large:
                shown = ", ".join(f"{_clip(p)} ({_size(n)})" for p, n in large[:5])
                raise ValidationFailed(
                    f"no snapshot taken: the working tree holds files over "
                    f"{_size(_SNAPSHOT_FILE_BYTES)}: {shown}; remove them, have .gitignore "
                    "ignore them, or checkpoint without git_snapshot"
                )
            try:
                self._git(off, "add", "-A", "--", ":/", *self.keep_out, index=index)
            except subprocess.TimeoutExpired:
                raise ValidationFailed(
                    f"no snapshot taken: git took over {GIT_TIMEOUT_S} s to read the working "
                    "tree; checkpoint without git_snapshot"
                ) from None
            tree = self._git(off, "write-tree", index=index)
        parents = ["-p", head] if head else []
        commit = self._git(off, "commit-tree", tree, *parents, "-m", message)
        return Snapshot(head=head, commit=commit)

    def _larger(self, off: Sequence[str], index: Path, most: int) -> list[tuple[str, int]]:
        """The files `add -A` into the empty `index` would store that hold over `most`
        bytes, with their sizes (listed by git, which reads no file to list them)."""
        found = []
        args = ("ls-files", "-z", "--others", "--exclude-standard", "--full-name")
        with self._spawn(*args, "--", ":/", *self.keep_out, off=off, index=index) as lister:
            assert lister.stdout is not None
            for record in _records(lister.stdout, b"\0", limit=_PATH_BYTES):
                path = os.fsdecode(record)
                with suppress(OSError):  # gone meanwhile: git will not store it either
                    info = os.lstat(self.repo.top / path)
                    if stat.S_ISREG(info.st_mode) and info.st_size > most:
                        found.append((path, info.st_size))
        return found

    def set_ref(self, ref: str, commit: str) -> None:
        self._git(self._no_drivers(), "update-ref", ref, commit)

    def uncommitted(self) -> str:
        return self._git(
            self._no_drivers(),
            "status", "--porcelain", "--ignore-submodules=all", "--", ".", *self.keep_out,
        )  # fmt: skip

    def diff_stat(self, commit: str) -> str:
        """What restoring `commit` would change in the working tree."""
        return self._git(
            self._no_drivers(),
            "diff", "--stat", "--no-ext-diff", "--no-textconv", "--ignore-submodules=all",
            "-R", commit, "--", ".", *self.keep_out,
        )  # fmt: skip

    def head(self) -> str:
        return self._git(self._no_drivers(), "rev-parse", "--verify", "HEAD")

    def ignored(self, paths: Sequence[str]) -> list[str]:
        """Those of `paths` (relative to the top) that git ignores here."""
        asked = {str(self.repo.top / p): p for p in paths}
        found = self._run(self._no_drivers(), "check-ignore", "--", *asked)
        if found.returncode not in (0, 1):  # 1: none is ignored
            raise ValidationFailed(f"git check-ignore failed in {self.repo.top}: {found.stderr}")
        return [asked[line] for line in found.stdout.splitlines() if line in asked]

    def has_branch(self, branch: str) -> bool:
        found = self._run([], "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
        return found.returncode == 0

    def add_worktree(self, path: Path, branch: str, base: str) -> None:
        """A worktree at `path` on `branch`, made from `base` unless the branch exists."""
        exists = self.has_branch(branch)
        where = [str(path), branch] if exists else ["-b", branch, str(path), base]
        self._git(self._no_drivers(), "worktree", "add", "--quiet", *where)

    def add_detached_worktree(self, path: Path, commit: str) -> None:
        """A scratch worktree at `path` on `commit`, on no branch (the autopilot's own, for a
        rebase: never a worker's repository)."""
        self._commit(commit, "commit")
        self._git(self._no_drivers(), "worktree", "add", "--quiet", "--detach", str(path), commit)

    def remove_worktree(self, path: Path, force: bool = False) -> None:
        extra = ["--force"] if force else []
        self._git(self._no_drivers(), "worktree", "remove", *extra, str(path))

    def differs(self, commit: str, folder: Path, most: int = 1000) -> list[str]:
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
        return [_clip(path) for path in self._differs(commit, folder, most)]

    def _differs(self, commit: str, folder: Path, most: int) -> list[str]:
        tree = self._tree_entries(commit)
        tracked_dirs: set[str] = set()  # the folders `commit` has something in
        for path in tree:
            parent = os.path.dirname(path)
            while parent and parent not in tracked_dirs:
                tracked_dirs.add(parent)
                parent = os.path.dirname(parent)
        algorithm = "sha256" if self.object_format == "sha256" else "sha1"
        found: list[str] = []
        added: list[str] = []  # files and links `commit` does not have
        seen: set[str] = set()
        with (
            _Walk(folder, entries=_WALK_ENTRIES - len(tree)) as walk,
            _Ignores(self, commit, tree) as ignores,
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

    def blobs(self, oids: Sequence[str], max_bytes: int) -> dict[str, bytes]:
        """The contents of the blobs `oids`, as long as they add up to at most `max_bytes`
        (sizes asked first: a blob past that is never read)."""
        if not oids:
            return {}
        sizes = subprocess.run(
            ["git", "cat-file", "--batch-check"], cwd=self.cwd, env=self._env(),
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
            ["git", "cat-file", "--batch"], cwd=self.cwd, env=self._env(),
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
                raise ValidationFailed(f"git cat-file could not read {oid} in {self.repo.top}")
            length = int(header[2])
            found[oid] = out[end + 1 : end + 1 + length]
            at = end + 2 + length
        return found

    def _tree_entries(self, commit: str) -> dict[str, tuple[str, str, int]]:
        """Every path of `commit`'s tree with its (mode, object id, size: -1 for a
        submodule); Unjudged past _WALK_ENTRIES of them."""
        self._commit(commit, "commit")
        tree: dict[str, tuple[str, str, int]] = {}
        with self._spawn("ls-tree", "-r", "-z", "--long", "--full-tree", commit) as lister:
            assert lister.stdout is not None
            for record in _records(lister.stdout, b"\0", limit=_PATH_BYTES):
                meta, _, name = record.partition(b"\t")
                mode, _kind, oid, size = meta.decode().split()
                tree[os.fsdecode(name)] = (mode, oid, int(size) if size.isdigit() else -1)
                if len(tree) > _WALK_ENTRIES:
                    raise Unjudged(f"the tree of {commit[:12]} has over {_WALK_ENTRIES} paths")
            if lister.wait() != 0:
                raise ValidationFailed(f"git ls-tree failed in {self.repo.top}")
        return tree

    def tip(self, branch: str) -> str:
        return self._git([], "rev-parse", "--verify", f"refs/heads/{branch}")

    def contains(self, older: str, newer: str) -> bool:
        """`newer` has `older` in its history (a fast-forward from older to newer)."""
        return self._run([], "merge-base", "--is-ancestor", older, newer).returncode == 0

    def checked_out(self, branch: str) -> Path | None:
        """The worktree that has `branch` checked out, if one does."""
        listing = self._git([], "worktree", "list", "--porcelain")
        path = None
        for line in listing.splitlines():
            if line.startswith("worktree "):
                path = Path(line.removeprefix("worktree "))
            elif line == f"branch refs/heads/{branch}":
                return path
        return None

    def rebase(self, onto: str) -> list[str]:
        """Rebase the checked-out branch onto `onto`: [] when done, else the files in
        conflict (the rebase is then aborted, the branch left as it was)."""
        off = self._no_drivers()
        # Commits that start or end up empty are dropped: none lands as an empty commit.
        if self._run(off, "rebase", "--quiet", "--no-keep-empty", onto).returncode == 0:
            return []
        # NUL-separated: a name may hold spaces, newlines or bytes git would quote.
        listed = self._raw("diff", "--name-only", "-z", "--diff-filter=U", off=off).stdout
        conflicted = [name.decode(errors="replace") for name in listed.split(b"\0") if name]
        self._run(off, "rebase", "--abort")
        return conflicted or ["(the rebase failed; see `git rebase` in the worktree)"]

    def dirty(self, branch: str, holder: Path) -> str | None:
        """Why `holder`, the working tree `branch` is checked out in, cannot follow it now."""
        changed = self.worktree_changes(holder)
        if not changed:
            return None
        shown = ", ".join(changed[:5]) + (" …" if len(changed) > 5 else "")
        return f"{branch} is checked out in {holder}, which has changes nobody committed ({shown})"

    def worktree_changes(self, top: Path) -> list[str]:
        """The tracked files with staged or unstaged changes in `top`, one of this
        repository's working trees (untracked files are not looked at)."""
        there = self._at(top)
        listed = there._raw(
            "status", "--porcelain=v1", "-z", "--untracked-files=no", "--no-renames",
            "--ignore-submodules=all", off=there._no_drivers(),
        )  # fmt: skip
        if listed.returncode != 0:
            raise ValidationFailed(
                f"git status failed in {top}: {_tail(os.fsdecode(listed.stderr))}"
            )
        return [os.fsdecode(record[3:]) for record in listed.stdout.split(b"\0") if record]

    def _at(self, top: Path) -> "Git":
        """This repository's working tree at `top` (as git worktree list names it)."""
        if top.resolve() == self.repo.top.resolve():
            return self
        repo = locate(top)
        if repo is None or repo.top != top.resolve():
            raise ValidationFailed(f"{top} is not a working tree of {self.repo.top}")
        return Git(repo, repo.top)

    def move_branch(self, branch: str, new: str, old: str) -> bool:
        """Point `branch` at `new` only if it still points at `old` (a compare-and-swap).
        A working tree that has `branch` checked out follows it, as with `git push` into it
        and receive.denyCurrentBranch=updateInstead: only while nothing in it differs from
        `old` (else Blocked, and nothing moves), its index and files brought to `new` by
        git's two-tree read-tree, which refuses to overwrite an untracked file."""
        ref = f"refs/heads/{branch}"
        holder = self.checked_out(branch) if new != old else None
        if holder is None:
            return self._run([], "update-ref", ref, new, old).returncode == 0
        if self._run([], "rev-parse", "--verify", "--quiet", ref).stdout.strip() != old:
            return False
        there = self._at(holder)
        dirty = self.dirty(branch, holder)
        if dirty:
            raise Blocked(
                f"{dirty}: its files follow {branch} only while it is clean; commit or stash them"
            )
        off = there._no_drivers()
        updated = there._run(off, "read-tree", "-m", "-u", old, new)
        if updated.returncode != 0:
            raise Blocked(
                f"{branch} is checked out in {holder}, and git would not bring its files to "
                f"{new[:12]}: {_tail(updated.stderr)}"
            )
        if self._run([], "update-ref", ref, new, old).returncode == 0:
            return True
        there._run(off, "read-tree", "-m", "-u", new, old)  # moved meanwhile: files back
        return False

    def delete_branch(self, branch: str, old: str) -> bool:
        """Delete `branch` only if it still points at `old` (a compare-and-swap)."""
        return self._run([], "update-ref", "-d", f"refs/heads/{branch}", old).returncode == 0

    def branches(self, folder: str) -> dict[str, str]:
        """The branches named `folder`/..., each with the commit it points at."""
        listed = self._git(
            [], "for-each-ref", "--format=%(objectname) %(refname)", f"refs/heads/{folder}"
        )
        found = {}
        for line in listed.splitlines():
            oid, _, ref = line.partition(" ")
            name = ref.removeprefix("refs/heads/")
            if name.startswith(f"{folder}/"):
                found[name] = oid
        return found

    def diff(self, base: str, tip: str) -> str:
        """What `tip` changed since it left `base` (drivers and converters off)."""
        return self._git(
            self._no_drivers(),
            "diff", "--no-ext-diff", "--no-textconv", "--no-color", f"{base}...{tip}",
        )  # fmt: skip

    def commits(self, base: str, tip: str) -> list[str]:
        """Commits on `tip` that are not on `base`, oldest first."""
        listed = self._git([], "rev-list", "--reverse", f"{base}..{tip}")
        return listed.split()

    def snapshot_diff(self, head: str | None, commit: str, max_bytes: int) -> tuple[str, bool]:
        """The patch from `head` (the HEAD a snapshot was taken on; None: a repository
        without commits, every file added) to the snapshot `commit`, and whether it was cut
        at `max_bytes`. Reads objects only (never the working tree or the index); drivers and
        converters off; the output is read no further than `max_bytes`."""
        for given in (head, commit):
            if given is not None and not _OBJECT_ID.fullmatch(given):
                raise ValidationFailed(f"not a commit id: {given!r}")
        off = self._no_drivers()
        missing = [
            c for c in (head, commit)
            if c is not None
            and self._run([], "cat-file", "-e", f"{c}^{{commit}}").returncode != 0
        ]  # fmt: skip
        if missing:
            raise ValidationFailed(
                f"commit {missing[0]} is not in {self.repo.top} (a snapshot taken by a server "
                "on another workspace?)"
            )
        plain = ["--no-ext-diff", "--no-textconv", "--no-color"]
        args = (
            ["diff-tree", "-p", "-r", "--root", "--no-commit-id", *plain, commit]
            if head is None
            else ["diff", *plain, head, commit]
        )
        with subprocess.Popen(
            ["git", *args], cwd=self.cwd, env=self._env(off),
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
            raise ValidationFailed(f"git {args[0]} failed in {self.repo.top}")
        return out[:max_bytes].decode(errors="replace"), cut

    def restore(self, commit: str) -> None:
        """Working-tree files as in `commit`; the index and branches stay as they are."""
        self._git(
            self._no_drivers(),
            "restore", f"--source={commit}", "--worktree", "--", ".", *self.keep_out,
        )  # fmt: skip

    def read_tree_files(
        self, commit: str, folder: str, names: re.Pattern[str], max_bytes: int
    ) -> dict[str, bytes | None]:
        """The files directly in `folder` as committed at `commit` whose names `names`
        matches, read as objects (never a checkout, the working tree, the index or a
        filter). An entry that is not a regular file (a link, a folder, a submodule) or is
        over `max_bytes` is not read: None. {} when `commit` has no such folder or is none."""
        if commit.startswith("-") or ":" in commit:
            raise ValidationFailed(f"not a commit: {commit!r}")
        # Quoted paths keep the listing ASCII; a name git had to quote matches no `names`.
        listed = self._run(
            [], "ls-tree", "-l", f"{commit}:{folder}", config=[("core.quotePath", "true")]
        )
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
            ["git", "cat-file", "--batch"], cwd=self.cwd, env=self._env(),
            input="".join(f"{oid}\n" for oid in ids.values()).encode(),
            capture_output=True, timeout=GIT_TIMEOUT_S,
        )  # fmt: skip
        out, at = batch.stdout, 0
        for name, oid in ids.items():
            # Each object comes back as "<id> blob <size>\n<content>\n".
            end = out.find(b"\n", at)
            header = out[at:end].split()
            if batch.returncode != 0 or end < 0 or header[:2] != [oid.encode(), b"blob"]:
                raise ValidationFailed(f"git cat-file could not read {oid} in {self.repo.top}")
            length = int(header[2])
            found[name] = out[end + 1 : end + 1 + length]
            at = end + 2 + length
        return found

    # -- the merge queue: stacking taken commits onto a target --------------------------

    def merge_onto(self, onto: str, commit: str, message: str) -> "str | Conflict":
        """A merge commit of `commit` onto `onto` (its first parent), made by git's own merge
        (ort, which resolves what it can) as objects only: no worktree, no index. Its id, or
        the Conflict; `onto` itself when the merge changes nothing there (no empty commit)."""
        off = self._no_drivers()
        tree = self._merged_tree(off, self._commit(onto, "target"), self._commit(commit, "tip"))
        if isinstance(tree, Conflict):
            return tree
        if tree == self.tree_of(onto):
            return onto
        return self._git(off, "commit-tree", tree, "-p", onto, "-p", commit, "-m", message)

    def _merged_tree(self, off: list[str], onto: str, commit: str) -> "str | Conflict":
        found = self._raw("merge-tree", "--write-tree", "-z", "--name-only", onto, commit, off=off)
        if found.returncode not in (0, 1):
            stderr = _tail(found.stderr.decode(errors="replace"))
            raise ValidationFailed(f"git merge-tree failed in {self.repo.top}: {stderr}")
        # "<tree>\0" then, on a conflict, "<path>\0" per conflicted stage, "\0", messages.
        # Paths stay bytes until shown: as text (undecodable bytes replaced) they could name
        # no file of the tree.
        tree, *rest = found.stdout.split(b"\0")
        if found.returncode == 0:
            return tree.decode()
        paths = list(dict.fromkeys(rest[: rest.index(b"")] if b"" in rest else rest))
        files = [path.decode(errors="replace") for path in paths]
        return Conflict(files, self._hunks(tree.decode(), paths))

    def _hunks(self, tree: str, paths: Sequence[bytes]) -> str:
        """The conflicting regions, with their markers, as merge-tree wrote them into its
        tree (read as objects: a link's target is never followed), cut to HUNK_CHARS."""
        parts: list[str] = []
        for path in paths[:HUNK_FILES]:
            name = path.decode(errors="replace")
            where = os.fsdecode(tree.encode() + b":" + path)  # the exact bytes, as argv
            # The size first: a blob over the limit is never read into memory.
            size = self._run([], "cat-file", "-s", where).stdout.strip()
            shown = (
                self._run([], "cat-file", "blob", where)
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
        self, onto: str, commit: str, message: str, owner: Path | None = None
    ) -> "str | Conflict":
        """`commit`'s history since it left `onto`, replayed onto `onto` by git rebase in a
        scratch worktree of our own (never a worker's repository; in a scratch folder of the
        state folder `owner`): the new tip. A history that already merged `onto` in (a
        resolved conflict) replays into the conflicts it resolved: when the two merge
        cleanly as a whole, it lands as one commit with `message` on top of `onto` instead.
        Else the Conflict. `onto` itself when what lands changes nothing there (no empty
        commit)."""
        self._commit(onto, "target")
        with scratch_dirs.temporary("rebase", owner) as scratch:
            place = Path(scratch) / "tree"
            self.add_detached_worktree(place, commit)
            try:
                repo = locate(place)
                assert repo is not None
                here = Git(repo, place)
                conflicts = here.rebase(onto)
                tip = "" if conflicts else here.head()
            finally:
                self.remove_worktree(place, force=True)
        if tip:
            return onto if self.tree_of(tip) == self.tree_of(onto) else tip
        off = self._no_drivers()
        merged = self._merged_tree(off, onto, commit)
        if isinstance(merged, Conflict):
            return Conflict(conflicts, merged.hunks)
        if merged == self.tree_of(onto):
            return onto
        return self._git(off, "commit-tree", merged, "-p", onto, "-m", message)

    def tree_of(self, commit: str) -> str:
        return self._git([], "rev-parse", "--verify", f"{self._commit(commit, 'commit')}^{{tree}}")

    def merge_base(self, one: str, other: str) -> str | None:
        found = self._run([], "merge-base", one, other)
        return found.stdout.strip() if found.returncode == 0 else None

    def touching(self, base: str, tip: str, files: Sequence[str]) -> list[str]:
        """Commits in base..tip that change any of `files` (literal paths)."""
        if not files:
            return []  # no pathspec would be every commit
        listed = self._git(
            [], "log", "--format=%H", f"{base}..{tip}", "--",
            *(f":(literal,top){f}" for f in files),
        )  # fmt: skip
        return listed.split()

    def changed(self, tip: str, against: str) -> list[str]:
        """The files `tip` changed since it left `against` (their merge base)."""
        base = self.merge_base(against, tip)
        if base is None:
            return []
        listed = self._raw("diff", "--name-only", "-z", "--no-renames", base, tip)
        return [os.fsdecode(p) for p in listed.stdout.split(b"\0") if p]

    def conflicts(self, one: str, other: str) -> list[str]:
        """The files git's merge of two commits would leave in conflict ([] : it is clean).
        Objects only: merge-tree writes a tree nobody refers to, no ref moves."""
        found = self._merged_tree(self._no_drivers(), one, other)
        return found.files if isinstance(found, Conflict) else []

    # -- a worker's commits, taken as data ------------------------------------------------

    @cached_property
    def object_format(self) -> str:
        """'sha1' or 'sha256'."""
        return self._git([], "rev-parse", "--show-object-format")

    def _object_id(self, given: str, what: str) -> str:
        """`given` checked to be a lower-case hex object id of this repository's format."""
        width = 64 if self.object_format == "sha256" else 40
        if not (_OBJECT_ID.fullmatch(given) and len(given) == width):
            raise ValidationFailed(
                f"{what} must be a {width}-digit lower-case hex object id, got {given[:80]!r}"
            )
        return given

    def _commit(self, given: str, what: str) -> str:
        """`given` checked to be an object id of this repository's format naming a commit."""
        self._object_id(given, what)
        kind = self._run([], "cat-file", "-t", given)
        if kind.returncode != 0 or kind.stdout.strip() != "commit":
            raise ValidationFailed(f"{what} {given} is not a commit in {self.repo.top}")
        return given

    def materialize(
        self,
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
        self._commit(commit, "commit")
        root = _open_dir(dest, "dest")
        try:
            if os.listdir(root):
                raise ValidationFailed(f"{dest} is not empty: materialize writes a fresh folder")
            try:
                self._write_tree(commit, root, max_bytes, max_files)
            except BaseException:
                _empty_dir(root)
                raise
        finally:
            os.close(root)

    def _write_tree(self, commit: str, root: int, max_bytes: int, max_files: int) -> None:
        folders = _Folders(root)
        with (
            self._spawn("ls-tree", "-r", "-z", "--full-tree", commit) as lister,
            self._spawn("cat-file", "--batch", stdin=True) as reader,
        ):
            assert lister.stdout is not None and reader.stdin and reader.stdout
            written = files = 0
            try:
                for record in _records(lister.stdout, b"\0", limit=_CHUNK):
                    files += 1
                    if files > max_files:
                        raise ValidationFailed(f"the tree of {commit} has over {max_files} files")
                    meta, tab, path = record.partition(b"\t")
                    fields = meta.split(b" ")
                    if not tab or len(fields) != 3:
                        raise ValidationFailed(f"git ls-tree gave an unreadable line: {record!r}")
                    mode, kind, oid = (f.decode("ascii", "replace") for f in fields)
                    shown = os.fsdecode(path)
                    parts = _tree_path(path)
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
                raise ValidationFailed(f"git ls-tree could not list {commit} in {self.repo.top}")

    @contextmanager
    def _spawn(
        self,
        *args: str,
        stdin: bool = False,
        off: Sequence[str] = (),
        index: Path | None = None,
    ) -> Iterator[subprocess.Popen[bytes]]:
        """git `args` running with stdout a pipe (the drivers `off`, `index` as its index);
        killed when the block ends or after BULK_TIMEOUT_S, whichever is first."""
        process = subprocess.Popen(
            ["git", *args], cwd=self.cwd, env=self._env(off, index),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        timer = threading.Timer(BULK_TIMEOUT_S, process.kill)
        timer.start()
        try:
            yield process
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
            _close_and_wait(process)

    def take_commits(
        self,
        objects_dir: Path,
        tip: str,
        ref: str,
        expected_old: str | None,
        max_bytes: int = 1024**3,
    ) -> list[str]:
        """Bring the commits reachable from `tip` (a worker's commit, as read_head gives it)
        from the worker's `objects_dir` into this repository as data, and point `ref` at
        `tip` if it is still at `expected_old` (None: `ref` must not exist yet). Returns the
        commits that are new here, oldest first.

        Only the worker's loose objects and packs are copied, as plain files (never its
        alternates: objects it can only name, not hold, are refused), then packed here and
        checked object by object by `index-pack --strict` (fsck: no `.git` or `..` entries,
        nothing missing) before any of them reaches this repository. Commits that change a
        protected folder (the state folder, inside the repository) are refused, as Protected,
        before then too. The worker's repository is never handed to git. A refusal changes
        nothing here, except that a ref moving in the last instant (the compare-and-swap
        fails) leaves the new objects, unreferenced, for git's garbage collection."""
        self._object_id(tip, "tip")
        if expected_old is not None:
            self._object_id(expected_old, "expected_old")
        if not (ref.startswith("refs/") and _valid_ref(ref)):
            raise ValidationFailed(f"not a full ref name (refs/...): {ref!r}")
        self._ref_at(ref, expected_old)
        with tempfile.TemporaryDirectory(prefix="wvo-intake-") as scratch:
            copied, checked = Path(scratch) / "worker", Path(scratch) / "checked"
            _copy_objects(objects_dir, copied, max_bytes)
            (checked / "pack").mkdir(parents=True)
            incoming = checked / "pack" / "incoming"
            name = self._pack_in(tip, self._tips(), copied, incoming)
            # The checked pack (index-pack --strict passed each object in it) stands in for
            # the worker's objects from here; nothing has reached this repository yet.
            kind = self._run([], "cat-file", "-t", tip, alternate=checked).stdout.strip()
            if kind != "commit":
                raise ValidationFailed(f"{tip} is a {kind or 'missing object'}, not a commit")
            # Every object `tip` reaches is there (what receive-pack checks), and which
            # commits are new: neither walk goes past what a ref or HEAD already holds.
            walk = self._run(
                [], "rev-list", "--objects", "--quiet", tip, "--not", "--all", alternate=checked
            )
            if walk.returncode != 0:
                raise ValidationFailed(f"the history of {tip} is incomplete: {_tail(walk.stderr)}")
            listed = self._run(
                [], "rev-list", "--reverse", tip, "--not", "--all", alternate=checked
            )
            new = listed.stdout.split()
            touched = self._protected_paths(new, checked)
            if touched:
                raise Protected(touched, self.protected, tip)
            self._install_pack(incoming, name)
        zero = "0" * len(tip)
        moved = self._run(
            [], "update-ref", "-m", "wvo-mcp: a worker's commits", ref, tip, expected_old or zero
        )
        if moved.returncode != 0:
            now = self._run([], "rev-parse", "--verify", "--quiet", ref).stdout.strip()
            raise ValidationFailed(
                f"{ref} moved: expected {expected_old or 'no ref'}, it is at {now or 'no ref'} "
                f"({_tail(moved.stderr)}); read it again and retry"
            )
        return new

    def _protected_paths(self, commits: Sequence[str], checked: Path) -> list[str]:
        """The paths in the protected folders (or in their place) that any of `commits`
        changes, each against each of its parents (a root against the empty tree, a rename
        as a deletion and an addition), read with the `checked` objects as an extra store.
        Every commit counts, not only the tip's tree: a later commit that removes a path
        still leaves a commit a person could check out or replay."""
        if not self.protected or not commits:
            return []
        ignorecase = self._run([], "config", "--bool", "core.ignorecase").stdout.strip()
        fold = ignorecase == "true"
        found: list[str] = []
        with tempfile.TemporaryFile() as listed:
            listed.write("".join(f"{c}\n" for c in commits).encode())
            listed.seek(0)
            process = subprocess.Popen(
                ["git", "diff-tree", "--stdin", "-r", "-m", "--root", "--no-renames",
                 "--no-commit-id", "--name-only", "-z"],
                cwd=self.cwd, env=self._env(alternate=checked), stdin=listed,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            timer = threading.Timer(BULK_TIMEOUT_S, process.kill)
            timer.start()
            try:
                assert process.stdout is not None
                for record in _records(process.stdout, b"\0", _PATH_BYTES):
                    path = os.fsdecode(record)
                    if state_folder.touched([path], self.protected, fold) and path not in found:
                        found.append(path)
                        if len(found) > state_folder.SHOWN:
                            break  # enough to refuse it and say why
            finally:
                timer.cancel()
                if process.poll() is None and found:
                    process.kill()
                _close_and_wait(process)
        if not found and process.returncode != 0:
            raise ValidationFailed(
                f"git diff-tree could not list what {len(commits)} commit(s) change in "
                f"{self.repo.top}; nothing was taken"
            )
        return found

    def _ref_at(self, ref: str, expected: str | None) -> None:
        now = self._run([], "rev-parse", "--verify", "--quiet", ref).stdout.strip() or None
        if now != expected:
            raise ValidationFailed(
                f"{ref} moved: expected {expected or 'no ref'}, it is at {now or 'no ref'}; "
                "nothing was taken"
            )

    def _tips(self) -> list[str]:
        """Every object a ref or HEAD of this repository points at."""
        listed = self._git([], "for-each-ref", "--format=%(objectname)")
        head = self._run([], "rev-parse", "--verify", "--quiet", "HEAD").stdout.strip()
        return sorted({*listed.split(), *([head] if head else [])})

    def _pack_in(self, tip: str, ours: list[str], copied: Path, incoming: Path) -> str:
        """The objects `tip` needs that this repository lacks, packed from here with the
        `copied` worker objects as an extra object store, then indexed and checked one by
        one by a git that sees this repository alone, into incoming.pack and incoming.idx
        (a refused pack leaves nothing here). Returns the pack's name."""
        with (
            tempfile.TemporaryFile() as packer_err,
            tempfile.TemporaryFile() as index_out,
            tempfile.TemporaryFile() as index_err,
        ):
            packer = subprocess.Popen(
                ["git", "pack-objects", "--revs", "--stdout", "-q"], cwd=self.cwd,
                env=self._env(alternate=copied), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=packer_err,
            )  # fmt: skip
            assert packer.stdin is not None and packer.stdout is not None
            try:
                indexer = subprocess.Popen(
                    ["git", "index-pack", "--stdin", "--fix-thin", "--strict",
                     "-o", f"{incoming}.idx", f"{incoming}.pack"],
                    cwd=self.cwd, env=self._env(), stdin=packer.stdout, stdout=index_out,
                    stderr=index_err,
                )  # fmt: skip
            except BaseException:
                packer.kill()
                _close_and_wait(packer)
                raise
            packer.stdout.close()  # index-pack holds the read end now

            def stop() -> None:
                packer.kill()
                indexer.kill()

            timer = threading.Timer(BULK_TIMEOUT_S, stop)
            timer.start()
            try:
                # A broken pipe: pack-objects stopped early, and its exit status says why.
                with suppress(BrokenPipeError):
                    packer.stdin.write("".join([f"{tip}\n", *(f"^{o}\n" for o in ours)]).encode())
            finally:
                _close_and_wait(packer)
                _close_and_wait(indexer)
                timer.cancel()
            # index-pack stopping first (a refused object) ends pack-objects by a broken pipe.
            broken_pipe = packer.returncode in (-signal.SIGPIPE, 128 + signal.SIGPIPE)
            if packer.returncode != 0 and not (indexer.returncode != 0 and broken_pipe):
                raise ValidationFailed(
                    f"git pack-objects could not pack {tip} from the worker's own objects (one "
                    "is missing or unreadable; objects only its alternates hold are never "
                    f"taken): {_tail(_read(packer_err))}"
                )
            if indexer.returncode != 0:
                raise ValidationFailed(
                    f"git index-pack --strict refused the worker's objects for {tip}: "
                    f"{_tail(_read(index_err))}"
                )
            kind, _, name = _read(index_out).strip().partition("\t")
        if kind != "pack" or not _OBJECT_ID.fullmatch(name):
            raise ValidationFailed(f"git index-pack gave no pack name for {tip}")
        return name

    @cached_property
    def objects(self) -> Path:
        """This repository's object folder, absolute."""
        found = self._git([], "rev-parse", "--path-format=absolute", "--git-path", "objects")
        return Path(found)

    def _install_pack(self, incoming: Path, name: str) -> None:
        """The checked incoming pack put in this repository's object folder as git puts a
        pack there: the .pack, then the .idx that makes it visible, each renamed into place
        (a stale tmp_ file is what git's prune removes). A pack of no objects is dropped."""
        with open(f"{incoming}.pack", "rb") as pack:
            header = pack.read(12)
        if len(header) == 12 and int.from_bytes(header[8:12], "big") == 0:
            return
        folder = self.objects / "pack"
        for suffix in (".pack", ".idx"):
            final = folder / f"pack-{name}{suffix}"
            if final.exists():
                continue  # the same pack, named by its content, is there already
            temporary = folder / f"tmp_wvo_{name}{suffix}"
            shutil.copyfile(f"{incoming}{suffix}", temporary)
            temporary.chmod(0o444)
            temporary.replace(final)

    def clone_for_worker(
        self,
        dest: Path,
        base: str,
        branch: str,
        name: str = "wvo-mcp worker",
        email: str = "wvo-mcp-worker@localhost",
        also: Mapping[str, str] | None = None,
    ) -> None:
        """A new repository at `dest` (which must not exist) for one worker attempt: its
        objects borrowed from this repository through objects/info/alternates, `branch` at
        `base` checked out, `name` and `email` set to commit with, and the branches in
        `also` at their commits (the target a returned conflict is resolved against).
        Nothing of this repository's configuration, hooks or templates goes with it. On
        failure `dest` is removed."""
        if not _valid_ref(f"refs/heads/{branch}"):
            raise ValidationFailed(f"not a valid branch name: {branch!r}")
        commit = self._commit(base, "base")
        objects = self.objects
        if "\n" in str(objects) or not objects.is_absolute():
            raise ValidationFailed(f"{objects} cannot be written in an alternates file")
        fmt = self.object_format
        dest = Path(os.path.abspath(dest))
        try:
            dest.mkdir(mode=0o755)  # never into a folder a worker may have had
        except OSError as exc:
            raise ValidationFailed(
                f"cannot make {dest} ({exc.strerror}): a new path in an existing folder is needed"
            ) from None
        try:
            git_dir = dest / ".git"
            # Brand new and ours until this returns, so git may run here.
            env = {**ENV, **config_env(), "GIT_CEILING_DIRECTORIES": str(dest.parent)}
            with tempfile.TemporaryDirectory(prefix="wvo-template-") as template:
                _check_run(
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
                    ["update-ref", f"refs/heads/{name}", self._commit(tip, name)]
                    for name, tip in (also or {}).items()
                    if name != branch and _valid_ref(f"refs/heads/{name}")
                ),
                ["read-tree", "--reset", "-u", "HEAD"],
            ):
                _check_run(["git", *step], dest, env)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise


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
        texts = self.git.blobs([oid for _, oid in rules], _IGNORE_BYTES)
        for path, oid in rules:
            if oid in texts:
                parts = [os.fsdecode(p) for p in _tree_path(os.fsencode(path))]
                top.joinpath(*parts[:-1]).mkdir(parents=True, exist_ok=True)
                top.joinpath(*parts).write_bytes(texts[oid])
        env = {**ENV, **config_env(), "GIT_CEILING_DIRECTORIES": str(top.parent)}
        with tempfile.TemporaryDirectory(prefix="wvo-template-") as template:
            _check_run(["git", "init", "--quiet", f"--template={template}", str(top)], top, env)
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
            raise ValidationFailed(f"git check-ignore failed: {_tail(os.fsdecode(asked.stderr))}")
        return {os.fsdecode(p) for p in asked.stdout.split(b"\0") if p}


# -- reading a worker's repository as data -------------------------------------------------

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted where a file is expected must not hang the reader.
_O_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_MODES = {"100644": 0o644, "100755": 0o755, "120000": 0o777}


class _Walk:
    """A worker's repository walked as data, iteratively (however deep it goes, no
    recursion), each folder opened relative to its parent without following links (however
    long its paths grow), within budgets: Unjudged past them, or at anything unreadable."""

    def __init__(self, top: Path, entries: int) -> None:
        try:
            self.root = _open_dir(top, "the repository")
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
            raise Unjudged(f"{_clip(start)}: folders nested over {_WALK_DEPTH} deep")
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
                    raise Unjudged(f"{_clip(path)}: folders nested over {_WALK_DEPTH} deep")
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
            where = _clip(here) if here else "its top folder"
            raise Unjudged(f"{where}: cannot be listed ({exc.strerror})") from None

    @staticmethod
    def _open(parent: int, name: str, path: str) -> int:
        try:
            return os.open(name, _O_DIR, dir_fd=parent)
        except OSError as exc:
            reason = f"cannot be opened as a folder ({exc.strerror})"
            raise Unjudged(f"{_clip(path)}: {reason}") from None

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
            raise Unjudged(f"{_clip(path)}: cannot be read ({exc.strerror})") from None
        if not stat.S_ISREG(info.st_mode):
            return path  # a FIFO, socket or device where `commit` has a file: never opened
        if mode != ("100755" if info.st_mode & 0o100 else "100644") or info.st_size != size:
            return path  # its size alone says it changed: not read
        if size > _COMPARE_FILE_BYTES:
            return f"{path} (over {_size(_COMPARE_FILE_BYTES)}: not compared)"
        self.bytes_left -= size
        if self.bytes_left < 0:
            raise Unjudged(f"over {_size(_COMPARE_BYTES)} of files to compare: more than a "
                           "judgement may read")  # fmt: skip
        try:
            fd = os.open(entry.name, _O_READ, dir_fd=folder)
            try:
                now = os.fstat(fd)
                if not stat.S_ISREG(now.st_mode) or now.st_size != size:
                    return path  # changed since it was listed
                found = stream_blob_id(fd, size, algorithm)
            finally:
                os.close(fd)
        except OSError as exc:
            raise Unjudged(f"{_clip(path)}: cannot be read ({exc.strerror})") from None
        return path if found != oid else None


def stream_blob_id(fd: int, size: int, algorithm: str) -> str | None:
    """git's blob id (`blob <size>`, a NUL byte and the content, hashed with `algorithm`) of the
    `size` bytes the open file `fd` holds from where it stands, read a chunk at a time; None
    when it does not hold exactly that many (it changed meanwhile)."""
    digest = hashlib.new(algorithm, b"blob %d\0" % size)
    buffer = bytearray(min(size, _CHUNK) or 1)
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


def _size(n: int) -> str:
    for unit, scale in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} bytes"


def _clip(path: str, most: int = 160) -> str:
    """A path for a message: its start and end when it is long."""
    return path if len(path) <= most else f"{path[: most // 2]}…{path[-most // 2 :]}"


def read_head(git_dir: Path) -> str | None:
    """The commit id a worker's HEAD names, read from its files without running git: HEAD
    holding an id, or `ref: refs/heads/<name>` resolved once through the loose ref file or
    packed-refs. None for anything else (a link anywhere on the way, an unborn or invalid
    branch, a `gitdir:` file, oversized files). `git_dir` is absolute, without links."""
    try:
        top = _open_dir(git_dir, "git_dir")
    except ValidationFailed:
        return None
    try:
        head = _read_small(top, "HEAD", _HEAD_BYTES)
        text = _ascii_line(head)
        if text is None:
            return None
        if _HEX_ID.fullmatch(text):
            return text.lower()
        name = text.removeprefix("ref: ")
        if name == text or not name.startswith("refs/heads/") or not _valid_ref(name):
            return None
        found, commit = _loose_ref(top, name)
        return commit if found else _packed_ref(top, name)
    except OSError:
        return None  # a folder on the way that cannot be read
    finally:
        os.close(top)


def read_refs(git_dir: Path) -> dict[str, str] | None:
    """Every ref of a worker's repository with the commit id it names, HEAD included, read
    from its files as read_head reads HEAD (a loose ref overrides a packed one; symbolic
    refs are left out, what they name is listed). None for anything read_head refuses, a
    link or an odd file anywhere under refs/, an invalid line, or more than _REFS_MOST refs."""
    head = read_head(git_dir)
    if head is None:
        return None
    try:
        top = _open_dir(git_dir, "git_dir")
    except ValidationFailed:
        return None
    try:
        found = _packed_refs(top)
        if found is None or not _loose_refs(top, found):
            return None
    except OSError:
        return None  # a folder under refs/ that cannot be read
    finally:
        os.close(top)
    return {"HEAD": head, **found} if len(found) <= _REFS_MOST else None


def _packed_refs(top: int) -> dict[str, str] | None:
    try:
        os.stat("packed-refs", dir_fd=top, follow_symlinks=False)
    except FileNotFoundError:
        return {}
    data = _read_small(top, "packed-refs", _PACKED_REFS_BYTES)
    if data is None:
        return None
    found = {}
    for line in data.split(b"\n"):
        if not line or line.startswith((b"#", b"^")):  # the header; a tag's peeled id
            continue
        oid, _, ref = (part.decode("ascii", "replace") for part in line.partition(b" "))
        if not _HEX_ID.fullmatch(oid) or not ref.startswith("refs/") or not _valid_ref(ref):
            return None
        found[ref] = oid.lower()
    return found


def _loose_refs(top: int, found: dict[str, str]) -> bool:
    """The loose refs under refs/ into `found`; False at a link or anything odd."""
    try:
        folder = os.open("refs", _O_DIR, dir_fd=top)
    except FileNotFoundError:
        return True
    except OSError:
        return False  # a link where refs/ should be
    try:
        return _loose_under(folder, "refs", 0, found)
    finally:
        os.close(folder)


def _loose_under(folder: int, prefix: str, depth: int, found: dict[str, str]) -> bool:
    if depth > _REF_DEPTH:
        return False
    for name in os.listdir(folder):
        ref = f"{prefix}/{name}"
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode):
            try:
                inner = os.open(name, _O_DIR, dir_fd=folder)
            except OSError:
                return False  # swapped for a link meanwhile
            try:
                if not _loose_under(inner, ref, depth + 1, found):
                    return False
            finally:
                os.close(inner)
        elif not stat.S_ISREG(info.st_mode):
            return False
        elif not name.endswith(".lock"):  # a git killed mid-update leaves these; git skips them
            text = _ascii_line(_read_small(folder, name, _HEAD_BYTES))
            if text is not None and text.startswith("ref: ") and _valid_ref(text[5:]):
                continue
            if text is None or not _HEX_ID.fullmatch(text) or not _valid_ref(ref):
                return False
            found[ref] = text.lower()
            if len(found) > _REFS_MOST:
                return False
    return True


def _ascii_line(data: bytes | None) -> str | None:
    if data is None:
        return None
    line = data.removesuffix(b"\n")
    if b"\n" in line or not line.isascii():
        return None
    return line.decode("ascii")


def _loose_ref(top: int, name: str) -> tuple[bool, str | None]:
    """Whether a loose file for ref `name` is there (git then ignores packed-refs for it),
    and the id it holds: None if it is not a plain id in a regular file reached without
    links (another `ref:` would be a second hop)."""
    *folders, leaf = name.split("/")
    fd = os.dup(top)
    try:
        for folder in folders:
            try:
                inner = os.open(folder, _O_DIR, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError):
                return False, None
            except OSError:
                return True, None  # a link where a folder should be
            os.close(fd)
            fd = inner
        try:
            os.stat(leaf, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return False, None
        text = _ascii_line(_read_small(fd, leaf, _HEAD_BYTES))
    finally:
        os.close(fd)
    return True, text.lower() if text is not None and _HEX_ID.fullmatch(text) else None


def _packed_ref(top: int, name: str) -> str | None:
    data = _read_small(top, "packed-refs", _PACKED_REFS_BYTES)
    if data is None:
        return None
    wanted = name.encode()
    for line in data.split(b"\n"):
        oid, _, ref = line.partition(b" ")
        if ref == wanted:
            text = oid.decode("ascii", "replace")
            return text.lower() if _HEX_ID.fullmatch(text) else None
    return None


def _read_small(folder: int, name: str, limit: int) -> bytes | None:
    """The regular file `name` in `folder`, if it is one (not a link, FIFO or device) and
    holds at most `limit` bytes."""
    try:
        fd = os.open(name, _O_READ, dir_fd=folder)
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


def _open_dir(path: Path, what: str) -> int:
    """The folder `path` (absolute) opened one component at a time, following no link on
    the way: a folder a worker can write cannot be swapped for a link to elsewhere."""
    if not path.is_absolute():
        raise ValidationFailed(f"{what} must be an absolute path, got {str(path)!r}")
    fd = os.open("/", _O_DIR)
    try:
        for part in path.parts[1:]:
            inner = os.open(part, _O_DIR, dir_fd=fd)
            os.close(fd)
            fd = inner
    except OSError as exc:
        os.close(fd)
        raise ValidationFailed(
            f"{what} {path}: {exc.strerror} at {part!r} (a folder reached without "
            "symbolic links is needed)"
        ) from None
    return fd


def _valid_ref(name: str) -> bool:
    """git's rules for a ref name (check-ref-format), all of them."""
    if not name or name.endswith(("/", ".")) or name == "@" or "@{" in name or ".." in name:
        return False
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c in " ~^:?*[\\" for c in name):
        return False
    return all(
        part and not part.startswith(".") and not part.endswith(".lock") for part in name.split("/")
    )


# -- writing a tree as files ---------------------------------------------------------------


def _tree_path(path: bytes) -> list[bytes]:
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
                fd = os.open(part, _O_DIR, dir_fd=parent)
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
        fd = os.open(name, _O_NEW, 0o600, dir_fd=folder)
    except OSError as exc:
        raise ValidationFailed(f"{shown!r}: cannot be written ({exc.strerror})") from None
    with os.fdopen(fd, "wb") as handle:
        left = size
        while left:
            chunk = source.read(min(left, _CHUNK))
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


def _records(stream: IO[bytes], sep: bytes, limit: int) -> Iterator[bytes]:
    """`stream` split at `sep`, read a chunk at a time; a record over `limit` bytes is
    refused."""
    pending = b""
    while chunk := stream.read(65536):
        pending += chunk
        *done, pending = pending.split(sep)
        yield from done
        if len(pending) > limit:
            raise ValidationFailed(f"a git record over {limit} bytes")
    if pending:
        yield pending


# -- copying a worker's objects ------------------------------------------------------------


def _copy_objects(source: Path, dest: Path, max_bytes: int) -> None:
    """The loose objects and packs of the object folder `source` copied into the new
    folder `dest` as plain files: regular files with object-file names only, never a link,
    never info/ (alternates), at most `max_bytes` bytes in all."""
    top = _open_dir(source, "objects_dir")
    budget = [max_bytes, _INTAKE_FILES]
    try:
        (dest / "pack").mkdir(parents=True)
        with os.scandir(top) as entries:
            names = [entry.name for entry in entries]
        for name in names:
            if _FANOUT.fullmatch(name):
                wanted, into = _LOOSE, dest / name
            elif name == "pack":
                wanted, into = _PACK, dest / "pack"
            else:
                continue
            try:
                folder = os.open(name, _O_DIR, dir_fd=top)
            except OSError:
                continue  # a link or a file: not an object folder
            try:
                with os.scandir(folder) as items:
                    found = [item.name for item in items if wanted.fullmatch(item.name)]
                for item in found:
                    into.mkdir(exist_ok=True)
                    _copy_file(folder, item, into / item, budget)
            finally:
                os.close(folder)
    finally:
        os.close(top)


def _copy_file(folder: int, name: str, dest: Path, budget: list[int]) -> None:
    try:
        fd = os.open(name, _O_READ, dir_fd=folder)
    except OSError:
        return  # a link, or gone
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        budget[1] -= 1
        if budget[1] < 0:
            raise ValidationFailed(f"the worker's repository holds over {_INTAKE_FILES} files")
        with os.fdopen(os.dup(fd), "rb") as source, dest.open("xb") as copy:
            while chunk := source.read(_CHUNK):
                budget[0] -= len(chunk)
                if budget[0] < 0:
                    raise ValidationFailed(
                        "the worker's objects exceed the intake limit; nothing was taken"
                    )
                copy.write(chunk)
    finally:
        os.close(fd)


# -- small helpers -------------------------------------------------------------------------


def _include_target(config: Path, value: str) -> Path | None:
    """The file an include.path in `config` names, as git resolves it; None where git
    reads nothing a worker could write (~/ is under HOME=/nonexistent, %(prefix)/ is
    git's install folder)."""
    if not value or value.startswith(("~/", "%(prefix)/")) or value == "~":
        return None
    if value.startswith("~"):
        expanded = os.path.expanduser(value)
        return None if expanded.startswith("~") else Path(expanded)
    return config.parent / value


def _check_run(argv: list[str], cwd: Path, env: Mapping[str, str]) -> None:
    done = subprocess.run(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        errors="replace", timeout=GIT_TIMEOUT_S,
    )  # fmt: skip
    if done.returncode != 0:
        raise ValidationFailed(f"{' '.join(argv[:2])} failed in {cwd}: {_tail(done.stderr)}")


def _close_and_wait(process: subprocess.Popen[bytes]) -> None:
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with suppress(BrokenPipeError):
                pipe.close()
    process.wait()


def _read(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read(64 * 1024).decode(errors="replace")


def _tail(text: str, limit: int = 600) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _ref_part(task_id: str) -> str:
    """Any task id as one valid ref component: characters git forbids (: / and so on) are
    %-encoded, and so are the dots that would form '..' or a '.lock' ending."""
    encoded = "".join(c if c in _REF_SAFE else f"%{ord(c):02X}" for c in task_id)
    encoded = encoded.replace("..", ".%2E")
    if encoded.endswith(".lock"):
        encoded = encoded[: -len(".lock")] + "%2Elock"
    return encoded


def ref_name(task_id: str, seq: int) -> str:
    return f"{REF_ROOT}/{_ref_part(task_id)}/{seq}"


def branch_name(task_id: str) -> str:
    """The branch an autopilot worker commits a task's work on."""
    return f"wvo/{_ref_part(task_id)}"
