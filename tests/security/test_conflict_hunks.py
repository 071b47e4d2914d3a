"""Hostile content in what the merge queue stacks: a worker's commits reach the person's
repository as objects, and their conflicts reach the next worker's prompt as text. A link
is never followed (no host file's content in the hunks, nothing written through it), odd
names and oversized files are named, not read."""

import os
from pathlib import Path

import pytest

from tests.unit.test_git_stacking import Link, base, commit, edited, host, worktrees
from wvo_mcp.git import Conflict, Git, stacking

__all__ = ["base", "host"]  # fixtures, used by name


@pytest.mark.parametrize("link_on", ["onto", "tip"])
def test_a_conflicted_link_to_a_host_file_is_never_followed(
    host: Git, base: str, tmp_path: Path, link_on: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("TOP-SECRET-8f1d\n<<<<<<< a\nTOP-SECRET-8f1d\n>>>>>>> b\n")
    linked = commit(host, base, "a link", {b"item": Link(os.fsencode(secret)),
                                           b"dir": Link(os.fsencode(outside))})  # fmt: skip
    plain = commit(host, base, "a file", {b"item": b"regular\n", b"dir/new.txt": b"planted\n"})
    onto, tip = (linked, plain) if link_on == "onto" else (plain, linked)
    for found in (
        stacking.merge_onto(host, onto, tip, "m"),
        stacking.rebase_onto(host, onto, tip, "m"),
    ):
        assert isinstance(found, Conflict)
        assert "item" in found.files
        assert "TOP-SECRET" not in found.hunks
        assert not any("TOP-SECRET" in name for name in found.files)
    # Nothing was written through either link, and the scratch worktree is gone.
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert secret.read_text().startswith("TOP-SECRET-8f1d\n")
    assert len(worktrees(host)) == 1


def test_conflicted_names_with_a_newline_and_undecodable_bytes(host: Git, base: str) -> None:
    names = [b"new\nline.txt", b"bad\xff.txt", b"cr\rname.txt"]
    onto = commit(host, base, "main", {n: edited(5, "main five") for n in names})
    tip = commit(host, base, "worker", {n: edited(5, "worker five") for n in names})
    found = stacking.merge_onto(host, onto, tip, "m")
    assert isinstance(found, Conflict)
    # Names are text as the person reads it: undecodable bytes shown replaced.
    shown = [n.decode(errors="replace") for n in names]
    assert sorted(found.files) == sorted(shown)
    for name in shown:
        assert f"--- {name}\n@@ line 2\n" in found.hunks
    assert found.hunks.count("worker five") == len(names)
    rebased = stacking.rebase_onto(host, onto, tip, "m")
    assert isinstance(rebased, Conflict)
    assert sorted(rebased.files) == sorted(shown)
    # The conflicted names lead to the commits that touch them, whatever their bytes.
    assert host.touching(base, onto, ["new\nline.txt"]) == [onto]


def test_a_conflicted_file_over_the_hunk_limit_is_not_shown(host: Git, base: str) -> None:
    big = ("filler line\n" * (stacking.HUNK_FILE_BYTES // 12 + 100)).encode()
    onto = commit(host, base, "main", {b"big.txt": b"main\n" + big, b"a.txt": edited(5, "m")})
    tip = commit(host, base, "worker", {b"big.txt": b"worker\n" + big, b"a.txt": edited(5, "w")})
    for found in (
        stacking.merge_onto(host, onto, tip, "m"),
        stacking.rebase_onto(host, onto, tip, "m"),
    ):
        assert isinstance(found, Conflict)
        assert sorted(found.files) == ["a.txt", "big.txt"]
        assert "--- big.txt\n(not shown: binary, too big, or a file-level conflict)" in found.hunks
        assert "filler line" not in found.hunks
        assert "--- a.txt\n@@ line 2\n" in found.hunks
