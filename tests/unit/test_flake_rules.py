"""A failure that did not come back is a flake only where it is proven one on the target
(rules/flakes.py, issue 69): what failed is known to flake there, or fails there too."""

from wvo_mcp.rules.flakes import WHOLE, failing, named, on_target, suspects

X, Y = "tests.test_x::test_x", "tests.test_y::test_y"


def test_what_failed_is_named_by_its_tests_else_the_check_as_a_whole() -> None:
    assert failing([X, Y]) == {X, Y}
    assert failing([]) == {WHOLE}  # no report, or one that names no failing test


def test_only_what_is_known_to_flake_on_the_target_is_a_flake() -> None:
    assert suspects(failing([X]), known={X, Y}) == frozenset()  # a flake
    assert suspects(failing([X, Y]), known={X}) == {Y}  # Y never flaked there
    assert suspects(failing([X]), known=set()) == {X}
    # A test a worker names as the check itself is still a test: the whole check's record
    # excuses the check, never a test whose name a change writes.
    assert suspects(failing(["the check"]), known={WHOLE}) == {"the check"}
    assert suspects(failing([]), known={WHOLE}) == frozenset()


def test_the_targets_own_tree_proves_it_only_where_each_suspect_fails_there_too() -> None:
    assert on_target({X}, frozenset({X, Y})) is True
    assert on_target({X, Y}, frozenset({X})) is False  # Y fails only with the change
    assert on_target({X}, frozenset()) is False  # it passed there
    assert on_target({X}, None) is False  # it could not run there: that shows nothing
    assert on_target({WHOLE}, frozenset({WHOLE})) is True


def test_names_are_said_in_order_and_bounded() -> None:
    assert named({Y, WHOLE, X}) == f"{X}, {Y}, the check as a whole"
    assert named({f"t{n}" for n in range(12)}, limit=2) == "t0, t1 and 10 more"
