"""Service level objectives declared in code.

An SLO only needs declaring: the shipped static rules read its objective from the
``tta_slo_objective_ratio`` gauge, so nothing has to be regenerated when one is added.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$")


@dataclass(frozen=True)
class SLO:
    """A service level objective.

    ``objective`` is the target ratio of good calls (``0.999``); a call is bad when it fails, or
    when it takes longer than ``latency_threshold`` seconds if one is given.

    >>> SLO("checkout", 0.999, latency_threshold=2.0).error_budget
    0.0010000000000000009
    """

    name: str
    objective: float
    latency_threshold: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"SLO name {self.name!r} is invalid: use 1 to 64 letters, digits, '_', '.', ':' "
                "or '-', starting with a letter or '_'"
            )
        objective = self.objective
        if isinstance(objective, bool) or not isinstance(objective, int | float):
            raise TypeError(f"SLO {self.name!r}: objective must be a number, got {objective!r}")
        if not (0.0 < objective < 1.0):
            raise ValueError(
                f"SLO {self.name!r}: objective must be a ratio strictly between 0 and 1 "
                f"(0.999 for 99.9 %), got {objective!r}"
            )
        threshold = self.latency_threshold
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, int | float):
                raise TypeError(
                    f"SLO {self.name!r}: latency_threshold must be seconds as a number, "
                    f"got {threshold!r}"
                )
            if not (threshold > 0 and math.isfinite(threshold)):
                raise ValueError(
                    f"SLO {self.name!r}: latency_threshold must be a positive number of seconds, "
                    f"got {threshold!r}"
                )

    @property
    def error_budget(self) -> float:
        """The fraction of calls that may be bad."""
        return 1.0 - self.objective
