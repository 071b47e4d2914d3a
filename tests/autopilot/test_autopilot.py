"""`wvo-mcp autopilot` end to end: fake Claude Code workers (tests/autopilot/fake_claude.py,
speaking Claude Code's stream-json and working the loop through their own wvo-mcp servers)
on a real git repository, checked from the database and git."""

from pathlib import Path

import pytest

from tests.autopilot.conftest import autopilot, backlog, events, git
from tests.conftest import open_db


@pytest.mark.anyio
async def test_a_backlog_is_worked_once_each_on_its_own_branch(project: dict[str, Path]) -> None:
    ids = [f"T{i}" for i in range(8)]
    await backlog(project, [{"id": i, "title": f"task {i}"} for i in ids])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "8 launched, 8 done, 0 released" in ran.stdout, ran.stdout
    with open_db(project["state"]) as db:
        done = db.execute(
            "SELECT task_id, count(*) FROM task_events WHERE to_status = 'done' GROUP BY task_id"
        ).fetchall()
        usage = db.execute(  # the day windows
            "SELECT sum(input_tokens), sum(output_tokens) FROM provider_usage "
            "WHERE length(period) = 10"
        ).fetchone()
    assert sorted(map(tuple, done)) == [(i, 1) for i in ids]
    # What the fakes reported: 1500 input (1000 + 500 cached) and 100 output tokens each.
    assert tuple(usage) == (8 * 1500, 8 * 100)
    repo = project["repo"]
    for task_id in ids:
        log = git(repo, "log", "--format=%s", f"main..wvo/{task_id}").split()
        assert log == [task_id]
        assert git(repo, "show", f"wvo/{task_id}:{task_id}.txt").startswith(task_id)
    assert {t for t, actor, _ in events(project, "commits") if actor == "autopilot"} == set(ids)
    # Clean worktrees are gone; main is untouched.
    assert not any((repo.parent / "repo.wvo-worktrees").iterdir())
    assert git(repo, "status", "--porcelain") == ""


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
    done = [actor for t, actor, _ in events(project, "status") if t == "R"]
    assert done[-1].startswith("beta-"), done
    with open_db(project["state"]) as db:
        state = db.execute(
            "SELECT state FROM provider_breakers WHERE provider = 'alpha'"
        ).fetchone()
    assert state[0] == "open"


@pytest.mark.anyio
async def test_an_auth_error_stops_the_provider_without_retrying_it(
    project: dict[str, Path],
) -> None:
    fake = {"fake": "auth", "fake_provider": "alpha"}
    await backlog(project, [{"id": f"A{i}", "title": "a", "metadata": fake} for i in range(3)])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.count("alpha: authentication failed") == 1, ran.stdout
    assert "3 done" in ran.stdout
    starts = [line for line in ran.stdout.splitlines() if " starts " in line]
    assert sum(line.startswith("alpha-") for line in starts) <= 2  # its slots, once each


@pytest.mark.anyio
async def test_a_silent_worker_is_killed_with_its_process_group(project: dict[str, Path]) -> None:
    await backlog(project, [{"id": "H", "title": "hangs once", "metadata": {"fake": "hang_once"}}])
    ran = autopilot(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "H: silent; stopped" in ran.stdout, ran.stdout
    assert any("hung: silent" in r for t, _, r in events(project, "status") if t == "H")
    assert "1 done" in ran.stdout
    assert processes_under(project["state"]) == []
