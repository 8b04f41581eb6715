"""Stand-in for ``ttadev.primitives.recovery``: Retry (a span per attempt), Fallback and Saga
(a span around each child they run), Timeout (``asyncio.wait_for``, its own TimeoutError), and
the circuit breaker with its config dataclass and states."""

from __future__ import annotations

import asyncio
import builtins
import random
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from opentelemetry import trace

from .base import WorkflowContext, WorkflowPrimitive
from .core import traced_child
from .observability import get_logger

logger = get_logger(__name__)


@dataclass
class RetryStrategy:
    max_retries: int = 3
    backoff_base: float = 2.0
    max_backoff: float = 60.0
    jitter: bool = True

    def calculate_delay(self, attempt: int) -> float:
        delay = min(self.backoff_base**attempt, self.max_backoff)
        return delay * (0.5 + random.random()) if self.jitter else delay


class RetryPrimitive(WorkflowPrimitive):
    """Calls ``.primitive`` up to ``max_retries + 1`` times, each inside ``retry.attempt_N``."""

    def __init__(self, primitive: WorkflowPrimitive, strategy: RetryStrategy | None = None) -> None:
        self.primitive = primitive
        self.strategy = strategy or RetryStrategy()

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        tracer = trace.get_tracer(__name__)
        last: Exception | None = None
        for attempt in range(self.strategy.max_retries + 1):
            try:
                return await traced_child(
                    tracer,
                    f"retry.attempt_{attempt}",
                    "retry",
                    lambda: self.primitive.execute(input_data, context),
                )
            except Exception as e:
                last = e
                if attempt < self.strategy.max_retries:
                    logger.warning("retry_attempt_failed", attempt=attempt + 1)
                    await asyncio.sleep(self.strategy.calculate_delay(attempt))
        assert last is not None
        raise last


class FallbackPrimitive(WorkflowPrimitive):
    def __init__(self, primary: WorkflowPrimitive, fallback: WorkflowPrimitive) -> None:
        self.primary = primary
        self.fallback = fallback

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        tracer = trace.get_tracer(__name__)
        try:
            return await traced_child(
                tracer,
                "fallback.primary",
                "fallback",
                lambda: self.primary.execute(input_data, context),
            )
        except Exception as primary_error:
            logger.warning("fallback_triggered", workflow_id=context.workflow_id)
            try:
                return await traced_child(
                    tracer,
                    "fallback.fallback",
                    "fallback",
                    lambda: self.fallback.execute(input_data, context),
                )
            except Exception:
                raise primary_error from None


class TimeoutError(Exception):
    """Timeout exceeded during execution."""


class TimeoutPrimitive(WorkflowPrimitive):
    def __init__(
        self,
        primitive: WorkflowPrimitive,
        timeout_seconds: float,
        fallback: WorkflowPrimitive | None = None,
        track_timeouts: bool = True,
    ) -> None:
        self.primitive = primitive
        self.timeout_seconds = timeout_seconds
        self.fallback = fallback
        self.track_timeouts = track_timeouts

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        try:
            return await asyncio.wait_for(
                self.primitive.execute(input_data, context), timeout=self.timeout_seconds
            )
        except builtins.TimeoutError:
            if self.track_timeouts:
                context.state["timeout_count"] = context.state.get("timeout_count", 0) + 1
            if self.fallback is not None:
                return await self.fallback.execute(input_data, context)
            raise TimeoutError(f"Execution exceeded {self.timeout_seconds}s timeout") from None


class SagaPrimitive(WorkflowPrimitive):
    """Runs ``.forward``; when it fails, runs ``.compensation`` (whose own failure is logged and
    swallowed) and raises the forward error."""

    def __init__(self, forward: WorkflowPrimitive, compensation: WorkflowPrimitive) -> None:
        self.forward = forward
        self.compensation = compensation

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        tracer = trace.get_tracer(__name__)
        try:
            return await traced_child(
                tracer, "saga.forward", "saga", lambda: self.forward.execute(input_data, context)
            )
        except Exception as forward_error:
            try:
                await traced_child(
                    tracer,
                    "saga.compensation",
                    "saga",
                    lambda: self.compensation.execute(input_data, context),
                )
            except Exception as compensation_error:
                logger.error("saga_compensation_failed", error=type(compensation_error).__name__)
            raise forward_error from None


class CompensationPrimitive(SagaPrimitive):
    """The older name of SagaPrimitive."""


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreakerConfig:
    failure_threshold: int = 5
    recovery_timeout: float = 60.0
    success_threshold: int = 2
    expected_exception: type[Exception] = Exception

    def __post_init__(self) -> None:
        if self.failure_threshold <= 0 or self.recovery_timeout <= 0 or self.success_threshold <= 0:
            raise ValueError("circuit breaker thresholds and timeout must be positive")


class CircuitBreakerError(Exception):
    def __init__(self, failure_count: int, last_error: Exception | None = None) -> None:
        super().__init__(f"Circuit breaker open after {failure_count} failures")
        self.failure_count = failure_count
        self.last_error = last_error


class CircuitBreakerPrimitive(WorkflowPrimitive):
    """CLOSED -> OPEN after ``failure_threshold`` consecutive failures; OPEN -> HALF_OPEN after
    ``recovery_timeout`` seconds; HALF_OPEN -> CLOSED after ``success_threshold`` successes, or
    back to OPEN on a failure."""

    def __init__(
        self, primitive: WorkflowPrimitive, config: CircuitBreakerConfig | None = None
    ) -> None:
        self.primitive = primitive
        self.config = config or CircuitBreakerConfig()
        self._state = CircuitState.CLOSED
        self._failure_count = 0
        self._success_count = 0
        self._opened_at = 0.0
        self._last_error: Exception | None = None
        self._lock = asyncio.Lock()

    @property
    def state(self) -> CircuitState:
        return self._state

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        async with self._lock:
            if self._state == CircuitState.OPEN:
                if time.monotonic() - self._opened_at >= self.config.recovery_timeout:
                    self._state = CircuitState.HALF_OPEN
                    self._success_count = 0
                else:
                    raise CircuitBreakerError(self._failure_count, self._last_error)
        try:
            result = await self.primitive.execute(input_data, context)
        except self.config.expected_exception as e:
            async with self._lock:
                self._last_error = e
                self._failure_count += 1
                if (
                    self._state == CircuitState.HALF_OPEN
                    or self._failure_count >= self.config.failure_threshold
                ):
                    self._state = CircuitState.OPEN
                    self._opened_at = time.monotonic()
            raise
        async with self._lock:
            if self._state == CircuitState.HALF_OPEN:
                self._success_count += 1
                if self._success_count >= self.config.success_threshold:
                    self._state = CircuitState.CLOSED
                    self._failure_count = 0
            else:
                self._failure_count = 0
        return result
