"""How the workspace is mounted so a command cannot reach what the server trusts."""

from pathlib import Path

import pytest

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.sandbox.protect import Layout, Trusted, plan


def test_the_state_folder_is_hidden_the_rest_read_only_and_the_folders_to_them_pinned(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ws"
    (root / "a" / "b" / "state" / "backups").mkdir(parents=True)
    (root / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    layout = plan(
        root,
        [
            Trusted("state", root / "a" / "b" / "state", hidden=True),
            Trusted("backups", root / "a" / "b" / "state" / "backups"),  # inside: not seen
            Trusted("venv", root / ".venv"),
            Trusted("outside", tmp_path / "elsewhere"),  # not visible to the command at all
            Trusted("missing", root / "not-yet"),
        ],
        [str(root / ".venv" / "lib")],
    )
    assert layout == Layout(
        root.resolve(),
        (root / ".venv",),
        (root / "a", root / "a" / "b"),
        (root / "a" / "b" / "state",),
    )
    # Parents before what is inside them.
    assert layout.mounts() == [
        (root / "a", "pinned"),
        (root / ".venv", "read-only"),
        (root / "a" / "b", "pinned"),
        (root / "a" / "b" / "state", "hidden"),
    ]


def test_a_hidden_folder_inside_a_read_only_one_is_still_hidden(tmp_path: Path) -> None:
    """Mounted after the read-only folder, and nothing inside that is bound writable again."""
    root = tmp_path / "ws"
    (root / "tools" / "x" / "state" / "lib").mkdir(parents=True)
    layout = plan(
        root,
        [
            Trusted("tools", root / "tools"),
            Trusted("state", root / "tools" / "x" / "state", hidden=True),
            Trusted("inside state", root / "tools" / "x" / "state" / "lib"),
        ],
        [str(root / "tools" / "x" / "state" / "lib")],  # unreachable: may be imported from
    )
    assert layout.mounts() == [
        (root / "tools", "read-only"),
        (root / "tools" / "x" / "state", "hidden"),
    ]


@pytest.mark.parametrize("trusted", ["ws", "."])
def test_a_workspace_inside_a_trusted_path_is_refused(tmp_path: Path, trusted: str) -> None:
    (tmp_path / "ws").mkdir()
    with pytest.raises(ValidationFailed, match="inside the state folder"):
        plan(tmp_path / "ws", [Trusted("the state folder", tmp_path / trusted, True)], [])


def test_a_link_inside_the_workspace_to_a_trusted_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "real").mkdir()
    (tmp_path / "ws" / "state").symlink_to(tmp_path / "real")
    with pytest.raises(ValidationFailed, match="symbolic link"):
        plan(tmp_path / "ws", [Trusted("the state folder", tmp_path / "ws" / "state", True)], [])


def test_importing_from_the_workspace_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ws" / "lib").mkdir(parents=True)
    with pytest.raises(ValidationFailed, match="python -P -m wvo_mcp"):
        plan(tmp_path / "ws", [], [str(tmp_path / "ws" / "lib")])
    # A path hook's key (not a folder) and folders elsewhere are fine.
    plan(tmp_path / "ws", [], ["__editable__.x.__path_hook__", str(tmp_path)])
