"""Recovery primitives shaped like TTA.dev's (retry, fallback, timeout, saga, circuit breaker)."""

from __future__ import annotations

import asyncio
import builtins
import random
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .core import WorkflowContext, WorkflowPrimitive


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
    def __init__(self, primitive: WorkflowPrimitive, strategy: RetryStrategy | None = None) -> None:
        self.primitive = primitive
        self.strategy = strategy or RetryStrategy()

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        last_error: Exception | None = None
        for attempt in range(self.strategy.max_retries + 1):
            try:
                return await self.primitive.execute(input_data, context)
            except Exception as e:
                last_error = e
                if attempt < self.strategy.max_retries:
                    await asyncio.sleep(self.strategy.calculate_delay(attempt))
        assert last_error is not None
        raise last_error


class FallbackPrimitive(WorkflowPrimitive):
    def __init__(self, primary: WorkflowPrimitive, fallback: WorkflowPrimitive) -> None:
        self.primary = primary
        self.fallback = fallback

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        try:
            return await self.primary.execute(input_data, context)
        except Exception:
            return await self.fallback.execute(input_data, context)


class TimeoutError(Exception):  # TTA.dev shadows the builtin with its own class
    pass


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
            if self.fallback is not None:
                return await self.fallback.execute(input_data, context)
            raise TimeoutError(f"timed out after {self.timeout_seconds}s") from None


class CompensationPrimitive(WorkflowPrimitive):
    def __init__(self, forward: WorkflowPrimitive, compensation: WorkflowPrimitive) -> None:
        self.forward = forward
        self.compensation = compensation

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        try:
            return await self.forward.execute(input_data, context)
        except Exception:
            await self.compensation.execute(input_data, context)
            raise


class SagaPrimitive(CompensationPrimitive):
    pass


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreakerConfig:
    failure_threshold: int = 5
    recovery_timeout: float = 60.0
    success_threshold: int = 2


class CircuitBreakerError(Exception):
    def __init__(self, failure_count: int) -> None:
        super().__init__(f"Circuit breaker is OPEN after {failure_count} consecutive failures")


class CircuitBreakerPrimitive(WorkflowPrimitive):
    def __init__(
        self, primitive: WorkflowPrimitive, config: CircuitBreakerConfig | None = None
    ) -> None:
        self.primitive = primitive
        self.config = config or CircuitBreakerConfig()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._successes = 0
        self._opened_at = 0.0

    @property
    def state(self) -> CircuitState:
        return self._state

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        if self._state == CircuitState.OPEN:
            if time.monotonic() - self._opened_at < self.config.recovery_timeout:
                raise CircuitBreakerError(self._failures)
            self._state, self._successes = CircuitState.HALF_OPEN, 0
        try:
            result = await self.primitive.execute(input_data, context)
        except Exception:
            self._failures += 1
            if self._state == CircuitState.HALF_OPEN or (
                self._failures >= self.config.failure_threshold
            ):
                self._state, self._opened_at = CircuitState.OPEN, time.monotonic()
            raise
        if self._state == CircuitState.HALF_OPEN:
            self._successes += 1
            if self._successes >= self.config.success_threshold:
                self._state, self._failures = CircuitState.CLOSED, 0
        else:
            self._failures = 0
        return result
