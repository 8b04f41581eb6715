"""Scrape cost of the library's store against prometheus-client exposing the same series.

For P primitives, each called once inside a sampled span (so every executions and bucket series
has its exemplar; plain functions, so no workflow series), the library's store is exposed in
OpenMetrics as its endpoint serves it (pre-rendered series: metrics.http.scrape); the baseline
is prometheus-client's own Counter/Histogram/Gauge children with the same names, labels,
buckets and exemplars, rendered by prometheus-client's OpenMetrics generator, in this process.
The figures are medians over rounds. Also printed: samples per plain @observed function at rest.

    python benchmarks/bench_scrape.py                  # 1,000 primitives
    python benchmarks/bench_scrape.py --primitives 100 --rounds 9
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.openmetrics.exposition import generate_latest

from tta_observability import _state, contract
from tta_observability._call import Instrument
from tta_observability.metrics import MetricStore
from tta_observability.metrics.http import scrape

_OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def _ours(n: int) -> tuple[CollectorRegistry, int]:
    """A store where n primitives were each called once, outermost, in a sampled span."""
    store = MetricStore(max_label_values=n + 10)
    registry = CollectorRegistry()
    registry.register(store)
    saved = _state.STATE.tracer
    _state.STATE.tracer = TracerProvider().get_tracer("bench")
    try:
        for i in range(n):
            inst = Instrument(f"p{i}", store=store)
            inst.finish(inst.start(), None)
    finally:
        _state.STATE.tracer = saved
    samples = sum(len(f.samples) for f in store.collect())
    return registry, samples


def _baseline(n: int) -> tuple[CollectorRegistry, int]:
    registry = CollectorRegistry()
    common = ("service_name", "environment")
    p = (*common, "primitive_type", "primitive_name")
    execs = Counter("tta_primitive_executions", "calls", (*p, "status"), registry=registry)
    duration = Histogram(
        "tta_primitive_duration_seconds",
        "duration",
        p,
        registry=registry,
        buckets=contract.DURATION_BUCKETS_SECONDS,
    )
    in_flight = Gauge("tta_primitive_in_flight", "in flight", p, registry=registry)
    ex = {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}
    for i in range(n):
        labels = ("bench", "dev", "function", f"p{i}")
        for status in contract.STATUSES:
            child = execs.labels(*labels, status)
            if status == contract.STATUS_SUCCESS:
                child.inc(exemplar=ex)
            else:
                child.inc(0)
        duration.labels(*labels).observe(0.001, exemplar=ex)
        in_flight.labels(*labels).set(0)
    samples = sum(len(f.samples) for f in registry.collect())
    return registry, samples


def _time(render: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        render()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _samples_per_function() -> int:
    store = MetricStore()
    inst = Instrument("plain", store=store)
    inst.finish(inst.start(), None)
    return sum(len(f.samples) for f in store.collect())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--primitives", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    ours, ours_samples = _ours(args.primitives)
    base, base_samples = _baseline(args.primitives)
    t_ours = _time(lambda: scrape(ours, _OPENMETRICS), args.rounds)
    t_base = _time(lambda: generate_latest(base), args.rounds)
    per_ours = t_ours / ours_samples
    per_base = t_base / base_samples
    print(f"primitives: {args.primitives}")
    print(
        f"ours:     {ours_samples} samples, {t_ours * 1e3:.1f} ms per scrape, "
        f"{per_ours * 1e6:.2f} us per sample"
    )
    print(
        f"baseline: {base_samples} samples, {t_base * 1e3:.1f} ms per scrape, "
        f"{per_base * 1e6:.2f} us per sample"
    )
    print(f"ratio per sample (ours / prometheus-client): {per_ours / per_base:.2f} (goal <= 0.33)")
    print(f"samples per plain @observed function at rest: {_samples_per_function()} (goal <= 25)")


if __name__ == "__main__":
    main()
