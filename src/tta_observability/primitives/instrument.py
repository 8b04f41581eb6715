"""``instrument(workflow)``: every node of a composed workflow observed, in place and reversibly.

Each node gets a :class:`Node` (names, metric series, span attributes and its recogniser, all
resolved here) stored on the instance, and its ``execute`` is replaced on the instance by a
wrapper; the class is untouched, so other instances are not affected and ``uninstrument`` only
has to delete the instance attribute. The per-call work is: start a span under the current one,
tell the parent's recogniser (retry, fallback, ...) that a child started, run, and record.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import threading
import weakref
from collections.abc import Callable
from typing import Any, Final, TypeVar

import wrapt

from .. import contract as c
from .. import llm
from .._state import report_internal_error
from ..context import enter, leave, parent_from
from ..observed import Instrument
from ..slo import SLO
from .naming import child_name, children, is_primitive, kind_of, root_name
from .recorders import RECOGNISERS, Call, Recogniser

T = TypeVar("T")

#: Key of the :class:`Node` in an instrumented instance's ``__dict__``.
NODE_ATTR: Final = "_tta_observability_node"

#: The instrumented call in progress in this context (its node and span).
CURRENT: contextvars.ContextVar[Call | None] = contextvars.ContextVar(
    "tta_observability_current_primitive", default=None
)

_MISSING: Final[Any] = object()
_LOCK = threading.RLock()


class Patched(wrapt.FunctionWrapper):  # type: ignore[type-arg]
    """An instance's ``execute`` replaced by :func:`instrument`."""


class ClassPatched(wrapt.FunctionWrapper):  # type: ignore[type-arg]
    """A class's ``execute`` replaced by ``instrument_primitives()`` or ``@observed``."""


class Node:
    """Everything one instrumented primitive records, resolved once."""

    __slots__ = ("inst", "is_async", "kind", "name", "obj", "previous", "recogniser", "roles")

    def __init__(self, obj: Any, name: str, slo: SLO | None = None) -> None:
        cls = type(obj)
        self.obj = obj
        self.kind = kind_of(obj)
        self.inst = Instrument(
            name,
            self.kind,
            slo,
            {
                c.ATTR_CODE_FUNCTION: "execute",
                c.ATTR_CODE_NAMESPACE: f"{cls.__module__}.{cls.__qualname__}",
            },
        )
        self.name = self.inst.name
        make = RECOGNISERS.get(self.kind)
        self.recogniser: Recogniser | None = make(self.name, obj) if make else None
        self.roles = _roles(obj)
        self.is_async = inspect.iscoroutinefunction(inspect.unwrap(obj.execute))
        self.previous: Any = _MISSING

    def role_of(self, child: Any) -> Any:
        role = self.roles.get(id(child), _MISSING)
        if role is _MISSING:
            # Children may have been replaced since instrumentation.
            self.roles = _roles(self.obj)
            role = self.roles.get(id(child), _MISSING)
        return role


def _roles(obj: Any) -> dict[int, str | None]:
    roles: dict[int, str | None] = {}
    for role, child in children(obj):
        roles.setdefault(id(child), role)
    return roles


def node_of(obj: Any) -> Node | None:
    """The :class:`Node` of an instrumented primitive, or None."""
    d = getattr(obj, "__dict__", None)
    return d.get(NODE_ATTR) if d is not None else None


# Per call.


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


def _after(
    node: Node,
    call: Call,
    parent: Call | None,
    role: Any,
    prec: Recogniser | None,
    exc: BaseException | None,
) -> None:
    if node.recogniser is not None:
        node.recogniser.finish(call, exc)
    if prec is not None:
        prec.child_end(parent, role, exc)  # type: ignore[arg-type]


def _open(node: Node, args: Any, kwargs: Any) -> tuple[Any, ...]:
    parent = CURRENT.get()
    ctx = args[1] if len(args) > 1 else kwargs.get("context")
    otel_parent = parent_from(ctx) if parent is None and ctx is not None else None
    span, token, outer, t0 = node.inst.start(otel_parent)
    call = Call(node, span)
    ctoken = CURRENT.set(call)
    binding = role = prec = None
    try:
        binding = enter(ctx, span) if ctx is not None else None
        role, prec = _before(node, call, parent)
    except Exception as exc:
        report_internal_error("primitive call start", exc)
    return span, token, outer, t0, call, ctoken, binding, parent, role, prec


def _close(node: Node, state: tuple[Any, ...], result: Any, exc: BaseException | None) -> None:
    span, token, outer, t0, call, ctoken, binding, parent, role, prec = state
    try:
        if exc is None:
            llm.observe_result(result, span, node.obj)
        _after(node, call, parent, role, prec, exc)
        leave(binding)
    except Exception as internal:
        report_internal_error("primitive call finish", internal)
    with contextlib.suppress(ValueError):  # finished in another context than it started in
        CURRENT.reset(ctoken)
    node.inst.finish(span, token, outer, t0, exc)


async def _run_async(node: Node, wrapped: Any, args: Any, kwargs: Any) -> Any:
    state = _open(node, args, kwargs)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _close(node, state, None, exc)
        raise
    _close(node, state, result, None)
    return result


def _run_sync(node: Node, wrapped: Any, args: Any, kwargs: Any) -> Any:
    state = _open(node, args, kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        _close(node, state, None, exc)
        raise
    _close(node, state, result, None)
    return result


def _instance_wrapper(node: Node) -> Callable[..., Any]:
    run = _run_async if node.is_async else _run_sync

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        current = CURRENT.get()
        if current is not None and current.node is node:
            return wrapped(*args, **kwargs)  # re-entered from inside its own call
        return run(node, wrapped, args, kwargs)

    return wrapper


# Building the tree.


class ClassConfig:
    """Name and SLO given to ``@observed`` on a class."""

    __slots__ = ("name", "slo")

    def __init__(self, name: str | None, slo: SLO | None) -> None:
        self.name = name
        self.slo = slo


_class_configs: weakref.WeakKeyDictionary[type, ClassConfig] = weakref.WeakKeyDictionary()


def _config_for(cls: type) -> ClassConfig | None:
    for klass in cls.__mro__:
        cfg = _class_configs.get(klass)
        if cfg is not None:
            return cfg
    return None


def _attach(obj: Any, name: str, slo: SLO | None = None) -> Node | None:
    d = getattr(obj, "__dict__", None)
    if d is None:
        report_internal_error(
            f"instrumenting {type(obj).__qualname__}",
            TypeError("it has no __dict__ (uses __slots__), so it is left uninstrumented"),
        )
        return None
    cfg = _config_for(type(obj))
    if cfg is not None:
        name = cfg.name or name
        slo = slo or cfg.slo
    node = Node(obj, name, slo)
    d[NODE_ATTR] = node
    return node


def _patch_instance(obj: Any, node: Node) -> None:
    d = obj.__dict__
    current = d.get("execute", _MISSING)
    if isinstance(current, Patched):
        return
    node.previous = current
    # Written to __dict__ directly: a model class's __setattr__ may reject unknown fields.
    d["execute"] = Patched(obj.execute, _instance_wrapper(node))


def class_patched(cls: type) -> bool:
    return isinstance(inspect.getattr_static(cls, "execute", None), ClassPatched)


def _walk(root: Any, root_node: Node, patch: Callable[[Any], bool]) -> None:
    stack = [(root, root_node.name)]
    seen = {id(root)}
    while stack:
        obj, name = stack.pop()
        for role, child in children(obj):
            if id(child) in seen:
                continue
            seen.add(id(child))
            node = node_of(child) or _attach(child, child_name(name, role, child))
            if node is None:
                continue
            if patch(child):
                _patch_instance(child, node)
            stack.append((child, node.name))


def instrument(workflow: T, *, name: str | None = None, slo: SLO | None = None) -> T:
    """Observe every node of a composed workflow, in place; returns the workflow.

    ``name`` names the root (the ``workflow`` label of ``tta_workflow_executions_total``);
    by default its ``.name`` or its kind. ``slo`` applies to the root. Instrumenting again is a
    no-op (the first names stay); :func:`uninstrument` undoes it.
    """
    if not is_primitive(workflow):
        raise TypeError(
            "instrument() needs a primitive: an object with an execute(input, context) method, "
            f"got {type(workflow).__name__}"
        )
    if slo is not None and not isinstance(slo, SLO):
        raise TypeError(f"slo must be a tta_observability.SLO, got {type(slo).__name__}")
    with _LOCK:
        node = node_of(workflow) or _attach(workflow, root_name(workflow, name), slo)
        if node is None:
            return workflow
        _patch_instance(workflow, node)
        _walk(workflow, node, lambda _: True)
    return workflow


def uninstrument(workflow: T) -> T:
    """Undo :func:`instrument` on every node of the workflow; returns it."""
    with _LOCK:
        stack, seen = [workflow], {id(workflow)}
        while stack:
            obj = stack.pop()
            d = getattr(obj, "__dict__", None)
            node = d.pop(NODE_ATTR, None) if d is not None else None
            if node is not None and d is not None and isinstance(d.get("execute"), Patched):
                if node.previous is _MISSING:
                    del d["execute"]
                else:
                    d["execute"] = node.previous
            for _, child in children(obj):
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append(child)
    return workflow


# Class-level patching, shared by instrument_primitives() and @observed on a class.


def _adopt(obj: Any) -> Node | None:
    """Name a primitive met for the first time in a patched class's ``execute``, with its tree."""
    with _LOCK:
        node = node_of(obj)
        if node is not None:
            return node
        parent = CURRENT.get()
        if parent is None:
            name = root_name(obj)
        else:
            role = parent.node.role_of(obj)
            if role is _MISSING:
                name = child_name(parent.node.name, None, obj)
            else:
                name = child_name(parent.node.name, role, obj)
        node = _attach(obj, name)
        if node is not None:
            # Children of classes that are not patched get instance wrappers, so retries,
            # caches and fallbacks around user-defined primitives still see each child call.
            _walk(obj, node, lambda child: not class_patched(type(child)))
        return node


def class_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    d = getattr(instance, "__dict__", None)
    if d is None or isinstance(d.get("execute"), Patched):
        # Unbound call, an instance that cannot be instrumented, or one whose own instance
        # wrapper is already recording this call.
        return wrapped(*args, **kwargs)
    node = d.get(NODE_ATTR) or _adopt(instance)
    if node is None:
        return wrapped(*args, **kwargs)
    current = CURRENT.get()
    if current is not None and current.node is node:
        return wrapped(*args, **kwargs)  # super().execute() of a patched base class
    return (_run_async if node.is_async else _run_sync)(node, wrapped, args, kwargs)


def patch_class(cls: type) -> bool:
    """Wrap ``cls.execute`` (its own, or the inherited one in ``cls``'s namespace)."""
    if class_patched(cls):
        return False
    original = inspect.getattr_static(cls, "execute")
    cls.execute = ClassPatched(original, class_wrapper)  # type: ignore[attr-defined]
    return True


def unpatch_class(cls: type, original: Any) -> None:
    current = cls.__dict__.get("execute")
    if isinstance(current, ClassPatched):
        if original is _MISSING:
            del cls.execute  # type: ignore[attr-defined]
        else:
            cls.execute = original  # type: ignore[attr-defined]


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
        patch_class(cls)
    return cls
