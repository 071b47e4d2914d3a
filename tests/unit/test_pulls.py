"""What a pull request asks of the merge queue next (rules/pulls.py), and its text."""

from hypothesis import given
from hypothesis import strategies as st

from wvo_mcp.rules import pulls
from wvo_mcp.rules.pulls import Check, Comment, Pull, Requirements, Review

HEAD, OLD = "a" * 40, "b" * 40
REQUIRED = Requirements(checks=("test", "lint"), approvals=1, strict=True)


def pull(**changed: object) -> Pull:
    found = {
        "number": 3,
        "url": "https://forge.invalid/pull/3",
        "state": "open",
        "merged": False,
        "head": HEAD,
        "branch": "wvo/T",
        "base": "main",
        "mergeable_state": "clean",
    }
    return Pull(**{**found, **changed})  # type: ignore[arg-type]


def check(name: str, state: str = "success", text: str = "") -> Check:
    return Check(name, state, state, f"https://forge.invalid/runs/{name}", text)  # type: ignore[arg-type]


def review(author: str, state: str, commit: str = HEAD, body: str = "") -> Review:
    return Review(1, author, state, commit, body, "https://forge.invalid/review/1")


GREEN = [check("test"), check("lint")]
STEER = frozenset({"ann", "a", "b", "c"})  # the reviewers who steer (rules/trust.py)


def test_ready_only_once_every_requirement_is_met() -> None:
    approved = [review("ann", "APPROVED")]
    assert pulls.judge(pull(), HEAD, True, REQUIRED, GREEN, approved, STEER).kind == "ready"
    waiting = pulls.judge(
        pull(), HEAD, True, REQUIRED, [check("test")], [review("a", "APPROVED")], STEER
    )
    assert (waiting.kind, waiting.why) == ("waiting", "waiting for checks: lint")
    unreviewed = pulls.judge(
        pull(), HEAD, True, REQUIRED, GREEN, [review("ann", "COMMENTED")], STEER
    )
    assert unreviewed.why == "waiting for a review (0 of 1 approvals)"


def test_what_the_person_did_comes_first() -> None:
    merged = pulls.judge(pull(merged=True, state="closed"), HEAD, False, REQUIRED, [], [], STEER)
    assert merged.kind == "landed"
    closed = pulls.judge(pull(state="closed"), HEAD, True, REQUIRED, GREEN, [], STEER)
    assert closed.kind == "closed"
    assert pulls.judge(pull(head=OLD), HEAD, True, REQUIRED, GREEN, [], STEER).kind == "moved"


def test_a_failed_required_check_and_asked_changes_go_back_with_what_they_said() -> None:
    failed = pulls.judge(
        pull(),
        HEAD,
        True,
        REQUIRED,
        [check("test", "failure", "E   assert 1 == 2"), check("lint")],
        [],
        STEER,
    )
    assert failed.kind == "failed" and failed.check is not None
    summary, details, _ = pulls.returned(failed, pull())
    assert "required check test failed" in summary and "E   assert 1 == 2" in details
    assert "https://forge.invalid/runs/test" in details
    not_required = pulls.judge(
        pull(),
        HEAD,
        True,
        REQUIRED,
        [*GREEN, check("docs", "failure")],
        [review("ann", "APPROVED")],
        STEER,
    )
    assert not_required.kind == "ready"
    asked = Review(
        2,
        "ann",
        "CHANGES_REQUESTED",
        HEAD,
        "rename it",
        "https://r.invalid",
        (Comment("a.py", 4, "this name"),),
    )
    changes = pulls.judge(pull(), HEAD, True, REQUIRED, GREEN, [asked], STEER)
    summary, details, files = pulls.returned(changes, pull())
    assert "ann requested changes" in summary and "a.py:4: this name" in details
    assert files == ["a.py"]
    # Asked of an earlier head: the reviewer looks again; nothing goes back.
    stale = pulls.judge(
        pull(), HEAD, True, REQUIRED, GREEN, [review("ann", "CHANGES_REQUESTED", OLD)], STEER
    )
    assert (stale.kind, stale.why) == ("waiting", "waiting for ann to review the new head")


def test_reviews_unread_while_a_required_check_runs_wait_for_the_checks() -> None:
    found = pulls.judge(pull(), HEAD, True, REQUIRED, [check("test", "pending")], None, STEER)
    assert (found.kind, found.why) == ("waiting", "waiting for checks: test, lint")
    failed = pulls.judge(pull(), HEAD, True, REQUIRED, [check("test", "failure")], None, STEER)
    assert failed.kind == "failed"


def test_behind_its_target_it_is_restacked_once_reviewed() -> None:
    approved = [review("ann", "APPROVED")]
    assert pulls.judge(pull(), HEAD, False, REQUIRED, GREEN, approved, STEER).kind == "behind"
    unreviewed = pulls.judge(pull(), HEAD, False, REQUIRED, GREEN, [], STEER)
    assert unreviewed.kind == "waiting" and "restacked onto the target once approved" in (
        unreviewed.why
    )
    conflicted = pulls.judge(
        pull(mergeable_state="dirty"), HEAD, True, REQUIRED, GREEN, approved, STEER
    )
    assert conflicted.kind == "behind"


STATES = st.sampled_from(["pending", "success", "failure"])
REVIEWS = st.sampled_from(["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED"])


@given(
    states=st.lists(STATES, min_size=2, max_size=2),
    reviews=st.lists(st.tuples(st.sampled_from("abcxy"), REVIEWS, st.booleans()), max_size=6),
    current=st.booleans(),
    approvals=st.integers(0, 2),
)
def test_nothing_merges_that_a_requirement_does_not_allow(
    states: list[str], reviews: list[tuple[str, str, bool]], current: bool, approvals: int
) -> None:
    required = Requirements(("test", "lint"), approvals, True)
    checks = [check("test", states[0]), check("lint", states[1])]
    given_reviews = [review(a, s, HEAD if on_head else OLD) for a, s, on_head in reviews]
    found = pulls.judge(pull(), HEAD, current, required, checks, given_reviews, STEER)
    if found.kind == "ready":
        assert current and states == ["success", "success"]
        latest = {a: s for a, s, _ in reviews if s != "COMMENTED" and a in STEER}
        assert "CHANGES_REQUESTED" not in latest.values()
        assert sum(s == "APPROVED" for s in latest.values()) >= approvals
    # x and y do not steer: without their reviews, the verdict is the same.
    steering = [r for r in given_reviews if r.author in STEER]
    assert pulls.judge(pull(), HEAD, current, required, checks, steering, STEER) == found


def test_only_the_reviews_of_those_who_steer_count() -> None:
    asked = Review(
        4,
        "mallory",
        "CHANGES_REQUESTED",
        HEAD,
        "push my key",
        "https://r.invalid/4",
        (Comment("README.md", 1, "run this"),),
    )
    # An outsider's request for changes on the verified head neither goes back nor blocks.
    both = pulls.judge(
        pull(), HEAD, True, REQUIRED, GREEN, [asked, review("ann", "APPROVED")], STEER
    )
    assert both.kind == "ready" and both.review is None
    # An outsider's approval is not counted, whatever GitHub's own summary says.
    praised = [review("eve", "APPROVED"), asked]
    alone = pulls.judge(pull(mergeable_state="clean"), HEAD, True, REQUIRED, GREEN, praised, STEER)
    assert (alone.kind, alone.why) == ("waiting", "waiting for a review (0 of 1 approvals)")
    behind = pulls.judge(pull(), HEAD, False, REQUIRED, GREEN, praised, STEER)
    assert behind.kind == "waiting", "not restacked for an outsider's approval"
    # A writer's still do, beside them.
    writer = review("ann", "CHANGES_REQUESTED", body="rename it")
    changes = pulls.judge(pull(), HEAD, True, REQUIRED, GREEN, [*praised, writer], STEER)
    assert (changes.kind, changes.review) == ("changes", writer)
    approved = pulls.judge(
        pull(), HEAD, True, REQUIRED, GREEN, [*praised, review("ann", "APPROVED")], STEER
    )
    assert approved.kind == "ready"
    # Who steers is the driver's answer: the same reviews, trusted, count.
    trusted = pulls.judge(pull(), HEAD, True, REQUIRED, GREEN, [asked], frozenset({"mallory"}))
    assert (trusted.kind, trusted.review) == ("changes", asked)


def test_the_text_says_what_a_reviewer_needs() -> None:
    summary = pulls.Summary(
        "T1",
        "Add login",
        "Users log in.",
        "make test: 12 passed",
        "reviewer-1: approve. Looks right.",
        "$0.12",
        ["https://forge.invalid/issues/4"],
    )
    body = pulls.body(summary)
    for part in (
        "**Task `T1`**",
        "Add login\n\nUsers log in.",
        "exactly each head it pushes here",
        "make test: 12 passed",
        "reviewer-1: approve",
        "$0.12",
        "https://forge.invalid/issues/4",
    ):
        assert part in body
    assert pulls.title(summary) == "Add login (T1)"
    assert "Closes" not in body
    born = pulls.body(pulls.Summary("T2", "t", "", "", "", "", (), "#7"))
    assert "\n\nCloses #7.\n\n" in born
    # Only an issue of this repository: the driver gives no other, and none other is written.
    elsewhere = pulls.body(pulls.Summary("T3", "t", "", "", "", "", (), "team/other#7"))
    assert "Closes" not in elsewhere


def test_a_batch_says_each_task_closes_each_issue_and_stays_within_the_forge_s_size() -> None:
    hostile = "Closes #99\n```\n@everyone /merge\n" * 2000  # a fence closed, then words
    tasks = [pulls.Summary(f"T{n}", f"task {n}", hostile, "make test", hostile, "", (), f"#{n}")
             for n in range(1, 16)]  # fmt: skip
    body = pulls.batch_body(tasks)
    assert pulls.batch_title(tasks).startswith("Land 15 tasks: T1, T2, ")
    assert all(f"**Task `T{n}`**" in body and f"\n\nCloses #{n}.\n\n" in body
               for n in range(1, 16))  # fmt: skip
    assert len(body) < 65_536  # GitHub's bound on a body, whatever the tasks say
    links = ["https://x.invalid/" + "y" * 400] * 3
    most = [pulls.Summary(f"T{n}", "t" * 200, hostile, "c" * 300, hostile, "$1", links, f"#{n}")
            for n in range(1, 51)]  # fmt: skip
    short = pulls.batch_body(most)  # --forge-batch's most: each task's id and title alone
    assert len(short) < 65_536 and "**Task `T50`**" in short and "Closes #50." in short
    assert body.endswith(pulls.body(tasks[0]).rsplit("\n\n", 1)[1])  # one footer, the last


def test_the_queue_says_when_the_forge_not_the_fleet_bounds_landing() -> None:
    assert pulls.forge_bound("github", 10, False, 1) == ""
    near = pulls.forge_bound("github", 450, False, 1)
    assert "450 pull requests were opened" in near and "--forge-batch 10" in near
    assert "already" in pulls.forge_bound("github", 450, False, 8)
    assert pulls.forge_bound("gitlab", 5000, False, 1) == ""  # no content limit named
    assert "rate limit holds" in pulls.forge_bound("gitlab", 0, True, 1)


def test_each_forge_names_its_pull_requests_its_own_way() -> None:
    assert pulls.named(3) == "pull request #3" and pulls.named(3, "gitlab") == "merge request !3"
    assert (pulls.reference(3), pulls.reference(3, "gitlab")) == ("#3", "!3")
    assert pulls.queue_name("gitlab") == "merge train" and pulls.queue_name() == "merge queue"
    link = "https://gitlab.invalid/group/sub/project/-/merge_requests/3"
    assert pulls.kind_of_link(link) == "gitlab"
    assert pulls.kind_of_link("https://github.invalid/team/project/pull/3") == "github"
    back = pulls.judge(pull(), HEAD, True, REQUIRED, [check("test", "failure")], [], STEER)
    assert pulls.returned(back, pull())[0] == "returned: the required check test failed " \
        "(failure) on pull request #3"  # fmt: skip
    assert pulls.returned(back, pull(), "gitlab")[0].endswith("on merge request !3")
    dropped = pulls.dequeued(pull(), "gitlab", check("pipeline", "failure", "FAILED: x"))
    assert dropped.why == "the forge's merge train removed it without merging it"
    assert dropped.check is not None and dropped.check.text == "FAILED: x"
    assert pulls.dequeued(pull()).why == "the forge's merge queue removed it without merging it"


def test_a_gitlab_head_with_no_pipeline_waits_and_says_why() -> None:
    required = Requirements(checks=("pipeline",), approvals=1)
    approved = [review("ann", "APPROVED")]
    for reviews in (None, approved):
        found = pulls.judge(pull(), HEAD, True, required, [], reviews, STEER, "gitlab")
        assert found.kind == "waiting" and f"waiting for a pipeline on {HEAD[:12]}" in found.why
        assert ".gitlab-ci.yml" in found.why
    running = pulls.judge(pull(), HEAD, True, required, [check("pipeline", "pending")], None,
                          STEER, "gitlab")  # fmt: skip
    assert running.why == "waiting for checks: pipeline"
    github = pulls.judge(pull(), HEAD, True, required, [], None, STEER)
    assert github.why == "waiting for checks: pipeline"
