"""CachePrimitive shaped like TTA.dev's."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .core import WorkflowContext, WorkflowPrimitive


class CachePrimitive(WorkflowPrimitive):
    def __init__(
        self,
        primitive: WorkflowPrimitive,
        cache_key_fn: Callable[[Any, WorkflowContext], str],
        ttl_seconds: float = 3600.0,
        backend: Any = None,
    ) -> None:
        self.primitive = primitive
        self.cache_key_fn = cache_key_fn
        self.ttl_seconds = ttl_seconds
        self.backend = backend
        self._cache: dict[str, tuple[Any, float]] = {}
        self._hits = 0
        self._misses = 0

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        key = self.cache_key_fn(input_data, context)
        entry = self._cache.get(key)
        if entry is not None and time.monotonic() - entry[1] < self.ttl_seconds:
            self._hits += 1
            return entry[0]
        self._misses += 1
        result = await self.primitive.execute(input_data, context)
        self._cache[key] = (result, time.monotonic())
        return result

    def get_stats(self) -> dict[str, Any]:
        total = self._hits + self._misses
        return {
            "hits": self._hits,
            "misses": self._misses,
            "size": len(self._cache),
            "hit_rate": self._hits / total if total else 0.0,
        }
