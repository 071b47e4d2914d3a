"""Git snapshots of a workspace for checkpoints: the working tree (tracked and untracked,
non-ignored files) as a commit under refs/wvo/checkpoints/, without touching the working
tree, the index or any branch."""

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from wvo_mcp.errors import ValidationFailed

GIT_TIMEOUT_S = 120
REF_ROOT = "refs/wvo/checkpoints"
_REF_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


@dataclass(frozen=True)
class Snapshot:
    head: str | None  # None in a repository without commits
    commit: str


def _run(
    workspace: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )


def _git(workspace: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = _run(workspace, *args, env=env)
    if result.returncode != 0:
        raise ValidationFailed(f"git {args[0]} failed in {workspace}: {result.stderr.strip()}")
    return result.stdout.strip()


def is_repository(workspace: Path) -> bool:
    result = _run(workspace, "rev-parse", "--is-inside-work-tree")
    return result.returncode == 0 and result.stdout.strip() == "true"


def ref_name(task_id: str, seq: int) -> str:
    """A valid ref for any task id: characters git forbids (: / and so on) are %-encoded,
    and so are the dots that would form '..' or a '.lock' ending."""
    encoded = "".join(c if c in _REF_SAFE else f"%{ord(c):02X}" for c in task_id)
    encoded = encoded.replace("..", ".%2E")
    if encoded.endswith(".lock"):
        encoded = encoded[: -len(".lock")] + "%2Elock"
    return f"{REF_ROOT}/{encoded}/{seq}"


def snapshot(workspace: Path, message: str) -> Snapshot | None:
    """The working tree as a commit object, or None when `workspace` is not a repository."""
    if not is_repository(workspace):
        return None
    # Empty (and a non-zero exit) in a repository without commits.
    head = _run(workspace, "rev-parse", "--verify", "--quiet", "HEAD").stdout.strip() or None
    with tempfile.TemporaryDirectory(prefix="wvo-index-") as scratch:
        # A private index: `add -A` there stages everything without touching the real one.
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        _git(workspace, "add", "-A", env=env)
        tree = _git(workspace, "write-tree", env=env)
    parents = ["-p", head] if head else []
    commit = _git(
        workspace,
        "-c", "user.name=wvo-mcp", "-c", "user.email=wvo-mcp@localhost",
        "commit-tree", tree, *parents, "-m", message,
    )  # fmt: skip
    return Snapshot(head=head, commit=commit)


def set_ref(workspace: Path, ref: str, commit: str) -> None:
    _git(workspace, "update-ref", ref, commit)


def uncommitted(workspace: Path) -> str:
    return _git(workspace, "status", "--porcelain")


def diff_stat(workspace: Path, commit: str) -> str:
    """What restoring `commit` would change in the working tree."""
    return _git(workspace, "diff", "--stat", "-R", commit)


def restore(workspace: Path, commit: str) -> None:
    """Working-tree files as in `commit`; the index and branches stay as they are."""
    _git(workspace, "restore", f"--source={commit}", "--worktree", "--", ".")
