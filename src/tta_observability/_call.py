"""What every observed call shares, whatever observes it: the :class:`Instrument` (names, series,
span attributes and SLO resolved once), the :class:`Started` state of one call between its start
and its end, the call in progress (:data:`CURRENT_CALL`), outcome classification, and the SLO
bindings. ``observed.py`` (functions and blocks) and ``primitives/`` (workflow nodes) both build
on this module, and neither imports the other for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import traceback
import weakref
from collections.abc import Callable, Iterable, Mapping
from time import perf_counter
from typing import Final

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from . import budget
from . import contract as c
from ._otel_compat import runtime_context_var, span_context_is_tuple, span_in_context_setter
from ._spend import Spend, settle_run
from ._state import STATE, report_internal_error
from .metrics import STORE, MetricStore, WorkflowSeries
from .slo import SLO

_SUCCESS: Final = 0
_ERROR: Final = c.STATUSES.index(c.STATUS_ERROR)
_TIMEOUT: Final = c.STATUSES.index(c.STATUS_TIMEOUT)
_CANCELLED: Final = c.STATUSES.index(c.STATUS_CANCELLED)

#: The innermost observed call in progress in this context; None outside any. A call without a
#: parent is a workflow run (the outermost call of a trace).
CURRENT_CALL: contextvars.ContextVar[Started | None] = contextvars.ContextVar(
    "tta_observability_current_call", default=None
)

_INVALID_SPAN: Final = trace.INVALID_SPAN
#: Stands for "nothing attached" when a call ran without a span, as distinct from a failed start.
NO_CONTEXT: Final = object()

#: Result types that cannot carry LLM usage: checked inline so that the common call pays a
#: set lookup, not a function call.
_PLAIN_RESULTS: Final = frozenset(
    {type(None), str, bytes, int, float, bool, list, tuple, set, frozenset}
)

_Token: Final = contextvars.Token
_NonRecordingSpan: Final = trace.NonRecordingSpan


_CONTEXT_VAR = runtime_context_var()
#: context.attach() without its two layers of indirection when the runtime context is the
#: default ContextVar one (what attach() itself does then); the public API otherwise.
attach_context: Callable[[context_api.Context], object] = (
    _CONTEXT_VAR.set if _CONTEXT_VAR is not None else context_api.attach
)
#: trace.set_span_in_context(span, parent), in one step where it can be (see _otel_compat).
span_in_context: Callable[[trace.Span, context_api.Context | None], context_api.Context] = (
    span_in_context_setter(_CONTEXT_VAR)
)
_ATTR_STATUS: Final = c.ATTR_STATUS
_STATUS_NAMES: Final = c.STATUSES
#: A span context's trace id, span id and flags read by index (see _otel_compat).
_CTX_BY_INDEX: Final = span_context_is_tuple()

_status_by_type: dict[type[BaseException], int] = {}


def classify(exc: BaseException) -> int:
    """Index into :data:`contract.STATUSES` for an exception raised by user code."""
    kind = type(exc)
    status = _status_by_type.get(kind)
    if status is None:
        if issubclass(kind, asyncio.CancelledError | GeneratorExit):
            status = _CANCELLED
        elif any(k.__name__ == "TimeoutError" for k in kind.__mro__):
            # TTA.dev raises its own TimeoutError class, unrelated to the builtin one.
            status = _TIMEOUT
        else:
            status = _ERROR
        if len(_status_by_type) < 4096:
            _status_by_type[kind] = status
    return status


def status_name(exc: BaseException | None) -> str:
    return c.STATUS_SUCCESS if exc is None else c.STATUSES[classify(exc)]


#: Set in an exception's ``__dict__`` to the start time of the observed call that counted it as a
#: failure raised there: a call further out that sees it again (or an exception raised from it or
#: while handling it) only passes the failure on. Removed when the failure leaves the run.
_SEEN: Final = "_tta_observability_failure_counted"
#: Links of ``__cause__`` / ``__context__`` followed to find a counted failure.
_CHAIN_DEPTH: Final = 8


def _links(exc: BaseException) -> list[BaseException]:
    """``exc``, the exceptions it was raised from or while handling, and a group's members."""
    out: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(out) < _CHAIN_DEPTH:
        e = todo.pop()
        if any(e is o for o in out):
            continue
        out.append(e)
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions)
        nxt = e.__cause__ if e.__cause__ is not None else e.__context__
        if nxt is not None:
            todo.append(nxt)
    return out


def failure_labels(exc: BaseException, started: float) -> tuple[str, str]:
    """``origin`` and ``workflow`` of a failed call's ``tta_primitive_errors_total`` sample.

    Runs on the error path only. The call that counts a failure marks the exception with its
    start time (``started``, the call's ``perf_counter()`` at start). A mark later than this
    call's start was left by a call made inside this one: the failure started there and this
    call only passes it on. A missing or earlier mark (the same exception object raised again
    by a later attempt, or left by an earlier run) means the failure starts here. So an alert on
    raised failures fires for the primitive where a failure started only.
    """
    origin = c.ORIGIN_RAISED
    for e in _links(exc):
        mark = getattr(e, "__dict__", {}).get(_SEEN)
        if type(mark) is float and mark > started:
            origin = c.ORIGIN_PROPAGATED
            break
    if origin is c.ORIGIN_RAISED:
        with contextlib.suppress(Exception):  # no instance dict: every frame counts it raised
            exc.__dict__[_SEEN] = started
    run = CURRENT_CALL.get()
    return origin, c.NO_WORKFLOW if run is None else run.root.inst.name


def forget_failure(exc: BaseException) -> None:
    """Remove the marks :func:`failure_labels` left on ``exc`` and the exceptions it links to."""
    for e in _links(exc):
        with contextlib.suppress(Exception):
            e.__dict__.pop(_SEEN, None)


class Started:
    """One call between :meth:`Instrument.start` and :meth:`Instrument.finish`: its span, the
    context token to detach (:data:`NO_CONTEXT`: none), the :data:`CURRENT_CALL` token to reset
    (:data:`NO_CONTEXT`: none), its start time, and its place in the run: the ``parent`` call
    (None: this call is the run), the ``root`` call, and the intervals its children ran (None
    until one ends), and whether the span is ours to end (``own``; False: adopted from the code
    observed, which ends it). Only a root keeps the run's counts: ``run`` ([observed calls, LLM
    calls], None while the run is one call that made no LLM call) and ``usage``.
    """

    __slots__ = (
        "_root",
        "fold",
        "inst",
        "kids",
        "outer",
        "own",
        "parent",
        "run",
        "span",
        "spend",
        "t0",
        "token",
        "usage",
    )

    #: (covered time folded so far, its horizon), set with the first child's interval; see
    #: :func:`fold`.
    fold: tuple[float, float] | None

    #: The CURRENT_CALL token to reset and the start time: set by whoever starts the call.
    outer: object
    t0: float

    def __init__(
        self, inst: Instrument, parent: Started | None, span: trace.Span, token: object
    ) -> None:
        # Only what every call needs: this runs on every call.
        self.inst = inst
        self.parent = parent
        self.span = span
        self.token = token
        self.kids: list[tuple[float, float]] | None = None
        self.own = True
        if parent is None:
            # Not a reference to itself: a cycle would keep every run's call and span alive
            # until the garbage collector runs, rather than freeing them when the call ends.
            self._root: Started | None = None
            #: [observed calls, LLM calls] of the run, from its first child or LLM call on.
            self.run: list[int] | None = [1, 1] if inst.is_llm else None
            #: [tokens, cost in USD] reported during the run; None until the first report.
            self.usage: list[float] | None = None
            #: LLM spend reported in the run outside any primitive call, or passed up by one,
            #: whose fate the run's outcome decides (see ``_spend``); None until there is some.
            self.spend: Spend | None = None
        else:
            root = parent._root
            if root is None:
                root = parent
            self._root = root
            run = root.run
            if run is None:
                run = root.run = [1, 0]
            run[0] += 1
            if inst.is_llm and not in_llm_call(parent):
                run[1] += 1
            # Most calls have the same parent and run as their last call: two identity checks.
            if inst.last_parent is not parent.inst or inst.last_root is not root.inst:
                inst.add_edge(root.inst, parent.inst)

    @property
    def root(self) -> Started:
        """The run's outermost call (this call, if it is the run)."""
        root = self._root
        return self if root is None else root


def in_llm_call(call: Started | None) -> bool:
    """Whether ``call`` is an ``llm`` call or runs inside one (rare events only: it walks up)."""
    while call is not None:
        if call.inst.is_llm:
            return True
        call = call.parent
    return False


#: A parent with this many children ended since its last fold folds them (see :func:`fold`).
FOLD_AT: Final = 256


def fold(call: Started) -> None:
    """Fold ``call``'s children intervals into a total, so a long-lived parent (a server loop,
    an agent running for hours) keeps a bounded list. Intervals after the fold are clipped to
    start at the fold's horizon (the latest end so far): exact for children that run one after
    the other; for a child that started before the fold and ends after it, its part before the
    horizon is not counted, so self time can only read high, never low."""
    kids, call.kids = call.kids or [], []
    total, horizon = call.fold or (0.0, call.t0)
    end = max(b for _, b in kids) if kids else horizon
    call.fold = (total + covered(kids, horizon, end), max(end, horizon))


def covered_by_kids(call: Started, t1: float) -> float:
    """Time of ``call`` (ending at ``t1``) covered by its children, folded part included."""
    if call.fold is None:
        return covered(call.kids or [], call.t0, t1)
    total, horizon = call.fold
    return total + covered(call.kids or [], horizon, t1)


def covered(kids: list[tuple[float, float]], t0: float, t1: float) -> float:
    """Length of the union of the intervals ``kids``, clipped to ``[t0, t1]``."""
    if not kids:
        return 0.0
    kids.sort()
    total = 0.0
    start = end = t0
    # Children start after their parent, so only the end can need clipping: merge unclipped (the
    # common case, without a min/max per child), and clip only when a child outlived [t0, t1].
    for a, b in kids:
        if a > end:
            total += end - start
            start, end = a, b
        elif b > end:
            end = b
    if end <= t1 and kids[0][0] >= t0:
        return total + (end - start)
    return _covered_clipped(kids, t0, t1)


def _covered_clipped(kids: list[tuple[float, float]], t0: float, t1: float) -> float:
    total = 0.0
    start = end = t0
    for a, b in kids:
        a, b = max(a, t0), min(b, t1)
        if b <= a:
            continue
        if a > end:
            total += end - start
            start, end = a, b
        elif b > end:
            end = b
    return total + (end - start)


def report_usage(tokens: int, cost_usd: float | None) -> Exception | None:
    """An LLM usage report in this context: counted in the run and checked against the budgets
    that apply. Returns the :class:`~tta_observability.RunBudgetExceeded` to raise, if any."""
    call = CURRENT_CALL.get()
    # A report inside an llm call belongs to that call; elsewhere it is an LLM call of its own.
    calls = 0 if in_llm_call(call) else 1
    workflow = None
    if call is not None:
        root = call.root
        workflow = root.inst.name
        run = root.run
        if run is None:
            run = root.run = [1, 0]
        run[1] += calls
        usage = root.usage
        if usage is None:
            usage = root.usage = [0.0, 0.0]
        usage[0] += tokens
        usage[1] += cost_usd or 0.0
    spend = budget.active()
    if spend is None:
        return None
    return budget.after_usage(spend, calls, tokens, cost_usd, workflow)


def _check_llm_budget(inst: Instrument, parent: Started | None) -> None:
    """Before an ``llm`` call starts: raise RunBudgetExceeded if it would go past a budget, and
    nothing else (a failure of the bookkeeping is reported and the call goes on)."""
    try:
        spend = budget.active()
        if spend is None or in_llm_call(parent):
            return
        workflow = parent.root.inst.name if parent is not None else inst.name
        budget.before_llm_call(spend, workflow)
    except budget.RunBudgetExceeded:
        raise
    except Exception as exc:
        report_internal_error("run budget check", exc)


class Instrument:
    """What one observed callable (or one ``observe()`` name) records, resolved once."""

    __slots__ = (
        "__weakref__",
        "attributes",
        "edge_parents",
        "had_kids",
        "is_llm",
        "last_parent",
        "last_root",
        "name",
        "primitive_type",
        "series",
        "slo",
        "slo_bound",
        "slo_series",
        "slo_threshold",
        "span_name",
        "store",
        "workflow_series",
    )

    #: Edges kept per instrument; past this, new parents of it are not exported (the store's
    #: guard bounds the labels anyway).
    _MAX_EDGE_PARENTS: Final = 1024

    def __init__(
        self,
        name: str,
        primitive_type: str = c.FUNCTION_TYPE,
        slo: SLO | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        span_name: str | None = None,
        store: MetricStore = STORE,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"observed name must be a non-empty string, got {name!r}")
        if not isinstance(primitive_type, str) or not primitive_type:
            raise ValueError(f"primitive_type must be a non-empty string, got {primitive_type!r}")
        if slo is not None and not isinstance(slo, SLO):
            raise TypeError(f"slo must be a tta_observability.SLO, got {type(slo).__name__}")
        self.store = store
        self.series = store.primitive(primitive_type, name)
        self.name = self.series.name
        #: True when the SLO came from bind_slo() rather than the decorator.
        self.slo_bound = False
        if slo is None:
            slo = _slo_bindings.get(self.name)
            self.slo_bound = slo is not None
        self.primitive_type = self.series.ptype
        self.span_name = span_name or self.name
        attrs: dict[str, AttributeValue] = dict(attributes or {})
        attrs[c.ATTR_PRIMITIVE_TYPE] = self.primitive_type
        attrs[c.ATTR_PRIMITIVE_NAME] = self.name
        if slo is not None:
            attrs[c.ATTR_SLO] = slo.name
        self.attributes = attrs
        self.slo = slo
        self.slo_series = store.slo(slo) if slo is not None else None
        self.slo_threshold = (
            slo.latency_threshold if slo is not None and slo.latency_threshold else float("inf")
        )
        # Created on the first call that turns out to be outermost.
        self.workflow_series: WorkflowSeries | None = None
        self.is_llm = self.primitive_type == c.LLM_TYPE
        #: Set by the first call that had children: from then on every call records self time.
        self.had_kids = False
        #: (run root, parent) pairs whose edge to this instrument is exported; (None, None): the
        #: root edge of this instrument's own workflow.
        self.edge_parents: set[tuple[Instrument | None, Instrument | None]] = set()
        self.last_root: Instrument | None = None
        self.last_parent: Instrument | None = None
        with _bind_lock:
            _instruments.add(self)

    def set_slo(self, slo: SLO | None, bound: bool = True) -> None:
        """Count this instrument's calls towards ``slo`` (None: towards none)."""
        self.slo_bound = bound
        self.slo = slo
        attrs = {k: v for k, v in self.attributes.items() if k != c.ATTR_SLO}
        if slo is None:
            self.slo_threshold = float("inf")
            self.slo_series = None
        else:
            self.slo_threshold = slo.latency_threshold or float("inf")
            attrs[c.ATTR_SLO] = slo.name
            self.slo_series = self.store.slo(slo)
        self.attributes = attrs

    # The two halves of a call. Neither raises: a failure inside the library is reported once
    # and the call is still counted.

    def add_edge(self, root: Instrument, parent: Instrument) -> None:
        """Export the edge from ``parent`` to this instrument in ``root``'s workflow, once."""
        self.last_root, self.last_parent = root, parent
        key = (root, parent)
        if key in self.edge_parents or len(self.edge_parents) >= self._MAX_EDGE_PARENTS:
            return
        try:
            self.edge_parents.add(key)
            self.store.edge(root.name, parent.name, self.name)
        except Exception as exc:
            report_internal_error("workflow edge", exc)

    def begin(self) -> Started:
        """The bookkeeping half of a call's start: no span, nothing made current. Raises
        RunBudgetExceeded (and starts nothing) for an ``llm`` call past its run's budget."""
        parent = CURRENT_CALL.get()
        if self.is_llm:
            _check_llm_budget(self, parent)
        self.series.begin()
        call = Started(self, parent, _INVALID_SPAN, NO_CONTEXT)
        call.outer = NO_CONTEXT
        call.t0 = 0.0
        return call

    def start(
        self,
        parent: context_api.Context | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> Started:
        # begin(), inlined: this runs on every call.
        up = CURRENT_CALL.get()
        if self.is_llm:
            _check_llm_budget(self, up)
        self.series.begin()
        try:
            # ``attributes`` replaces this instrument's set (callers merge once, not per call).
            attrs = self.attributes if attributes is None else attributes
            span = STATE.tracer.start_span(self.span_name, parent, attributes=attrs)
            # With tracing off there is no span to make current: skip the context switch.
            token = (
                attach_context(span_in_context(span, parent))
                if span is not _INVALID_SPAN
                else NO_CONTEXT
            )
        except Exception as exc:
            report_internal_error("span start", exc)
            span, token = _INVALID_SPAN, NO_CONTEXT
        call = Started(self, up, span, token)
        call.outer = CURRENT_CALL.set(call)
        call.t0 = perf_counter()
        return call

    def adopt(self, span: trace.Span, make_current: bool) -> Started:
        """Start a call whose span someone else opened and will end (TTA.dev's own spans): this
        instrument's attributes go onto it; ``make_current`` makes it the current span until
        the call ends (spans started inside then nest under it)."""
        call = self.begin()
        call.outer = CURRENT_CALL.set(call)
        call.span = span
        call.own = False
        try:
            if span.is_recording():
                span.set_attributes(self.attributes)
            if make_current:
                call.token = attach_context(trace.set_span_in_context(span))
        except Exception as exc:
            report_internal_error("span adopt", exc)
        call.t0 = perf_counter()
        return call

    def finish(self, call: Started, exc: BaseException | None) -> None:
        end = perf_counter()
        duration = end - call.t0
        span, token, outer = call.span, call.token, call.outer
        try:
            status = _SUCCESS if exc is None else classify(exc)
            ctx = span.get_span_context()
            if _CTX_BY_INDEX:
                if ctx[3] & 1:
                    trace_id, span_id = ctx[0], ctx[1]
                else:
                    trace_id = span_id = 0
            elif ctx.trace_flags & 1:
                trace_id, span_id = ctx.trace_id, ctx.span_id
            else:
                trace_id = span_id = 0
            parent = call.parent
            if parent is None:
                # The call is a workflow run: its primitive's and its workflow's series in one.
                wf = self.workflow_series
                if wf is None:
                    wf = self.workflow_series = self.store.workflow(self.name)
                self.series.record_with(wf, status, duration, trace_id, span_id)
            else:
                self.series.record(status, duration, trace_id, span_id)
            if status and exc is not None:  # the error path only
                if status != _CANCELLED:
                    self.series.record_error(type(exc).__name__, *failure_labels(exc, call.t0))
                if parent is None:
                    # The failure leaves the workflow run: leave the exception as it was made.
                    forget_failure(exc)
            if self.slo_series is not None and status != _CANCELLED:
                self.slo_series.record(status != _SUCCESS or duration > self.slo_threshold)
            if call.kids is not None:
                own = duration - covered_by_kids(call, end)
                self.series.record_self(max(own, 0.0), trace_id, span_id)
                self.had_kids = True
            elif self.had_kids:
                # Once a primitive has had children its self time is recorded on every call,
                # so that its histogram alone covers it (a childless call's is its duration).
                self.series.record_self(duration, trace_id, span_id)
            if parent is None:
                # A run of one call that made no LLM call has no shape worth a histogram.
                if call.run is not None:
                    self._record_run(call, wf, trace_id, span_id)  # type: ignore[arg-type]
                if call.usage is not None and call.spend is not None:
                    settle_run(call.spend, c.STATUSES[status])
            else:
                kids = parent.kids
                if kids is None:
                    parent.fold = None
                    parent.kids = [(call.t0, end)]
                else:
                    kids.append((call.t0, end))
                    if len(kids) >= FOLD_AT:
                        fold(parent)
        except Exception as internal:
            report_internal_error("metrics", internal)
            status = _ERROR if exc is not None else _SUCCESS
        # Unsampled (and invalid) spans have nothing to annotate or end.
        span_done = type(span) is _NonRecordingSpan
        try:
            if not span_done and span.is_recording():
                span.set_attribute(_ATTR_STATUS, _STATUS_NAMES[status])
                if exc is not None and status != _CANCELLED:
                    span.set_attribute(c.ATTR_ERROR_TYPE, type(exc).__qualname__)
                    # The type only: exception messages often carry argument values.
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                    if not call.own:
                        pass  # its owner records the exception (TTA.dev does)
                    elif STATE.capture_exception_messages:
                        span.record_exception(exc)
                    else:
                        span.record_exception(exc, _without_message(exc))
        except Exception as internal:
            report_internal_error("span attributes", internal)
        finally:
            if not span_done and call.own:
                try:
                    span.end()
                except Exception as internal:
                    report_internal_error("span end", internal)
            # The common cases inline: this runs on every call.
            if outer is not NO_CONTEXT:
                try:
                    CURRENT_CALL.reset(outer)  # type: ignore[arg-type]
                except ValueError as internal:  # ended in another context than it started
                    report_internal_error("call context reset", internal)
            if token is not NO_CONTEXT:
                if type(token) is _Token:
                    try:
                        token.var.reset(token)
                    except ValueError as internal:
                        report_internal_error("context detach", internal)
                else:
                    context_api.detach(token)  # type: ignore[arg-type]

    def add_root_edge(self) -> None:
        """Export the root edge (``parent=""``) of this instrument's own workflow, once."""
        if (None, None) not in self.edge_parents:
            self.edge_parents.add((None, None))
            self.store.edge(self.name, c.ROOT_PARENT, self.name)

    def _record_run(self, call: Started, wf: WorkflowSeries, trace_id: int, span_id: int) -> None:
        self.add_root_edge()
        run = call.run or (1, 0)
        usage = call.usage or (0, 0.0)
        wf.record_run(run[0], run[1], int(usage[0]), usage[1], trace_id, span_id)


_bind_lock = threading.Lock()
_instruments: weakref.WeakSet[Instrument] = weakref.WeakSet()
_slo_bindings: dict[str, SLO] = {}


def bind_slo(slo: SLO, primitives: Iterable[str]) -> None:
    """Count calls of the named primitives (``primitive_name``) towards ``slo``.

    Applies to instruments created before and after this call, so an SLO file read by
    ``setup()`` covers functions decorated at import time. An explicit ``@observed(slo=...)``
    wins over a binding.
    """
    if not isinstance(slo, SLO):
        raise TypeError(f"bind_slo needs a tta_observability.SLO, got {type(slo).__name__}")
    names = [primitives] if isinstance(primitives, str) else list(primitives)
    with _bind_lock:
        for name in names:
            _slo_bindings[name] = slo
        existing = [i for i in _instruments if i.name in names and (i.slo is None or i.slo_bound)]
    for inst in existing:
        inst.set_slo(slo)


def unbind_slo(bindings: Mapping[str, SLO]) -> None:
    """Undo :func:`bind_slo` for these ``primitive name -> SLO`` bindings."""
    with _bind_lock:
        for name, slo in bindings.items():
            if _slo_bindings.get(name) == slo:
                del _slo_bindings[name]
        existing = [i for i in _instruments if i.slo_bound and bindings.get(i.name) == i.slo]
    for inst in existing:
        inst.set_slo(None, bound=False)


def _without_message(exc: BaseException) -> dict[str, AttributeValue]:
    """The exception event's message and stack trace with the type in place of the message.

    The SDK's own ``exception.stacktrace`` ends with ``Type: message``, so replacing the message
    attribute alone would still export it (messages often carry argument values).
    """
    frames = "".join(traceback.format_tb(exc.__traceback__))
    name = type(exc).__name__
    return {
        "exception.message": name,
        "exception.stacktrace": f"Traceback (most recent call last):\n{frames}{name}",
    }
