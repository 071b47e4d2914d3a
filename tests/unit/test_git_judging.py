"""judging.differs judges a worker's repository with bounded memory and time, whatever the
worker left in it (issue 34): files are hashed a chunk at a time as git hashes a blob, a file
whose size says it changed (or over a cap) is never read, a FIFO or socket is never opened,
and what cannot be judged is said (Unjudged). On real repositories of both object formats."""

import os
import shutil
import socket
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.gitwork import git, person
from wvo_mcp import removal
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.git import Git, Unjudged, judging, read_refs, snapshots
from wvo_mcp.git.nofollow import CHUNK

TIB = 1 << 40
WAIT_S = 60.0  # for a judgement that takes well under a second; a hang fails instead


def judged(host: Git, folder: Path | None = None) -> list[str]:
    """differs of the working tree (or `folder`) against HEAD, failing the test rather than
    hanging it (a FIFO opened for reading blocks until a writer comes)."""
    found: list[list[str] | BaseException] = []

    def run() -> None:
        try:
            found.append(judging.differs(host, host.head(), folder or host.repo.top))
        except BaseException as exc:
            found.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(WAIT_S)
    if thread.is_alive():
        pytest.fail(f"differs did not return within {WAIT_S:.0f} s")
    if isinstance(found[0], BaseException):
        raise found[0]
    return found[0]


def peak_bytes(action: Callable[[], object]) -> int:
    """The most memory Python allocated while `action` ran."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def commit(top: Path, message: str = "more") -> None:
    git(top, "add", "-A")
    git(top, "commit", "-qm", message)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Git]:
    yield person(tmp_path / "person")
    removal.remove(tmp_path / "person")  # a chain pytest's shutil.rmtree cannot remove


# -- the streaming hash --------------------------------------------------------------------


@pytest.mark.parametrize("object_format", ["sha1", "sha256"])
def test_the_streaming_blob_id_is_the_one_git_computes(tmp_path: Path, object_format: str) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", f"--object-format={object_format}")
    for size in (0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7):
        path = repo / f"f{size}"
        path.write_bytes(os.urandom(size))
        expected = git(repo, "hash-object", "--", path.name)
        fd = os.open(path, os.O_RDONLY)
        try:
            assert judging.stream_blob_id(fd, size, object_format) == expected, size
        finally:
            os.close(fd)


def test_a_file_of_another_size_than_expected_has_no_blob_id(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"12345")
    for size in (4, 6):  # longer, shorter than it claims
        fd = os.open(path, os.O_RDONLY)
        try:
            assert judging.stream_blob_id(fd, size, "sha1") is None
        finally:
            os.close(fd)


# -- bounded memory ------------------------------------------------------------------------


def test_a_large_unchanged_file_is_compared_a_chunk_at_a_time(host: Git) -> None:
    top = host.repo.top
    with (top / "data.bin").open("wb") as out:
        for _ in range(48):
            out.write(os.urandom(CHUNK))
    commit(top)
    found: list[list[str]] = []
    peak = peak_bytes(lambda: found.append(judged(host)))
    assert found == [[]]
    assert peak < 8 * CHUNK, peak  # the file holds 48 chunks; a whole read would allocate them


def test_a_sparse_terabyte_where_a_small_file_was_differs_unread(host: Git) -> None:
    """Its size alone says it changed: it is not read (it would take hours, or all memory)."""
    top = host.repo.top
    os.truncate(top / "app.py", TIB)
    (top / "new.bin").touch()
    os.truncate(top / "new.bin", TIB)  # added: never read either
    found: list[list[str]] = []
    peak = peak_bytes(lambda: found.append(judged(host)))
    assert found == [["app.py", "new.bin"]]
    assert peak < 2 * CHUNK, peak


def test_a_file_over_the_cap_differs_unread_and_says_so(
    host: Git, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = host.repo.top
    (top / "big.bin").write_bytes(b"x" * (2 * CHUNK))
    commit(top)
    monkeypatch.setattr(judging, "_COMPARE_FILE_BYTES", CHUNK)
    assert judged(host) == ["big.bin (over 1 MiB: not compared)"]


def test_past_the_bytes_a_judgement_may_read_it_is_not_judged(
    host: Git, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = host.repo.top
    for n in range(3):
        (top / f"part{n}.bin").write_bytes(b"x" * CHUNK)
    commit(top)
    monkeypatch.setattr(judging, "_COMPARE_BYTES", 2 * CHUNK)
    with pytest.raises(Unjudged, match=r"over 2 MiB of files to compare"):
        judged(host)


# -- what is not a file --------------------------------------------------------------------


def test_fifos_are_never_opened(host: Git) -> None:
    """One where a tracked file was differs; one beside holds no work and does not count."""
    top = host.repo.top
    (top / "app.py").unlink()
    os.mkfifo(top / "app.py")
    os.mkfifo(top / "pipe")
    assert judged(host) == ["app.py"]


def test_sockets_are_never_opened(host: Git) -> None:
    top = host.repo.top
    (top / "app.py").unlink()
    for name in ("app.py", "sock"):
        with socket.socket(socket.AF_UNIX) as listening:
            listening.bind(str(top / name))
    assert judged(host) == ["app.py"]


# -- deep, long, many ----------------------------------------------------------------------


def chain(top: Path, levels: int, name: str) -> str:
    """`levels` folders called `name` under top/chain, notes.txt at the bottom, made one
    folder at a time (no path reaches that deep); the file's path relative to `top`."""
    (top / "chain").mkdir()
    fd = os.open(top / "chain", os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(levels):
        os.mkdir(name, dir_fd=fd)
        inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = inner
    notes = os.open("notes.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.close(notes)
    os.close(fd)
    return "/".join(["chain", *[name] * levels, "notes.txt"])


def test_a_chain_deeper_than_the_cap_is_not_judged(host: Git) -> None:
    chain(host.repo.top, 1200, "d")  # past Python's recursion limit, which os.walk hit
    with pytest.raises(Unjudged, match=r"^chain/d/d/.*: folders nested over 128 deep"):
        judged(host)


def test_a_file_past_path_max_is_found(host: Git) -> None:
    """os.walk skipped what it could not reach by path, silently: the file did not count."""
    path = chain(host.repo.top, 30, "n" * 200)
    assert len(path) > os.pathconf("/", "PC_PATH_MAX")
    assert judged(host) == [f"{path[:80]}…{path[-80:]}"]  # too long to show whole


def test_past_the_entries_a_judgement_may_list_it_is_not_judged(
    host: Git, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = host.repo.top
    (top / "many").mkdir()
    for n in range(600):
        (top / "many" / f"{n}.txt").touch()
    monkeypatch.setattr(judging, "_WALK_ENTRIES", 500)
    with pytest.raises(Unjudged, match=r"over 500 files and folders"):
        judged(host)


# -- unreadable ------------------------------------------------------------------------------


def without_file_permissions_override() -> list[str]:
    """A command prefix under which permission bits stop this user: as root, the
    capabilities that override them are dropped (`setpriv`); else nothing is needed."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root without setpriv: mode 000 stops nothing")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


JUDGE = """
import sys
from pathlib import Path
from wvo_mcp import removal
from wvo_mcp.git import Git, Unjudged, judging, locate
repo = locate(Path(sys.argv[1]))
host = Git(repo, repo.top)
try:
    print(judging.differs(host, host.head(), repo.top))
except Unjudged as exc:
    print(f"Unjudged: {exc}")
"""


@pytest.mark.parametrize("what", ["file", "folder"])
def test_what_cannot_be_read_is_not_judged(host: Git, what: str) -> None:
    top = host.repo.top
    if what == "file":
        (top / "app.py").chmod(0)
        expected = "Unjudged: app.py: cannot be read (Permission denied)"
    else:
        (top / "src").mkdir()
        (top / "src" / "notes.txt").write_text("work\n")
        (top / "src").chmod(0)
        expected = "Unjudged: src: cannot be opened as a folder (Permission denied)"
    done = subprocess.run(
        [*without_file_permissions_override(), sys.executable, "-P", "-c", JUDGE, str(top)],
        cwd=ROOT, capture_output=True, text=True, timeout=WAIT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_the_refs_of_a_repository_that_cannot_be_read_are_not_read(tmp_path: Path) -> None:
    host = person(tmp_path / "person")
    (host.repo.git_dir / "refs" / "heads").chmod(0)
    code = (
        "import sys; from pathlib import Path; from wvo_mcp.git import read_refs; "
        "print(read_refs(Path(sys.argv[1])))"
    )
    done = subprocess.run(
        [*without_file_permissions_override(), sys.executable, "-P", "-c", code,
         str(host.repo.git_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=WAIT_S,
    )  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "None"), done.stderr


# -- snapshots -------------------------------------------------------------------------------


def test_a_snapshot_refuses_a_file_over_the_cap_and_stores_nothing(host: Git) -> None:
    """git add would read a sparse terabyte whole (for hours, in a few MiB)."""
    top = host.repo.top
    (top / "huge.bin").touch()
    os.truncate(top / "huge.bin", TIB)
    objects = sorted(p.name for p in (host.repo.git_dir / "objects").rglob("*"))
    with pytest.raises(ValidationFailed, match=r"files over 256 MiB: huge.bin \(1 TiB\)"):
        snapshots.snapshot(host, "checkpoint")
    assert sorted(p.name for p in (host.repo.git_dir / "objects").rglob("*")) == objects
    (top / "huge.bin").unlink()
    os.mkfifo(top / "pipe")  # git add skips it: no hang
    snap = snapshots.snapshot(host, "checkpoint")
    listed = git(top, "ls-tree", "-r", "--name-only", snap.commit).split()
    assert listed == ["app.py", "tool.sh"]


@pytest.mark.parametrize("where", ["HEAD", "refs/heads/main", "packed-refs"])
def test_a_fifo_among_the_refs_is_never_opened_to_wait(tmp_path: Path, where: str) -> None:
    host = person(tmp_path / "person")
    planted = host.repo.git_dir / where
    planted.unlink(missing_ok=True)
    os.mkfifo(planted)
    found: list[object] = []
    thread = threading.Thread(
        target=lambda: found.append(read_refs(host.repo.git_dir)), daemon=True
    )
    thread.start()
    thread.join(WAIT_S)
    assert found == [None]
