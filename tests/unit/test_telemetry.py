import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import types
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from wvo_mcp import timeutil
from wvo_mcp.config import Settings
from wvo_mcp.queue_figures import Landed, Spend
from wvo_mcp.telemetry import Telemetry, annotate
from wvo_mcp.telemetry_export import METRICS_FILE, ROTATED, SPANS_FILE, STAMP_FORMAT, JsonLinesFile

ROOT = Path(__file__).resolve().parents[2]


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_root=tmp_path / "state", otel_enabled=True)


@pytest.fixture
def telemetry(settings: Settings) -> Iterator[Telemetry]:
    started = Telemetry.start(settings, "inst-1")
    yield started
    started.shutdown()


def test_spans_are_written_as_flat_json_lines(settings: Settings, telemetry: Telemetry) -> None:
    with telemetry.span("wvo.health.tick", leader="inst-1", **{"wvo.term": 3}) as tick:
        tick.add_event("anomaly", {"task": "T1"})
        with telemetry.span("wvo.backup", pruned=2):
            pass
    with pytest.raises(RuntimeError), telemetry.span("wvo.broken"):
        raise RuntimeError("disk on fire")
    telemetry.shutdown()

    spans = {span["name"]: span for span in lines(settings.telemetry_dir / SPANS_FILE)}
    assert set(spans) == {"wvo.health.tick", "wvo.backup", "wvo.broken"}
    parent, child = spans["wvo.health.tick"], spans["wvo.backup"]
    assert parent["attributes"] == {"wvo.leader": "inst-1", "wvo.term": 3}
    assert child["attributes"] == {"wvo.pruned": 2}
    assert child["parent_span_id"] == parent["span_id"] and parent["parent_span_id"] is None
    assert child["trace_id"] == parent["trace_id"] and len(parent["trace_id"]) == 32
    assert parent["kind"] == "internal" and parent["status"] == "unset"
    assert parent["service_instance"] == "inst-1"
    assert parent["events"][0]["name"] == "anomaly"
    assert parent["events"][0]["attributes"] == {"task": "T1"}
    assert timeutil.from_text(parent["start"]) <= timeutil.from_text(parent["end"])
    assert len(parent["start"]) == len("2025-01-01T00:00:00.000Z")
    assert parent["duration_ms"] >= child["duration_ms"] >= 0
    broken = spans["wvo.broken"]
    assert broken["status"] == "error" and "disk on fire" in broken["status_message"]
    assert broken["events"][0]["name"] == "exception"


def test_metrics_are_written_one_line_per_point(settings: Settings, telemetry: Telemetry) -> None:
    telemetry.tool_call("claim_task", "ok", 12.5)
    telemetry.tool_call("claim_task", "ok", 7.5)
    telemetry.tool_call("plan_update", "lease_lost", 3.0)
    telemetry.lease_expiries(2)
    telemetry.lease_expiries(0)
    telemetry.remediations("requeue", 1)
    telemetry.observed({"pending": 4, "ready": 2, "in_progress": 0}, 9, 1)
    telemetry.flush()

    first = lines(settings.telemetry_dir / METRICS_FILE)
    by_key = {(m["name"], json.dumps(m["attributes"], sort_keys=True)): m for m in first}
    claim = by_key["wvo.tool.duration", '{"outcome": "ok", "tool": "claim_task"}']
    assert claim["kind"] == "histogram" and claim["unit"] == "ms"
    assert (claim["count"], claim["sum"], claim["min"], claim["max"]) == (2, 20.0, 7.5, 12.5)
    lost = by_key["wvo.tool.duration", '{"outcome": "lease_lost", "tool": "plan_update"}']
    assert lost["count"] == 1
    expiries = by_key["wvo.lease.expiries", "{}"]
    assert (expiries["kind"], expiries["value"]) == ("counter", 2)
    assert by_key["wvo.health.remediations", '{"action": "requeue"}']["value"] == 1
    depth = {m["attributes"]["bucket"]: m["value"] for m in first if m["name"] == "wvo.queue.depth"}
    assert depth == {"pending": 4, "ready": 2, "in_progress": 0}
    done = {
        m["attributes"]["window"]: m["value"] for m in first if m["name"] == "wvo.throughput.done"
    }
    assert done == {"1h": 9, "5m": 1}
    assert {m["kind"] for m in first if m["name"].startswith(("wvo.queue", "wvo.throughput"))} == {
        "gauge"
    }
    assert all(m["service_instance"] == "inst-1" and m["at"].endswith("Z") for m in first)

    # Deltas: the next export holds only what happened since, so lines add up across exports.
    telemetry.tool_call("claim_task", "ok", 1.0)
    telemetry.shutdown()
    second = lines(settings.telemetry_dir / METRICS_FILE)[len(first) :]
    assert [(m["name"], m["count"], m["sum"]) for m in second] == [("wvo.tool.duration", 1, 1.0)]


def test_the_merge_queue_figures_are_counters_and_a_histogram(
    settings: Settings, telemetry: Telemetry
) -> None:
    """Landed per hour, wait p50/p95, returns and spend per landed change, as a backend
    derives them from what each landing and each entry sent back adds."""
    spend = (Spend("codex", "medium", 2, 1000, 200, 0.5), Spend("claude", "sonnet", 1, 50, 5, 0.1))
    telemetry.landed("main", Landed((600.0, 60.0), spend))
    telemetry.landed("main", Landed((), ()))  # a landing that brought nothing counts nothing
    telemetry.sent_back("main", "returned")
    telemetry.sent_back("main", "returned")
    telemetry.sent_back("main", "held")
    telemetry.flush()

    found = lines(settings.telemetry_dir / METRICS_FILE)
    by_key = {(m["name"], json.dumps(m["attributes"], sort_keys=True)): m for m in found}
    entries = {
        m["attributes"]["outcome"]: (m["kind"], m["value"])
        for m in found
        if m["name"] == "wvo.landing.entries"
    }
    assert entries == {"landed": ("counter", 2), "returned": ("counter", 2), "held": ("counter", 1)}
    assert all(m["attributes"]["target"] == "main" for m in found if "target" in m["attributes"])
    wait = by_key["wvo.landing.queue_wait", '{"target": "main"}']
    assert (wait["kind"], wait["unit"]) == ("histogram", "s")
    assert (wait["count"], wait["sum"], wait["min"], wait["max"]) == (2, 660.0, 60.0, 600.0)
    codex = '{"provider": "codex", "tier": "medium"}'
    assert by_key["wvo.landing.tokens", codex]["value"] == 1200
    assert by_key["wvo.landing.cost", codex]["value"] == 0.5
    assert by_key["wvo.landing.cost", codex]["unit"] == "USD"
    assert by_key["wvo.landing.tokens", '{"provider": "claude", "tier": "sonnet"}']["value"] == 55


def test_disabled_telemetry_creates_nothing_and_does_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(provider: object) -> None:
        raise AssertionError(f"disabled telemetry installed {provider}")

    monkeypatch.setattr(trace, "set_tracer_provider", refuse)
    monkeypatch.setattr(metrics, "set_meter_provider", refuse)
    settings = Settings(state_root=tmp_path / "state", otel_enabled=False)
    telemetry = Telemetry.start(settings, "off")
    assert not telemetry.enabled
    telemetry.install()
    with telemetry.span("wvo.health.tick", leader="x") as span:
        assert not span.is_recording()
        annotate(task_id="T1")
    telemetry.tool_call("claim_task", "ok", 1.0)
    telemetry.lease_expiries(1)
    telemetry.remediations("requeue", 1)
    telemetry.observed({"pending": 1}, 1, 1)
    telemetry.landed("main", Landed((1.0,), (Spend("codex", "medium", 1, 1, 1, 0.1),)))
    telemetry.sent_back("main", "held")
    telemetry.flush()
    telemetry.shutdown()
    telemetry.shutdown()
    assert not tmp_path.joinpath("state").exists()


def test_annotate_sets_attributes_on_the_current_recording_span() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    annotate(task_id="outside")  # no current span: nothing to do, nothing raised
    with tracer.start_as_current_span("tools/call claim_task", kind=SpanKind.SERVER):
        annotate(task_id="T1", agent_id=None, **{"wvo.outcome": "ok", "gen_ai.tool.name": "x"})
    provider.shutdown()
    (span,) = exporter.get_finished_spans()
    assert span.attributes == {
        "wvo.task_id": "T1",
        "wvo.outcome": "ok",
        "gen_ai.tool.name": "x",
    }


def writer(
    path: Path, max_bytes: int = 1000, total_bytes: int = 10**9, days: float = 30.0
) -> JsonLinesFile:
    return JsonLinesFile(path, max_bytes=max_bytes, total_bytes=total_bytes, retention_days=days)


def rotated(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ROTATED.match(p.name))


def test_rotates_when_the_next_batch_would_pass_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    out = writer(path, max_bytes=120)
    record = {"n": 0, "pad": "x" * 20}  # 37 bytes a line
    for n in range(3):
        assert out.write([{**record, "n": n}])
    assert rotated(tmp_path) == [] and path.stat().st_size == 111
    assert out.write([{**record, "n": 3}])
    (old,) = rotated(tmp_path)
    assert old.startswith("spans-") and old.endswith(f"Z-{os.getpid()}.jsonl")
    assert [m["n"] for m in lines(tmp_path / old)] == [0, 1, 2]
    assert [m["n"] for m in lines(path)] == [3]
    out.close()


def make_rotated(folder: Path, stem: str, age: timedelta, size: int) -> Path:
    stamp = (timeutil.now() - age).strftime(STAMP_FORMAT)
    path = folder / f"{stem}-{stamp}Z-1.jsonl"
    path.write_text("x" * (size - 1) + "\n")
    return path


def test_total_bound_deletes_the_oldest_rotated_files_never_the_live_ones(tmp_path: Path) -> None:
    oldest = make_rotated(tmp_path, "metrics", timedelta(hours=3), 400)
    older = make_rotated(tmp_path, "spans", timedelta(hours=2), 400)
    newer = make_rotated(tmp_path, "spans", timedelta(hours=1), 400)
    (tmp_path / METRICS_FILE).write_text("y" * 500 + "\n")  # another live file: counted, kept
    out = writer(tmp_path / SPANS_FILE, max_bytes=100, total_bytes=1350)
    assert out.write([{"pad": "x" * 80}])  # 91 bytes; on open: 1701 > 1350, the oldest goes
    assert not oldest.exists() and older.exists()
    assert out.write([{"pad": "x" * 80}])  # rotates: 400 + 400 + 91 + 501 > 1350
    assert not older.exists() and newer.exists()
    assert (tmp_path / METRICS_FILE).exists() and (tmp_path / SPANS_FILE).exists()
    assert len(rotated(tmp_path)) == 2  # newer and the one just rotated

    # A bound below the live files alone deletes every rotated file and stops there.
    tight = writer(tmp_path / SPANS_FILE, max_bytes=100, total_bytes=1)
    assert tight.write([{"pad": "x" * 80}])
    assert rotated(tmp_path) == []
    assert lines(tmp_path / SPANS_FILE) == [{"pad": "x" * 80}]
    assert (tmp_path / METRICS_FILE).exists()
    out.close()
    tight.close()


def test_rotated_files_past_the_retention_are_deleted(tmp_path: Path) -> None:
    stale = make_rotated(tmp_path, "spans", timedelta(days=8), 10)
    fresh = make_rotated(tmp_path, "spans", timedelta(days=6), 10)
    out = writer(tmp_path / SPANS_FILE, days=7)
    assert out.write([{"n": 1}])
    assert not stale.exists() and fresh.exists()
    out.close()


def test_a_second_writer_reopens_after_the_first_rotates(tmp_path: Path) -> None:
    path = tmp_path / SPANS_FILE
    first, second = writer(path, max_bytes=60), writer(path, max_bytes=60)
    assert first.write([{"by": "first", "n": 0}])
    assert second.write([{"by": "second", "n": 0}])
    assert first.write([{"by": "first", "n": 1}])  # 21 + 22 + 21 bytes > 60: rotates first
    (old,) = rotated(tmp_path)
    assert second.write([{"by": "second", "n": 1}])  # lands in the new live file
    assert lines(tmp_path / old) == [{"by": "first", "n": 0}, {"by": "second", "n": 0}]
    assert lines(path) == [{"by": "first", "n": 1}, {"by": "second", "n": 1}]
    first.close()
    second.close()


def test_concurrent_writers_rotating_together_keep_every_line_whole(tmp_path: Path) -> None:
    path = tmp_path / SPANS_FILE
    batches, per_batch = 150, 7

    def run(name: str) -> None:
        out = writer(path, max_bytes=4000)
        for b in range(batches):
            batch = [{"w": name, "b": b, "i": i, "pad": "p" * (b % 50)} for i in range(per_batch)]
            assert out.write(batch)
        out.close()

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(rotated(tmp_path)) > 3
    seen: list[tuple[str, int, int]] = []
    for file in tmp_path.glob("*.jsonl"):
        text = file.read_text()
        assert text.endswith("\n")
        rows = lines(file)  # a torn or interleaved line would not parse
        seen.extend((row["w"], row["b"], row["i"]) for row in rows)
        # Each batch is one write, so its lines are adjacent and in order.
        for previous, row in itertools.pairwise(rows):
            if row["i"] > 0:
                assert (previous["w"], previous["b"], previous["i"]) == (
                    row["w"],
                    row["b"],
                    row["i"] - 1,
                )
    assert sorted(seen) == sorted(
        (w, b, i) for w in "abc" for b in range(batches) for i in range(per_batch)
    )


def test_a_failing_write_is_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "telemetry"
    blocker.write_text("a file where the folder should be")
    out = writer(blocker / SPANS_FILE)
    with caplog.at_level(logging.INFO, logger="wvo_mcp.telemetry_export"):
        assert not out.write([{"n": 1}])
        assert not out.write([{"n": 2}])
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "cannot write" in warnings[0].getMessage()
        blocker.unlink()
        assert out.write([{"n": 3}])
        assert "again" in caplog.records[-1].getMessage()
    assert lines(blocker / SPANS_FILE) == [{"n": 3}]
    out.close()


def test_a_failing_exporter_does_not_reach_the_caller(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "telemetry").write_text("not a folder")
    telemetry = Telemetry.start(Settings(state_root=state, otel_enabled=True), "inst-1")
    with telemetry.span("wvo.health.tick"):
        telemetry.tool_call("claim_task", "ok", 1.0)
    telemetry.flush()
    telemetry.shutdown()
    assert (state / "telemetry").read_text() == "not a folder"


def test_otlp_endpoint_without_the_extra_warns_and_keeps_the_files(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http", None)
    with caplog.at_level(logging.WARNING, logger="wvo_mcp.telemetry_export"):
        telemetry = Telemetry.start(settings, "inst-1")
    assert "pip install 'wvo-mcp[otlp]'" in caplog.text
    with telemetry.span("wvo.health.tick"):
        pass
    telemetry.shutdown()
    assert [s["name"] for s in lines(settings.telemetry_dir / SPANS_FILE)] == ["wvo.health.tick"]


class FakeOtlpSpanExporter(SpanExporter):
    exported: list[str] = []  # noqa: RUF012

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS


def test_otlp_traces_endpoint_adds_an_otlp_span_exporter(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    module.OTLPSpanExporter = FakeOtlpSpanExporter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    # Only traces are asked for: the metric exporter module (absent here) is never imported.
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/v1/traces")
    telemetry = Telemetry.start(settings, "inst-1")
    with telemetry.span("wvo.backup"):
        pass
    telemetry.shutdown()
    assert FakeOtlpSpanExporter.exported == ["wvo.backup"]
    assert [s["name"] for s in lines(settings.telemetry_dir / SPANS_FILE)] == ["wvo.backup"]


INSTALL_SCRIPT = """
import sys
from opentelemetry.trace import SpanKind
from mcp.shared._otel import otel_span  # takes its tracer before install, as the server does
from wvo_mcp.config import Settings
from wvo_mcp.telemetry import Telemetry, annotate

from pathlib import Path
telemetry = Telemetry.start(Settings(state_root=Path(sys.argv[1]), otel_enabled=True), "inst-9")
telemetry.install()
telemetry.install()
Telemetry.start(Settings(state_root=Path(sys.argv[1]), otel_enabled=True), "other").install()
with otel_span("tools/call claim_task", kind=SpanKind.SERVER):
    annotate(task_id="T1", outcome="ok")
telemetry.shutdown()
telemetry.shutdown()
"""


def test_install_exports_the_sdk_spans_and_writes_nothing_to_stdout(tmp_path: Path) -> None:
    # The global providers can be set once per process, so this runs in its own process.
    state = tmp_path / "state"
    done = subprocess.run(
        [sys.executable, "-c", INSTALL_SCRIPT, str(state)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "Overriding" not in done.stderr
    (span,) = lines(state / "telemetry" / SPANS_FILE)
    assert span["name"] == "tools/call claim_task" and span["kind"] == "server"
    assert span["attributes"]["wvo.task_id"] == "T1"
    assert span["attributes"]["wvo.outcome"] == "ok"
    assert span["service_instance"] == "inst-9"
    assert span["status"] == "unset"
