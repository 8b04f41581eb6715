"""What a primitive is (``primitive_type``), what it is called (``primitive_name``), and where
its children are.

Names are resolved when a workflow is instrumented, never per call. A primitive's own ``.name``
wins, unless it is just its class name (TTA.dev's ``InstrumentedPrimitive`` default); otherwise
its name is its path from the workflow's root, for example ``agent/2:retry/llm`` (the ``llm``
inside the ``retry`` that is step 2 of ``agent``), which is the same on every run and unique
within the workflow. A root with no name of its own is named after its kind and the place in the
code where it was instrumented (or first run, when adopted by ``instrument_primitives()``), for
example ``sequential@myapp.agent:42``. Names longer than the label limit end in a hash of the
full path, so they stay unique and bounded.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any, Final

from .. import contract as c

KINDS: Final = frozenset(
    {
        "sequential",
        "parallel",
        "retry",
        "fallback",
        "timeout",
        "cache",
        "circuit_breaker",
        "router",
        "conditional",
        "switch",
        "saga",
        "lambda",
        "llm",
        "mock",
    }
)

# Class-derived kinds that are another kind under a different class name.
_ALIASES: Final = {
    "compensation": "saga",
    "open_ai": "llm",
    "anthropic": "llm",
    "groq": "llm",
    "ollama": "llm",
    "open_router": "llm",
    "google_ai_studio": "llm",
    "together_ai": "llm",
    "hugging_face": "llm",
}

#: Single-child attributes, with the role their child plays.
CHILD_ATTRS: Final = (
    ("primitive", None),
    ("primary", "primary"),
    ("fallback", "fallback"),
    ("forward", "forward"),
    ("compensation", "compensation"),
    ("then_primitive", "then"),
    ("else_primitive", "else"),
    ("default", "default"),
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_kind_cache: dict[type, str] = {}


def snake(name: str) -> str:
    """``CircuitBreaker`` -> ``circuit_breaker``, ``LiteLLM`` -> ``lite_llm``."""
    return _CAMEL.sub("_", name).lower()


def is_primitive(obj: Any) -> bool:
    return obj is not None and not isinstance(obj, type) and callable(getattr(obj, "execute", None))


def _by_shape(obj: Any) -> str | None:
    def has(*names: str) -> bool:
        return all(getattr(obj, n, None) is not None for n in names)

    if has("primary", "fallback"):
        return "fallback"
    if has("forward", "compensation"):
        return "saga"
    if isinstance(getattr(obj, "routes", None), Mapping) and has("router_fn"):
        return "router"
    if isinstance(getattr(obj, "cases", None), Mapping):
        return "switch"
    if has("then_primitive"):
        return "conditional"
    if has("primitive"):
        if has("strategy"):
            return "retry"
        if has("timeout_seconds"):
            return "timeout"
        if has("cache_key_fn") or callable(getattr(obj, "get_stats", None)):
            return "cache"
        if has("state", "config"):
            return "circuit_breaker"
    return None


def kind_by_name(cls: type) -> str:
    """The snake-case kind a class's name gives (``LiteLLMPrimitive`` -> ``llm``), which may
    not be one of :data:`KINDS`."""
    name = cls.__name__
    if name.endswith("Primitive") and name != "Primitive":
        name = name[: -len("Primitive")]
    kind = snake(name)
    kind = _ALIASES.get(kind, kind)
    if kind.endswith("_llm") or kind.startswith("llm_"):
        kind = "llm"
    return kind


def kind_of(obj: Any) -> str:
    """``primitive_type``: the snake-case kind, from the class name, else from the shape."""
    cls = type(obj)
    cached = _kind_cache.get(cls)
    if cached is not None:
        return cached
    kind = kind_by_name(cls)
    if kind not in KINDS:
        kind = _by_shape(obj) or kind
    kind = kind[: c.MAX_LABEL_VALUE_LENGTH] or "primitive"
    if len(_kind_cache) < 4096:
        _kind_cache[cls] = kind
    return kind


def children(obj: Any) -> list[tuple[str | None, Any]]:
    """(role, child) for each child primitive, in a stable order.

    Roles: the index in ``.primitives``, the route or case key, or the attribute's role
    (``primary``, ``fallback``, ``then``, ...); None for the one wrapped ``.primitive``.
    """
    out: list[tuple[str | None, Any]] = []
    steps = getattr(obj, "primitives", None)
    if isinstance(steps, list | tuple):
        out.extend((str(i), p) for i, p in enumerate(steps) if is_primitive(p))
    for attr, role in CHILD_ATTRS:
        child = getattr(obj, attr, None)
        if is_primitive(child):
            out.append((role, child))
    for attr in ("routes", "cases"):
        table = getattr(obj, attr, None)
        if isinstance(table, Mapping):
            out.extend((str(k), p) for k, p in table.items() if is_primitive(p))
    return out


def bound(name: str) -> str:
    """Keep a name within the label length limit, unique via a hash of the full name."""
    if len(name) <= c.MAX_LABEL_VALUE_LENGTH:
        return name
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:12]
    return f"{name[: c.MAX_LABEL_VALUE_LENGTH - 13]}~{digest}"


def own_name(obj: Any) -> str | None:
    """The name given to this primitive, if any: a ``.name`` that is just its class name is the
    default TTA.dev's ``InstrumentedPrimitive`` sets, which would merge every instance of the
    class into one series, so it does not count."""
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name.strip() or name == type(obj).__name__:
        return None
    return name


def child_name(parent: str, role: str | None, child: Any) -> str:
    named = own_name(child)
    if named is not None:
        return bound(named)
    kind = kind_of(child)
    return bound(f"{parent}/{kind}" if role is None else f"{parent}/{role}:{kind}")


# Frames of these packages are never "where the workflow was instrumented or run".
# (asyncio: a workflow run by asyncio.run() was run where asyncio.run() was called.)
_OWN_PACKAGES: Final = ("tta_observability", "wrapt", "asyncio")


def call_site(obj: Any, skip_own_package: bool) -> str:
    """``module:line`` of the innermost frame outside this library and wrapt, and with
    ``skip_own_package`` outside the package that defines ``obj``'s class too (on a first run,
    a TTA.dev base class calling into its subclass is not where the workflow was run)."""
    top = (type(obj).__module__ or "").partition(".")[0] if skip_own_package else ""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__") or "?"
        head = module.partition(".")[0]
        if head not in _OWN_PACKAGES and head != top:
            return f"{module}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


def root_name(obj: Any, name: str | None = None, site: Callable[[], str] | None = None) -> str:
    """The root's name: ``name``, else its own ``.name``, else ``kind@site()`` (or its kind
    alone without ``site``)."""
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"workflow name must be a non-empty string, got {name!r}")
        return bound(name)
    named = own_name(obj)
    if named is not None:
        return bound(named)
    kind = kind_of(obj)
    return bound(f"{kind}@{site()}" if site is not None else kind)


def _wrapper_span_matcher(kind: str) -> Callable[[str | None, str], bool] | None:
    """For a kind whose TTA.dev implementation opens a span around each child call
    (``sequential.step_2``, ``parallel.branch_0``, ``retry.attempt_1``, ...): a test of a span
    name against a child's role. None for kinds that open none."""
    fixed = {
        "sequential": "sequential.step_",
        "parallel": "parallel.branch_",
        "conditional": "conditional.branch_",
        "router": "router.route_",
        "fallback": "fallback.",
        "saga": "saga.",
    }
    if kind in fixed:
        prefix = fixed[kind]
        return lambda role, name: role is not None and name == prefix + role
    if kind == "switch":
        return lambda role, name: (
            name == ("switch.default" if role == "default" else f"switch.case_{role}")
        )
    if kind == "retry":
        return lambda role, name: role is None and name.startswith("retry.attempt_")
    return None


WRAPPER_SPANS: Final = {k: m for k in KINDS if (m := _wrapper_span_matcher(k)) is not None}
