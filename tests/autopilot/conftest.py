"""What the autopilot tests share: a git repository, a state folder and a providers file
whose two providers (alpha, beta) run fake Claude Code workers, and ways to run the
autopilot and read what it did."""

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, agents, open_db, shared_warm

FAKE = ROOT / "wvo_mcp" / "autopilot" / "fake.py"
RUN_TIMEOUT_S = 240


def git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args]
    return subprocess.run(command, cwd=repo, check=True, capture_output=True, text=True).stdout


SHORT_TEMPS: list[Path] = []


def short_temp(name: str) -> Path:
    """A temp folder with a short name (a run's sockets are made in its TMPDIR, and a
    socket's path is 108 bytes at most), removed after the test (`_short_temps`)."""
    temp = Path(tempfile.mkdtemp(prefix=f"wvo-{name}-"))
    SHORT_TEMPS.append(temp)
    return temp


@pytest.fixture(autouse=True)
def _short_temps() -> Iterator[None]:
    yield
    while SHORT_TEMPS:
        shutil.rmtree(SHORT_TEMPS.pop(), ignore_errors=True)


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    return make_project(tmp_path)


def make_project(tmp_path: Path) -> dict[str, Path]:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("a project\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "start")
    wrapper = tmp_path / "bin" / "fake-claude"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -P "{FAKE}" "$@"\n')
    wrapper.chmod(0o755)
    providers = tmp_path / "providers.yaml"
    providers.write_text(
        "version: 1\nproviders:\n"
        + "".join(
            f"""  - name: {name}
    preference: {preference}
    max_concurrent: 2        # as many as its slots: routing sends the rest elsewhere
    tiers:
      - name: all
        model: {name}-model
        complexity: [1, 10]
        input_cost_per_1k: 0.001
        output_cost_per_1k: 0.002
    worker:
      kind: claude
      executable: {wrapper}
      max_workers: 2
      hang_seconds: 15  # a fake starting beside three others on 2 busy cores is silent a while
"""
            for preference, name in enumerate(("alpha", "beta"), start=1)
        )
    )
    return {"repo": repo, "state": tmp_path / "state", "providers": providers}


def env(project: dict[str, Path]) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(project["state"].parent),
        "WVO_STATE_ROOT": str(project["state"]),
        "WVO_WORKSPACE_ROOT": str(project["repo"]),
        "WVO_PROVIDERS_FILE": str(project["providers"]),
        "WVO_WIP_LIMIT": "4",
        "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": "0",
        "WVO_OTEL_ENABLED": "0",
        "WVO_RETRY_BASE_SECONDS": "0.2",
        **shared_warm(),  # the autopilot, as every command, forked by the test's warm process
    }


def autopilot(
    project: dict[str, Path], *args: str, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty", *args],
            cwd=ROOT,
            env=env(project) | extra_env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the autopilot did not finish: {exc.stdout!r} {exc.stderr!r}")


async def backlog(project: dict[str, Path], tasks: list[dict[str, object]], **extra: str) -> None:
    # A server in this process reads only its settings; PATH and HOME are the workers'.
    settings = {k: v for k, v in (env(project) | extra).items() if k.startswith("WVO_")}
    async with agents(project["state"], "planner", **settings) as team:
        await team["planner"].call("task_create", tasks=tasks)


def events(project: dict[str, Path], kind: str) -> list[tuple[str, str, str]]:
    with open_db(project["state"]) as db:
        rows = db.execute(
            "SELECT task_id, actor, coalesce(reason, '') FROM task_events WHERE kind = ? "
            "ORDER BY id",
            (kind,),
        ).fetchall()
    return [tuple(row) for row in rows]


def one_provider(
    name: str, tier: str, model: str, worker: dict[str, object], costs: tuple[float, float]
) -> str:
    """A providers file of one provider with one tier for every complexity, its worker
    `worker` (kind and executable first), one slot, two minutes before it counts as hung."""
    lines = "".join(f"      {key}: {value}\n" for key, value in worker.items())
    return f"""version: 1
providers:
  - name: {name}
    preference: 1
    tiers:
      - name: {tier}
        model: {model}
        complexity: [1, 10]
        input_cost_per_1k: {costs[0]}
        output_cost_per_1k: {costs[1]}
    worker:
{lines}      max_workers: 1
      hang_seconds: 120
"""


def claude_providers(executable: Path) -> str:
    """A providers file whose one provider's worker is the real Claude Code at `executable`."""
    worker = {"kind": "claude", "executable": executable}
    return one_provider("claude", "sonnet", "claude-sonnet-4-5", worker, (0.003, 0.015))


def codex_providers(executable: Path, model: str) -> str:
    """A providers file whose one provider's worker is the real Codex at `executable`,
    asking for `model` (its API and key come from the autopilot's environment)."""
    worker = {"kind": "codex", "executable": executable}
    return one_provider("codex", "stub", model, worker, (0.001, 0.002))
