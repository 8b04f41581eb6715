"""``instrument(workflow)``: every node of a composed workflow observed, in place and reversibly.

Each instrumented instance gets a :class:`Node` (names, metric series, span attributes and its
recogniser, all resolved here) in its ``__dict__``, and the class that defines its ``execute``
gets one dispatching wrapper. A call looks up the node of the instance it is made on, so
instances without a node run unchanged, and a copy never runs its original's ``execute``.

Copies: a node belongs to one object. ``copy.copy`` and ``copy.deepcopy`` of an instrumented
workflow carry the original's node until their first call, when they get their own, with the
same names and SLO: copies are instrumented like their original. Pickling drops the node, so an
unpickled workflow is not instrumented. A class is restored once no instrumented instance relies
on it (all uninstrumented or garbage-collected).

The per-call work is: start a span under the current one, tell the parent's recogniser (retry,
fallback, ...) that a child started, run, and record.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import inspect
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, Final, TypeVar

import wrapt
from opentelemetry import context as context_api
from opentelemetry import trace

from .. import contract as c
from .. import llm
from .._state import report_internal_error
from ..context import Binding, enter, leave, parent_from
from ..observed import _NO_CONTEXT, CURRENT_CALL, Instrument
from ..slo import SLO
from .naming import child_name, children, is_primitive, kind_of, root_name
from .recorders import RECOGNISERS, Call, Recogniser

T = TypeVar("T")

logger = logging.getLogger("tta_observability")

#: Key of the :class:`Node` in an instrumented instance's ``__dict__``.
NODE_ATTR: Final = "_tta_observability_node"

#: The instrumented call in progress in this context (its node and span).
CURRENT: contextvars.ContextVar[Call | None] = contextvars.ContextVar(
    "tta_observability_current_primitive", default=None
)

_MISSING: Final[Any] = object()
_LOCK = threading.RLock()
_CACHE_MAX: Final = 4096


class Patched(wrapt.FunctionWrapper):  # type: ignore[type-arg]
    """An ``execute`` that is an instance attribute (not the class's), wrapped on the instance.

    Such instances cannot dispatch through their class; a copy or pickle of one carries the
    unwrapped attribute, so it is not instrumented.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return copy.deepcopy(self.__wrapped__, memo)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self.__wrapped__.__reduce_ex__(protocol)


class ClassPatched(wrapt.FunctionWrapper):  # type: ignore[type-arg]
    """A class's ``execute`` replaced by the dispatching wrapper."""


# Resolved once per (kind, name, SLO, class): workflows built per request reuse them.
_instruments: dict[tuple[str, str, SLO | None, str], Instrument] = {}
_recognisers: dict[tuple[str, str], Recogniser] = {}


def _instrument_for(kind: str, name: str, slo: SLO | None, cls: type) -> Instrument:
    namespace = f"{cls.__module__}.{cls.__qualname__}"
    key = (kind, name, slo, namespace)
    inst = _instruments.get(key)
    if inst is None:
        inst = Instrument(
            name,
            kind,
            slo,
            {c.ATTR_CODE_FUNCTION: "execute", c.ATTR_CODE_NAMESPACE: namespace},
        )
        if len(_instruments) < _CACHE_MAX:
            _instruments[key] = inst
    return inst


def _recogniser_for(kind: str, name: str, obj: Any) -> Recogniser | None:
    make = RECOGNISERS.get(kind)
    if make is None:
        return None
    if kind == "circuit_breaker":  # reads its own instance's state
        return make(name, obj)
    rec = _recognisers.get((kind, name))
    if rec is None:
        rec = make(name, obj)
        if len(_recognisers) < _CACHE_MAX:
            _recognisers[(kind, name)] = rec
    return rec


class Node:
    """Everything one instrumented primitive records, resolved once. Belongs to ``obj`` only."""

    __slots__ = (
        "active",
        "adopted",
        "extracts",
        "inst",
        "is_async",
        "kind",
        "name",
        "obj",
        "previous",
        "recogniser",
        "roles",
        "slo",
        "via_instance",
    )

    def __init__(
        self, obj: Any, name: str, slo: SLO | None, adopted: bool, kids: list[Any]
    ) -> None:
        self.obj = obj
        self.kind = kind_of(obj)
        self.slo = slo
        self.inst = _instrument_for(self.kind, name, slo, type(obj))
        self.name = self.inst.name
        self.recogniser = _recogniser_for(self.kind, self.name, obj)
        self.roles = _roles_of(kids)
        # Only the node that made the LLM call records its usage: parents pass the result up,
        # and a cache that hit made no call.
        self.extracts = self.kind == "llm" or not kids
        self.is_async = _is_async(obj)
        self.previous: Any = _MISSING
        self.active = True
        self.adopted = adopted  # by a patched class (instrument_primitives/@observed)
        self.via_instance = False

    # A copy of the instance shares this node until its first call (see the module docstring);
    # the node's locks and series must never be copied or pickled.
    def __copy__(self) -> Node:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Node:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(None), ())

    def role_of(self, child: Any) -> Any:
        role = self.roles.get(id(child), _MISSING)
        if role is _MISSING:
            # Children may have been replaced since instrumentation.
            self.roles = _roles(self.obj)
            role = self.roles.get(id(child), _MISSING)
        return role


def _roles_of(kids: list[tuple[str | None, Any]]) -> dict[int, str | None]:
    roles: dict[int, str | None] = {}
    for role, child in kids:
        roles.setdefault(id(child), role)
    return roles


def _roles(obj: Any) -> dict[int, str | None]:
    return _roles_of(children(obj))


_async_by_class: dict[type, bool] = {}


def _is_async(obj: Any) -> bool:
    cls = type(obj)
    if "execute" in getattr(obj, "__dict__", ()):  # an instance attribute: not the class's
        return inspect.iscoroutinefunction(inspect.unwrap(obj.execute))
    known = _async_by_class.get(cls)
    if known is None:
        known = inspect.iscoroutinefunction(inspect.unwrap(obj.execute))
        if len(_async_by_class) < _CACHE_MAX:
            _async_by_class[cls] = known
    return known


def node_of(obj: Any) -> Node | None:
    """The :class:`Node` of an instrumented primitive, or None."""
    d = getattr(obj, "__dict__", None)
    node = d.get(NODE_ATTR) if d is not None else None
    return node if node is not None and node.obj is obj and node.active else None


# Per call.


class Frame:
    """One call's state between its start and its end."""

    __slots__ = (
        "binding",
        "call",
        "ctoken",
        "ctx",
        "outer",
        "parent",
        "prec",
        "role",
        "span",
        "t0",
        "token",
    )

    def __init__(
        self,
        parent: Call | None,
        ctx: Any,
        start: tuple[trace.Span, object, object, float],
        call: Call,
    ) -> None:
        self.parent = parent
        self.ctx = ctx
        self.span, self.token, self.outer, self.t0 = start
        self.call = call
        self.ctoken = CURRENT.set(call)
        self.binding: Binding | None = None
        self.role: Any = None
        self.prec: Recogniser | None = None


def _before(node: Node, call: Call, parent: Call | None) -> tuple[Any, Recogniser | None]:
    prec = None
    role = _MISSING
    if parent is not None:
        prec = parent.node.recogniser
        if prec is not None:
            role = parent.node.role_of(node.obj)
            if role is _MISSING:
                prec = None
            else:
                prec.child_start(parent, role, call.span)
    if node.recogniser is not None:
        node.recogniser.start(call)
    return role, prec


def _open(node: Node, args: Any, kwargs: Any) -> Frame:
    parent = CURRENT.get()
    ctx = args[1] if len(args) > 1 else kwargs.get("context")
    otel_parent = None
    if parent is None and ctx is not None:
        try:
            otel_parent = parent_from(ctx)
        except Exception as exc:
            report_internal_error("reading trace ids from the context", exc)
    start = node.inst.start(otel_parent)
    call = Call(node, start[0])
    f = Frame(parent, ctx, start, call)
    try:
        f.binding = enter(ctx, f.span) if ctx is not None else None
    except Exception as exc:
        report_internal_error("primitive call start (context)", exc)
    try:
        f.role, f.prec = _before(node, call, parent)
    except Exception as exc:
        report_internal_error("primitive call start", exc)
    return f


def _close(node: Node, f: Frame, result: Any, exc: BaseException | None) -> None:
    # Each step on its own, so one failing cannot leak another's state (ids left in the
    # context, the workflow id left current).
    try:
        if exc is None and node.extracts:
            llm.extract_from_result(result, f.span, node.obj)
        if node.recogniser is not None:
            node.recogniser.finish(f.call, exc)
    except Exception as internal:
        report_internal_error("primitive call finish", internal)
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
    node.inst.finish(f.span, f.token, f.outer, f.t0, exc)


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
    # Instrument.start's tokens: outer is None unless this call is a workflow run, and
    # _NO_CONTEXT means nothing to undo.
    if f.outer is not None and f.outer is not _NO_CONTEXT:
        with contextlib.suppress(ValueError):
            CURRENT_CALL.reset(f.outer)  # type: ignore[arg-type]
        f.outer = _NO_CONTEXT
    if f.token is not _NO_CONTEXT:
        with contextlib.suppress(ValueError):
            context_api.detach(f.token)  # type: ignore[arg-type]
        f.token = _REATTACH


def _resume(node: Node, f: Frame) -> None:
    if f.token is _REATTACH:
        f.token = context_api.attach(trace.set_span_in_context(f.span))
    if f.outer is not None:
        f.outer = CURRENT_CALL.set(node.inst)
    f.ctoken = CURRENT.set(f.call)
    try:
        f.binding = enter(f.ctx, f.span) if f.ctx is not None else None
    except Exception as exc:
        report_internal_error("primitive call resume", exc)


async def _await_then_close(node: Node, f: Frame, awaitable: Any) -> Any:
    _resume(node, f)
    try:
        result = await awaitable
    except BaseException as exc:
        _close(node, f, None, exc)
        raise
    _close(node, f, result, None)
    return result


async def _run_async(node: Node, wrapped: Any, args: Any, kwargs: Any) -> Any:
    f = _open(node, args, kwargs)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _close(node, f, None, exc)
        raise
    _close(node, f, result, None)
    return result


def _run_sync(node: Node, wrapped: Any, args: Any, kwargs: Any) -> Any:
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
    _close(node, f, result, None)
    return result


def _instance_wrapper(node: Node) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        current = CURRENT.get()
        if current is not None and current.node is node:
            return wrapped(*args, **kwargs)  # re-entered from inside its own call
        return (_run_async if node.is_async else _run_sync)(node, wrapped, args, kwargs)

    return wrapper


# Classes.


class ClassConfig:
    """Name and SLO given to ``@observed`` on a class."""

    __slots__ = ("name", "slo")

    def __init__(self, name: str | None, slo: SLO | None) -> None:
        self.name = name
        self.slo = slo


class ClassState:
    """A class whose ``execute`` is wrapped, and why: instances relying on it, or adoption of
    every instance (``instrument_primitives()`` / ``@observed``)."""

    __slots__ = ("adopting", "auto", "cls", "observed", "original", "pinned", "users", "wrapper")

    def __init__(self, cls: type) -> None:
        self.cls = weakref.ref(cls)
        self.original: Any = _MISSING
        self.wrapper: Any = None
        self.auto = False
        self.observed = False
        self.adopting = False  # auto or observed; read on every call, so kept precomputed
        self.users = 0
        self.pinned = False  # an instance we cannot track weakly relies on it

    def set(self, auto: bool | None = None, observed: bool | None = None) -> None:
        if auto is not None:
            self.auto = auto
        if observed is not None:
            self.observed = observed
        self.adopting = self.auto or self.observed


_class_configs: weakref.WeakKeyDictionary[type, ClassConfig] = weakref.WeakKeyDictionary()
_classes: weakref.WeakKeyDictionary[type, ClassState] = weakref.WeakKeyDictionary()


_config_cache: dict[type, ClassConfig | None] = {}


def _config_for(cls: type) -> ClassConfig | None:
    try:
        return _config_cache[cls]
    except KeyError:
        pass
    found = None
    for klass in cls.__mro__:
        found = _class_configs.get(klass)
        if found is not None:
            break
    if len(_config_cache) < _CACHE_MAX:
        _config_cache[cls] = found
    return found


def _owner(cls: type) -> type | None:
    """The class whose namespace defines ``execute`` (patching it there wraps no wrapper)."""
    for klass in cls.__mro__:
        if "execute" in vars(klass):
            return None if klass is object else klass
    return None


def _class_wrapper(state: ClassState) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        d = getattr(instance, "__dict__", None)
        if d is None:  # called through the class, or an instance that cannot hold a node
            return wrapped(*args, **kwargs)
        node = d.get(NODE_ATTR)
        if node is None:
            if not state.adopting:  # an instance nobody instrumented: no lock, no lookup
                return wrapped(*args, **kwargs)
            node = _resolve(instance, state)
        elif node.obj is not instance or not node.active:
            node = _resolve(instance, state)
        if node is None:
            return wrapped(*args, **kwargs)
        if node.via_instance:
            return wrapped(*args, **kwargs)  # its instance wrapper records this call
        current = CURRENT.get()
        if current is not None and current.node is node:
            return wrapped(*args, **kwargs)  # super().execute() of a patched base class
        return (_run_async if node.is_async else _run_sync)(node, wrapped, args, kwargs)

    return wrapper


def _patch(cls: type) -> ClassState | None:
    """Wrap ``cls.execute`` (its own, or the inherited one, in ``cls``'s namespace)."""
    state = _classes.get(cls)
    if state is not None and state.wrapper is not None:
        return state
    target = inspect.getattr_static(cls, "execute", _MISSING)
    if target is _MISSING:
        return None
    if isinstance(target, ClassPatched):
        target = target.__wrapped__
    state = state or ClassState(cls)
    original = vars(cls).get("execute", _MISSING)
    wrapper = ClassPatched(target, _class_wrapper(state))
    try:
        type.__setattr__(cls, "execute", wrapper)
    except (TypeError, AttributeError):  # a builtin or extension type
        return None
    state.original, state.wrapper = original, wrapper
    _classes[cls] = state
    return state


def _maybe_restore(state: ClassState) -> None:
    if state.users > 0 or state.pinned or state.adopting or state.wrapper is None:
        return
    cls = state.cls()
    if cls is not None and vars(cls).get("execute") is state.wrapper:
        if state.original is _MISSING:
            type.__delattr__(cls, "execute")
        else:
            type.__setattr__(cls, "execute", state.original)
    # Wrapped again by someone else since: leave theirs; ours only dispatches instances with
    # nodes, and there are none.
    state.wrapper = None


def class_patched(cls: type) -> bool:
    state = _classes.get(cls)
    return state is not None and state.wrapper is not None


def set_adopting(cls: type, auto: bool) -> bool:
    """Make every instance of ``cls`` observed (``auto``: by ``instrument_primitives()``, else
    by ``@observed``); False when it already was, or ``cls`` cannot be patched."""
    state = _patch(cls)
    if state is None:
        return False
    if auto:
        changed = not state.auto
        state.set(auto=True)
    else:
        changed = not state.observed
        state.set(observed=True)
    return changed


def stop_adopting(classes: list[type]) -> None:
    """Undo ``set_adopting(cls, auto=True)``: nodes adopted so far are dropped, and each class is
    restored unless instances instrumented with ``instrument()`` rely on it."""
    with _LOCK:
        states = [s for s in (_classes.get(cls) for cls in classes) if s is not None]
        for state in states:
            state.set(auto=False)
        for ref, _ in list(_registry.values()):
            obj = ref()
            node = node_of(obj) if obj is not None else None
            if node is not None and node.adopted:
                _detach(obj)  # an @observed class adopts its instances again on their next call
        for state in states:
            _maybe_restore(state)


# Instances relying on a class wrapper, tracked weakly so that collected ones release it.
_registry: dict[int, tuple[weakref.ref[Any], ClassState | None]] = {}


def _register(obj: Any, state: ClassState | None) -> None:
    key = id(obj)
    if key in _registry:
        return

    def collected(ref: weakref.ref[Any]) -> None:
        with _LOCK:
            entry = _registry.get(key)
            if entry is not None and entry[0] is ref:
                del _registry[key]
                _release(entry[1])

    try:
        ref = weakref.ref(obj, collected)
    except TypeError:
        if state is not None:
            state.pinned = True
        return
    _registry[key] = (ref, state)
    if state is not None:
        state.users += 1


def _release(state: ClassState | None) -> None:
    if state is not None:
        state.users -= 1
        _maybe_restore(state)


def _unregister(obj: Any) -> None:
    entry = _registry.get(id(obj))
    if entry is not None and entry[0]() is obj:
        del _registry[id(obj)]
        _release(entry[1])


# Building the tree.

_warned_slots: set[str] = set()


def _warn_no_dict(obj: Any) -> None:
    name = type(obj).__qualname__
    if name not in _warned_slots:
        _warned_slots.add(name)
        logger.warning(
            "tta_observability: %s has no __dict__ (it uses __slots__), so its instances inside "
            "instrumented workflows are not observed; add '__dict__' to its __slots__",
            name,
        )


def _patch_instance(obj: Any, node: Node) -> None:
    d = obj.__dict__
    current = d.get("execute", _MISSING)
    if isinstance(current, Patched):
        return
    node.previous = current
    node.via_instance = True
    # Written to __dict__ directly: a model class's __setattr__ may reject unknown fields.
    d["execute"] = Patched(obj.execute, _instance_wrapper(node))


def _attach(
    obj: Any, name: str, slo: SLO | None, adopted: bool, kids: list[Any] | None = None
) -> Node | None:
    d = getattr(obj, "__dict__", None)
    if d is None:
        return None
    cfg = _config_for(type(obj))
    if cfg is not None:
        name = cfg.name or name
        slo = slo or cfg.slo
    node = Node(obj, name, slo, adopted, children(obj) if kids is None else kids)
    state = None
    if "execute" not in d:
        owner = _owner(type(obj))
        state = _patch(owner) if owner is not None else None
    if state is None:
        _patch_instance(obj, node)
    d[NODE_ATTR] = node
    _register(obj, state)
    return node


def _walk(root: Any, root_node: Node, adopted: bool) -> None:
    stack = [(children(root), root_node.name)]
    seen = {id(root)}
    while stack:
        kids, name = stack.pop()
        for role, child in kids:
            if id(child) in seen:
                continue
            seen.add(id(child))
            grandchildren = children(child)
            node = node_of(child)
            if node is None:
                node = _attach(child, child_name(name, role, child), None, adopted, grandchildren)
                if node is None:
                    _warn_no_dict(child)
                    continue
            elif not adopted:
                node.adopted = False
            stack.append((grandchildren, node.name))


def _attach_tree(obj: Any, name: str, slo: SLO | None, adopted: bool) -> Node | None:
    node = _attach(obj, name, slo, adopted)
    if node is not None:
        _walk(obj, node, adopted)
    return node


def _adopt(obj: Any) -> Node | None:
    """Name a primitive met for the first time in a patched class's ``execute``, with its tree."""
    parent = CURRENT.get()
    if parent is None:
        name = root_name(obj)
    else:
        role = parent.node.role_of(obj)
        name = child_name(parent.node.name, None if role is _MISSING else role, obj)
    return _attach_tree(obj, name, None, adopted=True)


def _resolve(obj: Any, state: ClassState) -> Node | None:
    """The node for a call on an instance whose ``__dict__`` holds none of its own."""
    with _LOCK:
        d = obj.__dict__
        node: Node | None = d.get(NODE_ATTR)
        if node is not None and node.obj is obj and node.active:
            return node  # another thread attached it meanwhile
        if node is not None:
            if node.active:  # a copy of an instrumented instance: instrumented the same way
                return _attach_tree(obj, node.name, node.slo, node.adopted)
            d.pop(NODE_ATTR, None)  # left by an instance uninstrumented since
        return _adopt(obj) if state.adopting else None


def _detach(obj: Any) -> None:
    d = getattr(obj, "__dict__", None)
    node = d.pop(NODE_ATTR, None) if d is not None else None
    if node is None or d is None or node.obj is not obj:
        return  # nothing, or a copy's inherited node: dropping it is all there is to do
    node.active = False
    if node.via_instance and isinstance(d.get("execute"), Patched):
        if node.previous is _MISSING:
            del d["execute"]
        else:
            d["execute"] = node.previous
    _unregister(obj)


def _warn_if_different(node: Node, obj: Any, name: str | None, slo: SLO | None) -> None:
    differs = []
    if name is not None and root_name(obj, name) != node.name:
        differs.append(f"name={name!r}")
    if slo is not None and slo != node.slo:
        differs.append(f"slo={slo.name!r}")
    if differs:
        logger.warning(
            "tta_observability: %s is already instrumented as %r; %s ignored. Call "
            "uninstrument() first to change it.",
            type(obj).__qualname__,
            node.name,
            " and ".join(differs),
        )


def instrument(workflow: T, *, name: str | None = None, slo: SLO | None = None) -> T:
    """Observe every node of a composed workflow, in place; returns the workflow.

    ``name`` names the root (the ``workflow`` label of ``tta_workflow_executions_total``);
    by default its ``.name`` or its kind. ``slo`` applies to the root. Instrumenting again is a
    no-op (the first names stay; a different ``name``/``slo`` is logged as ignored);
    :func:`uninstrument` undoes it. The root needs a ``__dict__``: a ``__slots__``-only class is
    a TypeError (such children are skipped, with one warning per class).
    """
    if not is_primitive(workflow):
        raise TypeError(
            "instrument() needs a primitive: an object with an execute(input, context) method, "
            f"got {type(workflow).__name__}"
        )
    if slo is not None and not isinstance(slo, SLO):
        raise TypeError(f"slo must be a tta_observability.SLO, got {type(slo).__name__}")
    if getattr(workflow, "__dict__", None) is None:
        raise TypeError(
            f"instrument() cannot observe {type(workflow).__qualname__}: it has no __dict__ "
            "(it uses __slots__), so there is nowhere to keep its instrumentation; add "
            "'__dict__' to its __slots__"
        )
    with _LOCK:
        node = node_of(workflow)
        if node is None:
            node = _attach(workflow, root_name(workflow, name), slo, adopted=False)
            assert node is not None  # it has a __dict__
        else:
            _warn_if_different(node, workflow, name, slo)
            node.adopted = False
        _walk(workflow, node, adopted=False)
    return workflow


def uninstrument(workflow: T) -> T:
    """Undo :func:`instrument` on every node of the workflow; returns it."""
    with _LOCK:
        stack, seen = [workflow], {id(workflow)}
        while stack:
            obj = stack.pop()
            _detach(obj)
            for _, child in children(obj):
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append(child)
    return workflow


def observe_class(cls: type[T], name: str | None = None, slo: SLO | None = None) -> type[T]:
    """``@observed`` on a class: each instance (and the primitives inside it) is instrumented the
    way :func:`instrument` does it, on first call. ``name`` replaces the default name."""
    if not callable(getattr(cls, "execute", None)):
        raise TypeError(
            f"@observed on a class needs an execute(input, context) method; "
            f"{cls.__qualname__} has none"
        )
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValueError(f"observed name must be a non-empty string, got {name!r}")
    if slo is not None and not isinstance(slo, SLO):
        raise TypeError(f"slo must be a tta_observability.SLO, got {type(slo).__name__}")
    with _LOCK:
        _class_configs[cls] = ClassConfig(name, slo)
        _config_cache.clear()
        if _patch(cls) is None:
            raise TypeError(f"@observed cannot wrap {cls.__qualname__}.execute")
        set_adopting(cls, auto=False)
    return cls
