"""What one call of an instrumented primitive does, from its start to its end.

A call opens a :class:`Frame`: it adopts the span TTA.dev opened for the node, if any
(``ttadev_spans.py``), or starts one under the current span (or under the trace ids its context
carries), tells the parent's recogniser (retry, fallback, ...) that a
child started, runs, and records. The frame also undoes its context changes when a sync
``execute`` hands back an awaitable, and redoes them where that is awaited.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
from collections.abc import Callable
from typing import Any, Final

from opentelemetry import context as context_api
from opentelemetry import trace

from .. import _spend, budget, llm
from .._call import CURRENT_CALL, NO_CONTEXT, Started, status_name
from .._state import report_internal_error
from ..budget import RunBudgetExceeded
from ..context import Binding, enter, leave, parent_from
from .node import MISSING, Node
from .recorders import Call, Recogniser
from .ttadev_spans import llm_span, own_span, wrapper_span

#: The instrumented call in progress in this context (its node and span).
CURRENT: contextvars.ContextVar[Call | None] = contextvars.ContextVar(
    "tta_observability_current_primitive", default=None
)
_spend.current_frame = CURRENT.get  # LLM usage reported in a call is held by it


class Frame:
    """One call's state between its start and its end."""

    __slots__ = (
        "allowance",
        "binding",
        "call",
        "ctoken",
        "ctx",
        "parent",
        "prec",
        "role",
        "started",
    )

    def __init__(
        self,
        parent: Call | None,
        ctx: Any,
        started: Started,
        call: Call,
        allowance: budget.Allowance | None,
    ) -> None:
        self.parent = parent
        self.ctx = ctx
        self.started = started
        self.call = call
        self.allowance = allowance
        self.ctoken = CURRENT.set(call)
        self.binding: Binding | None = None
        self.role: Any = None
        self.prec: Recogniser | None = None


def _before(node: Node, call: Call, parent: Call | None, role: Any) -> Recogniser | None:
    prec = None
    if parent is not None and role is not MISSING:
        prec = parent.node.recogniser
        if prec is not None:
            prec.child_start(parent, role, call.span)
    if node.recogniser is not None:
        node.recogniser.start(call)
    return prec


def _start(node: Node, parent: Call | None, ctx: Any, role: Any) -> Started:
    """Adopt TTA.dev's span for this call if it opened one, else start ours."""
    try:
        # TTA.dev does not make its primitive.<name> span current: made current here, the spans
        # it opens inside (steps, branches) nest under it instead of starting new traces.
        span = own_span(node, ctx) if node.own_span else None
        if span is not None:
            return node.inst.adopt(span, make_current=True)
        if node.inner_span:
            span = llm_span()
            if span is not None:  # current already
                return node.inst.adopt(span, make_current=False)
        if parent is not None:
            span = wrapper_span(parent.node, role)
            if span is not None:
                return node.inst.adopt(span, make_current=False)
    except RunBudgetExceeded:  # an llm call past its run's budget: it does not start
        raise
    except Exception as exc:
        report_internal_error("adopting a TTA.dev span", exc)
    otel_parent = None
    if parent is None and ctx is not None:
        try:
            otel_parent = parent_from(ctx)
        except Exception as exc:
            report_internal_error("reading trace ids from the context", exc)
    return node.inst.start(otel_parent)


def _open(node: Node, args: Any, kwargs: Any) -> Frame:
    parent = CURRENT.get()
    at = node.ctx_at
    ctx = args[at] if len(args) > at else kwargs.get(node.ctx_kw)
    # TTA.dev's own span of a node is never made current: logs read the node's span while
    # the span current is still this one.
    base = trace.get_current_span()
    role = MISSING
    if parent is not None and (parent.node.recogniser is not None or parent.node.wraps is not None):
        try:
            role = parent.node.role_of(node.obj)
        except Exception as exc:
            report_internal_error("primitive call start (role)", exc)
    # A workflow instrumented with a budget: each of its calls is a run with a fresh allowance.
    allowance = budget.start(node.budget, node.name) if node.budget is not None else None
    try:
        started = _start(node, parent, ctx, role)
    except BaseException:  # over budget: nothing started
        if allowance is not None:
            budget.end(allowance)
        raise
    call = Call(node, started.span, base)
    f = Frame(parent, ctx, started, call, allowance)
    try:
        f.binding = enter(ctx, started.span) if ctx is not None else None
    except Exception as exc:
        report_internal_error("primitive call start (context)", exc)
    f.role = role
    try:
        f.prec = _before(node, call, parent, role)
    except Exception as exc:
        report_internal_error("primitive call start", exc)
    return f


def _close(node: Node, f: Frame, result: Any, exc: BaseException | None) -> Exception | None:
    """Record the call; returns the RunBudgetExceeded its LLM usage caused, for the caller to
    raise."""
    # Each step on its own, so one failing cannot leak another's state (ids left in the
    # context, the workflow id left current).
    stop = None
    try:
        if exc is None and node.extracts:
            stop = llm.extract_from_result(result, f.started.span, node.obj)
        if node.recogniser is not None:
            node.recogniser.finish(f.call, exc)
    except Exception as internal:
        report_internal_error("primitive call finish", internal)
    if f.call.spend is not None:  # only calls in which LLM usage was reported
        try:
            _pass_spend(f, f.call.spend, exc)
        except Exception as internal:
            report_internal_error("wasted LLM spend", internal)
    try:
        if f.prec is not None:
            f.prec.child_end(f.parent, f.role, exc)  # type: ignore[arg-type]
    except Exception as internal:
        report_internal_error("primitive call finish (parent)", internal)
    finally:
        try:
            leave(f.binding)
        except Exception as internal:
            report_internal_error("primitive call finish (context)", internal)
    with contextlib.suppress(ValueError):  # finished in another context than it started in
        CURRENT.reset(f.ctoken)
    node.inst.finish(f.started, exc)
    if f.allowance is not None:
        budget.end(f.allowance)
    return stop


def _pass_spend(f: Frame, spend: _spend.Spend, exc: BaseException | None) -> None:
    """The call is over: its LLM spend goes to its parent (pending the parent's verdict when it
    failed under a recovery primitive), or is settled by the run's outcome if it is the run."""
    parent = f.parent
    if parent is None:
        started = f.started
        if started.parent is None:  # this call is the workflow run
            _spend.settle_run(spend, status_name(exc))
        else:  # the outermost primitive of a run made by an observed function: the run decides
            _spend.holder_spend(started.root).absorb(spend)
        return
    pending = exc is not None and f.prec is not None and f.prec.pends(f.role)
    _spend.holder_spend(parent).absorb(spend, pending=pending)


# Stands for "a context to attach again when resumed" in a suspended call's frame.
_REATTACH: Final = object()


def _suspend(f: Frame) -> None:
    """Undo a call's context changes in this context; :func:`_resume` redoes them where the
    awaitable it returned is awaited (maybe another task)."""
    try:
        leave(f.binding)
    except Exception as exc:
        report_internal_error("primitive call suspend", exc)
    f.binding = None
    with contextlib.suppress(ValueError):
        CURRENT.reset(f.ctoken)
    s = f.started
    # Instrument.start's tokens (NO_CONTEXT: nothing to undo).
    if s.outer is not NO_CONTEXT:
        with contextlib.suppress(ValueError):
            CURRENT_CALL.reset(s.outer)  # type: ignore[arg-type]
        s.outer = NO_CONTEXT
    if f.allowance is not None:
        budget.end(f.allowance)
    if s.token is not NO_CONTEXT:
        with contextlib.suppress(ValueError):
            context_api.detach(s.token)  # type: ignore[arg-type]
        s.token = _REATTACH


def _resume(node: Node, f: Frame) -> None:
    s = f.started
    if s.token is _REATTACH:
        s.token = context_api.attach(trace.set_span_in_context(s.span))
    s.outer = CURRENT_CALL.set(s)
    if f.allowance is not None:
        budget.resume(f.allowance)
    f.ctoken = CURRENT.set(f.call)
    try:
        f.binding = enter(f.ctx, s.span) if f.ctx is not None else None
    except Exception as exc:
        report_internal_error("primitive call resume", exc)


async def _await_then_close(node: Node, f: Frame, awaitable: Any) -> Any:
    _resume(node, f)
    try:
        result = await awaitable
    except BaseException as exc:
        _close(node, f, None, exc)
        raise
    stop = _close(node, f, result, None)
    if stop is not None:  # its LLM usage took the run past its budget
        raise stop
    return result


async def run_async(node: Node, wrapped: Any, args: Any, kwargs: Any) -> Any:
    f = _open(node, args, kwargs)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _close(node, f, None, exc)
        raise
    stop = _close(node, f, result, None)
    if stop is not None:  # its LLM usage took the run past its budget
        raise stop
    return result


def run_sync(node: Node, wrapped: Any, args: Any, kwargs: Any) -> Any:
    f = _open(node, args, kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        _close(node, f, None, exc)
        raise
    if inspect.isawaitable(result):
        # A sync execute handing back a coroutine (a decorator without functools.wraps): the
        # call is over when that is awaited, not now.
        _suspend(f)
        return _await_then_close(node, f, result)
    stop = _close(node, f, result, None)
    if stop is not None:  # its LLM usage took the run past its budget
        raise stop
    return result


def instance_wrapper(node: Node) -> Callable[..., Any]:
    """The wrapper of an ``execute`` patched on the instance itself: always this node's."""

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        current = CURRENT.get()
        if current is not None and current.node is node:
            return wrapped(*args, **kwargs)  # re-entered from inside its own call
        return (run_async if node.is_async else run_sync)(node, wrapped, args, kwargs)

    return wrapper
