"""The merges `wvo-mcp init` makes into a person's files (pure): whatever the person's text,
theirs is kept, ours is added once, and a second merge changes nothing."""

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.wiring import clis, edits

ENTRY = {"command": "/opt/wvo-mcp", "args": ["serve"], "env": {"WVO_TOOLS": "worker"}}
SECTION = "## Work comes from wvo-mcp\n\nclaim_task first.\n"


def twice(
    merge: Callable[[str | None], edits.Change], existing: str | None
) -> tuple[str, edits.Change]:
    """The text of a first merge, and what a second merge of it does."""
    first = merge(existing)
    assert first.text is not None
    return first.text, merge(first.text)


@given(st.text())
def test_the_section_is_appended_once_after_any_text(theirs: str) -> None:
    if edits.BEGIN in theirs:
        return
    merged, again = twice(lambda old: edits.marked_section(old, SECTION, False), theirs)
    assert merged.startswith(theirs)
    assert merged.count(edits.BEGIN) == 1 and merged.endswith(edits.END + "\n")
    assert again.text is None


@given(
    st.dictionaries(
        st.text(min_size=1).filter(lambda k: k != "wvo"),
        st.dictionaries(st.sampled_from(["command", "url"]), st.text()),
        max_size=4,
    ),
    st.dictionaries(st.text(min_size=1).filter(lambda k: k != "mcpServers"), st.integers()),
)
def test_their_servers_and_keys_survive_the_json_merge(
    servers: dict[str, object], other: dict[str, int]
) -> None:
    theirs = json.dumps({**other, "mcpServers": servers})
    merged, again = twice(lambda old: edits.server_json(old, ENTRY, False), theirs)
    found = json.loads(merged)
    assert found["mcpServers"] == {**servers, "wvo": ENTRY}
    assert {k: v for k, v in found.items() if k != "mcpServers"} == other
    assert again.text is None


def test_the_toml_merge_keeps_comments_and_order() -> None:
    theirs = '# top\nmodel = "o3" # why\n\n[mcp_servers.docs] # mine\ncommand = "d"\n'
    merged, again = twice(lambda old: edits.server_toml(old, ENTRY, False), theirs)
    assert merged.startswith(theirs)
    assert tomllib.loads(merged)["mcp_servers"]["wvo"] == ENTRY
    assert again.text is None


def test_an_entry_of_theirs_named_wvo_is_replaced_only_when_forced() -> None:
    theirs = json.dumps({"mcpServers": {"wvo": {"command": "mine"}}})
    kept = edits.server_json(theirs, ENTRY, False)
    assert kept.text is None and "--force" in kept.note
    forced = edits.server_json(theirs, ENTRY, True)
    assert forced.text is not None and json.loads(forced.text)["mcpServers"]["wvo"] == ENTRY


@pytest.mark.parametrize("theirs", ["[1]", "null", '{"mcpServers": "x"}', "{"])
def test_json_that_is_not_a_configuration_is_refused(theirs: str) -> None:
    with pytest.raises(ValidationFailed, match="run init again"):
        edits.server_json(theirs, ENTRY, False)


def test_the_ignore_rule_goes_on_a_line_of_its_own() -> None:
    added = edits.ignore_rule("dist", "/.wvo/", ignored=False)
    assert added.text == "dist\n# wvo-mcp's state folder: its database and settings " + (
        "(wvo-mcp init)\n/.wvo/\n"
    )
    assert edits.ignore_rule("*\n", "/.wvo/", ignored=True).text is None


@pytest.mark.parametrize(
    ("printed", "usable"),
    [
        ("2.1.197 (Claude Code)", True),
        ("3.0 (Claude Code)", True),
        ("2.0.99 (Claude Code)", False),
        ("Claude Code", False),
    ],
)
def test_a_claude_version_is_judged_against_the_oldest_tested(printed: str, usable: bool) -> None:
    assert clis.judge("claude", Path("/bin/claude"), printed).usable is usable


# -- the providers file keeps up with the CLIs found -------------------------------------


def _ours(*kinds: str) -> str:
    from pathlib import Path

    from wvo_mcp.wiring.clis import Cli
    from wvo_mcp.wiring.init import providers_text

    return providers_text([Cli(k, Path(f"/opt/{k}/bin/{k}"), "9.9.9", True, "") for k in kinds])


def test_a_cli_found_later_is_added_to_the_persons_providers_file() -> None:
    from wvo_mcp import providers
    from wvo_mcp.wiring.edits import providers_file

    theirs = _ours("claude").replace("providers:\n", "providers:  # mine\n", 1)
    theirs = theirs.replace("providers:  # mine\n", "providers:\n# my comment\n", 1)
    theirs += "toolchain:\n  folders: [tools]\n"
    merged = providers_file(theirs, _ours("claude", "codex"))
    assert merged.text is not None and "added the provider(s) codex" in merged.note
    assert merged.text.startswith(theirs.split("toolchain:")[0].rstrip("\n"))  # theirs kept
    assert "# my comment" in merged.text and merged.text.endswith("folders: [tools]\n")
    found = providers.parse(merged.text, "providers.yaml")
    assert sorted(p.name for p in found.providers) == ["claude", "codex"]
    assert str(found.workers["codex"].executable) == "/opt/codex/bin/codex"
    again = providers_file(merged.text, _ours("claude", "codex"))
    assert again.text is None and "has a provider for each CLI found" in again.note


def test_an_indented_list_gets_its_indentation_and_an_odd_file_is_kept() -> None:
    from wvo_mcp import providers
    from wvo_mcp.wiring.edits import providers_file

    theirs = (
        "version: 1\nproviders:\n  - name: mine\n    preference: 1\n    tiers:\n"
        "      - {name: t, model: m, complexity: [1, 10], input_cost_per_1k: 0.001,\n"
        "         output_cost_per_1k: 0.002}\n\n# the end\n"
    )
    merged = providers_file(theirs, _ours("codex"))
    assert merged.text is not None, merged.note
    assert "\n  - name: codex\n" in merged.text and merged.text.endswith("\n\n# the end\n")
    assert sorted(p.name for p in providers.parse(merged.text, "p").providers) == [
        "codex", "mine"]  # fmt: skip
    odd = providers_file("providers: {claude: 1}\n", _ours("codex"))
    assert odd.text is None and "kept as it is" in odd.note
