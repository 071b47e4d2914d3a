"""Reading the cgroup layout (v1, v2, hybrid) from given text; bwrap's command line and
Docker's container settings from a given layout."""

from pathlib import Path

from wvo_mcp.sandbox import bwrap, docker_backend
from wvo_mcp.sandbox.cgroups import _counter, parse_mountinfo, parse_proc_cgroup
from wvo_mcp.sandbox.protect import Layout
from wvo_mcp.sandbox.request import Request

HYBRID_CGROUP = """9:name=systemd:/
8:pids:/
4:memory:/process_api/abc
2:cpu,cpuacct:/
0::/
"""
HYBRID_MOUNTS = """31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
33 31 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_hybrid_layout_is_read_per_controller() -> None:
    v2, v1 = parse_proc_cgroup(HYBRID_CGROUP)
    assert v2 == "/" and v1["memory"] == "/process_api/abc" and v1["cpuacct"] == "/"
    mount_v2, mounts = parse_mountinfo(HYBRID_MOUNTS)
    assert mount_v2 == ("/", "/sys/fs/cgroup/unified")
    # `cpu` is matched as a whole option: not cpuset's mount, the cpu,cpuacct one.
    assert mounts["cpu"] == ("/", "/sys/fs/cgroup/cpu,cpuacct")
    assert mounts["memory"] == ("/", "/sys/fs/cgroup/memory")
    assert mounts["pids"] == ("/", "/sys/fs/cgroup/pids")


def test_pure_v2_has_no_v1_controllers() -> None:
    v2, v1 = parse_proc_cgroup("0::/user.slice/session-1.scope\n")
    assert v2 == "/user.slice/session-1.scope" and v1 == {}
    mount_v2, mounts = parse_mountinfo(
        "25 21 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"
    )
    assert mount_v2 == ("/", "/sys/fs/cgroup") and mounts == {}


def test_event_counters() -> None:
    assert _counter("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "oom_kill") == 2
    assert _counter("low 0\nhigh 0\nmax 5\noom 1\noom_kill 0\n", "oom_kill") == 0
    assert _counter("max 7\n", "max") == 7 and _counter(None, "max") == 0


LAYOUT = Layout(
    Path("/work/p"), (Path("/work/p/.venv"),), (Path("/work/p/a"),), (Path("/work/p/a/state"),)
)


def _line(**change: object) -> list[str]:
    fields: dict[str, object] = {"command": ["make"], "workspace": Path("/work/p"), **change}
    request = Request(**fields)  # type: ignore[arg-type]
    return bwrap.arguments(
        request,
        {"PATH": "/usr/bin", "SECRET_FREE": "1"},
        userns=True,
        python=[Path("/opt/py"), Path("/work/p/.venv")],
        host_links={"/bin": "usr/bin"},
        layout=LAYOUT,
    )


def _options(line: list[str], flag: str, arity: int) -> list[list[str]]:
    """Every occurrence of `flag` with its arguments."""
    return [line[i + 1 : i + 1 + arity] for i, arg in enumerate(line) if arg == flag]


def test_bwrap_line_isolates_by_default() -> None:
    line = _line()
    assert "--unshare-all" in line and "--share-net" not in line
    assert _options(line, "--uid", 1) == [["65534"]]
    ro = _options(line, "--ro-bind", 2)
    assert ["/usr", "/usr"] in ro and ["/opt/py", "/opt/py"] in ro
    assert ["usr/bin", "/bin"] in _options(line, "--symlink", 2)
    assert all(not arg.startswith(("/root", "/home", "/etc/shadow")) for arg in line)
    # The workspace is the one read-write host directory and the working directory; what
    # the server trusts inside it is mounted over it, after it: the state folder as an empty
    # read-only tmpfs, the rest bound read-only; the folders leading there are bound onto
    # themselves (a mount point cannot be renamed away).
    assert _options(line, "--bind", 2) == [["/work/p", "/work/p"], ["/work/p/a", "/work/p/a"]]
    assert ["/work/p/.venv", "/work/p/.venv"] in ro
    assert _options(line, "--tmpfs", 1) == [["/tmp"], ["/work/p/a/state"]]
    assert _options(line, "--remount-ro", 1) == [["/work/p/a/state"], ["/"]]
    assert all("/work/p/a/state" not in pair for pair in ro)
    assert _options(line, "--chdir", 1) == [["/work/p"]]
    mounts = [i for i, arg in enumerate(line) if arg in ("--bind", "--ro-bind", "--tmpfs")]
    order = [line[i + 1] for i in mounts]
    assert order.index("/work/p") < order.index("/work/p/a") < order.index("/work/p/a/state")
    assert order.index("/work/p") < order.index("/work/p/.venv")
    at = line.index("/work/p/a/state")  # made read-only right after it is mounted
    assert line[at - 1 : at + 3] == ["--tmpfs", line[at], "--remount-ro", line[at]]
    # The command's environment is set inside, after a clear; the command comes last.
    assert line.index("--clearenv") < line.index("--setenv")
    assert ["SECRET_FREE", "1"] in _options(line, "--setenv", 2)
    assert line[-2:] == ["--", "make"]


def test_bwrap_shares_the_network_only_when_asked() -> None:
    assert "--share-net" in _line(network=True)


def test_docker_mounts_the_same_layout() -> None:
    settings = docker_backend.options(
        Request(command=["make"], workspace=Path("/work/p")), "img", LAYOUT
    )
    assert settings["volumes"] == {
        "/work/p": {"bind": "/work/p", "mode": "rw"},
        "/work/p/a": {"bind": "/work/p/a", "mode": "rw"},
        "/work/p/.venv": {"bind": "/work/p/.venv", "mode": "ro"},
    }
    # The state folder: an empty read-only tmpfs, nothing of the host's.
    assert settings["tmpfs"]["/work/p/a/state"].split(",")[0] == "ro"
    assert set(settings["tmpfs"]) == {"/tmp", "/work/p/a/state"}
