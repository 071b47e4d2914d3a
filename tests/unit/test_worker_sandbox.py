"""A worker's sandbox command line (pure): what it binds, what it leaves out, how its
connections leave (the relay to the egress proxy's socket), and its environment."""

from pathlib import Path, PurePosixPath

from wvo_mcp.sandbox import run_limits, workers
from wvo_mcp.sandbox.egress import Endpoint
from wvo_mcp.sandbox.request import WorkerLimits

VIEW = workers.View(
    workdir=Path("/srv/repo.wvo-worktrees/T1/1"),
    home=Path("/tmp/wvo-run-x/home"),
    read_only=(Path("/opt/claude"), Path("/srv/repo/.git/objects")),
    socket=Path("/tmp/wvo-run-x/egress.sock"),
    endpoints=(
        Endpoint("api.anthropic.com", 443),
        Endpoint("127.0.0.1", 3128),  # a loopback model API on the proxy's usual port
        Endpoint("127.0.0.1", 40123),  # wvo-mcp
    ),
    limits=WorkerLimits(memory_mb=2048, pids=300, tmp_mb=64, home_mb=32, cpu_weight=100),
    home_files=(
        (7, PurePosixPath(".wvo/mcp.json")),
        (8, PurePosixPath(".claude/.credentials.json")),
    ),
)
# Every limit by a cgroup, /tmp and the home sized: what this machine has.
CGROUPS = run_limits.Plan("cgroup v1", "cgroup v1", "cgroup v1", sized=True)
ARGV = ["/opt/claude/bin/claude", "-p"]


ENV = {"ANTHROPIC_API_KEY": "sk-secret", "HOME": "/home/worker", "LD_PRELOAD": "/x.so"}


def line(view: workers.View = VIEW, plan: run_limits.Plan = CGROUPS) -> list[str]:
    return workers.command_line(view, ARGV, userns=True, host_links={}, plan=plan)


def pairs(args: list[str], flag: str) -> list[tuple[str, str]]:
    return [(args[i + 1], args[i + 2]) for i, a in enumerate(args) if a == flag]


def test_it_binds_its_repository_its_home_and_the_socket_and_nothing_else_writable() -> None:
    args = line()
    head = args[: args.index("--")]
    assert args[0] == "bwrap" and "--unshare-all" in head and "--share-net" not in head
    # Its home is a tmpfs of its own (below), not the host folder the autopilot filled.
    assert pairs(head, "--bind") == [(str(VIEW.workdir), str(VIEW.workdir))]
    read_only = pairs(head, "--ro-bind")
    assert ("/opt/claude", "/opt/claude") in read_only
    assert ("/srv/repo/.git/objects", "/srv/repo/.git/objects") in read_only
    assert (str(VIEW.socket), "/run/wvo/egress.sock") in read_only
    assert not any("/srv/repo/.git/config" in a or a == "/srv/repo" for a in head)
    assert head[head.index("--chdir") + 1] == str(VIEW.workdir)
    assert "--remount-ro" in head
    # Its environment is bwrap's own, never --setenv: no value of it is in the command line.
    assert "--setenv" not in head and "--clearenv" not in head


def test_a_reviewers_checkout_is_read_only() -> None:
    reviewer = workers.View(**{**VIEW.__dict__, "writable": False})
    head = line(reviewer)[: line(reviewer).index("--")]
    assert (str(VIEW.workdir), str(VIEW.workdir)) in pairs(head, "--ro-bind")
    assert (str(VIEW.workdir), str(VIEW.workdir)) not in pairs(head, "--bind")


def test_loopback_endpoints_are_forwarded_and_the_rest_goes_through_the_proxy() -> None:
    args = line()
    relay = args[args.index("--") + 1 :]
    forwards = [relay[i + 1] for i, a in enumerate(relay) if a == "--forward"]
    assert forwards == ["127.0.0.1:3128", "127.0.0.1:40123"]
    port = relay[relay.index("--proxy-port") + 1]
    assert port == "3129"  # 3128 is taken by a forward
    assert relay[-len(ARGV) :] == ARGV
    env = workers.environment(VIEW, ENV)
    assert env["HTTPS_PROXY"] == "http://127.0.0.1:3129"
    assert env["NO_PROXY"] == "127.0.0.1,localhost,::1"
    assert env["HOME"] == "/home/worker" and env["ANTHROPIC_API_KEY"] == "sk-secret"
    assert "LD_PRELOAD" not in env  # bwrap itself starts with it: nothing for its loader
    assert not any("sk-secret" in part for part in args)


def test_the_dry_run_says_what_it_sees_and_reaches() -> None:
    shown = "\n".join(workers.describe(VIEW, ARGV, {"ANTHROPIC_API_KEY": "sk-secret-value"}))
    assert "api.anthropic.com:443" in shown and "127.0.0.1:40123" in shown
    assert str(VIEW.workdir) in shown and "/srv/repo/.git/objects" in shown
    assert "ANTHROPIC_API_KEY" in shown and "HTTPS_PROXY" in shown
    assert "sk-secret-value" not in shown  # names, never values


def test_a_cli_inside_node_modules_brings_the_whole_tree(tmp_path: Path) -> None:
    package = tmp_path / "node_modules" / "@scope" / "cli" / "bin"
    package.mkdir(parents=True)
    binary = package / "cli.exe"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    link = tmp_path / "node_modules" / ".bin"
    link.mkdir()
    (link / "cli").symlink_to(binary)
    program, folder = workers.installation(str(link / "cli"))
    assert program == binary.resolve() and folder == (tmp_path / "node_modules").resolve()
    lone = tmp_path / "bin" / "tool"
    lone.parent.mkdir()
    lone.write_text("#!/bin/sh\n")
    lone.chmod(0o755)
    assert workers.installation(str(lone)) == (lone.resolve(), lone.parent.resolve())


def _sized(head: list[str], dest: str) -> tuple[int, str]:
    """(the size, the mode) given just before `--tmpfs dest`."""
    at = next(i for i, a in enumerate(head) if a == "--tmpfs" and head[i + 1] == dest)
    options = head[max(0, at - 4) : at]
    size = int(options[options.index("--size") + 1])
    mode = options[options.index("--perms") + 1] if "--perms" in options else ""
    return size, mode


def test_tmp_and_home_are_sized_tmpfs_and_the_home_files_are_copied_in() -> None:
    head = line()[: line().index("--")]
    assert _sized(head, "/tmp") == (64 * 1024 * 1024, "")
    assert _sized(head, "/home/worker") == (32 * 1024 * 1024, "0700")
    # Each file from its open descriptor, into a folder made for it, private to the run.
    assert pairs(head, "--file") == [
        ("8", "/home/worker/.claude/.credentials.json"),
        ("7", "/home/worker/.wvo/mcp.json"),
    ]
    dirs = [head[i + 1] for i, a in enumerate(head) if a == "--dir"]
    assert dirs == ["/home/worker/.claude", "/home/worker/.wvo"]
    assert head.index("/home/worker") < head.index("--file")  # the tmpfs first
    relay = line()[line().index("--") + 1 :]
    assert "--nproc" not in relay and "--nice" not in relay  # the cgroup holds them


def test_without_cgroups_the_relay_sets_the_fallback_limits() -> None:
    fallback = run_limits.Plan("", "rlimit", "nice", sized=True)
    relay = line(plan=fallback)[line(plan=fallback).index("--") + 1 :]
    assert relay[relay.index("--nproc") + 1] == "300"
    assert relay[relay.index("--nice") + 1] == str(run_limits.FALLBACK_NICE)
    assert relay[-len(ARGV) :] == ARGV


def test_a_bwrap_without_size_binds_the_host_home_as_before() -> None:
    unsized = run_limits.Plan("cgroup v2", "cgroup v2", "cgroup v2", sized=False)
    head = line(plan=unsized)[: line(plan=unsized).index("--")]
    assert (str(VIEW.home), "/home/worker") in pairs(head, "--bind")
    assert "--size" not in head and "--file" not in head
