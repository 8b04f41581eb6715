"""Stand-in for ``ttadev.primitives.testing``: MockPrimitive (named, no spans)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .base import WorkflowContext, WorkflowPrimitive


class MockPrimitive(WorkflowPrimitive):
    def __init__(
        self,
        name: str,
        return_value: Any = None,
        side_effect: Callable[..., Any] | None = None,
        raise_error: Exception | None = None,
    ) -> None:
        self.name = name
        self.return_value = return_value
        self.side_effect = side_effect
        self.raise_error = raise_error
        self.call_count = 0

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        self.call_count += 1
        if self.raise_error:
            raise self.raise_error
        if self.side_effect is not None:
            result = self.side_effect(input_data, context)
            return await result if inspect.isawaitable(result) else result
        return self.return_value
