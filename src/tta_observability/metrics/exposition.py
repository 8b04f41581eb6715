"""From the store's raw samples to prometheus-client families, which render the text formats.

The store describes what it holds as :class:`RawFamily` objects: plain tuples of sample name,
label pairs, value and the raw exemplar (integer ids), cheap to build, to write to a
multiprocess file (:mod:`.values`) and to merge across processes. Label sets, hex ids and
``Exemplar`` objects are made here, only for the samples a scrape returns.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar

from .. import contract as c

# (trace_id, span_id, observed value, unix time); ids stay integers until a scrape.
RawExemplar = tuple[int, int, float, float]
Labels = tuple[tuple[str, str], ...]
#: (sample name, labels, value, exemplar)
RawSample = tuple[str, Labels, float, RawExemplar | None]


class RawFamily:
    """One metric family's samples, with the ``add_sample`` of prometheus-client's ``Metric``."""

    __slots__ = ("documentation", "name", "samples", "type")

    def __init__(self, name: str, documentation: str, typ: str) -> None:
        self.name = name
        self.documentation = documentation
        self.type = typ
        self.samples: list[RawSample] = []

    def add_sample(
        self,
        name: str,
        labels: dict[str, str],
        value: float,
        exemplar: RawExemplar | None = None,
    ) -> None:
        self.samples.append((name, tuple(labels.items()), value, exemplar))


class TextFamily(RawFamily):
    """A family whose sample lines are written as text already (a store's outcome series).

    Its ``lines`` are joined into the body as they are: a scrape then keeps no sample tuples
    alive, whose allocations would make the garbage collector run in the app's threads.
    """

    __slots__ = ("lines",)

    def __init__(self, name: str, documentation: str, typ: str) -> None:
        super().__init__(name, documentation, typ)
        self.lines: list[str] = []


class MergedFamily(RawFamily):
    """A family merged from several processes' files, its samples still in the merge's cells.

    ``cells`` maps (sample name, labels) to the value, or to (value, exemplar) for a sample
    with an exemplar (:data:`.values.Merged`). The renderer reads them as they are: a scrape
    keeps no sample tuple per cell alive (see :class:`TextFamily`).
    """

    __slots__ = ("cells",)

    def __init__(self, name: str, documentation: str, typ: str, cells: dict[Any, Any]) -> None:
        super().__init__(name, documentation, typ)
        self.cells = cells

    def iter_samples(self) -> Iterator[RawSample]:
        for (name, labels), cell in self.cells.items():
            if type(cell) is tuple:
                yield name, labels, cell[0], cell[1]
            else:
                yield name, labels, cell, None


def new_text_family(metric: c.Metric) -> TextFamily:
    raw = new_family(metric)
    return TextFamily(raw.name, raw.documentation, raw.type)


def new_family(metric: c.Metric) -> RawFamily:
    # prometheus-client names a counter family without its _total suffix.
    name = metric.name.removesuffix("_total") if metric.type == "counter" else metric.name
    return RawFamily(name, metric.help, metric.type)


def describe(metrics: Iterable[c.Metric]) -> list[Metric]:
    out = []
    for metric in metrics:
        raw = new_family(metric)
        out.append(Metric(raw.name, raw.documentation, raw.type))
    return out


def _exemplar(raw: RawExemplar) -> Exemplar:
    trace_id, span_id, value, ts = raw
    return Exemplar(
        {"trace_id": format(trace_id, "032x"), "span_id": format(span_id, "016x")}, value, ts
    )


def to_metrics(families: Iterable[RawFamily]) -> Iterator[Metric]:
    """prometheus-client families for the exposition (OpenMetrics with exemplars, or text)."""
    for raw in families:
        fam = Metric(raw.name, raw.documentation, raw.type)
        for name, labels, value, ex in raw.samples:
            fam.add_sample(name, dict(labels), value, exemplar=_exemplar(ex) if ex else None)
        yield fam


_scrape = threading.local()


def deferred() -> list[Any] | None:
    """In a scrape by our endpoint, the list where a store defers itself to render its own text."""
    return getattr(_scrape, "deferred", None)


def defer_stores() -> list[Any]:
    out: list[Any] = []
    _scrape.deferred = out
    return out


def stop_deferring() -> None:
    _scrape.deferred = None


# Pre-rendered exposition: the scrape path of the library's own families.
#
# prometheus-client turns every sample into a ``Sample`` tuple and a label dict, then sorts,
# escapes and formats the labels again on every scrape. A series' name and labels do not change
# once it exists, so its ``name{labels} `` prefix is rendered once, cached, and a scrape only
# formats values (and, in OpenMetrics, exemplars) and joins one list into the body.

_SPECIAL = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}


def format_value(value: float) -> str:
    """A sample value as Prometheus parses it (``repr``; Go reads ``1e+16`` and ``0.5`` alike)."""
    text = repr(float(value))
    return _SPECIAL.get(text, text)


def _escape_label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def sample_prefix(name: str, labels: Labels) -> str:
    """``name{labels} ``: the text before a sample's value."""
    if not labels:
        return name + " "
    body = ",".join(f'{k}="{_escape_label_value(v)}"' for k, v in sorted(labels))
    return f"{name}{{{body}}} "


def _header(fam: RawFamily, openmetrics: bool) -> str:
    if openmetrics:
        doc = _escape_label_value(fam.documentation)
        return f"# HELP {fam.name} {doc}\n# TYPE {fam.name} {fam.type}\n"
    # The classic text format names a counter family with its _total suffix.
    name = f"{fam.name}_total" if fam.type == "counter" else fam.name
    doc = fam.documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {doc}\n# TYPE {name} {fam.type}\n"


def exemplar_text(trace_id: int, span_id: int, value: float, ts: float) -> str:
    """An exemplar as OpenMetrics writes it after a sample's value."""
    return (
        f' # {{span_id="{span_id:016x}",trace_id="{trace_id:032x}"}} '
        f"{format_value(value)} {float(ts)!r}"
    )


class Renderer:
    """Renders raw families to OpenMetrics or the classic text format, prefixes cached.

    A store hands the same label tuples to every scrape (:class:`.store.LabelSets`), so the
    prefix is found by the tuple's identity, without hashing its labels; label sets made
    afresh (merged from multiprocess files) are found by value.
    """

    __slots__ = ("_by_id", "_by_value", "_headers")

    def __init__(self) -> None:
        #: (sample name, id(labels)) -> (labels, prefix); holding labels keeps the id theirs.
        self._by_id: dict[tuple[str, int], tuple[Labels, str]] = {}
        self._by_value: dict[tuple[str, Labels], str] = {}
        self._headers: dict[tuple[str, bool], str] = {}

    def _prefix(self, name: str, labels: Labels) -> str:
        key = (name, labels)
        prefix = self._by_value.get(key)
        if prefix is None:
            prefix = self._by_value[key] = sample_prefix(name, labels)
        self._by_id[(name, id(labels))] = (labels, prefix)
        return prefix

    def render(self, families: Iterable[RawFamily], openmetrics: bool) -> str:
        """The body for ``families`` (without OpenMetrics' ``# EOF``), built by one join."""
        by_id = self._by_id
        out: list[str] = []
        append = out.append
        seen = 0
        for fam in families:
            header = self._headers.get((fam.name, openmetrics))
            if header is None:
                header = self._headers[(fam.name, openmetrics)] = _header(fam, openmetrics)
            append(header)
            if type(fam) is TextFamily:
                out += fam.lines
                continue
            merged = type(fam) is MergedFamily
            samples = fam.iter_samples() if merged else fam.samples  # type: ignore[attr-defined]
            for name, labels, value, ex in samples:
                hit = by_id.get((name, id(labels)))
                if hit is not None and hit[0] is labels:
                    append(hit[1])
                else:
                    append(self._prefix(name, labels))
                text = repr(value)
                append(_SPECIAL.get(text, text))
                if ex is not None and openmetrics:
                    append(exemplar_text(*ex))
                append("\n")
            seen += len(fam.cells if merged else fam.samples)  # type: ignore[attr-defined]
        if len(by_id) > 2 * seen + 1024:
            # Series of an earlier service name or environment, or label sets merged afresh
            # from multiprocess files by earlier scrapes.
            by_id.clear()
            self._by_value.clear()
        return "".join(out)
