"""gunicorn settings for the tests (``-c python:tests.gunicorn_hooks``): the app's drain hook."""

from __future__ import annotations

from typing import Any


def worker_exit(server: Any, worker: Any) -> None:
    """Runs in the worker after its last request: the app's own drain, which must be traced."""
    from tests import mp_app

    mp_app.on_exit_drain()
