"""A node_modules in a sandbox is a writable view of the person's (sandbox/toolchain.py): a
private tmpfs linking to each entry of the read-only copy, caches left out, the person's own
links kept as they read."""

import os
from pathlib import Path

import pytest

from wvo_mcp.sandbox import bwrap, toolchain


def test_a_node_folder_is_a_view_of_its_entries_less_its_caches(tmp_path: Path) -> None:
    modules = tmp_path / "node_modules"
    for name in ("ava", "@vitest", ".bin", ".cache", ".vite"):
        (modules / name).mkdir(parents=True)
    (modules / ".package-lock.json").write_text("{}")
    (modules / "linked").symlink_to("../packages/linked")
    fd = os.open(modules, os.O_RDONLY | os.O_DIRECTORY)
    try:
        entries = toolchain._view(fd, "node")
    finally:
        os.close(fd)
    assert entries is not None
    assert [(e.name, e.target) for e in entries] == [
        (".bin", None), (".package-lock.json", None), ("@vitest", None), ("ava", None),
        ("linked", "../packages/linked"),
    ]  # fmt: skip
    bind = toolchain.Bind(7, Path("/w/node_modules"), (".cache",), entries)
    args = bwrap.tool_mounts([bind], 1024)
    copy = "/run/wvo-toolchain/0/node_modules"  # read-only, its packages' parents' name kept
    assert args[:7] == ["--ro-bind-fd", "7", copy, "--size", "1024", "--tmpfs", "/w/node_modules"]
    assert ["--symlink", f"{copy}/ava", "/w/node_modules/ava"] == args[16:19]
    assert args[-3:] == ["--symlink", "../packages/linked", "/w/node_modules/linked"]
    assert "/w/node_modules/.cache" not in args


def test_other_kinds_and_large_folders_are_shown_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert toolchain._view(fd, "venv") is None
        (tmp_path / "a").mkdir()
        monkeypatch.setattr(toolchain, "VIEW_ENTRIES", 0)
        assert toolchain._view(fd, "node") is None
    finally:
        os.close(fd)
    bind = toolchain.Bind(7, Path("/w/.venv"), (".cache",))
    assert bwrap.tool_mounts([bind]) == [
        "--ro-bind-fd", "7", "/w/.venv", "--tmpfs", "/w/.venv/.cache",
    ]  # fmt: skip
