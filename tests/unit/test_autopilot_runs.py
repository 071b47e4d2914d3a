"""Run logs per task: numbered, and only the newest kept."""

from pathlib import Path

from wvo_mcp.autopilot.repos import RUN_LOGS_KEPT, last_run, rotate, runs


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
