"""Stand-in for ``ttadev.observability.observability_integration.initialize_observability``:
like TTA.dev's, it makes a TracerProvider and asks OpenTelemetry to make it global (refused,
with a warning, when one is set already), and an OpenTelemetry ``PrometheusMetricReader``,
which registers into prometheus_client's default registry and serves nothing itself; it only
announces port 9464. Callable once per process, as TTA.dev's."""

from __future__ import annotations

import logging

from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

logger = logging.getLogger(__name__)
_initialized = False
tracer_provider: TracerProvider | None = None
reader: PrometheusMetricReader | None = None


def initialize_observability(
    service_name: str = "tta", enable_prometheus: bool = True, prometheus_port: int = 9464
) -> bool:
    global _initialized, tracer_provider, reader
    if _initialized:
        return True
    resource = Resource.create({"service.name": service_name})
    tracer_provider = TracerProvider(resource=resource)
    trace.set_tracer_provider(tracer_provider)
    if enable_prometheus:
        reader = PrometheusMetricReader()
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
        logger.info("Prometheus metrics enabled on port %s", prometheus_port)
    _initialized = True
    return True
