"""``@observed`` and ``observe()``: a span and SLI metrics for every call.

Everything that does not depend on the call (names, span attributes, the metric series, the SLO)
is resolved once in :class:`Instrument`; a call starts a span, reads a clock, and on the way out
classifies the outcome and updates pre-resolved series.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from time import perf_counter
from types import CoroutineType, TracebackType
from typing import Any, Final, TypeVar, overload

import wrapt
from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from . import contract as c
from ._state import STATE, report_internal_error
from .llm import extract_from_result as extract_llm_usage
from .metrics import STORE, MetricStore, WorkflowSeries
from .slo import SLO

F = TypeVar("F", bound=Callable[..., Any])

_SUCCESS: Final = 0
_ERROR: Final = c.STATUSES.index(c.STATUS_ERROR)
_TIMEOUT: Final = c.STATUSES.index(c.STATUS_TIMEOUT)
_CANCELLED: Final = c.STATUSES.index(c.STATUS_CANCELLED)

#: The observed call in progress in this context; None outside any. The outermost call of a
#: trace is a workflow run.
CURRENT_CALL: contextvars.ContextVar[Instrument | None] = contextvars.ContextVar(
    "tta_observability_current_call", default=None
)

_INVALID_SPAN: Final = trace.INVALID_SPAN
#: Stands for "nothing attached" when a call ran without a span, as distinct from a failed start.
_NO_CONTEXT: Final = object()

#: Result types that cannot carry LLM usage: checked inline so that the common call pays a
#: set lookup, not a function call.
_PLAIN_RESULTS: Final = frozenset(
    {type(None), str, bytes, int, float, bool, list, tuple, set, frozenset}
)

_Token: Final = contextvars.Token
_NonRecordingSpan: Final = trace.NonRecordingSpan


def _runtime_context_var() -> contextvars.ContextVar[Any] | None:
    """The ContextVar behind OpenTelemetry's default runtime context, if that is in use."""
    try:
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

        runtime = context_api._RUNTIME_CONTEXT
        if type(runtime) is ContextVarsRuntimeContext:
            var = runtime._current_context
            if isinstance(var, contextvars.ContextVar):
                return var
    except Exception:
        pass
    return None


_CONTEXT_VAR = _runtime_context_var()
#: context.attach() without its two layers of indirection when the runtime context is the
#: default ContextVar one (what attach() itself does then); the public API otherwise.
_attach_context: Callable[[context_api.Context], object] = (
    _CONTEXT_VAR.set if _CONTEXT_VAR is not None else context_api.attach
)

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


class Instrument:
    """What one observed callable (or one ``observe()`` name) records, resolved once."""

    __slots__ = (
        "__weakref__",
        "attributes",
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

    def start(
        self,
        parent: context_api.Context | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> tuple[trace.Span, object, object, float]:
        self.series.begin()
        outer = CURRENT_CALL.set(self) if CURRENT_CALL.get() is None else None
        try:
            # ``attributes`` replaces this instrument's set (callers merge once, not per call).
            attrs = self.attributes if attributes is None else attributes
            span = STATE.tracer.start_span(self.span_name, parent, attributes=attrs)
            # With tracing off there is no span to make current: skip the context switch.
            token = (
                _attach_context(trace.set_span_in_context(span, parent))
                if span is not _INVALID_SPAN
                else _NO_CONTEXT
            )
        except Exception as exc:
            report_internal_error("span start", exc)
            span, token = _INVALID_SPAN, _NO_CONTEXT
        return span, token, outer, perf_counter()

    def finish(
        self,
        span: trace.Span,
        token: object,
        outer: object,
        t0: float,
        exc: BaseException | None,
    ) -> None:
        duration = perf_counter() - t0
        try:
            status = _SUCCESS if exc is None else classify(exc)
            ctx = span.get_span_context()
            if ctx.trace_flags & 1:
                trace_id, span_id = ctx.trace_id, ctx.span_id
            else:
                trace_id = span_id = 0
            self.series.record(status, duration, trace_id, span_id)
            if status in (_ERROR, _TIMEOUT):
                self.series.record_error(type(exc).__name__)
            if self.slo_series is not None and status != _CANCELLED:
                self.slo_series.record(status != _SUCCESS or duration > self.slo_threshold)
            if outer is not None:
                wf = self.workflow_series
                if wf is None:
                    wf = self.workflow_series = self.store.workflow(self.name)
                wf.record(status, duration, trace_id, span_id)
        except Exception as internal:
            report_internal_error("metrics", internal)
            status = _ERROR if exc is not None else _SUCCESS
        # Unsampled (and invalid) spans have nothing to annotate or end.
        span_done = type(span) is _NonRecordingSpan
        try:
            if not span_done and span.is_recording():
                span.set_attribute(c.ATTR_STATUS, c.STATUSES[status])
                if exc is not None and status != _CANCELLED:
                    span.set_attribute(c.ATTR_ERROR_TYPE, type(exc).__qualname__)
                    # The type only: exception messages often carry argument values.
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                    if STATE.capture_exception_messages:
                        span.record_exception(exc)
                    else:
                        span.record_exception(exc, {"exception.message": type(exc).__name__})
        except Exception as internal:
            report_internal_error("span attributes", internal)
        finally:
            if not span_done:
                try:
                    span.end()
                except Exception as internal:
                    report_internal_error("span end", internal)
            # The common cases inline: this runs on every call.
            if outer is not None and outer is not _NO_CONTEXT:
                try:
                    CURRENT_CALL.reset(outer)  # type: ignore[arg-type]
                except ValueError as internal:  # ended in another context than it started
                    report_internal_error("call context reset", internal)
            if token is not _NO_CONTEXT:
                if type(token) is _Token:
                    try:
                        token.var.reset(token)
                    except ValueError as internal:
                        report_internal_error("context detach", internal)
                else:
                    context_api.detach(token)  # type: ignore[arg-type]


def _reset(token: Any) -> None:
    try:
        CURRENT_CALL.reset(token)
    except ValueError as exc:  # finished in another context than it started (e.g. a generator)
        report_internal_error("call context reset", exc)


def _detach_token(token: Any) -> None:
    # OpenTelemetry's default runtime context is a ContextVar and its tokens are ContextVar
    # tokens: resetting directly is what context.detach() does, minus an ERROR log with a
    # traceback on every call when a block ends in another context than it started in.
    if type(token) is _Token:
        try:
            token.var.reset(token)
        except ValueError as exc:
            report_internal_error("context detach", exc)
    else:
        context_api.detach(token)


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


def _callable_kind(func: Any) -> str:
    target = getattr(func, "__func__", func)  # classmethod / staticmethod
    target = inspect.unwrap(target)
    if not inspect.isroutine(target) and callable(target):
        target = type(target).__call__  # an instance with __call__
    if inspect.isasyncgenfunction(target):
        return "asyncgen"
    if inspect.isgeneratorfunction(target):
        return "gen"
    if inspect.iscoroutinefunction(target):
        return "coro"
    return "sync"


def _code_attributes(func: Any) -> dict[str, AttributeValue]:
    target = getattr(func, "__func__", func)
    qualname = str(getattr(target, "__qualname__", None) or getattr(target, "__name__", ""))
    module = getattr(target, "__module__", None) or ""
    namespace = ".".join(p for p in (module, *qualname.split(".")[:-1]) if p and p != "<locals>")
    attrs: dict[str, AttributeValue] = {c.ATTR_CODE_FUNCTION: getattr(target, "__name__", "")}
    if namespace:
        attrs[c.ATTR_CODE_NAMESPACE] = namespace
    return attrs


def _default_name(func: Any) -> str:
    target = getattr(func, "__func__", func)
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if not name:
        raise TypeError(f"cannot derive a name for {func!r}; pass name=")
    return str(name)


def _sync_wrapper(inst: Instrument) -> Callable[..., Any]:
    start, finish = inst.start, inst.finish

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        span, token, outer, t0 = start()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            finish(span, token, outer, t0, exc)
            raise
        if result.__class__ not in _PLAIN_RESULTS:
            extract_llm_usage(result, span)
        if type(result) is CoroutineType:
            # A coroutine function hidden behind a decorator without functools.wraps: the call
            # ends when its coroutine does. Leave the caller's context as it was until then.
            if token is not _NO_CONTEXT:
                _detach_token(token)
            if outer is not None:
                _reset(outer)
            return _finish_when_awaited(inst, result, span, t0)
        finish(span, token, outer, t0, None)
        return result

    return wrapper


async def _finish_when_awaited(inst: Instrument, coro: Any, span: trace.Span, t0: float) -> Any:
    token = (
        context_api.attach(trace.set_span_in_context(span))
        if span is not _INVALID_SPAN
        else _NO_CONTEXT
    )
    outer = CURRENT_CALL.set(inst) if CURRENT_CALL.get() is None else None
    try:
        result = await coro
    except BaseException as exc:
        inst.finish(span, token, outer, t0, exc)
        raise
    inst.finish(span, token, outer, t0, None)
    return result


def _coro_wrapper(inst: Instrument) -> Callable[..., Any]:
    start, finish = inst.start, inst.finish

    async def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        span, token, outer, t0 = start()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            finish(span, token, outer, t0, exc)
            raise
        if result.__class__ not in _PLAIN_RESULTS:
            extract_llm_usage(result, span)
        finish(span, token, outer, t0, None)
        return result

    return wrapper


def _gen_begin(inst: Instrument) -> tuple[trace.Span, context_api.Context | None, float, bool]:
    """Start a span for an iteration without leaving it current between steps."""
    inst.series.begin()
    outermost = CURRENT_CALL.get() is None
    try:
        span = STATE.tracer.start_span(inst.span_name, attributes=inst.attributes)
        ctx = trace.set_span_in_context(span)
    except Exception as exc:
        report_internal_error("span start", exc)
        span, ctx = _INVALID_SPAN, None
    return span, ctx, perf_counter(), outermost


def _gen_end(
    inst: Instrument,
    span: trace.Span,
    t0: float,
    outermost: bool,
    exc: BaseException | None,
) -> None:
    # Nothing is attached between steps, so there is no token to undo.
    inst.finish(span, _NO_CONTEXT, _NO_CONTEXT if outermost else None, t0, exc)


def _attach(inst: Instrument, ctx: context_api.Context | None) -> tuple[object, object] | None:
    """Make the span (and the call) current for one step of an iteration, never across a yield."""
    if ctx is None:
        return None
    return context_api.attach(ctx), CURRENT_CALL.set(inst)


def _detach(tokens: tuple[object, object] | None) -> None:
    if tokens is not None:
        _reset(tokens[1])
        _detach_token(tokens[0])


def _gen_wrapper(inst: Instrument) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        gen = wrapped(*args, **kwargs)
        return _observed_generator(inst, gen)

    return wrapper


def _observed_generator(inst: Instrument, gen: Any) -> Any:
    span, ctx, t0, outermost = _gen_begin(inst)
    send = None
    throw: BaseException | None = None
    try:
        while True:
            token = _attach(inst, ctx)
            try:
                item = gen.throw(throw) if throw is not None else gen.send(send)
            finally:
                _detach(token)
            throw = None
            try:
                send = yield item
            except GeneratorExit:
                gen.close()
                raise
            except BaseException as exc:
                throw = exc
    except StopIteration as stop:
        _gen_end(inst, span, t0, outermost, None)
        return stop.value
    except GeneratorExit:
        # The consumer stopped early: the iteration ended normally from its side.
        _gen_end(inst, span, t0, outermost, None)
        raise
    except BaseException as exc:
        _gen_end(inst, span, t0, outermost, exc)
        raise


def _asyncgen_wrapper(inst: Instrument) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return _observed_async_generator(inst, wrapped(*args, **kwargs))

    return wrapper


async def _observed_async_generator(inst: Instrument, agen: Any) -> Any:
    span, ctx, t0, outermost = _gen_begin(inst)
    send = None
    throw: BaseException | None = None
    try:
        while True:
            token = _attach(inst, ctx)
            try:
                if throw is not None:
                    item = await agen.athrow(throw)
                else:
                    item = await agen.asend(send)
            finally:
                _detach(token)
            throw = None
            try:
                send = yield item
            except GeneratorExit:
                await agen.aclose()
                raise
            except BaseException as exc:
                throw = exc
    except StopAsyncIteration:
        _gen_end(inst, span, t0, outermost, None)
    except GeneratorExit:
        _gen_end(inst, span, t0, outermost, None)
        raise
    except BaseException as exc:
        _gen_end(inst, span, t0, outermost, exc)
        raise


_WRAPPERS: Final = {
    "sync": _sync_wrapper,
    "coro": _coro_wrapper,
    "gen": _gen_wrapper,
    "asyncgen": _asyncgen_wrapper,
}


@overload
def observed(func: F) -> F: ...


@overload
def observed(
    func: None = None,
    *,
    name: str | None = None,
    primitive_type: str = c.FUNCTION_TYPE,
    slo: SLO | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Callable[[F], F]: ...


def observed(
    func: Any = None,
    *,
    name: str | None = None,
    primitive_type: str = c.FUNCTION_TYPE,
    slo: SLO | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Any:
    """Give every call of ``func`` a span and the contract's SLI metrics.

    Works bare (``@observed``) or with arguments (``@observed(name="plan", slo=SLO(...))``) on
    functions, coroutine functions, generators, async generators and methods. Exceptions from the
    function propagate unchanged.

    >>> @observed(name="add")
    ... def add(a, b):
    ...     return a + b
    >>> add(1, 2)
    3
    """
    if func is None:
        return functools.partial(
            observed, name=name, primitive_type=primitive_type, slo=slo, attributes=attributes
        )
    if isinstance(func, type):
        from .primitives import observe_class

        return observe_class(func, name=name, slo=slo)
    if not callable(func) and not isinstance(func, classmethod | staticmethod):
        raise TypeError(f"@observed needs a function, got {type(func).__name__}")
    if attributes is not None and not isinstance(attributes, Mapping):
        raise TypeError(f"@observed attributes must be a mapping, got {type(attributes).__name__}")
    attrs = _code_attributes(func)
    attrs.update(attributes or {})
    inst = Instrument(_default_name(func) if name is None else name, primitive_type, slo, attrs)
    return wrapt.FunctionWrapper(func, _WRAPPERS[_callable_kind(func)](inst))


_observe_cache: dict[tuple[str, str, SLO | None], Instrument] = {}
_observe_lock = threading.Lock()

_Call = tuple[trace.Span, object, object, float]
#: Blocks open in this context, innermost last. Per context rather than per ``observe`` object,
#: so one object may be entered again while open (nested, or from concurrent tasks).
_OPEN_BLOCKS: contextvars.ContextVar[tuple[tuple[observe, _Call], ...]] = contextvars.ContextVar(
    "tta_observability_open_blocks", default=()
)


class observe:
    """``with observe("name"):`` or ``async with observe("name"):`` records a block like a call.

    One object may be kept and entered many times, also concurrently.

    >>> with observe("load-config"):
    ...     pass
    """

    __slots__ = ("_attributes", "_inst")

    def __init__(
        self,
        name: str,
        *,
        primitive_type: str = c.FUNCTION_TYPE,
        slo: SLO | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"observe() needs a name string, got {type(name).__name__}")
        if attributes is not None and not isinstance(attributes, Mapping):
            raise TypeError(
                f"observe() attributes must be a mapping, got {type(attributes).__name__}"
            )
        key = (name, primitive_type, slo)
        inst = _observe_cache.get(key)
        if inst is None:
            inst = Instrument(name, primitive_type, slo)
            with _observe_lock:
                if len(_observe_cache) < 4096:
                    inst = _observe_cache.setdefault(key, inst)
        self._inst = inst
        self._attributes = {**inst.attributes, **attributes} if attributes else None

    @property
    def span(self) -> trace.Span:
        """The span of this object's innermost open block here (non-recording when unsampled)."""
        for obj, call in reversed(_OPEN_BLOCKS.get()):
            if obj is self:
                return call[0]
        return trace.INVALID_SPAN

    def __enter__(self) -> observe:
        call = self._inst.start(attributes=self._attributes)
        _OPEN_BLOCKS.set((*_OPEN_BLOCKS.get(), (self, call)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        blocks = _OPEN_BLOCKS.get()
        for i in range(len(blocks) - 1, -1, -1):
            if blocks[i][0] is self:
                call = blocks[i][1]
                _OPEN_BLOCKS.set(blocks[:i] + blocks[i + 1 :])
                self._inst.finish(*call, exc)
                return
        report_internal_error("observe exit", RuntimeError("block exited in another context"))

    async def __aenter__(self) -> observe:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
