"""The trusted git runner: every git call on the person's repository goes through Git.

The workspace is written by sandboxed commands, so every git call here runs no program the
repository could name (hooks, fsmonitor, filters, textconv, external diff, pager, ...),
reads no system or user configuration, gets no stdin (it is the MCP pipe) and a minimal
environment, and uses the git directory found when the server started, never one that
appears later. Git also holds the branch operations (compare-and-swap moves, worktrees) and
the small queries the autopilot asks.
"""

import os
import re
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules import protected_paths

GIT_TIMEOUT_S = 120
BULK_TIMEOUT_S = 900  # one pack or one tree of up to a few GiB

_GITFILE_BYTES = 4096
OBJECT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1 or SHA-256

_INCLUDE_DEPTH = 10  # git's own limit: deeper includes make every git call fail
_INCLUDE_FILES = 100
PATH_BYTES = 1024 * 1024  # one path in a listing of a worker's commits


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
    # A read (status) never takes the index's lock to refresh a stale index: a person's own
    # git command in that checkout at the same moment would fail on the lock.
    "GIT_OPTIONAL_LOCKS": "0",
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
        self.protected = protected_paths.inside(
            repo.top, [p for path in named for p in (path.parent.resolve() / path.name,
                                                    path.resolve())]
        )  # fmt: skip

    @cached_property
    def common_dir(self) -> Path:
        """The git directory shared by all worktrees (objects, refs, config)."""
        found = self.output([], "rev-parse", "--path-format=absolute", "--git-common-dir")
        return Path(found)

    def no_drivers(self) -> list[str]:
        """Every filter, diff and merge driver the configuration names, to be switched off.
        Read afresh for each operation, so a driver configured later is switched off too: any
        command that touches the index or the working tree may run one (even write-tree
        re-hashes racily clean files through their filters)."""
        found = self.raw("config", "--null", "--name-only", "--get-regexp", DRIVERS)
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
            listed = self.raw("config", "--file", str(path), "--no-includes", "--null", "--list")
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

    def run(
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
            env=self.env_for(off, index, config, alternate),
        )  # fmt: skip

    def raw(
        self, *args: str, off: Sequence[str] = (), given: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """git `args` as run runs them (`given` its stdin), its output as bytes (names exactly
        as git gives them: no decoding, no newline translation)."""
        return subprocess.run(
            ["git", *args], cwd=self.cwd, input=given,
            stdin=subprocess.DEVNULL if given is None else None, capture_output=True,
            timeout=GIT_TIMEOUT_S, env=self.env_for(off),
        )  # fmt: skip

    def env_for(
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

    def output(
        self, off: list[str], *args: str, index: Path | None = None, check: bool = True
    ) -> str:
        result = self.run(off, *args, index=index)
        if check and result.returncode != 0:
            raise ValidationFailed(
                f"git {args[0]} failed in {self.repo.top}: {result.stderr.strip()}"
            )
        return result.stdout.strip()

    def set_ref(self, ref: str, commit: str) -> None:
        self.output(self.no_drivers(), "update-ref", ref, commit)

    def head(self) -> str:
        return self.output(self.no_drivers(), "rev-parse", "--verify", "HEAD")

    def ignored(self, paths: Sequence[str]) -> list[str]:
        """Those of `paths` (relative to the top) that git ignores here."""
        asked = {str(self.repo.top / p): p for p in paths}
        found = self.run(self.no_drivers(), "check-ignore", "--", *asked)
        if found.returncode not in (0, 1):  # 1: none is ignored
            raise ValidationFailed(f"git check-ignore failed in {self.repo.top}: {found.stderr}")
        return [asked[line] for line in found.stdout.splitlines() if line in asked]

    def has_branch(self, branch: str) -> bool:
        return self.branch_tip(branch) is not None

    def branch_tip(self, branch: str) -> str | None:
        """The commit `branch` points at, if it exists (one git process, not has_branch's
        and tip's two)."""
        return self.ref_tip(f"refs/heads/{branch}")

    def ref_tip(self, ref: str) -> str | None:
        """The commit `ref` (a full ref name) points at, if it exists."""
        found = self.run([], "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        return found.stdout.strip() if found.returncode == 0 else None

    def has_commit(self, commit: str) -> bool:
        """`commit` is here, with its history (as far as git checks: the commit itself)."""
        return self.run([], "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0

    def add_worktree(self, path: Path, branch: str, base: str) -> None:
        """A worktree at `path` on `branch`, made from `base` unless the branch exists."""
        exists = self.has_branch(branch)
        where = [str(path), branch] if exists else ["-b", branch, str(path), base]
        self.output(self.no_drivers(), "worktree", "add", "--quiet", *where)

    def add_detached_worktree(self, path: Path, commit: str) -> None:
        """A scratch worktree at `path` on `commit`, on no branch (the autopilot's own, for a
        rebase: never a worker's repository)."""
        self.checked_commit(commit, "commit")
        self.output(self.no_drivers(), "worktree", "add", "--quiet", "--detach", str(path), commit)

    def remove_worktree(self, path: Path, force: bool = False) -> None:
        extra = ["--force"] if force else []
        self.output(self.no_drivers(), "worktree", "remove", *extra, str(path))

    def tip(self, branch: str) -> str:
        return self.output([], "rev-parse", "--verify", f"refs/heads/{branch}")

    def contains(self, older: str, newer: str) -> bool:
        """`newer` has `older` in its history (a fast-forward from older to newer)."""
        return self.run([], "merge-base", "--is-ancestor", older, newer).returncode == 0

    def checked_out(self, branch: str) -> Path | None:
        """The worktree that has `branch` checked out, if one does."""
        listing = self.output([], "worktree", "list", "--porcelain")
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
        off = self.no_drivers()
        # Commits that start or end up empty are dropped: none lands as an empty commit.
        if self.run(off, "rebase", "--quiet", "--no-keep-empty", onto).returncode == 0:
            return []
        # NUL-separated: a name may hold spaces, newlines or bytes git would quote.
        listed = self.raw("diff", "--name-only", "-z", "--diff-filter=U", off=off).stdout
        conflicted = [name.decode(errors="replace") for name in listed.split(b"\0") if name]
        self.run(off, "rebase", "--abort")
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
        listed = there.raw(
            "status", "--porcelain=v1", "-z", "--untracked-files=no", "--no-renames",
            "--ignore-submodules=all", off=there.no_drivers(),
        )  # fmt: skip
        if listed.returncode != 0:
            raise ValidationFailed(
                f"git status failed in {top}: {tail(os.fsdecode(listed.stderr))}"
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
            return self.run([], "update-ref", ref, new, old).returncode == 0
        if self.run([], "rev-parse", "--verify", "--quiet", ref).stdout.strip() != old:
            return False
        there = self._at(holder)
        dirty = self.dirty(branch, holder)
        if dirty:
            raise Blocked(
                f"{dirty}: its files follow {branch} only while it is clean; commit or stash them"
            )
        off = there.no_drivers()
        updated = there.run(off, "read-tree", "-m", "-u", old, new)
        if updated.returncode != 0:
            raise Blocked(
                f"{branch} is checked out in {holder}, and git would not bring its files to "
                f"{new[:12]}: {tail(updated.stderr)}"
            )
        if self.run([], "update-ref", ref, new, old).returncode == 0:
            return True
        there.run(off, "read-tree", "-m", "-u", new, old)  # moved meanwhile: files back
        return False

    def delete_branch(self, branch: str, old: str) -> bool:
        """Delete `branch` only if it still points at `old` (a compare-and-swap)."""
        return self.run([], "update-ref", "-d", f"refs/heads/{branch}", old).returncode == 0

    def branches(self, folder: str) -> dict[str, str]:
        """The branches named `folder`/..., each with the commit it points at."""
        listed = self.output(
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
        return self.output(
            self.no_drivers(),
            "diff", "--no-ext-diff", "--no-textconv", "--no-color", f"{base}...{tip}",
        )  # fmt: skip

    def commits(self, base: str, tip: str) -> list[str]:
        """Commits on `tip` that are not on `base`, oldest first."""
        listed = self.output([], "rev-list", "--reverse", f"{base}..{tip}")
        return listed.split()

    def tree_of(self, commit: str) -> str:
        """The tree of `commit`, checked as checked_commit checks it, by one git process: a
        tag's id peels to a commit that is not itself. (`--`: revisions only, never a path.
        rev-parse, not cat-file --batch: a commit's message, however long, is never read.)"""
        self.checked_id(commit, "commit")
        found = self.run([], "rev-parse", f"{commit}^{{commit}}", f"{commit}^{{tree}}", "--")
        peeled, tree, *_ = [*found.stdout.split(), "", ""]
        if found.returncode != 0 or peeled != commit:
            raise ValidationFailed(f"commit {commit} is not a commit in {self.repo.top}")
        return tree

    def merge_base(self, one: str, other: str) -> str | None:
        found = self.run([], "merge-base", one, other)
        return found.stdout.strip() if found.returncode == 0 else None

    def touching(self, base: str, tip: str, files: Sequence[str]) -> list[str]:
        """Commits in base..tip that change any of `files` (literal paths)."""
        if not files:
            return []  # no pathspec would be every commit
        listed = self.output(
            [], "log", "--format=%H", f"{base}..{tip}", "--",
            *(f":(literal,top){f}" for f in files),
        )  # fmt: skip
        return listed.split()

    def changed(self, tip: str, against: str) -> list[str]:
        """The files `tip` changed since it left `against` (their merge base)."""
        base = self.merge_base(against, tip)
        if base is None:
            return []
        listed = self.raw("diff", "--name-only", "-z", "--no-renames", base, tip)
        return [os.fsdecode(p) for p in listed.stdout.split(b"\0") if p]

    @cached_property
    def object_format(self) -> str:
        """'sha1' or 'sha256'."""
        return self.output([], "rev-parse", "--show-object-format")

    def checked_id(self, given: str, what: str) -> str:
        """`given` checked to be a lower-case hex object id of this repository's format."""
        width = 64 if self.object_format == "sha256" else 40
        if not (OBJECT_ID.fullmatch(given) and len(given) == width):
            raise ValidationFailed(
                f"{what} must be a {width}-digit lower-case hex object id, got {given[:80]!r}"
            )
        return given

    def checked_commit(self, given: str, what: str) -> str:
        """`given` checked to be an object id of this repository's format naming a commit."""
        self.checked_commits((given, what))
        return given

    def checked_commits(self, *given: tuple[str, str]) -> None:
        """Each (object id, what it is) checked as checked_commit checks one, all by one git
        process: each object's own type, never one it peels to."""
        for commit, what in given:
            self.checked_id(commit, what)
        asked = "".join(f"{commit}\n" for commit, _ in given).encode()
        kinds = self.raw("cat-file", "--batch-check", given=asked).stdout.split(b"\n")
        for at, (commit, what) in enumerate(given):
            header = kinds[at].split() if at < len(kinds) else []
            if header[:2] != [commit.encode(), b"commit"]:
                raise ValidationFailed(f"{what} {commit} is not a commit in {self.repo.top}")

    @contextmanager
    def spawn(
        self,
        *args: str,
        stdin: bool = False,
        off: Sequence[str] = (),
        index: Path | None = None,
    ) -> Iterator[subprocess.Popen[bytes]]:
        """git `args` running with stdout a pipe (the drivers `off`, `index` as its index);
        killed when the block ends or after BULK_TIMEOUT_S, whichever is first."""
        process = subprocess.Popen(
            ["git", *args], cwd=self.cwd, env=self.env_for(off, index),
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
            close_and_wait(process)

    @cached_property
    def objects(self) -> Path:
        """This repository's object folder, absolute."""
        found = self.output([], "rev-parse", "--path-format=absolute", "--git-path", "objects")
        return Path(found)


# -- small helpers ----------------------------------------------------------------------


def size_text(n: int) -> str:
    for unit, scale in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} bytes"


def clip(path: str, most: int = 160) -> str:
    """A path for a message: its start and end when it is long."""
    return path if len(path) <= most else f"{path[: most // 2]}…{path[-most // 2 :]}"


def records(stream: IO[bytes], sep: bytes, limit: int) -> Iterator[bytes]:
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


def check_run(argv: list[str], cwd: Path, env: Mapping[str, str]) -> None:
    done = subprocess.run(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        errors="replace", timeout=GIT_TIMEOUT_S,
    )  # fmt: skip
    if done.returncode != 0:
        raise ValidationFailed(f"{' '.join(argv[:2])} failed in {cwd}: {tail(done.stderr)}")


def close_and_wait(process: subprocess.Popen[bytes]) -> None:
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with suppress(BrokenPipeError):
                pipe.close()
    process.wait()


def tail(text: str, limit: int = 600) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]
