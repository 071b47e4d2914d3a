"""What an autopilot killed without warning leaves on the machine: its workers' processes,
its runs' cgroups and its gateway's folder. `autopilot gc`, or the next autopilot's start,
ends and removes all of it, and nothing of a live one's (leftovers.py, orphans.py).

Each test starts a real `wvo-mcp autopilot` whose worker is the fake CLI in `scatter` mode
(three sleepers that outlive it: in its process group, in a session of their own, a
double-forked daemon), SIGKILLs the autopilot while its worker runs, and looks at /proc,
the cgroup hierarchies and the temporary folder."""

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import backlog, env, make_project
from tests.conftest import HANG_SECONDS, ROOT, alive, open_db
from wvo_mcp import processes, scratch_dirs
from wvo_mcp.sandbox import bwrap, cgroups

pytestmark = pytest.mark.process


def live(marker: str) -> list[int]:
    """Live (not zombie) processes whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in argv and state != "Z":
            found.append(int(entry.name))
    return found


def until(check: object, what: str) -> None:
    deadline = time.monotonic() + HANG_SECONDS  # a hang: the state comes, however slowly
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within the deadline: {what}"
        time.sleep(0.05)


def scattered(project: dict[str, Path]) -> bool:
    with open_db(project["state"]) as db:
        return (
            db.execute("SELECT 1 FROM checkpoints WHERE summary = 'scattered'").fetchone()
            is not None
        )


def workers_of(project: dict[str, Path]) -> list[int]:
    """The fake CLIs working in this test's repositories (not another test's)."""
    mine = project["repo"].parent
    found = []
    for pid in live("fake.py"):
        try:
            if Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(mine):
                found.append(pid)
        except OSError:
            continue
    return found


def gateways(project: dict[str, Path], pid: int) -> list[Path]:
    mark = scratch_dirs.prefix("gateway", project["state"]) + f"{pid}-"
    return [p for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith(mark)]


def run_cgroups(pid: int) -> list[Path]:
    layout = cgroups.detect()
    bases = [*layout.v1.values(), *([layout.v2, layout.v2.parent] if layout.v2 else [])]
    return [d for base in bases for d in base.glob(f"wvo-sandbox-{pid}-*") if d.is_dir()]


def task_of(project: dict[str, Path]) -> str:
    """A task id of this test alone: its sleepers are told apart by it."""
    return "S" + hashlib.sha256(str(project["repo"]).encode()).hexdigest()[:10]


def run_pid(project: dict[str, Path]) -> int:
    """The pid of the project's running autopilot, as its run names it (`host:pid:tag`):
    the process the warm process forked for the command the test started, whose pid names
    its leftovers."""
    with open_db(project["state"]) as db:
        (run,) = db.execute("SELECT id FROM autopilot_runs WHERE state = 'running'").fetchone()
    return int(run.split(":")[-2])


def working(project: dict[str, Path], mode: str, *flags: str) -> subprocess.Popen[bytes]:
    """A real autopilot whose worker has scattered its sleepers (`mode`, of fake.py)."""
    anyio.run(backlog, project, [{"id": task_of(project), "title": "scatters",
                                  "metadata": {"fake": mode}}])  # fmt: skip
    pilot = subprocess.Popen(
        [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", *flags],
        cwd=ROOT, env=env(project), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        until(lambda: scattered(project), "the worker scattered")
    except BaseException:
        pilot.kill()
        raise
    return pilot


def killed_while_working(project: dict[str, Path], *flags: str) -> int:
    """A real autopilot, SIGKILLed once its worker has scattered (the command the test
    started, and with it the autopilot), gone: its pid."""
    pilot = working(project, "scatter_once", *flags)
    pid = run_pid(project)
    pilot.send_signal(signal.SIGKILL)
    pilot.wait()
    until(lambda: not alive(pid), "the autopilot killed with the command that ran it")
    return pid


def after(project: dict[str, Path], how: str, *flags: str) -> subprocess.CompletedProcess[str]:
    command = ["autopilot", "gc"] if how == "gc" else ["autopilot", "--until-empty", *flags]
    return subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", *command],
        cwd=ROOT, env=env(project), capture_output=True, text=True, timeout=240,
    )  # fmt: skip


@pytest.mark.parametrize("how", ["gc", "start"])
def test_an_unsandboxed_workers_processes_end_though_their_leader_died(
    tmp_path: Path, how: str
) -> None:
    project = make_project(tmp_path)
    flags = ("--unsandboxed-workers",)
    pilot = killed_while_working(project, *flags)
    marker = f"wvo-scatter-{task_of(project)}"
    until(lambda: len(live(marker)) == 3, "three sleepers")
    # The worker's CLI, the group's leader, dies too: only its group, its session's and the
    # run's mark still tell whose the sleepers are.
    leaders = workers_of(project)
    assert leaders
    for pid in leaders:
        os.kill(pid, signal.SIGKILL)
    assert len(live(marker)) == 3
    assert gateways(project, pilot)
    ran = after(project, how, *flags)
    assert ran.returncode == 0, ran.stderr[-3000:]
    until(lambda: not live(marker), "no sleeper left")
    assert gateways(project, pilot) == []
    if how == "start":
        assert "1 done" in ran.stdout, ran.stdout


@pytest.mark.skipif(not bwrap.probe().usable, reason="bubblewrap cannot sandbox here")
@pytest.mark.skipif("limits" not in cgroups.capabilities(), reason="no writable cgroup here")
@pytest.mark.parametrize("how", ["gc", "start"])
def test_a_sandboxed_workers_cgroups_and_gateway_are_removed(tmp_path: Path, how: str) -> None:
    project = make_project(tmp_path)
    pilot = killed_while_working(project)
    assert run_cgroups(pilot) and gateways(project, pilot)
    ran = after(project, how)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert run_cgroups(pilot) == [] and gateways(project, pilot) == []
    assert live(f"wvo-scatter-{task_of(project)}") == []  # they died with the sandbox


def test_a_live_autopilots_leftovers_are_not_touched(tmp_path: Path) -> None:
    """gc while an autopilot works: its worker, its cgroups and its gateway stay."""
    project = make_project(tmp_path)
    flags = () if bwrap.probe().usable else ("--unsandboxed-workers",)
    # Its worker heeds no drain: ended by the grace's kill a second after the test's Ctrl-C,
    # not by its silence 15 s on.
    pilot = working(project, "scatter", "--grace", "1", *flags)
    try:
        pid = run_pid(project)
        before = (run_cgroups(pid), gateways(project, pid))
        ran = after(project, "gc")
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert (run_cgroups(pid), gateways(project, pid)) == before
        assert before[1] and pilot.poll() is None
        assert live(f"wvo-scatter-{task_of(project)}")
    finally:
        pilot.send_signal(signal.SIGINT)
        try:
            pilot.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pilot.kill()


# A daemon as a double fork makes it: a session whose leader exits, its child left in it.
STRANGER = "import os, time\nos.setsid()\nif os.fork():\n    os._exit(0)\ntime.sleep(120)"


def test_gc_kills_no_stranger_in_a_session_a_gone_workers_pid_once_led(tmp_path: Path) -> None:
    """A gone autopilot's worker led a process group whose pid now names a stranger's
    session (its leader gone, as a double-forking daemon's is): gc ends the run and closes
    its row, and the stranger, which carries no run's mark, lives."""
    project = make_project(tmp_path)
    anyio.run(backlog, project, [{"id": task_of(project), "title": "t"}])
    marker = f"wvo-stranger-{task_of(project)}"
    leader = subprocess.Popen([sys.executable, "-c", STRANGER, marker])
    assert leader.wait(HANG_SECONDS) == 0
    until(lambda: live(marker), "the stranger")
    [stranger] = live(marker)
    assert os.getsid(stranger) == leader.pid  # its session's leader is gone
    # The autopilot's own pid, once started at tick 1: whoever has it now is not that one.
    process = {"host": "h", "machine": processes.machine(), "pid": leader.pid, "started": 1}
    report = {"process": process, "agents": [], "workers": [{"pgid": leader.pid, "started": 1}]}
    try:
        with open_db(project["state"], writable=True) as db:  # as a SIGKILLed autopilot left
            db.execute(
                "INSERT INTO autopilot_runs (id, started_at, seen_at, state, report) "
                "VALUES ('gone', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', "
                "'running', ?)",
                (json.dumps(report),),
            )
            db.commit()
        first = after(project, "gc")
        assert first.returncode == 0, first.stderr[-3000:]
        assert "autopilot gone is gone: 0 worker process(es) ended" in first.stdout, first.stdout
        assert live(marker) == [stranger]
        with open_db(project["state"]) as db:
            [(state,)] = db.execute("SELECT state FROM autopilot_runs WHERE id = 'gone'")
        assert state == "ended"
        again = after(project, "gc")
        assert "autopilot gone" not in again.stdout, again.stdout  # closed: not swept again
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stranger, signal.SIGKILL)


def test_gc_sweeps_only_its_own_state_folders_cgroups(tmp_path: Path) -> None:
    """Run cgroups whose maker is gone: only those named for this state folder are
    leftovers; another folder's (or another user's) and an unnamed old one are not."""
    base = tmp_path / "memory"
    mine, theirs = scratch_dirs.owner(tmp_path / "a"), scratch_dirs.owner(tmp_path / "b")
    gone = "999999999-1"  # a maker no process is
    names = {f"wvo-sandbox-{gone}-{mine}-0a1b2c3d", f"wvo-sandbox-{gone}-{theirs}-0a1b2c3d",
             f"wvo-sandbox-{gone}-0a1b2c3d"}  # fmt: skip
    for name in names:
        (base / name).mkdir(parents=True)
    layout = cgroups.Layout(v1={"memory": base})
    assert cgroups.orphaned(mine, layout) == [base / f"wvo-sandbox-{gone}-{mine}-0a1b2c3d"]
