"""Waiting for a real server to reach a state: poll, never sleep a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(fn: Callable[[], Any], what: str, timeout: float = 30.0, every: float = 0.2) -> Any:
    """Call ``fn`` until it returns something truthy and return that; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
