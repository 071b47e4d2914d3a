"""Every worker has resource limits (docs/security.md, "Resource limits"): a real `wvo-mcp
autopilot --until-empty` runs three fake workers in their bwrap sandboxes under small limits
from the providers file. One fork-bombs, one holds ever more memory, one fills its /tmp and
home. The first two are stopped by their limits and their tasks say which; the third gets
ENOSPC and still lands. Then the host: no process of theirs left, their cgroups gone, nothing
written to the host's /tmp. A check's /tmp is capped too."""

import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import autopilot, backlog, git, make_project
from tests.conftest import fresh_env, open_db
from tests.security.tenancy import ours, started, statuses, trail, worktree
from wvo_mcp.sandbox import bwrap, cgroups, relay, run_limits
from wvo_mcp.sandbox.request import WorkerLimits

PLAN = run_limits.probe() if bwrap.probe().usable else run_limits.Plan()
pytestmark = pytest.mark.skipif(
    not (bwrap.probe().usable and PLAN.memory and PLAN.pids.startswith("cgroup") and PLAN.sized),
    reason=f"needs bwrap with memory and pids cgroups here: {bwrap.probe().detail}; "
    f"{run_limits.describe(PLAN, WorkerLimits())}",
)
LIMITS = WorkerLimits(memory_mb=256, pids=64, tmp_mb=16, home_mb=8)
FORKS = 500  # the bomb's own bound: far past the limit, so it is the limit that stops it
# Children that sleep (and hold their pid) until the worker's end kills them, forked as fast
# as it can; a refused fork is tried again (bash retries it for about 30 s) as a fork bomb
# would, so the worker stays at its limit. Each fork's count is written down.
BOMB = (
    f"bash -c 'n=0; while [ $n -lt {FORKS} ]; do sleep 120 </dev/null >/dev/null 2>&1 & "
    "n=$((n+1)); echo $n > forks.txt; done'"
)


def limited_project(tmp_path: Path) -> dict[str, Path]:
    project = make_project(tmp_path)
    text = project["providers"].read_text()
    block = "".join(f"        {k}: {v}\n" for k, v in vars(LIMITS).items())
    text = re.sub(r"(      hang_seconds: .*\n)", rf"\1      limits:\n{block}", text)
    assert text.count("limits:") == 2
    project["providers"].write_text(text)
    return project


@dataclass
class Run:
    project: dict[str, Path]
    output: str
    pid: int  # the autopilot's: its cgroups are named wvo-sandbox-<pid>-...
    marker: str  # the name of the file the filling worker wrote


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp_path = tmp_path_factory.mktemp("limits")
    project = limited_project(tmp_path)
    marker = f"wvo-fill-{uuid.uuid4().hex}"
    fill = (
        f'head -c 40000000 /dev/zero > /tmp/{marker}; echo "tmp $?"; wc -c < /tmp/{marker}; '
        f'head -c 40000000 /dev/zero > "$HOME/{marker}"; echo "home $?"; '
        f'wc -c < "$HOME/{marker}"; df -k /tmp "$HOME"'
    )
    anyio.run(
        backlog,
        project,
        [
            {"id": "BOMB", "title": "fork bomb", "max_attempts": 1,
             "metadata": {"fake_run": [BOMB]}},
            {"id": "HOG", "title": "memory hog", "max_attempts": 1, "metadata": {"fake": "hog"}},
            {"id": "FILL", "title": "fills /tmp and home", "metadata": {"fake_run": [fill]}},
        ],
    )  # fmt: skip
    with started(project) as pilot:
        output = pilot.finish()
        yield Run(project, output, pilot.process.pid, marker)
    assert not ours(tmp_path)


def _released(run: Run, task_id: str) -> str:
    reasons = [reason for actor, kind, to, reason in trail(run.project, task_id) if to == "failed"]
    assert len(reasons) == 1, trail(run.project, task_id)
    return reasons[0]


def test_a_fork_bomb_is_stopped_at_the_process_limit_and_the_task_says_so(run: Run) -> None:
    assert statuses(run.project)["BOMB"] == "failed"
    reason = _released(run, "BOMB")
    assert "process limit 64 reached" in reason, reason
    assert "process limit 64 reached" in run.output, run.output[-3000:]
    # The processes and threads of the worker (bwrap, the relay, the CLI) and its forks
    # together stayed within 64: the bomb got nowhere near its own bound.
    forks = int((worktree(run.project, "BOMB") / "forks.txt").read_text())
    assert 0 < forks < LIMITS.pids, forks


def test_a_worker_past_its_memory_limit_is_killed_and_the_task_says_so(run: Run) -> None:
    assert statuses(run.project)["HOG"] == "failed"
    reason = _released(run, "HOG")
    assert "memory limit 256 MB reached" in reason, reason
    assert "released HOG: worker ended (failure): memory limit 256 MB reached" in run.output
    assert "never stopped" not in run.output  # the hog did not outlive its allocation
    # Its own limit, not its provider's fault: no failure is counted against either.
    with open_db(run.project["state"]) as db:
        failures = db.execute("SELECT coalesce(sum(failures), 0) FROM provider_usage").fetchone()
        breakers = db.execute("SELECT provider, failures FROM provider_breakers").fetchall()
    assert failures[0] == 0 and all(row[1] == 0 for row in breakers), [tuple(b) for b in breakers]


def test_a_worker_filling_tmp_and_home_gets_enospc_and_the_host_is_untouched(run: Run) -> None:
    assert statuses(run.project)["FILL"] == "done", run.output[-3000:]
    said = git(run.project["repo"], "show", "wvo/FILL:ran-0.txt")
    assert said.count("No space left on device") == 2, said
    sizes = [int(line) for line in said.splitlines() if line.strip().isdigit()]
    assert sizes[0] <= LIMITS.tmp_mb << 20 and sizes[1] <= LIMITS.home_mb << 20, said
    assert f"{LIMITS.tmp_mb * 1024} " in said and f"{LIMITS.home_mb * 1024} " in said, said
    # Both were RAM of the sandbox's own: nothing of the 80 MB is on the host.
    host_tmp = Path(tempfile.gettempdir())
    assert not (host_tmp / run.marker).exists()
    assert not list(host_tmp.glob(f"wvo-run-*/home/{run.marker}"))


def test_no_cgroup_of_any_worker_is_left(run: Run) -> None:
    layout = cgroups.detect()
    bases = [b for b in [layout.v2, *layout.v1.values()] if b is not None]
    bases += [b.parent for b in bases]
    left = [p for base in bases for p in base.glob(f"wvo-sandbox-{run.pid}-*")]
    assert not left, left


def test_the_dry_run_says_which_limits_are_in_force(tmp_path: Path) -> None:
    done = autopilot(limited_project(tmp_path), "--dry-run")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(f"limits:     {run_limits.describe(PLAN, LIMITS)}") == 2, done.stdout
    assert "memory 256 MB (cgroup" in done.stdout and "/tmp 16 MB and home 8 MB" in done.stdout


def test_doctor_says_which_limits_are_in_force(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    done = subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "doctor", "--json"],
        cwd=project["repo"],
        env=fresh_env({"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, warm=True),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = {c["name"]: c for c in json.loads(done.stdout)}
    assert found["worker limits"] == {
        "name": "worker limits",
        "ok": True,
        "detail": run_limits.describe(PLAN, WorkerLimits()),
    }
    assert "memory 4096 MB (cgroup" in found["worker limits"]["detail"]


def test_a_checks_tmp_is_capped(tmp_path: Path) -> None:
    """The project's check (--check, as a task's verify_command) runs with a 1 GiB /tmp: the
    pre-flight's output shows its size."""
    project = make_project(tmp_path)
    check = "df -k /tmp; exit 1"
    refused = autopilot(project, "--merge", "merge", "--onto", "main", "--check", check)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert re.search(r"tmpfs\s+1048576\s", refused.stderr), refused.stderr


def test_the_fallback_limits_reach_the_command(tmp_path: Path) -> None:
    """Without cgroups the relay sets RLIMIT_NPROC and a lower priority inside the sandbox;
    what it starts inherits both."""
    line = relay.command(
        sys.executable,
        str(tmp_path / "unused.sock"),
        ["/bin/sh", "-c", "grep 'Max processes' /proc/self/limits; cut -d' ' -f19 /proc/self/stat"],
        nproc=77,
        nice=run_limits.FALLBACK_NICE,
    )
    done = subprocess.run(line, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    limits, niceness = done.stdout.splitlines()
    assert limits.split()[2:4] == ["77", "77"], limits
    assert int(niceness) >= run_limits.FALLBACK_NICE
