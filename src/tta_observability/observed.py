"""``@observed`` and ``observe()``: a span and SLI metrics for every call.

Everything that does not depend on the call (names, span attributes, the metric series, the SLO)
is resolved once in an :class:`~tta_observability._call.Instrument`; a call starts a span, reads
a clock, and on the way out classifies the outcome and updates pre-resolved series.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import inspect
import pickle
import threading
from collections.abc import Callable, Mapping
from time import perf_counter
from types import CoroutineType, TracebackType
from typing import Any, Final, TypeVar, overload

import wrapt
from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from . import contract as c
from ._call import CURRENT_CALL, NO_CONTEXT, Instrument, Started
from ._call import bind_slo as bind_slo  # re-exported: setup() binds SLO files through here
from ._call import classify as classify
from ._call import status_name as status_name
from ._call import unbind_slo as unbind_slo
from ._state import STATE, report_internal_error
from .llm import extract_from_result as extract_llm_usage
from .primitives.tree import observe_class
from .slo import SLO

F = TypeVar("F", bound=Callable[..., Any])

_INVALID_SPAN: Final = trace.INVALID_SPAN

#: Result types that cannot carry LLM usage: checked inline so that the common call pays a
#: set lookup, not a function call.
_PLAIN_RESULTS: Final = frozenset(
    {type(None), str, bytes, int, float, bool, list, tuple, set, frozenset}
)

_Token: Final = contextvars.Token


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
        call = start()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            finish(call, exc)
            raise
        if result.__class__ not in _PLAIN_RESULTS:
            stop = extract_llm_usage(result, call.span)
            if stop is not None:  # the usage took the run past its budget
                finish(call, None)
                raise stop
        if type(result) is CoroutineType:
            # A coroutine function hidden behind a decorator without functools.wraps: the call
            # ends when its coroutine does. Leave the caller's context as it was until then.
            if call.token is not NO_CONTEXT:
                _detach_token(call.token)
            if call.outer is not NO_CONTEXT:
                _reset(call.outer)
            return _finish_when_awaited(inst, result, call)
        finish(call, None)
        return result

    return wrapper


async def _finish_when_awaited(inst: Instrument, coro: Any, call: Started) -> Any:
    span = call.span
    call.token = (
        context_api.attach(trace.set_span_in_context(span))
        if span is not _INVALID_SPAN
        else NO_CONTEXT
    )
    call.outer = CURRENT_CALL.set(call)
    try:
        result = await coro
    except BaseException as exc:
        inst.finish(call, exc)
        raise
    inst.finish(call, None)
    return result


def _coro_wrapper(inst: Instrument) -> Callable[..., Any]:
    start, finish = inst.start, inst.finish

    async def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = start()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            finish(call, exc)
            raise
        if result.__class__ not in _PLAIN_RESULTS:
            stop = extract_llm_usage(result, call.span)
            if stop is not None:  # the usage took the run past its budget
                finish(call, None)
                raise stop
        finish(call, None)
        return result

    return wrapper


def _gen_begin(inst: Instrument) -> tuple[Started, context_api.Context | None]:
    """Start a span for an iteration without leaving it (or the call) current between steps."""
    call = inst.begin()
    try:
        call.span = STATE.tracer.start_span(inst.span_name, attributes=inst.attributes)
        ctx = trace.set_span_in_context(call.span)
    except Exception as exc:
        report_internal_error("span start", exc)
        call.span, ctx = _INVALID_SPAN, None
    call.t0 = perf_counter()
    return call, ctx


def _gen_end(inst: Instrument, call: Started, exc: BaseException | None) -> None:
    # Nothing is attached between steps, so there is no token to undo.
    call.token = call.outer = NO_CONTEXT
    inst.finish(call, exc)


def _first_item(inst: Instrument, call: Started) -> None:
    """The iteration's first item is out: record the time it took (the stream's time to first
    token), with the span as exemplar when sampled."""
    try:
        ctx = call.span.get_span_context()
        ids = (ctx.trace_id, ctx.span_id) if ctx.trace_flags & 1 else (0, 0)
        inst.series.record_first_item(perf_counter() - call.t0, *ids)
    except Exception as exc:
        report_internal_error("time to first item", exc)


def _attach(call: Started, ctx: context_api.Context | None) -> tuple[object, object]:
    """Make the span and the call current for one step of an iteration, never across a yield."""
    return (NO_CONTEXT if ctx is None else context_api.attach(ctx)), CURRENT_CALL.set(call)


def _detach(tokens: tuple[object, object]) -> None:
    _reset(tokens[1])
    if tokens[0] is not NO_CONTEXT:
        _detach_token(tokens[0])


def _gen_wrapper(inst: Instrument) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        gen = wrapped(*args, **kwargs)
        return _observed_generator(inst, gen)

    return wrapper


def _observed_generator(inst: Instrument, gen: Any) -> Any:
    call, ctx = _gen_begin(inst)
    send = None
    throw: BaseException | None = None
    # This body (and call.t0) starts at the consumer's first request for an item, not at the
    # call that made the generator: the first item is timed from there.
    first = True
    try:
        while True:
            token = _attach(call, ctx)
            try:
                item = gen.throw(throw) if throw is not None else gen.send(send)
            finally:
                _detach(token)
            if first:
                _first_item(inst, call)
                first = False
            throw = None
            try:
                send = yield item
            except GeneratorExit:
                gen.close()
                raise
            except BaseException as exc:
                throw = exc
    except StopIteration as stop:
        _gen_end(inst, call, None)
        return stop.value
    except GeneratorExit:
        # The consumer stopped early: the iteration ended normally from its side.
        _gen_end(inst, call, None)
        raise
    except BaseException as exc:
        _gen_end(inst, call, exc)
        raise


def _asyncgen_wrapper(inst: Instrument) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return _observed_async_generator(inst, wrapped(*args, **kwargs))

    return wrapper


async def _observed_async_generator(inst: Instrument, agen: Any) -> Any:
    call, ctx = _gen_begin(inst)
    send = None
    throw: BaseException | None = None
    first = True  # see _observed_generator
    try:
        while True:
            token = _attach(call, ctx)
            try:
                if throw is not None:
                    item = await agen.athrow(throw)
                else:
                    item = await agen.asend(send)
            finally:
                _detach(token)
            if first:
                _first_item(inst, call)
                first = False
            throw = None
            try:
                send = yield item
            except GeneratorExit:
                await agen.aclose()
                raise
            except BaseException as exc:
                throw = exc
    except StopAsyncIteration:
        _gen_end(inst, call, None)
    except GeneratorExit:
        _gen_end(inst, call, None)
        raise
    except BaseException as exc:
        _gen_end(inst, call, exc)
        raise


_WRAPPERS: Final = {
    "sync": _sync_wrapper,
    "coro": _coro_wrapper,
    "gen": _gen_wrapper,
    "asyncgen": _asyncgen_wrapper,
}


def _by_reference(module: str, qualname: str) -> Any:
    """Unpickle an observed function: import its module and look it up, as pickle does."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _reference(proxy: Any) -> tuple[Any, tuple[str, str]]:
    qualname = str(getattr(proxy, "__qualname__", ""))
    module = getattr(proxy, "__module__", None)
    if not module or not qualname or "<locals>" in qualname:
        # What pickle says of the undecorated function: only importable names pickle.
        raise pickle.PicklingError(f"Can't pickle local object {qualname or proxy!r}")
    return _by_reference, (module, qualname)


class _BoundObserved(wrapt.BoundFunctionWrapper):  # type: ignore[type-arg]
    """An observed method bound to its instance (or class): pickles as ``getattr(obj, name)``."""

    def __reduce_ex__(self, protocol: object) -> Any:
        owner = getattr(self.__wrapped__, "__self__", None)
        if owner is not None and not inspect.ismodule(owner):
            return getattr, (owner, self.__name__)
        return _reference(self)

    def __reduce__(self) -> Any:
        return self.__reduce_ex__(2)


class _ObservedFunction(wrapt.FunctionWrapper):  # type: ignore[type-arg]
    """An observed function pickles by reference (module and qualified name), like a function.

    wrapt's proxies refuse to pickle, which broke ``ProcessPoolExecutor``, ``multiprocessing``
    with spawn and ``functools.partial`` of decorated functions.
    """

    __bound_function_wrapper__ = _BoundObserved

    def __reduce_ex__(self, protocol: object) -> Any:
        return _reference(self)

    def __reduce__(self) -> Any:
        return _reference(self)


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
        return observe_class(func, name=name, slo=slo)
    if not callable(func) and not isinstance(func, classmethod | staticmethod):
        raise TypeError(f"@observed needs a function, got {type(func).__name__}")
    if attributes is not None and not isinstance(attributes, Mapping):
        raise TypeError(f"@observed attributes must be a mapping, got {type(attributes).__name__}")
    attrs = _code_attributes(func)
    attrs.update(attributes or {})
    inst = Instrument(_default_name(func) if name is None else name, primitive_type, slo, attrs)
    return _ObservedFunction(func, _WRAPPERS[_callable_kind(func)](inst))


_observe_cache: dict[tuple[str, str, SLO | None], Instrument] = {}
_observe_lock = threading.Lock()

#: Blocks open in this context, innermost last. Per context rather than per ``observe`` object,
#: so one object may be entered again while open (nested, or from concurrent tasks).
_OPEN_BLOCKS: contextvars.ContextVar[tuple[tuple[observe, Started], ...]] = contextvars.ContextVar(
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
                return call.span
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
                self._inst.finish(call, exc)
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
