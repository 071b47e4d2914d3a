"""The project's toolchain, shown read-only to checks and sandboxed commands: a command can
neither write into it nor use a link in it, or a link swapped in for it, to read the host."""

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import autopilot, backlog, git
from tests.autopilot.test_toolchain import venv_project
from wvo_mcp.config import Settings
from wvo_mcp.errors import VerificationFailed
from wvo_mcp.git import trees
from wvo_mcp.orchestrator import Orchestrator

pytestmark = pytest.mark.anyio
SECRET = "host-secret-7d1e"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_repo(tmp_path: Path) -> Path:
    """A repository with an ignored .venv holding a link to a host file outside it."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitignore").write_text(".venv/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "start")
    base = Path(sys.base_prefix) / "bin" / "python3"
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(repo / ".venv")], check=True)
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET)
    (repo / ".venv" / "leak").symlink_to(secret)
    return repo


@pytest.fixture
async def project(tmp_path: Path) -> AsyncIterator[tuple[Orchestrator, Path, Path]]:
    repo = make_repo(tmp_path)
    settings = Settings.from_env(
        {"WVO_STATE_ROOT": str(tmp_path / "state"), "WVO_WORKSPACE_ROOT": str(repo),
         "WVO_OTEL_ENABLED": "0"}
    )  # fmt: skip
    orchestrator = await Orchestrator.open(settings)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    assert orchestrator.git is not None
    trees.materialize(orchestrator.git, orchestrator.git.head(), checkout)
    try:
        yield orchestrator, repo, checkout
    finally:
        await orchestrator.close()


def listing(folder: Path) -> dict[str, bytes | str]:
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = "-> " + os.readlink(path)
        elif path.is_file():
            found[key] = path.read_bytes()
    return found


async def test_a_check_cannot_write_into_the_toolchain(
    project: tuple[Orchestrator, Path, Path],
) -> None:
    orchestrator, repo, checkout = project
    before = listing(repo / ".venv")
    for attack in [
        "touch .venv/planted",
        "echo 'import os' > .venv/bin/activate",
        f"rm -f {repo}/.venv/pyvenv.cfg",
        "ln -s /tmp .venv/bin/link",
        f"touch {repo}/.venv/lib/planted",
    ]:
        with pytest.raises(VerificationFailed, match="Read-only file system"):
            await orchestrator.check(attack, checkout)
    # It is there to run, at its place in the checkout and at its own path.
    ran = await orchestrator.check(".venv/bin/python -c 'print(1)'", checkout)
    assert ran.stdout_tail.strip() == "1"
    ran = await orchestrator.check(f"{repo}/.venv/bin/python -c 'print(2)'", checkout)
    assert ran.stdout_tail.strip() == "2"
    assert listing(repo / ".venv") == before


async def test_a_link_in_the_toolchain_resolves_inside_the_sandbox(
    project: tuple[Orchestrator, Path, Path],
) -> None:
    orchestrator, repo, checkout = project
    for path in (".venv/leak", f"{repo}/.venv/leak"):
        with pytest.raises(VerificationFailed) as refused:
            await orchestrator.check(f"cat {path}", checkout)
        assert "No such file" in str(refused.value) and SECRET not in str(refused.value)


async def test_a_toolchain_swapped_for_a_link_is_not_shown(
    project: tuple[Orchestrator, Path, Path],
) -> None:
    # A sandboxed command in the person's workspace replaces .venv with a link to a host
    # folder: that folder is never mounted for the next check.
    orchestrator, repo, checkout = project
    secret_dir = repo.parent / "outside"
    shutil.rmtree(repo / ".venv")
    (repo / ".venv").symlink_to(secret_dir, target_is_directory=True)
    assert orchestrator.toolchain().folders == ()
    with pytest.raises(VerificationFailed) as refused:
        await orchestrator.check(f"cat .venv/secret.txt {repo}/.venv/secret.txt", checkout)
    assert SECRET not in str(refused.value)


def test_a_worker_can_neither_write_into_the_toolchain_nor_read_through_it(
    tmp_path: Path,
) -> None:
    project = venv_project(tmp_path)
    repo = project["repo"]
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET)
    (repo / ".venv" / "leak").symlink_to(secret)
    before = listing(repo / ".venv")
    attacks = [
        "touch .venv/planted",
        f"echo evil > {repo}/.venv/bin/python3",
        "rm -rf .venv/lib",
        "cat .venv/leak",
        f"cat {repo}/.venv/leak",
    ]
    anyio.run(backlog, project, [{"id": "A", "title": "attack",
                                   "metadata": {"fake_run": attacks}}])  # fmt: skip
    done = autopilot(project, "--merge", "merge", "--onto", "integration", "--check", "true")
    assert done.returncode == 0, done.stdout + done.stderr
    ran = [git(repo, "show", f"integration:ran-{n}.txt") for n in range(len(attacks))]
    for said in ran[:3]:
        assert "Read-only file system" in said and not said.endswith("exit 0\n"), said
    for said in ran[3:]:
        assert "No such file" in said and SECRET not in said, said
    assert listing(repo / ".venv") == before and secret.read_text() == SECRET


async def test_a_checks_cache_is_its_own_and_never_the_persons(tmp_path: Path) -> None:
    """node_modules is each sandbox's own view: what the person has in it, read-only; its
    .cache, anything new in it, and CACHE_DIR (where find-cache-dir tools write), the
    sandbox's own: gone with it, never in the person's copy, never seen by the next check."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitignore").write_text("node_modules/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "start")
    cache = repo / "node_modules" / ".cache"
    cache.mkdir(parents=True)
    (cache / "persons.txt").write_text("the person's own cache\n")
    (repo / "node_modules" / "lib.js").write_text("module.exports = 1\n")
    settings = Settings.from_env(
        {"WVO_STATE_ROOT": str(tmp_path / "state"), "WVO_WORKSPACE_ROOT": str(repo),
         "WVO_OTEL_ENABLED": "0"}
    )  # fmt: skip
    orchestrator = await Orchestrator.open(settings)
    try:
        assert orchestrator.git is not None
        before = listing(repo / "node_modules")
        checkouts = []
        for n in (1, 2):
            checkout = tmp_path / f"checkout{n}"
            checkout.mkdir()
            trees.materialize(orchestrator.git, orchestrator.git.head(), checkout)
            checkouts.append(checkout)
        first = await orchestrator.check(
            "ls node_modules/.cache; mkdir -p node_modules/.cache/ava && echo one > "
            'node_modules/.cache/ava/x && mkdir -p "$CACHE_DIR/nyc" && echo one > '
            '"$CACHE_DIR/nyc/y" && echo "wrote to $CACHE_DIR"',
            checkouts[0],
        )
        assert "wrote to /tmp/.cache" in first.stdout_tail
        assert "persons.txt" not in first.stdout_tail  # private: the person's is not shown
        second = await orchestrator.check(
            'ls -a node_modules/.cache "$CACHE_DIR" 2>&1; echo done', checkouts[1]
        )
        assert "ava" not in second.stdout_tail and "nyc" not in second.stdout_tail
        # Anything new in node_modules is the sandbox's own; what the person has stays
        # read-only; no descriptor of the person's folder reaches the command.
        planted = await orchestrator.check(
            "touch node_modules/planted && ls node_modules; ls /proc/self/fd | tr '\\n' ' '",
            checkouts[1],
        )
        assert "planted" in planted.stdout_tail and "lib.js" in planted.stdout_tail
        assert planted.stdout_tail.rstrip().endswith("0 1 2 3"), planted.stdout_tail
        with pytest.raises(VerificationFailed, match="Read-only file system"):
            await orchestrator.check("echo 2 >> node_modules/lib.js", checkouts[1])
        assert listing(repo / "node_modules") == before
    finally:
        await orchestrator.close()


async def test_python_caches_are_written_beside_the_code_and_the_venv_stays_as_it_was(
    project: tuple[Orchestrator, Path, Path],
) -> None:
    """A Python project's tools write their caches in the check's own checkout (pytest's
    .pytest_cache, __pycache__ from compileall); the venv's own stays unwritten."""
    orchestrator, repo, checkout = project
    (checkout / "pkg").mkdir()
    (checkout / "pkg" / "mod.py").write_text("VALUE = 1\n")
    before = listing(repo / ".venv")
    ran = await orchestrator.check(
        ".venv/bin/python -m compileall -q pkg && mkdir -p .pytest_cache/v && "
        "echo x > .pytest_cache/v/lastfailed && .venv/bin/python -c 'import pkg.mod' && "
        "ls pkg/__pycache__ .pytest_cache/v",
        checkout,
    )
    assert "mod." in ran.stdout_tail and "lastfailed" in ran.stdout_tail, ran.stdout_tail
    assert listing(repo / ".venv") == before
