"""``demo``: the README's main job, a simulated agent workflow with a live one-line display."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from . import _passthrough

PASSTHROUGH: Final = ("demo",)


def register(sub: Any) -> None:
    _passthrough.register_stub(
        sub,
        "demo",
        "run an instrumented demo agent workflow serving /metrics (no network, no API keys)",
        "Run a simulated TTA.dev agent workflow with injected failures and latency.",
    )


def run_passthrough(name: str, argv: Sequence[str]) -> int:
    return _passthrough.run("tta_observability.demo", "the demo", name, argv)
