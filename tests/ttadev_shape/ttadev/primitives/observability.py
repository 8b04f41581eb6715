"""Stand-in for ``ttadev.primitives.observability``: trace-context propagation through the
WorkflowContext, ``InstrumentedPrimitive`` and structlog loggers, behaving like TTA.dev's.

What matters to the library, as TTA.dev does it: ``InstrumentedPrimitive.__init__`` defaults
``name`` to the class name and takes a tracer per instance (``self._tracer``); ``execute`` copies
the current span's ids into the context, starts ``primitive.<name>`` with ``start_span`` under
the ids the context carries (never making it current), writes its id into the context, and calls
``_execute_impl`` inside it.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from .base import WorkflowPrimitive


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


def inject_trace_context(context: Any) -> Any:
    span = trace.get_current_span()
    if not span.is_recording():
        return context
    sc = span.get_span_context()
    if sc.is_valid:
        context.trace_id = format(sc.trace_id, "032x")
        context.span_id = format(sc.span_id, "016x")
        context.trace_flags = int(sc.trace_flags & 1)
    return context


def create_linked_span(tracer: Any, name: str, context: Any) -> Any:
    if context.trace_id and context.span_id:
        parent = SpanContext(
            int(context.trace_id, 16),
            int(context.span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(context.trace_flags),
        )
        span = tracer.start_span(name, context=trace.set_span_in_context(NonRecordingSpan(parent)))
    else:
        span = tracer.start_span(name)
    sc = span.get_span_context()
    context.span_id = format(sc.span_id, "016x")
    if not context.trace_id:
        context.trace_id = format(sc.trace_id, "032x")
    return span


class InstrumentedPrimitive(WorkflowPrimitive):
    """Subclasses implement ``_execute_impl``; ``execute`` traces it as ``primitive.<name>``."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.__class__.__name__
        self._tracer = trace.get_tracer(__name__)

    async def execute(self, input_data: Any, context: Any) -> Any:
        context.checkpoint(f"{self.name}.start")
        context = inject_trace_context(context)
        try:
            with create_linked_span(self._tracer, f"primitive.{self.name}", context) as span:
                for key, value in context.to_otel_context().items():
                    span.set_attribute(key, value)
                span.set_attribute("primitive.name", self.name)
                span.set_attribute("primitive.type", self.__class__.__name__)
                try:
                    result = await self._execute_impl(input_data, context)
                except Exception as e:
                    span.set_attribute("primitive.status", "error")
                    span.set_attribute("primitive.error", str(e))
                    span.record_exception(e)
                    raise
                span.set_attribute("primitive.status", "success")
                return result
        finally:
            context.checkpoint(f"{self.name}.end")

    @abstractmethod
    async def _execute_impl(self, input_data: Any, context: Any) -> Any: ...
