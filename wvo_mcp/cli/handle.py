"""Keeps the process a client starts small, its server in a child, so it stops at once.

The process a client starts stays small, as the client's handle on its server, so it ends
at once when the client stops it.

A client gives the process it started little time to end after SIGINT: Claude Code checks
100 ms later and sends SIGTERM, then SIGKILL 400 ms after that. A server's process holds
~80 MB, which the kernel frees at its exit: ~10 ms of CPU on a virtual machine, so that
beside 14 busy processes on 2 cores its parent saw it end 14-340 ms (median 106) after
SIGINT though it did nothing but exit. The handle holds ~15 MB and ends in a few ms.

So on Linux, over a client's pipes, the server runs in a child: of the state folder's warm
process (warm_relay.py), or, served cold, of the handle itself (served_in_child). The server
holds the client's pipes as the handle does. On SIGINT or SIGTERM the handle passes the
signal on to the server and ends at once with 0 (warm_relay.Forwarder), waiting for nothing
the server does: a busy machine may not run the server for 100 ms. The server then answers
each call it is serving on the client's pipes, hands its leadership over, flushes its
telemetry, closes its store and ends on its own; the client reads its answers until the
pipes close. A server that ends another way (the end of stdin, a refusal to start) tells
its handle its exit code (tell, leave), and the handle ends with it; SIGHUP is passed on and
the handle waits for that word. Imports only light modules, as warm_relay.py does.
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

from wvo_mcp.cli import warm_relay

WORD_MAX_BYTES = 4096

_handle: socket.socket | None = None  # in a server: where its handle waits for its word
_told = threading.Event()


def told_by(conn: socket.socket, client: bool = True) -> None:
    """In a server: `conn` reaches its handle, which ends with the code this server tells it
    (tell, leave). A handle gone before it was told (killed, say) stops the server as
    SIGTERM does; not one that passed its client's stop on and left (warm_relay.LEFT). Any
    other command than a client's server (`client` False) is killed with its handle, as it
    would have been had it run in the handle's process."""
    global _handle
    _handle = conn
    threading.Thread(target=_stop_when_gone, args=(conn, client), daemon=True).start()


def _stop_when_gone(conn: socket.socket, client: bool = True) -> None:
    said = b""
    with contextlib.suppress(OSError):
        while chunk := conn.recv(256):
            said = (said + chunk)[: len(warm_relay.LEFT)]
    if not client:
        os.kill(os.getpid(), signal.SIGKILL)
    if not _told.is_set() and said != warm_relay.LEFT:
        os.kill(os.getpid(), signal.SIGTERM)


def tell(code: int) -> None:
    """A server stopped by a signal has answered all it will answer: its handle, if it is
    still there (the signal came another way than through it), ends now with `code`; this
    server then finishes on its own (hands its leadership over, flushes its telemetry,
    closes its store) and leaves. Once only."""
    if _handle is None or _told.is_set():
        return
    _told.set()
    with contextlib.suppress(OSError):  # the handle is gone: no one waits for the word
        _handle.sendall(json.dumps({"exit": code}).encode() + b"\n")


def leave(code: int) -> NoReturn:
    """End this process now with `code`: no interpreter shutdown, no thread joined. A server
    whose handle is not told yet first closes every descriptor (its locks, its database
    files, the client's pipes), then tells it: the client sees it end as at its exit, while
    the kernel frees its memory. A transaction cut short is rolled back whole."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed stream, a write the signal cut into
            stream.flush()
    if _handle is not None and not _told.is_set():
        keep = _handle.fileno()
        os.closerange(0, keep)
        os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
        tell(code)
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
    serves); in this process, the client's handle, the server's exit code once it ends (the
    client's SIGINT or SIGTERM ends it at once instead: warm_relay.Forwarder). Elsewhere (or
    if the fork fails) None: this process serves."""
    if not sys.platform.startswith("linux") or not _pipes() or not _pidfds():
        return None
    mine, its = socket.socketpair()
    pid, held = warm_relay.fork_held(warm_relay.FORWARDED)
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
    forwarder = warm_relay.Forwarder()
    forwarder.start()
    forwarder.to(pid, mine)
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
        return code  # the server finishes on its own; init reaps it
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


def _pidfds() -> bool:
    """Whether this kernel signals a process by pidfd (Linux 5.3), as the handle does."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True
