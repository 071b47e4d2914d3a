"""The process a client starts stays small, as the client's handle on its server, so it ends
at once when the client stops it.

A client gives the process it started little time to end after SIGINT: Claude Code checks
100 ms later and sends SIGTERM, then SIGKILL 400 ms after that. A server's process holds
~80 MB, and the kernel frees that at its exit: ~10 ms of CPU on a virtual machine, which on
a busy one (load 14 on 2 cores) is 60-340 ms before its parent sees it end, whatever Python
does first. The handle holds ~15 MB and ends in a few ms.

So on Linux, over a client's pipes, the server runs in a child: of the state folder's warm
process (relay.py), or, served cold, of the handle itself (served_in_child). The handle
passes SIGINT, SIGTERM and SIGHUP on to it and ends with its exit code. A server that is
done tells its handle that code as it leaves (leave), once it has let go of all a process's
exit lets go of (locks, files, the client's pipes): the client sees it end as if it had,
while the kernel frees its memory. Imports only light modules, as relay.py does.
"""

import contextlib
import json
import os
import signal
import socket
import stat
import sys
import threading
from types import FrameType
from typing import Any, BinaryIO, NoReturn

from wvo_mcp.cli import relay

WORD_MAX_BYTES = 4096

_handle: socket.socket | None = None  # in a server: where its handle waits for its word


def told_by(conn: socket.socket) -> None:
    """In a server: `conn` reaches its handle, told this process's exit code as it leaves.
    A handle gone (killed, say) stops the server as SIGTERM does."""
    global _handle
    _handle = conn
    threading.Thread(target=_stop_when_gone, args=(conn,), daemon=True).start()


def _stop_when_gone(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while conn.recv(256):
            pass
    os.kill(os.getpid(), signal.SIGTERM)


def leave(code: int) -> NoReturn:
    """End this process now with `code`: no interpreter shutdown, no thread joined. A server
    with a handle first closes every descriptor (its locks, its database files, the client's
    pipes), then tells its handle, which ends while the kernel frees this process's memory.
    A transaction cut short is rolled back whole, as at any exit."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed stream, a write the signal cut into
            stream.flush()
    if _handle is not None:
        keep = _handle.fileno()
        os.closerange(0, keep)
        os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
        with contextlib.suppress(OSError):  # the handle is gone: no one waits for the word
            _handle.sendall(json.dumps({"exit": code}).encode() + b"\n")
    os._exit(code)


def leave_on_signal() -> None:
    """SIGINT or SIGTERM ends this process at once with 0, until the server's own handlers
    (edge/stdio.py) take over: nothing is served yet, so nothing is owed."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _leave_now)


def _leave_now(_signum: int, _frame: FrameType | None) -> None:
    leave(0)


def served_in_child() -> int | None:
    """On Linux, over a client's pipes: forks the server, in which this returns None (it
    serves); in this process, the client's handle, the server's exit code once it ends.
    Elsewhere (or if the fork fails) None: this process serves."""
    if not sys.platform.startswith("linux") or not _pipes():
        return None
    mine, its = socket.socketpair()
    # Held across the fork: a signal before the handle forwards it would be lost.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, relay.FORWARDED)
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError:
        pid = -1
    if pid == 0:
        mine.close()
        told_by(its)
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        return None
    its.close()
    if pid < 0:
        mine.close()
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        return None
    forwarder = relay.Forwarder()
    forwarder.start()
    forwarder.to(pid)
    signal.pthread_sigmask(signal.SIG_SETMASK, held)
    return _ended(pid, mine)


def _ended(pid: int, conn: socket.socket) -> int:
    """The server's exit code: its word, else (it ended another way) its status."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)  # the client's pipes are the server's: the client sees their end
    os.dup2(null, 1)
    os.close(null)
    with conn, conn.makefile("rb") as words:
        code = _word(words).get("exit")
    if isinstance(code, int) and not isinstance(code, bool):
        return code  # the kernel still frees the server, reaped by init
    _, status = os.waitpid(pid, 0)
    ended = os.waitstatus_to_exitcode(status)
    return ended if ended >= 0 else 128 - ended  # killed by a signal: as a shell says it


def _word(words: BinaryIO) -> dict[str, Any]:
    try:
        line = words.readline(WORD_MAX_BYTES)
        found = json.loads(line) if line.endswith(b"\n") else None
    except (OSError, ValueError):
        found = None
    return found if isinstance(found, dict) else {}


def _pipes() -> bool:
    """stdin and stdout are pipes or sockets, as a client starts a server."""
    try:
        modes = [os.fstat(fd).st_mode for fd in (0, 1)]
    except OSError:
        return False
    return all(stat.S_ISFIFO(m) or stat.S_ISSOCK(m) for m in modes)
