"""TTA.dev's own spans, adopted instead of doubled.

TTA.dev traces part of a workflow itself: ``InstrumentedPrimitive.execute`` (Sequential,
Parallel and others) opens ``primitive.<name>`` around the node, and several primitives open a
span around each child call (``sequential.step_N``, ``parallel.branch_N``,
``retry.attempt_N``, ``fallback.primary``, ...). A node that already has such a span gets our
attributes, status and exemplar on it rather than a second span of ours:

- its own ``primitive.<name>`` span, for subclasses of ``InstrumentedPrimitive`` (observed
  through ``_execute_impl``, which runs inside that span). That span is started with
  ``start_span`` and never made current, so it is found through the node's tracer: at
  instrumentation the instance's ``_tracer`` is wrapped to remember the last ``primitive.*``
  span it started in this context;
- for TTA.dev's LLM primitives, the ``gen_ai.<...>.invoke`` span their ``execute`` opens as
  the current span (observed through ``_call``, which runs inside it);
- else the span its parent opened around this very call: the current span, when its name is
  the one the parent's kind gives that child (``sequential.step_<index>`` for the child at that
  index) and it came from TTA.dev's tracers and carries no node yet.

Only spans of the provider the library's own spans go to are adopted (TTA.dev takes its tracers
from the global provider; ``setup(tracer_provider=...)`` or ``testing.capture()`` may point the
library elsewhere): a node's span must reach the library's exporter. Any other node gets a span
of ours, as before.
"""

from __future__ import annotations

import contextvars
from typing import Any, Final

from opentelemetry import trace

from .. import contract as c
from .._state import STATE
from .node import MISSING, SCOPES, Node

_OWN_PREFIX: Final = "primitive."
_LLM_PREFIX: Final = "gen_ai."

#: The last ``primitive.*`` span a wrapped TTA.dev tracer started in this context.
OWN_SPAN: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "tta_observability_ttadev_span", default=None
)


class ClaimingTracer:
    """A TTA.dev primitive's ``_tracer``, remembering the ``primitive.*`` spans it starts."""

    __slots__ = ("__wrapped__",)

    def __init__(self, tracer: Any) -> None:
        self.__wrapped__ = tracer

    def start_span(self, name: str, *args: Any, **kwargs: Any) -> Any:
        span = self.__wrapped__.start_span(name, *args, **kwargs)
        if type(name) is str and name.startswith(_OWN_PREFIX):
            OWN_SPAN.set(span)
        return span

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__wrapped__, name)

    # A copy of the primitive shares the wrapper (it holds nothing per instance) and is
    # instrumented like its original; a pickled one gets the tracer itself, like an unpickled
    # workflow is not instrumented.
    def __copy__(self) -> ClaimingTracer:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ClaimingTracer:
        return self

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self.__wrapped__.__reduce_ex__(protocol)


def wrap_tracer(obj: Any, node: Node) -> None:
    d = obj.__dict__
    tracer = d.get("_tracer")
    if tracer is None:
        return
    if isinstance(tracer, ClaimingTracer):  # a copy's, shared with its original
        node.previous_tracer = tracer.__wrapped__
        return
    node.previous_tracer = tracer
    d["_tracer"] = ClaimingTracer(tracer)


def unwrap_tracer(obj: Any, node: Node) -> None:
    d = obj.__dict__
    current = d.get("_tracer")
    if node.previous_tracer is not MISSING and isinstance(current, ClaimingTracer):
        d["_tracer"] = node.previous_tracer
    node.previous_tracer = MISSING


def _unclaimed(span: Any) -> bool:
    if not span.is_recording():
        return False
    attrs = getattr(span, "attributes", None)
    return attrs is not None and c.ATTR_PRIMITIVE_NAME not in attrs


def _from_ttadev(span: Any) -> bool:
    scope = getattr(span, "instrumentation_scope", None)
    name = getattr(scope, "name", None) or ""
    return name.startswith(SCOPES) and _ours(span)


def _ours(span: Any) -> bool:
    """Whether ``span`` comes from the provider the library's tracer uses (an SDK provider's
    spans share its one Resource object)."""
    tracer = STATE.tracer
    resource = getattr(tracer, "resource", None)
    if resource is None and isinstance(tracer, trace.ProxyTracer):  # follows the global one
        resource = getattr(trace.get_tracer_provider(), "resource", None)
    return resource is not None and getattr(span, "resource", None) is resource


def own_span(node: Node, ctx: Any) -> Any:
    """The ``primitive.<name>`` span TTA.dev opened for this call of ``node``, or None."""
    span = OWN_SPAN.get()
    if span is None:
        return None
    OWN_SPAN.set(None)
    if getattr(span, "name", None) != f"{_OWN_PREFIX}{getattr(node.obj, 'name', '')}":
        return None
    if getattr(span, "end_time", 0) is not None or not _unclaimed(span) or not _ours(span):
        return None
    # TTA.dev writes the span's id into the context it passes on: the same call's span.
    span_id = getattr(ctx, "span_id", None)
    if span_id is not None and span_id != format(span.get_span_context().span_id, "016x"):
        return None
    return span


def llm_span() -> Any:
    """The ``gen_ai.*`` span a TTA.dev LLM primitive opened around this call of ``_call`` (the
    current span), or None."""
    span = trace.get_current_span()
    name = getattr(span, "name", None)
    if type(name) is not str or not name.startswith(_LLM_PREFIX):
        return None
    if not _from_ttadev(span) or not _unclaimed(span):
        return None
    return span


def wrapper_span(parent: Node, role: Any) -> Any:
    """The span ``parent`` (TTA.dev) opened around this call of its child in ``role``, or None."""
    wraps = parent.wraps
    if wraps is None or role is MISSING:
        return None
    span = trace.get_current_span()
    name = getattr(span, "name", None)
    if type(name) is not str or not wraps(role, name):
        return None
    if not _from_ttadev(span) or not _unclaimed(span):
        return None
    return span
