"""The cardinality guard: at most ``max_label_values`` values per bounded label and a budget of
series per metric; what does not fit folds into ``__overflow__`` and is counted."""

from __future__ import annotations

import threading

from .. import contract as c


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
