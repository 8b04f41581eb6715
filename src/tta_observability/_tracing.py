"""Spans: the provider setup() installs or adds to, and an exporter that counts its failures.

``start_traces`` is the starter of this concern: it returns the closer that takes off everything it
added. SDK internals are reached only through :mod:`._otel_compat`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from urllib.parse import urlparse

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from . import __about__
from . import _otel_compat as compat
from . import contract as c
from ._otel_compat import batch_queue_length
from ._settings import Settings
from ._state import INSTRUMENTATION_NAME, STATE, logger
from .metrics import MetricStore

_OTLP_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.sdk._shared_internal",
)


class _ExportLogFilter(logging.Filter):
    """Demotes the exporter's and batch processor's own warnings to our DEBUG log.

    An unreachable collector would otherwise log an error per batch, a retry warning per
    attempt and a queue-full warning per span; our exporter wrapper says it once, clearly, and
    the drops are counted in metrics.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s: %s", record.name, record.getMessage())
        return False


class _CountingExporter(SpanExporter):
    """Counts exported and failed spans, and warns once when the backend is unreachable."""

    def __init__(self, inner: SpanExporter, target: str, store: MetricStore) -> None:
        self.inner = inner
        self.target = target
        self.counter = store.counter(c.SPANS_EXPORTED)
        self.failing = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception as exc:  # an exporter bug must not kill the export thread
            logger.debug("span exporter raised", exc_info=exc)
            result = SpanExportResult.FAILURE
        ok = result == SpanExportResult.SUCCESS
        self.counter.inc(("success" if ok else "failure",), len(spans))
        if not ok and not self.failing:
            self.failing = True
            logger.warning(
                "tta_observability: cannot export spans to %s; spans are dropped until it is "
                "reachable (the application is unaffected; see "
                'tta_observability_spans_exported_total{result="failure"})',
                self.target,
            )
        elif ok and self.failing:
            self.failing = False
            logger.info("tta_observability: span export to %s recovered", self.target)
        return result

    def shutdown(self, timeout_millis: float = 30000) -> None:
        # The batch processor passes what is left of its timeout only to exporters that take it.
        if "timeout_millis" in inspect.signature(self.inner.shutdown).parameters:
            self.inner.shutdown(timeout_millis=timeout_millis)  # type: ignore[call-arg]
        else:
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _CountingBatchProcessor(BatchSpanProcessor):
    """A bounded batch processor that counts the spans it drops when its queue is full."""

    def __init__(self, exporter: SpanExporter, store: MetricStore, max_queue_size: int) -> None:
        super().__init__(
            exporter, max_queue_size=max_queue_size, max_export_batch_size=min(512, max_queue_size)
        )
        self.dropped = store.counter(c.SPANS_DROPPED)
        self.max_queue_size = max_queue_size

    def on_end(self, span: ReadableSpan) -> None:
        queued = batch_queue_length(self)
        if queued is not None and queued >= self.max_queue_size:
            self.dropped.inc(())
        super().on_end(span)


def sampler(settings: Settings) -> Sampler:
    kind, ratio = settings.sampler, settings.sample_ratio
    base: Sampler
    if kind.endswith("always_on"):
        base = ALWAYS_ON
    elif kind.endswith("always_off"):
        base = ALWAYS_OFF
    else:
        base = TraceIdRatioBased(ratio)
    return ParentBased(base) if kind.startswith("parentbased") else base


def exporter(settings: Settings) -> tuple[SpanExporter, str] | None:
    if settings.exporter == "none":
        return None
    if settings.exporter == "console":
        return ConsoleSpanExporter(service_name=settings.service_name), "the console"
    endpoint = settings.otlp_endpoint
    if settings.otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        parsed = urlparse(endpoint) if endpoint else None
        insecure = parsed.scheme == "http" if parsed else None
        exporter: SpanExporter = GrpcExporter(
            endpoint=endpoint, insecure=insecure, timeout=settings.otlp_timeout
        )
        return exporter, endpoint or "the default OTLP/gRPC endpoint (localhost:4317)"
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    if endpoint and urlparse(endpoint).path in ("", "/"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    return (
        HttpExporter(endpoint=endpoint, timeout=settings.otlp_timeout),
        endpoint or "the default OTLP/HTTP endpoint (localhost:4318)",
    )


#: The global provider an earlier setup() installed: the API cannot replace it, so a later
#: setup() gives it that setup's resource and sampler instead.
_installed_provider: TracerProvider | None = None


def _resource(settings: Settings) -> Resource:
    return Resource.create(
        {
            "service.name": settings.service_name,
            "service.version": settings.service_version,
            "deployment.environment.name": settings.environment,
        }
    )


def _provider(settings: Settings) -> tuple[TracerProvider, bool]:
    """The provider to add to, and whether it is ours (installed by this library)."""
    global _installed_provider
    if settings.tracer_provider is not None:
        return settings.tracer_provider, False
    current = trace.get_tracer_provider()
    if current is _installed_provider and _installed_provider is not None:
        compat.reconfigure_provider(_installed_provider, _resource(settings), sampler(settings))
        return _installed_provider, True
    if isinstance(current, TracerProvider):
        return current, False  # the app's own: add to it, never replace it
    provider = TracerProvider(resource=_resource(settings), sampler=sampler(settings))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is provider:
        _installed_provider = provider
    return provider, True


def start_traces(
    settings: Settings, store: MetricStore
) -> tuple[TracerProvider, Callable[[float], None]]:
    """Point the library's tracer at a provider with our exporter; returns ``close(timeout)``."""
    if "sample_ratio" in settings.given and (
        settings.tracer_provider is not None
        or (
            isinstance(trace.get_tracer_provider(), TracerProvider)
            and trace.get_tracer_provider() is not _installed_provider
        )
    ):
        logger.warning(
            "tta_observability: sample_ratio=%s is ignored: the tracer provider already exists "
            "and keeps its own sampler",
            settings.sample_ratio,
        )
    provider, owned = _provider(settings)
    made = exporter(settings)
    processor: _CountingBatchProcessor | None = None
    log_filter: _ExportLogFilter | None = None
    if made is None:
        logger.info(
            "tta_observability: no span exporter configured (set OTEL_EXPORTER_OTLP_ENDPOINT or "
            "traces_exporter=); spans are still created for exemplars and log correlation"
        )
    else:
        span_exporter, target = made
        processor = _CountingBatchProcessor(
            _CountingExporter(span_exporter, target, store), store, settings.max_queue_size
        )
        provider.add_span_processor(processor)
        log_filter = _ExportLogFilter()
        for name in _OTLP_LOGGERS:
            logging.getLogger(name).addFilter(log_filter)
    STATE.tracer = provider.get_tracer(INSTRUMENTATION_NAME, __about__.__version__)

    def close(timeout: float) -> None:
        export_thread_alive = False
        if processor is not None:
            try:
                export_thread_alive = compat.shutdown_batch(processor, timeout)
            except Exception as exc:
                logger.warning("tta_observability: span processor shutdown failed: %r", exc)
            compat.remove_span_processor(provider, processor)
        if log_filter is not None and not export_thread_alive:
            for name in _OTLP_LOGGERS:
                logging.getLogger(name).removeFilter(log_filter)
        if owned:
            # The provider we installed cannot be removed from the API; stop paying for spans
            # nobody exports.
            STATE.tracer = trace.NoOpTracer()
        else:
            STATE.reset_tracer()

    close.processor = processor  # type: ignore[attr-defined]
    return provider, close
