"""Directives as prompts and resources, plus the status/context/task resources, read through
the SDK client (both protocol revisions: test_protocol_revisions.py)."""

from pathlib import Path

import pytest

from tests.conftest import ROOT, connect
from tests.integration.test_git_checkpoints import git, make_repo

pytestmark = pytest.mark.anyio

DIRECTIVES = {"work_loop", "error_recovery", "approvals", "writing_context", "planning"}


def _text(result: object) -> str:
    return result.contents[0].text  # type: ignore[attr-defined,no-any-return]


async def test_committed_and_the_persons_directives_win_and_add(
    state_root: Path, tmp_path: Path
) -> None:
    """The project's `directives/` as committed beats the person's (in the state folder),
    which beats the packaged copies, file by file; the working tree is never read. Both are
    read at each use: an edit to the state folder, or a new commit, shows without a restart."""
    workspace = make_repo(tmp_path / "project")
    (workspace / "directives").mkdir()
    (workspace / "directives" / "work-loop.md").write_text("# Our loop\n\nShip small.\n")
    (workspace / "directives" / "release.md").write_text("# Releasing\n\nTag, then push.\n")
    git(workspace, "add", "directives")
    git(workspace, "commit", "-q", "-m", "our directives")
    person = state_root / "directives"
    person.mkdir(parents=True)
    (person / "work-loop.md").write_text("# The person's loop\n")
    (person / "approvals.md").write_text("# Ask me first\n")
    (person / "mine.md").write_text("# Mine\n")

    async with connect(state_root, WVO_WORKSPACE_ROOT=workspace) as a:
        prompts = {p.name: p for p in (await a.client.list_prompts()).prompts}
        assert set(prompts) == DIRECTIVES | {"release", "mine"}
        assert prompts["work_loop"].title == "Our loop"
        assert prompts["approvals"].title == "Ask me first"
        loop = await a.client.get_prompt("work_loop", {})
        assert loop.messages[0].content.text == "# Our loop\n\nShip small.\n"  # type: ignore[union-attr]
        # An uncommitted edit is not read; a commit shows at once.
        release = workspace / "directives" / "release.md"
        release.write_text("# Releasing\n\nTag, sign, push.\n")
        assert "sign" not in _text(await a.client.read_resource("wvo://directives/release"))
        git(workspace, "commit", "-q", "-am", "sign releases")
        assert "sign" in _text(await a.client.read_resource("wvo://directives/release"))
        (person / "mine.md").write_text("# Mine, edited\n")
        assert _text(await a.client.read_resource("wvo://directives/mine")) == "# Mine, edited\n"
        packaged = _text(await a.client.read_resource("wvo://directives/planning"))
        assert packaged == (ROOT / "directives" / "planning.md").read_text()
