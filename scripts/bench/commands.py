#!/usr/bin/env python
"""A command's cost, cold and with warm start (WVO_WARM_START=1, the state folder's warm
process already running): the CPU of the process a person starts and, warm, of the process
the warm process forked for it (the warm process's reaped children, /proc/PID/stat), and the
wall time from start to exit. Commands: `status`, `tokens list`, and an autopilot run with
nothing to do (`autopilot --until-empty`).

    python -m scripts.bench.commands                 # 10 samples of each, alternating
    python -m scripts.bench.commands --samples 20
"""

import argparse
import os
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench.lib import BenchError, log
from scripts.bench.startup import warm_listening

COMMANDS = (("status",), ("tokens", "list"), ("autopilot", "--until-empty"))
MODES = ("cold", "warm")
TICKS = os.sysconf("SC_CLK_TCK")


def reaped_cpu(pid: int) -> float:
    """The CPU of process `pid`'s reaped children (cutime + cstime), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / TICKS


def own_children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def sample(state_root: Path, words: tuple[str, ...], mode: str, warm: int) -> dict[str, float]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(state_root.parent),
        "WVO_STATE_ROOT": str(state_root),
        "WVO_OTEL_ENABLED": "0",
        "WVO_WARM_SHARED": "0",
        "WVO_WARM_START": "1" if mode == "warm" else "0",
        "WVO_PROVIDERS_FILE": str(state_root.parent / "providers.yaml"),
    }
    mine, forked = own_children_cpu(), reaped_cpu(warm)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-P", "-m", "wvo_mcp", *words],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"{' '.join(words)} ({mode}): {done.stderr.decode()[-500:]}")
    started_cpu = own_children_cpu() - mine
    forked_cpu = reaped_cpu(warm) - forked
    if mode == "cold" and forked_cpu > 0:
        raise BenchError(f"{' '.join(words)}: the warm process forked for a cold run")
    return {"wall_s": took, "cpu_s": started_cpu + forked_cpu, "started_cpu_s": started_cpu}


def warm_pid(state_root: Path) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(state_root / "run" / "warm.sock"))
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args()
    load_before = os.getloadavg()
    results: dict[tuple[tuple[str, ...], str], list[dict[str, float]]] = {
        (words, mode): [] for words in COMMANDS for mode in MODES
    }
    with tempfile.TemporaryDirectory(prefix="wvo-bench-commands-") as scratch:
        state_root = Path(scratch) / "state"
        # One provider whose worker is this Python: the autopilot starts, finds nothing to
        # do and ends.
        (Path(scratch) / "providers.yaml").write_text(
            "version: 1\nproviders:\n  - name: p\n    preference: 1\n    tiers:\n"
            "      - name: low\n        model: m\n        complexity: [1, 10]\n"
            "        input_cost_per_1k: 0.001\n        output_cost_per_1k: 0.002\n"
            f"    worker:\n      kind: command\n      command: [{sys.executable}, '-c', '']\n"
            "      max_workers: 1\n"
        )
        env = {**os.environ, "WVO_STATE_ROOT": str(state_root), "WVO_WARM_START": "1",
               "WVO_WARM_SHARED": "0"}  # fmt: skip
        subprocess.run([sys.executable, "-P", "-m", "wvo_mcp", "status"], env=env,
                       capture_output=True, check=True)  # fmt: skip
        warm_listening(state_root)
        warm = warm_pid(state_root)
        try:
            for n in range(args.samples):
                for words in COMMANDS:
                    for mode in MODES if n % 2 == 0 else reversed(MODES):
                        results[(words, mode)].append(sample(state_root, words, mode, warm))
                log(f"sample {n + 1} of {args.samples}")
        finally:
            os.kill(warm, signal.SIGTERM)
    load_after = os.getloadavg()
    print(f"median of {args.samples} samples (load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after):")  # fmt: skip
    print("| command | cold: CPU | warm: CPU (the relay's) | cold: wall | warm: wall |")
    print("|---|---|---|---|---|")
    for words in COMMANDS:
        cold, hot = results[(words, "cold")], results[(words, "warm")]

        def median(rows: list[dict[str, float]], key: str) -> float:
            return statistics.median(row[key] for row in rows)

        print(
            f"| `{' '.join(words)}` | {median(cold, 'cpu_s'):.3f} s | {median(hot, 'cpu_s'):.3f}"
            f" s ({median(hot, 'started_cpu_s'):.3f}) | {median(cold, 'wall_s'):.3f} s | "
            f"{median(hot, 'wall_s'):.3f} s |"
        )


if __name__ == "__main__":
    main()
