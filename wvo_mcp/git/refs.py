"""Ref names and git's rules for them; a worker's HEAD and refs read as files.

Ref names: the checkpoint refs and the branch an autopilot worker commits on, and git's
rules for a valid one. A worker's HEAD and refs read as files, never by git: no link
followed, every file bounded."""

import os
import re
import stat
from pathlib import Path

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.git.nofollow import O_DIR, open_dir, read_small

REF_ROOT = "refs/wvo/checkpoints"
_REF_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")

_HEX_ID = re.compile(r"[0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?")
_HEAD_BYTES = 4096
_PACKED_REFS_BYTES = 32 * 1024 * 1024
_REFS_MOST = 10_000  # refs read from one worker's repository
_REF_DEPTH = 16  # folders under refs/


def read_head(git_dir: Path) -> str | None:
    """The commit id a worker's HEAD names, read from its files without running git: HEAD
    holding an id, or `ref: refs/heads/<name>` resolved once through the loose ref file or
    packed-refs. None for anything else (a link anywhere on the way, an unborn or invalid
    branch, a `gitdir:` file, oversized files). `git_dir` is absolute, without links."""
    try:
        top = open_dir(git_dir, "git_dir")
    except ValidationFailed:
        return None
    try:
        head = read_small(top, "HEAD", _HEAD_BYTES)
        text = _ascii_line(head)
        if text is None:
            return None
        if _HEX_ID.fullmatch(text):
            return text.lower()
        name = text.removeprefix("ref: ")
        if name == text or not name.startswith("refs/heads/") or not valid_ref(name):
            return None
        found, commit = _loose_ref(top, name)
        return commit if found else _packed_ref(top, name)
    except OSError:
        return None  # a folder on the way that cannot be read
    finally:
        os.close(top)


def read_refs(git_dir: Path) -> dict[str, str] | None:
    """Every ref of a worker's repository with the commit id it names, HEAD included, read
    from its files as read_head reads HEAD (a loose ref overrides a packed one; symbolic
    refs are left out, what they name is listed). None for anything read_head refuses, a
    link or an odd file anywhere under refs/, an invalid line, or more than _REFS_MOST refs."""
    head = read_head(git_dir)
    if head is None:
        return None
    try:
        top = open_dir(git_dir, "git_dir")
    except ValidationFailed:
        return None
    try:
        found = _packed_refs(top)
        if found is None or not _loose_refs(top, found):
            return None
    except OSError:
        return None  # a folder under refs/ that cannot be read
    finally:
        os.close(top)
    return {"HEAD": head, **found} if len(found) <= _REFS_MOST else None


def _packed_refs(top: int) -> dict[str, str] | None:
    try:
        os.stat("packed-refs", dir_fd=top, follow_symlinks=False)
    except FileNotFoundError:
        return {}
    data = read_small(top, "packed-refs", _PACKED_REFS_BYTES)
    if data is None:
        return None
    found = {}
    for line in data.split(b"\n"):
        if not line or line.startswith((b"#", b"^")):  # the header; a tag's peeled id
            continue
        oid, _, ref = (part.decode("ascii", "replace") for part in line.partition(b" "))
        if not _HEX_ID.fullmatch(oid) or not ref.startswith("refs/") or not valid_ref(ref):
            return None
        found[ref] = oid.lower()
    return found


def _loose_refs(top: int, found: dict[str, str]) -> bool:
    """The loose refs under refs/ into `found`; False at a link or anything odd."""
    try:
        folder = os.open("refs", O_DIR, dir_fd=top)
    except FileNotFoundError:
        return True
    except OSError:
        return False  # a link where refs/ should be
    try:
        return _loose_under(folder, "refs", 0, found)
    finally:
        os.close(folder)


def _loose_under(folder: int, prefix: str, depth: int, found: dict[str, str]) -> bool:
    if depth > _REF_DEPTH:
        return False
    for name in os.listdir(folder):
        ref = f"{prefix}/{name}"
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode):
            try:
                inner = os.open(name, O_DIR, dir_fd=folder)
            except OSError:
                return False  # swapped for a link meanwhile
            try:
                if not _loose_under(inner, ref, depth + 1, found):
                    return False
            finally:
                os.close(inner)
        elif not stat.S_ISREG(info.st_mode):
            return False
        elif not name.endswith(".lock"):  # a git killed mid-update leaves these; git skips them
            text = _ascii_line(read_small(folder, name, _HEAD_BYTES))
            if text is not None and text.startswith("ref: ") and valid_ref(text[5:]):
                continue
            if text is None or not _HEX_ID.fullmatch(text) or not valid_ref(ref):
                return False
            found[ref] = text.lower()
            if len(found) > _REFS_MOST:
                return False
    return True


def _ascii_line(data: bytes | None) -> str | None:
    if data is None:
        return None
    line = data.removesuffix(b"\n")
    if b"\n" in line or not line.isascii():
        return None
    return line.decode("ascii")


def _loose_ref(top: int, name: str) -> tuple[bool, str | None]:
    """Whether a loose file for ref `name` is there (git then ignores packed-refs for it),
    and the id it holds: None if it is not a plain id in a regular file reached without
    links (another `ref:` would be a second hop)."""
    *folders, leaf = name.split("/")
    fd = os.dup(top)
    try:
        for folder in folders:
            try:
                inner = os.open(folder, O_DIR, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError):
                return False, None
            except OSError:
                return True, None  # a link where a folder should be
            os.close(fd)
            fd = inner
        try:
            os.stat(leaf, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return False, None
        text = _ascii_line(read_small(fd, leaf, _HEAD_BYTES))
    finally:
        os.close(fd)
    return True, text.lower() if text is not None and _HEX_ID.fullmatch(text) else None


def _packed_ref(top: int, name: str) -> str | None:
    data = read_small(top, "packed-refs", _PACKED_REFS_BYTES)
    if data is None:
        return None
    wanted = name.encode()
    for line in data.split(b"\n"):
        oid, _, ref = line.partition(b" ")
        if ref == wanted:
            text = oid.decode("ascii", "replace")
            return text.lower() if _HEX_ID.fullmatch(text) else None
    return None


def valid_ref(name: str) -> bool:
    """git's rules for a ref name (check-ref-format), all of them."""
    if not name or name.endswith(("/", ".")) or name == "@" or "@{" in name or ".." in name:
        return False
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c in " ~^:?*[\\" for c in name):
        return False
    return all(
        part and not part.startswith(".") and not part.endswith(".lock") for part in name.split("/")
    )


def ref_part(task_id: str) -> str:
    """Any task id as one valid ref component: characters git forbids (: / and so on) are
    %-encoded, and so are the dots that would form '..', a '.lock' ending or a '.' one."""
    encoded = "".join(c if c in _REF_SAFE else f"%{ord(c):02X}" for c in task_id)
    encoded = encoded.replace("..", ".%2E")
    if encoded.endswith(".lock"):
        encoded = encoded[: -len(".lock")] + "%2Elock"
    if encoded.endswith("."):  # a task made before ids ending so were refused
        encoded = encoded[:-1] + "%2E"
    return encoded


def ref_name(task_id: str, seq: int) -> str:
    return f"{REF_ROOT}/{ref_part(task_id)}/{seq}"


def branch_name(task_id: str) -> str:
    """The branch an autopilot worker commits a task's work on."""
    return f"wvo/{ref_part(task_id)}"
