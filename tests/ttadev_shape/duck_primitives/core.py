"""Base class, context and control-flow primitives, shaped like TTA.dev's."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any


class WorkflowContext:
    """Duck-typed like TTA.dev's pydantic model: the same fields and child-context rule."""

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
            trace_flags=self.trace_flags,
            correlation_id=self.correlation_id,
            metadata=dict(self.metadata),
        )
        child.causation_id = self.correlation_id
        child.baggage = dict(self.baggage)
        child.tags = dict(self.tags)
        return child

    def checkpoint(self, name: str) -> None:
        self.checkpoints.append((name, time.time()))

    def elapsed_ms(self) -> float:
        return (time.time() - self.start_time) * 1000

    def to_otel_context(self) -> dict[str, Any]:
        return {"workflow.id": self.workflow_id, "workflow.correlation_id": self.correlation_id}


class WorkflowPrimitive(ABC):
    @abstractmethod
    async def execute(self, input_data: Any, context: WorkflowContext) -> Any: ...

    def __rshift__(self, other: WorkflowPrimitive) -> SequentialPrimitive:
        left = self.primitives if type(self) is SequentialPrimitive else [self]
        return SequentialPrimitive([*left, other])

    def __or__(self, other: WorkflowPrimitive) -> ParallelPrimitive:
        left = self.primitives if type(self) is ParallelPrimitive else [self]
        return ParallelPrimitive([*left, other])


class LambdaPrimitive(WorkflowPrimitive):
    def __init__(self, func: Callable[[Any, WorkflowContext], Any]) -> None:
        self.func = func

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        result = self.func(input_data, context)
        if inspect.isawaitable(result):
            result = await result
        return result


class SequentialPrimitive(WorkflowPrimitive):
    def __init__(self, primitives: list[WorkflowPrimitive]) -> None:
        if not primitives:
            raise ValueError("SequentialPrimitive requires at least one primitive")
        self.primitives = primitives

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        result = input_data
        for step in self.primitives:
            result = await step.execute(result, context.create_child_context())
        return result


class ParallelPrimitive(WorkflowPrimitive):
    def __init__(self, primitives: list[WorkflowPrimitive]) -> None:
        if not primitives:
            raise ValueError("ParallelPrimitive requires at least one primitive")
        self.primitives = primitives

    async def execute(self, input_data: Any, context: WorkflowContext) -> list[Any]:
        return list(
            await asyncio.gather(
                *(p.execute(input_data, context.create_child_context()) for p in self.primitives)
            )
        )


class ConditionalPrimitive(WorkflowPrimitive):
    def __init__(
        self,
        condition: Callable[[Any, WorkflowContext], bool],
        then_primitive: WorkflowPrimitive,
        else_primitive: WorkflowPrimitive | None = None,
    ) -> None:
        self.condition = condition
        self.then_primitive = then_primitive
        self.else_primitive = else_primitive

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        if self.condition(input_data, context):
            return await self.then_primitive.execute(input_data, context)
        if self.else_primitive is not None:
            return await self.else_primitive.execute(input_data, context)
        return input_data


class SwitchPrimitive(WorkflowPrimitive):
    def __init__(
        self,
        selector: Callable[[Any, WorkflowContext], str],
        cases: dict[str, WorkflowPrimitive],
        default: WorkflowPrimitive | None = None,
    ) -> None:
        self.selector = selector
        self.cases = cases
        self.default = default

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        key = self.selector(input_data, context)
        if key in self.cases:
            return await self.cases[key].execute(input_data, context)
        if self.default is not None:
            return await self.default.execute(input_data, context)
        return input_data


class RouterPrimitive(WorkflowPrimitive):
    def __init__(
        self,
        routes: dict[str, WorkflowPrimitive],
        router_fn: Callable[[Any, WorkflowContext], str],
        default: str | None = None,
    ) -> None:
        self.routes = routes
        self.router_fn = router_fn
        self.default = default

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        route = self.router_fn(input_data, context)
        if route not in self.routes:
            if self.default is None:
                raise ValueError(f"Route {route!r} not found and no default route")
            route = self.default
        return await self.routes[route].execute(input_data, context)
