"""`wvo-mcp autopilot gc`: what it removes and what it keeps, on real repositories (workers'
repositories made by trees.clone_for_worker, commits taken and landed as the lander
does) and a real SQLite database written through the services."""

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import env, make_project
from tests.conftest import ROOT
from tests.gitwork import commit_file, git
from wvo_mcp import scratch_dirs
from wvo_mcp.autopilot import gc
from wvo_mcp.config import Settings
from wvo_mcp.git import Git, branch_name, intake, locate, read_head, stacking, trees
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.rules.transitions import Gate, Status
from wvo_mcp.sandbox import bwrap, workers
from wvo_mcp.services import landing_queue

pytestmark = pytest.mark.anyio
RUN = "autopilot-test"
OLD = 3600.0  # seconds: older than any grace


@dataclass
class World:
    orch: Orchestrator
    settings: Settings
    git: Git
    repo: Path
    worktrees: Path
    runs: Path
    scratch: Path
    outside: Path  # a folder nothing of gc's may touch
    project: dict[str, Path]

    async def task(self, task_id: str) -> None:
        await self.orch.create_tasks([TaskSpec(id=task_id, title=f"task {task_id}")], "planner")

    def worker(self, task_id: str, run: int = 1, *, commit: bool = True) -> Path:
        """A worker's repository for a run of the task, as the autopilot makes it (on
        wvo/<task> at main's tip, with main beside), with one commit of the worker's."""
        path = self.worktrees / branch_name(task_id).removeprefix("wvo/") / str(run)
        path.parent.mkdir(parents=True, exist_ok=True)
        tip = self.git.tip("main")
        branch = branch_name(task_id)
        trees.clone_for_worker(self.git, path, tip, branch, "w", "w@localhost", {"main": tip})
        if commit:
            commit_file(path, f"{task_id}.txt", f"work of {task_id}\n")
        logs = self.runs / branch.removeprefix("wvo/")
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{run}.log").write_text("what the worker said\n")
        return path

    async def submit(self, task_id: str, path: Path, target: str = "main") -> landing_queue.Entry:
        """The worker submits; the autopilot takes its commits onto wvo/<task> and into the
        queue onto `target` ('': --merge leave)."""
        claim = await self.orch.claim("w", task_id, gate=Gate.LAND)
        assert claim.claimed and claim.lease_token is not None, claim
        await self.orch.update_status(task_id, Status.NEEDS_REVIEW, "w", claim.lease_token)
        tip = read_head(path / ".git")
        assert tip is not None
        branch = branch_name(task_id)
        old = self.git.tip(branch) if self.git.has_branch(branch) else None
        if old != tip:
            objects = path / ".git" / "objects"
            intake.take_commits(self.git, objects, tip, f"refs/heads/{branch}", old)
        return await self.orch.take_submission(task_id, tip, self.git.tip("main"), target)

    async def land(self, item: landing_queue.Entry, strategy: str = "rebase") -> str:
        """The lander's steps: hold main, test, write the intent, move main, complete."""
        now = self.orch.clock()
        until = now + timedelta(seconds=60)
        write = self.orch.db.write
        fence = await write(partial(landing_queue.hold_target, target="main", run=RUN, until=until,
                                    now=now))  # fmt: skip
        assert fence is not None
        await write(
            partial(landing_queue.start, target="main", run=RUN, fence=fence, ids=[item.id])
        )
        old = self.git.tip("main")
        new = (stacking.rebase_onto(self.git, old, item.commit, "land") if strategy == "rebase"
               else stacking.merge_onto(self.git, old, item.commit, "land"))  # fmt: skip
        assert isinstance(new, str), new
        landing_id = await write(
            partial(
                landing_queue.intend, target="main", run=RUN, fence=fence, old=old, new=new,
                tree=self.git.tree_of(new), checks="none", ids=[item.id], now=now,
            )
        )  # fmt: skip
        assert self.git.move_branch("main", new, old)
        done = await write(partial(landing_queue.complete, settings=self.settings,
                                   landing_id=landing_id, now=now))  # fmt: skip
        assert done == [item.task_id]
        return new

    async def leave(self, item: landing_queue.Entry) -> None:
        """--merge leave: verified and done on its own branch; no target moves."""
        now = self.orch.clock()
        write = self.orch.db.write
        fence = await write(partial(landing_queue.hold_target, target="", run=RUN,
                                    until=now + timedelta(seconds=60), now=now))  # fmt: skip
        assert fence is not None
        await write(partial(landing_queue.start, target="", run=RUN, fence=fence, ids=[item.id]))
        landing_id = await write(
            partial(
                landing_queue.intend, target="", run=RUN, fence=fence, old="", new=item.commit,
                tree=self.git.tree_of(item.commit), checks="none", ids=[item.id], now=now,
            )
        )  # fmt: skip
        done = await write(partial(landing_queue.complete, settings=self.settings,
                                   landing_id=landing_id, now=now))  # fmt: skip
        assert done == [item.task_id]

    async def returned(self, item: landing_queue.Entry) -> None:
        """The lander tests the entry and gives it back to a worker (a conflict, say)."""
        now = self.orch.clock()
        write = self.orch.db.write
        fence = await write(partial(landing_queue.hold_target, target="main", run=RUN,
                                    until=now + timedelta(seconds=60), now=now))  # fmt: skip
        assert fence is not None
        await write(
            partial(landing_queue.start, target="main", run=RUN, fence=fence, ids=[item.id])
        )
        back = landing_queue.Return("returned: a conflict", "the hunks")
        sent = await write(
            partial(
                landing_queue.send_back, settings=self.settings, target="main", run=RUN,
                fence=fence, entry_id=item.id, back=back, hold=None, now=now,
            )
        )  # fmt: skip
        assert sent == "returned"

    def scratch_dir(self, kind: scratch_dirs.Kind, name: str) -> Path:
        """Where a run of this state folder makes a scratch folder of `kind` (not made)."""
        return self.scratch / f"{scratch_dirs.prefix(kind, self.settings.state_root)}{name}"

    def exists(self, what: str) -> bool:
        """A path, or a branch."""
        return os.path.lexists(what) if what.startswith("/") else self.git.has_branch(what)

    async def gc(self, *, dry_run: bool, onto: str | None = "main") -> dict[str, gc.Outcome]:
        where = gc.Where(worktrees=self.worktrees, onto=onto, scratch=self.scratch)
        found = await gc.collect(self.orch, self.settings, where, dry_run=dry_run)
        assert len({o.what for o in found}) == len(found), found
        return {o.what: o for o in found}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    project = make_project(tmp_path)
    settings = Settings.from_env(env(project))
    orch = await Orchestrator.open(settings)
    repo = locate(project["repo"])
    assert repo is not None
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("a person's file\n")
    try:
        yield World(
            orch,
            settings,
            Git(repo, repo.top, exclude=[settings.state_root]),
            project["repo"],
            tmp_path / "repo.wvo-worktrees",
            settings.state_root / "runs",
            scratch,
            outside,
            project,
        )
    finally:
        await orch.close()


def removed(found: dict[str, gc.Outcome]) -> set[str]:
    return {what for what, o in found.items() if o.verdict == "remove"}


def kept(found: dict[str, gc.Outcome], what: object) -> str:
    """Why `what` stays (the test fails if gc would remove it)."""
    outcome = found[str(what)]
    assert outcome.verdict == "keep", outcome
    return outcome.reason


def make_old(path: Path) -> None:
    os.utime(path, (time.time() - OLD, time.time() - OLD))


# -- landed work goes; unlanded work stays -----------------------------------------------


async def test_a_landed_tasks_repository_branch_and_logs_are_removed(world: World) -> None:
    await world.task("A")
    repo = world.worker("A")
    item = await world.submit("A", repo)
    (world.repo / "person.txt").write_text("a person's work meanwhile\n")
    git(world.repo, "add", "person.txt")
    git(world.repo, "commit", "-qm", "a person's commit")
    await world.land(item)
    # Rebased: its own commit is not on main; the landed entry's commit records it, so it
    # goes even when gc is not told the target.
    tip = world.git.tip("wvo/A")
    assert not world.git.contains(tip, world.git.tip("main"))
    found = await world.gc(dry_run=False, onto=None)
    assert {str(repo), "wvo/A", str(world.runs / "A")} <= removed(found)
    assert "landed onto main (queue entry" in found[str(repo)].reason
    assert not repo.exists() and not (world.worktrees / "A").exists()
    assert not world.git.has_branch("wvo/A")
    assert not (world.runs / "A").exists()
    assert world.git.tip("main") != tip  # main itself untouched by gc


async def test_a_merged_tasks_work_is_found_on_the_target(world: World) -> None:
    await world.task("M")
    repo = world.worker("M")
    await world.land(await world.submit("M", repo), strategy="merge")
    found = await world.gc(dry_run=False)
    assert {str(repo), "wvo/M"} <= removed(found)
    assert found["wvo/M"].reason.endswith("all its commits are in main")


async def test_merge_leave_keeps_the_branch_that_holds_the_work(world: World) -> None:
    """Done on its own branch: the branch is the result, so it stays for a person; the
    worker's repository, whose commits it holds, goes."""
    await world.task("V")
    repo = world.worker("V")
    await world.leave(await world.submit("V", repo, target=""))
    assert (await world.orch.get_task("V")).status == Status.DONE
    found = await world.gc(dry_run=False)
    assert "wvo/V, where it was verified and done" in found[str(repo)].reason
    assert str(repo) in removed(found) and not repo.exists()
    assert "verified and done on this branch (--merge leave)" in kept(found, "wvo/V")
    assert world.git.has_branch("wvo/V")


async def test_unlanded_commits_are_kept(world: World) -> None:
    await world.task("B")
    repo = world.worker("B")
    await world.returned(await world.submit("B", repo))  # taken, then sent back: not landed
    await world.task("N")
    never = world.worker("N")  # committed, never submitted: its commit is only there
    found = await world.gc(dry_run=False)
    assert "its commits are not all in main" in kept(found, repo)
    assert "its commits are not all in main" in kept(found, "wvo/B")
    assert "work never taken" in kept(found, never)
    assert kept(found, world.runs / "N").startswith("1 of task N's repositories stay")
    assert repo.exists() and never.exists() and world.git.has_branch("wvo/B")


async def test_a_ref_beside_head_keeps_a_repository(world: World) -> None:
    """A stash (or any branch) of the worker's holds work HEAD does not."""
    await world.task("S")
    repo = world.worker("S")
    (repo / "S.txt").write_text("half done\n")
    git(repo, "stash")
    await world.land(await world.submit("S", repo))
    found = await world.gc(dry_run=False)
    assert kept(found, repo).startswith("refs/stash ")
    assert "wvo/S" in removed(found)
    assert "repositories stay" in kept(found, world.runs / "S")


async def test_files_nobody_committed_keep_a_repository(world: World) -> None:
    await world.task("C")
    repo = world.worker("C")
    await world.land(await world.submit("C", repo))
    (repo / "notes.txt").write_text("not committed\n")
    found = await world.gc(dry_run=False)
    assert "files nobody committed: notes.txt" in kept(found, repo)
    assert (repo / "notes.txt").exists()
    assert "wvo/C" in removed(found)  # its commits are on main all the same


def _ignore_caches(world: World) -> None:
    """The project's committed .gitignore names its caches."""
    (world.repo / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n*.log\n")
    git(world.repo, "add", ".gitignore")
    git(world.repo, "commit", "-qm", "ignore caches")


async def test_files_the_committed_gitignore_ignores_do_not_keep_a_repository(
    world: World,
) -> None:
    _ignore_caches(world)
    await world.task("I")
    repo = world.worker("I")
    await world.land(await world.submit("I", repo))
    # What running the tests leaves, at the top and deep in a folder the commit has.
    for cache in (repo / "__pycache__", repo / "src" / "pkg" / "__pycache__"):
        cache.mkdir(parents=True)
        (cache / "mod.cpython-311.pyc").write_bytes(b"\x00compiled")
    (repo / ".pytest_cache" / "v" / "cache").mkdir(parents=True)
    (repo / ".pytest_cache" / "v" / "cache" / "nodeids").write_text("[]\n")
    (repo / ".pytest_cache" / ".gitignore").write_text("*\n")
    (repo / "src" / "run.log").write_text("ran\n")
    found = await world.gc(dry_run=False)
    assert str(repo) in removed(found) and not repo.exists()


async def test_only_ignore_rules_the_project_committed_count(world: World) -> None:
    """A worker cannot pass its work off as ignored: rules it slips in beside its work (its
    info/exclude, a .gitignore it did not commit, an edit of the committed one) are not
    read, so its files keep the repository."""
    _ignore_caches(world)
    await world.task("J")
    repo = world.worker("J")
    await world.land(await world.submit("J", repo))
    (repo / "notes.txt").write_text("work\n")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text("notes.txt\nsecret.txt\n")
    (repo / "drafts").mkdir()
    (repo / "drafts" / ".gitignore").write_text("*\n")
    (repo / "drafts" / "plan.md").write_text("work\n")
    with (repo / ".gitignore").open("a") as rules:
        rules.write("secret.txt\n")
    (repo / "secret.txt").write_text("work\n")
    (repo / "__pycache__").mkdir()
    (repo / "__pycache__" / "x.pyc").write_bytes(b"\x00")
    found = await world.gc(dry_run=False)
    reason = kept(found, repo)
    assert reason.startswith("it has files nobody committed: ")
    for name in (".gitignore", "notes.txt", "drafts/.gitignore", "drafts/plan.md", "secret.txt"):
        assert name in reason, reason
    assert "__pycache__" not in reason and repo.exists()


# -- what protects ---------------------------------------------------------------------


async def test_a_live_lease_protects_everything_of_its_task(world: World) -> None:
    await world.task("D")
    claim = await world.orch.claim("w", "D", gate=Gate.LAND)
    assert claim.claimed
    repo = world.worker("D", commit=False)  # HEAD on main: nothing of it would be lost
    world.git.set_ref("refs/heads/wvo/D", world.git.tip("main"))
    found = await world.gc(dry_run=False)
    for what in (repo, "wvo/D", world.runs / "D"):
        assert kept(found, what) == "task D is held by w (a live lease)"
    assert repo.exists() and world.git.has_branch("wvo/D")


async def test_an_open_queue_entry_protects_everything_of_its_task(world: World) -> None:
    await world.task("E")
    repo = world.worker("E", commit=False)
    item = await world.submit("E", repo)
    world.git.set_ref("refs/heads/wvo/E", item.commit)
    found = await world.gc(dry_run=False)
    for what in (repo, "wvo/E", world.runs / "E"):
        assert kept(found, what) == "task E's submission is in the merge queue (queued)"
    assert repo.exists() and world.git.has_branch("wvo/E")


async def test_a_task_cancelled_by_a_person_goes_with_its_unlanded_work(world: World) -> None:
    await world.task("F")
    repo = world.worker("F")
    await world.returned(await world.submit("F", repo))
    await world.orch.update_status("F", Status.CANCELLED, "person:ann", by_person=True)
    found = await world.gc(dry_run=False)
    for what in (str(repo), "wvo/F", str(world.runs / "F")):
        assert found[what].verdict == "remove"
        assert found[what].reason == "task F was cancelled by person:ann"
    assert not repo.exists() and not world.git.has_branch("wvo/F")


# -- a dry run, and what gc never follows -----------------------------------------------


async def test_a_dry_run_lists_exactly_what_the_real_run_removes(world: World) -> None:
    for task_id in "ABCD":
        await world.task(task_id)
    landed = world.worker("A")
    await world.land(await world.submit("A", landed))
    unlanded = world.worker("B")
    await world.returned(await world.submit("B", unlanded))
    dirty = world.worker("C")
    await world.land(await world.submit("C", dirty))
    (dirty / "x").write_text("x\n")
    world.worker("D")
    left = world.scratch_dir("run", "left")
    (left / "home").mkdir(parents=True)
    make_old(left)
    listed = sorted(os.listdir(world.worktrees))
    dry = await world.gc(dry_run=True)
    assert {str(landed), "wvo/A", "wvo/C", str(world.runs / "A"), str(left)} == removed(dry)
    assert landed.exists() and world.git.has_branch("wvo/A") and left.exists()
    assert sorted(os.listdir(world.worktrees)) == listed
    real = await world.gc(dry_run=False)
    assert real == dry
    for what in real:
        assert world.exists(what) == (what not in removed(real)), what


async def test_links_planted_in_the_worktrees_are_never_followed(world: World) -> None:
    await world.task("A")
    repo = world.worker("A")
    await world.land(await world.submit("A", repo))
    # A landed task's folder, a run's place and the top all lead outside.
    (world.worktrees / "A" / "2").symlink_to(world.outside)
    (world.worktrees / "G").symlink_to(world.outside)
    (world.runs / "G").symlink_to(world.outside)
    world.scratch_dir("run", "link").symlink_to(world.outside)
    found = await world.gc(dry_run=False)
    for link in (world.worktrees / "A" / "2", world.worktrees / "G", world.runs / "G",
                 world.scratch_dir("run", "link")):  # fmt: skip
        assert "symbolic link" in kept(found, link) and link.is_symlink()
    assert str(repo) in removed(found)
    assert (world.outside / "precious.txt").read_text() == "a person's file\n"


async def test_a_link_inside_a_workers_repository_is_removed_not_followed(world: World) -> None:
    await world.task("L")
    repo = world.worker("L")
    os.symlink(world.outside, repo / "escape")
    git(repo, "add", "escape")
    git(repo, "commit", "-qm", "a link")
    await world.land(await world.submit("L", repo))
    found = await world.gc(dry_run=False)
    assert str(repo) in removed(found) and not repo.exists()
    assert (world.outside / "precious.txt").exists()


# -- scratch folders -------------------------------------------------------------------


async def test_scratch_folders_go_once_no_live_process_uses_them(world: World) -> None:
    old, young, busy = (world.scratch_dir("verify", "old"), world.scratch_dir("review", "new"),
                        world.scratch_dir("run", "busy"))  # fmt: skip
    for path in (old, young, busy, world.scratch / "other-old"):
        path.mkdir()
    for path in (old, busy, world.scratch / "other-old"):
        make_old(path)
    user = _start(["sleep", "60"], cwd=busy)
    try:
        found = await world.gc(dry_run=False)
        assert f"{user.pid} (sleep)" in kept(found, busy)
        assert "a run may be setting it up" in kept(found, young)
    finally:
        user.kill()
        user.wait()
    assert str(old) in removed(found) and not old.exists()
    assert str(world.scratch / "other-old") not in found  # not a run's: not looked at
    found = await world.gc(dry_run=False)
    assert str(busy) in removed(found) and not busy.exists()


async def test_gc_leaves_another_state_folders_scratch_folders_alone(
    world: World, tmp_path: Path
) -> None:
    """Two projects (two state folders) share the temporary folder: each gc removes its own
    runs' leftovers only, and never one no state folder owns (an older wvo-mcp's)."""
    (tmp_path / "second").mkdir()
    second = Settings.from_env(env(make_project(tmp_path / "second")))
    mine = [world.scratch_dir(kind, "left") for kind in scratch_dirs.KINDS]
    theirs = [world.scratch / f"{scratch_dirs.prefix(kind, second.state_root)}left"
              for kind in scratch_dirs.KINDS]  # fmt: skip
    nobodys = world.scratch / "wvo-run-k2j3h4l5"
    for path in (*mine, *theirs, nobodys):
        path.mkdir()
        make_old(path)
    found = await world.gc(dry_run=False)
    assert {str(p) for p in mine} <= removed(found) and not any(p.exists() for p in mine)
    assert not {str(p) for p in (*theirs, nobodys)} & set(found)
    assert all(p.exists() for p in (*theirs, nobodys))
    again = world.scratch_dir("verify", "again")
    again.mkdir()
    make_old(again)
    other = await Orchestrator.open(second)
    try:
        where = gc.Where(onto=None, scratch=world.scratch)
        theirs_gone = await gc.collect(other, second, where, dry_run=False)
    finally:
        await other.close()
    assert {o.what for o in theirs_gone if o.verdict == "remove"} == {str(p) for p in theirs}
    assert not any(p.exists() for p in theirs)
    assert again.exists() and nobodys.exists()


async def test_a_folder_mounted_in_a_sandbox_is_in_use(world: World) -> None:
    """The sandbox's own processes see it elsewhere, and bwrap's arguments came from a
    pipe: only the sandbox's mounts say it is used."""
    why = workers.check()
    binary = bwrap.find()
    if why is not None or binary is None:
        pytest.skip(f"no bwrap sandbox here: {why}")
    home = world.scratch_dir("run", "mounted")
    home.mkdir()
    make_old(home)
    args = ["--ro-bind", "/", "/", "--tmpfs", "/tmp", "--bind", str(home), "/tmp/home",
            "--chdir", "/", "--die-with-parent", "--unshare-user", "--unshare-pid"]  # fmt: skip
    sandbox = _sandboxed(binary, args)
    try:
        with anyio.fail_after(10):  # the sandbox starts; no event says when: poll
            while home.name not in _mounts_of_children(sandbox.pid):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        found = await world.gc(dry_run=False)
        assert "in use by a live process" in kept(found, home) and home.exists()
    finally:
        sandbox.kill()
        sandbox.wait()


def _start(argv: list[str], cwd: Path) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(argv, cwd=cwd)


def _sandboxed(binary: str, args: list[str]) -> "subprocess.Popen[bytes]":
    """`sleep 60` in bwrap, its arguments passed through a pipe (not on its command line)."""
    read, write = os.pipe()
    os.write(write, b"\0".join(a.encode() for a in args) + b"\0")
    os.close(write)
    try:
        return subprocess.Popen(
            [binary, "--args", str(read), "sleep", "60"], pass_fds=(read,), cwd=ROOT
        )
    finally:
        os.close(read)


def _mounts_of_children(pid: int) -> str:
    text = ""
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            text += Path(f"/proc/{child}/mountinfo").read_text()
        except OSError:
            continue
    return text


# -- the command line ------------------------------------------------------------------


def _cli(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "gc", *args],
        cwd=ROOT,
        env=env(world.project) | {"TMPDIR": str(world.scratch)},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_cli_lists_then_removes_the_same_things(world: World) -> None:
    await world.task("A")
    landed = world.worker("A")
    await world.land(await world.submit("A", landed))
    await world.task("B")
    unlanded = world.worker("B")
    await world.returned(await world.submit("B", unlanded))

    dry = _cli(world, "--dry-run", "--onto", "main")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert f"remove {landed}: HEAD " in dry.stdout
    assert any(line.startswith(f"keep {unlanded}: HEAD ") for line in lines), lines
    assert "remove wvo/A: wvo/A " in dry.stdout and "keep wvo/B: wvo/B " in dry.stdout
    assert lines[-1] == "gc: would remove 3, kept 3"  # A's repo, branch, logs; B's
    assert landed.exists() and world.git.has_branch("wvo/A")

    real = _cli(world, "--onto", "main")
    assert real.returncode == 0, real.stderr
    assert real.stdout.splitlines()[:-1] == lines[:-1]
    assert real.stdout.splitlines()[-1] == "gc: removed 3, kept 3"
    assert not landed.exists() and unlanded.exists()
    assert not world.git.has_branch("wvo/A") and world.git.has_branch("wvo/B")

    refused = _cli(world, "--onto", "nowhere")
    assert refused.returncode == 2
    assert "--onto 'nowhere': no such branch" in refused.stderr and not refused.stdout


async def test_a_link_among_a_workers_refs_keeps_its_repository(world: World) -> None:
    """Its refs are read as files, never through a link: one planted there keeps the
    repository for a person, and what it points at is untouched."""
    await world.task("R")
    repo = world.worker("R")
    await world.land(await world.submit("R", repo))
    os.symlink(world.outside / "precious.txt", repo / ".git" / "refs" / "heads" / "planted")
    found = await world.gc(dry_run=False)
    assert "its refs cannot be read as data" in kept(found, repo) and repo.exists()
    assert (world.outside / "precious.txt").read_text() == "a person's file\n"


async def test_packed_refs_are_read_too(world: World) -> None:
    await world.task("P")
    repo = world.worker("P")
    git(repo, "branch", "side")
    commit_file(repo, "side.txt", "on the side only\n")
    git(repo, "branch", "-f", "side")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "side").exists()
    await world.land(await world.submit("P", repo))
    found = await world.gc(dry_run=False)
    assert kept(found, repo).startswith("side ")  # its commit is in no landed submission
    git(repo, "branch", "-D", "side")  # the worker's own branch gone: nothing else is lost
    found = await world.gc(dry_run=False)
    assert str(repo) in removed(found) and not repo.exists()
