#!/usr/bin/env python
"""From `pipx install` to the first task a real coding CLI claims, as a person with a
repository of their own goes: install the wheel built from this tree with pipx (into
throwaway folders), `wvo-mcp init` in a fresh repository, then the real Claude Code CLI
(pinned in tests/claude_code/) in that repository, its model a scripted Messages API on
127.0.0.1 that works the loop (plan_next, claim_task, plan_update).

    python -m scripts.bench.adopt                  # 3 rounds, pip's cache as it is
    python -m scripts.bench.adopt --cold           # pip downloads every dependency again
    python -m scripts.bench.adopt --rounds 5 --json out.json

Each round reports the install, init, and Claude Code's start to the model seeing the claim
(its process start, the MCP server's start from .mcp.json, two model turns); the wheel is
built once, before the clock starts.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scripts.bench.lib import ROOT
from tests.integration.test_claude_code import (
    CLAUDE,
    ScriptedModel,
    claude_env,
    serve_model,
)

BIN = Path(sys.executable).parent
TIMEOUT_S = 900


class Stopwatch(ScriptedModel):
    """The scripted model, noting when it is first shown a claim's answer."""

    claimed_at: float | None = None

    def reply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        if self.claimed_at is None and '"lease_token"' in json.dumps(body.get("messages")):
            self.claimed_at = time.monotonic()
        return super().reply(body)


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=TIMEOUT_S,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done


def build_wheel(out: Path) -> Path:
    run([str(BIN / "uv"), "build", "-q", "--wheel", "-o", str(out), str(ROOT)], ROOT,
        {**os.environ, "UV_PYTHON": sys.executable, "UV_PYTHON_DOWNLOADS": "never"})  # fmt: skip
    return next(out.glob("wvo_mcp-*.whl"))


def one_round(wheel: Path, root: Path, cold: bool) -> dict[str, float]:
    home, repo, bin_dir = root / "home", root / "project", root / "bin"
    home.mkdir()
    repo.mkdir()
    run(["git", "init", "-q", "-b", "main"], repo, dict(os.environ))
    pipx_env = {
        **os.environ,
        "PIPX_HOME": str(root / "pipx"),
        "PIPX_BIN_DIR": str(bin_dir),
        "PIPX_MAN_DIR": str(root / "man"),
        **({"PIP_NO_CACHE_DIR": "1"} if cold else {}),
    }
    node = os.path.dirname(shutil.which("node") or "/usr/bin/node")
    person = {"PATH": f"{bin_dir}:{CLAUDE.parent}:{node}:/usr/bin:/bin", "HOME": str(home)}
    model = Stopwatch()
    api = serve_model(model)
    try:
        start = time.monotonic()
        run([str(BIN / "pipx"), "install", "--python", sys.executable, str(wheel)], root,
            pipx_env)  # fmt: skip
        installed = time.monotonic()
        run([str(bin_dir / "wvo-mcp"), "init"], repo, person)
        wired = time.monotonic()
        run(
            [str(CLAUDE), "-p", "Take one task from wvo and finish it.",
             "--allowedTools", "mcp__wvo__*", "--output-format", "stream-json", "--verbose"],
            repo,
            claude_env(api, home, person["PATH"]),
        )  # fmt: skip
    finally:
        api.shutdown()
        api.server_close()
    if model.claimed_at is None:
        raise SystemExit("Claude Code finished without the model seeing a claim")
    return {
        "install_s": installed - start,
        "init_s": wired - installed,
        "claude_to_claim_s": model.claimed_at - wired,
        "total_s": model.claimed_at - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="no pip cache: download it all")
    parser.add_argument("--json", help="write the rounds and their medians here")
    args = parser.parse_args()
    if not CLAUDE.exists():
        raise SystemExit("the Claude Code CLI is not installed (scripts/setup installs it)")
    with tempfile.TemporaryDirectory(prefix="wvo-bench-adopt-") as scratch:
        wheel = build_wheel(Path(scratch) / "dist")
        rounds = []
        for n in range(args.rounds):
            root = Path(scratch) / f"round-{n}"
            root.mkdir()
            rounds.append(one_round(wheel, root, args.cold))
            print(" ".join(f"{k} {v:.1f}" for k, v in rounds[-1].items()), file=sys.stderr)
    medians = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(f"{'cold' if args.cold else 'warm'} pip cache, median of {len(rounds)} rounds:")
    for key, value in medians.items():
        print(f"  {key:<18} {value:6.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"rounds": rounds, "median": medians}, indent=2))


if __name__ == "__main__":
    main()
