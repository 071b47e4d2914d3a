"""The project an autopilot benchmark works on (tests/autopilot/conftest.py's): a git
repository, a providers file whose provider runs the fake Claude Code worker, the backlog,
and the autopilot's environment. Shared by autopilot.py, merge_queue.py and tenancy.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio

from scripts.bench.lib import ROOT
from wvo_mcp.config import Settings
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator

FAKE = ROOT / "wvo_mcp" / "autopilot" / "fake.py"  # the fake Claude Code worker
Tier = tuple[str, str, float, float]  # name, model, input and output cost per 1k tokens
ONE_TIER: Sequence[Tier] = (("all", "alpha-model", 0.001, 0.002),)


def git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=b", "-c", "user.email=b@localhost", *args]
    return subprocess.run(command, cwd=repo, check=True, capture_output=True, text=True).stdout


def repository(repo: Path, files: dict[str, str], message: str) -> Path:
    """A new repository at `repo` whose main holds `files` (name -> text) in one commit."""
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return repo


def fake_worker(path: Path) -> Path:
    """An executable at `path` that runs the fake Claude Code worker with this Python."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -P "{FAKE}" "$@"\n')
    path.chmod(0o755)
    return path


def providers_file(
    path: Path,
    provider: str | Mapping[str, int],
    workers: int,
    executable: Path,
    tiers: Sequence[Tier] = ONE_TIER,
    hang_seconds: int | None = None,
) -> Path:
    """A providers file with one provider of `workers` claude-kind workers run by
    `executable` (or, `provider` a mapping, each named provider with its count of them),
    each tier taking every complexity."""
    counts = {provider: workers} if isinstance(provider, str) else dict(provider)
    lines = ["version: 1", "providers:"]
    for preference, (named, count) in enumerate(counts.items(), 1):
        lines += [
            f"  - name: {named}",
            f"    preference: {preference}",
            f"    max_concurrent: {count}",
            "    tiers:",
        ]
        for name, model, input_cost, output_cost in tiers:
            lines += [
                f"      - name: {name}",
                f"        model: {model}",
                "        complexity: [1, 10]",
                f"        input_cost_per_1k: {input_cost}",
                f"        output_cost_per_1k: {output_cost}",
            ]
        lines += [
            "    worker:",
            "      kind: claude",
            f"      executable: {executable}",
            f"      max_workers: {count}",
        ]
        if hang_seconds is not None:
            lines.append(f"      hang_seconds: {hang_seconds}")
    path.write_text("\n".join(lines) + "\n")
    return path


def create_tasks(state: Path, specs: list[TaskSpec]) -> None:
    """The backlog, written into the state folder `state` by wvo_mcp itself."""

    async def create() -> None:
        orchestrator = await Orchestrator.open(Settings(state_root=state))
        try:
            await orchestrator.create_tasks(specs, actor="bench")
        finally:
            await orchestrator.close()

    anyio.run(create)


def autopilot_env(
    work: Path, state: Path, repo: Path, providers: Path, wip_limit: int
) -> dict[str, str]:
    """The autopilot's environment: HOME in `work`, no health checks, no telemetry."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "WVO_STATE_ROOT": str(state),
        "WVO_WORKSPACE_ROOT": str(repo),
        "WVO_PROVIDERS_FILE": str(providers),
        "WVO_WIP_LIMIT": str(wip_limit),
        "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": "0",
        "WVO_OTEL_ENABLED": "0",
    }
