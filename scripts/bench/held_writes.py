#!/usr/bin/env python
"""A holder's heartbeat and checkpoint on PostgreSQL: one statement (store.base.Alone) or
the transaction, the CPU each costs the server's Python and PostgreSQL, in one run.

    python -m scripts.bench.held_writes                # 2,000 calls of each, 4 rounds
    python -m scripts.bench.held_writes --calls 500 --rounds 2

One throwaway PostgreSQL (fsync on) and one migrated database; the orchestrator in this
process, on its own pool, no HTTP and no MCP: what is compared is what the store sends.
Per round, each way of each call is made `--calls` times by 20 holders in turn (each its
own task), the ways alternating: `alone` as the orchestrator sends it (heartbeat_held,
checkpoint_held), `transaction` with the function left out (BEGIN, the locks, the
statements, COMMIT: what SQLite's transaction function is, sent in a pipeline). CPU per
call is this process's (time.process_time) and PostgreSQL's (its processes' /proc), each
the median of the rounds. It is a benchmark: nothing here passes or fails.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio

from scripts.bench import lib
from scripts.bench.lib import Report, log
from scripts.bench.scale import cpu_delta, postgres_cpu
from tests.pgcluster import Cluster
from wvo_mcp.config import Settings
from wvo_mcp.models import TaskSpec
from wvo_mcp.orchestrator import Orchestrator
from wvo_mcp.services import leases, notes
from wvo_mcp.store import Lock

HOLDERS = 20
WAYS = ("alone", "transaction")
CALLS = ("heartbeat", "checkpoint")


@dataclass
class Config:
    quick: bool
    calls: int
    rounds: int


class Bench(lib.Bench):
    config: Config
    module = __spec__.name

    def body(self) -> None:
        with Cluster.start(durable=True) as cluster:
            url = cluster.create_database("held")
            samples: dict[str, list[tuple[float, float]]] = {}
            anyio.run(self.measure, cluster, url, samples)
        for name, runs in samples.items():
            python = statistics.median(p for p, _ in runs)
            postgres = statistics.median(q for _, q in runs)
            self.report.info(
                f"{name}: CPU per call, Python + PostgreSQL",
                python + postgres,
                "ms",
                note=f"Python {python:.3f} + PostgreSQL {postgres:.3f} ms (median of "
                f"{len(runs)} rounds of {self.config.calls})",
            )
        self.report.details["samples"] = samples

    async def measure(
        self, cluster: Cluster, url: str, samples: dict[str, list[tuple[float, float]]]
    ) -> None:
        settings = Settings(
            state_root=self.work / "state", database_url=url, otel_enabled=False, wip_global=HOLDERS
        )
        orch = await Orchestrator.open(settings)
        try:
            specs = [TaskSpec(id=f"T{i}", title=f"task {i}") for i in range(HOLDERS)]
            await orch.create_tasks(specs, actor="bench")
            held = []
            for i in range(HOLDERS):
                claim = await orch.claim(f"agent-{i}", task_id=f"T{i}", lease_seconds=3600)
                if claim.lease_token is None:
                    raise lib.BenchError(f"claim of T{i} refused: {claim.reason} {claim.message}")
                held.append((f"T{i}", claim.lease_token, f"agent-{i}"))
            for round_ in range(self.config.rounds):
                for call in CALLS:
                    for way in WAYS if round_ % 2 == 0 else reversed(WAYS):
                        made = self.maker(orch, call, way)
                        for task, token, agent in held[:2]:  # warm: prepared statements
                            await made(task, token, agent)
                        before = (time.process_time(), postgres_cpu(cluster))
                        for n in range(self.config.calls):
                            await made(*held[n % HOLDERS])
                        python = time.process_time() - before[0]
                        postgres = cpu_delta(before[1], postgres_cpu(cluster))
                        per = 1000 / self.config.calls
                        samples.setdefault(f"{call}, {way}", []).append(
                            (python * per, postgres * per)
                        )
                log(f"round {round_ + 1} of {self.config.rounds} done")
        finally:
            await orch.close()

    def maker(
        self, orch: Orchestrator, call: str, way: str
    ) -> Callable[[str, str, str], Awaitable[Any]]:
        """One call of `call` sent `way`, as the orchestrator's facade sends it."""

        async def heartbeat(task: str, token: str, agent: str) -> Any:
            if way == "alone":
                return await orch.heartbeat(task, token, agent)
            renew = partial(leases.renew, task_id=task, token=token, agent_id=agent,
                            lease_seconds=None, now=orch.clock())  # fmt: skip
            return await orch.db.write_then_read(renew, Lock.TASK)

        async def checkpoint(task: str, token: str, agent: str) -> Any:
            if way == "alone":
                return await orch.checkpoint(task, token, agent, summary="a step", progress=5)
            write = partial(leases.checkpoint, task_id=task, token=token, agent_id=agent,
                            summary="a step", next_steps=None, progress=5, files=(),
                            now=orch.clock())  # fmt: skip
            return await orch.db.write_then_read(notes.asking_after(write, agent), Lock.TASK)

        return heartbeat if call == "heartbeat" else checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = lib.arguments(__doc__)
    parser.add_argument("--calls", type=int, help="calls of each way a round (default 2000)")
    parser.add_argument("--rounds", type=int, help="rounds (default 4)")
    lib.common_options(parser)
    args = parser.parse_args(argv)
    calls = args.calls or (200 if args.quick else 2000)
    config = Config(args.quick, calls, args.rounds or (2 if args.quick else 4))
    work, cache = lib.workspace(args, "wvo-bench-held-")
    bench = Bench(config, work, cache, Report())
    return lib.run_bench(bench, "held writes on PostgreSQL", bench.body, args)


if __name__ == "__main__":
    sys.exit(main())
