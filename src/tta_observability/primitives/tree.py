"""``instrument(workflow)``: every node of a composed workflow observed, in place and reversibly.

Building the tree: each instrumented instance gets a :class:`~.node.Node` (names from
``naming.py``, series and recogniser) in its ``__dict__``, and the class that defines its
``execute`` gets one dispatching wrapper (``patching.py``); a call then runs through
``frames.py``. Primitives met for the first time inside a patched class's ``execute``
(``instrument_primitives()``, ``@observed`` on a class) are adopted here with their subtree.

Copies: a node belongs to one object. ``copy.copy`` and ``copy.deepcopy`` of an instrumented
workflow carry the original's node until their first call, when they get their own, with the
same names and SLO: copies are instrumented like their original. Pickling drops the node, so an
unpickled workflow is not instrumented.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from ..budget import RunBudget
from ..slo import SLO
from . import patching
from .frames import CURRENT
from .naming import call_site, child_name, children, is_primitive, root_name
from .node import (
    EXECUTE,
    EXECUTE_IMPL,
    LOCK,
    MISSING,
    NODE_ATTR,
    Node,
    hook_method,
    hook_method_of,
    node_of,
)
from .patching import ClassConfig, ClassState
from .ttadev_spans import unwrap_tracer, wrap_tracer

T = TypeVar("T")

logger = logging.getLogger("tta_observability")


def _patch(cls: type, method: str) -> ClassState | None:
    return patching.patch(cls, _resolve, method)


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


def _attach(
    obj: Any, name: str, slo: SLO | None, adopted: bool, kids: list[Any] | None = None
) -> Node | None:
    d = getattr(obj, "__dict__", None)
    if d is None:
        return None
    cfg = patching.config_for(type(obj))
    if cfg is not None:
        name = cfg.name or name
        slo = slo or cfg.slo
    # An execute of the instance's own is wrapped there: it bypasses any class method.
    method = EXECUTE if EXECUTE in d else hook_method_of(obj)
    node = Node(obj, name, slo, adopted, children(obj) if kids is None else kids, method)
    state = None
    if EXECUTE not in d:
        owner = patching.owner(type(obj), method)
        state = _patch(owner, method) if owner is not None else None
    if state is None:
        node.use(EXECUTE)
        patching.patch_instance(obj, node)
    elif node.own_span:
        wrap_tracer(obj, node)
    d[NODE_ATTR] = node
    patching.register(obj, state)
    return node


def _walk(root: Any, root_node: Node, adopted: bool, edges: bool) -> None:
    """Attach a node to every primitive under ``root``; ``edges``: ``root`` is a workflow's
    root, whose edges (``tta_workflow_edge_info``) are exported now."""
    workflow = root_node.inst
    if edges:
        workflow.add_root_edge()
    stack = [(children(root), root_node)]
    seen = {id(root)}
    while stack:
        kids, parent = stack.pop()
        for role, child in kids:
            if id(child) in seen:
                continue
            seen.add(id(child))
            grandchildren = children(child)
            node = node_of(child)
            if node is None:
                name = child_name(parent.name, role, child)
                node = _attach(child, name, None, adopted, grandchildren)
                if node is None:
                    _warn_no_dict(child)
                    continue
            elif not adopted:
                node.adopted = False
            if edges:
                node.inst.add_edge(workflow, parent.inst)
            stack.append((grandchildren, node))


def _attach_tree(
    obj: Any, name: str, slo: SLO | None, adopted: bool, edges: bool = False
) -> Node | None:
    node = _attach(obj, name, slo, adopted)
    if node is not None:
        _walk(obj, node, adopted, edges)
    return node


def _adopt(obj: Any) -> Node | None:
    """Name a primitive met for the first time in a patched class's ``execute``, with its tree."""
    parent = CURRENT.get()
    if parent is None:
        name = root_name(obj, site=lambda: call_site(obj, skip_own_package=True))
    else:
        role = parent.node.role_of(obj)
        name = child_name(parent.node.name, None if role is MISSING else role, obj)
    # A primitive met inside another's call is part of that one's workflow, whose edges the
    # calls add as they run; one met outside any is a workflow of its own.
    return _attach_tree(obj, name, None, adopted=True, edges=parent is None)


def _resolve(obj: Any, state: ClassState) -> Node | None:
    """The node for a call on an instance whose ``__dict__`` holds none of its own."""
    adopting = state.adopting
    if state.method == EXECUTE and hook_method(type(obj)) == EXECUTE_IMPL:
        # The pre-adoption wrapper on InstrumentedPrimitive.execute (see set_adopting): only
        # for instances whose own class adopts; decided before taking the lock, as every call
        # of every other InstrumentedPrimitive comes through here.
        impl = _impl_state(type(obj))
        adopting = impl is not None and impl.adopting
        if not adopting and NODE_ATTR not in obj.__dict__:
            return None
    with LOCK:
        d = obj.__dict__
        node: Node | None = d.get(NODE_ATTR)
        if node is not None and node.obj is obj and node.active:
            return node  # another thread attached it meanwhile
        if node is not None:
            if node.active:  # a copy of an instrumented instance: instrumented the same way
                copied = _attach_tree(obj, node.name, node.slo, node.adopted)
                if copied is not None:
                    copied.budget = node.budget
                return copied
            d.pop(NODE_ATTR, None)  # left by an instance uninstrumented since
        return _adopt(obj) if adopting else None


def _impl_state(cls: type) -> ClassState | None:
    owner = patching.owner(cls, EXECUTE_IMPL)
    return patching.state_of(owner, EXECUTE_IMPL) if owner is not None else None


def _execute_owner(cls: type) -> type | None:
    """For a TTA.dev InstrumentedPrimitive subclass: the class defining its ``execute``."""
    return patching.owner(cls, EXECUTE) if hook_method(cls) == EXECUTE_IMPL else None


def _detach(obj: Any) -> None:
    d = getattr(obj, "__dict__", None)
    node = d.pop(NODE_ATTR, None) if d is not None else None
    if node is None or d is None or node.obj is not obj:
        return  # nothing, or a copy's inherited node: dropping it is all there is to do
    node.active = False
    unwrap_tracer(obj, node)
    patching.unpatch_instance(obj, node)
    patching.unregister(obj)


def set_adopting(cls: type, auto: bool) -> bool:
    """Make every instance of ``cls`` observed (``auto``: by ``instrument_primitives()``, else
    by ``@observed``); False when it already was, or ``cls`` cannot be patched."""
    state = _patch(cls, hook_method(cls))
    if state is None:
        return False
    # TTA.dev opens an instance's primitive.<name> span in execute, before _execute_impl: adopted
    # there already, an instance's tracer is wrapped in time for its first call's span.
    owner = _execute_owner(cls)
    pre = _patch(owner, EXECUTE) if owner is not None else None
    if pre is not None and auto:
        pre.set(auto=True)
    elif pre is not None:
        pre.set(observed=True)
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
    with LOCK:
        owners = {o for o in map(_execute_owner, classes) if o is not None}
        states = [s for cls in [*classes, *owners] for s in patching.states_of(cls)]
        for state in states:
            state.set(auto=False)
        for ref, _ in list(patching.registry.values()):
            obj = ref()
            node = node_of(obj) if obj is not None else None
            if node is not None and node.adopted:
                _detach(obj)  # an @observed class adopts its instances again on their next call
        for state in states:
            patching.maybe_restore(state)


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


def instrument(
    workflow: T,
    *,
    name: str | None = None,
    slo: SLO | None = None,
    budget: RunBudget | None = None,
) -> T:
    """Observe every node of a composed workflow, in place; returns the workflow.

    ``name`` names the root (the ``workflow`` label of ``tta_workflow_executions_total``);
    by default its ``.name`` or its kind. ``slo`` applies to the root. ``budget`` gives every
    run (every call of the root) a fresh :class:`~tta_observability.RunBudget` allowance.
    Instrumenting again keeps the first names (a different ``name``/``slo`` is logged as
    ignored) and sets ``budget`` when one is given; :func:`uninstrument` undoes it. The root
    needs a ``__dict__``: a ``__slots__``-only class is a TypeError (such children are skipped,
    with one warning per class). The workflow's edges (``tta_workflow_edge_info``) are exported
    here.
    """
    if not is_primitive(workflow):
        raise TypeError(
            "instrument() needs a primitive: an object with an execute(input, context) method, "
            f"got {type(workflow).__name__}"
        )
    if slo is not None and not isinstance(slo, SLO):
        raise TypeError(f"slo must be a tta_observability.SLO, got {type(slo).__name__}")
    if budget is not None and not isinstance(budget, RunBudget):
        raise TypeError(
            f"budget must be a tta_observability.RunBudget, got {type(budget).__name__}"
        )
    if getattr(workflow, "__dict__", None) is None:
        raise TypeError(
            f"instrument() cannot observe {type(workflow).__qualname__}: it has no __dict__ "
            "(it uses __slots__), so there is nowhere to keep its instrumentation; add "
            "'__dict__' to its __slots__"
        )
    with LOCK:
        node = node_of(workflow)
        if node is None:
            site = lambda: call_site(workflow, skip_own_package=False)  # noqa: E731
            node = _attach(workflow, root_name(workflow, name, site), slo, adopted=False)
            assert node is not None  # it has a __dict__
        else:
            _warn_if_different(node, workflow, name, slo)
            node.adopted = False
        if budget is not None:
            node.budget = budget
        _walk(workflow, node, adopted=False, edges=True)
    return workflow


def uninstrument(workflow: T) -> T:
    """Undo :func:`instrument` on every node of the workflow; returns it."""
    with LOCK:
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
    with LOCK:
        patching.set_class_config(cls, ClassConfig(name, slo))
        if _patch(cls, hook_method(cls)) is None:
            raise TypeError(f"@observed cannot wrap {cls.__qualname__}.execute")
        set_adopting(cls, auto=False)
    return cls
