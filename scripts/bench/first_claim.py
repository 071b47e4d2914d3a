#!/usr/bin/env python
"""Time to the first claim: install the wheel built from this tree as a tool (pipx, or
`uv tool install`) into throwaway folders, `wvo-mcp init` in a fresh git repository, then
an MCP client (the SDK's Client over stdio) started exactly as the `.mcp.json` init wrote
says (command, args, env), until its first `claim_task` is granted. Then `wvo-mcp doctor`
in the same repository, timed on its own (after the claim, so the total is one stretch of
wall-clock time a person waits).

    python -m scripts.bench.first_claim                        # 5 rounds, pipx, warm cache
    python -m scripts.bench.first_claim --installer pipx-pip   # pipx --backend pip
    python -m scripts.bench.first_claim --installer uv         # uv tool install
    python -m scripts.bench.first_claim --cold                 # no package cache at all
    python -m scripts.bench.first_claim --wheel dist/wvo_mcp-0.1.0-py3-none-any.whl
    python -m scripts.bench.first_claim --json runs.jsonl      # appends this run as a line

The wheel is built once (`uv build`), before any clock. "Warm" means an untimed install
ran first, so the installer's cache holds every dependency; "cold" turns the caches off
(PIP_NO_CACHE_DIR, UV_NO_CACHE). Either way the packages come from whatever index the
installer is configured with: on a machine whose index is a local mirror, cold still
downloads nothing over a network. The pinned `claude` and `codex` (tests/claude_code/) are
on PATH when present, as on a person's machine, so init and doctor read them.
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

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from scripts.bench.adopt import BIN, TIMEOUT_S, build_wheel, run
from scripts.bench.lib import ROOT

PINNED = ROOT / "tests" / "claude_code" / "node_modules" / ".bin"
CLIENT_TIMEOUT_S = 120
STEPS = ("install", "init", "serve_to_tools", "claim", "total", "doctor")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def installer(kind: str, wheel: Path, root: Path, cold: bool) -> tuple[list[str], dict[str, str]]:
    """The install command and its environment, everything it writes under `root`; the
    package cache is the user's own (warm or not) unless `cold`."""
    bin_dir = str(root / "bin")
    no_cache = {"PIP_NO_CACHE_DIR": "1", "UV_NO_CACHE": "1"} if cold else {}
    if kind.startswith("pipx"):
        env = {
            **os.environ,
            "PIPX_HOME": str(root / "pipx"),
            "PIPX_BIN_DIR": bin_dir,
            "PIPX_MAN_DIR": str(root / "man"),
            **no_cache,
        }
        # pipx's own default backend is uv when it finds uv, else pip: pipx-pip asks for pip.
        backend = ["--backend", "pip"] if kind == "pipx-pip" else []
        argv = [str(BIN / "pipx"), "install", *backend, "--python", sys.executable, str(wheel)]
        return argv, env
    env = {
        **os.environ,
        "UV_TOOL_DIR": str(root / "uv-tools"),
        "UV_TOOL_BIN_DIR": bin_dir,
        "UV_PYTHON": sys.executable,
        "UV_PYTHON_DOWNLOADS": "never",
        **no_cache,
    }
    return [str(BIN / "uv"), "tool", "install", "-q", str(wheel)], env


def person(root: Path) -> dict[str, str]:
    """A person's shell after the install: the tool's folder and their CLIs on PATH."""
    node = os.path.dirname(shutil.which("node") or "/usr/bin/node")
    extra = f"{PINNED}:{node}:" if PINNED.exists() else ""
    return {
        "PATH": f"{root / 'bin'}:{extra}/usr/bin:/bin",
        "HOME": str(root / "home"),
        "WVO_OTEL_ENABLED": "0",
        "WVO_WARM_START": "0",  # a first start is cold; its warm process would outlive the run
    }


async def first_claim(repo: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Start the server as .mcp.json says; seconds to tools/list answered, then to the first
    granted claim, and the task claimed."""
    entry = json.loads((repo / ".mcp.json").read_text())["mcpServers"]["wvo"]
    params = StdioServerParameters(
        command=entry["command"],
        args=[str(a) for a in entry.get("args") or []],
        env={**env, **{k: str(v) for k, v in (entry.get("env") or {}).items()}},
        cwd=repo,
    )
    with anyio.fail_after(CLIENT_TIMEOUT_S):
        start = time.monotonic()
        async with Client(params, read_timeout_seconds=60) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            listed = time.monotonic()
            if "claim_task" not in tools:
                raise SystemExit(f"the server offers no claim_task: {sorted(tools)}")
            claim = (await client.call_tool("claim_task", {})).structured_content
            claimed = time.monotonic()
    if not claim or not claim.get("claimed"):
        raise SystemExit(f"the first claim was refused: {claim}")
    return listed - start, claimed - listed, claim["task"]["id"]


def one_round(kind: str, wheel: Path, root: Path, cold: bool) -> dict[str, Any]:
    repo = root / "project"
    (root / "home").mkdir(parents=True)
    repo.mkdir()
    env = person(root)
    run(["git", "init", "-q", "-b", "main"], repo, {**os.environ, **env})
    (repo / "README.md").write_text("# A person's project\n")
    run(["git", "add", "-A"], repo, {**os.environ, **env})
    run(["git", "-c", "user.name=p", "-c", "user.email=p@example.invalid", "commit", "-q",
         "-m", "start"], repo, {**os.environ, **env})  # fmt: skip
    argv, install_env = installer(kind, wheel, root, cold)
    command = str(root / "bin" / "wvo-mcp")

    start = time.monotonic()
    run(argv, root, install_env)
    installed = time.monotonic()
    run([command, "init"], repo, env)
    wired = time.monotonic()
    to_tools, to_claim, task = anyio.run(first_claim, repo, env)
    total = time.monotonic() - start

    doctor_start = time.monotonic()
    doctor = subprocess.run(
        [command, "doctor", "--json"], cwd=repo, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    doctor_s = time.monotonic() - doctor_start
    try:
        failed = [c["name"] for c in json.loads(doctor.stdout) if not c["ok"]]
    except ValueError:
        said = f"{doctor.stdout[-1000:]}{doctor.stderr[-1000:]}"
        raise SystemExit(f"doctor printed no JSON: {said}") from None
    venv = root / "pipx" / "venvs" / "wvo-mcp" / "pyvenv.cfg"
    return {
        "backend": "uv" if not venv.exists() or "\nuv = " in venv.read_text() else "pip",
        "install": installed - start,
        "init": wired - installed,
        "serve_to_tools": to_tools,
        "claim": to_claim,
        "total": total,
        "doctor": doctor_s,
        "task": task,
        "doctor_failed": failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--installer",
        choices=["pipx", "pipx-pip", "uv"],
        default="pipx",
        help="pipx with its default backend (uv when it finds uv, else pip), pipx with pip, "
        "or `uv tool install`",
    )
    parser.add_argument("--cold", action="store_true", help="no package cache: fetch it all")
    parser.add_argument("--wheel", type=Path, help="a built wheel (default: build this tree)")
    parser.add_argument("--json", type=Path, help="append this run, as one JSON line, here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wvo-bench-first-claim-") as scratch:
        wheel = args.wheel.resolve() if args.wheel else build_wheel(Path(scratch) / "dist")
        if not args.cold:
            log("warming the cache: one untimed install")
            argv, env = installer(args.installer, wheel, Path(scratch) / "warm-up", False)
            run(argv, Path(scratch), env)
        rounds = []
        for n in range(args.rounds):
            found = one_round(args.installer, wheel, Path(scratch) / f"round-{n}", args.cold)
            rounds.append(found)
            log(f"round {n + 1}: " + " ".join(f"{k} {found[k]:.2f}" for k in STEPS)
                + (f"; doctor failed: {', '.join(found['doctor_failed'])}"
                   if found["doctor_failed"] else ""))  # fmt: skip
    medians = {k: statistics.median(r[k] for r in rounds) for k in STEPS}
    cache = "no cache" if args.cold else "warm cache"
    backend = rounds[0]["backend"]
    print(f"{args.installer} ({backend} installs), {cache}, median of {len(rounds)} rounds (s):")
    for key in STEPS:
        spread = f"{min(r[key] for r in rounds):.2f}-{max(r[key] for r in rounds):.2f}"
        print(f"  {key:<15} {medians[key]:6.2f}   ({spread})")
    if args.json:
        record = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "installer": args.installer,
            "backend": backend,
            "cache": cache,
            "wheel": wheel.name,
            "cpus": os.cpu_count(),
            "rounds": rounds,
            "median": medians,
        }
        with args.json.open("a") as out:
            out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
