"""Finds and cleans what a dead autopilot left outside its state folder.

What a dead autopilot leaves on this machine outside its state folder and repositories,
each found by who made it, and cleaned by `autopilot gc` and by the next autopilot's start
alike: the processes its workers left (orphans.end_run), the cgroups of its runs (killed,
then removed: cgroups.orphaned, this state folder's, made by a process that is gone), and
its gateway's folder in
the temporary folder (scratch_dirs.maker, named for the process that made it). Nothing a
live process made is touched: a maker counts as gone only when no process with its pid
started at its start time."""

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from wvo_mcp import processes, removal, scratch_dirs, timeutil
from wvo_mcp.autopilot import orphans
from wvo_mcp.autopilot.slots import LIVE_SECONDS
from wvo_mcp.sandbox import cgroups


@dataclass(frozen=True)
class Found:
    what: str
    why: str
    done: bool  # removed (or ended); False: what stopped it is in `why`


def stale_before() -> str:
    """Runs not heard of since then, on another host, are gone (orphans.gone)."""
    return timeutil.to_text(timeutil.now() - timedelta(seconds=2 * LIVE_SECONDS))


def sweep(
    state_root: Path, runs: Iterable[dict[str, Any]], *, dry_run: bool, scratch: Path | None = None
) -> list[Found]:
    """Everything gone autopilots left here (`runs`: this database's, as autopilot_runs
    lists them): ended and removed unless `dry_run`."""
    found = []
    stale = stale_before()
    for run in runs:
        if orphans.gone(run, stale) and orphans.on_this_host(run):
            ended = 0 if dry_run else orphans.end_run(run)
            what = f"processes of autopilot {run['id']}"
            found.append(Found(what, f"its autopilot is gone: {ended} process(es) ended", True))
    for path in cgroups.orphaned(scratch_dirs.owner(state_root)):
        done = dry_run or cgroups.clear(path)
        why = "its maker is gone: what is in it killed, then removed"
        found.append(Found(str(path), why if done else "could not remove it: still busy", done))
    folder = scratch if scratch is not None else Path(tempfile.gettempdir())
    for entry in _gateways(folder, state_root):
        made = scratch_dirs.maker(entry.name)
        assert made is not None
        if processes.alive(*made):
            continue
        if not dry_run:
            removal.remove(Path(entry.path))
        found.append(Found(entry.path, f"its autopilot (pid {made[0]}) is gone", True))
    return found


def _gateways(folder: Path, state_root: Path) -> list[os.DirEntry[str]]:
    me = os.getuid()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return [
        e
        for e in entries
        if scratch_dirs.owned(e.name, state_root)
        and scratch_dirs.maker(e.name) is not None
        and e.is_dir(follow_symlinks=False)
        and e.stat(follow_symlinks=False).st_uid == me
    ]
