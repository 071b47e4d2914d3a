"""The user's shared warm process (WVO_WARM_SHARED, on with warm start): a state folder with no
warm process of its own, a fresh one too, is served by a server the user's warm process of
this build forked, on the client's own state folder; a shared folder that is not the user's
alone is never used, and a relay the kernel places in other namespaces is refused."""

import ctypes
import fcntl
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import alive, children_of, end_warm, parent_of, table_rows, wait_for, warm_pid
from tests.gitwork import git
from tests.integration.test_lifecycle import EXIT_DEADLINE_S
from tests.integration.test_warm_start import (  # noqa: F401 (cleanup: a fixture)
    Relay,
    cleanup,
    imported,
    listening,
)
from wvo_mcp.cli import warm_relay

pytestmark = pytest.mark.process


@pytest.fixture
def runtime() -> Iterator[Path]:
    """The user's runtime folder (XDG_RUNTIME_DIR) for this test alone; every warm process
    listening under it is ended afterwards, with the servers it forked."""
    # Short, as a real one (/run/user/UID) is: the test's own connections below, and the
    # probes it starts in other namespaces, name the socket by its path, which a socket
    # address takes to 107 bytes (the warm processes themselves bind through a descriptor).
    folder = Path(tempfile.mkdtemp(prefix="xdg-", dir="/tmp"))  # 0700, this user's
    try:
        yield folder
    finally:
        end_warm(folder)


def shared_socket(runtime: Path) -> Path:
    """The shared warm process's socket, once it listens."""

    def found() -> Path | None:
        socks = [s for s in runtime.glob("wvo-mcp/warm-*/warm.sock") if warm_pid(s)]
        return socks[0] if socks else None

    sock: Path = wait_for(found, "the shared warm process listening")
    return sock


def shared_relay(state_root: Path, runtime: Path) -> Relay:
    """A client's relay with the shared warm process on, in `runtime`."""
    return Relay(state_root, WVO_WARM_SHARED="1", XDG_RUNTIME_DIR=str(runtime))


def test_a_fresh_state_folder_is_served_by_the_shared_warm_process_on_its_own_folder(
    tmp_path: Path, runtime: Path
) -> None:
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    first = shared_relay(alpha, runtime)
    assert first.served_cold()  # no warm process anywhere yet
    first.call("task_create", tasks=[{"id": "A1", "title": "alpha's"}])
    assert first.finish()[0] == 0
    sock = shared_socket(runtime)
    assert sock.parent.parent == runtime / "wvo-mcp"
    warm = warm_pid(sock)
    assert not (beta / "orchestrator.db").exists()

    # A fresh folder: the first tool call is answered by a forked server, on beta.
    second = shared_relay(beta, runtime)
    found = second.call("plan_next")
    assert parent_of(int(found["agent_id"].rsplit("-", 1)[1])) == warm
    assert found["tasks"] == [] and found["counts"]["ready"] == 0
    second.call("task_create", tasks=[{"id": "B1", "title": "beta's"}])
    assert [t["id"] for t in table_rows(second.call("task_list"))] == ["B1"]
    assert (beta / "orchestrator.db").exists()
    assert not listening(beta)  # no warm process of beta's own was started

    # The same warm process serves alpha's next client alpha's tasks, not beta's.
    third = shared_relay(alpha, runtime)
    assert parent_of(third.server_pid()) == warm
    assert [t["id"] for t in table_rows(third.call("task_list"))] == ["A1"]
    for client in (second, third):
        assert client.finish()[0] == 0


@pytest.mark.parametrize("shared", ["1", "0"], ids=["shared", "control: off"])
def test_init_where_no_state_folder_is_found_yet_is_run_by_the_shared_warm_process(
    tmp_path: Path, runtime: Path, shared: str
) -> None:
    """`wvo-mcp init` in a fresh repository, whose state folder it is to make: run by a child
    of the shared warm process, so the process started imports none of the commands."""
    first = shared_relay(tmp_path / "elsewhere", runtime)
    assert first.finish()[0] == 0
    shared_socket(runtime)
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    done = subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "init"],
        cwd=repo,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WVO_OTEL_ENABLED": "0",
             "WVO_WARM_START": "1", "WVO_WARM_SHARED": shared, "XDG_RUNTIME_DIR": str(runtime),
             "PYTHONPROFILEIMPORTTIME": "1"},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
        timeout=EXIT_DEADLINE_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (repo / ".wvo" / "orchestrator.db").exists()
    assert ("wvo_mcp.cli.entry" in imported(done.stderr)) == (shared == "0")


@pytest.mark.usefixtures("cleanup")
@pytest.mark.parametrize("how", ["a link", "open to others"])
def test_a_shared_folder_not_the_users_alone_is_not_used(
    tmp_path: Path, state_root: Path, runtime: Path, how: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    shared = runtime / "wvo-mcp"
    if how == "a link":
        shared.symlink_to(elsewhere)
    else:
        shared.mkdir()
        shared.chmod(0o755)
    client = shared_relay(state_root, runtime)
    assert client.served_cold()
    assert client.finish()[0] == 0
    # The state folder's own warm process instead; nothing made in, or through, that folder.
    wait_for(lambda: listening(state_root), "the state folder's warm process")
    assert list(elsewhere.iterdir()) == []
    assert how == "a link" or list(shared.iterdir()) == []


# A relay that lies: the warm process's own namespaces in its header, from a user and network
# namespace of its own (as a sandbox's process is), with its stdin, stdout and stderr.
LIAR = """
import json, os, socket, struct, sys
header = json.loads(sys.argv[2])
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
conn.connect(sys.argv[1])
payload = json.dumps(header).encode()
here = os.open(".", os.O_PATH | os.O_DIRECTORY)
socket.send_fds(conn, [struct.pack(">I", len(payload))], [0, 1, 2, here])
conn.sendall(payload)
print(conn.makefile("rb").readline().decode().strip())
"""


def told_from_elsewhere(sock: Path, header: dict[str, Any]) -> Any:
    """What the warm process on `sock` answers `header` sent from a user and network
    namespace of its own (a sandbox's); skipped where no user namespace can be made."""
    told = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--net", sys.executable, "-P", "-c", LIAR,
         str(sock), json.dumps(header)],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if "unshare failed" in told.stderr or "Operation not permitted" in told.stderr:
        pytest.skip(f"no user namespaces here: {told.stderr.strip()}")
    return json.loads(told.stdout)


def test_a_relay_in_other_namespaces_is_refused_whatever_its_header_says(
    tmp_path: Path, runtime: Path
) -> None:
    first = shared_relay(tmp_path / "alpha", runtime)
    assert first.finish()[0] == 0
    sock = shared_socket(runtime)
    warm = warm_pid(sock)
    assert warm is not None
    header = {
        "build": json.loads(
            subprocess.run(
                [sys.executable, "-P", "-c", "from wvo_mcp.cli import warm_relay as w; "
                 "print(w.json.dumps(w.build_id()))"],
                capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"},
            ).stdout
        ),
        "argv": ["serve"],
        "argv0": "wvo-mcp",
        "env": {"PATH": "/usr/bin:/bin", "WVO_STATE_ROOT": str(tmp_path / "beta")},
        "umask": 0o077,
        "namespaces": warm_relay.namespaces(warm),  # the warm process's: a lie from there
        **warm_relay.bounds(),
    }  # fmt: skip
    assert told_from_elsewhere(sock, header) == {"refused": "another namespace"}
    assert children_of(warm) == []  # nothing forked for it
    assert not (tmp_path / "beta").exists()
    assert alive(warm)


def test_a_relay_in_other_namespaces_cannot_make_the_shared_warm_process_stale(
    tmp_path: Path, runtime: Path
) -> None:
    """A relay of "another build" that the kernel places elsewhere (a sandbox's) is not heard:
    the user's shared warm process, serving every state folder, goes on serving."""
    first = shared_relay(tmp_path / "alpha", runtime)
    assert first.finish()[0] == 0
    sock = shared_socket(runtime)
    warm = warm_pid(sock)
    assert warm is not None
    header = {
        "build": "not this build", "argv": ["serve"], "argv0": "wvo-mcp",
        "env": {"PATH": "/usr/bin:/bin"}, "umask": 0o077,
        "namespaces": warm_relay.namespaces(warm), **warm_relay.bounds(),
    }  # fmt: skip
    assert told_from_elsewhere(sock, header) == {"refused": "another namespace"}
    assert alive(warm) and warm_pid(sock) == warm
    after = shared_relay(tmp_path / "beta", runtime)
    assert parent_of(after.server_pid()) == warm  # still serving
    assert after.finish()[0] == 0


def test_a_state_folder_a_server_refuses_is_refused_by_the_shared_ones_server_too(
    tmp_path: Path, runtime: Path
) -> None:
    first = shared_relay(tmp_path / "alpha", runtime)
    assert first.finish()[0] == 0
    warm = warm_pid(shared_socket(runtime))
    assert warm is not None
    hostile = tmp_path / "hostile"
    inside = hostile / "workspace"  # a workspace inside its state folder: sandboxes would see it
    client = subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", "serve"],
        env={"PATH": "/usr/bin:/bin", "WVO_STATE_ROOT": str(hostile), "WVO_WARM_START": "1",
             "WVO_WARM_SHARED": "1", "XDG_RUNTIME_DIR": str(runtime),
             "WVO_WORKSPACE_ROOT": str(inside), "PYTHONPROFILEIMPORTTIME": "1"},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert client.returncode == 2, client
    assert f"the workspace {inside} is inside the state folder" in client.stderr
    assert "mcp" not in imported(client.stderr)  # refused by a forked server, not the relay
    assert alive(warm) and children_of(warm) == []


def status_of(pid: int) -> dict[str, str]:
    """Process `pid`'s /proc status lines, by name."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {name: value.strip() for name, _, value in (line.partition(":") for line in lines)}


PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, CAP_SYS_ADMIN = 24, 38, 21


def prctl(option: int, value: int) -> None:
    if ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl")


CONFINED: dict[str, tuple[Callable[[], None], str, str]] = {
    # how the client is confined: (in its relay before it runs, the status line, its value)
    "other groups": (lambda: os.setgroups([4242]), "Groups", "4242"),
    "no_new_privs": (lambda: prctl(PR_SET_NO_NEW_PRIVS, 1), "NoNewPrivs", "1"),
    "fewer capabilities": (lambda: prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN), "CapBnd", ""),
}


@pytest.mark.parametrize("how", list(CONFINED))
def test_a_client_with_other_groups_or_fewer_rights_is_served_cold(
    tmp_path: Path, runtime: Path, how: str
) -> None:
    """A server forked by the warm process would have the warm process's groups and rights,
    not its client's: such a client is served by its own relay, with its own."""
    confine, line, value = CONFINED[how]
    if how != "no_new_privs" and os.geteuid() != 0:
        pytest.skip("changing groups or the bounding set needs root")
    first = shared_relay(tmp_path / "alpha", runtime)
    assert first.finish()[0] == 0
    warm = warm_pid(shared_socket(runtime))
    assert warm is not None
    client = Relay(tmp_path / "beta", confine, WVO_WARM_SHARED="1", XDG_RUNTIME_DIR=str(runtime))
    server = client.server_pid()
    assert parent_of(server) == client.proc.pid  # served cold, by the relay's own child
    theirs, ours = status_of(server)[line], status_of(warm)[line]
    assert theirs != ours and theirs == (value or theirs), (line, theirs, ours)
    assert theirs == status_of(client.proc.pid)[line]
    assert client.call("claim_task")["reason"] == "no_ready_task"
    assert client.finish()[0] == 0
    assert alive(warm) and children_of(warm) == []
    # A client as the warm process is, after it, is served warm all the same.
    again = shared_relay(tmp_path / "gamma", runtime)
    assert parent_of(again.server_pid()) == warm
    assert again.finish()[0] == 0


def test_the_shared_warm_process_names_no_state_folder(tmp_path: Path, runtime: Path) -> None:
    """It serves every state folder: `ps` shows none of them, not its first client's."""
    alpha = tmp_path / "alpha"
    first = shared_relay(alpha, runtime)
    assert first.finish()[0] == 0
    warm = warm_pid(shared_socket(runtime))
    assert warm is not None
    shown = Path(f"/proc/{warm}/cmdline").read_bytes()
    assert b"from wvo_mcp.cli import warm" in shown and str(alpha).encode() not in shown


def old_folder(shared: Path, name: str, mode: int = 0o700) -> Path:
    """A folder an old build's shared warm process left: its lock, its log, and the socket
    it no longer listens on."""
    folder = shared / name
    folder.mkdir(mode=0o700)
    for file in (warm_relay.LOCK, warm_relay.LOG):
        (folder / file).write_text("")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(folder / warm_relay.SOCKET))
    folder.chmod(mode)
    return folder


def test_a_starting_shared_warm_process_clears_old_builds_folders_no_process_holds(
    tmp_path: Path, runtime: Path
) -> None:
    """One folder per build: each upgrade leaves one behind. The shared warm process clears
    those no process holds as it starts, and leaves alone a live one's (its lock held), one
    open to others, a link, another user's, one with other files, and anything else."""
    shared = runtime / "wvo-mcp"
    shared.mkdir(mode=0o700)
    old = old_folder(shared, "warm-0000000000000000")
    empty = shared / "warm-1111111111111111"  # a relay made it; no warm process came
    empty.mkdir(mode=0o700)
    live = old_folder(shared, "warm-2222222222222222")
    kept = [live, old_folder(shared, "warm-3333333333333333", 0o755), old_folder(shared, "other")]
    more = old_folder(shared, "warm-4444444444444444")
    (more / "notes").write_text("someone's")
    kept.append(more)
    target = old_folder(tmp_path, "target")
    (shared / "warm-5555555555555555").symlink_to(target)
    kept.append(shared / "warm-5555555555555555")
    if os.geteuid() == 0:
        theirs = old_folder(shared, "warm-6666666666666666")
        os.chown(theirs, 65534, 65534)
        kept.append(theirs)
    with (live / warm_relay.LOCK).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a live warm process of that build holds it
        first = shared_relay(tmp_path / "alpha", runtime)
        assert first.finish()[0] == 0
        own = shared_socket(runtime).parent  # it cleared them before it listened
        assert sorted(shared.iterdir()) == sorted([own, *kept])
    assert {p.name for p in live.iterdir()} == {"warm.lock", "warm.log", "warm.sock"}
    assert {p.name for p in target.iterdir()} == {"warm.lock", "warm.log", "warm.sock"}
    assert "removed warm-0000000000000000" in (own / warm_relay.LOG).read_text()
    assert not old.exists() and not empty.exists()
