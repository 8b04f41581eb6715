"""Stand-in for ``ttadev.primitives.performance``: CachePrimitive (no spans of its own)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .base import WorkflowContext, WorkflowPrimitive


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
        self._stats = {"hits": 0, "misses": 0}

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        key = self.cache_key_fn(input_data, context)
        hit = self._cache.get(key)
        if hit is not None and time.time() - hit[1] < self.ttl_seconds:
            self._stats["hits"] += 1
            return hit[0]
        self._stats["misses"] += 1
        result = await self.primitive.execute(input_data, context)
        self._cache[key] = (result, time.time())
        return result

    def get_stats(self) -> dict[str, Any]:
        return {**self._stats, "size": len(self._cache)}
