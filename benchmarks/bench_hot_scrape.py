"""What a scrape during a hot loop adds to the app, against the scrape's own formatting time.

One process, as an app runs: ``setup()`` serves /metrics on 127.0.0.1 (a port picked at run
time) with P primitives exposed (each called once in a sampled span, so every series has its
exemplar, as in bench_scrape.py), and the main thread runs a hot loop of one more ``@observed``
function. A scraper in a subprocess, as Prometheus is, makes real HTTP GETs of /metrics with
``Accept: application/openmetrics-text`` (``--gzip`` adds ``Accept-Encoding: gzip``, as
Prometheus sends by default) at a fixed rate while the loop runs.

Each round times the same loop with K scrapes and without any, in alternating order, and the
scrape's formatting alone: the endpoint's own response body (``metrics.http.bake``: render, and
gzip if asked) made in this process with the loop stopped. The loop's extra time per scrape is
(with - without) / K; the goal (issue 10) is extra / formatting <= 1.0: a scrape costs the app
its formatting and nothing more (no lock the hot path waits for, no GIL hand-off stalls). The
figures are medians over rounds; the ratio is the median of the rounds' ratios. Also printed,
from CPU clocks: the server threads' CPU per scrape (process CPU less the loop thread's, with
less without) and the loop thread's own extra CPU per scrape (caches, garbage collection).

``--multiprocess`` runs it with ``setup(multiprocess_dir=...)``, where a scrape also writes this
process's file and sums the directory's files (formatting then includes that too).

Load caveat: the extra time is a difference of two wall-clock loop times, so anything else
running on the machine (the scraper takes one core while it reads; on 2 cores another busy
process competes with the loop) shows up as noise of either sign. Run it on an otherwise idle
machine, look at ``uptime`` and repeat; trust the median, not one round.

    python benchmarks/bench_hot_scrape.py                  # 1,000 primitives, 9 rounds
    python benchmarks/bench_hot_scrape.py --multiprocess
    python benchmarks/bench_hot_scrape.py --primitives 100 --scrapes 4 --rounds 3
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from typing import IO, Any

from opentelemetry.sdk.trace import TracerProvider

import tta_observability as tto
from bench_observed import MODES, _provider, _work, setup_with
from bench_scrape import _OPENMETRICS
from tta_observability import _state
from tta_observability.metrics.http import bake


def _scraper(url: str, gzip: bool) -> int:
    """The subprocess: on each "K INTERVAL" line, K scrapes INTERVAL apart; reply with timings.

    Scrape i starts at (i + 0.5) x INTERVAL after the line arrives, so all of them fall inside
    a loop of (K + 1) x INTERVAL that started when the line was sent.
    """
    headers = {"Accept": _OPENMETRICS}
    if gzip:
        headers["Accept-Encoding"] = "gzip"
    for line in sys.stdin:
        k_text, interval_text = line.split()
        k, interval = int(k_text), float(interval_text)
        t0, cpu0 = time.perf_counter(), time.process_time()
        scrapes = []
        for i in range(k):
            delay = t0 + (i + 0.5) * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            start = time.perf_counter()
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as resp:
                size = len(resp.read())
            scrapes.append((start, time.perf_counter(), size))
        print(json.dumps({"scrapes": scrapes, "cpu": time.process_time() - cpu0}), flush=True)
    return 0


class Scraper:
    """The scraper subprocess, told per loop how many scrapes to make."""

    def __init__(self, url: str, gzip: bool) -> None:
        argv = [sys.executable, __file__, "--scraper-for", url, *(["--gzip"] if gzip else [])]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.stdin: IO[str] = self.proc.stdin  # type: ignore[assignment]
        self.stdout: IO[str] = self.proc.stdout  # type: ignore[assignment]

    def begin(self, k: int, interval: float) -> None:
        self.stdin.write(f"{k} {interval}\n")
        self.stdin.flush()

    def end(self) -> tuple[list[tuple[float, float, int]], float]:
        """Each scrape's (start, end, body size), and the scraper's CPU time for them."""
        line = self.stdout.readline()
        if not line:
            raise RuntimeError(f"the scraper exited with code {self.proc.wait()}")
        reply = json.loads(line)
        return [tuple(s) for s in reply["scrapes"]], reply["cpu"]

    def stop(self) -> None:
        self.stdin.close()
        self.proc.wait(10)


def _loop(fn: Callable[[int], int], calls: int) -> tuple[float, float, float]:
    """Wall time, this thread's CPU time and the process's CPU time of ``calls`` calls."""
    perf, thread_cpu, process_cpu = time.perf_counter, time.thread_time, time.process_time
    c0, p0, t0 = thread_cpu(), process_cpu(), perf()
    for i in range(calls):
        fn(i)
    t1 = perf()
    return t1 - t0, thread_cpu() - c0, process_cpu() - p0


def _median_time(fn: Callable[[], object], times: int) -> float:
    """The median time of ``fn()`` alone, garbage collected before each."""
    out = []
    for _ in range(times):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def _populate(primitives: int) -> None:
    """P primitives, each called once in a sampled span: every series has its exemplar."""
    saved = _state.STATE.tracer
    _state.STATE.tracer = TracerProvider().get_tracer("bench")
    try:
        for i in range(primitives):
            tto.observed(name=f"p{i}")(_work)(i)
    finally:
        _state.STATE.tracer = saved


def _timed_loop(
    hot: Callable[[int], int], calls: int, scraper: Scraper, k: int, interval: float
) -> tuple[float, float, float, int, float]:
    """The loop's wall, thread and process times, late scrapes and the scraper's CPU time."""
    gc.collect()
    scraper.begin(k, interval)
    wall, thread_cpu, process_cpu = _loop(hot, calls)
    end = time.perf_counter()
    scrapes, scraper_cpu = scraper.end()
    late = sum(1 for _, done, _ in scrapes if done > end)
    return wall, thread_cpu, process_cpu, late, scraper_cpu


def run(args: argparse.Namespace) -> dict[str, float]:
    provider = _provider(MODES[args.mode])
    mp_dir = tempfile.TemporaryDirectory(prefix="bench-hot-scrape-") if args.multiprocess else None
    handle = setup_with(
        provider,
        metrics_port=0,
        metrics_host="127.0.0.1",
        max_label_values=args.primitives + 10,
        multiprocess_dir=mp_dir.name if mp_dir else None,
        handle_sigterm=False,
    )
    scraper = None
    try:
        _populate(args.primitives)
        hot = tto.observed(name="hot")(_work)
        encoding = "gzip" if args.gzip else None
        body: Callable[[], Any] = lambda: bake(handle.registry, _OPENMETRICS, encoding, {})  # noqa: E731
        size = len(body()[2])
        # One scrape about every 5 formatting times by default (Prometheus' 15 s is far rarer;
        # this rate gets a signal above the noise while scrapes stay apart).
        interval = args.interval or max(0.1, round(5 * _median_time(body, 3), 2))
        with urllib.request.urlopen(handle.metrics_url, timeout=30) as resp:  # it serves
            resp.read()
        scraper = Scraper(handle.metrics_url, args.gzip)
        # Calibrate: a loop long enough for K scrapes at the interval, plus one.
        _loop(hot, 20000)
        per_call = _loop(hot, 20000)[0] / 20000
        calls = int((args.scrapes + 1) * interval / per_call)
        rows = _rounds(args, hot, calls, scraper, interval, body)
    finally:
        if scraper is not None:
            scraper.stop()
        handle.shutdown()
        if isinstance(provider, TracerProvider):
            provider.shutdown()
        if mp_dir is not None:
            mp_dir.cleanup()
    skipped = rows.pop("skipped")
    if not rows["ratio"]:
        raise SystemExit("every round had scrapes that ended after its loop: use more --scrapes")
    med = {key: statistics.median(values) for key, values in rows.items()}
    return {
        **med,
        "extra": (med["with"] - med["without"]) / args.scrapes,
        "calls": float(calls),
        "per_call": per_call,
        "size": float(size),
        "skipped": float(len(skipped)),
        "interval": interval,
    }


def _rounds(
    args: argparse.Namespace,
    hot: Callable[[int], int],
    calls: int,
    scraper: Scraper,
    interval: float,
    body: Callable[[], object],
) -> dict[str, list[float]]:
    """Each round: the loop with K scrapes and without (alternating first), then formatting."""
    k = args.scrapes
    keys = ("with", "without", "fmt", "ratio", "server_cpu", "loop_cpu", "scraper_cpu", "skipped")
    rows: dict[str, list[float]] = {key: [] for key in keys}
    without = (k + 1) * interval  # the calibrated loop time
    for r in range(args.rounds):
        timed: dict[int, tuple[float, float, float, int, float]] = {}
        for n in (k, 0) if r % 2 == 0 else (0, k):
            # The machine's speed drifts: spread the scrapes over the first 85 % of the loop
            # as long as it was last time, so that they all end inside it.
            spacing = min(interval, 0.85 * without / k)
            timed[n] = _timed_loop(hot, calls, scraper, n, spacing)
            if n == 0:
                without = timed[0][0]
        fmt = _median_time(body, 3)
        (w_wall, w_cpu, w_proc, late, scraper_cpu), (o_wall, o_cpu, o_proc, *_) = timed[k], timed[0]
        extra = (w_wall - o_wall) / k
        if args.verbose:
            print(
                f"  round {r}: extra {extra * 1e3:.1f} ms/scrape, formatting "
                f"{fmt * 1e3:.1f} ms, ratio {extra / fmt:.2f}"
                + (f" (skipped: {late} scrapes ended after the loop)" if late else ""),
                flush=True,
            )
        if late:  # the extra time of those scrapes fell partly outside the loop
            rows["skipped"].append(r)
            continue
        rows["with"].append(w_wall)
        rows["without"].append(o_wall)
        rows["fmt"].append(fmt)
        rows["ratio"].append(extra / fmt)
        rows["server_cpu"].append(((w_proc - w_cpu) - (o_proc - o_cpu)) / k)
        rows["loop_cpu"].append((w_cpu - o_cpu) / k)
        rows["scraper_cpu"].append(scraper_cpu / k)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--primitives", type=int, default=1000, help="primitives exposed")
    parser.add_argument("--scrapes", type=int, default=8, help="scrapes per loop (K)")
    parser.add_argument(
        "--interval", type=float, help="seconds between scrapes (default: 5 x formatting time)"
    )
    parser.add_argument("--rounds", type=int, default=9, help="rounds (with/without, alternated)")
    parser.add_argument("--mode", choices=list(MODES), default="sampled", help="the loop's tracing")
    parser.add_argument("--multiprocess", action="store_true", help="setup(multiprocess_dir=...)")
    parser.add_argument("--gzip", action="store_true", help="scrape with Accept-Encoding: gzip")
    parser.add_argument(
        "--switch-interval",
        type=float,
        metavar="MS",
        help="sys.setswitchinterval() for the run (default: Python's, 5 ms)",
    )
    parser.add_argument("--verbose", action="store_true", help="print each round")
    parser.add_argument("--scraper-for", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scraper_for:
        return _scraper(args.scraper_for, args.gzip)
    if (
        args.primitives < 0
        or args.scrapes < 1
        or (args.interval is not None and args.interval <= 0)
        or args.rounds < 1
    ):
        parser.error("--primitives >= 0, --scrapes >= 1, --interval > 0 and --rounds >= 1")
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval / 1e3)
    load = os.getloadavg()[0]
    r = run(args)
    store = "multiprocess" if args.multiprocess else "in-memory"
    print(
        f"primitives: {args.primitives} ({store} store, {args.mode} loop, "
        f"{'gzip' if args.gzip else 'identity'} body of {r['size'] / 1e6:.2f} MB); "
        f"switch interval {sys.getswitchinterval() * 1e3:g} ms; load average {load:.2f}"
    )
    print(
        f"loop: {r['calls']:.0f} calls of {r['per_call'] * 1e6:.1f} us, "
        f"{r['without']:.3f} s without scrapes, {r['with']:.3f} s with {args.scrapes} "
        f"(one every {r['interval']:g} s)"
    )
    print(
        f"extra loop time per scrape: {r['extra'] * 1e3:.1f} ms; formatting alone: "
        f"{r['fmt'] * 1e3:.1f} ms"
    )
    print(
        f"CPU per scrape: server threads {r['server_cpu'] * 1e3:.1f} ms, "
        f"the loop thread's own extra {r['loop_cpu'] * 1e3:.1f} ms, "
        f"the scraper process {r['scraper_cpu'] * 1e3:.1f} ms"
    )
    if r["skipped"]:
        print(f"skipped {r['skipped']:.0f} rounds whose scrapes ended after the loop (busy?)")
    print(f"ratio extra / formatting: {r['ratio']:.2f} (goal <= 1.0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
