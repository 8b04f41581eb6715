"""What a primitive is (``primitive_type``), what it is called (``primitive_name``), and where
its children are.

Names are resolved when a workflow is instrumented, never per call. A primitive's own ``.name``
wins; otherwise its name is its path from the workflow's root, for example
``agent/2:retry/llm`` (the ``llm`` inside the ``retry`` that is step 2 of ``agent``), which is
the same on every run and unique within the workflow. Names longer than the label limit end in a
hash of the full path, so they stay unique and bounded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
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


def kind_of(obj: Any) -> str:
    """``primitive_type``: the snake-case kind, from the class name, else from the shape."""
    cls = type(obj)
    cached = _kind_cache.get(cls)
    if cached is not None:
        return cached
    name = cls.__name__
    if name.endswith("Primitive") and name != "Primitive":
        name = name[: -len("Primitive")]
    kind = snake(name)
    kind = _ALIASES.get(kind, kind)
    if kind.endswith("_llm") or kind.startswith("llm_"):
        kind = "llm"
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
    name = getattr(obj, "name", None)
    return name if isinstance(name, str) and name.strip() else None


def child_name(parent: str, role: str | None, child: Any) -> str:
    named = own_name(child)
    if named is not None:
        return bound(named)
    kind = kind_of(child)
    return bound(f"{parent}/{kind}" if role is None else f"{parent}/{role}:{kind}")


def root_name(obj: Any, name: str | None = None) -> str:
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"workflow name must be a non-empty string, got {name!r}")
        return bound(name)
    return bound(own_name(obj) or kind_of(obj))
