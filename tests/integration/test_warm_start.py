"""Warm start (WVO_WARM_START=1): the `wvo-mcp serve` a client starts is a relay that hands
its client to the state folder's warm process, which forks a server for it; with no warm
process to answer, the relay serves its client itself and starts one."""

import contextlib
import fcntl
import functools
import json
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, alive, children_of, open_db, parent_of, wait_for
from tests.integration.test_lifecycle import EXIT_DEADLINE_S, Server
from wvo_mcp.cli import warm_relay

pytestmark = pytest.mark.process

WARM = b"from wvo_mcp.cli import warm"
OTHER_PYTHON = "/usr/bin/python3"  # one another user may run


class Relay(Server):
    """`python -P -m wvo_mcp serve` with warm start on, spoken to over raw pipes."""

    def __init__(
        self, state_root: Path, preexec_fn: Callable[[], None] | None = None, **env: str
    ) -> None:
        # Warm start's switch as given, else on: the tests' own default is off (conftest).
        super().__init__(state_root, preexec_fn, **{"WVO_WARM_START": "1", **env})
        self.start()

    def result(self, method: str, params: dict[str, Any]) -> Any:
        reply = self.request(method, params)
        assert "result" in reply, reply
        return reply["result"]

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = self.result("tools/call", {"name": tool, "arguments": arguments})
        assert not result.get("isError"), result
        found: dict[str, Any] = result["structuredContent"]
        return found

    def server_pid(self) -> int:
        """The pid of the server answering: the default agent id is `<client>-<pid>`."""
        return int(self.call("plan_next")["agent_id"].rsplit("-", 1)[1])

    def served_cold(self) -> bool:
        """Served as without warm start: by a child of the process the client started, which
        stays as its handle (cli/handle.py), not by a server the warm process forked."""
        return parent_of(self.server_pid()) == self.proc.pid

    def finish(self) -> tuple[int | None, str]:
        """Stdin closed: its exit code (None if it hung) and stderr."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.stop(0)


def imported(stderr: str) -> set[str]:
    """The modules a process started with PYTHONPROFILEIMPORTTIME=1 imported."""
    return {
        line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if "import time:" in line
    }


def warm_pids(state_root: Path) -> list[int]:
    """The warm processes of `state_root` and the servers they forked (same command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(WARM in word for word in argv) and str(state_root).encode() in argv:
            found.append(int(entry.name))
    return found


def listening(state_root: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(warm_relay.run_dir(state_root) / warm_relay.SOCKET))
        except OSError:
            return False
    return True


STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture
def cleanup(state_root: Path) -> Iterator[None]:
    """Ends every warm process of the test's state folder, and its servers."""
    yield
    for pid in warm_pids(state_root):
        with contextlib.suppress(ProcessLookupError):  # ended since it was listed
            os.kill(pid, signal.SIGKILL)
    while STARTED:
        STARTED.pop().wait(EXIT_DEADLINE_S)
    wait_for(lambda: not any(alive(pid) for pid in warm_pids(state_root)), "warm gone")


@functools.cache
def relay_import_path(pythonpath: str = "") -> str:
    """The import path of `python -P -m wvo_mcp` (a relay's build id holds it)."""
    code = (
        "import json; from wvo_mcp.cli import warm_relay; "
        "print(json.dumps(warm_relay.import_path()))"
    )
    found = subprocess.run(
        [sys.executable, "-P", "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **({"PYTHONPATH": pythonpath} if pythonpath else {})},
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip()


def start_warm(
    state_root: Path, boot: str = warm_relay.BOOT, **env: str
) -> subprocess.Popen[bytes]:
    """A warm process of `state_root`, listening."""
    state_root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-P",
            "-c",
            boot,
            relay_import_path(env.get("PYTHONPATH", "")),
            str(state_root),
        ],
        # As warm_relay.start_warm starts it: with room for its servers' clients' environments.
        env={
            "PATH": "/usr/bin:/bin",
            "WVO_STATE_ROOT": str(state_root),
            **warm_relay.warm_environment({}),
            **env,
        },
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    STARTED.append(proc)
    wait_for(lambda: listening(state_root) or proc.poll() is not None, "warm listening")
    assert proc.poll() is None, (warm_relay.run_dir(state_root) / warm_relay.LOG).read_text()
    return proc


@pytest.mark.usefixtures("cleanup")
def test_the_first_client_is_served_cold_and_the_next_by_a_forked_server(
    state_root: Path,
) -> None:
    first = Relay(state_root)
    assert first.served_cold()  # no warm process yet
    wait_for(lambda: listening(state_root), "the warm process the first relay started")
    second = Relay(state_root)
    server = second.server_pid()
    assert parent_of(server) != second.proc.pid
    assert parent_of(server) in warm_pids(state_root)
    assert second.result("tools/list", {}) == first.result("tools/list", {})
    first.call("task_create", tasks=[{"id": "a", "title": "a"}, {"id": "b", "title": "b"}])
    claims = [relay_.call("claim_task") for relay_ in (first, second)]
    assert all(claim["claimed"] for claim in claims), claims
    assert {claim["task"]["id"] for claim in claims} == {"a", "b"}
    assert second.finish() == (0, "")
    assert first.finish() == (0, "")
    assert not alive(server)


@pytest.mark.usefixtures("cleanup")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_relay_stops_its_server_with_exit_0(state_root: Path, signum: int) -> None:
    warm = start_warm(state_root)
    client = Relay(state_root)
    server = client.server_pid()
    assert parent_of(server) == warm.pid
    assert client.stop(signum) == (0, "")
    wait_for(lambda: not alive(server), "the server gone")
    assert warm.poll() is None  # it serves the next client


@pytest.mark.usefixtures("cleanup")
def test_a_forked_server_refusing_to_start_says_why_and_the_relay_exits_with_its_code(
    state_root: Path,
) -> None:
    start_warm(state_root)
    inside = state_root / "workspace"
    client = subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "serve"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "WVO_STATE_ROOT": str(state_root),
            "WVO_WARM_START": "1",
            "WVO_WARM_SHARED": "0",
            "WVO_WORKSPACE_ROOT": str(inside),
            "PYTHONPROFILEIMPORTTIME": "1",
        },
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=EXIT_DEADLINE_S,
        check=False,
    )
    assert client.returncode == 2, client
    assert f"the workspace {inside} is inside the state folder" in client.stderr
    assert "mcp" not in imported(client.stderr)  # refused by a forked server, not the relay


@pytest.mark.usefixtures("cleanup")
def test_a_killed_relay_leaves_its_server_to_stop(state_root: Path) -> None:
    warm = start_warm(state_root)
    client = Relay(state_root)
    server = client.server_pid()
    assert parent_of(server) == warm.pid
    code, _ = client.stop(signal.SIGKILL)
    assert code == -signal.SIGKILL
    wait_for(lambda: not alive(server), "the server gone")


@pytest.mark.usefixtures("cleanup")
def test_a_warm_process_of_another_build_is_not_used(state_root: Path) -> None:
    other = warm_relay.BOOT.replace(
        "from wvo_mcp.cli import warm;",
        "from wvo_mcp.cli import warm, warm_relay; warm_relay.build_id = lambda: 'another build';",
    )
    stale = start_warm(state_root, boot=other)
    client = Relay(state_root)
    assert client.served_cold()
    assert stale.wait(EXIT_DEADLINE_S) == 0
    # The relay started a warm process of its own build for the next client.
    wait_for(lambda: listening(state_root), "a new warm process")
    after = Relay(state_root)
    assert not after.served_cold()
    assert after.finish() == (0, "")
    assert client.finish() == (0, "")


@pytest.mark.usefixtures("cleanup")
def test_a_package_installed_since_the_warm_process_started_makes_it_stale(
    state_root: Path, tmp_path: Path
) -> None:
    packages = tmp_path / "site"
    packages.mkdir()
    warm = start_warm(state_root, PYTHONPATH=str(packages))
    before = Relay(state_root, PYTHONPATH=str(packages))
    assert parent_of(before.server_pid()) == warm.pid
    (packages / "installed.py").write_text("")  # the folder changes, as an install changes it
    after = Relay(state_root, PYTHONPATH=str(packages))
    assert after.served_cold()
    # Stale, it serves no one new, but still reports how its servers end, then ends.
    assert before.finish() == (0, "")
    assert warm.wait(EXIT_DEADLINE_S) == 0
    assert after.finish() == (0, "")


@pytest.mark.usefixtures("cleanup")
def test_each_forked_server_takes_its_relays_environment(state_root: Path) -> None:
    warm = start_warm(state_root)
    alpha = Relay(state_root, WVO_AGENT_ID="alpha")
    beta = Relay(state_root, WVO_AGENT_ID="beta", WVO_TOOLS="worker")
    assert [client.call("plan_next")["agent_id"] for client in (alpha, beta)] == ["alpha", "beta"]
    tools = [len(client.result("tools/list", {})["tools"]) for client in (alpha, beta)]
    assert tools[0] > tools[1]
    assert len(children_of(warm.pid)) == 2  # each served by a server of its own
    for client in (alpha, beta):
        assert client.finish() == (0, "")
    assert warm.poll() is None


@pytest.mark.usefixtures("cleanup")
def test_the_run_dir_and_socket_are_this_users_alone(state_root: Path) -> None:
    start_warm(state_root)
    run = warm_relay.run_dir(state_root)
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
    for name in (warm_relay.SOCKET, warm_relay.LOCK, warm_relay.LOG):
        assert stat.S_IMODE((run / name).stat().st_mode) == 0o600, name
    if os.getuid() == 0 and Path(OTHER_PYTHON).exists():
        # Another user, handed the state folder itself (past the test's 0700 tmp dir).
        folder = os.open(state_root, os.O_PATH | os.O_DIRECTORY)
        try:
            path = f"/proc/self/fd/{folder}/{warm_relay.RUN_DIR}/{warm_relay.SOCKET}"
            probe = subprocess.run(
                [
                    OTHER_PYTHON,
                    "-c",
                    f"import socket; socket.socket(socket.AF_UNIX).connect({path!r})",
                ],
                user=65534,
                group=65534,
                pass_fds=[folder],
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            os.close(folder)
        assert "PermissionError" in probe.stderr, probe.stderr


@pytest.mark.usefixtures("cleanup")
def test_the_warm_process_ends_when_idle(state_root: Path) -> None:
    warm = start_warm(state_root, WVO_WARM_IDLE_SECONDS="0.5")
    assert warm.wait(EXIT_DEADLINE_S) == 0
    assert not (warm_relay.run_dir(state_root) / warm_relay.SOCKET).exists()


@pytest.mark.usefixtures("cleanup")
def test_the_relay_imports_neither_pydantic_nor_the_sdk(state_root: Path) -> None:
    start_warm(state_root)
    client = Relay(state_root, PYTHONPROFILEIMPORTTIME="1")
    assert not client.served_cold()
    code, stderr = client.finish()
    assert code == 0
    modules = imported(stderr)
    assert "wvo_mcp.cli.warm_relay" in modules
    heavy = {name for name in modules if name.split(".")[0] in ("pydantic", "mcp", "anyio")}
    assert not heavy and "argparse" not in modules, heavy


def environ_of(pid: int) -> dict[str, str]:
    """A process's environment as the kernel shows it (/proc/PID/environ)."""
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode().split("=", 1) for e in entries if e)


@pytest.mark.usefixtures("cleanup")
def test_each_server_shows_its_own_clients_environment_and_the_warm_process_none(
    state_root: Path,
) -> None:
    """Client A starts the warm process; B and C are served by forked servers. The kernel
    shows each server its own client's variables only, and the warm process no client's."""
    first = Relay(state_root, WVO_AGENT_ID="alpha", SECRET_A="a-secret")
    assert first.call("plan_next")["agent_id"] == "alpha"  # served cold, in place
    wait_for(lambda: listening(state_root), "the warm process the first relay started")
    [warm] = warm_pids(state_root)
    second = Relay(state_root, WVO_AGENT_ID="beta", SECRET_B="b-secret")
    third = Relay(state_root, WVO_AGENT_ID="gamma")  # A's secret removed, as a person would
    assert [c.call("plan_next")["agent_id"] for c in (second, third)] == ["beta", "gamma"]
    servers = {environ_of(pid)["WVO_AGENT_ID"]: pid for pid in children_of(warm)}
    assert set(servers) == {"beta", "gamma"}
    assert environ_of(servers["beta"])["SECRET_B"] == "b-secret"
    for pid in servers.values():
        assert warm_relay.RESERVE not in environ_of(pid), pid
    for pid in (*servers.values(), warm):
        shown = environ_of(pid)
        assert "SECRET_A" not in shown and "alpha" not in shown.values(), (pid, shown)
    assert "SECRET_B" not in environ_of(servers["gamma"])
    assert "WVO_AGENT_ID" not in environ_of(warm)  # it starts from a scrubbed environment
    for client in (first, second, third):
        assert client.finish() == (0, "")


MEMORY_CHUNK = 16 * 1024 * 1024


def memory_holds(pid: int, marker: bytes) -> bool:
    """Whether the writable memory of process `pid` (its heap, stack and anonymous maps: what
    a fork of it copies) holds `marker`, read through /proc/PID/mem."""
    tail = b""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if "w" not in perms:
                continue
            start, end = (int(edge, 16) for edge in span.split("-"))
            while start < end:
                try:
                    mem.seek(start)
                    block = mem.read(min(end - start, MEMORY_CHUNK))
                except OSError:  # a map the kernel will not show (a guard page, say)
                    break
                if marker in tail + block:
                    return True
                tail, start = block[-len(marker) :], start + len(block)
    return False


@pytest.mark.usefixtures("cleanup")
def test_no_clients_environment_is_in_the_memory_later_servers_are_forked_from(
    state_root: Path,
) -> None:
    """The warm process forks as a relay connects, and the child reads the relay's header:
    a secret in client A's environment is in A's server (where the search finds it), and
    neither in the warm process nor in the server it forks for B afterwards."""
    warm = start_warm(state_root)
    secret = f"wvo-secret-{uuid.uuid4().hex}".encode()
    # A key's size (16 KiB): the memory a small one took is soon taken again, so only a
    # large one shows reliably what reading headers in the warm process left (it did).
    alpha = Relay(state_root, SECRET_OF_ALPHA=secret.decode() + "k" * 16 * 1024)
    server_a = alpha.server_pid()
    assert parent_of(server_a) == warm.pid
    try:
        assert memory_holds(server_a, secret)  # what is there is found
    except PermissionError as exc:  # no ptrace rights over it: not root
        pytest.skip(f"cannot read another process's memory here: {exc}")
    beta = Relay(state_root)
    server_b = beta.server_pid()
    assert parent_of(server_b) == warm.pid
    assert not memory_holds(warm.pid, secret)
    assert not memory_holds(server_b, secret)
    for client in (alpha, beta):
        assert client.finish() == (0, "")


@pytest.mark.usefixtures("cleanup")
def test_a_forked_server_works_in_its_relays_directory(state_root: Path, tmp_path: Path) -> None:
    warm = start_warm(state_root)
    project = tmp_path / "project"
    project.mkdir()
    client = Relay(state_root, preexec_fn=lambda: os.chdir(project))
    server = client.server_pid()
    assert parent_of(server) == warm.pid
    assert os.readlink(f"/proc/{server}/cwd") == str(project)
    assert client.finish() == (0, "")


@pytest.mark.usefixtures("cleanup")
def test_a_forked_server_enters_its_relays_directory_itself_not_its_path(
    state_root: Path, tmp_path: Path
) -> None:
    """The relay hands its working directory over as a descriptor: renamed after the relay
    took it, and another directory made at its old path (as between a relay's start and
    its server's), the server is in the relay's directory, not in whatever the path names."""
    warm = start_warm(state_root)
    started, renamed = tmp_path / "project", tmp_path / "project-renamed"
    started.mkdir()
    here = os.open(started, os.O_PATH | os.O_DIRECTORY)
    started.rename(renamed)
    started.mkdir()
    read, write = os.pipe()
    try:
        header = relay_header(env={"PATH": "/usr/bin:/bin", "PWD": str(started)})
        with handed(state_root, header, [read, write, write, here]) as answer:
            assert parent_of(answer["pid"]) == warm.pid, answer
            assert os.readlink(f"/proc/{answer['pid']}/cwd") == str(renamed)
    finally:
        for fd in (read, write, here):
            os.close(fd)


@pytest.mark.usefixtures("cleanup")
def test_a_client_whose_environment_does_not_fit_is_served_cold(state_root: Path) -> None:
    start_warm(state_root)
    fits = Relay(state_root)
    big = Relay(state_root, LARGE="y" * (warm_relay.RESERVE_BYTES + 1))
    assert not fits.served_cold()  # forked by the warm process
    assert big.served_cold()  # as without warm start
    assert big.call("claim_task")["reason"] == "no_ready_task"
    for client in (fits, big):
        assert client.finish() == (0, "")


@pytest.mark.usefixtures("cleanup")
def test_warm_start_is_on_by_default_and_off_with_its_switch(state_root: Path) -> None:
    off = Server(state_root)  # no WVO_WARM_START: the default
    off.start()
    wait_for(lambda: listening(state_root), "the warm process the default started")
    assert warm_pids(state_root)
    served = Relay(state_root, WVO_WARM_START="0")
    assert served.served_cold()  # a warm process listens, and is passed by
    assert served.finish() == (0, "")
    default = Relay(state_root, WVO_WARM_START="")
    assert not default.served_cold()
    assert default.finish() == (0, "")
    off.stop(signal.SIGTERM)


def nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def open_files_limit(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError("no open files limit")


@contextlib.contextmanager
def cgroup_of_its_own() -> Iterator[Path | None]:
    """A fresh cgroup v2 group (no controllers) beside this process's, when one can be made."""
    from wvo_mcp.sandbox import cgroups

    own = cgroups.detect().v2
    group = None if own is None else own / f"wvo-test-{os.getpid()}-{time.monotonic_ns()}"
    try:
        assert group is not None
        group.mkdir()
    except (AssertionError, OSError):
        group = None
    try:
        yield group
    finally:
        if group is not None:
            for pid in (group / "cgroup.procs").read_text().split():  # a failed test's
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            # Empty once its last process is reaped, not when it exits: a forked server is
            # the warm process's child, a zombie in the group until that one reaps it.
            events = group / "cgroup.events"
            wait_for(lambda: "populated 0" in events.read_text().split("\n"), "group empty")
            group.rmdir()


@pytest.mark.usefixtures("cleanup")
def test_a_forked_server_is_bounded_as_its_relay_is(state_root: Path) -> None:
    """Its cgroup, resource limits, nice value, OOM score and CPUs are its client's, not the
    warm process's: a client that limits what it starts limits the server too."""
    warm = start_warm(state_root)
    one_cpu = {max(os.sched_getaffinity(warm.pid))}
    with cgroup_of_its_own() as group:

        def bound() -> None:  # in the relay, before it runs
            resource.setrlimit(resource.RLIMIT_NOFILE, (777, 888))
            os.nice(3)
            Path("/proc/self/oom_score_adj").write_text("123")
            os.sched_setaffinity(0, one_cpu)  # as `taskset` does
            if group is not None:
                (group / "cgroup.procs").write_text(str(os.getpid()))

        client = Relay(state_root, preexec_fn=bound)
        server = client.server_pid()
        assert parent_of(server) == warm.pid  # forked, and bounded all the same
        assert open_files_limit(server) == ("777", "888") != open_files_limit(warm.pid)
        assert nice_of(server) == nice_of(client.proc.pid) == nice_of(warm.pid) + 3
        assert Path(f"/proc/{server}/oom_score_adj").read_text().strip() == "123"
        assert os.sched_getaffinity(server) == one_cpu
        assert os.sched_getaffinity(warm.pid) != one_cpu or os.cpu_count() == 1  # not its own
        cgroup = Path(f"/proc/{server}/cgroup").read_text()
        assert cgroup == Path(f"/proc/{client.proc.pid}/cgroup").read_text()
        if group is not None:
            assert cgroup != Path(f"/proc/{warm.pid}/cgroup").read_text()
        assert client.call("claim_task")["reason"] == "no_ready_task"
        assert client.finish() == (0, "")


@pytest.mark.usefixtures("cleanup")
def test_bounds_a_forked_server_cannot_take_on_are_refused_before_it_reads(
    state_root: Path,
) -> None:
    start_warm(state_root)
    header = relay_header()
    header["limits"] = {**header["limits"], "RLIMIT_NOFILE": [2**40, 2**40]}  # past nr_open
    read, write = os.pipe()
    here = os.open("/", os.O_PATH | os.O_DIRECTORY)
    with handed(state_root, header, [read, write, write, here]) as answer:
        pass
    os.write(write, b"still here")
    assert os.read(read, 64) == b"still here"  # nothing read what the client sent
    assert answer["refused"].startswith("bounds the warm process cannot take on"), answer
    for fd in (read, write, here):
        os.close(fd)


def relay_header(**changes: Any) -> dict[str, Any]:
    """A header as a relay of this tree sends it (this process's bounds), with `changes`."""
    header = {
        "build": relay_build(),
        "argv": ["serve"],
        "argv0": "wvo-mcp",
        "env": {},
        "umask": 0o077,
        "namespaces": warm_relay.namespaces(),
        **warm_relay.bounds(),
    }
    return {**header, **changes}


@contextlib.contextmanager
def handed(state_root: Path, header: dict[str, Any], fds: list[int]) -> Iterator[dict[str, Any]]:
    """The warm process of `state_root` handed `header` and `fds` as a relay hands them: its
    first answer, while the connection is open (a forked server waits for the word to go)."""
    with contextlib.closing(warm_relay._connect(warm_relay.run_dir(state_root))) as conn:
        payload = json.dumps(header).encode()
        socket.send_fds(conn, [warm_relay.LENGTH.pack(len(payload))], fds)
        conn.sendall(payload)
        yield json.loads(conn.makefile("rb").readline())


@functools.cache
def relay_build() -> str:
    """The build id a relay of this tree sends (`python -P -m wvo_mcp`'s import path)."""
    code = "from wvo_mcp.cli import warm_relay; print(warm_relay.build_id())"
    found = subprocess.run(
        [sys.executable, "-P", "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip()


@pytest.mark.usefixtures("cleanup")
def test_stop_ends_the_warm_process_and_leaves_its_servers_serving(state_root: Path) -> None:
    warm = start_warm(state_root)
    client = Relay(state_root)
    server = client.server_pid()
    stop = wvo("stop", state_root)
    assert stop.returncode == 0, stop.stderr
    assert stop.stdout == f"stopped the warm process {warm.pid} of {state_root}\n"
    assert not listening(state_root)
    assert client.call("claim_task")["reason"] == "no_ready_task"  # its server goes on
    assert client.finish() == (0, "")
    assert warm.wait(EXIT_DEADLINE_S) == 0  # ends once its last server has
    assert not alive(server)
    again = wvo("stop", state_root)
    assert (again.returncode, again.stdout) == (0, f"no warm process serves {state_root}\n")
    after = Relay(state_root)  # served cold, and a new warm process for the next
    assert after.served_cold()
    assert after.finish() == (0, "")


def wvo(command: str, state_root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "--state-root", str(state_root), command],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=EXIT_DEADLINE_S,
        check=False,
    )


@pytest.mark.usefixtures("cleanup")
@pytest.mark.parametrize(
    "how", ["relay SIGKILLed", "cold handle SIGKILLed", "SIGTERM", "SIGINT", "stdin closed"]
)
def test_a_call_in_flight_when_its_server_stops_gets_its_own_answer(
    state_root: Path, how: str
) -> None:
    """A done waits for its turn to write when the server is told to stop: the answer is the
    done's own result, never JSON-RPC's `Connection closed` (which the SDK gave a call it
    cancelled, though its write went on to commit). A client's SIGKILL of the process it
    started leaves the server (forked by the warm process, or cold its child) holding the
    client's pipes."""
    warm = how == "relay SIGKILLed"
    killed = how.endswith("SIGKILLed")
    if warm:
        start_warm(state_root)
    client = Relay(state_root, WVO_WARM_START="1" if warm else "0")
    server = client.server_pid()
    assert (parent_of(server) != client.proc.pid) is warm
    client.call("task_create", tasks=[{"id": "T1", "title": "t"}])
    claim = client.call("claim_task")
    held = {"task_id": "T1", "lease_token": claim["lease_token"]}
    [lock] = state_root.glob("*.writers.lock")
    with lock.open("a") as queue:
        fcntl.flock(queue, fcntl.LOCK_EX)  # every write of every server waits for its turn
        done = {"name": "plan_update", "arguments": {**held, "status": "done"}}
        client.send({"jsonrpc": "2.0", "id": 100, "method": "tools/call", "params": done})
        # Answered after the done was read (lines are read in order): the done is in flight.
        assert client.request("ping", {})["result"] == {}
        if how == "stdin closed":
            assert client.proc.stdin is not None
            client.proc.stdin.close()
        else:
            signum = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}.get(how, signal.SIGKILL)
            client.proc.send_signal(signum)
        fcntl.flock(queue, fcntl.LOCK_UN)
    assert client.proc.stdout is not None
    answer = json.loads(client.proc.stdout.readline())
    assert answer.get("id") == 100 and "result" in answer, answer
    assert answer["result"]["structuredContent"]["status"] == "done", answer
    assert client.proc.stdout.readline() == b""  # then it ends
    assert client.proc.wait(EXIT_DEADLINE_S) == (-signal.SIGKILL if killed else 0)
    for pipe in (client.proc.stdin, client.proc.stdout, client.proc.stderr):
        if pipe is not None:
            pipe.close()
    wait_for(lambda: not alive(server), "the server gone")


@pytest.mark.usefixtures("cleanup")
def test_a_crash_storm_answers_every_call_with_a_result_a_refusal_or_a_closed_pipe(
    state_root: Path,
) -> None:
    """Four clients drain a queue while their servers' relays are SIGKILLed at random: the
    servers that live on answer each call they read with its result or a refusal, never with
    a JSON-RPC error; every task is done once."""
    start_warm(state_root)
    tasks = 1500
    seed = Relay(state_root)
    seed.call("task_create", tasks=[{"id": f"T{n}", "title": "t"} for n in range(tasks)])
    seed.finish()
    kinds: dict[str, int] = {"result": 0, "refusal": 0, "error": 0, "closed": 0}
    errors: list[Any] = []
    live: dict[int, Relay] = {}
    guard = threading.Lock()
    deadline = time.monotonic() + 180

    def call(client: Relay, tool: str, **arguments: Any) -> tuple[str, dict[str, Any]]:
        """The call's answer, by kind: a result, a refusal, a JSON-RPC error, or closed."""
        params = {"name": tool, "arguments": arguments}
        try:
            reply = client.request("tools/call", params)
        except (ValueError, OSError):  # the pipe closed: the call was not read
            kind, content = "closed", {}
        else:
            if "error" in reply:
                kind, content = "error", reply
            else:
                kind = "refusal" if reply["result"].get("isError") else "result"
                content = reply["result"].get("structuredContent") or {}
        with guard:
            kinds[kind] += 1
            if kind == "error":
                errors.append(content)
        return kind, content

    def drop(client: Relay) -> None:
        client.proc.kill()
        client.proc.wait()
        for pipe in (client.proc.stdin, client.proc.stdout, client.proc.stderr):
            with contextlib.suppress(OSError):  # a buffer flushed into a closed pipe
                pipe.close()  # type: ignore[union-attr]

    def agent(n: int) -> None:
        held: dict[str, str] | None = None  # carried to the next client when a kill cuts in
        while time.monotonic() < deadline:
            client = Relay(state_root, WVO_AGENT_ID=f"a{n}")
            with guard:
                live[n] = client
            while time.monotonic() < deadline:
                if held is None:
                    kind, claim = call(client, "claim_task")
                    if kind != "result":
                        break
                    if not claim["claimed"]:
                        with guard:
                            live.pop(n, None)
                        drop(client)
                        return
                    held = {"task_id": claim["task"]["id"], "lease_token": claim["lease_token"]}
                kind, _ = call(client, "plan_update", **held, status="done")
                if kind == "closed":
                    break
                held = None
            with guard:
                live.pop(n, None)
            drop(client)

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    kills = 0
    while any(t.is_alive() for t in threads) and kills < 25:
        time.sleep(0.1)  # the storm's pace, not a wait for anything
        with guard:
            victims = list(live.values())
        if victims:  # Popen signals only a child it has not reaped: no pid reused since
            victims[kills % len(victims)].proc.send_signal(signal.SIGKILL)
            kills += 1
    for thread in threads:
        thread.join(200)
    assert errors == [], (kinds, errors[:5])
    assert kills >= 1 and kinds["result"] > tasks, kinds
    with open_db(state_root) as db:
        done = db.execute("SELECT count(*) FROM tasks WHERE status = 'done'").fetchone()[0]
        twice = db.execute(
            "SELECT task_id FROM task_events WHERE to_status = 'done' GROUP BY task_id "
            "HAVING count(*) > 1"
        ).fetchall()
    assert (done, twice) == (tasks, []), kinds


@pytest.mark.usefixtures("cleanup")
def test_a_silent_or_slow_connection_holds_up_no_relay(state_root: Path) -> None:
    """Two connections of this user's that send nothing, and one that sends its header a
    byte at a time: the next relay is served by a forked server all the same (the silent
    ones wait, unread, the slow one's header is read by the child forked for it; read in
    turn, two seconds each, they would hold it up until the relay gave up and served its
    client itself)."""
    start_warm(state_root)
    quiet = [_dial(state_root) for _ in range(2)]
    slow = _dial(state_root)
    try:
        slow.send(warm_relay.LENGTH.pack(100))
        client = Relay(state_root)
        server = client.server_pid()
        assert parent_of(server) != client.proc.pid  # forked by the warm process
        assert client.finish() == (0, "")
    finally:
        for conn in (*quiet, slow):
            conn.close()


def _dial(state_root: Path) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(str(warm_relay.run_dir(state_root) / warm_relay.SOCKET))
    return conn


@pytest.mark.usefixtures("cleanup")
def test_a_forked_servers_temporary_files_follow_its_own_clients_tmpdir(
    state_root: Path, tmp_path: Path
) -> None:
    """The warm process's first client's TMPDIR (kept in its environment, and the folder its
    rehearsal's scratch was made in) is not where the next clients' servers make theirs: it
    may be in that client's workspace, which its sandboxed commands can write."""
    from wvo_mcp.sandbox import bwrap

    if not bwrap.probe().usable:
        pytest.skip(f"no bwrap: {bwrap.probe().detail}")
    first, own = tmp_path / "first-tmp", tmp_path / "own-tmp"
    for folder in (first, own):
        folder.mkdir()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    warm = start_warm(state_root, TMPDIR=str(first))
    first.rmdir()  # gone: a server making its files there fails
    client = Relay(state_root, TMPDIR=str(own), WVO_WORKSPACE_ROOT=str(workspace))
    assert parent_of(client.server_pid()) == warm.pid
    ran = client.call("sandbox_run", command="echo ran")
    assert ran["exit_code"] == 0 and "ran" in ran["stdout_tail"], ran
    assert client.finish() == (0, "")


# A listener on the warm socket's path from a user and network namespace of its own (as a
# sandbox's process is, had it reached that folder): it keeps whatever a relay sends it.
FAKE_WARM = """
import socket, sys
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[1])
listener.listen(1)
print("listening", flush=True)
conn, _ = listener.accept()
conn.settimeout(10)
got = b""
try:
    while chunk := conn.recv(1 << 16):
        got += chunk
except OSError:
    pass
open(sys.argv[2], "wb").write(got)
"""


@pytest.mark.usefixtures("cleanup")
def test_a_relay_hands_nothing_to_a_listener_in_other_namespaces(
    state_root: Path, tmp_path: Path
) -> None:
    run = warm_relay.run_dir(state_root)
    run.mkdir(parents=True, mode=0o700)
    kept = tmp_path / "kept"
    fake = subprocess.Popen(
        ["unshare", "--user", "--map-root-user", "--net", sys.executable, "-P", "-c", FAKE_WARM,
         str(run / warm_relay.SOCKET), str(kept)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert fake.stdout is not None
        if fake.stdout.readline() != b"listening\n":
            pytest.skip(f"no user namespaces here: {fake.communicate(timeout=10)[1]!r}")
        client = Relay(state_root, SECRET_OF_THE_CLIENT="s3cret")
        assert client.served_cold()
        assert fake.wait(EXIT_DEADLINE_S) == 0
        assert b"s3cret" not in kept.read_bytes() and kept.read_bytes() == b""
        assert client.finish() == (0, "")
    finally:
        fake.kill()
        fake.communicate()


@pytest.mark.usefixtures("cleanup")
def test_the_warm_log_is_begun_anew_once_large(state_root: Path) -> None:
    run = warm_relay.run_dir(state_root)
    run.mkdir(parents=True, mode=0o700)
    log = run / warm_relay.LOG
    log.write_text("an old line\n" * 100_000)  # over a megabyte, from warm processes past
    log.chmod(0o600)
    start_warm(state_root)
    wait_for(lambda: "serving" in log.read_text(), "the warm process's first line")
    assert "an old line" not in log.read_text()
