"""Where an initialised repository keeps wvo-mcp's state, recorded in its .git/config.

Where an initialised repository keeps wvo-mcp's state, and how commands run inside it find
that place: `wvo-mcp init` records it in the repository's own git configuration
(`wvo.stateRoot` in .git/config).

Never found by looking for a folder in the working tree: sandboxed commands write there, and
a folder one of them made must never become the state wvo-mcp trusts (its providers file,
its tokens). The git directory is bound read-only in the sandbox, and the record is read
from .git/config alone, no included file.
"""

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

STATE_DIR = ".wvo"
KEY = "wvo.stateRoot"
GIT_TIMEOUT_S = 30
LEGACY = Path("state")  # the default before `wvo-mcp init`; a clone of wvo-mcp ships it
NOT_INITIALISED = (
    "no state folder here: run `wvo-mcp init` here first (it makes one and records it for "
    "this repository), or name one with --state-root DIR or WVO_STATE_ROOT"
)


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """git in the person's repository, with no configuration of theirs that runs programs."""
    # Imported here: `serve`'s relay (cli/warm_relay.py) finds its state folder through this
    # module before anything heavy is imported, and the git package is.
    from wvo_mcp.git import ENV, config_env

    return subprocess.run(
        ["git", "-C", str(cwd), *args],
        env={**ENV, **config_env()},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_S,
    )


def recorded(cwd: Path) -> Path | None:
    """The state folder `wvo-mcp init` recorded for the repository `cwd` is in, if any."""
    try:
        found = git(cwd, "config", "--local", "--no-includes", "--get", KEY)
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = found.stdout.strip()
    return Path(path) if found.returncode == 0 and os.path.isabs(path) else None


def found(cwd: Path) -> Path | None:
    """The state folder for a command run in `cwd` that names none: the one `wvo-mcp init`
    recorded, else ./state when it already holds a database (made before init existed, or
    with --state-root state); None when neither, so a command never makes ./state unasked."""
    chosen = recorded(cwd)
    if chosen is None and (cwd / LEGACY / "orchestrator.db").is_file():
        return cwd / LEGACY
    return chosen


def chosen(given: str | None, env: Mapping[str, str], cwd: Path) -> str | None:
    """The state folder a command run in `cwd` uses: --state-root's `given`, else
    WVO_STATE_ROOT, else the one found(); None when none is named or found."""
    if given is not None:
        return given
    if env.get("WVO_STATE_ROOT"):
        return env["WVO_STATE_ROOT"]
    chosen = found(cwd)
    return None if chosen is None else str(chosen)


def top(cwd: Path) -> Path | None:
    """The top of the repository `cwd` is in: the nearest folder holding `.git`, as git
    finds it, read from the file system (every command starts here: no second git)."""
    here = cwd.resolve()
    return next((f for f in (here, *here.parents) if (f / ".git").exists()), None)


def workspace(given: str | None, env: Mapping[str, str], cwd: Path) -> Path | None:
    """The workspace of a command that named neither its state folder (--state-root's
    `given`, WVO_STATE_ROOT) nor its workspace (WVO_WORKSPACE_ROOT): the top of the
    repository it runs in, wherever in it (a committed client entry names no path); None:
    the settings' own."""
    named = ("WVO_STATE_ROOT", "WVO_WORKSPACE_ROOT")
    if given is not None or any(env.get(name) for name in named):
        return None
    return top(cwd)


def record(top: Path, state_root: Path) -> None:
    done = git(top, "config", "--local", KEY, str(state_root))
    if done.returncode != 0:
        raise OSError(f"git config {KEY} failed: {done.stderr.strip()}")
