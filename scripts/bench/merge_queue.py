#!/usr/bin/env python
"""What the merge queue does with a fleet's work: how fast it lands and how long work waits
in it with each batch size and number of test slots, what the conflict-avoidance check
saves, and the CPU the queue costs.

    python -m scripts.bench.merge_queue --quick            # smoke run, ~2 minutes
    python -m scripts.bench.merge_queue --json out.json    # full run, ~20 minutes (quiet, 2 cores)
    python -m scripts.bench.merge_queue --only avoidance --repeats 5

Every run is a real `wvo-mcp autopilot --until-empty --merge merge --onto integration
--check "sh check.sh TOKEN"` (or `--merge leave`) on a fresh repository and database, with
the fake Claude Code worker (wvo_mcp/autopilot/fake.py) in its sandbox, WORKERS slots of
one provider (tests/autopilot/conftest.py's providers file, hang_seconds 120), and a
backlog of TASKS tasks. The project's check (check.sh) stands in for a test suite: about a
second of real work on one core (the tree's files and generated data through gzip and
sha256sum, no sleep), then its one test: no port claimed twice. As in
tests/autopilot/test_merge_queue.py's fleet(), some pairs of tasks claim the same port (one
pair in five here; each alone passes the check, together they fail it, and the one that
lands second comes back, writes a fix and lands).

- `throughput`: that backlog (no shared files) with --batch 1, 4 and 8 and --test-slots 1
  and 2: landed changes per hour of the run's wall time, queue wait p50 / p95 (each landed
  entry's landing_entries.queued_at -> finished_at, the autopilot's own figure), checks run
  per landed change and returns per landed change.
- `avoidance`: the same backlog plus a quarter of the tasks in pairs that append to one
  file (declared in metadata.files), with and without --no-conflict-avoidance (default
  batch and slots): returns per landed change (conflicts, failed checks) and wall time.
- `cpu`: a backlog with nothing that conflicts or fails, --merge merge against --merge
  leave (each submission verified with the same check on its own commit, then done on its
  branch): the autopilot process's own CPU (/proc/<pid>/stat, its last reading) and all of
  it with everything it ran (getrusage RUSAGE_CHILDREN of this script, a child subreaper, so
  the sandboxes' inits that bwrap leaves unwaited are counted) per landed change, and that
  less the checks (their count times one check's CPU alone).

Checks are counted as they run: every 100 ms this script lists the processes whose command
line is `sh check.sh TOKEN` (TOKEN is this script's own), so each check (a second or more)
is seen. Configurations run interleaved (repeat 1 of each, then repeat 2, ...), each table
gives medians over the repeats, and says how busy other work kept the machine meanwhile.
The tables go to stdout, progress to stderr; the exit code is non-zero only when a
measurement could not be taken.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from scripts.bench import lib, project
from scripts.bench.lib import ROOT, BenchError, Report, log, machine_busy, proc_cpu_seconds
from scripts.bench.subreaper import SPAWNED, become_subreaper, reap_adopted
from wvo_mcp.models import TaskSpec
from wvo_mcp.queue_figures import percentile
from wvo_mcp.sandbox import bwrap

CPUS = os.cpu_count() or 1
TARGET = "integration"
TOKEN = f"wvo-bench-{os.getpid()}"  # in every check's command line: ours are counted
CHECK = f"sh check.sh {TOKEN}"
CHECK_WORK = 3_000_000  # lines of `seq` through gzip: about a second of CPU
CHECK_SH = """#!/bin/sh
# The project's check, standing in for a test suite: about a second of real work on one
# core, then its one test: no port claimed twice (each claim alone passes).
set -e
{ find . -type f -name '*.txt' | sort | xargs -r cat; seq 1 {work}; } | gzip -6 | sha256sum
dups=$(cat claims/*.txt 2>/dev/null | sort | uniq -d)
if [ -n "$dups" ]; then echo "claimed twice: $dups"; exit 1; fi
echo "claims ok"
""".replace("{work}", str(CHECK_WORK))
POLL_S = 0.1
RUN_DEADLINE_S = 600.0  # one autopilot run; the whole benchmark stays bounded


@dataclass
class Config:
    quick: bool
    tasks: int  # the backlog of every run
    workers: int  # fake workers (slots of one provider)
    repeats: int  # runs of each configuration
    batches: tuple[int, ...]  # --batch values of the throughput section
    slots: tuple[int, ...]  # --test-slots values of the throughput section


def make_config(args: argparse.Namespace) -> Config:
    if args.quick:
        config = Config(True, 8, 4, 1, (1, 4), (2,))
    else:
        config = Config(False, 20, 4, 3, (1, 4, 8), (1, 2))
    if args.repeats is not None:
        config.repeats = args.repeats
    if args.tasks is not None:
        config.tasks = args.tasks
    return config


# --------------------------------------------------------------------------- backlogs


def backlog(size: int, shared: bool, claims: bool) -> list[TaskSpec]:
    """tests/autopilot/test_merge_queue.py's fleet(): with `shared`, every fourth pair
    appends to one file together (a quarter of the tasks); with `claims`, every fifth pair
    claims one port (each alone passes the check, together they fail it); the rest write
    files of their own."""
    tasks = []
    for n in range(size):
        metadata: dict[str, Any] = {}
        pair = n // 2
        if shared and n % 8 in (0, 1):
            area = f"area{pair}.txt"
            metadata = {"fake_shared": area, "files": [area]}
        elif claims and n % 10 in (2, 3):
            claim = f"claims/T{n:02}.txt"
            metadata = {
                "fake_files": {claim: f"port-{pair}\n"},
                "fake_fix": {claim: f"port-{pair}-T{n:02}\n"},
                "files": [claim],
            }
        tasks.append(TaskSpec(id=f"T{n:02}", title=f"fleet task {n}", metadata=metadata))
    return tasks


def project_for(work: Path, tasks: list[TaskSpec], workers: int) -> dict[str, str]:
    """tests/autopilot/conftest.py's project with test_merge_queue.py's check: a repository
    whose main has check.sh and a branch `integration`, a providers file whose provider alpha
    runs `workers` fake Claude Code workers, and the backlog. The autopilot's environment."""
    files = {"README.md": "a project\n", "check.sh": CHECK_SH}
    repo = project.repository(work / "repo", files, "start, and the project's check")
    project.git(repo, "branch", TARGET)
    wrapper = project.fake_worker(work / "bin" / "fake-claude")
    # Checks load the machine: a slow worker is not a hung one.
    providers = project.providers_file(
        work / "providers.yaml", "alpha", workers, wrapper, hang_seconds=120
    )
    state = work / "state"
    project.create_tasks(state, tasks)
    return {
        **project.autopilot_env(work, state, repo, providers, workers),
        "WVO_RETRY_BASE_SECONDS": "0.2",
        "WVO_SANDBOX_BACKEND": "bwrap",
    }


# --------------------------------------------------------------------------- processes


def running_checks() -> set[tuple[int, str]]:
    """(pid, start time) of every check running now: a process running `sh check.sh TOKEN`
    whose parent does not (the shell forks itself for pipelines and $(...))."""
    found: dict[int, tuple[int, str]] = {}  # pid -> (parent, start time)
    wanted = [b"check.sh", TOKEN.encode()]
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry.name}/cmdline", "rb") as given:
                argv = given.read().split(b"\0")
            if argv[1:3] == wanted:
                with open(f"/proc/{entry.name}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                found[int(entry.name)] = (int(fields[1]), fields[19])
    return {(pid, started) for pid, (parent, started) in found.items() if parent not in found}


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def check_cpu(work: Path, runs: int) -> float:
    """CPU seconds (median) of one check on a checkout of the start, outside any sandbox."""
    tree = work / "check-alone"
    tree.mkdir()
    (tree / "check.sh").write_text(CHECK_SH)
    found = []
    for _ in range(runs):
        before = children_cpu()
        subprocess.run(["sh", "check.sh"], cwd=tree, check=True, capture_output=True)
        found.append(children_cpu() - before)
    return statistics.median(found)


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class Setting:
    """One configuration of the autopilot."""

    name: str
    merge: str = "merge"  # merge | leave
    batch: int = 4
    slots: int = 2
    avoid: bool = True

    def args(self) -> list[str]:
        found = ["--merge", self.merge, "--check", CHECK, "--batch", str(self.batch),
                 "--test-slots", str(self.slots)]  # fmt: skip
        if self.merge != "leave":
            found += ["--onto", TARGET]
        if not self.avoid:
            found.append("--no-conflict-avoidance")
        return found


def run_once(work: Path, setting: Setting, tasks: list[TaskSpec], workers: int) -> dict[str, Any]:
    """One autopilot run to an empty backlog; its figures."""
    env = project_for(work, tasks, workers)
    args = [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty",
            *setting.args()]  # fmt: skip
    checks: set[tuple[int, str]] = set()
    reap_adopted()
    machine, children, mine = machine_busy(), children_cpu(), time.process_time()
    started = time.monotonic()
    with (work / "autopilot.out").open("w") as out:
        pilot = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        SPAWNED.add(pilot.pid)
        own = 0.0
        try:
            while pilot.poll() is None:  # the last reading before it ends
                reap_adopted()
                with contextlib.suppress(OSError, IndexError):
                    own = proc_cpu_seconds(pilot.pid)
                checks |= running_checks()
                if time.monotonic() - started > RUN_DEADLINE_S:
                    raise BenchError(f"the autopilot did not finish in {RUN_DEADLINE_S:.0f} s")
                time.sleep(POLL_S)
        finally:
            if pilot.poll() is None:
                pilot.kill()
            pilot.wait()
            SPAWNED.discard(pilot.pid)
    wall = time.monotonic() - started
    reap_adopted(settle=5.0)  # the last sandboxes' inits end just after the autopilot
    total = children_cpu() - children
    others = (machine_busy() - machine) - total - (time.process_time() - mine)
    tail = (work / "autopilot.out").read_text()[-3000:]
    if pilot.returncode != 0:
        raise BenchError(f"the autopilot failed ({pilot.returncode}):\n{tail}")
    found = outcome(work / "state", len(tasks))
    if found["landed"] != len(tasks):
        raise BenchError(f"{found['landed']} of {len(tasks)} tasks landed:\n{tail}")
    if setting.merge != "leave":
        landed_well(work / "repo", work / "state")
    return {
        **found,
        "wall_s": wall,
        "landed_per_hour": found["landed"] / wall * 3600,
        "checks": len(checks),
        "checks_per_landed": len(checks) / found["landed"],
        "autopilot_cpu_s": own,
        "total_cpu_s": total,
        "others": max(0.0, others) / wall / CPUS,
    }


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def outcome(state: Path, tasks: int) -> dict[str, Any]:
    """From the database: landed changes, their queue waits, and what came back."""
    with contextlib.closing(sqlite3.connect(state / "orchestrator.db")) as db:
        done = db.execute("SELECT count(*) FROM tasks WHERE status = 'done'").fetchone()[0]
        landed = db.execute(
            "SELECT queued_at, finished_at FROM landing_entries WHERE state = 'landed'"
        ).fetchall()
        ended = dict(db.execute(
            "SELECT state, count(*) FROM landing_entries GROUP BY state"
        ).fetchall())  # fmt: skip
        reasons = [r for (r,) in db.execute(
            "SELECT coalesce(reason, '') FROM landing_entries WHERE state = 'returned'"
        )]  # fmt: skip
    if done != tasks:
        raise BenchError(f"{done} of {tasks} tasks done")
    waits = [(at(end) - at(start)).total_seconds() for start, end in landed]
    returned = ended.get("returned", 0)
    return {
        "landed": len(landed),
        "wait_p50_s": percentile(waits, 0.50),
        "wait_p95_s": percentile(waits, 0.95),
        "returned": returned,
        "conflicts": sum("conflicts in" in r for r in reasons),
        "failed_checks": sum("a check failed" in r for r in reasons),
        "held": ended.get("held", 0),
        "returns_per_landed": returned / len(landed) if landed else float("nan"),
    }


def landed_well(repo: Path, state: Path) -> None:
    """What the figures stand on: every landed commit is on the target, and the target
    passes the check."""
    with contextlib.closing(sqlite3.connect(state / "orchestrator.db")) as db:
        commits = [c for (c,) in db.execute(
            "SELECT commit_sha FROM landing_entries WHERE state = 'landed'"
        )]  # fmt: skip
    for commit in commits:
        if subprocess.run(["git", "merge-base", "--is-ancestor", commit, TARGET],
                          cwd=repo).returncode != 0:  # fmt: skip
            raise BenchError(f"landed commit {commit} is not on {TARGET}")
    final = repo.parent / "final"
    final.mkdir()
    subprocess.run(["sh", "-c", f"git archive {TARGET} | tar -x -C {final}"], cwd=repo,
                   check=True)  # fmt: skip
    ran = subprocess.run(["sh", "check.sh"], cwd=final, capture_output=True, text=True)
    if ran.returncode != 0:
        raise BenchError(f"{TARGET} fails its check: {ran.stdout[-500:]}")


# --------------------------------------------------------------------------- the bench


def median(runs: Sequence[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def spread(runs: Sequence[dict[str, Any]], key: str, fmt: str) -> str:
    """The median of the runs, and their range when there are several."""
    values = sorted(r[key] for r in runs)
    text = format(statistics.median(values), fmt)
    if len(values) > 1:
        text += f" ({format(values[0], fmt)}-{format(values[-1], fmt)})"
    return text


def busy(runs: Sequence[dict[str, Any]]) -> str:
    """How busy other work kept the machine during the runs, as a share of all its cores."""
    return spread([{"others": 100 * r["others"]} for r in runs], "others", ".0f")


class Bench(lib.Bench):
    module = __spec__.name

    def __init__(self, config: Config, work: Path, cache: Path, report: Report) -> None:
        super().__init__(config, work, cache, report)
        self.config: Config = config
        self.runs = 0
        self.keep = False  # each run's folder, as well as the rest
        self.check_s = 0.0  # CPU seconds of one check alone

    def series(
        self, section: str, settings: Sequence[Setting], tasks: list[TaskSpec]
    ) -> dict[str, list[dict[str, Any]]]:
        """Each setting `repeats` times, interleaved (each goes first in turn)."""
        cfg = self.config
        found: dict[str, list[dict[str, Any]]] = {s.name: [] for s in settings}
        for repeat in range(cfg.repeats):
            order = list(settings[repeat % len(settings) :]) + list(
                settings[: repeat % len(settings)]
            )
            for setting in order:
                self.runs += 1
                log(f"{section} {repeat + 1}/{cfg.repeats}: {setting.name} ({len(tasks)} "
                    f"tasks, {cfg.workers} workers)")  # fmt: skip
                work = self.fresh(f"run-{self.runs}")
                got = run_once(work, setting, tasks, cfg.workers)
                log(f"  {got['wall_s']:.0f} s, {got['landed_per_hour']:.0f} landed/h, wait "
                    f"p50 {got['wait_p50_s']:.1f} s p95 {got['wait_p95_s']:.1f} s, "
                    f"{got['checks']} checks, {got['returned']} returns, autopilot CPU "
                    f"{got['autopilot_cpu_s']:.1f} s, all {got['total_cpu_s']:.0f} s, "
                    f"others {100 * got['others']:.0f} %")  # fmt: skip
                found[setting.name].append(got)
                if not self.keep:
                    shutil.rmtree(work, ignore_errors=True)
        self.report.details[section] = {"settings": [vars(s) for s in settings], "runs": found}
        return found

    def others(self, found: dict[str, list[dict[str, Any]]]) -> str:
        shares = [r["others"] for runs in found.values() for r in runs]
        mean = statistics.fmean(shares)
        busy = " (a busy machine: read with care)" if mean >= 0.10 else ""
        return (f"Other work kept the machine {100 * mean:.0f} % busy on average while these "
                f"were taken ({100 * max(shares):.0f} % at most){busy}.")  # fmt: skip

    def notes(self) -> str:
        cfg = self.config
        return (
            f"{cfg.tasks} tasks, {cfg.workers} fake workers in their sandboxes, {CPUS} cores; "
            f"medians of {cfg.repeats} run(s) each (range in brackets). One check costs "
            f"{self.check_s:.2f} s of CPU alone (outside the sandbox, median of 3)."
        )

    # ----------------------------------------------------------------------- sections

    def throughput(self) -> None:
        cfg = self.config
        settings = [Setting(f"batch {b}, slots {s}", batch=b, slots=s)
                    for b in cfg.batches for s in cfg.slots]  # fmt: skip
        found = self.series("throughput", settings, backlog(cfg.tasks, False, True))
        rows = []
        for setting in settings:
            runs = found[setting.name]
            for r in runs:
                r["cpu_per_landed_s"] = r["total_cpu_s"] / r["landed"]
            rows.append([
                f"`--batch {setting.batch} --test-slots {setting.slots}`",
                spread(runs, "landed_per_hour", ".0f"),
                spread(runs, "wait_p50_s", ".1f"),
                spread(runs, "wait_p95_s", ".1f"),
                spread(runs, "checks_per_landed", ".2f"),
                spread(runs, "returns_per_landed", ".2f"),
                spread(runs, "cpu_per_landed_s", ".2f"),
                spread(runs, "wall_s", ".0f"),
                busy(runs),
            ])  # fmt: skip
            self.report.info(
                f"throughput: batch {setting.batch}, slots {setting.slots}",
                median(runs, "landed_per_hour"), "landed/h",
                note=f"wait p50 {median(runs, 'wait_p50_s'):.1f} s, p95 "
                f"{median(runs, 'wait_p95_s'):.1f} s; "
                f"{median(runs, 'checks_per_landed'):.2f} checks a landed change",
            )  # fmt: skip
        self.table(
            "Batch size and test slots",
            ["setting", "landed / hour", "queue wait p50 (s)", "queue wait p95 (s)",
             "checks / landed change", "returns / landed change",
             "CPU / landed change (s)", "wall (s)", "other work (%)"],
            rows,
            self.notes() + " One pair of tasks in five claims one port (they fail the check "
            "together). Landed per hour: the run's landed changes over its wall time; "
            "queue wait: queued_at → finished_at of each landed entry; checks: "
            "`sh check.sh` processes seen running; CPU: all processes of the run (workers, "
            "sandboxes, checks, the autopilot), which other work does not change. "
            + self.others(found),
        )  # fmt: skip

    def avoidance(self) -> None:
        cfg = self.config
        settings = [Setting("avoid", avoid=True), Setting("no avoid", avoid=False)]
        found = self.series("avoidance", settings, backlog(cfg.tasks, True, True))
        rows = []
        for setting in settings:
            runs = found[setting.name]
            rows.append([
                "conflict avoidance on (default)" if setting.avoid
                else "`--no-conflict-avoidance`",
                spread(runs, "returns_per_landed", ".2f"),
                spread(runs, "conflicts", ".0f"),
                spread(runs, "failed_checks", ".0f"),
                spread(runs, "checks_per_landed", ".2f"),
                spread(runs, "wall_s", ".0f"),
                spread(runs, "autopilot_cpu_s", ".1f"),
                spread(runs, "wait_p50_s", ".1f"),
                busy(runs),
            ])  # fmt: skip
        on, off = found["avoid"], found["no avoid"]
        self.report.info(
            "avoidance: returns per landed change, on", median(on, "returns_per_landed"), "",
            note=f"off {median(off, 'returns_per_landed'):.2f}; wall "
            f"{median(on, 'wall_s'):.0f} s on, {median(off, 'wall_s'):.0f} s off",
        )  # fmt: skip
        self.table(
            "What conflict avoidance saves",
            ["scheduling", "returns / landed change", "conflicts returned",
             "failed checks returned", "checks / landed change", "wall (s)",
             "autopilot's own CPU (s)", "queue wait p50 (s)", "other work (%)"],
            rows,
            self.notes() + " A quarter of the tasks in pairs that append to one file "
            "(declared in metadata.files), one pair in five claiming one port; "
            "`--batch 4 --test-slots 2`. " + self.others(found),
        )  # fmt: skip

    def cpu(self) -> None:
        cfg = self.config
        settings = [Setting("merge", merge="merge"), Setting("leave", merge="leave")]
        found = self.series("cpu", settings, backlog(cfg.tasks, False, False))
        rows = []
        for setting in settings:
            runs = found[setting.name]
            for r in runs:
                r["own_ms"] = 1000 * r["autopilot_cpu_s"] / r["landed"]
                r["all_ms"] = 1000 * r["total_cpu_s"] / r["landed"]
                r["but_checks_ms"] = r["all_ms"] - 1000 * r["checks_per_landed"] * self.check_s
                r["share"] = 100 * r["autopilot_cpu_s"] / r["wall_s"]
            rows.append([
                "`--merge merge --onto integration`" if setting.merge == "merge"
                else "`--merge leave`",
                spread(runs, "own_ms", ".0f"),
                spread(runs, "share", ".1f"),
                spread(runs, "all_ms", ".0f"),
                spread(runs, "checks_per_landed", ".2f"),
                spread(runs, "but_checks_ms", ".0f"),
                spread(runs, "wall_s", ".0f"),
                busy(runs),
            ])  # fmt: skip
        merge, leave = found["merge"], found["leave"]
        own = median(merge, "own_ms") - median(leave, "own_ms")
        every = median(merge, "all_ms") - median(leave, "all_ms")
        rest = median(merge, "but_checks_ms") - median(leave, "but_checks_ms")
        rows.append(["merge minus leave (medians)", f"{own:+.0f}", "", f"{every:+.0f}", "",
                     f"{rest:+.0f}", "", ""])  # fmt: skip
        self.report.info(
            "cpu: the queue's own CPU per landed change (merge - leave)", own, "ms",
            note=f"all processes {every:+.0f} ms a landed change ({rest:+.0f} ms but the "
            f"checks); merge "
            f"{median(merge, 'own_ms'):.0f} ms, leave {median(leave, 'own_ms'):.0f} ms "
            "the autopilot's own",
        )  # fmt: skip
        self.table(
            "The CPU the queue costs",
            ["landing", "autopilot's own CPU / landed change (ms)", "of a core (%)",
             "all processes / landed change (ms)", "checks / landed change",
             "all but the checks (ms)", "wall (s)", "other work (%)"],
            rows,
            self.notes() + " Nothing conflicts or fails; both with the same `--check`, "
            "`--batch 4 --test-slots 2`. The autopilot's own: /proc/<pid>/stat, its last "
            "reading (its gateway and egress proxies included); all processes: getrusage "
            "RUSAGE_CHILDREN of this script around the run (the autopilot, its git, its "
            "workers, their sandboxes, the checks); all but the checks: that less the checks "
            "run times one check's CPU alone. " + self.others(found),
        )  # fmt: skip


# --------------------------------------------------------------------------- main


SECTIONS = ("throughput", "avoidance", "cpu")


def main(argv: list[str] | None = None) -> int:
    parser = lib.arguments(__doc__ or "")
    parser.add_argument("--repeats", type=int, help="runs of each setting (default 3; quick 1)")
    parser.add_argument("--tasks", type=int, help="tasks in each run (default 40; quick 12)")
    lib.only_option(parser, SECTIONS)
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    chosen = lib.chosen_sections(parser, args, SECTIONS)
    config = make_config(args)
    if config.repeats < 1 or config.tasks < 4:
        parser.error("--repeats must be at least 1 and --tasks at least 4")
    probe = bwrap.probe()
    if not probe.usable:
        parser.error(f"bwrap does not work here: {probe.detail}")
    become_subreaper()
    work = Path(tempfile.mkdtemp(prefix="wvo-bench-queue-"))
    bench = Bench(config, work, work, Report())
    bench.keep = args.keep

    def body() -> None:
        bench.check_s = check_cpu(work, 3)
        bench.report.details["check_cpu_s"] = bench.check_s
        log(f"one check: {bench.check_s:.2f} s of CPU alone")
        bench.run_sections(SECTIONS, chosen)

    return lib.run_bench(bench, "wvo-mcp merge queue benchmark", body, args, chosen, heading=True)


if __name__ == "__main__":
    sys.exit(main())
