"""What a series adds to a scrape: raw samples, or text lines written as they are read.

Each reads a series under its lock once and builds nothing the next scrape could reuse;
the label sets and prefixes they use are made once per series (:class:`.series.LabelSets`).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.utils import floatToGoString

from .. import contract as c
from . import exposition
from .exposition import MergedFamily, RawExemplar, RawFamily, exemplar_text, new_family
from .series import DURATION_LE, LabelSets, OutcomeSeries, Prefixes

_WORKFLOW_OUTCOMES = (c.WORKFLOW_EXECUTIONS.name.removesuffix("_total"), c.WORKFLOW_DURATION.name)


def shaped_workflows_only(families: list[RawFamily]) -> list[RawFamily]:
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


_le_cache: dict[tuple[float, ...], tuple[str, ...]] = {}


def le_values(bounds: tuple[float, ...] | None) -> tuple[str, ...]:
    if bounds is None or bounds == c.DURATION_BUCKETS_SECONDS:
        return DURATION_LE
    le = _le_cache.get(bounds)
    if le is None:
        le = _le_cache[bounds] = (*(floatToGoString(b) for b in bounds), "+Inf")  # type: ignore[no-untyped-call]
    return le


def family_of(
    metric: c.Metric, common: dict[str, str], items: Iterable[tuple[tuple[str, ...], float]]
) -> RawFamily:
    fam = new_family(metric)
    for key, value in items:
        fam.add_sample(metric.name, {**common, **dict(zip(metric.labels, key, strict=True))}, value)
    return fam


def read_outcomes(
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


def add_outcomes(
    series: OutcomeSeries,
    sets: LabelSets,
    execs: RawFamily,
    execs_metric: c.Metric,
    duration: RawFamily,
    duration_metric: c.Metric,
) -> None:
    """Add one series' executions by status and its duration histogram, read in one lock."""
    counts, status_ex, buckets, bucket_ex, total = read_outcomes(series)
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


def write_outcomes(
    series: OutcomeSeries,
    prefixes: Prefixes,
    execs: list[str],
    duration: list[str],
    openmetrics: bool,
) -> None:
    """:func:`add_outcomes`, written as text lines: the same samples, read in one lock."""
    counts, status_ex, buckets, bucket_ex, total = read_outcomes(series)
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


def add_histogram(
    fam: RawFamily,
    name: str,
    labels: dict[str, str],
    buckets: list[int],
    exemplars: list[RawExemplar | None],
    total: float,
    le: tuple[str, ...] = DURATION_LE,
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
