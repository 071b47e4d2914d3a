"""removal.remove takes away whatever sandboxed code left in a folder: chains deeper than
Python's recursion limit (shutil.rmtree raised RecursionError there, which no ignore_errors
catches) or than PATH_MAX, folders left mode 000, FIFOs and sockets; and it follows no link."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.gitwork import git, person
from wvo_mcp import removal, scratch_dirs
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.git import trees


@pytest.fixture(autouse=True)
def removed_after(tmp_path: Path) -> Iterator[None]:
    """What a failed test leaves goes too: pytest's own clean-up (shutil.rmtree) cannot
    remove these chains, and would fail a later session."""
    yield
    for left in tmp_path.iterdir():
        removal.remove(left)


def chain(top: Path, levels: int, name: str) -> None:
    """`levels` folders called `name` under `top`, a file in every tenth, made one folder at
    a time (no path reaches that deep)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for n in range(levels):
        os.mkdir(name, dir_fd=fd)
        inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = inner
        if n % 10 == 0:
            os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.close(fd)


@pytest.mark.parametrize(("levels", "name"), [(3000, "d"), (40, "n" * 200)])
def test_a_chain_deeper_than_recursion_or_paths_reach_is_removed(
    tmp_path: Path, levels: int, name: str
) -> None:
    top = tmp_path / "left"
    top.mkdir()
    chain(top, levels, name)
    removal.remove(top)
    assert not top.exists() and list(tmp_path.iterdir()) == []


def test_what_is_not_a_file_goes_too_and_no_link_is_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("a person's file\n")
    top = tmp_path / "left"
    (top / "a" / "b").mkdir(parents=True)
    os.mkfifo(top / "a" / "pipe")
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(top / "a" / "sock"))
    (top / "a" / "b" / "to-outside").symlink_to(outside)
    (top / "a" / "b" / "to-file").symlink_to(outside / "precious.txt")
    removal.remove(top)
    assert not top.exists()
    assert (outside / "precious.txt").read_text() == "a person's file\n"


def test_a_link_or_a_file_at_the_top_is_removed_itself(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("a person's file\n")
    (tmp_path / "link").symlink_to(outside)
    removal.remove(tmp_path / "link")
    assert not (tmp_path / "link").is_symlink() and (outside / "precious.txt").exists()
    removal.remove(tmp_path / "missing")  # nothing there: nothing to do


REMOVE = "import sys; from pathlib import Path; from wvo_mcp import removal; " \
    "removal.remove(Path(sys.argv[1]))"  # fmt: skip


def test_folders_left_mode_000_are_removed(tmp_path: Path) -> None:
    """Even where permission bits stop the remover (as root: without the capabilities that
    override them)."""
    top = tmp_path / "left"
    (top / "locked" / "inner").mkdir(parents=True)
    (top / "locked" / "inner" / "notes.txt").write_text("x\n")
    (top / "locked" / "inner").chmod(0)
    (top / "locked").chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0 and shutil.which("setpriv"):
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    done = subprocess.run(
        [*prefix, sys.executable, "-P", "-c", REMOVE, str(top)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not top.exists()


def test_a_scratch_folder_goes_however_deep_a_run_wrote_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with scratch_dirs.temporary("verify", None) as scratch:
        assert Path(scratch).parent == tmp_path
        chain(Path(scratch), 3000, "d")
    assert list(tmp_path.iterdir()) == []


def test_a_tree_written_half_way_is_removed_however_deep(tmp_path: Path) -> None:
    """materialize empties its destination when a tree is refused part-way: a worker's
    commit may hold a chain of folders deeper than shutil.rmtree could remove."""
    host = person(tmp_path / "person")
    top = host.repo.top
    chain(top, 1200, "d")  # 2400 characters of path: git takes it
    (top / "z.bin").write_bytes(b"x" * 4096)  # listed after the chain, past the cap
    git(top, "add", "-A")
    git(top, "commit", "-qm", "deep")
    dest = tmp_path / "checkout"
    dest.mkdir()
    with pytest.raises(ValidationFailed, match=r"holds over 1024 bytes \(at 'z.bin'\)"):
        trees.materialize(host, host.head(), dest, max_bytes=1024)
    assert list(dest.iterdir()) == []
