"""Test-only stand-in for ``ttadev.primitives``: TTA.dev's public names and behaviour (its own
spans and structlog logging included), written from its repository, not copied. Unlike the real
package it does not install a TracerProvider when imported."""

from .base import LambdaPrimitive, WorkflowContext, WorkflowPrimitive
from .core import (
    ConditionalPrimitive,
    ParallelPrimitive,
    RouterPrimitive,
    SequentialPrimitive,
    SwitchPrimitive,
)
from .llm import LiteLLMPrimitive, LLMProvider, LLMResponse, UniversalLLMPrimitive
from .observability import InstrumentedPrimitive
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
    "InstrumentedPrimitive",
    "LLMProvider",
    "LLMResponse",
    "LambdaPrimitive",
    "LiteLLMPrimitive",
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
    "UniversalLLMPrimitive",
    "WorkflowContext",
    "WorkflowPrimitive",
]
