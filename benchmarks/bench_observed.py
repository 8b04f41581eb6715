"""Per-call cost of @observed against a bare call and the best hand-written equivalent.

The hand-written code is what a careful engineer would write without the library: one
OpenTelemetry span with the same attributes as the decorator's (``code.*``, ``tta.primitive.*``,
``tta.status``), plus a pre-bound prometheus-client counter and histogram, with a trace
exemplar when the span is sampled. "hand" uses the idiomatic ``start_as_current_span()``;
"lean" does the same with ``start_span()`` and a manual context switch, as the decorator does.
All variants run in this process, interleaved round by round so that drift in machine speed
affects them alike; the printed figures are medians over rounds, and each ratio is the median
of the rounds' paired ratios.

    python benchmarks/bench_observed.py            # all three sampling modes
    python benchmarks/bench_observed.py --calls 20000 --rounds 31
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import context, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased
from prometheus_client import CollectorRegistry, Counter, Histogram

import tta_observability as tto
from tta_observability import _state, contract


class _Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _provider(sampler: Sampler | None) -> trace.TracerProvider:
    if sampler is None:
        return trace.NoOpTracerProvider()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(_Discard(), max_queue_size=1 << 16))
    return provider


def _work(x: int) -> int:
    return x + 1


def _instruments(name: str) -> tuple[Any, Any, dict[str, str], Callable[[], float]]:
    """Pre-bound counter and histogram children and the span attributes, as one would hand-write."""
    registry = CollectorRegistry()
    labels = ("service_name", "environment", "primitive_type", "primitive_name")
    values = ("bench", "dev", "function", name)
    calls = Counter(f"{name}_executions", "calls", (*labels, "status"), registry=registry).labels(
        *values, "success"
    )
    duration = Histogram(
        f"{name}_duration_seconds",
        "duration",
        labels,
        registry=registry,
        buckets=contract.DURATION_BUCKETS_SECONDS,
    ).labels(*values)
    # The same span the decorator produces: its attributes at start, the status at the end.
    attrs = {
        "code.function": "_work",
        "code.namespace": __name__,
        "tta.primitive.type": "function",
        "tta.primitive.name": name,
    }
    return calls, duration, attrs, time.perf_counter


def _hand_written(
    provider: trace.TracerProvider, body: Callable[[int], int] = _work, name: str = "hand"
) -> Callable[[int], int]:
    calls, duration, attrs, perf_counter = _instruments(name)
    tracer = provider.get_tracer(name)

    def hand(x: int) -> int:
        with tracer.start_as_current_span(name, attributes=attrs) as span:
            t0 = perf_counter()
            result = body(x)
            elapsed = perf_counter() - t0
            span.set_attribute("tta.status", "success")
            ctx = span.get_span_context()
            if ctx.trace_flags.sampled:
                ex = {
                    "trace_id": format(ctx.trace_id, "032x"),
                    "span_id": format(ctx.span_id, "016x"),
                }
                calls.inc(exemplar=ex)
                duration.observe(elapsed, exemplar=ex)
            else:
                calls.inc()
                duration.observe(elapsed)
            return result

    return hand


def _hand_written_lean(provider: trace.TracerProvider) -> Callable[[int], int]:
    """The same, with the leanest API calls: start_span() and a manual context switch."""
    calls, duration, attrs, perf_counter = _instruments("lean")
    tracer = provider.get_tracer("lean")
    attach, detach, set_span = context.attach, context.detach, trace.set_span_in_context

    def lean(x: int) -> int:
        span = tracer.start_span("lean", attributes=attrs)
        token = attach(set_span(span))
        try:
            t0 = perf_counter()
            result = _work(x)
            elapsed = perf_counter() - t0
            ctx = span.get_span_context()
            if ctx.trace_flags.sampled:
                span.set_attribute("tta.status", "success")
                ex = {
                    "trace_id": format(ctx.trace_id, "032x"),
                    "span_id": format(ctx.span_id, "016x"),
                }
                calls.inc(exemplar=ex)
                duration.observe(elapsed, exemplar=ex)
            else:
                calls.inc()
                duration.observe(elapsed)
            return result
        finally:
            span.end()
            detach(token)

    return lean


def _time_per_call(fn: Callable[[int], int], calls: int) -> float:
    perf = time.perf_counter
    t0 = perf()
    for i in range(calls):
        fn(i)
    return (perf() - t0) / calls


def setup_with(provider: trace.TracerProvider, **settings: Any) -> tto.Handle:
    """``setup()`` for a benchmark run with ``provider``: passed on when it is the SDK's; the
    no-op one (the unsampled mode) is not a provider setup() takes, so its tracer is set as the
    library's directly."""
    sdk = provider if isinstance(provider, TracerProvider) else None
    handle = tto.setup("bench", registry=CollectorRegistry(), tracer_provider=sdk, **settings)
    if sdk is None:
        _state.STATE.tracer = provider.get_tracer("tta_observability")
    return handle


def run(mode: str, sampler: Sampler | None, calls: int, rounds: int) -> dict[str, float]:
    provider = _provider(sampler)
    handle = setup_with(provider, metrics_port=None)
    observed = tto.observed(name="observed")(_work)
    hand = _hand_written(provider)
    lean = _hand_written_lean(provider)
    variants = {"bare": _work, "observed": observed, "hand": hand, "lean": lean}
    for fn in variants.values():  # warm up
        _time_per_call(fn, calls // 10)
    samples: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants.items())
    for r in range(rounds):
        # Alternate the order too, so neither variant always runs right after the other.
        for name, fn in order if r % 2 == 0 else reversed(order):
            gc.collect()
            samples[name].append(_time_per_call(fn, calls))
    handle.shutdown()
    if isinstance(provider, TracerProvider):
        provider.shutdown()
    med = {k: statistics.median(v) for k, v in samples.items()}

    # Paired per round: drift in machine speed cancels out of each round's ratio.
    def paired(baseline: str) -> float:
        return statistics.median(
            o / b for o, b in zip(samples["observed"], samples[baseline], strict=True)
        )

    return {
        "bare_us": med["bare"] * 1e6,
        "observed_us": med["observed"] * 1e6,
        "hand_us": med["hand"] * 1e6,
        "lean_us": med["lean"] * 1e6,
        "observed_vs_hand": paired("hand"),
        "observed_vs_lean": paired("lean"),
    }


MODES: dict[str, Sampler | None] = {
    "sampled": ALWAYS_ON,
    "10%-sampled": ParentBased(TraceIdRatioBased(0.1)),
    "tracing-off": None,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10000, help="calls per variant per round")
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds")
    parser.add_argument("--mode", choices=[*MODES, "all"], default="all")
    args = parser.parse_args(argv)
    modes = MODES if args.mode == "all" else {args.mode: MODES[args.mode]}
    print(
        f"{'mode':<12} {'bare µs':>8} {'@observed µs':>13} {'hand µs':>8} {'lean µs':>8} "
        f"{'observed/hand':>14} {'observed/lean':>14}"
    )
    for mode, sampler in modes.items():
        r = run(mode, sampler, args.calls, args.rounds)
        print(
            f"{mode:<12} {r['bare_us']:>8.3f} {r['observed_us']:>13.3f} {r['hand_us']:>8.3f} "
            f"{r['lean_us']:>8.3f} {r['observed_vs_hand']:>13.2f}x {r['observed_vs_lean']:>13.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
