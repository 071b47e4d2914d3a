"""Real repositories for the wvo_mcp.git tests: a person's repository, a worker's clone of it
(built by the code under test), raw trees no porcelain would write, and the host state a
refused call must leave as it was."""

import os
import subprocess
from pathlib import Path

from wvo_mcp.git import Git, locate, trees


def git_env(home: Path) -> dict[str, str]:
    """Plain git, isolated from this machine's configuration; nothing switched off."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
    }


def git(cwd: Path, *args: str | bytes, data: bytes | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, input=data, capture_output=True, env=git_env(cwd), check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"git {args!r} in {cwd}: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode(errors="replace").strip()


def person(path: Path, object_format: str = "sha1") -> Git:
    """The person's repository with one commit on main, and the trusted Git on it."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main", f"--object-format={object_format}")
    (path / "app.py").write_text("print('v1')\n")
    (path / "tool.sh").write_text("#!/bin/sh\n")
    (path / "tool.sh").chmod(0o755)
    git(path, "add", ".")
    git(path, "commit", "-qm", "first")
    repo = locate(path)
    assert repo is not None
    return Git(repo, path)


def worker(host: Git, path: Path, branch: str = "wvo/T1") -> Path:
    """A worker's repository cloned from the person's HEAD, as the autopilot makes it."""
    trees.clone_for_worker(host, path, host.head(), branch)
    return path


def commit_file(repo: Path, name: str, text: str) -> str:
    """The worker commits `name` with `text` (plain git: the worker's own tool)."""
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-qm", f"edit {name}")
    return git(repo, "rev-parse", "HEAD")


def raw_tree(repo: Path, entries: list[tuple[str, bytes, str]]) -> str:
    """A tree object written as given (no sorting, no checks): (mode, name, object id)."""
    body = b"".join(
        mode.encode() + b" " + name + b"\0" + bytes.fromhex(oid) for mode, name, oid in entries
    )
    return git(repo, "hash-object", "-t", "tree", "-w", "--literally", "--stdin", data=body)


def blob(repo: Path, content: bytes) -> str:
    return git(repo, "hash-object", "-w", "--stdin", data=content)


def commit_tree(repo: Path, tree: str, *parents: str) -> str:
    args = [part for p in parents for part in ("-p", p)]
    return git(repo, "commit-tree", tree, *args, "-m", "raw")


def host_state(host: Git) -> tuple[str, list[str]]:
    """Every ref of the person's repository and every file in its object store."""
    refs = git(host.repo.top, "for-each-ref", "--format=%(refname) %(objectname)")
    objects = host.common_dir / "objects"
    files = sorted(str(p.relative_to(objects)) for p in objects.rglob("*") if p.is_file())
    return refs, files


def has_object(repo: Path, oid: str) -> bool:
    done = subprocess.run(
        ["git", "cat-file", "-e", oid], cwd=repo, env=git_env(repo), capture_output=True
    )
    return done.returncode == 0
