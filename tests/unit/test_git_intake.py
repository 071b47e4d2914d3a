"""A worker's repository made, its HEAD read, its commits taken and a commit written out as
files (wvo_mcp/git/: trees, refs, intake), on real repositories: the paths a worker takes
when it behaves."""

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.gitwork import (
    blob,
    commit_file,
    commit_tree,
    git,
    has_object,
    person,
    raw_tree,
    worker,
)
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.git import config_env, intake, read_head, trees
from wvo_mcp.git.run import NO_PROGRAMS


def test_config_env_carries_names_whole() -> None:
    env = config_env(["filter.a=b.clean"], [("core.quotePath", "true")])
    count = int(env["GIT_CONFIG_COUNT"])
    pairs = [(env[f"GIT_CONFIG_KEY_{n}"], env[f"GIT_CONFIG_VALUE_{n}"]) for n in range(count)]
    assert pairs[: len(NO_PROGRAMS)] == list(NO_PROGRAMS)
    assert pairs[len(NO_PROGRAMS) :] == [
        ("filter.a=b.clean", ""),
        ("core.quotePath", "true"),
    ]


def test_clone_for_worker_is_a_checked_out_repository_borrowing_our_objects(
    tmp_path: Path,
) -> None:
    host = person(tmp_path / "person")
    (host.repo.git_dir / "hooks" / "post-checkout").write_text("#!/bin/sh\ntouch ../RAN\n")
    w = worker(host, tmp_path / "w", "wvo/T1")
    assert (w / "app.py").read_text() == "print('v1')\n"
    assert os.access(w / "tool.sh", os.X_OK)
    alternates = (w / ".git" / "objects" / "info" / "alternates").read_text()
    assert alternates == f"{host.common_dir / 'objects'}\n"
    assert git(w, "symbolic-ref", "HEAD") == "refs/heads/wvo/T1"
    assert git(w, "rev-parse", "HEAD") == host.head()
    assert git(w, "status", "--porcelain") == ""
    # No template, so no sample hooks; the person's hooks are not copied either.
    assert not (w / ".git" / "hooks").exists() or not any((w / ".git" / "hooks").iterdir())
    assert not (tmp_path / "RAN").exists()
    assert git(w, "config", "user.name") == "wvo-mcp worker"
    # The worker can commit without any configuration of its own.
    done = subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "w"], cwd=w, capture_output=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Only its own new objects live in it.
    assert not any(p.is_file() for p in (w / ".git" / "objects" / "pack").iterdir())


def test_clone_for_worker_refuses_an_existing_folder_and_a_bad_branch(tmp_path: Path) -> None:
    host = person(tmp_path / "person")
    (tmp_path / "there").mkdir()
    with pytest.raises(ValidationFailed, match="new path"):
        trees.clone_for_worker(host, tmp_path / "there", host.head(), "wvo/T1")
    with pytest.raises(ValidationFailed, match="branch name"):
        trees.clone_for_worker(host, tmp_path / "w", host.head(), "a..b")
    with pytest.raises(ValidationFailed, match="hex object id"):
        trees.clone_for_worker(host, tmp_path / "w", "main", "wvo/T1")
    assert not (tmp_path / "w").exists()


def test_read_head_on_a_branch_detached_packed_and_unborn(tmp_path: Path) -> None:
    host = person(tmp_path / "person")
    w = worker(host, tmp_path / "w")
    tip = commit_file(w, "a.txt", "one\n")
    assert read_head(w / ".git") == tip
    git(w, "pack-refs", "--all")
    assert not (w / ".git" / "refs" / "heads" / "wvo" / "T1").exists()
    assert read_head(w / ".git") == tip
    git(w, "checkout", "-q", "--detach")
    assert read_head(w / ".git") == tip
    (w / ".git" / "HEAD").write_text(tip.upper() + "\n")
    assert read_head(w / ".git") == tip
    git(w, "checkout", "-q", "--orphan", "fresh")
    assert read_head(w / ".git") is None


def test_take_commits_brings_the_worker_commits_and_sets_the_ref(tmp_path: Path) -> None:
    host = person(tmp_path / "person")
    base = host.head()
    w = worker(host, tmp_path / "w")
    first = commit_file(w, "a.txt", "one\n")
    second = commit_file(w, "sub/b.txt", "two\n")
    tip = read_head(w / ".git")
    assert tip == second
    new = intake.take_commits(host, w / ".git" / "objects", tip, "refs/heads/wvo/T1", None)
    assert new == [first, second]
    assert host.tip("wvo/T1") == second
    assert host.commits(base, "wvo/T1") == [first, second]
    # The next attempt continues: the worker packs its objects, the ref moves on.
    third = commit_file(w, "a.txt", "three\n")
    git(w, "gc", "-q")
    assert not any(p.name != "info" for p in (w / ".git" / "objects").iterdir() if p.name != "pack")
    new = intake.take_commits(host, w / ".git" / "objects", third, "refs/heads/wvo/T1", second)
    assert new == [third]
    assert git(host.repo.top, "show", f"{third}:a.txt") == "three"
    # A worker that made no commit: nothing new, the ref is set all the same.
    again = intake.take_commits(host, w / ".git" / "objects", base, "refs/heads/wvo/T2", None)
    assert again == []
    assert host.tip("wvo/T2") == base


def test_the_whole_round_in_a_sha256_repository(tmp_path: Path) -> None:
    host = person(tmp_path / "person", "sha256")
    w = worker(host, tmp_path / "w")
    tip = commit_file(w, "a.txt", "one\n")
    assert len(tip) == 64
    assert read_head(w / ".git") == tip
    assert intake.take_commits(host, w / ".git" / "objects", tip, "refs/heads/wvo/T1", None) == [
        tip
    ]
    dest = tmp_path / "dest"
    dest.mkdir()
    trees.materialize(host, tip, dest)
    assert (dest / "a.txt").read_text() == "one\n"
    with pytest.raises(ValidationFailed, match="64-digit"):
        intake.take_commits(host, w / ".git" / "objects", tip[:40], "refs/heads/wvo/T2", None)


def test_materialize_writes_the_tree_as_files(tmp_path: Path) -> None:
    host = person(tmp_path / "person")
    top = host.repo.top
    big = os.urandom(3 * 1024 * 1024)
    sub = raw_tree(top, [("100644", b"deep.txt", blob(top, b"deep\n"))])
    tree = raw_tree(
        top,
        sorted(
            [
                ("100644", b"big.bin", blob(top, big)),
                ("100644", b"empty", blob(top, b"")),
                ("100755", b"run.sh", blob(top, b"#!/bin/sh\n")),
                ("120000", b"link", blob(top, b"../outside/target")),
                ("40000", b"sub", sub),
                ("160000", b"module", "1" * 40),
            ],
            key=lambda e: e[1] + (b"/" if e[0] == "40000" else b""),
        ),
    )
    commit = commit_tree(top, tree)
    dest = tmp_path / "dest"
    dest.mkdir()
    trees.materialize(host, commit, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["big.bin", "empty", "link", "run.sh", "sub"]
    assert (dest / "big.bin").read_bytes() == big
    assert (dest / "empty").read_bytes() == b""
    assert stat.S_IMODE((dest / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "empty").stat().st_mode) == 0o644
    assert os.readlink(dest / "link") == "../outside/target"
    assert (dest / "sub" / "deep.txt").read_text() == "deep\n"
    assert has_object(top, commit)


def test_materialize_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    host = person(tmp_path / "person")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep").write_text("mine\n")
    with pytest.raises(ValidationFailed, match="not empty"):
        trees.materialize(host, host.head(), dest)
    assert [p.name for p in dest.iterdir()] == ["keep"]
