"""How a person names a test for the quarantine: as the check's JUnit report names it (pure).

How a person names a test for the quarantine (pure): as the check's JUnit report names it,
`classname::name` (rules/junit.py). A pytest node id (`tests/test_x.py::test_y`) is what a
person copies from pytest's output, and no report holds it: quarantined as it is, it would
never match. Carried out by `wvo_mcp/services/flakes.py` (`put`).

It is refused, naming the report's form, rather than translated: pytest's classname is the
node id's path made dotted (from pytest's rootdir, after any `--junit-prefix`), which this
side cannot see, and a quarantine entry translated wrong would miss as silently."""

NODE_FILE = ".py"


def junit_form(node_id: str) -> str:
    """The name pytest's `--junitxml` gives the test of `node_id`, run from the rootdir the
    node id is relative to, without `--junit-prefix`: its path dotted, `.py` dropped, its
    classes appended, then `::` and the test's name with its parameters (as pytest's own
    `NodeId.parse` and `mangle_test_address` do)."""
    path, _, tail = node_id.partition("::")
    names, bracket, params = tail.partition("[")  # parameters may hold `::` and `[`
    *classes, name = names.split("::")
    dotted = path.replace("/", ".").removesuffix(NODE_FILE)
    return f"{'.'.join([dotted, *classes])}::{name}{bracket}{params}"


def refusal(test: str) -> str | None:
    """Why `test` is no JUnit report's name of a test, in words a person can act on; None
    where it may be one. Refused: a pytest node id or a bare file, whose path (before the
    first `::`) is a Python file. No report's classname ends in `.py` (pytest drops it), but
    for a test module named `py` itself."""
    path, sep, _ = test.partition("::")
    if not path.endswith(NODE_FILE):
        return None
    if not sep:
        return (
            f"{test!r} names a file, not a test: quarantine each test as its JUnit report names "
            "it, `classname::name` (pytest's `tests.test_x::test_y`)"
        )
    return (
        f"{test!r} is a pytest node id, which no JUnit report holds: it would never match. "
        f"pytest's --junitxml names that test {junit_form(test)!r} (run from the rootdir "
        "that node id is relative to, without --junit-prefix); quarantine it by that name, as "
        "`wvo-mcp quarantine list` or the report shows it"
    )
