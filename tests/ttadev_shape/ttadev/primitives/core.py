"""Stand-in for ``ttadev.primitives.core``: Sequential and Parallel (``InstrumentedPrimitive``
subclasses, a span around each step or branch), Conditional, Switch and Router (a span around
the child they pick). Every step is logged through structlog with the workflow and correlation
ids, as TTA.dev does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import trace

from .base import WorkflowContext, WorkflowPrimitive
from .observability import InstrumentedPrimitive, get_logger

logger = get_logger(__name__)


async def traced_child(
    tracer: Any, span_name: str, prefix: str, run: Callable[[], Awaitable[Any]]
) -> Any:
    """Run one child call inside a current span, recording its outcome the way TTA.dev does
    (``<prefix>.status``, the exception recorded with its message)."""
    with tracer.start_as_current_span(span_name) as span:
        try:
            result = await run()
        except Exception as e:
            span.set_attribute(f"{prefix}.status", "error")
            span.set_attribute(f"{prefix}.error", str(e))
            span.record_exception(e)
            raise
        span.set_attribute(f"{prefix}.status", "success")
        return result


def _ids(context: WorkflowContext) -> dict[str, Any]:
    return {"workflow_id": context.workflow_id, "correlation_id": context.correlation_id}


class SequentialPrimitive(InstrumentedPrimitive):
    def __init__(self, primitives: list[WorkflowPrimitive]) -> None:
        if not primitives:
            raise ValueError("SequentialPrimitive requires at least one primitive")
        self.primitives = primitives
        super().__init__(name="SequentialPrimitive")

    async def _execute_impl(self, input_data: Any, context: WorkflowContext) -> Any:
        logger.info("sequential_workflow_start", step_count=len(self.primitives), **_ids(context))
        result = input_data
        for i, step in enumerate(self.primitives):
            child_ctx = context.create_child_context()
            logger.info("sequential_step_start", step=i, **_ids(context))
            value = result

            def call(
                step: WorkflowPrimitive = step, value: Any = value, cc: WorkflowContext = child_ctx
            ) -> Awaitable[Any]:
                return step.execute(value, cc)

            result = await traced_child(self._tracer, f"sequential.step_{i}", "step", call)
            logger.info("sequential_step_complete", step=i, **_ids(context))
        logger.info("sequential_workflow_complete", **_ids(context))
        return result

    def __rshift__(self, other: WorkflowPrimitive) -> SequentialPrimitive:
        more = other.primitives if isinstance(other, SequentialPrimitive) else [other]
        return SequentialPrimitive(self.primitives + more)


class ParallelPrimitive(InstrumentedPrimitive):
    def __init__(self, primitives: list[WorkflowPrimitive]) -> None:
        if not primitives:
            raise ValueError("ParallelPrimitive requires at least one primitive")
        self.primitives = primitives
        super().__init__(name="ParallelPrimitive")

    async def _execute_impl(self, input_data: Any, context: WorkflowContext) -> list[Any]:
        logger.info("parallel_workflow_start", branch_count=len(self.primitives), **_ids(context))

        async def branch(i: int, p: WorkflowPrimitive, child_ctx: WorkflowContext) -> Any:
            logger.info("parallel_branch_start", branch=i, **_ids(context))
            result = await traced_child(
                self._tracer,
                f"parallel.branch_{i}",
                "branch",
                lambda: p.execute(input_data, child_ctx),
            )
            logger.info("parallel_branch_complete", branch=i, **_ids(context))
            return result

        children = [context.create_child_context() for _ in self.primitives]
        pairs = enumerate(zip(self.primitives, children, strict=True))
        results = await asyncio.gather(*(branch(i, p, cc) for i, (p, cc) in pairs))
        logger.info("parallel_workflow_complete", **_ids(context))
        return list(results)

    def __or__(self, other: WorkflowPrimitive) -> ParallelPrimitive:
        more = other.primitives if isinstance(other, ParallelPrimitive) else [other]
        return ParallelPrimitive(self.primitives + more)


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
            branch, chosen = "then", self.then_primitive
        elif self.else_primitive is not None:
            branch, chosen = "else", self.else_primitive
        else:
            logger.info("conditional_passthrough", **_ids(context))
            return input_data
        logger.info("conditional_branch_selected", branch=branch, **_ids(context))
        return await traced_child(
            trace.get_tracer(__name__),
            f"conditional.branch_{branch}",
            "branch",
            lambda: chosen.execute(input_data, context),
        )


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
            case, chosen = f"case_{key}", self.cases[key]
        elif self.default is not None:
            case, chosen = "default", self.default
        else:
            return input_data
        logger.info("switch_case_selected", case_name=case, **_ids(context))
        return await traced_child(
            trace.get_tracer(__name__),
            f"switch.{case}",
            "case",
            lambda: chosen.execute(input_data, context),
        )


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
        chosen = self.routes.get(route)
        if chosen is None and self.default:
            route = self.default
            chosen = self.routes.get(route)
        if chosen is None:
            raise ValueError(f"No route found for key '{route}'")
        logger.info("router_route_selected", route=route, **_ids(context))
        return await traced_child(
            trace.get_tracer(__name__),
            f"router.route_{route}",
            "route",
            lambda: chosen.execute(input_data, context),
        )
