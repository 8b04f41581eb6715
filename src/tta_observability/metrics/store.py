"""The metric store and its Prometheus collector: the per-call hot path.

prometheus-client's own metric objects take a lock and validate exemplar labels on every update,
which costs more than the update itself. Here a call updates plain integers and floats in a series
object resolved once, at decoration time, and keeps the latest exemplar as raw integer ids; label
sets, hex ids and samples are built only when Prometheus scrapes.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .. import contract as c
from ..slo import SLO
from . import exposition
from .exposition import (
    Labels,
    MergedFamily,
    RawExemplar,
    RawFamily,
    TextFamily,
    exemplar_text,
    new_family,
    new_text_family,
)
from .values import Multiprocess

logger = logging.getLogger("tta_observability")

_BOUNDS = c.DURATION_BUCKETS_SECONDS
_LE = (*(floatToGoString(b) for b in _BOUNDS), "+Inf")  # type: ignore[no-untyped-call]
STATUS_INDEX = {s: i for i, s in enumerate(c.STATUSES)}


class LabelGuard:
    """Bounds the distinct values of one label of one metric.

    Values past ``limit`` fold into ``__overflow__``, counted by
    ``tta_observability_label_overflow_total{metric, label}``.
    """

    __slots__ = ("label", "limit", "lock", "metric", "overflowed", "scale", "seen")

    def __init__(self, metric: str, label: str, limit: int, scale: int = 1) -> None:
        self.metric = metric
        self.label = label
        #: The limit is ``scale`` x ``max_label_values``.
        self.scale = scale
        self.limit = limit * scale
        self.seen: set[str] = set()
        self.overflowed = 0
        self.lock = threading.Lock()

    def admit(self, value: object) -> str:
        text = value if type(value) is str else str(value)
        if len(text) > c.MAX_LABEL_VALUE_LENGTH:
            text = text[: c.MAX_LABEL_VALUE_LENGTH]
        if text in self.seen:
            return text
        with self.lock:
            if text in self.seen:
                return text
            if len(self.seen) < self.limit:
                self.seen.add(text)
                return text
            self.overflowed += 1
        return c.OVERFLOW_VALUE


class SeriesBudget(LabelGuard):
    """Bounds the label sets (series) of one metric, however each label is bounded.

    Each label of a metric keeps at most ``max_label_values`` values, but their combinations
    could still multiply; past ``SERIES_PER_LABEL_VALUE x max_label_values`` series, a new
    combination folds into the one whose labels are all ``__overflow__``, and every folded call
    counts in ``tta_observability_label_overflow_total{metric, label="__series__"}``. Consulted
    only when a call makes a new series, so calls into existing series never pay for it.
    """

    __slots__ = ("count",)

    def __init__(self, metric: str, limit: int) -> None:
        super().__init__(metric, SERIES_LABEL, limit, SERIES_PER_LABEL_VALUE)
        #: Series admitted so far, for a metric whose series live in several dicts.
        self.count = 0

    def admit_key(self, key: tuple[str, ...], size: int | None = None) -> tuple[str, ...]:
        """``key`` if a new series fits (``size``: how many there are, else ``count``)."""
        with self.lock:
            if (self.count if size is None else size) < self.limit:
                self.count += 1
                return key
            self.overflowed += 1
        return (c.OVERFLOW_VALUE,) * len(key)


#: The ``label`` value of label_overflow_total for series folded by a :class:`SeriesBudget`.
SERIES_LABEL = "__series__"
#: Series each metric keeps per allowed label value (``max_label_values``).
SERIES_PER_LABEL_VALUE = 10


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
        self.buckets = tuple((*self.base, ("le", le)) for le in _LE)
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


def _label_sets(series: OutcomeSeries, common: Labels, own: Labels) -> LabelSets:
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


class MetricStore(Collector):
    """All of the library's series, exposed to a prometheus-client registry as one collector."""

    def __init__(self, max_label_values: int = c.DEFAULT_MAX_LABEL_VALUES) -> None:
        self.lock = threading.Lock()
        self.service_name = "unknown_service"
        self.environment = "dev"
        self.build_info: tuple[str, str, str] | None = None
        self.guards: dict[tuple[str, str], LabelGuard] = {}
        self.max_label_values = max_label_values
        self.primitives: dict[tuple[str, str], PrimitiveSeries] = {}
        self.slos: dict[str, SLOSeries] = {}
        self.workflows: dict[str, WorkflowSeries] = {}
        self.edges: dict[tuple[str, str, str], None] = {}
        self.error_type_guard = self.guard(c.PRIMITIVE_ERRORS.name, "error_type")
        self.error_workflow_guard = self.guard(c.PRIMITIVE_ERRORS.name, "workflow")
        self.error_series = self.series_budget(c.PRIMITIVE_ERRORS.name)
        self.counters: dict[str, LabeledCounter] = {}
        #: Set by ``setup(multiprocess_dir=...)``: scrapes then sum every process's values.
        self.multiprocess: Multiprocess | None = None
        self.renderer = exposition.Renderer()
        self._common: Labels = ()
        for metric in c.METRICS:
            if (
                metric.group in ("recovery", "llm", "export", "budget")
                or metric is c.LABEL_OVERFLOW
            ):
                self.counters[metric.name] = LabeledCounter(
                    metric,
                    {
                        i: self.guard(metric.name, label)
                        for i, label in enumerate(metric.labels)
                        if label in c.BOUNDED_LABELS
                    },
                    self.series_budget(metric.name),
                )

    def series_budget(self, metric: str) -> SeriesBudget:
        with self.lock:
            budget = self.guards.setdefault(
                (metric, SERIES_LABEL), SeriesBudget(metric, self.max_label_values)
            )
        assert isinstance(budget, SeriesBudget)
        return budget

    def guard(self, metric: str, label: str) -> LabelGuard:
        key = (metric, label)
        with self.lock:
            g = self.guards.get(key)
            if g is None:
                g = self.guards[key] = LabelGuard(metric, label, self.max_label_values)
            return g

    def after_fork_in_child(self, inherited: Mapping[int, int] | None = None) -> None:
        """A forked child: locks another thread of the parent held at the fork stay held.

        ``inherited``: ``id(series)`` -> the calls of that primitive on the forking thread's
        stack, which the child continues (and ends): its in-flight count starts from them.
        """
        self.lock = threading.Lock()
        for guard in self.guards.values():
            guard.lock = threading.Lock()
        for group in (self.primitives, self.slos, self.workflows, self.counters):
            for series in group.values():
                series.lock = threading.Lock()
                runs = getattr(series, "runs", None)
                if runs is not None:
                    runs.lock = threading.Lock()
        if self.multiprocess is not None:
            # The parent's values are in the parent's file: the child counts only its own.
            self.reset_values(inherited or {})
            self.multiprocess.after_fork_in_child()

    def reset_values(self, in_flight: Mapping[int, int]) -> None:
        """Zero every counter and histogram (gauges set by setup() stay).

        ``in_flight``: ``id(series)`` -> calls under way that will still end in this process.
        """
        for p in list(self.primitives.values()):
            _reset_outcomes(p)
            p.errors = {}
            p.self_hist = None
            p.first_item_hist = None
            p.begun = itertools.count(1 + in_flight.get(id(p), 0))
            p.begin = p.begun.__next__
        for w in list(self.workflows.values()):
            _reset_outcomes(w)
            w.runs = None
        for slo in list(self.slos.values()):
            slo.requests = slo.bad = 0
        for counter in self.counters.values():
            if counter.metric.type != "gauge":
                counter.values = {}
        for guard in self.guards.values():
            guard.overflowed = 0
        self.error_series.count = 0

    def set_label_limit(self, limit: int) -> None:
        with self.lock:
            self.max_label_values = limit
            for g in self.guards.values():
                g.limit = limit * g.scale

    # Series resolution: done at decoration time, not per call.

    def primitive(self, ptype: str, name: str) -> PrimitiveSeries:
        ptype = ptype[: c.MAX_LABEL_VALUE_LENGTH]
        admitted = name
        for metric in (c.PRIMITIVE_EXECUTIONS, c.PRIMITIVE_DURATION, c.PRIMITIVE_IN_FLIGHT):
            admitted = self.guard(metric.name, "primitive_name").admit(name)
        key = (ptype, admitted)
        with self.lock:
            series = self.primitives.get(key)
            if series is None:
                series = self.primitives[key] = PrimitiveSeries(self, ptype, admitted)
            return series

    def slo(self, slo: SLO) -> SLOSeries:
        name = self.guard(c.SLO_REQUESTS.name, "slo").admit(slo.name)
        with self.lock:
            series = self.slos.get(name)
            if series is None:
                series = self.slos[name] = SLOSeries(slo)
            elif series.slo != slo and name != c.OVERFLOW_VALUE:
                logger.warning(
                    "SLO %r declared again with different settings (%s, was %s); "
                    "keeping the first declaration",
                    slo.name,
                    slo,
                    series.slo,
                )
            return series

    def workflow(self, name: str) -> WorkflowSeries:
        admitted = self.guard(c.WORKFLOW_EXECUTIONS.name, "workflow").admit(name)
        with self.lock:
            series = self.workflows.get(admitted)
            if series is None:
                series = self.workflows[admitted] = WorkflowSeries(admitted)
            return series

    def edge(self, workflow: str, parent: str, child: str) -> None:
        """Export the edge ``parent -> child`` of ``workflow`` (``parent=""`` for the root)."""
        name = c.WORKFLOW_EDGE_INFO.name
        key = (
            self.guard(name, "workflow").admit(workflow),
            self.guard(name, "parent").admit(parent) if parent else parent,
            self.guard(name, "child").admit(child),
        )
        if key in self.edges:
            return
        with self.lock:
            # Each label is bounded; their combinations are too.
            if len(self.edges) < _MAX_EDGES_PER_LABEL_VALUE * self.max_label_values:
                self.edges[key] = None
            else:
                self.edges[(c.OVERFLOW_VALUE, c.OVERFLOW_VALUE, c.OVERFLOW_VALUE)] = None

    def counter(self, metric: c.Metric) -> LabeledCounter:
        return self.counters[metric.name]

    # Scrape time.

    def describe(self) -> Iterable[Metric]:
        # Naming our families lets the registry answer filtered scrapes (?name[]=...) and
        # refuse a second collector that would emit the same names.
        return exposition.describe(_EMITTED)

    def collect(self) -> Iterator[Metric]:
        deferred = exposition.deferred()
        if deferred is not None:
            # A scrape by our own endpoint: it renders this store's text itself (render()),
            # without prometheus-client's per-sample objects.
            deferred.append(self)
            return iter(())
        return exposition.to_metrics(self.families())

    def families(self, every_workflow: bool = False) -> list[RawFamily]:
        """What a scrape returns: this process's values, or every process's in multiprocess mode.

        ``every_workflow`` adds the runs of roots not exposed as workflows (yet): a reading
        that later readings are compared with (``testing.capture``) must count them.
        """
        if self.multiprocess is None:
            return list(self._raw(every_workflow))
        families = self.multiprocess.aggregate()
        return families if every_workflow else _shaped_workflows_only(families)

    def render(self, openmetrics: bool) -> str:
        """This store's exposition text (no ``# EOF``), series prefixes rendered once.

        In one process the outcome series, nearly all of the body, are written as text as
        they are read (:class:`.exposition.TextFamily`): the tens of thousands of sample
        tuples a scrape would otherwise keep alive until the body is joined made the garbage
        collector run in the app's own threads, a cost beyond the formatting itself
        (``benchmarks/bench_hot_scrape.py``).
        """
        if self.multiprocess is not None:
            # The merged cells as they are, without a sample tuple per cell (MergedFamily).
            merged = _shaped_workflows_only(self.multiprocess.aggregate(cells=True))
            return self.renderer.render(merged, openmetrics)
        return self.renderer.render(self._raw(False, openmetrics), openmetrics)

    def raw(self) -> list[RawFamily]:
        """This process's own samples (in multiprocess mode too), as raw families.

        Every workflow's series are here, shaped or not: another process's runs of the same
        workflow may be the shaped ones (see :func:`_shaped_workflows_only`).
        """
        return list(self._raw(every_workflow=True))

    def common_labels(self) -> Labels:
        """The common label pairs, the same tuple until setup() changes them."""
        common = (("service_name", self.service_name), ("environment", self.environment))
        if common != self._common:
            self._common = common
        return self._common

    def _raw(self, every_workflow: bool, text: bool | None = None) -> Iterator[RawFamily]:
        """The families; with ``text`` (OpenMetrics or not), outcome series already as text."""
        common_pairs = self.common_labels()
        common = dict(common_pairs)
        self._count_overflows()
        yield from self._collect_primitives(common_pairs, text)
        yield from self._collect_slos(common)
        yield from self._collect_workflows(common_pairs, every_workflow, text)
        yield from self._collect_shape(common)
        yield self._collect_first_items(common)
        for counter in self.counters.values():
            yield _family(counter.metric, common, sorted(counter.values.items()))
        if self.build_info is not None:
            labels = dict(zip(c.BUILD_INFO.labels, self.build_info, strict=True))
            fam = new_family(c.BUILD_INFO)
            fam.add_sample(c.BUILD_INFO.name, {**common, **labels}, 1.0)
            yield fam

    def _count_overflows(self) -> None:
        """Every folded call counts, not only the first fold of each new value.

        Series are resolved once (at decoration time), so a primitive, workflow or SLO whose
        name was folded records its calls into the ``__overflow__`` series without passing the
        guard again: those calls are read from that series here, at scrape time, and cost the
        per-call path nothing. Guards consulted on each event (error types, LLM labels) count
        their folds themselves.
        """
        overflow = self.counters[c.LABEL_OVERFLOW.name]
        with self.lock:
            guards = list(self.guards.values())
            folded_primitives = [p for p in self.primitives.values() if p.name == c.OVERFLOW_VALUE]
            folded_workflow = self.workflows.get(c.OVERFLOW_VALUE)
            folded_slo = self.slos.get(c.OVERFLOW_VALUE)
        calls: dict[tuple[str, str], int] = {}
        primitive_calls = sum(sum(p.status_counts) for p in folded_primitives)
        for metric in (c.PRIMITIVE_EXECUTIONS, c.PRIMITIVE_DURATION, c.PRIMITIVE_IN_FLIGHT):
            calls[(metric.name, "primitive_name")] = primitive_calls
        if folded_workflow is not None:
            calls[(c.WORKFLOW_EXECUTIONS.name, "workflow")] = sum(folded_workflow.status_counts)
        if folded_slo is not None:
            calls[(c.SLO_REQUESTS.name, "slo")] = folded_slo.requests
        with overflow.lock:
            for g in guards:
                total = g.overflowed + calls.get((g.metric, g.label), 0)
                if total:
                    overflow.values[(g.metric, g.label)] = float(total)

    def _collect_primitives(self, common: Labels, text: bool | None) -> Iterator[RawFamily]:
        family = new_family if text is None else new_text_family
        execs = family(c.PRIMITIVE_EXECUTIONS)
        errors = new_family(c.PRIMITIVE_ERRORS)
        duration = family(c.PRIMITIVE_DURATION)
        in_flight = family(c.PRIMITIVE_IN_FLIGHT)
        with self.lock:
            series_list = list(self.primitives.values())
        in_flight_name = c.PRIMITIVE_IN_FLIGHT.name
        for s in series_list:
            sets = _label_sets(s, common, (("primitive_type", s.ptype), ("primitive_name", s.name)))
            if text is None:
                _add_outcomes(
                    s, sets, execs, c.PRIMITIVE_EXECUTIONS, duration, c.PRIMITIVE_DURATION
                )
                in_flight.samples.append((in_flight_name, sets.base, float(s.in_flight), None))
            else:
                assert isinstance(execs, TextFamily) and isinstance(duration, TextFamily)
                assert isinstance(in_flight, TextFamily)
                prefixes = sets.rendered(_PRIMITIVE_EXECS, _PRIMITIVE_DURATION, in_flight_name)
                _write_outcomes(s, prefixes, execs.lines, duration.lines, text)
                in_flight.lines += (prefixes.in_flight, repr(float(s.in_flight)), "\n")
            if s.errors:
                with s.lock:
                    errs = sorted(s.errors.items())
                labels = dict(sets.base)
                for (error_type, origin, workflow), n in errs:
                    errors.add_sample(
                        c.PRIMITIVE_ERRORS.name,
                        {
                            **labels,
                            "error_type": error_type,
                            "origin": origin,
                            "workflow": workflow,
                        },
                        float(n),
                    )
        yield from (execs, errors, duration, in_flight)

    def _collect_slos(self, common: dict[str, str]) -> Iterator[RawFamily]:
        requests = new_family(c.SLO_REQUESTS)
        bad = new_family(c.SLO_ERRORS)
        objective = new_family(c.SLO_OBJECTIVE)
        threshold = new_family(c.SLO_LATENCY_THRESHOLD)
        with self.lock:
            slos = list(self.slos.items())
        for name, s in slos:
            labels = {**common, "slo": name}
            with s.lock:
                n, b = s.requests, s.bad
            requests.add_sample(c.SLO_REQUESTS.name, labels, float(n))
            bad.add_sample(c.SLO_ERRORS.name, labels, float(b))
            if name == c.OVERFLOW_VALUE:
                continue
            objective.add_sample(c.SLO_OBJECTIVE.name, labels, s.slo.objective)
            if s.slo.latency_threshold is not None:
                threshold.add_sample(
                    c.SLO_LATENCY_THRESHOLD.name, labels, float(s.slo.latency_threshold)
                )
        yield from (requests, bad, objective, threshold)

    def _collect_workflows(
        self, common: Labels, every_workflow: bool, text: bool | None
    ) -> Iterator[RawFamily]:
        """Runs by outcome and their duration (shaped workflows only: _shaped_workflows_only)."""
        family = new_family if text is None else new_text_family
        execs = family(c.WORKFLOW_EXECUTIONS)
        duration = family(c.WORKFLOW_DURATION)
        with self.lock:
            wfs = list(self.workflows.values())
        for w in wfs:
            if w.runs is None and not every_workflow:
                continue
            sets = _label_sets(w, common, (("workflow", w.workflow),))
            if text is None:
                _add_outcomes(w, sets, execs, c.WORKFLOW_EXECUTIONS, duration, c.WORKFLOW_DURATION)
            else:
                assert isinstance(execs, TextFamily) and isinstance(duration, TextFamily)
                prefixes = sets.rendered(_WORKFLOW_EXECS, _WORKFLOW_DURATION, "")
                _write_outcomes(w, prefixes, execs.lines, duration.lines, text)
        yield from (execs, duration)

    def _collect_first_items(self, common: dict[str, str]) -> RawFamily:
        metric = c.PRIMITIVE_TIME_TO_FIRST_ITEM
        fam = new_family(metric)
        with self.lock:
            primitives = list(self.primitives.values())
        for p in primitives:
            if p.first_item_hist is None:
                continue
            with p.lock:
                read = p.first_item_hist.read()
            labels = {**common, "primitive_type": p.ptype, "primitive_name": p.name}
            _add_histogram(fam, metric.name, labels, *read)
        return fam

    def _collect_shape(self, common: dict[str, str]) -> Iterator[RawFamily]:
        self_time = new_family(c.PRIMITIVE_SELF_DURATION)
        with self.lock:
            primitives = list(self.primitives.values())
            workflows = list(self.workflows.values())
            edges = sorted(self.edges)
        for p in primitives:
            if p.self_hist is None:
                continue
            with p.lock:
                read = p.self_hist.read()
            labels = {**common, "primitive_type": p.ptype, "primitive_name": p.name}
            _add_histogram(self_time, c.PRIMITIVE_SELF_DURATION.name, labels, *read)
        yield self_time
        edge_info = new_family(c.WORKFLOW_EDGE_INFO)
        for workflow, parent, child in edges:
            labels = {**common, "workflow": workflow, "parent": parent, "child": child}
            edge_info.add_sample(c.WORKFLOW_EDGE_INFO.name, labels, 1.0)
        yield edge_info
        run_metrics = (
            c.WORKFLOW_RUN_PRIMITIVE_CALLS,
            c.WORKFLOW_RUN_LLM_CALLS,
            c.WORKFLOW_RUN_LLM_TOKENS,
            c.WORKFLOW_RUN_COST,
        )
        families = [new_family(m) for m in run_metrics]
        for w in workflows:
            runs = w.runs
            if runs is None:
                continue
            with runs.lock:
                reads = [h.read() for h in (runs.calls, runs.llm_calls, runs.tokens, runs.cost_usd)]
            labels = {**common, "workflow": w.workflow}
            for fam, metric, read in zip(families, run_metrics, reads, strict=True):
                _add_histogram(fam, metric.name, labels, *read, le=_le(metric.buckets))
        yield from families


_WORKFLOW_OUTCOMES = (c.WORKFLOW_EXECUTIONS.name.removesuffix("_total"), c.WORKFLOW_DURATION.name)


def _shaped_workflows_only(families: list[RawFamily]) -> list[RawFamily]:
    """Drop the run series of roots that never ran anything else.

    Every outermost observed call is recorded as a workflow run, but only a root that has
    made another observed call or an LLM call in some run (so it has per-run histograms and
    a root edge) is exposed as a workflow: a plain function called on its own would
    otherwise expose its tta_primitive_* executions and duration a second time.
    """
    by_name = {fam.name: fam for fam in families}
    shape = by_name.get(c.WORKFLOW_RUN_PRIMITIVE_CALLS.name)
    shaped: set[str] = set()
    if shape is not None:
        keys = shape.cells if isinstance(shape, MergedFamily) else shape.samples
        for _, labels, *_ in keys:
            shaped.update(value for key, value in labels if key == "workflow")
    for name in _WORKFLOW_OUTCOMES:
        fam = by_name.get(name)
        if isinstance(fam, MergedFamily):
            fam.cells = {k: v for k, v in fam.cells.items() if dict(k[1]).get("workflow") in shaped}
        elif fam is not None:
            fam.samples = [s for s in fam.samples if dict(s[1]).get("workflow") in shaped]
    return families


def _reset_outcomes(series: OutcomeSeries) -> None:
    series.status_counts = [0] * len(c.STATUSES)
    series.status_exemplars = [None] * len(c.STATUSES)
    series.hist = Histogram()


#: Edges kept per allowed label value (``max_label_values``) before they fold into one.
_MAX_EDGES_PER_LABEL_VALUE = 10

_le_cache: dict[tuple[float, ...], tuple[str, ...]] = {}


def _le(bounds: tuple[float, ...] | None) -> tuple[str, ...]:
    if bounds is None or bounds == _BOUNDS:
        return _LE
    le = _le_cache.get(bounds)
    if le is None:
        le = _le_cache[bounds] = (*(floatToGoString(b) for b in bounds), "+Inf")  # type: ignore[no-untyped-call]
    return le


#: Every contract metric a store emits (the CI metrics are pushed by the CLI instead).
_EMITTED: tuple[c.Metric, ...] = tuple(m for m in c.METRICS if m.group != "ci")


def _family(
    metric: c.Metric, common: dict[str, str], items: Iterable[tuple[tuple[str, ...], float]]
) -> RawFamily:
    fam = new_family(metric)
    for key, value in items:
        fam.add_sample(metric.name, {**common, **dict(zip(metric.labels, key, strict=True))}, value)
    return fam


def _read_outcomes(
    series: OutcomeSeries,
) -> tuple[list[int], list[RawExemplar | None], list[int], list[RawExemplar | None], float]:
    """Counts by status, buckets, their exemplars and the sum, read in one lock."""
    with series.lock:
        hist = series.hist
        return (
            list(series.status_counts),
            list(series.status_exemplars),
            list(hist.buckets),
            list(hist.exemplars),
            hist.sum,
        )


def _add_outcomes(
    series: OutcomeSeries,
    sets: LabelSets,
    execs: RawFamily,
    execs_metric: c.Metric,
    duration: RawFamily,
    duration_metric: c.Metric,
) -> None:
    """Add one series' executions by status and its duration histogram, read in one lock."""
    counts, status_ex, buckets, bucket_ex, total = _read_outcomes(series)
    name = execs_metric.name
    add = execs.samples.append
    for labels, n, ex in zip(sets.statuses, counts, status_ex, strict=True):
        # A counter's exemplar counts one call.
        add((name, labels, float(n), None if ex is None else (ex[0], ex[1], 1.0, ex[3])))
    name = duration_metric.name
    bucket, add = f"{name}_bucket", duration.samples.append
    cumulative = 0
    for labels, n, ex in zip(sets.buckets, buckets, bucket_ex, strict=True):
        cumulative += n
        add((bucket, labels, float(cumulative), ex))
    add((f"{name}_count", sets.base, float(cumulative), None))
    add((f"{name}_sum", sets.base, total, None))


_PRIMITIVE_EXECS, _PRIMITIVE_DURATION = c.PRIMITIVE_EXECUTIONS.name, c.PRIMITIVE_DURATION.name
_WORKFLOW_EXECS, _WORKFLOW_DURATION = c.WORKFLOW_EXECUTIONS.name, c.WORKFLOW_DURATION.name


def _write_outcomes(
    series: OutcomeSeries,
    prefixes: Prefixes,
    execs: list[str],
    duration: list[str],
    openmetrics: bool,
) -> None:
    """:func:`_add_outcomes`, written as text lines: the same samples, read in one lock."""
    counts, status_ex, buckets, bucket_ex, total = _read_outcomes(series)
    add = execs.append
    for prefix, n, ex in zip(prefixes.statuses, counts, status_ex, strict=True):
        add(prefix)
        add(repr(float(n)))
        if ex is not None and openmetrics:
            # A counter's exemplar counts one call.
            add(exemplar_text(ex[0], ex[1], 1.0, ex[3]))
        add("\n")
    add = duration.append
    cumulative = 0
    for prefix, n, ex in zip(prefixes.buckets, buckets, bucket_ex, strict=True):
        cumulative += n
        add(prefix)
        add(repr(float(cumulative)))
        if ex is not None and openmetrics:
            add(exemplar_text(*ex))
        add("\n")
    duration += (prefixes.count_prefix, repr(float(cumulative)), "\n")
    duration += (prefixes.sum_prefix, exposition.format_value(total), "\n")


def _add_histogram(
    fam: RawFamily,
    name: str,
    labels: dict[str, str],
    buckets: list[int],
    exemplars: list[RawExemplar | None],
    total: float,
    le: tuple[str, ...] = _LE,
) -> None:
    cumulative = 0
    for le_value, n, ex in zip(le, buckets, exemplars, strict=True):
        cumulative += n
        fam.add_sample(
            f"{name}_bucket",
            {**labels, "le": le_value},
            float(cumulative),
            exemplar=ex,
        )
    fam.add_sample(f"{name}_count", labels, float(cumulative))
    fam.add_sample(f"{name}_sum", labels, total)


#: The process-wide store. ``@observed`` records here whether or not ``setup()`` has run;
#: ``setup()`` registers it with a registry and sets the common labels.
STORE = MetricStore()


def snapshot(store: MetricStore = STORE) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample's current value, keyed by (sample name, sorted labels without common labels)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for fam in store.collect():
        for s in fam.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k not in c.COMMON_LABELS))
            out[(s.name, labels)] = s.value
    return out
