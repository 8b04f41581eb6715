"""``setup()`` and its handle: orchestration over one starter per concern.

``setup()`` resolves every argument and variable into one frozen :class:`Settings` (see
:mod:`._settings`) before anything starts, then runs the starters in order. Each starter returns
its own closer; ``shutdown()`` runs them in reverse, so it removes exactly what ``setup()`` added
(the span processor, the registry entry, the server, the log factory, the signal handler, the
discovery file). The one thing the OpenTelemetry API does not let us undo, the global provider
installed when none was set, is reused by the next ``setup()`` with that setup's resource and
sampler.

Forks: a child process starts with its own span export thread (the SDK restarts it), its own
metric values, and a handle that no longer owns the parent's server, signal handler or discovery
file, so ``sys.exit()``, ``Pool.terminate()`` and ``with Pool()`` behave as without the library.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

from . import __about__, _signals, _tracing, discovery, llm, logs
from . import contract as c
from . import slo_file as slo_file_mod
from ._call import CURRENT_CALL
from ._settings import DEFAULT_METRICS_PORT, ConfigError, Settings, resolve
from ._state import STATE, logger
from .metrics import STORE, MetricStore
from .metrics.guards import SERIES_PER_LABEL_VALUE
from .metrics.http import asgi_app, start_server, wsgi_app
from .metrics.values import Multiprocess
from .observed import bind_slo, unbind_slo
from .slo import SLO

Closer = Callable[[], None]


class Handle:
    """What ``setup()`` started. ``shutdown()`` undoes it; it is safe to call twice."""

    def __init__(self, settings: Settings, registry: CollectorRegistry, store: MetricStore) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.tracer_provider: TracerProvider | None = None
        self.metrics_host: str | None = None
        self.metrics_port: int | None = None
        #: The file_sd target file announcing this app, when ``sd_dir`` was given.
        self.sd_file: os.PathLike[str] | None = None
        #: Why no endpoint was started in this process, when one was asked for.
        self.metrics_unavailable: str | None = None
        self.pid = os.getpid()
        self.is_shutdown = False
        self._server: Any = None
        # (closer, also in a forked child): run last-added first.
        self._closers: list[tuple[Closer, bool]] = []
        self._timeout = 5.0
        self._lock = threading.Lock()

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

    def add_closer(self, closer: Closer, in_children: bool = False) -> None:
        """Run ``closer()`` at shutdown (last added runs first).

        ``in_children``: also in a process forked after setup(); otherwise the closer belongs to
        the process that ran setup() (its server, its signal handler, its discovery file).
        """
        self._closers.append((closer, in_children))

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush spans (for at most ``timeout`` seconds), stop the server, undo ``setup()``."""
        global _HANDLE
        with self._lock:
            if self.is_shutdown:
                return
            self.is_shutdown = True
        self._timeout = timeout
        for closer, _ in reversed(self._closers):
            try:
                closer()
            except Exception as exc:
                logger.warning("tta_observability: shutdown step failed: %r", exc)
        self._closers.clear()
        atexit.unregister(self.shutdown)
        with _SETUP_LOCK:
            if _HANDLE is self:
                _HANDLE = None

    def _after_fork_in_child(self) -> None:
        """This process is a fresh child: keep only what is its own."""
        self._lock = threading.Lock()
        self.pid = os.getpid()
        if self._server is not None:
            # The listening socket stays the parent's; the child's copy must not keep the port.
            with contextlib.suppress(OSError):
                self._server.socket.close()
            self._server = None
        self._closers = [(closer, True) for closer, keep in self._closers if keep]
        if self.settings.handle_sigterm:
            _signals.restore_in_child(self.store.multiprocess)


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
    otlp_timeout: float | None = None,
    sample_ratio: float | None = None,
    tracer_provider: TracerProvider | None = None,
    max_queue_size: int | None = None,
    registry: CollectorRegistry | None = None,
    metrics_port: int | None = DEFAULT_METRICS_PORT,
    metrics_host: str | None = None,
    max_label_values: int | None = None,
    multiprocess_dir: str | os.PathLike[str] | None = None,
    slos: Iterable[SLO] = (),
    slo_file: str | os.PathLike[str] | None = None,
    sd_dir: str | os.PathLike[str] | None = None,
    log_correlation: bool | None = None,
    llm_prices: Mapping[str, Any] | None = None,
    llm_budget_usd_per_hour: float | None = None,
    llm_budget_usd_per_month: float | None = None,
    handle_sigterm: bool | None = None,
    capture_exception_messages: bool | None = None,
) -> Handle:
    """Start observability for this process; call once at start-up.

    Settings not given as arguments come from the standard OpenTelemetry variables
    (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_*``,
    ``OTEL_TRACES_SAMPLER``/``_ARG``); docs/setup.md has the table. A second call returns the
    running handle.

    ``metrics_port``: 9464 by default, 0 for a free port (see ``handle.metrics_port``), None for
    no server (mount :func:`tta_observability.metrics_wsgi_app` yourself).

    ``multiprocess_dir`` (else ``$TTA_OBSERVABILITY_MULTIPROCESS_DIR``): for servers with several
    worker processes: every process writes its values to its own file there, and the endpoint
    serves the sum over all of them (docs/setup.md, "Several processes").

    ``sd_dir`` (else ``$TTA_OBSERVABILITY_SD_DIR``): a Prometheus ``file_sd_configs`` directory
    where the metrics endpoint is announced while the app runs, and removed at shutdown.

    ``slo_file``: a YAML file of SLOs (see ``docs/slos.md``); the primitives it names count
    towards their SLO. An invalid file raises :class:`~tta_observability.slo_file.SLOFileError`
    naming the file, the line and the problem.

    ``log_correlation``: add ``trace_id``, ``span_id`` and ``workflow_id`` to every log record.
    ``llm_budget_usd_per_hour``: exported as ``tta_llm_budget_usd_per_hour``, the threshold of
    the ``TTALLMCostOverBudget`` alert for this service (10 USD/hour when not given).
    ``llm_budget_usd_per_month`` (else ``$TTA_LLM_BUDGET_USD_PER_MONTH``): exported as
    ``tta_llm_budget_usd_per_month``; ``TTALLMBudgetBurn`` pages when the spend rate would use it
    up in days, and warns when it would run out before the month does (docs/llm.md).

    ``handle_sigterm``: on SIGTERM with no handler of the app's, flush spans, then die of the
    signal as before. An app (or server) handler installed before setup() runs instead, and
    telemetry is shut down at exit, after the app has drained (docs/setup.md).

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
        settings = resolve(
            service_name=service_name,
            service_version=service_version,
            environment=environment,
            commit=commit,
            traces_exporter=traces_exporter,
            otlp_endpoint=otlp_endpoint,
            otlp_protocol=otlp_protocol,
            otlp_timeout=otlp_timeout,
            sample_ratio=sample_ratio,
            tracer_provider=tracer_provider,
            max_queue_size=max_queue_size,
            registry=registry,
            # None is a valid port (no server): tell it apart from "not given".
            metrics_port="none" if metrics_port is None else metrics_port,
            metrics_host=metrics_host,
            max_label_values=max_label_values,
            multiprocess_dir=multiprocess_dir,
            slos=tuple(slos),
            slo_file=slo_file,
            sd_dir=sd_dir,
            log_correlation=log_correlation,
            llm_prices=llm_prices,
            llm_budget_usd_per_hour=llm_budget_usd_per_hour,
            llm_budget_usd_per_month=llm_budget_usd_per_month,
            handle_sigterm=handle_sigterm,
            capture_exception_messages=capture_exception_messages,
        )
        specs = slo_file_mod.load_slo_file(settings.slo_file) if settings.slo_file else []
        if settings.llm_prices is not None:
            llm.set_prices(settings.llm_prices)  # validates before anything is started
        handle = Handle(settings, settings.registry or REGISTRY, STORE)
        try:
            _start(handle, specs)
        except BaseException:
            # Undo whatever was started, so a corrected retry starts clean.
            handle.shutdown()
            raise
        atexit.register(handle.shutdown)
        _HANDLE = handle
        return handle


def _start(handle: Handle, specs: list[slo_file_mod.SLOSpec]) -> None:
    """The starters, in order; each registers its closer as soon as it has started."""
    settings = handle.settings
    handle.add_closer(_start_store(handle, specs), in_children=True)
    handle.add_closer(_start_multiprocess(handle), in_children=True)
    provider, close_traces = _tracing.start_traces(settings, handle.store)
    handle.tracer_provider = provider
    handle.add_closer(lambda: close_traces(handle._timeout), in_children=True)
    handle.add_closer(_start_registry(handle))
    if settings.metrics_port is not None:
        handle.add_closer(_start_server(handle))
        _announce(handle, settings.sd_dir)
    if settings.llm_prices is not None:
        handle.add_closer(lambda: llm.set_prices(None), in_children=True)
    if settings.log_correlation:
        handle.add_closer(logs.install_log_filter(), in_children=True)
        handle.add_closer(logs.install_structlog(), in_children=True)
    if settings.handle_sigterm:
        handle.add_closer(_signals.install(handle.shutdown) or _nothing)
    if settings.capture_exception_messages:
        STATE.capture_exception_messages = True
        handle.add_closer(_stop_capturing_messages, in_children=True)


def _start_store(handle: Handle, specs: list[slo_file_mod.SLOSpec]) -> Closer:
    settings, store = handle.settings, handle.store
    store.service_name = settings.service_name
    store.environment = settings.environment
    store.build_info = (settings.service_version, settings.commit, __about__.__version__)
    store.set_label_limit(settings.max_label_values)
    for slo in (*settings.slos, *(spec.slo for spec in specs)):
        store.slo(slo)
    bindings = slo_file_mod.slos_by_primitive(specs)
    for primitive, slo in bindings.items():
        bind_slo(slo, [primitive])
    # The budgets this setup() exported, removed again by its shutdown.
    budgets = [
        (store.counter(metric), value)
        for metric, value in (
            (c.LLM_BUDGET, settings.llm_budget_usd_per_hour),
            (c.LLM_BUDGET_MONTH, settings.llm_budget_usd_per_month),
        )
        if value is not None
    ]
    for gauge, value in budgets:
        gauge.set((), float(value))

    def close() -> None:
        if bindings:
            unbind_slo(bindings)
        for gauge, _ in budgets:
            gauge.clear()

    return close


def _start_multiprocess(handle: Handle) -> Closer:
    """Write this process's values to its own file in the directory, and serve the sum of all."""
    directory = handle.settings.multiprocess_dir
    if directory is None:
        return _nothing
    store = handle.store
    files = Multiprocess(
        directory,
        store.raw,
        tick=lambda: _claim_port(handle),
        series_limit=lambda: SERIES_PER_LABEL_VALUE * store.max_label_values,
    )
    store.multiprocess = files
    files.start()
    _flush_at_pool_exit(files)

    def close() -> None:
        files.close()
        if store.multiprocess is files:
            store.multiprocess = None

    return close


def _start_registry(handle: Handle) -> Closer:
    # Registered already by an earlier setup() in this process: keep that.
    with contextlib.suppress(ValueError):
        handle.registry.register(handle.store)

    def close() -> None:
        with contextlib.suppress(KeyError):
            handle.registry.unregister(handle.store)

    return close


def _start_server(handle: Handle) -> Closer:
    host, port = handle.settings.metrics_host, handle.settings.metrics_port
    assert port is not None
    try:
        server, _thread = start_server(port, host, handle.registry)
    except OSError as exc:
        if handle.store.multiprocess is not None and not _held_by_this_process(port):
            # The expected case with several workers: one of them serves the sum of all, and
            # this one takes the port over if that one exits (see _claim_port).
            handle.metrics_unavailable = (
                f"tta_observability: port {host}:{port} is held by another process; this "
                f"process's values go to {handle.settings.multiprocess_dir} and are served "
                "there (multiprocess mode)"
            )
            logger.info("%s", handle.metrics_unavailable)
        else:
            handle.metrics_unavailable = _port_clash_message(handle, host, port, exc)
            logger.warning("%s", handle.metrics_unavailable)
        return _nothing
    _serving(handle, server, host)

    def close() -> None:
        if handle._server is not None:
            handle._server.shutdown()
            handle._server.server_close()
            handle._server = None

    return close


def _serving(handle: Handle, server: Any, host: str) -> None:
    handle._server = server
    handle.metrics_host = host
    handle.metrics_port = int(server.server_port)
    handle.metrics_unavailable = None


def _claim_port(handle: Handle) -> None:
    """Multiprocess mode: serve the port once the process that held it has exited.

    Runs on the flusher thread, once a second, in processes that wanted the port and did not
    get it: when the serving worker is recycled, another one takes over within a second.
    """
    port = handle.settings.metrics_port
    if handle.is_shutdown or handle._server is not None or not port:
        return
    if handle.metrics_unavailable is None:
        return  # never asked for, or given up: only a lost race is retried
    host = handle.settings.metrics_host
    try:
        server, _thread = start_server(port, host, handle.registry)
    except OSError:
        return
    _serving(handle, server, host)
    logger.info("tta_observability: now serving metrics on %s:%s", host, port)


def _nothing() -> None:
    pass


def _port_clash_message(handle: Handle, host: str, port: int, exc: OSError) -> str:
    """Say what is lost and how to fix it, not only that the port is taken."""
    if _held_by_this_process(port):
        if handle.registry is REGISTRY:
            return (
                f"tta_observability: port {host}:{port} is already served by this process "
                "(another exporter on prometheus-client's default registry): the library's "
                "metrics are served there; no second endpoint started"
            )
        return (
            f"tta_observability: port {host}:{port} is already served by this process with "
            "another registry: the library's metrics (in the registry given to setup()) are NOT "
            "exposed; pass that server's registry to setup(registry=...) or pick another "
            "metrics_port"
        )
    return (
        f"tta_observability: cannot serve metrics on {host}:{port} ({exc.strerror or exc}): "
        "another process holds the port, so this process's metrics are not exposed and a "
        "scrape of that port does not count its calls. With several worker processes use "
        "setup(multiprocess_dir=...) (or TTA_OBSERVABILITY_MULTIPROCESS_DIR), so the process "
        "holding the port serves the sum of all of them; or pass metrics_port=0 with sd_dir= "
        "so that each process is discovered and scraped on its own port"
    )


def _held_by_this_process(port: int) -> bool:
    """True when a listening socket of this process has ``port`` (Linux /proc; else False)."""
    try:
        inodes = set()
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/self/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError), open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, state, inode = fields[1], fields[3], fields[9]
                    listening = state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
                    if listening and inode in inodes:
                        return True
    except (OSError, ValueError, IndexError):
        return False
    return False


def _flush_at_pool_exit(files: Multiprocess) -> None:
    """multiprocessing's children end with os._exit (no atexit), after its finalizers run.

    Registered from multiprocessing's own after-fork hook: a process it starts clears the
    finalizers it inherited before running those hooks.
    """
    import multiprocessing.util

    multiprocessing.util.register_after_fork(files, _register_pool_flush)


def _register_pool_flush(files: Multiprocess) -> None:
    import multiprocessing.util

    multiprocessing.util.Finalize(None, files.flush, exitpriority=100)


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


def _stop_capturing_messages() -> None:
    STATE.capture_exception_messages = False


def _calls_on_this_stack() -> dict[int, int]:
    """``id(series)`` -> the calls of that primitive under way on this thread (in this context).

    After a fork inside an observed call, the child returns from those calls and records their
    ends: its in-flight count must start from them, or the summed gauge drops below zero.
    """
    counts: dict[int, int] = {}
    call = CURRENT_CALL.get()
    while call is not None:
        key = id(call.inst.series)
        counts[key] = counts.get(key, 0) + 1
        call = call.parent
    return counts


def _after_fork_in_child() -> None:
    try:
        STORE.after_fork_in_child(_calls_on_this_stack())
        handle = _HANDLE
        if handle is not None:
            handle._after_fork_in_child()
    except Exception as exc:  # never break the child
        logger.debug("tta_observability: after-fork reset failed: %r", exc)
    finally:
        _signals.unblock_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_signals.before_fork,
        after_in_parent=_signals.unblock_after_fork,
        after_in_child=_after_fork_in_child,
    )


def metrics_wsgi_app(registry: CollectorRegistry | None = None) -> Any:
    """A WSGI app serving /metrics (OpenMetrics with exemplars when asked).

    For apps that pass ``metrics_port=None`` and serve metrics themselves.
    """
    return wsgi_app(_registry(registry))


def metrics_asgi_app(registry: CollectorRegistry | None = None) -> Any:
    """An ASGI app serving /metrics, for ``metrics_port=None``."""
    return asgi_app(_registry(registry))


def _registry(registry: CollectorRegistry | None) -> CollectorRegistry:
    """The given registry, else the running setup()'s, else prometheus-client's default."""
    if registry is not None:
        return registry
    return _HANDLE.registry if _HANDLE is not None else REGISTRY


__all__ = ["ConfigError", "Handle", "current", "metrics_asgi_app", "metrics_wsgi_app", "setup"]
