"""The :class:`Node`: everything one instrumented primitive records, resolved once when it is
instrumented (names, metric series, span attributes, its recogniser, its children's roles).

A node lives in its instance's ``__dict__`` under :data:`NODE_ATTR` and belongs to that instance
only; see ``tree.py`` for how nodes are attached and ``frames.py`` for what a call does with one.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any, Final

from .. import contract as c
from .._call import Instrument
from ..slo import SLO
from .naming import children, kind_of
from .recorders import RECOGNISERS, Recogniser

#: Key of the :class:`Node` in an instrumented instance's ``__dict__``.
NODE_ATTR: Final = "_tta_observability_node"

#: Stands for "absent" where None is a meaningful value (a role, a previous attribute).
MISSING: Final[Any] = object()
#: Guards every change to nodes and patched classes.
LOCK = threading.RLock()
CACHE_MAX: Final = 4096

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
        self.previous: Any = MISSING
        self.active = True
        self.adopted = adopted  # by a patched class (instrument_primitives/@observed)
        self.via_instance = False

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


def _is_async(obj: Any) -> bool:
    cls = type(obj)
    if "execute" in getattr(obj, "__dict__", ()):  # an instance attribute: not the class's
        return inspect.iscoroutinefunction(inspect.unwrap(obj.execute))
    known = _async_by_class.get(cls)
    if known is None:
        known = inspect.iscoroutinefunction(inspect.unwrap(obj.execute))
        if len(_async_by_class) < CACHE_MAX:
            _async_by_class[cls] = known
    return known


def node_of(obj: Any) -> Node | None:
    """The :class:`Node` of an instrumented primitive, or None."""
    d = getattr(obj, "__dict__", None)
    node = d.get(NODE_ATTR) if d is not None else None
    return node if node is not None and node.obj is obj and node.active else None
