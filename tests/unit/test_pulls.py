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


def test_ready_only_once_every_requirement_is_met() -> None:
    assert pulls.judge(pull(), HEAD, True, REQUIRED, GREEN, [review("ann", "APPROVED")]).kind == (
        "ready"
    )
    waiting = pulls.judge(pull(), HEAD, True, REQUIRED, [check("test")], [review("a", "APPROVED")])
    assert (waiting.kind, waiting.why) == ("waiting", "waiting for checks: lint")
    unreviewed = pulls.judge(pull(), HEAD, True, REQUIRED, GREEN, [review("ann", "COMMENTED")])
    assert unreviewed.why == "waiting for a review (0 of 1 approvals)"


def test_what_the_person_did_comes_first() -> None:
    assert pulls.judge(pull(merged=True, state="closed"), HEAD, False, REQUIRED, [], []).kind == (
        "landed"
    )
    assert pulls.judge(pull(state="closed"), HEAD, True, REQUIRED, GREEN, []).kind == "closed"
    assert pulls.judge(pull(head=OLD), HEAD, True, REQUIRED, GREEN, []).kind == "moved"


def test_a_failed_required_check_and_asked_changes_go_back_with_what_they_said() -> None:
    failed = pulls.judge(
        pull(),
        HEAD,
        True,
        REQUIRED,
        [check("test", "failure", "E   assert 1 == 2"), check("lint")],
        [],
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
    changes = pulls.judge(pull(), HEAD, True, REQUIRED, GREEN, [asked])
    summary, details, files = pulls.returned(changes, pull())
    assert "ann requested changes" in summary and "a.py:4: this name" in details
    assert files == ["a.py"]
    # Asked of an earlier head: the reviewer looks again; nothing goes back.
    stale = pulls.judge(
        pull(), HEAD, True, REQUIRED, GREEN, [review("ann", "CHANGES_REQUESTED", OLD)]
    )
    assert (stale.kind, stale.why) == ("waiting", "waiting for ann to review the new head")


def test_reviews_unread_while_a_required_check_runs_wait_for_the_checks() -> None:
    found = pulls.judge(pull(), HEAD, True, REQUIRED, [check("test", "pending")], None)
    assert (found.kind, found.why) == ("waiting", "waiting for checks: test, lint")
    failed = pulls.judge(pull(), HEAD, True, REQUIRED, [check("test", "failure")], None)
    assert failed.kind == "failed"


def test_behind_its_target_it_is_restacked_once_reviewed() -> None:
    approved = [review("ann", "APPROVED")]
    assert pulls.judge(pull(), HEAD, False, REQUIRED, GREEN, approved).kind == "behind"
    unreviewed = pulls.judge(pull(), HEAD, False, REQUIRED, GREEN, [])
    assert unreviewed.kind == "waiting" and "restacked onto the target once approved" in (
        unreviewed.why
    )
    conflicted = pulls.judge(pull(mergeable_state="dirty"), HEAD, True, REQUIRED, GREEN, approved)
    assert conflicted.kind == "behind"


STATES = st.sampled_from(["pending", "success", "failure"])
REVIEWS = st.sampled_from(["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED"])


@given(
    states=st.lists(STATES, min_size=2, max_size=2),
    reviews=st.lists(st.tuples(st.sampled_from("abc"), REVIEWS, st.booleans()), max_size=6),
    current=st.booleans(),
    approvals=st.integers(0, 2),
)
def test_nothing_merges_that_a_requirement_does_not_allow(
    states: list[str], reviews: list[tuple[str, str, bool]], current: bool, approvals: int
) -> None:
    required = Requirements(("test", "lint"), approvals, True)
    checks = [check("test", states[0]), check("lint", states[1])]
    given_reviews = [review(a, s, HEAD if on_head else OLD) for a, s, on_head in reviews]
    found = pulls.judge(pull(), HEAD, current, required, checks, given_reviews)
    if found.kind == "ready":
        assert current and states == ["success", "success"]
        latest = {a: s for a, s, _ in reviews if s != "COMMENTED"}
        assert "CHANGES_REQUESTED" not in latest.values()
        assert sum(s == "APPROVED" for s in latest.values()) >= approvals


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
        "**Task T1**: Add login",
        "Users log in.",
        "exactly each head it pushes here",
        "make test: 12 passed",
        "reviewer-1: approve",
        "$0.12",
        "https://forge.invalid/issues/4",
    ):
        assert part in body
    assert pulls.title(summary) == "Add login (T1)"
    assert "Closes" not in body
    born = pulls.body(pulls.Summary("T2", "t", "", "", "", "", (), "team/project#7"))
    assert "Closes team/project#7." in born


def test_nothing_more_is_read_once_the_forge_says_it_may_merge() -> None:
    assert pulls.cleared(pull(), HEAD, True, REQUIRED)
    assert not pulls.cleared(pull(mergeable_state="blocked"), HEAD, True, REQUIRED)
    assert not pulls.cleared(pull(), HEAD, False, REQUIRED)  # behind the target
    assert not pulls.cleared(pull(head=OLD), HEAD, True, REQUIRED)  # someone else's head
    no_review = Requirements(checks=("test",), approvals=0)  # changes asked would not block
    assert not pulls.cleared(pull(), HEAD, True, no_review)
