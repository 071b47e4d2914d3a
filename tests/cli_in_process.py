"""The `wvo-mcp` command run inside the test process, seen as its process would be: what it
wrote to stdout and stderr, and its exit code, as a `subprocess.CompletedProcess`.

A command owns, for its run, what a process would own alone: stdout, stderr, the root logger
(which `-v` configures), the working directory (the processes ran in the repository's root),
and sys.argv and sys.path as `python -P -m wvo_mcp` starts with them (the sandbox refuses an
import path inside the workspace, such as the root pytest adds). Commands therefore run one
at a time. Each runs in a thread of its own, so that the
`anyio.run` of a command never meets a test's running event loop."""

import functools
import io
import json
import logging
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import wvo_mcp
from wvo_mcp.cli import main

_one_at_a_time = threading.Lock()


class Timeout(Exception):
    """The command did not return in time. A thread cannot be killed as the process was: it
    is left running, a daemon, holding the lock, so the commands after it time out too."""

    def __init__(self, stderr: str) -> None:
        super().__init__(stderr)
        self.stderr = stderr


def run(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    out, err = io.StringIO(), io.StringIO()
    code: list[int] = []
    thread = threading.Thread(
        target=_call, args=(argv, cwd, out, err, code), name="wvo-mcp", daemon=True
    )
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise Timeout(err.getvalue())
    return subprocess.CompletedProcess(["wvo-mcp", *argv], code[0], out.getvalue(), err.getvalue())


def _call(argv: list[str], cwd: Path, out: io.StringIO, err: io.StringIO, code: list[int]) -> None:
    with (
        _one_at_a_time,
        _inside(cwd),
        _started_as_process(argv),
        redirect_stdout(out),
        redirect_stderr(err),
        _own_logging(),
    ):
        code.append(_exit_code(argv))


def _exit_code(argv: list[str]) -> int:
    """What the process would have exited with, having printed what Python prints."""
    try:
        main(argv)
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


@contextmanager
def _inside(cwd: Path) -> Iterator[None]:
    before = Path.cwd()
    if before == cwd:
        yield
        return
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)


@contextmanager
def _started_as_process(argv: list[str]) -> Iterator[None]:
    argv_before, path_before = sys.argv[:], sys.path[:]
    sys.argv[:] = [str(Path(wvo_mcp.__file__).parent / "__main__.py"), *argv]
    sys.path[:] = _process_import_path()
    try:
        yield
    finally:
        sys.argv[:], sys.path[:] = argv_before, path_before


@functools.cache
def _process_import_path() -> list[str]:
    """The sys.path a `python -P` process starts with, asked of one once."""
    shown = subprocess.run(
        [sys.executable, "-P", "-c", "import json, sys; print(json.dumps(sys.path))"],
        capture_output=True,
        text=True,
        check=True,
    )
    found: list[str] = json.loads(shown.stdout)
    return found


@contextmanager
def _own_logging() -> Iterator[None]:
    """A root logger without handlers, as a fresh process has, so that the command's
    `logging.basicConfig` takes effect; pytest's own handlers are put back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        yield
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
