"""A WSGI and an ASGI app, as a user would serve them with gunicorn or uvicorn workers.

``setup()`` runs at import (in each worker, or once in the master with ``--preload``); its
settings come from the environment the test gives the server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import tta_observability as tto

HANDLE = tto.setup(
    "mp-app",
    metrics_port=int(os.environ.get("MP_APP_METRICS_PORT", "0")),
    sample_ratio=1.0,
)
_metrics_wsgi = tto.metrics_wsgi_app()
_metrics_asgi = tto.metrics_asgi_app()


@tto.observed(name="mp_request")
def handle_request(seconds: float) -> bytes:
    if seconds:
        time.sleep(seconds)
    return b"ok"


@tto.observed(name="mp_drain")
def drain_step() -> None:
    pass


def on_exit_drain() -> None:
    # What an app does while it drains: work that must still be traced.
    for _ in range(int(os.environ.get("MP_APP_DRAIN_CALLS", "0"))):
        drain_step()


def _seconds(query: str) -> float:
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == "sleep":
            return float(value)
    return 0.0


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/metrics":
        return _metrics_wsgi(environ, start_response)  # type: ignore[no-any-return]
    if path == "/health":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    body = handle_request(_seconds(environ.get("QUERY_STRING", "")))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope.get("path", "")
    if path == "/metrics":
        await _metrics_asgi(scope, receive, send)
        return
    body = b"ok" if path == "/health" else handle_request(0.0)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
