"""Landing through pull requests on events: each test forge delivers its webhooks to a real
`serve --http` on the autopilot's database, as GitHub and GitLab do (signed, GitHub's
payloads held to @octokit/webhooks-schemas, GitLab's to its types), and the merge queue looks
at a pull request when a delivery says it may merge or go back, not every poll.

Every verdict is read from the forge's own state and its request log: each task lands once,
through its own pull request, in a few counted calls whatever its checks take; a lost
delivery still lands, by the safety poll; and a delivery's news makes the queue look, never
merge (the trust rule judges what the look reads)."""

import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import backlog
from tests.autopilot.test_pull_request_reviews import outsider_events, returned, until
from tests.autopilot.test_pull_requests import approve, attend, checkpoints, host, landed_subjects
from tests.autopilot.test_remote_landing import Host, statuses
from tests.forge import both
from tests.forge.both import Side, side_of
from tests.forge.description import available
from tests.forge.server import Forge
from tests.http.conftest import HttpServer, http_server
from wvo_mcp.sandbox import bwrap

pytestmark = [
    pytest.mark.skipif(not bwrap.probe().usable, reason=f"no bwrap: {bwrap.probe().detail}"),
    pytest.mark.skipif(not available(), reason="no @octokit/openapi (scripts/setup)"),
]
forge = both.landing  # the fixture: each scenario on the test GitHub and the test GitLab
side = both.side
SECRET = "the webhook's secret"
# Counted calls per landed change, as the issue bounds them: open, one look, merge on GitHub;
# GitLab's look is two reads (the merge request, its approvals).
PER_CHANGE = {"github": 3, "gitlab": 4}
LOOK = {"github": 1, "gitlab": 2}


def webhook(pilot: Host, forge: Forge) -> AbstractContextManager[HttpServer]:
    """`serve --http` on the autopilot's state folder, its webhook on for the forge's
    repository."""
    named = side_of(forge)
    return http_server(
        pilot.project["state"], WVO_WEBHOOK_SECRET=SECRET, WVO_GITLAB_WEBHOOK_SECRET=SECRET,
        WVO_WEBHOOK_REPOS=f"{named.kind}:{named.path}",
    )  # fmt: skip


def start(pilot: Host, forge: Forge, log: Path, *more: str) -> "subprocess.Popen[str]":
    args = [*pilot.args("--until-empty", "--via", "pull-request", "--forge-api", forge.api,
                        *more)]  # fmt: skip
    with log.open("w") as out:
        return subprocess.Popen(args, env=pilot.env, stdout=out, stderr=subprocess.STDOUT,
                                text=True, cwd=Path(__file__).parents[2])  # fmt: skip


def counted(forge: Forge, since: int = 0) -> list[tuple[str, str, int]]:
    """The requests the forge counts against the token's budget (GitHub: all but a 304)."""
    return [r for r in forge.requests[since:] if r[2] != 304]


def looked(request: tuple[str, str, int], number: int) -> bool:
    """A look's first request: GitHub's GraphQL query, GitLab's read of the merge request."""
    method, path, _ = request
    return (method, path) == ("POST", "/api/graphql") or (
        method == "GET" and path.endswith(f"/merge_requests/{number}"))  # fmt: skip


def landed_once(forge: Forge, ids: list[str]) -> None:
    by_branch = {p.branch: p for p in forge.pulls.values()}
    assert sorted(by_branch) == sorted(f"wvo/{i}" for i in ids), by_branch
    assert all(p.merged and p.merged_by == "autopilot" for p in by_branch.values())
    subjects = landed_subjects(forge)
    for task_id in ids:
        assert sum(s.startswith(f"Land {task_id} ") for s in subjects) == 1, subjects


def test_with_webhooks_each_change_lands_on_events_in_a_few_counted_calls(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    pilot = host(tmp_path, forge)
    ids = ["E1", "E2", "E3"]
    anyio.run(backlog, pilot.project, [{"id": i, "title": f"task {i}"} for i in ids])
    log = tmp_path / "autopilot.log"
    with webhook(pilot, forge) as server:
        forge.deliver_to(server.base, SECRET)
        # No look but for what a delivery asks: a safety poll longer than the run.
        attend(forge, start(pilot, forge, log, "--forge-safety-poll", "3600"), log, approve)
        forge.settled()
    landed_once(forge, ids)
    assert statuses(pilot) == {i: "done" for i in ids}
    said = log.read_text()
    assert "webhook deliveries come for" in said, said[-3000:]
    assert forge.sent and all(status == 200 for _, _, status in forge.sent), forge.sent
    # Counted from the first pull request opened: the start's reads (the repository, its
    # protection) are the run's, not a change's.
    opened = next(n for n, (method, path, _) in enumerate(forge.requests)
                  if method == "POST" and path.endswith(("/pulls", "/merge_requests")))  # fmt: skip
    spent = counted(forge, opened)
    pulls = [
        r for r in spent if r[1] == "/api/graphql" or "/pulls" in r[1] or "/merge_requests" in r[1]
    ]
    # A restack (under the strict policy a merge puts the others behind) pushes a new head:
    # its text says so (one edit), and the forge's checks on it are looked at once more.
    restacks = said.count(f"its {side.noun} is restacked")
    bound = PER_CHANGE[side.kind] * len(ids) + (1 + LOOK[side.kind]) * restacks
    assert len(pulls) <= bound, (restacks, pulls)
    # The run's own reads (the branch's protection, a reviewer's role, each kept a while).
    assert len(spent) - len(pulls) <= 6, spent


def test_a_lost_delivery_still_lands_by_the_safety_poll(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    pilot = host(tmp_path, forge)
    anyio.run(backlog, pilot.project, [{"id": "L", "title": "lost"}])
    # Every delivery of a review or an approval is lost: the forge never says it may merge.
    forge.lose = lambda event, payload: event == "pull_request_review" or (
        event == "Merge Request Hook"
        and (payload.get("object_attributes") or {}).get("action") in ("approval", "approved")
    )  # fmt: skip
    log = tmp_path / "autopilot.log"
    with webhook(pilot, forge) as server:
        forge.deliver_to(server.base, SECRET)
        attend(forge, start(pilot, forge, log, "--forge-safety-poll", "2"), log, approve)
        forge.settled()
    assert forge.lost, "no delivery was lost"
    landed_once(forge, ["L"])
    assert statuses(pilot) == {"L": "done"}


def test_a_delivery_wakes_a_look_and_never_merges_on_an_outsiders_say(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    """eve (no role) approves and mallory (a reader) asks for changes: GitHub and GitLab
    deliver both; the queue looks, shows them to a person and waits for a writer's review;
    their later reviews wake nothing (they were found not to steer)."""
    forge.roles.update(mallory="read")
    pilot = host(tmp_path, forge)
    state = pilot.project["state"]
    anyio.run(backlog, pilot.project, [{"id": "V", "title": "vetted"}])
    log = tmp_path / "autopilot.log"
    with webhook(pilot, forge) as server:
        forge.deliver_to(server.base, SECRET)
        process = start(pilot, forge, log, "--forge-safety-poll", "3600")

        def person(forge: Forge, number: int, head: str) -> None:
            forge.review(number, "APPROVED", "lgtm", user="eve")
            forge.review(number, "CHANGES_REQUESTED", "no", user="mallory")
            until(lambda: len(outsider_events(state, "V")) == 2, process, log)
            forge.settled()
            before = len(forge.requests)
            forge.review(number, "APPROVED", "again", user="eve")  # heard, and ignored
            forge.settled()
            # Read by the queue before the writer's review comes, so one look cannot be both.
            until(lambda: "eve's reviews of" in log.read_text(), process, log)
            assert not forge.pulls[number].merged and not returned(forge)
            side.approve(forge, number)  # a writer's: the look it wakes merges
            until(lambda: forge.pulls[number].merged, process, log)
            # One look since: the writer's approval's; eve's woke none.
            looks = [r for r in forge.requests[before:] if looked(r, number)]
            assert len(looks) == 1, forge.requests[before:]

        attend(forge, process, log, person)
    landed_once(forge, ["V"])
    assert "0 of 1 approvals" in log.read_text()


def batched(
    pilot: Host, forge: Forge, log: Path, person: Callable[[Forge, int, str], None], size: int
) -> None:
    """The autopilot to empty with `--forge-batch size`, on events, `person` attending."""
    with webhook(pilot, forge) as server:
        forge.deliver_to(server.base, SECRET)
        process = start(pilot, forge, log, "--forge-batch", str(size), "--forge-safety-poll",
                        "3600")  # fmt: skip
        attend(forge, process, log, person)
        forge.settled()


def test_in_batches_many_tasks_land_through_few_pull_requests_and_the_one_at_fault_alone(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    """`--forge-batch 6`: the forge's check fails any head that carries B05's first try;
    its batch is halved until B05 goes back to a worker alone, with the check's log; the
    others land, most in batches, each task its own commit."""
    pilot = host(tmp_path, forge)
    ids = [f"B{n:02}" for n in range(12)]
    tasks: list[dict[str, object]] = [{"id": i, "title": f"task {i}"} for i in ids]
    tasks[5]["metadata"] = {"fake_files": {"bad.txt": "bad\n"},
                            "fake_fix": {"bad.txt": "fixed\n"}}  # fmt: skip
    anyio.run(backlog, pilot.project, tasks)
    forge.failing = lambda sha: forge.git("show", f"{sha}:bad.txt", check=False) == "bad"
    log = tmp_path / "autopilot.log"
    batched(pilot, forge, log, approve, 6)
    assert statuses(pilot) == {i: "done" for i in ids}
    # Each task its own commit on main; the first-parent line only the forge's merges of
    # pull requests, most of them batches.
    every = forge.git("log", "--format=%s", "main").splitlines()
    assert all(any(s.startswith(f"Land {i} (") for s in every) for i in ids), every
    merged = [p for p in forge.pulls.values() if p.merged]
    merges = landed_subjects(forge)[: len(merged)]
    assert all(s.startswith("Land ") for s in merges), merges
    assert sum(s.startswith("Land ") and " tasks onto " in s for s in merges) >= 2, merges
    # Twelve tasks and one return: far fewer pull requests than one each (13).
    assert len(forge.pulls) <= 8, log.read_text()[-6000:]
    assert any(p.branch.startswith("wvo-batch/") for p in merged)
    returned_ = [d for s, d in checkpoints(pilot, "B05") if "failed" in s]
    assert returned_ and "FAILED: test_feature" in returned_[0], log.read_text()[-6000:]
    for other in ids:
        if other != "B05":
            assert not [s for s, _ in checkpoints(pilot, other) if "returned" in s], other


def test_a_review_asking_changes_of_a_batch_sends_each_task_out_alone(
    tmp_path: Path, forge: Forge, side: Side
) -> None:
    """A writer asks for changes on a batch: it is closed (said on it), and each of its
    tasks goes out in a pull request of its own, where the writer approves them."""
    pilot = host(tmp_path, forge)
    ids = [f"C{n}" for n in range(4)]
    anyio.run(backlog, pilot.project, [{"id": i, "title": f"task {i}"} for i in ids])
    log = tmp_path / "autopilot.log"

    def person(forge: Forge, number: int, head: str) -> None:
        if forge.pulls[number].branch.startswith("wvo-batch/"):
            forge.review(number, "CHANGES_REQUESTED", "One of these is not right.")
        else:
            side.approve(forge, number)

    batched(pilot, forge, log, person, 4)
    assert statuses(pilot) == {i: "done" for i in ids}
    batches = [p for p in forge.pulls.values() if p.branch.startswith("wvo-batch/")]
    assert batches and all(p.state == "closed" and not p.merged for p in batches)
    alone = {p.branch: p for p in forge.pulls.values() if p.merged}
    carried = {b.removeprefix("wvo/") for b in alone}
    assert carried <= set(ids) and carried >= {i for p in batches for i in ids if i in p.body}
    said = [body for n, body in forge.comments if n in {p.number for p in batches}]
    assert any("goes out in a" in body and "asked for changes" in body for body in said), said
    assert "each alone" in log.read_text()
