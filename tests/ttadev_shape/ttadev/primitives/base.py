"""Stand-in for ``ttadev.primitives.core.base``: the context, the base class and LambdaPrimitive."""

from __future__ import annotations

import copy
import inspect
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any


class WorkflowContext:
    """Duck-typed like TTA.dev's pydantic model: its fields and its child-context rule (the
    child inherits the trace and correlation ids; the parent's span id becomes its parent)."""

    def __init__(
        self,
        workflow_id: str | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        parent_span_id: str | None = None,
        trace_flags: int = 1,
        correlation_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self.session_id = session_id
        self.agent_id = agent_id
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.trace_flags = trace_flags
        self.correlation_id = correlation_id or str(uuid.uuid4())
        self.causation_id: str | None = None
        self.metadata = metadata or {}
        self.state: dict[str, Any] = {}
        self.baggage: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.start_time = time.time()
        self.checkpoints: list[tuple[str, float]] = []

    def create_child_context(self) -> WorkflowContext:
        child = WorkflowContext(
            workflow_id=self.workflow_id,
            session_id=self.session_id,
            agent_id=self.agent_id,
            trace_id=self.trace_id,
            parent_span_id=self.span_id,
            correlation_id=self.correlation_id,
            metadata=copy.deepcopy(self.metadata),
        )
        child.causation_id = self.correlation_id
        child.state = copy.deepcopy(self.state)
        child.baggage = dict(self.baggage)
        child.tags = dict(self.tags)
        return child

    def checkpoint(self, name: str) -> None:
        self.checkpoints.append((name, time.time()))

    def elapsed_ms(self) -> float:
        return (time.time() - self.start_time) * 1000

    def to_otel_context(self) -> dict[str, Any]:
        return {
            "workflow.id": self.workflow_id or "unknown",
            "workflow.correlation_id": self.correlation_id,
            "workflow.span_id": self.span_id or "unknown",
        }


class WorkflowPrimitive(ABC):
    @abstractmethod
    async def execute(self, input_data: Any, context: WorkflowContext) -> Any: ...

    def __rshift__(self, other: WorkflowPrimitive) -> WorkflowPrimitive:
        from .core import SequentialPrimitive

        return SequentialPrimitive([self, other])

    def __or__(self, other: WorkflowPrimitive) -> WorkflowPrimitive:
        from .core import ParallelPrimitive

        return ParallelPrimitive([self, other])


class LambdaPrimitive(WorkflowPrimitive):
    def __init__(self, func: Callable[[Any, WorkflowContext], Any]) -> None:
        self.func = func
        self.is_async = inspect.iscoroutinefunction(func)

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        if self.is_async:
            return await self.func(input_data, context)
        return self.func(input_data, context)
