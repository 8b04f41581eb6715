"""Helpers shared by the primitives tests (test-only; on sys.path with the ttadev stand-in)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from tta_observability import contract as c


def status(span: ReadableSpan) -> str:
    return str((span.attributes or {}).get(c.ATTR_STATUS, "?"))


def edges(spans: Iterable[ReadableSpan]) -> Counter[tuple[str, str | None, str]]:
    """(span name, parent span name, tta.status) for each span; parents must be in ``spans``."""
    spans = list(spans)
    by_id = {s.context.span_id: s for s in spans}
    out: Counter[tuple[str, str | None, str]] = Counter()
    for s in spans:
        parent = None
        if s.parent is not None:
            p = by_id.get(s.parent.span_id)
            assert p is not None, f"{s.name}: parent span not exported"
            assert p.context.trace_id == s.context.trace_id
            parent = p.name
        out[(s.name, parent, status(s))] += 1
    return out


def run(coro: Any) -> Any:
    return asyncio.run(coro)
