"""The trusted git's remote (wvo_mcp/git/remote.py) against real servers on 127.0.0.1: a
landing push is a compare-and-swap that never overwrites what a person pushed, each fault
is named for what it is, and the person's credentials (a credential helper, an ssh key in
their git config) are used, their hooks never."""

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitservers import Daemon, SmartHttp, Sshd, bare
from tests.gitwork import commit_file, git, person
from wvo_mcp.git import Git, locate
from wvo_mcp.git.remote import Fault, Remote, identity, parse_onto, task_ref


def home(tmp_path: Path, config: str = "") -> dict[str, str]:
    """A person's environment: their own home and git configuration."""
    folder = tmp_path / "home"
    folder.mkdir(exist_ok=True)
    (folder / ".gitconfig").write_text(config)
    return {"HOME": str(folder), "PATH": os.environ["PATH"]}


def wired(tmp_path: Path, url: str, served: Path, name: str = "repo") -> Git:
    """The person's clone of the remote, with `url` as its origin."""
    git(tmp_path, "clone", "-q", str(served), str(tmp_path / name))
    git(tmp_path / name, "remote", "set-url", "origin", url)
    found = locate(tmp_path / name)
    assert found is not None
    return Git(found, found.top)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Daemon, Git, Path]]:
    seed = person(tmp_path / "seed")
    served = bare(tmp_path / "served", seed.repo.top)
    with Daemon(tmp_path / "served") as server:
        host = wired(tmp_path, server.url("project.git"), served)
        assert isinstance(server, Daemon)
        yield server, host, served


def test_a_landing_push_moves_the_branch_only_from_where_it_was_stacked(
    daemon: tuple[Daemon, Git, Path], tmp_path: Path
) -> None:
    _, host, served = daemon
    remote = Remote(host, "origin", 30, home(tmp_path))
    old = remote.fetch_branch("main")
    assert git(served, "rev-parse", "main") == old
    new = commit_file(host.repo.top, "a.txt", "one\n")
    assert remote.land("main", new, old) is True
    assert git(served, "rev-parse", "main") == new
    assert host.ref_tip("refs/remotes/origin/main") == new

    # A person pushes on top; a batch stacked on the old tip does not land over it.
    theirs = tmp_path / "theirs"
    git(tmp_path, "clone", "-q", str(served), str(theirs))
    persons = commit_file(theirs, "p.txt", "a person's\n")
    git(theirs, "push", "-q", "origin", "main")
    git(host.repo.top, "checkout", "-q", "-b", "next", new)
    stale = commit_file(host.repo.top, "b.txt", "two\n")
    assert remote.land("main", stale, new) is False
    assert git(served, "rev-parse", "main") == persons
    assert host.ref_tip("refs/remotes/origin/main") == persons  # fetched: stack again there


def test_a_person_rewinding_the_branch_is_not_undone(
    daemon: tuple[Daemon, Git, Path], tmp_path: Path
) -> None:
    """A plain fast-forward push would put back what the person removed; the lease does
    not."""
    _, host, served = daemon
    remote = Remote(host, "origin", 30, home(tmp_path))
    first = remote.fetch_branch("main")
    second = commit_file(host.repo.top, "a.txt", "one\n")
    assert remote.land("main", second, first)
    git(served, "update-ref", "refs/heads/main", first)  # the person's force push, rewinding
    third = commit_file(host.repo.top, "b.txt", "two\n")
    assert remote.land("main", third, second) is False
    assert git(served, "rev-parse", "main") == first


def test_a_submission_travels_by_its_task_ref_and_is_forgotten_only_as_it_was(
    daemon: tuple[Daemon, Git, Path], tmp_path: Path
) -> None:
    server, host, served = daemon
    mine = Remote(host, "origin", 30, home(tmp_path))
    work = commit_file(host.repo.top, "w.txt", "work\n")
    mine.publish("T/1", work)
    assert git(served, "rev-parse", task_ref("T/1")) == work
    # Another host, with a clone of its own, brings it onto the task's branch.
    other = wired(tmp_path, server.url("project.git"), served, "other")
    theirs = Remote(other, "origin", 30, home(tmp_path))
    assert theirs.bring("T/1", "wvo/T%2F1") == work
    assert theirs.bring("nothing-here", "wvo/nothing-here") is None
    assert theirs.task_refs() == {task_ref("T/1"): work}
    # Forgotten only while it still names what landed.
    theirs.forget({task_ref("T/1"): "0" * 40})
    assert git(served, "rev-parse", task_ref("T/1")) == work
    theirs.forget({task_ref("T/1"): work})
    assert theirs.task_refs() == {}


def test_a_stopped_server_a_silent_one_and_a_refusing_hook_are_faults_that_move_nothing(
    daemon: tuple[Daemon, Git, Path], tmp_path: Path
) -> None:
    server, host, served = daemon
    remote = Remote(host, "origin", 30, home(tmp_path))
    old = remote.fetch_branch("main")
    new = commit_file(host.repo.top, "a.txt", "one\n")
    server.stop()
    with pytest.raises(Fault) as gone:
        remote.land("main", new, old)
    assert gone.value.kind == "unreachable" and "cannot be reached" in str(gone.value)
    server.start()
    # The remote's own hook refuses the branch: a fault, not "someone moved it".
    hook = served / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(Fault) as refused:
        remote.land("main", new, old)
    assert refused.value.kind == "refused", refused.value
    assert git(served, "rev-parse", "main") == old
    # A server that accepts and never answers: the timeout, with its ssh or helper killed.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        git(host.repo.top, "remote", "add", "slow", f"git://127.0.0.1:{port}/project.git")
        with pytest.raises(Fault) as slow:
            Remote(host, "slow", 1, home(tmp_path)).fetch_branch("main")
    assert slow.value.kind == "timeout"


def test_the_persons_hooks_never_run(daemon: tuple[Daemon, Git, Path], tmp_path: Path) -> None:
    _, host, served = daemon
    ran = tmp_path / "pre-push-ran"
    hook = host.repo.git_dir / "hooks" / "pre-push"
    hook.write_text(f"#!/bin/sh\ntouch {ran}\n")
    hook.chmod(0o755)
    remote = Remote(host, "origin", 30, home(tmp_path))
    old = remote.fetch_branch("main")
    new = commit_file(host.repo.top, "a.txt", "1\n")
    assert remote.land("main", new, old)
    assert git(served, "rev-parse", "main") == new
    assert not ran.exists()


def test_smart_http_uses_the_persons_credential_helper(tmp_path: Path) -> None:
    seed = person(tmp_path / "seed")
    served = bare(tmp_path / "served", seed.repo.top)
    with SmartHttp(tmp_path / "served") as server:
        assert isinstance(server, SmartHttp)
        url = server.url("project.git")
        host = wired(tmp_path, url, served)
        assert "s3cret" not in identity(url.replace("://", "://team:s3cret@"))
        # No credential: refused, and said as such.
        with pytest.raises(Fault) as refused:
            Remote(host, "origin", 30, home(tmp_path)).fetch_branch("main")
        assert refused.value.kind == "auth", refused.value
        assert "credential" in str(refused.value)
        # The person's helper (git's store, in their home) has it.
        store = tmp_path / "credentials"
        store.write_text(f"http://{server.user}:{server.password}@127.0.0.1:{server.port}\n")
        env = home(tmp_path, f"[credential]\n\thelper = store --file={store}\n")
        remote = Remote(host, "origin", 30, env)
        old = remote.fetch_branch("main")
        assert remote.land("main", commit_file(host.repo.top, "a.txt", "1\n"), old)


def test_ssh_uses_the_persons_key_from_their_git_config(tmp_path: Path) -> None:
    seed = person(tmp_path / "seed")
    served = bare(tmp_path / "served", seed.repo.top)
    with Sshd(tmp_path / "served") as server:
        assert isinstance(server, Sshd)
        host = wired(tmp_path, server.url("project.git"), served)
        no_key = "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -i /nonexistent"
        without = home(tmp_path, f"[core]\n\tsshCommand = {no_key} -o IdentitiesOnly=yes\n")
        with pytest.raises(Fault) as refused:
            Remote(host, "origin", 30, without).fetch_branch("main")
        assert refused.value.kind == "auth", refused.value
        env = home(tmp_path, f"[core]\n\tsshCommand = {server.ssh_command}\n")
        remote = Remote(host, "origin", 30, env)
        old = remote.fetch_branch("main")
        assert remote.land("main", commit_file(host.repo.top, "a.txt", "1\n"), old)


def test_onto_is_read_as_git_names_branches() -> None:
    assert parse_onto("origin/main", ["origin"]) == ("origin", "main")
    assert parse_onto("origin/team/main", ["origin"]) == ("origin", "team/main")
    assert parse_onto("feature/x", ["origin"]) == (None, "feature/x")
    assert parse_onto("main", ["origin"]) == (None, "main")
    assert identity("https://bob:tok@example.com/team/p.git/") == "https://example.com/team/p"
    assert identity("git@example.com:team/p.git") == "example.com:team/p"
    assert identity("ssh://git@example.com:22/team/p") == "ssh://example.com:22/team/p"


def test_no_remote_of_that_name_is_refused_with_what_to_do(tmp_path: Path) -> None:
    host = person(tmp_path / "repo")
    with pytest.raises(Exception, match="git remote add origin URL"):
        Remote(host, "origin", 30, home(tmp_path))
