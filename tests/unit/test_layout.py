"""The house's shape: no module grows past what a reader takes in, and the package's top level
stays a short list (issue 71)."""

from tests.conftest import ROOT

LONGEST = 800  # lines of a module under wvo_mcp/
AT_THE_TOP = 20  # .py files directly in wvo_mcp/


def test_every_module_is_at_most_800_lines():
    long = {
        path.relative_to(ROOT).as_posix(): lines
        for path in sorted((ROOT / "wvo_mcp").rglob("*.py"))
        if (lines := len(path.read_text().splitlines())) > LONGEST
    }
    assert not long, (
        f"modules over {LONGEST} lines (lines each): {long}; split each by job into modules "
        "whose names say it"
    )


def test_at_most_20_modules_at_the_top_level():
    top = sorted(path.name for path in (ROOT / "wvo_mcp").glob("*.py"))
    assert len(top) <= AT_THE_TOP, (
        f"{len(top)} modules directly in wvo_mcp/ (at most {AT_THE_TOP}): move one into the "
        f"package of its kind: {top}"
    )
