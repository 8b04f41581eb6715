"""Primitives with only the public shape of TTA.dev's (constructors, attributes, behaviour of
``execute``): no spans, no logs, no class-name default names. What a user's own duck-typed
primitives look like; the TTA.dev stand-in is the ``ttadev`` package next to this one."""

from .core import (
    ConditionalPrimitive,
    LambdaPrimitive,
    ParallelPrimitive,
    RouterPrimitive,
    SequentialPrimitive,
    SwitchPrimitive,
    WorkflowContext,
    WorkflowPrimitive,
)
from .performance import CachePrimitive
from .recovery import (
    CircuitBreakerConfig,
    CircuitBreakerError,
    CircuitBreakerPrimitive,
    CircuitState,
    CompensationPrimitive,
    FallbackPrimitive,
    RetryPrimitive,
    RetryStrategy,
    SagaPrimitive,
    TimeoutError,
    TimeoutPrimitive,
)
from .testing import MockPrimitive

__all__ = [
    "CachePrimitive",
    "CircuitBreakerConfig",
    "CircuitBreakerError",
    "CircuitBreakerPrimitive",
    "CircuitState",
    "CompensationPrimitive",
    "ConditionalPrimitive",
    "FallbackPrimitive",
    "LambdaPrimitive",
    "MockPrimitive",
    "ParallelPrimitive",
    "RetryPrimitive",
    "RetryStrategy",
    "RouterPrimitive",
    "SagaPrimitive",
    "SequentialPrimitive",
    "SwitchPrimitive",
    "TimeoutError",
    "TimeoutPrimitive",
    "WorkflowContext",
    "WorkflowPrimitive",
]
