"""The state folder's warm process: imports the CLI once, then forks one per command (_fork).

The warm process of a state folder (warm start, the default on Linux): it imports what `serve`
and the other commands need once, then forks a process for each command a relay (warm_relay.py)
hands over: a server for each client, and any other command but `stop`.

One per state folder (a lock in its run dir), detached, with no thread and no event loop
running, so forking it is safe. Each connection's peer must be this user, and by the kernel's
word (warm_relay.elsewhere) in this process's namespaces with its privileges; then this process
forks at once and the child reads the relay's header: no client's environment ever passes
through this process's memory, which every later server is forked from. A relay of another build
(an upgrade, an edited source) gets "stale" from its child, and this process ends. A forked
child takes the relay's stdin, stdout, stderr, working directory (a descriptor of it, not its
path), environment, umask, cgroup, resource limits, nice value, OOM score and CPU affinity
(adopt), and runs the CLI's normal path (`serve`: settings, the servers lock, the database, the
sandbox layout, its own server; any other command as it would run cold): one process per agent,
as without warm start. This process reaps it and tells the relay its exit code. It never writes
to stdout (the protocol's, in a child) and ends after WVO_WARM_IDLE_SECONDS with no server left,
on SIGTERM (`wvo-mcp stop`), or when it is stale; servers it forked go on until their clients
stop them. The user's shared one clears the folders other builds' shared warm processes left
beside its own, once none holds them.
"""

import atexit
import contextlib
import fcntl
import gc
import importlib
import json
import logging
import os
import resource
import select
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from wvo_mcp.cli import handle, warm_relay
from wvo_mcp.cli.output import warn
from wvo_mcp.config import Settings

# What the serve path imports, directly or on its way (entry imports every command).
PRELOAD = (
    "wvo_mcp.cli.entry",
    "wvo_mcp.edge.server",
    "wvo_mcp.edge.stdio",
    "wvo_mcp.edge.http_server",
    "wvo_mcp.sandbox.protect",
    "concurrent.futures.thread",
    "anyio._core._sockets",
    "anyio.streams.stapled",
    "anyio.streams.tls",
    "rich.logging",
    "rich.console",
    "rich.markup",
    "rich.themes",
    "rich.pager",
    "rich.screen",
    "rich.region",
    "rich.styled",
    "rich._export_format",
    "anyio._core._streams",
    "pwd",
    "wvo_mcp.wiring.place",
    "anyio._backends._asyncio",  # anyio's backend, imported on its first run
    "wvo_mcp.autopilot.loop",  # the autopilot's, imported when it runs
    "uvicorn",  # serve --http's, imported when it serves
)
LOCK_WAIT_S = 2.0  # a stale warm process lets go of the lock as it stops
LOCK_POLL_S = 0.05
HEADER_TIMEOUT_S = 2.0
IDLE_S = 0.2  # a server that used no CPU this long has started
IDLE_POLL_S = 0.05
IDLE_WAIT_S = 10.0
HEADER_MAX_BYTES = 8 * 1024 * 1024
LOG_MAX_BYTES = 256 * 1024  # warm.log: a few lines a start, never read back
EXIT_TIMEOUT_S = 1.0
HELD = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


Build = tuple[str, list[tuple[str, int]]]  # build_id and _fingerprint: what a relay must match


class Forked(BaseException):
    """Raised in a child forked for a relay's connection to leave the warm process's loop,
    each resource it holds closed on the way out, before it reads the relay's header.
    `stale`: where it says, when the relay is of another build, that the warm process is."""

    def __init__(self, conn: socket.socket, build: Build, stale: int) -> None:
        super().__init__()
        self.conn, self.build, self.stale = conn, build, stale


def main(state_root: str, serving: str = "0", shared: str = "") -> int:
    """The warm process of `state_root` (none named for the shared one); `serving`: the pid
    of the relay that started it, serving its own client (0: none); `shared`: the user's
    shared run dir it listens in instead of the state folder's, serving any state folder."""
    try:
        return _warm(Path(state_root), int(serving), Path(shared) if shared else None)
    except Forked as forked:
        child = forked.with_traceback(None)
    # Out of the except clause: the server's own errors must not chain onto this one.
    return _serve(child)


@dataclass
class Children:
    """The children forked and not yet reaped (each reading its relay's header, or its
    server), each with its relay's connection."""

    conns: dict[int, socket.socket] = field(default_factory=dict)

    def __enter__(self) -> "Children":
        return self

    def __exit__(self, *_: object) -> None:
        for conn in self.conns.values():
            conn.close()  # in a forked child: its copies of the others' connections

    def reap(self, block: bool = False) -> None:
        while self.conns:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.conns.pop(pid, None)
            if conn is not None:
                _report(conn, os.waitstatus_to_exitcode(status))


def _report(conn: socket.socket, code: int) -> None:
    with conn:
        try:
            conn.settimeout(EXIT_TIMEOUT_S)
            said = {"exit": code if code >= 0 else 128 - code, "signal": max(0, -code)}
            conn.sendall(json.dumps(said).encode() + b"\n")
        except OSError:
            pass  # the relay is gone


def _warm(state_root: Path, serving: int, shared: Path | None = None) -> int:
    run = _run_dir(state_root) if shared is None else _shared_dir(shared)
    if run is None:
        return 0
    with Children() as children:
        with _locked(run) as held:
            if not held:
                return 0  # another warm process serves this state folder
            _log_to(run / warm_relay.LOG)
            if shared is not None:
                _clear_old(run)
            if serving:
                _when_idle(serving)
            settings = Settings.from_env()
            for name in PRELOAD:
                with contextlib.suppress(ImportError):
                    importlib.import_module(name)
            _rehearse()
            build = warm_relay.build_id(), _fingerprint()
            with _listening(run) as listener, _wakeup() as wake:
                _log(f"warm process {os.getpid()} serving {run}")
                # Forked servers share these pages until written; the collector must not.
                gc.freeze()
                _accept(listener, wake, children, settings, build)
        children.reap(block=True)  # no longer listening: the next warm process may start
    _log(f"warm process {os.getpid()} ends")
    return 0


def _rehearse() -> None:
    """A server built once here, on a throwaway state folder, and dropped: what pydantic and
    the SDK build on first use (a model's schema rebuilt, a type's validator, the packaged
    providers parsed) is then built once for every server forked, not in each at its start.
    Nothing here may start a thread (telemetry off): a fork copies only the forking one."""
    from wvo_mcp import providers
    from wvo_mcp.edge.server import build_server

    # The SDK's server sets up the root logger when nothing has (INFO, to stderr): a forked
    # server's own set-up (quiet unless asked) must find it as it was.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with tempfile.TemporaryDirectory(prefix="wvo-warm-") as scratch:
            env = {"WVO_STATE_ROOT": scratch, "WVO_OTEL_ENABLED": "0", "PATH": os.defpath}
            settings = Settings.from_env(env)
            build_server(settings)
            providers.load(settings)
    except Exception as exc:  # each server builds its own all the same
        _log(f"no rehearsal: {type(exc).__name__}: {exc}")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        # TemporaryDirectory fixed it to this process's TMPDIR (its first client's): each
        # server finds its own client's again (_serve).
        tempfile.tempdir = None


def _when_idle(pid: int) -> None:
    """Returns once process `pid` and its children (the server it serves cold, handle.py)
    have used no CPU for IDLE_S (the server has started and waits on its client), `pid` is
    gone, or after IDLE_WAIT_S: importing at the same time would slow that start down by a
    quarter on two cores."""
    deadline = time.monotonic() + IDLE_WAIT_S
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        try:
            used = _cpu(pid)
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return
        for child in children:
            with contextlib.suppress(OSError):  # ended since it was listed
                used += _cpu(int(child))
        if used != last:
            last, since = used, time.monotonic()
        elif time.monotonic() - since >= IDLE_S:
            return
        time.sleep(IDLE_POLL_S)


def _cpu(pid: int) -> int:
    """The CPU process `pid` has used: utime and stime, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _run_dir(state_root: Path) -> Path | None:
    """The run dir, this user's alone (0700); None when it cannot be made so."""
    run = warm_relay.run_dir(state_root)
    try:
        state_root.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            run.mkdir(mode=0o700)
        found = os.lstat(run)
        if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
            return None
        if stat.S_IMODE(found.st_mode) != 0o700:
            os.chmod(run, 0o700)
    except OSError:
        return None
    return run


def _shared_dir(run: Path) -> Path | None:
    """The user's shared run dir as the relay made it, checked again here: this user's
    alone (0700, no link), as is the folder it is in."""
    if not run.is_absolute() or not all(warm_relay.mine(f) for f in (run.parent, run)):
        return None
    return run


@contextlib.contextmanager
def _locked(run: Path) -> Iterator[bool]:
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        fd = os.open(run / warm_relay.LOCK, LOCK_FLAGS, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() > deadline:
                yield False
                return
            time.sleep(LOCK_POLL_S)
            continue
        with contextlib.suppress(FileNotFoundError):
            found = os.stat(run / warm_relay.LOCK, follow_symlinks=False)
            if (found.st_dev, found.st_ino) == _identity(fd):
                break
        os.close(fd)  # removed as it waited (an old build's folder, cleared): not the one
    try:
        yield True
    finally:
        os.close(fd)  # a forked child's copy, closed, leaves the lock held


def _identity(fd: int) -> tuple[int, int]:
    found = os.fstat(fd)
    return found.st_dev, found.st_ino


def _clear_old(run: Path) -> None:
    """Removes the folders other builds' shared warm processes left beside `run` (one per
    build: each upgrade leaves one) whose lock no process holds. Only folders named warm-*,
    this user's, 0700 and not links, with nothing in them but a warm process's files: a live
    warm process of another build holds its lock, and is left alone."""
    try:
        parent = os.open(run.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:  # nothing cleared is no reason not to serve
        _log(f"cleared nothing: {type(exc).__name__}: {exc}")
        return
    try:
        for name in os.listdir(parent):
            if name.startswith("warm-") and name != run.name:
                try:
                    if _cleared(parent, name):
                        _log(f"removed {name}: no warm process held it")
                except OSError as exc:
                    _log(f"left {name}: {type(exc).__name__}: {exc}")
    except OSError as exc:  # the folder could not be listed: each one's is caught above
        _log(f"cleared nothing: {type(exc).__name__}: {exc}")
    finally:
        os.close(parent)


def _cleared(parent: int, name: str) -> bool:
    """Whether the folder `name` in the folder open as `parent` was an old warm process's,
    and is gone; False for one to leave alone (see _clear_old)."""
    found = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if not _alone(found):
        return False
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    folder = os.open(name, flags, dir_fd=parent)
    try:
        if _identity(folder) != (found.st_dev, found.st_ino) or not _alone(os.fstat(folder)):
            return False  # replaced since it was looked at
        files = {warm_relay.SOCKET, warm_relay.LOG, warm_relay.LOCK}
        if not set(os.listdir(folder)) <= files:
            return False
        lock = os.open(warm_relay.LOCK, LOCK_FLAGS, 0o600, dir_fd=folder)
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a warm process of that build is alive, or starting
            # The lock last: a warm process of that build starting meanwhile waits on it,
            # then finds its folder gone, never a fresh lock beside files being removed.
            for file in (warm_relay.SOCKET, warm_relay.LOG, warm_relay.LOCK):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(file, dir_fd=folder)
            os.rmdir(name, dir_fd=parent)
        finally:
            os.close(lock)
    finally:
        os.close(folder)
    return True


def _alone(found: os.stat_result) -> bool:
    """A folder, not a link, this user's, that no one else may enter (0700)."""
    return (
        stat.S_ISDIR(found.st_mode)
        and found.st_uid == os.getuid()
        and stat.S_IMODE(found.st_mode) == 0o700
    )


def _log_to(path: Path) -> None:
    """Its log, begun anew past LOG_MAX_BYTES (this process alone writes it: the lock)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    with contextlib.suppress(OSError):
        if os.lstat(path).st_size > LOG_MAX_BYTES:
            flags |= os.O_TRUNC
    fd = os.open(path, flags, 0o600)
    os.dup2(fd, 2)
    os.close(fd)


def _log(line: str) -> None:
    warn(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}")


def _fingerprint() -> list[tuple[str, int]]:
    """When this process's own modules and the import path's folders last changed: an
    edited source or an installed package makes it stale, at the same version."""
    files = [
        getattr(module, "__file__", None) or ""
        for name, module in list(sys.modules.items())
        if name == "wvo_mcp" or name.startswith("wvo_mcp.")
    ]
    found = []
    for path in sorted({*files, *sys.path} - {""}):
        try:
            found.append((path, os.stat(path).st_mtime_ns))
        except OSError:
            found.append((path, -1))
    return found


@contextlib.contextmanager
def _listening(run: Path) -> Iterator[socket.socket]:
    """The socket relays connect to (0600), bound through the folder's descriptor."""
    folder = os.open(run, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    owner = os.getpid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(warm_relay.SOCKET, dir_fd=folder)  # a dead one's: the lock is ours
        umask = os.umask(0o177)
        try:
            listener.bind(f"/proc/self/fd/{folder}/{warm_relay.SOCKET}")
        finally:
            os.umask(umask)
        listener.listen(64)
        yield listener
    finally:
        listener.close()
        if os.getpid() == owner:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(warm_relay.SOCKET, dir_fd=folder)
        os.close(folder)


@dataclass
class Stop:
    asked: bool = False

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        self.asked = True


@contextlib.contextmanager
def _wakeup() -> Iterator[tuple[int, Stop]]:
    """A pipe a signal wakes the loop through (SIGCHLD: reap; SIGTERM: stop)."""
    read, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    stop = Stop()
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, stop)
    try:
        yield read, stop
    finally:
        signal.set_wakeup_fd(-1)
        os.close(read)
        os.close(write)


def _accept(
    listener: socket.socket,
    wake: tuple[int, Stop],
    children: Children,
    settings: Settings,
    build: Build,
) -> None:
    """Forks a child per relay until stopped, stale, or idle for the set time, once its
    connection has bytes to read (a probe that only connects, or a silent one, is closed:
    HEADER_TIMEOUT_S). The child reads the relay's header and becomes its server or says
    why not: this process never reads a byte of it, so no client's environment is in the
    memory the next servers are forked from, and a slow relay holds up no other."""
    read, stop = wake
    stale, told = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)  # a child says "stale" here
    poller = select.poll()
    for fd in (listener.fileno(), read, stale):
        poller.register(fd, select.POLLIN)
    pending: dict[int, Pending] = {}
    busy = time.monotonic()  # when a server last ran or a relay came: idle since
    try:
        while not stop.asked:
            now = time.monotonic()
            left = busy + settings.warm_idle_seconds - now
            if not children.conns and not pending and left <= 0:
                _log("idle")
                return
            waits = [waiting.until - now for waiting in pending.values()]
            if not children.conns:
                waits.append(left)
            timeout = max(0.0, min(waits)) * 1000 if waits else None
            ready = dict(poller.poll(timeout))
            if read in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(read, 4096)
            if stale in ready:
                _log("stale: a relay of another build came")
                return
            if children.conns:
                children.reap()
                busy = time.monotonic()
            now = time.monotonic()
            for fd in [
                fd for fd, waiting in pending.items() if fd in ready or waiting.until <= now
            ]:
                poller.unregister(fd)
                waiting = pending.pop(fd)
                if waiting.why is None and ready.get(fd) == select.POLLIN:
                    _fork(waiting.conn, children, build, told)
                else:  # hung up, silent too long, or refused (and now gone)
                    waiting.conn.close()
            if listener.fileno() in ready:
                busy = time.monotonic()
                came = _arrived(listener)
                if came is not None:
                    conn, why = came
                    if why is not None:
                        _refuse(conn, why)  # kept, unread, as it may still be sending
                    pending[conn.fileno()] = Pending(conn, busy + HEADER_TIMEOUT_S, why)
                    # A refused peer's hang-up alone; another's first bytes, or hang-up.
                    poller.register(conn, select.POLLIN if why is None else 0)
    finally:
        for waiting in pending.values():
            waiting.conn.close()
        os.close(stale)
        os.close(told)


@dataclass
class Pending:
    """A relay's connection not yet handed to a child: until its first bytes come (or,
    refused, until it hangs up), at most until `until`."""

    conn: socket.socket
    until: float
    why: str | None  # why the kernel's word on its peer refuses it, if it does


def _arrived(listener: socket.socket) -> tuple[socket.socket, str | None] | None:
    """A relay's new connection, this user's, with why the kernel's word on its peer refuses
    it, if it does; None for another user's (closed, nothing said). That word is taken now,
    before anything the peer sent is read: whatever it sent (another build's header, which
    would end this process as stale) is not heard from a refused peer."""
    try:
        conn, _ = listener.accept()
    except OSError:
        return None
    try:
        _, uid, gid = warm_relay.peer_uid(conn)
    except OSError:
        uid = gid = -1
    if (uid, gid) != (os.getuid(), os.getgid()):
        conn.close()
        return None
    return conn, warm_relay.elsewhere(conn)


def _fork(conn: socket.socket, children: Children, build: Build, told: int) -> None:
    """A child for the relay on `conn`, which reads its header and serves its client (_serve);
    this process keeps the connection to tell the relay how its server ended."""
    pid, held = warm_relay.fork_held(HELD)
    if pid == 0:
        try:
            stale = os.dup(told)  # its own: the loop's is closed on the way out
        except OSError:
            os._exit(1)  # the relay, told this code, serves its client itself
        raise Forked(conn, build, stale)
    signal.pthread_sigmask(signal.SIG_SETMASK, held)
    if pid < 0:
        _log("fork failed: the relay serves its client itself")
        conn.close()
        return
    children.conns[pid] = conn


class Refused(Exception):
    """A relay not served, and why."""


def _refuse(conn: socket.socket, why: str) -> None:
    with contextlib.suppress(OSError):
        conn.setblocking(True)
        conn.settimeout(EXIT_TIMEOUT_S)
        conn.sendall(json.dumps({"refused": why}).encode() + b"\n")


def _header(conn: socket.socket, build: Build) -> tuple[dict[str, Any], list[int]]:
    """In a forked child: its relay's header, checked, and the descriptors that came with
    it (HANDED); Refused says why not, each descriptor closed."""
    try:
        data, fds = _received(conn)
    except (OSError, ValueError) as exc:
        raise Refused(f"unreadable: {type(exc).__name__}") from None
    try:
        header = _checked(json.loads(data))
        refused = _refusal(header, build)
    except (ValueError, RecursionError):  # RecursionError: JSON nested past the stack
        refused = "not a relay's header"
    if refused is not None:
        for fd in fds:
            os.close(fd)
        raise Refused(refused)
    return header, fds


def _received(conn: socket.socket) -> tuple[bytes, list[int]]:
    """The header's bytes and the descriptors that came with them (the stdio with the
    length, the working directory with the rest), once whole (HEADER_TIMEOUT_S for all of
    it); ValueError for what is no relay's header."""
    deadline = time.monotonic() + HEADER_TIMEOUT_S
    data = bytearray()
    fds: list[int] = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no whole header in time")
            conn.settimeout(left)
            space = socket.CMSG_SPACE(warm_relay.HANDED * 4)
            chunk, ancillary, flags, _ = conn.recvmsg(1 << 16, space, socket.MSG_CMSG_CLOEXEC)
            for level, kind, item in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds += [int.from_bytes(item[i : i + 4], sys.byteorder)
                            for i in range(0, len(item), 4)]  # fmt: skip
            if flags & socket.MSG_CTRUNC:  # descriptors past the space the kernel dropped
                raise ValueError("not a relay's header")
            if not chunk:
                raise ValueError("the relay hung up")
            data += chunk
            if len(data) < warm_relay.LENGTH.size:
                continue
            (size,) = warm_relay.LENGTH.unpack_from(data)
            whole = warm_relay.LENGTH.size + size
            if len(fds) > warm_relay.HANDED or size > HEADER_MAX_BYTES or len(data) > whole:
                raise ValueError("not a relay's header")
            if len(data) == whole:
                if len(fds) != warm_relay.HANDED:
                    raise ValueError("not a relay's header")
                return bytes(data[warm_relay.LENGTH.size :]), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _refusal(header: dict[str, Any], build: Build) -> str | None:
    if header["build"] != build[0] or _fingerprint() != build[1]:
        return "stale"
    if len(environment_block(header["env"])) > environment_room():
        return "an environment larger than the warm process's room"
    if header["namespaces"] != warm_relay.namespaces():
        return "another namespace"
    if warm_relay.command_shape(header["argv"]) is None:
        return "not a command served warm"
    return None


def environment_block(env: dict[str, str]) -> bytes:
    """`env` as the kernel keeps a process's environment: NUL-terminated `NAME=value`s."""
    return b"".join(os.fsencode(f"{k}={v}") + b"\0" for k, v in env.items())


def environment_room() -> int:
    """The bytes /proc/PID/environ shows of this process: its environment block, from
    env_start to env_end (/proc/self/stat's 50th and 51st fields), fixed at its exec."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[48]) - int(fields[47])  # fields[0] is the 3rd field


def show_environment(block: bytes) -> None:
    """In a forked server: its client's environment written over the one the warm process
    started with, so the kernel shows each server its own client's (/proc/PID/environ),
    never the warm process's or another client's. The rest of the room is zeroed. The C
    library no longer points into it: os.environ was cleared and set anew, which copies."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    start, end = int(fields[47]), int(fields[48])
    with open("/proc/self/mem", "r+b", buffering=0) as memory:
        memory.seek(start)
        memory.write(block[: end - start].ljust(end - start, b"\0"))


def _checked(header: object) -> dict[str, Any]:
    kinds = {
        "build": str,
        "argv": list,
        "argv0": str,
        "env": dict,
        "umask": int,
        "namespaces": dict,
        "cgroup": str,
        "limits": dict,
        "nice": int,
        "oom_score_adj": str,
    }
    if not isinstance(header, dict) or any(
        not isinstance(header.get(key), kind) for key, kind in kinds.items()
    ):
        raise ValueError("not a relay's header")
    strings = [*header["argv"], *header["env"].keys(), *header["env"].values()]
    if not all(isinstance(s, str) for s in strings):
        raise ValueError("not a relay's header")
    return header


def _serve(child: Forked) -> int:
    """In a forked child: read the relay's header, become its server, and serve its client
    as `serve` does; or tell the relay why not, and it serves its client itself."""
    conn = child.conn
    for signum in HELD:
        signal.signal(signum, signal.SIG_DFL)
    handle.leave_on_signal()
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    try:
        header, fds = _header(conn, child.build)
    except Refused as exc:
        if str(exc) == "stale":  # the warm process ends, then the relay starts a new one
            with contextlib.suppress(OSError):
                os.write(child.stale, b"stale")
        _refuse(conn, str(exc))
        return 0
    finally:
        os.close(child.stale)
    *stdio, here = fds
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
        os.close(fd)
    try:
        os.fchdir(here)  # the relay's directory itself, whatever its path names by now
    except OSError as exc:
        _refuse(conn, f"a working directory it cannot enter: {exc.strerror}")
        return 0
    finally:
        os.close(here)
    os.environ.clear()
    os.environ.update(header["env"])
    show_environment(environment_block(header["env"]))
    time.tzset()
    tempfile.tempdir = None  # found again from its client's TMPDIR, not the warm process's
    os.umask(header["umask"])
    sys.argv = [header["argv0"], *header["argv"]]
    conn.settimeout(None)
    refused = adopt_relay_bounds(header)
    if refused is not None:  # the relay serves its client itself: nothing was read
        conn.sendall(json.dumps({"refused": refused}).encode() + b"\n")
        return 0
    try:
        conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
        go = conn.recv(len(warm_relay.GO))
    except OSError:
        return 0  # the relay is gone (its client stopped it): nothing was read
    if go != warm_relay.GO:
        return 0  # the relay serves its client itself, or is gone: nothing was read
    shape = warm_relay.command_shape(header["argv"])
    client = shape is not None and shape.stdio_serve
    if not client:  # signals as a command run cold takes them: Ctrl-C drains an autopilot
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    handle.told_by(conn, client)  # the relay ends on this server's word, it on the relay's end
    from wvo_mcp.cli import entry

    entry.main(header["argv"])
    if client and threading.active_count() == sum(t.daemon for t in threading.enumerate()) + 1:
        # What the interpreter's shutdown runs, without the rest of it: tearing down the
        # modules and objects forked from the warm process writes to every page they share
        # with it, a third of a short session's CPU.
        atexit._run_exitfuncs()
        handle.leave(0)
    return 0


def adopt_relay_bounds(header: dict[str, Any]) -> str | None:
    """In a forked server: its relay's cgroup, resource limits, nice value, OOM score
    adjustment and CPU affinity instead of the warm process's, so it is bounded and
    accounted as its client is; or why it cannot be (a limit above the warm process's, a
    cgroup it may not join, CPUs outside its own).
    A process cannot join another's session: the relay is its handle there instead."""
    from wvo_mcp.sandbox import cgroups  # preloaded: light here, heavy for the warm's start

    mine = warm_relay.bounds()
    try:
        if header["cgroup"] != mine["cgroup"]:
            cgroups.move_into(header["cgroup"])
        for name, (soft, hard) in header["limits"].items():
            if not name.startswith("RLIMIT_"):
                raise ValueError(f"not a resource limit: {name[:40]!r}")
            if [soft, hard] != mine["limits"].get(name):
                resource.setrlimit(getattr(resource, name), (soft, hard))
        if header["nice"] != mine["nice"]:
            os.setpriority(os.PRIO_PROCESS, 0, header["nice"])
        if header["oom_score_adj"] != mine["oom_score_adj"]:
            Path("/proc/self/oom_score_adj").write_text(header["oom_score_adj"])
        # Absent from an earlier build's header, which is answered "stale" all the same.
        if header.get("cpus", mine["cpus"]) != mine["cpus"]:
            os.sched_setaffinity(0, header["cpus"])
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        return f"bounds the warm process cannot take on: {type(exc).__name__}: {exc}"
    return None
