"""The bubblewrap backend: namespaces for what the command sees, cgroups for what it may use.

The command sees read-only system directories (/usr, the library and binary directories,
the few /etc files programs need), the Python installation, a fresh /tmp, its own /proc and
a minimal /dev, and the workspace read-write but for what the server trusts inside it
(protect.py: read-only, the state folder empty); nothing of /root, /home or the host's /tmp.
It runs as uid 65534 in a user namespace, with no network but loopback unless asked.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wvo_mcp.sandbox import cgroups, runner, toolchain
from wvo_mcp.sandbox.environment import DEFAULT_PATH, command_env
from wvo_mcp.sandbox.outcome import BackendCheck, Outcome
from wvo_mcp.sandbox.protect import Layout, Mount
from wvo_mcp.sandbox.request import Request, argv

SANDBOX_UID = 65534
MIB = 1024 * 1024
PROBE_TIMEOUT_S = 10.0
# Where a toolchain folder with a writable view is shown read-only: /run/wvo-toolchain/<n>/
# <its name>, so a package's hoisted dependencies are found beside it, in a `node_modules`.
VIEWS = Path("/run/wvo-toolchain")
TOP_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What of /etc programs need: the loader's cache, names of users and groups, name
# resolution, time zone, certificates. Not shadow, ssh keys or anything else private.
ETC_FILES = (
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "gai.conf",
    "group",
    "host.conf",
    "hostname",
    "hosts",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "passwd",
    "protocols",
    "resolv.conf",
    "services",
    "ssl",
    "timezone",
)


@dataclass(frozen=True)
class Probe:
    usable: bool
    userns: bool  # the command runs as uid 65534 in a user namespace
    detail: str


def find() -> str | None:
    # A fixed PATH: whoever set the server's PATH does not choose the sandbox binary.
    return shutil.which("bwrap", path=DEFAULT_PATH)


def python_dirs() -> list[Path]:
    """The running Python's installation (and its venv), for commands that need Python."""
    dirs: list[Path] = []
    for prefix in {sys.base_prefix, sys.prefix, sys.exec_prefix}:
        real = Path(prefix).resolve()
        if str(real).startswith("/usr/") or real == Path("/usr"):
            continue  # already bound with /usr
        dirs.append(real)
    return sorted(set(dirs))


def arguments(
    request: Request,
    env: dict[str, str],
    *,
    userns: bool,
    python: list[Path],
    host_links: dict[str, str],
    layout: Layout,
    tools: Sequence[toolchain.Bind] = (),
    sized: bool = True,
) -> list[str]:
    """The bwrap command line (pure: the host's facts come in as arguments). `sized`: this
    bwrap can cap a tmpfs's size (`--size`, bwrap 0.5 and later)."""
    tmp = request.tmp_mb * MIB if sized else None
    args = system(network=request.network, userns=userns, host_links=host_links, tmp_bytes=tmp)
    root = layout.root
    for path in python:
        if path != root and root not in path.parents:
            args += ["--ro-bind", str(path), str(path)]
    # Only the checked root is mounted; the command's folder is entered inside the sandbox.
    args += ["--bind", str(root), str(root)]
    for path, how in layout.mounts():
        args += mount(path, how)
    args += tool_mounts(tools, tmp)
    return [*args, *entry(root / request.cwd, env), *argv(request)]


def tool_mounts(tools: Sequence[toolchain.Bind], tmp_bytes: int | None = None) -> list[str]:
    """The project's toolchain, read-only, from its open folders, each cache folder in it a
    private tmpfs: written by this sandbox's tools, seen by nobody else. A folder with a view
    is shown read-only under VIEWS, and at its place is a private tmpfs (of `tmp_bytes` at
    most, when given) with a link to each of its entries: anything new in it is this
    sandbox's alone (pure)."""
    args = []
    for n, bind in enumerate(tools):
        if bind.entries is not None:
            copy = VIEWS / str(n) / bind.dest.name
            args += ["--ro-bind-fd", str(bind.fd), str(copy)]
            args += [*sized_tmpfs(tmp_bytes), str(bind.dest)]
            for entry in bind.entries:
                target = entry.target if entry.target is not None else str(copy / entry.name)
                args += ["--symlink", target, str(bind.dest / entry.name)]
            continue
        args += ["--ro-bind-fd", str(bind.fd), str(bind.dest)]
        for cache in bind.caches:
            args += ["--tmpfs", str(bind.dest / cache)]
    return args


def mount(path: Path, how: Mount) -> list[str]:
    """The options that mount `path` at itself as the layout says (pure)."""
    if how == "hidden":
        # A fresh tmpfs, read-only: nothing of the folder to read or lock, nothing to write
        # (`--remount-ro /` at the end does not reach into other mounts).
        return ["--tmpfs", str(path), "--remount-ro", str(path)]
    return ["--bind" if how == "pinned" else "--ro-bind", str(path), str(path)]


def system(
    *, network: bool, userns: bool, host_links: dict[str, str], tmp_bytes: int | None
) -> list[str]:
    """What every sandbox has (pure): its own namespaces (the host's network only when
    asked), read-only system directories and the few /etc files programs need, a fresh /tmp
    (a tmpfs, which is RAM: of `tmp_bytes` at most when given), its own /proc and a minimal
    /dev. Commands and workers add their own folders after it."""
    args = ["--unshare-all", "--die-with-parent", "--new-session"]
    if network:
        args.append("--share-net")
    if userns:
        args += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    else:
        args += ["--cap-drop", "ALL"]
    args += ["--ro-bind", "/usr", "/usr"]
    for top in TOP_DIRS:
        if top in host_links:
            args += ["--symlink", host_links[top], top]
        else:
            args += ["--ro-bind-try", top, top]
    for name in ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return [*args, *sized_tmpfs(tmp_bytes), "/tmp", "--proc", "/proc", "--dev", "/dev"]


def sized_tmpfs(size: int | None, perms: str | None = None) -> list[str]:
    """The options before a --tmpfs's destination (pure): its size cap and mode, if given."""
    args = ["--size", str(size)] if size is not None else []
    return [*args, *(["--perms", perms] if perms else []), "--tmpfs"]


def sizes() -> bool:
    """Whether this bwrap caps a tmpfs's size (`--size`, with `--perms`: bwrap 0.5 and
    later). Asked once."""
    global _sizes
    if _sizes is None:
        binary = find()
        try:
            done = subprocess.run(
                [binary or "bwrap", "--help"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                env={"PATH": DEFAULT_PATH},
                timeout=PROBE_TIMEOUT_S,
                check=False,
            )
            said = done.stdout + done.stderr
        except (OSError, subprocess.TimeoutExpired):
            said = ""
        _sizes = "--size" in said and "--perms" in said
    return _sizes


_sizes: bool | None = None


def entry(cwd: Path, env: dict[str, str] | None) -> list[str]:
    """The end of a command line (pure): where the process starts, its whole environment,
    and the root made read-only (writes go only to what was bound writable, or /tmp).
    `env` None: the process keeps bwrap's own environment, which the caller chose; values
    then stay out of the command line, which every local user can read."""
    args = ["--chdir", str(cwd), "--remount-ro", "/"]
    if env is not None:
        args.append("--clearenv")
        for name, value in sorted(env.items()):
            args += ["--setenv", name, value]
    return [*args, "--"]


def host_links() -> dict[str, str]:
    """Top-level directories that are symlinks here (merged /usr), to recreate as links."""
    links = {}
    for top in TOP_DIRS:
        if os.path.islink(top):
            links[top] = os.readlink(top)
    return links


def command_line(
    request: Request, userns: bool, layout: Layout, tools: Sequence[toolchain.Bind] = ()
) -> list[str]:
    binary = find()
    assert binary is not None
    env = command_env(request)
    return [
        binary,
        *arguments(
            request,
            env,
            userns=userns,
            python=python_dirs(),
            host_links=host_links(),
            layout=layout,
            tools=tools,
            sized=sizes(),
        ),
    ]


def _try(userns: bool) -> str | None:
    """Run `true` the way a command would run; None when it works, else the error."""
    with tempfile.TemporaryDirectory(prefix="wvo-sandbox-probe-") as workspace:
        root = Path(workspace)
        line = command_line(Request(command=["true"], workspace=root), userns, Layout(root, (), ()))
        try:
            done = subprocess.run(
                line,
                stdin=subprocess.DEVNULL,  # the server's stdin is the MCP pipe
                capture_output=True,
                text=True,
                env={"PATH": DEFAULT_PATH},
                timeout=PROBE_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        if done.returncode != 0:
            return (done.stderr.strip() or f"exit status {done.returncode}")[:300]
    return None


_usable: Probe | None = None


def probe(fresh: bool = False) -> Probe:
    """Whether bwrap works here, as uid 65534 in a user namespace or, for root without user
    namespaces, as root with every capability dropped. A success is remembered."""
    global _usable
    if _usable is not None and not fresh:
        return _usable
    if find() is None:
        return Probe(
            False, False, "bwrap is not installed (Debian package bubblewrap; scripts/setup)"
        )
    error = _try(userns=True)
    if error is None:
        _usable = Probe(
            True,
            True,
            f"runs as uid {SANDBOX_UID} in a user namespace (mapped to uid {os.getuid()} "
            "outside, holding no capabilities there)",
        )
        return _usable
    if os.getuid() == 0 and _try(userns=False) is None:
        _usable = Probe(
            True,
            False,
            f"user namespaces refused ({error}); runs as root with all capabilities dropped",
        )
        return _usable
    return Probe(False, False, f"bwrap cannot create its namespaces here: {error}")


def check() -> BackendCheck:
    found = probe(fresh=True)
    if not found.usable:
        return BackendCheck("bwrap", False, found.detail)
    return BackendCheck("bwrap", True, f"{found.detail}; {cgroups.capabilities()}")


def run(
    request: Request,
    output_bytes: int,
    layout: Layout,
    stop: threading.Event | None = None,
    *,
    owner: str = "",
) -> Outcome:
    """Run the (validated) request under bwrap, inside a fresh limited cgroup named for the
    state folder marked `owner`."""
    found = probe()
    group = cgroups.open_group(request.memory_mb, request.cpus, request.pids_limit, owner=owner)
    try:
        with toolchain.opened(request.toolchain, request.workspace) as tools:
            return runner.execute(
                command_line(request, found.userns, layout, tools),
                # bwrap itself starts with a fixed environment; the command's is set inside.
                env={"PATH": DEFAULT_PATH},
                cwd=request.workspace,
                timeout_s=request.timeout_s,
                output_bytes=output_bytes,
                group=group,
                signal_as_status=True,
                pass_fds=[t.fd for t in tools],
                stop=stop,
            )
    finally:
        if group is not None:
            group.remove()
