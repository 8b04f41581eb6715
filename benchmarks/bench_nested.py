"""Per-call cost of nested @observed calls (a parent and its children) against hand-written code.

``bench_observed.py`` times calls that are each a workflow run of their own. Inside a run, a call
also tells its parent where it ran (self time, the workflow map's edges) and counts itself in the
run (per-run histograms). Here a parent calls 10 children, observed or hand-written as in
``bench_observed.py`` (a span with the same attributes, a pre-bound counter and histogram with a
trace exemplar when sampled); the figures are per call (the parent and its 10 children are 11
calls), medians over interleaved rounds, and each ratio is the median of the rounds' paired ratios.

    python benchmarks/bench_nested.py
"""

from __future__ import annotations

import argparse
import gc
import statistics
from collections.abc import Callable

from opentelemetry.sdk.trace import TracerProvider

import bench_observed as b  # next to this file: on sys.path when run as a script
import tta_observability as tto

CHILDREN = 10


def _parent_of(child: Callable[[int], int]) -> Callable[[int], int]:
    def parent(x: int) -> int:
        for i in range(CHILDREN):
            child(x + i)
        return x

    return parent


def run(sampler: object, calls: int, rounds: int) -> dict[str, float]:
    provider = b._provider(sampler)  # type: ignore[arg-type]
    handle = b.setup_with(provider, metrics_port=None)
    observed = tto.observed(name="parent")(_parent_of(tto.observed(name="child")(b._work)))
    hand_child = b._hand_written(provider, name="child")
    hand_parent = b._hand_written(provider, _parent_of(hand_child), name="parent")
    variants = {"observed": observed, "hand": hand_parent}
    for fn in variants.values():
        b._time_per_call(fn, calls // 10)
    samples: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants.items())
    for r in range(rounds):
        for name, fn in order if r % 2 == 0 else reversed(order):
            gc.collect()
            samples[name].append(b._time_per_call(fn, calls) / (CHILDREN + 1))
    handle.shutdown()
    if isinstance(provider, TracerProvider):
        provider.shutdown()
    ratio = statistics.median(
        o / h for o, h in zip(samples["observed"], samples["hand"], strict=True)
    )
    return {
        "observed_us": statistics.median(samples["observed"]) * 1e6,
        "hand_us": statistics.median(samples["hand"]) * 1e6,
        "ratio": ratio,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="parent calls per round")
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds")
    parser.add_argument("--mode", choices=[*b.MODES, "all"], default="all")
    args = parser.parse_args(argv)
    modes = b.MODES if args.mode == "all" else {args.mode: b.MODES[args.mode]}
    print(f"{'mode':<12} {'@observed µs/call':>18} {'hand µs/call':>13} {'observed/hand':>14}")
    for mode, sampler in modes.items():
        r = run(sampler, args.calls, args.rounds)
        print(f"{mode:<12} {r['observed_us']:>18.3f} {r['hand_us']:>13.3f} {r['ratio']:>13.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
