"""Landing through pull requests (`--onto origin/main --via pull-request`), end to end: the
autopilot and fake workers in their sandboxes, on each test forge (tests/autopilot/conftest.py's
`forge`: GitHub's REST API validated against GitHub's own description, tests/forge/server.py,
and GitLab's merge requests, tests/forge/gitlab/server.py; real git behind each over smart
HTTP, a pre-receive hook that refuses any push to main, and hosted checks or pipelines). One
scenario suite for both, so that no behaviour exists on one forge only.

Every verdict is read from the forge's own state and the repository's history: each task
lands exactly once, through its own pull request, merged at a head that passed the queue's
check and the forge's required check, and only once a person approved it."""

import json
import os
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import RUN_TIMEOUT_S, backlog
from tests.autopilot.test_remote_landing import Host, make_host, statuses
from tests.conftest import open_db, wvo
from tests.forge import both
from tests.forge.both import Side, side_of
from tests.forge.description import available
from tests.forge.gitlab import server as gitlab
from tests.forge.server import Forge
from wvo_mcp.sandbox import bwrap

pytestmark = [
    pytest.mark.skipif(not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}"),
    pytest.mark.skipif(not available(), reason="no @octokit/openapi (scripts/setup)"),
]
forge = both.landing  # the fixture: each scenario on the test GitHub and the test GitLab
side = both.side  # the fixture: what the scenario says differently on each
# 0.1: a pull request waiting for a person is looked at six polls apart, 0.6 s, so every
# autopilot round (1 s) looks at it, not every other one (as at 0.2).
VIA = ("--via", "pull-request", "--forge-poll", "0.1")


def host(tmp_path: Path, forge: Forge, name: str = "a", **extra: str) -> Host:
    token = side_of(forge).token
    return make_host(tmp_path, name, forge.bare, forge.url, WVO_FORGE_TOKEN=token, **extra)


def import_issues(pilot: Host, forge: Forge) -> None:
    """`import github:team/project` (gitlab:group/sub/project) into the host's state, with
    the host's settings."""
    env = {k: v for k, v in pilot.env.items() if k.startswith("WVO_")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        done = wvo(pilot.project["state"], "import", side_of(forge).spec, "--forge-api",
                   forge.api)  # fmt: skip
    finally:
        for key, value in old.items():
            os.environ.pop(key, None) if value is None else os.environ.update({key: value})
    assert done.returncode == 0, done.stderr


def start(pilot: Host, forge: Forge, log: Path, *more: str) -> "subprocess.Popen[str]":
    via = ("--via", "merge-request") if side_of(forge).kind == "gitlab" else ()  # its alias
    args = [*pilot.args("--until-empty", *VIA, *via, "--forge-api", forge.api, *more)]
    with log.open("w") as out:
        return subprocess.Popen(args, env=pilot.env, stdout=out, stderr=subprocess.STDOUT,
                                text=True, cwd=Path(__file__).parents[2])  # fmt: skip


def attend(
    forge: Forge, process: "subprocess.Popen[str]", log: Path,
    person: Callable[[Forge, int, str], None],
) -> None:  # fmt: skip
    """Until the autopilot ends: `person` looks at each open pull request once per head,
    once the forge's check on it has ended (as a reviewer would)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    seen: set[tuple[int, str]] = set()
    while True:
        try:
            process.wait(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            assert time.monotonic() < deadline, log.read_text()[-4000:]
        for pull in forge.open_pulls():
            run = forge.runs.get(pull.head)
            if (pull.number, pull.head) in seen or run is None or not run.done.is_set():
                continue
            seen.add((pull.number, pull.head))
            person(forge, pull.number, pull.head)
    assert process.returncode == 0, log.read_text()[-4000:]


def approve(forge: Forge, number: int, head: str) -> None:
    side_of(forge).approve(forge, number)


def landed_subjects(forge: Forge) -> list[str]:
    return forge.git("log", "--first-parent", "--format=%s", "main").splitlines()


def test_five_tasks_land_each_through_its_own_pull_request_once_approved(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    pilot = host(tmp_path, forge)
    ids = [f"T{n}" for n in range(5)]
    anyio.run(backlog, pilot.project, [{"id": i, "title": f"task {i}"} for i in ids])
    log = tmp_path / "autopilot.log"
    attend(forge, start(pilot, forge, log), log, approve)
    said = log.read_text()
    # Each task: one pull request from its own branch, merged by the queue, after a person's
    # approval and a passing required check on exactly the head that merged.
    by_branch = {p.branch: p for p in forge.pulls.values()}
    assert sorted(by_branch) == sorted(f"wvo/{i}" for i in ids), by_branch
    for pull in forge.pulls.values():
        assert pull.merged and pull.merged_by == "autopilot", pull
        approvals = [r for r in forge.reviews if r.number == pull.number and r.state == "APPROVED"]
        assert approvals, pull
        run = forge.runs[(pull.merge_commit and pull.head) or ""]
        assert run.conclusion == "success", run
        assert forge.contains(pull.head, forge.tip())
    subjects = landed_subjects(forge)
    for task_id in ids:
        assert sum(s.startswith(f"Land {task_id} ") for s in subjects) == 1, subjects
    assert statuses(pilot) == {i: "done" for i in ids}
    assert f"{side.noun} {side.sign}" in said
    # The queue it leaves says each pull request's state, with its link, the forge's way.
    lead = f"  {side.noun} {side.sign}"
    shown = [line.strip() for line in said.splitlines() if line.startswith(lead)]
    assert len(shown) == len(ids) and all("(merged)" in line for line in shown), shown
    assert f"{forge.web}{side.pulls}" in shown[0]
    # Nothing reached main but through the merge endpoint: every commit on its first-parent
    # line since the seed is a merge the forge made.
    assert all(s.startswith("Land ") for s in subjects[: len(ids)]), subjects
    # The pull request says what a reviewer needs.
    body = forge.pulls[1].body
    assert "**Task `T" in body and "### Checks" in body and "exactly each head it pushes" in body
    assert "### Cost" in body and "output tokens" in body


def checkpoints(pilot: Host, task_id: str) -> list[tuple[str, str]]:
    with open_db(pilot.project["state"]) as db:
        return db.execute("SELECT summary, coalesce(next_steps, '') FROM checkpoints "
                          "WHERE task_id = ? ORDER BY seq", (task_id,)).fetchall()  # fmt: skip


def test_a_review_asking_for_changes_goes_back_to_a_worker_with_its_comments(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    pilot = host(tmp_path, forge)
    anyio.run(backlog, pilot.project, [
        {"id": "R", "title": "rename", "metadata": {"fake_fix": {"fix.txt": "fixed\n"}}},
    ])  # fmt: skip
    heads: list[str] = []

    def person(forge: Forge, number: int, head: str) -> None:
        heads.append(head)
        if len(heads) == 1:
            forge.review(number, "CHANGES_REQUESTED", "Please add fix.txt.",
                         [("README.md", 1, "say what it fixes here")])  # fmt: skip
        else:
            side.approve(forge, number)

    log = tmp_path / "autopilot.log"
    attend(forge, start(pilot, forge, log), log, person)
    assert len(forge.pulls) == 1, "its next submission updates the same pull request"
    [pull] = forge.pulls.values()
    assert pull.merged and len(heads) == 2 and heads[0] != heads[1]
    assert forge.git("show", f"{forge.tip()}:fix.txt") == "fixed"
    returned = [d for s, d in checkpoints(pilot, "R") if "requested changes" in s]
    assert returned, checkpoints(pilot, "R")
    assert "Please add fix.txt." in returned[0] and "README.md:1: say what it fixes here" in (
        returned[0])  # fmt: skip
    assert any("returned this to a worker" in body for _, body in forge.comments)
    assert statuses(pilot) == {"R": "done"}
    assert sum(s.startswith("Land R ") for s in landed_subjects(forge)) == 1


def test_a_failing_required_check_goes_back_with_its_log_tail(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    pilot = host(tmp_path, forge)
    anyio.run(backlog, pilot.project, [
        {"id": "F", "title": "flawed", "metadata": {"fake_fix": {"fix.txt": "fixed\n"}}},
    ])  # fmt: skip
    failed: list[str] = []

    def first_fails(sha: str) -> bool:
        failed.append(sha) if not failed else None
        return sha == failed[0]

    forge.failing = first_fails
    log = tmp_path / "autopilot.log"
    attend(forge, start(pilot, forge, log), log, approve)
    [pull] = forge.pulls.values()
    assert pull.merged and pull.head != failed[0]
    assert forge.runs[failed[0]].conclusion == "failure"
    failed_check = f"required check {side.check} failed"
    returned = [d for s, d in checkpoints(pilot, "F") if failed_check in s]
    assert returned and "FAILED: test_feature" in returned[0], checkpoints(pilot, "F")
    assert f"{forge.web}{side.runs}" in returned[0]  # the link to its log
    assert statuses(pilot) == {"F": "done"}
    assert sum(s.startswith("Land F ") for s in landed_subjects(forge)) == 1


def test_a_persons_merge_commit_and_push_are_each_kept_and_nothing_lands_twice(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    pilot = host(tmp_path, forge)
    anyio.run(backlog, pilot.project, [{"id": i, "title": f"task {i}"} for i in "MCP"])
    pushed: list[str] = []
    committed: list[str] = []

    def person(forge: Forge, number: int, head: str) -> None:
        branch = forge.pulls[number].branch
        if branch == "wvo/M":  # merged by hand, before any review
            forge.merge_by_hand(number)
        elif branch == "wvo/C" and not committed:  # a person's commit on its branch
            committed.append(forge.commit_on_branch(number, {"person.txt": "a person's fix\n"}))
        else:
            if not pushed:  # a person's push to main mid-queue
                pushed.append(forge.push_to_main({"main.txt": "on main\n"}))
            side.approve(forge, number)

    log = tmp_path / "autopilot.log"
    attend(forge, start(pilot, forge, log), log, person)
    tip = forge.tip()
    assert forge.contains(pushed[0], tip), "the person's push to main stays"
    assert forge.git("show", f"{tip}:person.txt") == "a person's fix"
    merged = {p.branch: p for p in forge.pulls.values()}
    assert set(merged) == {"wvo/M", "wvo/C", "wvo/P"}
    assert merged["wvo/M"].merged_by == "person" and merged["wvo/C"].merged_by == "autopilot"
    # Each text names the tree its merged head passed on: a head restacked, or carrying a
    # person's commit, has its text updated with it.
    for pull in (merged["wvo/C"], merged["wvo/P"]):
        tree = forge.git("rev-parse", f"{pull.head}^{{tree}}")
        assert f"They passed on tree `{tree}`" in pull.body, (pull.branch, pull.body)
    subjects = landed_subjects(forge)
    assert sum(s.startswith("Land ") for s in subjects) == 2, subjects  # C and P; M by hand
    assert statuses(pilot) == dict.fromkeys("MCP", "done")
    assert "has a commit the queue did not push" in log.read_text()


def test_a_pull_request_a_person_closes_blocks_its_task_and_asks_them(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    pilot = host(tmp_path, forge)
    anyio.run(backlog, pilot.project, [{"id": "X", "title": "unwanted"}])
    log = tmp_path / "autopilot.log"
    attend(forge, start(pilot, forge, log), log, lambda f, n, h: f.close(n))
    [pull] = forge.pulls.values()
    assert pull.state == "closed" and not pull.merged
    assert statuses(pilot) == {"X": "blocked"}
    with open_db(pilot.project["state"]) as db:
        asked = db.execute("SELECT body FROM task_notes WHERE task_id = 'X' AND kind = "
                           "'question'").fetchall()  # fmt: skip
        claims = db.execute("SELECT count(*) FROM task_events WHERE task_id = 'X' AND "
                            "kind = 'claimed'").fetchone()[0]  # fmt: skip
    assert asked and "closed without a merge" in asked[0][0]
    assert claims == 1, "never silently redone"
    assert not any(s.startswith("Land X ") for s in landed_subjects(forge))


def test_rate_limits_a_revoked_token_and_a_5xx_hold_the_queue_and_lose_nothing(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    pilot = host(tmp_path, forge)
    anyio.run(backlog, pilot.project, [{"id": "L", "title": "limited"}])
    log = tmp_path / "autopilot.log"
    process = start(pilot, forge, log)

    def said(text: str, times: int = 1) -> None:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while log.read_text().count(text) < times:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)

    said(f"{side.pull(1)} carries it")
    forge.tokens.clear()
    said("the forge holds the queue")
    forge.tokens.add(side.token)
    said("answers again")
    with forge.lock:
        forge.remaining, forge.reset_at = 0, time.time() + 2
    said("the forge holds the queue", 2)
    said("answers again", 2)
    forge.secondary.append(1)
    said("the forge holds the queue", 3)
    said("answers again", 3)
    forge.failures.append(502)
    said("the forge holds the queue", 4)
    said("answers again", 4)
    attend(forge, process, log, approve)
    text = log.read_text()
    assert side.refused in text and side.primary in text
    assert side.secondary in text and side.failed in text
    assert statuses(pilot) == {"L": "done"}
    assert sum(s.startswith("Land L ") for s in landed_subjects(forge)) == 1
    with open_db(pilot.project["state"]) as db:
        claims = db.execute("SELECT count(*) FROM task_events WHERE task_id = 'L' AND "
                            "kind = 'claimed'").fetchone()[0]  # fmt: skip
    assert claims == 1, "no worker was charged for the forge's faults"


@pytest.mark.postgres
def test_two_hosts_share_one_queue_and_one_forge_and_land_each_task_once(
    tmp_path: Path, forge: Forge, side: Side, pg_migrated: Callable[[str], str]
) -> None:
    url = pg_migrated("forge_hosts")
    a, b = (host(tmp_path, forge, name, WVO_DATABASE_URL=url) for name in ("a", "b"))
    ids = [f"H{n}" for n in range(6)]
    anyio.run(partial(backlog, a.project, [{"id": i, "title": f"task {i}"} for i in ids],
                      WVO_DATABASE_URL=url))  # fmt: skip
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    first, second = start(a, forge, logs[0]), start(b, forge, logs[1])
    attend(forge, first, logs[0], approve)
    attend(forge, second, logs[1], approve)
    assert statuses(a) == dict.fromkeys(ids, "done")
    subjects = landed_subjects(forge)
    for task_id in ids:
        assert sum(s.startswith(f"Land {task_id} ") for s in subjects) == 1, subjects
    assert sorted(p.branch for p in forge.pulls.values()) == sorted(f"wvo/{i}" for i in ids)


def test_a_hostile_worker_finds_no_forge_token_and_reaches_no_forge(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    pilot = host(tmp_path, forge)
    port = forge.web.rsplit(":", 1)[1]
    spec = {"secrets": [side.token], "tcp": [f"127.0.0.1:{port}"],
            "push": [forge.url, str(forge.bare)]}  # fmt: skip
    anyio.run(backlog, pilot.project, [
        {"id": "H", "title": "hunts", "metadata": {"fake": "probe", "fake_probe": spec}},
    ])  # fmt: skip
    log = tmp_path / "autopilot.log"
    attend(forge, start(pilot, forge, log), log, approve)
    summaries = [s for s, _ in checkpoints(pilot, "H")]
    found = [o for s in summaries if s.startswith("probe ") for o in json.loads(s[6:])]
    assert {o["probe"] for o in found} >= {"secret", "tcp", "push"}, found
    assert [o for o in found if o["ok"]] == [], found
    # The forge saw only the autopilot: one token, and no branch but those the queue pushed.
    heads = forge.git("for-each-ref", "--format=%(refname)", "refs/heads/").split()
    assert heads == ["refs/heads/main", "refs/heads/wvo/H"], heads
    assert statuses(pilot) == {"H": "done"}
    for run_log in (pilot.project["state"] / "runs").rglob("*.log"):
        assert side.token not in run_log.read_text(errors="replace"), run_log


def test_a_pull_request_closed_while_its_task_is_with_a_worker_is_not_opened_again(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    pilot = host(tmp_path, forge)
    anyio.run(backlog, pilot.project, [
        {"id": "W", "title": "reworked", "metadata": {"fake_fix": {"fix.txt": "fixed\n"}}},
    ])  # fmt: skip
    log = tmp_path / "autopilot.log"
    process = start(pilot, forge, log)

    def closes_once_returned(forge: Forge, number: int, head: str) -> None:
        forge.review(number, "CHANGES_REQUESTED", "Not like this.")
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not any("returned this to a worker" in body for _, body in forge.comments):
            assert time.monotonic() < deadline and process.poll() is None, log.read_text()
            time.sleep(0.02)
        forge.close(number)  # while a worker makes the changes

    attend(forge, process, log, closes_once_returned)
    assert len(forge.pulls) == 1, "no second pull request opened behind the person's back"
    [pull] = forge.pulls.values()
    assert pull.state == "closed" and not pull.merged
    assert statuses(pilot) == {"W": "blocked"}
    with open_db(pilot.project["state"]) as db:
        asked = db.execute("SELECT count(*) FROM task_notes WHERE task_id = 'W' AND kind = "
                           "'question'").fetchone()[0]  # fmt: skip
    assert asked == 1
    assert not any(s.startswith("Land W ") for s in landed_subjects(forge))


def test_a_branch_that_merges_through_the_merge_queue_lands_through_it(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    side.use_queue(forge)
    pilot = host(tmp_path, forge)
    ids = ["Q1", "Q2", "Q3"]
    anyio.run(backlog, pilot.project, [{"id": i, "title": f"task {i}"} for i in ids])
    log = tmp_path / "autopilot.log"
    attend(forge, start(pilot, forge, log), log, approve)
    assert all(p.merged and p.merged_by == side.queued_by for p in forge.pulls.values())
    assert len(forge.pulls) == len(ids)
    assert statuses(pilot) == dict.fromkeys(ids, "done")
    # Never merged by the REST endpoint, which the branch's merge queue rule refuses.
    assert not [r for r in forge.requests if r[1].endswith("/merge") and r[2] == 200]
    assert any(r[0] == "POST" and side.enqueues in r[1] for r in forge.requests)
    assert f"added to the {side.queue}" in log.read_text()


def test_a_pull_request_its_queue_merged_as_the_queue_looked_lands_and_goes_back_to_no_one(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    """The queue read the pull request open, then its queue entry gone (GitLab's car
    `merged`): it merged, and lands, rather than going back to a worker as dropped."""
    side.use_queue(forge)
    if isinstance(forge, gitlab.Forge):
        forge.merge_late = True
    pilot = host(tmp_path, forge)
    anyio.run(backlog, pilot.project, [{"id": "L", "title": "late"}])
    log = tmp_path / "autopilot.log"
    attend(forge, start(pilot, forge, log), log, approve)
    [pull] = forge.pulls.values()
    assert pull.merged and pull.merged_by == side.queued_by
    assert statuses(pilot) == {"L": "done"}
    returned = [s for s, _ in checkpoints(pilot, "L") if f"{side.queue} removed it" in s]
    assert not returned, checkpoints(pilot, "L")


def test_a_merge_group_that_fails_goes_back_to_a_worker(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    side.use_queue(forge)
    forge.failing = lambda sha: forge.groups[:1] == [sha]  # the first merge group fails
    pilot = host(tmp_path, forge)
    anyio.run(backlog, pilot.project, [
        {"id": "G", "title": "grouped", "metadata": {"fake_fix": {"fix.txt": "fixed\n"}}},
    ])  # fmt: skip
    log = tmp_path / "autopilot.log"
    attend(forge, start(pilot, forge, log), log, approve)
    [pull] = forge.pulls.values()
    assert pull.merged and pull.merged_by == side.queued_by and len(forge.groups) == 2
    returned = [d for s, d in checkpoints(pilot, "G") if f"{side.queue} removed it" in s]
    assert returned, checkpoints(pilot, "G")
    if side.kind == "gitlab":  # it names the car's failed pipeline (GitHub: at the pull request)
        assert "FAILED: test_feature" in returned[0] and side.runs in returned[0], returned
    assert statuses(pilot) == {"G": "done"}


def test_a_labelled_issue_becomes_a_merged_change_that_closes_it(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    """A team's path with no YAML and no copying: a labelled issue, `import github:`, the
    autopilot through a pull request, a person's approval, and the issue closed by it."""

    number = forge.open_issue("Say hello", "Add a greeting.", ("wvo", "size: s"))
    pilot = host(tmp_path, forge)
    import_issues(pilot, forge)
    log = tmp_path / "autopilot.log"
    attend(forge, start(pilot, forge, log), log, approve)
    [pull] = forge.pulls.values()
    assert pull.merged and f"Closes #{number}." in pull.body
    assert forge.issues[number].state == "closed"
    assert statuses(pilot) == {side.task(number): "done"}
