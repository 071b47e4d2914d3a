"""tidying.judge: which fact wins when several apply, and what each verdict says."""

from wvo_mcp.rules.tidying import SCRATCH_GRACE_S, Candidate, Task, judge

LANDED = {"HEAD 0123456789ab": "main"}
NOWHERE = {"HEAD 0123456789ab": None}


def repo(task: Task | None, **facts: object) -> Candidate:
    return Candidate("repository", "/w/T/1", "T", task, **facts)  # type: ignore[arg-type]


def test_landed_work_goes_and_says_where_it_is() -> None:
    verdict = judge(repo(Task("T", "done"), tips=LANDED))
    assert verdict.remove and verdict.reason == "HEAD 0123456789ab: all its commits are in main"


def test_unlanded_work_stays_unless_a_person_cancelled_the_task() -> None:
    verdict = judge(repo(Task("T", "pending"), tips=NOWHERE, looked_in="main"))
    assert not verdict.remove
    assert verdict.reason == (
        "HEAD 0123456789ab: its commits are not all in main; task T is pending"
    )
    cancelled = Task("T", "cancelled", cancelled_by="person:ann")
    assert judge(repo(cancelled, tips=NOWHERE)).remove
    by_agent = Task("T", "cancelled")
    assert not judge(repo(by_agent, tips=NOWHERE)).remove


def test_a_lease_and_a_queue_entry_protect_even_cancelled_landed_work() -> None:
    held = Task("T", "in_progress", holder="w", cancelled_by="person:ann")
    assert judge(repo(held, tips=LANDED)).reason == "task T is held by w (a live lease)"
    queued = Task("T", "needs_review", queued="testing")
    verdict = judge(Candidate("branch", "wvo/T", "T", queued, tips=LANDED))
    assert not verdict.remove and "merge queue (testing)" in verdict.reason


def test_uncommitted_files_and_unreadable_refs_keep_a_cancelled_tasks_repository() -> None:
    cancelled = Task("T", "cancelled", cancelled_by="person:ann")
    stray = judge(repo(cancelled, tips=LANDED, stray=("a", "b")))
    assert not stray.remove and stray.reason == "it has files nobody committed: a, b"
    assert not judge(repo(cancelled, unreadable="its refs cannot be read")).remove


def test_links_live_processes_and_unknown_tasks_keep_anything() -> None:
    done = Task("T", "done")
    assert not judge(repo(done, tips=LANDED, odd="a symbolic link")).remove
    assert "1234 (claude)" in judge(repo(done, tips=LANDED, users=("1234 (claude)",))).reason
    assert "no task 'T'" in judge(repo(None, tips=LANDED)).reason


def test_logs_stay_while_a_repository_of_their_task_does() -> None:
    done = Task("T", "done")
    assert not judge(Candidate("logs", "/s/runs/T", "T", done, kept_repositories=1)).remove
    assert judge(Candidate("logs", "/s/runs/T", "T", done)).remove
    assert not judge(Candidate("logs", "/s/runs/T", "T", Task("T", "failed"))).remove


def test_scratch_folders_and_planner_repositories_wait_out_a_grace() -> None:
    young = Candidate("scratch", "/tmp/wvo-run-x", age_s=SCRATCH_GRACE_S - 1)
    assert not judge(young).remove
    assert judge(Candidate("scratch", "/tmp/wvo-run-x", age_s=SCRATCH_GRACE_S + 1)).remove
    planner = Candidate("repository", "/w/wvo-planner/1", planner=True, tips=LANDED)
    assert not judge(planner).remove
    old = Candidate("repository", "/w/wvo-planner/1", planner=True, tips=LANDED, age_s=1e6)
    assert judge(old).remove
