"""The relay inside a sandbox with no network: loopback ports carried to the egress proxy.

The relay inside a sandbox that has no network: loopback ports carried to the egress
proxy's Unix socket, then the sandbox's real command as its child.

    python -I -m wvo_mcp.sandbox.relay --socket PATH [--forward HOST:PORT ...]
        [--proxy-port N] [--nproc N] [--nice N] -- ARGV...

`--forward host:port` listens on 127.0.0.1:port (and [::1]:port when host is ::1) and asks
the proxy for a tunnel to host:port for each connection, so a URL such as
http://127.0.0.1:8765/mcp works unchanged inside. `--proxy-port N` listens on 127.0.0.1:N and
carries each connection as it is: the client speaks CONNECT itself (HTTPS_PROXY points here).
`--nproc N` and `--nice N` are the resource limits' fallback where no cgroup is at hand
(run_limits.py): RLIMIT_NPROC, set here inside the sandbox's user namespace, where it counts that
sandbox's processes; and a lower priority. Everything the command starts inherits both.
The relay decides nothing: the proxy outside holds the policy, and a command that bypasses
the relay reaches only that proxy. Standard library only, so it starts fast and runs where
the wvo_mcp package is not mounted (`command` puts its source on the command line).
"""

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import threading

USAGE = (
    "usage: python -I -m wvo_mcp.sandbox.relay --socket PATH [--forward HOST:PORT ...] "
    "[--proxy-port N] [--nproc N] [--nice N] -- ARGV..."
)
CHUNK = 65_536
MAX_REPLY_HEAD = 8192
REPLY_TIMEOUT_S = 30.0  # the proxy answers a CONNECT within its own 10 s connect timeout
ACCEPT_BACKOFF_S = 0.05  # out of file descriptors or threads: wait before accepting again
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:")


class Usage(Exception):
    """The arguments were refused."""


class Config:
    def __init__(
        self,
        socket_path: str,
        forwards: list[tuple[str, int]],
        proxy_port: int | None,
        argv: list[str],
        nproc: int | None = None,
        nice: int | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.forwards = forwards  # (host without brackets, port)
        self.proxy_port = proxy_port
        self.argv = argv
        self.nproc = nproc  # RLIMIT_NPROC for everything inside
        self.nice = nice  # added to everything's niceness inside


def port_of(text: str, what: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 5 and 1 <= int(text) <= 65535):
        raise Usage(f"{what} {text!r} is not a port; use 1 to 65535")
    return int(text)


def count_of(text: str, what: str, low: int, high: int) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 6 and low <= int(text) <= high):
        raise Usage(f"{what} {text!r} is not a number from {low} to {high}")
    return int(text)


def forward_of(text: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port); the proxy checks the host properly."""
    if text.startswith("["):
        host, closing, port = text[1:].partition("]:")
        if not closing:
            raise Usage(f"--forward {text!r} is not [IPv6]:PORT")
    else:
        host, _, port = text.rpartition(":")
        if ":" in host:
            raise Usage(f"--forward {text!r}: put an IPv6 address in brackets, like [::1]:8765")
    if not host or not set(host) <= HOST_CHARS:
        raise Usage(f"--forward {text!r} is not HOST:PORT (a DNS name or an IP address)")
    return host, port_of(port, "--forward port")


def parse(args: list[str]) -> Config:
    """The relay's arguments (pure); Usage saying what is wrong."""
    if "--" not in args:
        raise Usage("no command: put it after --")
    split = args.index("--")
    options, argv = args[:split], args[split + 1 :]
    if not argv or not argv[0]:
        raise Usage("no command after --")
    socket_path: str | None = None
    forwards: list[tuple[str, int]] = []
    proxy_port: int | None = None
    nproc: int | None = None
    nice: int | None = None
    index = 0
    while index < len(options):
        option, equals, value = options[index].partition("=")
        if not equals:
            index += 1
            if index >= len(options):
                raise Usage(f"{option} needs a value")
            value = options[index]
        if option == "--socket" and value:
            socket_path = value
        elif option == "--forward":
            forwards.append(forward_of(value))
        elif option == "--proxy-port":
            proxy_port = port_of(value, "--proxy-port")
        elif option == "--nproc":
            nproc = count_of(value, "--nproc", 1, 1_000_000)
        elif option == "--nice":
            nice = count_of(value, "--nice", 0, 19)
        else:
            raise Usage(f"unknown option {option!r}")
        index += 1
    if socket_path is None:
        raise Usage("--socket PATH (the egress proxy's Unix socket) is required")
    ports = [port for _, port in forwards] + ([proxy_port] if proxy_port is not None else [])
    if len(set(ports)) != len(ports):
        raise Usage(f"a port is given twice in {sorted(ports)}; each listener needs its own")
    return Config(socket_path, forwards, proxy_port, argv, nproc, nice)


def restrain(config: Config) -> None:
    """Apply the fallback limits to this process, before any thread or child exists: all
    of them inherit them."""
    if config.nproc is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        limit = config.nproc if hard == resource.RLIM_INFINITY else min(config.nproc, hard)
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    if config.nice:
        os.nice(config.nice)


def say(message: str) -> None:
    sys.stderr.write(f"wvo relay: {message}\n")
    sys.stderr.flush()


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    try:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        server.bind((host, port))
        server.listen(128)
    except OSError:
        server.close()
        raise
    return server


def pump(source: socket.socket, sink: socket.socket) -> None:
    """One direction to its end, then close only that direction (half-close)."""
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        # One side broke: wake the other direction too, the connection is over.
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


def splice(client: socket.socket, upstream: socket.socket) -> None:
    try:
        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
    except RuntimeError:  # no thread to spare (the sandbox's pids limit)
        return
    pump(client, upstream)
    back.join()


def reply_status(upstream: socket.socket) -> tuple[bytes, bytes]:
    """The proxy's status line and what came after its head (read within a deadline)."""
    upstream.settimeout(REPLY_TIMEOUT_S)
    buffer = b""
    while b"\r\n\r\n" not in buffer and len(buffer) < MAX_REPLY_HEAD:
        chunk = upstream.recv(MAX_REPLY_HEAD)
        if not chunk:
            break
        buffer += chunk
    upstream.settimeout(None)
    head, _, rest = buffer.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], rest


def tunnel(client: socket.socket, config: Config, host: str, port: int) -> None:
    """Ask the proxy for host:port; on 200 carry bytes both ways, else drop the client."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with client, upstream:
        try:
            upstream.connect(config.socket_path)
            upstream.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
            status, rest = reply_status(upstream)
            parts = status.split(b" ", 2)
            if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0") or parts[1] != b"200":
                shown = status.decode("ascii", "replace")[:200]
                say(f"the egress proxy refused {authority}: {shown!r}")
                return
            if rest:
                client.sendall(rest)
        except OSError as exc:
            say(f"cannot reach the egress proxy for {authority}: {exc.strerror or exc}")
            return
        splice(client, upstream)


def carry(client: socket.socket, config: Config) -> None:
    """Carry a connection as it is: the client talks to the proxy itself."""
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with client, upstream:
        try:
            upstream.connect(config.socket_path)
        except OSError as exc:
            say(f"cannot reach the egress proxy: {exc.strerror or exc}")
            return
        splice(client, upstream)


def accept_loop(server: socket.socket, config: Config, target: tuple[str, int] | None) -> None:
    while True:
        try:
            client, _ = server.accept()
        except OSError:
            threading.Event().wait(ACCEPT_BACKOFF_S)
            continue
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if target is None:
                handler = threading.Thread(target=carry, args=(client, config), daemon=True)
            else:
                handler = threading.Thread(
                    target=tunnel, args=(client, config, *target), daemon=True
                )
            handler.start()
        except (OSError, RuntimeError):  # no thread to spare: drop this one, keep serving
            client.close()


def open_listeners(config: Config) -> list[tuple[socket.socket, tuple[str, int] | None]]:
    opened: list[tuple[socket.socket, tuple[str, int] | None]] = []
    wanted: list[tuple[str, int, tuple[str, int] | None]] = []
    for host, port in config.forwards:
        wanted.append(("127.0.0.1", port, (host, port)))
        if host == "::1":
            wanted.append(("::1", port, (host, port)))
    if config.proxy_port is not None:
        wanted.append(("127.0.0.1", config.proxy_port, None))
    for address, port, target in wanted:
        try:
            opened.append((listen(address, port), target))
        except OSError as exc:
            for server, _ in opened:
                server.close()
            where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
            raise Usage(f"cannot listen on {where}: {exc.strerror or exc}") from None
    return opened


def run_child(argv: list[str]) -> int:
    """Run argv with this process's stdio and environment, passing on SIGTERM, SIGINT and
    SIGHUP; its exit status, 128 + N when signal N killed it."""
    child: list[subprocess.Popen[bytes]] = []
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if child:
            child[0].send_signal(signum)
        else:
            pending.append(signum)

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    try:
        child.append(subprocess.Popen(argv))
    except FileNotFoundError:
        say(f"command not found: {argv[0]!r}")
        return 127
    except OSError as exc:
        say(f"cannot run {argv[0]!r}: {exc.strerror or exc}")
        return 126
    for waiting in pending:
        child[0].send_signal(waiting)
    code = child[0].wait()
    return 128 - code if code < 0 else code


def main(args: list[str]) -> int:
    try:
        config = parse(args)
        restrain(config)
        listeners = open_listeners(config)
    except Usage as exc:
        say(f"{exc}\n{USAGE}")
        return 2
    # Every listener is up before the command starts: its first connection finds one.
    for server, target in listeners:
        threading.Thread(target=accept_loop, args=(server, config, target), daemon=True).start()
    return run_child(config.argv)


def command(
    python: str,
    socket_path: str,
    argv: list[str],
    *,
    forwards: list[str] | None = None,
    proxy_port: int | None = None,
    nproc: int | None = None,
    nice: int | None = None,
) -> list[str]:
    """The relay's command line for a sandbox, its source inline (`python -I -c SOURCE`):
    the sandbox need not mount the wvo_mcp package, and nothing else is imported."""
    with open(__file__, encoding="utf-8") as source:
        line = [python, "-I", "-c", source.read(), "--socket", socket_path]
    for forward in forwards or []:
        line += ["--forward", forward]
    if proxy_port is not None:
        line += ["--proxy-port", str(proxy_port)]
    if nproc is not None:
        line += ["--nproc", str(nproc)]
    if nice:
        line += ["--nice", str(nice)]
    return [*line, "--", *argv]


if __name__ == "__main__":
    status = main(sys.argv[1:])
    # Daemon threads may be inside a recv: leave at once rather than wait on shutdown.
    os._exit(status)
