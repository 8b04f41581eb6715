"""``setup()`` and its handle: tracer provider, exporter, sampler, metrics endpoint, build info.

Nothing global is changed without a way back: processors we add are shut down by
``shutdown()``, the store is unregistered from the registry, the server stops, log filters go.
The one exception is installing a global ``TracerProvider`` when none was set, which the
OpenTelemetry API does not allow to undo.
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
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
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

from . import __about__, discovery, llm, logs
from . import contract as c
from . import slo_file as slo_file_mod
from ._state import INSTRUMENTATION_NAME, STATE, logger
from .config import DEFAULT_METRICS_PORT, ConfigError, Settings, resolve
from .metrics import STORE, MetricStore
from .observed import bind_slo, unbind_slo
from .slo import SLO

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
        try:
            queue = self._batch_processor._queue
            if len(queue) >= self.max_queue_size:
                self.dropped.inc(())
        except Exception:
            pass
        super().on_end(span)


def _sampler(settings: Settings) -> Sampler:
    kind, ratio = settings.sampler, settings.sample_ratio
    base: Sampler
    if kind.endswith("always_on"):
        base = ALWAYS_ON
    elif kind.endswith("always_off"):
        base = ALWAYS_OFF
    else:
        base = TraceIdRatioBased(ratio)
    return ParentBased(base) if kind.startswith("parentbased") else base


def _exporter(settings: Settings, otlp_timeout: float) -> tuple[SpanExporter, str] | None:
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
            endpoint=endpoint, insecure=insecure, timeout=otlp_timeout
        )
        return exporter, endpoint or "the default OTLP/gRPC endpoint (localhost:4317)"
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    if endpoint and urlparse(endpoint).path in ("", "/"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    return (
        HttpExporter(endpoint=endpoint, timeout=otlp_timeout),
        endpoint or "the default OTLP/HTTP endpoint (localhost:4318)",
    )


class Handle:
    """What ``setup()`` started. ``shutdown()`` undoes it; it is safe to call twice."""

    def __init__(self, settings: Settings, registry: CollectorRegistry, store: MetricStore) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.tracer_provider: TracerProvider | None = None
        self.span_processor: BatchSpanProcessor | None = None
        self.metrics_host: str | None = None
        self.metrics_port: int | None = None
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._log_filter: _ExportLogFilter | None = None
        #: True when setup() installed the global TracerProvider itself.
        self.owns_provider = False
        self._closers: list[Any] = []
        #: The file_sd target file announcing this app, when ``sd_dir`` was given.
        self.sd_file: os.PathLike[str] | None = None
        self._lock = threading.Lock()
        self.is_shutdown = False

    @property
    def service_name(self) -> str:
        return self.settings.service_name

    @property
    def environment(self) -> str:
        return self.settings.environment

    @property
    def metrics_url(self) -> str | None:
        if self.metrics_port is None:
            return None
        return f"http://{self.metrics_host}:{self.metrics_port}/metrics"

    def add_closer(self, closer: Any) -> None:
        """Run ``closer()`` at shutdown (last added runs first)."""
        self._closers.append(closer)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush spans (for at most ``timeout`` seconds), stop the server, undo ``setup()``."""
        global _HANDLE
        with self._lock:
            if self.is_shutdown:
                return
            self.is_shutdown = True
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception as exc:
                logger.warning("tta_observability: shutdown step failed: %r", exc)
        export_thread_alive = False
        if self.span_processor is not None:
            try:
                # Not force_flush(): in the SDK it ignores its timeout and exports the whole
                # queue synchronously, which takes minutes when the collector is unreachable.
                inner = getattr(self.span_processor, "_batch_processor", None)
                if inner is not None:
                    inner.shutdown(timeout_millis=int(timeout * 1000))
                    # The export thread stops a moment after the exporter's shutdown; wait
                    # briefly so its last words still pass through our log filter.
                    worker = getattr(inner, "_worker_thread", None)
                    if worker is not None:
                        worker.join(1.0)
                        export_thread_alive = worker.is_alive()
                else:
                    self.span_processor.shutdown()  # type: ignore[no-untyped-call]
            except Exception as exc:
                logger.warning("tta_observability: span processor shutdown failed: %r", exc)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with contextlib.suppress(KeyError):
            self.registry.unregister(self.store)
        if self._log_filter is not None and not export_thread_alive:
            for name in _OTLP_LOGGERS:
                logging.getLogger(name).removeFilter(self._log_filter)
        if self.owns_provider:
            # The provider we installed cannot be removed from the API; stop paying for spans
            # nobody exports.
            STATE.tracer = trace.NoOpTracer()
        else:
            STATE.reset_tracer()
        atexit.unregister(self.shutdown)
        with _SETUP_LOCK:
            if _HANDLE is self:
                _HANDLE = None


_HANDLE: Handle | None = None
# Reentrant: a setup() that fails half-way calls shutdown(), which takes the lock too.
_SETUP_LOCK = threading.RLock()


def current() -> Handle | None:
    """The handle of the running ``setup()``, if any."""
    return _HANDLE


def setup(
    service_name: str | None = None,
    *,
    service_version: str | None = None,
    environment: str | None = None,
    commit: str | None = None,
    traces_exporter: str | None = None,
    otlp_endpoint: str | None = None,
    otlp_protocol: str | None = None,
    otlp_timeout: float = 10.0,
    sample_ratio: float | None = None,
    tracer_provider: TracerProvider | None = None,
    max_queue_size: int = 2048,
    registry: CollectorRegistry | None = None,
    metrics_port: int | None = DEFAULT_METRICS_PORT,
    metrics_host: str = "127.0.0.1",
    max_label_values: int = c.DEFAULT_MAX_LABEL_VALUES,
    slos: Iterable[SLO] = (),
    slo_file: str | os.PathLike[str] | None = None,
    sd_dir: str | os.PathLike[str] | None = None,
    log_correlation: bool = True,
    llm_prices: Mapping[str, Any] | None = None,
    llm_budget_usd_per_hour: float | None = None,
    handle_sigterm: bool = True,
    capture_exception_messages: bool = False,
) -> Handle:
    """Start observability for this process; call once at start-up.

    Settings not given as arguments come from the standard OpenTelemetry variables
    (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_*``,
    ``OTEL_TRACES_SAMPLER``/``_ARG``). A second call returns the running handle.

    ``metrics_port``: 9464 by default, 0 for a free port (see ``handle.metrics_port``), None for
    no server (mount :func:`tta_observability.metrics_wsgi_app` yourself).

    ``sd_dir`` (else ``$TTA_OBSERVABILITY_SD_DIR``): a Prometheus ``file_sd_configs`` directory
    where the metrics endpoint is announced while the app runs, and removed at shutdown.

    ``slo_file``: a YAML file of SLOs (see ``docs/slos.md``); the primitives it names count
    towards their SLO. An invalid file raises :class:`~tta_observability.slo_file.SLOFileError`
    naming the file, the line and the problem.

    ``log_correlation``: add ``trace_id``, ``span_id`` and ``workflow_id`` to every log record.
    ``llm_budget_usd_per_hour``: exported as ``tta_llm_budget_usd_per_hour``, the threshold of
    the ``TTALLMCostOverBudget`` alert for this service (10 USD/hour when not given).

    ``handle_sigterm``: run ``shutdown()`` on SIGTERM (what process managers send), then let
    the signal do what it did before; ``atexit`` alone does not run on SIGTERM.

    ``capture_exception_messages``: record exception messages on spans. Off by default: a
    message often carries argument values (an email, a token); the type is always recorded.

    ``llm_prices``: model (or ``provider/model``) to USD per million input/output tokens, for
    ``tta_llm_cost_usd_total`` when a call does not state its cost.
    """
    global _HANDLE
    with _SETUP_LOCK:
        if _HANDLE is not None:
            logger.warning(
                "tta_observability: setup() already ran; this call's arguments are ignored and "
                "the running handle is returned (call handle.shutdown() first to change settings)"
            )
            return _HANDLE
        _check_arguments(registry, tracer_provider, metrics_host, otlp_timeout, log_correlation)
        if metrics_port is not None and (
            isinstance(metrics_port, bool)
            or not isinstance(metrics_port, int)
            or not 0 <= metrics_port <= 65535
        ):
            raise ConfigError(f"metrics_port must be 0 to 65535 or None, got {metrics_port!r}")
        if (
            isinstance(max_label_values, bool)
            or not isinstance(max_label_values, int)
            or (max_label_values < 1)
        ):
            raise ConfigError(f"max_label_values must be a positive int, got {max_label_values!r}")
        if not isinstance(max_queue_size, int) or max_queue_size < 1:
            raise ConfigError(f"max_queue_size must be a positive int, got {max_queue_size!r}")
        slo_list = list(slos)
        for slo in slo_list:
            if not isinstance(slo, SLO):
                raise ConfigError(f"slos must hold tta_observability.SLO objects, got {slo!r}")
        specs = slo_file_mod.load_slo_file(os.fspath(slo_file)) if slo_file is not None else []
        slo_list += [spec.slo for spec in specs]
        settings = resolve(
            service_name=service_name,
            service_version=service_version,
            environment=environment,
            commit=commit,
            exporter=traces_exporter,
            otlp_endpoint=otlp_endpoint,
            otlp_protocol=otlp_protocol,
            sample_ratio=sample_ratio,
        )
        if llm_budget_usd_per_hour is not None and (
            isinstance(llm_budget_usd_per_hour, bool)
            or not isinstance(llm_budget_usd_per_hour, int | float)
            or not llm_budget_usd_per_hour > 0
        ):
            raise ConfigError(
                "llm_budget_usd_per_hour must be a positive number of US dollars, "
                f"got {llm_budget_usd_per_hour!r}"
            )
        if llm_prices is not None:
            llm.set_prices(llm_prices)  # validates before anything is started
        store = STORE
        registry = REGISTRY if registry is None else registry
        handle = Handle(settings, registry, store)
        try:
            store.service_name = settings.service_name
            store.environment = settings.environment
            store.build_info = (settings.service_version, settings.commit, __about__.__version__)
            store.set_label_limit(max_label_values)
            for slo in slo_list:
                store.slo(slo)
            bindings = slo_file_mod.slos_by_primitive(specs)
            for primitive, slo in bindings.items():
                bind_slo(slo, [primitive])
            if bindings:
                handle.add_closer(lambda: unbind_slo(bindings))
            budget = store.counter(c.LLM_BUDGET)
            if llm_budget_usd_per_hour is not None:
                budget.set((), float(llm_budget_usd_per_hour))
                handle.add_closer(budget.clear)

            _setup_traces(handle, tracer_provider, max_queue_size, otlp_timeout, sample_ratio)
            # Registered already by an earlier setup() in this process: keep that.
            with contextlib.suppress(ValueError):
                registry.register(store)
            if metrics_port is not None:
                _start_server(handle, metrics_host, metrics_port)
                _announce(handle, sd_dir)
            if llm_prices is not None:
                handle.add_closer(lambda: llm.set_prices(None))
            if log_correlation:
                handle.add_closer(logs.install_log_filter())
            if handle_sigterm:
                _handle_sigterm(handle)
            if capture_exception_messages:
                STATE.capture_exception_messages = True
                handle.add_closer(_stop_capturing_messages)
        except BaseException:
            # Undo whatever was started, so a corrected retry starts clean.
            handle.shutdown()
            raise
        atexit.register(handle.shutdown)
        _HANDLE = handle
        return handle


def _stop_capturing_messages() -> None:
    STATE.capture_exception_messages = False


def _check_arguments(
    registry: object,
    tracer_provider: object,
    metrics_host: object,
    otlp_timeout: object,
    log_correlation: object,
) -> None:
    """Reject bad arguments before anything is started."""
    if registry is not None and not isinstance(registry, CollectorRegistry):
        raise ConfigError(
            f"registry must be a prometheus_client.CollectorRegistry, got {type(registry).__name__}"
        )
    if tracer_provider is not None and not isinstance(tracer_provider, TracerProvider):
        raise ConfigError(
            "tracer_provider must be an opentelemetry.sdk.trace.TracerProvider, "
            f"got {type(tracer_provider).__name__}"
        )
    if not isinstance(metrics_host, str) or not metrics_host:
        raise ConfigError(f"metrics_host must be a host name or address, got {metrics_host!r}")
    if (
        isinstance(otlp_timeout, bool)
        or not isinstance(otlp_timeout, int | float)
        or not otlp_timeout > 0
    ):
        raise ConfigError(
            f"otlp_timeout must be a positive number of seconds, got {otlp_timeout!r}"
        )
    if not isinstance(log_correlation, bool):
        raise ConfigError(f"log_correlation must be True or False, got {log_correlation!r}")


def _setup_traces(
    handle: Handle,
    provider: TracerProvider | None,
    max_queue_size: int,
    otlp_timeout: float,
    sample_ratio: float | None = None,
) -> None:
    settings = handle.settings
    if sample_ratio is not None and (
        provider is not None or isinstance(trace.get_tracer_provider(), TracerProvider)
    ):
        logger.warning(
            "tta_observability: sample_ratio=%s is ignored: the tracer provider already exists "
            "and keeps its own sampler",
            sample_ratio,
        )
    if provider is None:
        current_provider = trace.get_tracer_provider()
        if isinstance(current_provider, TracerProvider):
            provider = current_provider  # the app's own: add to it, never replace it
        else:
            resource = Resource.create(
                {
                    "service.name": settings.service_name,
                    "service.version": settings.service_version,
                    "deployment.environment.name": settings.environment,
                }
            )
            provider = TracerProvider(resource=resource, sampler=_sampler(settings))
            trace.set_tracer_provider(provider)
            handle.owns_provider = True
    handle.tracer_provider = provider
    made = _exporter(settings, otlp_timeout)
    if made is None:
        logger.info(
            "tta_observability: no span exporter configured (set OTEL_EXPORTER_OTLP_ENDPOINT or "
            "traces_exporter=); spans are still created for exemplars and log correlation"
        )
    else:
        exporter, target = made
        processor = _CountingBatchProcessor(
            _CountingExporter(exporter, target, handle.store), handle.store, max_queue_size
        )
        provider.add_span_processor(processor)
        handle.span_processor = processor
        handle._log_filter = _ExportLogFilter()
        for name in _OTLP_LOGGERS:
            logging.getLogger(name).addFilter(handle._log_filter)
    STATE.tracer = provider.get_tracer(INSTRUMENTATION_NAME, __about__.__version__)


def _start_server(handle: Handle, host: str, port: int) -> None:
    try:
        server, thread = start_http_server(port, addr=host, registry=handle.registry)
    except OSError as exc:
        # Two workers of one app commonly race for the same port: warn, keep the app running.
        logger.warning(
            "tta_observability: cannot serve metrics on %s:%s (%s); no metrics endpoint started",
            host,
            port,
            exc,
        )
        return
    handle._server, handle._server_thread = server, thread
    handle.metrics_host = host
    handle.metrics_port = int(server.server_port)


def _handle_sigterm(handle: Handle) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be installed from the main thread
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        handle.shutdown()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            # Die of the signal as the process would have, so its exit status says so.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    try:
        signal.signal(signal.SIGTERM, on_sigterm)
    except (ValueError, OSError) as exc:
        logger.debug("tta_observability: cannot handle SIGTERM: %s", exc)
        return

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)

    handle.add_closer(restore)


def _announce(handle: Handle, sd_dir: str | os.PathLike[str] | None) -> None:
    directory = discovery.resolve_sd_dir(sd_dir)
    if directory is None or handle.metrics_port is None or handle.metrics_host is None:
        return
    host = handle.metrics_host
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()  # listening everywhere: name this host, not "any address"
    try:
        path = discovery.register(
            directory,
            host,
            handle.metrics_port,
            {"service_name": handle.service_name, "environment": handle.environment},
        )
    except (OSError, ValueError) as exc:
        logger.warning("tta_observability: cannot register in discovery dir %s: %s", directory, exc)
        return
    handle.sd_file = path
    handle.add_closer(lambda: discovery.unregister(path))


def metrics_wsgi_app(registry: CollectorRegistry | None = None) -> Any:
    """A WSGI app serving /metrics (OpenMetrics with exemplars when asked).

    For apps that pass ``metrics_port=None`` and serve metrics themselves.
    """
    from prometheus_client import make_wsgi_app

    return make_wsgi_app(_registry(registry))


def metrics_asgi_app(registry: CollectorRegistry | None = None) -> Any:
    """An ASGI app serving /metrics, for ``metrics_port=None``."""
    from prometheus_client import make_asgi_app

    return make_asgi_app(_registry(registry))


def _registry(registry: CollectorRegistry | None) -> CollectorRegistry:
    """The given registry, else the running setup()'s, else prometheus-client's default."""
    if registry is not None:
        return registry
    return _HANDLE.registry if _HANDLE is not None else REGISTRY
