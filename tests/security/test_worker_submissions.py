"""What an autopilot worker submits is data, and only the autopilot lands it
(docs/security.md, "Autopilot workers are tenants", 2, 6 and 7): the fake worker
(wvo_mcp/autopilot/fake.py), under a real `wvo-mcp autopilot --until-empty` in its real
sandbox, makes every status move that is not its own, submits work that only passes outside
its commit, and forges what the autopilot reads of its repository. Each test checks the
database's trail, the person's repository and the files around it afterwards."""

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.autopilot.conftest import autopilot, backlog, git, make_project
from tests.conftest import open_db
from tests.security.tenancy import digests, ours, person_repo, statuses, trail, worktree
from wvo_mcp.sandbox import bwrap

pytestmark = pytest.mark.skipif(
    not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}"
)


# -- 2. only the autopilot finishes -------------------------------------------------------


def fake_reports(project: dict[str, Path], task_id: str) -> list[dict[str, Any]]:
    """The moves fake's reports (one output line per run), from the task's run logs."""
    found = []
    for log in sorted((project["state"] / "runs" / task_id).glob("[0-9]*.log")):
        for line in log.read_text().splitlines():
            if line.startswith('{"type": "wvo_fake_report"'):
                found += json.loads(line)["moves"]
    return found


def test_a_worker_cannot_make_a_move_that_is_not_its_own(tmp_path: Path) -> None:
    """A worker with its lease token tries `done` while it holds its task, then, once it
    has submitted, every status there is (with its token and without) and the person's and
    reviewer's tools on it: all refused. The database shows only its claim and its
    submission; the autopilot alone finished each task, the reviewed one only after another
    agent approved it."""
    project = make_project(tmp_path)
    anyio.run(
        backlog,
        project,
        [
            {"id": "L", "title": "landed", "verify_command": ["test", "-s", "L.txt"],
             "metadata": {"fake": "moves"}},
            {"id": "V", "title": "reviewed", "verify_command": ["test", "-s", "V.txt"],
             "metadata": {"fake": "moves", "review": True}},
        ],
    )  # fmt: skip
    ran = autopilot(project, "--workers", "alpha:1,beta:1")
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert statuses(project) == {"L": "done", "V": "done"}, ran.stdout
    for task_id in ("L", "V"):
        tried = fake_reports(project, task_id)
        moves = {(t["move"], t["holder"]) for t in tried}
        assert len(moves) == len(tried) == 2 + 2 * 8 + 5, tried
        assert [t["move"] for t in tried if t["ok"]] == ["in_progress->needs_review"], tried
        assert all(t["said"].startswith("Error executing tool ") for t in tried if not t["ok"])
        events = trail(project, task_id)
        author = next(actor for actor, kind, _, _ in events if kind == "claimed")
        by_author = [(kind, to) for actor, kind, to, _ in events if actor == author]
        assert by_author == [("claimed", "in_progress"), ("status", "needs_review")], events
        done = [n for n, (_, kind, to, _) in enumerate(events) if to == "done"]
        assert len(done) == 1 and events[done[0]][0] == "autopilot", events
        assert ("autopilot", "verified") in [(a, k) for a, k, _, _ in events[: done[0]]]
        reviews = [(actor, reason) for actor, kind, _, reason in events[: done[0]]
                   if kind == "review"]  # fmt: skip
        if task_id == "V":  # the newest review before done approves, by another agent
            assert reviews and reviews[-1][1].startswith("approve"), events
            assert reviews[-1][0] not in (author, "autopilot"), events
        else:
            assert reviews == [], events
    with open_db(project["state"]) as db:
        attempts = dict(db.execute("SELECT id, attempts FROM tasks").fetchall())
    assert attempts == {"L": 0, "V": 0}
    assert ours(tmp_path) == []


# -- 3. unverified code never lands -------------------------------------------------------


def test_only_the_committed_work_is_verified_and_it_never_lands_failing(tmp_path: Path) -> None:
    """The worker commits result.txt "bad" (which fails the task's check) and keeps "good"
    everywhere but that commit: staged, in its working tree, on another branch, in a stash.
    The autopilot verifies exactly the submitted commit: it fails, the attempt is returned
    saying why, and the branch holds the failing commit, never verified. With one attempt
    the task is a dead letter; with two, the fixed commit is the one verified and landed."""
    project = make_project(tmp_path)
    repo = project["repo"]
    check = ["sh", "-c", "grep -q good result.txt"]
    anyio.run(
        backlog,
        project,
        [
            {"id": "U1", "title": "one try", "verify_command": check, "max_attempts": 1,
             "metadata": {"fake": "unverified"}},
            {"id": "U2", "title": "fixed on the retry", "verify_command": check,
             "max_attempts": 2,
             "metadata": {"fake": "unverified_once", "fake_files": {"result.txt": "good\n"}}},
        ],
    )  # fmt: skip
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    with open_db(project["state"]) as db:
        rows = {r[0]: tuple(r[1:]) for r in db.execute("SELECT id, status, attempts FROM tasks")}
    # A return is a new attempt, none spent; U1's second run finds its bad commit already
    # made (nothing to commit), fails, and that failure is its one attempt.
    assert rows == {"U1": ("failed", 1), "U2": ("done", 0)}, ran.stdout
    # U1: submitted once, returned naming the failed check, never verified nor done.
    u1 = trail(project, "U1")
    submitted = [reason.split()[0] for _, kind, _, reason in u1 if kind == "submitted"]
    returned = [reason for _, kind, _, reason in u1 if kind == "returned"]
    assert len(submitted) == 1 and len(returned) == 1, u1
    assert "grep -q good result.txt" in returned[0] and "exit" in returned[0], returned
    assert [e for e in u1 if e[1] == "verified" or e[2] == "done"] == []
    assert git(repo, "rev-parse", "wvo/U1").strip() == submitted[0]
    assert git(repo, "show", "wvo/U1:result.txt") == "bad\n"
    # The worker's repository still holds what would have passed (the attack was armed).
    kept = worktree(project, "U1")
    assert (kept / "result.txt").read_text() == "good\n"
    assert (kept / ".git" / "refs" / "heads" / "wvo" / "U1-good").is_file()
    # What was kept beside the commit never left the worker's repository.
    assert git(repo, "branch", "--list", "*good*") == ""
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", "refs/stash"], cwd=repo,
                          capture_output=True).returncode != 0  # fmt: skip
    # U2: the first submission failed as U1's did; the second, fixed, is what was verified.
    u2 = trail(project, "U2")
    kinds = [kind for _, kind, _, _ in u2 if kind in ("submitted", "returned", "verified")]
    assert kinds == ["submitted", "returned", "submitted", "verified"], u2
    first, second = [reason.split()[0] for _, kind, _, reason in u2 if kind == "submitted"]
    assert git(repo, "rev-parse", "wvo/U2").strip() == second
    assert git(repo, "rev-parse", f"{second}^").strip() == first
    assert git(repo, "show", f"{first}:result.txt") == "bad\n"
    assert git(repo, "show", f"{second}:result.txt") == "good\n"
    assert u2[-1][:3] == ("autopilot", "status", "done"), u2
    assert ours(tmp_path) == []


# -- 5. forged paths are data, never followed ----------------------------------------------


def private_repository(path: Path) -> tuple[str, str]:
    """Another private repository on the host: (a secret blob's id, its commit's id)."""
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "key.txt").write_text(f"the private key {uuid.uuid4().hex}\n")
    git(path, "add", "key.txt")
    git(path, "commit", "-qm", "private")
    return git(path, "rev-parse", "HEAD:key.txt").strip(), git(path, "rev-parse", "HEAD").strip()


def has_object(repo: Path, oid: str) -> bool:
    found = subprocess.run(["git", "cat-file", "-e", oid], cwd=repo, capture_output=True)
    return found.returncode == 0


def forgery(git_dir: Path, kind: str, task_id: str, secret: str) -> str:
    """What the worker left where it forged `kind`: a file's text or a link's target."""
    if kind == "gitdir":
        return git_dir.read_text()
    if kind == "alternates":
        return (git_dir / "objects" / "info" / "alternates").read_text()
    link = {
        "gitlink": git_dir,
        "object_link": git_dir / "objects" / secret[:2] / secret[2:],
        "objects_link": git_dir / "objects",
        "head_link": git_dir / "HEAD",
        "ref_link": git_dir / "refs" / "heads" / "wvo" / task_id,
    }[kind]
    return os.readlink(link)


STATE_FILES = {"orchestrator.db", "orchestrator.db-wal", "orchestrator.db-shm",
               "orchestrator.db.writers.lock", "orchestrator.db.servers.lock", "runs"}  # fmt: skip


def test_a_forged_repository_is_refused_and_the_next_attempt_starts_afresh(
    tmp_path: Path,
) -> None:
    """A worker commits, then forges what the autopilot reads of its repository: .git a
    file naming the state folder as its git directory, .git a link to the person's, its
    alternates pointing at another private repository (and HEAD at a commit naming a blob
    only that one holds), that blob's object file or its whole object store a link into it,
    HEAD a link to /etc/passwd, its branch a link to the private repository's. Each
    submission "could not be taken"; nothing of the state folder or the private repository
    changed or entered the person's repository; the next attempt ran in a fresh repository
    and landed."""
    project = make_project(tmp_path)
    repo, state = project["repo"], project["state"]
    private = tmp_path / "private"
    secret, private_commit = private_repository(private)
    objects = str(private / ".git" / "objects")
    no_head, unpacked = "HEAD names no commit", "could not pack"
    forged = {  # task: (what is forged, pointing where, why it is refused)
        "FG": ("gitdir", str(state), no_head),
        "FL": ("gitlink", str(repo / ".git"), no_head),
        "FA": ("alternates", objects, unpacked),
        "FO": ("object_link", objects, unpacked),
        "FS": ("objects_link", objects, "symbolic link"),
        "FH": ("head_link", "/etc/passwd", no_head),
        "FR": ("ref_link", str(private / ".git" / "refs" / "heads" / "main"), no_head),
    }
    anyio.run(
        backlog,
        project,
        [
            {"id": t, "title": f"forges {kind}", "metadata": {
                "fake": "forge_once", "fake_forge": kind, "fake_target": target,
                "fake_secret": secret}}
            for t, (kind, target, _) in forged.items()
        ],
    )  # fmt: skip
    base = git(repo, "rev-parse", "main").strip()
    before = digests(private) | person_repo(project)
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert statuses(project) == dict.fromkeys(forged, "done"), ran.stdout
    for task_id, (kind, target, why) in forged.items():
        events = trail(project, task_id)
        returned = [reason for _, k, _, reason in events if k == "returned"]
        assert len(returned) == 1, (kind, events)
        assert "its submission could not be taken: " in returned[0], (kind, returned)
        assert why in returned[0], (kind, returned)
        # The next attempt had a repository of its own, and landed only its own work.
        assert f"starts {task_id} (attempt 2, " in ran.stdout, ran.stdout
        assert f"in {worktree(project, task_id, 2)}\n" in ran.stdout, ran.stdout
        landed = f"wvo/{task_id}"
        assert git(repo, "rev-parse", f"{landed}^").strip() == base, kind
        assert "attempt 2" in git(repo, "show", f"{landed}:{task_id}.txt"), kind
        assert "stolen" not in git(repo, "ls-tree", "--name-only", landed), kind
        # The forged repository is still there as the worker left it: the forgery was real.
        left = forgery(worktree(project, task_id) / ".git", kind, task_id, secret)
        expected = {"gitdir": f"gitdir: {target}\n", "alternates": f"{target}\n",
                    "object_link": f"{target}/{secret[:2]}/{secret[2:]}"}  # fmt: skip
        assert left == expected.get(kind, target), kind
    # Nothing of the private repository entered the person's, nor changed.
    assert not has_object(repo, secret) and not has_object(repo, private_commit)
    passwd = git(repo, "hash-object", "/etc/passwd").strip()
    assert not has_object(repo, passwd)
    assert digests(private) | person_repo(project) == before
    # Git never used the state folder as a git directory: it holds only what it holds.
    assert {p.name for p in state.iterdir()} <= STATE_FILES, sorted(state.iterdir())
    assert {p.suffix for p in (state / "runs").rglob("*") if p.is_file()} == {".log"}
    assert ours(tmp_path) == []
