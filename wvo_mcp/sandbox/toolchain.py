"""The project's own toolchain folders (.venv, node_modules), read-only in every sandbox.

The project's own toolchain: the folders a repository keeps its test environment in and
git ignores (`.venv`, `venv`, `node_modules`, or what the providers file declares).

A fresh checkout lacks them, so every check, verify command and worker sees the person's
copy read-only, at the same relative path in its own checkout and at the folder's own path
(which the `#!` lines of its scripts name). A folder is opened one component at a time
following no link and mounted from that descriptor, so a link swapped in afterwards cannot
widen what is shown; links inside it resolve inside the sandbox, never on the host.

A `node_modules` in the command's checkout is a writable view: the person's copy is mounted
read-only elsewhere in the sandbox (under a folder of that name, so packages find their
hoisted dependencies), and a private tmpfs at `node_modules` links to each of its entries,
as pnpm's layout does (bwrap 0.8, Debian 12's, has no overlay). A tool may make anything new
in it (ava's `.cache/ava`, vite's `.vite`, whether or not the person's copy has one) and the
person's copy is untouched; caches (CACHES) are left out of it, to be made afresh. Writing
inside a package's own folder stays refused.
"""

import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from wvo_mcp.errors import ValidationFailed

FOUND = (".venv", "venv", "node_modules")  # looked for when git ignores them
# Inside a toolchain folder, where its tools write their caches: each sandbox gets them
# empty and its own (left out of a node view; a private tmpfs over the other kinds' folders).
CACHES: Mapping[str, tuple[str, ...]] = {
    "node": (".cache", ".vite", ".vite-temp"),  # find-cache-dir's and ava's; vite's, vitest's
    "venv": (),
    "plain": (),
}
# A view's entries, each a link (bwrap takes 9,000 arguments at most); past it the folder
# is shown read-only as a whole.
VIEW_ENTRIES = 2000
NODE_CACHE = "/tmp/.cache"  # CACHE_DIR in a sandbox: its own /tmp, gone with it
_CFG_BYTES = 4096
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
Kind = Literal["venv", "node", "plain"]


@dataclass(frozen=True)
class Spec:
    """The providers file's `toolchain:`: folders besides those found, and found ones left out."""

    folders: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class Folder:
    top: Path  # the person's checkout
    relative: str  # in it, as `.venv` or `web/node_modules`
    kind: Kind
    declared: bool = False
    interpreter: Path | None = None  # a venv's base Python installation, when not under /usr

    @property
    def path(self) -> Path:
        return self.top / self.relative

    def seen_in(self, checkout: Path) -> Path:
        """Where a command in `checkout` finds it: at its place in a checkout of its own, at
        its own path in the person's checkout (or a folder of it)."""
        if checkout == self.top or self.top in checkout.parents:
            return self.path
        return checkout / self.relative


@dataclass(frozen=True)
class Toolchain:
    folders: tuple[Folder, ...] = ()

    def env(self, checkout: Path, path: str, sandboxed: bool = True) -> dict[str, str]:
        """VIRTUAL_ENV and PATH for a command in `checkout`: the folders' programs first. In
        a sandbox, CACHE_DIR too, where find-cache-dir tools (nyc, xo, babel-loader, ...)
        write instead of node_modules/.cache: the sandbox's own /tmp, whichever view of
        node_modules it has."""
        bins = [str(f.seen_in(checkout) / _BIN[f.kind]) for f in self.folders if f.kind != "plain"]
        found = {"PATH": ":".join([*bins, path])} if bins else {}
        venv = next((f for f in self.folders if f.kind == "venv"), None)
        if venv is not None:
            found["VIRTUAL_ENV"] = str(venv.seen_in(checkout))
        if sandboxed and any(f.kind == "node" for f in self.folders):
            found["CACHE_DIR"] = NODE_CACHE
        return found

    def describe(self) -> str:
        if not self.folders:
            return "none (no .venv, venv or node_modules that git ignores; `toolchain:` adds one)"
        return ", ".join(
            f"{f.relative} ({'declared' if f.declared else 'found'})" for f in self.folders
        )


_BIN: Mapping[Kind, str] = {"venv": "bin", "node": ".bin", "plain": ""}


def relative(given: str) -> str:
    """A folder named in the providers file: a plain relative path inside the repository,
    outside .git (pure)."""
    parts = Path(given).parts
    if (
        "\0" in given
        or os.path.isabs(given)
        or not parts
        or any(p in ("..", ".") or p.lower() == ".git" for p in parts)
    ):
        raise ValidationFailed(
            f"toolchain folder {given!r} is not a folder inside the repository; name one "
            "relative to its top, like `.venv` or `web/node_modules` (no `..`, not `.git`)"
        )
    return "/".join(parts)


def find(
    top: Path,
    spec: Spec,
    ignored: Sequence[str],
    keep_out: Sequence[Path],
) -> Toolchain:
    """The folders of the checkout at `top`: those of FOUND that exist and git ignores
    (`ignored`: what `git check-ignore` said of FOUND), then the declared ones, less the
    excluded. A declared folder that is missing, or one holding `keep_out` (the state
    folder), is refused, saying what to fix."""
    exclude = {relative(e) for e in spec.exclude}
    chosen: dict[str, bool] = {}
    for name in FOUND:
        if name in ignored and name not in exclude and _is_folder(top, name):
            chosen[name] = False
    for given in spec.folders:
        name = relative(given)
        if not _is_folder(top, name):
            raise ValidationFailed(
                f"toolchain folder {name!r} (the providers file's `toolchain: folders`) is not "
                f"a folder in {top}; create it (for example `python -m venv {name}`), or "
                "remove it from the providers file"
            )
        if name not in exclude:
            chosen[name] = True
    for name in chosen:
        path = (top / name).resolve()
        for kept in keep_out:
            real = kept.resolve()
            if real == path or path in real.parents or real in path.parents:
                raise ValidationFailed(
                    f"toolchain folder {name!r} holds {real}, which no command may see; name "
                    "a folder that holds only the toolchain"
                )
    folders = []
    for name, declared in sorted(chosen.items()):
        kind = _kind(top / name)
        python = _interpreter(top / name) if kind == "venv" else None
        if python is not None and any(_holds(python, k) for k in (*keep_out, top, Path.home())):
            python = None
        folders.append(Folder(top, name, kind, declared, python))
    return Toolchain(tuple(folders))


def _holds(folder: Path, path: Path) -> bool:
    real = path.resolve()
    return real == folder or folder in real.parents


def _interpreter(venv: Path) -> Path | None:
    """The Python installation a venv's `pyvenv.cfg` names (its `home`'s parent), when it is
    one (it has lib/python3.*/os.py) and the sandbox does not show it already (/usr). The
    file is the checkout's, so a name that is no Python installation is ignored."""
    try:
        with (venv / "pyvenv.cfg").open("rb") as handle:
            text = handle.read(_CFG_BYTES).decode(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home" and os.path.isabs(value.strip()):
            prefix = Path(value.strip()).resolve().parent
            if prefix == Path("/usr") or Path("/usr") in prefix.parents:
                return None
            if any(prefix.glob("lib/python3*/os.py")):
                return prefix
    return None


def _is_folder(top: Path, name: str, make: bool = False) -> bool:
    """Whether `top/name` is a folder reached following no link (`make`: made if missing)."""
    try:
        os.close(_open(top, name, make))
    except ValidationFailed:
        return False
    return True


def _is_folder_at(fd: int, name: str) -> bool:
    """`name` in the open folder `fd` is a folder itself, not a link (a mount point)."""
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _kind(path: Path) -> Kind:
    if (path / "pyvenv.cfg").is_file():
        return "venv"
    if path.name == "node_modules":
        return "node"
    return "plain"


def _open(top: Path, name: str, make: bool = False) -> int:
    """The folder `top/name` opened following no link on the way (`make`: each missing
    folder made): a descriptor."""
    try:
        fd = os.open(top, _O_DIR)
    except OSError as exc:
        raise ValidationFailed(f"{top} cannot be opened ({exc.strerror})") from None
    for part in name.split("/"):
        try:
            if make:
                with suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            inner = os.open(part, _O_DIR, dir_fd=fd)
        except OSError:
            os.close(fd)
            raise ValidationFailed(
                f"toolchain folder {name!r} in {top} is missing, a link or not a folder"
            ) from None
        os.close(fd)
        fd = inner
    return fd


def link(toolchain: Toolchain, checkout: Path) -> None:
    """Without a sandbox (by explicit opt-in): each folder linked into `checkout` where
    nothing stands at its path."""
    for folder in toolchain.folders:
        inside = folder.seen_in(checkout)
        if inside != folder.path and not os.path.lexists(inside):
            inside.parent.mkdir(parents=True, exist_ok=True)
            inside.symlink_to(folder.path, target_is_directory=True)


@dataclass(frozen=True)
class Entry:
    """One entry of a writable view, linked to in the read-only copy; a link of the
    person's own is kept as it reads."""

    name: str
    target: str | None = None  # a link's


@dataclass(frozen=True)
class Bind:
    fd: int  # the folder, opened
    dest: Path  # where the sandbox shows it
    caches: tuple[str, ...] = ()  # folders in it that get a private, writable tmpfs
    entries: tuple[Entry, ...] | None = None  # a writable view of them, not the folder


def _view(fd: int, kind: Kind) -> tuple[Entry, ...] | None:
    """The entries of a node folder open at `fd` for a writable view of it, less its caches;
    None for another kind, or one with more than VIEW_ENTRIES."""
    if kind != "node":
        return None
    names = sorted(n for n in os.listdir(fd) if n not in CACHES[kind])
    if len(names) > VIEW_ENTRIES:
        return None
    entries = []
    for name in names:
        try:
            is_link = stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
            entries.append(Entry(name, os.readlink(name, dir_fd=fd) if is_link else None))
        except OSError:
            continue  # gone since it was listed
    return tuple(entries)


@contextmanager
def opened(toolchain: Toolchain, checkout: Path) -> Iterator[list[Bind]]:
    """Each folder opened, with the places to show it for a command in `checkout` (a mount
    point missing there is made, unless a link or file stands in its way); the descriptors
    are closed afterwards."""
    binds: list[Bind] = []
    with ExitStack() as closing:
        for folder in toolchain.folders:
            fd = _open(folder.top, folder.relative)
            closing.callback(os.close, fd)
            inside = folder.seen_in(checkout)
            places = [folder.path]
            if inside != folder.path and _is_folder(checkout, folder.relative, make=True):
                places.insert(0, inside)
            caches = tuple(c for c in CACHES[folder.kind] if _is_folder_at(fd, c))
            binds.append(Bind(fd, places[0], caches, _view(fd, folder.kind)))
            for place in places[1:]:  # bwrap closes a descriptor once it has mounted it
                again = os.dup(fd)
                closing.callback(os.close, again)
                binds.append(Bind(again, place, caches))
            if folder.interpreter is not None:
                python = os.open(folder.interpreter, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                closing.callback(os.close, python)
                binds.append(Bind(python, folder.interpreter))
        yield binds
