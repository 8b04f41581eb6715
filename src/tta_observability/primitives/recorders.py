"""Recovery and routing metrics: public helpers for custom primitives, and the recognisers that
record them for TTA.dev's own primitives.

A recogniser sees its primitive's calls and its children's calls (each child call is its own
span): a retry counts each call of its ``.primitive`` as an attempt, a fallback counts a call of
its ``.fallback`` as an activation, a cache that called its ``.primitive`` missed, and so on.
This is exact per call, including under concurrency, and needs nothing from the primitive but
its shape. Label values are resolved when the workflow is instrumented.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Final

from opentelemetry import trace

from .. import contract as c
from .._call import classify
from .._spend import Spend
from ..metrics import STORE, LabeledCounter

# Span attributes the recognisers add (beyond the contract's).
ATTR_RETRY_ATTEMPT: Final = "tta.retry.attempt"
ATTR_RETRY_ATTEMPTS: Final = "tta.retry.attempts"
ATTR_FALLBACK_ACTIVATED: Final = "tta.fallback.activated"
ATTR_COMPENSATED: Final = "tta.saga.compensated"
ATTR_TIMED_OUT: Final = "tta.timeout.timed_out"
ATTR_CACHE_RESULT: Final = "tta.cache.result"
ATTR_ROUTE: Final = "tta.route"
ATTR_CIRCUIT_STATE: Final = "tta.circuit_breaker.state"

CLOSED: Final = "closed"
HALF_OPEN: Final = "half_open"
OPEN: Final = "open"
STATE_VALUES: Final = {CLOSED: 0.0, HALF_OPEN: 1.0, OPEN: 2.0}

_TIMEOUT_STATUS: Final = c.STATUSES.index(c.STATUS_TIMEOUT)


class Series:
    """One pre-resolved series of a labelled counter: admission done once, a bump is one lock."""

    __slots__ = ("counter", "key")

    def __init__(self, metric: c.Metric, *values: object) -> None:
        self.counter: LabeledCounter = STORE.counter(metric)
        self.key = self.counter.key(values)

    def inc(self, amount: float = 1.0) -> None:
        counter = self.counter
        with counter.lock:
            counter.values[self.key] = counter.values.get(self.key, 0.0) + amount

    def set(self, value: float) -> None:
        with self.counter.lock:
            self.counter.values[self.key] = value


def _name(primitive_name: object) -> str:
    if not isinstance(primitive_name, str) or not primitive_name.strip():
        raise ValueError(f"primitive_name must be a non-empty string, got {primitive_name!r}")
    return primitive_name


# Public helpers, for primitives the recognisers do not know.


def record_retry_attempt(primitive_name: str, success: bool) -> None:
    """Count one attempt of a retry: ``tta_retry_attempts_total{primitive_name, outcome}``."""
    if not isinstance(success, bool):
        raise ValueError(f"success must be True or False, got {success!r}")
    outcome = c.STATUS_SUCCESS if success else c.STATUS_ERROR
    STORE.counter(c.RETRY_ATTEMPTS).inc((_name(primitive_name), outcome))


def record_fallback(primitive_name: str) -> None:
    """Count one run of a fallback branch: ``tta_fallback_activations_total``."""
    STORE.counter(c.FALLBACK_ACTIVATIONS).inc((_name(primitive_name),))


def record_timeout(primitive_name: str) -> None:
    """Count one call cut off by a timeout: ``tta_timeouts_total``."""
    STORE.counter(c.TIMEOUTS).inc((_name(primitive_name),))


def record_cache(primitive_name: str, hit: bool) -> None:
    """Count one cache lookup: ``tta_cache_requests_total{result="hit"|"miss"}``."""
    if not isinstance(hit, bool):
        raise ValueError(f"hit must be True or False, got {hit!r}")
    STORE.counter(c.CACHE_REQUESTS).inc((_name(primitive_name), "hit" if hit else "miss"))


def record_route(primitive_name: str, route: str) -> None:
    """Count one routing decision: ``tta_router_decisions_total{route}``."""
    if not isinstance(route, str) or not route:
        raise ValueError(f"route must be a non-empty string, got {route!r}")
    STORE.counter(c.ROUTER_DECISIONS).inc((_name(primitive_name), route))


def normalise_state(state: Any) -> str | None:
    """``closed``/``half_open``/``open`` from an enum, a string (any case, ``-`` or ``_``) or
    0/1/2; None when unrecognised."""
    if isinstance(state, int | float) and not isinstance(state, bool):
        return {0: CLOSED, 1: HALF_OPEN, 2: OPEN}.get(int(state))
    value = getattr(state, "value", state)
    if not isinstance(value, str):
        value = getattr(state, "name", None)
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace("-", "_").replace(" ", "_")
    if text == "halfopen":
        text = HALF_OPEN
    return text if text in STATE_VALUES else None


class BreakerTracker:
    """Last known state of one breaker; a change is a transition, counted once across threads."""

    __slots__ = ("gauge", "last", "lock", "name", "transitions")

    def __init__(self, name: str) -> None:
        self.name = name
        self.gauge = Series(c.CIRCUIT_BREAKER_STATE, name)
        self.last: str | None = None
        self.lock = threading.Lock()
        self.transitions: dict[tuple[str, str], Series] = {}

    def observe(self, state: str) -> None:
        if state == self.last:
            return
        with self.lock:
            previous = self.last
            if previous == state:
                return
            self.last = state
            self.gauge.set(STATE_VALUES[state])
            if previous is None:
                return
            key = (previous, state)
            series = self.transitions.get(key)
            if series is None:
                series = self.transitions[key] = Series(
                    c.CIRCUIT_BREAKER_TRANSITIONS, self.name, previous, state
                )
        series.inc()


_trackers: dict[str, BreakerTracker] = {}
_trackers_lock = threading.Lock()


def breaker_tracker(primitive_name: str) -> BreakerTracker:
    with _trackers_lock:
        tracker = _trackers.get(primitive_name)
        if tracker is None:
            tracker = _trackers[primitive_name] = BreakerTracker(primitive_name)
        return tracker


def record_circuit_breaker_state(primitive_name: str, state: Any) -> None:
    """Set ``tta_circuit_breaker_state`` (0 closed, 1 half-open, 2 open); a change from the last
    recorded state counts ``tta_circuit_breaker_transitions_total{from_state, to_state}``."""
    normal = normalise_state(state)
    if normal is None:
        raise ValueError(
            f"circuit breaker state must be closed, half_open or open (or 0/1/2), got {state!r}"
        )
    breaker_tracker(_name(primitive_name)).observe(normal)


# Recognisers. ``Call`` is the per-call state an instrumented call keeps; see frames.py.


class Call:
    """One instrumented call in progress: the node, its span, the span that was current when it
    started (``base``), scratch state for recognisers, and the LLM spend it holds (None until an
    LLM call is reported in it; see ``_spend``)."""

    __slots__ = ("base", "child_exc", "flag", "n", "node", "span", "spend")

    def __init__(self, node: Any, span: trace.Span, base: trace.Span) -> None:
        self.node = node
        self.span = span
        self.base = base
        self.n = 0
        self.flag = False
        self.child_exc: BaseException | None = None
        self.spend: Spend | None = None


class Recogniser:
    """Hooks on a primitive's calls and its children's calls; all no-ops by default."""

    __slots__ = ()

    def __init__(self, name: str, obj: Any) -> None:
        pass

    def start(self, call: Call) -> None:
        pass

    def child_start(self, call: Call, role: str | None, child_span: trace.Span) -> None:
        pass

    def child_end(self, call: Call, role: str | None, exc: BaseException | None) -> None:
        pass

    def finish(self, call: Call, exc: BaseException | None) -> None:
        pass

    def pends(self, role: str | None) -> bool:
        """Whether the LLM spend of a failed child in ``role`` waits for this primitive's
        verdict (wasted or kept) rather than passing straight to it."""
        return False


def _waste_pending(call: Call, reason: str) -> None:
    if call.spend is not None:
        call.spend.waste_pending(reason)


def _keep_pending(call: Call) -> None:
    if call.spend is not None:
        call.spend.keep_pending()


class Retry(Recogniser):
    __slots__ = ("error", "success")

    def __init__(self, name: str, obj: Any) -> None:
        self.success = Series(c.RETRY_ATTEMPTS, name, c.STATUS_SUCCESS)
        self.error = Series(c.RETRY_ATTEMPTS, name, c.STATUS_ERROR)

    def child_start(self, call: Call, role: str | None, child_span: trace.Span) -> None:
        call.n += 1
        _waste_pending(call, c.WASTE_RETRIED)  # the failed attempt's result is discarded
        if child_span.is_recording():
            child_span.set_attribute(ATTR_RETRY_ATTEMPT, call.n)

    def child_end(self, call: Call, role: str | None, exc: BaseException | None) -> None:
        # A cancelled attempt (an outer timeout) did not succeed either.
        (self.success if exc is None else self.error).inc()

    def finish(self, call: Call, exc: BaseException | None) -> None:
        _keep_pending(call)  # gave up: the last attempt's fate is its parent's to decide
        if call.span.is_recording():
            call.span.set_attribute(ATTR_RETRY_ATTEMPTS, call.n)

    def pends(self, role: str | None) -> bool:
        return True


class Fallback(Recogniser):
    __slots__ = ("activations",)

    def __init__(self, name: str, obj: Any) -> None:
        self.activations = Series(c.FALLBACK_ACTIVATIONS, name)

    def child_start(self, call: Call, role: str | None, child_span: trace.Span) -> None:
        if role == "fallback":
            call.flag = True
            self.activations.inc()
            _waste_pending(call, c.WASTE_FALLBACK)  # the primary's spend bought nothing

    def finish(self, call: Call, exc: BaseException | None) -> None:
        _keep_pending(call)
        if call.span.is_recording():
            call.span.set_attribute(ATTR_FALLBACK_ACTIVATED, call.flag)

    def pends(self, role: str | None) -> bool:
        return role == "primary"


class Saga(Recogniser):
    """Saga and compensation: a call of ``.compensation`` is a compensation run, its outcome
    success or error (TTA.dev swallows a failed compensation and raises the forward error)."""

    __slots__ = ("error", "success")

    def __init__(self, name: str, obj: Any) -> None:
        self.success = Series(c.COMPENSATIONS, name, c.STATUS_SUCCESS)
        self.error = Series(c.COMPENSATIONS, name, c.STATUS_ERROR)

    def child_end(self, call: Call, role: str | None, exc: BaseException | None) -> None:
        if role == "compensation":
            call.flag = True
            (self.success if exc is None else self.error).inc()

    def finish(self, call: Call, exc: BaseException | None) -> None:
        if call.span.is_recording():
            call.span.set_attribute(ATTR_COMPENSATED, call.flag)


class Timeout(Recogniser):
    """A timeout fired when its child was cancelled (``asyncio.wait_for``) or its fallback ran;
    a TimeoutError that merely passed through from the child is not this timeout's."""

    __slots__ = ("timeouts",)

    def __init__(self, name: str, obj: Any) -> None:
        self.timeouts = Series(c.TIMEOUTS, name)

    def child_start(self, call: Call, role: str | None, child_span: trace.Span) -> None:
        if role == "fallback":
            call.flag = True

    def child_end(self, call: Call, role: str | None, exc: BaseException | None) -> None:
        if role is None:
            call.child_exc = exc
            if isinstance(exc, asyncio.CancelledError):
                call.flag = True

    def finish(self, call: Call, exc: BaseException | None) -> None:
        if isinstance(exc, asyncio.CancelledError):
            _keep_pending(call)
            return  # cancelled from outside, not timed out
        fired = call.flag or (
            exc is not None and exc is not call.child_exc and classify(exc) == _TIMEOUT_STATUS
        )
        if fired:
            self.timeouts.inc()
            _waste_pending(call, c.WASTE_TIMEOUT)  # what the cut-off step spent
        else:
            _keep_pending(call)
        if call.span.is_recording():
            call.span.set_attribute(ATTR_TIMED_OUT, fired)

    def pends(self, role: str | None) -> bool:
        return role is None


class Cache(Recogniser):
    """A call that ran the wrapped primitive missed; one that returned without it hit."""

    __slots__ = ("hit", "miss")

    def __init__(self, name: str, obj: Any) -> None:
        self.hit = Series(c.CACHE_REQUESTS, name, "hit")
        self.miss = Series(c.CACHE_REQUESTS, name, "miss")

    def child_start(self, call: Call, role: str | None, child_span: trace.Span) -> None:
        if role is None:
            call.flag = True

    def finish(self, call: Call, exc: BaseException | None) -> None:
        if exc is not None and not call.flag:
            return  # failed before any lookup result (a key function raised)
        (self.miss if call.flag else self.hit).inc()
        if call.span.is_recording():
            call.span.set_attribute(ATTR_CACHE_RESULT, "miss" if call.flag else "hit")


class Route(Recogniser):
    """Router, switch and conditional: the child that runs is the route taken."""

    __slots__ = ("name", "routes")

    def __init__(self, name: str, obj: Any) -> None:
        self.name = name
        self.routes: dict[str, Series] = {}

    def child_start(self, call: Call, role: str | None, child_span: trace.Span) -> None:
        if role is None:
            return
        series = self.routes.get(role)
        if series is None:
            series = self.routes.setdefault(role, Series(c.ROUTER_DECISIONS, self.name, role))
        series.inc()
        if call.span.is_recording():
            call.span.set_attribute(ATTR_ROUTE, role)


class CircuitBreaker(Recogniser):
    """Reads ``.state`` before and after each call; a change is a transition."""

    __slots__ = ("obj", "tracker")

    def __init__(self, name: str, obj: Any) -> None:
        self.obj = obj
        self.tracker = breaker_tracker(name)
        self.observe()

    def observe(self) -> str | None:
        state = normalise_state(getattr(self.obj, "state", None))
        if state is not None:
            self.tracker.observe(state)
        return state

    def start(self, call: Call) -> None:
        self.observe()

    def finish(self, call: Call, exc: BaseException | None) -> None:
        state = self.observe()
        if state is not None and call.span.is_recording():
            call.span.set_attribute(ATTR_CIRCUIT_STATE, state)


RECOGNISERS: Final[dict[str, type[Recogniser]]] = {
    "retry": Retry,
    "fallback": Fallback,
    "saga": Saga,
    "timeout": Timeout,
    "cache": Cache,
    "router": Route,
    "switch": Route,
    "conditional": Route,
    "circuit_breaker": CircuitBreaker,
}
