"""A sandboxed command attacks what the server later trusts: the state folder inside the
workspace, the server's Python environment and package, the git directory its own git
commands read, and the workspace check itself. Each test asserts host state afterwards."""

import hashlib
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import ROOT, claim_when_possible, connect, open_db, serve_once
from tests.integration.test_git_checkpoints import make_repo, snapshot_checkpoint
from wvo_mcp.config import Settings
from wvo_mcp.sandbox import Request, bwrap, run

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}"),
]
QUIET = {"WVO_AUTOPILOT_HEALTH_INTERVAL_MS": 0, "WVO_OTEL_ENABLED": 0}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def tree(folder: Path) -> dict[str, str]:
    """Every file below `folder` (links not followed) with a digest of its content; SQLite's
    shared-memory index is left out (readers write to it)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.name.endswith("-shm"):
            continue
        if path.is_symlink():
            found[str(path.relative_to(folder))] = "link"
        elif path.is_file():
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


async def sandboxed(agent: Any, script: str, **args: Any) -> dict[str, Any]:
    result: dict[str, Any] = await agent.call("sandbox_run", command=script, **args)
    assert result["backend"] == "bwrap"
    return result


async def test_the_state_folder_inside_the_workspace_is_out_of_reach(tmp_path: Path) -> None:
    """The command sees an empty read-only folder there, which stays a mount point."""
    workspace = tmp_path / "ws"
    state = workspace / "nested" / "state"  # so the folders leading there are attacked too
    state.mkdir(parents=True)
    (state / "providers.yaml").write_text(
        (ROOT / "wvo_mcp" / "data" / "providers.yaml").read_text()
    )
    async with connect(state, WVO_WORKSPACE_ROOT=workspace, **QUIET) as agent:
        await agent.call("task_create", tasks=[{"id": "T1", "title": "keep me"}])
        await agent.call("context_write", section="notes", content="trusted")
        before = tree(state)
        result = await sandboxed(
            agent,
            """
            echo "LISTED[$(ls -A nested/state)]"
            for f in nested/state/orchestrator.db nested/state/orchestrator.db-wal \
                     nested/state/providers.yaml nested/state/context.md; do
                head -c 1 "$f" >/dev/null 2>&1 && echo "READ $f"
                echo pwned >> "$f" 2>/dev/null && echo "WROTE $f"
                rm "$f" 2>/dev/null && echo "REMOVED $f"
            done
            mkdir -p nested/state/backups/db 2>/dev/null && echo MKDIR
            echo x > nested/state/planted.db 2>/dev/null && echo "WROTE planted"
            # From a user namespace of its own (where one may be made): the mount is locked.
            unshare -Urm sh -c 'umount nested/state && echo UNMOUNTED;
                mount -o remount,rw nested/state && echo REMOUNTED' 2>/dev/null
            mv nested/state nested/gone 2>/dev/null && echo "MOVED state"
            mv nested nested.gone 2>/dev/null && echo "MOVED nested"
            mkdir -p nested/state 2>/dev/null
            echo fake > nested/state/orchestrator.db 2>/dev/null && echo "WROTE fake"
            echo finished
            """,
        )
        out = result["stdout_tail"]
        assert result["exit_code"] == 0 and "finished" in out, result
        # It sees an empty folder: nothing of the database to read (or lock).
        assert "LISTED[]" in out and "READ" not in out
        assert "WROTE" not in out and "MOVED" not in out and "MKDIR" not in out
        assert "MOUNTED" not in out
        assert "REMOVED" not in out
        # The host: the same files with the same bytes, at the same place, nothing planted.
        assert sorted(p.name for p in workspace.iterdir()) == ["nested"]
        assert sorted(p.name for p in (workspace / "nested").iterdir()) == ["state"]
        assert tree(state) == before
        # And the server still trusts a database that is its own.
        assert (await agent.call("task_get", task_id="T1"))["title"] == "keep me"
    with open_db(state) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [r["id"] for r in db.execute("SELECT id FROM tasks")] == ["T1"]


# Run inside the sandbox as `python attack.py STATE ROLE`: every way the command could hold
# the server's writes up, each reported HELD or refused; then it holds on until `release`.
ATTACK = """
import fcntl, os, sqlite3, sys, time

state, role = sys.argv[1], sys.argv[2]
held = []


def attempt(name, take):
    try:
        held.append(take())
        print(role, name, "HELD", flush=True)
    except Exception as exc:
        print(role, name, "refused:", type(exc).__name__, flush=True)


def flock_writers():
    fd = os.open(state + "/orchestrator.db.writers.lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def read_transaction():
    db = sqlite3.connect("file:" + state + "/orchestrator.db?mode=ro", uri=True)
    db.isolation_level = None
    db.execute("BEGIN")
    db.execute("SELECT count(*) FROM tasks").fetchone()
    return db


def lock(name, start, length):
    def take():
        fd = os.open(state + "/" + name, os.O_RDONLY)
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, length, start)
        return fd
    return take


print(role, "sees", sorted(os.listdir(state)), flush=True)
attempt("writers.lock", flock_writers)
attempt("read transaction", read_transaction)
attempt("shm locks", lock("orchestrator.db-shm", 120, 8))  # WAL write, checkpoint, readers
attempt("db locks", lock("orchestrator.db", 0, 0))  # the whole file
open(role + ".ready", "w").close()
deadline = time.monotonic() + 40
while not os.path.exists("release") and time.monotonic() < deadline:
    time.sleep(0.05)
print(role, "released" if os.path.exists("release") else "gave up", flush=True)
"""


async def test_a_command_cannot_hold_up_the_servers_writes(tmp_path: Path) -> None:
    """The state folder in the workspace, where `wvo-mcp init` puts it: a command, in the
    background and in the foreground, tries to lock the writers' turn and SQLite's files and
    to hold a read transaction; it finds nothing to open, and writes go on meanwhile."""
    workspace = tmp_path / "ws"
    state = workspace / ".wvo"
    state.mkdir(parents=True)
    (workspace / "attack.py").write_text(ATTACK)
    env = {"WVO_WORKSPACE_ROOT": workspace, **QUIET}
    async with connect(state, **env) as agent, connect(state, **env) as other:
        await agent.call("task_create", tasks=[{"id": "T1", "title": "before"}])
        await other.call("context_write", section="notes", content="before")
        assert {"orchestrator.db-shm", "orchestrator.db.writers.lock"} <= set(os.listdir(state))
        python = sys.executable
        script = (
            f"{python} attack.py .wvo bg & {python} attack.py .wvo fg; wait; echo ended; ls -A .wvo"
        )
        done: dict[str, Any] = {}

        async def attack() -> None:
            done.update(await sandboxed(agent, script, timeout_s=60))

        async with anyio.create_task_group() as group:
            group.start_soon(attack)
            ready = [workspace / f"{role}.ready" for role in ("bg", "fg")]
            for _ in range(400):  # 20 s
                if done or all(p.exists() for p in ready):
                    break
                await anyio.sleep(0.05)
            assert all(p.exists() for p in ready) and not done, f"not holding: {done}"
            # While both hold whatever they could: every write, by its own server and another,
            # well within the writers' busy deadline (15 s).
            with anyio.fail_after(8):
                await agent.call("task_create", tasks=[{"id": "T2", "title": "during"}])
                await agent.call("context_write", section="notes", content="during")
                await other.call("task_create", tasks=[{"id": "T3", "title": "during"}])
            assert not done, "the command ended before the writes: they proved nothing"
            (workspace / "release").touch()
        out = done["stdout_tail"]
        assert done["exit_code"] == 0 and "ended" in out, done
        for role in ("bg", "fg"):
            assert f"{role} sees []" in out and f"{role} released" in out, out
        assert "HELD" not in out and out.count("refused") == 8, out
        assert out.rstrip().endswith("ended"), out  # the folder still empty, to it
    with open_db(state) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ids = [r["id"] for r in db.execute("SELECT id FROM tasks ORDER BY id")]
    assert ids == ["T1", "T2", "T3"]
    assert sorted(p.name for p in workspace.iterdir()) == [
        ".wvo",
        "attack.py",
        "bg.ready",
        "fg.ready",
        "release",
    ]


# A process: what the sandbox keeps read-only is the serving process's Python, import path
# included (this test process imports from the repository, which a server must not).
@pytest.mark.process
async def test_the_servers_python_package_and_repository_are_read_only(
    state_root: Path,
) -> None:
    """This repository as the workspace: its .venv (the server's Python), the wvo_mcp
    package (an editable install) and .git are bound read-only."""
    marker = f"wvo-planted-{uuid.uuid4().hex}"
    targets = [
        Path(sys.prefix) / "lib" / f"{marker}.pth",  # a .pth runs at every Python start
        ROOT / "wvo_mcp" / f"{marker}.py",
        ROOT / ".git" / "hooks" / "reference-transaction",
        ROOT / ".git" / marker,
    ]
    inside = [p for p in targets if ROOT in p.parents]
    assert len(inside) == len(targets), "the server's venv is expected in this repository"
    config_before = (ROOT / ".git" / "config").read_bytes()
    try:
        async with connect(state_root, process=True, WVO_WORKSPACE_ROOT=ROOT, **QUIET) as agent:
            writes = "; ".join(f"echo x > {p} 2>/dev/null && echo WROTE {p}" for p in targets)
            result = await sandboxed(
                agent,
                f"{writes}; echo '[core] fsmonitor = touch /tmp/{marker}' >> .git/config "
                "2>/dev/null && echo WROTE config; mv .venv .venv.gone 2>/dev/null && "
                "echo MOVED; echo finished",
            )
        assert "finished" in result["stdout_tail"], result
        assert "WROTE" not in result["stdout_tail"] and "MOVED" not in result["stdout_tail"]
        assert [p for p in targets if p.exists()] == []
        assert (ROOT / ".git" / "config").read_bytes() == config_before
    finally:
        for path in targets:
            if path.exists() and marker in path.name:
                path.unlink()


async def test_git_commands_run_nothing_the_repository_names(
    state_root: Path, tmp_path: Path
) -> None:
    """Hooks, fsmonitor, filters and textconv planted in a repository's configuration (as
    an attacker would, had it write access) run nothing when the server snapshots a
    checkpoint or rolls back."""
    repo = make_repo(tmp_path / "repo")
    proof = tmp_path / "ran"
    run_it = f"touch {proof}-$$; cat"
    for key, value in [
        ("core.fsmonitor", f"touch {proof}-fsmonitor; false"),
        ("filter.evil.clean", run_it),
        ("filter.evil.smudge", run_it),
        ("filter.evil.process", f"touch {proof}-process"),
        ("diff.evil.textconv", run_it),
        ("diff.external", f"touch {proof}-extdiff"),
        ("core.pager", f"touch {proof}-pager"),
    ]:
        git(repo, "config", key, value)
    hooks = repo / ".git" / "hooks"
    for hook in ("reference-transaction", "post-checkout", "pre-commit", "post-index-change"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {proof}-{hook}\n")
        (hooks / hook).chmod(0o755)
    (repo / ".gitattributes").write_text("* filter=evil diff=evil\n")
    (repo / "app.py").write_text("v2\n")

    cp = await snapshot_checkpoint(state_root, repo)
    assert cp["git_ref"], cp
    (repo / "app.py").write_text("v3\n")
    rolled = rollback(state_root, repo, "t", "--to", "1", "--force")
    assert rolled.returncode == 0, rolled.stderr
    assert (repo / "app.py").read_text() == "v2\n"
    assert ran(tmp_path) == []


def rollback(state_root: Path, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(state_root), "rollback", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "WVO_WORKSPACE_ROOT": str(repo)},
        timeout=60,
    )


def ran(folder: Path) -> list[str]:
    """Proof files a planted program would have made."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("ran"))


async def test_a_repository_planted_after_start_is_never_used(
    state_root: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "plain"
    workspace.mkdir()
    proof = tmp_path / "ran"
    async with connect(state_root, WVO_WORKSPACE_ROOT=workspace, **QUIET) as agent:
        await agent.call("task_create", tasks=[{"id": "T", "title": "t"}])
        claim = await claim_when_possible(agent)
        planted = await sandboxed(
            agent,
            f"git init -q . && git config core.fsmonitor 'touch {proof}; false' && echo PLANTED",
        )
        assert "PLANTED" in planted["stdout_tail"], planted
        cp = await agent.call(
            "checkpoint",
            task_id="T",
            lease_token=claim["lease_token"],
            summary="s",
            git_snapshot=True,
        )
    assert cp.get("git_ref") is None and "not a git repository" in cp["git_note"]
    assert not proof.exists()


async def test_a_swapped_folder_cannot_lead_outside_the_workspace(tmp_path: Path) -> None:
    """The folder is checked, then a link is swapped in before the mount: only the checked
    root is mounted and the folder is entered inside the sandbox, so the command never
    reaches the link's target on the host."""
    workspace, outside = tmp_path / "ws", tmp_path / "outside"
    workspace.mkdir()
    outside.mkdir()
    (workspace / "sub").symlink_to(outside)  # what an attacker swaps in after the check
    result = run(
        Request(command="touch escaped; pwd", workspace=workspace, cwd="sub"),
        Settings(sandbox_backend="bwrap", state_root=tmp_path / "state"),
    )
    assert result.exit_code != 0
    assert list(outside.iterdir()) == [] and not (workspace / "escaped").exists()


async def test_a_folder_outside_the_root_is_refused_before_anything_runs(
    state_root: Path, tmp_path: Path
) -> None:
    workspace, outside = tmp_path / "ws", tmp_path / "outside"
    workspace.mkdir()
    outside.mkdir()
    (workspace / "sub").symlink_to(outside)
    async with connect(state_root, WVO_WORKSPACE_ROOT=workspace, **QUIET) as agent:
        for given in ("sub", "../outside", str(outside), "sub/../../outside"):
            error = await agent.error("sandbox_run", command="touch escaped", workspace=given)
            assert "outside the workspace root" in error
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("state", "workspace", "expected"),
    [
        ("ws", "ws", "inside the state folder"),
        ("ws/..", "ws", "inside the state folder"),
    ],
)
def test_layouts_that_cannot_be_protected_are_refused_at_start(
    tmp_path: Path, state: str, workspace: str, expected: str
) -> None:
    (tmp_path / "ws").mkdir()
    started = serve_once({"WVO_STATE_ROOT": state, "WVO_WORKSPACE_ROOT": workspace}, cwd=tmp_path)
    assert started.returncode == 2, started.stderr
    assert expected in started.stderr and started.stdout == ""


def test_python_importing_from_the_workspace_is_refused_at_start(tmp_path: Path) -> None:
    """`python -m wvo_mcp` puts the current directory first on the import path; from inside
    the workspace a command could plant a module there for the next server."""
    started = serve_once({"WVO_STATE_ROOT": str(tmp_path / "state")}, python_flags=())
    assert started.returncode == 2
    assert "python -P -m wvo_mcp" in started.stderr and started.stdout == ""


def test_a_state_folder_reached_through_a_link_in_the_workspace_is_refused(
    tmp_path: Path,
) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "real-state").mkdir()
    (tmp_path / "ws" / "state").symlink_to(tmp_path / "real-state")
    started = serve_once({"WVO_STATE_ROOT": "ws/state", "WVO_WORKSPACE_ROOT": "ws"}, cwd=tmp_path)
    assert started.returncode == 2
    assert "symbolic link inside the workspace" in started.stderr


async def test_snapshots_and_rollback_leave_the_state_folder_out(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    state = repo / "state"  # untracked and not ignored: `add -A` would take it
    cp = await snapshot_checkpoint(state, repo)
    files = git(repo, "ls-tree", "-r", "--name-only", cp["git_ref"]).splitlines()
    assert "app.py" in files and not [f for f in files if f.startswith("state/")]
    before = tree(state)
    rolled = rollback(state, repo, "t", "--to", "1", "--force")
    assert rolled.returncode == 0, rolled.stderr
    assert tree(state) == before and "state" not in rolled.stdout


async def test_a_driver_configured_after_start_is_switched_off_too(
    state_root: Path, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    proof = tmp_path / "ran-late"
    async with connect(state_root, WVO_WORKSPACE_ROOT=repo, **QUIET) as agent:
        await agent.call("task_create", tasks=[{"id": "T", "title": "t"}])
        claim = await claim_when_possible(agent)
        args = {"task_id": "T", "lease_token": claim["lease_token"], "git_snapshot": True}
        first = await agent.call("checkpoint", summary="before", **args)
        git(repo, "config", "filter.late.clean", f"touch {proof}; cat")
        (repo / ".gitattributes").write_text("* filter=late\n")
        (repo / "app.py").write_text("changed\n")
        second = await agent.call("checkpoint", summary="after", **args)
    assert first["git_ref"] and second["git_ref"]
    assert not proof.exists()
