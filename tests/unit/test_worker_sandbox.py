"""A worker's sandbox command line (pure): what it binds, what it leaves out, how its
connections leave (the relay to the egress proxy's socket), and its environment."""

from pathlib import Path

from wvo_mcp.sandbox import workers
from wvo_mcp.sandbox.egress import Endpoint

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
)
ARGV = ["/opt/claude/bin/claude", "-p"]


ENV = {"ANTHROPIC_API_KEY": "sk-secret", "HOME": "/home/worker", "LD_PRELOAD": "/x.so"}


def line(view: workers.View = VIEW) -> list[str]:
    return workers.command_line(view, ARGV, userns=True, host_links={})


def pairs(args: list[str], flag: str) -> list[tuple[str, str]]:
    return [(args[i + 1], args[i + 2]) for i, a in enumerate(args) if a == flag]


def test_it_binds_its_repository_its_home_and_the_socket_and_nothing_else_writable() -> None:
    args = line()
    head = args[: args.index("--")]
    assert args[0] == "bwrap" and "--unshare-all" in head and "--share-net" not in head
    assert pairs(head, "--bind") == [
        (str(VIEW.workdir), str(VIEW.workdir)),
        (str(VIEW.home), "/home/worker"),
    ]
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
