"""Spans and metrics of a real server land in the JSON-lines files under state/telemetry/."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.conftest import connect, open_db
from tests.integration.test_health import FAST, NO_MONITOR, abandon, until
from tests.listening import serve_in_thread

pytestmark = pytest.mark.anyio

EXPORT_FAST = {"OTEL_BSP_SCHEDULE_DELAY": 50, "OTEL_METRIC_EXPORT_INTERVAL": 200}


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


# A process: the OpenTelemetry SDK reads OTEL_* from its process's environment, and the
# SDK's request spans go to the global providers, which a process sets once.
@pytest.mark.process
async def test_tool_calls_ticks_and_metrics_are_exported(state_root: Path) -> None:
    telemetry = state_root / "telemetry"
    async with connect(state_root, **NO_MONITOR) as setup:
        await setup.call(
            "task_create", tasks=[{"id": "T1", "title": "traced"}, {"id": "T2", "title": "lost"}]
        )
    await abandon(state_root, ["T2"])

    env = {**FAST, **EXPORT_FAST, "WVO_OTEL_ENABLED": 1, "WVO_AGENT_ID": "tracer"}
    async with connect(state_root, process=True, **env) as agent:
        claim = await agent.call("claim_task", task_id="T1")
        stale = await agent.error("heartbeat", task_id="T1", lease_token="not-the-token")
        assert "lease lost" in stale
        await agent.call(
            "plan_update", task_id="T1", status="done", lease_token=claim["lease_token"]
        )

        async def requeued() -> bool:
            with open_db(state_root) as db:
                row = db.execute("select status from tasks where id = 'T2'").fetchone()
            return bool(row["status"] == "pending")

        await until(requeued, "the monitor to re-queue T2")

        async def exported() -> bool:
            names = {m["name"] for m in lines(telemetry / "metrics.jsonl")}
            return {"wvo.health.remediations", "wvo.queue.depth"} <= names

        await until(exported, "the monitor's metrics to be exported")
    # The server has exited: shutting down flushed whatever was still batched.

    spans = lines(telemetry / "spans.jsonl")
    calls = {
        (s["name"], s["attributes"].get("wvo.outcome")): s
        for s in spans
        if s["name"].startswith("tools/call")
    }
    claimed = calls[("tools/call claim_task", "ok")]
    assert claimed["attributes"]["wvo.task_id"] == "T1"
    assert claimed["attributes"]["wvo.agent_id"] == "tracer"
    assert claimed["attributes"]["gen_ai.tool.name"] == "claim_task"
    assert claimed["kind"] == "server"
    refused = calls[("tools/call heartbeat", "lease_lost")]
    assert refused["attributes"]["wvo.task_id"] == "T1"
    assert refused["status"] == "error"
    assert calls[("tools/call plan_update", "ok")]["attributes"]["wvo.task_id"] == "T1"

    ticks = [s for s in spans if s["name"] == "wvo.health.tick"]
    assert ticks, "no monitor tick was traced"
    # A tick that lost the lead midway (a slow machine) records nothing: no wvo.actions.
    acted = [t for t in ticks if t["attributes"].get("wvo.actions", 0) > 0]
    assert len(acted) == 1
    assert acted[0]["attributes"]["wvo.leader"] == spans[0]["service_instance"]
    events = {e["name"]: e["attributes"] for e in acted[0]["events"]}
    assert events["wvo.action"] == {
        "wvo.action": "requeue",
        "wvo.task_id": "T2",
        "wvo.status": "pending",
    }
    assert events["wvo.anomaly"]["wvo.anomaly"] == "stale_task"

    metrics = lines(telemetry / "metrics.jsonl")

    def points(name: str) -> list[dict[str, Any]]:
        return [m for m in metrics if m["name"] == name]

    claims = [p for p in points("wvo.tool.duration") if p["attributes"]["tool"] == "claim_task"]
    assert sum(p["count"] for p in claims) == 1
    assert claims[0]["unit"] == "ms" and claims[0]["kind"] == "histogram"
    outcomes = {p["attributes"]["outcome"] for p in points("wvo.tool.duration")}
    assert {"ok", "lease_lost"} <= outcomes
    remediated = points("wvo.health.remediations")
    assert sum(p["value"] for p in remediated) == 1
    assert remediated[0]["attributes"] == {"action": "requeue"}
    assert sum(p["value"] for p in points("wvo.lease.expiries")) == 1
    buckets = {p["attributes"]["bucket"] for p in points("wvo.queue.depth")}
    assert {"ready", "pending", "in_progress", "done"} <= buckets
    windows = {p["attributes"]["window"] for p in points("wvo.throughput.done")}
    assert windows == {"1h", "5m"}


async def test_telemetry_can_be_switched_off(state_root: Path) -> None:
    async with connect(state_root, **{**FAST, "WVO_OTEL_ENABLED": 0}) as agent:
        await agent.call("task_create", tasks=[{"id": "T1", "title": "untraced"}])
        await agent.call("claim_task")
    assert not (state_root / "telemetry").exists()


async def test_a_claim_that_takes_over_an_expired_lease_counts_as_an_expiry(
    state_root: Path,
) -> None:
    # Exported when the server stops (its shutdown flushes the counter).
    async with connect(state_root, **{**NO_MONITOR, "WVO_OTEL_ENABLED": 1}) as agent:
        await agent.call("task_create", tasks=[{"id": "T1", "title": "dropped"}])
        await abandon(state_root, ["T1"])

        async def expired() -> bool:
            plan = await agent.call("plan_next")
            return bool(plan["counts"]["lease_expired"] == 1)

        await until(expired, "the abandoned lease to expire")
        taken = await agent.call("claim_task", agent_id="heir")
        assert taken["claimed"] and taken["attempt"] == 2
    metrics = lines(state_root / "telemetry" / "metrics.jsonl")
    assert sum(m["value"] for m in metrics if m["name"] == "wvo.lease.expiries") == 1


class _Collector(BaseHTTPRequestHandler):
    """A stand-in OTLP/HTTP collector: records what was posted where."""

    received: ClassVar[list[tuple[str, str, int]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, self.headers.get("Content-Type", ""), len(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.process
async def test_otlp_export_when_an_endpoint_is_set(state_root: Path) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="the otlp extra")
    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    _Collector.received = []
    serve_in_thread(collector)
    try:
        endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
        env = {**NO_MONITOR, "WVO_OTEL_ENABLED": 1, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
        async with connect(state_root, process=True, **env) as agent:
            await agent.call("task_create", tasks=[{"id": "T1", "title": "exported"}])
        # Shutting the server down flushed both signals to the collector, and to the files.
    finally:
        collector.shutdown()
        collector.server_close()
    paths = {path for path, kind, size in _Collector.received if size and "protobuf" in kind}
    assert {"/v1/traces", "/v1/metrics"} <= paths, _Collector.received
    assert any(
        s["name"] == "tools/call task_create"
        for s in lines(state_root / "telemetry" / "spans.jsonl")
    )
