"""The :class:`Node`: everything one instrumented primitive records, resolved once when it is
instrumented (names, metric series, span attributes, its recogniser, its children's roles).

A node lives in its instance's ``__dict__`` under :data:`NODE_ATTR` and belongs to that instance
only; see ``tree.py`` for how nodes are attached and ``frames.py`` for what a call does with one.
"""

from __future__ import annotations

import inspect
import sys
import threading
from typing import Any, Final

from .. import contract as c
from .._call import Instrument
from ..budget import RunBudget
from ..slo import SLO
from .naming import WRAPPER_SPANS, children, kind_by_name, kind_of
from .recorders import RECOGNISERS, Recogniser

#: Key of the :class:`Node` in an instrumented instance's ``__dict__``.
NODE_ATTR: Final = "_tta_observability_node"

#: Stands for "absent" where None is a meaningful value (a role, a previous attribute).
MISSING: Final[Any] = object()
#: Guards every change to nodes and patched classes.
LOCK = threading.RLock()
CACHE_MAX: Final = 4096

#: The method a node's calls are observed through. TTA.dev's ``InstrumentedPrimitive.execute``
#: opens the node's span and then calls ``_execute_impl``: observing the latter runs inside that
#: span, so it can be enriched instead of doubled. Likewise its LLM primitives
#: (``LiteLLMPrimitive``): ``execute`` opens ``gen_ai.<...>.invoke`` as the current span and
#: calls ``_call(kwargs, model, provider, ctx)`` inside it; ``UniversalLLMPrimitive`` picks a
#: per-provider ``_call_<provider>(request, ctx)`` (``_call_openai_compat`` with ``use_compat``)
#: and calls that inside its span, so its instances are observed each through their own.
EXECUTE: Final = "execute"
EXECUTE_IMPL: Final = "_execute_impl"
LLM_CALL: Final = "_call"
_DISPATCH: Final = "_resolve_call_fn"

#: Modules of TTA.dev (current layout, 2025 layout); also its tracers' instrumentation scopes
#: (``trace.get_tracer(__name__)``).
SCOPES: Final = ("ttadev.", "tta_dev_primitives.")

_hooks: dict[type, str] = {}


def hook_method(cls: type) -> str:
    """:data:`EXECUTE_IMPL` for subclasses of TTA.dev's ``InstrumentedPrimitive``,
    :data:`LLM_CALL` for TTA.dev's LLM primitives that have one, else :data:`EXECUTE`."""
    method = _hooks.get(cls)
    if method is None:
        instrumented = any(
            k.__name__ == "InstrumentedPrimitive" and EXECUTE in vars(k) for k in cls.__mro__
        )
        if instrumented and callable(getattr(cls, EXECUTE_IMPL, None)):
            method = EXECUTE_IMPL
        elif _ttadev_llm(cls, LLM_CALL):
            method = LLM_CALL
        else:
            method = EXECUTE
        if len(_hooks) < CACHE_MAX:
            _hooks[cls] = method
    return method


def hook_method_of(obj: Any) -> str:
    """:func:`hook_method` of ``obj``'s class, or the ``_call_<provider>`` method a TTA.dev
    ``UniversalLLMPrimitive`` calls inside its span (read from its provider settings)."""
    cls = type(obj)
    method = hook_method(cls)
    if method != EXECUTE or not callable(getattr(cls, _DISPATCH, None)) or not _ttadev_llm(cls):
        return method
    if getattr(obj, "_use_compat", False) is True:
        name = f"{LLM_CALL}_openai_compat"
    else:
        provider = getattr(getattr(obj, "_provider", None), "value", None)
        name = f"{LLM_CALL}_{provider}" if isinstance(provider, str) else ""
    if not name.isidentifier() or not inspect.iscoroutinefunction(getattr(cls, name, None)):
        return EXECUTE
    return sys.intern(name)  # patching.py tells methods apart by identity


def _ttadev_llm(cls: type, method: str | None = None) -> bool:
    """A TTA.dev LLM primitive whose ``execute`` is its own (a subclass overriding it may not
    call its provider inside TTA.dev's span) and, given ``method``, has that method."""
    owner = next((k for k in cls.__mro__ if EXECUTE in vars(k)), None)
    return (
        owner is not None
        and (owner.__module__ or "").startswith(SCOPES)
        and kind_by_name(cls) == "llm"
        and (method is None or callable(getattr(cls, method, None)))
    )


# Resolved once per (kind, name, SLO, class, method): workflows built per request reuse them.
_instruments: dict[tuple[str, str, SLO | None, str, str], Instrument] = {}
_recognisers: dict[tuple[str, str], Recogniser] = {}


def _instrument_for(kind: str, name: str, slo: SLO | None, cls: type, method: str) -> Instrument:
    namespace = f"{cls.__module__}.{cls.__qualname__}"
    key = (kind, name, slo, namespace, method)
    inst = _instruments.get(key)
    if inst is None:
        inst = Instrument(
            name,
            kind,
            slo,
            {c.ATTR_CODE_FUNCTION: method, c.ATTR_CODE_NAMESPACE: namespace},
        )
        if len(_instruments) < CACHE_MAX:
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
        if len(_recognisers) < CACHE_MAX:
            _recognisers[(kind, name)] = rec
    return rec


class Node:
    """Everything one instrumented primitive records, resolved once. Belongs to ``obj`` only."""

    __slots__ = (
        "active",
        "adopted",
        "budget",
        "ctx_at",
        "ctx_kw",
        "extracts",
        "inner_span",
        "inst",
        "is_async",
        "kind",
        "method",
        "name",
        "obj",
        "own_span",
        "previous",
        "previous_tracer",
        "recogniser",
        "roles",
        "slo",
        "via_instance",
        "wraps",
    )

    def __init__(
        self,
        obj: Any,
        name: str,
        slo: SLO | None,
        adopted: bool,
        kids: list[Any],
        method: str = EXECUTE,
    ) -> None:
        self.obj = obj
        self.kind = kind_of(obj)
        self.slo = slo
        self.use(method)
        self.previous_tracer: Any = MISSING
        #: Tells whether a span TTA.dev opened around a child call is that child's.
        self.wraps = WRAPPER_SPANS.get(self.kind)
        self.inst = _instrument_for(self.kind, name, slo, type(obj), method)
        self.name = self.inst.name
        self.recogniser = _recogniser_for(self.kind, self.name, obj)
        self.roles = _roles_of(kids)
        # Only the node that made the LLM call records its usage: parents pass the result up,
        # and a cache that hit made no call.
        self.extracts = self.kind == "llm" or not kids
        self.is_async = _is_async(obj, method)
        self.previous: Any = MISSING
        self.active = True
        self.adopted = adopted  # by a patched class (instrument_primitives/@observed)
        self.via_instance = False
        #: Given by instrument(budget=): each call of this node is a run under it.
        self.budget: RunBudget | None = None

    def use(self, method: str) -> None:
        """Observe the node's calls through ``method``."""
        self.method = method
        #: TTA.dev opens this node's own span (``primitive.<name>``) before our hook runs.
        self.own_span = method == EXECUTE_IMPL
        #: TTA.dev's span of this call (``gen_ai.*``) is the current one when our hook runs.
        self.inner_span = method.startswith(LLM_CALL)
        #: Where the call's WorkflowContext is: ``_call(kwargs, model, provider, ctx)``,
        #: ``_call_<provider>(request, ctx)``.
        self.ctx_at = 3 if method == LLM_CALL else 1
        self.ctx_kw = "ctx" if self.inner_span else "context"

    # A copy of the instance shares this node until its first call (see tree.py);
    # the node's locks and series must never be copied or pickled.
    def __copy__(self) -> Node:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Node:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(None), ())

    def role_of(self, child: Any) -> Any:
        role = self.roles.get(id(child), MISSING)
        if role is MISSING:
            # Children may have been replaced since instrumentation.
            self.roles = _roles_of(children(self.obj))
            role = self.roles.get(id(child), MISSING)
        return role


def _roles_of(kids: list[tuple[str | None, Any]]) -> dict[int, str | None]:
    roles: dict[int, str | None] = {}
    for role, child in kids:
        roles.setdefault(id(child), role)
    return roles


_async_by_class: dict[type, bool] = {}


def _is_async(obj: Any, method: str) -> bool:
    cls = type(obj)
    if method in getattr(obj, "__dict__", ()):  # an instance attribute: not the class's
        return inspect.iscoroutinefunction(inspect.unwrap(getattr(obj, method)))
    known = _async_by_class.get(cls) if method == EXECUTE else None
    if known is None:
        known = inspect.iscoroutinefunction(inspect.unwrap(getattr(obj, method)))
        if method == EXECUTE and len(_async_by_class) < CACHE_MAX:
            _async_by_class[cls] = known
    return known


def node_of(obj: Any) -> Node | None:
    """The :class:`Node` of an instrumented primitive, or None."""
    d = getattr(obj, "__dict__", None)
    node = d.get(NODE_ATTR) if d is not None else None
    return node if node is not None and node.obj is obj and node.active else None
