#!/usr/bin/env python
"""From a GitHub webhook delivery to the task being claimable: a labelled issue's `issues`
delivery sent to a real `wvo-mcp serve --http`, then an agent's claim_task of its task.

    python -m scripts.bench.webhook_claimable [--deliveries 200]

Each delivery is signed as GitHub signs it and built from GitHub's published payload
schema (tests/forge/deliveries.py, validated before it is sent, not timed). The server's
answer comes after the transaction that records the delivery and creates the task, so the
task is claimable when the answer arrives; the claim proves it. Each task is then finished
(not timed), so WIP never fills. The table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import anyio
import httpx

from scripts.bench.lib import BenchError, Report, log, summary
from tests.forge import deliveries
from tests.http.conftest import connect, http_server, token
from wvo_mcp.rules.webhooks import signature

SECRET = "bench-webhook-secret"


def body(number: int) -> bytes:
    issue = {"number": number, "node_id": f"I_{number}", "title": f"issue {number}",
             "body": f"Issue {number}'s description.", "state": "open",
             "labels": [{"id": 1, "node_id": "LA_1", "url": "https://example.invalid/",
                         "name": "wvo", "color": "ededed", "default": False,
                         "description": None}],
             "html_url": f"https://github.com/team/project/issues/{number}"}  # fmt: skip
    repository = {"full_name": "team/project", "name": "project", "default_branch": "main"}
    made = deliveries.payload("issues", "opened", issue=issue, repository=repository)
    return json.dumps(made).encode()


async def measure(state: Path, count: int) -> tuple[list[float], list[float]]:
    bodies = [body(n) for n in range(1, count + 1)]
    answered, claimable = [], []
    with http_server(state, WVO_WEBHOOK_SECRET=SECRET) as server:
        secret = token(state, "agent", "bench")
        async with connect(server, secret) as agent, httpx.AsyncClient(timeout=30) as http:
            for number, sent in enumerate(bodies, start=1):
                headers = {"X-GitHub-Delivery": f"d-{number}", "X-GitHub-Event": "issues",
                           "X-Hub-Signature-256": signature(SECRET, sent),
                           "Content-Type": "application/json"}  # fmt: skip
                started = time.perf_counter()
                answer = await http.post(f"{server.base}/webhooks/github", content=sent,
                                         headers=headers)  # fmt: skip
                answered.append(time.perf_counter() - started)
                claim = await agent.call("claim_task", task_id=f"gh/team/project/{number}")
                claimable.append(time.perf_counter() - started)
                if answer.status_code != 200 or not claim["claimed"]:
                    raise BenchError(f"delivery {number}: {answer.text} / {claim['message']}")
                await agent.call("plan_update", task_id=claim["task"]["id"],
                                 lease_token=claim["lease_token"], status="done")  # fmt: skip
    return answered, claimable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=200)
    args = parser.parse_args()
    if not deliveries.available():
        raise BenchError("no @octokit/webhooks-schemas: run scripts/setup")
    work = Path(tempfile.mkdtemp(prefix="wvo-bench-webhook-"))
    try:
        log(f"{args.deliveries} deliveries")
        answered, claimable = anyio.run(measure, work / "state", args.deliveries)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = Report()
    for label, samples in (("delivery answered", answered), ("delivery to claimed", claimable)):
        found = summary(samples)
        report.info(f"{label}, p50", found["p50"], "ms", f"{found['n']:.0f} deliveries")
        report.info(f"{label}, p90", found["p90"], "ms")
        report.info(f"{label}, p99", found["p99"], "ms")
    print(report.table())


if __name__ == "__main__":
    main()
