"""wvo-mcp installed like a tool, from the wheel built from this tree, the two ways a person
does (`uv tool install`, `pipx install`), each into throwaway folders: the `wvo-mcp` command
they put on PATH wires a repository, serves MCP from the files `init` wrote (SQL,
directives and starter roadmap from the wheel), and runs the demo. Dependencies come from
the package index, as for a person."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.conftest import ROOT
from tests.gitwork import git

BIN = Path(sys.executable).parent
INSTALL_TIMEOUT_S = 600
RUN_TIMEOUT_S = 300

pytestmark = pytest.mark.anyio


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=INSTALL_TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done


def person_env(home: Path, bin_dir: Path) -> dict[str, str]:
    """A person's shell after the install: the tool's bin folder on PATH, nothing of ours."""
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home), "WVO_OTEL_ENABLED": "0"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `uv build` makes from a clean clone of this tree (sdist first, then the
    wheel from the sdist: the route an upload to an index takes)."""
    out = tmp_path_factory.mktemp("dist")
    clone = out / "src"
    run(["git", "clone", "-q", str(ROOT), str(clone)], out, dict(os.environ))
    # The tree as it is now, uncommitted changes and new files included.
    listed = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], ROOT, dict(os.environ))
    for name in filter(None, listed.stdout.split("\0")):
        source, target = ROOT / name, clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.unlink(missing_ok=True)
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            target.write_bytes(source.read_bytes())
    run([str(BIN / "uv"), "build", "-q", "-o", str(out), str(clone)], out, _uv_env(out))
    (found,) = out.glob("wvo_mcp-*.whl")
    return found


def _uv_env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "UV_TOOL_DIR": str(root / "uv-tools"),
        "UV_TOOL_BIN_DIR": str(root / "uv-bin"),
        "UV_PYTHON": sys.executable,
        "UV_PYTHON_DOWNLOADS": "never",
    }


@pytest.fixture(scope="module")
def uv_tool(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("uv")
    run([str(BIN / "uv"), "tool", "install", "-q", str(wheel)], root, _uv_env(root))
    yield root / "uv-bin"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# A person's project\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "start")
    return repo


async def test_uv_tool_install_wires_a_repository_and_serves_from_it(
    uv_tool: Path, project: Path
) -> None:
    env = person_env(project.parent / "home", uv_tool)
    command = uv_tool / "wvo-mcp"
    assert "wvo-mcp 0.1.0" in run([str(command), "--version"], project, env).stdout
    run([str(command), "init"], project, env)
    entry = json.loads((project / ".mcp.json").read_text())["mcpServers"]["wvo"]
    # The command from PATH, as a teammate's client runs it: no path of this machine's.
    assert entry["command"] == "wvo-mcp" and entry["env"] == {"WVO_TOOLS": "worker"}

    params = StdioServerParameters(
        command=entry["command"], args=entry["args"], env={**env, **entry["env"]}, cwd=project
    )
    async with Client(params, read_timeout_seconds=60) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert "claim_task" in tools and "task_create" not in tools  # the worker profile
        claim = (await client.call_tool("claim_task", {})).structured_content
        assert claim is not None and claim["task"]["id"] == "wvo-start-build"
        # The work loop directive, from the wheel's data files.
        loop = await client.get_prompt("work_loop", {})
        assert "plan_next" in str(loop.messages[0].content)

    # The dashboard's files came with the wheel too.
    python = next((uv_tool.parent / "uv-tools").glob("wvo-mcp/bin/python"))
    static = run(
        [str(python), "-c", "from importlib import resources; print(sorted(p.name for p in "
         "(resources.files('wvo_mcp') / 'edge' / 'dashboard' / 'static').iterdir()))"],
        project, env,
    )  # fmt: skip
    assert "index.html" in static.stdout and "app.js" in static.stdout


def test_uv_tool_runs_the_demo_anywhere(uv_tool: Path, tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    env = person_env(tmp_path / "home", uv_tool)
    done = subprocess.run(
        [str(uv_tool / "wvo-mcp"), "demo", "--agents", "2"], cwd=tmp_path, env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "summary: 29/29" in done.stdout and "tasks done more than once: 0" in done.stdout


def test_pipx_install_gives_the_same_command(wheel: Path, project: Path, tmp_path: Path) -> None:
    pipx = {
        **os.environ,
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "pipx-bin"),
        "PIPX_MAN_DIR": str(tmp_path / "pipx-man"),
    }
    run([str(BIN / "pipx"), "install", "--python", sys.executable, str(wheel)], tmp_path, pipx)
    command = tmp_path / "pipx-bin" / "wvo-mcp"
    env = person_env(project.parent / "home", command.parent)
    run([str(command), "init"], project, env)
    assert json.loads((project / ".mcp.json").read_text())["mcpServers"]["wvo"]["command"] == (
        "wvo-mcp"  # on PATH: the tool's, found there by a client like any command
    )
    status = run([str(command), "status"], project, env)
    assert "ready 2" in status.stdout  # the starter tasks, in the state init recorded
