"""How the workspace is mounted so a command cannot reach what the server trusts."""

from pathlib import Path

import pytest

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.sandbox.protect import Layout, plan


def test_trusted_paths_inside_are_read_only_and_the_folders_to_them_pinned(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ws"
    (root / "a" / "b" / "state" / "backups").mkdir(parents=True)
    (root / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    layout = plan(
        root,
        [
            ("state", root / "a" / "b" / "state"),
            ("backups", root / "a" / "b" / "state" / "backups"),  # inside another: dropped
            ("venv", root / ".venv"),
            ("outside", tmp_path / "elsewhere"),  # not visible to the command at all
            ("missing", root / "not-yet"),
        ],
        [str(root / ".venv" / "lib")],
    )
    assert layout == Layout(
        root.resolve(),
        (root / ".venv", root / "a" / "b" / "state"),
        (root / "a", root / "a" / "b"),
    )
    mounts = layout.mounts()
    # Parents before what is inside them.
    assert [p.name for p, _ in mounts] == ["a", ".venv", "b", "state"]
    assert [w for _, w in mounts] == [True, False, True, False]


@pytest.mark.parametrize("trusted", ["ws", "."])
def test_a_workspace_inside_a_trusted_path_is_refused(tmp_path: Path, trusted: str) -> None:
    (tmp_path / "ws").mkdir()
    with pytest.raises(ValidationFailed, match="inside the state folder"):
        plan(tmp_path / "ws", [("the state folder", tmp_path / trusted)], [])


def test_a_link_inside_the_workspace_to_a_trusted_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "real").mkdir()
    (tmp_path / "ws" / "state").symlink_to(tmp_path / "real")
    with pytest.raises(ValidationFailed, match="symbolic link"):
        plan(tmp_path / "ws", [("the state folder", tmp_path / "ws" / "state")], [])


def test_importing_from_the_workspace_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ws" / "lib").mkdir(parents=True)
    with pytest.raises(ValidationFailed, match="python -P -m wvo_mcp"):
        plan(tmp_path / "ws", [], [str(tmp_path / "ws" / "lib")])
    # A path hook's key (not a folder) and folders elsewhere are fine.
    plan(tmp_path / "ws", [], ["__editable__.x.__path_hook__", str(tmp_path)])
