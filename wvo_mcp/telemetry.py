"""OpenTelemetry when asked for (on or off: config.py:Settings.from_env); else a cheap no-op.

OpenTelemetry traces and metrics, when asked for (WVO_OTEL_ENABLED, or an OTLP endpoint; the
settings decide, in config.py:Settings.from_env): telemetry_export.py writes them. Off, every
method is a cheap no-op and the SDK is not loaded.

Keyword attributes without a dot get the `wvo.` prefix (`task_id=` becomes `wvo.task_id`);
pass dotted names through a dict (`**{"http.route": ...}`) to keep them as they are."""

import atexit
import logging
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from opentelemetry import metrics, trace
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

import wvo_mcp
from wvo_mcp.config import Settings
from wvo_mcp.queue_figures import Landed

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)


def _attributes(attributes: Mapping[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    return {
        (key if "." in key else f"wvo.{key}"): value
        for key, value in attributes.items()
        if value is not None
    }


def annotate(**attributes: AttributeValue | None) -> None:
    """Add attributes (None values skipped) to the current span, e.g. the SDK's tools/call."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(_attributes(attributes))


_installed_lock = threading.Lock()
_installed = False


class Telemetry:
    """This process's tracer and meter; every method is a cheap no-op when telemetry is off."""

    def __init__(
        self,
        tracer_provider: "TracerProvider | None" = None,
        meter_provider: "MeterProvider | None" = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.enabled = tracer_provider is not None
        version = wvo_mcp.__version__
        tracer: trace.Tracer = (
            tracer_provider.get_tracer("wvo_mcp", version)
            if tracer_provider
            else trace.NoOpTracer()
        )
        meter: metrics.Meter = (
            meter_provider.get_meter("wvo_mcp", version)
            if meter_provider
            else metrics.NoOpMeter("wvo_mcp", version)
        )
        self._tracer = tracer
        self._tool_duration = meter.create_histogram(
            "wvo.tool.duration", unit="ms", description="MCP tool call duration"
        )
        self._lease_expiries = meter.create_counter(
            "wvo.lease.expiries", unit="{lease}", description="Leases that expired unreleased"
        )
        self._remediations = meter.create_counter(
            "wvo.health.remediations", unit="{action}", description="Health monitor remediations"
        )
        self._queue_depth = meter.create_gauge(
            "wvo.queue.depth", unit="{task}", description="Tasks per status (ready: claimable)"
        )
        self._throughput = meter.create_gauge(
            "wvo.throughput.done", unit="{task}", description="Tasks done in the trailing window"
        )
        # The merge queue's figures as a backend derives them: landed per hour and returns
        # per landed change from the entries counter, wait p50/p95 from the histogram, tokens
        # and cost per landed change from their counters over the landed entries.
        self._landing_entries = meter.create_counter(
            "wvo.landing.entries",
            unit="{entry}",
            description="Merge queue entries that ended: landed, returned to a worker, or held",
        )
        self._queue_wait = meter.create_histogram(
            "wvo.landing.queue_wait", unit="s", description="Queue wait of landed entries"
        )
        self._landed_tokens = meter.create_counter(
            "wvo.landing.tokens",
            unit="{token}",
            description="Tokens the landed changes' tasks used, over all their attempts",
        )
        self._landed_cost = meter.create_counter(
            "wvo.landing.cost",
            unit="USD",
            description="What the landed changes' tasks cost, over all their attempts",
        )
        self._shutdown_lock = threading.Lock()
        self._shut_down = not self.enabled

    @classmethod
    def start(cls, settings: Settings, instance_id: str) -> "Telemetry":
        """Providers exporting to files under settings.telemetry_dir (and OTLP if configured);
        off (no-ops) unless settings.otel_enabled.

        Does not touch the global providers; see install()."""
        if not settings.otel_enabled:
            return cls()
        from wvo_mcp.telemetry_export import providers

        telemetry = cls(*providers(settings, instance_id))
        atexit.register(telemetry.shutdown)
        return telemetry

    def install(self) -> None:
        """Make these the global providers, so the MCP SDK's request spans are exported too.

        The global providers can be set once per process; later calls do nothing."""
        global _installed
        if self.tracer_provider is None or self.meter_provider is None:
            return
        with _installed_lock:
            if _installed:
                log.debug("telemetry: global providers already installed")
                return
            _installed = True
        trace.set_tracer_provider(self.tracer_provider)
        metrics.set_meter_provider(self.meter_provider)

    def flush(self) -> None:
        """Export everything recorded so far (tests; the exporters also run on their own)."""
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush()
        if self.meter_provider is not None:
            self.meter_provider.force_flush()

    def shutdown(self) -> None:
        """Flush and stop the exporters; safe to call more than once."""
        with self._shutdown_lock:
            if self._shut_down:
                return
            self._shut_down = True
        atexit.unregister(self.shutdown)
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()

    def span(self, name: str, **attributes: AttributeValue) -> AbstractContextManager[Span]:
        """A span of our own (e.g. one monitor tick), current inside the `with` block."""
        if not self.enabled:
            return nullcontext(trace.INVALID_SPAN)
        return self._tracer.start_as_current_span(name, attributes=_attributes(attributes))

    def tool_call(self, tool: str, outcome: str, duration_ms: float) -> None:
        self._tool_duration.record(duration_ms, {"tool": tool, "outcome": outcome})

    def lease_expiries(self, n: int) -> None:
        if n > 0:
            self._lease_expiries.add(n)

    def remediations(self, action: str, n: int) -> None:
        if n > 0:
            self._remediations.add(n, {"action": action})

    def observed(self, queue: Mapping[str, int], done_last_hour: int, done_last_5m: int) -> None:
        """Queue depth per bucket (a status, or "ready") and recent throughput, from one tick.

        Pass every bucket, zeros included: an exported gauge is the value set since the last
        export."""
        for bucket, depth in queue.items():
            self._queue_depth.set(depth, {"bucket": bucket})
        self._throughput.set(done_last_hour, {"window": "1h"})
        self._throughput.set(done_last_5m, {"window": "5m"})

    def landed(self, target: str, brought: Landed) -> None:
        """A landing completed onto `target`: its entries, each one's queue wait, and what
        its tasks cost per provider and tier."""
        if brought.waits:
            self._landing_entries.add(len(brought.waits), {"target": target, "outcome": "landed"})
        for seconds in brought.waits:
            self._queue_wait.record(seconds, {"target": target})
        for spend in brought.spend:
            where = {"provider": spend.provider, "tier": spend.tier}
            self._landed_tokens.add(spend.tokens, where)
            self._landed_cost.add(spend.cost, where)

    def sent_back(self, target: str, outcome: str) -> None:
        """An entry that did not land: `returned` to a worker, or `held` for a person."""
        self._landing_entries.add(1, {"target": target, "outcome": outcome})
