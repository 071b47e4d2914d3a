"""Takes a worker's commits as data: objects copied and checked, then a ref set.

A worker's commits taken as data: its objects copied as plain files, packed and checked
object by object by index-pack --strict before any reaches the person's repository, commits
that change the state folder refused, so are commits whose messages would close issues, and
a ref set by compare-and-swap. The worker's repository is never handed to git.

Carries out `rules/protected_paths.py` and `rules/closing.py`."""

import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.git.nofollow import CHUNK, O_DIR, O_READ, open_dir
from wvo_mcp.git.refs import valid_ref
from wvo_mcp.git.run import (
    BULK_TIMEOUT_S,
    OBJECT_ID,
    PATH_BYTES,
    Git,
    close_and_wait,
    records,
    tail,
)
from wvo_mcp.rules import closing, protected_paths

# A worker's object files: loose objects and packs, nothing else (no info/alternates).
_FANOUT = re.compile(r"[0-9a-f]{2}")
_LOOSE = re.compile(r"[0-9a-f]{38}(?:[0-9a-f]{24})?")
_PACK = re.compile(r"pack-[0-9a-f]{40}(?:[0-9a-f]{24})?\.(?:pack|idx)")
_INTAKE_FILES = 1_000_000


class Protected(ValidationFailed):
    """A worker's commits change the state folder (protected_paths.py): nothing was taken."""

    def __init__(self, paths: Sequence[str], folders: Sequence[str], tip: str) -> None:
        self.paths, self.folders, self.tip = list(paths), list(folders), tip
        where = " or ".join(f"{folder or '.'}/" for folder in folders)
        super().__init__(
            f"its commits change the state folder {where} ({', '.join(self.paths[:5])}"
            f"{' …' if len(self.paths) > 5 else ''}); nothing was taken"
        )


class Closing(ValidationFailed):
    """A worker's commit messages would close issues (closing.py): nothing was taken."""

    def __init__(self, found: Sequence[tuple[str, str]], tip: str) -> None:
        self.found, self.tip = list(found), tip
        shown = "; ".join(f"{c[:12]}: {p}" for c, p in self.found[: closing.SHOWN])
        super().__init__(f"its commit messages would close issues ({shown}); nothing was taken")


def take_commits(
    git: Git,
    objects_dir: Path,
    tip: str,
    ref: str,
    expected_old: str | None,
    max_bytes: int = 1024**3,
) -> list[str]:
    """Bring the commits reachable from `tip` (a worker's commit, as read_head gives it)
    from the worker's `objects_dir` into this repository as data, and point `ref` at
    `tip` if it is still at `expected_old` (None: `ref` must not exist yet). Returns the
    commits that are new here, oldest first.

    Only the worker's loose objects and packs are copied, as plain files (never its
    alternates: objects it can only name, not hold, are refused), then packed here and
    checked object by object by `index-pack --strict` (fsck: no `.git` or `..` entries,
    nothing missing) before any of them reaches this repository. Commits that change a
    protected folder (the state folder, inside the repository) are refused, as Protected,
    before then too. The worker's repository is never handed to git. A refusal changes
    nothing here, except that a ref moving in the last instant (the compare-and-swap
    fails) leaves the new objects, unreferenced, for git's garbage collection."""
    git.checked_id(tip, "tip")
    if expected_old is not None:
        git.checked_id(expected_old, "expected_old")
    if not (ref.startswith("refs/") and valid_ref(ref)):
        raise ValidationFailed(f"not a full ref name (refs/...): {ref!r}")
    _ref_at(git, ref, expected_old)
    with tempfile.TemporaryDirectory(prefix="wvo-intake-") as scratch:
        copied, checked = Path(scratch) / "worker", Path(scratch) / "checked"
        _copy_objects(objects_dir, copied, max_bytes)
        (checked / "pack").mkdir(parents=True)
        incoming = checked / "pack" / "incoming"
        name = _pack_in(git, tip, _tips(git), copied, incoming)
        # The checked pack (index-pack --strict passed each object in it) stands in for
        # the worker's objects from here; nothing has reached this repository yet.
        kind = git.run([], "cat-file", "-t", tip, alternate=checked).stdout.strip()
        if kind != "commit":
            raise ValidationFailed(f"{tip} is a {kind or 'missing object'}, not a commit")
        # Every object `tip` reaches is there (what receive-pack checks), and which
        # commits are new: neither walk goes past what a ref or HEAD already holds.
        walk = git.run(
            [], "rev-list", "--objects", "--quiet", tip, "--not", "--all", alternate=checked
        )
        if walk.returncode != 0:
            raise ValidationFailed(f"the history of {tip} is incomplete: {tail(walk.stderr)}")
        listed = git.run([], "rev-list", "--reverse", tip, "--not", "--all", alternate=checked)
        new = listed.stdout.split()
        touched = _protected_paths(git, new, checked)
        if touched:
            raise Protected(touched, git.protected, tip)
        found = _closing_words(git, tip, checked)
        if found:
            raise Closing(found, tip)
        _install_pack(git, incoming, name)
    zero = "0" * len(tip)
    moved = git.run(
        [], "update-ref", "-m", "wvo-mcp: a worker's commits", ref, tip, expected_old or zero
    )
    if moved.returncode != 0:
        now = git.run([], "rev-parse", "--verify", "--quiet", ref).stdout.strip()
        raise ValidationFailed(
            f"{ref} moved: expected {expected_old or 'no ref'}, it is at {now or 'no ref'} "
            f"({tail(moved.stderr)}); read it again and retry"
        )
    return new


def _protected_paths(git: Git, commits: Sequence[str], checked: Path) -> list[str]:
    """The paths in the protected folders (or in their place) that any of `commits`
    changes, each against each of its parents (a root against the empty tree, a rename
    as a deletion and an addition), read with the `checked` objects as an extra store.
    Every commit counts, not only the tip's tree: a later commit that removes a path
    still leaves a commit a person could check out or replay."""
    if not git.protected or not commits:
        return []
    ignorecase = git.run([], "config", "--bool", "core.ignorecase").stdout.strip()
    fold = ignorecase == "true"
    found: list[str] = []
    with tempfile.TemporaryFile() as listed:
        listed.write("".join(f"{c}\n" for c in commits).encode())
        listed.seek(0)
        process = subprocess.Popen(
            ["git", "diff-tree", "--stdin", "-r", "-m", "--root", "--no-renames",
             "--no-commit-id", "--name-only", "-z"],
            cwd=git.cwd, env=git.env_for(alternate=checked), stdin=listed,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        timer = threading.Timer(BULK_TIMEOUT_S, process.kill)
        timer.start()
        try:
            assert process.stdout is not None
            for record in records(process.stdout, b"\0", PATH_BYTES):
                path = os.fsdecode(record)
                if protected_paths.touched([path], git.protected, fold) and path not in found:
                    found.append(path)
                    if len(found) > protected_paths.SHOWN:
                        break  # enough to refuse it and say why
        finally:
            timer.cancel()
            if process.poll() is None and found:
                process.kill()
            close_and_wait(process)
    if not found and process.returncode != 0:
        raise ValidationFailed(
            f"git diff-tree could not list what {len(commits)} commit(s) change in "
            f"{git.repo.top}; nothing was taken"
        )
    return found


def _closing_words(git: Git, tip: str, checked: Path) -> list[tuple[str, str]]:
    """Each closing phrase in the messages of the commits `tip` brings (those no ref holds
    yet), with its commit. Every part of the listing is read: a message's part after a NUL
    in it is named the tip's."""
    listed = git.run(
        [], "rev-list", "--no-commit-header", "--format=%x00%H%n%B", tip, "--not", "--all",
        alternate=checked,
    )  # fmt: skip
    if listed.returncode != 0:
        raise ValidationFailed(
            f"git rev-list could not read the messages of {tip}'s commits: {tail(listed.stderr)}"
        )
    found: list[tuple[str, str]] = []
    for record in listed.stdout.split("\0")[1:]:
        commit, _, message = record.partition("\n")
        commit = commit if OBJECT_ID.fullmatch(commit) else tip
        found += [(commit, p) for p in closing.closing(message) if (commit, p) not in found]
    return found


def _ref_at(git: Git, ref: str, expected: str | None) -> None:
    now = git.run([], "rev-parse", "--verify", "--quiet", ref).stdout.strip() or None
    if now != expected:
        raise ValidationFailed(
            f"{ref} moved: expected {expected or 'no ref'}, it is at {now or 'no ref'}; "
            "nothing was taken"
        )


def _tips(git: Git) -> list[str]:
    """Every object a ref or HEAD of this repository points at."""
    listed = git.output([], "for-each-ref", "--format=%(objectname)")
    head = git.run([], "rev-parse", "--verify", "--quiet", "HEAD").stdout.strip()
    return sorted({*listed.split(), *([head] if head else [])})


def _pack_in(git: Git, tip: str, ours: list[str], copied: Path, incoming: Path) -> str:
    """The objects `tip` needs that this repository lacks, packed from here with the
    `copied` worker objects as an extra object store, then indexed and checked one by
    one by a git that sees this repository alone, into incoming.pack and incoming.idx
    (a refused pack leaves nothing here). Returns the pack's name."""
    with (
        tempfile.TemporaryFile() as packer_err,
        tempfile.TemporaryFile() as index_out,
        tempfile.TemporaryFile() as index_err,
    ):
        packer = subprocess.Popen(
            ["git", "pack-objects", "--revs", "--stdout", "-q"], cwd=git.cwd,
            env=git.env_for(alternate=copied), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=packer_err,
        )  # fmt: skip
        assert packer.stdin is not None and packer.stdout is not None
        try:
            indexer = subprocess.Popen(
                ["git", "index-pack", "--stdin", "--fix-thin", "--strict",
                 "-o", f"{incoming}.idx", f"{incoming}.pack"],
                cwd=git.cwd, env=git.env_for(), stdin=packer.stdout, stdout=index_out,
                stderr=index_err,
            )  # fmt: skip
        except BaseException:
            packer.kill()
            close_and_wait(packer)
            raise
        packer.stdout.close()  # index-pack holds the read end now

        def stop() -> None:
            packer.kill()
            indexer.kill()

        timer = threading.Timer(BULK_TIMEOUT_S, stop)
        timer.start()
        try:
            # A broken pipe: pack-objects stopped early, and its exit status says why.
            with suppress(BrokenPipeError):
                packer.stdin.write("".join([f"{tip}\n", *(f"^{o}\n" for o in ours)]).encode())
        finally:
            close_and_wait(packer)
            close_and_wait(indexer)
            timer.cancel()
        # index-pack stopping first (a refused object) ends pack-objects by a broken pipe.
        broken_pipe = packer.returncode in (-signal.SIGPIPE, 128 + signal.SIGPIPE)
        if packer.returncode != 0 and not (indexer.returncode != 0 and broken_pipe):
            raise ValidationFailed(
                f"git pack-objects could not pack {tip} from the worker's own objects (one "
                "is missing or unreadable; objects only its alternates hold are never "
                f"taken): {tail(_read(packer_err))}"
            )
        if indexer.returncode != 0:
            raise ValidationFailed(
                f"git index-pack --strict refused the worker's objects for {tip}: "
                f"{tail(_read(index_err))}"
            )
        kind, _, name = _read(index_out).strip().partition("\t")
    if kind != "pack" or not OBJECT_ID.fullmatch(name):
        raise ValidationFailed(f"git index-pack gave no pack name for {tip}")
    return name


def _install_pack(git: Git, incoming: Path, name: str) -> None:
    """The checked incoming pack put in this repository's object folder as git puts a
    pack there: the .pack, then the .idx that makes it visible, each renamed into place
    (a stale tmp_ file is what git's prune removes). A pack of no objects is dropped."""
    with open(f"{incoming}.pack", "rb") as pack:
        header = pack.read(12)
    if len(header) == 12 and int.from_bytes(header[8:12], "big") == 0:
        return
    folder = git.objects / "pack"
    for suffix in (".pack", ".idx"):
        final = folder / f"pack-{name}{suffix}"
        if final.exists():
            continue  # the same pack, named by its content, is there already
        temporary = folder / f"tmp_wvo_{name}{suffix}"
        shutil.copyfile(f"{incoming}{suffix}", temporary)
        temporary.chmod(0o444)
        temporary.replace(final)


def _copy_objects(source: Path, dest: Path, max_bytes: int) -> None:
    """The loose objects and packs of the object folder `source` copied into the new
    folder `dest` as plain files: regular files with object-file names only, never a link,
    never info/ (alternates), at most `max_bytes` bytes in all."""
    top = open_dir(source, "objects_dir")
    budget = [max_bytes, _INTAKE_FILES]
    try:
        (dest / "pack").mkdir(parents=True)
        with os.scandir(top) as entries:
            names = [entry.name for entry in entries]
        for name in names:
            if _FANOUT.fullmatch(name):
                wanted, into = _LOOSE, dest / name
            elif name == "pack":
                wanted, into = _PACK, dest / "pack"
            else:
                continue
            try:
                folder = os.open(name, O_DIR, dir_fd=top)
            except OSError:
                continue  # a link or a file: not an object folder
            try:
                with os.scandir(folder) as items:
                    found = [item.name for item in items if wanted.fullmatch(item.name)]
                for item in found:
                    into.mkdir(exist_ok=True)
                    _copy_file(folder, item, into / item, budget)
            finally:
                os.close(folder)
    finally:
        os.close(top)


def _copy_file(folder: int, name: str, dest: Path, budget: list[int]) -> None:
    try:
        fd = os.open(name, O_READ, dir_fd=folder)
    except OSError:
        return  # a link, or gone
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        budget[1] -= 1
        if budget[1] < 0:
            raise ValidationFailed(f"the worker's repository holds over {_INTAKE_FILES} files")
        with os.fdopen(os.dup(fd), "rb") as source, dest.open("xb") as copy:
            while chunk := source.read(CHUNK):
                budget[0] -= len(chunk)
                if budget[0] < 0:
                    raise ValidationFailed(
                        "the worker's objects exceed the intake limit; nothing was taken"
                    )
                copy.write(chunk)
    finally:
        os.close(fd)


def _read(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read(64 * 1024).decode(errors="replace")
