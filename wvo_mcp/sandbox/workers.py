"""An autopilot worker's sandbox: what its CLI, and everything it starts, sees and reaches.

A worker is a model with a shell, hostile until checked. Under bwrap it sees the system and
the CLI's installation read-only, its own repository read-write, the person's objects that
repository borrows read-only, and a private home the autopilot filled (its settings, its MCP
config with the run's token, its CLI's credentials). Nothing else of the host: no state
folder, no other worker's repository, no home of the person's. It has no network of its own:
a relay inside carries its connections to the egress proxy outside (egress.py), which lets
through only its model API and wvo-mcp.
"""

import ipaddress
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import wvo_mcp
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.sandbox import bwrap, relay, run_limits
from wvo_mcp.sandbox.egress import Endpoint
from wvo_mcp.sandbox.environment import DEFAULT_PATH
from wvo_mcp.sandbox.request import ENV_NAME, WorkerLimits
from wvo_mcp.sandbox.toolchain import Bind, Toolchain

HOME = Path("/home/worker")  # the private home, as the worker sees it
SOCKET = Path("/run/wvo/egress.sock")  # the egress proxy's socket, as the worker sees it
PROXY_PORT = 3128  # HTTPS_PROXY inside: the relay carries CONNECTs to the socket
LOOPBACK_NAMES = ("localhost",)
ISOLATION_HINT = (
    "install bubblewrap (scripts/setup, or `apt-get install bubblewrap`) so each worker runs "
    "in its own sandbox, or pass --unsandboxed-workers to run them as you, unisolated, in a "
    "setting you trust"
)


@dataclass(frozen=True)
class View:
    """What one worker run sees and reaches (host paths)."""

    workdir: Path  # its own repository: the one writable host folder besides its home
    home: Path  # private to the run, seen at HOME
    read_only: tuple[Path, ...]  # seen read-only, each at its own path
    socket: Path  # the egress proxy's socket
    endpoints: tuple[Endpoint, ...]  # what the proxy lets through
    writable: bool = True  # False: a reviewer's checkout, seen read-only
    # The project's toolchain, read-only (toolchain.py): what it is, and its open folders.
    toolchain: Toolchain = field(default_factory=Toolchain)
    tools: tuple[Bind, ...] = ()
    limits: WorkerLimits = field(default_factory=WorkerLimits)
    # The home's files, open, each with its place under HOME: copied into a sized tmpfs.
    home_files: tuple[tuple[int, PurePosixPath], ...] = ()

    @property
    def forwards(self) -> list[Endpoint]:
        """Loopback endpoints: reached inside at their own address (the relay listens there),
        one per port."""
        found: dict[int, Endpoint] = {}
        for endpoint in self.endpoints:
            if is_loopback(endpoint.host):
                found.setdefault(endpoint.port, endpoint)
        return list(found.values())

    @property
    def proxy_port(self) -> int:
        taken = {e.port for e in self.forwards}
        return next(p for p in range(PROXY_PORT, PROXY_PORT + 100) if p not in taken)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def installation(program: str, path: str | None = None) -> tuple[Path, Path]:
    """(the CLI's resolved executable, the folder to show read-only for it): the whole
    `node_modules` it lives in (its packages load each other), else its own folder."""
    found = shutil.which(program, path=path)
    if found is None:
        raise ValidationFailed(
            f"worker CLI {program!r} is not found on PATH; install it, or give its full path "
            "as `executable` in the providers file"
        )
    real = Path(found).resolve()
    modules = [p for p in real.parents if p.name == "node_modules"]
    return real, (modules[-1] if modules else real.parent)


def package_dirs() -> list[Path]:
    """The Python installation and the wvo_mcp package: the relay inside runs on them."""
    return sorted({*bwrap.python_dirs(), Path(wvo_mcp.__file__).resolve().parent})


def environment(view: View, env: Mapping[str, str]) -> dict[str, str]:
    """The CLI's environment inside: `env` (worker_config.environment), its home and proxy. It is
    bwrap's own environment too (never --setenv: the run token and the API key would be in
    a command line), so nothing that steers the dynamic loader goes in."""
    proxy = f"http://127.0.0.1:{view.proxy_port}"
    return {
        **{k: v for k, v in env.items() if ENV_NAME.match(k) and not k.startswith("LD_")},
        "HOME": str(HOME),
        "PATH": DEFAULT_PATH,
        **view.toolchain.env(view.workdir, DEFAULT_PATH),
        "TMPDIR": "/tmp",
        "HTTPS_PROXY": proxy,
        "HTTP_PROXY": proxy,
        "https_proxy": proxy,
        "http_proxy": proxy,
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "no_proxy": "127.0.0.1,localhost,::1",
    }


def command_line(
    view: View,
    argv: Sequence[str],
    *,
    userns: bool,
    host_links: dict[str, str],
    plan: run_limits.Plan,
    bwrap_binary: str = "bwrap",
) -> list[str]:
    """bwrap, then the relay, then the CLI (pure: host facts come in as arguments). It
    starts with `environment(view, env)` as its environment, which the CLI keeps. `plan`
    says how its limits are enforced (run_limits.py): a sized /tmp and home, the relay's
    fallback limits."""
    tmp = view.limits.tmp_mb * bwrap.MIB if plan.sized else None
    args = bwrap.system(network=False, userns=userns, host_links=host_links, tmp_bytes=tmp)
    for path in sorted(set(view.read_only)):
        args += ["--ro-bind", str(path), str(path)]
    args += ["--bind" if view.writable else "--ro-bind", str(view.workdir), str(view.workdir)]
    args += home_mounts(view) if plan.sized else ["--bind", str(view.home), str(HOME)]
    args += ["--ro-bind", str(view.socket), str(SOCKET)]
    args += bwrap.tool_mounts(view.tools, tmp)
    # The relay's source goes inline: it starts in milliseconds, importing nothing of ours.
    carried = relay.command(
        sys.executable,
        str(SOCKET),
        list(argv),
        forwards=[str(e) for e in view.forwards],
        proxy_port=view.proxy_port,
        nproc=view.limits.pids if plan.pids == "rlimit" else None,
        nice=run_limits.FALLBACK_NICE if plan.cpu == "nice" else None,
    )
    return [bwrap_binary, *args, *bwrap.entry(view.workdir, None), *carried]


def home_mounts(view: View) -> list[str]:
    """The home as a tmpfs of home_mb, private to the run, its files copied in from their
    open descriptors (pure): what the CLI writes there is RAM, and bounded."""
    args = [*bwrap.sized_tmpfs(view.limits.home_mb * bwrap.MIB, "0700"), str(HOME)]
    made: set[PurePosixPath] = set()
    for fd, relative in sorted(view.home_files, key=lambda f: f[1]):
        for parent in reversed(relative.parents[:-1]):  # each folder on its way, once
            if parent not in made:
                made.add(parent)
                args += ["--perms", "0700", "--dir", str(HOME / parent)]
        args += ["--perms", "0600", "--file", str(fd), str(HOME / relative)]
    return args


def describe(view: View, argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """What `wvo-mcp autopilot --dry-run` prints of one worker: what it sees and reaches."""
    lines = [
        f"  runs:       {' '.join(argv[:1])} … (in its own bwrap sandbox, as uid "
        f"{bwrap.SANDBOX_UID}, no network of its own)",
        f"  read-write: {view.workdir} (its own repository), {HOME} (private, emptied each run)",
        "  read-only:  /usr, /bin, /lib*, a few /etc files, "
        + ", ".join(str(p) for p in sorted(set(view.read_only))),
        f"  toolchain:  {view.toolchain.describe()}, read-only at the same place in its repository",
        "  reaches:    " + ", ".join(str(e) for e in view.endpoints) + " (nothing else)",
        "  env:        " + ", ".join(sorted(environment(view, env))),
        f"  limits:     {run_limits.describe(run_limits.probe(view.limits), view.limits)}",
    ]
    return lines


def check() -> str | None:
    """Why workers cannot be isolated here, or None when bwrap works."""
    found = bwrap.probe()
    if found.usable:
        return None
    return f"{found.detail}; {ISOLATION_HINT}"


def private_dir(parent: Path, name: str) -> Path:
    """A folder only this user may enter, made afresh (a leftover of that name is an error)."""
    path = parent / name
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)
    return path
