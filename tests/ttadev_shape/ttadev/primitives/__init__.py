"""Test-only stand-in for ``ttadev.primitives``: the public names and shapes of TTA.dev."""

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
