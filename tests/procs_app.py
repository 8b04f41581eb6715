"""Observed functions at module level for the fork, pool and pickling tests (spawn imports them)."""

from __future__ import annotations

import os
import time

import tta_observability as tto


@tto.observed(name="procs_double")
def double(x: int) -> int:
    return 2 * x


@tto.observed(name="procs_sleep")
def sleep(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


class Scaler:
    def __init__(self, k: int) -> None:
        self.k = k

    @tto.observed(name="procs_scale")
    def scale(self, x: int) -> int:
        return self.k * x

    @classmethod
    @tto.observed(name="procs_cm")
    def plus_one(cls, x: int) -> int:
        return x + 1
