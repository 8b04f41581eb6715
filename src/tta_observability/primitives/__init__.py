"""Instrumentation for TTA.dev workflow primitives (or anything with ``async execute(input,
context)``): whole workflows with :func:`instrument`, every primitive class of an installed
TTA.dev with :func:`instrument_primitives`, and helpers for custom recovery primitives."""

from .auto import instrument_primitives, uninstrument_primitives
from .naming import kind_of
from .node import node_of
from .recorders import (
    record_cache,
    record_circuit_breaker_state,
    record_fallback,
    record_retry_attempt,
    record_route,
    record_timeout,
)
from .tree import instrument, observe_class, uninstrument

__all__ = [
    "instrument",
    "instrument_primitives",
    "kind_of",
    "node_of",
    "observe_class",
    "record_cache",
    "record_circuit_breaker_state",
    "record_fallback",
    "record_retry_attempt",
    "record_route",
    "record_timeout",
    "uninstrument",
    "uninstrument_primitives",
]
