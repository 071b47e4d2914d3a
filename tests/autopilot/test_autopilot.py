"""`wvo-mcp autopilot` end to end: fake Claude Code workers (wvo_mcp/autopilot/fake.py,
speaking Claude Code's stream-json and working the loop through their own wvo-mcp servers)
on a real git repository, checked from the database and git."""

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import autopilot, backlog, env, events, git
from tests.conftest import ROOT, agents, open_db, wvo


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_backlog_is_worked_once_each_on_its_own_branch(project: dict[str, Path]) -> None:
    # 30 tasks: three chains of 5 behind a shared root, and 15 on their own.
    ids = [f"T{i:02d}" for i in range(30)]
    specs: list[dict[str, object]] = [{"id": i, "title": f"task {i}"} for i in ids]
    for n in range(1, 16):
        specs[n]["depends_on"] = [ids[n - 1] if n % 5 != 1 else ids[0]]
    await backlog(project, specs)
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "30 launched, 30 done, 0 released" in ran.stdout, ran.stdout
    # Both providers' workers took part (each capped at its two slots).
    # Lines are "HH:MM:SS <worker> starts <task> ...".
    workers = {line.split()[1] for line in ran.stdout.splitlines() if " starts " in line}
    assert {w.split("-")[0] for w in workers} == {"alpha", "beta"}, workers
    with open_db(project["state"]) as db:
        done = db.execute(
            "SELECT task_id, count(*) FROM task_events WHERE to_status = 'done' GROUP BY task_id"
        ).fetchall()
        usage = db.execute(  # the day windows
            "SELECT sum(input_tokens), sum(output_tokens) FROM provider_usage "
            "WHERE length(period) = 10"
        ).fetchone()
    assert sorted(map(tuple, done)) == [(i, 1) for i in ids]
    # What the fakes reported: 1000 new and 500 cached input (at a tenth: 1050) and 100 output
    # tokens each.
    assert tuple(usage) == (30 * 1050, 30 * 100)
    repo = project["repo"]
    for task_id in ids:
        log = git(repo, "log", "--format=%s", f"main..wvo/{task_id}").split()
        assert log == [task_id]
        assert git(repo, "show", f"wvo/{task_id}:{task_id}.txt").startswith(task_id)
    assert {t for t, actor, _ in events(project, "commits") if actor == "autopilot"} == set(ids)
    # Clean worktrees are gone; main is untouched.
    assert not any((repo.parent / "repo.wvo-worktrees").iterdir())
    assert git(repo, "status", "--porcelain") == ""


def moves_of(project: dict[str, Path]) -> list[tuple[str, str, str]]:
    """(task, actor, to status) of every status move, in order."""
    with open_db(project["state"]) as db:
        rows = db.execute(
            "SELECT task_id, actor, to_status FROM task_events WHERE kind = 'status' ORDER BY id"
        ).fetchall()
    return [tuple(row) for row in rows]


def processes_under(folder: Path) -> list[str]:
    """Command lines of live processes that mention `folder` (the fakes' config paths)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(folder) in cmdline:
            found.append(cmdline)
    return found


@pytest.mark.anyio
async def test_a_crashed_worker_is_released_and_the_next_attempt_resumes(
    project: dict[str, Path],
) -> None:
    await backlog(
        project, [{"id": "C", "title": "crashes once", "metadata": {"fake": "crash_once"}}]
    )
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    released = [r for t, _, r in events(project, "status") if "no result line" in r]
    assert len(released) == 1, events(project, "status")
    assert "attempt 2" in ran.stdout and "1 done, 1 released" in ran.stdout, ran.stdout
    # The second attempt read the first one's checkpoint from its prompt.
    log = (project["state"] / "runs" / "C" / "2.log").read_text()
    assert "done C (resumed)" in log


@pytest.mark.anyio
async def test_a_rate_limit_opens_the_breaker_and_the_task_fails_over(
    project: dict[str, Path],
) -> None:
    fake = {"fake": "rate_limit", "fake_provider": "alpha"}
    await backlog(project, [{"id": "R", "title": "rate limited on alpha", "metadata": fake}])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    moves = [(actor, to) for t, actor, to in moves_of(project) if t == "R"]
    # beta's worker submitted it; the autopilot landed it.
    assert moves[-2:] == [(moves[-2][0], "needs_review"), ("autopilot", "done")], moves
    assert moves[-2][0].startswith("beta-"), moves
    with open_db(project["state"]) as db:
        state = db.execute(
            "SELECT state FROM provider_breakers WHERE provider = 'alpha'"
        ).fetchone()
    assert state[0] == "open"


@pytest.mark.anyio
async def test_an_auth_error_fails_over_to_another_provider_and_is_said_once(
    project: dict[str, Path],
) -> None:
    fake = {"fake": "auth", "fake_provider": "alpha"}
    await backlog(project, [{"id": f"A{i}", "title": "a", "metadata": fake} for i in range(3)])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.count("alpha: authentication failed") == 1, ran.stdout
    assert "fail over to other providers" in ran.stdout, ran.stdout
    # Every task is done by beta, none left waiting for alpha (the run did not stop early).
    assert "3 done" in ran.stdout, ran.stdout
    submitted = {t: actor for t, actor, to in moves_of(project) if to == "needs_review"}
    assert sorted(submitted) == ["A0", "A1", "A2"]
    assert all(actor.startswith("beta-") for actor in submitted.values()), submitted
    # alpha's breaker is open: while it is, no alpha worker is launched again.
    starts = [line for line in ran.stdout.splitlines() if " starts " in line]
    assert sum(line.split()[1].startswith("alpha-") for line in starts) <= 2  # once per slot


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_silent_worker_is_killed_with_its_process_group(project: dict[str, Path]) -> None:
    # Its silence is waited out whole: 5 s, not the file's 15, which are for a fake starting
    # beside three others on busy cores. This one starts alone (as test_run_metering's 3 s).
    text = project["providers"].read_text()
    project["providers"].write_text(text.replace("hang_seconds: 15", "hang_seconds: 5"))
    await backlog(project, [{"id": "H", "title": "hangs once", "metadata": {"fake": "hang_once"}}])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "H: silent; stopped" in ran.stdout, ran.stdout
    assert any("hung: silent" in r for t, _, r in events(project, "status") if t == "H")
    assert "1 done" in ran.stdout
    assert processes_under(project["state"]) == []


@pytest.mark.anyio
async def test_a_context_limit_sends_the_next_attempt_a_tier_up(project: dict[str, Path]) -> None:
    text = project["providers"].read_text()
    # alpha gets a small tier below its only one.
    project["providers"].write_text(
        text.replace(
            "      - name: all\n        model: alpha-model\n        complexity: [1, 10]",
            "      - name: small\n        model: alpha-small\n        complexity: [1, 5]\n"
            "        input_cost_per_1k: 0.0001\n        output_cost_per_1k: 0.0002\n"
            "      - name: all\n        model: alpha-model\n        complexity: [6, 10]",
            1,
        )
    )
    fake = {"fake": "context_limit", "fake_model": "alpha-small"}
    await backlog(project, [{"id": "X", "title": "outgrows", "complexity": 3, "metadata": fake}])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    starts = [line for line in ran.stdout.splitlines() if " starts X " in line]
    assert "alpha-small" in starts[0] and "alpha-model" in starts[1], ran.stdout
    assert "1 done" in ran.stdout


@pytest.mark.anyio
async def test_a_repository_with_uncommitted_work_is_kept(project: dict[str, Path]) -> None:
    await backlog(project, [{"id": "D", "title": "leaves notes", "metadata": {"fake": "dirty"}}])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    # The worker's own repository of its first run: what it committed landed, the rest stays.
    repository = project["repo"].parent / "repo.wvo-worktrees" / "D" / "1"
    assert "it has files nobody committed: notes.txt" in ran.stdout, ran.stdout
    assert (repository / "notes.txt").read_text() == "not committed\n"
    assert git(project["repo"], "show", "wvo/D:D.txt").startswith("D")
    assert "notes.txt" not in git(project["repo"], "ls-tree", "--name-only", "wvo/D")


def test_ctrl_c_drains_and_hands_the_work_back(project: dict[str, Path]) -> None:
    anyio.run(backlog, project, [{"id": f"S{i}", "title": "slow", "metadata": {"fake": "hang"}}
                                 for i in range(2)])  # fmt: skip
    pilot = subprocess.Popen(
        [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--grace", "1"],
        cwd=ROOT,
        env=env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert pilot.stdout is not None
    try:
        started = 0
        while started < 2:  # both workers are running (and will never finish by themselves)
            line = pilot.stdout.readline()
            assert line, pilot.stderr.read() if pilot.stderr else ""
            started += " starts " in line
        pilot.send_signal(signal.SIGINT)
        out, err = pilot.communicate(timeout=60)
    finally:
        if pilot.poll() is None:
            pilot.kill()
    assert pilot.returncode == 0, err[-3000:]
    assert "draining" in out and "2 launched, 0 done, 2 released" in out, out
    with open_db(project["state"]) as db:
        rows = db.execute("SELECT status, attempts FROM tasks ORDER BY id").fetchall()
    # Handed back untouched: the autopilot stopped them, the tasks did not fail.
    assert [tuple(r) for r in rows] == [("pending", 0), ("pending", 0)]
    assert processes_under(project["state"]) == []


def test_pause_resume_and_stop_from_another_terminal(project: dict[str, Path]) -> None:
    # Every task waits for `go` (fake_wait), given after the resume: none lands while the
    # pause is asked, however fast the workers are, so one lands after the resume.
    waits = {"metadata": {"fake_wait": "go"}}
    anyio.run(backlog, project, [{"id": f"P{i}", "title": "p", **waits} for i in range(6)])
    worktrees = project["repo"].parent / "repo.wvo-worktrees"
    pilot = subprocess.Popen(
        [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--grace", "5"],
        cwd=ROOT, env=env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert pilot.stdout is not None

    def control(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", *args],
            cwd=ROOT, env=env(project), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def until(text: str) -> None:
        while text not in (line := pilot.stdout.readline()):  # type: ignore[union-attr]
            assert line, pilot.stderr.read() if pilot.stderr else ""

    try:
        until(" starts ")
        assert "asked 1 running autopilot(s) to pause" in control("pause")
        until("paused by person:")
        status = control("status")
        assert ": paused, since" in status, status
        assert "asked 1" in control("resume")
        until("resumed by person:")
        deadline = time.monotonic() + 60
        while not (waiting := list(worktrees.glob("*/*/go.waiting"))):
            assert time.monotonic() < deadline, "no worker waits for go"
            time.sleep(0.05)  # polling for the workers' files, with a deadline
        for said in waiting:
            said.with_name("go").write_text("")
        until("landed ")
        assert "asked 1" in control("stop")
        out, err = pilot.communicate(timeout=60)
    finally:
        if pilot.poll() is None:
            pilot.kill()
    assert pilot.returncode == 0, err
    assert "stop asked by person:" in out and ": draining" in out
    assert ": ended, since" in control("status")
    # Nothing is asked of a run that has ended.
    refused = subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "pause"],
        cwd=ROOT, env=env(project), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 1 and "asked 0" in refused.stdout


@pytest.mark.anyio
@pytest.mark.parametrize("strategy", ["rebase", "merge"])
async def test_the_queue_lands_work_on_the_target_and_returns_conflicts_to_a_worker(
    project: dict[str, Path], strategy: str
) -> None:
    repo = project["repo"]
    git(repo, "branch", "integration")
    shared = {"metadata": {"fake": "shared"}}
    await backlog(
        project,
        [
            {"id": "M1", "title": "own file"},
            {"id": "M2", "title": "shared file", **shared},
            {"id": "M3", "title": "shared file too", **shared},
            {"id": "M4", "title": "after M1", "depends_on": ["M1"]},
        ],
    )
    ran = autopilot(project, "--merge", strategy, "--onto", "integration")
    assert ran.returncode == 0, ran.stderr[-3000:]
    with open_db(project["state"]) as db:
        status = dict(db.execute("SELECT id, status FROM tasks").fetchall())
        checkpoints = db.execute(
            "SELECT task_id, summary, next_steps FROM checkpoints WHERE agent_id = 'autopilot'"
        ).fetchall()
    assert status == {"M1": "done", "M2": "done", "M3": "done", "M4": "done"}, ran.stdout
    # M2 and M3 ran side by side from the same tip: whichever landed second conflicted, came
    # back to a worker with the hunks, and landed once that worker brought the target in.
    assert checkpoints, ran.stdout
    (task, summary, hunks), *_ = checkpoints
    assert task in ("M2", "M3") and "conflicts in shared.txt" in summary
    assert "<<<<<<<" in hunks and "--- shared.txt" in hunks
    assert [t for t, _, _ in events(project, "returned")] == [task]
    lines = git(repo, "show", "integration:shared.txt").splitlines()
    assert sorted(line.split()[0] for line in lines) == ["M2", "M3", "M3"] or sorted(
        line.split()[0] for line in lines
    ) == ["M2", "M2", "M3"]
    subjects = git(repo, "log", "--format=%s", "integration").splitlines()
    for task_id in ("M1", "M2", "M3", "M4"):  # its own commit, or the queue's landing of it
        assert any(s == task_id or s.startswith(f"Land {task_id} ") for s in subjects), subjects
    # M4 started from integration after M1 landed: M1's file is in its branch's history.
    assert "M1" in git(repo, "log", "--format=%s", "wvo/M4").split()
    assert git(repo, "log", "--format=%s", "main").split() == ["start"]  # main untouched


@pytest.mark.anyio
async def test_review_by_another_provider_approves_or_sends_work_back(
    project: dict[str, Path],
) -> None:
    await backlog(
        project,
        [
            {"id": "R1", "title": "reviewed", "metadata": {"review": True}},
            {
                "id": "R2",
                "title": "changes asked once",
                "metadata": {"review": True, "fake_review": "changes_once"},
            },
        ],
    )
    ran = autopilot(project, "--workers", "alpha:1,beta:1")
    assert ran.returncode == 0, ran.stderr[-3000:]
    reviews = events(project, "review")
    with open_db(project["state"]) as db:
        status = dict(db.execute("SELECT id, status FROM tasks").fetchall())
        trail = db.execute(
            "SELECT task_id, actor, kind FROM task_events WHERE kind IN ('claimed', 'review') "
            "ORDER BY id"
        ).fetchall()
    assert status == {"R1": "done", "R2": "done"}, ran.stdout
    # Each review was by the other provider's worker than the one that did that attempt.
    author: dict[str, str] = {}
    for task_id, actor, kind in trail:
        if kind == "claimed":
            author[task_id] = actor
        else:
            assert actor.split("-")[0] != author[task_id].split("-")[0], trail
    assert [v.split(":")[0] for t, _, v in reviews if t == "R1"] == ["approve"]
    assert [v.split(":")[0] for t, _, v in reviews if t == "R2"] == ["changes", "approve"]
    # The second attempt at R2 was given the reviewer's notes.
    runs = project["state"] / "runs" / "R2"
    assert "(after review)" in "".join(p.read_text() for p in runs.glob("[0-9].log"))


@pytest.mark.anyio
async def test_a_goal_is_planned_into_tasks_then_worked(project: dict[str, Path]) -> None:
    ran = autopilot(project, "--goal", "a config file parser")
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "planned (success): planned G1, G2, G3" in ran.stdout, ran.stdout
    with open_db(project["state"]) as db:
        tasks = db.execute("SELECT id, title, status FROM tasks ORDER BY id").fetchall()
        creator = db.execute(
            "SELECT DISTINCT actor FROM task_events WHERE kind = 'created'"
        ).fetchall()
    assert [tuple(t) for t in tasks] == [
        ("G1", "design: a config file parser", "done"),
        ("G2", "build: a config file parser", "done"),
        ("G3", "test: a config file parser", "done"),
    ]
    assert [c[0] for c in creator] == ["alpha-1"]  # the planner, under its slot's name


def test_on_a_terminal_a_live_block_is_redrawn_below_the_lines(project: dict[str, Path]) -> None:
    anyio.run(backlog, project, [{"id": f"V{i}", "title": "v"} for i in range(3)])
    leader, follower = pty.openpty()
    pilot = subprocess.Popen(
        [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty"],
        cwd=ROOT, env=env(project), stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not chunk:
                break
            seen += chunk
        assert pilot.wait(timeout=60) == 0, seen[-2000:]
    finally:
        os.close(leader)
        if pilot.poll() is None:
            pilot.kill()
    text = seen.decode(errors="replace")
    assert "── autopilot running" in text and "queue: ready" in text
    assert "\x1b[J" in text  # the block was erased and redrawn
    assert "3 launched, 3 done" in text


@pytest.mark.slow
def test_two_autopilots_on_one_database_never_run_a_task_twice(project: dict[str, Path]) -> None:
    anyio.run(backlog, project, [{"id": f"W{i:02d}", "title": "w"} for i in range(12)])
    command = [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty",
               "--workers", "alpha:1,beta:1"]  # fmt: skip
    first = subprocess.Popen(command, cwd=ROOT, env=env(project), stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None
    while " starts " not in (line := first.stdout.readline()):  # the first is running
        assert line
    second = subprocess.run(
        command, cwd=ROOT, env=env(project), capture_output=True, text=True, timeout=240
    )
    first.communicate(timeout=240)
    assert first.returncode == 0 and second.returncode == 0, second.stderr[-2000:]
    assert "other autopilot(s) run on this database" in second.stdout
    with open_db(project["state"]) as db:
        done = db.execute(
            "SELECT task_id, count(*) FROM task_events WHERE to_status = 'done' GROUP BY task_id"
        ).fetchall()
        claimers = {
            r[0] for r in db.execute("SELECT actor FROM task_events WHERE kind = 'claimed'")
        }
    assert sorted(map(tuple, done)) == [(f"W{i:02d}", 1) for i in range(12)]
    # Both ran work, under different names.
    assert any(c.count("-") == 2 for c in claimers) and any(c.count("-") == 1 for c in claimers)


@pytest.mark.anyio
async def test_a_permission_refusal_is_said_once_and_the_task_fails_over(
    project: dict[str, Path],
) -> None:
    fake = {"fake": "denied", "fake_provider": "alpha"}
    await backlog(project, [{"id": "N", "title": "needs Bash", "metadata": fake}])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.count("alpha: its CLI was refused Bash") == 1, ran.stdout
    with open_db(project["state"]) as db:
        row = db.execute("SELECT status, attempts, assigned_to FROM tasks").fetchone()
    # Handed back untouched (not the task's fault), then submitted by beta and landed.
    assert row[0] == "done" and row[1] == 0, tuple(row)
    moves = [(a, to) for t, a, to in moves_of(project) if t == "N"]
    assert moves[-2][0].startswith("beta-") and moves[-2][1] == "needs_review", moves
    assert moves[-1] == ("autopilot", "done"), moves


@pytest.mark.anyio
async def test_codex_workers_run_through_codex_exec_json(project: dict[str, Path]) -> None:
    # beta's worker speaks Codex: `codex exec --json` with its MCP server as -c overrides.
    text = project["providers"].read_text()
    head, beta = text.split("  - name: beta")
    text = head + "  - name: beta" + beta.replace("kind: claude", "kind: codex")
    project["providers"].write_text(text)
    on_alpha = {"fake": "rate_limit", "fake_provider": "alpha"}
    await backlog(project, [{"id": "C1", "title": "fails over to codex", "metadata": on_alpha}])
    ran = autopilot(project, "--workers", "alpha:1,beta:1")
    assert ran.returncode == 0, ran.stderr[-3000:]
    with open_db(project["state"]) as db:
        status = db.execute("SELECT status FROM tasks WHERE id = 'C1'").fetchone()
        usage = dict(db.execute(
            "SELECT provider, sum(input_tokens) FROM provider_usage WHERE length(period) = 10 "
            "GROUP BY provider"
        ).fetchall())  # fmt: skip
    assert status[0] == "done", ran.stdout
    assert "beta-1 submitted C1" in ran.stdout and "landed C1" in ran.stdout
    # Codex's turn.completed usage was read: 1500 input tokens, 500 of them cached (a tenth).
    assert usage["beta"] == 1050
    log = (project["state"] / "runs" / "C1" / "2.log").read_text()
    assert '"type": "turn.completed"' in log


@pytest.mark.anyio
async def test_work_that_fails_its_verification_comes_back_then_waits_for_a_person(
    project: dict[str, Path],
) -> None:
    await backlog(
        project,
        [{"id": "V", "title": "never passes", "verify_command": ["sh", "-c", "exit 3"]}],
    )
    ran = autopilot(project, "--max-returns", "2")
    assert ran.returncode == 0, ran.stderr[-3000:]
    with open_db(project["state"]) as db:
        row = db.execute("SELECT status, attempts FROM tasks WHERE id = 'V'").fetchone()
    # Each return is a new attempt from what went wrong (no attempt spent: the work is not
    # lost); the third failure is held for a person, in needs_review, saying why.
    assert tuple(row) == ("needs_review", 0), ran.stdout
    assert ran.stdout.count("V returned: a check failed on its own commit") == 2, ran.stdout
    assert "3 launched, 0 done" in ran.stdout
    returned = [r for t, _, r in events(project, "returned") if t == "V"]
    assert len(returned) == 2 and all("exit 3" in r for r in returned), returned
    held = [r for t, _, r in events(project, "held") if t == "V"]
    assert len(held) == 1 and "came back 2 time(s)" in held[0], held


def test_a_dry_run_says_what_each_worker_sees_and_reaches_and_starts_nothing(
    project: dict[str, Path],
) -> None:
    ran = autopilot(project, "--dry-run", ANTHROPIC_BASE_URL="http://127.0.0.1:9")
    assert ran.returncode == 0, ran.stderr[-3000:]
    out = ran.stdout
    assert "alpha: 2 claude worker(s)" in out and "beta: 2 claude worker(s)" in out, out
    assert "finished work lands on each task's own branch wvo/<task>" in out
    assert "its own bwrap sandbox" in out
    assert "127.0.0.1:9" in out and "this autopilot's wvo-mcp port" in out
    objects = str((project["repo"] / ".git" / "objects").resolve())
    assert objects in out  # borrowed read-only
    assert str(project["state"]) not in out  # never shown to a worker
    assert "ANTHROPIC_BASE_URL" in out and "WVO_STATE_ROOT" not in out
    assert "toolchain:  none (no .venv, venv or node_modules that git ignores" in out
    assert not (project["state"] / "runs").exists()


@pytest.mark.anyio
async def test_unsandboxed_workers_are_said_and_still_work_through_their_run_tokens(
    project: dict[str, Path],
) -> None:
    await backlog(project, [{"id": "U", "title": "unsandboxed"}])
    ran = autopilot(project, "--unsandboxed-workers")
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "workers run UNSANDBOXED" in ran.stdout and "1 done" in ran.stdout, ran.stdout
    with open_db(project["state"]) as db:
        report = db.execute("SELECT report FROM autopilot_runs").fetchone()[0]
        tokens = db.execute("SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL").fetchone()
    assert '"unsandboxed": true' in report
    assert tokens[0] == 0  # every run token was revoked when its run ended


@pytest.mark.anyio
async def test_until_empty_ends_when_only_budget_blocked_work_is_left(
    project: dict[str, Path],
) -> None:
    providers = project["providers"]
    providers.write_text(providers.read_text().replace(
        "    max_concurrent: 2", "    hourly_tokens: 200000\n    max_concurrent: 2"))  # fmt: skip
    await backlog(project, [{"id": "B", "title": "too big for what is left of the hour"}])
    settings = {k: v for k, v in env(project).items() if k.startswith("WVO_")}
    async with agents(project["state"], "spender", **settings) as team:
        for provider in ("alpha", "beta"):  # 100k of 200k used: the task needs about 150k
            await team["spender"].call(
                "record_usage", provider=provider, model=f"{provider}-model",
                input_tokens=100_000, output_tokens=0, outcome="success",
            )  # fmt: skip
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    said = ran.stdout
    assert "stopping with ready work that cannot start here: B waits:" in said, said
    assert "the hourly token budget resets at " in said and " UTC" in said, said
    with open_db(project["state"]) as db:
        assert db.execute("SELECT status FROM tasks").fetchone()[0] == "pending"


def test_a_worker_the_autopilot_cannot_start_costs_its_task_no_attempt(
    project: dict[str, Path],
) -> None:
    """The autopilot cannot make the task's worker folder (a file stands in its way): the
    task waits for a person, blocked with the reason and the way out; no attempt is counted
    and no tier failed (it was counted as the worker's failed attempt, and escalation could
    leave the task no tier to go to)."""
    anyio.run(backlog, project, [{"id": "T1", "title": "one"}])
    worktrees = project["repo"].parent / f"{project['repo'].name}.wvo-worktrees"
    worktrees.mkdir()
    (worktrees / "T1").write_text("in the way\n")
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "the autopilot could not start a worker for it" in ran.stdout, ran.stdout
    with open_db(project["state"]) as db:
        row = db.execute(
            "SELECT status, attempts, failed_provider, failed_tier FROM tasks WHERE id = 'T1'"
        ).fetchone()
    assert tuple(row) == ("blocked", 0, None, None)
    shown = wvo(project["state"], "status").stdout
    assert "T1 blocked for" in shown and "could not start a worker for it" in shown, shown
