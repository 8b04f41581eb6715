"""Where the instrumentation hooks in: ``execute`` (``_execute_impl`` for TTA.dev's
``InstrumentedPrimitive`` subclasses, see ``node.hook_method``) wrapped on a class (one
dispatching wrapper for all its instances) or, when an instance carries its own ``execute``, on
that instance.

The class wrapper looks up the node of the instance it is called on, so instances without one
run unchanged. A class is restored once no instrumented instance relies on it (all
uninstrumented or garbage-collected); instances are tracked weakly for that.
"""

from __future__ import annotations

import copy
import inspect
import weakref
from collections.abc import Callable
from typing import Any

import wrapt

from ..slo import SLO
from .frames import CURRENT, instance_wrapper, run_async, run_sync
from .node import CACHE_MAX, EXECUTE, LOCK, MISSING, NODE_ATTR, Node

#: Finds (or makes) the node for a call on an instance with none of its own; see tree.py.
Resolver = Callable[[Any, "ClassState"], Node | None]


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


class ClassConfig:
    """Name and SLO given to ``@observed`` on a class."""

    __slots__ = ("name", "slo")

    def __init__(self, name: str | None, slo: SLO | None) -> None:
        self.name = name
        self.slo = slo


class ClassState:
    """A class whose ``method`` is wrapped, and why: instances relying on it, or adoption of
    every instance (``instrument_primitives()`` / ``@observed``)."""

    __slots__ = (
        "adopting",
        "auto",
        "cls",
        "method",
        "observed",
        "original",
        "pinned",
        "users",
        "wrapper",
    )

    def __init__(self, cls: type, method: str) -> None:
        self.cls = weakref.ref(cls)
        self.method = method
        self.original: Any = MISSING
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


class_configs: weakref.WeakKeyDictionary[type, ClassConfig] = weakref.WeakKeyDictionary()
#: Wrapped classes: their state per wrapped method name.
classes: weakref.WeakKeyDictionary[type, dict[str, ClassState]] = weakref.WeakKeyDictionary()
_config_cache: dict[type, ClassConfig | None] = {}


def set_class_config(cls: type, config: ClassConfig) -> None:
    class_configs[cls] = config
    _config_cache.clear()


def config_for(cls: type) -> ClassConfig | None:
    try:
        return _config_cache[cls]
    except KeyError:
        pass
    found = None
    for klass in cls.__mro__:
        found = class_configs.get(klass)
        if found is not None:
            break
    if len(_config_cache) < CACHE_MAX:
        _config_cache[cls] = found
    return found


def state_of(cls: type, method: str) -> ClassState | None:
    states = classes.get(cls)
    return states.get(method) if states is not None else None


def states_of(cls: type) -> list[ClassState]:
    return list(classes.get(cls, {}).values())


def owner(cls: type, method: str) -> type | None:
    """The class whose namespace defines ``method`` (patching it there wraps no wrapper)."""
    for klass in cls.__mro__:
        if method in vars(klass):
            return None if klass is object else klass
    return None


def _class_wrapper(state: ClassState, resolve: Resolver) -> Callable[..., Any]:
    method = state.method

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        d = getattr(instance, "__dict__", None)
        if d is None:  # called through the class, or an instance that cannot hold a node
            return wrapped(*args, **kwargs)
        node = d.get(NODE_ATTR)
        if node is None:
            if not state.adopting:  # an instance nobody instrumented: no lock, no lookup
                return wrapped(*args, **kwargs)
            node = resolve(instance, state)
        elif node.obj is not instance or not node.active:
            node = resolve(instance, state)
        if node is None or node.method is not method:
            return wrapped(*args, **kwargs)
        if node.via_instance:
            return wrapped(*args, **kwargs)  # its instance wrapper records this call
        current = CURRENT.get()
        if current is not None and current.node is node:
            return wrapped(*args, **kwargs)  # super().execute() of a patched base class
        return (run_async if node.is_async else run_sync)(node, wrapped, args, kwargs)

    return wrapper


def patch(cls: type, resolve: Resolver, method: str = EXECUTE) -> ClassState | None:
    """Wrap ``cls.<method>`` (its own, or the inherited one, in ``cls``'s namespace)."""
    state = state_of(cls, method)
    if state is not None and state.wrapper is not None:
        return state
    target = inspect.getattr_static(cls, method, MISSING)
    if target is MISSING:
        return None
    if isinstance(target, ClassPatched):
        target = target.__wrapped__
    state = state or ClassState(cls, method)
    original = vars(cls).get(method, MISSING)
    wrapper = ClassPatched(target, _class_wrapper(state, resolve))
    try:
        type.__setattr__(cls, method, wrapper)
    except (TypeError, AttributeError):  # a builtin or extension type
        return None
    state.original, state.wrapper = original, wrapper
    classes.setdefault(cls, {})[method] = state
    return state


def maybe_restore(state: ClassState) -> None:
    if state.users > 0 or state.pinned or state.adopting or state.wrapper is None:
        return
    cls = state.cls()
    if cls is not None and vars(cls).get(state.method) is state.wrapper:
        if state.original is MISSING:
            type.__delattr__(cls, state.method)
        else:
            type.__setattr__(cls, state.method, state.original)
    # Wrapped again by someone else since: leave theirs; ours only dispatches instances with
    # nodes, and there are none.
    state.wrapper = None


def class_patched(cls: type) -> bool:
    return any(state.wrapper is not None for state in states_of(cls))


def patch_instance(obj: Any, node: Node) -> None:
    d = obj.__dict__
    current = d.get("execute", MISSING)
    if isinstance(current, Patched):
        return
    node.previous = current
    node.via_instance = True
    # Written to __dict__ directly: a model class's __setattr__ may reject unknown fields.
    d["execute"] = Patched(obj.execute, instance_wrapper(node))


def unpatch_instance(obj: Any, node: Node) -> None:
    d = obj.__dict__
    if node.via_instance and isinstance(d.get("execute"), Patched):
        if node.previous is MISSING:
            del d["execute"]
        else:
            d["execute"] = node.previous


# Instances relying on a class wrapper, tracked weakly so that collected ones release it.
registry: dict[int, tuple[weakref.ref[Any], ClassState | None]] = {}


def register(obj: Any, state: ClassState | None) -> None:
    key = id(obj)
    if key in registry:
        return

    def collected(ref: weakref.ref[Any]) -> None:
        with LOCK:
            entry = registry.get(key)
            if entry is not None and entry[0] is ref:
                del registry[key]
                _release(entry[1])

    try:
        ref = weakref.ref(obj, collected)
    except TypeError:
        if state is not None:
            state.pinned = True
        return
    registry[key] = (ref, state)
    if state is not None:
        state.users += 1


def _release(state: ClassState | None) -> None:
    if state is not None:
        state.users -= 1
        maybe_restore(state)


def unregister(obj: Any) -> None:
    entry = registry.get(id(obj))
    if entry is not None and entry[0]() is obj:
        del registry[id(obj)]
        _release(entry[1])
