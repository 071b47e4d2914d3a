"""Checkpoints with git snapshots and rollback, on real temporary repositories."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import claim_when_possible, connect, wvo

pytestmark = pytest.mark.anyio


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def make_repo(path: Path, *, commit: bool = True) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "dev@example.com")
    git(path, "config", "user.name", "Dev")
    (path / ".gitignore").write_text("secret.env\n")
    (path / "app.py").write_text("print('v1')\n")
    if commit:
        git(path, "add", ".")
        git(path, "commit", "-q", "-m", "first")
    return path


async def snapshot_checkpoint(state_root: Path, workspace: Path) -> dict[str, Any]:
    """One task claimed and checkpointed with git_snapshot=true in `workspace`."""
    async with connect(state_root, WVO_WORKSPACE_ROOT=workspace) as a:
        await a.call("task_create", tasks=[{"id": "t", "title": "t"}])
        claim = await a.call("claim_task")
        return await a.call(
            "checkpoint",
            task_id="t",
            lease_token=claim["lease_token"],
            summary="s",
            git_snapshot=True,
        )


async def test_snapshot_keeps_tree_index_and_branch_untouched(
    state_root: Path, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "app.py").write_text("print('v2, work in progress')\n")
    (repo / "notes.txt").write_text("untracked but not ignored\n")
    (repo / "secret.env").write_text("TOKEN=hunter2\n")
    git(repo, "add", "app.py")  # something staged, to see the index is left alone
    status_before, head_before = git(repo, "status", "--porcelain"), git(repo, "rev-parse", "HEAD")
    staged_before = git(repo, "diff", "--cached", "--name-only")

    task_id = "E1:db..lock"
    async with (
        connect(state_root, WVO_WORKSPACE_ROOT=repo, WVO_AGENT_ID="a") as a,
        connect(state_root, WVO_WORKSPACE_ROOT=repo, WVO_AGENT_ID="b") as b,
    ):
        await a.call("task_create", tasks=[{"id": task_id, "title": "schema"}])
        claim = await a.call("claim_task", lease_seconds=1)
        cp = await a.call(
            "checkpoint",
            task_id=task_id,
            lease_token=claim["lease_token"],
            summary="half way",
            git_snapshot=True,
        )
        ref = cp["git_ref"]
        assert ref.startswith("refs/wvo/checkpoints/") and ref.endswith("/1")
        assert cp["git_head"] == head_before and cp.get("git_note") is None
        git(repo, "check-ref-format", ref)

        # The next holder gets the checkpoint with its snapshot once the 1 s lease runs out.
        recovered = await claim_when_possible(b, lease_seconds=60)
        assert recovered["last_checkpoint"]["git_ref"] == ref

    assert git(repo, "status", "--porcelain") == status_before
    assert git(repo, "rev-parse", "HEAD") == head_before
    assert git(repo, "diff", "--cached", "--name-only") == staged_before
    assert git(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git(repo, "show", f"{ref}:app.py") == "print('v2, work in progress')"
    assert git(repo, "show", f"{ref}:notes.txt") == "untracked but not ignored"
    assert "secret.env" not in git(repo, "ls-tree", "--name-only", ref)
    assert git(repo, "rev-parse", f"{ref}^") == head_before


async def test_not_a_repository_records_without_a_snapshot(
    state_root: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    cp = await snapshot_checkpoint(state_root, plain)
    assert cp["seq"] == 1 and cp.get("git_ref") is None
    assert "not a git repository" in cp["git_note"]


async def test_a_repository_without_commits_is_snapshotted(
    state_root: Path, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "fresh", commit=False)
    cp = await snapshot_checkpoint(state_root, repo)
    assert cp.get("git_head") is None
    assert git(repo, "show", f"{cp['git_ref']}:app.py") == "print('v1')"


async def test_checkpoints_listing_and_rollback(state_root: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    async with connect(state_root, WVO_WORKSPACE_ROOT=repo) as a:
        await a.call("task_create", tasks=[{"id": "T1", "title": "t"}])
        token = (await a.call("claim_task"))["lease_token"]
        (repo / "app.py").write_text("print('good state')\n")
        (repo / "new.txt").write_text("added\n")
        await a.call(
            "checkpoint", task_id="T1", lease_token=token, summary="good", git_snapshot=True
        )
        await a.call("checkpoint", task_id="T1", lease_token=token, summary="no snapshot")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "work")
    (repo / "app.py").write_text("print('broken')\n")

    env_root = ["--state-root", str(state_root)]
    listing = wvo(state_root, "checkpoints", "T1")
    assert listing.returncode == 0 and "refs/wvo/checkpoints/T1/1" in listing.stdout
    assert " 2 " in listing.stdout and "no snapshot" in listing.stdout

    def rollback(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-P", "-m", "wvo_mcp", *env_root, "rollback", "T1", *extra],
            cwd=repo,
            capture_output=True,
            text=True,
            env={**os.environ, "WVO_WORKSPACE_ROOT": str(repo)},
        )

    dirty = rollback("--to", "1")
    assert dirty.returncode == 2 and "uncommitted work" in dirty.stderr
    assert (repo / "app.py").read_text() == "print('broken')\n"
    dry = rollback("--to", "1", "--dry-run")
    assert dry.returncode == 0 and "app.py" in dry.stdout and "nothing changed" in dry.stdout
    assert (repo / "app.py").read_text() == "print('broken')\n"
    no_snapshot = rollback("--to", "2", "--force")
    assert no_snapshot.returncode == 2 and "without a git snapshot" in no_snapshot.stderr
    forced = rollback("--to", "1", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (repo / "app.py").read_text() == "print('good state')\n"
    assert git(repo, "diff", "--cached", "--name-only") == ""
    assert git(repo, "log", "--oneline", "-1").endswith("work")
