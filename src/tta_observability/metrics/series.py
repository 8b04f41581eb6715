"""The series a call updates: counts, histograms and the latest exemplars as plain integers and
floats under one lock each (the per-call hot path), and the label sets a scrape renders them with.

prometheus-client's own metric objects take a lock and validate exemplar labels on every update,
which costs more than the update itself. Here a call updates a series object resolved once, at
decoration time, and keeps the latest exemplar as raw integer ids; label sets, hex ids and
samples are built only when Prometheus scrapes (:mod:`.samples`).
"""

from __future__ import annotations

import itertools
import threading
import time
from bisect import bisect_left
from typing import TYPE_CHECKING, NamedTuple

from prometheus_client.utils import floatToGoString

from .. import contract as c
from ..slo import SLO
from . import exposition
from .exposition import Labels, RawExemplar
from .guards import LabelGuard, SeriesBudget

if TYPE_CHECKING:
    from .store import MetricStore

_BOUNDS = c.DURATION_BUCKETS_SECONDS
#: The ``le`` values of the duration histograms.
DURATION_LE = (*(floatToGoString(b) for b in _BOUNDS), "+Inf")  # type: ignore[no-untyped-call]
STATUS_INDEX = {s: i for i, s in enumerate(c.STATUSES)}


class Histogram:
    """Bucket counts, sum and the latest exemplar per bucket for one label set."""

    __slots__ = ("bounds", "buckets", "exemplars", "sum")

    def __init__(self, bounds: tuple[float, ...] = _BOUNDS) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)
        self.exemplars: list[RawExemplar | None] = [None] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float, trace_id: int, span_id: int, now: float) -> None:
        """Add one observation; the caller holds the lock that guards this histogram."""
        i = bisect_left(self.bounds, value)
        self.buckets[i] += 1
        self.sum += value
        if trace_id:
            self.exemplars[i] = (trace_id, span_id, value, now)

    def read(self) -> tuple[list[int], list[RawExemplar | None], float]:
        return list(self.buckets), list(self.exemplars), self.sum


class RunHistograms:
    """The shape of a workflow's runs: one observation per run in each histogram."""

    __slots__ = ("calls", "cost_usd", "llm_calls", "lock", "tokens")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = Histogram(c.RUN_CALLS_BUCKETS)
        self.llm_calls = Histogram(c.RUN_CALLS_BUCKETS)
        self.tokens = Histogram(c.RUN_TOKENS_BUCKETS)
        self.cost_usd = Histogram(c.RUN_COST_BUCKETS_USD)

    def record(
        self, calls: int, llm_calls: int, tokens: int, cost_usd: float, trace_id: int, span_id: int
    ) -> None:
        now = time.time() if trace_id else 0.0
        with self.lock:
            self.calls.observe(calls, trace_id, span_id, now)
            self.llm_calls.observe(llm_calls, trace_id, span_id, now)
            self.tokens.observe(tokens, trace_id, span_id, now)
            self.cost_usd.observe(cost_usd, trace_id, span_id, now)


class OutcomeSeries:
    """Calls by outcome, their duration histogram and the latest exemplars.

    ``record`` is the hot path: one lock, a bisect and a few integer updates.
    """

    __slots__ = ("hist", "label_sets", "lock", "status_counts", "status_exemplars")

    def __init__(self) -> None:
        #: The series' label sets, made by its first scrape (see :class:`LabelSets`).
        self.label_sets: LabelSets | None = None
        self.lock = threading.Lock()
        self.status_counts = [0] * len(c.STATUSES)
        self.status_exemplars: list[RawExemplar | None] = [None] * len(c.STATUSES)
        self.hist = Histogram()

    def record(self, status: int, duration: float, trace_id: int, span_id: int) -> None:
        i = bisect_left(_BOUNDS, duration)
        hist = self.hist
        with self.lock:
            self.status_counts[status] += 1
            hist.buckets[i] += 1
            hist.sum += duration
            if trace_id:
                ex = (trace_id, span_id, duration, time.time())
                hist.exemplars[i] = ex
                self.status_exemplars[status] = ex

    def record_with(
        self, other: OutcomeSeries, status: int, duration: float, trace_id: int, span_id: int
    ) -> None:
        """``record()`` into this series and ``other`` (a workflow run: its primitive's series
        and its workflow's), with one bisect and one clock read for both. Unrolled: a loop
        over the two costs more than the updates themselves."""
        i = bisect_left(_BOUNDS, duration)
        hist, other_hist = self.hist, other.hist
        if trace_id:
            ex = (trace_id, span_id, duration, time.time())
            with self.lock:
                self.status_counts[status] += 1
                hist.buckets[i] += 1
                hist.sum += duration
                hist.exemplars[i] = ex
                self.status_exemplars[status] = ex
            with other.lock:
                other.status_counts[status] += 1
                other_hist.buckets[i] += 1
                other_hist.sum += duration
                other_hist.exemplars[i] = ex
                other.status_exemplars[status] = ex
        else:
            with self.lock:
                self.status_counts[status] += 1
                hist.buckets[i] += 1
                hist.sum += duration
            with other.lock:
                other.status_counts[status] += 1
                other_hist.buckets[i] += 1
                other_hist.sum += duration


class LabelSets:
    """One outcome series' label sets, made once per common labels, reused by every scrape.

    The same tuples every scrape: no label dict is built per sample, and the renderer finds
    each sample's pre-rendered prefix by them.
    """

    __slots__ = ("base", "buckets", "common", "prefixes", "statuses")

    def __init__(self, common: Labels, own: Labels) -> None:
        self.common = common
        self.base = (*common, *own)
        self.statuses = tuple((*self.base, ("status", status)) for status in STATUS_INDEX)
        self.buckets = tuple((*self.base, ("le", le)) for le in DURATION_LE)
        #: Every sample's ``name{labels} `` text, made by the first scrape that renders them.
        self.prefixes: Prefixes | None = None

    def rendered(self, execs: str, duration: str, in_flight: str) -> Prefixes:
        prefixes = self.prefixes
        if prefixes is None:
            p = exposition.sample_prefix
            prefixes = self.prefixes = Prefixes(
                tuple(p(execs, labels) for labels in self.statuses),
                tuple(p(f"{duration}_bucket", labels) for labels in self.buckets),
                p(f"{duration}_count", self.base),
                p(f"{duration}_sum", self.base),
                p(in_flight, self.base),
            )
        return prefixes


class Prefixes(NamedTuple):
    """One outcome series' sample prefixes, in the order its samples are written."""

    statuses: tuple[str, ...]
    buckets: tuple[str, ...]
    count_prefix: str
    sum_prefix: str
    in_flight: str


def label_sets(series: OutcomeSeries, common: Labels, own: Labels) -> LabelSets:
    sets = series.label_sets
    if sets is None or sets.common is not common:
        sets = series.label_sets = LabelSets(common, own)
    return sets


class PrimitiveSeries(OutcomeSeries):
    """Every per-call series of one (primitive_type, primitive_name)."""

    __slots__ = (
        "begin",
        "begun",
        "errors",
        "first_item_hist",
        "name",
        "ptype",
        "self_hist",
        "store",
    )

    def __init__(self, store: MetricStore, ptype: str, name: str) -> None:
        super().__init__()
        self.store = store
        self.ptype = ptype
        self.name = name
        #: (error_type, origin, workflow) -> failed calls; only failing primitives have any.
        self.errors: dict[tuple[str, str, str], int] = {}
        #: Self time, created by the first call that has children (a leaf's is its duration).
        self.self_hist: Histogram | None = None
        #: Time to first item, created by the first generator call that yields.
        self.first_item_hist: Histogram | None = None
        # In flight = begun - finished (the sum of the outcome counts). next() on
        # itertools.count is atomic under the GIL, so starting a call takes no lock.
        self.begun = itertools.count(1)
        self.begin = self.begun.__next__

    @property
    def in_flight(self) -> int:
        with self.lock:
            finished = sum(self.status_counts)
        # Read after `finished`, so a call that starts and ends in between cannot make it < 0.
        begun = int(repr(self.begun)[6:-1]) - 1  # "count(N)": N is the next value
        # Never below zero: a forked child may end calls it inherited from another thread's
        # context (an event loop's other tasks), which its count did not start from.
        return max(begun - finished, 0)

    def record_self(self, seconds: float, trace_id: int, span_id: int) -> None:
        self._observe("self_hist", seconds, trace_id, span_id)

    def record_first_item(self, seconds: float, trace_id: int, span_id: int) -> None:
        self._observe("first_item_hist", seconds, trace_id, span_id)

    def _observe(self, slot: str, seconds: float, trace_id: int, span_id: int) -> None:
        """Observe into a histogram made on first use (calls of other kinds never pay for it)."""
        now = time.time() if trace_id else 0.0
        with self.lock:
            hist = getattr(self, slot)
            if hist is None:
                hist = Histogram()
                setattr(self, slot, hist)
            hist.observe(seconds, trace_id, span_id, now)

    def record_error(
        self, error_type: str, origin: str = c.ORIGIN_RAISED, workflow: str = c.NO_WORKFLOW
    ) -> None:
        store = self.store
        key = (
            store.error_type_guard.admit(error_type),
            origin,
            store.error_workflow_guard.admit(workflow),
        )
        with self.lock:
            errors = self.errors
            n = errors.get(key)
            if n is None:  # a new series: within the metric's budget of series?
                key = store.error_series.admit_key(key)  # type: ignore[assignment]
                n = errors.get(key, 0)
            errors[key] = n + 1


class SLOSeries:
    __slots__ = ("bad", "lock", "requests", "slo")

    def __init__(self, slo: SLO) -> None:
        self.slo = slo
        self.lock = threading.Lock()
        self.requests = 0
        self.bad = 0

    def record(self, bad: bool) -> None:
        with self.lock:
            self.requests += 1
            if bad:
                self.bad += 1


class WorkflowSeries(OutcomeSeries):
    __slots__ = ("runs", "workflow")

    def __init__(self, workflow: str) -> None:
        super().__init__()
        self.workflow = workflow
        #: Per-run shape, created by the first run that has one (more than one call, or LLM).
        self.runs: RunHistograms | None = None

    def record_run(
        self, calls: int, llm_calls: int, tokens: int, cost_usd: float, trace_id: int, span_id: int
    ) -> None:
        runs = self.runs
        if runs is None:
            with self.lock:
                runs = self.runs
                if runs is None:
                    runs = self.runs = RunHistograms()
        runs.record(calls, llm_calls, tokens, cost_usd, trace_id, span_id)


class LabeledCounter:
    """A counter or gauge keyed by a tuple of label values (the cooler, less hot series)."""

    __slots__ = ("budget", "guards", "lock", "metric", "values")

    def __init__(
        self, metric: c.Metric, guards: dict[int, LabelGuard], budget: SeriesBudget
    ) -> None:
        self.metric = metric
        self.guards = guards  # label position -> guard, for the bounded labels
        self.budget = budget
        self.lock = threading.Lock()
        self.values: dict[tuple[str, ...], float] = {}

    def key(self, values: tuple[object, ...]) -> tuple[str, ...]:
        if len(values) != len(self.metric.labels):
            raise ValueError(
                f"{self.metric.name} takes labels {self.metric.labels}, got {len(values)} values"
            )
        out = []
        for i, v in enumerate(values):
            guard = self.guards.get(i)
            if guard is not None:
                out.append(guard.admit(v))
            else:
                text = v if type(v) is str else str(v)
                out.append(text[: c.MAX_LABEL_VALUE_LENGTH])
        return tuple(out)

    def inc(self, values: tuple[object, ...], amount: float = 1.0) -> None:
        k = self.key(values)
        with self.lock:
            current = self.values
            old = current.get(k)
            if old is None:  # a new series: within the metric's budget of series?
                k = self.budget.admit_key(k, len(current))
                old = current.get(k, 0.0)
            current[k] = old + amount

    def set(self, values: tuple[object, ...], value: float) -> None:
        k = self.key(values)
        with self.lock:
            if k not in self.values:
                k = self.budget.admit_key(k, len(self.values))
            self.values[k] = value

    def clear(self) -> None:
        with self.lock:
            self.values.clear()

    def get(self, values: tuple[object, ...]) -> float:
        return self.values.get(tuple(str(v) for v in values), 0.0)


def reset_outcomes(series: OutcomeSeries) -> None:
    series.status_counts = [0] * len(c.STATUSES)
    series.status_exemplars = [None] * len(c.STATUSES)
    series.hist = Histogram()
