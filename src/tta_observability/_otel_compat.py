"""Every use of OpenTelemetry internals, in one place, behind version checks.

The SDK's public API cannot count the spans a batch processor drops, stop it within a deadline,
take a span processor off a provider, or change the resource and sampler of a provider we
installed (the API allows installing a global provider only once). These helpers do that for the
SDK versions ``pyproject.toml`` allows (``MIN_SDK`` and later) and fall back to doing nothing,
with one debug log, when an internal is not where they expect it.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from opentelemetry import context as context_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Sampler

logger = logging.getLogger("tta_observability")

#: The oldest SDK the library supports (pyproject.toml's lower bound; CI runs the tests on it).
#: 1.33 keeps the batch queue elsewhere (the drop counter would read nothing), and before 1.36
#: the batch processor's shutdown takes no deadline.
MIN_SDK = (1, 36)


def _sdk_version() -> tuple[int, int]:
    try:
        major, minor = version("opentelemetry-sdk").split(".")[:2]
        return int(major), int(minor)
    except (PackageNotFoundError, ValueError):
        return MIN_SDK


SDK_VERSION = _sdk_version()

_warned: set[str] = set()


def _missing(what: str, exc: BaseException | None = None) -> None:
    if what not in _warned:
        _warned.add(what)
        logger.debug(
            "tta_observability: OpenTelemetry SDK %s.%s: %s unavailable (%r)",
            *SDK_VERSION,
            what,
            exc,
        )


def _inner(processor: BatchSpanProcessor) -> Any:
    """The SDK's shared batch processor behind a BatchSpanProcessor (1.34 and later)."""
    return getattr(processor, "_batch_processor", None)


def batch_queue_length(processor: BatchSpanProcessor) -> int | None:
    """Spans waiting in the processor's queue, or None when it cannot be read."""
    inner = _inner(processor)
    queue = getattr(inner, "_queue", None)
    if queue is None:
        _missing("batch queue length")
        return None
    return len(queue)


def shutdown_batch(processor: BatchSpanProcessor, timeout: float) -> bool:
    """Stop the processor, exporting what it holds for at most ``timeout`` seconds.

    Not force_flush(): in the SDK it ignores its timeout and exports the whole queue
    synchronously, which takes minutes when the collector is unreachable. Returns True when the
    export thread is still running afterwards (its last log lines are still to come).
    """
    inner = _inner(processor)
    if inner is None or "timeout_millis" not in inspect.signature(inner.shutdown).parameters:
        _missing("batch shutdown with a deadline")
        processor.shutdown()  # type: ignore[no-untyped-call]
        return False
    inner.shutdown(timeout_millis=int(timeout * 1000))
    worker = getattr(inner, "_worker_thread", None)
    if worker is None:
        return False
    # The export thread stops a moment after the exporter's shutdown; wait briefly so its last
    # words still pass through our log filter.
    worker.join(1.0)
    return bool(worker.is_alive())


def remove_span_processor(provider: TracerProvider, processor: SpanProcessor) -> bool:
    """Take ``processor`` off ``provider``, so setup()/shutdown() cycles leave nothing behind."""
    multi = getattr(provider, "_active_span_processor", None)
    processors = getattr(multi, "_span_processors", None)
    lock = getattr(multi, "_lock", None)
    if not isinstance(processors, tuple) or lock is None:
        _missing("span processor removal")
        return False
    with lock:
        multi._span_processors = tuple(p for p in multi._span_processors if p is not processor)  # type: ignore[union-attr]
    return True


def reconfigure_provider(provider: TracerProvider, resource: Resource, sampler: Sampler) -> bool:
    """Give a provider that setup() installed earlier this setup()'s resource and sampler.

    Tracers the provider made before keep theirs unless updated here too (recent SDKs cache
    one tracer per instrumentation scope and hand it out again).
    """
    if not hasattr(provider, "_resource") or not hasattr(provider, "sampler"):
        _missing("provider reconfiguration")
        return False
    provider._resource = resource
    provider.sampler = sampler
    tracers = getattr(provider, "_tracers", None)
    if isinstance(tracers, dict):
        for tracer in list(tracers.values()):
            tracer.resource = resource
            tracer.sampler = sampler
    return True


def runtime_context_var() -> contextvars.ContextVar[Any] | None:
    """The ContextVar behind OpenTelemetry's default runtime context, if that is in use."""
    try:
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

        runtime = context_api._RUNTIME_CONTEXT
        if type(runtime) is ContextVarsRuntimeContext:
            var = runtime._current_context
            if isinstance(var, contextvars.ContextVar):
                return var
    except Exception as exc:
        _missing("the runtime context variable", exc)
    return None


def span_in_context_setter(
    var: contextvars.ContextVar[Any] | None,
) -> Callable[[Any, Any], Any]:
    """``trace.set_span_in_context(span, parent)`` in one step when the runtime context is the
    default ContextVar one (``var``): the public function takes four Python calls to do the same
    (read the current context, copy it, add the span, wrap the copy). Checked once against the
    public function; the public function otherwise."""
    from opentelemetry import trace

    public: Callable[[Any, Any], Any] = trace.set_span_in_context
    try:
        from opentelemetry.trace.propagation import _SPAN_KEY

        key: str = _SPAN_KEY
        context_type = context_api.Context
        if var is None:
            return public
        get = var.get

        def fast(span: Any, parent: Any = None) -> Any:
            return context_type({**(get() if parent is None else parent), key: span})

        probe = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
        base = context_api.set_value("tta-probe", 1)
        if fast(probe, base) == public(probe, base) and fast(probe, None) == public(probe, None):
            return fast
        _missing("the span context key (probe differs)")
    except Exception as exc:
        _missing("the span context key", exc)
    return public


def span_context_is_tuple() -> bool:
    """Whether a SpanContext is the tuple ``(trace_id, span_id, is_remote, trace_flags, ...)``
    (every SDK version so far): its fields then read by index, without a property call each."""
    try:
        from opentelemetry.trace import SpanContext, TraceFlags

        ctx = SpanContext(5, 7, is_remote=False, trace_flags=TraceFlags(1))
        if isinstance(ctx, tuple) and (ctx[0], ctx[1], ctx[3]) == (5, 7, 1):
            return True
        _missing("SpanContext fields by index (probe differs)")
    except Exception as exc:
        _missing("SpanContext fields by index", exc)
    return False
