"""Landing onto the team's git remote (`--onto origin/main`), end to end: real git servers on
127.0.0.1 (git daemon, smart HTTP behind lighttpd with authentication, sshd with a key),
fake workers in their sandboxes, and "hosts" made of separate clones, state folders, homes
and temp folders sharing one PostgreSQL.

Every verdict is read from the remote's own history: each task lands exactly once, what a
person pushed stays in it, and nothing is left under refs/wvo/ once the work landed."""

import itertools
import json
import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest

from tests.autopilot.conftest import RUN_TIMEOUT_S, backlog, env, git, make_project, short_temp
from tests.autopilot.test_merge_queue import CHECK_SH as CLAIMS_SH
from tests.autopilot.test_merge_queue import _lines_then_kill, fleet
from tests.conftest import ROOT, open_db
from tests.gitservers import Daemon, Server, SmartHttp, Sshd, bare
from wvo_mcp.sandbox import bwrap

pytestmark = pytest.mark.skipif(
    not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}"
)
CHECK = "sh check.sh"
CHECK_SH = """#!/bin/sh
# Waits while the test holds the gate (a read-only toolchain folder it writes into).
n=0
while [ -e gate/hold ] && [ ! -e gate/go ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done
echo "checked"
"""


@dataclass
class Host:
    """One machine's autopilot: its clone of the remote, state folder, home and temp folder."""

    project: dict[str, Path]
    extra: dict[str, str]

    @property
    def repo(self) -> Path:
        return self.project["repo"]

    @property
    def env(self) -> dict[str, str]:
        return env(self.project) | self.extra

    def args(self, *more: str) -> list[str]:
        return [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--merge", "merge",
                "--onto", "origin/main", "--check", CHECK, "--skip-preflight", *more]  # fmt: skip

    def run(self, *more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.args("--until-empty", *more), cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=RUN_TIMEOUT_S)  # fmt: skip

    def start(self, *more: str) -> "subprocess.Popen[str]":
        return subprocess.Popen(
            self.args(*more), cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip


def project_with_check(folder: Path, check: str = CHECK_SH) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    project = make_project(folder)
    repo = project["repo"]
    (repo / "check.sh").write_text(check)
    (repo / ".gitignore").write_text("gate/\n")
    (repo / "gate").mkdir()
    git(repo, "add", "check.sh", ".gitignore")
    git(repo, "commit", "-qm", "the project's check")
    providers = project["providers"]
    providers.write_text(providers.read_text() + "toolchain:\n  folders: [gate]\n")
    return project


def make_host(
    tmp_path: Path, name: str, served: Path, url: str, check: str = CHECK_SH, **extra: str
) -> Host:
    """A host with its own clone of the remote (the first one's repository seeds it)."""
    folder = tmp_path / name
    project = project_with_check(folder, check)
    shutil.rmtree(project["repo"])
    git(folder, "clone", "-q", str(served), "repo")
    (project["repo"] / "gate").mkdir()
    git(project["repo"], "remote", "set-url", "origin", url)
    # Its own temp folder, short: a run's sockets are made there (108 bytes at most).
    return Host(project, {"HOME": str(folder), "TMPDIR": str(short_temp(name)), **extra})


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """The team's remote, as a bare repository with the project on main."""
    seed = project_with_check(tmp_path / "seed")
    return bare(tmp_path / "served", seed["repo"])


@pytest.fixture
def daemon(tmp_path: Path, seeded: Path) -> Iterator[Server]:
    with Daemon(seeded.parent) as server:
        yield server


def remote_log(served: Path) -> list[str]:
    return git(served, "log", "--first-parent", "--format=%s", "main").splitlines()


def assert_landed_once(served: Path, task_ids: list[str]) -> None:
    subjects = remote_log(served)
    for task_id in task_ids:
        assert sum(s.startswith(f"Land {task_id} ") for s in subjects) == 1, (task_id, subjects)
    assert git(served, "for-each-ref", "refs/wvo/") == "", "submission refs left on the remote"


def two_hosts(tmp_path: Path, served: Path, server: Server, url: str) -> tuple[Host, Host]:
    """Two hosts on one database (`url`) and one remote."""
    a, b = (make_host(tmp_path, name, served, server.url("project.git"), WVO_DATABASE_URL=url)
            for name in ("a", "b"))  # fmt: skip
    return a, b


def tasks(*ids: str, **metadata: Any) -> list[dict[str, Any]]:
    return [{"id": i, "title": f"task {i}", "metadata": dict(metadata)} for i in ids]


def statuses(host: Host) -> dict[str, str]:
    url = host.extra.get("WVO_DATABASE_URL")
    if url is None:
        with open_db(host.project["state"]) as db:
            return dict(db.execute("SELECT id, status FROM tasks").fetchall())
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT id, status FROM tasks").fetchall())


class Output:
    """An autopilot's output, read as it comes."""

    def __init__(self, process: "subprocess.Popen[str]") -> None:
        self.process = process
        self.seen: list[str] = []

    def until(self, text: str) -> None:
        out = self.process.stdout
        assert out is not None
        deadline = time.monotonic() + RUN_TIMEOUT_S
        if any(text in line for line in self.seen):
            return
        with selectors.DefaultSelector() as selector:
            selector.register(out, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not selector.select(timeout=deadline - time.monotonic()):
                    break
                line = out.readline()
                assert line, "".join(self.seen[-40:])
                self.seen.append(line)
                if text in line:
                    return
        pytest.fail(f"never said {text!r}: {''.join(self.seen[-40:])}")

    def finish(self) -> str:
        rest, _ = self.process.communicate(timeout=RUN_TIMEOUT_S)
        return "".join(self.seen) + rest

    def __enter__(self) -> "Output":
        return self

    def __exit__(self, *exc: object) -> None:
        """However the test went, the autopilot ends: killed if it still runs, reaped."""
        if self.process.poll() is None:
            self.process.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process.wait()


def poll(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not done():  # these states are rows and files, with no event to wait on
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


# -- one autopilot ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["daemon", "ssh"])
def test_one_autopilot_lands_each_task_once_onto_the_remote(
    tmp_path: Path, seeded: Path, kind: str
) -> None:
    with (Daemon if kind == "daemon" else Sshd)(seeded.parent) as server:
        pilot = make_host(tmp_path, "a", seeded, server.url("project.git"))
        if isinstance(server, Sshd):  # the person's key, in their own git config
            (pilot.repo.parent / ".gitconfig").write_text(
                f"[core]\n\tsshCommand = {server.ssh_command}\n"
            )
        anyio.run(backlog, pilot.project, tasks("R1", "R2", "R3"))
        done = pilot.run()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "by compare-and-swap pushes" in done.stdout
    assert statuses(pilot) == {"R1": "done", "R2": "done", "R3": "done"}, done.stdout[-3000:]
    assert_landed_once(seeded, ["R1", "R2", "R3"])
    for task_id in ("R1", "R2", "R3"):
        assert git(seeded, "show", f"main:{task_id}.txt").startswith(f"{task_id} by ")
    # The person's local main was never touched; their tracking ref follows the remote.
    assert git(pilot.repo, "rev-parse", "origin/main") == git(seeded, "rev-parse", "main")
    assert len(git(pilot.repo, "log", "--format=%H", "main").split()) == 2


def test_a_dry_run_says_where_work_lands_and_no_worker_reaches_it(
    tmp_path: Path, seeded: Path, daemon: Server
) -> None:
    pilot = make_host(tmp_path, "a", seeded, daemon.url("project.git"))
    ran = subprocess.run(pilot.args("--dry-run"), cwd=ROOT, env=pilot.env, capture_output=True,
                         text=True, timeout=RUN_TIMEOUT_S)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    first, *workers = ran.stdout.splitlines()
    key = daemon.url("project.git").removesuffix(".git") + "#main"
    assert first == (
        f"finished work lands on origin/main ({key}), pushed by the autopilot's own git with "
        "your credentials; workers never reach it"
    ), first
    assert workers and not any(str(daemon.port) in line for line in workers), workers


def test_the_remote_killed_mid_run_holds_the_queue_and_it_resumes_alone(
    tmp_path: Path, seeded: Path, daemon: Server
) -> None:
    pilot = make_host(tmp_path, "a", seeded, daemon.url("project.git"))
    anyio.run(backlog, pilot.project, tasks("K1", "K2", fake_wait="go"))
    with Output(pilot.start("--until-empty")) as out:
        worktrees = pilot.repo.with_name("repo.wvo-worktrees")
        poll("both workers wait", lambda: len(list(worktrees.glob("*/*/go.waiting"))) == 2)
        daemon.stop()
        for said in worktrees.glob("*/*/go.waiting"):
            said.with_name("go").write_text("")
        out.until("the remote holds the queue")
        # The submissions wait for the remote: none is returned, charged or dropped.
        assert statuses(pilot) == {"K1": "needs_review", "K2": "needs_review"}
        daemon.start()
        out.until("answers again")
        said = out.finish()
    assert out.process.returncode == 0, said[-3000:]
    assert said.count("the remote holds the queue") == 1, said  # one clear message
    assert statuses(pilot) == {"K1": "done", "K2": "done"}
    assert_landed_once(seeded, ["K1", "K2"])
    with open_db(pilot.project["state"]) as db:
        returned = db.execute("SELECT count(*) FROM task_events WHERE kind = 'returned'")
        assert returned.fetchone()[0] == 0


def test_a_persons_push_mid_queue_stays_and_the_batch_is_stacked_again(
    tmp_path: Path, seeded: Path, daemon: Server
) -> None:
    pilot = make_host(tmp_path, "a", seeded, daemon.url("project.git"))
    (pilot.repo / "gate" / "hold").write_text("")  # every check waits for the gate
    anyio.run(backlog, pilot.project, tasks("M1", "M2"))
    with Output(pilot.start("--until-empty")) as out:

        def testing() -> bool:
            with open_db(pilot.project["state"]) as db:
                found = db.execute("SELECT count(*) FROM landing_entries WHERE state = 'testing'")
                return bool(found.fetchone()[0])

        poll("a batch is being verified", testing)
        person = tmp_path / "person"
        git(tmp_path, "clone", "-q", str(seeded), str(person))
        (person / "notes.txt").write_text("the person's notes\n")
        git(person, "add", "notes.txt")
        git(person, "commit", "-qm", "a person's commit")
        git(person, "push", "-q", "origin", "main")
        mine = git(person, "rev-parse", "HEAD").strip()
        (pilot.repo / "gate" / "go").write_text("")
        said = out.finish()
    assert out.process.returncode == 0, said[-3000:]
    assert "origin/main moved while its batch was verified: stacking again" in said, said
    assert statuses(pilot) == {"M1": "done", "M2": "done"}
    assert git(seeded, "merge-base", "--is-ancestor", mine, "main") == ""
    assert git(seeded, "show", "main:notes.txt") == "the person's notes\n"
    assert_landed_once(seeded, ["M1", "M2"])


def test_leave_mode_pushes_each_verified_branch(
    tmp_path: Path, seeded: Path, daemon: Server
) -> None:
    pilot = make_host(tmp_path, "a", seeded, daemon.url("project.git"))
    anyio.run(backlog, pilot.project, tasks("L1", "L2"))
    done = subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty", "--push",
         "origin", "--check", CHECK, "--skip-preflight"],
        cwd=ROOT, env=pilot.env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert statuses(pilot) == {"L1": "done", "L2": "done"}
    for task_id in ("L1", "L2"):
        pushed = git(seeded, "rev-parse", f"wvo/{task_id}").strip()
        assert pushed == git(pilot.repo, "rev-parse", f"wvo/{task_id}").strip()
        assert git(seeded, "show", f"wvo/{task_id}:{task_id}.txt").startswith(f"{task_id} by ")
    assert len(remote_log(seeded)) == 2  # main is the person's: nothing landed on it
    assert git(seeded, "for-each-ref", "refs/wvo/") == ""


# -- the person's credentials, and a worker hunting for them ---------------------------------


def test_a_hostile_worker_finds_no_credential_and_pushes_nothing(
    tmp_path: Path, seeded: Path
) -> None:
    with SmartHttp(seeded.parent) as server:
        assert isinstance(server, SmartHttp)
        url = server.url("project.git")
        pilot = make_host(tmp_path, "a", seeded, url)
        home = pilot.repo.parent
        store = home / ".git-credentials"
        store.write_text(f"http://{server.user}:{server.password}@127.0.0.1:{server.port}\n")
        (home / ".gitconfig").write_text("[credential]\n\thelper = store\n")
        spec = {
            "read": [str(store), str(home / ".gitconfig"), str(pilot.repo / ".git" / "config")],
            "secrets": [server.password],
            "push": [url, str(seeded)],
        }  # fmt: skip
        anyio.run(backlog, pilot.project, [
            {"id": "H", "title": "hunts", "metadata": {"fake": "probe", "fake_probe": spec}},
            {"id": "N", "title": "a neighbour"},
        ])  # fmt: skip
        done = pilot.run()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open_db(pilot.project["state"]) as db:
        summaries = [r[0] for r in db.execute(
            "SELECT summary FROM checkpoints WHERE task_id = 'H' ORDER BY seq")]  # fmt: skip
    found = [o for s in summaries if s.startswith("probe ") for o in json.loads(s[6:])]
    tried = {o["probe"] for o in found}
    assert {"read", "secret", "push"} <= tried, found
    assert [o for o in found if o["ok"]] == [], found
    # The remote has only what the trusted git pushed: main, with both tasks landed.
    heads = git(seeded, "for-each-ref", "--format=%(refname)").split()
    assert heads == ["refs/heads/main"], heads
    assert_landed_once(seeded, ["H", "N"])
    runs = pilot.project["state"] / "runs"
    for log in runs.rglob("*.log"):
        assert server.password not in log.read_text(errors="replace"), log


def test_refused_credentials_hold_the_queue_until_the_person_fixes_them(
    tmp_path: Path, seeded: Path
) -> None:
    with SmartHttp(seeded.parent) as server:
        assert isinstance(server, SmartHttp)
        pilot = make_host(tmp_path, "a", seeded, server.url("project.git"))
        home = pilot.repo.parent
        store = home / ".git-credentials"
        store.write_text(f"http://{server.user}:an-old-token@127.0.0.1:{server.port}\n")
        (home / ".gitconfig").write_text("[credential]\n\thelper = store\n")
        anyio.run(backlog, pilot.project, tasks("A1"))
        with Output(pilot.start("--until-empty")) as out:
            out.until("the remote holds the queue")
            assert "refused the credentials git used" in out.seen[-1], out.seen[-1]
            assert "an-old-token" not in "".join(out.seen)
            store.write_text(f"http://{server.user}:{server.password}@127.0.0.1:{server.port}\n")
            out.until("answers again")
            said = out.finish()
    assert out.process.returncode == 0, said[-3000:]
    assert said.count("the remote holds the queue") == 1, said
    assert statuses(pilot) == {"A1": "done"}
    assert_landed_once(seeded, ["A1"])


# -- several hosts ----------------------------------------------------------------------------


@pytest.mark.postgres
def test_two_hosts_share_one_queue_and_land_each_task_once(
    tmp_path: Path, seeded: Path, daemon: Server, pg_migrated: Callable[[str], str]
) -> None:
    url = pg_migrated("hosts")
    a, b = two_hosts(tmp_path, seeded, daemon, url)
    # Enough work that the second host, however late it starts, finds some left.
    ids = [f"H{n:02}" for n in range(16)]
    anyio.run(partial(backlog, a.project, tasks(*ids), WVO_DATABASE_URL=url))
    with Output(a.start("--until-empty")) as one, Output(b.start("--until-empty")) as two:
        said = [one.finish(), two.finish()]
    assert [one.process.returncode, two.process.returncode] == [0, 0], said
    assert statuses(a) == dict.fromkeys(ids, "done"), said
    assert_landed_once(seeded, ids)
    # Both worked, and each task ran where it was claimed: no task ran twice.
    with psycopg.connect(url) as conn:
        claims = conn.execute(
            "SELECT task_id, count(*) FROM task_events WHERE kind = 'claimed' GROUP BY task_id"
        ).fetchall()
    assert all(n == 1 for _, n in claims), claims
    assert all("starts H" in s for s in said), said


@pytest.mark.postgres
def test_the_lease_holder_killed_the_other_host_lands_its_submissions(
    tmp_path: Path, seeded: Path, daemon: Server, pg_migrated: Callable[[str], str]
) -> None:
    url = pg_migrated("takeover")
    a, b = two_hosts(tmp_path, seeded, daemon, url)
    (a.repo / "gate" / "hold").write_text("")  # A's checks wait: it holds the lease
    anyio.run(partial(backlog, a.project, tasks("S1", "S2"), WVO_DATABASE_URL=url))
    with Output(a.start("--until-empty")) as first:

        def waiting() -> bool:
            with psycopg.connect(url) as conn:
                rows = conn.execute(
                    "SELECT state FROM landing_entries WHERE state IN ('testing', 'queued')"
                ).fetchall()
                return len(rows) == 2 and ("testing",) in rows

        poll("both submissions queued, a batch of A's verified", waiting)
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait()
    assert git(seeded, "for-each-ref", "--format=%(refname)", "refs/wvo/").split() == [
        "refs/wvo/tasks/S1", "refs/wvo/tasks/S2"
    ]  # fmt: skip
    done = b.run()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "is gone" in done.stdout, done.stdout[-3000:]
    assert statuses(b) == {"S1": "done", "S2": "done"}, done.stdout[-3000:]
    assert_landed_once(seeded, ["S1", "S2"])
    assert not any((b.repo.with_name("repo.wvo-worktrees")).glob("S*/*")), "B ran no worker"


@pytest.mark.postgres
def test_a_host_dead_before_its_submission_reached_the_remote_hands_its_task_back(
    tmp_path: Path, seeded: Path, daemon: Server, pg_migrated: Callable[[str], str]
) -> None:
    url = pg_migrated("unpushed")
    a, b = two_hosts(tmp_path, seeded, daemon, url)
    anyio.run(partial(backlog, a.project, tasks("U1", fake_wait="go"), WVO_DATABASE_URL=url))
    with Output(a.start("--until-empty")) as first:
        worktrees = a.repo.with_name("repo.wvo-worktrees")
        poll("its worker waits", lambda: len(list(worktrees.glob("*/*/go.waiting"))) == 1)
        daemon.stop()
        next(worktrees.glob("*/*/go.waiting")).with_name("go").write_text("")
        first.until("the remote holds the queue")
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait()
    assert statuses(a) == {"U1": "needs_review"}
    daemon.start()
    with Output(b.start("--until-empty")) as second:
        second.until("never reached the remote; handed back with its checkpoint")
        theirs = b.repo.with_name("repo.wvo-worktrees")
        poll("its next attempt waits", lambda: len(list(theirs.glob("*/*/go.waiting"))) == 1)
        next(theirs.glob("*/*/go.waiting")).with_name("go").write_text("")
        said = second.finish()
    assert second.process.returncode == 0, said[-3000:]
    assert statuses(b) == {"U1": "done"}, said[-3000:]
    assert_landed_once(seeded, ["U1"])
    # Who works where, and the queue, as any host's `autopilot status` shows them.
    shown = subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "status"], cwd=ROOT, env=b.env,
        capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    runs = [line for line in shown.splitlines() if ": ended" in line]
    assert len(runs) == 2, shown
    assert all(f" on {os.uname().nodename}" in line for line in runs), shown
    key = daemon.url("project.git").removesuffix(".git") + "#main"
    assert all(f"landing onto {key}:" in line for line in runs), shown


def test_gc_removes_the_remote_refs_of_tasks_that_ended_and_keeps_the_others(
    tmp_path: Path, seeded: Path, daemon: Server
) -> None:
    pilot = make_host(tmp_path, "a", seeded, daemon.url("project.git"))
    anyio.run(backlog, pilot.project, tasks("G1", "G2"))
    for task_id in ("G1", "G2"):
        git(pilot.repo, "push", "-q", "origin", f"HEAD:refs/wvo/tasks/{task_id}")
    cancelled = subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "cancel", "G1", "--reason", "not needed"],
        cwd=ROOT, env=pilot.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cancelled.returncode == 0, cancelled.stderr

    def gc(*more: str) -> str:
        found = subprocess.run(
            [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "gc", "--onto", "origin/main",
             *more], cwd=ROOT, env=pilot.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert found.returncode == 0, found.stderr
        return found.stdout

    looked = gc("--dry-run")
    assert "remove origin: refs/wvo/tasks/G1: its task is cancelled" in looked, looked
    assert "keep origin: refs/wvo/tasks/G2: its task is pending" in looked, looked
    assert git(seeded, "for-each-ref", "--format=%(refname)", "refs/wvo/").split() == [
        "refs/wvo/tasks/G1", "refs/wvo/tasks/G2"
    ]  # fmt: skip
    gc()
    assert git(seeded, "for-each-ref", "--format=%(refname)", "refs/wvo/").split() == [
        "refs/wvo/tasks/G2"
    ]


@pytest.mark.slow
@pytest.mark.postgres
def test_a_crash_storm_across_two_hosts_loses_nothing_and_lands_each_task_once(
    tmp_path: Path, pg_migrated: Callable[[str], str]
) -> None:
    """The merge queue's guarantees on the remote: speculative batches, bisection of a
    batch a pair of tasks breaks together, conflicts sent back, and autopilots on two hosts
    killed again and again."""
    seed = project_with_check(tmp_path / "seed", CLAIMS_SH)
    served = bare(tmp_path / "served", seed["repo"])
    git(served, "config", "core.logAllRefUpdates", "always")  # the remote's own reflog
    url = pg_migrated("storm")
    with Daemon(tmp_path / "served") as server:
        hosts = [
            make_host(tmp_path, name, served, server.url("project.git"), CLAIMS_SH,
                      WVO_DATABASE_URL=url)
            for name in ("a", "b")
        ]  # fmt: skip
        for host in hosts:  # a loaded machine: workers are silent longer
            providers = host.project["providers"]
            providers.write_text(providers.read_text().replace("hang_seconds: 15",
                                                               "hang_seconds: 60"))  # fmt: skip
        backlog_tasks = fleet(12)
        anyio.run(partial(backlog, hosts[0].project, backlog_tasks, WVO_DATABASE_URL=url))
        chance = random.Random(44)  # the kills land at seeded moments: a failure replays
        outputs = []
        for kill in range(6):
            victim = hosts[kill % 2].start()
            outputs.append(_lines_then_kill(victim, chance.randint(2, 14), 20))
        with (
            Output(hosts[0].start("--until-empty")) as one,
            Output(hosts[1].start("--until-empty")) as two,
        ):
            last = [one, two]
            said = [out.finish() for out in last]
    assert [out.process.returncode for out in last] == [0, 0], said
    ids = [t["id"] for t in backlog_tasks]
    assert statuses(hosts[0]) == dict.fromkeys(ids, "done"), said
    assert_landed_once(served, ids)
    with psycopg.connect(url) as conn:
        verified = dict(conn.execute("SELECT new, tree FROM landings WHERE state = 'landed'"))
        intents = conn.execute("SELECT count(*) FROM landings WHERE state = 'intent'").fetchone()
        returned = conn.execute(
            "SELECT reason FROM landing_entries WHERE state = 'returned'"
        ).fetchall()
    assert intents == (0,)
    assert any("a check failed" in why for (why,) in returned), returned  # bisected
    # The remote's main only moved forward, each state it took verified on its tree.
    states = git(served, "reflog", "show", "--format=%H", "refs/heads/main").split()
    for newer, older in itertools.pairwise(states):
        assert git(served, "merge-base", "--is-ancestor", older, newer) == ""
    for state in states[:-1]:
        assert git(served, "rev-parse", f"{state}^{{tree}}").strip() == verified[state]
    assert "claims ok" in subprocess.run(
        ["sh", "-c", f"git archive main | tar -x -C {tmp_path} --one-top-level=final "
         f"&& cd {tmp_path}/final && sh check.sh"],
        cwd=served, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
