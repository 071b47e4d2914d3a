"""The scratch folders runs make in the temporary folder, each named for its state folder.

The scratch folders the autopilot's runs make in the temporary folder (a worker's private
home, a verification's or a review's checkout, a rebase's worktree), each named for the state
folder whose run made it: `wvo-<kind>-<owner>-<random>`, <owner> a short hash of the state
folder's resolved path. `autopilot gc` removes only the folders its own state folder owns, so
two projects (or two state folders) sharing a temporary folder never touch each other's."""

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Literal

from wvo_mcp import processes, removal

Kind = Literal["run", "verify", "review", "rebase", "gateway"]
KINDS: tuple[Kind, ...] = ("run", "verify", "review", "rebase", "gateway")
# A gateway's (an autopilot's, for as long as it lives): named for its maker too,
# `wvo-gateway-<owner>-<pid>-<start ticks>-<random>`, so it goes once its maker is gone.
MADE_BY = re.compile(r"wvo-gateway-[0-9a-f]+-(\d+)-(\d+)-")
OWNER_CHARS = 12


def owner(state_root: Path) -> str:
    """The mark of `state_root` in its scratch folders' names."""
    resolved = os.fsencode(state_root.resolve())
    return hashlib.sha256(resolved).hexdigest()[:OWNER_CHARS]


def prefix(kind: Kind, state_root: Path | None) -> str:
    """The name a scratch folder of `kind` starts with; None: no state folder owns it (a
    tool's or a test's), and no gc removes it."""
    return f"wvo-{kind}-{owner(state_root)}-" if state_root is not None else f"wvo-{kind}-"


def make(kind: Kind, state_root: Path | None) -> Path:
    """A new scratch folder (mode 0700, a name nobody had), removed by its maker."""
    named = prefix(kind, state_root)
    if kind == "gateway":
        me = os.getpid()
        named += f"{me}-{processes.start_ticks(me)}-"
    return Path(tempfile.mkdtemp(prefix=named))


def maker(name: str) -> tuple[int, int] | None:
    """(pid, start ticks) of the process whose folder `name` is, for those named for it."""
    found = MADE_BY.match(name)
    return None if found is None else (int(found.group(1)), int(found.group(2)))


@contextmanager
def temporary(kind: Kind, state_root: Path | None) -> Iterator[str]:
    """As make(), removed when the `with` block ends, however deep what a run wrote in it
    goes (removal.remove); what cannot be removed is left for `autopilot gc`."""
    path = make(kind, state_root)
    try:
        yield str(path)
    finally:
        with suppress(OSError):
            removal.remove(path)


def owned(name: str, state_root: Path) -> bool:
    """Whether the folder called `name` is one of `state_root`'s scratch folders."""
    mark = owner(state_root)
    return any(name.startswith(f"wvo-{kind}-{mark}-") for kind in KINDS)
