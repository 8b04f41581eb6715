"""TTA.dev's ``WorkflowContext`` and W3C trace context: reading ids, continuing traces, propagating.

The context argument of ``execute(input, context)`` is duck-typed: an object with attributes or a
mapping, and every field is optional. Instrumented primitives read ``workflow_id``,
``correlation_id``, ``session_id`` and ``agent_id`` into span attributes; when nothing is traced
yet and the context carries TTA.dev's ``trace_id``/``span_id``, the new span continues that trace;
while a span runs, its ids are written into the context (when it has those fields) so code that
only sees the context can log or forward them.

Across processes, use :func:`inject` and :func:`extract` (W3C ``traceparent``)::

    headers = inject({})                      # sender
    with continue_trace(request.headers):     # receiver
        await workflow.execute(data, ctx)
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, Final

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import contract as c

#: The workflow id of the instrumented call in progress, for log correlation.
WORKFLOW_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tta_observability_workflow_id", default=None
)

#: Context field -> span attribute.
FIELDS: Final = (
    ("workflow_id", c.ATTR_WORKFLOW_ID),
    ("correlation_id", c.ATTR_CORRELATION_ID),
    ("session_id", c.ATTR_SESSION_ID),
    ("agent_id", c.ATTR_AGENT_ID),
)

_PROPAGATOR: Final = TraceContextTextMapPropagator()
_MISSING: Final = object()

# Span ids (hex) that instrumented calls have written into a context and not yet taken back,
# mapped to what to restore. A context shared by concurrent runs must not make one run continue
# another's trace, so ids we wrote ourselves are never continued from. dict get/set/pop are
# atomic in CPython, so no lock is needed.
_LIVE: dict[str, tuple[Any, Any, Any, Any]] = {}


_NOT_MAPPING: Final = 0
_READ_ONLY: Final = 1
_MUTABLE: Final = 2
_mapping_types: dict[type, int] = {}


def _mapping_kind(ctx: Any) -> int:
    # ABC isinstance checks cost more than the rest of a field read, and most contexts are not
    # mappings at all, so the answer (negative ones too) is kept per type; types are few.
    kind = type(ctx)
    known = _mapping_types.get(kind)
    if known is None:
        if isinstance(ctx, MutableMapping):
            known = _MUTABLE
        elif isinstance(ctx, Mapping):
            known = _READ_ONLY
        else:
            known = _NOT_MAPPING
        if len(_mapping_types) < 1024:
            _mapping_types[kind] = known
    return known


def _is_mapping(ctx: Any) -> bool:
    """A mutable mapping (ids can be written into it)."""
    return _mapping_kind(ctx) == _MUTABLE


def _field(ctx: Any, key: str) -> Any:
    if _mapping_kind(ctx):
        return ctx.get(key)
    return getattr(ctx, key, None)


def workflow_attributes(ctx: Any) -> dict[str, str]:
    """The ``tta.*`` span attributes a context provides (absent or empty fields are left out)."""
    if ctx is None:
        return {}
    out: dict[str, str] = {}
    for key, attr in FIELDS:
        value = _field(ctx, key)
        if value is not None and value != "":
            out[attr] = str(value)
    return out


def _parse_hex(value: Any, digits: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value < (1 << (4 * digits)) else 0
    if isinstance(value, str) and len(value) == digits:
        try:
            return int(value, 16)
        except ValueError:
            return 0
    return 0


def parent_from(ctx: Any) -> context_api.Context | None:
    """An OpenTelemetry parent continuing the trace the context carries, or None.

    None when a span is already current (it wins), when the context has no valid
    ``trace_id``/``span_id``, or when those ids were written by a call still running elsewhere.
    """
    if ctx is None or trace.get_current_span().get_span_context().is_valid:
        return None
    span_hex = _field(ctx, "span_id")
    if isinstance(span_hex, str) and span_hex in _LIVE:
        return None
    trace_id = _parse_hex(_field(ctx, "trace_id"), 32)
    span_id = _parse_hex(span_hex, 16)
    if not trace_id or not span_id:
        return None
    flags = _field(ctx, "trace_flags")
    if not isinstance(flags, int) or isinstance(flags, bool) or not 0 <= flags <= 255:
        flags = TraceFlags.SAMPLED
    parent = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))
    # On top of the current context, so baggage and other entries carry on.
    return trace.set_span_in_context(NonRecordingSpan(parent), context_api.get_current())


class Binding:
    """What :func:`enter` changed for one call, undone by :func:`leave`."""

    __slots__ = ("ctx", "span_hex", "wf_token")

    def __init__(self, ctx: Any, span_hex: str | None, wf_token: object) -> None:
        self.ctx = ctx
        self.span_hex = span_hex
        self.wf_token = wf_token


def _write_ids(ctx: Any, span: trace.Span) -> str | None:
    mapping = _is_mapping(ctx)
    if mapping:
        if "trace_id" not in ctx or "span_id" not in ctx:
            return None
        old_trace, old_span = ctx["trace_id"], ctx["span_id"]
    else:
        old_trace = getattr(ctx, "trace_id", _MISSING)
        if old_trace is _MISSING:
            return None
        old_span = getattr(ctx, "span_id", _MISSING)
        if old_span is _MISSING:
            return None
    sc = span.get_span_context()
    if not sc.is_valid:
        return None
    trace_hex, span_hex = format(sc.trace_id, "032x"), format(sc.span_id, "016x")
    # What to restore when this call ends: the ids before it, and -- in case the call that wrote
    # those has ended by then -- the ids from before any call of ours wrote.
    before = _LIVE.get(old_span) if isinstance(old_span, str) else None
    original = (before[2], before[3]) if before is not None else (old_trace, old_span)
    try:
        if mapping:
            ctx["trace_id"], ctx["span_id"] = trace_hex, span_hex
        else:
            ctx.trace_id = trace_hex
            ctx.span_id = span_hex
    except Exception:  # a frozen or validating model: reading ids still works
        return None
    _LIVE[span_hex] = (old_trace, old_span, *original)
    return span_hex


def _restore_ids(ctx: Any, span_hex: str) -> None:
    saved = _LIVE.pop(span_hex, None)
    if saved is None or _field(ctx, "span_id") != span_hex:
        return  # a concurrent call sharing this context wrote after us; it restores
    old_trace, old_span, orig_trace, orig_span = saved
    if not (isinstance(old_span, str) and old_span in _LIVE) and old_span != orig_span:
        old_trace, old_span = orig_trace, orig_span
    try:
        if _is_mapping(ctx):
            ctx["trace_id"], ctx["span_id"] = old_trace, old_span
        else:
            ctx.trace_id = old_trace
            ctx.span_id = old_span
    except Exception:
        pass


def enter(ctx: Any, span: trace.Span) -> Binding | None:
    """Per call: workflow attributes onto the span, its ids into ``ctx``, workflow id current."""
    if ctx is None:
        return None
    workflow_id = None
    attrs: dict[str, str] = {}
    get = ctx.get if _mapping_kind(ctx) else None
    for key, attr in FIELDS:
        value = get(key) if get is not None else getattr(ctx, key, None)
        if value is not None and value != "":
            attrs[attr] = text = value if type(value) is str else str(value)
            if key == "workflow_id":
                workflow_id = text
    if attrs and span.is_recording():
        span.set_attributes(attrs)  # one lock, not one per attribute
    wf_token = (
        WORKFLOW_ID.set(workflow_id)
        if workflow_id is not None and workflow_id != WORKFLOW_ID.get()
        else None
    )
    span_hex = _write_ids(ctx, span)
    if span_hex is None and wf_token is None:
        return None
    return Binding(ctx, span_hex, wf_token)


def leave(binding: Binding | None) -> None:
    if binding is None:
        return
    if binding.span_hex is not None:
        _restore_ids(binding.ctx, binding.span_hex)
    if binding.wf_token is not None:
        # ValueError: reset from another context (a generator finalised elsewhere).
        with contextlib.suppress(ValueError):
            WORKFLOW_ID.reset(binding.wf_token)  # type: ignore[arg-type]


def inject(
    carrier: MutableMapping[str, str] | None = None, context: context_api.Context | None = None
) -> MutableMapping[str, str]:
    """Write the current (or given) trace context into ``carrier`` as W3C ``traceparent``.

    Returns the carrier (a new dict when none is given), for example HTTP headers or a message's
    metadata. Nothing is written when no valid span is current.
    """
    if carrier is None:
        carrier = {}
    elif not isinstance(carrier, MutableMapping):
        raise TypeError(f"inject() needs a mutable mapping carrier, got {type(carrier).__name__}")
    _PROPAGATOR.inject(carrier, context=context)
    return carrier


def extract(carrier: Mapping[str, str], workflow_context: Any = None) -> context_api.Context:
    """Read a W3C ``traceparent`` from ``carrier`` into an OpenTelemetry context.

    Attach the result (or use :func:`continue_trace`) so the next instrumented call continues the
    sender's trace. When ``workflow_context`` is given and has ``trace_id``/``span_id`` fields,
    the remote ids are also written there, so a workflow run with that context continues the trace
    even where contextvars do not reach (another thread, a queued job).
    """
    if not isinstance(carrier, Mapping):
        raise TypeError(f"extract() needs a mapping carrier, got {type(carrier).__name__}")
    ctx = _PROPAGATOR.extract(carrier)
    if workflow_context is not None:
        sc = trace.get_current_span(ctx).get_span_context()
        if sc.is_valid:
            ids = {
                "trace_id": format(sc.trace_id, "032x"),
                "span_id": format(sc.span_id, "016x"),
                "trace_flags": int(sc.trace_flags),
            }
            for key, value in ids.items():
                if isinstance(workflow_context, MutableMapping):
                    workflow_context[key] = value
                elif hasattr(workflow_context, key):
                    setattr(workflow_context, key, value)
    return ctx


@contextmanager
def continue_trace(carrier: Mapping[str, str]) -> Iterator[context_api.Context]:
    """``with continue_trace(headers):`` makes the sender's trace the parent of calls inside."""
    ctx = extract(carrier)
    token = context_api.attach(ctx)
    try:
        yield ctx
    finally:
        context_api.detach(token)
