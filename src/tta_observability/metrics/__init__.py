"""The metric store (:mod:`.store`): its series (:mod:`.series`), the cardinality guard
(:mod:`.guards`), value storage per process (:mod:`.values`), and exposition (:mod:`.samples`,
:mod:`.exposition`, :mod:`.http`).

``STORE`` is the process-wide store: ``@observed`` records there whether or not ``setup()`` has
run, and ``setup()`` registers it with a registry. In multiprocess mode (``setup(
multiprocess_dir=...)``) every process also writes its values to its own file, and a scrape of
any process serves the sum of all of them.
"""

from __future__ import annotations

from .guards import LabelGuard
from .series import (
    STATUS_INDEX,
    Histogram,
    LabeledCounter,
    OutcomeSeries,
    PrimitiveSeries,
    RunHistograms,
    SLOSeries,
    WorkflowSeries,
)
from .store import STORE, MetricStore, snapshot

__all__ = [
    "STATUS_INDEX",
    "STORE",
    "Histogram",
    "LabelGuard",
    "LabeledCounter",
    "MetricStore",
    "OutcomeSeries",
    "PrimitiveSeries",
    "RunHistograms",
    "SLOSeries",
    "WorkflowSeries",
    "snapshot",
]
