"""Warm start's client side: hands a command to a warm process, or starts one (scrubbed env).

`wvo-mcp serve` over stdio with warm start (the default on Linux): the process a client
starts hands its stdin, stdout, stderr and working directory (descriptors, over the socket)
to the state folder's warm process (warm.py), which forks a server for them with everything
already imported and this process's bounds (its cgroup and limits); this process stays as
the client's handle on it.

It forwards SIGINT, SIGTERM and SIGHUP to that server; it exits 0 at once on the first two
(a client stopping its server: handle.py), else with the server's exit code; killed, it
leaves the server to see its connection close and stop as on SIGTERM. When no warm process
answers (none yet, another build's, any error), it starts one for the next clients and
returns, and this process serves its client itself as without warm start: warm start never
makes serving fail. Imports only light modules: the point is to skip the heavy ones.

A state folder with no warm process of its own yet (a fresh one, or a first start in a
repository), and a command run where none is named or found yet (`init`), are served by the
user's shared warm process of this build when one listens (WVO_WARM_SHARED, on unless "0"): a
forked server reads its client's state folder from its client's environment and arguments, as
every forked server does, so one imported process can serve any of them and a first start need
not import. Its socket is in the user's runtime folder ($XDG_RUNTIME_DIR,
else /tmp/wvo-mcp-UID, each this user's alone, 0700), which a sandboxed command never sees.
"""

import contextlib
import hashlib
import json
import os
import resource
import select
import signal
import socket
import stat
import struct
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO, NamedTuple, NoReturn

import wvo_mcp
from wvo_mcp.config import Settings

RUN_DIR = "run"  # in the state folder, which sandboxed commands cannot reach
SHARED = "WVO_WARM_SHARED"  # "0": only the state folder's own warm process
SHARED_DIR = "wvo-mcp"  # in $XDG_RUNTIME_DIR; else /tmp/wvo-mcp-UID
SOCKET = "warm.sock"
LOCK = "warm.lock"
LOG = "warm.log"
ANSWER_TIMEOUT_S = 3.0  # a warm process slower than this to fork is passed by
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOPS = (signal.SIGINT, signal.SIGTERM)  # a client stopping its server: the handle leaves
LEFT = b"left\n"  # a handle's last word to its server: it passed a stop on, and is gone
NAMESPACES = ("mnt", "pid", "net", "ipc", "uts", "user", "cgroup")
# What a process may do besides its uid and gid, as /proc/PID/status says: a server forked
# for a client with fewer rights (a sandbox's) would serve it with the warm process's.
PRIVILEGES = (
    "Uid", "Gid", "Groups", "NoNewPrivs", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
    "Seccomp", "Seccomp_filters",
)  # fmt: skip
LENGTH = struct.Struct(">I")
HANDED = 4  # descriptors with the header: stdin, stdout, stderr, working directory
ANSWER_MAX_BYTES = 4096
GO = b"go\n"
STOP_TIMEOUT_S = 10.0
STOP_POLL_S = 0.05
# The warm process's own environment: what starting it needs, and its settings.
WARM_KEEPS = frozenset(
    {"PATH", "HOME", "LANG", "TZ", "TMPDIR", "WVO_WARM_IDLE_SECONDS", "WVO_LOG_LEVEL"}
)
RESERVE = "WVO_WARM_RESERVE"  # room for a forked server's client's environment
RESERVE_BYTES = 64 * 1024  # a client whose environment is larger is served cold
# Starts the warm process with this process's import path, whatever put it there.
BOOT = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from wvo_mcp.cli import warm; sys.exit(warm.main(*sys.argv[2:]))"
)


def fork_held(signals: tuple[signal.Signals, ...]) -> tuple[int, set[int | signal.Signals]]:
    """os.fork with `signals` blocked across it, as one that came before the child's handlers
    (or the parent's forwarding) are in place would be lost: the pid (0 in the child, -1
    where it failed), and the mask to restore."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    sys.stderr.flush()
    try:
        return os.fork(), held
    except OSError:
        return -1, held


COLD = frozenset({"stop"})  # stops the warm process itself: never one of its children
VERBOSE = ("-v", "--verbose")


class Shape(NamedTuple):
    """A command line the relay hands over as it is: the line, its --state-root, and its words
    from the command on (none: serve over stdio)."""

    argv: list[str]
    state_root: str | None
    command: list[str]

    @property
    def stdio_serve(self) -> bool:
        """Serving over stdio (`serve`, or no command; `-v` anywhere): a client's server,
        which leaves on a client's stop. Any other command is waited for."""
        head, *tail = self.command or ["serve"]
        return head == "serve" and all(word in VERBOSE for word in tail)


def command_shape(argv: list[str]) -> Shape | None:
    """`argv` as `[--state-root DIR] [-v] [COMMAND ...]`; None for a line the CLI reads itself
    (help, the version, an abbreviation, an option twice) and `stop`: they go the normal way."""
    state_root: str | None = None
    at = 0
    while at < len(argv):
        word = argv[at]
        at += 1
        if word in VERBOSE:
            continue
        if word == "--state-root" and state_root is None:
            state_root = argv[at] if at < len(argv) else None
            at += 1
            if state_root is None or state_root.startswith("-"):
                return None
        elif word.startswith("--state-root=") and state_root is None:
            state_root = word.removeprefix("--state-root=")
        elif word.startswith("-") or word in COLD:
            return None
        else:
            return Shape(argv, state_root, argv[at - 1 :])
    return Shape(argv, state_root, [])


def tools_profile() -> str:
    """The WVO_TOOLS a server here would serve (config.Settings reads it the same way)."""
    return os.environ.get("WVO_TOOLS", "").strip() or "all"


def run_dir(state_root: Path) -> Path:
    return state_root / RUN_DIR


def shared_run_dir(env: Mapping[str, str]) -> Path | None:
    """The run dir of the user's shared warm process of this build, made if need be; None
    when switched off, or when a folder on the way is not this user's alone (0700, no link)."""
    if env.get(SHARED, "1").strip() == "0":
        return None
    runtime = env.get("XDG_RUNTIME_DIR", "")
    base = Path(runtime) / SHARED_DIR if runtime.startswith("/") else None
    if base is None or not mine(base.parent):
        base = Path("/tmp") / f"{SHARED_DIR}-{os.getuid()}"
    key = hashlib.sha256(build_id().encode()).hexdigest()[:16]
    run = base / f"warm-{key}"
    for folder in (base, run):
        with contextlib.suppress(OSError):
            folder.mkdir(mode=0o700)
        if not mine(folder):
            return None
    return run


def mine(folder: Path) -> bool:
    """A folder (not a link to one) this user owns and no one else may enter."""
    try:
        found = os.lstat(folder)
    except OSError:
        return False
    return (
        stat.S_ISDIR(found.st_mode)
        and found.st_uid == os.getuid()
        and stat.S_IMODE(found.st_mode) & 0o077 == 0
    )


def build_id() -> str:
    """What a warm process must share with a relay to serve its client: the same release of
    the same package, run by the same interpreter from the same import path."""
    package = os.path.dirname(os.path.abspath(wvo_mcp.__file__))
    return json.dumps([wvo_mcp.__version__, package, sys.executable, import_path()])


def warm_environment(env: Mapping[str, str]) -> dict[str, str]:
    """What the warm process starts with: only what it needs to start (no client's secret or
    agent id: it serves many clients), and a reserve of room that each server it forks
    writes its own client's environment over (warm.show_environment)."""
    kept = {k: v for k, v in env.items() if k in WARM_KEEPS or k.startswith("LC_")}
    return {**kept, RESERVE: "x" * RESERVE_BYTES}


def import_path() -> list[str]:
    return [os.getcwd() if entry == "" else entry for entry in sys.path]


def namespaces(pid: int | str = "self") -> dict[str, int]:
    """This process's namespaces (or process `pid`'s, those that can be read): a server
    forked elsewhere would see other mounts, pids."""
    found = {}
    for name in NAMESPACES:
        try:
            found[name] = os.stat(f"/proc/{pid}/ns/{name}").st_ino
        except OSError:
            continue
    return found


def privileges(pid: int | str = "self") -> dict[str, str]:
    """Process `pid`'s groups, capability sets, no_new_privs, seccomp mode and LSM label;
    OSError when they cannot be read (a process gone)."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in PRIVILEGES:
            found[name] = " ".join(value.split())
    try:
        found["label"] = Path(f"/proc/{pid}/attr/current").read_text()
    except OSError as exc:  # no LSM here: the same error for every process
        found["label"] = f"unreadable: {exc.errno}"
    return found


def bounds() -> dict[str, Any]:
    """What bounds this process, which a server forked for it takes on
    (warm.adopt_relay_bounds): its cgroup, resource limits, nice value, OOM score
    adjustment and the CPUs it may run on."""
    limits = {
        name: list(resource.getrlimit(getattr(resource, name)))
        for name in dir(resource)
        if name.startswith("RLIMIT_")
    }
    return {
        "cgroup": _read("/proc/self/cgroup"),
        "limits": limits,
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "oom_score_adj": _read("/proc/self/oom_score_adj").strip(),
        "cpus": sorted(os.sched_getaffinity(0)),
    }


def _read(path: str) -> str:
    try:
        with open(path) as found:
            return found.read()
    except OSError:
        return ""


def peer_uid(conn: socket.socket) -> tuple[int, int, int]:
    """The pid, uid and gid of the process at the other end of a unix socket."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", creds)
    return pid, uid, gid


SO_PEERPIDFD = getattr(socket, "SO_PEERPIDFD", 77)  # Linux 6.5; Python 3.13 names it


def elsewhere(conn: socket.socket) -> str | None:
    """Why the process at the other end of `conn` is not one to hand a client to or take one
    from, by the kernel's word: in other namespaces (a sandbox's: it sees other files and
    networks), with other groups, capabilities, no_new_privs, seccomp or LSM label than this
    process, or gone. Its pid is pinned by a pidfd of the peer (SO_PEERPIDFD) where the kernel
    gives one, so a pid reused since is not judged in its place; else a process started
    after this check began cannot be the peer."""
    since = time.clock_gettime(time.CLOCK_BOOTTIME)
    try:
        pid, _, _ = peer_uid(conn)
    except OSError:
        return "another namespace"
    try:
        pinned = int.from_bytes(conn.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD, 4), sys.byteorder)
    except OSError:
        pinned = None  # an older kernel
    try:
        if pinned is None and _started(pid) > since * os.sysconf("SC_CLK_TCK"):
            return "another namespace"  # a pid reused since the peer connected
        ours = namespaces()
        if pid <= 0 or not ours or namespaces(pid) != ours:
            return "another namespace"
        if privileges(pid) != privileges():
            return "other privileges"
        if pinned is not None and select.select([pinned], [], [], 0)[0]:
            return "another namespace"  # the peer ended: what was read may be another's
    except OSError:
        return "another namespace"
    finally:
        if pinned is not None:
            os.close(pinned)
    return None


def _started(pid: int) -> int:
    """When process `pid` started, in clock ticks since boot."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def handed_over(shape: Shape) -> int | None:
    """This command run by a process the warm process forked: its exit code, once it ends
    (killed by a signal, this process is killed by the same). None: run it here (warm start
    off, or no warm process answered)."""
    if not sys.platform.startswith("linux"):
        return None
    given = shape.state_root
    try:
        settings = Settings.from_env()
        if not settings.warm_start:
            return None
        from wvo_mcp.wiring import place

        chosen = place.chosen(given, os.environ, Path.cwd())
        # None named or found (`init` in a fresh repository): only the shared warm process
        # can run it, as the normal path would.
        state_root = None if chosen is None else Settings.from_env(state_root=chosen).state_root
    except Exception:
        return None  # the normal path says what is wrong
    # A client's server leaves on a client's stop; any other command is waited for.
    forwarder = Forwarder(leaves=shape.stdio_serve)
    shared: Path | None = None  # the user's shared warm process answers, not the folder's
    try:
        if state_root is None:
            raise FileNotFoundError("no state folder, so none of its own")
        conn = _connect(run_dir(state_root))
    except Elsewhere:
        return None
    except OSError:
        # None of the folder's own: the user's shared one serves any folder.
        shared = shared_run_dir(os.environ)
        try:
            if shared is None:
                raise FileNotFoundError("no shared warm process")
            conn = _connect(shared)
        except Elsewhere:
            return None
        except OSError:
            start_warm(state_root, shared)
            return None
    with conn, conn.makefile("rb") as answers:
        try:
            answer = _hand_over(conn, answers, shape.argv, forwarder)
        except (OSError, ValueError):
            answer = None
        if answer is True:
            return _served(conn, answers, forwarder.leaves)
        forwarder.stop()
        if answer == "stale":
            start_warm(state_root, shared)  # the stale one is on its way out
        return None


class Elsewhere(PermissionError):
    """A warm process this client is not to be handed to (warm_relay.elsewhere): served cold,
    and no other started for it."""


def _connect(run: Path) -> socket.socket:
    """A connection to the warm process of the state folder whose run dir is `run`, one of
    this user's, through the folder's descriptor: a path past 107 bytes cannot be bound."""
    folder = os.open(run, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(ANSWER_TIMEOUT_S)
        conn.connect(f"/proc/self/fd/{folder}/{SOCKET}")
        _, uid, _ = peer_uid(conn)
        if uid != os.getuid():
            raise PermissionError("the warm socket is another user's")
        # Nothing of this client's (its environment) to a listener a sandbox put there.
        foreign = elsewhere(conn)
        if foreign is not None:
            raise Elsewhere(f"the warm socket's listener: {foreign}")
    except BaseException:
        conn.close()
        raise
    finally:
        os.close(folder)
    return conn


def _hand_over(
    conn: socket.socket, answers: BinaryIO, argv: list[str], forwarder: "Forwarder"
) -> bool | str | None:
    """Hands stdin, stdout, stderr and the working directory over (HANDED); True once a
    forked server serves them, else why not (None: no answer)."""
    umask = os.umask(0o077)
    os.umask(umask)
    header = {
        "build": build_id(),
        "argv": argv,
        "argv0": sys.argv[0] if sys.argv else "wvo-mcp",
        "env": dict(os.environ),
        # Read by the warm processes of earlier builds before they compare builds (and
        # answer "stale"); no server enters it: the working directory comes as a descriptor.
        "cwd": "",
        "umask": umask,
        "namespaces": namespaces(),
        **bounds(),
    }
    payload = json.dumps(header).encode()
    # This process's working directory itself, not its path: a path may name another
    # directory by the time the server enters it (renamed, replaced).
    here = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        forwarder.start()  # a signal from here on is the server's, once it is known
        # Stdin, stdout and stderr with the length, the directory with the header: a warm
        # process of an earlier build takes the three it expects, reads on, and says "stale".
        socket.send_fds(conn, [LENGTH.pack(len(payload))], [0, 1, 2])
        sent = socket.send_fds(conn, [payload], [here])
    finally:
        os.close(here)
    conn.sendall(payload[sent:])
    answer = _line(answers) or {}
    pid = answer.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        refused = answer.get("refused")  # or gone: either way no server touched stdin
        return refused if isinstance(refused, str) else None
    forwarder.to(pid, conn)
    # From here the forked server serves the client: it read nothing before this.
    conn.sendall(GO)
    return True


def _served(conn: socket.socket, answers: BinaryIO, client: bool = True) -> int:
    """The server's exit code, as the warm process reports it when it has reaped it. The
    client is the server's now: nothing here may fall back to serving it. A command other
    than a client's server, killed by a signal, ends this process by the same signal, as it
    would have ended run here."""
    try:
        conn.settimeout(None)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
        answer = _line(answers)
    except (OSError, ValueError):
        answer = None
    code = answer.get("exit") if answer is not None else None
    killed = answer.get("signal") if answer is not None else None
    if not client and isinstance(killed, int) and killed in signal.valid_signals():
        with contextlib.suppress(OSError):  # SIGKILL's and SIGSTOP's cannot be set
            signal.signal(killed, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {killed})
        os.kill(os.getpid(), killed)
    # None: the warm process was killed first, and nothing knows how the server ended.
    return code if isinstance(code, int) and not isinstance(code, bool) else 1


def _line(answers: BinaryIO) -> dict[str, Any] | None:
    """One JSON object on a line from the warm process; None at the end of the connection."""
    line = answers.readline(ANSWER_MAX_BYTES)
    if not line.endswith(b"\n"):
        return None
    found = json.loads(line)
    return found if isinstance(found, dict) else None


class Forwarder:
    """The client's signals passed on to the forked server (by pidfd: its pid may be reused
    once it ends); for any other command than a client's server (`leaves` False), each is
    passed on and this process waits for the command's end. SIGINT and SIGTERM, a client
    stopping its server, end this process at once with 0 once they are passed on: the
    server, holding the client's pipes too, answers what it is serving and finishes on its
    own, and a client waits for no process that needs the CPU on a busy machine (the server,
    its cleanup, the kernel freeing its memory). SIGHUP is passed on, and this process waits
    for the server's end. Before a server serves, a stop ends this process all the same (a
    server forked meanwhile never gets the word to serve); a SIGHUP is held, and raised here
    again if none serves."""

    def __init__(self, leaves: bool = True) -> None:
        self.leaves = leaves
        self.pidfd: int | None = None
        self.conn: socket.socket | None = None
        self.pending: list[int] = []
        self.previous: dict[int, Any] = {}

    def start(self) -> None:
        for signum in FORWARDED:
            self.previous[signum] = signal.signal(signum, self._on_signal)

    def to(self, pid: int, conn: socket.socket) -> None:
        """The server is `pid`, and `conn` reaches it (handle.told_by)."""
        self.conn = conn
        self.pidfd = os.pidfd_open(pid)
        for signum in self.pending:
            self._send(signum)
        self.pending.clear()

    def stop(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        for signum in self.pending:
            signal.raise_signal(signum)

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        if signum in STOPS and self.leaves:
            self._leave(signum)
        if self.pidfd is None:
            self.pending.append(signum)
        else:
            self._send(signum)

    def _leave(self, signum: int) -> NoReturn:
        """Passes the stop on and ends this process with 0, now. The server is told that
        this end is no kill (LEFT): its connection's end would stop it as SIGTERM does, which
        a stopping server takes for a second signal, cutting short the calls it answers."""
        if self.pidfd is not None and self.conn is not None:
            self._send(signum)
            with contextlib.suppress(OSError):  # gone already: nothing is owed
                self.conn.send(LEFT, socket.MSG_DONTWAIT)
        os._exit(0)

    def _send(self, signum: int) -> None:
        assert self.pidfd is not None
        with contextlib.suppress(ProcessLookupError):  # ended: its exit code is on its way
            signal.pidfd_send_signal(self.pidfd, signum)


def stop_warm(state_root: Path, timeout: float = STOP_TIMEOUT_S) -> int | None:
    """Stops the state folder's warm process (SIGTERM): the pid of the one that stopped
    listening, None when none listened. The servers it forked go on serving their clients."""
    try:
        conn = _connect(run_dir(state_root))
    except OSError:
        return None
    with conn:
        pid, _, _ = peer_uid(conn)  # whoever listens: the warm process, this user's
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None  # it ended meanwhile
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        # It lets go of its socket at once, and ends once the servers it forked have.
        ended = select.poll()
        ended.register(pidfd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while (run_dir(state_root) / SOCKET).exists() and not ended.poll(STOP_POLL_S * 1000):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the warm process {pid} still listens after {timeout:g} s")
    finally:
        os.close(pidfd)
    return pid


def start_warm(state_root: Path | None, shared: Path | None = None) -> None:
    """Starts the state folder's warm process for the next clients (with `shared`, the user's
    shared one listening in that run dir instead; neither: none), detached from this one (its
    own session, no pipe of the client's, reaped by init), without waiting for it; it starts
    importing once this process, which serves its client itself, is idle."""
    if state_root is None and shared is None:
        return
    serving = os.getpid()
    try:
        first = os.fork()
    except OSError:
        return
    if first:
        os.waitpid(first, 0)
        return
    try:  # in the child: never return into the caller's code
        os.setsid()
        if os.fork() == 0:
            os.chdir("/")
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))
            path = json.dumps(import_path())
            # The shared one serves any state folder: its command line names none (ps).
            named = "" if shared is not None else str(state_root)
            argv = [sys.executable, "-P", "-c", BOOT, path, named, str(serving)]
            if shared is not None:
                argv.append(str(shared))
            os.execve(sys.executable, argv, warm_environment(os.environ))
    finally:
        os._exit(0)
