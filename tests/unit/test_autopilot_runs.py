"""Run logs per task: numbered, and only the newest kept."""

from pathlib import Path

from wvo_mcp.autopilot.run_logs import RUN_LOGS_KEPT, last_run, next_run, rotate, runs


def test_only_the_newest_runs_are_kept_and_numbering_goes_on(tmp_path: Path) -> None:
    for number in range(1, RUN_LOGS_KEPT + 6):
        (tmp_path / f"{number}.log").write_text("output")
        (tmp_path / f"{number}.mcp.json").write_text("{}")
    (tmp_path / "review.log").write_text("a review")
    rotate(tmp_path)
    # Room for the next run: RUN_LOGS_KEPT - 1 kept, the oldest gone with their configs.
    assert runs(tmp_path) == list(range(7, RUN_LOGS_KEPT + 6))
    assert not (tmp_path / "6.mcp.json").exists() and (tmp_path / "7.mcp.json").exists()
    assert (tmp_path / "review.log").exists()
    assert last_run(tmp_path) == RUN_LOGS_KEPT + 5
    assert last_run(tmp_path / "none") == 0


def test_two_state_folders_on_one_repository_never_take_one_run_number(tmp_path: Path) -> None:
    """Run logs live in each autopilot's state folder, repositories beside the person's:
    a number is taken in both, each only if new."""
    repos = tmp_path / "repo.wvo-worktrees" / "K4"
    mine, theirs = tmp_path / "a" / "runs" / "K4", tmp_path / "b" / "runs" / "K4"
    mine.mkdir(parents=True)
    theirs.mkdir(parents=True)
    taken = [next_run(mine, repos), next_run(theirs, repos), next_run(mine, repos)]
    assert taken == ["1", "2", "3"]
    assert sorted(p.name for p in repos.iterdir()) == ["1", "2", "3"]
    # A log this state folder keeps from an earlier run (its repository gone) stays its own.
    (repos / "3").rmdir()
    (mine / "4.log").touch()
    assert next_run(mine, repos) == "5"
