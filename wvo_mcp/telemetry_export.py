"""How telemetry leaves the process: shared JSON-lines files, plus OTLP when asked.

How telemetry leaves the process: JSON-lines files in the state folder shared by every server
process (bounded by size and age), plus OTLP when the standard OTEL_EXPORTER_OTLP_* variables
ask for it. Imported only when telemetry is on: the OpenTelemetry SDK is a start-up cost."""

import fcntl
import importlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, _Gauge
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    Gauge,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
    Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import wvo_mcp
from wvo_mcp import timeutil
from wvo_mcp.config import Settings

log = logging.getLogger(__name__)

SPANS_FILE = "spans.jsonl"
METRICS_FILE = "metrics.jsonl"
LOCK_FILE = ".rotate.lock"
# <stem>-<UTC YYYYMMDDTHHMMSSffffff>Z-<pid>.jsonl; fixed width, so name order is time order.
ROTATED = re.compile(r"^[A-Za-z0-9_]+-(?P<stamp>\d{8}T\d{12})Z-\d+\.jsonl$")
STAMP_FORMAT = "%Y%m%dT%H%M%S%f"
OTLP_INSTALL_HINT = "pip install 'wvo-mcp[otlp]'"


def _time_text(unix_nanos: int | None) -> str | None:
    if unix_nanos is None:
        return None
    return timeutil.to_text(datetime.fromtimestamp(unix_nanos // 1000 / 1e6, UTC))


def _rotated_at(name: str) -> datetime | None:
    match = ROTATED.match(name)
    if match is None:
        return None
    return datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)


class JsonLinesFile:
    """An append-only JSON-lines file that several processes write and rotate together."""

    def __init__(self, path: Path, max_bytes: int, total_bytes: int, retention_days: float) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.total_bytes = total_bytes
        self.retention_days = retention_days
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._failing = False

    def write(self, records: Sequence[Mapping[str, Any]]) -> bool:
        """Append one line per record; False (logged once until it recovers) when that failed."""
        if not records:
            return True
        lines = "".join(
            json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str) + "\n"
            for record in records
        )
        data = lines.encode()
        with self._lock:
            try:
                self._append(data)
            except OSError as exc:
                if not self._failing:
                    log.warning(
                        "telemetry: cannot write %s (%s); telemetry is dropped until it can",
                        self.path,
                        exc,
                    )
                self._failing = True
                return False
            if self._failing:
                self._failing = False
                log.info("telemetry: writing %s again", self.path)
        return True

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _append(self, data: bytes) -> None:
        fd = self._current_fd()
        size = os.fstat(fd).st_size
        if size and size + len(data) > self.max_bytes:
            fd = self._rotate(len(data))
        # One write per batch: O_APPEND makes it land whole after every other process's lines.
        # A short write happens only when the disk fills up; the rest then follows.
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def _current_fd(self) -> int:
        """The open fd, reopened when another process rotated (or removed) the file."""
        if self._fd is None:
            self._open()
            with self._rotate_lock():
                self._prune()
        else:
            try:
                on_disk = os.stat(self.path)
            except FileNotFoundError:
                self._open()
            else:
                ours = os.fstat(self._fd)
                if (on_disk.st_ino, on_disk.st_dev) != (ours.st_ino, ours.st_dev):
                    self._open()
        assert self._fd is not None
        return self._fd

    def _open(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _rotate(self, incoming: int) -> int:
        with self._rotate_lock():
            assert self._fd is not None
            ours = os.fstat(self._fd)
            try:
                on_disk = os.stat(self.path)
            except FileNotFoundError:
                on_disk = None
            # Another process may have rotated while we waited for the lock: then use its file.
            if (
                on_disk is not None
                and (on_disk.st_ino, on_disk.st_dev) == (ours.st_ino, ours.st_dev)
                and on_disk.st_size
                and on_disk.st_size + incoming > self.max_bytes
            ):
                os.rename(self.path, self._rotated_path())
                self._prune()
            self._open()
        assert self._fd is not None
        return self._fd

    def _rotated_path(self) -> Path:
        moment = timeutil.now()
        while True:
            name = f"{self.path.stem}-{moment.strftime(STAMP_FORMAT)}Z-{os.getpid()}.jsonl"
            target = self.path.with_name(name)
            if not target.exists():
                return target
            moment += timedelta(microseconds=1)

    def _rotate_lock(self) -> AbstractContextManager[None]:
        return _FileLock(self.path.parent / LOCK_FILE)

    def _prune(self) -> None:
        """Delete rotated files past the retention, then the oldest while over the total bound.

        Called under the rotate lock; the live files are never deleted."""
        rotated: list[tuple[datetime, str, int]] = []
        total = 0
        with os.scandir(self.path.parent) as entries:
            for entry in entries:
                if not entry.name.endswith(".jsonl") or not entry.is_file():
                    continue
                try:
                    size = entry.stat().st_size
                except FileNotFoundError:  # removed by hand meanwhile
                    continue
                total += size
                at = _rotated_at(entry.name)
                if at is not None:
                    rotated.append((at, entry.name, size))
        rotated.sort()
        cutoff = timeutil.now() - timedelta(days=self.retention_days)
        for at, name, size in rotated:
            if at < cutoff or total > self.total_bytes:
                (self.path.parent / name).unlink(missing_ok=True)
                total -= size


class _FileLock(AbstractContextManager[None]):
    """An exclusive flock: serialises rotation and pruning across processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self._fd)
            raise

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None


class JsonLinesSpanExporter(SpanExporter):
    """One flat JSON line per finished span."""

    def __init__(self, file: JsonLinesFile) -> None:
        self.file = file

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            ok = self.file.write([_span_record(span) for span in spans])
        except Exception:  # a malformed span must not take the exporter thread down
            log.exception("telemetry: cannot format spans")
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.file.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _span_record(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    start, end = span.start_time, span.end_time
    return {
        "name": span.name,
        "trace_id": trace.format_trace_id(context.trace_id) if context else None,
        "span_id": trace.format_span_id(context.span_id) if context else None,
        "parent_span_id": trace.format_span_id(span.parent.span_id) if span.parent else None,
        "kind": span.kind.name.lower(),
        "start": _time_text(start),
        "end": _time_text(end),
        "duration_ms": round((end - start) / 1e6, 3) if start and end else None,
        "status": span.status.status_code.name.lower(),
        "status_message": span.status.description,
        "attributes": dict(span.attributes or {}),
        "events": [
            {
                "name": event.name,
                "at": _time_text(event.timestamp),
                "attributes": dict(event.attributes or {}),
            }
            for event in span.events
        ],
        "service_instance": span.resource.attributes.get("service.instance.id"),
    }


class JsonLinesMetricExporter(MetricExporter):
    """One JSON line per data point per export.

    Counters and histograms are deltas and a gauge appears only when it was set since the last
    export, so every line is self-contained and totals are sums over lines, across processes
    and restarts."""

    def __init__(self, file: JsonLinesFile) -> None:
        super().__init__(
            preferred_temporality={
                Counter: AggregationTemporality.DELTA,
                Histogram: AggregationTemporality.DELTA,
                _Gauge: AggregationTemporality.DELTA,
            }
        )
        self.file = file

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            records = list(_metric_records(metrics_data))
            ok = self.file.write(records)
        except Exception:
            log.exception("telemetry: cannot format metrics")
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.file.close()


def _metric_records(metrics_data: MetricsData) -> Iterator[dict[str, Any]]:
    for resource_metrics in metrics_data.resource_metrics:
        instance = resource_metrics.resource.attributes.get("service.instance.id")
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                data = metric.data
                if isinstance(data, HistogramData | ExponentialHistogram):
                    for hist_point in data.data_points:
                        counted = hist_point.count > 0  # min/max are ±inf when nothing counted
                        yield {
                            "at": _time_text(hist_point.time_unix_nano),
                            "name": metric.name,
                            "unit": metric.unit,
                            "kind": "histogram",
                            "attributes": dict(hist_point.attributes or {}),
                            "count": hist_point.count,
                            "sum": hist_point.sum,
                            "min": hist_point.min if counted else None,
                            "max": hist_point.max if counted else None,
                            "service_instance": instance,
                        }
                elif isinstance(data, Sum | Gauge):
                    if isinstance(data, Gauge):
                        kind = "gauge"
                    else:
                        kind = "counter" if data.is_monotonic else "updowncounter"
                    for point in data.data_points:
                        yield {
                            "at": _time_text(point.time_unix_nano),
                            "name": metric.name,
                            "unit": metric.unit,
                            "kind": kind,
                            "attributes": dict(point.attributes or {}),
                            "value": point.value,
                            "service_instance": instance,
                        }


def _otlp_exporters() -> tuple[SpanExporter | None, MetricExporter | None]:
    """OTLP/HTTP exporters for the signals the standard environment variables point somewhere."""
    env = os.environ
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    want_traces = bool(base or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip())
    want_metrics = bool(base or env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "").strip())
    spans: SpanExporter | None = None
    metric: MetricExporter | None = None
    if not (want_traces or want_metrics):
        return spans, metric
    package = "opentelemetry.exporter.otlp.proto.http"
    try:
        # Imported by name: the exporter is an optional extra, absent from most installs.
        if want_traces:
            spans = importlib.import_module(f"{package}.trace_exporter").OTLPSpanExporter()
        if want_metrics:
            metric = importlib.import_module(f"{package}.metric_exporter").OTLPMetricExporter()
    except ImportError:
        log.warning(
            "telemetry: an OTLP endpoint is set but the OTLP exporter is not installed "
            "(%s); writing JSON-lines files only",
            OTLP_INSTALL_HINT,
        )
        return None, None
    except Exception as exc:  # e.g. a malformed OTEL_EXPORTER_OTLP_* value
        log.warning("telemetry: OTLP export is off: %s; writing JSON-lines files only", exc)
        return None, None
    return spans, metric


def providers(settings: Settings, instance_id: str) -> tuple[TracerProvider, MeterProvider]:
    """A tracer and a meter provider exporting to files under settings.telemetry_dir, and to
    OTLP where the environment points."""
    resource = Resource.create(
        {
            "service.name": "wvo-mcp",
            "service.version": wvo_mcp.__version__,
            "service.instance.id": instance_id,
            "process.pid": os.getpid(),
        }
    )

    def jsonl(name: str) -> JsonLinesFile:
        return JsonLinesFile(
            settings.telemetry_dir / name,
            max_bytes=settings.telemetry_file_bytes,
            total_bytes=settings.telemetry_total_bytes,
            retention_days=settings.retention_days,
        )

    otlp_spans, otlp_metrics = _otlp_exporters()
    # shutdown_on_exit=False: Telemetry's own atexit hook shuts down once, in order, without
    # the SDK's "shutdown can only be called once" warnings.
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    tracer_provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(jsonl(SPANS_FILE))))
    if otlp_spans is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(otlp_spans))
    readers: list[MetricReader] = [
        PeriodicExportingMetricReader(JsonLinesMetricExporter(jsonl(METRICS_FILE)))
    ]
    if otlp_metrics is not None:
        readers.append(PeriodicExportingMetricReader(otlp_metrics))
    return tracer_provider, MeterProvider(
        resource=resource, metric_readers=readers, shutdown_on_exit=False
    )
