"""The sandbox with real processes: what a command can reach, its limits, the tree kill,
output capping, the environment, and the CLI. bwrap tests need bwrap (scripts/setup);
Docker tests run only where an engine answers."""

import json
import socket
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import wvo
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.sandbox import Request, SandboxResult, bwrap, docker_backend, run

BWRAP = Settings(sandbox_backend="bwrap")
UNISOLATED = Settings(sandbox_backend="none", sandbox_allow_unisolated=True)
SANDBOX_FIELDS = set(SandboxResult.model_fields)

needs_bwrap = pytest.mark.skipif(
    not bwrap.probe().usable, reason=f"bwrap cannot run here: {bwrap.probe().detail}"
)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


def python(
    code: str, workspace: Path, settings: Settings = BWRAP, **limits: object
) -> SandboxResult:
    """Run a Python snippet with this interpreter inside the sandbox."""
    request = Request(command=[sys.executable, "-c", textwrap.dedent(code)], workspace=workspace)
    return run(replace(request, **limits), settings)


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose argv contains `marker` (zombies have no argv)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # exited meanwhile
    return found


@pytest.fixture
def marker() -> Iterator[str]:
    value = f"wvo-sandbox-marker-{uuid.uuid4().hex}"
    yield value
    assert processes_with(value) == [], "a sandboxed process outlived its run"


@needs_bwrap
def test_network_is_unreachable_but_loopback_works(workspace: Path) -> None:
    # Reaching out is tried only toward the host's own loopback (a server listening there):
    # no other address is ever a target. The namespace has no interface but lo.
    host = socket.create_server(("127.0.0.1", 0))
    port = host.getsockname()[1]
    res = python(
        f"""
        import socket
        print("interfaces:", sorted(name for _, name in socket.if_nameindex()))
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=5)
            print("outside: reached")
        except OSError as exc:
            print("outside: refused", exc.errno)
        server = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(server.getsockname(), timeout=5)
        peer, _ = server.accept()
        client.sendall(b"ping")
        print("loopback:", peer.recv(4).decode())
        """,
        workspace,
    )
    host.settimeout(0.1)
    with pytest.raises(TimeoutError):
        host.accept()  # nothing inside reached the host's port
    host.close()
    assert res.backend == "bwrap" and res.exit_code == 0, res
    assert "interfaces: ['lo']" in res.stdout_tail
    assert "outside: refused" in res.stdout_tail
    assert "loopback: ping" in res.stdout_tail


@needs_bwrap
def test_writes_outside_the_workspace_fail_and_the_host_is_unchanged(
    workspace: Path, tmp_path: Path
) -> None:
    name = f"wvo-sandbox-{uuid.uuid4().hex}"
    targets = [f"/usr/{name}", f"/etc/{name}", f"/{name}", f"/root/{name}"]
    sibling = tmp_path / name  # on the host's /tmp, next to the workspace
    res = python(
        f"""
        import pathlib
        for path in {targets!r}:
            try:
                pathlib.Path(path).write_text("x")
                print("wrote", path)
            except OSError as exc:
                print("refused", path, exc.strerror)
        pathlib.Path({str(sibling)!r}).write_text("x")  # lands in the sandbox's own /tmp
        pathlib.Path("inside.txt").write_text("kept")
        """,
        workspace,
    )
    assert res.exit_code == 0, res
    for path in targets:
        assert f"refused {path}" in res.stdout_tail
        assert not Path(path).exists()
    assert not sibling.exists()
    assert (workspace / "inside.txt").read_text() == "kept"  # the workspace is writable


@needs_bwrap
def test_files_outside_the_binds_cannot_be_read(workspace: Path, tmp_path: Path) -> None:
    secret = "secret-content-" + uuid.uuid4().hex
    in_root = Path("/root") / f"wvo-sandbox-{uuid.uuid4().hex}.txt"
    in_tmp = tmp_path / "secret.txt"
    (workspace / "mine.txt").write_text("visible")
    try:
        for path in (in_root, in_tmp):
            path.write_text(secret)
        res = python(
            f"""
            import pathlib
            for path in {[str(in_root), str(in_tmp), "/etc/shadow"]!r}:
                try:
                    print("read", path, pathlib.Path(path).read_text())
                except OSError as exc:
                    print("absent", path, type(exc).__name__)
            print("workspace", pathlib.Path("mine.txt").read_text())
            """,
            workspace,
        )
    finally:
        in_root.unlink(missing_ok=True)
    assert res.exit_code == 0, res
    assert secret not in res.stdout_tail
    for path in (in_root, in_tmp, "/etc/shadow"):
        assert f"absent {path} FileNotFoundError" in res.stdout_tail
    assert "workspace visible" in res.stdout_tail


@needs_bwrap
def test_a_memory_hog_is_killed_and_reported(workspace: Path) -> None:
    res = python("block = bytearray(1 << 30)\nprint('survived')", workspace, memory_mb=64)
    assert res.killed_reason == "memory limit (64 MB)", res
    assert res.exit_code is None and not res.timed_out
    assert "survived" not in res.stdout_tail
    assert res.peak_memory_mb is not None and res.peak_memory_mb <= 64


@needs_bwrap
def test_a_fork_bomb_is_contained_by_the_pids_limit(workspace: Path, marker: str) -> None:
    res = python(
        f"""
        import os, signal, sys
        children = 0  # {marker}
        try:
            for _ in range(10_000):
                if os.fork() == 0:
                    signal.pause()  # each child stays alive, holding its pid
                    os._exit(0)
                children += 1
        except OSError as exc:
            print("fork refused after", children, "children:", exc.strerror)
            sys.exit(1)
        print("forked", children)
        """,
        workspace,
        pids_limit=64,
    )
    assert "fork refused after" in res.stdout_tail, res
    children = int(res.stdout_tail.split("after ")[1].split()[0])
    assert children < 64
    assert res.exit_code == 1
    assert res.killed_reason == "pids limit (64) refused new processes"


@needs_bwrap
@pytest.mark.parametrize("busy", ["while True: pass", "import time; time.sleep(3600)"])
def test_the_timeout_kills_the_whole_tree_including_setsid_children(
    workspace: Path, marker: str, busy: str
) -> None:
    res = python(
        f"""
        import subprocess, sys
        subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(3600)", {marker!r}],
            start_new_session=True,
        )
        print("child started", flush=True)
        {busy}
        """,
        workspace,
        timeout_s=1,
    )
    assert "child started" in res.stdout_tail, res
    assert res.timed_out and res.exit_code is None and res.killed_reason == "timeout"
    # The `marker` fixture then checks that no process with the child's argv is left.


@needs_bwrap
def test_a_background_child_does_not_outlive_a_command_that_exits(
    workspace: Path, marker: str
) -> None:
    res = python(
        f"""
        import subprocess, sys
        subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(3600)", {marker!r}],
            start_new_session=True,
        )
        print("child started")
        """,
        workspace,
    )
    assert res.exit_code == 0 and "child started" in res.stdout_tail, res


@needs_bwrap
def test_huge_output_is_capped_keeping_the_tail(workspace: Path) -> None:
    res = python(
        """
        import sys
        for _ in range(5 * 1024):
            sys.stdout.write("x" * 1023 + "\\n")
        sys.stdout.write("THE-END\\n")
        sys.stderr.write("short\\n")
        """,
        workspace,
    )
    assert res.exit_code == 0 and res.truncated, res
    assert res.stdout_tail.endswith("xxx\nTHE-END\n")
    assert res.stdout_tail.startswith("[... ")
    assert len(res.stdout_tail.encode()) < BWRAP.sandbox_output_bytes + 100
    assert res.stderr_tail == "short\n"


@needs_bwrap
def test_the_parents_environment_does_not_reach_the_command(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WVO_TEST_SECRET", "hunter2")
    res = python(
        "import json, os; print(json.dumps(dict(os.environ)))",
        workspace,
        env={"GIVEN": "yes"},
    )
    seen = json.loads(res.stdout_tail)
    assert "WVO_TEST_SECRET" not in seen and "hunter2" not in res.stdout_tail
    assert seen["GIVEN"] == "yes"
    assert seen["HOME"] == "/tmp" and seen["LANG"] == "C.UTF-8"
    assert set(seen) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TERM", "GIVEN", "PWD"}


@needs_bwrap
def test_exit_codes_pass_through_for_argv_and_shell_strings(workspace: Path) -> None:
    assert python("import sys; sys.exit(3)", workspace).exit_code == 3
    res = run(Request(command="echo from-sh; exit 7", workspace=workspace), BWRAP)
    assert res.exit_code == 7 and res.stdout_tail == "from-sh\n" and not res.timed_out


@needs_bwrap
def test_the_command_runs_unprivileged_in_the_workspace(workspace: Path) -> None:
    res = python("import os; print(os.getuid(), os.getcwd())", workspace)
    uid = "65534" if bwrap.probe().userns else "0"
    assert res.stdout_tail.split() == [uid, str(workspace)]


def test_unisolated_runs_only_with_the_opt_in(workspace: Path, marker: str) -> None:
    with pytest.raises(ValidationFailed, match="WVO_SANDBOX_ALLOW_UNISOLATED=1"):
        run(Request(command=["true"], workspace=workspace), Settings(sandbox_backend="none"))
    res = python(
        f"""
        import subprocess, sys
        subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(3600)", {marker!r}],
            start_new_session=True,
        )
        print("child started", flush=True)
        while True: pass
        """,
        workspace,
        settings=UNISOLATED,
        timeout_s=1,
    )
    assert res.backend == "none" and res.timed_out and "child started" in res.stdout_tail


def test_bad_requests_are_refused_with_what_would_be_accepted(workspace: Path) -> None:
    cases = [
        (Request(command=[], workspace=workspace), "command is empty"),
        (Request(command=["true"], workspace=workspace / "nope"), "does not exist"),
        (Request(command=["true"], workspace=workspace, timeout_s=0), "use 0.1 to 3600"),
        (Request(command=["true"], workspace=workspace, memory_mb=8), "use 16 to 65536"),
        (Request(command=["true"], workspace=workspace, env={"1X": "y"}), "not valid"),
        (Request(command=["true"], workspace=Path("/")), "system directory"),
    ]
    for request, message in cases:
        with pytest.raises(ValidationFailed, match=message):
            run(request, BWRAP)


@needs_bwrap
def test_cli_run_prints_the_result_shape_and_exits_with_the_code(
    workspace: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    common = ["sandbox", "run", "--workspace", str(workspace)]
    done = wvo(state, *common, "--json", "--env", "WHO=cli", "--", "sh", "-c", "echo $WHO; exit 3")
    assert done.returncode == 3, done.stderr
    shown = json.loads(done.stdout)
    assert set(shown) == SANDBOX_FIELDS
    assert shown["backend"] == "bwrap" and shown["exit_code"] == 3
    assert shown["stdout_tail"] == "cli\n"

    slow = wvo(state, *common, "--timeout", "1", "--", "sleep", "60")
    assert slow.returncode == 124, slow.stderr
    assert "killed: timeout" in slow.stdout

    hog = [sys.executable, "-c", "b = bytearray(1 << 30)"]
    killed = wvo(state, *common, "--memory-mb", "32", "--", *hog)
    assert killed.returncode == 137, killed.stderr
    assert "memory limit (32 MB)" in killed.stdout


@needs_bwrap
def test_cli_doctor_reports_what_works_here(tmp_path: Path) -> None:
    done = wvo(tmp_path / "state", "sandbox", "doctor", "--json")
    assert done.returncode == 0, done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    assert checks["bwrap"]["usable"], checks["bwrap"]
    assert "cgroup limits: memory" in checks["bwrap"]["detail"]
    assert not checks["none"]["usable"]
    docker_reason = docker_backend.unavailable(Settings().sandbox_image)
    assert checks["docker"]["usable"] == (docker_reason is None)
    if docker_reason is not None:
        assert checks["docker"]["detail"] == docker_reason


@pytest.fixture
def docker_settings() -> Settings:
    settings = Settings(sandbox_backend="docker")
    reason = docker_backend.unavailable(settings.sandbox_image)
    if reason is not None:
        pytest.skip(f"Docker tests need an engine and image: {reason}")
    return settings


def test_docker_runs_without_network_and_passes_exit_codes(
    workspace: Path, docker_settings: Settings
) -> None:
    code = (
        "import os, sys\n"
        "import socket; print('interfaces:', sorted(n for _, n in socket.if_nameindex()))\n"
        "open('inside.txt', 'w').write('kept'); sys.exit(3)"
    )
    res = run(Request(command=["python", "-c", code], workspace=workspace), docker_settings)
    assert res.backend == "docker" and res.exit_code == 3, res
    assert "interfaces: ['lo']" in res.stdout_tail
    assert (workspace / "inside.txt").read_text() == "kept"


def test_docker_kills_at_the_timeout_and_at_the_memory_limit(
    workspace: Path, docker_settings: Settings
) -> None:
    slow = run(Request(command=["sleep", "60"], workspace=workspace, timeout_s=1), docker_settings)
    assert slow.timed_out and slow.exit_code is None
    hog = Request(
        command=["python", "-c", "b = bytearray(1 << 30)"], workspace=workspace, memory_mb=64
    )
    res = run(hog, docker_settings)
    assert res.killed_reason == "memory limit (64 MB)", res
