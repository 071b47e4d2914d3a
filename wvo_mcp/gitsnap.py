"""Git snapshots of a workspace for checkpoints: the working tree (tracked and untracked,
non-ignored files) as a commit under refs/wvo/checkpoints/, without touching the working
tree, the index or any branch.

The workspace is written by sandboxed commands, so every git call here runs no program the
repository could name (hooks, fsmonitor, filters, textconv, external diff, pager, ...),
reads no system or user configuration, gets no stdin (it is the MCP pipe) and a minimal
environment, and uses the git directory found when the server started, never one that
appears later. Snapshots and restores leave the state folder out.
"""

import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wvo_mcp.errors import ValidationFailed

GIT_TIMEOUT_S = 120
REF_ROOT = "refs/wvo/checkpoints"
_REF_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
_GITFILE_BYTES = 4096
_OBJECT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1 or SHA-256

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
# Every setting through which configuration makes git run a program, switched off.
NO_PROGRAMS = (
    "core.fsmonitor=false",
    f"core.hooksPath={os.devnull}",
    "core.pager=cat",
    "core.editor=:",
    "core.sshCommand=",
    "core.askPass=",
    f"core.attributesFile={os.devnull}",
    "credential.helper=",
    "diff.external=",
    "gpg.program=",
    "commit.gpgSign=false",
    "protocol.allow=never",
    "submodule.recurse=false",
    "status.submoduleSummary=false",
)
# Drivers that attributes (which the workspace writes) can select by name.
DRIVERS = r"^(filter|diff|merge)\..+\.(clean|smudge|process|textconv|command|driver|required)$"


@dataclass(frozen=True)
class Repo:
    top: Path  # the top of the work tree
    entry: Path  # top/.git: the git directory, or a file naming it
    git_dir: Path


@dataclass(frozen=True)
class Snapshot:
    head: str | None  # None in a repository without commits
    commit: str


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

    def _no_drivers(self) -> list[str]:
        """Every filter, diff and merge driver the configuration names, switched off. Read
        afresh for each operation, so a driver configured later is switched off too: any
        command that touches the index or the working tree may run one (even write-tree
        re-hashes racily clean files through their filters)."""
        found = self._run([], "config", "--null", "--name-only", "--get-regexp", DRIVERS)
        names = [n for n in found.stdout.split("\0") if n] if found.returncode == 0 else []
        return [part for name in names for part in ("-c", f"{name}=")]

    def _run(
        self, options: list[str], *args: str, index: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = self.env if index is None else {**self.env, "GIT_INDEX_FILE": str(index)}
        fixed = [part for s in NO_PROGRAMS for part in ("-c", s)]
        return subprocess.run(
            ["git", *fixed, *options, *args],
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env=env,
        )

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
        """The working tree as a commit object."""
        off = self._no_drivers()
        # Empty (and a non-zero exit) in a repository without commits.
        head = self._git(off, "rev-parse", "--verify", "--quiet", "HEAD", check=False) or None
        with tempfile.TemporaryDirectory(prefix="wvo-index-") as scratch:
            # A private index: `add -A` there stages everything without touching the real one.
            index = Path(scratch) / "index"
            self._git(off, "add", "-A", "--", ":/", *self.keep_out, index=index)
            tree = self._git(off, "write-tree", index=index)
        parents = ["-p", head] if head else []
        commit = self._git(off, "commit-tree", tree, *parents, "-m", message)
        return Snapshot(head=head, commit=commit)

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

    def has_branch(self, branch: str) -> bool:
        found = self._run([], "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
        return found.returncode == 0

    def add_worktree(self, path: Path, branch: str, base: str) -> None:
        """A worktree at `path` on `branch`, made from `base` unless the branch exists (a
        retry continues on the branch the last attempt committed to)."""
        exists = self.has_branch(branch)
        where = [str(path), branch] if exists else ["-b", branch, str(path), base]
        self._git(self._no_drivers(), "worktree", "add", "--quiet", *where)

    def remove_worktree(self, path: Path) -> None:
        self._git(self._no_drivers(), "worktree", "remove", str(path))

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
        if self._run(off, "rebase", "--quiet", onto).returncode == 0:
            return []
        conflicted = self._git(off, "diff", "--name-only", "--diff-filter=U", check=False)
        self._run(off, "rebase", "--abort")
        return conflicted.split() or ["(the rebase failed; see `git rebase` in the worktree)"]

    def move_branch(self, branch: str, new: str, old: str) -> bool:
        """Point `branch` at `new` only if it still points at `old`."""
        return self._run([], "update-ref", f"refs/heads/{branch}", new, old).returncode == 0

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
        fixed = [part for s in NO_PROGRAMS for part in ("-c", s)]
        with subprocess.Popen(
            ["git", *fixed, *off, *args], cwd=self.cwd, env=self.env,
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
