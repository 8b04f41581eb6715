"""The metric store and its Prometheus collector: every series of the process, by name.

The series themselves (what a call updates) are in :mod:`.series`, the cardinality guard in
:mod:`.guards`, what a series adds to a scrape in :mod:`.samples`, per-process files in
:mod:`.values` and the exposition format in :mod:`.exposition`.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .. import contract as c
from ..slo import SLO
from . import exposition
from .exposition import Labels, RawFamily, TextFamily, new_family, new_text_family
from .guards import SERIES_LABEL, LabelGuard, SeriesBudget
from .samples import (
    add_histogram,
    add_outcomes,
    family_of,
    le_values,
    shaped_workflows_only,
    write_outcomes,
)
from .series import (
    LabeledCounter,
    PrimitiveSeries,
    SLOSeries,
    WorkflowSeries,
    label_sets,
    reset_outcomes,
)
from .values import Multiprocess

logger = logging.getLogger("tta_observability")

#: Edges kept per allowed label value (``max_label_values``) before they fold into one.
_MAX_EDGES_PER_LABEL_VALUE = 10

#: Every contract metric a store emits (the CI metrics are pushed by the CLI instead).
_EMITTED: tuple[c.Metric, ...] = tuple(m for m in c.METRICS if m.group != "ci")

_PRIMITIVE_EXECS, _PRIMITIVE_DURATION = c.PRIMITIVE_EXECUTIONS.name, c.PRIMITIVE_DURATION.name
_WORKFLOW_EXECS, _WORKFLOW_DURATION = c.WORKFLOW_EXECUTIONS.name, c.WORKFLOW_DURATION.name


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
            reset_outcomes(p)
            p.errors = {}
            p.self_hist = None
            p.first_item_hist = None
            p.begun = itertools.count(1 + in_flight.get(id(p), 0))
            p.begin = p.begun.__next__
        for w in list(self.workflows.values()):
            reset_outcomes(w)
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
        return families if every_workflow else shaped_workflows_only(families)

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
            merged = shaped_workflows_only(self.multiprocess.aggregate(cells=True))
            return self.renderer.render(merged, openmetrics)
        return self.renderer.render(self._raw(False, openmetrics), openmetrics)

    def raw(self) -> list[RawFamily]:
        """This process's own samples (in multiprocess mode too), as raw families.

        Every workflow's series are here, shaped or not: another process's runs of the same
        workflow may be the shaped ones (see :func:`shaped_workflows_only`).
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
            yield family_of(counter.metric, common, sorted(counter.values.items()))
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
            sets = label_sets(s, common, (("primitive_type", s.ptype), ("primitive_name", s.name)))
            if text is None:
                add_outcomes(s, sets, execs, c.PRIMITIVE_EXECUTIONS, duration, c.PRIMITIVE_DURATION)
                in_flight.samples.append((in_flight_name, sets.base, float(s.in_flight), None))
            else:
                assert isinstance(execs, TextFamily) and isinstance(duration, TextFamily)
                assert isinstance(in_flight, TextFamily)
                prefixes = sets.rendered(_PRIMITIVE_EXECS, _PRIMITIVE_DURATION, in_flight_name)
                write_outcomes(s, prefixes, execs.lines, duration.lines, text)
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
        """Runs by outcome and their duration (shaped workflows only: shaped_workflows_only)."""
        family = new_family if text is None else new_text_family
        execs = family(c.WORKFLOW_EXECUTIONS)
        duration = family(c.WORKFLOW_DURATION)
        with self.lock:
            wfs = list(self.workflows.values())
        for w in wfs:
            if w.runs is None and not every_workflow:
                continue
            sets = label_sets(w, common, (("workflow", w.workflow),))
            if text is None:
                add_outcomes(w, sets, execs, c.WORKFLOW_EXECUTIONS, duration, c.WORKFLOW_DURATION)
            else:
                assert isinstance(execs, TextFamily) and isinstance(duration, TextFamily)
                prefixes = sets.rendered(_WORKFLOW_EXECS, _WORKFLOW_DURATION, "")
                write_outcomes(w, prefixes, execs.lines, duration.lines, text)
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
            add_histogram(fam, metric.name, labels, *read)
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
            add_histogram(self_time, c.PRIMITIVE_SELF_DURATION.name, labels, *read)
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
                add_histogram(fam, metric.name, labels, *read, le=le_values(metric.buckets))
        yield from families


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
