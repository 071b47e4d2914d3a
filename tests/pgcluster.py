"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb in a temporary folder, a
free loopback port, run as the unprivileged `postgres` user when we are root (PostgreSQL
refuses to run as root), removed afterwards.

    with Cluster.start() as pg:
        url = pg.create_database("t1")
"""

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg

USER = "wvo"
START_TIMEOUT_S = 60
# A cluster without fsync lives in memory where there is room: a session's clusters grow to
# some 2 GiB and 80,000 files (a database per test), which took minutes to remove from
# disk at the session's end and slowed every CREATE DATABASE.
MEMORY = Path("/dev/shm")
MEMORY_FREE_AT_LEAST = 8 << 30


class ClusterUnavailable(RuntimeError):
    pass


def bin_dir() -> Path:
    """The newest installed server's bin folder (Debian keeps it off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise ClusterUnavailable(
            "no PostgreSQL server found (initdb); scripts/setup installs Debian's postgresql"
        )
    return Path(initdb).resolve().parent


def _in_memory() -> Path | None:
    """/dev/shm when it is a writable folder with room, else None (the temporary folder)."""
    try:
        room = shutil.disk_usage(MEMORY).free
    except OSError:
        return None
    return MEMORY if room >= MEMORY_FREE_AT_LEAST and os.access(MEMORY, os.W_OK) else None


def _version(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Cluster:
    def __init__(self, root: Path, port: int, owner: str | None) -> None:
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.port = port
        self.owner = owner  # the user the server runs as, when we are root
        self._bin = bin_dir()

    @classmethod
    @contextlib.contextmanager
    def start(cls, *, durable: bool = False, max_connections: int = 300) -> Iterator["Cluster"]:
        """A running cluster; `durable=False` turns off fsync (a test's data may be lost on a
        power cut, never on a server crash)."""
        owner = "postgres" if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="wvo-pg-", dir=None if durable else _in_memory()))
        cluster = cls(root, free_port(), owner)
        try:
            cluster.sockets.mkdir()
            if owner is not None:
                entry = pwd.getpwnam(owner)
                for path in (root, cluster.sockets):
                    os.chown(path, entry.pw_uid, entry.pw_gid)
            cluster._run(
                "initdb",
                "-D",
                str(cluster.data),
                "-U",
                USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            settings = {
                "listen_addresses": "127.0.0.1",
                "port": str(cluster.port),
                "unix_socket_directories": str(cluster.sockets),
                "max_connections": str(max_connections),
                "fsync": "on" if durable else "off",
                "full_page_writes": "on" if durable else "off",
                "shared_buffers": "128MB",
            }
            with (cluster.data / "postgresql.conf").open("a") as conf:
                conf.writelines(f"{key} = '{value}'\n" for key, value in settings.items())
            cluster.start_server()
            yield cluster
        finally:
            cluster.stop("immediate")
            shutil.rmtree(root, ignore_errors=True)

    def _run(self, tool: str, *args: str, timeout: float = START_TIMEOUT_S) -> None:
        command = [str(self._bin / tool), *args]
        if self.owner is not None:
            command = ["runuser", "-u", self.owner, "--", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.root
        )
        if done.returncode != 0:
            raise ClusterUnavailable(f"{tool} failed: {done.stderr.strip() or done.stdout}")

    def start_server(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` is a clean shutdown, `immediate` a crash (recovery at the
        next start replays the WAL)."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(ClusterUnavailable, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start_server()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database, empty or a copy of `template` (which nobody may be connected to);
        its URL."""
        copy = "" if template is None else f' TEMPLATE "{template}"'
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy}')  # our own test names only
        return self.url(name)

    def log(self) -> str:
        path = self.root / "log"
        return path.read_text(errors="replace") if path.exists() else ""
